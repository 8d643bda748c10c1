/*
 * hdr: walking and masquerading the header section (see hdr.h).
 *
 * DESCRIPTION
 *   Field walking: a field is a name of printable ASCII other than ':' (optionally followed by
 *   spaces, the RFC 5322 4.5 obsolete form), a colon, and the rest of the line plus every
 *   following line that starts with a space or tab. Lines end in CRLF; a bare LF is accepted
 *   too, so a message that lost its CRs still walks.
 *
 *   Masquerading tokenizes the value of each address field (RFC 5322 3.4 address-list):
 *   atoms (dots included, so a dot-atom is one token), quoted strings, domain literals and the
 *   specials < > : ; @ , while white space, folding and comments (nested, with quoted-pairs)
 *   separate tokens and are never looked into. Addresses are then found structurally:
 *     - a group "display-name :" opens at a top-level ':' and closes at ';';
 *     - a mailbox is the text between top-level ',' ';' ':' (a ',' or ':' inside <...> is
 *       an obsolete route and does not split);
 *     - with angle brackets, the addr-spec is "local @ domain" right before the '>' (after an
 *       optional route "@a,@b:"); without, the whole mailbox must be "local @ domain".
 *   Only a domain that is one atom and equals a masqueraded host is replaced; the bytes around
 *   it (display names, comments, spacing, folding) are copied unchanged. A field whose
 *   comment, quoted string or literal is not closed is copied unchanged: guessing is worse
 *   than not masquerading. Obsolete forms split by white space or comments (a . b@c, or a
 *   local part mixing quoted strings and atoms) are left alone for the same reason.
 *
 * STANDARDS
 *   RFC 5322 2.2 (fields, folding), 3.2.2 (CFWS), 3.2.4 (quoted strings), 3.4 (address
 *   specification), 3.6.2 (From, Sender, Reply-To), 3.6.6 (Resent-*), 4.5 (obsolete forms).
 *
 * SECURITY
 *   The message comes from anyone. Parsing is linear, comments nest without recursion, and
 *   the token array grows with the field and is freed before the next one.
 */
#include "hdr.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

/* --- walking --------------------------------------------------------------------------------- */

static bool hdr_is_wsp(char c) { return c == ' ' || c == '\t'; }

/* End of the line at pos, without its CRLF/LF; *next is just after the line end. */
static size_t hdr_line_end(const char *msg, size_t len, size_t pos, size_t *next)
{
    const char *nl = memchr(msg + pos, '\n', len - pos);
    if (nl == NULL) {
        *next = len;
        return len;
    }
    size_t e = (size_t)(nl - msg);
    *next = e + 1;
    if (e > pos && msg[e - 1] == '\r')
        e--;
    return e;
}

static bool hdr_parse_field(const char *msg, size_t len, size_t pos, struct hdr_field *f)
{
    if (pos >= len)
        return false;
    size_t next;
    size_t eol = hdr_line_end(msg, len, pos, &next);
    size_t p = pos;
    while (p < eol && msg[p] > 32 && msg[p] < 127 && msg[p] != ':')
        p++;
    size_t name_end = p;
    if (name_end == pos)
        return false; /* empty line, continuation line, or junk */
    while (p < eol && hdr_is_wsp(msg[p]))
        p++;
    if (p == eol || msg[p] != ':')
        return false;
    f->name = msg + pos;
    f->name_len = name_end - pos;
    f->value = msg + p + 1;
    size_t last_eol = eol;
    while (next < len && hdr_is_wsp(msg[next]))
        last_eol = hdr_line_end(msg, len, next, &next);
    f->value_len = last_eol - (p + 1);
    f->start = pos;
    f->end = next;
    return true;
}

size_t hdr_section_len(const char *msg, size_t len)
{
    size_t pos = 0;
    struct hdr_field f;
    while (pos < len) {
        if (msg[pos] == '\n')
            return pos + 1;
        if (msg[pos] == '\r' && pos + 1 < len && msg[pos + 1] == '\n')
            return pos + 2;
        if (!hdr_parse_field(msg, len, pos, &f))
            return pos; /* not a field: the body starts here, without a separator */
        pos = f.end;
    }
    return len;
}

bool hdr_next(const char *msg, size_t hdr_len, size_t *pos, struct hdr_field *field)
{
    if (!hdr_parse_field(msg, hdr_len, *pos, field))
        return false;
    *pos = field->end;
    return true;
}

static bool hdr_name_is(const struct hdr_field *f, const char *name)
{
    return strlen(name) == f->name_len && strncasecmp(f->name, name, f->name_len) == 0;
}

unsigned hdr_count(const char *msg, size_t len, const char *name)
{
    size_t hdr_len = hdr_section_len(msg, len);
    size_t pos = 0;
    unsigned n = 0;
    struct hdr_field f;
    while (hdr_next(msg, hdr_len, &pos, &f))
        if (hdr_name_is(&f, name))
            n++;
    return n;
}

/* --- address-list tokens --------------------------------------------------------------------- */

enum hdr_tok_type {
    HDR_TOK_ATOM,
    HDR_TOK_QSTRING,
    HDR_TOK_LITERAL,
    HDR_TOK_SPECIAL,
};

struct hdr_tok {
    enum hdr_tok_type type;
    char special; /* for HDR_TOK_SPECIAL */
    size_t start; /* offsets into the field value */
    size_t end;
};

struct hdr_toks {
    struct hdr_tok *v;
    size_t n;
    size_t cap;
};

static bool hdr_is_special(char c) { return c != '\0' && strchr("()<>[]:;@\\,\"", c) != NULL; }

static bool hdr_is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Skips a comment starting at v[*i] == '('; false when it never closes. */
static bool hdr_skip_comment(const char *v, size_t n, size_t *i)
{
    size_t depth = 0;
    for (size_t p = *i; p < n; p++) {
        if (v[p] == '\\') {
            p++;
        } else if (v[p] == '(') {
            depth++;
        } else if (v[p] == ')') {
            if (--depth == 0) {
                *i = p + 1;
                return true;
            }
        }
    }
    return false;
}

/* Finds the closing byte of a quoted string or literal opened at v[i]; false if none. */
static bool hdr_skip_quoted(const char *v, size_t n, size_t *i, char close)
{
    for (size_t p = *i + 1; p < n; p++) {
        if (v[p] == '\\')
            p++;
        else if (v[p] == close) {
            *i = p + 1;
            return true;
        }
    }
    return false;
}

static void hdr_toks_push(struct hdr_toks *t, enum hdr_tok_type type, char special, size_t start,
                          size_t end)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 32;
        t->v = xreallocarray(t->v, t->cap, sizeof *t->v);
    }
    t->v[t->n++] = (struct hdr_tok){.type = type, .special = special, .start = start, .end = end};
}

/* Tokenizes an address-list value; false when a comment, quote or literal is unterminated. */
static bool hdr_tokenize(const char *v, size_t n, struct hdr_toks *t)
{
    size_t i = 0;
    while (i < n) {
        char c = v[i];
        size_t start = i;
        if (hdr_is_space(c)) {
            i++;
        } else if (c == '(') {
            if (!hdr_skip_comment(v, n, &i))
                return false;
        } else if (c == '"') {
            if (!hdr_skip_quoted(v, n, &i, '"'))
                return false;
            hdr_toks_push(t, HDR_TOK_QSTRING, 0, start, i);
        } else if (c == '[') {
            if (!hdr_skip_quoted(v, n, &i, ']'))
                return false;
            hdr_toks_push(t, HDR_TOK_LITERAL, 0, start, i);
        } else if (hdr_is_special(c)) {
            i++;
            hdr_toks_push(t, HDR_TOK_SPECIAL, c, start, i);
        } else {
            while (i < n && !hdr_is_space(v[i]) && !hdr_is_special(v[i]))
                i++;
            hdr_toks_push(t, HDR_TOK_ATOM, 0, start, i);
        }
    }
    return true;
}

static bool hdr_tok_is(const struct hdr_tok *t, char special)
{
    return t->type == HDR_TOK_SPECIAL && t->special == special;
}

/* "local @ domain" at tokens k..k+2, with the domain a single atom: returns the domain token. */
static const struct hdr_tok *hdr_addr_spec(const struct hdr_toks *t, size_t k)
{
    const struct hdr_tok *v = t->v;
    if ((v[k].type == HDR_TOK_ATOM || v[k].type == HDR_TOK_QSTRING) && hdr_tok_is(&v[k + 1], '@') &&
        v[k + 2].type == HDR_TOK_ATOM)
        return &v[k + 2];
    return NULL;
}

/* The domain token of the mailbox in tokens [s, e), or NULL. */
static const struct hdr_tok *hdr_mailbox_domain(const struct hdr_toks *t, size_t s, size_t e)
{
    size_t a = s;
    while (a < e && !hdr_tok_is(&t->v[a], '<'))
        a++;
    if (a == e)
        return e - s == 3 ? hdr_addr_spec(t, s) : NULL;
    size_t b = a + 1;
    while (b < e && !hdr_tok_is(&t->v[b], '>'))
        b++;
    if (b == e)
        return NULL;
    size_t l = a + 1;
    if (l < b && hdr_tok_is(&t->v[l], '@')) {
        /* obs-route "@a,@b:" before the addr-spec */
        while (l < b && !hdr_tok_is(&t->v[l], ':'))
            l++;
        if (l == b)
            return NULL;
        l++;
    }
    return b - l == 3 ? hdr_addr_spec(t, l) : NULL;
}

struct hdr_span {
    size_t start;
    size_t end;
};

static bool hdr_host_match(const char *d, size_t n, const char *const *hosts, size_t nhosts)
{
    for (size_t i = 0; i < nhosts; i++)
        if (strlen(hosts[i]) == n && strncasecmp(hosts[i], d, n) == 0)
            return true;
    return false;
}

/* Writes the field with masqueraded domains; returns how many were replaced. */
static unsigned hdr_masquerade_field(const char *msg, const struct hdr_field *f,
                                     const char *const *hosts, size_t nhosts, const char *to,
                                     struct buf *out)
{
    struct hdr_toks t = {0};
    unsigned count = 0;
    size_t copied = f->start;
    size_t voff = (size_t)(f->value - msg);
    if (hdr_tokenize(f->value, f->value_len, &t)) {
        size_t i = 0;
        while (i < t.n) {
            bool in_angle = false;
            size_t k = i;
            for (; k < t.n; k++) {
                if (hdr_tok_is(&t.v[k], '<'))
                    in_angle = true;
                else if (hdr_tok_is(&t.v[k], '>'))
                    in_angle = false;
                else if (!in_angle && (hdr_tok_is(&t.v[k], ',') || hdr_tok_is(&t.v[k], ';') ||
                                       hdr_tok_is(&t.v[k], ':')))
                    break;
            }
            /* A top-level ':' ends a group's display name; its members follow. */
            if (k == t.n || !hdr_tok_is(&t.v[k], ':')) {
                const struct hdr_tok *d = hdr_mailbox_domain(&t, i, k);
                if (d && hdr_host_match(f->value + d->start, d->end - d->start, hosts, nhosts)) {
                    buf_append(out, msg + copied, voff + d->start - copied);
                    buf_append_str(out, to);
                    copied = voff + d->end;
                    count++;
                }
            }
            i = k + 1;
        }
    }
    free(t.v);
    buf_append(out, msg + copied, f->end - copied);
    return count;
}

unsigned hdr_masquerade(const char *msg, size_t hdr_len, const char *const *hosts, size_t nhosts,
                        const char *to, struct buf *out)
{
    static const char *const fields[] = {"From",        "Sender",        "Reply-To",
                                         "Resent-From", "Resent-Sender", "Resent-Reply-To"};
    size_t pos = 0;
    unsigned count = 0;
    struct hdr_field f;
    while (hdr_next(msg, hdr_len, &pos, &f)) {
        bool masq = false;
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
            if (hdr_name_is(&f, fields[i]))
                masq = true;
        if (masq)
            count += hdr_masquerade_field(msg, &f, hosts, nhosts, to, out);
        else
            buf_append(out, msg + f.start, f.end - f.start);
    }
    buf_append(out, msg + pos, hdr_len - pos);
    return count;
}
