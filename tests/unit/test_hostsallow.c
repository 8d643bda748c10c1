/* Unit tests for reference/proto/hostsallow: patterns, EXCEPT, FCrDNS names, decisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "hostsallow.h"

static struct hostsallow *load_ok(const char *file, const char *text)
{
    struct hostsallow *t = NULL;
    struct cfg_error err = {{0}};
    if (hostsallow_load(&t, file, text, strlen(text), &err) != 0)
        fail_msg("unexpected error: %s", err.text);
    assert_non_null(t);
    return t;
}

struct decide_case {
    const char *daemon;
    const char *ip;
    const char *name;  /* verified name or NULL */
    enum hostsallow_verdict want;
    const char *file;  /* NULL: default */
    unsigned line;
};

static void run_cases(const struct hostsallow *allow, const struct hostsallow *deny,
                      const struct decide_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct netaddr a;
        struct hostsallow_decision d;
        assert_true(netaddr_parse(cases[i].ip, &a));
        enum hostsallow_verdict v =
            hostsallow_decide(allow, deny, cases[i].daemon, &a, cases[i].name, &d);
        assert_int_equal(v, d.verdict);
        bool file_ok = cases[i].file ? d.file && strcmp(d.file, cases[i].file) == 0 : !d.file;
        if (v != cases[i].want || !file_ok || d.lineno != cases[i].line)
            fail_msg("case %zu (%s %s %s): got %s %s:%u, want %s %s:%u", i, cases[i].daemon,
                     cases[i].ip, cases[i].name ? cases[i].name : "-",
                     v == HOSTSALLOW_ALLOW ? "allow" : "deny", d.file ? d.file : "-", d.lineno,
                     cases[i].want == HOSTSALLOW_ALLOW ? "allow" : "deny",
                     cases[i].file ? cases[i].file : "-", cases[i].line);
    }
}

static void test_hostsallow_decide(void **state)
{
    (void)state;
    struct hostsallow *allow = load_ok("hosts.allow",
                                       "# zolder's services\n"
                                       "smtpd: 127.0.0.1 [::1] 192.168.1. \\\n"
                                       "       10.0.0.0/255.0.0.0 EXCEPT 10.9.0.0/16\n"
                                       "pop3d, imapd : .thuis EXCEPT bad.thuis # LAN names\n"
                                       "imapd: [2001:db8::]/32, LOCAL\n"
                                       "ALL EXCEPT smtpd: KNOWN EXCEPT .example.org : deny\n"
                                       "pop3d: 172.16.0.9 : allow\n");
    struct hostsallow *deny = load_ok("hosts.deny",
                                      "smtpd: 172.16. EXCEPT 172.16.0.7 : allow\n"
                                      "ALL: ALL\n");
    assert_int_equal(hostsallow_count(allow), 5);
    assert_int_equal(hostsallow_count(deny), 2);
    static const struct decide_case cases[] = {
        {"smtpd", "127.0.0.1", NULL, HOSTSALLOW_ALLOW, "hosts.allow", 2},
        {"smtpd", "::1", NULL, HOSTSALLOW_ALLOW, "hosts.allow", 2},
        /* Octet boundaries. */
        {"smtpd", "192.168.1.5", NULL, HOSTSALLOW_ALLOW, "hosts.allow", 2},
        {"smtpd", "192.168.10.5", NULL, HOSTSALLOW_DENY, "hosts.deny", 2},
        {"smtpd", "192.168.100.1", NULL, HOSTSALLOW_DENY, "hosts.deny", 2},
        /* EXCEPT inside the client list (continued line). */
        {"smtpd", "10.1.2.3", NULL, HOSTSALLOW_ALLOW, "hosts.allow", 2},
        {"smtpd", "10.9.2.3", NULL, HOSTSALLOW_DENY, "hosts.deny", 2},
        /* Host-name patterns see only the verified name. */
        {"pop3d", "192.168.7.7", "ecs.thuis", HOSTSALLOW_ALLOW, "hosts.allow", 4},
        {"pop3d", "192.168.7.7", "ECS.Thuis.", HOSTSALLOW_ALLOW, "hosts.allow", 4},
        {"pop3d", "192.168.7.7", NULL, HOSTSALLOW_DENY, "hosts.deny", 2},
        {"pop3d", "192.168.7.7", "thuis", HOSTSALLOW_DENY, "hosts.allow", 6},
        {"imapd", "192.168.7.7", "bad.thuis", HOSTSALLOW_DENY, "hosts.allow", 6},
        /* LOCAL: a verified name without a dot. */
        {"imapd", "192.168.7.8", "paprika", HOSTSALLOW_ALLOW, "hosts.allow", 5},
        {"imapd", "2001:db8::8", NULL, HOSTSALLOW_ALLOW, "hosts.allow", 5},
        {"imapd", "2001:db9::8", NULL, HOSTSALLOW_DENY, "hosts.deny", 2},
        /* KNOWN EXCEPT .example.org with a deny option in hosts.allow. */
        {"imapd", "192.0.2.1", "www.example.org", HOSTSALLOW_DENY, "hosts.deny", 2},
        {"imapd", "192.0.2.1", "mail.example.net", HOSTSALLOW_DENY, "hosts.allow", 6},
        /* ALL EXCEPT smtpd: the daemon list excludes smtpd. */
        {"smtpd", "192.0.2.1", "mail.example.net", HOSTSALLOW_DENY, "hosts.deny", 2},
        {"pop3d", "172.16.0.9", NULL, HOSTSALLOW_ALLOW, "hosts.allow", 7},
        /* allow option in hosts.deny. */
        {"smtpd", "172.16.0.8", NULL, HOSTSALLOW_ALLOW, "hosts.deny", 1},
        {"smtpd", "172.16.0.7", NULL, HOSTSALLOW_DENY, "hosts.deny", 2},
        /* Unknown daemon name: only ALL patterns apply. */
        {"sshd", "127.0.0.1", NULL, HOSTSALLOW_DENY, "hosts.deny", 2},
    };
    run_cases(allow, deny, cases, sizeof cases / sizeof cases[0]);

    /* No tables at all: allow. Only a deny table: deny what it lists. */
    static const struct decide_case none[] = {
        {"smtpd", "192.0.2.1", NULL, HOSTSALLOW_ALLOW, NULL, 0},
    };
    run_cases(NULL, NULL, none, 1);
    static const struct decide_case only_deny[] = {
        {"smtpd", "192.0.2.1", NULL, HOSTSALLOW_DENY, "hosts.deny", 2},
        {"smtpd", "172.16.1.1", NULL, HOSTSALLOW_ALLOW, "hosts.deny", 1},
    };
    run_cases(NULL, deny, only_deny, 2);
    /* hostsallow_match on its own, with a NULL lineno-free path through decide. */
    struct netaddr a;
    assert_true(netaddr_parse("192.168.1.9", &a));
    enum hostsallow_verdict v;
    unsigned line;
    assert_true(hostsallow_match(allow, "smtpd", &a, NULL, HOSTSALLOW_ALLOW, &v, &line));
    assert_int_equal(line, 2);
    assert_false(hostsallow_match(allow, "pop3d", &a, NULL, HOSTSALLOW_ALLOW, &v, &line));
    assert_int_equal(hostsallow_decide(allow, deny, "pop3d", &a, NULL, NULL), HOSTSALLOW_DENY);
    hostsallow_free(allow);
    hostsallow_free(deny);
}

static void test_hostsallow_nested_except(void **state)
{
    (void)state;
    /* "A EXCEPT B EXCEPT C" = A and not (B and not C). */
    struct hostsallow *allow =
        load_ok("hosts.allow", "ALL: 10. EXCEPT 10.1. EXCEPT 10.1.1.1\n");
    static const struct decide_case cases[] = {
        {"smtpd", "10.2.0.1", NULL, HOSTSALLOW_ALLOW, "hosts.allow", 1},
        {"smtpd", "10.1.0.1", NULL, HOSTSALLOW_ALLOW, NULL, 0},
        {"smtpd", "10.1.1.1", NULL, HOSTSALLOW_ALLOW, "hosts.allow", 1},
        {"smtpd", "11.1.1.1", NULL, HOSTSALLOW_ALLOW, NULL, 0},
    };
    run_cases(allow, NULL, cases, sizeof cases / sizeof cases[0]);
    hostsallow_free(allow);
    /* Lines of other white space (form feed, stray CRs) are blank lines. */
    allow = load_ok("hosts.allow", "\f\nALL: ALL\n\r\r\n");
    assert_int_equal(hostsallow_count(allow), 1);
    hostsallow_free(allow);
}

static void test_hostsallow_localhost_pitfall(void **state)
{
    (void)state;
    struct hostsallow_decision d;
    /* The seed's setup: everything denied, the LAN allowed, localhost forgotten. */
    struct hostsallow *deny = load_ok("hosts.deny", "ALL: ALL\n");
    struct hostsallow *allow = load_ok("hosts.allow", "ALL: 192.168.1.\n");
    assert_true(hostsallow_denies_localhost(allow, deny, "smtpd", &d));
    assert_int_equal(d.verdict, HOSTSALLOW_DENY);
    assert_string_equal(d.file, "hosts.deny");
    assert_int_equal(d.lineno, 1);
    hostsallow_free(allow);

    /* LOCAL only covers localhost when 127.0.0.1 has a verified name: still a pitfall. */
    allow = load_ok("hosts.allow", "ALL: LOCAL\n");
    assert_true(hostsallow_denies_localhost(allow, deny, "smtpd", &d));
    hostsallow_free(allow);

    allow = load_ok("hosts.allow", "smtpd: 127.0.0.1\n");
    assert_false(hostsallow_denies_localhost(allow, deny, "smtpd", &d));
    assert_int_equal(d.verdict, HOSTSALLOW_ALLOW);
    assert_int_equal(d.lineno, 1);
    assert_true(hostsallow_denies_localhost(allow, deny, "pop3d", NULL));
    assert_false(hostsallow_denies_localhost(NULL, NULL, "smtpd", NULL));
    hostsallow_free(allow);
    hostsallow_free(deny);
}

static const struct {
    const char *text;
    const char *error;
} hostsallow_bad[] = {
    {"smtpd 127.0.0.1\n", "hosts.allow:1: expected \"daemon_list : client_list [: option]\""},
    {"# c\n\nsmptd: ALL\n",
     "hosts.allow:3: unknown daemon \"smptd\" (expected smtpd, pop3d, imapd or ALL)"},
    {"sshd@host: ALL\n", "hosts.allow:1: daemon@host pattern \"sshd@host\" is not supported"},
    {": ALL\n", "hosts.allow:1: expected a daemon list"},
    {"ALL: , \n", "hosts.allow:1: expected a client list"},
    {"ALL: ALL : spawn (/bin/echo %a | mail root)\n",
     "hosts.allow:1: unsupported option \"spawn (/bin/echo %a | mail root)\" (expected allow or "
     "deny: zolder runs no commands from access tables)"},
    {"ALL: ALL : twist /bin/false\n",
     "hosts.allow:1: unsupported option \"twist /bin/false\" (expected allow or deny: zolder runs "
     "no commands from access tables)"},
    {"ALL: ALL : deny : allow\n", "hosts.allow:1: expected only one option (allow or deny)"},
    {"ALL: EXCEPT 10.\n",
     "hosts.allow:1: expected a pattern on both sides of EXCEPT in the client list"},
    {"ALL: 10. EXCEPT\n",
     "hosts.allow:1: expected a pattern on both sides of EXCEPT in the client list"},
    {"ALL: 10. EXCEPT EXCEPT 11.\n",
     "hosts.allow:1: expected a pattern on both sides of EXCEPT in the client list"},
    {"EXCEPT smtpd: ALL\n",
     "hosts.allow:1: expected a pattern on both sides of EXCEPT in the daemon list"},
    {"ALL: PARANOID\n",
     "hosts.allow:1: PARANOID is not supported: host-name patterns only ever match "
     "forward-confirmed names"},
    {"ALL: @trusted\n", "hosts.allow:1: netgroup pattern \"@trusted\" is not supported"},
    {"ALL: /etc/zolder/lan\n", "hosts.allow:1: file pattern \"/etc/zolder/lan\" is not supported"},
    {"ALL: *.example.org\n", "hosts.allow:1: wildcard pattern \"*.example.org\" is not supported"},
    {"ALL: 192.168.1\n",
     "hosts.allow:1: expected \"192.168.1.\" with a trailing dot for an address prefix"},
    {"ALL: 192.168.1.300\n", "hosts.allow:1: invalid IPv4 address \"192.168.1.300\""},
    {"ALL: 192.168.1.5.\n",
     "hosts.allow:1: expected an address prefix like 192.168.1., got \"192.168.1.5.\""},
    {"ALL: example.org.\n",
     "hosts.allow:1: expected an address prefix like 192.168.1., got \"example.org.\""},
    {"ALL: 10.0.0.0/255.0.255.0\n",
     "hosts.allow:1: expected net/mask like 192.168.1.0/255.255.255.0 or 192.168.1.0/24, got "
     "\"10.0.0.0/255.0.255.0\""},
    {"ALL: [10.0.0.1]\n",
     "hosts.allow:1: expected [IPv6-address] or [IPv6-address]/bits, got \"[10.0.0.1]\""},
    {"ALL: [::1]/x\n", "hosts.allow:1: expected [IPv6-address] or [IPv6-address]/bits, got "
                       "\"[::1]/x\""},
    {"ALL: [::1\n", "hosts.allow:1: expected [IPv6-address] or [IPv6-address]/bits, got \"[::1\""},
    {"ALL: .exa..mple\n", "hosts.allow:1: expected a domain after '.', got \".exa..mple\""},
    {"ALL: ho$t\n", "hosts.allow:1: expected a client pattern, got \"ho$t\""},
};

static void test_hostsallow_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof hostsallow_bad / sizeof hostsallow_bad[0]; i++) {
        struct hostsallow *t = (struct hostsallow *)1;
        struct cfg_error err = {{0}};
        const char *text = hostsallow_bad[i].text;
        assert_int_equal(hostsallow_load(&t, "hosts.allow", text, strlen(text), &err), -1);
        assert_null(t);
        if (strcmp(err.text, hostsallow_bad[i].error) != 0)
            fail_msg("case %zu: got '%s' want '%s'", i, err.text, hostsallow_bad[i].error);
    }
    /* Too many patterns in one list. */
    char text[2048];
    size_t used = 0;
    memcpy(text, "ALL:", 4);
    used = 4;
    for (int i = 0; i < 257; i++) {
        memcpy(text + used, " 10.", 4);
        used += 4;
    }
    text[used++] = '\n';
    text[used] = '\0';
    struct hostsallow *t;
    struct cfg_error err;
    assert_int_equal(hostsallow_load(&t, "hosts.allow", text, used, &err), -1);
    assert_string_equal(err.text, "hosts.allow:1: more than 256 patterns in the client list");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostsallow_decide),
        cmocka_unit_test(test_hostsallow_nested_except),
        cmocka_unit_test(test_hostsallow_localhost_pitfall),
        cmocka_unit_test(test_hostsallow_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
