/* Unit tests for reference/proto/aliases: parsing, errors with file:line, expansion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliases.h"

static struct aliases *load_ok(const char *text)
{
    struct aliases *a = NULL;
    struct cfg_error err = {{0}};
    int rc = aliases_load(&a, "aliases", text, strlen(text), &err);
    if (rc != 0)
        fail_msg("unexpected error: %s", err.text);
    assert_non_null(a);
    return a;
}

/* Expands name and compares the result with the comma-joined list want. */
static void expect_expansion(const struct aliases *a, const char *name, const char *want,
                             bool loop)
{
    struct aliases_result res;
    const char *error = NULL;
    char got[2048] = "";
    size_t used = 0;
    assert_int_equal(aliases_expand(a, name, &res, &error), 0);
    for (size_t i = 0; i < res.count; i++) {
        int n = snprintf(got + used, sizeof got - used, "%s%s", i ? "," : "", res.rcpts[i]);
        assert_true(n > 0 && (size_t)n < sizeof got - used);
        used += (size_t)n;
    }
    assert_string_equal(got, want);
    assert_int_equal(res.loop, loop);
    aliases_result_free(&res);
}

static void test_aliases_syntax(void **state)
{
    (void)state;
    struct aliases *a = load_ok("# system aliases\n"
                                "Root: admin   # the classic\n"
                                "postmaster: root\n"
                                "staff: bob,\n"
                                "   carol, \"dave@Example.ORG\",\n"
                                "  # a comment inside the continuation\n"
                                "   \\erin, ,\n"
                                "\n"
                                "abuse:root\r\n");
    assert_int_equal(aliases_count(a), 4);
    size_t n;
    unsigned lineno;
    const char *const *t = aliases_lookup(a, "STAFF", &n, &lineno);
    assert_non_null(t);
    assert_int_equal(n, 4);
    assert_int_equal(lineno, 4);
    assert_string_equal(t[0], "bob");
    assert_string_equal(t[1], "carol");
    assert_string_equal(t[2], "dave@example.org");
    assert_string_equal(t[3], "\\erin");
    t = aliases_lookup(a, "root", &n, NULL);
    assert_int_equal(n, 1);
    assert_string_equal(t[0], "admin");
    assert_null(aliases_lookup(a, "admin", &n, NULL));
    assert_int_equal(n, 0);
    assert_null(aliases_lookup(a, "not valid!", &n, NULL));
    aliases_free(a);

    a = load_ok("");
    assert_int_equal(aliases_count(a), 0);
    aliases_free(a);
    a = load_ok("\f\nroot: admin\n\r\r\n");
    assert_int_equal(aliases_count(a), 1);
    aliases_free(a);
}

static const struct {
    const char *text;
    const char *error;
} aliases_bad[] = {
    {"root admin\n", "aliases:1: expected \"name: target, ...\""},
    {"# c\n: admin\n", "aliases:2: expected an alias name before ':'"},
    {"root:\n", "aliases:1: expected at least one target after \"root:\""},
    {"root: , ,\n", "aliases:1: expected at least one target after \"root:\""},
    {"root@example.org: admin\n",
     "aliases:1: expected a local name without @domain as alias name, got \"root@example.org\""},
    {"\"ro ot\": admin\n", "aliases:1: expected an unquoted alias name, got \"ro ot\""},
    {"ro/ot: admin\n",
     "aliases:1: expected an alias name of at most 64 characters from A-Z a-z 0-9 . _ + -, got "
     "\"ro/ot\""},
    {"a: b\nlog: \"|/usr/bin/logger\"\n",
     "aliases:2: program target \"|/usr/bin/logger\" is not supported: zolder never runs commands "
     "from aliases"},
    {"log: |/usr/bin/logger\n",
     "aliases:1: program target \"|/usr/bin/logger\" is not supported: zolder never runs commands "
     "from aliases"},
    {"arch: bob,\n  /var/mail/archive\n",
     "aliases:1: file target \"/var/mail/archive\" is not supported: zolder never writes files "
     "named in aliases"},
    {"arch: \"/var/mail/archive\"\n",
     "aliases:1: file target \"/var/mail/archive\" is not supported: zolder never writes files "
     "named in aliases"},
    {"list: :include:/etc/mail/list\n",
     "aliases:1: :include: target \":include:/etc/mail/list\" is not supported: list the targets "
     "in the aliases file itself"},
    {"list: \"bob\n", "aliases:1: expected a closing '\"' in target list"},
    {"list: \"a b\"@example.org\n",
     "aliases:1: expected a wholly quoted target, got \"a b\"@example.org (quoted local parts are "
     "not supported)"},
    {"list: a\"b\"\n",
     "aliases:1: expected a wholly quoted target, got a\"b\" (quoted local parts are not "
     "supported)"},
    {"list: bob carol\n", "aliases:1: expected ',' between targets, got \"bob carol\""},
    {"list: \\bo/b\n", "aliases:1: expected a local name after '\\', got \"\\bo/b\""},
    {"list: @example.org\n", "aliases:1: invalid local part in target \"@example.org\""},
    {"list: bob@exa..mple\n", "aliases:1: invalid domain in target \"bob@exa..mple\""},
    {"list: bob@\n", "aliases:1: invalid domain in target \"bob@\""},
    {"list: bo!b\n",
     "aliases:1: expected a local name or user@domain as target, got \"bo!b\""},
    {"root: a\nx: y\nROOT: b\nx: z\n",
     "aliases:3: duplicate alias \"root\" (first defined on line 1)"},
    {"a: b\n\0c: d\n", "aliases:2: NUL byte in line"},
};

static void test_aliases_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof aliases_bad / sizeof aliases_bad[0]; i++) {
        struct aliases *a = (struct aliases *)1;
        struct cfg_error err = {{0}};
        const char *text = aliases_bad[i].text;
        /* The NUL case needs its real length. */
        size_t len = strlen(text);
        if (strstr(aliases_bad[i].error, "NUL"))
            len += 1 + strlen(text + len + 1);
        assert_int_equal(aliases_load(&a, "aliases", text, len, &err), -1);
        assert_null(a);
        assert_string_equal(err.text, aliases_bad[i].error);
    }
}

static void test_aliases_limits(void **state)
{
    (void)state;
    /* Line length is cfglex's business; targets and names have their own bounds. */
    char text[4096];
    memset(text, 'a', 70);
    memcpy(text + 70, ": b\n", 5);
    struct aliases *a;
    struct cfg_error err;
    assert_int_equal(aliases_load(&a, "aliases", text, strlen(text), &err), -1);
    assert_non_null(strstr(err.text, "aliases:1: expected an alias name of at most 64"));

    int n = snprintf(text, sizeof text, "x: ");
    for (int i = 0; i < 330; i++)
        text[n++] = 'b';
    memcpy(text + n, "@example.org\n", 14);
    assert_int_equal(aliases_load(&a, "aliases", text, strlen(text), &err), -1);
    assert_string_equal(err.text, "aliases:1: target longer than 320 bytes");
}

static void test_aliases_expand(void **state)
{
    (void)state;
    struct aliases *a = load_ok("root: admin\n"
                                "postmaster: root\n"
                                "admin: sjoerd, bouke@Example.ORG\n"
                                "team: admin, sjoerd, ROOT, lars\n"
                                "self: self, backup@example.org\n"
                                "ping: pong\n"
                                "pong: ping, extra\n"
                                "keep: \\keep, keep@isp.example\n");
    expect_expansion(a, "root", "sjoerd,bouke@example.org", false);
    expect_expansion(a, "PostMaster", "sjoerd,bouke@example.org", false);
    /* Duplicates through different branches appear once; no loop involved. */
    expect_expansion(a, "team", "sjoerd,bouke@example.org,lars", false);
    /* Not an alias: the user itself. */
    expect_expansion(a, "Lars", "lars", false);
    /* sendmail semantics: an alias naming itself delivers to the user of that name. */
    expect_expansion(a, "self", "self,backup@example.org", true);
    /* a -> b -> a ends at user a, without recursing forever. */
    expect_expansion(a, "ping", "ping,extra", true);
    expect_expansion(a, "pong", "pong,extra", true);
    /* \name is final. */
    expect_expansion(a, "keep", "keep,keep@isp.example", false);

    struct aliases_result res;
    const char *error = NULL;
    assert_int_equal(aliases_expand(a, "bob@example.org", &res, &error), -1);
    assert_string_equal(error, "not a valid local name");
    assert_int_equal(res.count, 0);
    aliases_result_free(&res);
    aliases_free(a);
}

static void test_aliases_depth_and_count(void **state)
{
    (void)state;
    char text[8192];
    size_t used = 0;
    /* a0 -> a1 -> ... -> a20 -> user: 21 nested aliases, one more than allowed. */
    for (int i = 0; i <= 20; i++)
        used += (size_t)snprintf(text + used, sizeof text - used, "a%d: %s%d\n", i,
                                 i == 20 ? "user" : "a", i + 1);
    struct aliases *a = load_ok(text);
    struct aliases_result res;
    const char *error = NULL;
    assert_int_equal(aliases_expand(a, "a0", &res, &error), -1);
    assert_string_equal(error, "aliases nested too deeply");
    aliases_result_free(&res);
    /* Twenty levels are fine. */
    expect_expansion(a, "a1", "user21", false);
    aliases_free(a);

    /* 1001 distinct recipients through two aliases. */
    struct aliases_result r2;
    char *big = malloc(64 * 1024);
    assert_non_null(big);
    used = (size_t)snprintf(big, 64 * 1024, "all: half1, half2\nhalf1: u0");
    for (int i = 1; i < 600; i++)
        used += (size_t)snprintf(big + used, 64 * 1024 - used, ",\n u%d", i);
    used += (size_t)snprintf(big + used, 64 * 1024 - used, "\nhalf2: v0");
    for (int i = 1; i < 401; i++)
        used += (size_t)snprintf(big + used, 64 * 1024 - used, ",\n v%d", i);
    big[used++] = '\n';
    big[used] = '\0';
    a = load_ok(big);
    free(big);
    assert_int_equal(aliases_expand(a, "all", &r2, &error), -1);
    assert_string_equal(error, "alias expansion exceeds the recipient limit");
    aliases_result_free(&r2);
    assert_int_equal(aliases_expand(a, "half1", &r2, &error), 0);
    assert_int_equal(r2.count, 600);
    aliases_result_free(&r2);
    aliases_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aliases_syntax),
        cmocka_unit_test(test_aliases_errors),
        cmocka_unit_test(test_aliases_limits),
        cmocka_unit_test(test_aliases_expand),
        cmocka_unit_test(test_aliases_depth_and_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
