/* Unit tests for simulator/world.c: the ispsim world file parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "sim_world.h"

static struct sim_world *parse(const char *text, struct cfg_error *err)
{
    return sim_world_parse("t.world", text, strlen(text), err);
}

static void expect_error(const char *text, const char *want)
{
    struct cfg_error err;
    memset(&err, 0, sizeof err);
    struct sim_world *w = parse(text, &err);
    if (w)
        fail_msg("parsed but expected error \"%s\" for:\n%s", want, text);
    if (!strstr(err.text, want))
        fail_msg("error \"%s\" lacks \"%s\"", err.text, want);
}

static void test_world_minimal(void **state)
{
    (void)state;
    const char *text = "# a small world\n"
                       "world small\n"
                       "zone example.test\n"
                       "host NS.Example.Test. 127.0.2.53 public 192.0.2.53  # the nameserver\n"
                       "host mx.example.test 127.0.2.25\n"
                       "nameserver ns.example.test\n"
                       "customer 127.0.3.10 public 62.251.70.10\n"
                       "store s\n"
                       "mailbox s bob password pw address bob@example.test,b@Example.Test\n"
                       "mailbox s carol\n"
                       "mx mx.example.test domains example.test store s\n"
                       "record example.test TXT \"hello # not a comment\"\n"
                       "record www.example.test CNAME mx.example.test.\n";
    struct cfg_error err;
    struct sim_world *w = parse(text, &err);
    if (!w)
        fail_msg("%s", err.text);
    assert_string_equal(w->name, "small");
    assert_int_equal(w->nhosts, 2);
    assert_string_equal(w->hosts[0].name, "ns.example.test");
    assert_int_equal(w->nameserver, 0);
    struct netaddr a, pub;
    assert_true(netaddr_parse("127.0.3.10", &a));
    sim_world_public_of(w, &a, &pub);
    char text_pub[NETADDR_STRLEN];
    netaddr_format(&pub, text_pub, sizeof text_pub);
    assert_string_equal(text_pub, "62.251.70.10");
    assert_true(netaddr_parse("127.0.2.25", &a));
    sim_world_public_of(w, &a, &pub);
    netaddr_format(&pub, text_pub, sizeof text_pub);
    assert_string_equal(text_pub, "127.0.2.25");
    assert_int_equal(sim_world_host_by_addr(w, &a), 1);
    assert_int_equal(w->nrecords, 2);
    assert_string_equal(w->records[0].data, "\"hello # not a comment\"");
    assert_int_equal(sim_world_mx_for_domain(w, "EXAMPLE.test"), 0);
    assert_int_equal(sim_world_mx_for_domain(w, "other.test"), -1);
    assert_int_equal(sim_world_mailbox_for(w, 0, "b@example.test"), 0);
    assert_int_equal(sim_world_mailbox_for(w, 0, "carol@example.test"), 1);
    assert_int_equal(sim_world_mailbox_for(w, 0, "bob2@example.test"), -1);
    /* A mailbox with addresses is not also reached by its bare user name. */
    assert_int_equal(sim_world_mailbox_for(w, 0, "bob@other.test"), -1);
    assert_int_equal(sim_world_zone_of(w, "a.b.example.test"), 0);
    assert_int_equal(sim_world_zone_of(w, "xexample.test"), -1);
    sim_world_free(w);
}

static void test_world_seed_fixture(void **state)
{
    (void)state;
    char *data;
    size_t len;
    if (fs_read_file("fixtures/worlds/seed.world", 1 << 20, &data, &len) < 0)
        skip();
    struct cfg_error err;
    struct sim_world *w = sim_world_parse("seed.world", data, len, &err);
    free(data);
    if (!w)
        fail_msg("%s", err.text);
    int h = sim_world_host_index(w, "smtp.hccnet.nl");
    assert_true(h >= 0);
    int smarthost = -1;
    for (int i = 0; i < w->nservices; i++)
        if (w->services[i].kind == SIM_SVC_SMARTHOST)
            smarthost = i;
    assert_int_equal(w->services[smarthost].host, h);
    struct netaddr a;
    assert_true(netaddr_parse("127.0.3.10", &a));
    assert_true(netmask_match(&w->services[smarthost].customers[0], &a));
    assert_true(netaddr_parse("127.0.1.20", &a));
    assert_false(netmask_match(&w->services[smarthost].customers[0], &a));
    int mx = sim_world_mx_for_domain(w, "sjoerd-visser.spam.demon.nl");
    assert_true(mx >= 0);
    assert_string_equal(w->hosts[w->services[mx].host].name, "relay-14.mail.nl.demon.net");
    assert_true(sim_world_mailbox_for(w, w->services[mx].store,
                                      "sjoerd@sjoerd-visser.spam.demon.nl") >= 0);
    assert_true(sim_world_mx_for_domain(w, "paprika") >= 0);
    assert_true(sim_world_mx_for_domain(w, "komkommer") >= 0);
    assert_true(sim_world_mx_for_domain(w, "appel") >= 0);
    assert_string_equal(w->hosts[w->nameserver].name, "ns.hccnet.nl");
    assert_int_equal(w->nlinks, 1);
    for (int i = 0; i < w->nhosts; i++)
        assert_int_equal(w->hosts[i].link, 0); /* everything is behind the modem */
    for (int i = 0; i < w->nhosts; i++)
        assert_false(w->hosts[i].addr.bytes[2] == 1); /* 127.0.1.x is the LAN */
    sim_world_free(w);
}

static void test_world_link(void **state)
{
    (void)state;
    const char *text = "zone a.test\n"
                       "link modem listen 127.9.0.0/16 from 127.0.3.10 mode demand latency 150 "
                       "bandwidth 56000 cut-at dot dial-delay 2000 idle 60 seed 7\n"
                       "host ns.a.test 127.0.2.53 via modem\n"
                       "host mx.a.test 127.0.6.25 public 192.0.2.25 via modem\n"
                       "host lan.a.test 127.0.4.4\n"
                       "nameserver ns.a.test\n";
    struct cfg_error err;
    struct sim_world *w = parse(text, &err);
    if (!w)
        fail_msg("%s", err.text);
    assert_int_equal(w->nlinks, 1);
    const struct sim_link *l = &w->links[0];
    assert_string_equal(l->name, "modem");
    assert_int_equal(l->mode, SIM_LINK_DEMAND);
    assert_int_equal(l->profile.latency_ms, 150);
    assert_int_equal(l->profile.bandwidth, 56000);
    assert_true(l->profile.cut_at_dot);
    assert_int_equal(l->profile.dial_delay_ms, 2000);
    assert_int_equal(l->profile.idle_s, 60);
    assert_int_equal(l->profile.seed, 7);
    assert_int_equal(sim_world_link_index(w, "modem"), 0);
    assert_int_equal(sim_world_link_index(w, "isdn"), -1);
    char a[NETADDR_STRLEN];
    int mx = sim_world_host_index(w, "mx.a.test");
    assert_int_equal(w->hosts[mx].link, 0);
    netaddr_format(&w->hosts[mx].link_addr, a, sizeof a);
    assert_string_equal(a, "127.9.6.25");
    netaddr_format(sim_world_host_dns_addr(w, mx), a, sizeof a);
    assert_string_equal(a, "127.9.6.25");
    /* the nameserver answers on its own address; a host not via the link keeps its own */
    netaddr_format(sim_world_host_dns_addr(w, w->nameserver), a, sizeof a);
    assert_string_equal(a, "127.0.2.53");
    int lan = sim_world_host_index(w, "lan.a.test");
    assert_int_equal(w->hosts[lan].link, -1);
    netaddr_format(sim_world_host_dns_addr(w, lan), a, sizeof a);
    assert_string_equal(a, "127.0.4.4");
    sim_world_free(w);

    expect_error("link m listen 127.9.0.0/16\n", "needs \"listen NET\" and \"from ADDR\"");
    expect_error("link m listen 127.9.0.0/28 from 127.0.3.10\n", "IPv4 network /1../24");
    expect_error("link m listen ::/64 from 127.0.3.10\n", "IPv4 network");
    expect_error("link m listen 127.9.0.0/16 from 127.0.3.10 mode sideways\n",
                 "mode must be up, down or demand");
    expect_error("link m listen 127.9.0.0/16 from 127.0.3.10 latency 1s\n",
                 "latency must be a number");
    expect_error("link m listen 127.9.0.0/16 from 127.0.3.10\nlink m listen 127.8.0.0/16 from 127.0.3.10\n",
                 "t.world:2: link \"m\" declared twice");
    expect_error("zone a.test\nhost h.a.test 127.0.2.1 via m\n", "unknown link \"m\"");
    expect_error("zone a.test\nlink m listen 127.9.0.0/16 from 127.0.3.10\n"
                 "host h.a.test 127.0.2.1 via m\nhost g.a.test 127.9.2.1\n",
                 "t.world:4: address 127.9.2.1 is another host's link address");
    expect_error("zone a.test\nlink m listen 127.9.0.0/16 from 127.0.3.10\n"
                 "host h.a.test 127.0.2.1 via m\nhost g.a.test 127.5.2.1 via m\n",
                 "t.world:4: link address of 127.5.2.1 clashes with another host's");
    expect_error("zone a.test\nlink m listen 127.9.0.0/16 from 127.0.3.10\n"
                 "host h.a.test 127.9.2.1 via m\n", "clashes with a host's address");
    expect_error("zone a.test\nlink m listen 127.9.0.0/16 from 127.0.3.10\n"
                 "host h.a.test ::1 via m\n", "needs an IPv4 address");
}

static void test_world_quota(void **state)
{
    (void)state;
    struct cfg_error err;
    struct sim_world *w = parse("store s\nmailbox s a quota 1000 full 452\nmailbox s b\n", &err);
    if (!w)
        fail_msg("%s", err.text);
    assert_int_equal(w->mailboxes[0].quota, 1000);
    assert_int_equal(w->mailboxes[0].full_code, 452);
    assert_int_equal(w->mailboxes[1].quota, 0);
    assert_int_equal(w->mailboxes[1].full_code, 552);
    sim_world_free(w);
    expect_error("store s\nmailbox s a quota 10k\n", "quota wants a number of bytes");
    expect_error("store s\nmailbox s a quota -1\n", "quota wants a number of bytes");
    expect_error("store s\nmailbox s a full 550\n", "full wants 452 or 552");
}

static void test_world_tls(void **state)
{
    (void)state;
    const char *text = "zone a.test\ncerts ../certs\nhost h.a.test 127.0.2.1\n"
                       "host p.a.test 127.0.2.2\nstore s\n"
                       "smarthost h.a.test customers 127.0.3.10 auth u:p tls starttls,implicit\n"
                       "pop3 p.a.test store s tls implicit\n";
    struct cfg_error err;
    struct sim_world *w = parse(text, &err);
    if (!w)
        fail_msg("%s", err.text);
    assert_string_equal(w->certs, "../certs");
    assert_false(w->services[0].handoff);
    assert_int_equal(w->services[0].retry_s, 60);
    assert_true(w->services[0].starttls);
    assert_true(w->services[0].implicit_tls);
    assert_string_equal(w->services[0].auth_user, "u");
    assert_false(w->services[1].starttls);
    assert_true(w->services[1].implicit_tls);
    sim_world_free(w);
    expect_error("zone a.test\nhost h.a.test 127.0.2.1\nstore s\npop3 h.a.test store s tls starttls\n",
                 "t.world:4: tls needs a \"certs DIR\" statement above");
    expect_error("certs x\nzone a.test\nhost h.a.test 127.0.2.1\nstore s\npop3 h.a.test store s tls ssl\n",
                 "tls wants starttls and/or implicit");
    expect_error("certs x\ncerts y\n", "t.world:2: certs given twice");
    w = parse("zone a.test\nhost h.a.test 127.0.2.1\nsmarthost h.a.test customers 10.0.0.1 "
              "relay handoff retry 5\n", &err);
    if (!w)
        fail_msg("%s", err.text);
    assert_true(w->services[0].handoff);
    assert_int_equal(w->services[0].retry_s, 5);
    sim_world_free(w);
    expect_error("zone a.test\nhost h.a.test 127.0.2.1\nsmarthost h.a.test customers 10.0.0.1 "
                 "relay uucp\n", "relay wants smtp or handoff");
    expect_error("zone a.test\nhost h.a.test 127.0.2.1\nsmarthost h.a.test customers 10.0.0.1 "
                 "retry 0\n", "retry wants seconds");
}

static void test_world_errors(void **state)
{
    (void)state;
    expect_error("zone a.test\nbogus x\n", "t.world:2: unknown statement \"bogus\"");
    expect_error("zone a.test\nhost h.a.test 127.0.2.1\nhost h.a.test 127.0.2.2\n",
                 "t.world:3: host \"h.a.test\" declared twice");
    expect_error("zone a.test\nhost h.a.test 127.0.2.1\nhost g.a.test 127.0.2.1\n",
                 "t.world:3: address 127.0.2.1 already used");
    expect_error("host h.b.test 127.0.2.1\n", "t.world:1: host \"h.b.test\" lies in no declared zone");
    expect_error("zone a.test\nhost h.a.test 127.0.2.300\n", "t.world:2: bad address");
    expect_error("zone a.test\nhost h..a.test 127.0.2.3\n", "bad DNS name");
    expect_error("zone a.test\nhost h.a.test 127.0.2.3 public\n", "option \"public\" needs a value");
    expect_error("zone a.test\nhost h.a.test 127.0.2.3 color red\n", "unknown option \"color\"");
    expect_error("zone a.test\nrecord a.test SOA x\n", "unsupported record type");
    expect_error("zone a.test\nrecord a.test A 1.2.3\n", "t.world:2: bad record data");
    expect_error("zone a.test\nrecord b.test A 1.2.3.4\n", "lies in no declared zone");
    expect_error("nameserver x.a.test\n", "unknown host");
    expect_error("mailbox s bob\n", "unknown store");
    expect_error("store s\nstore s\n", "declared twice");
    expect_error("zone a.test\nhost h.a.test 127.0.2.1\nstore s\n"
                 "mx h.a.test domains a.test\n", "missing \"store NAME\"");
    expect_error("zone a.test\nhost h.a.test 127.0.2.1\nhost g.a.test 127.0.2.2\nstore s\n"
                 "mx h.a.test domains a.test store s\nmx g.a.test domains a.test store s\n",
                 "t.world:6: domain \"a.test\" already has an mx");
    expect_error("zone a.test\nhost h.a.test 127.0.2.1\nsmarthost h.a.test\n",
                 "needs \"customers");
    expect_error("zone a.test\nhost h.a.test 127.0.2.1\nsmarthost h.a.test customers 10.0.0.0/40\n",
                 "bad network");
    expect_error("zone a.test\nhost h.a.test 127.0.2.1\nsmarthost h.a.test customers 10.0.0.1 auth x\n",
                 "auth wants USER:PASSWORD");
    expect_error("store s\nmailbox s bob address bob\n", "want local@domain");
    expect_error("customer 127.0.3.10\n", "needs \"public ADDR\"");
    expect_error("world a\nworld b\n", "named twice");
    const char nul[] = "world a\nzone \0x\n";
    struct cfg_error err;
    assert_null(sim_world_parse("t.world", nul, sizeof nul - 1, &err));
    assert_string_equal(err.text, "t.world:2: NUL byte in line");
}

static void test_world_limits(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b, "store s\nmailbox s u address ");
    for (int i = 0; i < 17; i++)
        buf_printf(&b, "%sa%d@x.test", i ? "," : "", i);
    buf_append_str(&b, "\n");
    struct cfg_error err;
    assert_null(sim_world_parse("t.world", b.data, b.len, &err));
    assert_non_null(strstr(err.text, "more than 16"));
    buf_reset(&b);
    for (int i = 0; i < SIM_WORLD_MAX_ZONES + 1; i++)
        buf_printf(&b, "zone z%d.test\n", i);
    assert_null(sim_world_parse("t.world", b.data, b.len, &err));
    assert_non_null(strstr(err.text, "too many zones"));
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_world_minimal),
        cmocka_unit_test(test_world_seed_fixture),
        cmocka_unit_test(test_world_link),
        cmocka_unit_test(test_world_tls),
        cmocka_unit_test(test_world_quota),
        cmocka_unit_test(test_world_errors),
        cmocka_unit_test(test_world_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
