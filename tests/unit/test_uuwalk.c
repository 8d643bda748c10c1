/*
 * Unit tests for reference/proto/uuwalk: names and bytes of uuencoded blocks (classic and
 * begin-base64), CRLF and LF, several blocks, a truncated block, damaged lines, the limits,
 * and every prefix of a message (no crash, never more than the limits).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uuwalk.h"

/* "Cat" uuencoded: #0V%T ; "hello world\n" as GNU uuencode writes it */
static const char hello[] =
    "Zie de bijlage.\r\n"
    "\r\n"
    "begin 644 Liste.exe\r\n"
    ",:&5L;&\\@=V]R;&0*\r\n"
    "`\r\n"
    "end\r\n"
    "Groeten\r\n";

static struct uuwalk_limits limits = {.max_entries = 8, .max_bytes = 1 << 20};

static void test_classic(void **state)
{
    (void)state;
    struct uuwalk w;
    assert_true(uuwalk_maybe(hello, strlen(hello)));
    uuwalk_run(hello, strlen(hello), &limits, &w);
    assert_null(w.refused);
    assert_int_equal(w.nentries, 1);
    assert_string_equal(w.entries[0].name, "Liste.exe");
    assert_true(w.entries[0].complete);
    assert_int_equal(w.entries[0].data.len, 12);
    assert_memory_equal(w.entries[0].data.data, "hello world\n", 12);
    uuwalk_free(&w);
}

static void test_base64_and_several(void **state)
{
    (void)state;
    const char *text = "begin 600 a.txt\n#0V%T\n`\nend\n"
                       "tekst\n"
                       "begin-base64 755 \"tool kit.scr\"\naGVsbG8=\n====\n"
                       "begin\tnot a block\n"
                       "beginning of a sentence\n";
    struct uuwalk w;
    uuwalk_run(text, strlen(text), &limits, &w);
    assert_null(w.refused);
    assert_int_equal(w.nentries, 2);
    assert_string_equal(w.entries[0].name, "a.txt");
    assert_int_equal(w.entries[0].data.len, 3);
    assert_memory_equal(w.entries[0].data.data, "Cat", 3);
    assert_string_equal(w.entries[1].name, "\"tool kit.scr\"");
    assert_true(w.entries[1].complete);
    assert_int_equal(w.entries[1].data.len, 5);
    assert_memory_equal(w.entries[1].data.data, "hello", 5);
    uuwalk_free(&w);
    assert_false(uuwalk_maybe("no blocks here\n", 15));
}

static void test_truncated_and_damaged(void **state)
{
    (void)state;
    struct uuwalk w;
    const char *cut = "begin 644 virus.pif\r\n#0V%T\r\n"; /* no end line */
    uuwalk_run(cut, strlen(cut), &limits, &w);
    assert_int_equal(w.nentries, 1);
    assert_string_equal(w.entries[0].name, "virus.pif");
    assert_false(w.entries[0].complete);
    assert_int_equal(w.entries[0].data.len, 3);
    uuwalk_free(&w);
    const char *bad = "begin 644 x.bat\n\x01garbage\nbegin 644 y.com\n#0V%T\nend\n";
    uuwalk_run(bad, strlen(bad), &limits, &w);
    assert_int_equal(w.nentries, 2); /* the damaged line ends the first block, not the walk */
    assert_string_equal(w.entries[1].name, "y.com");
    assert_true(w.entries[1].complete);
    uuwalk_free(&w);
    const char *nomode = "begin 9x a.exe\nbegin 644\nbegin 644 \n";
    uuwalk_run(nomode, strlen(nomode), &limits, &w);
    assert_int_equal(w.nentries, 0);
    uuwalk_free(&w);
}

static void test_limits(void **state)
{
    (void)state;
    struct uuwalk_limits small = {.max_entries = 2, .max_bytes = 5};
    struct uuwalk w;
    const char *three = "begin 644 a\nend\nbegin 644 b\nend\nbegin 644 c\nend\n";
    uuwalk_run(three, strlen(three), &small, &w);
    assert_non_null(w.refused);
    assert_int_equal(w.nentries, 2);
    uuwalk_free(&w);
    uuwalk_run(hello, strlen(hello), &small, &w); /* 12 bytes > 5 */
    assert_non_null(w.refused);
    assert_true(w.entries[0].data.len <= 5);
    uuwalk_free(&w);
    const char *b64 = "begin-base64 644 big\naGVsbG8gd29ybGQ=\n====\n";
    uuwalk_run(b64, strlen(b64), &small, &w);
    assert_non_null(w.refused);
    assert_true(w.entries[0].data.len <= 5);
    uuwalk_free(&w);
    /* a long name is cut */
    char *longname = malloc(3000);
    strcpy(longname, "begin 644 ");
    memset(longname + 10, 'n', 2000);
    strcpy(longname + 2010, ".exe\n");
    uuwalk_run(longname, strlen(longname), &limits, &w);
    assert_int_equal(strlen(w.entries[0].name), UUWALK_NAME_MAX);
    uuwalk_free(&w);
    free(longname);
}

static void test_every_prefix(void **state)
{
    (void)state;
    size_t len = strlen(hello);
    for (size_t n = 0; n <= len; n++) {
        char *copy = malloc(n ? n : 1); /* exactly n bytes: reads beyond show under ASan */
        memcpy(copy, hello, n);
        struct uuwalk w;
        uuwalk_run(copy, n, &limits, &w);
        assert_true(w.nentries <= 1);
        if (n >= strlen("Zie de bijlage.\r\n\r\nbegin 644 Liste.exe\r\n"))
            assert_string_equal(w.entries[0].name, "Liste.exe");
        uuwalk_free(&w);
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classic),
        cmocka_unit_test(test_base64_and_several),
        cmocka_unit_test(test_truncated_and_damaged),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_every_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
