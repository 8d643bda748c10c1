/*
 * hostsfile: the /etc/hosts format, parsed from bytes, looked up by name and by address.
 * zolder consults its own hosts file before DNS (the seed's offline smarthost lookup, LAN
 * names). No I/O: the caller reads the file.
 *
 * SYNTAX (see docs/maps.md)
 *   ADDRESS  canonical-name  [alias ...]     # comment (whole line, or after a blank)
 *   ADDRESS: IPv4 dotted quad or IPv6 (no brackets, no %scope). Names: host-name syntax,
 *   compared case-insensitively, a trailing dot ignored. One address may appear on several
 *   lines and one name under several addresses (v4 and v6): lookups return all, in file order.
 */
#ifndef ZOLDER_HOSTSFILE_H
#define ZOLDER_HOSTSFILE_H

#include <stddef.h>

#include "cfglex.h"
#include "netaddr.h"

#define HOSTSFILE_ENTRIES_MAX 10000
#define HOSTSFILE_NAMES_MAX 64  /* names on one line */

struct hostsfile;

/*
 * Parses a hosts file held in data[0..len). On success stores a new table in *hosts_r and
 * returns 0; on failure returns -1 with "FILE:LINE: what was expected" in err.
 */
int hostsfile_load(struct hostsfile **hosts_r, const char *file, const char *data, size_t len,
                   struct cfg_error *err);
void hostsfile_free(struct hostsfile *hosts);
/* Number of address lines. */
size_t hostsfile_count(const struct hostsfile *hosts);

/*
 * The distinct addresses listed for name, in file order, filtered by family (AF_INET,
 * AF_INET6, or AF_UNSPEC for both). Stores at most max in addrs_r and returns how many it
 * stored; 0: the name is not in the file (for that family).
 */
size_t hostsfile_lookup_name(const struct hostsfile *hosts, const char *name, int family,
                             struct netaddr *addrs_r, size_t max);

/*
 * The canonical (first) name of the first line listing addr (::ffff:a.b.c.d is looked up as
 * a.b.c.d), lower-case, or NULL. Valid while hosts lives.
 */
const char *hostsfile_lookup_addr(const struct hostsfile *hosts, const struct netaddr *addr);

#endif
