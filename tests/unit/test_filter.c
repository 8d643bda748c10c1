/*
 * Unit tests for reference/filter: verdicts of filter_scan on whole messages (banned name,
 * EICAR, PE content under a harmless name, a zip with a banned name, doubtful MIME, clean
 * mail), the admin notice's seed-shaped lines, and clamd's INSTREAM answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/ptrace.h>
#include <sys/socket.h>

#include <event2/event.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include "filter/clamd.h"
#include "filter/filter.h"

static char eicar[80];

static int setup(void **state)
{
    (void)state;
    snprintf(eicar, sizeof eicar, "%s%s", "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-",
             "ANTIVIRUS-TEST-FILE!$H+H*");
    return 0;
}

struct fixture {
    struct zconf conf;
    struct filter filter;
};

static void fixture_open(struct fixture *fx)
{
    zconf_defaults(&fx->conf, "/tmp");
    struct cfg_error err;
    assert_true(filter_init(&fx->filter, &fx->conf, NULL, &err));
}

static void fixture_close(struct fixture *fx)
{
    filter_free(&fx->filter);
    zconf_free(&fx->conf);
}

static const char sober[] =
    "Received: from cstesucgr.gov (cstesucgr.gov [198.51.100.7])\r\n\tby relay.example; Sat, 16 Nov 2002 22:03:00 +0000\r\n"
    "From: <>\r\nSubject: Your IP was logged\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
    "--b\r\nContent-Type: text/plain\r\n\r\n%s\r\n"
    "--b\r\nContent-Type: application/octet-stream; name=\"Liste.exe\"\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b--\r\n";

static void test_scan_sober(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_open(&fx);
    char msg[2048];
    snprintf(msg, sizeof msg, sober, eicar);
    struct filter_verdict v;
    filter_scan(&fx.filter, msg, strlen(msg), &v);
    assert_true(filter_verdict_quarantine(&v));
    assert_string_equal(v.virus, "Eicar-Test-Signature");
    assert_string_equal(v.scanner, FILTER_BUILTIN_SCANNER);
    assert_string_equal(v.banned_ext, ".exe");
    assert_string_equal(v.banned_name, "Liste.exe");
    assert_string_equal(v.doubt, "");

    /* the notice */
    struct queue_msg qm;
    memset(&qm, 0, sizeof qm);
    strcpy(qm.id, "20QKLTZ00087S9KV");
    qm.env.sender = "";
    qm.env.client_ip = "127.0.0.1";
    queue_envelope_add_rcpt(&qm.env, "bouke@localhost.zolder.thuis", "", "", false);
    qm.env.rcpts[0].status = QUEUE_RCPT_PENDING;
    struct buf out;
    buf_init(&out, 0);
    filter_notice_render(&v, &qm, msg, strlen(msg), "postmaster@zolder.thuis", "zolder.thuis",
                         "Sat, 16 Nov 2002 23:07:13 +0100", &out);
    static const char *const lines[] = {
        "A virus (Eicar-Test-Signature) was found.\r\n",
        "A banned name (.exe) was found.\r\n",
        "Scanner detecting a virus: zolder built-in signatures\r\n",
        "The mail originated from: <>\r\n",
        "According to the 'Received:' trace, the message originated at:\r\n"
        "   cstesucgr.gov (cstesucgr.gov [198.51.100.7])\r\n",
        "Notification to sender will not be mailed.\r\n",
        "The message WAS NOT delivered to:\r\n<bouke@localhost.zolder.thuis>:\r\n",
        "To: <postmaster@zolder.thuis>\r\n",
        "Auto-Submitted: auto-generated\r\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        if (!strstr(out.data, lines[i]))
            fail_msg("notice lacks %s in:\n%s", lines[i], out.data);
    buf_free(&out);
    /* with alias expansion known: where the recipient's mail would have gone */
    char *expanded[] = {"admin, sjoerd"};
    buf_init(&out, 0);
    filter_notice_render_expanded(&v, &qm, msg, strlen(msg), "postmaster@zolder.thuis", "zolder.thuis",
                                  "Sat, 16 Nov 2002 23:07:13 +0100", expanded, &out);
    assert_non_null(strstr(out.data, "<bouke@localhost.zolder.thuis> (for: admin, sjoerd):\r\n"
                                     "   quarantined as 20QKLTZ00087S9KV\r\n"));
    buf_free(&out);
    free(qm.env.rcpts[0].addr);
    free(qm.env.rcpts[0].orcpt);
    free(qm.env.rcpts[0].notify);
    free(qm.env.rcpts);
    fixture_close(&fx);
}

static void test_scan_verdicts(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_open(&fx);
    struct filter_verdict v;

    const char *clean = "From: a@b\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
                        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
                        "--b\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n\r\n%PDF\r\n--b--\r\n";
    filter_scan(&fx.filter, clean, strlen(clean), &v);
    assert_false(filter_verdict_quarantine(&v));
    assert_string_equal(v.tempfail, "");

    /* a uuencoded attachment in a plain, non-MIME body: its name is banned */
    const char *uu = "From: a@b\r\nSubject: oud\r\n\r\nZie bijlage.\r\n\r\nbegin 644 Liste.exe\r\n"
                     "#0V%T\r\n`\r\nend\r\n";
    filter_scan(&fx.filter, uu, strlen(uu), &v);
    assert_string_equal(v.banned_ext, ".exe");
    assert_string_equal(v.banned_name, "Liste.exe");
    /* and a harmless uuencoded name passes */
    const char *uu_ok = "Subject: oud\r\n\r\nbegin 644 foto.jpg\r\n#0V%T\r\n`\r\nend\r\n";
    filter_scan(&fx.filter, uu_ok, strlen(uu_ok), &v);
    assert_false(filter_verdict_quarantine(&v));

    /* a PE executable named like a picture */
    char pe[128];
    memset(pe, 0, sizeof pe);
    pe[0] = 'M';
    pe[1] = 'Z';
    pe[0x3c] = 0x40;
    memcpy(pe + 0x40, "PE\0\0", 4);
    struct buf msg;
    buf_init(&msg, 0);
    buf_append_str(&msg, "MIME-Version: 1.0\r\nContent-Type: image/jpeg; name=\"foto.jpg\"\r\n\r\n");
    buf_append(&msg, pe, sizeof pe);
    filter_scan(&fx.filter, msg.data, msg.len, &v);
    assert_string_equal(v.banned_ext, ".exe-ms");
    buf_free(&msg);

    /* EICAR in the plain body of a non-MIME message */
    char plain[256];
    snprintf(plain, sizeof plain, "Subject: x\r\n\r\n%s\r\n", eicar);
    filter_scan(&fx.filter, plain, strlen(plain), &v);
    assert_string_equal(v.virus, "Eicar-Test-Signature");

    /* doubtful structure */
    const char *broken = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\nhi\r\n--x--\r\n";
    filter_scan(&fx.filter, broken, strlen(broken), &v);
    assert_true(filter_verdict_quarantine(&v));
    assert_non_null(strstr(v.doubt, "malformed MIME"));

    /* banned_extensions empty: names pass, signatures still count */
    free(fx.conf.banned_extensions);
    fx.conf.banned_extensions = strdup("");
    filter_free(&fx.filter);
    struct cfg_error err;
    assert_true(filter_init(&fx.filter, &fx.conf, NULL, &err));
    const char *exe = "MIME-Version: 1.0\r\nContent-Type: application/octet-stream; name=\"a.exe\"\r\n\r\nxx\r\n";
    filter_scan(&fx.filter, exe, strlen(exe), &v);
    assert_false(filter_verdict_quarantine(&v));
    fixture_close(&fx);
}

static void test_signature_file_errors(void **state)
{
    (void)state;
    struct zconf conf;
    zconf_defaults(&conf, "/tmp");
    char path[] = "/tmp/zolder-test-sigs-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *bad = "# ok\nGood.One hex 01020304\nBad.One hex 0102\n";
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    free(conf.virus_signatures);
    conf.virus_signatures = strdup(path);
    struct filter f;
    struct cfg_error err;
    assert_false(filter_init(&f, &conf, NULL, &err));
    filter_free(&f);
    char want[128];
    snprintf(want, sizeof want, "%s:3:", path);
    assert_non_null(strstr(err.text, want));
    unlink(path);
    free(conf.virus_signatures);
    conf.virus_signatures = strdup("/nonexistent/sigs");
    assert_false(filter_init(&f, &conf, NULL, &err));
    filter_free(&f);
    assert_non_null(strstr(err.text, "cannot read"));
    zconf_free(&conf);
}

static void test_clamd_replies(void **state)
{
    (void)state;
    char virus[64];
    assert_int_equal(clamd_parse_reply("stream: OK", virus, sizeof virus), CLAMD_CLEAN);
    assert_int_equal(clamd_parse_reply("stream: Eicar-Signature FOUND", virus, sizeof virus), CLAMD_FOUND);
    assert_string_equal(virus, "Eicar-Signature");
    assert_int_equal(clamd_parse_reply("stream: Win.Test.EICAR_HDB-1 FOUND", virus, sizeof virus), CLAMD_FOUND);
    assert_string_equal(virus, "Win.Test.EICAR_HDB-1");
    assert_int_equal(clamd_parse_reply("INSTREAM size limit exceeded. ERROR", virus, sizeof virus), CLAMD_ERROR);
    assert_int_equal(clamd_parse_reply("stream: lstat() failed ERROR", virus, sizeof virus), CLAMD_ERROR);
    assert_int_equal(clamd_parse_reply("", virus, sizeof virus), CLAMD_ERROR);
    assert_int_equal(clamd_parse_reply("stream:  FOUND", virus, sizeof virus), CLAMD_ERROR); /* no name */
    /* a long name is cut, never overflows */
    char longreply[300];
    memset(longreply, 'A', sizeof longreply);
    memcpy(longreply, "stream: ", 8);
    strcpy(longreply + 280, " FOUND");
    assert_int_equal(clamd_parse_reply(longreply, virus, sizeof virus), CLAMD_FOUND);
    assert_int_equal(strlen(virus), sizeof virus - 1);
    /* nobody listening */
    char error[256];
    assert_int_equal(clamd_scan("unix:/nonexistent/clamd.ctl", "x", 1, 1000, virus, sizeof virus, error,
                                sizeof error), CLAMD_ERROR);
    assert_non_null(strstr(error, "cannot connect"));
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void queue_one(struct queue *q, const char *id, const char *data)
{
    struct queue_envelope env = {
        .sender = "", .client_ip = "127.0.0.1", .helo = "x", .rdns = "", .proto = "ESMTP",
        .auth_user = "", .ret = "", .envid = "", .body = "", .arrival = 1,
    };
    queue_envelope_add_rcpt(&env, "bouke@zolder.thuis", "", "", false);
    struct queue_writer w;
    assert_int_equal(queue_writer_begin_id(q, id, &env, &w), 0);
    assert_int_equal(queue_writer_write(&w, data, strlen(data)), 0);
    assert_int_equal(queue_writer_commit(q, &w), 0);
    free(env.rcpts[0].addr);
    free(env.rcpts[0].orcpt);
    free(env.rcpts[0].notify);
    free(env.rcpts);
}

/*
 * The queue side: clean -> marked and passed; banned -> notice queued and message moved;
 * a crash after the notice and before the move (simulated by putting the message back) does
 * not make a second notice; release brings it back marked, so it passes without a rescan.
 */
static void test_filter_message_queue(void **state)
{
    (void)state;
    char dir[] = "/tmp/zolder-test-filter-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fixture fx;
    zconf_defaults(&fx.conf, "/tmp");
    free(fx.conf.state_dir);
    fx.conf.state_dir = strdup(dir);
    struct queue q;
    assert_int_equal(queue_open(&q, dir), 0);
    struct cfg_error err;
    assert_true(filter_init(&fx.filter, &fx.conf, &q, &err));

    const char *id_clean = "20QKLTZ000000001", *id_bad = "20QKLTZ000000002";
    queue_one(&q, id_clean, "Subject: fine\r\n\r\nhello\r\n");
    bool notice = true;
    assert_int_equal(filter_message(&fx.filter, id_clean, &notice), FILTER_PASS);
    assert_false(notice);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", q.msg_dir, id_clean);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_mode & S_IXUSR);
    assert_int_equal(filter_message(&fx.filter, id_clean, &notice), FILTER_PASS); /* no rescan needed */

    const char *bad = "MIME-Version: 1.0\r\nContent-Type: application/octet-stream; name=\"a.exe\"\r\n\r\nMZ\r\n";
    queue_one(&q, id_bad, bad);
    assert_int_equal(filter_message(&fx.filter, id_bad, &notice), FILTER_QUARANTINED);
    assert_true(notice);
    assert_int_equal(count_files(q.msg_dir), 2); /* the clean one and the notice */
    char qdir[512];
    snprintf(qdir, sizeof qdir, "%s/quarantine", dir);
    assert_int_equal(count_files(qdir), 2); /* the message and its verdict */
    struct stat qst;
    assert_int_equal(stat(qdir, &qst), 0);
    assert_int_equal(qst.st_mode & 0777, 0700);
    struct buf verdict;
    buf_init(&verdict, 0);
    assert_int_equal(quarantine_verdict(dir, id_bad, &verdict), 0);
    assert_string_equal(verdict.data, "banned=.exe (a.exe)");
    buf_free(&verdict);
    assert_int_equal(filter_message(&fx.filter, id_bad, &notice), FILTER_GONE);

    /* "crash" between the notice and the move: the message is in the queue again */
    char *qpath = quarantine_path(dir, id_bad);
    snprintf(path, sizeof path, "%s/%s", q.msg_dir, id_bad);
    assert_int_equal(rename(qpath, path), 0);
    assert_int_equal(filter_message(&fx.filter, id_bad, &notice), FILTER_QUARANTINED);
    assert_int_equal(count_files(q.msg_dir), 2); /* still one notice */

    char **ids;
    size_t n;
    assert_int_equal(quarantine_list(dir, &ids, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], id_bad);
    queue_list_free(ids, n);

    /* release: back in the queue, marked: passes without a scan */
    assert_int_equal(quarantine_release(dir, id_bad), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_mode & S_IXUSR);
    assert_int_equal(filter_message(&fx.filter, id_bad, &notice), FILTER_PASS);
    assert_int_equal(count_files(qdir), 0);
    assert_int_equal(quarantine_release(dir, id_bad), -1);
    assert_null(quarantine_path(dir, "../../etc/passwd"));
    assert_int_equal(quarantine_delete(dir, "../x"), -1);

    /* the scanner process dies while a message is with it: a crash quarantines (doubtful),
     * anything else (SIGKILL here) defers; the next message gets a new scanner process */
    const char *id_c1 = "20QKLTZ000000003", *id_c2 = "20QKLTZ000000004", *id_c3 = "20QKLTZ000000005";
    queue_one(&q, id_c1, "Subject: one\r\n\r\nhello\r\n");
    queue_one(&q, id_c2, "Subject: two\r\n\r\nhello\r\n");
    queue_one(&q, id_c3, "Subject: three\r\n\r\nhello\r\n");
    assert_true(fx.filter.worker_pid > 0);
    assert_int_equal(kill(fx.filter.worker_pid, SIGSEGV), 0);
    assert_int_equal(filter_message(&fx.filter, id_c1, &notice), FILTER_QUARANTINED);
    verdict.len = 0;
    buf_init(&verdict, 0);
    assert_int_equal(quarantine_verdict(dir, id_c1, &verdict), 0);
    assert_string_equal(verdict.data, "doubt=the scanner crashed on it (signal 11)");
    buf_free(&verdict);
    assert_int_equal(fx.filter.worker_pid, 0);
    assert_int_equal(filter_message(&fx.filter, id_c2, &notice), FILTER_PASS); /* a new process */
    assert_true(fx.filter.worker_pid > 0);
    assert_int_equal(kill(fx.filter.worker_pid, SIGKILL), 0);
    assert_int_equal(filter_message(&fx.filter, id_c3, &notice), FILTER_DEFERRED);
    /* SIGSYS is the system-call filter's kill: deferred (never delivered unscanned), not a crash */
    assert_int_equal(filter_message(&fx.filter, id_c3, &notice), FILTER_PASS);
    const char *id_c4 = "20QKLTZ000000006";
    queue_one(&q, id_c4, "Subject: four\r\n\r\nhello\r\n");
    assert_true(fx.filter.worker_pid > 0);
    assert_int_equal(kill(fx.filter.worker_pid, SIGSYS), 0);
    assert_int_equal(filter_message(&fx.filter, id_c4, &notice), FILTER_DEFERRED);
    assert_int_equal(fx.filter.worker_pid, 0);
    assert_int_equal(quarantine_verdict(dir, id_c4, &verdict), -1); /* not quarantined */
    assert_int_equal(filter_message(&fx.filter, id_c4, &notice), FILTER_PASS); /* a new process */

    free(qpath);
    filter_free(&fx.filter);
    queue_close(&q);
    zconf_free(&fx.conf);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The asynchronous pool: verdicts come back as events; an id in flight is not scanned twice. */
struct async_seen {
    struct event_base *base;
    char ids[8][32];
    enum filter_action acts[8];
    bool notices[8];
    size_t n;
};

static void async_done(void *ctx, const char *id, enum filter_action action, bool notice)
{
    struct async_seen *seen = ctx;
    if (seen->n < 8) {
        snprintf(seen->ids[seen->n], sizeof seen->ids[0], "%s", id);
        seen->acts[seen->n] = action;
        seen->notices[seen->n] = notice;
    }
    if (++seen->n == 3)
        event_base_loopexit(seen->base, NULL);
}

static enum filter_action async_action(const struct async_seen *seen, const char *id)
{
    for (size_t i = 0; i < seen->n; i++)
        if (strcmp(seen->ids[i], id) == 0)
            return seen->acts[i];
    fail_msg("no verdict for %s", id);
    return FILTER_GONE;
}

static void test_filter_async(void **state)
{
    (void)state;
    char dir[] = "/tmp/zolder-test-async-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fixture fx;
    zconf_defaults(&fx.conf, "/tmp");
    free(fx.conf.state_dir);
    fx.conf.state_dir = strdup(dir);
    struct queue q;
    assert_int_equal(queue_open(&q, dir), 0);
    struct cfg_error err;
    assert_true(filter_init(&fx.filter, &fx.conf, &q, &err));
    struct async_seen seen = {.base = event_base_new()};
    filter_async_start(&fx.filter, seen.base, 2, async_done, &seen);
    const char *a = "20QKLTZ0000000A1", *b = "20QKLTZ0000000A2", *c = "20QKLTZ0000000A3";
    queue_one(&q, a, "Subject: one\r\n\r\nhello\r\n");
    char bad[256];
    snprintf(bad, sizeof bad, "Subject: two\r\n\r\n%s\r\n", eicar);
    queue_one(&q, b, bad);
    queue_one(&q, c, "Subject: three\r\n\r\nhello\r\n");
    /* three messages, two scanner processes: the third waits; a resubmit is not a rescan */
    assert_int_equal(filter_submit(&fx.filter, a), FILTER_PENDING);
    assert_int_equal(filter_submit(&fx.filter, b), FILTER_PENDING);
    assert_int_equal(filter_submit(&fx.filter, c), FILTER_PENDING);
    assert_int_equal(filter_submit(&fx.filter, a), FILTER_PENDING);
    assert_int_equal(filter_async_in_flight(&fx.filter), 3);
    assert_int_equal(filter_submit(&fx.filter, "20QKLTZ0000000Z9"), FILTER_GONE);
    assert_int_equal(seen.n, 0); /* nothing decided while the loop did not run */
    struct timeval limit = {30, 0};
    event_base_loopexit(seen.base, &limit);
    event_base_dispatch(seen.base);
    assert_int_equal(seen.n, 3);
    assert_int_equal(async_action(&seen, a), FILTER_PASS);
    assert_int_equal(async_action(&seen, b), FILTER_QUARANTINED);
    assert_int_equal(async_action(&seen, c), FILTER_PASS);
    assert_int_equal(filter_async_in_flight(&fx.filter), 0);
    /* marked now: passed at once, no rescan */
    assert_int_equal(filter_submit(&fx.filter, a), FILTER_PASS);
    assert_int_equal(filter_submit(&fx.filter, b), FILTER_GONE);
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s/filter-tmp", dir);
    assert_int_equal(count_files(tmp), 0); /* the private folders went with their verdicts */
    struct stat st;
    assert_int_equal(stat(tmp, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    filter_free(&fx.filter);
    event_base_free(seen.base);
    queue_close(&q);
    zconf_free(&fx.conf);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The scanner's sandbox: it may write in STATE_DIR/filter-tmp, but not read the queue. */
static void test_scanner_sandbox(void **state)
{
    (void)state;
    char dir[] = "/tmp/zolder-test-sandbox-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char tmp[512], secret[512];
    snprintf(tmp, sizeof tmp, "%s/filter-tmp", dir);
    snprintf(secret, sizeof secret, "%s/secret-mail", dir);
    assert_int_equal(mkdir(tmp, 0700), 0);
    FILE *fp = fopen(secret, "w");
    assert_non_null(fp);
    fputs("private\n", fp);
    fclose(fp);
    struct fixture fx;
    zconf_defaults(&fx.conf, "/tmp");
    free(fx.conf.state_dir);
    fx.conf.state_dir = strdup(dir);
    struct cfg_error err;
    assert_true(filter_init(&fx.filter, &fx.conf, NULL, &err));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int abi = filter_sandbox(&fx.filter);
        if (abi == 0)
            _exit(77); /* no Landlock here */
        if (abi < 0)
            _exit(2);
        if (open(secret, O_RDONLY) >= 0 || errno != EACCES)
            _exit(3); /* the spool must be out of reach */
        if (open(secret, O_WRONLY | O_APPEND) >= 0 || unlink(secret) == 0)
            _exit(4);
        int fd = open("own-file", O_WRONLY | O_CREAT | O_EXCL, 0600); /* relative: filter-tmp */
        if (fd < 0 || write(fd, "x", 1) != 1)
            _exit(5);
        close(fd);
        if (open("/etc/hostname", O_RDONLY) < 0 && errno == EACCES)
            _exit(6); /* the system's files stay readable */
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    char own[600];
    snprintf(own, sizeof own, "%s/own-file", tmp);
    if (WEXITSTATUS(status) != 77) {
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(access(own, F_OK), 0);
    }
    fixture_close(&fx);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    if (WEXITSTATUS(status) == 77)
        skip();
}

/*
 * The scanner's system-call filter: a child sandboxed like a scanner process (clamd as
 * given) tries one thing; the status it ends with.
 */
enum seccomp_try {
    TRY_SCAN, TRY_EXECVE, TRY_FORK, TRY_UDP, TRY_INET_STREAM, TRY_INET6_STREAM, TRY_UNIX_STREAM,
    TRY_PTRACE, TRY_KILL_PARENT, TRY_ABORT,
};

static const char koi8_msg[] =
    "From: x@y.example\r\nSubject: =?KOI8-R?B?8NLJ18XU?=\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
    "--b\r\nContent-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "8NLJ18XU\r\n"
    "--b\r\nContent-Type: application/octet-stream\r\n"
    "Content-Disposition: attachment; filename*=iso-8859-1''r%E9sum%E9.pdf%2Eexe\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--\r\n";

static int seccomp_child(const char *state_dir, const char *clamd, enum seccomp_try what)
{
    struct fixture fx;
    zconf_defaults(&fx.conf, "/tmp");
    free(fx.conf.state_dir);
    fx.conf.state_dir = strdup(state_dir);
    free(fx.conf.clamd);
    fx.conf.clamd = strdup(clamd);
    struct cfg_error err;
    assert_true(filter_init(&fx.filter, &fx.conf, NULL, &err));
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (filter_sandbox(&fx.filter) < 0)
            _exit(2);
        int fd = -1;
        switch (what) {
        case TRY_SCAN: { /* charset converters (dlopen'd by iconv), base64, RFC 2231: all allowed */
            struct filter_verdict v;
            filter_scan(&fx.filter, koi8_msg, strlen(koi8_msg), &v);
            _exit(strcmp(v.banned_ext, ".exe") == 0 && strstr(v.banned_name, "sum") ? 0 : 3);
        }
        case TRY_EXECVE: {
            char *argv[] = {"/bin/true", NULL};
            execve("/bin/true", argv, environ);
            _exit(4);
        }
        case TRY_FORK: {
            pid_t p = fork();
            if (p == 0)
                _exit(0);
            _exit(5);
        }
        case TRY_UDP: fd = socket(AF_INET, SOCK_DGRAM, 0); break;
        case TRY_INET_STREAM: fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0); break;
        case TRY_INET6_STREAM: fd = socket(AF_INET6, SOCK_STREAM, 0); break;
        case TRY_UNIX_STREAM: fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0); break;
        case TRY_PTRACE: ptrace(PTRACE_TRACEME, 0, NULL, NULL); _exit(6);
        case TRY_KILL_PARENT: kill(getppid(), 0); _exit(7);
        case TRY_ABORT: abort();
        }
        _exit(fd >= 0 ? 0 : 8);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    fixture_close(&fx);
    return status;
}

static void expect_killed(int status, int sig, const char *what)
{
    if (!WIFSIGNALED(status) || WTERMSIG(status) != sig)
        fail_msg("%s: status %#x, want killed by signal %d", what, status, sig);
}

static void expect_exit0(int status, const char *what)
{
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("%s: status %#x, want exit 0", what, status);
}

static void test_scanner_seccomp(void **state)
{
    (void)state;
    if (RUNNING_ON_VALGRIND)
        skip(); /* the scanner runs without the filter under memcheck (docs/filter.md) */
    char dir[] = "/tmp/zolder-test-seccomp-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s/filter-tmp", dir);
    assert_int_equal(mkdir(tmp, 0700), 0);
    /* scanning works under the filter; the rest kills the process with SIGSYS */
    expect_exit0(seccomp_child(dir, "", TRY_SCAN), "scan");
    expect_killed(seccomp_child(dir, "", TRY_EXECVE), SIGSYS, "execve");
    expect_killed(seccomp_child(dir, "", TRY_FORK), SIGSYS, "fork");
    expect_killed(seccomp_child(dir, "", TRY_PTRACE), SIGSYS, "ptrace");
    expect_killed(seccomp_child(dir, "", TRY_KILL_PARENT), SIGSYS, "kill of zolderd");
    expect_killed(seccomp_child(dir, "", TRY_UDP), SIGSYS, "udp socket");
    expect_killed(seccomp_child(dir, "", TRY_UNIX_STREAM), SIGSYS, "socket without clamd");
    expect_killed(seccomp_child(dir, "", TRY_ABORT), SIGABRT, "abort (a crash stays a crash)");
    /* clamd over a unix socket: that family only */
    expect_exit0(seccomp_child(dir, "unix:/run/clamav/clamd.ctl", TRY_UNIX_STREAM), "unix socket for clamd");
    expect_killed(seccomp_child(dir, "unix:/run/clamav/clamd.ctl", TRY_INET_STREAM), SIGSYS, "tcp with unix clamd");
    /* clamd over TCP/IPv4: stream sockets of that family only */
    expect_exit0(seccomp_child(dir, "127.0.0.1:3310", TRY_INET_STREAM), "tcp socket for clamd");
    expect_killed(seccomp_child(dir, "127.0.0.1:3310", TRY_INET6_STREAM), SIGSYS, "ipv6 with ipv4 clamd");
    expect_killed(seccomp_child(dir, "127.0.0.1:3310", TRY_UDP), SIGSYS, "udp with clamd");
    expect_killed(seccomp_child(dir, "127.0.0.1:3310", TRY_EXECVE), SIGSYS, "execve with clamd");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_sober),
        cmocka_unit_test(test_scan_verdicts),
        cmocka_unit_test(test_signature_file_errors),
        cmocka_unit_test(test_clamd_replies),
        cmocka_unit_test(test_filter_message_queue),
        cmocka_unit_test(test_scanner_sandbox),
        cmocka_unit_test(test_scanner_seccomp),
        cmocka_unit_test(test_filter_async),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
