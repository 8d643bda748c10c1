/*
 * Unit tests for reference/mailstore/generation: an equal list shares the current
 * generation, a different one replaces it (older references stay valid), lookups by UID,
 * watchers called for news only and by mailstore_notify_changed, unwatch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailstore/generation.h"
#include "mailstore/mailstore.h"

static struct mailstore_msg *list_of(const uint32_t *uids, size_t n, unsigned flags)
{
    struct mailstore_msg *m = calloc(n ? n : 1, sizeof *m);
    for (size_t i = 0; i < n; i++) {
        m[i].uid = uids[i];
        m[i].offset = 100 * i;
        m[i].span = 100;
        m[i].flags = flags;
        m[i].hash[0] = (unsigned char)uids[i];
    }
    return m;
}

static const struct mailstore_stamp stamp_a = {1, 300, 5}, stamp_b = {1, 400, 6}, index_a = {2, 10, 7}, no_journal = {0, 0, 0};

static void count_call(void *arg)
{
    (*(int *)arg)++;
}

static void test_equal_list_shares_the_current_generation(void **state)
{
    (void)state;
    static const uint32_t uids[] = {1, 2, 5};
    struct mailstore_gen *g1 = mailstore_gen_publish("/m/a", 7, 6, 1, list_of(uids, 3, 0), 3, &stamp_a, &index_a, &no_journal);
    struct mailstore_gen *g2 = mailstore_gen_publish("/m/a", 7, 6, 1, list_of(uids, 3, 0), 3, &stamp_a, &index_a, &no_journal);
    assert_ptr_equal(g1, g2);
    assert_ptr_equal(mailstore_gen_current("/m/a"), g1);
    assert_int_equal(g1->refs, 3); /* the box's and two callers' */
    /* another mailbox is another generation */
    struct mailstore_gen *other = mailstore_gen_publish("/m/b", 7, 6, 1, list_of(uids, 3, 0), 3, &stamp_a, &index_a, &no_journal);
    assert_ptr_not_equal(other, g1);
    mailstore_gen_unref(other);
    mailstore_gen_unref(g2);
    mailstore_gen_unref(g1);
    mailstore_gen_clear();
}

static void test_new_list_replaces_it_and_old_references_stay(void **state)
{
    (void)state;
    static const uint32_t uids[] = {1, 2, 5}, after[] = {1, 5, 6};
    struct mailstore_gen *g1 = mailstore_gen_publish("/m/a", 7, 6, 1, list_of(uids, 3, 0), 3, &stamp_a, &index_a, &no_journal);
    struct mailstore_gen *g2 = mailstore_gen_publish("/m/a", 7, 7, 1, list_of(after, 3, 0), 3, &stamp_b, &index_a, &no_journal);
    assert_ptr_not_equal(g1, g2);
    assert_true(g2->serial > g1->serial);
    assert_ptr_equal(mailstore_gen_current("/m/a"), g2);
    /* g1 is still whole for whoever holds it */
    assert_int_equal(g1->nmsgs, 3);
    assert_non_null(mailstore_gen_find(g1, 2));
    assert_null(mailstore_gen_find(g2, 2));
    assert_int_equal(mailstore_gen_index(g2, 6), 2);
    assert_int_equal(mailstore_gen_index(g2, 4), (size_t)-1);
    assert_int_equal(mailstore_gen_index(g2, 7), (size_t)-1);
    assert_int_equal(g1->refs, 1); /* only ours now */
    mailstore_gen_unref(g1);
    mailstore_gen_unref(g2);
    /* the same list with other flags is a new generation */
    struct mailstore_gen *g3 = mailstore_gen_publish("/m/a", 7, 7, 1, list_of(after, 3, 1), 3, &stamp_b, &index_a, &no_journal);
    assert_int_equal(g3->msgs[0].flags, 1);
    mailstore_gen_unref(g3);
    mailstore_gen_clear();
}

static void test_watchers_hear_news_and_notifications(void **state)
{
    (void)state;
    static const uint32_t uids[] = {1, 2}, more[] = {1, 2, 3};
    int calls = 0, other_calls = 0;
    void *w = mailstore_watch("/m/a", count_call, &calls);
    void *w2 = mailstore_watch("/m/b", count_call, &other_calls);
    mailstore_gen_unref(mailstore_gen_publish("/m/a", 7, 3, 1, list_of(uids, 2, 0), 2, &stamp_a, &index_a, &no_journal));
    assert_int_equal(calls, 1);
    /* the same again: no news */
    mailstore_gen_unref(mailstore_gen_publish("/m/a", 7, 3, 1, list_of(uids, 2, 0), 2, &stamp_a, &index_a, &no_journal));
    assert_int_equal(calls, 1);
    /* the same list under new stamps (a touched file) replaces it but is no news */
    mailstore_gen_unref(mailstore_gen_publish("/m/a", 7, 3, 1, list_of(uids, 2, 0), 2, &stamp_b, &index_a, &no_journal));
    assert_int_equal(calls, 1);
    mailstore_gen_unref(mailstore_gen_publish("/m/a", 7, 4, 1, list_of(more, 3, 0), 3, &stamp_b, &index_a, &no_journal));
    assert_int_equal(calls, 2);
    mailstore_notify_changed("/m/a");
    assert_int_equal(calls, 3);
    mailstore_notify_changed("/m//./a"); /* another spelling of the same path */
    assert_int_equal(calls, 4);
    calls--;
    mailstore_notify_changed("/m/nobody");
    assert_int_equal(other_calls, 0);
    mailstore_unwatch(w);
    mailstore_notify_changed("/m/a");
    assert_int_equal(calls, 3);
    mailstore_notify_changed("/m/b");
    assert_int_equal(other_calls, 1);
    mailstore_unwatch(w2);
    mailstore_gen_clear();
}

static void test_many_mailboxes_are_bounded(void **state)
{
    (void)state;
    static const uint32_t uids[] = {1};
    int calls = 0;
    void *w = mailstore_watch("/m/watched", count_call, &calls);
    for (int i = 0; i < GENERATION_MAILBOXES_MAX * 2; i++) {
        char path[32];
        snprintf(path, sizeof path, "/m/%d", i);
        mailstore_gen_unref(mailstore_gen_publish(path, 7, 2, 1, list_of(uids, 1, 0), 1, &stamp_a, &index_a, &no_journal));
    }
    assert_null(mailstore_gen_current("/m/0"));
    assert_non_null(mailstore_gen_current("/m/100"));
    mailstore_notify_changed("/m/watched"); /* a watched box is never dropped */
    assert_int_equal(calls, 1);
    mailstore_unwatch(w);
    mailstore_gen_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_list_shares_the_current_generation),
        cmocka_unit_test(test_new_list_replaces_it_and_old_references_stay),
        cmocka_unit_test(test_watchers_hear_news_and_notifications),
        cmocka_unit_test(test_many_mailboxes_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
