/* Unit tests for reference/proto/zconf: every key type, defaults, and file:line errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "zconf.h"

static bool parse(struct zconf *c, const char *text, struct cfg_error *err)
{
    zconf_defaults(c, "/etc/zolder");
    return zconf_parse(c, "/etc/zolder/zolder.conf", text, strlen(text), err);
}

static void test_zconf_defaults_are_loopback_only(void **state)
{
    (void)state;
    struct zconf c;
    struct cfg_error err;
    assert_true(parse(&c, "", &err));
    assert_int_equal(c.nlisten, 1);
    assert_string_equal(c.listen[0].text, "127.0.0.1:25");
    assert_int_equal(c.nsubmission, 0);
    assert_int_equal(c.relay_from.n, 0);
    assert_false(c.vrfy);
    assert_false(c.expn);
    assert_int_equal(c.line_length_limit, 1000);
    assert_string_equal(c.run_as, "zolder");
    assert_string_equal(c.filter_user, ""); /* scanners run as run_as */
    assert_true(zconf_validate(&c, &err));
    zconf_free(&c);
}

static void test_zconf_seed_config(void **state)
{
    (void)state;
    struct zconf c;
    struct cfg_error err;
    const char *text = "hostname       = zolder.thuis\n"
                       "listen         = 127.0.1.20:25, [::1]:2525\n"
                       "submission     = 127.0.1.20:587\n"
                       "local_domains  = zolder.thuis, localhost\n"
                       "relay_from     = 127.0.1.0/24 192.168.1   # the LAN\n"
                       "masquerade     = ecs.thuis visser.thuis -> mijn.domein.nl\n"
                       "state_dir      = var\n"
                       "users          = users\n"
                       "tls_cert       = /etc/ssl/zolder.pem\n"
                       "tls_key        = key.pem\n"
                       "outbound_allow = sjoerd\n"
                       "smtpd_timeout  = 5\n";
    assert_true(parse(&c, text, &err));
    assert_string_equal(c.hostname, "zolder.thuis");
    assert_int_equal(c.nlisten, 2);
    assert_string_equal(c.listen[1].text, "[::1]:2525");
    assert_string_equal(c.submission[0].text, "127.0.1.20:587");
    assert_int_equal(c.relay_from.n, 2);
    assert_int_equal(c.relay_from.net[1].prefix, 24);
    assert_int_equal(c.masquerade.nhosts, 2);
    assert_string_equal(c.masquerade.domain, "mijn.domein.nl");
    assert_string_equal(c.state_dir, "/etc/zolder/var");
    assert_string_equal(c.users, "/etc/zolder/users");
    assert_string_equal(c.tls_cert, "/etc/ssl/zolder.pem");
    assert_true(c.outbound_restricted);
    assert_int_equal(c.smtpd_timeout, 5);
    assert_true(zconf_is_local_domain(&c, "ZOLDER.thuis"));
    assert_false(zconf_is_local_domain(&c, "other.example"));
    struct buf out;
    buf_init(&out, 0);
    zconf_print(&c, &out);
    assert_non_null(strstr(out.data, "masquerade = ecs.thuis visser.thuis -> mijn.domein.nl\n"));
    assert_non_null(strstr(out.data, "relay_from = 127.0.1.0/24, 192.168.1.0/24\n"));
    buf_reset(&out);
    zconf_free(&c);
    /* A value holding " #" is printed quoted, so -n output parses back to the same value. */
    assert_true(parse(&c, "users = \"my # users\"\n", &err));
    assert_string_equal(c.users, "/etc/zolder/my # users");
    zconf_print(&c, &out);
    assert_non_null(strstr(out.data, "users = \"/etc/zolder/my # users\"\n"));
    buf_free(&out);
    zconf_free(&c);
}

struct bad_case {
    const char *text;
    const char *error;
};

static void test_zconf_errors_name_file_and_line(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {.text = "hostname = a\nbogus = 1\n",
         .error = "/etc/zolder/zolder.conf:2: unknown key \"bogus\" (docs/config.md lists every key)"},
        {.text = "\n\nlisten\n", .error = "/etc/zolder/zolder.conf:3: expected \"key = value\", got \"listen\""},
        {.text = "listen = 127.0.0.1:99999\n",
         .error = "/etc/zolder/zolder.conf:1: listen: expected ADDRESS[:PORT] such as 127.0.0.1:25 or [::1]:25, got \"127.0.0.1:99999\""},
        {.text = "relay_from = 192.168.1.0/33\n",
         .error = "/etc/zolder/zolder.conf:1: relay_from: expected networks such as 192.168.1.0/24 or 192.168.1, got \"192.168.1.0/33\""},
        {.text = "vrfy = maybe\n", .error = "/etc/zolder/zolder.conf:1: vrfy: expected yes or no, got \"maybe\""},
        {.text = "recipient_limit = 0\n",
         .error = "/etc/zolder/zolder.conf:1: recipient_limit: expected a whole number from 1 to 10000, got \"0\""},
        {.text = "hostname = a\nhostname = b\n", .error = "/etc/zolder/zolder.conf:2: key \"hostname\" set twice"},
        {.text = "masquerade = ecs.thuis\n",
         .error = "/etc/zolder/zolder.conf:1: masquerade: expected \"HOST [HOST...] -> DOMAIN\", got \"ecs.thuis\""},
        {.text = "mailbox_format = mh\n",
         .error = "/etc/zolder/zolder.conf:1: mailbox_format: expected one of: mbox maildir; got \"mh\""},
        {.text = "hostname = bad_host!\n",
         .error = "/etc/zolder/zolder.conf:1: hostname: expected a host name like zolder.thuis, got \"bad_host!\""},
        {.text = "mail_dir = /srv/mail\n",
         .error = "/etc/zolder/zolder.conf:1: mail_dir: an absolute mail_dir needs %u, or every user would share one folder tree, got \"/srv/mail\""},
        {.text = "mail_dir = ~/../etc\n",
         .error = "/etc/zolder/zolder.conf:1: mail_dir: expected ~/FOLDER (no empty, \".\" or \"..\" components), got \"~/../etc\""},
        {.text = "run_as = #\n", .error = "/etc/zolder/zolder.conf:1: run_as: expected a user name, got \"\""},
        {.text = "run_as = bad!user\n", .error = "/etc/zolder/zolder.conf:1: run_as: expected a user name, got \"bad!user\""},
        {.text = "filter_user = -scan\n", .error = "/etc/zolder/zolder.conf:1: filter_user: expected a user name, got \"-scan\""},
        {.text = "users = a\"b\n",
         .error = "/etc/zolder/zolder.conf:1: users: quotes may only enclose the whole value"},
        {.text = "listen = ::1:25\n",
         .error = "/etc/zolder/zolder.conf:1: listen: expected ADDRESS[:PORT] such as 127.0.0.1:25 or [::1]:25, got \"::1:25\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct zconf c;
        struct cfg_error err;
        assert_false(parse(&c, cases[i].text, &err));
        assert_string_equal(err.text, cases[i].error);
        zconf_free(&c);
    }
}

static void test_zconf_validate(void **state)
{
    (void)state;
    struct zconf c;
    struct cfg_error err;
    assert_true(parse(&c, "tls_cert = cert.pem\n", &err));
    assert_false(zconf_validate(&c, &err));
    assert_non_null(strstr(err.text, "tls_cert and tls_key must be set together"));
    zconf_free(&c);
    /* a Maildir INBOX is served by POP3 and IMAP (mailstore.h) */
    assert_true(parse(&c, "mailbox_format = maildir\nimap = 127.0.0.1:1143\npop3 = 127.0.0.1:1110\n", &err));
    if (!zconf_validate(&c, &err))
        fail_msg("maildir with imap and pop3 refused: %s", err.text);
    zconf_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zconf_defaults_are_loopback_only),
        cmocka_unit_test(test_zconf_seed_config),
        cmocka_unit_test(test_zconf_errors_name_file_and_line),
        cmocka_unit_test(test_zconf_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
