/*
 * Unit tests for reference/queue and reference/deliver/local: the durable queue file
 * format, in-place recipient marks, and mailbox delivery that survives a torn write.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deliver/local.h"
#include "fsutil.h"
#include "queue/queue.h"
#include "xalloc.h"

struct fixture {
    char dir[64];
    struct queue q;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/zolder-test-queue-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    if (queue_open(&f->q, f->dir) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    queue_close(&f->q);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void make_envelope(struct queue_envelope *env)
{
    memset(env, 0, sizeof *env);
    env->sender = xstrdup("sjoerd@ecs.thuis");
    env->client_ip = xstrdup("127.0.1.5");
    env->helo = xstrdup("hccnet.nl with spaces");
    env->rdns = xstrdup("");
    env->proto = xstrdup("ESMTP");
    env->auth_user = xstrdup("");
    env->ret = xstrdup("");
    env->envid = xstrdup("-odd value%");
    env->body = xstrdup("8BITMIME");
    env->arrival = 1037484433;
    queue_envelope_add_rcpt(env, "bouke@zolder.thuis", "rfc822;bouke@zolder.thuis", "SUCCESS,FAILURE", false);
    queue_envelope_add_rcpt(env, "\"odd name\"@paprika", "", "", true);
}

static const char message[] = "Subject: Langs welke weg gaat mijn post?\r\n\r\nFrom here\r\nbody\r\n";

static void commit_message(struct fixture *f, char id[QUEUE_ID_LEN + 1])
{
    struct queue_envelope env;
    struct queue_writer w;
    make_envelope(&env);
    assert_int_equal(queue_writer_begin(&f->q, &env, &w), 0);
    assert_int_equal(queue_writer_write(&w, message, sizeof message - 1), 0);
    assert_int_equal(queue_writer_commit(&f->q, &w), 0);
    memcpy(id, w.id, QUEUE_ID_LEN + 1);
    queue_envelope_free(&env);
}

static void test_queue_round_trip(void **state)
{
    struct fixture *f = *state;
    char id[QUEUE_ID_LEN + 1];
    commit_message(f, id);
    assert_true(queue_id_valid(id));

    struct queue_msg msg;
    const char *error;
    assert_int_equal(queue_load(&f->q, id, &msg, &error), 0);
    assert_string_equal(msg.env.sender, "sjoerd@ecs.thuis");
    assert_string_equal(msg.env.helo, "hccnet.nl with spaces");
    assert_string_equal(msg.env.rdns, "");
    assert_string_equal(msg.env.envid, "-odd value%");
    assert_int_equal(msg.env.arrival, 1037484433);
    assert_int_equal(msg.env.nrcpts, 2);
    assert_string_equal(msg.env.rcpts[1].addr, "\"odd name\"@paprika");
    assert_true(msg.env.rcpts[1].expanded);
    assert_string_equal(msg.env.rcpts[0].notify, "SUCCESS,FAILURE");
    assert_int_equal(msg.env.rcpts[0].attempt, -1);
    assert_int_equal(msg.size, sizeof message - 1);
    struct buf data;
    buf_init(&data, 0);
    assert_int_equal(queue_read_data(&msg, &data), 0);
    assert_memory_equal(data.data, message, sizeof message - 1);
    buf_free(&data);

    /* Marks are in place: a reload sees them, and the file goes only when none is pending. */
    assert_int_equal(queue_set_attempt(&msg, 0, 4242), 0);
    assert_int_equal(queue_mark(&msg, 0, QUEUE_RCPT_DONE), 0);
    assert_int_equal(queue_remove_if_done(&f->q, &msg), 0);
    queue_msg_free(&msg);
    assert_int_equal(queue_load(&f->q, id, &msg, &error), 0);
    assert_int_equal(msg.env.rcpts[0].status, QUEUE_RCPT_DONE);
    assert_int_equal(msg.env.rcpts[0].attempt, 4242);
    assert_int_equal(msg.env.rcpts[1].status, QUEUE_RCPT_PENDING);
    assert_int_equal(queue_mark(&msg, 1, QUEUE_RCPT_FAILED), 0);
    assert_int_equal(queue_remove_if_done(&f->q, &msg), 1);
    queue_msg_free(&msg);
    assert_int_equal(queue_load(&f->q, id, &msg, &error), -1);
    assert_string_equal(error, "no such queue file");
}

/* The last deferral reason (Y line): in place, sanitised, cut, and survives a reload. */
static void check_deferral_reason(struct fixture *f, const char *id)
{
    struct queue_msg msg;
    const char *error;
    assert_int_equal(queue_load(&f->q, id, &msg, &error), 0);
    assert_true(msg.env.rcpts[0].reason_off > 0);
    assert_string_equal(msg.env.rcpts[0].reason, "");
    size_t size_before = msg.size;
    assert_int_equal(queue_set_reason(&msg, 0, "connect to smtp.example[1.2.3.4]:25: 100% refused\r\nX-Bad: 1", false), 0);
    assert_int_equal(queue_set_retry(&msg, 1764316800, 1, false), 0);
    queue_msg_free(&msg);
    assert_int_equal(queue_load(&f->q, id, &msg, &error), 0);
    assert_string_equal(msg.env.rcpts[0].reason, "connect to smtp.example[1.2.3.4]:25: 100% refused??X-Bad: 1");
    assert_int_equal(msg.size, size_before);
    /* a long reason is cut to what fits, never inside an escape; a shorter one replaces it whole */
    char longer[600];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    longer[100] = ' ';
    assert_int_equal(queue_set_reason(&msg, 0, longer, true), 0);
    queue_msg_free(&msg);
    assert_int_equal(queue_load(&f->q, id, &msg, &error), 0);
    size_t len = strlen(msg.env.rcpts[0].reason);
    assert_true(len > 100 && len <= QENV_REASON_LEN);
    assert_int_equal(msg.env.rcpts[0].reason[100], ' ');
    assert_int_equal(queue_set_reason(&msg, 0, "-", true), 0);
    queue_msg_free(&msg);
    assert_int_equal(queue_load(&f->q, id, &msg, &error), 0);
    assert_string_equal(msg.env.rcpts[0].reason, "-");
    assert_string_equal(msg.env.rcpts[0].addr, "bouke@zolder.thuis");
    queue_msg_free(&msg);

    /* A Y line must follow an R line, once, at its fixed width, without a bare blank. */
    char y[QENV_REASON_LINE_LEN + 1];
    queue_envelope_format_reason(y, "timeout");
    static const char head[] = "Z zolder-queue 1\nI 20QKBSX000THV273\nS a@b\nC 1.2.3.4 h - ESMTP -\nE - - -\n";
    static const char rline[] = "R P ffffffffffffffff - x@y - -\n";
    struct buf b;
    struct queue_envelope env;
    size_t off;
    buf_init(&b, 0);
    buf_printf(&b, "%s%s%s\nD\n", head, rline, y);
    assert_int_equal(queue_envelope_parse(b.data, b.len, "20QKBSX000THV273", &env, &off, &error), 0);
    assert_string_equal(env.rcpts[0].reason, "timeout");
    queue_envelope_free(&env);
    buf_reset(&b);
    buf_printf(&b, "%s%s\n%sD\n", head, y, rline);
    assert_int_equal(queue_envelope_parse(b.data, b.len, "20QKBSX000THV273", &env, &off, &error), -1);
    buf_reset(&b);
    buf_printf(&b, "%s%s%s\n%s\nD\n", head, rline, y, y);
    assert_int_equal(queue_envelope_parse(b.data, b.len, "20QKBSX000THV273", &env, &off, &error), -1);
    buf_reset(&b);
    buf_printf(&b, "%s%sY timeout\nD\n", head, rline);
    assert_int_equal(queue_envelope_parse(b.data, b.len, "20QKBSX000THV273", &env, &off, &error), -1);
    buf_reset(&b);
    y[5] = ' ';
    buf_printf(&b, "%s%s%s\nD\n", head, rline, y);
    assert_int_equal(queue_envelope_parse(b.data, b.len, "20QKBSX000THV273", &env, &off, &error), -1);
    buf_free(&b);
}

/* The remote retry state (and the deferral reasons beside it) survive a reload (a zolderd
 * restart) and are written in place. */
static void test_queue_retry_state(void **state)
{
    struct fixture *f = *state;
    char id[QUEUE_ID_LEN + 1];
    commit_message(f, id);
    struct queue_msg msg;
    const char *error;
    assert_int_equal(queue_load(&f->q, id, &msg, &error), 0);
    assert_true(msg.env.retry_off > 0);
    assert_int_equal(msg.env.attempts, 0);
    assert_int_equal(msg.env.next_attempt, 0);
    assert_false(msg.env.warned);
    size_t size_before = msg.size;
    assert_int_equal(queue_set_retry(&msg, 1764316800, 7, true), 0);
    queue_msg_free(&msg);
    assert_int_equal(queue_load(&f->q, id, &msg, &error), 0);
    assert_int_equal(msg.env.next_attempt, 1764316800);
    assert_int_equal(msg.env.attempts, 7);
    assert_true(msg.env.warned);
    assert_int_equal(msg.size, size_before);
    assert_string_equal(msg.env.rcpts[0].addr, "bouke@zolder.thuis");
    queue_msg_free(&msg);
    check_deferral_reason(f, id);

    /* A file from before the X line: parses, state in memory only. */
    static const char old[] = "Z zolder-queue 1\nI 20QKBSX000THV273\nS a@b\nC 1.2.3.4 h - ESMTP -\n"
                              "E - - -\nR P ffffffffffffffff - x@y - -\nD\nbody\r\n";
    struct queue_envelope env;
    size_t off;
    assert_int_equal(queue_envelope_parse(old, sizeof old - 1, "20QKBSX000THV273", &env, &off, &error), 0);
    assert_int_equal(env.retry_off, -1);
    assert_int_equal(env.attempts, 0);
    queue_envelope_free(&env);
    /* A damaged X line is refused, not half-read. */
    static const char bad[] = "Z zolder-queue 1\nI 20QKBSX000THV273\nS a@b\nC 1.2.3.4 h - ESMTP -\n"
                              "E - - -\nX 00000000000000zz 00000001 -\nD\n";
    assert_int_equal(queue_envelope_parse(bad, sizeof bad - 1, "20QKBSX000THV273", &env, &off, &error), -1);
}

static size_t tmp_entries(struct fixture *f)
{
    DIR *d = opendir(f->q.tmp_dir);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* A report (bounce) and its parent's marks: durable together, and finished after a crash. */
static void test_queue_commit_marked_and_recovery(void **state)
{
    struct fixture *f = *state;
    char parent[QUEUE_ID_LEN + 1];
    commit_message(f, parent);
    struct queue_msg pm;
    const char *error;
    assert_int_equal(queue_load(&f->q, parent, &pm, &error), 0);

    static const char report_id[] = "20QKBSX0BOUNCE01";
    struct queue_envelope env;
    struct queue_writer w;
    make_envelope(&env);
    assert_int_equal(queue_writer_begin_id(&f->q, report_id, &env, &w), 0);
    assert_int_equal(queue_writer_write(&w, message, sizeof message - 1), 0);
    size_t rcpts[] = {1};
    assert_int_equal(queue_commit_marked(&f->q, &w, &pm, rcpts, 1, QUEUE_RCPT_FAILED), 0);
    assert_int_equal(pm.env.rcpts[1].status, QUEUE_RCPT_FAILED);
    queue_msg_free(&pm);
    assert_int_equal(queue_load(&f->q, parent, &pm, &error), 0);
    assert_int_equal(pm.env.rcpts[0].status, QUEUE_RCPT_PENDING);
    assert_int_equal(pm.env.rcpts[1].status, QUEUE_RCPT_FAILED);
    queue_msg_free(&pm);
    struct queue_msg rm;
    assert_int_equal(queue_load(&f->q, report_id, &rm, &error), 0);
    queue_msg_free(&rm);
    assert_int_equal(tmp_entries(f), 0);

    /* A crash after the commit point: tmp/ID.ready and tmp/ID.marks are left; the start
     * finishes both. One before it (marks only): dropped, the parent untouched. */
    char path[512], text[64];
    static const char crashed[] = "20QKBSX0BOUNCE02";
    assert_int_equal(queue_writer_begin_id(&f->q, crashed, &env, &w), 0);
    assert_int_equal(queue_writer_write(&w, message, sizeof message - 1), 0);
    assert_int_equal(fsync(w.fd), 0);
    close(w.fd);
    w.fd = -1;
    snprintf(path, sizeof path, "%s/%s.ready", f->q.tmp_dir, crashed);
    assert_int_equal(rename(w.tmp_path, path), 0);
    free(w.tmp_path);
    snprintf(path, sizeof path, "%s/%s.marks", f->q.tmp_dir, crashed);
    snprintf(text, sizeof text, "%s F 0\n", parent);
    FILE *mf = fopen(path, "w");
    fputs(text, mf);
    fclose(mf);
    snprintf(path, sizeof path, "%s/20QKBSX0BOUNCE03.marks", f->q.tmp_dir);
    mf = fopen(path, "w");
    fputs(text, mf);
    fclose(mf);
    queue_envelope_free(&env);
    assert_int_equal(tmp_entries(f), 3);
    queue_clean_tmp(&f->q);
    assert_int_equal(tmp_entries(f), 0);
    assert_int_equal(queue_load(&f->q, crashed, &rm, &error), 0);
    queue_msg_free(&rm);
    assert_int_equal(queue_load(&f->q, "20QKBSX0BOUNCE03", &rm, &error), -1);
    assert_int_equal(queue_load(&f->q, parent, &pm, &error), 0);
    assert_int_equal(pm.env.rcpts[0].status, QUEUE_RCPT_FAILED);
    queue_msg_free(&pm);
}

static void test_queue_hold_release_delete_list(void **state)
{
    struct fixture *f = *state;
    char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1];
    commit_message(f, a);
    commit_message(f, b);
    assert_string_not_equal(a, b);
    assert_int_equal(queue_hold(&f->q, a), 0);
    char **ids;
    size_t n;
    queue_list(&f->q, false, &ids, &n);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], b);
    queue_list_free(ids, n);
    queue_list(&f->q, true, &ids, &n);
    assert_int_equal(n, 2);
    queue_list_free(ids, n);
    struct queue_msg msg;
    const char *error;
    assert_int_equal(queue_load(&f->q, a, &msg, &error), 0);
    assert_true(msg.held);
    queue_msg_free(&msg);
    assert_int_equal(queue_release(&f->q, a), 0);
    assert_int_equal(queue_delete(&f->q, a), 0);
    assert_int_equal(queue_delete(&f->q, a), -1);
    assert_int_equal(queue_delete(&f->q, "../../etc/passwd"), -1);
    assert_int_equal(queue_hold(&f->q, "nonsense"), -1);
}

static void test_queue_rejects_damaged_files(void **state)
{
    struct fixture *f = *state;
    char id[QUEUE_ID_LEN + 1];
    commit_message(f, id);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", f->q.msg_dir, id);
    assert_int_equal(truncate(path, 40), 0);
    struct queue_msg msg;
    const char *error;
    assert_int_equal(queue_load(&f->q, id, &msg, &error), -1);
    assert_string_equal(error, "no data marker (truncated queue file)");
}

static void test_queue_envelope_parser_is_strict(void **state)
{
    (void)state;
    static const char *const bad[] = {
        /* duplicate sender line */
        "Z zolder-queue 1\nI 20QKBSX000THV273\nS a@b\nS c@d\nC 1.2.3.4 h - ESMTP -\nE - - -\nD\n",
        /* status byte not at its column (double blank) */
        "Z zolder-queue 1\nI 20QKBSX000THV273\nS a@b\nC 1.2.3.4 h - ESMTP -\nE - - -\n"
        "R  P ffffffffffffffff - x@y - -\nD\n",
        /* unknown status */
        "Z zolder-queue 1\nI 20QKBSX000THV273\nS a@b\nC 1.2.3.4 h - ESMTP -\nE - - -\n"
        "R Q ffffffffffffffff - x@y - -\nD\n",
        /* missing E line */
        "Z zolder-queue 1\nI 20QKBSX000THV273\nS a@b\nC 1.2.3.4 h - ESMTP -\nD\n",
        /* another message's id */
        "Z zolder-queue 1\nI 20QKBSX000THV999\nS a@b\nC 1.2.3.4 h - ESMTP -\nE - - -\nD\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct queue_envelope env;
        size_t off;
        const char *error = NULL;
        assert_int_equal(queue_envelope_parse(bad[i], strlen(bad[i]), "20QKBSX000THV273", &env, &off, &error), -1);
        assert_non_null(error);
    }
}

static char *read_all(const char *path, size_t *len)
{
    char *data;
    if (fs_read_file(path, 1 << 20, &data, len) < 0)
        return NULL;
    return data;
}

static void test_local_mbox_delivery_is_idempotent(void **state)
{
    struct fixture *f = *state;
    char id[QUEUE_ID_LEN + 1];
    commit_message(f, id);
    struct queue_msg msg;
    const char *error;
    assert_int_equal(queue_load(&f->q, id, &msg, &error), 0);
    struct buf data;
    buf_init(&data, 0);
    assert_int_equal(queue_read_data(&msg, &data), 0);
    char spool[128];
    snprintf(spool, sizeof spool, "%s/spool/mail", f->dir);
    struct local_target t = {.user = "bouke", .spool_dir = spool,
                             .hostname = "zolder.thuis"};
    assert_int_equal(fs_mkdir_p(spool, 0700), 0);

    /* An earlier message already in the box. */
    char path[192];
    snprintf(path, sizeof path, "%s/bouke", spool);
    const char earlier[] = "From a@b Sat Nov 16 23:00:00 2002\nSubject: x\n\nold\n\n";
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, earlier, sizeof earlier - 1), (ssize_t)(sizeof earlier - 1));
    close(fd);

    assert_int_equal(local_deliver(&t, &msg, 0, &data, &error), LOCAL_OK);
    size_t len;
    char *box = read_all(path, &len);
    struct buf entry;
    buf_init(&entry, 0);
    local_render_mbox(&msg, "bouke@zolder.thuis", &data, &entry);
    assert_int_equal(len, sizeof earlier - 1 + entry.len);
    assert_memory_equal(box + sizeof earlier - 1, entry.data, entry.len);
    assert_non_null(strstr(box, "\n>From here\n"));
    assert_non_null(strstr(box, "Delivered-To: bouke@zolder.thuis\n"));
    assert_null(strstr(box, "\r"));
    free(box);

    /* Crash after the mailbox fsync, before the queue mark: the retry finds it and stops. */
    assert_int_equal(msg.env.rcpts[0].attempt, (long long)(sizeof earlier - 1));
    assert_int_equal(local_deliver(&t, &msg, 0, &data, &error), LOCAL_OK);
    box = read_all(path, &len);
    assert_int_equal(len, sizeof earlier - 1 + entry.len);
    free(box);

    /* Torn write (kill -9 mid-append): the retry truncates it and writes the whole entry. */
    assert_int_equal(truncate(path, (off_t)(sizeof earlier - 1 + entry.len / 2)), 0);
    assert_int_equal(local_deliver(&t, &msg, 0, &data, &error), LOCAL_OK);
    box = read_all(path, &len);
    assert_int_equal(len, sizeof earlier - 1 + entry.len);
    assert_memory_equal(box + sizeof earlier - 1, entry.data, entry.len);
    free(box);
    assert_int_equal(access(path, F_OK), 0);
    char lock[200];
    snprintf(lock, sizeof lock, "%s.lock", path);
    assert_int_equal(access(lock, F_OK), -1);

    buf_free(&entry);
    buf_free(&data);
    queue_msg_free(&msg);
}

static void write_lock(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_local_stale_and_live_dotlocks(void **state)
{
    struct fixture *f = *state;
    char id[QUEUE_ID_LEN + 1];
    commit_message(f, id);
    struct queue_msg msg;
    const char *error;
    assert_int_equal(queue_load(&f->q, id, &msg, &error), 0);
    struct buf data;
    buf_init(&data, 0);
    assert_int_equal(queue_read_data(&msg, &data), 0);
    char spool[128], lock[192];
    snprintf(spool, sizeof spool, "%s/spool/mail", f->dir);
    snprintf(lock, sizeof lock, "%s/bouke.lock", spool);
    assert_int_equal(fs_mkdir_p(spool, 0700), 0);
    struct local_target t = {.user = "bouke", .spool_dir = spool,
                             .hostname = "zolder.thuis"};

    /* A lock held by a live process without a PID in it (a mail reader): deferred. */
    write_lock(lock, "");
    assert_int_equal(local_deliver(&t, &msg, 0, &data, &error), LOCAL_DEFER);
    assert_string_equal(error, "mailbox is locked");
    /* A lock naming a live process: deferred too. */
    char live[32];
    snprintf(live, sizeof live, "%ld\n", (long)getppid());
    write_lock(lock, live);
    assert_int_equal(local_deliver(&t, &msg, 0, &data, &error), LOCAL_DEFER);
    /* A lock left by a process that is gone (zolderd after kill -9): removed at once. */
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    assert_true(child > 0);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    char dead[32];
    snprintf(dead, sizeof dead, "%ld\n", (long)child);
    write_lock(lock, dead);
    assert_int_equal(local_deliver(&t, &msg, 0, &data, &error), LOCAL_OK);
    assert_int_equal(access(lock, F_OK), -1);
    /* Our own PID from an earlier life of this process: stale as well. */
    snprintf(live, sizeof live, "%ld\n", (long)getpid());
    write_lock(lock, live);
    assert_int_equal(local_deliver(&t, &msg, 0, &data, &error), LOCAL_OK);
    buf_free(&data);
    queue_msg_free(&msg);
}

static void test_local_maildir_delivery_is_idempotent(void **state)
{
    struct fixture *f = *state;
    char id[QUEUE_ID_LEN + 1];
    commit_message(f, id);
    struct queue_msg msg;
    const char *error;
    assert_int_equal(queue_load(&f->q, id, &msg, &error), 0);
    struct buf data;
    buf_init(&data, 0);
    assert_int_equal(queue_read_data(&msg, &data), 0);
    char spool[128];
    snprintf(spool, sizeof spool, "%s/maildir", f->dir);
    struct local_target t = {.user = "bouke", .spool_dir = spool,
                             .hostname = "zolder.thuis", .maildir = true};
    assert_int_equal(local_deliver(&t, &msg, 0, &data, &error), LOCAL_OK);
    assert_int_equal(local_deliver(&t, &msg, 0, &data, &error), LOCAL_OK);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test $(ls '%s/bouke/new' | wc -l) -eq 1", spool);
    assert_int_equal(system(cmd), 0);
    struct local_target bad = t;
    bad.user = "../evil";
    assert_int_equal(local_deliver(&bad, &msg, 0, &data, &error), LOCAL_DEFER);
    assert_string_equal(error, "invalid mailbox name");
    buf_free(&data);
    queue_msg_free(&msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queue_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_hold_release_delete_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_rejects_damaged_files, setup, teardown),
        cmocka_unit_test(test_queue_envelope_parser_is_strict),
        cmocka_unit_test_setup_teardown(test_queue_retry_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_commit_marked_and_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_mbox_delivery_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_stale_and_live_dotlocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_maildir_delivery_is_idempotent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
