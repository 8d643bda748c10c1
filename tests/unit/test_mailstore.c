/*
 * Unit tests for reference/mailstore: UIDs stable across sessions, appends and rewrites by
 * other programs; reads that follow a moved message; expunge that keeps a message delivered
 * after the session opened; a locked mailbox; a lost index.
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
#include "mailstore/mailstore.h"

#define M1 "From a@b Sat Nov 16 23:07:13 2002\nSubject: one\n\nbody one\n>From quoted\n\n"
#define M2 "From a@b Sat Nov 16 23:07:14 2002\nSubject: two\n\nbody two\n\n"
#define M3 "From c@d Sat Nov 16 23:07:15 2002\nSubject: three\n\nbody three\n\n"
#define M4 "From c@d Sat Nov 16 23:07:16 2002\nSubject: four\n\nbody four\n\n"
#define M1_STATUS "From a@b Sat Nov 16 23:07:13 2002\nSubject: one\nStatus: RO\n\nbody one\n>From quoted\n\n"

struct fixture {
    char dir[64];
    char mbox[128];
};

static void write_file(const char *path, const char *text, bool append)
{
    int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0600);
    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, text, strlen(text)), 0);
    close(fd);
}

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
    snprintf(f->dir, sizeof f->dir, "/tmp/test_mailstore.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char spool[100];
    snprintf(spool, sizeof spool, "%s/spool/mail", f->dir);
    assert_int_equal(fs_mkdir_p(spool, 0700), 0);
    snprintf(f->mbox, sizeof f->mbox, "%s/sjoerd", spool);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void open_ok(struct fixture *f, struct mailstore *ms, size_t n)
{
    const char *error = NULL;
    assert_int_equal(mailstore_open(ms, f->dir, "sjoerd", &error), MAILSTORE_OK);
    assert_int_equal(ms->nmsgs, n);
}

static void test_empty_and_uids_stable(void **state)
{
    struct fixture *f = *state;
    struct mailstore ms;
    open_ok(f, &ms, 0);
    mailstore_close(&ms);

    write_file(f->mbox, M1 M2 M3, false);
    open_ok(f, &ms, 3);
    uint32_t validity = ms.uidvalidity;
    assert_int_equal(ms.msgs[0].uid, 1);
    assert_int_equal(ms.msgs[2].uid, 3);
    assert_int_equal(ms.uidnext, 4);
    /* "Subject: one\r\n\r\nbody one\r\nFrom quoted\r\n" */
    assert_int_equal(ms.msgs[0].size, 14 + 2 + 10 + 13);
    struct buf raw;
    buf_init(&raw, 0);
    const char *error;
    assert_int_equal(mailstore_read(&ms, 0, &raw, &error), MAILSTORE_OK);
    assert_string_equal(raw.data, "Subject: one\n\nbody one\n>From quoted\n");
    mailstore_close(&ms);

    /* a delivery appends; a new session sees old UIDs and a new one */
    write_file(f->mbox, M4, true);
    open_ok(f, &ms, 4);
    assert_int_equal(ms.uidvalidity, validity);
    assert_int_equal(ms.msgs[3].uid, 4);
    mailstore_close(&ms);

    /* mutt rewrites: message two gone, a Status header on one: UIDs kept */
    write_file(f->mbox, M1_STATUS M3 M4, false);
    open_ok(f, &ms, 3);
    assert_int_equal(ms.uidvalidity, validity);
    assert_int_equal(ms.msgs[0].uid, 1);
    assert_int_equal(ms.msgs[1].uid, 3);
    assert_int_equal(ms.msgs[2].uid, 4);
    assert_int_equal(ms.uidnext, 5);
    mailstore_close(&ms);

    /* a reordered mailbox keeps UIDs ascending: the moved message gets a new one */
    write_file(f->mbox, M4 M1_STATUS M3, false);
    open_ok(f, &ms, 3);
    assert_int_equal(ms.msgs[0].uid, 4);
    assert_int_equal(ms.msgs[1].uid, 5);
    assert_int_equal(ms.msgs[2].uid, 6);
    mailstore_close(&ms);
    buf_free(&raw);
}

static void test_read_follows_rewrite(void **state)
{
    struct fixture *f = *state;
    struct mailstore ms;
    const char *error;
    struct buf raw;
    buf_init(&raw, 0);
    write_file(f->mbox, M1 M2 M3, false);
    open_ok(f, &ms, 3);
    /* another program removes message one: message three moved */
    write_file(f->mbox, M2 M3, false);
    assert_int_equal(mailstore_read(&ms, 2, &raw, &error), MAILSTORE_OK);
    assert_string_equal(raw.data, "Subject: three\n\nbody three\n");
    buf_reset(&raw);
    assert_int_equal(mailstore_read(&ms, 0, &raw, &error), MAILSTORE_GONE);
    mailstore_close(&ms);
    buf_free(&raw);
}

static void test_expunge_keeps_new_delivery(void **state)
{
    struct fixture *f = *state;
    struct mailstore ms;
    const char *error;
    write_file(f->mbox, "junk kept\n\n" M1 M2 M3, false);
    open_ok(f, &ms, 3);
    write_file(f->mbox, M4, true); /* delivered during the session */
    uint32_t uids[] = {2, 1, 99};
    size_t removed;
    assert_int_equal(mailstore_expunge(&ms, uids, 3, &removed, &error), MAILSTORE_OK);
    assert_int_equal(removed, 2);
    mailstore_close(&ms);
    char *box = read_file(f->mbox);
    assert_string_equal(box, "junk kept\n\n" M3 M4);
    free(box);
    open_ok(f, &ms, 2);
    assert_int_equal(ms.msgs[0].uid, 3);
    assert_int_equal(ms.msgs[1].uid, 4);
    mailstore_close(&ms);
    char lock[160];
    snprintf(lock, sizeof lock, "%s.lock", f->mbox);
    assert_int_equal(access(lock, F_OK), -1);
}

static void test_lost_index_new_validity(void **state)
{
    struct fixture *f = *state;
    struct mailstore ms;
    write_file(f->mbox, M1 M2, false);
    open_ok(f, &ms, 2);
    uint32_t validity = ms.uidvalidity;
    mailstore_close(&ms);
    char index[160];
    snprintf(index, sizeof index, "%s/index/sjoerd/INBOX", f->dir);
    write_file(index, "garbage\n", false);
    open_ok(f, &ms, 2);
    assert_int_not_equal(ms.uidvalidity, validity);
    assert_int_equal(ms.msgs[1].uid, 2);
    /* An expunge with UIDs of the old validity deletes nothing. */
    mailstore_close(&ms);
}

static void test_locked_mailbox_is_busy(void **state)
{
    struct fixture *f = *state;
    struct mailstore ms;
    const char *error;
    char lock[160];
    write_file(f->mbox, M1, false);
    snprintf(lock, sizeof lock, "%s.lock", f->mbox);
    char pid[32];
    snprintf(pid, sizeof pid, "%ld\n", (long)getppid()); /* alive, not us */
    write_file(lock, pid, false);
    assert_int_equal(mailstore_open(&ms, f->dir, "sjoerd", &error), MAILSTORE_BUSY);
    mailstore_close(&ms);
    assert_int_equal(access(lock, F_OK), 0); /* someone else's lock stays */
    unlink(lock);
    assert_int_equal(mailstore_open(&ms, f->dir, "../x", &error), MAILSTORE_ERROR);
    mailstore_close(&ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_and_uids_stable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_follows_rewrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expunge_keeps_new_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_index_new_validity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_mailbox_is_busy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
