/* Unit tests for reference/proto/smtp_data: dot-stuffing and line ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "buf.h"
#include "smtp_data.h"

static void check(const char *in, const char *want)
{
    struct buf b;
    buf_init(&b, 0);
    assert_true(smtp_data_stuff(in, strlen(in), &b));
    assert_string_equal(b.data, want);
    buf_free(&b);
}

static void test_stuff(void **state)
{
    (void)state;
    check("", ".\r\n");
    check("a\r\n", "a\r\n.\r\n");
    check("a", "a\r\n.\r\n");
    check(".\r\n", "..\r\n.\r\n");
    check("x\r\n.\r\n..y\r\n.", "x\r\n..\r\n...y\r\n..\r\n.\r\n");
    check("a.b\r\n .c\r\n", "a.b\r\n .c\r\n.\r\n");
    check("bare\nlf\n.x\n", "bare\r\nlf\r\n..x\r\n.\r\n");
    check("bare\rcr\r.", "bare\r\ncr\r\n..\r\n.\r\n");
    check("crcr\r\r\n", "crcr\r\n\r\n.\r\n");
}

static void test_limit_and_8bit(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 8);
    assert_false(smtp_data_stuff("0123456789\r\n", 12, &b));
    buf_free(&b);
    assert_false(smtp_data_has_8bit("plain\r\n", 7));
    assert_true(smtp_data_has_8bit("caf\xc3\xa9", 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stuff),
        cmocka_unit_test(test_limit_and_8bit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
