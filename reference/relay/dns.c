/*
 * relay/dns: hosts file, then c-ares (see dns.h).
 *
 * STANDARDS
 *   RFC 5321 5.1 (MX lookup, preference order, implicit MX), RFC 7505 (null MX),
 *   RFC 1035 (the answers c-ares parses).
 *
 * SECURITY
 *   Answers come from the network: c-ares parses them; names are copied bounded
 *   (RELAY_DNS_NAME_MAX), at most RELAY_DNS_MAX records are kept.
 *
 * CONFIG
 *   nameserver, dns, hosts_file (through the loaded table).
 */
#include "dns.h"

#include <arpa/inet.h>
#include <ares.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "str.h"
#include "xalloc.h"

#define RELAY_DNS_FDS_MAX 16
/* RFC 1035 3.2.2 and RFC 3596 numbers (arpa/nameser.h is not C11-clean) */
#define RELAY_DNS_C_IN 1
#define RELAY_DNS_T_A 1
#define RELAY_DNS_T_MX 15
#define RELAY_DNS_T_AAAA 28

struct relay_dns_fd {
    int fd;
    struct event *ev;
};

struct relay_dns {
    struct event_base *base;
    const struct hostsfile *hosts;
    bool nodns;
    ares_channel channel;
    bool have_channel;
    struct relay_dns_fd fds[RELAY_DNS_FDS_MAX];
    struct event *timer;
    struct relay_dns_req *reqs;   /* outstanding, for cancel at free */
};

enum relay_dns_kind { RELAY_DNS_KIND_MX, RELAY_DNS_KIND_ADDR };

struct relay_dns_req {
    struct relay_dns *dns;
    struct relay_dns_req *next;
    enum relay_dns_kind kind;
    char name[RELAY_DNS_NAME_MAX];
    int family;
    bool cancelled;
    bool want_aaaa;               /* AF_UNSPEC: AAAA still to ask after A */
    bool nxdomain, tempfail;
    relay_dns_mx_fn mx_cb;
    relay_dns_addr_fn addr_cb;
    void *arg;
    /* results */
    enum relay_dns_status st;
    const char *error;
    struct relay_mx mx[RELAY_DNS_MAX];
    struct netaddr addrs[RELAY_DNS_MAX];
    size_t n;
};

static void relay_dns_rearm(struct relay_dns *dns)
{
    if (!dns->have_channel)
        return;
    struct timeval tv, *t = ares_timeout(dns->channel, NULL, &tv);
    if (t)
        evtimer_add(dns->timer, t);
    else
        evtimer_del(dns->timer);
}

static void relay_dns_fd_cb(evutil_socket_t fd, short what, void *arg)
{
    struct relay_dns *dns = arg;
    ares_process_fd(dns->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    relay_dns_rearm(dns);
}

static void relay_dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct relay_dns *dns = arg;
    (void)fd;
    (void)what;
    ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    relay_dns_rearm(dns);
}

/* c-ares tells which sockets it wants watched. */
static void relay_dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct relay_dns *dns = data;
    struct relay_dns_fd *slot = NULL, *free_slot = NULL;
    for (size_t i = 0; i < RELAY_DNS_FDS_MAX; i++) {
        if (dns->fds[i].ev && dns->fds[i].fd == fd)
            slot = &dns->fds[i];
        else if (!dns->fds[i].ev && !free_slot)
            free_slot = &dns->fds[i];
    }
    if (slot) {
        event_free(slot->ev);
        slot->ev = NULL;
    }
    if (!readable && !writable)
        return;
    if (!slot)
        slot = free_slot;
    if (!slot) {
        log_warnx("dns: too many resolver sockets");
        return;
    }
    slot->fd = fd;
    slot->ev = event_new(dns->base, fd, EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0),
                         relay_dns_fd_cb, dns);
    event_add(slot->ev, NULL);
}

struct relay_dns *relay_dns_new(struct event_base *base, const struct zconf *conf,
                                const struct hostsfile *hosts, const char **error_r)
{
    struct relay_dns *dns = xcalloc(1, sizeof *dns);
    dns->base = base;
    dns->hosts = hosts;
    dns->nodns = strcmp(conf->dns, "nodns") == 0;
    dns->timer = evtimer_new(base, relay_dns_timer_cb, dns);
    if (dns->nodns)
        return dns;
    struct ares_options opts;
    memset(&opts, 0, sizeof opts);
    opts.sock_state_cb = relay_dns_sock_state;
    opts.sock_state_cb_data = dns;
    opts.timeout = 3000;
    opts.tries = 2;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    int rc = ares_init_options(&dns->channel, &opts, mask);
    if (rc != ARES_SUCCESS) {
        *error_r = ares_strerror(rc);
        event_free(dns->timer);
        free(dns);
        return NULL;
    }
    dns->have_channel = true;
    if (conf->nameserver[0]) {
        struct zconf_listen ns;
        if (!zconf_parse_listen(conf->nameserver, 53, &ns) ||
            (rc = ares_set_servers_ports_csv(dns->channel, ns.text)) != ARES_SUCCESS) {
            *error_r = "bad nameserver";
            relay_dns_free(dns);
            return NULL;
        }
    }
    return dns;
}

void relay_dns_free(struct relay_dns *dns)
{
    if (!dns)
        return;
    for (struct relay_dns_req *r = dns->reqs; r; r = r->next)
        r->cancelled = true;
    if (dns->have_channel)
        ares_destroy(dns->channel); /* calls back every query with ARES_EDESTRUCTION */
    while (dns->reqs) {             /* hosts-file answers waiting for their turn */
        struct relay_dns_req *r = dns->reqs;
        dns->reqs = r->next;
        free(r);
    }
    for (size_t i = 0; i < RELAY_DNS_FDS_MAX; i++)
        if (dns->fds[i].ev)
            event_free(dns->fds[i].ev);
    event_free(dns->timer);
    free(dns);
}

void relay_dns_set_hosts(struct relay_dns *dns, const struct hostsfile *hosts)
{
    dns->hosts = hosts;
}

void relay_dns_cancel(struct relay_dns_req *req)
{
    if (req)
        req->cancelled = true;
}

static struct relay_dns_req *relay_dns_req_new(struct relay_dns *dns, enum relay_dns_kind kind,
                                               const char *name, void *arg)
{
    struct relay_dns_req *req = xcalloc(1, sizeof *req);
    req->dns = dns;
    req->kind = kind;
    req->arg = arg;
    if (!str_copy(req->name, sizeof req->name, name))
        req->name[0] = '\0';
    req->next = dns->reqs;
    dns->reqs = req;
    return req;
}

/* Delivers the result and frees the request. */
static void relay_dns_finish(struct relay_dns_req *req)
{
    struct relay_dns *dns = req->dns;
    for (struct relay_dns_req **pp = &dns->reqs; *pp; pp = &(*pp)->next) {
        if (*pp == req) {
            *pp = req->next;
            break;
        }
    }
    if (!req->cancelled) {
        if (req->kind == RELAY_DNS_KIND_MX)
            req->mx_cb(req->arg, req->st, req->mx, req->n, req->error);
        else
            req->addr_cb(req->arg, req->st, req->addrs, req->n, req->error);
    }
    free(req);
}

static void relay_dns_later_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    relay_dns_finish(arg);
}

/* Finishes req from the event loop (a hosts-file answer, a refusal). */
static void relay_dns_later(struct relay_dns_req *req)
{
    event_base_once(req->dns->base, -1, EV_TIMEOUT, relay_dns_later_cb, req, &(struct timeval){0, 0});
}

static enum relay_dns_status relay_dns_status_of(int status)
{
    switch (status) {
    case ARES_SUCCESS: return RELAY_DNS_OK;
    case ARES_ENODATA: return RELAY_DNS_NODATA;
    case ARES_ENOTFOUND: return RELAY_DNS_NXDOMAIN;
    default: return RELAY_DNS_TEMPFAIL;
    }
}

static int relay_dns_mx_order(const void *a, const void *b)
{
    const struct relay_mx *x = a, *y = b;
    return x->pref < y->pref ? -1 : x->pref > y->pref;
}

static void relay_dns_mx_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct relay_dns_req *req = arg;
    (void)timeouts;
    if (status == ARES_EDESTRUCTION) {
        req->cancelled = true;
        relay_dns_finish(req);
        return;
    }
    req->st = relay_dns_status_of(status);
    req->error = status == ARES_SUCCESS ? NULL : ares_strerror(status);
    if (status == ARES_SUCCESS) {
        struct ares_mx_reply *mx = NULL;
        int rc = ares_parse_mx_reply(abuf, alen, &mx);
        if (rc != ARES_SUCCESS) {
            req->st = relay_dns_status_of(rc == ARES_ENODATA ? ARES_ENODATA : ARES_EBADRESP);
            req->error = ares_strerror(rc);
        }
        for (struct ares_mx_reply *m = mx; m && req->n < RELAY_DNS_MAX; m = m->next) {
            if (!str_copy(req->mx[req->n].host, sizeof req->mx[req->n].host, m->host))
                continue;
            req->mx[req->n].pref = m->priority;
            req->n++;
        }
        if (mx)
            ares_free_data(mx);
        qsort(req->mx, req->n, sizeof req->mx[0], relay_dns_mx_order);
        if (req->st == RELAY_DNS_OK && req->n == 0) {
            req->st = RELAY_DNS_NODATA;
        } else if (req->n == 1 && (req->mx[0].host[0] == '\0' || strcmp(req->mx[0].host, ".") == 0)) {
            req->st = RELAY_DNS_NXDOMAIN; /* RFC 7505 null MX: the domain takes no mail */
            req->error = "null MX: the domain accepts no mail";
        }
    }
    relay_dns_finish(req);
}

struct relay_dns_req *relay_dns_mx(struct relay_dns *dns, const char *domain, relay_dns_mx_fn cb,
                                   void *arg)
{
    struct relay_dns_req *req = relay_dns_req_new(dns, RELAY_DNS_KIND_MX, domain, arg);
    req->mx_cb = cb;
    if (dns->nodns) {
        req->st = RELAY_DNS_NODATA; /* no MX lookups at all: the domain is its own host */
        relay_dns_later(req);
        return req;
    }
    ares_query(dns->channel, domain, RELAY_DNS_C_IN, RELAY_DNS_T_MX, relay_dns_mx_answer, req);
    relay_dns_rearm(dns);
    return req;
}

static void relay_dns_addr_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct relay_dns_req *req = arg;
    struct relay_dns *dns = req->dns;
    (void)timeouts;
    if (status == ARES_EDESTRUCTION) {
        req->cancelled = true;
        relay_dns_finish(req);
        return;
    }
    bool asked_aaaa = req->family == AF_INET6 || (req->family == AF_UNSPEC && !req->want_aaaa);
    if (status == ARES_SUCCESS) {
        if (!asked_aaaa) {
            struct ares_addrttl ttls[RELAY_DNS_MAX];
            int n = RELAY_DNS_MAX;
            if (ares_parse_a_reply(abuf, alen, NULL, ttls, &n) == ARES_SUCCESS)
                for (int i = 0; i < n && req->n < RELAY_DNS_MAX; i++) {
                    req->addrs[req->n].family = AF_INET;
                    memcpy(req->addrs[req->n].bytes, &ttls[i].ipaddr, 4);
                    req->n++;
                }
        } else {
            struct ares_addr6ttl ttls[RELAY_DNS_MAX];
            int n = RELAY_DNS_MAX;
            if (ares_parse_aaaa_reply(abuf, alen, NULL, ttls, &n) == ARES_SUCCESS)
                for (int i = 0; i < n && req->n < RELAY_DNS_MAX; i++) {
                    req->addrs[req->n].family = AF_INET6;
                    memcpy(req->addrs[req->n].bytes, &ttls[i].ip6addr, 16);
                    req->n++;
                }
        }
    }
    if (status == ARES_ENOTFOUND) {
        req->nxdomain = true;
    } else if (status != ARES_SUCCESS && status != ARES_ENODATA) {
        req->tempfail = true;
        req->error = ares_strerror(status);
    }
    if (req->want_aaaa && !req->cancelled && !req->nxdomain) {
        req->want_aaaa = false;
        ares_query(dns->channel, req->name, RELAY_DNS_C_IN, RELAY_DNS_T_AAAA, relay_dns_addr_answer, req);
        return;
    }
    if (req->n) {
        req->st = RELAY_DNS_OK;
        req->error = NULL;
    } else if (req->nxdomain) {
        req->st = RELAY_DNS_NXDOMAIN;
        req->error = "host not found";
    } else if (req->tempfail) {
        req->st = RELAY_DNS_TEMPFAIL;
    } else {
        req->st = RELAY_DNS_NODATA;
        req->error = "no address records";
    }
    relay_dns_finish(req);
}

struct relay_dns_req *relay_dns_addr(struct relay_dns *dns, const char *host, int family,
                                     relay_dns_addr_fn cb, void *arg)
{
    struct relay_dns_req *req = relay_dns_req_new(dns, RELAY_DNS_KIND_ADDR, host, arg);
    req->addr_cb = cb;
    req->family = family;
    struct netaddr lit;
    if (netaddr_parse(host, &lit)) {
        if (family == AF_UNSPEC || family == lit.family) {
            req->addrs[0] = lit;
            req->n = 1;
        } else {
            req->st = RELAY_DNS_NODATA;
            req->error = "address family does not match smtp_bind_address";
        }
        relay_dns_later(req);
        return req;
    }
    if (dns->hosts) {
        req->n = hostsfile_lookup_name(dns->hosts, host, family, req->addrs, RELAY_DNS_MAX);
        if (req->n) {
            relay_dns_later(req);
            return req;
        }
    }
    if (dns->nodns) {
        req->st = RELAY_DNS_TEMPFAIL;
        req->error = "not in the hosts file (dns = nodns)";
        relay_dns_later(req);
        return req;
    }
    req->want_aaaa = family == AF_UNSPEC;
    ares_query(dns->channel, host, RELAY_DNS_C_IN, family == AF_INET6 ? RELAY_DNS_T_AAAA : RELAY_DNS_T_A,
               relay_dns_addr_answer, req);
    relay_dns_rearm(dns);
    return req;
}
