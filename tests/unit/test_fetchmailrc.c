/* Unit tests for reference/proto/fetchmailrc: the seed's lines, every keyword, defaults, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fetchmailrc.h"

static bool parse(struct fetchrc *rc, const char *text, char *error)
{
    return fetchrc_parse(rc, "rc", text, strlen(text), error);
}

static void test_seed_lines(void **state)
{
    (void)state;
    struct fetchrc rc;
    char err[FETCHRC_ERROR_MAX];
    const char *text =
        "poll pop.provider.nl proto pop3 aka provider.nl no dns user NAME pass SECRET is localuser\n"
        "poll imap.provider1.nl proto imap aka provider.nl no dns user NAME pass SECRET is localuser\n";
    assert_true(parse(&rc, text, err));
    assert_int_equal(rc.nservers, 2);
    const struct fetchrc_server *s = &rc.servers[0];
    assert_string_equal(s->name, "pop.provider.nl");
    assert_int_equal(s->proto, FETCHRC_PROTO_POP3);
    assert_int_equal(s->naka, 1);
    assert_string_equal(s->aka[0], "provider.nl");
    assert_false(s->dns);
    assert_int_equal(s->nusers, 1);
    assert_string_equal(s->users[0].remote, "NAME");
    assert_string_equal(s->users[0].password, "SECRET");
    assert_int_equal(s->users[0].nlocals, 1);
    assert_string_equal(s->users[0].locals[0].local, "localuser");
    assert_null(s->users[0].locals[0].remote);
    assert_false(s->users[0].keep);
    assert_int_equal(fetchrc_port(s, &s->users[0]), 110);
    s = &rc.servers[1];
    assert_string_equal(s->name, "imap.provider1.nl");
    assert_int_equal(s->proto, FETCHRC_PROTO_IMAP);
    assert_int_equal(fetchrc_port(s, &s->users[0]), 143);
    assert_true(rc.bouncemail);
    fetchrc_free(&rc);
}

static void test_every_keyword(void **state)
{
    (void)state;
    struct fetchrc rc;
    char err[FETCHRC_ERROR_MAX];
    const char *text =
        "# a comment\n"
        "set daemon 3600\n"
        "set postmaster \"postmaster\"\n"
        "set logfile '/var/log/fetchmail.log'\n"
        "set no bouncemail\n"
        "set idfile /tmp/ids   # trailing comment\n"
        "poll mail.example.org via 127.9.4.110 with protocol IMAP port 993 timeout 20,\n"
        "    aka example.org example.net localdomains example.org; envelope 1 \"Delivered-To\"\n"
        "    qvirtual \"zolder-\" interval 2 dns no uidl auth plain:\n"
        "  user \"sjoerd\" there with password \"ge\\\"heim #x\" is sjoerd here and wants keep\n"
        "    fetchall flush limit 100000 fetchlimit 50 ssl sslcertck sslcertfile \"/ca.pem\"\n"
        "    sslproto TLS1.2+ sslcommonname mail.example.org folder INBOX Archief\n"
        "    smtphost localhost 127.0.1.20 smtpaddress zolder.thuis\n"
        "  username jan password j to jan = jansen piet options nokeep no fetchall noflush\n"
        "skip other.example.org protocol auto service pop3s no envelope user x pass y\n";
    assert_true(parse(&rc, text, err));
    assert_int_equal(rc.daemon, 3600);
    assert_string_equal(rc.postmaster, "postmaster");
    assert_string_equal(rc.logfile, "/var/log/fetchmail.log");
    assert_string_equal(rc.idfile, "/tmp/ids");
    assert_false(rc.bouncemail);
    assert_int_equal(rc.nservers, 2);
    const struct fetchrc_server *s = &rc.servers[0];
    assert_false(s->skip);
    assert_string_equal(s->via, "127.9.4.110");
    assert_int_equal(s->proto, FETCHRC_PROTO_IMAP);
    assert_int_equal(s->port, 993);
    assert_int_equal(s->timeout, 20);
    assert_int_equal(s->naka, 2);
    assert_string_equal(s->aka[1], "example.net");
    assert_int_equal(s->nlocaldomains, 1);
    assert_string_equal(s->envelope, "Delivered-To");
    assert_int_equal(s->envelope_skip, 1);
    assert_string_equal(s->qvirtual, "zolder-");
    assert_int_equal(s->interval, 2);
    assert_true(s->dns);
    assert_false(s->uidl);
    assert_int_equal(s->auth, FETCHRC_AUTH_PLAIN);
    assert_int_equal(s->nusers, 2);
    const struct fetchrc_user *u = &s->users[0];
    assert_string_equal(u->remote, "sjoerd");
    assert_string_equal(u->password, "ge\"heim #x");
    assert_int_equal(u->nlocals, 1);
    assert_string_equal(u->locals[0].local, "sjoerd");
    assert_true(u->keep && u->fetchall && u->flush && u->ssl && u->sslcertck);
    assert_int_equal(u->limit, 100000);
    assert_int_equal(u->fetchlimit, 50);
    assert_string_equal(u->sslcertfile, "/ca.pem");
    assert_string_equal(u->sslproto, "TLS1.2+");
    assert_string_equal(u->sslcommonname, "mail.example.org");
    assert_int_equal(u->nfolders, 2);
    assert_string_equal(u->folders[1], "Archief");
    assert_int_equal(u->nsmtphosts, 2);
    assert_string_equal(u->smtpaddress, "zolder.thuis");
    u = &s->users[1];
    assert_string_equal(u->remote, "jan");
    assert_int_equal(u->nlocals, 2);
    assert_string_equal(u->locals[0].remote, "jan");
    assert_string_equal(u->locals[0].local, "jansen");
    assert_string_equal(u->locals[1].local, "piet");
    assert_false(u->keep || u->fetchall || u->flush || u->ssl);
    s = &rc.servers[1];
    assert_true(s->skip);
    assert_int_equal(s->proto, FETCHRC_PROTO_AUTO);
    assert_int_equal(s->port, 995);
    assert_true(s->no_envelope);
    fetchrc_free(&rc);
}

static void test_defaults_and_implicit_user(void **state)
{
    (void)state;
    struct fetchrc rc;
    char err[FETCHRC_ERROR_MAX];
    const char *text = "defaults proto imap timeout 60 keep ssl\n"
                       "poll a.example proto pop3 user u1 pass p1 is * here\n"
                       "poll b.example nokeep password p2\n";
    assert_true(parse(&rc, text, err));
    assert_int_equal(rc.nservers, 2);
    assert_int_equal(rc.servers[0].proto, FETCHRC_PROTO_POP3);
    assert_int_equal(rc.servers[0].timeout, 60);
    assert_true(rc.servers[0].users[0].keep);
    assert_true(rc.servers[0].users[0].ssl);
    assert_true(fetchrc_multidrop(&rc.servers[0].users[0]));
    assert_int_equal(fetchrc_port(&rc.servers[0], &rc.servers[0].users[0]), 995);
    assert_int_equal(rc.servers[1].proto, FETCHRC_PROTO_IMAP);
    assert_int_equal(rc.servers[1].nusers, 1);
    assert_string_equal(rc.servers[1].users[0].remote, "");
    assert_false(rc.servers[1].users[0].keep);
    assert_string_equal(rc.servers[1].users[0].password, "p2");
    assert_int_equal(fetchrc_port(&rc.servers[1], &rc.servers[1].users[0]), 993);
    fetchrc_free(&rc);
}

struct err_case {
    const char *text;
    const char *error;
};

static const struct err_case err_cases[] = {
    {"poll a proto pop3 frobnicate\n", "rc:1:19: unknown keyword \"frobnicate\""},
    {"poll a\n  user x\n  bogus 1\n", "rc:3:3: unknown keyword \"bogus\""},
    {"hello\n", "rc:1:1: unknown keyword \"hello\" (expected set, poll, skip or defaults)"},
    {"poll a proto pop2\n", "rc:1:14: protocol \"pop2\" is not supported (pop3, imap, auto)"},
    {"poll a port 70000\n", "rc:1:13: port needs a number from 1 to 65535 or a service name"},
    {"poll a timeout x\n", "rc:1:16: timeout needs a number from 0 to 86400"},
    {"poll a user\n", "rc:2:1: user needs a value"},
    {"poll a user x pass \"open\n", "rc:1:20: unterminated string"},
    {"set frob\n", "rc:1:5: unknown set option \"frob\""},
    {"set no daemon\n", "rc:1:8: unknown set option \"no daemon\""},
    {"poll a user x mda \"/usr/bin/procmail\"\n", "rc:1:15: \"mda\" is not supported by zolder's poller"},
    {"poll a user x via b\n", "rc:1:15: server option via after user options"},
    {"poll a no limit 4\n", "rc:1:11: \"no\" does not apply to limit"},
    {"poll a no \"x\"\n", "rc:1:11: \"no\" needs a keyword after it"},
    {"poll a user x is a = \n", "rc:2:1: is NAME = needs a value"},
    {"poll = \n", "rc:1:6: poll needs a value"},
    {"poll a \"str\"\n", "rc:1:8: a quoted string where a keyword was expected"},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
        struct fetchrc rc;
        char err[FETCHRC_ERROR_MAX];
        bool ok = parse(&rc, err_cases[i].text, err);
        if (ok || strcmp(err, err_cases[i].error) != 0)
            fail_msg("case %zu: got %s \"%s\", want \"%s\"", i, ok ? "ok" : "error", err,
                     err_cases[i].error);
        fetchrc_free(&rc);
    }
}

static void test_password_not_in_errors(void **state)
{
    (void)state;
    struct fetchrc rc;
    char err[FETCHRC_ERROR_MAX];
    assert_false(parse(&rc, "poll a user x password geheimpje = y\n", err));
    assert_null(strstr(err, "geheimpje"));
    fetchrc_free(&rc);
    char big[FETCHRC_STRING_MAX + 40];
    memset(big, 'p', sizeof big);
    memcpy(big, "poll ", 5);
    big[sizeof big - 1] = '\0';
    assert_false(parse(&rc, big, err));
    assert_non_null(strstr(err, "string longer than"));
    fetchrc_free(&rc);
    assert_false(fetchrc_parse(&rc, "rc", "poll a\0b", 8, err));
    assert_non_null(strstr(err, "NUL byte"));
    fetchrc_free(&rc);
}

static void test_limits(void **state)
{
    (void)state;
    struct fetchrc rc;
    char err[FETCHRC_ERROR_MAX];
    char text[4096] = "poll a aka";
    for (int i = 0; i <= FETCHRC_LIST_MAX; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), " n%d", i);
    assert_false(parse(&rc, text, err));
    assert_non_null(strstr(err, "aka: more than 16 names"));
    fetchrc_free(&rc);
    text[0] = '\0';
    for (int i = 0; i <= FETCHRC_SERVERS_MAX; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "poll h%d\n", i);
    assert_false(parse(&rc, text, err));
    assert_non_null(strstr(err, "more than 64 poll entries"));
    fetchrc_free(&rc);
}

/* limitflush (fetchmail 6.3): negatable, inherited from defaults, per user. */
static void test_limitflush(void **state)
{
    (void)state;
    struct fetchrc rc;
    char err[FETCHRC_ERROR_MAX];
    assert_true(parse(&rc, "defaults limit 1000 limitflush\n"
                           "poll a user b\n"
                           "poll c user d no limitflush\n"
                           "poll e user f limit 5\n", err));
    assert_int_equal(rc.nservers, 3);
    assert_true(rc.servers[0].users[0].limitflush);
    assert_int_equal(rc.servers[0].users[0].limit, 1000);
    assert_false(rc.servers[1].users[0].limitflush);
    assert_true(rc.servers[2].users[0].limitflush);
    assert_int_equal(rc.servers[2].users[0].limit, 5);
    fetchrc_free(&rc);
    assert_true(parse(&rc, "poll a user b\n", err));
    assert_false(rc.servers[0].users[0].limitflush);
    fetchrc_free(&rc);
    assert_false(parse(&rc, "poll a user b limitflush 3\n", err));
    assert_non_null(strstr(err, "rc:1:26:"));
    fetchrc_free(&rc);
}

/* idle (fetchmail's IMAP IDLE): a negatable user option, inherited from defaults. */
static void test_idle(void **state)
{
    (void)state;
    struct fetchrc rc;
    char err[FETCHRC_ERROR_MAX];
    assert_true(parse(&rc, "defaults idle\n"
                           "poll a proto imap user b\n"
                           "poll c proto imap user d no idle\n"
                           "poll e proto imap user f options idle keep\n", err));
    assert_int_equal(rc.nservers, 3);
    assert_true(rc.servers[0].users[0].idle);
    assert_false(rc.servers[1].users[0].idle);
    assert_true(rc.servers[2].users[0].idle);
    assert_true(rc.servers[2].users[0].keep);
    fetchrc_free(&rc);
    /* off by default; an option before `user` applies to every user of the entry */
    assert_true(parse(&rc, "poll a proto imap user b\npoll c idle user d user e\n", err));
    assert_false(rc.servers[0].users[0].idle);
    assert_int_equal(rc.servers[1].nusers, 2);
    assert_true(rc.servers[1].users[0].idle && rc.servers[1].users[1].idle);
    fetchrc_free(&rc);
    /* takes no value: the next word must be a keyword */
    assert_false(parse(&rc, "poll a user b idle 3\n", err));
    assert_non_null(strstr(err, "rc:1:20:"));
    fetchrc_free(&rc);
    /* "idle" is a keyword, so it cannot be a bare value either (quote it) */
    assert_false(parse(&rc, "poll a user idle\n", err));
    assert_non_null(strstr(err, "rc:1:13:"));
    fetchrc_free(&rc);
    assert_true(parse(&rc, "poll a user \"idle\"\n", err));
    assert_string_equal(rc.servers[0].users[0].remote, "idle");
    assert_false(rc.servers[0].users[0].idle);
    fetchrc_free(&rc);
}

/* smtphost values: fetchmail's HOST/PORT, HOST:PORT, [V6]:PORT, names and addresses. */
static void test_smtphost(void **state)
{
    (void)state;
    char host[64];
    unsigned port = 0;
    assert_true(fetchrc_smtphost("mail.lan", host, sizeof host, &port));
    assert_string_equal(host, "mail.lan");
    assert_int_equal(port, 25);
    assert_true(fetchrc_smtphost("mail.lan/2525", host, sizeof host, &port));
    assert_string_equal(host, "mail.lan");
    assert_int_equal(port, 2525);
    assert_true(fetchrc_smtphost("127.0.1.20:2625", host, sizeof host, &port));
    assert_string_equal(host, "127.0.1.20");
    assert_int_equal(port, 2625);
    assert_true(fetchrc_smtphost("localhost", host, sizeof host, &port));
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 25);
    assert_true(fetchrc_smtphost("LocalHost/smtp", host, sizeof host, &port));
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 25);
    assert_true(fetchrc_smtphost("[::1]:2525", host, sizeof host, &port));
    assert_string_equal(host, "::1");
    assert_int_equal(port, 2525);
    assert_true(fetchrc_smtphost("[fe80::1%lo]", host, sizeof host, &port));
    assert_string_equal(host, "fe80::1%lo");
    assert_int_equal(port, 25);
    assert_true(fetchrc_smtphost("::1", host, sizeof host, &port));
    assert_string_equal(host, "::1");
    assert_int_equal(port, 25);
    assert_true(fetchrc_smtphost("::1/587", host, sizeof host, &port));
    assert_string_equal(host, "::1");
    assert_int_equal(port, 587);
    assert_true(fetchrc_smtphost("h:65535", host, sizeof host, &port));
    assert_int_equal(port, 65535);
    /* not of that shape */
    static const char *const bad[] = {
        "", "/25", ":25", "[]", "[::1", "[::1]x", "h/0", "h/65536", "h/123456", "h/",
        "h:", "h/25x", "h/-1", "h/ 25", "a b", "a@b", "a\"b", "[::1]:x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (fetchrc_smtphost(bad[i], host, sizeof host, &port))
            fail_msg("accepted \"%s\"", bad[i]);
    }
    /* the host must fit */
    char small[4];
    assert_false(fetchrc_smtphost("abcd", small, sizeof small, &port));
    assert_true(fetchrc_smtphost("abc", small, sizeof small, &port));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_lines),
        cmocka_unit_test(test_every_keyword),
        cmocka_unit_test(test_defaults_and_implicit_user),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_password_not_in_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_limitflush),
        cmocka_unit_test(test_idle),
        cmocka_unit_test(test_smtphost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
