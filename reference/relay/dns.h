/*
 * relay/dns: name resolution for outbound delivery: the hosts file first, then c-ares
 * against `nameserver` (or /etc/resolv.conf), asynchronous on zolderd's libevent loop.
 * With dns = nodns only the hosts file is used. Results always arrive by callback from the
 * event loop, never from inside the call that asked.
 */
#ifndef ZOLDER_RELAY_DNS_H
#define ZOLDER_RELAY_DNS_H

#include <stddef.h>

#include <event2/event.h>

#include "hostsfile.h"
#include "netaddr.h"
#include "zconf.h"

#define RELAY_DNS_MAX 16          /* MX hosts or addresses kept per answer */
#define RELAY_DNS_NAME_MAX 256

enum relay_dns_status {
    RELAY_DNS_OK,
    RELAY_DNS_NODATA,     /* the name exists, without records of that type */
    RELAY_DNS_NXDOMAIN,   /* the name does not exist (permanent) */
    RELAY_DNS_TEMPFAIL,   /* SERVFAIL, timeout, refused, no answer */
};

struct relay_mx {
    char host[RELAY_DNS_NAME_MAX];
    unsigned pref;
};

struct relay_dns;
struct relay_dns_req;

typedef void (*relay_dns_mx_fn)(void *arg, enum relay_dns_status st, const struct relay_mx *mx,
                                size_t n, const char *error);
typedef void (*relay_dns_addr_fn)(void *arg, enum relay_dns_status st, const struct netaddr *addrs,
                                  size_t n, const char *error);

/* NULL with *error_r when c-ares cannot be set up. */
struct relay_dns *relay_dns_new(struct event_base *base, const struct zconf *conf,
                                const struct hostsfile *hosts, const char **error_r);
/* Pending requests are cancelled first; their callbacks are not called. */
void relay_dns_free(struct relay_dns *dns);
/* After a reload: the new hosts table (NULL: none). */
void relay_dns_set_hosts(struct relay_dns *dns, const struct hostsfile *hosts);
/* MX records of domain, by preference (lowest first). */
struct relay_dns_req *relay_dns_mx(struct relay_dns *dns, const char *domain, relay_dns_mx_fn cb,
                                   void *arg);
/* Addresses of host (family AF_INET, AF_INET6 or AF_UNSPEC: A then AAAA). */
struct relay_dns_req *relay_dns_addr(struct relay_dns *dns, const char *host, int family,
                                     relay_dns_addr_fn cb, void *arg);
/* The callback of req will not be called. */
void relay_dns_cancel(struct relay_dns_req *req);

#endif
