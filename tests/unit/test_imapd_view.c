/*
 * Unit tests for reference/imapd/view: the merge from the generation a session last reported
 * to a newer one: EXPUNGE numbers that account for the earlier ones, FETCH FLAGS for changed
 * flags (not for skipped UIDs, nor again for flags told ahead), EXISTS and RECENT for new
 * messages; staying on the old generation while an expunge may not be told (RFC 2180 4.1);
 * QRESYNC: VANISHED instead of EXPUNGE, UID sets as ranges and their gaps, sequence match data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
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
    *moved_r = imapd_view_merge(v, g, allow_expunge, &ms, skip, nskip, false, false, &b);
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

/* QRESYNC (RFC 7162 3.2.10): one VANISHED line, before the FETCHes, instead of EXPUNGEs. */
static void test_vanished_merge(void **state)
{
    (void)state;
    static const uint32_t a[] = {1, 2, 3, 5, 6, 9, 10}, b[] = {1, 5, 10, 11};
    static const unsigned fb[] = {0, MBOX_FLAG_SEEN, 0, 0};
    struct mailstore_gen *g1 = gen_of(a, NULL, 7), *g2 = gen_of(b, fb, 4);
    struct imapd_view v = {0};
    imapd_view_open(&v, g1);
    struct mailstore ms;
    memset(&ms, 0, sizeof ms);
    struct buf out;
    buf_init(&out, 0);
    /* 2,3 consecutive; 6 and 9 are not (4, 7, 8 were never in the view) */
    assert_true(imapd_view_merge(&v, g2, true, &ms, NULL, 0, true, true, &out));
    buf_append_char(&out, '\0');
    assert_string_equal(out.data, "* VANISHED 2:3,6,9\r\n* 2 FETCH (UID 5 FLAGS (\\Seen) MODSEQ (1))\r\n"
                                  "* 4 EXISTS\r\n* 0 RECENT\r\n");
    buf_reset(&out);
    /* nothing gone: no VANISHED line */
    static const uint32_t c[] = {1, 5, 10, 11, 12};
    static const unsigned fc[] = {0, MBOX_FLAG_SEEN, 0, 0, 0};
    struct mailstore_gen *g3 = gen_of(c, fc, 5);
    assert_true(imapd_view_merge(&v, g3, true, &ms, NULL, 0, false, true, &out));
    buf_append_char(&out, '\0');
    assert_string_equal(out.data, "* 5 EXISTS\r\n* 0 RECENT\r\n");
    buf_free(&out);
    imapd_view_close(&v);
    mailstore_gen_unref(g1);
    mailstore_gen_unref(g2);
    mailstore_gen_unref(g3);
    mailstore_gen_clear();
}

static const char *missing(const struct imapd_uidset *u, const struct mailstore_gen *g)
{
    static char text[256];
    struct buf b;
    buf_init(&b, 0);
    bool any = imapd_uidset_missing(u, g, &b);
    snprintf(text, sizeof text, "%s%.*s", any ? "" : "(none)", (int)b.len, b.data ? b.data : "");
    buf_free(&b);
    return text;
}

/* UID sets as ranges: '*', backwards ranges, clipping, merging, and the gaps of a generation. */
static void test_uidset(void **state)
{
    (void)state;
    struct imap_seq_range r[] = {{20, 12}, {1, 3}, {4, 5}, {30, IMAP_SEQ_STAR}, {2, 2}, {90, 4000000000U}};
    struct imap_seqset set = {r, 6, false};
    struct imapd_uidset u;
    imapd_uidset_make(&u, &set, 35, 1, 100);
    /* 1:5 merged (adjacent), 12:20, 30:35, 90:100 (clipped) */
    assert_int_equal(u.n, 4);
    assert_int_equal(u.lo[0], 1);
    assert_int_equal(u.hi[0], 5);
    assert_int_equal(u.lo[1], 12);
    assert_int_equal(u.hi[3], 100);
    assert_true(imapd_uidset_has(&u, 1));
    assert_true(imapd_uidset_has(&u, 5));
    assert_false(imapd_uidset_has(&u, 6));
    assert_true(imapd_uidset_has(&u, 35));
    assert_false(imapd_uidset_has(&u, 36));
    assert_false(imapd_uidset_has(&u, 101));
    static const uint32_t uids[] = {2, 3, 13, 20, 31, 40, 95, 100};
    struct mailstore_gen *g = gen_of(uids, NULL, 8);
    assert_string_equal(missing(&u, g), "1,4:5,12,14:19,30,32:35,90:94,96:99");
    assert_string_equal(missing(&u, NULL), "1:5,12:20,30:35,90:100");
    imapd_uidset_free(&u);
    /* the widest set is one range; min > max is empty */
    struct imap_seq_range all = {1, 4294967295U};
    struct imap_seqset whole = {&all, 1, false};
    imapd_uidset_make(&u, &whole, 0, 1, 4294967295U);
    assert_int_equal(u.n, 1);
    assert_true(imapd_uidset_has(&u, 4294967295U));
    assert_string_equal(missing(&u, g), "1,4:12,14:19,21:30,32:39,41:94,96:99,101:4294967295");
    imapd_uidset_free(&u);
    imapd_uidset_make(&u, &whole, 0, 10, 9);
    assert_int_equal(u.n, 0);
    assert_string_equal(missing(&u, g), "(none)");
    imapd_uidset_free(&u);
    /* a set wholly held by g: nothing missing */
    struct imap_seq_range held = {2, 3};
    struct imap_seqset hs = {&held, 1, false};
    imapd_uidset_make(&u, &hs, 0, 1, 100);
    assert_string_equal(missing(&u, g), "(none)");
    imapd_uidset_free(&u);
    mailstore_gen_unref(g);
    mailstore_gen_clear();
}

/* RFC 7162 3.2.5.2: pairs checked in order up to the first mismatch. */
static void test_seq_match_floor(void **state)
{
    (void)state;
    static const uint32_t uids[] = {1, 2, 4, 6, 9};
    struct mailstore_gen *g = gen_of(uids, NULL, 5);
    struct imap_seq_range s1[] = {{1, 3}}, u1[] = {{1, 2}, {4, 4}};
    struct imap_seqset seqs = {s1, 1, false}, us = {u1, 2, false};
    assert_int_equal(imapd_seq_match_floor(&seqs, &us, g), 5); /* 1→1 2→2 3→4: all match */
    struct imap_seq_range s2[] = {{1, 1}, {3, 4}}, u2[] = {{1, 1}, {3, 3}, {6, 6}};
    seqs = (struct imap_seqset){s2, 2, false};
    us = (struct imap_seqset){u2, 3, false};
    assert_int_equal(imapd_seq_match_floor(&seqs, &us, g), 2); /* 3 is UID 4, not 3: stop */
    struct imap_seq_range s3[] = {{2, 2}}, u3[] = {{3, 3}};
    seqs = (struct imap_seqset){s3, 1, false};
    us = (struct imap_seqset){u3, 1, false};
    assert_int_equal(imapd_seq_match_floor(&seqs, &us, g), 1); /* the first pair fails */
    /* an absurd range stops at the mailbox's end, after at most nmsgs + 1 pairs */
    struct imap_seq_range s4[] = {{1, 4294967295U}}, u4[] = {{1, 4294967295U}};
    seqs = (struct imap_seqset){s4, 1, false};
    us = (struct imap_seqset){u4, 1, false};
    assert_int_equal(imapd_seq_match_floor(&seqs, &us, g), 3); /* 1,2 match; 3 is UID 4 */
    static const uint32_t dense[] = {1, 2, 3};
    struct mailstore_gen *d = gen_of(dense, NULL, 3);
    assert_int_equal(imapd_seq_match_floor(&seqs, &us, d), 4); /* 4 is past the end */
    struct imap_seqset none = {NULL, 0, false};
    assert_int_equal(imapd_seq_match_floor(&none, &none, g), 1);
    mailstore_gen_unref(g);
    mailstore_gen_unref(d);
    mailstore_gen_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expunge_numbers_and_exists),
        cmocka_unit_test(test_stays_while_expunge_may_not_be_told),
        cmocka_unit_test(test_skip_and_told_ahead),
        cmocka_unit_test(test_recent),
        cmocka_unit_test(test_vanished_merge),
        cmocka_unit_test(test_uidset),
        cmocka_unit_test(test_seq_match_floor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
