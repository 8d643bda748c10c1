/*
 * imap_resp: IMAP server responses as a client reads them (see imap_resp.h).
 *
 * STANDARDS
 *   RFC 3501 7 (responses), 7.1 (status responses and response codes), 7.2.1 (CAPABILITY),
 *   7.2.5 (SEARCH), 7.4.2 (FETCH), 4.3 (literals), 4.3 and 9 (string syntax); RFC 7888
 *   (LITERAL+ "{N+}" also accepted from servers that echo it); RFC 4315 (UIDPLUS).
 *
 * SECURITY
 *   Two passes over untrusted bytes: the first only finds where the response ends (line
 *   lengths and literal counts bounded), the second parses inside those bounds with a cursor
 *   that never passes them. Nesting is bounded, so recursion is too.
 */
#include "imap_resp.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* A "{N}" or "{N+}" at the end of line[0..n) (without CRLF): true with *count_r. */
static bool imap_literal_at_end(const char *line, size_t n, unsigned long *count_r)
{
    if (n < 3 || line[n - 1] != '}')
        return false;
    size_t i = n - 1;
    if (i > 0 && line[i - 1] == '+')
        i--;
    size_t digits_end = i;
    while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
        i--;
    if (i == digits_end || i == 0 || line[i - 1] != '{' || digits_end - i > 10)
        return false;
    unsigned long v = 0;
    for (size_t k = i; k < digits_end; k++)
        v = v * 10 + (unsigned long)(line[k] - '0');
    *count_r = v;
    return true;
}

/* Pass 1: the length of the first whole response, 0 when incomplete (*want_r), -1 on error. */
static long long imap_resp_extent(const char *data, size_t len, size_t *want_r,
                                  const char **error_r)
{
    size_t pos = 0;
    for (;;) {
        size_t avail = len - pos;
        size_t look = avail < IMAP_RESP_LINE_MAX ? avail : IMAP_RESP_LINE_MAX;
        const char *lf = memchr(data + pos, '\n', look);
        if (!lf) {
            if (avail >= IMAP_RESP_LINE_MAX) {
                *error_r = "response line too long";
                return -1;
            }
            *want_r = len + 1;
            return 0;
        }
        size_t n = (size_t)(lf - (data + pos));
        size_t after = pos + n + 1;
        if (n > 0 && data[pos + n - 1] == '\r')
            n--;
        unsigned long count;
        if (!imap_literal_at_end(data + pos, n, &count))
            return (long long)after;
        if (count > IMAP_LITERAL_MAX) {
            *error_r = "literal too large";
            return -1;
        }
        if (len - after < count) {
            *want_r = after + count + 2;
            return 0;
        }
        pos = after + count;
        if (pos == len) {
            *want_r = len + 2;
            return 0;
        }
    }
}

struct imap_cur {
    const char *p, *end;
    int depth;
    bool bad;
};

static bool imap_at(const struct imap_cur *c, char ch)
{
    return c->p < c->end && *c->p == ch;
}

static bool imap_at_eol(const struct imap_cur *c)
{
    return c->p >= c->end || *c->p == '\r' || *c->p == '\n';
}

static void imap_skip_spaces(struct imap_cur *c)
{
    while (imap_at(c, ' '))
        c->p++;
}

static bool imap_atom_char(char ch)
{
    unsigned char u = (unsigned char)ch;
    return u > 0x20 && u < 0x7f && ch != '(' && ch != ')' && ch != '{' && ch != '"' &&
           ch != '%' && ch != '*' && ch != ']';
}

/* An atom (also "\Seen", "BODY[...]" with its bracket part, "<0>" origins); may be empty. */
static size_t imap_atom(struct imap_cur *c, const char **start_r)
{
    const char *s = c->p;
    while (c->p < c->end) {
        char ch = *c->p;
        if (ch == '[') {
            /* a section: everything to the matching ']' belongs to the name */
            const char *close = memchr(c->p, ']', (size_t)(c->end - c->p));
            if (!close) {
                c->bad = true;
                return 0;
            }
            c->p = close + 1;
            continue;
        }
        if (!imap_atom_char(ch) && ch != '*' && ch != '%')
            break;
        c->p++;
    }
    *start_r = s;
    return (size_t)(c->p - s);
}

static bool imap_number(struct imap_cur *c, unsigned long *v_r)
{
    unsigned long v = 0;
    const char *s = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p - '0');
        if (v > (0xffffffffffffUL - d) / 10)
            return false;
        v = v * 10 + d;
        c->p++;
    }
    *v_r = v;
    return c->p > s;
}

/* A literal "{N}CRLF" + N octets at the cursor. */
static bool imap_literal(struct imap_cur *c, const char **data_r, size_t *len_r)
{
    if (!imap_at(c, '{'))
        return false;
    c->p++;
    unsigned long n;
    if (!imap_number(c, &n))
        return false;
    if (imap_at(c, '+'))
        c->p++;
    if (!imap_at(c, '}'))
        return false;
    c->p++;
    if (imap_at(c, '\r'))
        c->p++;
    if (!imap_at(c, '\n'))
        return false;
    c->p++;
    if ((size_t)(c->end - c->p) < n)
        return false;
    *data_r = c->p;
    *len_r = n;
    c->p += n;
    return true;
}

/* A quoted string; *data_r/len_r is the raw inside (escapes left in place). */
static bool imap_quoted(struct imap_cur *c, const char **data_r, size_t *len_r)
{
    if (!imap_at(c, '"'))
        return false;
    c->p++;
    const char *s = c->p;
    while (c->p < c->end && *c->p != '"') {
        if (*c->p == '\r' || *c->p == '\n')
            return false;
        if (*c->p == '\\') {
            c->p++;
            if (c->p >= c->end)
                return false;
        }
        c->p++;
    }
    if (c->p >= c->end)
        return false;
    *data_r = s;
    *len_r = (size_t)(c->p - s);
    c->p++;
    return true;
}

static bool imap_skip_value(struct imap_cur *c);

static bool imap_skip_list(struct imap_cur *c)
{
    if (++c->depth > IMAP_RESP_DEPTH_MAX)
        return false;
    c->p++; /* '(' */
    for (;;) {
        imap_skip_spaces(c);
        if (c->p >= c->end)
            return false;
        if (*c->p == ')') {
            c->p++;
            c->depth--;
            return true;
        }
        if (!imap_skip_value(c))
            return false;
    }
}

static bool imap_skip_value(struct imap_cur *c)
{
    const char *d;
    size_t n;
    if (c->p >= c->end)
        return false;
    switch (*c->p) {
    case '(':
        return imap_skip_list(c);
    case '"':
        return imap_quoted(c, &d, &n);
    case '{':
        return imap_literal(c, &d, &n);
    default:
        n = imap_atom(c, &d);
        return n > 0 && !c->bad;
    }
}

static void imap_copy_text(char *dst, size_t size, const char *s, const char *end)
{
    size_t k = 0;
    for (; s < end && *s != '\r' && *s != '\n' && k + 1 < size; s++) {
        dst[k++] = *s;
        if (*s < 0x20 || *s >= 0x7f)
            dst[k - 1] = '?';
    }
    dst[k] = '\0';
}

static bool imap_word_is(const char *w, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(w, name, n) == 0;
}

static const struct {
    const char *name;
    unsigned bit;
} imap_capa_names[] = {
    {"IMAP4rev1", IMAP_CAPA_IMAP4REV1}, {"STARTTLS", IMAP_CAPA_STARTTLS},
    {"AUTH=PLAIN", IMAP_CAPA_AUTH_PLAIN}, {"LOGINDISABLED", IMAP_CAPA_LOGINDISABLED},
    {"UIDPLUS", IMAP_CAPA_UIDPLUS}, {"SASL-IR", IMAP_CAPA_SASL_IR},
    {"LITERAL+", IMAP_CAPA_LITERALPLUS}, {"IDLE", IMAP_CAPA_IDLE},
};

unsigned imap_capa_parse(const char *list, size_t len)
{
    unsigned caps = 0;
    const char *p = list, *end = list + len;
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        const char *s = p;
        while (p < end && *p != ' ' && *p != ']' && *p != '\r' && *p != '\n')
            p++;
        for (size_t i = 0; i < sizeof imap_capa_names / sizeof imap_capa_names[0]; i++)
            if (imap_word_is(s, (size_t)(p - s), imap_capa_names[i].name))
                caps |= imap_capa_names[i].bit;
        if (p < end && *p != ' ')
            break;
    }
    return caps;
}

/* resp-text: ["[" code "]" SP] text */
static void imap_resp_text(struct imap_cur *c, struct imap_resp *r)
{
    imap_skip_spaces(c);
    if (imap_at(c, '[')) {
        c->p++;
        const char *s = c->p;
        while (c->p < c->end && *c->p != ' ' && *c->p != ']' && *c->p != '\r' && *c->p != '\n')
            c->p++;
        imap_copy_text(r->code, sizeof r->code, s, c->p);
        for (char *q = r->code; *q; q++)
            *q = (char)toupper((unsigned char)*q);
        const char *close = c->p;
        while (close < c->end && *close != ']' && *close != '\n')
            close++;
        if (imap_at(c, ' ')) {
            struct imap_cur arg = {c->p + 1, close, 0, false};
            unsigned long v;
            if (imap_number(&arg, &v))
                r->code_number = v;
            if (strcmp(r->code, "CAPABILITY") == 0) {
                r->capabilities = imap_capa_parse(c->p + 1, (size_t)(close - c->p - 1));
                r->has_capabilities = true;
            }
        }
        c->p = close < c->end && *close == ']' ? close + 1 : close;
        imap_skip_spaces(c);
    }
    imap_copy_text(r->text, sizeof r->text, c->p, c->end);
}

static unsigned imap_flag_bit(const char *s, size_t n)
{
    if (imap_word_is(s, n, "\\Seen"))
        return IMAP_FLAG_SEEN;
    if (imap_word_is(s, n, "\\Deleted"))
        return IMAP_FLAG_DELETED;
    if (imap_word_is(s, n, "\\Answered"))
        return IMAP_FLAG_ANSWERED;
    if (imap_word_is(s, n, "\\Flagged"))
        return IMAP_FLAG_FLAGGED;
    if (imap_word_is(s, n, "\\Draft"))
        return IMAP_FLAG_DRAFT;
    if (imap_word_is(s, n, "\\Recent"))
        return IMAP_FLAG_RECENT;
    return 0;
}

static bool imap_fetch_items(struct imap_cur *c, struct imap_resp *r)
{
    imap_skip_spaces(c);
    if (!imap_at(c, '('))
        return false;
    c->p++;
    for (;;) {
        imap_skip_spaces(c);
        if (c->p >= c->end)
            return false;
        if (*c->p == ')') {
            c->p++;
            return true;
        }
        const char *name;
        size_t nlen = imap_atom(c, &name);
        if (nlen == 0 || c->bad || !imap_at(c, ' '))
            return false;
        imap_skip_spaces(c);
        unsigned long v;
        if (imap_word_is(name, nlen, "UID")) {
            if (!imap_number(c, &v))
                return false;
            r->uid = v;
            r->has_uid = true;
        } else if (imap_word_is(name, nlen, "RFC822.SIZE")) {
            if (!imap_number(c, &v))
                return false;
            r->size = v;
            r->has_size = true;
        } else if (imap_word_is(name, nlen, "FLAGS")) {
            if (!imap_at(c, '('))
                return false;
            c->p++;
            for (;;) {
                imap_skip_spaces(c);
                if (imap_at(c, ')')) {
                    c->p++;
                    break;
                }
                const char *f = c->p;
                while (c->p < c->end && *c->p != ' ' && *c->p != ')' && *c->p != '\r' &&
                       *c->p != '\n' && *c->p != '(' && *c->p != '"')
                    c->p++;
                if (c->p == f)
                    return false;
                r->flags |= imap_flag_bit(f, (size_t)(c->p - f));
            }
            r->has_flags = true;
        } else if (!r->has_body && ((nlen >= 5 && strncasecmp(name, "BODY[", 5) == 0) ||
                                    imap_word_is(name, nlen, "RFC822") ||
                                    (nlen >= 7 && strncasecmp(name, "BINARY[", 7) == 0))) {
            const char *d = NULL;
            size_t n = 0;
            if (imap_at(c, '{')) {
                if (!imap_literal(c, &d, &n))
                    return false;
            } else if (imap_at(c, '"')) {
                if (!imap_quoted(c, &d, &n))
                    return false;
                if (memchr(d, '\\', n))
                    return false; /* an escaped quoted body is not worth supporting */
            } else {
                const char *a;
                size_t an = imap_atom(c, &a);
                if (!imap_word_is(a, an, "NIL"))
                    return false;
            }
            r->body = d;
            r->body_len = n;
            r->has_body = true;
        } else if (!imap_skip_value(c)) {
            return false;
        }
    }
}

enum imap_resp_result imap_resp_parse(const char *data, size_t len, size_t *consumed_r,
                                      size_t *want_r, struct imap_resp *r,
                                      const char **error_r)
{
    *consumed_r = 0;
    *want_r = 0;
    long long extent = imap_resp_extent(data, len, want_r, error_r);
    if (extent < 0)
        return IMAP_RESP_ERROR;
    if (extent == 0)
        return IMAP_RESP_NEED_MORE;
    memset(r, 0, sizeof *r);
    struct imap_cur c = {data, data + extent, 0, false};
    *error_r = "malformed response";
    if (imap_at(&c, '+')) {
        r->kind = IMAP_RESP_CONTINUATION;
        c.p++;
        imap_skip_spaces(&c);
        imap_copy_text(r->text, sizeof r->text, c.p, c.end);
        *consumed_r = (size_t)extent;
        return IMAP_RESP_OK;
    }
    const char *word;
    size_t wn;
    if (imap_at(&c, '*')) {
        r->kind = IMAP_RESP_UNTAGGED;
        c.p++;
    } else {
        r->kind = IMAP_RESP_TAGGED;
        wn = imap_atom(&c, &word);
        if (wn == 0 || c.bad || wn >= sizeof r->tag)
            return IMAP_RESP_ERROR;
        memcpy(r->tag, word, wn);
        r->tag[wn] = '\0';
    }
    if (!imap_at(&c, ' '))
        return IMAP_RESP_ERROR;
    imap_skip_spaces(&c);
    if (r->kind == IMAP_RESP_UNTAGGED && c.p < c.end && *c.p >= '0' && *c.p <= '9') {
        if (!imap_number(&c, &r->number) || !imap_at(&c, ' '))
            return IMAP_RESP_ERROR;
        r->has_number = true;
        imap_skip_spaces(&c);
    }
    const char *kw = c.p;
    while (c.p < c.end && ((*c.p >= 'A' && *c.p <= 'Z') || (*c.p >= 'a' && *c.p <= 'z') ||
                           *c.p == '.' || (*c.p >= '0' && *c.p <= '9') || *c.p == '-'))
        c.p++;
    wn = (size_t)(c.p - kw);
    if (wn == 0 || wn >= sizeof r->keyword || !(imap_at_eol(&c) || imap_at(&c, ' ')))
        return IMAP_RESP_ERROR;
    for (size_t i = 0; i < wn; i++)
        r->keyword[i] = (char)toupper((unsigned char)kw[i]);
    r->keyword[wn] = '\0';
    static const struct {
        const char *name;
        enum imap_status status;
    } statuses[] = {{"OK", IMAP_STATUS_OK}, {"NO", IMAP_STATUS_NO}, {"BAD", IMAP_STATUS_BAD},
                    {"PREAUTH", IMAP_STATUS_PREAUTH}, {"BYE", IMAP_STATUS_BYE}};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (strcmp(r->keyword, statuses[i].name) == 0)
            r->status = statuses[i].status;
    if (r->kind == IMAP_RESP_TAGGED && (r->status == IMAP_STATUS_NONE ||
                                        r->status == IMAP_STATUS_PREAUTH ||
                                        r->status == IMAP_STATUS_BYE))
        return IMAP_RESP_ERROR;
    if (r->status != IMAP_STATUS_NONE) {
        if (r->has_number)
            return IMAP_RESP_ERROR;
        imap_resp_text(&c, r);
    } else if (strcmp(r->keyword, "CAPABILITY") == 0) {
        r->capabilities = imap_capa_parse(c.p, (size_t)(c.end - c.p));
        r->has_capabilities = true;
    } else if (strcmp(r->keyword, "SEARCH") == 0) {
        r->search = c.p;
        r->search_len = (size_t)(c.end - c.p);
        size_t pos = 0;
        unsigned long n;
        while (imap_resp_search_next(r, &pos, &n))
            ;
        if (pos != r->search_len)
            return IMAP_RESP_ERROR;
    } else if (strcmp(r->keyword, "FETCH") == 0) {
        if (!r->has_number || !imap_fetch_items(&c, r))
            return IMAP_RESP_ERROR;
        imap_skip_spaces(&c);
        if (!imap_at_eol(&c))
            return IMAP_RESP_ERROR;
    } else if ((strcmp(r->keyword, "EXISTS") == 0 || strcmp(r->keyword, "EXPUNGE") == 0 ||
                strcmp(r->keyword, "RECENT") == 0) && !r->has_number) {
        return IMAP_RESP_ERROR;
    }
    /* other untagged data (FLAGS, LIST, STATUS, ...) is not needed by the poller */
    *consumed_r = (size_t)extent;
    return IMAP_RESP_OK;
}

bool imap_resp_search_next(const struct imap_resp *r, size_t *pos, unsigned long *n)
{
    if (!r->search)
        return false;
    size_t i = *pos;
    while (i < r->search_len && r->search[i] == ' ')
        i++;
    if (i >= r->search_len || r->search[i] < '0' || r->search[i] > '9') {
        /* the end: only a line end (or a MODSEQ-style extension we do not ask for) remains */
        size_t k = i;
        while (k < r->search_len && (r->search[k] == '\r' || r->search[k] == '\n'))
            k++;
        *pos = k == r->search_len ? r->search_len : i;
        return false;
    }
    unsigned long v = 0;
    while (i < r->search_len && r->search[i] >= '0' && r->search[i] <= '9') {
        unsigned d = (unsigned)(r->search[i] - '0');
        if (v > (0xffffffffUL - d) / 10) {
            *pos = i;
            return false;
        }
        v = v * 10 + d;
        i++;
    }
    if (i < r->search_len && r->search[i] != ' ' && r->search[i] != '\r' && r->search[i] != '\n') {
        *pos = i;
        return false;
    }
    *n = v;
    *pos = i;
    return true;
}
