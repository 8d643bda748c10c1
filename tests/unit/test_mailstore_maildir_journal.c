/*
 * Unit tests for the Maildir back-end's index journal (INDEX.journal beside the Maildir's
 * index): STORE, EXPUNGE, APPEND and new files append records and leave the index file alone
 * until the journal passes its bound, then it is folded into a new index; a new process reads
 * index plus journal; a torn last line is ignored and cut off; and a crash (the process ends
 * at once, as with kill -9) between any two steps of a run of STOREs, APPENDs and an
 * EXPUNGE keeps every acknowledged change, the one in flight whole or absent (flags and
 * keyword letters travel in one rename); keywords added to the table by a refused STORE are
 * journalled; a crash at every step of moving an older index's keywords into the names
 * loses none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "mailstore/mailstore.h"
#include "mbox_flags.h"

#define NMSG 4
#define NOPS 16
#define EXPUNGE_OP 10
#define DONE_MARK 1000

struct fixture {
    char dir[64];
    char md[128];
    char index[160];
    char journal[192];
};

static void write_at(const struct fixture *f, const char *sub, const char *name, const char *text, time_t mtime)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s", f->md, sub, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, text, strlen(text)), 0);
    struct timespec t[2] = {{.tv_sec = mtime}, {.tv_sec = mtime}};
    assert_int_equal(futimens(fd, t), 0);
    close(fd);
}

static void reset(struct fixture *f)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/index' '%s'", f->dir, f->md);
    assert_int_equal(system(cmd), 0);
    static const char *subs[] = {"tmp", "new", "cur"};
    for (size_t i = 0; i < 3; i++) {
        char p[200];
        snprintf(p, sizeof p, "%s/%s", f->md, subs[i]);
        assert_int_equal(fs_mkdir_p(p, 0700), 0);
    }
    for (int i = 1; i <= NMSG; i++) {
        char name[64], text[64];
        snprintf(name, sizeof name, "%d.Q%d_0.h:2,", i, i);
        snprintf(text, sizeof text, "Subject: message %d\n\nbody %d\n", i, i);
        write_at(f, "cur", name, text, i);
    }
    mailstore_cache_clear();
    mailstore_test_hooks(NULL, 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_mdjournal.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->md, sizeof f->md, "%s/maildir/sjoerd", f->dir);
    snprintf(f->index, sizeof f->index, "%s/index/sjoerd/INBOX", f->dir);
    snprintf(f->journal, sizeof f->journal, "%s.journal", f->index);
    reset(f);
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
    mailstore_test_hooks(NULL, 0);
    free(f);
    return 0;
}

static void open_ok(struct fixture *f, struct mailstore *ms)
{
    const char *error = NULL;
    assert_int_equal(mailstore_open_inbox(ms, f->dir, "sjoerd", true, &error), MAILSTORE_OK);
}

/* ---- the operations of a run, and what each one leaves ---- */

static const unsigned pattern_flags[] = {MBOX_FLAG_SEEN, MBOX_FLAG_FLAGGED | MBOX_FLAG_SEEN, 0,
                                         MBOX_FLAG_ANSWERED | MBOX_FLAG_DRAFT, MBOX_FLAG_DELETED};
static const char *const pattern_kw[][3] = {{NULL}, {"Work", NULL}, {"Work", "$Label2", NULL}, {"Prive", NULL}};

static bool is_append(int j)
{
    return j % 6 == 5;
}

static uint32_t store_uid(int j)
{
    return (uint32_t)(j % 3) + 1;
}

static size_t kw_count(int j)
{
    size_t n = 0;
    while (pattern_kw[j % 4][n])
        n++;
    return n;
}

static uint32_t do_op(struct mailstore *ms, int j)
{
    const char *error = NULL;
    unsigned flags = pattern_flags[j % 5];
    if (j == EXPUNGE_OP) {
        uint32_t four = NMSG;
        size_t removed = 0;
        assert_int_equal(mailstore_expunge(ms, &four, 1, &removed, &error), MAILSTORE_OK);
        assert_int_equal(removed, 1);
        return 0;
    }
    if (is_append(j)) {
        char text[64];
        uint32_t uid = 0;
        snprintf(text, sizeof text, "Subject: added %d\r\n\r\nbody\r\n", j);
        assert_int_equal(mailstore_append(ms, text, strlen(text), 1000 + j, flags,
                                          (const char *const *)pattern_kw[j % 4], kw_count(j), &uid, &error),
                         MAILSTORE_OK);
        return uid;
    }
    uint32_t uid = store_uid(j);
    assert_int_equal(mailstore_store(ms, &uid, 1, MAILSTORE_SET, flags, (const char *const *)pattern_kw[j % 4],
                                     kw_count(j), &error),
                     MAILSTORE_OK);
    return uid;
}

/* Does message uid carry op j's flags and keywords (-1: none)? */
static bool carries(const struct mailstore *ms, uint32_t uid, int j)
{
    size_t i = mailstore_gen_index(ms->gen, uid);
    if (i >= ms->nmsgs)
        return false;
    const struct mailstore_msg *m = &ms->msgs[i];
    unsigned want = j < 0 ? 0 : pattern_flags[j % 5];
    if ((m->flags & MBOX_FLAGS_IMAP) != want)
        return false;
    uint32_t bits = 0;
    for (size_t k = 0; j >= 0 && pattern_kw[j % 4][k]; k++) {
        int b = mailstore_keyword_index(ms, pattern_kw[j % 4][k]);
        if (b < 0)
            return false;
        bits |= 1u << b;
    }
    return m->keywords == bits;
}


static void stat_of(const char *path, struct stat *st)
{
    memset(st, 0, sizeof *st);
    assert_int_equal(stat(path, st), 0);
}

static void test_changes_append_to_the_journal(void **state)
{
    struct fixture *f = *state;
    struct mailstore ms;
    open_ok(f, &ms);
    assert_int_equal(ms.nmsgs, NMSG);
    struct stat before, after, j1, j2;
    stat_of(f->index, &before);
    for (int j = 0; j < NOPS; j++)
        (void)do_op(&ms, j);
    stat_of(f->index, &after);
    /* the index file was never rewritten: every change went to the journal */
    assert_int_equal(before.st_ino, after.st_ino);
    assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
    stat_of(f->journal, &j1);
    assert_true(j1.st_size > 0);
    /* a file delivered by another program: its UID is a journal record too */
    write_at(f, "new", "99.Q99_0.h", "Subject: delivered\n\nx\n", 5000);
    const char *error = NULL;
    assert_int_equal(mailstore_refresh(&ms, &error), MAILSTORE_OK);
    uint32_t delivered = ms.msgs[ms.nmsgs - 1].uid;
    stat_of(f->journal, &j2);
    assert_true(j2.st_size > j1.st_size);
    stat_of(f->index, &after);
    assert_int_equal(before.st_ino, after.st_ino);
    /* what this process has is what a new process reads from index plus journal */
    size_t n = ms.nmsgs;
    struct mailstore_msg *copy = malloc(n * sizeof *copy);
    memcpy(copy, ms.msgs, n * sizeof *copy);
    unsigned long long hms = ms.highestmodseq;
    uint32_t next = ms.uidnext;
    mailstore_close(&ms);
    mailstore_cache_clear();
    open_ok(f, &ms);
    assert_int_equal(ms.nmsgs, n);
    assert_int_equal(ms.highestmodseq, hms);
    assert_int_equal(ms.uidnext, next);
    assert_int_equal(ms.msgs[n - 1].uid, delivered);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ms.msgs[i].uid, copy[i].uid);
        assert_int_equal(ms.msgs[i].flags & MBOX_FLAGS_IMAP, copy[i].flags & MBOX_FLAGS_IMAP);
        assert_int_equal(ms.msgs[i].keywords, copy[i].keywords);
        assert_int_equal(ms.msgs[i].modseq, copy[i].modseq);
        assert_int_equal(ms.msgs[i].size, copy[i].size);
    }
    free(copy);
    assert_true(carries(&ms, 1, 15));
    assert_true(carries(&ms, 2, 13));
    assert_true(carries(&ms, 3, 14));
    assert_true(mailstore_gen_index(ms.gen, NMSG) >= ms.nmsgs); /* expunged */
    /* past the bound, the next change folds: a new index, no journal */
    mailstore_test_hooks(NULL, 1);
    uint32_t one = 1;
    assert_int_equal(mailstore_store(&ms, &one, 1, MAILSTORE_ADD, MBOX_FLAG_FLAGGED, NULL, 0, &error), MAILSTORE_OK);
    stat_of(f->index, &after);
    assert_int_not_equal(before.st_ino, after.st_ino);
    assert_int_equal(access(f->journal, F_OK), -1);
    mailstore_test_hooks(NULL, 0);
    mailstore_close(&ms);
    mailstore_cache_clear();
    open_ok(f, &ms);
    assert_int_equal(ms.nmsgs, n);
    assert_true(ms.msgs[0].flags & MBOX_FLAG_FLAGGED);
    mailstore_close(&ms);
}

static void test_torn_and_foreign_journal(void **state)
{
    struct fixture *f = *state;
    struct mailstore ms;
    open_ok(f, &ms);
    (void)do_op(&ms, 0); /* uid 1: \Seen */
    mailstore_close(&ms);
    /* a torn last record (never acknowledged): ignored */
    int fd = open(f->journal, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, "F 1 99 4", 8), 0);
    close(fd);
    mailstore_cache_clear();
    open_ok(f, &ms);
    assert_true(carries(&ms, 1, 0));
    /* the next append cuts it off first */
    (void)do_op(&ms, 1); /* uid 2 */
    mailstore_close(&ms);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(fs_read_file(f->journal, 1 << 20, &data, &len), 0);
    assert_null(strstr(data, "F 1 99 4"));
    assert_int_equal(data[len - 1], '\n');
    free(data);
    mailstore_cache_clear();
    open_ok(f, &ms);
    assert_true(carries(&ms, 1, 0));
    assert_true(carries(&ms, 2, 1));
    mailstore_close(&ms);
    /* a journal that names another index (the fold's removal never happened) is ignored */
    char *text = NULL;
    assert_int_equal(fs_read_file(f->journal, 1 << 20, &text, &len), 0);
    mailstore_test_hooks(NULL, 1);
    mailstore_cache_clear();
    open_ok(f, &ms);
    (void)do_op(&ms, 2); /* folds: uid 3 no flags, no keywords */
    mailstore_close(&ms);
    mailstore_test_hooks(NULL, 0);
    fd = open(f->journal, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, text, len), 0);
    assert_int_equal(fs_write_all(fd, "X 1\n", 4), 0);
    close(fd);
    free(text);
    mailstore_cache_clear();
    open_ok(f, &ms);
    assert_int_equal(ms.nmsgs, NMSG);
    assert_true(carries(&ms, 1, 0));
    mailstore_close(&ms);
}

/* A STORE refused for too many keywords still added names to the table: journalled, so a
 * later STORE of one of them (no new name, no "K" record of its own) survives a restart. */
static void test_keywords_of_a_refused_store(void **state)
{
    struct fixture *f = *state;
    struct mailstore ms;
    open_ok(f, &ms);
    char names[40][16];
    const char *kw[40];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "naam%02d", i);
        kw[i] = names[i];
    }
    const char *error = NULL;
    uint32_t one = 1, two = 2;
    /* all 26 letters taken first: naam30 will live in the index alone */
    assert_int_equal(mailstore_store(&ms, &two, 1, MAILSTORE_ADD, 0, kw, 26, &error), MAILSTORE_OK);
    assert_int_equal(mailstore_store(&ms, &one, 1, MAILSTORE_ADD, 0, kw, 40, &error), MAILSTORE_ERROR);
    assert_int_equal(ms.nkeywords, MAILSTORE_KEYWORDS_MAX);
    assert_int_equal(mailstore_store(&ms, &one, 1, MAILSTORE_ADD, 0, kw + 30, 1, &error), MAILSTORE_OK);
    mailstore_close(&ms);
    mailstore_cache_clear();
    open_ok(f, &ms);
    int b = mailstore_keyword_index(&ms, "naam30");
    assert_true(b >= 0);
    assert_int_equal(ms.msgs[0].keywords, 1u << b);
    mailstore_close(&ms);
}

/* ---- kill -9 between any two steps ---- */

static int crash_at, steps_seen;

static void crash_step(const char *step)
{
    (void)step;
    if (++steps_seen == crash_at)
        kill(getpid(), SIGKILL); /* kill -9 itself: no cleanup, the page cache keeps what was written
                                    (and no leak check under valgrind for what was in flight) */
}

static int run_child(struct fixture *f, int at, uint32_t *appended, bool *finished_r)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        crash_at = at;
        steps_seen = 0;
        mailstore_cache_clear();
        mailstore_test_hooks(crash_step, 150); /* small: several folds happen within the run */
        struct mailstore ms;
        const char *error = NULL;
        if (mailstore_open_inbox(&ms, f->dir, "sjoerd", true, &error) != MAILSTORE_OK)
            _exit(2);
        for (int j = 0; j < NOPS; j++) {
            uint32_t ack[2] = {(uint32_t)j, do_op(&ms, j)};
            if (write(fds[1], ack, sizeof ack) != sizeof ack)
                _exit(3);
        }
        uint32_t done[2] = {DONE_MARK, 0};
        if (write(fds[1], done, sizeof done) != sizeof done)
            _exit(3);
        _exit(0);
    }
    close(fds[1]);
    int last = -1;
    uint32_t v[2];
    *finished_r = false;
    while (read(fds[0], v, sizeof v) == sizeof v) {
        if (v[0] == DONE_MARK) {
            *finished_r = true;
        } else {
            last = (int)v[0];
            appended[last] = v[1];
        }
    }
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true((WIFEXITED(status) && WEXITSTATUS(status) == 0) || (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
    return last;
}

static void test_crash_between_any_two_steps(void **state)
{
    struct fixture *f = *state;
    bool finished = false;
    int crashes = 0;
    uint32_t appended[NOPS];
    for (int at = 1; !finished && at < 2000; at++) {
        reset(f);
        memset(appended, 0, sizeof appended);
        int acked = run_child(f, at, appended, &finished);
        mailstore_test_hooks(NULL, 0);
        mailstore_cache_clear();
        struct mailstore ms;
        open_ok(f, &ms);
        int inflight = finished ? -2 : acked + 1;
        for (int j = 0; j <= acked; j++) {
            if (!is_append(j))
                continue;
            if (!carries(&ms, appended[j], j))
                fail_msg("crash at step %d (after op %d): appended message %d (UID %u) lost", at, acked, j,
                         appended[j]);
        }
        for (uint32_t uid = 1; uid <= 3; uid++) {
            int last = -1;
            for (int j = 0; j <= acked; j++)
                if (!is_append(j) && j != EXPUNGE_OP && store_uid(j) == uid)
                    last = j;
            bool ok = carries(&ms, uid, last);
            if (!ok && inflight >= 0 && inflight < NOPS && !is_append(inflight) && inflight != EXPUNGE_OP &&
                store_uid(inflight) == uid)
                ok = carries(&ms, uid, inflight); /* whole: one rename carries flags and keyword letters */
            if (!ok)
                fail_msg("crash at step %d (after op %d): message %u is neither op %d's nor the one in flight", at,
                         acked, uid, last);
        }
        bool four = mailstore_gen_index(ms.gen, NMSG) < ms.nmsgs;
        if (acked >= EXPUNGE_OP && four)
            fail_msg("crash at step %d (after op %d): the expunged message is back", at, acked);
        if (acked < EXPUNGE_OP - 1 && !four)
            fail_msg("crash at step %d (after op %d): message %d lost", at, acked, NMSG);
        /* nothing in flight appears twice, nothing without a UID it had */
        size_t want = NMSG - (acked >= EXPUNGE_OP ? 1 : 0);
        for (int j = 0; j <= acked; j++)
            want += is_append(j);
        size_t lo = want - (inflight == EXPUNGE_OP), hi = want + (inflight >= 0 && is_append(inflight));
        if (ms.nmsgs < lo || ms.nmsgs > hi)
            fail_msg("crash at step %d (after op %d): %zu messages, not %zu..%zu", at, acked, ms.nmsgs, lo, hi);
        mailstore_close(&ms);
        crashes += !finished;
    }
    assert_true(finished);
    print_message("crashed at %d steps\n", crashes);
    assert_true(crashes > NOPS * 3);
}

/* An index of format 1 (keywords in the index only) opened by a process killed at every step
 * of moving the keywords into the names (dovecot-keywords, renames, journal): never lost. */
static void write_v1_index(const struct fixture *f)
{
    char path[512];
    snprintf(path, sizeof path, "%s/index/sjoerd", f->dir);
    assert_int_equal(fs_mkdir_p(path, 0700), 0);
    FILE *fp = fopen(f->index, "w");
    assert_non_null(fp);
    fputs("zolder-maildir-index 1 1234 5 9\nkeywords Oud Klus\n", fp);
    for (int i = 1; i <= NMSG; i++) /* message i: keywords bits i & 3 */
        fprintf(fp, "%d 2 0 %x 20 22 3 %d %d.Q%d_0.h\n", i, i & 3, i, i, i);
    fclose(fp);
}

static void test_crash_while_keywords_move_into_names(void **state)
{
    struct fixture *f = *state;
    bool finished = false;
    int crashes = 0;
    for (int at = 1; !finished && at < 200; at++) {
        reset(f);
        write_v1_index(f);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            crash_at = at;
            steps_seen = 0;
            mailstore_cache_clear();
            mailstore_test_hooks(crash_step, 0);
            struct mailstore ms;
            const char *error = NULL;
            if (mailstore_open_inbox(&ms, f->dir, "sjoerd", true, &error) != MAILSTORE_OK)
                _exit(2);
            _exit(0);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        finished = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        assert_true(finished || (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
        mailstore_test_hooks(NULL, 0);
        mailstore_cache_clear();
        struct mailstore ms;
        open_ok(f, &ms);
        assert_int_equal(ms.uidvalidity, 1234);
        assert_int_equal(ms.nmsgs, NMSG);
        int oud = mailstore_keyword_index(&ms, "Oud"), klus = mailstore_keyword_index(&ms, "Klus");
        assert_true(oud >= 0 && klus >= 0);
        for (size_t i = 0; i < ms.nmsgs; i++) {
            uint32_t uid = ms.msgs[i].uid, want = 0;
            want |= (uid & 1) ? 1u << oud : 0;
            want |= (uid & 2) ? 1u << klus : 0;
            if (ms.msgs[i].keywords != want)
                fail_msg("crash at step %d: message %u has keywords %x, not %x", at, uid, ms.msgs[i].keywords, want);
        }
        mailstore_close(&ms);
        crashes += !finished;
    }
    assert_true(finished);
    /* the names carry them now: another process (Dovecot) sees them */
    assert_true(access(f->md, F_OK) == 0);
    char p[512];
    snprintf(p, sizeof p, "%s/cur/3.Q3_0.h:2,ab", f->md);
    assert_int_equal(access(p, F_OK), 0);
    print_message("crashed at %d steps\n", crashes);
    assert_true(crashes >= 5); /* dovecot-keywords, three renames, the journal */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_changes_append_to_the_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_and_foreign_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keywords_of_a_refused_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_between_any_two_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_while_keywords_move_into_names, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
