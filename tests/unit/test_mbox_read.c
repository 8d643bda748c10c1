/*
 * Unit tests for reference/proto/mbox_read: message boundaries, wire sizes, identifying bytes,
 * fed whole, byte by byte and in random splits; the exporter agrees with the scan's sizes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mbox_read.h"

#define F1 "From a@b Sat Nov 16 23:07:13 2002\n"
#define F2 "From MAILER-DAEMON Mon Jan  6 01:02:03 2025\n"

struct seen {
    struct mbox_scan_msg msgs[16];
    size_t n;
    struct buf ident[16];
};

static void on_begin(void *ctx, unsigned long long offset)
{
    struct seen *s = ctx;
    (void)offset;
    buf_init(&s->ident[s->n], 0);
}

static void on_data(void *ctx, const char *p, size_t n)
{
    struct seen *s = ctx;
    buf_append(&s->ident[s->n], p, n);
}

static void on_end(void *ctx, const struct mbox_scan_msg *m)
{
    struct seen *s = ctx;
    s->msgs[s->n++] = *m;
}

static void scan(const char *data, size_t len, size_t split, unsigned seed, struct seen *s)
{
    memset(s, 0, sizeof *s);
    struct mbox_scan_callbacks cb = {.ctx = s, .begin = on_begin, .data = on_data, .end = on_end};
    struct mbox_scan sc;
    mbox_scan_init(&sc, &cb);
    srand(seed);
    size_t i = 0;
    while (i < len) {
        size_t n = split ? split : (size_t)(rand() % 7) + 1;
        if (n > len - i)
            n = len - i;
        mbox_scan_feed(&sc, data + i, n);
        i += n;
    }
    mbox_scan_finish(&sc);
}

static void free_seen(struct seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        buf_free(&s->ident[i]);
}

/* Every split gives the same messages; every message exports to its scanned size. */
static void check_all_ways(const char *data, size_t len, size_t expect_n)
{
    struct seen whole, other;
    scan(data, len, len ? len : 1, 0, &whole);
    assert_int_equal(whole.n, expect_n);
    for (size_t i = 0; i < whole.n; i++) {
        const struct mbox_scan_msg *m = &whole.msgs[i];
        struct buf out;
        buf_init(&out, 0);
        size_t got = mbox_export(data + m->offset + m->from_len, (size_t)m->content_len, 0, -1, &out);
        assert_int_equal(got, m->size);
        buf_free(&out);
        if (i + 1 < whole.n)
            assert_int_equal(m->offset + m->span, whole.msgs[i + 1].offset);
        else
            assert_int_equal(m->offset + m->span, len);
    }
    for (unsigned way = 0; way < 12; way++) {
        scan(data, len, way == 0 ? 1 : 0, way, &other);
        assert_int_equal(other.n, whole.n);
        for (size_t i = 0; i < whole.n; i++) {
            assert_memory_equal(&other.msgs[i], &whole.msgs[i], sizeof whole.msgs[i]);
            assert_int_equal(other.ident[i].len, whole.ident[i].len);
            if (whole.ident[i].len)
                assert_memory_equal(other.ident[i].data, whole.ident[i].data, whole.ident[i].len);
        }
        free_seen(&other);
    }
    free_seen(&whole);
}

static void test_two_messages(void **state)
{
    (void)state;
    const char *box = F1 "Subject: one\n\nbody\n>From quoted\n\n" F2 "Subject: two\n\nx\n\n";
    struct seen s;
    scan(box, strlen(box), 5, 0, &s);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.msgs[0].offset, 0);
    assert_int_equal(s.msgs[0].from_len, strlen(F1));
    /* "Subject: one\r\n\r\nbody\r\nFrom quoted\r\n" */
    assert_int_equal(s.msgs[0].size, 14 + 2 + 6 + 13);
    assert_int_equal(s.msgs[0].lines, 4);
    assert_int_equal(s.msgs[0].content_len, strlen("Subject: one\n\nbody\n>From quoted\n"));
    assert_int_equal(s.msgs[1].offset, strlen(F1 "Subject: one\n\nbody\n>From quoted\n\n"));
    free_seen(&s);
    check_all_ways(box, strlen(box), 2);
}

static void test_from_needs_empty_line_before(void **state)
{
    (void)state;
    const char *box = F1 "a\n" F2 "b\n\n" F2 "c\n";
    check_all_ways(box, strlen(box), 2);
}

static void test_junk_before_first_and_no_final_newline(void **state)
{
    (void)state;
    const char *box = "junk line\n\n" F1 "a\n\nb\n\n\n" F2 "last line without LF\r";
    struct seen s;
    scan(box, strlen(box), 3, 0, &s);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.msgs[0].offset, strlen("junk line\n\n"));
    /* "a", "", "b", "" are content; the last empty line is the separator */
    assert_int_equal(s.msgs[0].lines, 4);
    assert_int_equal(s.msgs[1].size, strlen("last line without LF\r") + 2);
    free_seen(&s);
    check_all_ways(box, strlen(box), 2);
}

static void test_volatile_headers_not_identifying(void **state)
{
    (void)state;
    const char *a = F1 "Subject: s\nStatus: RO\nX-Status: A\n\tcont\n\nbody\n\n";
    const char *b = F1 "Subject: s\n\nbody\n\n";
    struct seen sa, sb;
    scan(a, strlen(a), 4, 0, &sa);
    scan(b, strlen(b), 4, 0, &sb);
    assert_int_equal(sa.ident[0].len, sb.ident[0].len);
    assert_memory_equal(sa.ident[0].data, sb.ident[0].data, sb.ident[0].len);
    assert_true(sa.msgs[0].size > sb.msgs[0].size);
    free_seen(&sa);
    free_seen(&sb);
    /* In the body the same words are content. */
    const char *c = F1 "Subject: s\n\nStatus: RO\n\n";
    scan(c, strlen(c), 4, 0, &sa);
    assert_string_equal(sa.ident[0].data, F1 "Subject: s\n\nStatus: RO\n");
    free_seen(&sa);
}

static void test_long_lines(void **state)
{
    (void)state;
    struct buf box;
    buf_init(&box, 0);
    buf_append_str(&box, F1 "Subject: long\n\n");
    for (int i = 0; i < 3000; i++)
        buf_append_char(&box, (char)('a' + i % 26));
    buf_append_str(&box, "\r\n>");
    for (int i = 0; i < MBOX_READ_LINE_MAX + 5; i++)
        buf_append_char(&box, '>');
    buf_append_str(&box, "From x\n");
    for (int i = 0; i < MBOX_READ_LINE_MAX - 1; i++)
        buf_append_char(&box, 'y');
    buf_append_str(&box, "\r\n\n" F2);
    for (int i = 0; i < MBOX_READ_LINE_MAX; i++)
        buf_append_char(&box, 'z');
    buf_append_str(&box, "\r");
    check_all_ways(box.data, box.len, 2);
    buf_free(&box);
}

static void test_export_pop3(void **state)
{
    (void)state;
    const char *raw = "Subject: x\n\n.dot\n>From q\n>>From qq\nl2\nl3\n";
    struct buf out;
    buf_init(&out, 0);
    mbox_export(raw, strlen(raw), MBOX_EXPORT_DOTSTUFF, -1, &out);
    assert_string_equal(out.data, "Subject: x\r\n\r\n..dot\r\nFrom q\r\n>From qq\r\nl2\r\nl3\r\n");
    buf_reset(&out);
    mbox_export(raw, strlen(raw), MBOX_EXPORT_DOTSTUFF, 2, &out);
    assert_string_equal(out.data, "Subject: x\r\n\r\n..dot\r\nFrom q\r\n");
    buf_reset(&out);
    mbox_export(raw, strlen(raw), 0, 0, &out);
    assert_string_equal(out.data, "Subject: x\r\n\r\n");
    buf_reset(&out);
    assert_int_equal(mbox_export("", 0, 0, -1, &out), 0);
    buf_free(&out);
}

static void test_empty_and_header_only(void **state)
{
    (void)state;
    check_all_ways("", 0, 0);
    const char *box = F1 "\n" F2 "Subject: only\n\n" F1;
    check_all_ways(box, strlen(box), 3);
    struct seen s;
    scan(box, strlen(box), 1, 0, &s);
    assert_int_equal(s.msgs[0].size, 0);
    assert_int_equal(s.msgs[1].size, strlen("Subject: only\r\n"));
    free_seen(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_messages),
        cmocka_unit_test(test_from_needs_empty_line_before),
        cmocka_unit_test(test_junk_before_first_and_no_final_newline),
        cmocka_unit_test(test_volatile_headers_not_identifying),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_export_pop3),
        cmocka_unit_test(test_empty_and_header_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
