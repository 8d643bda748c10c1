/*
 * Unit tests for deferred EXPUNGE compaction of mbox mailboxes (mailstore.h,
 * mailstore_compact_setup): an expunge is a journal record and leaves the bytes in the mbox;
 * the expunged messages are never shown again (a new process, a mutt-style rewrite of the
 * file, a copy of the message found out of order); the rewrite drops them on the timer, on
 * the last close, past the size threshold, at flush; delay 0 rewrites at once; and a crash
 * (the process ends at once, as kill -9) between any two steps of expunges and a compaction
 * loses no acknowledged expunge and no message that was not expunged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "fsutil.h"
#include "mailstore/mailstore.h"
#include "mbox_flags.h"

#define MSG(n, s) "From a@b Sat Nov 16 23:07:1" #n " 2002\nSubject: " s "\n\nbody " s "\n\n"
#define M1 MSG(1, "one")
#define M2 MSG(2, "two")
#define M3 MSG(3, "three")
#define M4 MSG(4, "four")
#define M5 MSG(5, "five")
#define BIG                                                                                                           \
    "From a@b Sat Nov 16 23:07:19 2002\nSubject: big\n\n" BODY BODY BODY BODY BODY BODY BODY BODY "\n"
#define BODY "a body line that makes the last message larger than the other four together\n"
#define MBOX_TEXT M1 M2 M3 M4 BIG
#define NMSG 5

struct fixture {
    char dir[64];
    char mbox[128];
    struct event_base *base;
};

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, text, strlen(text)), 0);
    close(fd);
}

/* Does the mbox file hold this text? */
static bool file_has(const struct fixture *f, const char *text)
{
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(fs_read_file(f->mbox, 1 << 20, &data, &len), 0);
    bool has = memmem(data, len, text, strlen(text)) != NULL;
    free(data);
    return has;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_mailstore_compact.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char spool[100];
    snprintf(spool, sizeof spool, "%s/spool/mail", f->dir);
    assert_int_equal(fs_mkdir_p(spool, 0700), 0);
    snprintf(f->mbox, sizeof f->mbox, "%s/sjoerd", spool);
    write_file(f->mbox, MBOX_TEXT);
    f->base = event_base_new();
    assert_non_null(f->base);
    mailstore_cache_clear();
    mailstore_test_hooks(NULL, 0);
    mailstore_compact_setup(f->base, 60);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    mailstore_compact_setup(NULL, 0);
    mailstore_cache_clear();
    mailstore_test_hooks(NULL, 0);
    event_base_free(f->base);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void open_box(const struct fixture *f, struct mailstore *ms)
{
    const char *error = NULL;
    assert_int_equal(mailstore_open(ms, f->dir, "sjoerd", &error), MAILSTORE_OK);
}

static void expunge(struct mailstore *ms, uint32_t uid)
{
    const char *error = NULL;
    size_t removed = 0;
    assert_int_equal(mailstore_expunge(ms, &uid, 1, &removed, &error), MAILSTORE_OK);
    assert_int_equal(removed, 1);
}

/* The visible UIDs, as "1 3 4". */
static void uids_of(const struct mailstore *ms, char *out, size_t size)
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < ms->nmsgs && at < size; i++)
        at += (size_t)snprintf(out + at, size - at, "%s%u", i ? " " : "", ms->msgs[i].uid);
}

static void assert_uids(const struct mailstore *ms, const char *want)
{
    char have[256];
    uids_of(ms, have, sizeof have);
    assert_string_equal(have, want);
}

/* A process that starts again: no cache, no timers. */
static void restart(struct fixture *f)
{
    (void)f;
    mailstore_cache_clear(); /* scans, indexes and compaction jobs (not run) */
}

static void test_expunge_is_recorded_and_bytes_stay(void **state)
{
    struct fixture *f = *state;
    struct mailstore ms, other;
    open_box(f, &ms);
    open_box(f, &other);
    expunge(&ms, 2);
    assert_uids(&ms, "1 3 4 5");
    assert_true(file_has(f, "body two")); /* not compacted yet */
    unsigned long long bytes = 0;
    assert_int_equal(mailstore_pending(&ms, &bytes), 1);
    assert_int_equal(bytes, strlen(M2));
    const char *error = NULL;
    assert_int_equal(mailstore_refresh(&other, &error), MAILSTORE_OK);
    assert_uids(&other, "1 3 4 5");
    /* a STORE to it is refused silently (it is not there) and changes nothing */
    uint32_t two = 2;
    assert_int_equal(mailstore_store(&other, &two, 1, MAILSTORE_ADD, MBOX_FLAG_SEEN, NULL, 0, &error), MAILSTORE_OK);
    assert_uids(&other, "1 3 4 5");
    /* a STORE of another message, folded into a new index at once (journal bound 1): the
     * index is written from the flags-only refresh, the expunged entry must stay in it */
    mailstore_test_hooks(NULL, 1);
    uint32_t four = 4;
    assert_int_equal(mailstore_store(&other, &four, 1, MAILSTORE_ADD, MBOX_FLAG_FLAGGED, NULL, 0, &error),
                     MAILSTORE_OK);
    assert_int_equal(mailstore_store(&ms, &four, 1, MAILSTORE_ADD, MBOX_FLAG_SEEN, NULL, 0, &error), MAILSTORE_OK);
    mailstore_test_hooks(NULL, 0);
    mailstore_close(&other);
    mailstore_close(&ms);
    /* a new process: the index and journal say expunged */
    restart(f);
    assert_true(file_has(f, "body two"));
    open_box(f, &ms);
    assert_uids(&ms, "1 3 4 5");
    assert_int_equal(ms.uidnext, NMSG + 1);
    assert_int_equal(ms.msgs[2].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_FLAGGED | MBOX_FLAG_SEEN);
    mailstore_close(&ms);
}

static void test_last_close_compacts(void **state)
{
    struct fixture *f = *state;
    struct mailstore ms, other;
    open_box(f, &ms);
    open_box(f, &other);
    expunge(&ms, 3);
    mailstore_close(&ms);
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    assert_true(file_has(f, "body three")); /* another one still has it open */
    mailstore_close(&other);
    event_base_dispatch(f->base); /* within MAILSTORE_COMPACT_CLOSE_DELAY, not the 60 s */
    assert_false(file_has(f, "body three"));
    assert_true(file_has(f, "body four"));
    restart(f);
    open_box(f, &ms);
    assert_uids(&ms, "1 2 4 5");
    unsigned long long bytes = 1;
    assert_int_equal(mailstore_pending(&ms, &bytes), 0);
    mailstore_close(&ms);
}

static void test_timer_compacts_and_writes_flags(void **state)
{
    struct fixture *f = *state;
    mailstore_compact_setup(f->base, 1);
    struct mailstore ms;
    open_box(f, &ms);
    uint32_t one = 1;
    const char *error = NULL;
    assert_int_equal(mailstore_store(&ms, &one, 1, MAILSTORE_ADD, MBOX_FLAG_SEEN, NULL, 0, &error), MAILSTORE_OK);
    assert_int_equal(mailstore_write_flags(&ms, &error), MAILSTORE_OK); /* deferred: no rewrite */
    assert_false(file_has(f, "Status: RO"));
    expunge(&ms, 4);
    assert_true(file_has(f, "body four"));
    event_base_dispatch(f->base); /* the timer (1 s) is the only event */
    assert_false(file_has(f, "body four"));
    assert_true(file_has(f, "Status: RO")); /* the flags reached the headers with it */
    assert_int_equal(mailstore_refresh(&ms, &error), MAILSTORE_OK);
    assert_uids(&ms, "1 2 3 5");
    assert_int_equal(ms.msgs[0].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_SEEN);
    mailstore_close(&ms);
}

static void test_threshold_compacts_at_once(void **state)
{
    struct fixture *f = *state;
    struct mailstore ms;
    open_box(f, &ms);
    expunge(&ms, 5); /* more than a quarter of the file: past the threshold */
    assert_false(file_has(f, "Subject: big"));
    assert_uids(&ms, "1 2 3 4");
    mailstore_close(&ms);
}

static void test_delay_zero_rewrites_at_once(void **state)
{
    struct fixture *f = *state;
    mailstore_compact_setup(f->base, 0);
    struct mailstore ms;
    open_box(f, &ms);
    expunge(&ms, 2);
    assert_false(file_has(f, "body two"));
    assert_uids(&ms, "1 3 4 5");
    mailstore_close(&ms);
}

static void test_external_rewrite_keeps_it_expunged(void **state)
{
    struct fixture *f = *state;
    struct mailstore ms;
    open_box(f, &ms);
    expunge(&ms, 2);
    /* mutt's rewrite: Status written into every message (other spans), the last message
     * deleted, one appended; the expunged message is still there (mutt saw it) */
    write_file(f->mbox, "From a@b Sat Nov 16 23:07:11 2002\nSubject: one\nStatus: RO\n\nbody one\n\n"
                        "From a@b Sat Nov 16 23:07:12 2002\nSubject: two\nStatus: O\n\nbody two\n\n"
                        "From a@b Sat Nov 16 23:07:13 2002\nSubject: three\nStatus: O\n\nbody three\n\n" M5);
    const char *error = NULL;
    assert_int_equal(mailstore_refresh(&ms, &error), MAILSTORE_OK);
    assert_uids(&ms, "1 3 6");
    assert_int_equal(ms.msgs[0].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_SEEN); /* mutt's \Seen read */
    /* a moved-in file with the expunged message out of order: still never shown */
    write_file(f->mbox, M3 M1 M2);
    assert_int_equal(mailstore_refresh(&ms, &error), MAILSTORE_OK);
    assert_uids(&ms, "3 7");
    for (size_t i = 0; i < ms.nmsgs; i++)
        assert_int_not_equal(ms.msgs[i].uid, 2);
    /* the compaction drops it from the file */
    assert_int_equal(mailstore_compact(&ms, &error), MAILSTORE_OK);
    assert_false(file_has(f, "body two"));
    assert_int_equal(mailstore_refresh(&ms, &error), MAILSTORE_OK);
    assert_int_equal(ms.nmsgs, 2);
    mailstore_close(&ms);
}

static void test_delivery_append_while_pending(void **state)
{
    struct fixture *f = *state;
    struct mailstore ms;
    open_box(f, &ms);
    expunge(&ms, 3);
    /* local delivery appends to the file (same inode) */
    int fd = open(f->mbox, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, M5, strlen(M5)), 0);
    close(fd);
    const char *error = NULL;
    assert_int_equal(mailstore_refresh(&ms, &error), MAILSTORE_OK);
    assert_uids(&ms, "1 2 4 5 6");
    uint32_t uid = 0;
    assert_int_equal(mailstore_append(&ms, "Subject: six\r\n\r\nbody six\r\n", 26, 1000000000, 0, NULL, 0, &uid, &error),
                     MAILSTORE_OK);
    assert_int_equal(uid, 7);
    assert_int_equal(mailstore_compact(&ms, &error), MAILSTORE_OK);
    assert_false(file_has(f, "body three"));
    assert_int_equal(mailstore_refresh(&ms, &error), MAILSTORE_OK);
    assert_uids(&ms, "1 2 4 5 6 7");
    struct buf raw;
    buf_init(&raw, 0);
    assert_int_equal(mailstore_read(&ms, 4, &raw, &error), MAILSTORE_OK); /* UID 6 */
    assert_true(memmem(raw.data, raw.len, "body five", 9) != NULL);
    buf_free(&raw);
    mailstore_close(&ms);
}

/* ---- kill -9 at every step ---------------------------------------------------------------- */

static int crash_at, steps_seen;

static void crash_step(const char *step)
{
    (void)step;
    if (++steps_seen == crash_at)
        kill(getpid(), SIGKILL); /* kill -9: no cleanup (and no leak check under valgrind) */
}

/*
 * The child: expunges UIDs 2 and then 4 (each acknowledged through the pipe), then compacts,
 * ending at step crash_at. Returns the acknowledged count; *finished_r: the child got through.
 */
static int run_child(struct fixture *f, int at, bool *finished_r)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        crash_at = at;
        steps_seen = 0;
        mailstore_test_hooks(crash_step, 0);
        struct mailstore ms;
        const char *error = NULL;
        size_t removed = 0;
        if (mailstore_open(&ms, f->dir, "sjoerd", &error) != MAILSTORE_OK)
            _exit(2);
        static const uint32_t order[] = {2, 4};
        for (int k = 0; k < 2; k++) {
            if (mailstore_expunge(&ms, &order[k], 1, &removed, &error) != MAILSTORE_OK || removed != 1)
                _exit(3);
            char ack = 'e';
            if (write(fds[1], &ack, 1) != 1)
                _exit(3);
        }
        if (mailstore_compact(&ms, &error) != MAILSTORE_OK)
            _exit(4);
        char done = 'd';
        if (write(fds[1], &done, 1) != 1)
            _exit(3);
        kill(getpid(), SIGKILL);
    }
    close(fds[1]);
    int acked = 0;
    char c;
    *finished_r = false;
    while (read(fds[0], &c, 1) == 1) {
        if (c == 'd')
            *finished_r = true;
        else
            acked++;
    }
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
        fail_msg("child ended with status %d at step %d", status, at);
    return acked;
}

static void test_crash_at_any_step(void **state)
{
    struct fixture *f = *state;
    bool finished = false;
    int at;
    for (at = 1; !finished && at < 200; at++) {
        char cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s/index'", f->dir);
        assert_int_equal(system(cmd), 0);
        write_file(f->mbox, MBOX_TEXT);
        restart(f);
        /* the index exists before the child starts (as for a mailbox in use) */
        struct mailstore ms;
        open_box(f, &ms);
        mailstore_close(&ms);
        restart(f);
        int acked = run_child(f, at, &finished);
        restart(f);
        open_box(f, &ms);
        char have[64];
        uids_of(&ms, have, sizeof have);
        /* what was acknowledged is gone; nothing else is; in-flight: either */
        const char *allowed[3][2] = {{"1 2 3 4 5", "1 3 4 5"}, {"1 3 4 5", "1 3 5"}, {"1 3 5", "1 3 5"}};
        if (strcmp(have, allowed[acked][0]) != 0 && strcmp(have, allowed[acked][1]) != 0)
            fail_msg("crash at step %d after %d expunges: UIDs %s", at, acked, have);
        assert_int_equal(ms.uidnext, NMSG + 1); /* no UID was given again */
        /* every message shown reads back as itself */
        for (size_t i = 0; i < ms.nmsgs; i++) {
            struct buf raw;
            buf_init(&raw, 0);
            const char *error = NULL;
            assert_int_equal(mailstore_read(&ms, i, &raw, &error), MAILSTORE_OK);
            static const char *const subject[] = {"", "one", "two", "three", "four", "big"};
            char want[32];
            snprintf(want, sizeof want, "Subject: %s\n", subject[ms.msgs[i].uid]);
            assert_true(raw.len > strlen(want) && memcmp(raw.data, want, strlen(want)) == 0);
            buf_free(&raw);
        }
        /* and a compaction after the crash leaves the same */
        const char *error = NULL;
        assert_int_equal(mailstore_compact(&ms, &error), MAILSTORE_OK);
        char after[64];
        assert_int_equal(mailstore_refresh(&ms, &error), MAILSTORE_OK);
        uids_of(&ms, after, sizeof after);
        assert_string_equal(after, have);
        mailstore_close(&ms);
    }
    assert_true(finished);
    assert_true(at > 6); /* the hooks saw the journal and rewrite steps */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_expunge_is_recorded_and_bytes_stay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_close_compacts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_compacts_and_writes_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threshold_compacts_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delay_zero_rewrites_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_external_rewrite_keeps_it_expunged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_append_while_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_at_any_step, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
