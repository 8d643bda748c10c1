/* Unit tests for simulator/sim_dns.c: answers from a world, and faults, over ldns packets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>

#include "sim_dns.h"

static const char *world_text =
    "zone paprika\n"
    "zone hccnet.nl\n"
    "host ns.hccnet.nl 127.0.2.53\n"
    "host mx.paprika 127.0.6.25 public 192.0.2.25\n"
    "host mx2.paprika 127.0.6.26\n"
    "nameserver ns.hccnet.nl\n"
    "store s\n"
    "mx mx.paprika domains paprika store s\n"
    "mx mx2.paprika domains backup.paprika store s backup paprika\n"
    "record www.paprika CNAME mx.paprika.\n"
    "record loop.paprika CNAME loop.paprika.\n"
    "record paprika TXT \"v=spf1 -all\"\n"
    "record deep.sub.paprika A 192.0.2.1\n"
    "record big.paprika TXT \"%s\" \"%s\" \"%s\"\n";

static struct sim_world *world;
static struct sim_dns_db *db;

static int setup(void **state)
{
    (void)state;
    char chunk[201];
    memset(chunk, 'x', 200);
    chunk[200] = '\0';
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, world_text, chunk, chunk, chunk);
    struct cfg_error err;
    world = sim_world_parse("t.world", b.data, b.len, &err);
    buf_free(&b);
    if (!world)
        fail_msg("%s", err.text);
    char e[256];
    db = sim_dns_db_new(world, e, sizeof e);
    if (!db)
        fail_msg("%s", e);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sim_dns_db_free(db);
    sim_world_free(world);
    return 0;
}

/* Asks name/type; returns the parsed response (NULL when dropped); res is kept for checks. */
static ldns_pkt *ask(const char *name, ldns_rr_type type, bool tcp, bool edns,
                     const struct sim_dns_faults *faults, struct sim_dns_result *res)
{
    ldns_pkt *q = NULL;
    assert_int_equal(ldns_pkt_query_new_frm_str(&q, name, type, LDNS_RR_CLASS_IN, LDNS_RD), LDNS_STATUS_OK);
    ldns_pkt_set_id(q, 4242);
    if (edns)
        ldns_pkt_set_edns_udp_size(q, 1232);
    uint8_t *wire;
    size_t len;
    assert_int_equal(ldns_pkt2wire(&wire, q, &len), LDNS_STATUS_OK);
    ldns_pkt_free(q);
    sim_dns_answer(db, faults, wire, len, tcp, res);
    free(wire);
    if (!res->wire)
        return NULL;
    ldns_pkt *r = NULL;
    assert_int_equal(ldns_wire2pkt(&r, res->wire, res->len), LDNS_STATUS_OK);
    assert_int_equal(ldns_pkt_id(r), 4242);
    assert_true(ldns_pkt_qr(r));
    return r;
}

static void test_dns_answers(void **state)
{
    (void)state;
    struct sim_dns_result res;
    ldns_pkt *r = ask("mx.paprika.", LDNS_RR_TYPE_A, false, false, NULL, &res);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
    assert_true(ldns_pkt_aa(r));
    assert_string_equal(res.answers.data, "A 127.0.6.25");
    assert_string_equal(res.qname, "mx.paprika");
    assert_string_equal(res.qtype, "A");
    assert_string_equal(res.rcode, "NOERROR");
    ldns_pkt_free(r);
    sim_dns_result_free(&res);

    r = ask("PAPRIKA.", LDNS_RR_TYPE_MX, false, false, NULL, &res);
    assert_string_equal(res.answers.data, "MX 10 mx.paprika.; MX 20 mx2.paprika."); /* a backup MX */
    ldns_pkt_free(r);
    sim_dns_result_free(&res);

    r = ask("25.6.0.127.in-addr.arpa.", LDNS_RR_TYPE_PTR, false, false, NULL, &res);
    assert_string_equal(res.answers.data, "PTR mx.paprika.");
    ldns_pkt_free(r);
    sim_dns_result_free(&res);

    r = ask("www.paprika.", LDNS_RR_TYPE_A, false, false, NULL, &res);
    assert_string_equal(res.answers.data, "CNAME mx.paprika.; A 127.0.6.25");
    ldns_pkt_free(r);
    sim_dns_result_free(&res);

    r = ask("loop.paprika.", LDNS_RR_TYPE_A, false, false, NULL, &res);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
    ldns_pkt_free(r);
    sim_dns_result_free(&res);

    r = ask("paprika.", LDNS_RR_TYPE_TXT, false, false, NULL, &res);
    assert_string_equal(res.answers.data, "TXT \"v=spf1 -all\"");
    ldns_pkt_free(r);
    sim_dns_result_free(&res);

    r = ask("paprika.", LDNS_RR_TYPE_SOA, false, false, NULL, &res);
    assert_non_null(strstr(res.answers.data, "SOA ns.hccnet.nl. hostmaster.paprika."));
    ldns_pkt_free(r);
    sim_dns_result_free(&res);
}

static void test_dns_negative(void **state)
{
    (void)state;
    struct sim_dns_result res;
    ldns_pkt *r = ask("nobody.paprika.", LDNS_RR_TYPE_A, false, false, NULL, &res);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NXDOMAIN);
    assert_int_equal(ldns_pkt_nscount(r), 1);
    ldns_pkt_free(r);
    sim_dns_result_free(&res);

    r = ask("mx.paprika.", LDNS_RR_TYPE_AAAA, false, false, NULL, &res);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
    assert_int_equal(ldns_pkt_ancount(r), 0);
    ldns_pkt_free(r);
    sim_dns_result_free(&res);

    r = ask("sub.paprika.", LDNS_RR_TYPE_A, false, false, NULL, &res);   /* empty non-terminal */
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
    ldns_pkt_free(r);
    sim_dns_result_free(&res);

    r = ask("example.com.", LDNS_RR_TYPE_A, false, false, NULL, &res);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_REFUSED);
    assert_false(ldns_pkt_aa(r));
    ldns_pkt_free(r);
    sim_dns_result_free(&res);

    /* Garbage: FORMERR with the id; a short packet or a response: no answer at all. */
    uint8_t junk[14] = {0x12, 0x34, 0x01, 0x00, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    sim_dns_answer(db, NULL, junk, sizeof junk, false, &res);
    assert_non_null(res.wire);
    assert_string_equal(res.rcode, "FORMERR");
    assert_int_equal(res.wire[0], 0x12);
    sim_dns_result_free(&res);
    sim_dns_answer(db, NULL, junk, 5, false, &res);
    assert_null(res.wire);
    sim_dns_result_free(&res);
    junk[2] = 0x81;
    sim_dns_answer(db, NULL, junk, sizeof junk, false, &res);
    assert_null(res.wire);
    sim_dns_result_free(&res);
}

static void test_dns_truncation(void **state)
{
    (void)state;
    struct sim_dns_result res;
    ldns_pkt *r = ask("big.paprika.", LDNS_RR_TYPE_TXT, false, false, NULL, &res);
    assert_true(ldns_pkt_tc(r));
    assert_int_equal(ldns_pkt_ancount(r), 0);
    ldns_pkt_free(r);
    sim_dns_result_free(&res);
    r = ask("big.paprika.", LDNS_RR_TYPE_TXT, true, false, NULL, &res);
    assert_false(ldns_pkt_tc(r));
    assert_int_equal(ldns_pkt_ancount(r), 1);
    ldns_pkt_free(r);
    sim_dns_result_free(&res);
    r = ask("big.paprika.", LDNS_RR_TYPE_TXT, false, true, NULL, &res);   /* EDNS 1232: fits */
    assert_false(ldns_pkt_tc(r));
    ldns_pkt_free(r);
    sim_dns_result_free(&res);
}

static void test_dns_faults(void **state)
{
    (void)state;
    struct sim_dns_faults f;
    memset(&f, 0, sizeof f);
    struct sim_dns_result res;
    enum sim_dns_fault fault;
    assert_true(sim_dns_fault_parse("servfail", &fault));
    assert_false(sim_dns_fault_parse("boom", &fault));
    assert_true(sim_dns_faults_set(&f, "MX.Paprika.", SIM_DNS_SERVFAIL, 0));
    assert_true(sim_dns_faults_set(&f, "*", SIM_DNS_DELAY, 150));
    ldns_pkt *r = ask("mx.paprika.", LDNS_RR_TYPE_A, false, false, &f, &res);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_SERVFAIL);
    assert_int_equal(res.delay_ms, 0);
    ldns_pkt_free(r);
    sim_dns_result_free(&res);
    r = ask("paprika.", LDNS_RR_TYPE_MX, false, false, &f, &res);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
    assert_int_equal(res.delay_ms, 150);
    ldns_pkt_free(r);
    sim_dns_result_free(&res);

    assert_true(sim_dns_faults_set(&f, "mx.paprika", SIM_DNS_NXDOMAIN, 0));
    assert_int_equal(f.n, 2);
    r = ask("mx.paprika.", LDNS_RR_TYPE_A, false, false, &f, &res);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NXDOMAIN);
    ldns_pkt_free(r);
    sim_dns_result_free(&res);

    assert_true(sim_dns_faults_set(&f, "mx.paprika", SIM_DNS_DROP, 0));
    assert_null(ask("mx.paprika.", LDNS_RR_TYPE_A, false, false, &f, &res));
    assert_string_equal(res.rcode, "DROPPED");
    sim_dns_result_free(&res);

    assert_true(sim_dns_faults_set(&f, "mx.paprika", SIM_DNS_TRUNCATE, 0));
    r = ask("mx.paprika.", LDNS_RR_TYPE_A, false, false, &f, &res);
    assert_true(ldns_pkt_tc(r));
    assert_int_equal(ldns_pkt_ancount(r), 0);
    ldns_pkt_free(r);
    sim_dns_result_free(&res);
    r = ask("mx.paprika.", LDNS_RR_TYPE_A, true, false, &f, &res);
    assert_false(ldns_pkt_tc(r));
    assert_int_equal(ldns_pkt_ancount(r), 1);
    ldns_pkt_free(r);
    sim_dns_result_free(&res);

    assert_true(sim_dns_faults_set(&f, "mx.paprika", SIM_DNS_NONE, 0));
    assert_int_equal(f.n, 1);
    for (int i = 0; i < SIM_DNS_MAX_FAULTS - 1; i++) {
        char name[32];
        snprintf(name, sizeof name, "n%d.paprika", i);
        assert_true(sim_dns_faults_set(&f, name, SIM_DNS_DROP, 0));
    }
    assert_false(sim_dns_faults_set(&f, "one.too.many", SIM_DNS_DROP, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dns_answers),
        cmocka_unit_test(test_dns_negative),
        cmocka_unit_test(test_dns_truncation),
        cmocka_unit_test(test_dns_faults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
