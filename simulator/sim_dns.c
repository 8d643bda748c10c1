/* sim_dns: ispsim's authoritative answers over ldns (see sim_dns.h). */
#include "sim_dns.h"

#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "str.h"
#include "xalloc.h"

#define SIM_DNS_TTL 300
#define SIM_DNS_CNAME_DEPTH 8

struct sim_dns_db {
    ldns_rr_list *rrs;
    ldns_rdf **zones;             /* apex names, the implicit reverse zones included */
    ldns_rr **soas;               /* one per zone */
    int nzones;
};

static const char *const sim_dns_fault_names[] = {"none", "servfail", "nxdomain", "drop", "delay", "truncate"};

bool sim_dns_fault_parse(const char *text, enum sim_dns_fault *fault_r)
{
    for (size_t i = 0; i < sizeof sim_dns_fault_names / sizeof sim_dns_fault_names[0]; i++)
        if (strcmp(text, sim_dns_fault_names[i]) == 0) {
            *fault_r = (enum sim_dns_fault)i;
            return true;
        }
    return false;
}

const char *sim_dns_fault_name(enum sim_dns_fault fault) { return sim_dns_fault_names[fault]; }

bool sim_dns_faults_set(struct sim_dns_faults *f, const char *name, enum sim_dns_fault fault,
                        unsigned delay_ms)
{
    char key[SIM_NAME_MAX];
    if (!str_copy(key, sizeof key, name) || !key[0])
        return false;
    size_t len = strlen(key);
    if (len > 1 && key[len - 1] == '.')
        key[len - 1] = '\0';
    str_lower(key);
    int slot = -1;
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->rules[i].name, key) == 0)
            slot = i;
    if (slot < 0) {
        if (f->n >= SIM_DNS_MAX_FAULTS)
            return false;
        slot = f->n++;
    }
    if (fault == SIM_DNS_NONE) {
        f->rules[slot] = f->rules[--f->n];
        return true;
    }
    memcpy(f->rules[slot].name, key, strlen(key) + 1);
    f->rules[slot].fault = fault;
    f->rules[slot].delay_ms = delay_ms;
    return true;
}

static bool sim_dns_add(struct sim_dns_db *db, const char *text, char *err, size_t errsize)
{
    ldns_rr *rr = NULL;
    ldns_status st = ldns_rr_new_frm_str(&rr, text, SIM_DNS_TTL, NULL, NULL);
    if (st != LDNS_STATUS_OK || !rr) {
        snprintf(err, errsize, "record \"%s\": %s", text, ldns_get_errorstr_by_id(st));
        if (rr)
            ldns_rr_free(rr);
        return false;
    }
    ldns_rr_list_push_rr(db->rrs, rr);
    return true;
}

static void sim_dns_reverse_name(const struct netaddr *a, char *out, size_t size)
{
    struct buf b;
    buf_init(&b, 0);
    if (a->family == AF_INET) {
        buf_printf(&b, "%u.%u.%u.%u.in-addr.arpa.", a->bytes[3], a->bytes[2], a->bytes[1],
                   a->bytes[0]);
    } else {
        for (int i = 15; i >= 0; i--)
            buf_printf(&b, "%x.%x.", a->bytes[i] & 0xf, a->bytes[i] >> 4);
        buf_append_str(&b, "ip6.arpa.");
    }
    str_copy(out, size, b.data);
    buf_free(&b);
}

static bool sim_dns_add_zone(struct sim_dns_db *db, const char *apex, const char *ns, char *err,
                             size_t errsize)
{
    char text[SIM_NAME_MAX * 3 + 64];
    db->zones = xreallocarray(db->zones, (size_t)db->nzones + 1, sizeof(ldns_rdf *));
    db->soas = xreallocarray(db->soas, (size_t)db->nzones + 1, sizeof(ldns_rr *));
    snprintf(text, sizeof text, "%s. %d IN SOA %s. hostmaster.%s. 1 3600 600 86400 %d", apex,
             SIM_DNS_TTL, ns, apex, SIM_DNS_TTL);
    ldns_rr *soa = NULL;
    if (ldns_rr_new_frm_str(&soa, text, SIM_DNS_TTL, NULL, NULL) != LDNS_STATUS_OK || !soa) {
        snprintf(err, errsize, "zone %s: cannot make its SOA", apex);
        if (soa)
            ldns_rr_free(soa);
        return false;
    }
    db->zones[db->nzones] = ldns_rdf_clone(ldns_rr_owner(soa));
    db->soas[db->nzones] = soa;
    db->nzones++;
    ldns_rr_list_push_rr(db->rrs, ldns_rr_clone(soa));
    snprintf(text, sizeof text, "%s. %d IN NS %s.", apex, SIM_DNS_TTL, ns);
    return sim_dns_add(db, text, err, errsize);
}

struct sim_dns_db *sim_dns_db_new(const struct sim_world *w, char *err, size_t errsize)
{
    struct sim_dns_db *db = xcalloc(1, sizeof *db);
    db->rrs = ldns_rr_list_new();
    char text[SIM_NAME_MAX * 3 + 4200];
    const char *ns = w->nameserver >= 0 ? w->hosts[w->nameserver].name : "ns.invalid";
    for (int i = 0; i < w->nzones; i++)
        if (!sim_dns_add_zone(db, w->zones[i], ns, err, errsize))
            goto fail;
    if (!sim_dns_add_zone(db, "in-addr.arpa", ns, err, errsize) ||
        !sim_dns_add_zone(db, "ip6.arpa", ns, err, errsize))
        goto fail;
    for (int i = 0; i < w->nhosts; i++) {
        const struct sim_host *h = &w->hosts[i];
        const struct netaddr *dnsaddr = sim_world_host_dns_addr(w, i);
        char addr[NETADDR_STRLEN], rev[SIM_NAME_MAX];
        netaddr_format(dnsaddr, addr, sizeof addr);
        snprintf(text, sizeof text, "%s. %d IN %s %s", h->name, SIM_DNS_TTL,
                 dnsaddr->family == AF_INET ? "A" : "AAAA", addr);
        if (!sim_dns_add(db, text, err, errsize))
            goto fail;
        /* The PTR of its own address, and of its link address when it has one. */
        sim_dns_reverse_name(&h->addr, rev, sizeof rev);
        snprintf(text, sizeof text, "%s %d IN PTR %s.", rev, SIM_DNS_TTL, h->name);
        if (!sim_dns_add(db, text, err, errsize))
            goto fail;
        if (dnsaddr != &h->addr) {
            sim_dns_reverse_name(dnsaddr, rev, sizeof rev);
            snprintf(text, sizeof text, "%s %d IN PTR %s.", rev, SIM_DNS_TTL, h->name);
            if (!sim_dns_add(db, text, err, errsize))
                goto fail;
        }
    }
    for (int i = 0; i < w->nservices; i++) {
        const struct sim_service *s = &w->services[i];
        for (int d = 0; d < s->ndomains; d++) {
            snprintf(text, sizeof text, "%s. %d IN MX 10 %s.", s->domains[d], SIM_DNS_TTL,
                     w->hosts[s->host].name);
            if (!sim_dns_add(db, text, err, errsize))
                goto fail;
        }
        for (int d = 0; d < s->nbackup; d++) {
            snprintf(text, sizeof text, "%s. %d IN MX 20 %s.", s->backup[d], SIM_DNS_TTL,
                     w->hosts[s->host].name);
            if (!sim_dns_add(db, text, err, errsize))
                goto fail;
        }
    }
    for (int i = 0; i < w->nrecords; i++) {
        const struct sim_record *r = &w->records[i];
        snprintf(text, sizeof text, "%s. %d IN %s %s", r->name, SIM_DNS_TTL, r->type, r->data);
        if (!sim_dns_add(db, text, err, errsize))
            goto fail;
    }
    return db;
fail:
    sim_dns_db_free(db);
    return NULL;
}

void sim_dns_db_free(struct sim_dns_db *db)
{
    if (!db)
        return;
    ldns_rr_list_deep_free(db->rrs);
    for (int i = 0; i < db->nzones; i++) {
        ldns_rdf_deep_free(db->zones[i]);
        ldns_rr_free(db->soas[i]);
    }
    free(db->zones);
    free(db->soas);
    free(db);
}

static int sim_dns_zone_of(const struct sim_dns_db *db, const ldns_rdf *name)
{
    int best = -1;
    size_t best_labels = 0;
    for (int i = 0; i < db->nzones; i++) {
        if (ldns_dname_compare(name, db->zones[i]) != 0 &&
            !ldns_dname_is_subdomain(name, db->zones[i]))
            continue;
        size_t labels = ldns_dname_label_count(db->zones[i]);
        if (best < 0 || labels > best_labels) {
            best = i;
            best_labels = labels;
        }
    }
    return best;
}

static void sim_dns_rr_text(struct buf *b, const ldns_rr *rr)
{
    char *type = ldns_rr_type2str(ldns_rr_get_type(rr));
    if (b->len)
        buf_append_str(b, "; ");
    buf_append_str(b, type ? type : "?");
    free(type);
    for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
        char *rd = ldns_rdf2str(ldns_rr_rdf(rr, i));
        buf_append_char(b, ' ');
        buf_append_str(b, rd ? rd : "?");
        free(rd);
    }
}

const struct sim_dns_fault_rule *sim_dns_faults_find(const struct sim_dns_faults *f,
                                                     const char *qname)
{
    const struct sim_dns_fault_rule *all = NULL;
    if (!f)
        return NULL;
    for (int i = 0; i < f->n; i++) {
        if (strcasecmp(f->rules[i].name, qname) == 0)
            return &f->rules[i];
        if (strcmp(f->rules[i].name, "*") == 0)
            all = &f->rules[i];
    }
    return all;
}

static void sim_dns_set_rcode(struct sim_dns_result *res, ldns_pkt *resp, ldns_pkt_rcode rcode)
{
    ldns_pkt_set_rcode(resp, (uint8_t)rcode);
    ldns_lookup_table *t = ldns_lookup_by_id(ldns_rcodes, rcode);
    str_copy(res->rcode, sizeof res->rcode, t ? t->name : "?");
}

/* Fills resp's answer and authority sections for the question; returns the rcode. */
static ldns_pkt_rcode sim_dns_lookup(const struct sim_dns_db *db, const ldns_rdf *qname,
                                     ldns_rr_type qtype, ldns_pkt *resp, struct buf *answers)
{
    int zone = sim_dns_zone_of(db, qname);
    if (zone < 0)
        return LDNS_RCODE_REFUSED;
    ldns_pkt_set_aa(resp, true);
    const ldns_rdf *name = qname;
    bool name_exists = false;
    bool any_answer = false;
    for (int depth = 0; depth < SIM_DNS_CNAME_DEPTH; depth++) {
        const ldns_rr *cname = NULL;
        bool found = false;
        for (size_t i = 0; i < ldns_rr_list_rr_count(db->rrs); i++) {
            const ldns_rr *rr = ldns_rr_list_rr(db->rrs, i);
            const ldns_rdf *owner = ldns_rr_owner(rr);
            if (ldns_dname_compare(owner, name) != 0) {
                if (depth == 0 && ldns_dname_is_subdomain(owner, name))
                    name_exists = true;   /* an empty non-terminal */
                continue;
            }
            name_exists = true;
            ldns_rr_type t = ldns_rr_get_type(rr);
            if (t == qtype || qtype == LDNS_RR_TYPE_ANY) {
                ldns_pkt_push_rr(resp, LDNS_SECTION_ANSWER, ldns_rr_clone(rr));
                sim_dns_rr_text(answers, rr);
                found = true;
            } else if (t == LDNS_RR_TYPE_CNAME) {
                cname = rr;
            }
        }
        if (found) {
            any_answer = true;
            break;
        }
        if (!cname)
            break;
        ldns_pkt_push_rr(resp, LDNS_SECTION_ANSWER, ldns_rr_clone(cname));
        sim_dns_rr_text(answers, cname);
        any_answer = true;
        name = ldns_rr_rdf(cname, 0);
        if (sim_dns_zone_of(db, name) < 0)
            break;
    }
    if (any_answer)
        return LDNS_RCODE_NOERROR;
    ldns_pkt_push_rr(resp, LDNS_SECTION_AUTHORITY, ldns_rr_clone(db->soas[zone]));
    return name_exists ? LDNS_RCODE_NOERROR : LDNS_RCODE_NXDOMAIN;
}

static void sim_dns_wire(struct sim_dns_result *res, ldns_pkt *resp)
{
    if (ldns_pkt2wire(&res->wire, resp, &res->len) != LDNS_STATUS_OK) {
        free(res->wire);
        res->wire = NULL;
        res->len = 0;
    }
}

void sim_dns_answer(const struct sim_dns_db *db, const struct sim_dns_faults *faults,
                    const uint8_t *query, size_t qlen, bool tcp, struct sim_dns_result *res)
{
    memset(res, 0, sizeof *res);
    buf_init(&res->answers, 8192);
    ldns_pkt *q = NULL;
    if (qlen < 12)
        return;   /* not even a header: nothing to answer */
    ldns_pkt *resp = ldns_pkt_new();
    ldns_pkt_set_id(resp, (uint16_t)(query[0] << 8 | query[1]));
    ldns_pkt_set_qr(resp, true);
    if (query[2] & 0x80) {   /* a response sent to us: never answer it */
        ldns_pkt_free(resp);
        str_copy(res->rcode, sizeof res->rcode, "DROPPED");
        return;
    }
    if (ldns_wire2pkt(&q, query, qlen) != LDNS_STATUS_OK || !q ||
        ldns_rr_list_rr_count(ldns_pkt_question(q)) != 1) {
        sim_dns_set_rcode(res, resp, LDNS_RCODE_FORMERR);
        sim_dns_wire(res, resp);
        ldns_pkt_free(resp);
        if (q)
            ldns_pkt_free(q);
        return;
    }
    const ldns_rr *question = ldns_rr_list_rr(ldns_pkt_question(q), 0);
    ldns_pkt_push_rr(resp, LDNS_SECTION_QUESTION, ldns_rr_clone(question));
    ldns_pkt_set_rd(resp, ldns_pkt_rd(q));
    ldns_pkt_set_opcode(resp, ldns_pkt_get_opcode(q));
    char *qn = ldns_rdf2str(ldns_rr_owner(question));
    str_copy(res->qname, sizeof res->qname, qn ? qn : "");
    free(qn);
    size_t ql = strlen(res->qname);
    if (ql > 1 && res->qname[ql - 1] == '.')
        res->qname[ql - 1] = '\0';
    str_lower(res->qname);
    char *qt = ldns_rr_type2str(ldns_rr_get_type(question));
    str_copy(res->qtype, sizeof res->qtype, qt ? qt : "?");
    free(qt);

    size_t limit = 512;
    if (ldns_pkt_edns(q)) {
        limit = ldns_pkt_edns_udp_size(q);
        limit = limit < 512 ? 512 : limit > SIM_DNS_UDP_MAX ? SIM_DNS_UDP_MAX : limit;
        ldns_pkt_set_edns_udp_size(resp, SIM_DNS_UDP_MAX);
    }
    const struct sim_dns_fault_rule *rule = sim_dns_faults_find(faults, res->qname);
    enum sim_dns_fault fault = rule ? rule->fault : SIM_DNS_NONE;
    res->delay_ms = rule ? rule->delay_ms : 0;

    if (ldns_pkt_get_opcode(q) != LDNS_PACKET_QUERY) {
        sim_dns_set_rcode(res, resp, LDNS_RCODE_NOTIMPL);
    } else if (fault == SIM_DNS_DROP) {
        str_copy(res->rcode, sizeof res->rcode, "DROPPED");
        ldns_pkt_free(resp);
        ldns_pkt_free(q);
        return;
    } else if (fault == SIM_DNS_SERVFAIL) {
        sim_dns_set_rcode(res, resp, LDNS_RCODE_SERVFAIL);
    } else if (fault == SIM_DNS_NXDOMAIN) {
        ldns_pkt_set_aa(resp, true);
        int zone = sim_dns_zone_of(db, ldns_rr_owner(question));
        if (zone >= 0)
            ldns_pkt_push_rr(resp, LDNS_SECTION_AUTHORITY, ldns_rr_clone(db->soas[zone]));
        sim_dns_set_rcode(res, resp, LDNS_RCODE_NXDOMAIN);
    } else if (fault == SIM_DNS_TRUNCATE && !tcp) {
        ldns_pkt_set_aa(resp, true);
        ldns_pkt_set_tc(resp, true);
        res->truncated = true;
        sim_dns_set_rcode(res, resp, LDNS_RCODE_NOERROR);
    } else {
        sim_dns_set_rcode(res, resp, sim_dns_lookup(db, ldns_rr_owner(question),
                                                    ldns_rr_get_type(question), resp,
                                                    &res->answers));
    }
    sim_dns_wire(res, resp);
    if (res->wire && !tcp && res->len > limit) {
        /* Too big for the client's UDP: the header and question with TC, nothing else. */
        free(res->wire);
        res->wire = NULL;
        ldns_pkt *tc = ldns_pkt_new();
        ldns_pkt_set_id(tc, ldns_pkt_id(resp));
        ldns_pkt_set_qr(tc, true);
        ldns_pkt_set_aa(tc, ldns_pkt_aa(resp));
        ldns_pkt_set_rd(tc, ldns_pkt_rd(resp));
        ldns_pkt_set_tc(tc, true);
        ldns_pkt_set_rcode(tc, ldns_pkt_get_rcode(resp));
        ldns_pkt_push_rr(tc, LDNS_SECTION_QUESTION, ldns_rr_clone(question));
        sim_dns_wire(res, tc);
        ldns_pkt_free(tc);
        res->truncated = true;
    }
    ldns_pkt_free(resp);
    ldns_pkt_free(q);
}

void sim_dns_result_free(struct sim_dns_result *res)
{
    free(res->wire);
    res->wire = NULL;
    buf_free(&res->answers);
}
