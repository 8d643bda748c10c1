/*
 * Unit tests for the mail store's flag journal: a STORE appends to INDEX.journal and leaves
 * the index file alone; past its bound the journal is folded into a new index; and a crash
 * (the process ends at once, as with kill -9: no cleanup) between any two steps of a run of
 * STOREs and folds keeps every acknowledged flag change, and the one in flight is either
 * whole or absent; messages added by APPEND (journal "A" records) keep the UID they were
 * given. A torn journal line is cut off by the next append.
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
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "mailstore/mailstore.h"
#include "mbox_flags.h"

#define MBOX_TEXT                                                                                                     \
    "From a@b Sat Nov 16 23:07:13 2002\nSubject: one\n\nbody one\n\n"                                                 \
    "From a@b Sat Nov 16 23:07:14 2002\nSubject: two\n\nbody two\n\n"                                                 \
    "From c@d Sat Nov 16 23:07:15 2002\nSubject: three\n\nbody three\n\n"                                             \
    "From c@d Sat Nov 16 23:07:16 2002\nSubject: four\n\nbody four\n\n"
#define NMSG 4
#define NSTORE 14
#define DONE_MARK 1000

struct fixture {
    char dir[64];
    char mbox[128];
    char index[128];
    char journal[160];
};

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, text, strlen(text)), 0);
    close(fd);
}

static void reset(struct fixture *f)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/index'", f->dir);
    assert_int_equal(system(cmd), 0);
    write_file(f->mbox, MBOX_TEXT);
    mailstore_cache_clear();
    mailstore_test_hooks(NULL, 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_mailstore_journal.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char spool[100];
    snprintf(spool, sizeof spool, "%s/spool/mail", f->dir);
    assert_int_equal(fs_mkdir_p(spool, 0700), 0);
    snprintf(f->mbox, sizeof f->mbox, "%s/sjoerd", spool);
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

/* Store number j: which message, which flags, which keyword (absolute: MAILSTORE_SET). */
static uint32_t store_uid(int j)
{
    return (uint32_t)(j % NMSG) + 1;
}

static unsigned store_flags(int j)
{
    static const unsigned pattern[] = {MBOX_FLAG_SEEN, MBOX_FLAG_FLAGGED, MBOX_FLAG_SEEN | MBOX_FLAG_ANSWERED,
                                       MBOX_FLAG_DELETED, MBOX_FLAG_DRAFT, 0, MBOX_FLAG_FLAGGED | MBOX_FLAG_SEEN};
    return pattern[j % 7];
}

static void store_keyword(int j, char *out, size_t size)
{
    snprintf(out, size, "kw%d", j % 5);
}

static bool is_append(int j)
{
    return j % 4 == 3;
}

/* APPEND number j: its UID. */
static uint32_t do_append(struct mailstore *ms, int j)
{
    char text[128], kw[16];
    snprintf(text, sizeof text, "Subject: added %d\r\n\r\nbody %d\r\n", j, j);
    store_keyword(j, kw, sizeof kw);
    const char *kws[] = {kw};
    uint32_t uid = 0;
    const char *error = NULL;
    assert_int_equal(mailstore_append(ms, text, strlen(text), 1000000000 + j, store_flags(j), kws, 1, &uid, &error),
                     MAILSTORE_OK);
    return uid;
}

static void do_store(struct mailstore *ms, int j)
{
    char kw[16];
    store_keyword(j, kw, sizeof kw);
    const char *kws[] = {kw};
    uint32_t uid = store_uid(j);
    const char *error = NULL;
    assert_int_equal(mailstore_store(ms, &uid, 1, MAILSTORE_SET, store_flags(j), kws, 1, &error), MAILSTORE_OK);
}

/* Does message uid carry exactly store j's flags and keyword? (j < 0: none) */
static bool carries(const struct mailstore *ms, uint32_t uid, int j)
{
    const struct mailstore_msg *m = uid <= NMSG ? &ms->msgs[uid - 1] : mailstore_gen_find(ms->gen, uid);
    if (!m)
        return false;
    unsigned want = j < 0 ? 0 : store_flags(j);
    if ((m->flags & MBOX_FLAGS_IMAP) != want)
        return false;
    if (j < 0)
        return m->keywords == 0;
    char kw[16];
    store_keyword(j, kw, sizeof kw);
    int bit = mailstore_keyword_index(ms, kw);
    return bit >= 0 && m->keywords == (1u << bit);
}

static void test_store_appends_to_the_journal(void **state)
{
    struct fixture *f = *state;
    struct mailstore ms;
    const char *error = NULL;
    assert_int_equal(mailstore_open(&ms, f->dir, "sjoerd", &error), MAILSTORE_OK);
    struct stat before, after;
    assert_int_equal(stat(f->index, &before), 0);
    do_store(&ms, 0);
    do_store(&ms, 1);
    assert_int_equal(do_append(&ms, 3), NMSG + 1); /* a new message: an "A" record */
    assert_int_equal(stat(f->index, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino); /* the index was not rewritten */
    assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
    assert_int_equal(access(f->journal, F_OK), 0);
    mailstore_close(&ms);
    /* a new process (no cache) reads index + journal */
    mailstore_cache_clear();
    assert_int_equal(mailstore_open(&ms, f->dir, "sjoerd", &error), MAILSTORE_OK);
    assert_true(carries(&ms, 1, 0));
    assert_true(carries(&ms, 2, 1));
    assert_true(carries(&ms, 3, -1));
    assert_int_equal(ms.nmsgs, NMSG + 1);
    assert_true(carries(&ms, NMSG + 1, 3));
    assert_int_equal(ms.uidnext, NMSG + 2);
    /* an expunge folds it: a new index, no journal */
    uint32_t gone = 4;
    size_t removed = 0;
    assert_int_equal(mailstore_expunge(&ms, &gone, 1, &removed, &error), MAILSTORE_OK);
    assert_int_equal(removed, 1);
    assert_int_not_equal(access(f->journal, F_OK), 0);
    mailstore_close(&ms);
    mailstore_cache_clear();
    assert_int_equal(mailstore_open(&ms, f->dir, "sjoerd", &error), MAILSTORE_OK);
    assert_int_equal(ms.nmsgs, 4);
    assert_true(carries(&ms, 1, 0));
    assert_true(carries(&ms, 2, 1));
    assert_true(carries(&ms, NMSG + 1, 3));
    mailstore_close(&ms);
}

static void test_journal_past_its_bound_is_folded(void **state)
{
    struct fixture *f = *state;
    struct mailstore ms;
    const char *error = NULL;
    mailstore_test_hooks(NULL, 100);
    assert_int_equal(mailstore_open(&ms, f->dir, "sjoerd", &error), MAILSTORE_OK);
    struct stat st, first;
    assert_int_equal(stat(f->index, &first), 0);
    bool folded = false;
    for (int j = 0; j < NSTORE; j++) {
        do_store(&ms, j);
        assert_int_equal(stat(f->index, &st), 0);
        folded |= st.st_ino != first.st_ino;
        if (stat(f->journal, &st) == 0)
            assert_true(st.st_size < 100 + 64); /* one store's records past the bound at most */
    }
    assert_true(folded);
    mailstore_close(&ms);
    mailstore_cache_clear();
    assert_int_equal(mailstore_open(&ms, f->dir, "sjoerd", &error), MAILSTORE_OK);
    for (int j = NSTORE - NMSG; j < NSTORE; j++)
        assert_true(carries(&ms, store_uid(j), j));
    /* appends, folded or in the journal, are read back with their UIDs */
    for (int j = 0; j < 3; j++) {
        uint32_t uid = do_append(&ms, j);
        assert_int_equal(uid, NMSG + 1 + (uint32_t)j);
    }
    mailstore_close(&ms);
    mailstore_cache_clear();
    assert_int_equal(mailstore_open(&ms, f->dir, "sjoerd", &error), MAILSTORE_OK);
    assert_int_equal(ms.nmsgs, NMSG + 3);
    assert_int_equal(ms.uidnext, NMSG + 4);
    for (int j = 0; j < 3; j++)
        assert_true(carries(&ms, NMSG + 1 + (uint32_t)j, j));
    mailstore_close(&ms);
}

static int crash_at, steps_seen;
static uint32_t appended_uid[NSTORE];

static void crash_step(const char *step)
{
    (void)step;
    if (++steps_seen == crash_at)
        _exit(0); /* as kill -9: no cleanup, the page cache keeps what was written */
}

/* Runs the STOREs in a child that ends at step number crash_at; the last acknowledged store. */
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
        mailstore_cache_clear();
        mailstore_test_hooks(crash_step, 120);
        struct mailstore ms;
        const char *error = NULL;
        if (mailstore_open(&ms, f->dir, "sjoerd", &error) != MAILSTORE_OK)
            _exit(2);
        for (int j = 0; j < NSTORE; j++) {
            int ack[2] = {j, 0};
            if (is_append(j))
                ack[1] = (int)do_append(&ms, j);
            else
                do_store(&ms, j);
            if (write(fds[1], ack, sizeof ack) != sizeof ack) /* acknowledged */
                _exit(3);
        }
        int done[2] = {DONE_MARK, 0};
        if (write(fds[1], done, sizeof done) != sizeof done)
            _exit(3);
        _exit(0);
    }
    close(fds[1]);
    int last = -1, v[2];
    *finished_r = false;
    while (read(fds[0], v, sizeof v) == sizeof v) {
        if (v[0] == DONE_MARK) {
            *finished_r = true;
        } else {
            last = v[0];
            if (is_append(v[0]))
                appended_uid[v[0]] = (uint32_t)v[1];
        }
    }
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return last;
}

static void test_crash_between_any_two_steps_keeps_acknowledged_flags(void **state)
{
    struct fixture *f = *state;
    bool finished = false;
    int crashes = 0;
    for (int at = 1; !finished && at < 1000; at++) {
        reset(f);
        memset(appended_uid, 0, sizeof appended_uid);
        int acked = run_child(f, at, &finished);
        struct mailstore ms;
        const char *error = NULL;
        assert_int_equal(mailstore_open(&ms, f->dir, "sjoerd", &error), MAILSTORE_OK);
        assert_true(ms.nmsgs >= NMSG);
        for (int j = 0; j <= acked; j++) {
            if (!is_append(j))
                continue;
            /* an acknowledged APPEND: there, with its UID and flags */
            assert_true(appended_uid[j] > NMSG);
            if (!carries(&ms, appended_uid[j], j))
                fail_msg("crash at step %d (after %d): appended message %d lost its UID %u or flags", at, acked, j,
                         appended_uid[j]);
            struct buf raw;
            buf_init(&raw, 0);
            size_t idx = mailstore_gen_index(ms.gen, appended_uid[j]);
            assert_int_equal(mailstore_read(&ms, idx, &raw, &error), MAILSTORE_OK);
            char subject[32];
            snprintf(subject, sizeof subject, "Subject: added %d\n", j);
            assert_true(raw.len > strlen(subject) && memcmp(raw.data, subject, strlen(subject)) == 0);
            buf_free(&raw);
        }
        for (uint32_t uid = 1; uid <= NMSG; uid++) {
            int last = -1; /* the last acknowledged store to this message */
            for (int j = 0; j <= acked; j++)
                if (!is_append(j) && store_uid(j) == uid)
                    last = j;
            int inflight = acked + 1 < NSTORE && !is_append(acked + 1) && store_uid(acked + 1) == uid ? acked + 1 : -2;
            bool ok = carries(&ms, uid, last) || (inflight >= 0 && carries(&ms, uid, inflight));
            if (!ok)
                fail_msg("crash at step %d (after store %d): message %u lost its flags", at, acked, uid);
        }
        mailstore_close(&ms);
        crashes += !finished;
    }
    assert_true(finished);
    assert_true(crashes > NSTORE * 3); /* every store's steps, folds included, were crashed in */
}

static void test_torn_journal_line_is_cut(void **state)
{
    struct fixture *f = *state;
    struct mailstore ms;
    const char *error = NULL;
    assert_int_equal(mailstore_open(&ms, f->dir, "sjoerd", &error), MAILSTORE_OK);
    do_store(&ms, 0);
    mailstore_close(&ms);
    /* a crash left half a record */
    int fd = open(f->journal, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, "F 2 2", 5), 0);
    close(fd);
    mailstore_cache_clear();
    assert_int_equal(mailstore_open(&ms, f->dir, "sjoerd", &error), MAILSTORE_OK);
    assert_true(carries(&ms, 1, 0));
    assert_true(carries(&ms, 2, -1)); /* the torn record is not read */
    do_store(&ms, 2);                 /* message 3: appended after the cut */
    mailstore_close(&ms);
    mailstore_cache_clear();
    assert_int_equal(mailstore_open(&ms, f->dir, "sjoerd", &error), MAILSTORE_OK);
    assert_true(carries(&ms, 1, 0));
    assert_true(carries(&ms, 2, -1));
    assert_true(carries(&ms, 3, 2));
    mailstore_close(&ms);
}

/* Expunge copies stretches in the kernel: the new file is byte for byte what it must be. */
static void test_expunge_copies_exactly(void **state)
{
    struct fixture *f = *state;
    write_file(f->mbox, "not a message\n\n" MBOX_TEXT);
    mailstore_cache_clear();
    struct mailstore ms;
    const char *error = NULL;
    assert_int_equal(mailstore_open(&ms, f->dir, "sjoerd", &error), MAILSTORE_OK);
    assert_int_equal(ms.nmsgs, NMSG);
    uint32_t three = 3, gone[] = {1, 4};
    assert_int_equal(mailstore_store(&ms, &three, 1, MAILSTORE_ADD, MBOX_FLAG_SEEN, NULL, 0, &error), MAILSTORE_OK);
    size_t removed = 0;
    assert_int_equal(mailstore_expunge(&ms, gone, 2, &removed, &error), MAILSTORE_OK);
    assert_int_equal(removed, 2);
    char *data;
    size_t len;
    assert_int_equal(fs_read_file(f->mbox, 1 << 20, &data, &len), 0);
    assert_string_equal(data, "not a message\n\n"
                              "From a@b Sat Nov 16 23:07:14 2002\nSubject: two\n\nbody two\n\n"
                              "From c@d Sat Nov 16 23:07:15 2002\nSubject: three\nStatus: RO\n\nbody three\n\n");
    free(data);
    /* the layout computed from the copy is the file's */
    struct buf raw;
    buf_init(&raw, 0);
    assert_int_equal(mailstore_read(&ms, 1, &raw, &error), MAILSTORE_OK);
    assert_int_equal(raw.len, strlen("Subject: three\nStatus: RO\n\nbody three\n"));
    assert_memory_equal(raw.data, "Subject: three\nStatus: RO\n\nbody three\n", raw.len);
    buf_free(&raw);
    mailstore_close(&ms);
}

/* RFC 7162 MODSEQ: raised by every change, kept by the journal and the index, UNCHANGEDSINCE. */
static void test_modseq(void **state)
{
    struct fixture *f = *state;
    struct mailstore ms;
    const char *error = NULL;
    assert_int_equal(mailstore_open(&ms, f->dir, "sjoerd", &error), MAILSTORE_OK);
    unsigned long long start = ms.highestmodseq;
    assert_true(start >= 1);
    for (size_t i = 0; i < ms.nmsgs; i++)
        assert_true(ms.msgs[i].modseq >= 1 && ms.msgs[i].modseq <= start);
    do_store(&ms, 1); /* message 2 */
    assert_true(ms.highestmodseq > start);
    assert_int_equal(ms.msgs[1].modseq, ms.highestmodseq);
    assert_true(ms.msgs[0].modseq <= start);
    unsigned long long two = ms.msgs[1].modseq;
    /* a STORE that changes nothing raises nothing */
    do_store(&ms, 1);
    assert_int_equal(ms.highestmodseq, two);
    /* UNCHANGEDSINCE below message 2's MODSEQ: 2 is left alone and reported, 1 is changed */
    uint32_t both[] = {1, 2}, *modified = NULL;
    size_t nmodified = 0;
    assert_int_equal(mailstore_store_if(&ms, both, 2, MAILSTORE_ADD, MBOX_FLAG_ANSWERED, NULL, 0, two - 1, &modified,
                                        &nmodified, &error),
                     MAILSTORE_OK);
    assert_int_equal(nmodified, 1);
    assert_int_equal(modified[0], 2);
    free(modified);
    assert_true(ms.msgs[0].flags & MBOX_FLAG_ANSWERED);
    assert_false(ms.msgs[1].flags & MBOX_FLAG_ANSWERED);
    unsigned long long one = ms.msgs[0].modseq;
    assert_true(one > two);
    /* an appended message gets a new one too */
    uint32_t uid = do_append(&ms, 3);
    assert_true(mailstore_gen_find(ms.gen, uid)->modseq > one);
    unsigned long long high = ms.highestmodseq;
    mailstore_close(&ms);
    /* a new process reads them back (index + journal) */
    mailstore_cache_clear();
    assert_int_equal(mailstore_open(&ms, f->dir, "sjoerd", &error), MAILSTORE_OK);
    assert_int_equal(ms.highestmodseq, high);
    assert_int_equal(ms.msgs[0].modseq, one);
    assert_int_equal(ms.msgs[1].modseq, two);
    /* an expunge raises HIGHESTMODSEQ and the folded index keeps every MODSEQ */
    uint32_t gone = 4;
    size_t removed = 0;
    assert_int_equal(mailstore_expunge(&ms, &gone, 1, &removed, &error), MAILSTORE_OK);
    assert_true(ms.highestmodseq > high);
    high = ms.highestmodseq;
    mailstore_close(&ms);
    mailstore_cache_clear();
    assert_int_equal(mailstore_open(&ms, f->dir, "sjoerd", &error), MAILSTORE_OK);
    assert_int_equal(ms.highestmodseq, high);
    assert_int_equal(ms.msgs[0].modseq, one);
    assert_int_equal(ms.msgs[1].modseq, two);
    mailstore_close(&ms);
    /* a version 2 index (no MODSEQ) is read: same UIDs, MODSEQ 1 */
    char *data;
    size_t len;
    assert_int_equal(fs_read_file(f->index, 1 << 20, &data, &len), 0);
    struct buf v2;
    buf_init(&v2, 0);
    unsigned v, next;
    unsigned long long hs;
    assert_int_equal(sscanf(data, "zolder-mbox-index 3 %u %u %llu", &v, &next, &hs), 3);
    buf_printf(&v2, "zolder-mbox-index 2 %u %u\n", v, next);
    char *line = strchr(data, '\n') + 1;
    for (char *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        size_t l = (size_t)(nl - line);
        if (strncmp(line, "keywords", 8) != 0)
            l = (size_t)((char *)memrchr(line, ' ', l) - line); /* without the MODSEQ */
        if ((char *)memchr(line, ' ', (size_t)(nl - line)) == NULL)
            l = (size_t)(nl - line);
        buf_append(&v2, line, l);
        buf_append_char(&v2, '\n');
    }
    free(data);
    buf_append_char(&v2, '\0');
    write_file(f->index, v2.data);
    buf_free(&v2);
    unlink(f->journal);
    mailstore_cache_clear();
    assert_int_equal(mailstore_open(&ms, f->dir, "sjoerd", &error), MAILSTORE_OK);
    assert_int_equal(ms.uidvalidity, v);
    assert_int_equal(ms.nmsgs, 4);
    assert_int_equal(ms.msgs[0].uid, 1);
    assert_int_equal(ms.msgs[0].modseq, 1);
    assert_true(ms.msgs[0].flags & MBOX_FLAG_ANSWERED);
    mailstore_close(&ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_appends_to_the_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_past_its_bound_is_folded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_between_any_two_steps_keeps_acknowledged_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_journal_line_is_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expunge_copies_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modseq, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
