/*
 * addr: RFC 5321 paths and mailboxes (see addr.h).
 *
 * DESCRIPTION
 *   One small recursive-descent parser over a counted byte range. It validates strictly
 *   (RFC 5321 syntax, no CFWS, no obsolete forms) but records the relay tricks that are
 *   syntactically valid instead of refusing them, so policy can decide with full knowledge.
 *   A second unquoted '@' (user@other@here) is not valid syntax and is refused: the only way
 *   to put '@' in a local part is to quote it, which sets QUOTED and ROUTING_CHARS.
 *
 * STANDARDS
 *   RFC 5321 4.1.2 (Path, A-d-l, Mailbox, Dot-string, Quoted-string, Domain),
 *   4.1.3 (address literals), 4.5.3.1.1-3 (size limits); RFC 6531 3.3 (UTF-8 local parts,
 *   only with ADDR_OPT_ALLOW_8BIT).
 *
 * SECURITY
 *   Input is whatever a client typed after MAIL FROM: / RCPT TO:. Lengths are checked on the
 *   wire form before anything is copied, and the wire limits are smaller than the fields of
 *   struct mailaddr, so a copy can never overrun. No allocation.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#define ADDR_LABEL_MAX 63
#define ADDR_LITERAL_MAX 64 /* longest literal we accept between the brackets */

struct addr_parser {
    const unsigned char *p;
    const unsigned char *end;
    int term;           /* '>' for a path, -1 for a bare mailbox */
    unsigned opts;
    struct mailaddr *addr;
    const char *error;
};

static bool addr_is_atext(unsigned char c)
{
    /* RFC 5322 3.2.3 atext, which RFC 5321 Atom reuses. */
    if (isalnum(c) && c < 0x80)
        return true;
    return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool addr_is_let_dig(unsigned char c) { return c < 0x80 && isalnum(c); }

/* Length of one well-formed UTF-8 sequence of 2-4 bytes at p, or 0 (RFC 3629 4). */
static size_t addr_utf8_len(const unsigned char *p, const unsigned char *end)
{
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        if (p[0] == 0xe0)
            lo = 0xa0; /* overlong */
        else if (p[0] == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        if (p[0] == 0xf0)
            lo = 0x90;
        else if (p[0] == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else
        return 0;
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

static bool addr_at_term(const struct addr_parser *ps)
{
    return ps->p == ps->end || (ps->term >= 0 && *ps->p == ps->term);
}

/* The most specific reason an unexpected byte can give, or fallback. */
static bool addr_fail_byte(struct addr_parser *ps, const char *fallback)
{
    if (ps->p == ps->end) {
        ps->error = ps->term >= 0 ? "missing >" : fallback;
        return false;
    }
    unsigned char c = *ps->p;
    if (c == ' ' || c == '\t')
        ps->error = "whitespace in address";
    else if (c < 32 || c == 127)
        ps->error = "control character in address";
    else if (c >= 0x80)
        ps->error = (ps->opts & ADDR_OPT_ALLOW_8BIT) ? "invalid UTF-8 in address"
                                                    : "8-bit character in address";
    else
        ps->error = fallback;
    return false;
}

static bool addr_fail(struct addr_parser *ps, const char *error)
{
    ps->error = error;
    return false;
}

/* Dot-string: Atom *("." Atom), copied as is. */
static bool addr_parse_dot_string(struct addr_parser *ps)
{
    const unsigned char *start = ps->p;
    for (;;) {
        const unsigned char *atom = ps->p;
        while (ps->p < ps->end) {
            unsigned char c = *ps->p;
            if (addr_is_atext(c)) {
                ps->p++;
            } else if (c >= 0x80 && (ps->opts & ADDR_OPT_ALLOW_8BIT)) {
                size_t n = addr_utf8_len(ps->p, ps->end);
                if (n == 0)
                    return addr_fail(ps, "invalid UTF-8 in address");
                ps->addr->flags |= ADDR_F_8BIT;
                ps->p += n;
            } else
                break;
        }
        if (ps->p == atom) {
            if (ps->p == start && (addr_at_term(ps) || *ps->p == '@'))
                return addr_fail(ps, "empty local part");
            if (ps->p < ps->end && (*ps->p == '.' || *ps->p == '@' || addr_at_term(ps)))
                return addr_fail(ps, "misplaced dot in local part");
            return addr_fail_byte(ps, "invalid character in local part");
        }
        if (ps->p < ps->end && *ps->p == '.') {
            ps->p++;
            continue;
        }
        break;
    }
    size_t n = (size_t)(ps->p - start);
    if (n > ADDR_LOCAL_MAX)
        return addr_fail(ps, "local part too long");
    memcpy(ps->addr->local, start, n);
    ps->addr->local[n] = '\0';
    return true;
}

/* Quoted-string: DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE, stored unquoted. */
static bool addr_parse_quoted(struct addr_parser *ps)
{
    const unsigned char *start = ps->p;
    const unsigned char *q = ps->p + 1;
    /* First find the closing quote, so the length is checked before anything is copied. */
    for (;;) {
        if (q == ps->end)
            return addr_fail(ps, "unbalanced quote");
        if (*q == '"')
            break;
        if (*q == '\\' && q + 1 < ps->end)
            q++;
        q++;
    }
    if ((size_t)(q + 1 - start) > ADDR_LOCAL_MAX)
        return addr_fail(ps, "local part too long");
    if (q == start + 1)
        return addr_fail(ps, "empty local part");
    size_t n = 0;
    ps->p = start + 1;
    while (ps->p < q) {
        unsigned char c = *ps->p;
        if (c == '\\') {
            ps->p++;
            c = *ps->p;
            if (c < 32 || c > 126)
                return addr_fail_byte(ps, "bad quoted pair");
            ps->addr->local[n++] = (char)c;
            ps->p++;
        } else if (c >= 32 && c <= 126) {
            ps->addr->local[n++] = (char)c;
            ps->p++;
        } else if (c >= 0x80 && (ps->opts & ADDR_OPT_ALLOW_8BIT)) {
            size_t len = addr_utf8_len(ps->p, q);
            if (len == 0)
                return addr_fail(ps, "invalid UTF-8 in address");
            memcpy(ps->addr->local + n, ps->p, len);
            n += len;
            ps->p += len;
            ps->addr->flags |= ADDR_F_8BIT;
        } else {
            /* Tab is not qtextSMTP either, so it is a control character here. */
            return addr_fail(ps, c >= 0x80 ? "8-bit character in address"
                                           : "control character in address");
        }
    }
    ps->addr->local[n] = '\0';
    ps->p = q + 1;
    ps->addr->flags |= ADDR_F_QUOTED;
    return true;
}

/*
 * Domain = sub-domain *("." sub-domain), copied lower-cased into out (outsize > 255).
 * A single trailing dot is accepted when allow_dot is set; *dot_r reports it.
 */
static bool addr_parse_domain(struct addr_parser *ps, char *out, size_t outsize, bool allow_dot,
                              bool *dot_r)
{
    const unsigned char *start = ps->p;
    *dot_r = false;
    for (;;) {
        const unsigned char *label = ps->p;
        while (ps->p < ps->end && (addr_is_let_dig(*ps->p) || *ps->p == '-'))
            ps->p++;
        size_t n = (size_t)(ps->p - label);
        if (n == 0) {
            if (ps->p == start && addr_at_term(ps))
                return addr_fail(ps, "missing domain");
            if (ps->p < ps->end && *ps->p == '.')
                return addr_fail(ps, "empty domain label");
            if (ps->p < ps->end && *ps->p >= 0x80)
                return addr_fail(ps, "8-bit character in domain");
            return addr_fail_byte(ps, "invalid character in domain");
        }
        if (n > ADDR_LABEL_MAX)
            return addr_fail(ps, "domain label too long");
        if (label[0] == '-' || label[n - 1] == '-')
            return addr_fail(ps, "domain label starts or ends with a hyphen");
        if (ps->p < ps->end && *ps->p == '.') {
            ps->p++;
            if (addr_at_term(ps)) {
                if (!allow_dot)
                    return addr_fail(ps, "empty domain label");
                *dot_r = true;
                break;
            }
            continue;
        }
        break;
    }
    size_t n = (size_t)(ps->p - start) - (*dot_r ? 1 : 0);
    if (n > ADDR_DOMAIN_MAX || n >= outsize)
        return addr_fail(ps, "domain too long");
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower(start[i]);
    out[n] = '\0';
    return true;
}

/* address-literal: "[" IPv4 "]" or "[IPv6:" IPv6 "]"; general literals are refused. */
static bool addr_parse_literal(struct addr_parser *ps)
{
    const unsigned char *open = ps->p;
    const unsigned char *q = open + 1;
    while (q < ps->end && *q != ']' && q - open <= ADDR_LITERAL_MAX) {
        if (*q <= 32 || *q >= 127 || *q == '[' || *q == '\\') {
            ps->p = q;
            return addr_fail_byte(ps, "bad address literal");
        }
        q++;
    }
    if (q == ps->end)
        return addr_fail(ps, "unterminated address literal");
    if (*q != ']')
        return addr_fail(ps, "address literal too long");
    char tmp[ADDR_LITERAL_MAX + 1];
    size_t n = (size_t)(q - open - 1);
    memcpy(tmp, open + 1, n);
    tmp[n] = '\0';
    unsigned char bin[16];
    char *dom = ps->addr->domain;
    if (n >= 5 && strncasecmp(tmp, "IPv6:", 5) == 0) {
        if (inet_pton(AF_INET6, tmp + 5, bin) != 1)
            return addr_fail(ps, "bad IPv6 address literal");
        /* Tag in its RFC spelling, hex digits lower-cased like domains. */
        memcpy(dom, "[IPv6:", 6);
        for (size_t i = 5; i < n; i++)
            dom[i + 1] = (char)tolower((unsigned char)tmp[i]);
        dom[n + 1] = ']';
        dom[n + 2] = '\0';
    } else if (inet_pton(AF_INET, tmp, bin) == 1) {
        dom[0] = '[';
        memcpy(dom + 1, tmp, n);
        dom[n + 1] = ']';
        dom[n + 2] = '\0';
    } else if (memchr(tmp, ':', n) != NULL) {
        return addr_fail(ps, "unsupported address literal");
    } else {
        return addr_fail(ps, "bad IPv4 address literal");
    }
    ps->p = q + 1;
    ps->addr->flags |= ADDR_F_LITERAL;
    return true;
}

/* Mailbox = Local-part ["@" (Domain / address-literal)], the domain optional (UNQUALIFIED). */
static bool addr_parse_mailbox_at(struct addr_parser *ps)
{
    if (ps->p < ps->end && *ps->p == '"') {
        if (!addr_parse_quoted(ps))
            return false;
    } else if (!addr_parse_dot_string(ps)) {
        return false;
    }
    if (strpbrk(ps->addr->local, "%!@") != NULL)
        ps->addr->flags |= ADDR_F_ROUTING_CHARS;
    if (addr_at_term(ps)) {
        ps->addr->flags |= ADDR_F_UNQUALIFIED;
        return true;
    }
    if (*ps->p != '@')
        return addr_fail_byte(ps, (ps->addr->flags & ADDR_F_QUOTED)
                                      ? "text after quoted local part"
                                      : "invalid character in local part");
    ps->p++;
    if (ps->p < ps->end && *ps->p == '[') {
        if (!addr_parse_literal(ps))
            return false;
    } else {
        bool dot;
        if (!addr_parse_domain(ps, ps->addr->domain, sizeof ps->addr->domain, true, &dot))
            return false;
        if (dot)
            ps->addr->flags |= ADDR_F_TRAILING_DOT;
    }
    if (!addr_at_term(ps)) {
        /* Domains stay ASCII even with ADDR_OPT_ALLOW_8BIT: U-labels would need IDNA. */
        if (*ps->p >= 0x80)
            return addr_fail(ps, "8-bit character in domain");
        return addr_fail_byte(ps, *ps->p == '@' ? "more than one @ (quote the local part)"
                                                : "invalid character in domain");
    }
    return true;
}

/* A-d-l ":" — the source route, validated and then dropped (RFC 5321 4.1.2, C.). */
static bool addr_parse_route(struct addr_parser *ps)
{
    char hop[ADDR_DOMAIN_MAX + 1];
    for (;;) {
        if (ps->p == ps->end || *ps->p != '@')
            return addr_fail_byte(ps, "bad source route");
        ps->p++;
        bool dot;
        if (!addr_parse_domain(ps, hop, sizeof hop, false, &dot))
            return false;
        if (ps->p == ps->end)
            return addr_fail(ps, "missing >");
        if (*ps->p == ':') {
            ps->p++;
            break;
        }
        if (*ps->p != ',')
            return addr_fail_byte(ps, "bad source route");
        ps->p++;
    }
    ps->addr->flags |= ADDR_F_SOURCE_ROUTE;
    return true;
}

static void addr_clear(struct mailaddr *addr)
{
    addr->local[0] = '\0';
    addr->domain[0] = '\0';
    addr->flags = 0;
}

bool addr_parse_path_opts(const char *text, size_t len, unsigned opts, struct mailaddr *addr_r,
                          size_t *consumed_r, const char **error_r)
{
    struct addr_parser ps = {
        .p = (const unsigned char *)text,
        .end = (const unsigned char *)text + len,
        .term = '>',
        .opts = opts,
        .addr = addr_r,
    };
    addr_clear(addr_r);
    if (len == 0 || text[0] != '<') {
        *error_r = "missing <";
        return false;
    }
    ps.p++;
    if (ps.p < ps.end && *ps.p == '>') {
        addr_r->flags = ADDR_F_NULL;
        *consumed_r = 2;
        return true;
    }
    bool ok = true;
    if (ps.p < ps.end && *ps.p == '@')
        ok = addr_parse_route(&ps);
    if (ok)
        ok = addr_parse_mailbox_at(&ps);
    if (ok && ps.p == ps.end)
        ok = addr_fail(&ps, "missing >");
    if (ok && (addr_r->flags & ADDR_F_SOURCE_ROUTE) && (addr_r->flags & ADDR_F_UNQUALIFIED))
        ok = addr_fail(&ps, "source route to an unqualified name");
    if (ok && (size_t)(ps.p + 1 - (const unsigned char *)text) > ADDR_PATH_MAX)
        ok = addr_fail(&ps, "path too long");
    if (!ok) {
        addr_clear(addr_r);
        *error_r = ps.error;
        return false;
    }
    *consumed_r = (size_t)(ps.p + 1 - (const unsigned char *)text);
    return true;
}

bool addr_parse_path(const char *text, size_t len, struct mailaddr *addr_r, size_t *consumed_r,
                     const char **error_r)
{
    return addr_parse_path_opts(text, len, 0, addr_r, consumed_r, error_r);
}

bool addr_parse_mailbox_opts(const char *text, unsigned opts, struct mailaddr *addr_r,
                             const char **error_r)
{
    size_t len = strlen(text);
    struct addr_parser ps = {
        .p = (const unsigned char *)text,
        .end = (const unsigned char *)text + len,
        .term = -1,
        .opts = opts,
        .addr = addr_r,
    };
    addr_clear(addr_r);
    bool ok = addr_parse_mailbox_at(&ps);
    /* The same overall limit as a path, less its two brackets. */
    if (ok && len > ADDR_PATH_MAX - 2)
        ok = addr_fail(&ps, "address too long");
    if (!ok) {
        addr_clear(addr_r);
        *error_r = ps.error;
        return false;
    }
    return true;
}

bool addr_parse_mailbox(const char *text, struct mailaddr *addr_r, const char **error_r)
{
    return addr_parse_mailbox_opts(text, 0, addr_r, error_r);
}

/* True when local can be written as a Dot-string; otherwise it needs a Quoted-string. */
static bool addr_local_is_dot_string(const char *local)
{
    const unsigned char *s = (const unsigned char *)local;
    if (s[0] == '\0' || s[0] == '.')
        return false;
    for (; *s; s++) {
        if (*s == '.') {
            if (s[1] == '.' || s[1] == '\0')
                return false;
        } else if (!addr_is_atext(*s) && *s < 0x80) {
            /* 8-bit bytes only get here from a validated UTF-8 local part (RFC 6531 atext). */
            return false;
        }
    }
    return true;
}

void addr_format(const struct mailaddr *addr, struct buf *out)
{
    if (addr->flags & ADDR_F_NULL)
        return;
    if (addr_local_is_dot_string(addr->local)) {
        buf_append_str(out, addr->local);
    } else {
        buf_append_char(out, '"');
        for (const char *s = addr->local; *s; s++) {
            if (*s == '"' || *s == '\\')
                buf_append_char(out, '\\');
            buf_append_char(out, *s);
        }
        buf_append_char(out, '"');
    }
    if (addr->domain[0] != '\0') {
        buf_append_char(out, '@');
        buf_append_str(out, addr->domain);
    }
}

bool addr_domain_is(const struct mailaddr *addr, const char *domain)
{
    return strcasecmp(addr->domain, domain) == 0;
}
