/*
 * sim_dns: the answers of ispsim's nameserver, built on ldns. Pure: a query's bytes in, the
 * response's bytes out (or none), plus what the query log needs. The socket side lives in
 * sim_run.c.
 *
 * The database holds, for every zone of the world: SOA and NS at the apex (NS = the world's
 * nameserver host); for every host an A (or AAAA) record with its loopback address and the
 * PTR of that address; MX 10 for every domain of an mx service; and the world's own records.
 * Names outside every zone are REFUSED. CNAMEs are followed inside the database.
 *
 * Faults, per name or for all ("*"): servfail, nxdomain, drop (no answer), delay (answer
 * after delay_ms), truncate (over UDP the TC bit and nothing else, so the client retries over
 * TCP; over TCP a normal answer). A rule for the name wins over the one for "*".
 */
#ifndef ZOLDER_SIM_DNS_H
#define ZOLDER_SIM_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "sim_world.h"

#define SIM_DNS_MAX_FAULTS 64
#define SIM_DNS_UDP_MAX 4096

enum sim_dns_fault {
    SIM_DNS_NONE, SIM_DNS_SERVFAIL, SIM_DNS_NXDOMAIN, SIM_DNS_DROP, SIM_DNS_DELAY, SIM_DNS_TRUNCATE
};

struct sim_dns_fault_rule {
    char name[SIM_NAME_MAX];      /* lower case, no trailing dot; "*" for every name */
    enum sim_dns_fault fault;
    unsigned delay_ms;            /* for delay (and added to any other fault) */
};

struct sim_dns_faults {
    struct sim_dns_fault_rule rules[SIM_DNS_MAX_FAULTS];
    int n;
};

struct sim_dns_db;

struct sim_dns_result {
    uint8_t *wire;                /* NULL: no answer (dropped) */
    size_t len;
    unsigned delay_ms;
    bool truncated;
    char qname[SIM_NAME_MAX];
    char qtype[16];
    char rcode[16];
    struct buf answers;           /* "A 127.0.2.25; MX 10 mx.paprika." */
};

struct sim_dns_db *sim_dns_db_new(const struct sim_world *w, char *err, size_t errsize);
void sim_dns_db_free(struct sim_dns_db *db);

void sim_dns_answer(const struct sim_dns_db *db, const struct sim_dns_faults *faults,
                    const uint8_t *query, size_t qlen, bool tcp, struct sim_dns_result *res);
void sim_dns_result_free(struct sim_dns_result *res);

bool sim_dns_fault_parse(const char *text, enum sim_dns_fault *fault_r);
const char *sim_dns_fault_name(enum sim_dns_fault fault);
/* The rule for qname (a rule for the name wins over "*"), or NULL. */
const struct sim_dns_fault_rule *sim_dns_faults_find(const struct sim_dns_faults *f,
                                                     const char *qname);
/* Sets (or replaces) the rule for name. false when the name is bad or the table is full. */
bool sim_dns_faults_set(struct sim_dns_faults *f, const char *name, enum sim_dns_fault fault,
                        unsigned delay_ms);

#endif
