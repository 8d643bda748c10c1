/* Unit tests for reference/proto/foldername: folder names, index file names, LIST patterns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "foldername.h"

static void expect_name(const char *wire, const char *want, bool want_trailing)
{
    char out[FOLDERNAME_MAX + 1];
    bool trailing = false;
    const char *why = foldername_from_wire(wire, strlen(wire), out, sizeof out, &trailing);
    if (why)
        fail_msg("%s: %s", wire, why);
    assert_string_equal(out, want);
    assert_int_equal(trailing, want_trailing);
}

static void expect_refused(const char *wire, size_t len, const char *why_part)
{
    char out[FOLDERNAME_MAX + 1];
    bool trailing = false;
    const char *why = foldername_from_wire(wire, len, out, sizeof out, &trailing);
    if (!why)
        fail_msg("accepted %.*s as %s", (int)len, wire, out);
    if (!strstr(why, why_part))
        fail_msg("%.*s: \"%s\", expected \"%s\"", (int)len, wire, why, why_part);
    assert_string_equal(out, "");
}

static void test_names(void **state)
{
    (void)state;
    expect_name("INBOX", "INBOX", false);
    expect_name("inbox", "INBOX", false);
    expect_name("Sent", "Sent", false);
    expect_name("Verzonden/R&AOk-", "Verzonden/R\xc3\xa9", false);
    expect_name("a/b/c", "a/b/c", false);
    expect_name("Projects/", "Projects", true);
    expect_name("x.lockfile", "x.lockfile", false);
    expect_name("a/rules", "a/rules", false);  /* only MAIL_DIR/rules is the rules file */
    expect_name("rules2", "rules2", false);
    expect_name("Inbox2", "Inbox2", false);
}

static void test_refused(void **state)
{
    (void)state;
    expect_refused("", 0, "empty");
    expect_refused("/etc/passwd", 11, "start with '/'");
    expect_refused("a//b", 4, "empty component");
    expect_refused("..", 2, "\"..\"");
    expect_refused("a/../b", 6, "\"..\"");
    expect_refused("a/./b", 5, "\".\"");
    expect_refused(".hidden", 7, "start with '.'");
    expect_refused("a/.subscriptions", 16, "start with '.'");
    expect_refused("Sent.lock", 9, ".lock");
    expect_refused("a/b.lock", 8, ".lock");
    expect_refused("rules", 5, "rules");
    expect_refused("INBOX/child", 11, "INBOX cannot");
    expect_refused("inbox/child", 11, "INBOX cannot");
    expect_refused("a\0b", 3, "NUL");
    expect_refused("R\xc3\xa9", 3, "modified UTF-7");
    expect_refused("&AOk", 4, "modified UTF-7");
    expect_refused("a&AAk-b", 7, "control");      /* a TAB, encoded */
    expect_refused("a&AJ8-b", 7, "control");      /* U+009F, a C1 control */
    char out[FOLDERNAME_MAX + 1];
    assert_non_null(foldername_from_wire("a/", 2, out, sizeof out, NULL));
    char longname[FOLDERNAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    expect_refused(longname, strlen(longname), "too long");
    char deep[2 * FOLDERNAME_DEPTH_MAX + 4] = "";
    for (int i = 0; i <= FOLDERNAME_DEPTH_MAX; i++)
        strcat(deep, i ? "/a" : "a");
    expect_refused(deep, strlen(deep), "levels");
    assert_null(foldername_check("Verzonden/R\xc3\xa9", 13));
    assert_non_null(foldername_check("R\xe9", 2)); /* Latin-1 on disk: not listed */
}

static void test_index_file(void **state)
{
    (void)state;
    char out[FOLDERNAME_INDEX_FILE_MAX];
    foldername_index_file("Sent", out, sizeof out);
    assert_string_equal(out, "folder-Sent");
    foldername_index_file("a/b", out, sizeof out);
    assert_string_equal(out, "folder-a%2Fb");
    foldername_index_file("a.tmp", out, sizeof out);
    assert_string_equal(out, "folder-a%2Etmp");
    foldername_index_file("R\xc3\xa9", out, sizeof out);
    assert_string_equal(out, "folder-R%C3%A9");
    char a[FOLDERNAME_MAX + 1], b[FOLDERNAME_MAX + 1];
    for (int i = 0; i < 120; i++) {
        a[2 * i] = '\xc3';
        a[2 * i + 1] = '\xa9';
    }
    a[240] = '\0';
    memcpy(b, a, sizeof a);
    b[239] = '\xa8';
    char oa[FOLDERNAME_INDEX_FILE_MAX], ob[FOLDERNAME_INDEX_FILE_MAX];
    foldername_index_file(a, oa, sizeof oa);
    foldername_index_file(b, ob, sizeof ob);
    assert_true(strncmp(oa, "folderh-", 8) == 0);
    assert_true(strlen(oa) < 200 && strlen(oa) < sizeof oa - 1);
    assert_string_not_equal(oa, ob);
    assert_null(strchr(oa, '/'));
    assert_null(strchr(oa, '.'));
}

static void test_match(void **state)
{
    (void)state;
    assert_true(foldername_match("*", "a/b/c"));
    assert_true(foldername_match("%", "Sent"));
    assert_false(foldername_match("%", "a/b"));
    assert_true(foldername_match("a/%", "a/b"));
    assert_false(foldername_match("a/%", "a/b/c"));
    assert_true(foldername_match("a/*", "a/b/c"));
    assert_true(foldername_match("a*", "a"));
    assert_true(foldername_match("inbox", "INBOX"));
    assert_true(foldername_match("In%", "INBOX"));
    assert_false(foldername_match("sent", "Sent"));  /* other names are case-sensitive */
    assert_true(foldername_match("Verzonden/R&AOk-", "Verzonden/R&AOk-"));
    assert_true(foldername_match("%/%", "a/b"));
    assert_false(foldername_match("", "a"));
    assert_true(foldername_match("", ""));
    /* many stars against a long name: no blow-up */
    char pat[80], name[600];
    strcpy(pat, "");
    for (int i = 0; i < 30; i++)
        strcat(pat, "*a");
    strcat(pat, "b");
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    assert_false(foldername_match(pat, name));
}

static void test_special_use(void **state)
{
    (void)state;
    assert_string_equal(foldername_special_use("Sent"), "\\Sent");
    assert_string_equal(foldername_special_use("Drafts"), "\\Drafts");
    assert_string_equal(foldername_special_use("Trash"), "\\Trash");
    assert_string_equal(foldername_special_use("Junk"), "\\Junk");
    assert_string_equal(foldername_special_use("Archive"), "\\Archive");
    assert_null(foldername_special_use("a/Sent"));
    assert_null(foldername_special_use("sent"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),       cmocka_unit_test(test_refused), cmocka_unit_test(test_index_file),
        cmocka_unit_test(test_match),       cmocka_unit_test(test_special_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
