/* Unit tests for reference/proto/hostsfile: syntax, errors, lookups both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "hostsfile.h"

static const char *const hosts_text =
    "# the seed's LAN, as loopback addresses\n"          /* 1 */
    "127.0.0.1     localhost\n"                          /* 2 */
    "::1           localhost ip6-localhost   # v6 too\n" /* 3 */
    "127.0.1.20    zolder.thuis zolder\n"                /* 4 */
    "127.0.1.5     ecs.thuis ecs\n"                      /* 5 */
    "2001:db8::5   ECS.thuis.\n"                         /* 6 */
    "127.0.1.5     ecs-alias\n"                          /* 7 */
    "127.0.2.25    smtp.hccnet.nl\r\n"                   /* 8 */
    "\n"
    "::ffff:127.0.1.30 mapped.thuis\n";                  /* 10 */

static struct hostsfile *load_ok(const char *text)
{
    struct hostsfile *h = NULL;
    struct cfg_error err = {{0}};
    if (hostsfile_load(&h, "hosts", text, strlen(text), &err) != 0)
        fail_msg("unexpected error: %s", err.text);
    assert_non_null(h);
    return h;
}

static const char *fmt(const struct netaddr *a, char *out)
{
    netaddr_format(a, out, NETADDR_STRLEN);
    return out;
}

static void test_hostsfile_by_name(void **state)
{
    (void)state;
    struct hostsfile *h = load_ok(hosts_text);
    struct netaddr addrs[4];
    char s[NETADDR_STRLEN];
    assert_int_equal(hostsfile_count(h), 8);

    assert_int_equal(hostsfile_lookup_name(h, "localhost", AF_UNSPEC, addrs, 4), 2);
    assert_string_equal(fmt(&addrs[0], s), "127.0.0.1");
    assert_string_equal(fmt(&addrs[1], s), "::1");
    assert_int_equal(hostsfile_lookup_name(h, "localhost", AF_INET6, addrs, 4), 1);
    assert_string_equal(fmt(&addrs[0], s), "::1");
    /* Case-insensitive, trailing dot ignored, aliases count, duplicates dropped. */
    assert_int_equal(hostsfile_lookup_name(h, "Ecs.Thuis.", AF_UNSPEC, addrs, 4), 2);
    assert_string_equal(fmt(&addrs[0], s), "127.0.1.5");
    assert_string_equal(fmt(&addrs[1], s), "2001:db8::5");
    assert_int_equal(hostsfile_lookup_name(h, "ecs", AF_INET, addrs, 4), 1);
    assert_int_equal(hostsfile_lookup_name(h, "ecs", AF_INET6, addrs, 4), 0);
    assert_int_equal(hostsfile_lookup_name(h, "zolder", AF_INET, addrs, 4), 1);
    assert_string_equal(fmt(&addrs[0], s), "127.0.1.20");
    assert_int_equal(hostsfile_lookup_name(h, "smtp.hccnet.nl", AF_UNSPEC, addrs, 4), 1);
    assert_int_equal(hostsfile_lookup_name(h, "thuis", AF_UNSPEC, addrs, 4), 0);
    assert_int_equal(hostsfile_lookup_name(h, "zolder.thuis.nl", AF_UNSPEC, addrs, 4), 0);
    /* max bounds the result. */
    assert_int_equal(hostsfile_lookup_name(h, "localhost", AF_UNSPEC, addrs, 1), 1);
    assert_int_equal(hostsfile_lookup_name(h, "mapped.thuis", AF_INET, addrs, 4), 1);
    assert_string_equal(fmt(&addrs[0], s), "127.0.1.30");
    hostsfile_free(h);
}

static void test_hostsfile_by_addr(void **state)
{
    (void)state;
    struct hostsfile *h = load_ok(hosts_text);
    static const struct {
        const char *ip;
        const char *name;
    } cases[] = {
        {"127.0.0.1", "localhost"},       {"::1", "localhost"},
        {"127.0.1.5", "ecs.thuis"},       {"::ffff:127.0.1.5", "ecs.thuis"},
        {"2001:db8::5", "ecs.thuis"},     {"127.0.1.30", "mapped.thuis"},
        {"127.0.1.6", NULL},              {"2001:db8::6", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct netaddr a;
        assert_true(netaddr_parse(cases[i].ip, &a));
        const char *got = hostsfile_lookup_addr(h, &a);
        if (cases[i].name)
            assert_string_equal(got, cases[i].name);
        else
            assert_null(got);
    }
    hostsfile_free(h);
    h = load_ok("");
    assert_int_equal(hostsfile_count(h), 0);
    hostsfile_free(h);
    /* Lines of other white space (form feed, stray CRs) are blank lines (fuzzer find). */
    h = load_ok("\f\n127.8.3.1 ghost\n\r\r\r\n\v\n");
    assert_int_equal(hostsfile_count(h), 1);
    hostsfile_free(h);
}

static const struct {
    const char *text;
    const char *error;
} hosts_bad[] = {
    {"localhost 127.0.0.1\n", "hosts:1: expected an IPv4 or IPv6 address, got \"localhost\""},
    {"# x\n[::1] localhost\n", "hosts:2: expected an IPv4 or IPv6 address, got \"[::1]\""},
    {"127.0.0.256 x\n", "hosts:1: expected an IPv4 or IPv6 address, got \"127.0.0.256\""},
    {"192.168.1 x\n", "hosts:1: expected an IPv4 or IPv6 address, got \"192.168.1\""},
    {"fe80::1%eth0 x\n", "hosts:1: expected an IPv4 or IPv6 address, got \"fe80::1%eth0\""},
    {"127.0.0.1\n", "hosts:1: expected a host name after 127.0.0.1"},
    {"127.0.0.1 local..host\n", "hosts:1: expected a host name, got \"local..host\""},
    {"127.0.0.1 ok bad/name\n", "hosts:1: expected a host name, got \"bad/name\""},
    {"127.0.0.1 .\n", "hosts:1: expected a host name, got \".\""},
};

static void test_hostsfile_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof hosts_bad / sizeof hosts_bad[0]; i++) {
        struct hostsfile *h = (struct hostsfile *)1;
        struct cfg_error err = {{0}};
        const char *text = hosts_bad[i].text;
        assert_int_equal(hostsfile_load(&h, "hosts", text, strlen(text), &err), -1);
        assert_null(h);
        if (strcmp(err.text, hosts_bad[i].error) != 0)
            fail_msg("case %zu: got '%s' want '%s'", i, err.text, hosts_bad[i].error);
    }
    char text[1024];
    size_t used = (size_t)snprintf(text, sizeof text, "127.0.0.1");
    for (int i = 0; i < HOSTSFILE_NAMES_MAX + 1; i++)
        used += (size_t)snprintf(text + used, sizeof text - used, " h%d", i);
    struct hostsfile *h;
    struct cfg_error err;
    assert_int_equal(hostsfile_load(&h, "hosts", text, used, &err), -1);
    assert_string_equal(err.text, "hosts:1: more than 64 names for one address");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostsfile_by_name),
        cmocka_unit_test(test_hostsfile_by_addr),
        cmocka_unit_test(test_hostsfile_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
