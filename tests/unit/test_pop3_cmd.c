/* Unit tests for reference/proto/pop3_cmd: every verb, arguments, limits, SASL PLAIN, base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pop3_cmd.h"

struct pop3_case {
    const char *line;
    size_t len;            /* 0: strlen(line) */
    bool ok;
    enum pop3_verb verb;
    const char *arg;       /* NULL: not checked */
    bool has_msg;
    unsigned long msg, lines;
    const char *initial;   /* NULL: none */
};

static const struct pop3_case cases[] = {
    {.line = "STAT", .ok = true, .verb = POP3_VERB_STAT},
    {.line = "stat", .ok = true, .verb = POP3_VERB_STAT},
    {.line = "QUIT  ", .ok = true, .verb = POP3_VERB_QUIT},
    {.line = "NOOP x", .ok = false, .verb = POP3_VERB_NOOP},
    {.line = "CAPA", .ok = true, .verb = POP3_VERB_CAPA},
    {.line = "STLS", .ok = true, .verb = POP3_VERB_STLS},
    {.line = "RSET", .ok = true, .verb = POP3_VERB_RSET},
    {.line = "USER sjoerd", .ok = true, .verb = POP3_VERB_USER, .arg = "sjoerd"},
    {.line = "USER", .ok = false, .verb = POP3_VERB_USER},
    {.line = "USER a b", .ok = false, .verb = POP3_VERB_USER},
    {.line = "PASS geheim wachtwoord ", .ok = true, .verb = POP3_VERB_PASS, .arg = "geheim wachtwoord "},
    {.line = "PASS ", .ok = true, .verb = POP3_VERB_PASS, .arg = ""},
    {.line = "PASS", .ok = false, .verb = POP3_VERB_PASS},
    {.line = "LIST", .ok = true, .verb = POP3_VERB_LIST},
    {.line = "LIST 3", .ok = true, .verb = POP3_VERB_LIST, .has_msg = true, .msg = 3},
    {.line = "UIDL 12 ", .ok = true, .verb = POP3_VERB_UIDL, .has_msg = true, .msg = 12},
    {.line = "LIST 0", .ok = false, .verb = POP3_VERB_LIST},
    {.line = "LIST -1", .ok = false, .verb = POP3_VERB_LIST},
    {.line = "LIST +1", .ok = false, .verb = POP3_VERB_LIST},
    {.line = "LIST 1 2", .ok = false, .verb = POP3_VERB_LIST},
    {.line = "RETR 1000000000", .ok = true, .verb = POP3_VERB_RETR, .has_msg = true, .msg = 1000000000},
    {.line = "RETR 1000000001", .ok = false, .verb = POP3_VERB_RETR},
    {.line = "RETR 99999999999999999999999", .ok = false, .verb = POP3_VERB_RETR},
    {.line = "RETR", .ok = false, .verb = POP3_VERB_RETR},
    {.line = "DELE 2", .ok = true, .verb = POP3_VERB_DELE, .has_msg = true, .msg = 2},
    {.line = "DELE 2x", .ok = false, .verb = POP3_VERB_DELE},
    {.line = "TOP 1 0", .ok = true, .verb = POP3_VERB_TOP, .has_msg = true, .msg = 1, .lines = 0},
    {.line = "top 4   10", .ok = true, .verb = POP3_VERB_TOP, .has_msg = true, .msg = 4, .lines = 10},
    {.line = "TOP 1", .ok = false, .verb = POP3_VERB_TOP},
    {.line = "TOP 1 x", .ok = false, .verb = POP3_VERB_TOP},
    {.line = "AUTH PLAIN", .ok = true, .verb = POP3_VERB_AUTH, .arg = "PLAIN"},
    {.line = "AUTH PLAIN AGJvdWtlAGdlaGVpbQ==", .ok = true, .verb = POP3_VERB_AUTH, .arg = "PLAIN",
     .initial = "AGJvdWtlAGdlaGVpbQ=="},
    {.line = "AUTH PLAIN a b", .ok = false, .verb = POP3_VERB_AUTH},
    {.line = "AUTH", .ok = false, .verb = POP3_VERB_AUTH},
    {.line = "FOO", .ok = false, .verb = POP3_VERB_UNKNOWN},
    {.line = "STATS", .ok = false, .verb = POP3_VERB_UNKNOWN},
    {.line = " STAT", .ok = false, .verb = POP3_VERB_UNKNOWN},
    {.line = "ST", .ok = false, .verb = POP3_VERB_UNKNOWN},
    {.line = "", .ok = false, .verb = POP3_VERB_UNKNOWN},
    {.line = "STAT\0", .len = 5, .ok = false, .verb = POP3_VERB_UNKNOWN},
    {.line = "USER a\rb", .ok = false, .verb = POP3_VERB_UNKNOWN},
    {.line = "USER a\x01", .ok = false, .verb = POP3_VERB_USER},
};

static void test_table(void **state)
{
    (void)state;
    static struct pop3_cmd cmd;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct pop3_case *c = &cases[i];
        const char *error = NULL;
        size_t len = c->len ? c->len : strlen(c->line);
        bool ok = pop3_cmd_parse(c->line, len, &cmd, &error);
        if (ok != c->ok)
            fail_msg("case %zu \"%s\": expected %s (%s)", i, c->line, c->ok ? "ok" : "error", error ? error : "");
        if (!ok) {
            assert_non_null(error);
            if (c->verb != POP3_VERB_UNKNOWN)
                assert_int_equal(cmd.verb, c->verb);
            continue;
        }
        assert_int_equal(cmd.verb, c->verb);
        if (c->arg)
            assert_string_equal(cmd.arg, c->arg);
        assert_int_equal(cmd.has_msg, c->has_msg);
        assert_int_equal(cmd.msg, c->msg);
        assert_int_equal(cmd.lines, c->lines);
        assert_int_equal(cmd.has_initial, c->initial != NULL);
        if (c->initial)
            assert_string_equal(cmd.initial, c->initial);
    }
}

static void test_line_limits(void **state)
{
    (void)state;
    static struct pop3_cmd cmd;
    static char line[POP3_AUTH_LINE_MAX + 10];
    const char *error;
    memset(line, 'a', sizeof line);
    memcpy(line, "USER ", 5);
    assert_true(pop3_cmd_parse(line, POP3_LINE_MAX - 2, &cmd, &error));     /* 253 + CRLF = 255 */
    assert_false(pop3_cmd_parse(line, POP3_LINE_MAX - 1, &cmd, &error));    /* 254 + CRLF > 255 */
    memcpy(line, "AUTH PLAIN ", 11);
    assert_true(pop3_cmd_parse(line, 4000, &cmd, &error));
    assert_int_equal(strlen(cmd.initial), 4000 - 11);
    assert_false(pop3_cmd_parse(line, POP3_AUTH_LINE_MAX, &cmd, &error));
}

static void test_sasl_plain(void **state)
{
    (void)state;
    char z[POP3_SASL_FIELD_MAX + 1], c[POP3_SASL_FIELD_MAX + 1], p[POP3_SASL_FIELD_MAX + 1];
    /* "\0bouke\0geheim" */
    assert_true(pop3_sasl_plain("AGJvdWtlAGdlaGVpbQ==", 20, z, c, p, sizeof z));
    assert_string_equal(z, "");
    assert_string_equal(c, "bouke");
    assert_string_equal(p, "geheim");
    /* "bouke\0bouke\0pw" */
    assert_true(pop3_sasl_plain("Ym91a2UAYm91a2UAcHc=", 20, z, c, p, sizeof z));
    assert_string_equal(z, "bouke");
    assert_string_equal(p, "pw");
    assert_false(pop3_sasl_plain("AGJvdWtl", 8, z, c, p, sizeof z));             /* "\0bouke": no pw */
    assert_false(pop3_sasl_plain("AAA=", 4, z, c, p, sizeof z));                 /* "\0\0": empty */
    assert_false(pop3_sasl_plain("AGJvdWtlAGdlaGVpbQ", 18, z, c, p, sizeof z));  /* no padding */
    assert_false(pop3_sasl_plain("AGJvdWtlAGdlaGVp!Q==", 20, z, c, p, sizeof z));
    assert_false(pop3_sasl_plain("AGE=AGI=", 8, z, c, p, sizeof z));             /* data after '=' */
    assert_false(pop3_sasl_plain("YQBiAGMAZA==", 12, z, c, p, sizeof z));        /* three NULs */
    unsigned char out[4];
    assert_int_equal(pop3_base64_decode("", 0, out, sizeof out), 0);
    assert_int_equal(pop3_base64_decode("YWJj", 4, out, sizeof out), 3);
    assert_int_equal(pop3_base64_decode("YWJjZA==", 8, out, 3), -1);             /* no room */
    assert_int_equal(pop3_base64_decode("YW=j", 4, out, sizeof out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_line_limits),
        cmocka_unit_test(test_sasl_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
