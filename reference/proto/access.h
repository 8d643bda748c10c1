/*
 * access: the sendmail access map ("key  action" per line), parsed from bytes and looked up by
 * client, sender and recipient. No I/O: the caller reads the file (fs_read_file).
 *
 * KEYS (optionally tagged "Connect:", "From:" or "To:"; tags and keys are case-insensitive)
 *   192.168.1  10.  10.0.0.0/8  10.1.2.3    IPv4 network (octet prefixes on octet boundaries)
 *   IPv6:2001:db8::/32  2001:db8::1         IPv6 network or address
 *   example.com                             a domain and all its subdomains
 *   spammer@example.com                     one full address
 *   postmaster@                             a local part, in any domain
 * Untagged keys apply to every lookup their kind fits: networks to Connect, domains to Connect
 * (the client's verified host name), From and To, addresses and local parts to From and To.
 * A tagged key applies to its lookup only; Connect: takes networks and host names, From: and
 * To: take addresses, local parts and domains.
 *
 * ACTIONS
 *   OK  RELAY  REJECT  DISCARD  SKIP  ERROR:5.7.1:550 text  ERROR:550 text  ERROR:"550 text"
 *
 * PRECEDENCE (the most specific match wins; see docs/maps.md)
 *   Connect: the verified host name (exact name, then parent domains, nearest first), then
 *            the address (longest network prefix first) -- sendmail's order.
 *   From/To: full address, then domain (exact, then parent domains), then "user@".
 *   At the same key, the tagged entry beats the untagged one. SKIP as the winning entry means
 *   "no decision here": the caller applies its default, as if nothing matched.
 */
#ifndef ZOLDER_ACCESS_H
#define ZOLDER_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "cfglex.h"
#include "netaddr.h"

#define ACCESS_ENTRIES_MAX 20000
#define ACCESS_TEXT_MAX 200  /* ERROR: reply text */

struct access;

enum access_action {
    ACCESS_NONE = 0,  /* nothing matched */
    ACCESS_OK,
    ACCESS_RELAY,
    ACCESS_REJECT,
    ACCESS_DISCARD,
    ACCESS_SKIP,
    ACCESS_ERROR,     /* reply with code/dsn/text */
};

struct access_verdict {
    enum access_action action;
    unsigned code;     /* ACCESS_ERROR: 4xx or 5xx; else 0 */
    char dsn[12];      /* ACCESS_ERROR: "5.7.1", or "" when the entry gave none */
    const char *text;  /* ACCESS_ERROR: reply text, maybe ""; valid while the map lives */
    unsigned lineno;   /* line of the deciding entry; 0 when nothing matched */
};

/*
 * Parses an access map held in data[0..len). On success stores a new map in *access_r and
 * returns 0; on failure returns -1 with "FILE:LINE: what was expected" in err.
 */
int access_load(struct access **access_r, const char *file, const char *data, size_t len,
                struct cfg_error *err);
void access_free(struct access *access);
size_t access_count(const struct access *access);

/*
 * Client check. verified_name is the forward-confirmed reverse name of addr, or NULL; an
 * unverified PTR name must never be passed, since anyone controlling their reverse zone could
 * claim to be in a listed domain. verdict_r may be NULL.
 */
enum access_action access_check_connect(const struct access *access, const struct netaddr *addr,
                                        const char *verified_name,
                                        struct access_verdict *verdict_r);
/*
 * Sender / recipient checks on a bare address ("user@domain", no angle brackets). An address
 * without '@' is checked as a local part only; the null sender ("") matches nothing.
 */
enum access_action access_check_from(const struct access *access, const char *sender,
                                     struct access_verdict *verdict_r);
enum access_action access_check_to(const struct access *access, const char *rcpt,
                                   struct access_verdict *verdict_r);

/* "OK", "RELAY", ... for logs; "NONE" for ACCESS_NONE. */
const char *access_action_name(enum access_action action);

#endif
