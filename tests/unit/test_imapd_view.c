/*
 * Unit tests for reference/imapd/view: the merge from the generation a session last reported
 * to a newer one: EXPUNGE numbers that account for the earlier ones, FETCH FLAGS for changed
 * flags (not for skipped UIDs, nor again for flags told ahead), EXISTS and RECENT for new
 * messages; staying on the old generation while an expunge may not be told (RFC 2180 4.1).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "imapd/view.h"
#include "mailstore/generation.h"
#include "mailstore/mailstore.h"
#include "mbox_flags.h"

static const struct mailstore_stamp zero = {0, 0, 0};
static unsigned long long stamp_counter;

/* A generation of messages with these UIDs and flags (published: each call is news). */
static struct mailstore_gen *gen_of(const uint32_t *uids, const unsigned *flags, size_t n)
{
    struct mailstore_msg *m = calloc(n ? n : 1, sizeof *m);
    for (size_t i = 0; i < n; i++) {
        m[i].uid = uids[i];
        m[i].flags = flags ? flags[i] : 0;
        m[i].modseq = 1;
    }
    struct mailstore_stamp s = {1, ++stamp_counter, 0};
    return mailstore_gen_publish("/view/test", 7, n ? uids[n - 1] + 1 : 1, 1, m, n, &s, &zero, &zero);
}

static const char *merge(struct imapd_view *v, struct mailstore_gen *g, bool allow_expunge, const uint32_t *skip,
                         size_t nskip, bool *moved_r)
{
    static char out[1024];
    struct mailstore ms;
    memset(&ms, 0, sizeof ms);
    struct buf b;
    buf_init(&b, 0);
    *moved_r = imapd_view_merge(v, g, allow_expunge, &ms, skip, nskip, false, &b);
    snprintf(out, sizeof out, "%.*s", (int)b.len, b.data ? b.data : "");
    buf_free(&b);
    return out;
}

static void test_expunge_numbers_and_exists(void **state)
{
    (void)state;
    static const uint32_t a[] = {1, 2, 3, 4, 5}, b[] = {1, 3, 5, 6, 7};
    struct mailstore_gen *g1 = gen_of(a, NULL, 5), *g2 = gen_of(b, NULL, 5);
    struct imapd_view v = {0};
    imapd_view_open(&v, g1);
    assert_int_equal(imapd_view_count(&v), 5);
    bool moved;
    /* 2 and 4 gone: "2 EXPUNGE" then 4 is number 3 by then; two new: 5 messages */
    assert_string_equal(merge(&v, g2, true, NULL, 0, &moved), "* 2 EXPUNGE\r\n* 3 EXPUNGE\r\n* 5 EXISTS\r\n* 0 RECENT\r\n");
    assert_true(moved);
    assert_ptr_equal(v.shown, g2);
    assert_int_equal(imapd_view_uid(&v, 3), 6);
    /* the same again: nothing */
    assert_string_equal(merge(&v, g2, true, NULL, 0, &moved), "");
    assert_false(moved);
    imapd_view_close(&v);
    mailstore_gen_unref(g1);
    mailstore_gen_unref(g2);
    mailstore_gen_clear();
}

static void test_stays_while_expunge_may_not_be_told(void **state)
{
    (void)state;
    static const uint32_t a[] = {1, 2, 3}, b[] = {1, 3, 4}, c[] = {1, 2, 3, 4};
    static const unsigned fc[] = {0, MBOX_FLAG_SEEN, 0, 0};
    struct mailstore_gen *g1 = gen_of(a, NULL, 3), *g2 = gen_of(b, NULL, 3), *g3 = gen_of(c, fc, 4);
    struct imapd_view v = {0};
    imapd_view_open(&v, g1);
    bool moved;
    /* during FETCH/STORE/SEARCH: 2 is gone, so nothing at all is told, not even EXISTS */
    assert_string_equal(merge(&v, g2, false, NULL, 0, &moved), "");
    assert_false(moved);
    assert_ptr_equal(v.shown, g1);
    assert_int_equal(imapd_view_count(&v), 3);
    /* no expunge: flags and new messages may be told anywhere */
    assert_string_equal(merge(&v, g3, false, NULL, 0, &moved),
                        "* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n* 4 EXISTS\r\n* 0 RECENT\r\n");
    assert_true(moved);
    imapd_view_close(&v);
    mailstore_gen_unref(g1);
    mailstore_gen_unref(g2);
    mailstore_gen_unref(g3);
    mailstore_gen_clear();
}

static void test_skip_and_told_ahead(void **state)
{
    (void)state;
    static const uint32_t a[] = {1, 2, 3};
    static const unsigned f2[] = {MBOX_FLAG_SEEN, MBOX_FLAG_SEEN, MBOX_FLAG_FLAGGED};
    struct mailstore_gen *g1 = gen_of(a, NULL, 3), *g2 = gen_of(a, f2, 3);
    struct imapd_view v = {0};
    imapd_view_open(&v, g1);
    /* 1 is told by the caller (skip), 2 was told ahead (a FETCH's \Seen): only 3 is news */
    imapd_view_told(&v, 2, MBOX_FLAG_SEEN, 0);
    unsigned flags;
    uint32_t kw;
    imapd_view_flags(&v, 1, &flags, &kw);
    assert_int_equal(flags, MBOX_FLAG_SEEN);
    static const uint32_t skip[] = {1};
    bool moved;
    assert_string_equal(merge(&v, g2, true, skip, 1, &moved), "* 3 FETCH (UID 3 FLAGS (\\Flagged))\r\n");
    assert_true(moved);
    assert_int_equal(v.nahead, 0); /* forgotten once the view moved */
    imapd_view_close(&v);
    mailstore_gen_unref(g1);
    mailstore_gen_unref(g2);
    mailstore_gen_clear();
}

static void test_recent(void **state)
{
    (void)state;
    static const uint32_t a[] = {1, 2}, b[] = {1, 2, 3, 4};
    struct mailstore_gen *g1 = gen_of(a, NULL, 2), *g2 = gen_of(b, NULL, 4);
    struct imapd_view v = {0};
    imapd_view_open(&v, g1);
    imapd_view_add_recent(&v, 2, 3);
    assert_int_equal(imapd_view_recent_count(&v), 1);
    imapd_view_add_recent(&v, 3, 5); /* joins the last range */
    assert_int_equal(v.nrecent, 1);
    bool moved;
    assert_string_equal(merge(&v, g2, true, NULL, 0, &moved), "* 4 EXISTS\r\n* 3 RECENT\r\n");
    assert_true(imapd_view_is_recent(&v, 4));
    assert_false(imapd_view_is_recent(&v, 1));
    for (uint32_t u = 10; u < 10 + 2 * IMAPD_RECENT_RANGES; u += 2)
        imapd_view_add_recent(&v, u, u + 1); /* separate ranges: the oldest go first */
    assert_int_equal(v.nrecent, IMAPD_RECENT_RANGES);
    assert_false(imapd_view_is_recent(&v, 2));
    assert_true(imapd_view_is_recent(&v, 10 + 2 * IMAPD_RECENT_RANGES - 2));
    imapd_view_close(&v);
    mailstore_gen_unref(g1);
    mailstore_gen_unref(g2);
    mailstore_gen_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expunge_numbers_and_exists),
        cmocka_unit_test(test_stays_while_expunge_may_not_be_told),
        cmocka_unit_test(test_skip_and_told_ahead),
        cmocka_unit_test(test_recent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
