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
#include "mbox_flags.h"

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

/* gcc 12 mistakes the returned buffer for fs_read_file's local pointer (-Wdangling-pointer) */
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

/* Flags: stored in the index, seen by another session, written as mutt's fields, read back. */
static void test_flags(void **state)
{
    struct fixture *f = *state;
    write_file(f->mbox, M1_STATUS M2 M3, false);
    struct mailstore a, b;
    open_ok(f, &a, 3);
    assert_int_equal(a.msgs[0].flags, MBOX_FLAG_SEEN); /* Status: RO read on the first scan */
    assert_int_equal(a.msgs[1].flags, 0);
    assert_true(a.msgs[0].internaldate != 0);
    const char *error = NULL;
    uint32_t two = 2, three = 3;
    const char *kw[] = {"$Label1", "werk"};
    assert_int_equal(mailstore_store(&a, &two, 1, MAILSTORE_ADD, MBOX_FLAG_FLAGGED | MBOX_FLAG_SEEN, kw, 2, &error),
                     MAILSTORE_OK);
    assert_int_equal(a.msgs[1].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_FLAGGED | MBOX_FLAG_SEEN);
    assert_true(a.msgs[1].flags & MAILSTORE_DIRTY);
    assert_int_equal(a.msgs[1].keywords, 3);
    assert_int_equal(mailstore_store(&a, &three, 1, MAILSTORE_SET, MBOX_FLAG_DELETED, NULL, 0, &error), MAILSTORE_OK);
    /* another session sees them, and notices the change cheaply */
    open_ok(f, &b, 3);
    assert_false(mailstore_changed(&b));
    assert_int_equal(b.msgs[1].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_FLAGGED | MBOX_FLAG_SEEN);
    assert_int_equal(b.msgs[2].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_DELETED);
    assert_int_equal(mailstore_store(&a, &two, 1, MAILSTORE_REMOVE, MBOX_FLAG_SEEN, kw, 1, &error), MAILSTORE_OK);
    assert_true(mailstore_changed(&b));
    assert_int_equal(mailstore_refresh(&b, &error), MAILSTORE_OK);
    assert_int_equal(b.msgs[1].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_FLAGGED);
    assert_int_equal(b.msgs[1].keywords, 2);
    /* expunge writes the flags of the kept messages into the mbox, UIDs stay */
    size_t removed = 0;
    assert_int_equal(mailstore_expunge(&a, &three, 1, &removed, &error), MAILSTORE_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(a.nmsgs, 2);
    assert_int_equal(a.msgs[1].uid, 2);
    assert_false(a.msgs[1].flags & MAILSTORE_DIRTY);
    char *text = read_file(f->mbox);
    assert_non_null(strstr(text, "Subject: two\nStatus: O\nX-Status: F\nX-Keywords: werk\n\nbody two\n"));
    free(text);
    /* b reads message two although it moved and its header grew */
    struct buf raw;
    buf_init(&raw, 0);
    assert_int_equal(mailstore_read(&b, 1, &raw, &error), MAILSTORE_OK);
    buf_append_char(&raw, '\0');
    assert_non_null(strstr(raw.data, "X-Status: F"));
    buf_free(&raw);
    mailstore_close(&b);
    /* flags only: mailstore_write_flags rewrites */
    uint32_t one = 1;
    assert_int_equal(mailstore_store(&a, &one, 1, MAILSTORE_ADD, MBOX_FLAG_ANSWERED, NULL, 0, &error), MAILSTORE_OK);
    assert_int_equal(mailstore_write_flags(&a, &error), MAILSTORE_OK);
    text = read_file(f->mbox);
    assert_non_null(strstr(text, "Subject: one\nStatus: RO\nX-Status: A\n\nbody one"));
    free(text);
    mailstore_close(&a);
    /* the index lost: flags come back from the headers (UIDVALIDITY changes) */
    char index[200];
    snprintf(index, sizeof index, "%s/index/sjoerd/INBOX", f->dir);
    assert_int_equal(unlink(index), 0);
    open_ok(f, &a, 2);
    assert_int_equal(a.msgs[0].flags, MBOX_FLAG_SEEN | MBOX_FLAG_ANSWERED);
    assert_int_equal(a.msgs[1].flags, MBOX_FLAG_FLAGGED);
    assert_int_equal(a.nkeywords, 1);
    assert_string_equal(a.keyword[0], "werk");
    assert_int_equal(a.msgs[1].keywords, 1);
    mailstore_close(&a);
    /* a mail reader rewrites a Status (O -> RO): the new flags are read */
    text = read_file(f->mbox);
    const char *st = strstr(text, "Subject: two\nStatus: O\n");
    assert_non_null(st);
    size_t at = (size_t)(st - text) + strlen("Subject: two\nStatus: ");
    struct buf mutt;
    buf_init(&mutt, 0);
    buf_append(&mutt, text, at);
    buf_append_str(&mutt, "R");
    buf_append_str(&mutt, text + at);
    buf_append_char(&mutt, '\0');
    write_file(f->mbox, mutt.data, false);
    buf_free(&mutt);
    free(text);
    open_ok(f, &a, 2);
    assert_int_equal(a.msgs[1].uid, 2);
    assert_int_equal(a.msgs[1].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_SEEN | MBOX_FLAG_FLAGGED);
    mailstore_close(&a);
}


/*
 * Generations: sessions of one process share one message list; a change by one is taken by
 * the other without a read (not even the lock: here a live process holds it), and the
 * first session's old list stays whole while it holds it.
 */
static void test_sessions_share_generations(void **state)
{
    struct fixture *f = *state;
    write_file(f->mbox, M1 M2 M3, false);
    struct mailstore a, b;
    open_ok(f, &a, 3);
    open_ok(f, &b, 3);
    assert_ptr_equal(a.gen, b.gen);
    assert_ptr_equal(a.msgs, b.msgs);
    assert_false(mailstore_changed(&b));
    struct mailstore_gen *old = mailstore_gen_ref(b.gen);
    const char *error = NULL;
    uint32_t two = 2;
    assert_int_equal(mailstore_store(&a, &two, 1, MAILSTORE_ADD, MBOX_FLAG_FLAGGED, NULL, 0, &error), MAILSTORE_OK);
    assert_ptr_not_equal(a.gen, old);
    assert_true(mailstore_changed(&b));
    char lock[160], pid[32];
    snprintf(lock, sizeof lock, "%s.lock", f->mbox);
    snprintf(pid, sizeof pid, "%ld\n", (long)getppid()); /* alive, not us */
    write_file(lock, pid, false);
    assert_int_equal(mailstore_refresh(&b, &error), MAILSTORE_OK);
    assert_ptr_equal(b.gen, a.gen);
    assert_int_equal(b.msgs[1].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_FLAGGED);
    assert_int_equal(old->msgs[1].flags, 0);
    assert_int_equal(old->nmsgs, 3);
    /* an open (SELECT) shares it too, lock or no lock; so does a LOGOUT with nothing dirty */
    struct mailstore c;
    assert_int_equal(mailstore_open(&c, f->dir, "sjoerd", &error), MAILSTORE_OK);
    assert_ptr_equal(c.gen, a.gen);
    assert_int_equal(c.uidvalidity, a.uidvalidity);
    mailstore_close(&c);
    unlink(lock);
    /* a delivery behind our back: not taken from the shared generation, read anew */
    write_file(f->mbox, M4, true);
    assert_true(mailstore_changed(&b));
    assert_int_equal(mailstore_refresh(&b, &error), MAILSTORE_OK);
    assert_int_equal(b.nmsgs, 4);
    assert_ptr_not_equal(b.gen, a.gen);
    assert_true(mailstore_changed(&a));
    assert_int_equal(mailstore_refresh(&a, &error), MAILSTORE_OK);
    assert_ptr_equal(a.gen, b.gen);
    mailstore_gen_unref(old);
    mailstore_close(&a);
    mailstore_close(&b);
    mailstore_cache_clear();
}

/* mailstore_append_many: one write of every message, each with its UID and flags; the file
 * as n single appends would leave it (a message without its last newline gets one, and the
 * blank line before the next From_ line) */
static void test_append_many(void **state)
{
    struct fixture *f = *state;
    write_file(f->mbox, M2, false);
    struct mailstore ms;
    open_ok(f, &ms, 1);
    const char *kws[] = {"$Klus"};
    struct mailstore_new batch[3] = {
        {.data = "Subject: a\r\n\r\nFrom the attic\r\n", .len = 30, .when = 1000000000},
        {.data = "Subject: b\r\n\r\nno newline at the end", .len = 35, .when = 1000000001,
         .flags = MBOX_FLAG_SEEN, .keywords = kws, .nkeywords = 1},
        {.data = "Subject: c\n\nc\n", .len = 15, .when = 1000000002, .flags = MBOX_FLAG_FLAGGED},
    };
    uint32_t uids[3] = {0, 0, 0};
    const char *error = NULL;
    assert_int_equal(mailstore_append_many(&ms, batch, 3, uids, &error), MAILSTORE_OK);
    assert_int_equal(uids[0], 2);
    assert_int_equal(uids[1], 3);
    assert_int_equal(uids[2], 4);
    assert_int_equal(ms.nmsgs, 4);
    assert_int_equal(ms.msgs[1].flags & MBOX_FLAGS_IMAP, 0);
    assert_int_equal(ms.msgs[2].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_SEEN);
    assert_int_equal(ms.msgs[2].keywords, 1u << mailstore_keyword_index(&ms, "$Klus"));
    assert_int_equal(ms.msgs[3].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_FLAGGED);
    mailstore_close(&ms);
    char *text = read_file(f->mbox);
    assert_string_equal(text, M2
                              "From sjoerd Sun Sep  9 01:46:40 2001\nSubject: a\n\n>From the attic\n\n"
                              "From sjoerd Sun Sep  9 01:46:41 2001\nSubject: b\n\nno newline at the end\n\n"
                              "From sjoerd Sun Sep  9 01:46:42 2001\nSubject: c\n\nc\n"); /* the next append adds the blank line */
    free(text);
    /* a new process reads the same UIDs and flags */
    mailstore_cache_clear();
    open_ok(f, &ms, 4);
    assert_int_equal(ms.msgs[3].uid, 4);
    assert_int_equal(ms.msgs[3].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_FLAGGED);
    struct buf raw;
    buf_init(&raw, 0);
    assert_int_equal(mailstore_read(&ms, 2, &raw, &error), MAILSTORE_OK);
    assert_int_equal(raw.len, strlen("Subject: b\n\nno newline at the end\n"));
    buf_free(&raw);
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
        cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_share_generations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_many, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
