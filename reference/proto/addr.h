/*
 * addr: RFC 5321 paths and mailboxes (4.1.2), pure parsing, no I/O.
 *
 * The parser records every "address trick" it sees instead of silently normalising it, so
 * relay control can refuse them: source routes (@a,@b:user@dom; RFC 5321 says to ignore the
 * route, and we expose the real mailbox), '%' '!' or '@' inside the local part (the old
 * percent hack, UUCP bang paths, quoted "user@other"@local), a trailing dot on the domain,
 * address literals, and unqualified names.
 *
 * Strict RFC 5321 syntax otherwise: no whitespace or comments, no control characters, no
 * second unquoted '@' (user@other@here is refused; only a quoted local part can carry '@'),
 * domains are LDH labels of 1-63 bytes, literals are IPv4 or IPv6 (checked with inet_pton).
 * Lengths are checked on the wire form: local part 64, domain 255, whole path 256.
 */
#ifndef ZOLDER_ADDR_H
#define ZOLDER_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define ADDR_LOCAL_MAX 64    /* RFC 5321 4.5.3.1.1 */
#define ADDR_DOMAIN_MAX 255  /* RFC 5321 4.5.3.1.2 */
#define ADDR_PATH_MAX 256    /* RFC 5321 4.5.3.1.3, including the brackets */

enum addr_flag {
    ADDR_F_NULL = 1 << 0,          /* <> */
    ADDR_F_SOURCE_ROUTE = 1 << 1,  /* <@relay:user@dom>: route dropped, mailbox kept */
    ADDR_F_QUOTED = 1 << 2,        /* local part was a quoted-string */
    ADDR_F_ROUTING_CHARS = 1 << 3, /* '%', '!' or '@' inside the (unquoted) local part */
    ADDR_F_LITERAL = 1 << 4,       /* domain is [1.2.3.4] or [IPv6:...] */
    ADDR_F_TRAILING_DOT = 1 << 5,  /* user@dom. (the dot is stripped in domain) */
    ADDR_F_UNQUALIFIED = 1 << 6,   /* no @domain at all (domain is "") */
    ADDR_F_8BIT = 1 << 7,          /* non-ASCII bytes (SMTPUTF8 territory) */
};

struct mailaddr {
    char local[ADDR_LOCAL_MAX * 2 + 3]; /* unquoted form: quotes and backslashes removed */
    char domain[ADDR_DOMAIN_MAX + 1];   /* lower-cased, trailing dot removed; "[1.2.3.4]" kept */
    unsigned flags;
};

/*
 * Parses a path starting at text[0] == '<' (RFC 5321 Reverse-path / Forward-path), for
 * example `<user@dom>`, `<>`, `<@a,@b:user@dom>`, `<"a b"@dom>`. On success stores the
 * number of bytes consumed (through the closing '>') and returns true. On failure returns
 * false with a short reason in *error_r (static text, e.g. "missing >").
 * Whether <> is allowed is the caller's decision (MAIL yes, RCPT no).
 */
bool addr_parse_path(const char *text, size_t len, struct mailaddr *addr_r, size_t *consumed_r,
                     const char **error_r);

/* Parses a bare mailbox (no brackets), as in a users file or an alias target. */
bool addr_parse_mailbox(const char *text, struct mailaddr *addr_r, const char **error_r);

/*
 * Parse options (added). The two functions above use 0: every byte above 0x7f is refused
 * ("8-bit character in address"), because zolder does not offer SMTPUTF8.
 * ADDR_OPT_ALLOW_8BIT admits well-formed UTF-8 in the local part only (RFC 6531 3.3; atoms and
 * quoted strings, not quoted-pairs) and sets ADDR_F_8BIT. Domains stay ASCII: U-labels would
 * need IDNA, which we do not do, so an 8-bit domain is refused under either setting.
 */
#define ADDR_OPT_ALLOW_8BIT (1u << 0)

bool addr_parse_path_opts(const char *text, size_t len, unsigned opts, struct mailaddr *addr_r,
                          size_t *consumed_r, const char **error_r);
bool addr_parse_mailbox_opts(const char *text, unsigned opts, struct mailaddr *addr_r,
                             const char **error_r);

/* Writes local@domain, quoting the local part when it needs it; "" for the null path. */
void addr_format(const struct mailaddr *addr, struct buf *out);

/* Case-insensitive domain compare (domains are stored lower-case already). */
bool addr_domain_is(const struct mailaddr *addr, const char *domain);

#endif
