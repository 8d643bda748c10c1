/*
 * ctl: zolderctl's commands and the control-socket client (see ctl.h).
 *
 * SECURITY: the control socket is created 0700 inside STATE_DIR by the daemon, so only its
 * run_as user and root get this far; we still bound every read (one reply line of at most
 * CTL_REPLY_MAX bytes, within a timeout) so a wedged daemon cannot hang a cron job forever.
 * Queue ids given on the command line are validated (queue_id_valid) before they become part
 * of a path, so `zolderctl delete ../../etc/passwd` touches nothing.
 */
#include "ctl.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "filter/filter.h"
#include "fsutil.h"
#include "instance.h"
#include "deadline.h"
#include "queue/mailq.h"
#include "queue/queue.h"
#include "str.h"
#include "xalloc.h"

enum ctl_status ctl_request(const char *path, const char *request, int timeout_ms,
                            char reply[CTL_REPLY_MAX], const char **error_r)
{
    long long deadline = deadline_now_ms() + timeout_ms;
    reply[0] = '\0';
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (!str_copy(sun.sun_path, sizeof sun.sun_path, path)) {
        *error_r = "control socket path too long";
        return CTL_FAILED;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *error_r = strerror(errno);
        return CTL_FAILED;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        int e = errno;
        close(fd);
        *error_r = strerror(e);
        if (e == EACCES || e == EPERM)
            return CTL_DENIED;
        /* No socket file, or a stale one from a daemon that died: both mean "not running". */
        return (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR) ? CTL_NOT_RUNNING : CTL_FAILED;
    }
    size_t rlen = strlen(request);
    char line[CTL_REPLY_MAX];
    if (rlen + 2 > sizeof line) {
        close(fd);
        *error_r = "request too long";
        return CTL_FAILED;
    }
    memcpy(line, request, rlen);
    line[rlen++] = '\n';
    line[rlen] = '\0';
    size_t off = 0;
    while (off < rlen) {
        if (deadline_poll(fd, POLLOUT, deadline) <= 0) {
            close(fd);
            *error_r = "timed out sending the request";
            return CTL_FAILED;
        }
        ssize_t n = send(fd, line + off, rlen - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *error_r = strerror(errno);
            close(fd);
            return CTL_FAILED;
        }
        off += (size_t)n;
    }
    size_t got = 0;
    for (;;) {
        int w = deadline_poll(fd, POLLIN, deadline);
        if (w <= 0) {
            close(fd);
            *error_r = w == 0 ? "timed out waiting for zolderd's answer" : strerror(errno);
            return CTL_FAILED;
        }
        ssize_t n = read(fd, reply + got, CTL_REPLY_MAX - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            reply[got] = '\0';
            *error_r = n == 0 ? "zolderd closed the connection without an answer"
                              : strerror(errno);
            return CTL_FAILED;
        }
        got += (size_t)n;
        reply[got] = '\0';
        char *nl = memchr(reply, '\n', got);
        if (nl) {
            *nl = '\0';
            break;
        }
        if (got == CTL_REPLY_MAX - 1) {
            close(fd);
            *error_r = "answer line too long";
            return CTL_FAILED;
        }
    }
    close(fd);
    if (strncmp(reply, "ok", 2) == 0 && (reply[2] == ' ' || reply[2] == '\0'))
        return CTL_OK;
    if (strncmp(reply, "error", 5) == 0 && (reply[5] == ' ' || reply[5] == '\0'))
        return CTL_REFUSED;
    *error_r = "answer is neither \"ok\" nor \"error\"";
    return CTL_FAILED;
}

int ctl_exit_status(enum ctl_status status)
{
    switch (status) {
    case CTL_OK: return EX_OK;
    case CTL_REFUSED: return 1;
    case CTL_NOT_RUNNING: return EX_TEMPFAIL;
    case CTL_DENIED: return EX_NOPERM;
    case CTL_FAILED: return EX_TEMPFAIL;
    }
    return EX_SOFTWARE;
}

static const struct {
    const char *name;
    enum ctl_verb verb;
    bool takes_ids;
} ctl_verbs[] = {
    {"mailq", CTL_VERB_MAILQ, false},   {"flush", CTL_VERB_FLUSH, false},
    {"reload", CTL_VERB_RELOAD, false}, {"ping", CTL_VERB_PING, false},
    {"hold", CTL_VERB_HOLD, true},      {"release", CTL_VERB_RELEASE, true},
    {"delete", CTL_VERB_DELETE, true},
    {"fetch", CTL_VERB_FETCH, false}, /* fetch */
};

bool ctl_verb_parse(const char *name, enum ctl_verb *verb_r)
{
    for (size_t i = 0; i < sizeof ctl_verbs / sizeof ctl_verbs[0]; i++) {
        if (strcmp(name, ctl_verbs[i].name) == 0) {
            *verb_r = ctl_verbs[i].verb;
            return true;
        }
    }
    return false;
}

bool ctl_verb_takes_ids(enum ctl_verb verb)
{
    for (size_t i = 0; i < sizeof ctl_verbs / sizeof ctl_verbs[0]; i++)
        if (ctl_verbs[i].verb == verb)
            return ctl_verbs[i].takes_ids;
    return false;
}

/* The text after "ok " / "error ", for printing. */
static const char *ctl_reply_text(const char *reply)
{
    const char *sp = strchr(reply, ' ');
    return sp ? sp + 1 : reply;
}

/* One request to the daemon with the messages every caller wants. */
static int ctl_daemon(const struct zconf *conf, const char *prog, const char *request,
                      int timeout_ms)
{
    char *path = instance_control_path(conf);
    char reply[CTL_REPLY_MAX];
    const char *why = "";
    enum ctl_status st = ctl_request(path, request, timeout_ms, reply, &why);
    switch (st) {
    case CTL_OK:
        printf("%s\n", ctl_reply_text(reply));
        break;
    case CTL_REFUSED:
        fprintf(stderr, "%s: zolderd refused %s: %s\n", prog, request, ctl_reply_text(reply));
        break;
    case CTL_NOT_RUNNING:
        fprintf(stderr, "%s: zolderd is not running (no answer on %s: %s)\n", prog, path, why);
        break;
    case CTL_DENIED:
        fprintf(stderr, "%s: no permission to talk to zolderd on %s: %s\n", prog, path, why);
        break;
    case CTL_FAILED:
        fprintf(stderr, "%s: %s on %s failed: %s\n", prog, request, path, why);
        break;
    }
    free(path);
    return ctl_exit_status(st);
}

int ctl_mailq(const struct zconf *conf, const char *prog)
{
    struct buf out;
    const char *why;
    buf_init(&out, 0);
    if (mailq_list(conf, &out, &why) < 0) {
        int e = errno;
        fprintf(stderr, "%s: %s/queue: %s (%s)\n", prog, conf->state_dir, why, strerror(e));
        buf_free(&out);
        return e == EACCES || e == EPERM ? EX_NOPERM : EX_UNAVAILABLE;
    }
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
    return fflush(stdout) == 0 ? EX_OK : EX_IOERR;
}

int ctl_flush(const struct zconf *conf, const char *prog)
{
    return ctl_daemon(conf, prog, "flush", CTL_FLUSH_TIMEOUT_MS);
}

/* hold/release/delete of one id; prints the outcome. true on success. */
static bool ctl_queue_one(struct queue *q, const char *prog, enum ctl_verb verb, const char *id)
{
    int rc;
    const char *done;
    switch (verb) {
    case CTL_VERB_HOLD:
        rc = queue_hold(q, id);
        done = "held";
        break;
    case CTL_VERB_RELEASE:
        rc = queue_release(q, id);
        done = "released";
        break;
    default:
        rc = queue_delete(q, id);
        done = "deleted";
        break;
    }
    if (rc == 0) {
        printf("%s: %s\n", id, done);
        return true;
    }
    int e = errno;
    if (e == ENOENT && verb != CTL_VERB_DELETE) {
        /* Say where it is when it exists elsewhere: "already held" is no failure. */
        size_t n = strlen(q->root) + QUEUE_ID_LEN + 8;
        char *other = xmalloc(n);
        snprintf(other, n, "%s/%s", verb == CTL_VERB_HOLD ? q->hold_dir : q->msg_dir, id);
        bool there = access(other, F_OK) == 0;
        free(other);
        if (there) {
            printf("%s: already %s\n", id, verb == CTL_VERB_HOLD ? "held" : "released");
            return true;
        }
    }
    if (e == ENOENT)
        fprintf(stderr, "%s: %s: no such message in the queue\n", prog, id);
    else
        fprintf(stderr, "%s: %s: cannot %s: %s\n", prog, id,
                verb == CTL_VERB_HOLD ? "hold" : verb == CTL_VERB_RELEASE ? "release" : "delete",
                strerror(e));
    return false;
}

static int ctl_queue_ids(const struct zconf *conf, const char *prog, enum ctl_verb verb,
                         char *const *ids, size_t nids)
{
    size_t failed = 0, released = 0;
    for (size_t i = 0; i < nids; i++) {
        if (!queue_id_valid(ids[i])) {
            fprintf(stderr, "%s: %s: not a queue id (%d characters 0-9 A-Z, as mailq shows)\n",
                    prog, ids[i], QUEUE_ID_LEN);
            failed++;
        }
    }
    if (failed == nids)
        return 1;
    size_t n = strlen(conf->state_dir) + sizeof "/queue/msg";
    char *probe = xmalloc(n);
    snprintf(probe, n, "%s/queue/msg", conf->state_dir);
    int rc = access(probe, W_OK | X_OK);
    int e = errno;
    free(probe);
    if (rc < 0) {
        fprintf(stderr, "%s: %s/queue: %s\n", prog, conf->state_dir,
                e == ENOENT ? "no queue folder (has zolderd run with this config?)" : strerror(e));
        return e == EACCES || e == EPERM ? EX_NOPERM : EX_UNAVAILABLE;
    }
    struct queue q;
    if (queue_open(&q, conf->state_dir) < 0) {
        e = errno;
        fprintf(stderr, "%s: cannot open the queue under %s: %s\n", prog, conf->state_dir,
                strerror(e));
        queue_close(&q);
        return e == EACCES || e == EPERM ? EX_NOPERM : EX_UNAVAILABLE;
    }
    for (size_t i = 0; i < nids; i++) {
        if (!queue_id_valid(ids[i]))
            continue; /* counted above */
        if (!ctl_queue_one(&q, prog, verb, ids[i]))
            failed++;
        else if (verb == CTL_VERB_RELEASE)
            released++;
    }
    queue_close(&q);
    fflush(stdout);
    if (released) {
        /* Released mail should not wait for the next timed queue run; without a daemon it
         * simply goes out when zolderd starts (its first act is a queue run). */
        char *path = instance_control_path(conf);
        char reply[CTL_REPLY_MAX];
        const char *why;
        enum ctl_status st = ctl_request(path, "flush", CTL_FLUSH_TIMEOUT_MS, reply, &why);
        if (st == CTL_NOT_RUNNING)
            printf("zolderd is not running: released mail goes out when it starts\n");
        else if (st != CTL_OK)
            fprintf(stderr, "%s: warning: could not ask zolderd for a queue run (%s); released "
                            "mail goes out at the next timed run\n", prog,
                    st == CTL_REFUSED ? ctl_reply_text(reply) : why);
        free(path);
    }
    return failed ? 1 : EX_OK;
}

int ctl_run(const struct zconf *conf, const char *prog, enum ctl_verb verb, char *const *ids,
            size_t nids)
{
    switch (verb) {
    case CTL_VERB_MAILQ: return ctl_mailq(conf, prog);
    case CTL_VERB_FLUSH: return ctl_flush(conf, prog);
    case CTL_VERB_RELOAD: return ctl_daemon(conf, prog, "reload", CTL_TIMEOUT_MS);
    case CTL_VERB_PING: return ctl_daemon(conf, prog, "ping", CTL_TIMEOUT_MS);
    case CTL_VERB_FETCH: return ctl_daemon(conf, prog, "fetch", CTL_FLUSH_TIMEOUT_MS); /* fetch */
    case CTL_VERB_HOLD:
    case CTL_VERB_RELEASE:
    case CTL_VERB_DELETE: return ctl_queue_ids(conf, prog, verb, ids, nids);
    }
    return EX_SOFTWARE;
}

/* ---- content filter: zolderctl quarantine (reference/filter) -------------------------------- */

#define CTL_QUARANTINE_FILE_MAX ((size_t)1 << 31)

/* Reads quarantine/ID and parses its envelope. 0, or -1 with why printed. */
static int ctl_quarantine_load(const struct zconf *conf, const char *prog, const char *id, char **data_r,
                               size_t *len_r, struct queue_envelope *env, size_t *off_r)
{
    char *path = quarantine_path(conf->state_dir, id);
    int rc = fs_read_file(path, CTL_QUARANTINE_FILE_MAX, data_r, len_r);
    int e = errno;
    free(path);
    if (rc < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, id,
                e == ENOENT ? "no such message in the quarantine" : strerror(e));
        return -1;
    }
    const char *why = NULL;
    if (queue_envelope_parse(*data_r, *len_r, id, env, off_r, &why) < 0) {
        fprintf(stderr, "%s: %s: damaged quarantine file: %s\n", prog, id, why ? why : "?");
        free(*data_r);
        return -1;
    }
    return 0;
}

static int ctl_quarantine_list(const struct zconf *conf, const char *prog)
{
    char **ids;
    size_t n;
    if (quarantine_list(conf->state_dir, &ids, &n) < 0) {
        int e = errno;
        fprintf(stderr, "%s: %s/quarantine: %s\n", prog, conf->state_dir, strerror(e));
        return e == EACCES || e == EPERM ? EX_NOPERM : EX_UNAVAILABLE;
    }
    for (size_t i = 0; i < n; i++) {
        char *data;
        size_t len, off;
        struct queue_envelope env;
        if (ctl_quarantine_load(conf, prog, ids[i], &data, &len, &env, &off) < 0)
            continue;
        struct buf verdict;
        buf_init(&verdict, 0);
        quarantine_verdict(conf->state_dir, ids[i], &verdict);
        printf("%s %8zu <%s>", ids[i], len - off, env.sender);
        for (size_t r = 0; r < env.nrcpts; r++)
            if (env.rcpts[r].status == QUEUE_RCPT_PENDING)
                printf(" <%s>", env.rcpts[r].addr);
        printf("\n    %s\n", verdict.len ? verdict.data : "(no verdict recorded)");
        buf_free(&verdict);
        queue_envelope_free(&env);
        free(data);
    }
    if (n == 0)
        printf("quarantine is empty\n");
    queue_list_free(ids, n);
    return fflush(stdout) == 0 ? EX_OK : EX_IOERR;
}

static bool ctl_quarantine_show(const struct zconf *conf, const char *prog, const char *id)
{
    char *data;
    size_t len, off;
    struct queue_envelope env;
    if (ctl_quarantine_load(conf, prog, id, &data, &len, &env, &off) < 0)
        return false;
    struct buf verdict;
    buf_init(&verdict, 0);
    quarantine_verdict(conf->state_dir, id, &verdict);
    printf("Quarantine-Id: %s\nVerdict: %s\nSender: <%s>\n", id, verdict.len ? verdict.data : "-",
           env.sender);
    for (size_t r = 0; r < env.nrcpts; r++)
        printf("Recipient: <%s>\n", env.rcpts[r].addr);
    printf("\n");
    fwrite(data + off, 1, len - off, stdout);
    buf_free(&verdict);
    queue_envelope_free(&env);
    free(data);
    return true;
}

int ctl_quarantine(const struct zconf *conf, const char *prog, char *const *args, size_t nargs)
{
    if (nargs == 0)
        return EX_USAGE;
    const char *what = args[0];
    if (strcmp(what, "list") == 0)
        return nargs == 1 ? ctl_quarantine_list(conf, prog) : EX_USAGE;
    bool show = strcmp(what, "show") == 0, release = strcmp(what, "release") == 0;
    if ((!show && !release && strcmp(what, "delete") != 0) || nargs < 2)
        return EX_USAGE;
    size_t failed = 0, released = 0;
    for (size_t i = 1; i < nargs; i++) {
        const char *id = args[i];
        if (!queue_id_valid(id)) {
            fprintf(stderr, "%s: %s: not a queue id (%d characters 0-9 A-Z, as quarantine list shows)\n",
                    prog, id, QUEUE_ID_LEN);
            failed++;
            continue;
        }
        if (show) {
            failed += !ctl_quarantine_show(conf, prog, id);
            continue;
        }
        int rc = release ? quarantine_release(conf->state_dir, id) : quarantine_delete(conf->state_dir, id);
        if (rc == 0) {
            printf("%s: %s\n", id, release ? "released (delivered without a rescan)" : "deleted");
            released += release;
        } else {
            int e = errno;
            fprintf(stderr, "%s: %s: %s\n", prog, id,
                    e == ENOENT ? "no such message in the quarantine"
                    : e == EEXIST ? "a queued message has this id already" : strerror(e));
            failed++;
        }
    }
    fflush(stdout);
    if (released) {
        char *path = instance_control_path(conf);
        char reply[CTL_REPLY_MAX];
        const char *why;
        enum ctl_status st = ctl_request(path, "flush", CTL_FLUSH_TIMEOUT_MS, reply, &why);
        if (st == CTL_NOT_RUNNING)
            printf("zolderd is not running: released mail goes out when it starts\n");
        else if (st != CTL_OK)
            fprintf(stderr, "%s: warning: could not ask zolderd for a queue run (%s); released "
                            "mail goes out at the next timed run\n", prog,
                    st == CTL_REFUSED ? ctl_reply_text(reply) : why);
        free(path);
    }
    return failed ? 1 : EX_OK;
}
