/* Unit tests for reference/proto/mime_part: entities, multipart splitting, IMAP section paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mime_part.h"

static const char msg[] =
    "From: a@b\r\n"
    "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--XX\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "part one\r\n"
    "--XX\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "Subject: inner\r\n"
    "Content-Type: multipart/alternative;\r\n"
    " boundary=YY\r\n"
    "\r\n"
    "--YY\r\n"
    "\r\n"
    "plain\r\n"
    "--YY\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<b>html</b>\r\n"
    "--YY--\r\n"
    "\r\n"
    "--XX--\r\n"
    "epilogue\r\n";

static char *body(const struct mime_entity *e, char *out)
{
    memcpy(out, msg + e->body_start, e->body_end - e->body_start);
    out[e->body_end - e->body_start] = '\0';
    return out;
}

static void test_sections(void **state)
{
    (void)state;
    char out[1024];
    struct mime_entity e;
    size_t len = sizeof msg - 1;
    assert_true(mime_section_find(msg, len, NULL, 0, &e));
    assert_true(e.multipart);
    assert_string_equal(e.boundary, "XX");
    uint32_t p1[] = {1};
    assert_true(mime_section_find(msg, len, p1, 1, &e));
    assert_string_equal(body(&e, out), "part one");
    assert_string_equal(e.subtype, "plain");
    uint32_t p2[] = {2};
    assert_true(mime_section_find(msg, len, p2, 1, &e));
    assert_true(e.message);
    assert_true(strncmp(body(&e, out), "Subject: inner\r\n", 16) == 0);
    assert_true(strstr(out, "--YY--\r\n") != NULL);
    uint32_t p21[] = {2, 1};
    assert_true(mime_section_find(msg, len, p21, 2, &e));
    assert_string_equal(body(&e, out), "plain");
    assert_string_equal(e.type, "text"); /* default */
    uint32_t p22[] = {2, 2};
    assert_true(mime_section_find(msg, len, p22, 2, &e));
    assert_string_equal(body(&e, out), "<b>html</b>");
    assert_string_equal(e.subtype, "html");
    uint32_t p3[] = {3}, p23[] = {2, 3}, p11[] = {1, 1}, p12[] = {1, 2};
    assert_false(mime_section_find(msg, len, p3, 1, &e));
    assert_false(mime_section_find(msg, len, p23, 2, &e));
    assert_true(mime_section_find(msg, len, p11, 2, &e)); /* part 1 of a single part: itself */
    assert_false(mime_section_find(msg, len, p12, 2, &e));
    /* a single-part message: part 1 is its body */
    const char plain[] = "Subject: x\r\n\r\nhello\r\n";
    assert_true(mime_section_find(plain, sizeof plain - 1, p1, 1, &e));
    assert_int_equal(e.body_start, 14);
    assert_int_equal(mime_count_lines(plain, e.body_start, e.body_end), 1);
}

static void test_header_value(void **state)
{
    (void)state;
    struct buf v;
    buf_init(&v, 0);
    assert_true(mime_header_value(msg, 0, 60, "content-type", &v));
    buf_append_char(&v, '\0');
    assert_string_equal(v.data, "multipart/mixed; boundary=\"XX\"");
    buf_reset(&v);
    assert_false(mime_header_value(msg, 0, 60, "Subject", &v));
    buf_free(&v);
}

static void test_unterminated_and_deep(void **state)
{
    (void)state;
    /* no close delimiter: the last part runs to the end */
    const char m[] = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo";
    struct mime_entity e;
    uint32_t p2[] = {2};
    assert_true(mime_section_find(m, sizeof m - 1, p2, 1, &e));
    assert_int_equal(e.body_end - e.body_start, 3);
    /* nesting deeper than MIME_DEPTH_MAX stays opaque */
    char deep[8192];
    size_t n = 0;
    for (int i = 0; i < MIME_DEPTH_MAX + 5; i++)
        n += (size_t)snprintf(deep + n, sizeof deep - n, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
    uint32_t path[MIME_DEPTH_MAX + 5];
    for (size_t i = 0; i < MIME_DEPTH_MAX + 5; i++)
        path[i] = 1;
    assert_true(mime_section_find(deep, n, path, MIME_DEPTH_MAX + 5, &e));
    assert_false(e.multipart);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sections),
        cmocka_unit_test(test_header_value),
        cmocka_unit_test(test_unterminated_and_deep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
