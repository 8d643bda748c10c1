/* Unit tests for reference/proto/access: keys, actions, errors, precedence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "access.h"

static struct access *load_ok(const char *text)
{
    struct access *a = NULL;
    struct cfg_error err = {{0}};
    if (access_load(&a, "access", text, strlen(text), &err) != 0)
        fail_msg("unexpected error: %s", err.text);
    assert_non_null(a);
    return a;
}

static enum access_action connect_check(const struct access *a, const char *ip,
                                        const char *name, unsigned *lineno_r)
{
    struct netaddr addr;
    struct access_verdict v;
    assert_true(netaddr_parse(ip, &addr));
    enum access_action act = access_check_connect(a, &addr, name, &v);
    assert_int_equal(act, v.action);
    if (lineno_r)
        *lineno_r = v.lineno;
    return act;
}

static const char *const map_text =
    "# the seed's LAN and friends\n"              /* 1 */
    "192.168.1                RELAY\n"             /* 2 */
    "192.168.1.66             REJECT\n"            /* 3 */
    "10.0.0.0/8               ERROR:4.7.1:421 come back later\n" /* 4 */
    "Connect:10.1             OK\n"                /* 5 */
    "10.1                     DISCARD\n"           /* 6 */
    "IPv6:2001:db8::/32       RELAY\n"             /* 7 */
    "2001:db8:1::/48          REJECT\n"            /* 8 */
    "example.com              REJECT\n"            /* 9 */
    "good.example.com         OK\n"                /* 10 */
    "spammer@good.example.com ERROR:\"550 not you\"\n" /* 11 */
    "postmaster@              OK\n"                /* 12 */
    "From:example.org         ERROR:5.7.1:550 we do not talk to example.org: sorry\n" /* 13 */
    "To:example.org           RELAY\n"             /* 14 */
    "Connect:badhost.lan      REJECT\n"            /* 15 */
    "lan                      RELAY\n"             /* 16 */
    "skip.example.com         SKIP\n"              /* 17 */
    "To:bob@                  ERROR:550 no bob\n"  /* 18 */
    "Connect:Example.com      SKIP\n";             /* 19 */

static void test_access_connect(void **state)
{
    (void)state;
    struct access *a = load_ok(map_text);
    assert_int_equal(access_count(a), 18);
    unsigned line;
    static const struct {
        const char *ip;
        const char *name;
        enum access_action want;
        unsigned line;
    } cases[] = {
        /* Octet boundaries: 192.168.1 is 192.168.1.0/24, never 192.168.10.x or .100.x. */
        {"192.168.1.5", NULL, ACCESS_RELAY, 2},
        {"192.168.10.5", NULL, ACCESS_NONE, 0},
        {"192.168.100.1", NULL, ACCESS_NONE, 0},
        {"::ffff:192.168.1.7", NULL, ACCESS_RELAY, 2},
        /* Longest prefix wins. */
        {"192.168.1.66", NULL, ACCESS_REJECT, 3},
        {"10.9.9.9", NULL, ACCESS_ERROR, 4},
        /* Same key 10.1: Connect: tagged beats untagged. */
        {"10.1.2.3", NULL, ACCESS_OK, 5},
        {"2001:db8::25", NULL, ACCESS_RELAY, 7},
        {"2001:db8:1::25", NULL, ACCESS_REJECT, 8},
        /* Host names: the verified name only, nearest domain first, before addresses. */
        {"192.168.1.9", "mail.example.com", ACCESS_SKIP, 19},
        {"192.168.1.9", "www.good.example.com", ACCESS_OK, 10},
        {"192.168.1.9", "badexample.com", ACCESS_RELAY, 2},
        {"192.168.1.9", "badhost.lan", ACCESS_REJECT, 15},
        {"172.16.0.1", "ecs.lan.", ACCESS_RELAY, 16},
        {"172.16.0.1", NULL, ACCESS_NONE, 0},
        /* SKIP on a host name: no decision, caller's default (the address is not looked at). */
        {"10.1.1.1", "skip.example.com", ACCESS_SKIP, 17},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum access_action got = connect_check(a, cases[i].ip, cases[i].name, &line);
        if (got != cases[i].want || line != cases[i].line)
            fail_msg("case %zu (%s %s): got %s line %u, want %s line %u", i, cases[i].ip,
                     cases[i].name ? cases[i].name : "-", access_action_name(got), line,
                     access_action_name(cases[i].want), cases[i].line);
    }

    struct access_verdict v;
    struct netaddr addr;
    assert_true(netaddr_parse("10.200.0.1", &addr));
    assert_int_equal(access_check_connect(a, &addr, NULL, &v), ACCESS_ERROR);
    assert_int_equal(v.code, 421);
    assert_string_equal(v.dsn, "4.7.1");
    assert_string_equal(v.text, "come back later");
    assert_int_equal(access_check_connect(a, &addr, NULL, NULL), ACCESS_ERROR);
    access_free(a);
}

static void test_access_mail(void **state)
{
    (void)state;
    struct access *a = load_ok(map_text);
    struct access_verdict v;
    static const struct {
        bool to;
        const char *addr;
        enum access_action want;
        unsigned line;
    } cases[] = {
        /* Full address before domain before parent domain before user@. */
        {false, "spammer@good.example.com", ACCESS_ERROR, 11},
        {false, "Spammer@GOOD.example.com.", ACCESS_ERROR, 11},
        {false, "alice@good.example.com", ACCESS_OK, 10},
        {false, "alice@www.example.com", ACCESS_REJECT, 9},
        {false, "alice@notexample.com", ACCESS_NONE, 0},
        {false, "postmaster@example.com", ACCESS_REJECT, 9},
        {false, "postmaster@elsewhere.net", ACCESS_OK, 12},
        {false, "postmaster", ACCESS_OK, 12},
        {false, "", ACCESS_NONE, 0},
        /* Tags: From: and To: entries only apply to their own lookup. */
        {false, "x@example.org", ACCESS_ERROR, 13},
        {true, "x@example.org", ACCESS_RELAY, 14},
        {true, "bob@anywhere.net", ACCESS_ERROR, 18},
        {false, "bob@anywhere.net", ACCESS_NONE, 0},
        /* Connect: host-name keys do not apply to mail addresses. */
        {false, "x@badhost.lan", ACCESS_RELAY, 16},
        {true, "x@sub.skip.example.com", ACCESS_SKIP, 17},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum access_action got = cases[i].to ? access_check_to(a, cases[i].addr, &v)
                                             : access_check_from(a, cases[i].addr, &v);
        if (got != cases[i].want || v.lineno != cases[i].line)
            fail_msg("case %zu (%s): got %s line %u, want %s line %u", i, cases[i].addr,
                     access_action_name(got), v.lineno, access_action_name(cases[i].want),
                     cases[i].line);
    }
    assert_int_equal(access_check_from(a, "x@example.org", &v), ACCESS_ERROR);
    assert_int_equal(v.code, 550);
    assert_string_equal(v.dsn, "5.7.1");
    assert_string_equal(v.text, "we do not talk to example.org: sorry");
    assert_int_equal(access_check_from(a, "spammer@good.example.com", &v), ACCESS_ERROR);
    assert_int_equal(v.code, 550);
    assert_string_equal(v.dsn, "");
    assert_string_equal(v.text, "not you");
    assert_int_equal(access_check_from(a, "nobody@nowhere.test", &v), ACCESS_NONE);
    assert_string_equal(v.text, "");
    assert_int_equal(v.code, 0);
    access_free(a);
}

static void test_access_actions(void **state)
{
    (void)state;
    struct access *a = load_ok("a.test ok\nb.test Relay\nc.test ERROR:450\n"
                               "d.test ERROR:\"5.1.1:550 no such user\"\n"
                               "e.test ERROR:550 see ticket #12\n");
    struct access_verdict v;
    assert_int_equal(access_check_to(a, "x@a.test", &v), ACCESS_OK);
    assert_int_equal(access_check_to(a, "x@b.test", &v), ACCESS_RELAY);
    assert_int_equal(access_check_to(a, "x@c.test", &v), ACCESS_ERROR);
    assert_int_equal(v.code, 450);
    assert_string_equal(v.text, "");
    assert_int_equal(access_check_to(a, "x@d.test", &v), ACCESS_ERROR);
    assert_string_equal(v.dsn, "5.1.1");
    assert_string_equal(v.text, "no such user");
    assert_int_equal(access_check_to(a, "x@e.test", &v), ACCESS_ERROR);
    assert_string_equal(v.text, "see ticket #12");
    assert_string_equal(access_action_name(ACCESS_DISCARD), "DISCARD");
    assert_string_equal(access_action_name(ACCESS_NONE), "NONE");
    access_free(a);
}

static const struct {
    const char *text;
    const char *error;
} access_bad[] = {
    {"example.com\n", "access:1: expected an action after the key"},
    {"# x\nexample.com ALLOW\n",
     "access:2: expected OK, RELAY, REJECT, DISCARD, SKIP or ERROR:... as action, got \"ALLOW\""},
    {"example.com REJECT now\n",
     "access:1: expected OK, RELAY, REJECT, DISCARD, SKIP or ERROR:... as action, got \"REJECT "
     "now\""},
    {"From: spammer@x.test REJECT\n", "access:1: expected a key after \"From:\""},
    {"Spam:x.test REJECT\n",
     "access:1: unknown tag in \"Spam:x.test\" (expected Connect:, From:, To: or IPv6:)"},
    {"IPv6:10.0.0.1 REJECT\n",
     "access:1: expected an IPv6 address or network after \"IPv6:\", got \"10.0.0.1\""},
    {"[::1] OK\n", "access:1: expected IPv6:ADDRESS rather than \"[::1]\""},
    {"192.168.1.256 OK\n", "access:1: invalid IPv4 network \"192.168.1.256\""},
    {"10.0.0.0/33 OK\n", "access:1: invalid IPv4 network \"10.0.0.0/33\""},
    {".example.com OK\n",
     "access:1: expected a domain without leading dot (\"example.com\" already matches its "
     "subdomains)"},
    {"exa_mple..com OK\n", "access:1: expected a network, domain or address, got \"exa_mple..com\""},
    {"Connect:bob@x.test OK\n",
     "access:1: expected a network or host name after \"Connect:\", got \"bob@x.test\""},
    {"From:10.0.0.0/8 OK\n",
     "access:1: expected an address or domain after \"From:\", got network \"10.0.0.0/8\""},
    {"@x.test OK\n", "access:1: expected user@domain, user@ or domain as key, got \"@x.test\""},
    {"bob@x..test OK\n", "access:1: invalid domain in key \"bob@x..test\""},
    {"x.test ERROR:\"550 no\n", "access:1: expected ERROR:\"CODE text\" with one closing quote"},
    {"x.test ERROR:250 fine\n",
     "access:1: expected a 4xx or 5xx reply code in ERROR:, got \"250 fine\""},
    {"x.test ERROR:55 x\n", "access:1: expected a 4xx or 5xx reply code in ERROR:, got \"55 x\""},
    {"x.test ERROR:2.0.0:550 x\n",
     "access:1: expected a DSN like 5.7.1 before ':' in ERROR:, got \"2.0.0\""},
    {"x.test ERROR:4.7.1:550 x\n", "access:1: DSN 4.7.1 does not match reply code 550"},
    {"x.test ERROR:550 t\x01x\n", "access:1: expected printable ASCII in ERROR text"},
    {"x.test OK\n192.168.1 RELAY\nX.TEST REJECT\n192.168.1.0/24 OK\n",
     "access:3: duplicate key (first defined on line 1)"},
    {"10.1.2.3 OK\n10.1.2.3/32 OK\n", "access:2: duplicate key (first defined on line 1)"},
};

static void test_access_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof access_bad / sizeof access_bad[0]; i++) {
        struct access *a = (struct access *)1;
        struct cfg_error err = {{0}};
        const char *text = access_bad[i].text;
        assert_int_equal(access_load(&a, "access", text, strlen(text), &err), -1);
        assert_null(a);
        if (strcmp(err.text, access_bad[i].error) != 0)
            fail_msg("case %zu: got '%s' want '%s'", i, err.text, access_bad[i].error);
    }
    /* Tagged and untagged versions of one key are not duplicates. */
    struct access *a = load_ok("10.1 OK\nConnect:10.1 REJECT\n");
    access_free(a);
    a = load_ok("\f\n10.2 OK\n\r\r\n");
    assert_int_equal(access_count(a), 1);
    access_free(a);

    char big[400];
    memset(big, 'x', sizeof big);
    memcpy(big, "a.test ERROR:550 ", 17);
    big[sizeof big - 2] = '\n';
    big[sizeof big - 1] = '\0';
    struct cfg_error err;
    assert_int_equal(access_load(&a, "access", big, strlen(big), &err), -1);
    assert_string_equal(err.text, "access:1: ERROR text longer than 200 bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_access_connect),
        cmocka_unit_test(test_access_mail),
        cmocka_unit_test(test_access_actions),
        cmocka_unit_test(test_access_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
