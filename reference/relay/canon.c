/*
 * canon: `dns = canonify`, the RCPT-time check of a remote recipient's domain (as Postfix's
 * reject_unknown_recipient_domain), on the relay's c-ares resolver so the answer is shared
 * with nothing else and never blocks the event loop.
 *
 * DESCRIPTION
 *   An MX lookup; a domain with MX records passes. Without MX (NODATA) or without the name
 *   (NXDOMAIN) the domain's own addresses decide (RFC 5321 5.1 implicit MX; the hosts file
 *   counts, as it does for delivery). The verdict: 2 passes, 5 does not exist (NXDOMAIN, no
 *   address, or a null MX, RFC 7505), 4 could not be told now (SERVFAIL, timeout).
 *
 * CONFIG
 *   dns (smtpd asks only with canonify), nameserver, hosts_file, smtp_bind_address (the
 *   address family).
 */
#include <stdlib.h>
#include <string.h>

#include "relay_int.h"
#include "str.h"
#include "xalloc.h"

struct relay_canon {
    struct relay *relay;
    char domain[RELAY_DNS_NAME_MAX];
    struct relay_dns_req *req;
    relay_canon_fn done;
    void *arg;
};

static void relay_canon_finish(struct relay_canon *c, int verdict, const char *detail)
{
    relay_canon_fn done = c->done;
    void *arg = c->arg;
    free(c);
    done(arg, verdict, detail);
}

static void relay_canon_addr_answer(void *arg, enum relay_dns_status st, const struct netaddr *addrs,
                                    size_t n, const char *error)
{
    struct relay_canon *c = arg;
    (void)addrs;
    c->req = NULL;
    if (st == RELAY_DNS_OK && n > 0)
        relay_canon_finish(c, 2, "");
    else if (st == RELAY_DNS_OK || st == RELAY_DNS_NODATA || st == RELAY_DNS_NXDOMAIN)
        relay_canon_finish(c, 5, error ? error : "no MX and no address");
    else
        relay_canon_finish(c, 4, error ? error : "temporary failure");
}

static void relay_canon_mx_answer(void *arg, enum relay_dns_status st, const struct relay_mx *mx, size_t n,
                                  const char *error)
{
    struct relay_canon *c = arg;
    (void)mx;
    c->req = NULL;
    switch (st) {
    case RELAY_DNS_OK:
        relay_canon_finish(c, 2, "");
        return;
    case RELAY_DNS_NXDOMAIN:
        if (n > 0) { /* a null MX (RFC 7505): the domain says it takes no mail */
            relay_canon_finish(c, 5, error ? error : "null MX");
            return;
        }
        /* the hosts file may still know the name */
        __attribute__((fallthrough));
    case RELAY_DNS_NODATA:
        c->req = relay_dns_addr(c->relay->dns, c->domain, c->relay->family, relay_canon_addr_answer, c);
        return;
    default:
        relay_canon_finish(c, 4, error ? error : "temporary failure");
        return;
    }
}

struct relay_canon *relay_canon_check(struct relay *relay, const char *domain, relay_canon_fn done,
                                      void *arg)
{
    struct relay_canon *c = xcalloc(1, sizeof *c);
    c->relay = relay;
    c->done = done;
    c->arg = arg;
    if (!str_copy(c->domain, sizeof c->domain, domain)) {
        free(c);
        return NULL; /* longer than any DNS name: the caller refuses it */
    }
    c->req = relay_dns_mx(relay->dns, c->domain, relay_canon_mx_answer, c);
    return c;
}

void relay_canon_cancel(struct relay_canon *c)
{
    if (!c)
        return;
    relay_dns_cancel(c->req);
    free(c);
}
