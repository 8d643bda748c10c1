/* Unit tests for reference/proto/mailpath: mail_dir syntax and expansion per user. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mailpath.h"

static void expect_dir(const char *value, const char *user, const char *home, const char *want)
{
    char out[MAILPATH_MAX];
    const char *why = NULL;
    if (!mailpath_user_dir(value, "/var/lib/zolder", user, home, out, sizeof out, &why))
        fail_msg("%s for %s: %s", value, user, why);
    assert_string_equal(out, want);
}

static void expect_refused(const char *value, const char *user, const char *home)
{
    char out[MAILPATH_MAX];
    const char *why = NULL;
    assert_false(mailpath_user_dir(value, "/var/lib/zolder", user, home, out, sizeof out, &why));
    assert_non_null(why);
    assert_string_equal(out, "");
}

static void test_home_forms(void **state)
{
    (void)state;
    expect_dir("~/Mail", "bouke", "/home/bouke", "/home/bouke/Mail");
    expect_dir("~/Mail", "bouke", "/home/bouke/", "/home/bouke/Mail");
    expect_dir("~/mail/folders", "sjoerd", "/srv/u/sjoerd", "/srv/u/sjoerd/mail/folders");
    /* virtual users (no home in the users file) get one under state_dir */
    expect_dir("~/Mail", "lars", NULL, "/var/lib/zolder/home/lars/Mail");
    expect_dir("~/Mail", "lars", "", "/var/lib/zolder/home/lars/Mail");
    expect_dir("~/Mail", "root", "/", "/Mail");
}

static void test_absolute_forms(void **state)
{
    (void)state;
    expect_dir("/srv/mail/%u", "bouke", "/home/bouke", "/srv/mail/bouke");
    expect_dir("/srv/%u/mail/%u", "a", NULL, "/srv/a/mail/a");
    expect_dir("/srv/100%%/%u", "a", NULL, "/srv/100%/a");
}

static void test_invalid_values(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "Mail", "~", "~Mail", "~/", "~/../etc", "~/a//b", "~/a/./b", "~/%u",
        "/srv/mail", "/srv/../%u", "/srv//%u", "/srv/%x/%u", "/srv/%u/%", "relative/%u",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        if (mailpath_valid(bad[i], &why))
            fail_msg("accepted \"%s\"", bad[i]);
        assert_non_null(why);
    }
    const char *why = NULL;
    assert_true(mailpath_valid("~/Mail", &why));
    assert_true(mailpath_valid("/var/mail/folders/%u", &why));
}

static void test_unusable_names_and_homes(void **state)
{
    (void)state;
    expect_refused("~/Mail", "", "/home/x");
    expect_refused("~/Mail", ".hidden", "/home/x");
    expect_refused("~/Mail", "a/b", "/home/x");
    expect_refused("/srv/%u", "..", NULL);
    expect_refused("~/Mail", "bouke", "relative/home");
    expect_refused("~/Mail", "bouke", "/home/../etc");
}

static void test_too_long(void **state)
{
    (void)state;
    char out[24];
    const char *why = NULL;
    assert_false(mailpath_user_dir("~/Mail", "/var/lib/zolder", "bouke", "/home/someone-longer", out, sizeof out, &why));
    assert_string_equal(out, "");
    assert_true(mailpath_user_dir("~/Mail", "/st", "bouke", NULL, out, sizeof out, &why));
    assert_string_equal(out, "/st/home/bouke/Mail");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_home_forms),
        cmocka_unit_test(test_absolute_forms),
        cmocka_unit_test(test_invalid_values),
        cmocka_unit_test(test_unusable_names_and_homes),
        cmocka_unit_test(test_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
