/*
 * Unit tests for reference/imapd/folders.c's pure-ish helpers: COPY's append loop (flags,
 * keywords and INTERNALDATE carried over, the copy's flag header fields rewritten from the
 * source's index, all or nothing when a message is gone) and COPYUID's UID sets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "imapd/folders.h"
#include "mbox_flags.h"

#define M1 "From a@b Sat Nov 16 23:07:13 2002\nSubject: one\nStatus: O\n\nbody one\n>From quoted\n\n"
#define M2 "From a@b Sat Nov 16 23:07:14 2002\nSubject: two\n\nbody two\n\n"

struct fixture {
    char dir[64];
    char src[120], src_index[120], dst[120], dst_index[120];
};

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, text, strlen(text)), 0);
    close(fd);
}

static char *read_file(const char *path) __attribute__((noinline));
static char *read_file(const char *path)
{
    char *data;
    size_t len;
    assert_int_equal(fs_read_file(path, 1 << 20, &data, &len), 0);
    return data;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_imapd_folders.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->src, sizeof f->src, "%s/src", f->dir);
    snprintf(f->src_index, sizeof f->src_index, "%s/index/src", f->dir);
    snprintf(f->dst, sizeof f->dst, "%s/dst", f->dir);
    snprintf(f->dst_index, sizeof f->dst_index, "%s/index/dst", f->dir);
    write_file(f->src, M1 M2);
    write_file(f->dst, "");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    mailstore_cache_clear();
    free(f);
    return 0;
}

static void open_both(struct fixture *f, struct mailstore *src, struct mailstore *dst)
{
    const char *error = NULL;
    struct mailstore_location a = {.mbox_path = f->src, .index_path = f->src_index, .user = "bouke"};
    struct mailstore_location b = {.mbox_path = f->dst, .index_path = f->dst_index, .user = "bouke"};
    assert_int_equal(mailstore_open_at(src, &a, &error), MAILSTORE_OK);
    assert_int_equal(mailstore_open_at(dst, &b, &error), MAILSTORE_OK);
}

static void test_copy_keeps_flags_and_dates(void **state)
{
    struct fixture *f = *state;
    struct mailstore src, dst;
    open_both(f, &src, &dst);
    const char *error = NULL;
    uint32_t uid = 1;
    const char *kw[] = {"$Belangrijk"};
    assert_int_equal(mailstore_store(&src, &uid, 1, MAILSTORE_ADD, MBOX_FLAG_SEEN | MBOX_FLAG_FLAGGED, kw, 1, &error),
                     MAILSTORE_OK);
    const struct mailstore_msg *msgs[2] = {&src.msgs[0], &src.msgs[1]};
    uint32_t uids[2] = {0, 0};
    size_t done = 0;
    assert_int_equal(imapd_folder_copy(&src, msgs, 2, &dst, uids, &done, &error), MAILSTORE_OK);
    assert_int_equal(done, 2);
    assert_int_equal(uids[0], 1);
    assert_int_equal(uids[1], 2);
    time_t date0 = src.msgs[0].internaldate;
    mailstore_close(&src);
    mailstore_close(&dst);
    /* seen again from the files */
    open_both(f, &src, &dst);
    assert_int_equal(dst.nmsgs, 2);
    assert_int_equal(dst.msgs[0].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_SEEN | MBOX_FLAG_FLAGGED);
    assert_int_equal(dst.nkeywords, 1);
    assert_string_equal(dst.keyword[0], "$Belangrijk");
    assert_int_equal(dst.msgs[0].keywords, 1);
    assert_int_equal(dst.msgs[1].flags & MBOX_FLAGS_IMAP, 0);
    assert_int_equal(dst.msgs[0].internaldate, date0);
    char *box = read_file(f->dst);
    /* the flag fields say what the index says (the source's stale "Status: O" is gone) */
    assert_non_null(strstr(box, "Subject: one\nStatus: RO\nX-Status: F\nX-Keywords: $Belangrijk\n\nbody one\n>From quoted\n"));
    assert_null(strstr(box, "Status: O\n\nbody one"));
    free(box);
    mailstore_close(&src);
    mailstore_close(&dst);
}

static void test_copy_is_all_or_nothing(void **state)
{
    struct fixture *f = *state;
    struct mailstore src, dst;
    open_both(f, &src, &dst);
    const char *error = NULL;
    struct mailstore_msg gone = src.msgs[1];
    gone.uid = 99; /* removed by another program meanwhile */
    gone.hash[0] ^= 0xff;
    const struct mailstore_msg *msgs[2] = {&src.msgs[0], &gone};
    uint32_t uids[2] = {0, 0};
    size_t done = 7;
    assert_int_not_equal(imapd_folder_copy(&src, msgs, 2, &dst, uids, &done, &error), MAILSTORE_OK);
    assert_int_equal(done, 0);
    mailstore_close(&src);
    mailstore_close(&dst);
    char *box = read_file(f->dst);
    assert_string_equal(box, ""); /* one batch: nothing was written, the read failed first */
    free(box);
    struct mailstore_location b = {.mbox_path = f->dst, .index_path = f->dst_index, .user = "bouke"};
    assert_int_equal(mailstore_open_at(&dst, &b, &error), MAILSTORE_OK);
    assert_int_equal(dst.nmsgs, 0);
    assert_int_equal(dst.uidnext, 1);
    mailstore_close(&dst);
}

/* More than one batch (IMAPD_COPY_BATCH, 256): the first is written, the second fails (a
 * message gone): the copies of the first are taken out again. */
static void test_copy_is_all_or_nothing_across_batches(void **state)
{
    struct fixture *f = *state;
    struct buf text;
    buf_init(&text, 0);
    for (int i = 0; i < 300; i++)
        buf_printf(&text, "From a@b Sat Nov 16 23:07:13 2002\nSubject: %d\n\nbody %d\n\n", i, i);
    write_file(f->src, text.data);
    buf_free(&text);
    struct mailstore src, dst;
    open_both(f, &src, &dst);
    assert_int_equal(src.nmsgs, 300);
    const struct mailstore_msg *msgs[300];
    struct mailstore_msg gone = src.msgs[299];
    gone.uid = 999;
    gone.hash[0] ^= 0xff;
    for (int i = 0; i < 299; i++)
        msgs[i] = &src.msgs[i];
    msgs[299] = &gone;
    uint32_t uids[300] = {0};
    size_t done = 7;
    const char *error = NULL;
    assert_int_not_equal(imapd_folder_copy(&src, msgs, 300, &dst, uids, &done, &error), MAILSTORE_OK);
    assert_int_equal(done, 0);
    assert_int_equal(uids[0], 1);
    assert_int_equal(uids[255], 256); /* the first batch had been written */
    mailstore_close(&src);
    mailstore_close(&dst);
    char *box = read_file(f->dst);
    assert_string_equal(box, ""); /* and was taken out again */
    free(box);
    struct mailstore_location b = {.mbox_path = f->dst, .index_path = f->dst_index, .user = "bouke"};
    assert_int_equal(mailstore_open_at(&dst, &b, &error), MAILSTORE_OK);
    assert_int_equal(dst.nmsgs, 0);
    assert_int_equal(dst.uidnext, 257);
    mailstore_close(&dst);
}

static void test_uid_set(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    imapd_uid_set(&b, (const uint32_t[]){1, 2, 3, 5, 7, 8}, 6);
    assert_string_equal(b.data, "1:3,5,7:8");
    buf_reset(&b);
    imapd_uid_set(&b, (const uint32_t[]){42}, 1);
    assert_string_equal(b.data, "42");
    buf_reset(&b);
    imapd_quote(&b, "Sent");
    imapd_quote(&b, " ");
    imapd_quote(&b, "a\"b\\c");
    imapd_quote(&b, "");
    assert_string_equal(b.data, "Sent\" \"\"a\\\"b\\\\c\"\"\"");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_copy_keeps_flags_and_dates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_is_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_is_all_or_nothing_across_batches, setup, teardown),
        cmocka_unit_test(test_uid_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
