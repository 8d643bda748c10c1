/*
 * fetchmailrc: fetchmail's run-control file (see fetchmailrc.h).
 *
 * STANDARDS
 *   fetchmail(1), section "THE RUN CONTROL FILE": the grammar was learnt from its manual and
 *   its lexer's token classes (words are runs of bytes other than blanks, '=', ';', ':', ',';
 *   those three punctuation marks and the words and/with/has/wants/options are noise).
 *
 * SECURITY
 *   Untrusted bytes in, bounded copies out. A token is at most FETCHRC_STRING_MAX bytes; lists,
 *   users and servers are capped. Error texts carry line and column and keyword names only,
 *   never the value of a token that may be a password.
 */
#include "fetchmailrc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "str.h"
#include "xalloc.h"

enum rc_tok_type { RC_TOK_EOF, RC_TOK_WORD, RC_TOK_STRING, RC_TOK_EQUALS };

struct rc_tok {
    enum rc_tok_type type;
    char text[FETCHRC_STRING_MAX + 1];
    size_t len;
    unsigned line, col;
};

struct rc_lexer {
    const char *file;
    const char *data;
    size_t len, pos;
    unsigned line, col;
    struct rc_tok peeked;
    bool has_peek;
    bool failed;
    char *error;
};

static void rc_error(struct rc_lexer *lx, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void rc_error(struct rc_lexer *lx, unsigned line, unsigned col, const char *fmt, ...)
{
    if (lx->failed)
        return;
    lx->failed = true;
    int n = snprintf(lx->error, FETCHRC_ERROR_MAX, "%s:%u:%u: ", lx->file, line, col);
    if (n < 0 || n >= FETCHRC_ERROR_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lx->error + n, FETCHRC_ERROR_MAX - (size_t)n, fmt, ap);
    va_end(ap);
}

static void rc_advance(struct rc_lexer *lx)
{
    if (lx->data[lx->pos] == '\n') {
        lx->line++;
        lx->col = 1;
    } else {
        lx->col++;
    }
    lx->pos++;
}

static bool rc_is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static bool rc_is_noise_char(char c)
{
    return c == ';' || c == ':' || c == ',';
}

static int rc_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool rc_tok_put(struct rc_lexer *lx, struct rc_tok *t, char c)
{
    if (c == '\0') {
        rc_error(lx, t->line, t->col, "NUL byte in a string");
        return false;
    }
    if (t->len >= FETCHRC_STRING_MAX) {
        rc_error(lx, t->line, t->col, "string longer than %d bytes", FETCHRC_STRING_MAX);
        return false;
    }
    t->text[t->len++] = c;
    t->text[t->len] = '\0';
    return true;
}

static bool rc_lex_quoted(struct rc_lexer *lx, struct rc_tok *t)
{
    char quote = lx->data[lx->pos];
    rc_advance(lx);
    for (;;) {
        if (lx->pos >= lx->len) {
            rc_error(lx, t->line, t->col, "unterminated string");
            return false;
        }
        char c = lx->data[lx->pos];
        rc_advance(lx);
        if (c == quote)
            return true;
        if (c == '\\' && lx->pos < lx->len) {
            char e = lx->data[lx->pos];
            rc_advance(lx);
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'x': {
                int v = 0, digits = 0;
                while (digits < 2 && lx->pos < lx->len && rc_hex(lx->data[lx->pos]) >= 0) {
                    v = v * 16 + rc_hex(lx->data[lx->pos]);
                    rc_advance(lx);
                    digits++;
                }
                if (digits == 0) {
                    rc_error(lx, t->line, t->col, "\\x without hex digits in a string");
                    return false;
                }
                c = (char)v;
                break;
            }
            default:
                if (e >= '0' && e <= '7') {
                    int v = e - '0', digits = 1;
                    while (digits < 3 && lx->pos < lx->len && lx->data[lx->pos] >= '0' &&
                           lx->data[lx->pos] <= '7') {
                        v = v * 8 + (lx->data[lx->pos] - '0');
                        rc_advance(lx);
                        digits++;
                    }
                    c = (char)(v & 0xff);
                } else {
                    c = e; /* \" \\ \' and any other byte stand for themselves */
                }
            }
        }
        if (!rc_tok_put(lx, t, c))
            return false;
    }
}

/* Reads the next token into *t. false on a lexical error (set in lx). */
static bool rc_lex(struct rc_lexer *lx, struct rc_tok *t)
{
    for (;;) {
        while (lx->pos < lx->len &&
               (rc_is_blank(lx->data[lx->pos]) || rc_is_noise_char(lx->data[lx->pos])))
            rc_advance(lx);
        if (lx->pos < lx->len && lx->data[lx->pos] == '#') {
            while (lx->pos < lx->len && lx->data[lx->pos] != '\n')
                rc_advance(lx);
            continue;
        }
        break;
    }
    t->len = 0;
    t->text[0] = '\0';
    t->line = lx->line;
    t->col = lx->col;
    if (lx->pos >= lx->len) {
        t->type = RC_TOK_EOF;
        return true;
    }
    char c = lx->data[lx->pos];
    if (c == '=') {
        rc_advance(lx);
        t->type = RC_TOK_EQUALS;
        return rc_tok_put(lx, t, '=');
    }
    if (c == '"' || c == '\'') {
        t->type = RC_TOK_STRING;
        return rc_lex_quoted(lx, t);
    }
    t->type = RC_TOK_WORD;
    while (lx->pos < lx->len) {
        c = lx->data[lx->pos];
        if (rc_is_blank(c) || rc_is_noise_char(c) || c == '=' || c == '"' || c == '\'')
            break;
        if (!rc_tok_put(lx, t, c))
            return false;
        rc_advance(lx);
    }
    return true;
}

static const char *const rc_noise_words[] = {"and", "with", "has", "wants", "options"};

static bool rc_is_noise(const struct rc_tok *t)
{
    if (t->type != RC_TOK_WORD)
        return false;
    for (size_t i = 0; i < sizeof rc_noise_words / sizeof rc_noise_words[0]; i++)
        if (strcasecmp(t->text, rc_noise_words[i]) == 0)
            return true;
    return false;
}

/* The next meaningful token (noise words skipped), without consuming it. */
static const struct rc_tok *rc_peek(struct rc_lexer *lx)
{
    while (!lx->has_peek) {
        if (!rc_lex(lx, &lx->peeked)) {
            lx->peeked.type = RC_TOK_EOF;
            lx->has_peek = true;
            break;
        }
        if (!rc_is_noise(&lx->peeked))
            lx->has_peek = true;
    }
    return &lx->peeked;
}

static void rc_take(struct rc_lexer *lx, struct rc_tok *t)
{
    rc_peek(lx);
    *t = lx->peeked;
    lx->has_peek = false;
}

/* ---- keywords ----------------------------------------------------------------------------- */

enum rc_kw {
    KW_NONE = 0,
    /* statements */
    KW_SET, KW_POLL, KW_SKIP, KW_DEFAULTS,
    /* set */
    KW_DAEMON, KW_POSTMASTER, KW_LOGFILE, KW_IDFILE, KW_BOUNCEMAIL, KW_SYSLOG,
    /* server */
    KW_VIA, KW_PROTO, KW_PORT, KW_TIMEOUT, KW_AKA, KW_LOCALDOMAINS, KW_DNS, KW_ENVELOPE,
    KW_QVIRTUAL, KW_INTERVAL, KW_UIDL, KW_AUTH,
    /* user */
    KW_USER, KW_PASS, KW_IS, KW_HERE, KW_THERE, KW_KEEP, KW_NOKEEP, KW_FETCHALL, KW_NOFETCHALL,
    KW_FLUSH, KW_NOFLUSH, KW_LIMIT, KW_LIMITFLUSH, KW_FETCHLIMIT, KW_SSL, KW_SSLCERTCK, KW_SSLCERTFILE,
    KW_SSLPROTO, KW_SSLCOMMONNAME, KW_FOLDER, KW_SMTPHOST, KW_SMTPADDRESS, KW_IDLE,
    KW_NO,
    /* known to fetchmail, refused here with a reason */
    KW_UNSUPPORTED,
};

static const struct rc_kw_def {
    const char *name;
    enum rc_kw kw;
} rc_keywords[] = {
    {"set", KW_SET}, {"poll", KW_POLL}, {"server", KW_POLL}, {"skip", KW_SKIP},
    {"defaults", KW_DEFAULTS}, {"daemon", KW_DAEMON}, {"postmaster", KW_POSTMASTER},
    {"logfile", KW_LOGFILE}, {"idfile", KW_IDFILE}, {"bouncemail", KW_BOUNCEMAIL},
    {"syslog", KW_SYSLOG}, {"via", KW_VIA}, {"proto", KW_PROTO}, {"protocol", KW_PROTO},
    {"port", KW_PORT}, {"service", KW_PORT}, {"timeout", KW_TIMEOUT}, {"aka", KW_AKA},
    {"localdomains", KW_LOCALDOMAINS}, {"dns", KW_DNS}, {"envelope", KW_ENVELOPE},
    {"qvirtual", KW_QVIRTUAL}, {"interval", KW_INTERVAL}, {"uidl", KW_UIDL},
    {"auth", KW_AUTH}, {"authenticate", KW_AUTH}, {"user", KW_USER}, {"username", KW_USER},
    {"pass", KW_PASS}, {"password", KW_PASS}, {"is", KW_IS}, {"to", KW_IS},
    {"here", KW_HERE}, {"there", KW_THERE}, {"keep", KW_KEEP}, {"nokeep", KW_NOKEEP},
    {"fetchall", KW_FETCHALL}, {"nofetchall", KW_NOFETCHALL}, {"flush", KW_FLUSH},
    {"noflush", KW_NOFLUSH}, {"limit", KW_LIMIT}, {"limitflush", KW_LIMITFLUSH}, {"fetchlimit", KW_FETCHLIMIT},
    {"ssl", KW_SSL}, {"sslcertck", KW_SSLCERTCK}, {"sslcertfile", KW_SSLCERTFILE},
    {"sslproto", KW_SSLPROTO}, {"sslcommonname", KW_SSLCOMMONNAME}, {"folder", KW_FOLDER},
    {"folders", KW_FOLDER}, {"smtphost", KW_SMTPHOST}, {"smtphosts", KW_SMTPHOST}, {"smtpaddress", KW_SMTPADDRESS},
    {"idle", KW_IDLE},
    {"no", KW_NO},
    {"mda", KW_UNSUPPORTED}, {"bsmtp", KW_UNSUPPORTED}, {"lmtp", KW_UNSUPPORTED},
    {"preconnect", KW_UNSUPPORTED}, {"postconnect", KW_UNSUPPORTED},
    {"plugin", KW_UNSUPPORTED}, {"plugout", KW_UNSUPPORTED}, {"principal", KW_UNSUPPORTED},
    {"sslkey", KW_UNSUPPORTED}, {"sslcert", KW_UNSUPPORTED}, {"sslfingerprint", KW_UNSUPPORTED},
    {"sslcertpath", KW_UNSUPPORTED}, {"antispam", KW_UNSUPPORTED}, {"preauth", KW_UNSUPPORTED},
};

static enum rc_kw rc_keyword(const struct rc_tok *t)
{
    if (t->type != RC_TOK_WORD)
        return KW_NONE;
    for (size_t i = 0; i < sizeof rc_keywords / sizeof rc_keywords[0]; i++)
        if (strcasecmp(t->text, rc_keywords[i].name) == 0)
            return rc_keywords[i].kw;
    return KW_NONE;
}

static bool rc_is_server_kw(enum rc_kw kw)
{
    return kw >= KW_VIA && kw <= KW_AUTH;
}

static bool rc_is_user_kw(enum rc_kw kw)
{
    return kw >= KW_USER && kw <= KW_IDLE;
}

/* ---- values ------------------------------------------------------------------------------- */

/* A value token (word or string) for keyword kwname; false with an error otherwise. */
static bool rc_value(struct rc_lexer *lx, const char *kwname, struct rc_tok *t)
{
    const struct rc_tok *p = rc_peek(lx);
    if (lx->failed)
        return false;
    if (p->type == RC_TOK_EOF || p->type == RC_TOK_EQUALS ||
        (p->type == RC_TOK_WORD && rc_keyword(p) != KW_NONE)) {
        rc_error(lx, p->line, p->col, "%s needs a value", kwname);
        return false;
    }
    rc_take(lx, t);
    return true;
}

static bool rc_string(struct rc_lexer *lx, const char *kwname, char **dst)
{
    struct rc_tok t;
    if (!rc_value(lx, kwname, &t))
        return false;
    free(*dst);
    *dst = xstrdup(t.text);
    return true;
}

static bool rc_number(struct rc_lexer *lx, const char *kwname, unsigned long max,
                      unsigned long *dst)
{
    struct rc_tok t;
    if (!rc_value(lx, kwname, &t))
        return false;
    if (!str_to_ulong(t.text, max, dst)) {
        rc_error(lx, t.line, t.col, "%s needs a number from 0 to %lu", kwname, max);
        return false;
    }
    return true;
}

/* Value tokens up to the next keyword; at least one. */
static bool rc_list(struct rc_lexer *lx, const char *kwname, char **items, size_t *n)
{
    struct rc_tok t;
    if (!rc_value(lx, kwname, &t))
        return false;
    for (;;) {
        if (*n >= FETCHRC_LIST_MAX) {
            rc_error(lx, t.line, t.col, "%s: more than %d names", kwname, FETCHRC_LIST_MAX);
            return false;
        }
        items[(*n)++] = xstrdup(t.text);
        const struct rc_tok *p = rc_peek(lx);
        if (lx->failed)
            return false;
        if (p->type == RC_TOK_EOF || p->type == RC_TOK_EQUALS ||
            (p->type == RC_TOK_WORD && rc_keyword(p) != KW_NONE))
            return true;
        rc_take(lx, &t);
    }
}

/* ---- structures --------------------------------------------------------------------------- */

static void rc_user_defaults(struct fetchrc_user *u)
{
    memset(u, 0, sizeof *u);
}

static void rc_server_defaults(struct fetchrc_server *s)
{
    memset(s, 0, sizeof *s);
    s->dns = true;
    s->uidl = true;
}

static char *rc_dup(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void rc_user_copy(struct fetchrc_user *dst, const struct fetchrc_user *src)
{
    *dst = *src;
    dst->remote = rc_dup(src->remote);
    dst->password = rc_dup(src->password);
    for (size_t i = 0; i < src->nlocals; i++) {
        dst->locals[i].remote = rc_dup(src->locals[i].remote);
        dst->locals[i].local = rc_dup(src->locals[i].local);
    }
    dst->sslcertfile = rc_dup(src->sslcertfile);
    dst->sslproto = rc_dup(src->sslproto);
    dst->sslcommonname = rc_dup(src->sslcommonname);
    dst->smtpaddress = rc_dup(src->smtpaddress);
    for (size_t i = 0; i < src->nfolders; i++)
        dst->folders[i] = rc_dup(src->folders[i]);
    for (size_t i = 0; i < src->nsmtphosts; i++)
        dst->smtphosts[i] = rc_dup(src->smtphosts[i]);
}

static void rc_user_free(struct fetchrc_user *u)
{
    free(u->remote);
    if (u->password) {
        explicit_bzero(u->password, strlen(u->password));
        free(u->password);
    }
    for (size_t i = 0; i < u->nlocals; i++) {
        free(u->locals[i].remote);
        free(u->locals[i].local);
    }
    free(u->sslcertfile);
    free(u->sslproto);
    free(u->sslcommonname);
    free(u->smtpaddress);
    for (size_t i = 0; i < u->nfolders; i++)
        free(u->folders[i]);
    for (size_t i = 0; i < u->nsmtphosts; i++)
        free(u->smtphosts[i]);
    memset(u, 0, sizeof *u);
}

static void rc_server_copy_options(struct fetchrc_server *dst, const struct fetchrc_server *src)
{
    /* Everything but name, skip, users and line. */
    dst->via = rc_dup(src->via);
    dst->proto = src->proto;
    dst->port = src->port;
    dst->timeout = src->timeout;
    dst->interval = src->interval;
    dst->auth = src->auth;
    dst->dns = src->dns;
    dst->uidl = src->uidl;
    for (size_t i = 0; i < src->naka; i++)
        dst->aka[i] = xstrdup(src->aka[i]);
    dst->naka = src->naka;
    for (size_t i = 0; i < src->nlocaldomains; i++)
        dst->localdomains[i] = xstrdup(src->localdomains[i]);
    dst->nlocaldomains = src->nlocaldomains;
    dst->no_envelope = src->no_envelope;
    dst->envelope = rc_dup(src->envelope);
    dst->envelope_skip = src->envelope_skip;
    dst->qvirtual = rc_dup(src->qvirtual);
}

static void rc_server_free(struct fetchrc_server *s)
{
    free(s->name);
    free(s->via);
    for (size_t i = 0; i < s->naka; i++)
        free(s->aka[i]);
    for (size_t i = 0; i < s->nlocaldomains; i++)
        free(s->localdomains[i]);
    free(s->envelope);
    free(s->qvirtual);
    for (size_t i = 0; i < s->nusers; i++)
        rc_user_free(&s->users[i]);
    free(s->users);
    memset(s, 0, sizeof *s);
}

/* ---- the grammar -------------------------------------------------------------------------- */

struct rc_parser {
    struct rc_lexer lx;
    struct fetchrc *rc;
    struct fetchrc_server defaults;  /* `defaults` server options */
    struct fetchrc_user defaults_user;
};

static bool rc_parse_set(struct rc_parser *p, const struct rc_tok *set_tok)
{
    struct rc_lexer *lx = &p->lx;
    struct rc_tok t;
    rc_take(lx, &t);
    enum rc_kw kw = rc_keyword(&t);
    bool negated = false;
    if (kw == KW_NO) {
        negated = true;
        rc_take(lx, &t);
        kw = rc_keyword(&t);
    }
    if (lx->failed)
        return false;
    if (t.type == RC_TOK_EOF) {
        rc_error(lx, set_tok->line, set_tok->col, "set needs an option");
        return false;
    }
    switch (negated ? (kw == KW_BOUNCEMAIL || kw == KW_SYSLOG ? kw : KW_NONE) : kw) {
    case KW_DAEMON:
        return rc_number(lx, "set daemon", 31536000UL, &p->rc->daemon);
    case KW_POSTMASTER:
        return rc_string(lx, "set postmaster", &p->rc->postmaster);
    case KW_LOGFILE:
        return rc_string(lx, "set logfile", &p->rc->logfile);
    case KW_IDFILE:
        return rc_string(lx, "set idfile", &p->rc->idfile);
    case KW_BOUNCEMAIL:
        p->rc->bouncemail = !negated;
        return true;
    case KW_SYSLOG:
        p->rc->syslog = !negated;
        return true;
    default:
        if (t.type == RC_TOK_WORD)
            rc_error(lx, t.line, t.col, "unknown set option \"%s%s\"", negated ? "no " : "",
                     t.text);
        else
            rc_error(lx, t.line, t.col, "set needs an option name");
        return false;
    }
}

static bool rc_parse_locals(struct rc_parser *p, struct fetchrc_user *u)
{
    struct rc_lexer *lx = &p->lx;
    struct rc_tok t;
    if (!rc_value(lx, "is", &t))
        return false;
    for (;;) {
        if (u->nlocals >= FETCHRC_LIST_MAX) {
            rc_error(lx, t.line, t.col, "is: more than %d names", FETCHRC_LIST_MAX);
            return false;
        }
        struct fetchrc_local *l = &u->locals[u->nlocals++];
        const struct rc_tok *n = rc_peek(lx);
        if (n->type == RC_TOK_EQUALS) {
            struct rc_tok eq, local;
            rc_take(lx, &eq);
            if (!rc_value(lx, "is NAME =", &local))
                return false;
            l->remote = xstrdup(t.text);
            l->local = xstrdup(local.text);
        } else {
            l->local = xstrdup(t.text);
        }
        n = rc_peek(lx);
        if (lx->failed)
            return false;
        if (n->type == RC_TOK_EOF || n->type == RC_TOK_EQUALS ||
            (n->type == RC_TOK_WORD && rc_keyword(n) != KW_NONE))
            return true;
        rc_take(lx, &t);
    }
}

/* One user option (kw already taken as t). */
static bool rc_parse_user_option(struct rc_parser *p, struct fetchrc_user *u, enum rc_kw kw,
                                 bool negated, const struct rc_tok *t)
{
    struct rc_lexer *lx = &p->lx;
    if (negated && kw != KW_KEEP && kw != KW_FETCHALL && kw != KW_FLUSH && kw != KW_LIMITFLUSH && kw != KW_SSL &&
        kw != KW_SSLCERTCK && kw != KW_IDLE) {
        rc_error(lx, t->line, t->col, "\"no\" does not apply to %s", t->text);
        return false;
    }
    switch (kw) {
    case KW_USER:
        return rc_string(lx, "user", &u->remote);
    case KW_PASS:
        return rc_string(lx, "password", &u->password);
    case KW_IS:
        return rc_parse_locals(p, u);
    case KW_HERE:
    case KW_THERE:
        return true; /* which side a name lives on is clear from the keyword before it */
    case KW_KEEP: u->keep = !negated; return true;
    case KW_NOKEEP: u->keep = false; return true;
    case KW_FETCHALL: u->fetchall = !negated; return true;
    case KW_NOFETCHALL: u->fetchall = false; return true;
    case KW_FLUSH: u->flush = !negated; return true;
    case KW_NOFLUSH: u->flush = false; return true;
    case KW_LIMITFLUSH: u->limitflush = !negated; return true;
    case KW_LIMIT: return rc_number(lx, "limit", 4294967295UL, &u->limit);
    case KW_FETCHLIMIT: return rc_number(lx, "fetchlimit", 1000000UL, &u->fetchlimit);
    case KW_SSL: u->ssl = !negated; return true;
    case KW_SSLCERTCK: u->sslcertck = !negated; return true;
    case KW_SSLCERTFILE: return rc_string(lx, "sslcertfile", &u->sslcertfile);
    case KW_SSLPROTO: return rc_string(lx, "sslproto", &u->sslproto);
    case KW_SSLCOMMONNAME: return rc_string(lx, "sslcommonname", &u->sslcommonname);
    case KW_FOLDER: return rc_list(lx, "folder", u->folders, &u->nfolders);
    case KW_SMTPHOST: return rc_list(lx, "smtphost", u->smtphosts, &u->nsmtphosts);
    case KW_SMTPADDRESS: return rc_string(lx, "smtpaddress", &u->smtpaddress);
    case KW_IDLE: u->idle = !negated; return true;
    default:
        rc_error(lx, t->line, t->col, "unknown keyword \"%s\"", t->text);
        return false;
    }
}

static bool rc_parse_server_option(struct rc_parser *p, struct fetchrc_server *s, enum rc_kw kw,
                                   bool negated, const struct rc_tok *t)
{
    struct rc_lexer *lx = &p->lx;
    if (negated && kw != KW_DNS && kw != KW_ENVELOPE && kw != KW_UIDL) {
        rc_error(lx, t->line, t->col, "\"no\" does not apply to %s", t->text);
        return false;
    }
    struct rc_tok v;
    unsigned long n;
    switch (kw) {
    case KW_VIA:
        return rc_string(lx, "via", &s->via);
    case KW_PROTO:
        if (!rc_value(lx, "proto", &v))
            return false;
        if (strcasecmp(v.text, "pop3") == 0) {
            s->proto = FETCHRC_PROTO_POP3;
        } else if (strcasecmp(v.text, "imap") == 0) {
            s->proto = FETCHRC_PROTO_IMAP;
        } else if (strcasecmp(v.text, "auto") == 0) {
            s->proto = FETCHRC_PROTO_AUTO;
        } else {
            rc_error(lx, v.line, v.col, "protocol \"%s\" is not supported (pop3, imap, auto)",
                     v.text);
            return false;
        }
        return true;
    case KW_PORT:
        if (!rc_value(lx, "port", &v))
            return false;
        if (strcasecmp(v.text, "pop3") == 0) {
            s->port = 110;
        } else if (strcasecmp(v.text, "pop3s") == 0) {
            s->port = 995;
        } else if (strcasecmp(v.text, "imap") == 0 || strcasecmp(v.text, "imap2") == 0) {
            s->port = 143;
        } else if (strcasecmp(v.text, "imaps") == 0) {
            s->port = 993;
        } else if (str_to_ulong(v.text, 65535, &n) && n > 0) {
            s->port = (unsigned)n;
        } else {
            rc_error(lx, v.line, v.col, "port needs a number from 1 to 65535 or a service name");
            return false;
        }
        return true;
    case KW_TIMEOUT:
        return rc_number(lx, "timeout", 86400, &s->timeout);
    case KW_INTERVAL:
        return rc_number(lx, "interval", 1000000, &s->interval);
    case KW_AKA:
        return rc_list(lx, "aka", s->aka, &s->naka);
    case KW_LOCALDOMAINS:
        return rc_list(lx, "localdomains", s->localdomains, &s->nlocaldomains);
    case KW_DNS:
        s->dns = !negated;
        return true;
    case KW_UIDL:
        s->uidl = !negated;
        return true;
    case KW_ENVELOPE:
        if (negated) {
            s->no_envelope = true;
            return true;
        }
        if (!rc_value(lx, "envelope", &v))
            return false;
        if (v.type == RC_TOK_WORD && str_to_ulong(v.text, 1000, &n)) {
            s->envelope_skip = n;
            if (!rc_value(lx, "envelope", &v))
                return false;
        }
        free(s->envelope);
        s->envelope = xstrdup(v.text);
        s->no_envelope = false;
        return true;
    case KW_QVIRTUAL:
        return rc_string(lx, "qvirtual", &s->qvirtual);
    case KW_AUTH:
        if (!rc_value(lx, "auth", &v))
            return false;
        if (strcasecmp(v.text, "any") == 0) {
            s->auth = FETCHRC_AUTH_ANY;
        } else if (strcasecmp(v.text, "password") == 0) {
            s->auth = FETCHRC_AUTH_PASSWORD;
        } else if (strcasecmp(v.text, "plain") == 0) {
            s->auth = FETCHRC_AUTH_PLAIN;
        } else {
            rc_error(lx, v.line, v.col, "auth \"%s\" is not supported (any, password, plain)",
                     v.text);
            return false;
        }
        return true;
    default:
        rc_error(lx, t->line, t->col, "unknown keyword \"%s\"", t->text);
        return false;
    }
}

/*
 * The body of a poll/skip/defaults entry, up to the next statement or the end. Server options
 * first; user options before the first `user` go to *tmpl (every user of the entry starts
 * from it).
 */
static bool rc_parse_entry(struct rc_parser *p, struct fetchrc_server *s,
                           struct fetchrc_user *tmpl, bool is_defaults)
{
    struct rc_lexer *lx = &p->lx;
    struct fetchrc_user *cur = tmpl;
    for (;;) {
        const struct rc_tok *n = rc_peek(lx);
        if (lx->failed)
            return false;
        if (n->type == RC_TOK_EOF)
            return true;
        enum rc_kw kw = rc_keyword(n);
        if (kw == KW_POLL || kw == KW_SKIP || kw == KW_DEFAULTS || kw == KW_SET)
            return true;
        struct rc_tok t;
        rc_take(lx, &t);
        bool negated = false;
        if (kw == KW_NO) {
            struct rc_tok after;
            rc_take(lx, &after);
            if (lx->failed)
                return false;
            enum rc_kw akw = rc_keyword(&after);
            if (after.type != RC_TOK_WORD || akw == KW_NONE) {
                rc_error(lx, after.line, after.col, "\"no\" needs a keyword after it");
                return false;
            }
            negated = true;
            t = after;
            kw = akw;
        }
        if (kw == KW_UNSUPPORTED) {
            rc_error(lx, t.line, t.col, "\"%s\" is not supported by zolder's poller", t.text);
            return false;
        }
        if (rc_is_server_kw(kw)) {
            if (cur != tmpl) {
                rc_error(lx, t.line, t.col, "server option %s after user options", t.text);
                return false;
            }
            if (!rc_parse_server_option(p, s, kw, negated, &t))
                return false;
            continue;
        }
        if (kw == KW_USER && !negated && !is_defaults) {
            if (s->nusers >= FETCHRC_USERS_MAX) {
                rc_error(lx, t.line, t.col, "more than %d users in one entry", FETCHRC_USERS_MAX);
                return false;
            }
            s->users = xreallocarray(s->users, s->nusers + 1, sizeof *s->users);
            cur = &s->users[s->nusers++];
            rc_user_copy(cur, tmpl);
            cur->line = t.line;
        }
        if (rc_is_user_kw(kw)) {
            if (!rc_parse_user_option(p, cur, kw, negated, &t))
                return false;
            continue;
        }
        if (t.type == RC_TOK_WORD)
            rc_error(lx, t.line, t.col, "unknown keyword \"%s\"", t.text);
        else if (t.type == RC_TOK_EQUALS)
            rc_error(lx, t.line, t.col, "unexpected \"=\"");
        else
            rc_error(lx, t.line, t.col, "a quoted string where a keyword was expected");
        return false;
    }
}

static bool rc_parse_poll(struct rc_parser *p, const struct rc_tok *start, bool skip)
{
    struct rc_lexer *lx = &p->lx;
    if (p->rc->nservers >= FETCHRC_SERVERS_MAX) {
        rc_error(lx, start->line, start->col, "more than %d poll entries", FETCHRC_SERVERS_MAX);
        return false;
    }
    struct rc_tok name;
    if (!rc_value(lx, skip ? "skip" : "poll", &name))
        return false;
    p->rc->servers = xreallocarray(p->rc->servers, p->rc->nservers + 1, sizeof *p->rc->servers);
    struct fetchrc_server *s = &p->rc->servers[p->rc->nservers++];
    rc_server_defaults(s);
    rc_server_copy_options(s, &p->defaults);
    s->name = xstrdup(name.text);
    s->skip = skip;
    s->line = start->line;
    struct fetchrc_user tmpl;
    rc_user_copy(&tmpl, &p->defaults_user);
    tmpl.line = start->line;
    bool ok = rc_parse_entry(p, s, &tmpl, false);
    if (ok && s->nusers == 0) {
        /* No `user`: one user, the invoking login (the caller fills the remote name in). */
        s->users = xreallocarray(s->users, 1, sizeof *s->users);
        rc_user_copy(&s->users[0], &tmpl);
        if (!s->users[0].remote)
            s->users[0].remote = xstrdup("");
        s->nusers = 1;
    }
    rc_user_free(&tmpl);
    return ok;
}

bool fetchrc_parse(struct fetchrc *rc, const char *file, const char *data, size_t len,
                   char error[FETCHRC_ERROR_MAX])
{
    memset(rc, 0, sizeof *rc);
    rc->bouncemail = true;
    error[0] = '\0';
    struct rc_parser p;
    memset(&p, 0, sizeof p);
    p.rc = rc;
    p.lx.file = file;
    p.lx.data = data;
    p.lx.len = len;
    p.lx.line = 1;
    p.lx.col = 1;
    p.lx.error = error;
    rc_server_defaults(&p.defaults);
    rc_user_defaults(&p.defaults_user);
    if (len > FETCHRC_FILE_MAX) {
        rc_error(&p.lx, 1, 1, "file larger than %lu bytes", FETCHRC_FILE_MAX);
        return false;
    }
    bool ok = true;
    while (ok) {
        struct rc_tok t;
        rc_take(&p.lx, &t);
        if (p.lx.failed) {
            ok = false;
            break;
        }
        if (t.type == RC_TOK_EOF)
            break;
        switch (rc_keyword(&t)) {
        case KW_SET:
            ok = rc_parse_set(&p, &t);
            break;
        case KW_POLL:
            ok = rc_parse_poll(&p, &t, false);
            break;
        case KW_SKIP:
            ok = rc_parse_poll(&p, &t, true);
            break;
        case KW_DEFAULTS: {
            struct fetchrc_server fresh;
            struct fetchrc_user fresh_user;
            rc_server_defaults(&fresh);
            rc_user_defaults(&fresh_user);
            ok = rc_parse_entry(&p, &fresh, &fresh_user, true);
            rc_server_free(&p.defaults);
            rc_user_free(&p.defaults_user);
            p.defaults = fresh;
            p.defaults_user = fresh_user;
            break;
        }
        default:
            if (t.type == RC_TOK_WORD)
                rc_error(&p.lx, t.line, t.col, "unknown keyword \"%s\" (expected set, poll, "
                         "skip or defaults)", t.text);
            else
                rc_error(&p.lx, t.line, t.col, "expected set, poll, skip or defaults");
            ok = false;
        }
    }
    if (p.lx.failed)
        ok = false;
    rc_server_free(&p.defaults);
    rc_user_free(&p.defaults_user);
    explicit_bzero(&p.lx.peeked, sizeof p.lx.peeked);
    return ok;
}

void fetchrc_free(struct fetchrc *rc)
{
    free(rc->postmaster);
    free(rc->logfile);
    free(rc->idfile);
    for (size_t i = 0; i < rc->nservers; i++)
        rc_server_free(&rc->servers[i]);
    free(rc->servers);
    memset(rc, 0, sizeof *rc);
}

unsigned fetchrc_port(const struct fetchrc_server *s, const struct fetchrc_user *u)
{
    if (s->port)
        return s->port;
    bool ssl = u && u->ssl;
    if (s->proto == FETCHRC_PROTO_IMAP)
        return ssl ? 993 : 143;
    return ssl ? 995 : 110;
}

const char *fetchrc_proto_name(enum fetchrc_proto proto)
{
    switch (proto) {
    case FETCHRC_PROTO_POP3: return "pop3";
    case FETCHRC_PROTO_IMAP: return "imap";
    default: return "auto";
    }
}

bool fetchrc_multidrop(const struct fetchrc_user *u)
{
    for (size_t i = 0; i < u->nlocals; i++)
        if (strcmp(u->locals[i].local, "*") == 0)
            return true;
    return false;
}

bool fetchrc_smtphost(const char *text, char *host, size_t hostsize, unsigned *port)
{
    const char *hs = text, *he, *ps = NULL;
    const char *slash = strchr(text, '/');
    const char *colon = strchr(text, ':');
    if (text[0] == '[') {
        hs = text + 1;
        he = strchr(hs, ']');
        if (!he || (he[1] && he[1] != ':' && he[1] != '/'))
            return false;
        ps = he[1] ? he + 2 : NULL;
    } else if (slash) {
        he = slash;
        ps = slash + 1;
    } else if (colon && !strchr(colon + 1, ':')) {
        he = colon;
        ps = colon + 1;
    } else {
        he = text + strlen(text); /* a name, an IPv4 address or a bare IPv6 address */
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= hostsize)
        return false;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    for (size_t i = 0; i < hl; i++) {
        char c = host[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == ':' || c == '%'))
            return false;
    }
    if (strcasecmp(host, "localhost") == 0)
        snprintf(host, hostsize, "127.0.0.1");
    *port = 25;
    if (ps) {
        if (strcasecmp(ps, "smtp") == 0)
            return true;
        unsigned long n = 0;
        size_t digits = 0;
        for (; ps[digits]; digits++) {
            if (ps[digits] < '0' || ps[digits] > '9' || digits >= 5)
                return false;
            n = n * 10 + (unsigned long)(ps[digits] - '0');
        }
        if (digits == 0 || n == 0 || n > 65535)
            return false;
        *port = (unsigned)n;
    }
    return true;
}
