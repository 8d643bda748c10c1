/* sim_world: the ispsim world file parser (see world.h and docs/ispsim.md). */
#include "sim_world.h"

#include <errno.h>
#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "str.h"
#include "xalloc.h"

#define SIM_WORLD_MAX_ARGS 24

struct sim_world_ctx {
    struct sim_world *w;
    const char *file;
    unsigned line;
    struct cfg_error *err;
};

/* Splits the next blank-separated token off *p; NULL at the end. */
static char *sim_world_token(char **p)
{
    char *s = *p + strspn(*p, " \t");
    if (!*s) {
        *p = s;
        return NULL;
    }
    char *e = s + strcspn(s, " \t");
    if (*e)
        *e++ = '\0';
    *p = e;
    return s;
}

static bool sim_world_fail(struct sim_world_ctx *c, const char *fmt, const char *arg)
{
    cfg_error_set(c->err, c->file, c->line, fmt, arg);
    return false;
}

/* A DNS name: labels of [A-Za-z0-9-_], 1..63 each, at most 253 in all; stored lower case. */
static bool sim_world_dns_name(struct sim_world_ctx *c, const char *text, char *out)
{
    size_t len = strlen(text);
    if (len > 0 && text[len - 1] == '.')
        len--;
    if (len == 0 || len > 253)
        return sim_world_fail(c, "bad DNS name \"%s\"", text);
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (ch == '.') {
            if (label == 0)
                return sim_world_fail(c, "bad DNS name \"%s\"", text);
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '-' || ch == '_') {
            if (++label > 63)
                return sim_world_fail(c, "DNS label too long in \"%s\"", text);
        } else {
            return sim_world_fail(c, "bad DNS name \"%s\"", text);
        }
        out[i] = ch;
    }
    if (label == 0)
        return sim_world_fail(c, "bad DNS name \"%s\"", text);
    out[len] = '\0';
    str_lower(out);
    return true;
}

static bool sim_world_addr(struct sim_world_ctx *c, const char *text, struct netaddr *a)
{
    if (!netaddr_parse(text, a))
        return sim_world_fail(c, "bad address \"%s\"", text);
    return true;
}

/* Splits a comma list into out (each checked by the caller); false when over the limit. */
static int sim_world_list(struct sim_world_ctx *c, char *text, char **out)
{
    int n = str_split(text, ",", out, SIM_WORLD_MAX_LIST);
    if (n < 0) {
        sim_world_fail(c, "more than 16 items in \"%s\"", "list");
        return -1;
    }
    if (n == 0)
        sim_world_fail(c, "empty list%s", "");
    return n == 0 ? -1 : n;
}

static bool sim_world_room(struct sim_world_ctx *c, int count, int max, const char *what)
{
    if (count >= max) {
        cfg_error_set(c->err, c->file, c->line, "too many %s (at most %d)", what, max);
        return false;
    }
    return true;
}

/* Grows an array by one zeroed element; returns its address. */
static void *sim_world_push(void **array, int *count, size_t size)
{
    *array = xreallocarray(*array, (size_t)*count + 1, size);
    void *elem = (char *)*array + (size_t)*count * size;
    memset(elem, 0, size);
    (*count)++;
    return elem;
}

/* Collects "key value" options after the positional arguments. */
#define SIM_WORLD_MAX_OPTS 20

struct sim_world_opts {
    const char *keys[SIM_WORLD_MAX_OPTS];
    char *values[SIM_WORLD_MAX_OPTS];
    int n;
};

static bool sim_world_options(struct sim_world_ctx *c, char **p, const char *const *allowed,
                              struct sim_world_opts *o)
{
    o->n = 0;
    char *key;
    while ((key = sim_world_token(p)) != NULL) {
        int k = -1;
        for (int i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], key) == 0)
                k = i;
        if (k < 0)
            return sim_world_fail(c, "unknown option \"%s\"", key);
        for (int i = 0; i < o->n; i++)
            if (strcmp(o->keys[i], key) == 0)
                return sim_world_fail(c, "option \"%s\" given twice", key);
        if (o->n >= SIM_WORLD_MAX_OPTS)
            return sim_world_fail(c, "too many options at \"%s\"", key);
        char *value = sim_world_token(p);
        if (!value)
            return sim_world_fail(c, "option \"%s\" needs a value", key);
        o->keys[o->n] = allowed[k];
        o->values[o->n] = value;
        o->n++;
    }
    return true;
}

static char *sim_world_opt(const struct sim_world_opts *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->keys[i], key) == 0)
            return o->values[i];
    return NULL;
}

static bool sim_world_need(struct sim_world_ctx *c, char **p, const char *what, char **out)
{
    *out = sim_world_token(p);
    if (!*out)
        return sim_world_fail(c, "missing %s", what);
    return true;
}

static bool sim_world_no_more(struct sim_world_ctx *c, char **p)
{
    char *t = sim_world_token(p);
    if (t)
        return sim_world_fail(c, "unexpected \"%s\"", t);
    return true;
}

static int sim_world_host_arg(struct sim_world_ctx *c, const char *text)
{
    char name[SIM_NAME_MAX];
    if (!sim_world_dns_name(c, text, name))
        return -1;
    int h = sim_world_host_index(c->w, name);
    if (h < 0)
        sim_world_fail(c, "unknown host \"%s\" (declare it with host first)", name);
    return h;
}

static bool sim_world_st_zone(struct sim_world_ctx *c, char *p)
{
    char *name;
    char z[SIM_NAME_MAX];
    if (!sim_world_need(c, &p, "zone name", &name) || !sim_world_no_more(c, &p) ||
        !sim_world_dns_name(c, name, z))
        return false;
    for (int i = 0; i < c->w->nzones; i++)
        if (strcmp(c->w->zones[i], z) == 0)
            return sim_world_fail(c, "zone \"%s\" declared twice", z);
    if (!sim_world_room(c, c->w->nzones, SIM_WORLD_MAX_ZONES, "zones"))
        return false;
    char *slot = sim_world_push((void **)&c->w->zones, &c->w->nzones, SIM_NAME_MAX);
    memcpy(slot, z, strlen(z) + 1);
    return true;
}

static bool sim_world_addr_eq(const struct netaddr *a, const struct netaddr *b);
static bool sim_world_simple_name(struct sim_world_ctx *c, const char *text, char *out,
                                  size_t outsize, const char *what);

/* The link's address for a host: the link's prefix bits, then the host address's low bits. */
static void sim_world_link_addr(const struct sim_link *l, const struct netaddr *host,
                                struct netaddr *out)
{
    *out = *host;
    for (unsigned bit = 0; bit < l->listen.prefix; bit++) {
        uint8_t m = (uint8_t)(0x80u >> (bit % 8));
        out->bytes[bit / 8] = (uint8_t)((out->bytes[bit / 8] & ~m) | (l->listen.addr.bytes[bit / 8] & m));
    }
}

static bool sim_world_st_link(struct sim_world_ctx *c, char *p)
{
    static const char *const allowed[] = {
        "listen", "from", "mode", "latency", "jitter", "bandwidth", "cut-after", "cut-at",
        "cut-times", "stall-after", "slow-close", "random-cut", "random-cut-max", "seed",
        "dial-delay", "idle", "tick", NULL};
    struct sim_world_opts o;
    char *name;
    struct sim_link l;
    memset(&l, 0, sizeof l);
    l.line = c->line;
    l.mode = SIM_LINK_UP;
    sim_link_profile_default(&l.profile);
    if (!sim_world_need(c, &p, "link name", &name) || !sim_world_options(c, &p, allowed, &o) ||
        !sim_world_simple_name(c, name, l.name, sizeof l.name, "link name"))
        return false;
    if (sim_world_link_index(c->w, l.name) >= 0)
        return sim_world_fail(c, "link \"%s\" declared twice", l.name);
    char *listen = sim_world_opt(&o, "listen");
    char *from = sim_world_opt(&o, "from");
    if (!listen || !from)
        return sim_world_fail(c, "link needs \"listen NET\" and \"from ADDR\"%s", "");
    if (!netmask_parse(listen, &l.listen) || l.listen.addr.family != AF_INET ||
        l.listen.prefix == 0 || l.listen.prefix > 24)
        return sim_world_fail(c, "link listen wants an IPv4 network /1../24, not \"%s\"", listen);
    if (!sim_world_addr(c, from, &l.from))
        return false;
    if (l.from.family != AF_INET)
        return sim_world_fail(c, "link from wants an IPv4 address, not \"%s\"", from);
    for (int i = 0; i < o.n; i++) {
        const char *k = o.keys[i];
        if (strcmp(k, "listen") == 0 || strcmp(k, "from") == 0)
            continue;
        if (strcmp(k, "mode") == 0) {
            if (!sim_link_mode_parse(o.values[i], &l.mode))
                return sim_world_fail(c, "link mode must be up, down or demand, not \"%s\"",
                                      o.values[i]);
            continue;
        }
        char e[128];
        if (!sim_link_profile_set(&l.profile, k, o.values[i], e, sizeof e))
            return sim_world_fail(c, "%s", e);
    }
    if (!sim_world_room(c, c->w->nlinks, SIM_WORLD_MAX_LINKS, "links"))
        return false;
    *(struct sim_link *)sim_world_push((void **)&c->w->links, &c->w->nlinks,
                                       sizeof(struct sim_link)) = l;
    return true;
}

static bool sim_world_st_host(struct sim_world_ctx *c, char *p)
{
    static const char *const allowed[] = {"public", "via", NULL};
    struct sim_world_opts o;
    char *name, *addr;
    struct sim_host h;
    memset(&h, 0, sizeof h);
    h.line = c->line;
    h.link = -1;
    if (!sim_world_need(c, &p, "host name", &name) || !sim_world_need(c, &p, "address", &addr) ||
        !sim_world_options(c, &p, allowed, &o) || !sim_world_dns_name(c, name, h.name) ||
        !sim_world_addr(c, addr, &h.addr))
        return false;
    char *pub = sim_world_opt(&o, "public");
    if (pub) {
        if (!sim_world_addr(c, pub, &h.pub))
            return false;
    } else {
        h.pub = h.addr;
    }
    if (sim_world_host_index(c->w, h.name) >= 0)
        return sim_world_fail(c, "host \"%s\" declared twice", h.name);
    if (sim_world_host_by_addr(c->w, &h.addr) >= 0)
        return sim_world_fail(c, "address %s already used by another host", addr);
    for (int i = 0; i < c->w->ncustomers; i++)
        if (memcmp(&c->w->customers[i].addr, &h.addr, sizeof h.addr) == 0)
            return sim_world_fail(c, "address %s is a customer's", addr);
    char *via = sim_world_opt(&o, "via");
    if (via) {
        h.link = sim_world_link_index(c->w, via);
        if (h.link < 0)
            return sim_world_fail(c, "unknown link \"%s\" (declare it with link first)", via);
        const struct sim_link *l = &c->w->links[h.link];
        if (h.addr.family != AF_INET)
            return sim_world_fail(c, "a host via a link needs an IPv4 address, not %s", addr);
        sim_world_link_addr(l, &h.addr, &h.link_addr);
        if (sim_world_host_by_addr(c->w, &h.link_addr) >= 0 ||
            sim_world_addr_eq(&h.link_addr, &h.addr) || sim_world_addr_eq(&h.link_addr, &l->from))
            return sim_world_fail(c, "link address of %s clashes with a host's address", addr);
        for (int i = 0; i < c->w->nhosts; i++)
            if (c->w->hosts[i].link >= 0 && sim_world_addr_eq(&c->w->hosts[i].link_addr, &h.link_addr))
                return sim_world_fail(c, "link address of %s clashes with another host's", addr);
    }
    for (int i = 0; i < c->w->nhosts; i++)
        if (c->w->hosts[i].link >= 0 && sim_world_addr_eq(&c->w->hosts[i].link_addr, &h.addr))
            return sim_world_fail(c, "address %s is another host's link address", addr);
    if (!sim_world_room(c, c->w->nhosts, SIM_WORLD_MAX_HOSTS, "hosts"))
        return false;
    *(struct sim_host *)sim_world_push((void **)&c->w->hosts, &c->w->nhosts,
                                       sizeof(struct sim_host)) = h;
    return true;
}

static bool sim_world_st_record(struct sim_world_ctx *c, char *p)
{
    static const char *const types[] = {"A", "AAAA", "MX", "CNAME", "PTR", "TXT", NULL};
    char *name, *type;
    struct sim_record r;
    memset(&r, 0, sizeof r);
    r.line = c->line;
    if (!sim_world_need(c, &p, "record name", &name) || !sim_world_need(c, &p, "type", &type) ||
        !sim_world_dns_name(c, name, r.name))
        return false;
    bool known = false;
    for (int i = 0; types[i]; i++)
        if (str_eq_nocase(types[i], type)) {
            memcpy(r.type, types[i], strlen(types[i]) + 1);
            known = true;
        }
    if (!known)
        return sim_world_fail(c, "unsupported record type \"%s\" (A AAAA MX CNAME PTR TXT)", type);
    char *data = str_trim(p);
    if (!*data)
        return sim_world_fail(c, "record %s has no data", r.type);
    if (sim_world_zone_of(c->w, r.name) < 0)
        return sim_world_fail(c, "\"%s\" lies in no declared zone", r.name);
    /* ldns checks the data as a zone file would; the text is kept for the DNS server. */
    struct buf text;
    buf_init(&text, 4096);
    if (!buf_printf(&text, "%s. 300 IN %s %s", r.name, r.type, data)) {
        buf_free(&text);
        return sim_world_fail(c, "record data too long%s", "");
    }
    ldns_rr *rr = NULL;
    ldns_status st = ldns_rr_new_frm_str(&rr, text.data, 300, NULL, NULL);
    buf_free(&text);
    if (st != LDNS_STATUS_OK || !rr) {
        if (rr)
            ldns_rr_free(rr);
        return sim_world_fail(c, "bad record data: %s", ldns_get_errorstr_by_id(st));
    }
    ldns_rr_free(rr);
    if (!sim_world_room(c, c->w->nrecords, SIM_WORLD_MAX_RECORDS, "records"))
        return false;
    r.data = xstrdup(data);
    *(struct sim_record *)sim_world_push((void **)&c->w->records, &c->w->nrecords,
                                         sizeof(struct sim_record)) = r;
    return true;
}

static bool sim_world_st_nameserver(struct sim_world_ctx *c, char *p)
{
    char *name;
    if (!sim_world_need(c, &p, "host", &name) || !sim_world_no_more(c, &p))
        return false;
    if (c->w->nameserver >= 0)
        return sim_world_fail(c, "nameserver given twice%s", "");
    int h = sim_world_host_arg(c, name);
    if (h < 0)
        return false;
    c->w->nameserver = h;
    return true;
}

static bool sim_world_st_customer(struct sim_world_ctx *c, char *p)
{
    static const char *const allowed[] = {"public", NULL};
    struct sim_world_opts o;
    char *addr;
    struct sim_customer cu;
    memset(&cu, 0, sizeof cu);
    if (!sim_world_need(c, &p, "address", &addr) || !sim_world_options(c, &p, allowed, &o) ||
        !sim_world_addr(c, addr, &cu.addr))
        return false;
    char *pub = sim_world_opt(&o, "public");
    if (!pub)
        return sim_world_fail(c, "customer needs \"public ADDR\"%s", "");
    if (!sim_world_addr(c, pub, &cu.pub))
        return false;
    if (sim_world_host_by_addr(c->w, &cu.addr) >= 0)
        return sim_world_fail(c, "address %s is a host's", addr);
    if (!sim_world_room(c, c->w->ncustomers, SIM_WORLD_MAX_CUSTOMERS, "customers"))
        return false;
    *(struct sim_customer *)sim_world_push((void **)&c->w->customers, &c->w->ncustomers,
                                           sizeof(struct sim_customer)) = cu;
    return true;
}

static bool sim_world_simple_name(struct sim_world_ctx *c, const char *text, char *out,
                                  size_t outsize, const char *what)
{
    for (const char *q = text; *q; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
              *q == '-' || *q == '_' || *q == '.' || *q == '+'))
            return sim_world_fail(c, "bad character in %s", what);
    if (!*text || text[0] == '.' || !str_copy(out, outsize, text))
        return sim_world_fail(c, "bad or too long %s", what);
    return true;
}

static bool sim_world_st_store(struct sim_world_ctx *c, char *p)
{
    char *name;
    char s[SIM_USER_MAX];
    if (!sim_world_need(c, &p, "store name", &name) || !sim_world_no_more(c, &p) ||
        !sim_world_simple_name(c, name, s, sizeof s, "store name"))
        return false;
    if (sim_world_store_index(c->w, s) >= 0)
        return sim_world_fail(c, "store \"%s\" declared twice", s);
    if (!sim_world_room(c, c->w->nstores, SIM_WORLD_MAX_STORES, "stores"))
        return false;
    char *slot = sim_world_push((void **)&c->w->stores, &c->w->nstores, SIM_USER_MAX);
    memcpy(slot, s, strlen(s) + 1);
    return true;
}

static bool sim_world_address(struct sim_world_ctx *c, const char *text, char *out)
{
    const char *at = strrchr(text, '@');
    if (!at || at == text || strlen(at + 1) >= SIM_NAME_MAX)
        return sim_world_fail(c, "bad address \"%s\" (want local@domain)", text);
    char dom[SIM_NAME_MAX];
    if (!sim_world_dns_name(c, at + 1, dom))
        return false;
    size_t llen = (size_t)(at - text);
    for (size_t i = 0; i < llen; i++)
        if ((unsigned char)text[i] <= ' ' || text[i] == '<' || text[i] == '>' || text[i] == '"')
            return sim_world_fail(c, "bad address \"%s\"", text);
    if (llen + 1 + strlen(dom) >= SIM_NAME_MAX)
        return sim_world_fail(c, "address too long \"%s\"", text);
    memcpy(out, text, llen);
    out[llen] = '@';
    memcpy(out + llen + 1, dom, strlen(dom) + 1);
    return true;
}

static bool sim_world_st_mailbox(struct sim_world_ctx *c, char *p)
{
    static const char *const allowed[] = {"password", "address", "mbox", "quota", "full", NULL};
    struct sim_world_opts o;
    char *store, *user;
    struct sim_mailbox m;
    memset(&m, 0, sizeof m);
    m.line = c->line;
    if (!sim_world_need(c, &p, "store", &store) || !sim_world_need(c, &p, "user", &user) ||
        !sim_world_options(c, &p, allowed, &o))
        return false;
    m.store = sim_world_store_index(c->w, store);
    if (m.store < 0)
        return sim_world_fail(c, "unknown store \"%s\" (declare it with store first)", store);
    if (!sim_world_simple_name(c, user, m.user, sizeof m.user, "user name"))
        return false;
    for (int i = 0; i < c->w->nmailboxes; i++)
        if (c->w->mailboxes[i].store == m.store && strcmp(c->w->mailboxes[i].user, m.user) == 0)
            return sim_world_fail(c, "mailbox \"%s\" declared twice in its store", m.user);
    char *pass = sim_world_opt(&o, "password");
    if (pass && !str_copy(m.password, sizeof m.password, pass))
        return sim_world_fail(c, "password too long%s", "");
    char *addrs = sim_world_opt(&o, "address");
    if (addrs) {
        char *list[SIM_WORLD_MAX_LIST];
        int n = sim_world_list(c, addrs, list);
        if (n < 0)
            return false;
        for (int i = 0; i < n; i++)
            if (!sim_world_address(c, list[i], m.addresses[i]))
                return false;
        m.naddresses = n;
    }
    if (!sim_world_room(c, c->w->nmailboxes, SIM_WORLD_MAX_MAILBOXES, "mailboxes"))
        return false;
    char *quota = sim_world_opt(&o, "quota");
    if (quota) {
        char *end;
        errno = 0;
        m.quota = strtoull(quota, &end, 10);
        if (errno || *end || quota[0] < '0' || quota[0] > '9' || m.quota > (1ull << 40))
            return sim_world_fail(c, "quota wants a number of bytes, not \"%s\"", quota);
    }
    char *full = sim_world_opt(&o, "full");
    m.full_code = 552;
    if (full) {
        if (strcmp(full, "452") == 0)
            m.full_code = 452;
        else if (strcmp(full, "552") != 0)
            return sim_world_fail(c, "full wants 452 or 552, not \"%s\"", full);
    }
    char *mbox = sim_world_opt(&o, "mbox");
    m.mbox = mbox ? xstrdup(mbox) : NULL;
    *(struct sim_mailbox *)sim_world_push((void **)&c->w->mailboxes, &c->w->nmailboxes,
                                          sizeof(struct sim_mailbox)) = m;
    return true;
}

static bool sim_world_st_service(struct sim_world_ctx *c, char *p, enum sim_service_kind kind)
{
    static const char *const smarthost_opts[] = {"customers", "auth", "tls", "relay", "retry",
                                                 NULL};
    static const char *const mx_opts[] = {"domains", "store", "tls", "backup", NULL};
    static const char *const box_opts[] = {"store", "tls", NULL};
    struct sim_world_opts o;
    struct sim_service s;
    char *host;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.store = -1;
    s.line = c->line;
    const char *const *allowed =
        kind == SIM_SVC_SMARTHOST ? smarthost_opts : kind == SIM_SVC_MX ? mx_opts : box_opts;
    if (!sim_world_need(c, &p, "host", &host) || !sim_world_options(c, &p, allowed, &o))
        return false;
    s.host = sim_world_host_arg(c, host);
    if (s.host < 0)
        return false;
    for (int i = 0; i < c->w->nservices; i++) {
        const struct sim_service *t = &c->w->services[i];
        bool t_smtp = t->kind == SIM_SVC_SMARTHOST || t->kind == SIM_SVC_MX;
        bool s_smtp = kind == SIM_SVC_SMARTHOST || kind == SIM_SVC_MX;
        if (t->host == s.host && (t->kind == kind || (t_smtp && s_smtp)))
            return sim_world_fail(c, "host \"%s\" already runs this service", host);
    }
    char *tls = sim_world_opt(&o, "tls");
    if (tls) {
        if (!c->w->certs)
            return sim_world_fail(c, "tls needs a \"certs DIR\" statement above%s", "");
        char *list[SIM_WORLD_MAX_LIST];
        int n = sim_world_list(c, tls, list);
        if (n < 0)
            return false;
        for (int i = 0; i < n; i++) {
            if (strcmp(list[i], "starttls") == 0)
                s.starttls = true;
            else if (strcmp(list[i], "implicit") == 0)
                s.implicit_tls = true;
            else
                return sim_world_fail(c, "tls wants starttls and/or implicit, not \"%s\"", list[i]);
        }
    }
    if (kind == SIM_SVC_SMARTHOST) {
        char *nets = sim_world_opt(&o, "customers");
        if (!nets)
            return sim_world_fail(c, "smarthost needs \"customers NET[,NET]\"%s", "");
        char *list[SIM_WORLD_MAX_LIST];
        int n = sim_world_list(c, nets, list);
        if (n < 0)
            return false;
        for (int i = 0; i < n; i++)
            if (!netmask_parse(list[i], &s.customers[i]))
                return sim_world_fail(c, "bad network \"%s\"", list[i]);
        s.ncustomers = n;
        char *relay = sim_world_opt(&o, "relay");
        if (relay && strcmp(relay, "handoff") == 0)
            s.handoff = true;
        else if (relay && strcmp(relay, "smtp") != 0)
            return sim_world_fail(c, "relay wants smtp or handoff, not \"%s\"", relay);
        char *retry = sim_world_opt(&o, "retry");
        s.retry_s = 60;
        if (retry) {
            char *end;
            errno = 0;
            unsigned long v = strtoul(retry, &end, 10);
            if (errno || *end || retry[0] < '0' || retry[0] > '9' || v < 1 || v > 86400)
                return sim_world_fail(c, "retry wants seconds from 1 to 86400, not \"%s\"", retry);
            s.retry_s = (unsigned)v;
        }
        char *auth = sim_world_opt(&o, "auth");
        if (auth) {
            char *colon = strchr(auth, ':');
            if (!colon || colon == auth || !colon[1])
                return sim_world_fail(c, "auth wants USER:PASSWORD, not \"%s\"", auth);
            *colon = '\0';
            if (!str_copy(s.auth_user, sizeof s.auth_user, auth) ||
                !str_copy(s.auth_pass, sizeof s.auth_pass, colon + 1))
                return sim_world_fail(c, "auth user or password too long%s", "");
        }
    } else {
        char *store = sim_world_opt(&o, "store");
        if (!store)
            return sim_world_fail(c, "missing \"store NAME\"%s", "");
        s.store = sim_world_store_index(c->w, store);
        if (s.store < 0)
            return sim_world_fail(c, "unknown store \"%s\" (declare it with store first)", store);
    }
    if (kind == SIM_SVC_MX) {
        char *doms = sim_world_opt(&o, "domains");
        if (!doms)
            return sim_world_fail(c, "mx needs \"domains D[,D]\"%s", "");
        char *list[SIM_WORLD_MAX_LIST];
        int n = sim_world_list(c, doms, list);
        if (n < 0)
            return false;
        for (int i = 0; i < n; i++) {
            if (!sim_world_dns_name(c, list[i], s.domains[i]))
                return false;
            if (sim_world_mx_for_domain(c->w, s.domains[i]) >= 0)
                return sim_world_fail(c, "domain \"%s\" already has an mx", s.domains[i]);
            for (int j = 0; j < i; j++)
                if (strcmp(s.domains[j], s.domains[i]) == 0)
                    return sim_world_fail(c, "domain \"%s\" listed twice", s.domains[i]);
        }
        s.ndomains = n;
        char *backs = sim_world_opt(&o, "backup");
        if (backs) { /* a backup MX (RFC 5321 5.1): MX 20 and accepted, a primary elsewhere */
            n = sim_world_list(c, backs, list);
            if (n < 0)
                return false;
            for (int i = 0; i < n; i++)
                if (!sim_world_dns_name(c, list[i], s.backup[i]))
                    return false;
            s.nbackup = n;
        }
    }
    if (!sim_world_room(c, c->w->nservices, SIM_WORLD_MAX_SERVICES, "services"))
        return false;
    *(struct sim_service *)sim_world_push((void **)&c->w->services, &c->w->nservices,
                                          sizeof(struct sim_service)) = s;
    return true;
}

static bool sim_world_st_certs(struct sim_world_ctx *c, char *p)
{
    char *dir;
    if (!sim_world_need(c, &p, "folder", &dir) || !sim_world_no_more(c, &p))
        return false;
    if (c->w->certs)
        return sim_world_fail(c, "certs given twice%s", "");
    if (strlen(dir) > 1024)
        return sim_world_fail(c, "certs folder name too long%s", "");
    c->w->certs = xstrdup(dir);
    return true;
}

static bool sim_world_st_world(struct sim_world_ctx *c, char *p)
{
    char *name;
    if (!sim_world_need(c, &p, "world name", &name) || !sim_world_no_more(c, &p))
        return false;
    if (c->w->name[0])
        return sim_world_fail(c, "world named twice%s", "");
    return sim_world_simple_name(c, name, c->w->name, sizeof c->w->name, "world name");
}

static bool sim_world_statement(struct sim_world_ctx *c, char *line)
{
    char *p = line;
    char *kw = sim_world_token(&p);
    if (!kw)
        return true;
    if (strcmp(kw, "world") == 0)
        return sim_world_st_world(c, p);
    if (strcmp(kw, "zone") == 0)
        return sim_world_st_zone(c, p);
    if (strcmp(kw, "host") == 0)
        return sim_world_st_host(c, p);
    if (strcmp(kw, "link") == 0)
        return sim_world_st_link(c, p);
    if (strcmp(kw, "certs") == 0)
        return sim_world_st_certs(c, p);
    if (strcmp(kw, "record") == 0)
        return sim_world_st_record(c, p);
    if (strcmp(kw, "nameserver") == 0)
        return sim_world_st_nameserver(c, p);
    if (strcmp(kw, "customer") == 0)
        return sim_world_st_customer(c, p);
    if (strcmp(kw, "store") == 0)
        return sim_world_st_store(c, p);
    if (strcmp(kw, "mailbox") == 0)
        return sim_world_st_mailbox(c, p);
    if (strcmp(kw, "smarthost") == 0)
        return sim_world_st_service(c, p, SIM_SVC_SMARTHOST);
    if (strcmp(kw, "mx") == 0)
        return sim_world_st_service(c, p, SIM_SVC_MX);
    if (strcmp(kw, "pop3") == 0)
        return sim_world_st_service(c, p, SIM_SVC_POP3);
    if (strcmp(kw, "imap") == 0)
        return sim_world_st_service(c, p, SIM_SVC_IMAP);
    return sim_world_fail(c, "unknown statement \"%s\"", kw);
}

struct sim_world *sim_world_parse(const char *file, const char *data, size_t len,
                                  struct cfg_error *err)
{
    struct sim_world *w = xcalloc(1, sizeof *w);
    w->nameserver = -1;
    struct sim_world_ctx c = {.w = w, .file = file, .err = err};
    struct cfg_reader r;
    cfg_reader_init(&r, file, data, len, CFG_TRAILING_COMMENT);
    char *line;
    int rc;
    while ((rc = cfg_reader_next(&r, &line, &c.line, err)) == 1) {
        if (!sim_world_statement(&c, line)) {
            rc = -1;
            break;
        }
    }
    cfg_reader_free(&r);
    if (rc < 0) {
        sim_world_free(w);
        return NULL;
    }
    /* Whole-file checks: every host's name must be answerable by the DNS server. */
    for (int i = 0; i < w->nhosts; i++) {
        if (sim_world_zone_of(w, w->hosts[i].name) < 0) {
            cfg_error_set(err, file, w->hosts[i].line, "host \"%s\" lies in no declared zone",
                          w->hosts[i].name);
            sim_world_free(w);
            return NULL;
        }
    }
    return w;
}

void sim_world_free(struct sim_world *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->nrecords; i++)
        free(w->records[i].data);
    for (int i = 0; i < w->nmailboxes; i++)
        free(w->mailboxes[i].mbox);
    free(w->certs);
    free(w->hosts);
    free(w->links);
    free(w->zones);
    free(w->records);
    free(w->customers);
    free(w->stores);
    free(w->mailboxes);
    free(w->services);
    free(w);
}

int sim_world_host_index(const struct sim_world *w, const char *name)
{
    for (int i = 0; i < w->nhosts; i++)
        if (str_eq_nocase(w->hosts[i].name, name))
            return i;
    return -1;
}

int sim_world_link_index(const struct sim_world *w, const char *name)
{
    for (int i = 0; i < w->nlinks; i++)
        if (strcmp(w->links[i].name, name) == 0)
            return i;
    return -1;
}

const struct netaddr *sim_world_host_dns_addr(const struct sim_world *w, int host)
{
    const struct sim_host *h = &w->hosts[host];
    return h->link >= 0 && host != w->nameserver ? &h->link_addr : &h->addr;
}

int sim_world_store_index(const struct sim_world *w, const char *name)
{
    for (int i = 0; i < w->nstores; i++)
        if (strcmp(w->stores[i], name) == 0)
            return i;
    return -1;
}

static bool sim_world_addr_eq(const struct netaddr *a, const struct netaddr *b)
{
    size_t n = a->family == AF_INET ? 4 : 16;
    return a->family == b->family && memcmp(a->bytes, b->bytes, n) == 0;
}

int sim_world_host_by_addr(const struct sim_world *w, const struct netaddr *addr)
{
    for (int i = 0; i < w->nhosts; i++)
        if (sim_world_addr_eq(&w->hosts[i].addr, addr))
            return i;
    return -1;
}

void sim_world_public_of(const struct sim_world *w, const struct netaddr *addr,
                         struct netaddr *pub_r)
{
    int h = sim_world_host_by_addr(w, addr);
    if (h >= 0) {
        *pub_r = w->hosts[h].pub;
        return;
    }
    for (int i = 0; i < w->ncustomers; i++)
        if (sim_world_addr_eq(&w->customers[i].addr, addr)) {
            *pub_r = w->customers[i].pub;
            return;
        }
    *pub_r = *addr;
}

int sim_world_mx_for_domain(const struct sim_world *w, const char *domain)
{
    for (int i = 0; i < w->nservices; i++) {
        const struct sim_service *s = &w->services[i];
        if (s->kind != SIM_SVC_MX)
            continue;
        for (int d = 0; d < s->ndomains; d++)
            if (str_eq_nocase(s->domains[d], domain))
                return i;
    }
    return -1;
}

int sim_world_mailbox_for(const struct sim_world *w, int store, const char *address)
{
    for (int i = 0; i < w->nmailboxes; i++) {
        const struct sim_mailbox *m = &w->mailboxes[i];
        if (m->store != store)
            continue;
        for (int a = 0; a < m->naddresses; a++)
            if (str_eq_nocase(m->addresses[a], address))
                return i;
    }
    const char *at = strrchr(address, '@');
    size_t llen = at ? (size_t)(at - address) : strlen(address);
    for (int i = 0; i < w->nmailboxes; i++) {
        const struct sim_mailbox *m = &w->mailboxes[i];
        if (m->store == store && m->naddresses == 0 && strlen(m->user) == llen &&
            strncasecmp(m->user, address, llen) == 0)
            return i;
    }
    return -1;
}

int sim_world_zone_of(const struct sim_world *w, const char *name)
{
    size_t nlen = strlen(name);
    if (nlen > 0 && name[nlen - 1] == '.')
        nlen--;
    int best = -1;
    size_t best_len = 0;
    for (int i = 0; i < w->nzones; i++) {
        size_t zlen = strlen(w->zones[i]);
        if (zlen > nlen || strncasecmp(name + nlen - zlen, w->zones[i], zlen) != 0)
            continue;
        if (zlen < nlen && name[nlen - zlen - 1] != '.')
            continue;
        if (best < 0 || zlen > best_len) {
            best = i;
            best_len = zlen;
        }
    }
    return best;
}
