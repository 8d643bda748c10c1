/* Unit tests for reference/proto/mbox_flags: Status/X-Status/X-Keywords both ways, From_ dates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mbox_flags.h"

static void test_header_len(void **state)
{
    (void)state;
    const char m[] = "From: a\nSubject: b\n  c\n\nbody\n";
    assert_int_equal(mbox_header_len(m, sizeof m - 1), 24);
    const char crlf[] = "From: a\r\n\r\nbody";
    assert_int_equal(mbox_header_len(crlf, sizeof crlf - 1), 11);
    const char none[] = "From: a\nTo: b";
    assert_int_equal(mbox_header_len(none, sizeof none - 1), sizeof none - 1);
}

static void test_parse(void **state)
{
    (void)state;
    const char h[] = "From: a\nStatus: RO\nX-Status: AF\nX-Keywords: $Label1, werk \\bad\n privé\n\n";
    struct buf kw;
    buf_init(&kw, 0);
    unsigned f = mbox_flags_parse(h, sizeof h - 1, &kw);
    assert_int_equal(f, MBOX_FLAG_SEEN | MBOX_FLAG_OLD | MBOX_FLAG_ANSWERED | MBOX_FLAG_FLAGGED);
    buf_append_char(&kw, '\0');
    assert_string_equal(kw.data, "$Label1 werk");
    buf_free(&kw);
    const char h2[] = "Subject: Status: R\nX-Status: TD\n\n";
    assert_int_equal(mbox_flags_parse(h2, sizeof h2 - 1, NULL), MBOX_FLAG_DRAFT | MBOX_FLAG_DELETED);
    const char h3[] = "From: a\n\n";
    assert_int_equal(mbox_flags_parse(h3, sizeof h3 - 1, NULL), 0);
}

static void test_rewrite(void **state)
{
    (void)state;
    const char h[] = "From: a\nStatus: O\nX-Keywords: oud\nSubject: b\n c\n\n";
    struct buf out;
    buf_init(&out, 0);
    mbox_flags_rewrite(h, sizeof h - 1, MBOX_FLAG_SEEN | MBOX_FLAG_FLAGGED | MBOX_FLAG_DELETED, "$Junk werk", &out);
    buf_append_char(&out, '\0');
    assert_string_equal(out.data, "From: a\nSubject: b\n c\nStatus: RO\nX-Status: FD\nX-Keywords: $Junk werk\n\n");
    /* round trip */
    struct buf kw;
    buf_init(&kw, 0);
    assert_int_equal(mbox_flags_parse(out.data, out.len - 1, &kw),
                     MBOX_FLAG_SEEN | MBOX_FLAG_OLD | MBOX_FLAG_FLAGGED | MBOX_FLAG_DELETED);
    buf_free(&kw);
    buf_reset(&out);
    mbox_flags_rewrite(h, sizeof h - 1, 0, NULL, &out);
    buf_append_char(&out, '\0');
    assert_string_equal(out.data, "From: a\nSubject: b\n c\nStatus: O\n\n");
    /* no empty line (a message that is all header) */
    buf_reset(&out);
    const char nobody[] = "From: a\nTo: b";
    mbox_flags_rewrite(nobody, sizeof nobody - 1, MBOX_FLAG_ANSWERED, "", &out);
    buf_append_char(&out, '\0');
    assert_string_equal(out.data, "From: a\nTo: b\nStatus: O\nX-Status: A\n");
    buf_free(&out);
}

static void test_from_date(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    const char l[] = "From sjoerd@zolder.thuis Sat Nov 28 06:53:24 2026";
    assert_int_equal((long long)mbox_from_date(l, sizeof l - 1), 1795848804LL);
    const char l2[] = "From MAILER-DAEMON Mon Jan  5 01:02:03 2026";
    assert_int_equal((long long)mbox_from_date(l2, sizeof l2 - 1), 1767574923LL);
    const char bad[] = "From x Foo Bar";
    assert_int_equal((long long)mbox_from_date(bad, sizeof bad - 1), 0);
    assert_true(mbox_keyword_valid("$Label1", 7));
    assert_false(mbox_keyword_valid("\\Seen", 5));
    assert_false(mbox_keyword_valid("a b", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_len),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_rewrite),
        cmocka_unit_test(test_from_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
