/*
 * hostsallow: tcp-wrapper access control tables (hosts.allow / hosts.deny, hosts_access(5)),
 * parsed from bytes and evaluated for one client. No I/O, no DNS: the caller resolves.
 *
 * SYNTAX (see docs/maps.md)
 *   daemon_list : client_list [ : allow|deny ]
 *   '#' starts a comment (whole line, or after a blank); a line ending in '\' continues.
 *   Lists are separated by blanks and/or commas; "A EXCEPT B" matches A but not B (nested
 *   EXCEPTs group to the right).
 *   Daemons: smtpd, pop3d, imapd (zolderd's services), ALL. Unknown names are errors, so a
 *   typo cannot silently leave a service unprotected.
 *   Clients:
 *     ALL                  every client
 *     LOCAL                a verified host name without a dot
 *     KNOWN / UNKNOWN      a verified host name is / is not available
 *     .example.com         verified host names ending in .example.com
 *     host.example.com     exactly that verified host name
 *     192.168.1.           address prefix on octet boundaries (never 192.168.10.x)
 *     192.168.1.0/255.255.255.0, 192.168.1.0/24, 192.168.1.5
 *     [2001:db8::]/32, [::1]
 *   Refused with a file:line error: PARANOID, @netgroup, /file patterns, wildcards, daemon@host,
 *   "192.168.1" without the trailing dot (tcpd would compare it as a host name and never match),
 *   and every option except allow/deny (no spawn, twist, setenv...: zolder runs nothing).
 *
 * SECURITY
 *   Host-name patterns (names, .suffix, LOCAL, KNOWN) see ONLY the forward-confirmed reverse
 *   name the caller passes (FCrDNS: PTR name whose A/AAAA records include the address). Never
 *   pass an unverified PTR name: its owner chooses it freely.
 */
#ifndef ZOLDER_HOSTSALLOW_H
#define ZOLDER_HOSTSALLOW_H

#include <stdbool.h>
#include <stddef.h>

#include "cfglex.h"
#include "netaddr.h"

#define HOSTSALLOW_RULES_MAX 10000
#define HOSTSALLOW_ITEMS_MAX 256  /* patterns in one daemon or client list */

/* One file: hosts.allow or hosts.deny. */
struct hostsallow;

enum hostsallow_verdict { HOSTSALLOW_ALLOW, HOSTSALLOW_DENY };

struct hostsallow_decision {
    enum hostsallow_verdict verdict;
    const char *file;  /* file of the deciding rule (valid while its table lives); NULL: default */
    unsigned lineno;   /* its line; 0 for the default */
};

/*
 * Parses one table held in data[0..len); file names it in errors and decisions. On success
 * stores a new table in *table_r and returns 0; on failure returns -1 with
 * "FILE:LINE: what was expected" in err.
 */
int hostsallow_load(struct hostsallow **table_r, const char *file, const char *data, size_t len,
                    struct cfg_error *err);
void hostsallow_free(struct hostsallow *table);
size_t hostsallow_count(const struct hostsallow *table);

/*
 * The first rule of table matching (daemon, addr, verified_name): true with its line in
 * *lineno_r and in *verdict_r its option, or dflt when it has none. verified_name: the FCrDNS
 * name or NULL.
 */
bool hostsallow_match(const struct hostsallow *table, const char *daemon,
                      const struct netaddr *addr, const char *verified_name,
                      enum hostsallow_verdict dflt, enum hostsallow_verdict *verdict_r,
                      unsigned *lineno_r);

/*
 * The hosts_access decision: the first matching rule in allow (allow unless its option says
 * deny), else the first in deny (deny unless its option says allow), else allow. Either table
 * may be NULL (file absent). decision_r may be NULL.
 */
enum hostsallow_verdict hostsallow_decide(const struct hostsallow *allow,
                                          const struct hostsallow *deny, const char *daemon,
                                          const struct netaddr *addr, const char *verified_name,
                                          struct hostsallow_decision *decision_r);

/*
 * The seed's pitfall, checked at startup: would a client at 127.0.0.1 (local injection, the
 * fetch service handing mail to smtpd) be denied for daemon? Checks it both with the verified
 * name "localhost" and with no verified name, and answers true if either is denied (a hosts
 * file without 127.0.0.1 makes the second case real). decision_r gets the denying decision.
 */
bool hostsallow_denies_localhost(const struct hostsallow *allow, const struct hostsallow *deny,
                                 const char *daemon, struct hostsallow_decision *decision_r);

#endif
