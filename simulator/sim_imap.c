/* sim_imap: ispsim's IMAP4rev1 engine (see sim_imap.h). */
#include "sim_imap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim_b64.h"
#include "str.h"
#include "xalloc.h"

#define SIM_IMAP_CAPS "IMAP4rev1 AUTH=PLAIN SASL-IR IDLE UIDPLUS UNSELECT LITERAL+"

/* ---- parsing -------------------------------------------------------------------------------- */

static bool sim_imap_atom_char(char c)
{
    return (unsigned char)c > ' ' && (unsigned char)c < 0x7f && c != '(' && c != ')' &&
           c != '{' && c != '"' && c != '\\' && c != '%' && c != '*' && c != ']';
}

/* Atoms here also take '*' and '%' (sets, LIST patterns), '\' (flags) and "[...]" sections. */
static bool sim_imap_word_char(char c)
{
    return sim_imap_atom_char(c) || c == '*' || c == '%' || c == '\\';
}

void sim_imap_cmd_free(struct sim_imap_cmd *cmd)
{
    free(cmd->text);
    cmd->text = NULL;
}

static void sim_imap_cmd_error(struct sim_imap_cmd *cmd, const char *text)
{
    if (!cmd->error[0])
        snprintf(cmd->error, sizeof cmd->error, "%s", text);
}

/* Reads a literal "{N}" or "{N+}" then CRLF at *p; its content goes to out. */
static bool sim_imap_literal(const char **p, const char *end, char **out, size_t *outlen)
{
    const char *q = *p + 1;
    size_t n = 0;
    if (q >= end || *q < '0' || *q > '9')
        return false;
    while (q < end && *q >= '0' && *q <= '9') {
        n = n * 10 + (size_t)(*q - '0');
        if (n > SIM_IMAP_CMD_MAX)
            return false;
        q++;
    }
    if (q < end && *q == '+')
        q++;
    if (end - q < 3 || q[0] != '}' || q[1] != '\r' || q[2] != '\n')
        return false;
    q += 3;
    if ((size_t)(end - q) < n || memchr(q, '\0', n))
        return false;
    memcpy(*out, q, n);
    (*out)[n] = '\0';
    *outlen = n;
    *out += n + 1;
    *p = q + n;
    return true;
}

void sim_imap_parse(const char *data, size_t len, struct sim_imap_cmd *cmd)
{
    memset(cmd, 0, sizeof *cmd);
    snprintf(cmd->tag, sizeof cmd->tag, "*");
    cmd->text = xmalloc(len * 2 + 2);
    char *w = cmd->text;
    const char *p = data, *end = data + len;
    /* tag */
    const char *t = p;
    while (p < end && sim_imap_atom_char(*p) && *p != '+')
        p++;
    if (p == t || (size_t)(p - t) >= sizeof cmd->tag || p >= end || *p != ' ') {
        sim_imap_cmd_error(cmd, "bad or missing tag");
        return;
    }
    memcpy(cmd->tag, t, (size_t)(p - t));
    cmd->tag[p - t] = '\0';
    p++;
    /* command name, and UID */
    for (int round = 0; round < 2; round++) {
        const char *n = p;
        while (p < end && ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
            p++;
        size_t nlen = (size_t)(p - n);
        if (nlen == 0 || nlen >= sizeof cmd->name || (p < end && *p != ' ')) {
            sim_imap_cmd_error(cmd, "bad command name");
            return;
        }
        for (size_t i = 0; i < nlen; i++)
            cmd->name[i] = (char)(n[i] >= 'a' && n[i] <= 'z' ? n[i] - 'a' + 'A' : n[i]);
        cmd->name[nlen] = '\0';
        if (p < end)
            p++;
        if (round == 0 && strcmp(cmd->name, "UID") == 0) {
            cmd->uid = true;
            if (p >= end) {
                sim_imap_cmd_error(cmd, "UID needs a command");
                return;
            }
            continue;
        }
        break;
    }
    if (p > data && p <= end && p[-1] == ' ' && p == end) {
        sim_imap_cmd_error(cmd, "trailing blank");
        return;
    }
    /* arguments */
    int depth = 0;
    while (p < end) {
        if (cmd->ntoks >= SIM_IMAP_MAX_TOKENS) {
            sim_imap_cmd_error(cmd, "too many arguments");
            return;
        }
        struct sim_imap_tok *tok = &cmd->toks[cmd->ntoks];
        if (*p == '(' || *p == ')') {
            tok->type = *p == '(' ? SIM_IMAP_LPAREN : SIM_IMAP_RPAREN;
            depth += *p == '(' ? 1 : -1;
            if (depth < 0) {
                sim_imap_cmd_error(cmd, "unbalanced parentheses");
                return;
            }
            tok->s = *p == '(' ? "(" : ")";
            tok->len = 1;
            p++;
        } else if (*p == '"') {
            tok->type = SIM_IMAP_STRING;
            tok->s = w;
            p++;
            size_t n = 0;
            while (p < end && *p != '"') {
                if (*p == '\\') {
                    if (p + 1 >= end || (p[1] != '"' && p[1] != '\\')) {
                        sim_imap_cmd_error(cmd, "bad quoted string");
                        return;
                    }
                    p++;
                }
                if (*p == '\r' || *p == '\n' || *p == '\0') {
                    sim_imap_cmd_error(cmd, "bad quoted string");
                    return;
                }
                w[n++] = *p++;
            }
            if (p >= end) {
                sim_imap_cmd_error(cmd, "unterminated quoted string");
                return;
            }
            p++;
            w[n] = '\0';
            tok->len = n;
            w += n + 1;
        } else if (*p == '{') {
            tok->type = SIM_IMAP_STRING;
            tok->s = w;
            if (!sim_imap_literal(&p, end, &w, &tok->len)) {
                sim_imap_cmd_error(cmd, "bad literal");
                return;
            }
        } else if (sim_imap_word_char(*p) || *p == '[') {
            tok->type = SIM_IMAP_ATOM;
            tok->s = w;
            size_t n = 0;
            while (p < end && (sim_imap_word_char(*p) || *p == '[')) {
                if (*p == '[') {
                    /* a section: everything up to the matching ']' (blanks and parens too) */
                    while (p < end && *p != ']' && *p != '\r' && *p != '\n')
                        w[n++] = *p++;
                    if (p >= end || *p != ']') {
                        sim_imap_cmd_error(cmd, "unterminated [section]");
                        return;
                    }
                    w[n++] = *p++;
                    continue;
                }
                w[n++] = *p++;
            }
            w[n] = '\0';
            tok->len = n;
            w += n + 1;
        } else {
            sim_imap_cmd_error(cmd, "unexpected character");
            return;
        }
        cmd->ntoks++;
        if (p < end) {
            if (*p == ' ') {
                p++;
                if (p >= end || *p == ' ') {
                    sim_imap_cmd_error(cmd, "extra blank");
                    return;
                }
            } else if (*p != ')' && tok->type != SIM_IMAP_LPAREN) {
                sim_imap_cmd_error(cmd, "missing blank between arguments");
                return;
            }
        }
    }
    if (depth != 0)
        sim_imap_cmd_error(cmd, "unbalanced parentheses");
}

static bool sim_imap_num(const char **p, unsigned *v)
{
    const char *q = *p;
    unsigned long n = 0;
    if (*q < '1' || *q > '9')
        return false;
    while (*q >= '0' && *q <= '9') {
        n = n * 10 + (unsigned long)(*q - '0');
        if (n > 0xffffffffUL)
            return false;
        q++;
    }
    *v = (unsigned)n;
    *p = q;
    return true;
}

/* One "n", "*", "n:m" item; star may be 0 (empty mailbox). */
static bool sim_imap_set_item(const char **p, unsigned star, unsigned *lo, unsigned *hi)
{
    unsigned a, b;
    if (**p == '*') {
        a = star;
        (*p)++;
    } else if (!sim_imap_num(p, &a)) {
        return false;
    }
    b = a;
    if (**p == ':') {
        (*p)++;
        if (**p == '*') {
            b = star;
            (*p)++;
        } else if (!sim_imap_num(p, &b)) {
            return false;
        }
    }
    *lo = a < b ? a : b;
    *hi = a < b ? b : a;
    return true;
}

bool sim_imap_set_valid(const char *set)
{
    const char *p = set;
    unsigned lo, hi;
    for (;;) {
        if (!sim_imap_set_item(&p, 1, &lo, &hi))
            return false;
        if (*p == '\0')
            return true;
        if (*p++ != ',')
            return false;
    }
}

bool sim_imap_set_has(const char *set, unsigned v, unsigned star)
{
    const char *p = set;
    unsigned lo, hi;
    while (sim_imap_set_item(&p, star, &lo, &hi)) {
        if (v >= lo && v <= hi)
            return true;
        if (*p != ',')
            break;
        p++;
    }
    return false;
}

/* ---- the session ------------------------------------------------------------------------------ */

static void sim_imap_violation(struct sim_imap_session *s, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sim_imap_violation(struct sim_imap_session *s, const char *kind, const char *fmt, ...)
{
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (s->hooks->violation)
        s->hooks->violation(s->hooks->ctx, kind, detail);
}

/* One response line (CRLF added), recorded. */
static void sim_imap_line(struct sim_imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sim_imap_line(struct sim_imap_session *s, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    buf_append_str(&s->out, line);
    buf_append(&s->out, "\r\n", 2);
    if (s->hooks->transcript)
        s->hooks->transcript(s->hooks->ctx, 's', line, strlen(line));
}

void sim_imap_init(struct sim_imap_session *s, const struct sim_imap_hooks *hooks,
                   const char *host, bool offer_starttls, bool tls)
{
    memset(s, 0, sizeof *s);
    s->hooks = hooks;
    s->offer_starttls = offer_starttls;
    s->tls = tls;
    buf_init(&s->in, SIM_IMAP_CMD_MAX + SIM_IMAP_LINE_MAX);
    buf_init(&s->cmd, SIM_IMAP_CMD_MAX + SIM_IMAP_LINE_MAX);
    buf_init(&s->out, 0);
    sim_imap_line(s, "* OK [CAPABILITY " SIM_IMAP_CAPS "%s] %s IMAP4rev1 ispsim ready",
                  offer_starttls && !tls ? " STARTTLS" : "", host);
}

void sim_imap_free(struct sim_imap_session *s)
{
    free(s->msgs);
    s->msgs = NULL;
    buf_free(&s->in);
    buf_free(&s->cmd);
    buf_free(&s->out);
}

static void sim_imap_caps(struct sim_imap_session *s)
{
    sim_imap_line(s, "* CAPABILITY " SIM_IMAP_CAPS "%s",
                  s->offer_starttls && !s->tls ? " STARTTLS" : "");
}

static void sim_imap_flags_text(unsigned flags, char *out, size_t size)
{
    static const struct { unsigned bit; const char *name; } names[] = {
        {SIM_IMAP_ANSWERED, "\\Answered"}, {SIM_IMAP_FLAGGED, "\\Flagged"},
        {SIM_IMAP_DELETED, "\\Deleted"},   {SIM_IMAP_SEEN, "\\Seen"},
        {SIM_IMAP_DRAFT, "\\Draft"}};
    size_t n = 0;
    out[n++] = '(';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(flags & names[i].bit))
            continue;
        int k = snprintf(out + n, size - n, "%s%s", n > 1 ? " " : "", names[i].name);
        if (k < 0 || (size_t)k >= size - n)
            break;
        n += (size_t)k;
    }
    if (n + 2 <= size) {
        out[n++] = ')';
        out[n] = '\0';
    }
}

static bool sim_imap_flag_bit(const struct sim_imap_tok *t, unsigned *bit)
{
    static const struct { unsigned bit; const char *name; } names[] = {
        {SIM_IMAP_ANSWERED, "\\Answered"}, {SIM_IMAP_FLAGGED, "\\Flagged"},
        {SIM_IMAP_DELETED, "\\Deleted"},   {SIM_IMAP_SEEN, "\\Seen"},
        {SIM_IMAP_DRAFT, "\\Draft"}};
    if (t->type != SIM_IMAP_ATOM)
        return false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(t->s, names[i].name) == 0) {
            *bit = names[i].bit;
            return true;
        }
    /* keywords are accepted and not kept (PERMANENTFLAGS has no \*) */
    *bit = 0;
    return t->s[0] != '\\';
}

static void sim_imap_snapshot(struct sim_imap_session *s)
{
    free(s->msgs);
    s->msgs = NULL;
    s->n = 0;
    s->hooks->snapshot(s->hooks->ctx, &s->msgs, &s->n, &s->uidvalidity, &s->uidnext);
}

void sim_imap_check(struct sim_imap_session *s)
{
    if (s->state != SIM_IMAP_SELECTED)
        return;
    /* new messages only: what this session knows stays (expunges by others show at SELECT) */
    struct sim_imap_msg *now = NULL;
    int n = 0;
    unsigned v, next;
    s->hooks->snapshot(s->hooks->ctx, &now, &n, &v, &next);
    unsigned last = s->n ? s->msgs[s->n - 1].uid : 0;
    int added = 0;
    for (int i = 0; i < n; i++)
        if (now[i].uid > last)
            added++;
    if (added) {
        s->msgs = xreallocarray(s->msgs, (size_t)s->n + (size_t)added, sizeof *s->msgs);
        for (int i = 0; i < n; i++)
            if (now[i].uid > last)
                s->msgs[s->n++] = now[i];
        s->uidnext = next;
        sim_imap_line(s, "* %d EXISTS", s->n);
        sim_imap_line(s, "* %d RECENT", added);
    }
    free(now);
}

static bool sim_imap_is_inbox(const struct sim_imap_tok *t)
{
    return (t->type == SIM_IMAP_ATOM || t->type == SIM_IMAP_STRING) && strcasecmp(t->s, "INBOX") == 0;
}

static bool sim_imap_astring(const struct sim_imap_tok *t)
{
    return t->type == SIM_IMAP_ATOM || t->type == SIM_IMAP_STRING;
}

static void sim_imap_bad(struct sim_imap_session *s, const char *tag, const char *text)
{
    sim_imap_violation(s, "syntax", "%s", text);
    sim_imap_line(s, "%s BAD %s", tag, text);
}

static void sim_imap_select(struct sim_imap_session *s, const struct sim_imap_cmd *c)
{
    bool examine = strcmp(c->name, "EXAMINE") == 0;
    if (c->ntoks != 1 || !sim_imap_astring(&c->toks[0]))
        return sim_imap_bad(s, c->tag, "SELECT mailbox");
    if (!sim_imap_is_inbox(&c->toks[0])) {
        s->state = SIM_IMAP_AUTH;
        sim_imap_line(s, "%s NO [NONEXISTENT] only INBOX here", c->tag);
        return;
    }
    sim_imap_snapshot(s);
    s->state = SIM_IMAP_SELECTED;
    s->readonly = examine;
    int unseen = 0;
    for (int i = 0; i < s->n && !unseen; i++)
        if (!(s->msgs[i].flags & SIM_IMAP_SEEN))
            unseen = i + 1;
    sim_imap_line(s, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
    sim_imap_line(s, "* OK [PERMANENTFLAGS (%s)] flags kept",
                  examine ? "" : "\\Answered \\Flagged \\Deleted \\Seen \\Draft");
    sim_imap_line(s, "* %d EXISTS", s->n);
    sim_imap_line(s, "* 0 RECENT");
    if (unseen)
        sim_imap_line(s, "* OK [UNSEEN %d] first unseen", unseen);
    sim_imap_line(s, "* OK [UIDVALIDITY %u] uids valid", s->uidvalidity);
    sim_imap_line(s, "* OK [UIDNEXT %u] next uid", s->uidnext);
    sim_imap_line(s, "%s OK [%s] %s completed", c->tag, examine ? "READ-ONLY" : "READ-WRITE",
                  c->name);
}

static void sim_imap_list(struct sim_imap_session *s, const struct sim_imap_cmd *c)
{
    if (c->ntoks != 2 || !sim_imap_astring(&c->toks[0]) || !sim_imap_astring(&c->toks[1]))
        return sim_imap_bad(s, c->tag, "LIST reference pattern");
    const char *pat = c->toks[1].s;
    if (!pat[0]) {
        sim_imap_line(s, "* %s (\\Noselect) \"/\" \"\"", c->name);
    } else if (strcmp(pat, "*") == 0 || strcmp(pat, "%") == 0 || strcasecmp(pat, "INBOX") == 0 ||
               strcasecmp(pat, "INBOX*") == 0 || strcasecmp(pat, "INBOX%") == 0) {
        sim_imap_line(s, "* %s (\\HasNoChildren) \"/\" INBOX", c->name);
    }
    sim_imap_line(s, "%s OK %s completed", c->tag, c->name);
}

static void sim_imap_status(struct sim_imap_session *s, const struct sim_imap_cmd *c)
{
    if (c->ntoks < 3 || !sim_imap_astring(&c->toks[0]) || c->toks[1].type != SIM_IMAP_LPAREN ||
        c->toks[c->ntoks - 1].type != SIM_IMAP_RPAREN)
        return sim_imap_bad(s, c->tag, "STATUS mailbox (items)");
    if (!sim_imap_is_inbox(&c->toks[0])) {
        sim_imap_line(s, "%s NO [NONEXISTENT] only INBOX here", c->tag);
        return;
    }
    struct sim_imap_msg *m = NULL;
    int n = 0;
    unsigned v, next;
    s->hooks->snapshot(s->hooks->ctx, &m, &n, &v, &next);
    int unseen = 0;
    for (int i = 0; i < n; i++)
        if (!(m[i].flags & SIM_IMAP_SEEN))
            unseen++;
    free(m);
    struct buf b;
    buf_init(&b, 0);
    for (int i = 2; i < c->ntoks - 1; i++) {
        const char *it = c->toks[i].s;
        if (c->toks[i].type != SIM_IMAP_ATOM)
            it = "";
        if (strcasecmp(it, "MESSAGES") == 0)
            buf_printf(&b, "%sMESSAGES %d", b.len ? " " : "", n);
        else if (strcasecmp(it, "RECENT") == 0)
            buf_printf(&b, "%sRECENT 0", b.len ? " " : "");
        else if (strcasecmp(it, "UIDNEXT") == 0)
            buf_printf(&b, "%sUIDNEXT %u", b.len ? " " : "", next);
        else if (strcasecmp(it, "UIDVALIDITY") == 0)
            buf_printf(&b, "%sUIDVALIDITY %u", b.len ? " " : "", v);
        else if (strcasecmp(it, "UNSEEN") == 0)
            buf_printf(&b, "%sUNSEEN %d", b.len ? " " : "", unseen);
        else {
            buf_free(&b);
            return sim_imap_bad(s, c->tag, "unknown STATUS item");
        }
    }
    sim_imap_line(s, "* STATUS INBOX (%s)", b.data ? b.data : "");
    buf_free(&b);
    sim_imap_line(s, "%s OK STATUS completed", c->tag);
}

/* The set's messages, by sequence number or uid: marks[i] for msgs[i]. */
static bool sim_imap_select_set(struct sim_imap_session *s, const char *set, bool uid, bool *marks)
{
    if (!sim_imap_set_valid(set))
        return false;
    unsigned star = uid ? (s->n ? s->msgs[s->n - 1].uid : 0) : (unsigned)s->n;
    for (int i = 0; i < s->n; i++)
        marks[i] = sim_imap_set_has(set, uid ? s->msgs[i].uid : (unsigned)i + 1, star);
    return true;
}

/* false after a BAD reply */
static bool sim_imap_expunge(struct sim_imap_session *s, const struct sim_imap_cmd *c, bool silent)
{
    bool *marks = xcalloc((size_t)s->n + 1, sizeof *marks);
    if (c && c->uid) {
        if (c->ntoks != 1 || c->toks[0].type != SIM_IMAP_ATOM ||
            !sim_imap_select_set(s, c->toks[0].s, true, marks)) {
            free(marks);
            sim_imap_bad(s, c->tag, "UID EXPUNGE set");
            return false;
        }
    } else {
        for (int i = 0; i < s->n; i++)
            marks[i] = true;
    }
    int i = 0;
    bool any = false;
    while (i < s->n) {
        if (!marks[i] || !(s->msgs[i].flags & SIM_IMAP_DELETED)) {
            i++;
            continue;
        }
        any = true;
        s->hooks->expunge(s->hooks->ctx, s->msgs[i].uid);
        if (!silent)
            sim_imap_line(s, "* %d EXPUNGE", i + 1);
        memmove(&s->msgs[i], &s->msgs[i + 1], (size_t)(s->n - i - 1) * sizeof *s->msgs);
        memmove(&marks[i], &marks[i + 1], (size_t)(s->n - i - 1) * sizeof *marks);
        s->n--;
    }
    free(marks);
    if (any && s->hooks->expunged)
        s->hooks->expunged(s->hooks->ctx);
    return true;
}

/* One search key at toks[*i]; true when msg matches. false in *ok on a syntax error. */
static bool sim_imap_search_key(struct sim_imap_session *s, const struct sim_imap_cmd *c, int *i,
                                int idx, bool *ok)
{
    if (*i >= c->ntoks || c->toks[*i].type != SIM_IMAP_ATOM) {
        *ok = false;
        return false;
    }
    const char *k = c->toks[(*i)++].s;
    unsigned f = s->msgs[idx].flags;
    if (strcasecmp(k, "ALL") == 0)
        return true;
    if (strcasecmp(k, "SEEN") == 0)
        return f & SIM_IMAP_SEEN;
    if (strcasecmp(k, "UNSEEN") == 0)
        return !(f & SIM_IMAP_SEEN);
    if (strcasecmp(k, "DELETED") == 0)
        return f & SIM_IMAP_DELETED;
    if (strcasecmp(k, "UNDELETED") == 0)
        return !(f & SIM_IMAP_DELETED);
    if (strcasecmp(k, "FLAGGED") == 0)
        return f & SIM_IMAP_FLAGGED;
    if (strcasecmp(k, "UNFLAGGED") == 0)
        return !(f & SIM_IMAP_FLAGGED);
    if (strcasecmp(k, "ANSWERED") == 0)
        return f & SIM_IMAP_ANSWERED;
    if (strcasecmp(k, "UNANSWERED") == 0)
        return !(f & SIM_IMAP_ANSWERED);
    if (strcasecmp(k, "NEW") == 0 || strcasecmp(k, "RECENT") == 0)
        return false;
    if (strcasecmp(k, "OLD") == 0)
        return true;
    if (strcasecmp(k, "NOT") == 0)
        return !sim_imap_search_key(s, c, i, idx, ok);
    if (strcasecmp(k, "UID") == 0) {
        if (*i >= c->ntoks || !sim_imap_set_valid(c->toks[*i].s)) {
            *ok = false;
            return false;
        }
        unsigned star = s->n ? s->msgs[s->n - 1].uid : 0;
        return sim_imap_set_has(c->toks[(*i)++].s, s->msgs[idx].uid, star);
    }
    if (sim_imap_set_valid(k))
        return sim_imap_set_has(k, (unsigned)idx + 1, (unsigned)s->n);
    *ok = false;
    return false;
}

static void sim_imap_search(struct sim_imap_session *s, const struct sim_imap_cmd *c)
{
    int first = 0;
    if (c->ntoks >= 2 && c->toks[0].type == SIM_IMAP_ATOM && strcasecmp(c->toks[0].s, "CHARSET") == 0) {
        if (strcasecmp(c->toks[1].s, "US-ASCII") != 0 && strcasecmp(c->toks[1].s, "UTF-8") != 0) {
            sim_imap_line(s, "%s NO [BADCHARSET (US-ASCII UTF-8)] charset", c->tag);
            return;
        }
        first = 2;
    }
    if (first >= c->ntoks)
        return sim_imap_bad(s, c->tag, "SEARCH needs a key");
    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b, "* SEARCH");
    bool ok = true;
    /* an empty mailbox still needs the keys checked */
    int nmsg = s->n ? s->n : 0;
    if (nmsg == 0) {
        static struct sim_imap_msg none;
        struct sim_imap_msg *save = s->msgs;
        int save_n = s->n;
        s->msgs = &none;
        s->n = 1;
        int i = first;
        while (i < c->ntoks && ok)
            (void)sim_imap_search_key(s, c, &i, 0, &ok);
        s->msgs = save;
        s->n = save_n;
    }
    for (int m = 0; m < nmsg && ok; m++) {
        int i = first;
        bool all = true;
        while (i < c->ntoks && ok)
            if (!sim_imap_search_key(s, c, &i, m, &ok))
                all = false;
        if (all && ok)
            buf_printf(&b, " %u", c->uid ? s->msgs[m].uid : (unsigned)m + 1);
    }
    if (!ok) {
        buf_free(&b);
        return sim_imap_bad(s, c->tag, "unknown or bad SEARCH key");
    }
    buf_append(&s->out, b.data, b.len);
    buf_append(&s->out, "\r\n", 2);
    if (s->hooks->transcript)
        s->hooks->transcript(s->hooks->ctx, 's', b.data, b.len > 1000 ? 1000 : b.len);
    buf_free(&b);
    sim_imap_line(s, "%s OK %sSEARCH completed", c->tag, c->uid ? "UID " : "");
}

/* FETCH items */
enum { SIM_F_FLAGS = 1, SIM_F_UID = 2, SIM_F_SIZE = 4, SIM_F_DATE = 8 };

struct sim_imap_part {
    char name[64];      /* as echoed: "BODY[]", "BODY[HEADER]", "RFC822", "BODY[]<0>" */
    int which;          /* 0 all, 1 header, 2 text */
    bool peek;
    bool partial;
    unsigned long off, count;
};

static bool sim_imap_part_parse(const char *item, struct sim_imap_part *p)
{
    memset(p, 0, sizeof *p);
    if (strcasecmp(item, "RFC822") == 0) {
        snprintf(p->name, sizeof p->name, "RFC822");
        return true;
    }
    if (strcasecmp(item, "RFC822.HEADER") == 0) {
        snprintf(p->name, sizeof p->name, "RFC822.HEADER");
        p->which = 1;
        p->peek = true;
        return true;
    }
    if (strcasecmp(item, "RFC822.TEXT") == 0) {
        snprintf(p->name, sizeof p->name, "RFC822.TEXT");
        p->which = 2;
        return true;
    }
    const char *q;
    if (strncasecmp(item, "BODY.PEEK[", 10) == 0) {
        p->peek = true;
        q = item + 10;
    } else if (strncasecmp(item, "BODY[", 5) == 0) {
        q = item + 5;
    } else {
        return false;
    }
    const char *close = strchr(q, ']');
    if (!close)
        return false;
    size_t slen = (size_t)(close - q);
    if (slen == 0)
        p->which = 0;
    else if (slen == 6 && strncasecmp(q, "HEADER", 6) == 0)
        p->which = 1;
    else if (slen == 4 && strncasecmp(q, "TEXT", 4) == 0)
        p->which = 2;
    else
        return false;
    const char *rest = close + 1;
    if (*rest == '<') {
        char *end;
        errno = 0;
        p->off = strtoul(rest + 1, &end, 10);
        if (errno || end == rest + 1 || *end != '.')
            return false;
        const char *cnt = end + 1;
        p->count = strtoul(cnt, &end, 10);
        if (errno || end == cnt || *end != '>' || end[1] || p->count == 0)
            return false;
        p->partial = true;
    } else if (*rest) {
        return false;
    }
    snprintf(p->name, sizeof p->name, "BODY[%.*s]", (int)slen, q);
    if (p->partial) {
        size_t l = strlen(p->name);
        snprintf(p->name + l, sizeof p->name - l, "<%lu>", p->off);
    }
    return true;
}

#define SIM_IMAP_MAX_PARTS 8

static void sim_imap_fetch(struct sim_imap_session *s, const struct sim_imap_cmd *c)
{
    if (c->ntoks < 2 || c->toks[0].type != SIM_IMAP_ATOM)
        return sim_imap_bad(s, c->tag, "FETCH set items");
    unsigned want = c->uid ? SIM_F_UID : 0;
    struct sim_imap_part parts[SIM_IMAP_MAX_PARTS];
    int nparts = 0;
    int from = 1, to = c->ntoks;
    if (c->toks[1].type == SIM_IMAP_LPAREN) {
        if (c->toks[c->ntoks - 1].type != SIM_IMAP_RPAREN)
            return sim_imap_bad(s, c->tag, "FETCH item list");
        from = 2;
        to = c->ntoks - 1;
    } else if (c->ntoks != 2) {
        return sim_imap_bad(s, c->tag, "FETCH takes one item or a list");
    }
    if (from >= to)
        return sim_imap_bad(s, c->tag, "FETCH needs an item");
    for (int i = from; i < to; i++) {
        const char *it = c->toks[i].s;
        if (c->toks[i].type != SIM_IMAP_ATOM)
            return sim_imap_bad(s, c->tag, "bad FETCH item");
        if (strcasecmp(it, "FLAGS") == 0)
            want |= SIM_F_FLAGS;
        else if (strcasecmp(it, "UID") == 0)
            want |= SIM_F_UID;
        else if (strcasecmp(it, "RFC822.SIZE") == 0)
            want |= SIM_F_SIZE;
        else if (strcasecmp(it, "INTERNALDATE") == 0)
            want |= SIM_F_DATE;
        else if ((strcasecmp(it, "FAST") == 0 || strcasecmp(it, "ALL") == 0 ||
                  strcasecmp(it, "FULL") == 0) && from == 1)
            want |= SIM_F_FLAGS | SIM_F_SIZE | SIM_F_DATE; /* no ENVELOPE or BODY here */
        else if (nparts < SIM_IMAP_MAX_PARTS && sim_imap_part_parse(it, &parts[nparts]))
            nparts++;
        else
            return sim_imap_bad(s, c->tag, "unknown FETCH item");
    }
    bool *marks = xcalloc((size_t)s->n + 1, sizeof *marks);
    if (!sim_imap_select_set(s, c->toks[0].s, c->uid, marks)) {
        free(marks);
        return sim_imap_bad(s, c->tag, "bad sequence set");
    }
    for (int m = 0; m < s->n; m++) {
        if (!marks[m])
            continue;
        struct sim_imap_msg *msg = &s->msgs[m];
        char *data = NULL;
        size_t len = 0;
        if (nparts && s->hooks->read(s->hooks->ctx, msg->uid, &data, &len) < 0) {
            sim_imap_line(s, "* %d FETCH (UID %u)", m + 1, msg->uid);
            continue;
        }
        unsigned before = msg->flags;
        for (int p = 0; p < nparts; p++)
            if (!parts[p].peek && !s->readonly)
                msg->flags |= SIM_IMAP_SEEN;
        if (msg->flags != before)
            s->hooks->set_flags(s->hooks->ctx, msg->uid, msg->flags);
        unsigned show = want | (msg->flags != before ? SIM_F_FLAGS : 0);
        struct buf line;
        buf_init(&line, 0);
        buf_printf(&line, "* %d FETCH (", m + 1);
        bool sp = false;
        if (show & SIM_F_UID) {
            buf_printf(&line, "UID %u", msg->uid);
            sp = true;
        }
        if (show & SIM_F_FLAGS) {
            char f[96];
            sim_imap_flags_text(msg->flags, f, sizeof f);
            buf_printf(&line, "%sFLAGS %s", sp ? " " : "", f);
            sp = true;
        }
        if (show & SIM_F_SIZE) {
            buf_printf(&line, "%sRFC822.SIZE %zu", sp ? " " : "", msg->size);
            sp = true;
        }
        if (show & SIM_F_DATE) {
            buf_printf(&line, "%sINTERNALDATE \"01-Jan-2000 00:00:00 +0000\"", sp ? " " : "");
            sp = true;
        }
        /* the first line goes to the transcript, the literals do not */
        if (s->hooks->transcript)
            s->hooks->transcript(s->hooks->ctx, 's', line.data, line.len > 1000 ? 1000 : line.len);
        buf_append(&s->out, line.data, line.len);
        buf_free(&line);
        size_t hdr_end = len;
        for (size_t i = 0; i + 3 < len; i++)
            if (memcmp(data + i, "\r\n\r\n", 4) == 0) {
                hdr_end = i + 4;
                break;
            }
        for (int p = 0; p < nparts; p++) {
            const char *from_p = data;
            size_t n = len;
            if (parts[p].which == 1) {
                n = hdr_end;
            } else if (parts[p].which == 2) {
                from_p = data + hdr_end;
                n = len - hdr_end;
            }
            if (parts[p].partial) {
                size_t off = parts[p].off < n ? parts[p].off : n;
                from_p += off;
                n -= off;
                if (n > parts[p].count)
                    n = parts[p].count;
            }
            buf_printf(&s->out, "%s%s {%zu}\r\n", sp ? " " : "", parts[p].name, n);
            buf_append(&s->out, from_p, n);
            sp = true;
        }
        buf_append(&s->out, ")\r\n", 3);
        free(data);
    }
    free(marks);
    sim_imap_line(s, "%s OK %sFETCH completed", c->tag, c->uid ? "UID " : "");
}

static void sim_imap_store(struct sim_imap_session *s, const struct sim_imap_cmd *c)
{
    if (c->ntoks < 3 || c->toks[0].type != SIM_IMAP_ATOM || c->toks[1].type != SIM_IMAP_ATOM)
        return sim_imap_bad(s, c->tag, "STORE set item flags");
    const char *item = c->toks[1].s;
    int mode = 0; /* 0 set, 1 add, -1 remove */
    if (*item == '+') {
        mode = 1;
        item++;
    } else if (*item == '-') {
        mode = -1;
        item++;
    }
    bool silent;
    if (strcasecmp(item, "FLAGS") == 0)
        silent = false;
    else if (strcasecmp(item, "FLAGS.SILENT") == 0)
        silent = true;
    else
        return sim_imap_bad(s, c->tag, "STORE item must be [+-]FLAGS[.SILENT]");
    unsigned bits = 0;
    int from = 2, to = c->ntoks;
    if (c->toks[2].type == SIM_IMAP_LPAREN) {
        if (c->toks[c->ntoks - 1].type != SIM_IMAP_RPAREN)
            return sim_imap_bad(s, c->tag, "STORE flag list");
        from = 3;
        to = c->ntoks - 1;
    }
    for (int i = from; i < to; i++) {
        unsigned b;
        if (!sim_imap_flag_bit(&c->toks[i], &b))
            return sim_imap_bad(s, c->tag, "unknown flag");
        bits |= b;
    }
    if (s->readonly) {
        sim_imap_line(s, "%s NO mailbox is read-only (EXAMINE)", c->tag);
        return;
    }
    bool *marks = xcalloc((size_t)s->n + 1, sizeof *marks);
    if (!sim_imap_select_set(s, c->toks[0].s, c->uid, marks)) {
        free(marks);
        return sim_imap_bad(s, c->tag, "bad sequence set");
    }
    for (int m = 0; m < s->n; m++) {
        if (!marks[m])
            continue;
        struct sim_imap_msg *msg = &s->msgs[m];
        unsigned f = mode == 0 ? bits : mode > 0 ? (msg->flags | bits) : (msg->flags & ~bits);
        if (f != msg->flags) {
            msg->flags = f;
            s->hooks->set_flags(s->hooks->ctx, msg->uid, f);
        }
        if (!silent) {
            char ft[96];
            sim_imap_flags_text(msg->flags, ft, sizeof ft);
            if (c->uid)
                sim_imap_line(s, "* %d FETCH (UID %u FLAGS %s)", m + 1, msg->uid, ft);
            else
                sim_imap_line(s, "* %d FETCH (FLAGS %s)", m + 1, ft);
        }
    }
    free(marks);
    sim_imap_line(s, "%s OK %sSTORE completed", c->tag, c->uid ? "UID " : "");
}

/* AUTHENTICATE PLAIN's response (base64) */
static void sim_imap_auth_response(struct sim_imap_session *s, const char *tag, const char *b64,
                                   size_t len)
{
    char dec[1024];
    size_t dlen;
    if (len == 1 && b64[0] == '*') {
        sim_imap_line(s, "%s BAD AUTHENTICATE cancelled", tag);
        return;
    }
    if (sim_b64_decode(b64, len, dec, sizeof dec, &dlen) < 0) {
        sim_imap_bad(s, tag, "AUTHENTICATE data is not base64");
        return;
    }
    const char *nul1 = memchr(dec, '\0', dlen);
    const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', dlen - (size_t)(nul1 + 1 - dec)) : NULL;
    if (!nul2 || memchr(nul2 + 1, '\0', dlen - (size_t)(nul2 + 1 - dec))) {
        sim_imap_bad(s, tag, "bad PLAIN response");
        return;
    }
    if (s->hooks->login(s->hooks->ctx, nul1 + 1, nul2 + 1) < 0) {
        sim_imap_line(s, "%s NO [AUTHENTICATIONFAILED] invalid user or password", tag);
        return;
    }
    s->state = SIM_IMAP_AUTH;
    sim_imap_line(s, "%s OK [CAPABILITY " SIM_IMAP_CAPS "] AUTHENTICATE completed", tag);
}

static bool sim_imap_state_ok(struct sim_imap_session *s, const struct sim_imap_cmd *c,
                              enum sim_imap_state need)
{
    bool ok = need == SIM_IMAP_AUTH ? s->state == SIM_IMAP_AUTH || s->state == SIM_IMAP_SELECTED
                                    : s->state == need;
    if (!ok) {
        sim_imap_violation(s, "sequence", "%s%s in the wrong state", c->uid ? "UID " : "", c->name);
        sim_imap_line(s, "%s BAD %s not allowed now", c->tag, c->name);
    }
    return ok;
}

static void sim_imap_execute(struct sim_imap_session *s, struct sim_imap_cmd *c)
{
    const char *n = c->name;
    if (c->uid && strcmp(n, "FETCH") != 0 && strcmp(n, "SEARCH") != 0 &&
        strcmp(n, "STORE") != 0 && strcmp(n, "EXPUNGE") != 0)
        return sim_imap_bad(s, c->tag, "UID FETCH, SEARCH, STORE or EXPUNGE");
    if (strcmp(n, "CAPABILITY") == 0) {
        sim_imap_caps(s);
        sim_imap_line(s, "%s OK CAPABILITY completed", c->tag);
    } else if (strcmp(n, "NOOP") == 0 || strcmp(n, "CHECK") == 0) {
        if (strcmp(n, "CHECK") == 0 && !sim_imap_state_ok(s, c, SIM_IMAP_SELECTED))
            return;
        sim_imap_check(s);
        sim_imap_line(s, "%s OK %s completed", c->tag, n);
    } else if (strcmp(n, "LOGOUT") == 0) {
        sim_imap_line(s, "* BYE ispsim logging out");
        sim_imap_line(s, "%s OK LOGOUT completed", c->tag);
        s->logout = true;
        s->state = SIM_IMAP_LOGOUT;
    } else if (strcmp(n, "STARTTLS") == 0) {
        if (!sim_imap_state_ok(s, c, SIM_IMAP_NOAUTH))
            return;
        if (!s->offer_starttls || s->tls)
            return sim_imap_bad(s, c->tag, "STARTTLS not available");
        sim_imap_line(s, "%s OK Begin TLS negotiation now", c->tag);
        s->starttls_now = true;
    } else if (strcmp(n, "LOGIN") == 0) {
        if (!sim_imap_state_ok(s, c, SIM_IMAP_NOAUTH))
            return;
        if (c->ntoks != 2 || !sim_imap_astring(&c->toks[0]) || !sim_imap_astring(&c->toks[1]))
            return sim_imap_bad(s, c->tag, "LOGIN user password");
        if (s->hooks->login(s->hooks->ctx, c->toks[0].s, c->toks[1].s) < 0) {
            sim_imap_line(s, "%s NO [AUTHENTICATIONFAILED] invalid user or password", c->tag);
            return;
        }
        s->state = SIM_IMAP_AUTH;
        sim_imap_line(s, "%s OK [CAPABILITY " SIM_IMAP_CAPS "] LOGIN completed", c->tag);
    } else if (strcmp(n, "AUTHENTICATE") == 0) {
        if (!sim_imap_state_ok(s, c, SIM_IMAP_NOAUTH))
            return;
        if (c->ntoks < 1 || c->ntoks > 2 || c->toks[0].type != SIM_IMAP_ATOM)
            return sim_imap_bad(s, c->tag, "AUTHENTICATE mechanism");
        if (strcasecmp(c->toks[0].s, "PLAIN") != 0) {
            sim_imap_line(s, "%s NO unsupported mechanism", c->tag);
            return;
        }
        if (c->ntoks == 2) {
            const char *ir = c->toks[1].s;
            sim_imap_auth_response(s, c->tag, strcmp(ir, "=") == 0 ? "" : ir,
                                   strcmp(ir, "=") == 0 ? 0 : c->toks[1].len);
            return;
        }
        s->auth_pending = true;
        str_copy(s->pending_tag, sizeof s->pending_tag, c->tag);
        sim_imap_line(s, "+ ");
    } else if (strcmp(n, "SELECT") == 0 || strcmp(n, "EXAMINE") == 0) {
        if (sim_imap_state_ok(s, c, SIM_IMAP_AUTH))
            sim_imap_select(s, c);
    } else if (strcmp(n, "LIST") == 0 || strcmp(n, "LSUB") == 0) {
        if (sim_imap_state_ok(s, c, SIM_IMAP_AUTH))
            sim_imap_list(s, c);
    } else if (strcmp(n, "STATUS") == 0) {
        if (sim_imap_state_ok(s, c, SIM_IMAP_AUTH))
            sim_imap_status(s, c);
    } else if (strcmp(n, "CLOSE") == 0 || strcmp(n, "UNSELECT") == 0) {
        if (!sim_imap_state_ok(s, c, SIM_IMAP_SELECTED))
            return;
        if (strcmp(n, "CLOSE") == 0 && !s->readonly)
            (void)sim_imap_expunge(s, NULL, true);
        s->state = SIM_IMAP_AUTH;
        sim_imap_line(s, "%s OK %s completed", c->tag, n);
    } else if (strcmp(n, "EXPUNGE") == 0) {
        if (!sim_imap_state_ok(s, c, SIM_IMAP_SELECTED))
            return;
        if (s->readonly) {
            sim_imap_line(s, "%s NO mailbox is read-only (EXAMINE)", c->tag);
            return;
        }
        if (!c->uid && c->ntoks)
            return sim_imap_bad(s, c->tag, "EXPUNGE takes no arguments");
        if (sim_imap_expunge(s, c, false))
            sim_imap_line(s, "%s OK %sEXPUNGE completed", c->tag, c->uid ? "UID " : "");
    } else if (strcmp(n, "SEARCH") == 0) {
        if (sim_imap_state_ok(s, c, SIM_IMAP_SELECTED))
            sim_imap_search(s, c);
    } else if (strcmp(n, "FETCH") == 0) {
        if (sim_imap_state_ok(s, c, SIM_IMAP_SELECTED))
            sim_imap_fetch(s, c);
    } else if (strcmp(n, "STORE") == 0) {
        if (sim_imap_state_ok(s, c, SIM_IMAP_SELECTED))
            sim_imap_store(s, c);
    } else if (strcmp(n, "IDLE") == 0) {
        if (!sim_imap_state_ok(s, c, SIM_IMAP_AUTH))
            return;
        if (c->ntoks)
            return sim_imap_bad(s, c->tag, "IDLE takes no arguments");
        s->idling = true;
        str_copy(s->pending_tag, sizeof s->pending_tag, c->tag);
        sim_imap_line(s, "+ idling");
        sim_imap_check(s);
    } else {
        sim_imap_bad(s, c->tag, "unknown command");
    }
}

/* The transcript of a client command, without passwords. */
static void sim_imap_record_command(struct sim_imap_session *s, const char *data, size_t len)
{
    if (!s->hooks->transcript)
        return;
    const char *sp1 = memchr(data, ' ', len);
    const char *nm = sp1 ? sp1 + 1 : data;
    size_t rest = len - (size_t)(nm - data);
    if ((rest >= 6 && strncasecmp(nm, "LOGIN ", 6) == 0) ||
        (rest >= 13 && strncasecmp(nm, "AUTHENTICATE ", 13) == 0)) {
        /* "tag LOGIN" / "tag AUTHENTICATE PLAIN" */
        const char *cut = memchr(nm, ' ', rest);
        if (cut && strncasecmp(nm, "AUTHENTICATE ", 13) == 0) {
            const char *cut2 = memchr(cut + 1, ' ', len - (size_t)(cut + 1 - data));
            cut = cut2 ? cut2 : data + len;
        }
        s->hooks->transcript(s->hooks->ctx, 'c', data, (size_t)(cut - data));
        return;
    }
    s->hooks->transcript(s->hooks->ctx, 'c', data, len > 1000 ? 1000 : len);
}

/* A complete line (without CRLF) of the command being assembled: a literal follows, or it ends. */
static void sim_imap_line_in(struct sim_imap_session *s, const char *line, size_t len)
{
    if (s->idling) {
        s->idling = false;
        if (len == 4 && strncasecmp(line, "DONE", 4) == 0) {
            if (s->hooks->transcript)
                s->hooks->transcript(s->hooks->ctx, 'c', line, len);
            sim_imap_line(s, "%s OK IDLE terminated", s->pending_tag);
        } else {
            sim_imap_bad(s, s->pending_tag, "expected DONE");
        }
        return;
    }
    if (s->auth_pending) {
        s->auth_pending = false;
        if (s->hooks->transcript)
            s->hooks->transcript(s->hooks->ctx, 'c', "(auth data)", 11);
        sim_imap_auth_response(s, s->pending_tag, line, len);
        return;
    }
    /* a literal announced at the end: {N} or {N+} */
    if (len >= 3 && line[len - 1] == '}') {
        size_t i = len - 2;
        bool plus = line[i] == '+';
        if (plus)
            i--;
        size_t digits_end = i + 1, n = 0;
        while (i > 0 && line[i] >= '0' && line[i] <= '9')
            i--;
        for (size_t d = i + 1; d < digits_end; d++)
            n = n > SIM_IMAP_CMD_MAX ? n : n * 10 + (size_t)(line[d] - '0');
        if (line[i] == '{' && i + 1 < digits_end) {
            if (n > SIM_IMAP_CMD_MAX || s->cmd.len + len + 2 + n > SIM_IMAP_CMD_MAX) {
                sim_imap_violation(s, "syntax", "literal of %zu octets too big", n);
                buf_reset(&s->cmd);
                sim_imap_line(s, "* BAD literal too big");
                if (plus)
                    s->discard_left = n;
                return;
            }
            buf_append(&s->cmd, line, len);
            buf_append(&s->cmd, "\r\n", 2);
            s->literal_left = n;
            if (!plus)
                sim_imap_line(s, "+ Ready for literal data");
            return;
        }
    }
    buf_append(&s->cmd, line, len);
    if (s->cmd.len > SIM_IMAP_CMD_MAX) {
        buf_reset(&s->cmd);
        sim_imap_violation(s, "line-too-long", "command over %u octets", SIM_IMAP_CMD_MAX);
        sim_imap_line(s, "* BAD command too long");
        return;
    }
    sim_imap_record_command(s, s->cmd.data, s->cmd.len);
    struct sim_imap_cmd c;
    sim_imap_parse(s->cmd.data, s->cmd.len, &c);
    buf_reset(&s->cmd);
    if (c.error[0])
        sim_imap_bad(s, c.tag, c.error);
    else
        sim_imap_execute(s, &c);
    sim_imap_cmd_free(&c);
}

bool sim_imap_feed(struct sim_imap_session *s, const void *data, size_t len)
{
    if (s->state == SIM_IMAP_LOGOUT)
        return false;
    if (!buf_append(&s->in, data, len)) {
        sim_imap_violation(s, "overflow", "too much unread input");
        s->state = SIM_IMAP_LOGOUT;
        return false;
    }
    while (s->state != SIM_IMAP_LOGOUT && !s->starttls_now && s->in.len) {
        if (s->discard_left) {
            size_t k = s->discard_left < s->in.len ? s->discard_left : s->in.len;
            buf_consume(&s->in, k);
            s->discard_left -= k;
            continue;
        }
        if (s->literal_left) {
            size_t k = s->literal_left < s->in.len ? s->literal_left : s->in.len;
            buf_append(&s->cmd, s->in.data, k);
            buf_consume(&s->in, k);
            s->literal_left -= k;
            continue;
        }
        char *lf = memchr(s->in.data, '\n', s->in.len);
        if (!lf) {
            if (s->in.len > SIM_IMAP_LINE_MAX) {
                if (!s->skipping) {
                    sim_imap_violation(s, "line-too-long", "line over %u octets", SIM_IMAP_LINE_MAX);
                    sim_imap_line(s, "* BAD line too long");
                }
                s->skipping = true;
                buf_reset(&s->cmd);
                buf_reset(&s->in);
            }
            break;
        }
        size_t linelen = (size_t)(lf - s->in.data);
        bool crlf = linelen > 0 && s->in.data[linelen - 1] == '\r';
        size_t l = crlf ? linelen - 1 : linelen;
        if (s->skipping) {
            s->skipping = false;
        } else if (!crlf || memchr(s->in.data, '\r', l) || memchr(s->in.data, '\0', l)) {
            sim_imap_violation(s, !crlf ? "bare-lf" : "bare-cr", "in a command");
            buf_reset(&s->cmd);
            s->idling = false;
            s->auth_pending = false;
            sim_imap_line(s, "* BAD lines end in CRLF");
        } else if (linelen + 1 > SIM_IMAP_LINE_MAX) {
            sim_imap_violation(s, "line-too-long", "line over %u octets", SIM_IMAP_LINE_MAX);
            buf_reset(&s->cmd);
            sim_imap_line(s, "* BAD line too long");
        } else {
            char *line = xmalloc(l + 1);
            memcpy(line, s->in.data, l);
            line[l] = '\0';
            buf_consume(&s->in, linelen + 1);
            sim_imap_line_in(s, line, l);
            free(line);
            continue;
        }
        buf_consume(&s->in, linelen + 1);
    }
    return s->state != SIM_IMAP_LOGOUT;
}

bool sim_imap_tls_started(struct sim_imap_session *s)
{
    s->starttls_now = false;
    s->tls = true;
    buf_reset(&s->in);
    buf_reset(&s->cmd);
    return s->state != SIM_IMAP_LOGOUT;
}

void sim_imap_eof(struct sim_imap_session *s)
{
    if (s->state != SIM_IMAP_LOGOUT && !s->logout)
        sim_imap_violation(s, "no-logout", "connection closed without LOGOUT");
    s->state = SIM_IMAP_LOGOUT;
}
