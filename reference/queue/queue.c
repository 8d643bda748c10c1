/*
 * queue: the durable mail queue (see queue.h for the layout and the promises).
 *
 * Envelope lines (values %XX-escaped so they never contain blanks or newlines; "-" is empty):
 *   Z zolder-queue 1
 *   I ID
 *   T ARRIVAL-EPOCH
 *   S SENDER
 *   C CLIENT-IP HELO RDNS PROTO AUTH-USER
 *   E RET ENVID BODY
 *   R STATUS ATTEMPT16HEX EXPANDED ADDR ORCPT NOTIFY      (one per recipient)
 *   D
 *   message bytes...
 */
#include "queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "str.h"
#include "xalloc.h"

#define QUEUE_ENVELOPE_MAX (4u << 20)

static char *queue_subdir(const char *root, const char *name)
{
    size_t n = strlen(root) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", root, name);
    return p;
}

int queue_open(struct queue *q, const char *state_dir)
{
    q->root = queue_subdir(state_dir, "queue");
    q->tmp_dir = queue_subdir(q->root, "tmp");
    q->msg_dir = queue_subdir(q->root, "msg");
    q->hold_dir = queue_subdir(q->root, "hold");
    if (fs_mkdir_p(q->tmp_dir, 0700) < 0 || fs_mkdir_p(q->msg_dir, 0700) < 0 ||
        fs_mkdir_p(q->hold_dir, 0700) < 0)
        return -1;
    return 0;
}

void queue_close(struct queue *q)
{
    free(q->root);
    free(q->tmp_dir);
    free(q->msg_dir);
    free(q->hold_dir);
    memset(q, 0, sizeof *q);
}

void queue_new_id(char out[QUEUE_ID_LEN + 1])
{
    /* Seconds and microseconds keep ids time-ordered; pid and a counter keep two processes
     * (zolderd and sendmail) or two messages in one microsecond apart. */
    static const char digits[] = "0123456789BCDFGHJKLMNPQRSTVWXYZ";
    static unsigned counter;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    unsigned long long v = (unsigned long long)tv.tv_sec;
    char *p = out;
    for (int i = 6; i >= 0; i--) {
        p[i] = digits[v % 31];
        v /= 31;
    }
    p += 7;
    unsigned long long u = (unsigned long long)tv.tv_usec * 31 * 31 +
                           (((unsigned)getpid() * 7u + counter++) % (31 * 31));
    for (int i = 8; i >= 0; i--) {
        p[i] = digits[u % 31];
        u /= 31;
    }
    out[QUEUE_ID_LEN] = '\0';
}

static char *queue_path(const char *dir, const char *id)
{
    return queue_subdir(dir, id);
}

static int queue_writer_open(struct queue *q, struct queue_writer *w,
                             const struct queue_envelope *env);

static int queue_writer_with_id(struct queue *q, const char *id, const struct queue_envelope *env,
                                struct queue_writer *w)
{
    memset(w, 0, sizeof *w);
    w->fd = -1;
    str_copy(w->id, sizeof w->id, id);
    return queue_writer_open(q, w, env);
}

int queue_writer_begin_id(struct queue *q, const char *id, const struct queue_envelope *env,
                          struct queue_writer *w)
{
    /* A chosen id (an alias explosion's child) may exist from an earlier attempt. */
    char *final = queue_path(q->msg_dir, id);
    bool exists = access(final, F_OK) == 0;
    free(final);
    if (exists) {
        memset(w, 0, sizeof *w);
        w->fd = -1;
        errno = EEXIST;
        return -1;
    }
    return queue_writer_with_id(q, id, env, w);
}

/* Creates tmp/ID (O_EXCL) and writes the envelope. */
static int queue_writer_open(struct queue *q, struct queue_writer *w, const struct queue_envelope *env)
{
    const char *id = w->id;
    w->tmp_path = queue_path(q->tmp_dir, id);
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        int saved = errno;
        free(w->tmp_path);
        w->tmp_path = NULL;
        errno = saved;
        return -1;
    }
    struct buf b;
    buf_init(&b, QUEUE_ENVELOPE_MAX);
    queue_envelope_format(&b, id, env);
    int rc = fs_write_all(w->fd, b.data, b.len);
    buf_free(&b);
    if (rc < 0) {
        int saved = errno;
        queue_writer_abort(w);
        errno = saved;
        return -1;
    }
    return 0;
}

int queue_writer_begin(struct queue *q, const struct queue_envelope *env, struct queue_writer *w)
{
    for (int tries = 0; tries < 100; tries++) {
        char id[QUEUE_ID_LEN + 1];
        queue_new_id(id);
        if (queue_writer_with_id(q, id, env, w) == 0)
            return 0;
        if (errno != EEXIST)
            return -1;
    }
    errno = EEXIST;
    return -1;
}

int queue_writer_write(struct queue_writer *w, const void *data, size_t len)
{
    if (w->failed)
        return -1;
    if (fs_write_all(w->fd, data, len) < 0) {
        w->failed = true;
        return -1;
    }
    w->size += len;
    return 0;
}

void queue_writer_abort(struct queue_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp_path) {
        unlink(w->tmp_path);
        free(w->tmp_path);
    }
    w->fd = -1;
    w->tmp_path = NULL;
}

int queue_writer_commit(struct queue *q, struct queue_writer *w)
{
    int saved;
    if (w->failed || fsync(w->fd) < 0)
        goto fail;
    if (close(w->fd) < 0) {
        w->fd = -1;
        goto fail;
    }
    w->fd = -1;
    char *final = queue_path(q->msg_dir, w->id);
    /* RENAME_NOREPLACE: a queue file, once promised, is never clobbered by another. */
    if (renameat2(AT_FDCWD, w->tmp_path, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
        free(final);
        goto fail;
    }
    free(final);
    if (fs_fsync_dir(q->msg_dir) < 0) {
        saved = errno;
        /* The file is in msg/ but not durably: it will still be delivered, but we must not
         * promise it; the sender retries and may cause a duplicate, never a loss. */
        free(w->tmp_path);
        w->tmp_path = NULL;
        errno = saved;
        return -1;
    }
    free(w->tmp_path);
    w->tmp_path = NULL;
    return 0;
fail:
    saved = errno;
    queue_writer_abort(w);
    errno = saved;
    return -1;
}

bool queue_commit_round(struct queue *q, struct queue_writer *const *ws, size_t n, bool *ok_r,
                        char *const *unlinks, size_t nunlinks)
{
    bool synced = false;
    for (size_t i = 0; i < n; i++) {
        struct queue_writer *w = ws[i];
        ok_r[i] = !w->failed && close(w->fd) == 0;
        w->fd = -1;
    }
    int dfd = open(q->tmp_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        synced = syncfs(dfd) == 0;
        close(dfd);
    }
    bool changed = false;
    for (size_t i = 0; i < n; i++) {
        struct queue_writer *w = ws[i];
        if (ok_r[i] && synced) {
            char *final = queue_path(q->msg_dir, w->id);
            ok_r[i] = renameat2(AT_FDCWD, w->tmp_path, AT_FDCWD, final, RENAME_NOREPLACE) == 0;
            free(final);
            changed |= ok_r[i];
        } else {
            ok_r[i] = false;
        }
        if (!ok_r[i])
            unlink(w->tmp_path);
        free(w->tmp_path);
        w->tmp_path = NULL;
    }
    for (size_t i = 0; synced && i < nunlinks; i++)
        changed |= unlink(unlinks[i]) == 0;
    if (changed && fs_fsync_dir(q->msg_dir) < 0) {
        /* In msg/ but not durably: delivered all the same, never promised (see commit). */
        for (size_t i = 0; i < n; i++)
            ok_r[i] = false;
    }
    return synced;
}

void queue_commit_batch(struct queue *q, struct queue_writer *const *ws, size_t n, bool *ok_r)
{
    queue_commit_round(q, ws, n, ok_r, NULL, 0);
}

void queue_msg_free(struct queue_msg *msg)
{
    queue_envelope_free(&msg->env);
    free(msg->path);
    memset(msg, 0, sizeof *msg);
}

int queue_load(struct queue *q, const char *id, struct queue_msg *msg, const char **error_r)
{
    memset(msg, 0, sizeof *msg);
    if (!queue_id_valid(id)) {
        *error_r = "invalid queue id";
        return -1;
    }
    str_copy(msg->id, sizeof msg->id, id);
    msg->path = queue_path(q->msg_dir, id);
    int fd = open(msg->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        free(msg->path);
        msg->path = queue_path(q->hold_dir, id);
        msg->held = true;
        fd = open(msg->path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        *error_r = errno == ENOENT ? "no such queue file" : "cannot open queue file";
        queue_msg_free(msg);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        *error_r = "cannot stat queue file";
        queue_msg_free(msg);
        return -1;
    }
    /* Only the envelope is parsed here; it is at most QUEUE_ENVELOPE_MAX bytes. */
    size_t want = (size_t)st.st_size < QUEUE_ENVELOPE_MAX ? (size_t)st.st_size : QUEUE_ENVELOPE_MAX;
    char *data = xmalloc(want + 1);
    ssize_t got = pread(fd, data, want, 0);
    close(fd);
    if (got < 0) {
        free(data);
        *error_r = "cannot read queue file";
        queue_msg_free(msg);
        return -1;
    }
    size_t data_off;
    int rc = queue_envelope_parse(data, (size_t)got, id, &msg->env, &data_off, error_r);
    free(data);
    if (rc < 0) {
        queue_msg_free(msg);
        return -1;
    }
    msg->data_off = (off_t)data_off;
    msg->size = (size_t)st.st_size - data_off;
    return 0;
}

int queue_read_data(const struct queue_msg *msg, struct buf *out)
{
    int fd = open(msg->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    buf_reset(out);
    char chunk[65536];
    off_t off = msg->data_off;
    for (;;) {
        ssize_t n = pread(fd, chunk, sizeof chunk, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        if (!buf_append(out, chunk, (size_t)n)) {
            close(fd);
            errno = EFBIG;
            return -1;
        }
        off += n;
    }
    close(fd);
    return 0;
}

static int queue_pwrite_sync(const char *path, const void *data, size_t len, off_t off)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = pwrite(fd, data, len, off);
    int rc = (n == (ssize_t)len && fdatasync(fd) == 0) ? 0 : -1;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int queue_mark(struct queue_msg *msg, size_t rcpt, char status)
{
    struct queue_rcpt *r = &msg->env.rcpts[rcpt];
    if (queue_pwrite_sync(msg->path, &status, 1, r->status_off) < 0)
        return -1;
    r->status = status;
    return 0;
}

int queue_mark_nosync(struct queue_msg *msg, size_t rcpt, char status)
{
    struct queue_rcpt *r = &msg->env.rcpts[rcpt];
    int fd = open(msg->path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = pwrite(fd, &status, 1, r->status_off);
    close(fd);
    if (n != 1)
        return -1;
    r->status = status;
    return 0;
}

int queue_unlink(struct queue_msg *msg) { return unlink(msg->path); }

int queue_sync(struct queue *q, bool marks, bool unlinks)
{
    int rc = 0;
    if (marks) {
        int fd = open(q->msg_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || syncfs(fd) < 0)
            rc = -1;
        if (fd >= 0)
            close(fd);
    }
    if (unlinks && (fs_fsync_dir(q->msg_dir) < 0 || fs_fsync_dir(q->hold_dir) < 0))
        rc = -1;
    return rc;
}

int queue_set_attempt(struct queue_msg *msg, size_t rcpt, long long attempt)
{
    /* No fsync: the attempt field only narrows recovery after kill -9 (the page cache
     * survives it); after a power loss, recovery errs towards delivering again. */
    struct queue_rcpt *r = &msg->env.rcpts[rcpt];
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)attempt);
    int fd = open(msg->path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = pwrite(fd, hex, 16, r->attempt_off);
    close(fd);
    if (n != 16)
        return -1;
    r->attempt = attempt;
    return 0;
}

int queue_set_retry(struct queue_msg *msg, time_t next_attempt, unsigned attempts, bool warned)
{
    if (msg->env.retry_off >= 0) {
        char line[QENV_RETRY_LEN + 1];
        queue_envelope_format_retry(line, next_attempt, attempts, warned);
        if (queue_pwrite_sync(msg->path, line, QENV_RETRY_LEN, msg->env.retry_off) < 0)
            return -1;
    }
    msg->env.next_attempt = next_attempt;
    msg->env.attempts = attempts;
    msg->env.warned = warned;
    return 0;
}

int queue_set_reason(struct queue_msg *msg, size_t rcpt, const char *reason, bool sync)
{
    struct queue_rcpt *r = &msg->env.rcpts[rcpt];
    char line[QENV_REASON_LINE_LEN + 1];
    queue_envelope_format_reason(line, reason);
    if (r->reason_off >= 0) {
        int fd = open(msg->path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return -1;
        ssize_t n = pwrite(fd, line, QENV_REASON_LINE_LEN, r->reason_off);
        int rc = n == (ssize_t)QENV_REASON_LINE_LEN && (!sync || fdatasync(fd) == 0) ? 0 : -1;
        int saved = errno;
        close(fd);
        errno = saved;
        if (rc < 0)
            return -1;
    }
    queue_reason_sanitise(r->reason, reason);
    return 0;
}

int queue_remove_if_done(struct queue *q, struct queue_msg *msg)
{
    for (size_t i = 0; i < msg->env.nrcpts; i++)
        if (msg->env.rcpts[i].status == QUEUE_RCPT_PENDING)
            return 0;
    if (unlink(msg->path) < 0)
        return -1;
    if (fs_fsync_dir(msg->held ? q->hold_dir : q->msg_dir) < 0)
        return -1;
    return 1;
}

static int queue_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void queue_list_dir(const char *dir, char ***ids, size_t *n, size_t *cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!queue_id_valid(e->d_name))
            continue;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            *ids = xreallocarray(*ids, *cap, sizeof **ids);
        }
        (*ids)[(*n)++] = xstrdup(e->d_name);
    }
    closedir(d);
}

int queue_list(struct queue *q, bool with_hold, char ***ids_r, size_t *n_r)
{
    char **ids = NULL;
    size_t n = 0, cap = 0;
    queue_list_dir(q->msg_dir, &ids, &n, &cap);
    if (with_hold)
        queue_list_dir(q->hold_dir, &ids, &n, &cap);
    if (n)
        qsort(ids, n, sizeof *ids, queue_cmp_str);
    *ids_r = ids;
    *n_r = n;
    return 0;
}

void queue_list_free(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

static int queue_move(const char *from_dir, const char *to_dir, const char *id)
{
    if (!queue_id_valid(id)) {
        errno = EINVAL;
        return -1;
    }
    char *from = queue_path(from_dir, id), *to = queue_path(to_dir, id);
    int rc = renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
    free(from);
    free(to);
    if (rc < 0 || fs_fsync_dir(to_dir) < 0 || fs_fsync_dir(from_dir) < 0)
        return -1;
    return 0;
}

int queue_hold(struct queue *q, const char *id) { return queue_move(q->msg_dir, q->hold_dir, id); }

int queue_release(struct queue *q, const char *id) { return queue_move(q->hold_dir, q->msg_dir, id); }

int queue_delete(struct queue *q, const char *id)
{
    if (!queue_id_valid(id)) {
        errno = EINVAL;
        return -1;
    }
    const char *dirs[2] = {q->msg_dir, q->hold_dir};
    for (int i = 0; i < 2; i++) {
        char *p = queue_path(dirs[i], id);
        int rc = unlink(p);
        free(p);
        if (rc == 0)
            return fs_fsync_dir(dirs[i]);
    }
    errno = ENOENT;
    return -1;
}

/* ---- reports committed together with their parent's marks -------------------------------- */

static char *queue_tmp_name(const struct queue *q, const char *id, const char *suffix)
{
    char name[QUEUE_ID_LEN + 16];
    snprintf(name, sizeof name, "%s%s", id, suffix);
    return queue_subdir(q->tmp_dir, name);
}

/* tmp/ID.ready into msg/ID (an existing msg/ID wins), msg/ fsync'd, tmp/ID.marks removed. */
static int queue_promote_ready(struct queue *q, const char *id)
{
    char *ready = queue_tmp_name(q, id, ".ready"), *marks = queue_tmp_name(q, id, ".marks");
    char *final = queue_path(q->msg_dir, id);
    int rc = 0;
    if (renameat2(AT_FDCWD, ready, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
        if (errno == EEXIST)
            unlink(ready);
        else
            rc = -1;
    }
    if (rc == 0 && fs_fsync_dir(q->msg_dir) < 0)
        rc = -1;
    if (rc == 0)
        unlink(marks);
    free(ready);
    free(marks);
    free(final);
    return rc;
}

/* Writes status at the recipients listed in tmp/ID.marks ("PARENT STATUS IDX..."). */
static void queue_apply_marks(struct queue *q, const char *id)
{
    char *marks = queue_tmp_name(q, id, ".marks");
    char *text = NULL;
    size_t len = 0;
    if (fs_read_file(marks, 1 << 20, &text, &len) < 0) {
        log_warnx("%s: report without its marks file; its parent keeps its marks", id);
        free(marks);
        return;
    }
    free(marks);
    char *save = NULL, *parent = strtok_r(text, " \n", &save), *st = strtok_r(NULL, " \n", &save);
    struct queue_msg pm;
    const char *error;
    if (parent && st && strlen(st) == 1 && strchr("DF", st[0]) && queue_id_valid(parent) &&
        queue_load(q, parent, &pm, &error) == 0) {
        for (char *t = strtok_r(NULL, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
            unsigned long i;
            if (str_to_ulong(t, QUEUE_RCPT_MAX, &i) && i < pm.env.nrcpts && queue_mark(&pm, i, st[0]) == 0)
                log_info("%s: to=<%s>: marked %c with its report %s (recovered)", parent, pm.env.rcpts[i].addr,
                         st[0], id);
        }
        queue_msg_free(&pm);
    }
    free(text);
}

int queue_commit_marked(struct queue *q, struct queue_writer *w, struct queue_msg *parent,
                        const size_t *rcpts, size_t n, char status)
{
    int saved;
    char *marks = queue_tmp_name(q, w->id, ".marks"), *ready = queue_tmp_name(q, w->id, ".ready");
    struct buf b;
    buf_init(&b, 0);
    if (w->failed || fsync(w->fd) < 0)
        goto fail;
    if (close(w->fd) < 0) {
        w->fd = -1;
        goto fail;
    }
    w->fd = -1;
    buf_printf(&b, "%s %c", parent->id, status);
    for (size_t i = 0; i < n; i++)
        buf_printf(&b, " %zu", rcpts[i]);
    buf_append_char(&b, '\n');
    int fd = open(marks, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    if (fs_write_all(fd, b.data, b.len) < 0 || fsync(fd) < 0) {
        saved = errno;
        close(fd);
        errno = saved;
        goto fail;
    }
    close(fd);
    /* The commit point: a durable tmp/ID.ready is a report whose marks will be written. */
    if (rename(w->tmp_path, ready) < 0)
        goto fail;
    if (fs_fsync_dir(q->tmp_dir) < 0) {
        saved = errno;
        unlink(ready);
        unlink(marks);
        errno = saved;
        goto fail_closed;
    }
    for (size_t i = 0; i < n; i++)
        if (queue_mark(parent, rcpts[i], status) < 0) {
            log_warn("%s: cannot mark a recipient; the next start does (report %s)", parent->id, w->id);
            parent->env.rcpts[rcpts[i]].status = status; /* as it will be on disk */
        }
    if (queue_promote_ready(q, w->id) < 0)
        log_warn("%s: report committed in tmp/; the next start moves it into the queue", w->id);
    free(w->tmp_path);
    w->tmp_path = NULL;
    free(marks);
    free(ready);
    buf_free(&b);
    return 0;
fail:
    saved = errno;
    unlink(marks);
    errno = saved;
fail_closed:
    saved = errno;
    queue_writer_abort(w);
    free(marks);
    free(ready);
    buf_free(&b);
    errno = saved;
    return -1;
}

void queue_clean_tmp(struct queue *q)
{
    DIR *d = opendir(q->tmp_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl == QUEUE_ID_LEN + 6 && strcmp(e->d_name + QUEUE_ID_LEN, ".ready") == 0) {
            char id[QUEUE_ID_LEN + 1];
            memcpy(id, e->d_name, QUEUE_ID_LEN);
            id[QUEUE_ID_LEN] = '\0';
            if (!queue_id_valid(id))
                continue;
            /* A report committed before a crash: its parent's marks, then the queue. */
            queue_apply_marks(q, id);
            if (queue_promote_ready(q, id) == 0)
                log_info("%s: report recovered from tmp into the queue", id);
            continue;
        }
        if (nl == QUEUE_ID_LEN + 6 && strcmp(e->d_name + QUEUE_ID_LEN, ".marks") == 0) {
            char id[QUEUE_ID_LEN + 1];
            memcpy(id, e->d_name, QUEUE_ID_LEN);
            id[QUEUE_ID_LEN] = '\0';
            char *ready = queue_tmp_name(q, id, ".ready");
            bool has_ready = access(ready, F_OK) == 0;
            free(ready);
            char *p = queue_subdir(q->tmp_dir, e->d_name);
            if (!has_ready && queue_id_valid(id))
                unlink(p); /* its report never reached the commit point */
            free(p);
            continue;
        }
        if (!queue_id_valid(e->d_name))
            continue;
        char *p = queue_path(q->tmp_dir, e->d_name);
        if (unlink(p) == 0)
            log_info("%s: removed unfinished queue file from tmp (never promised)", e->d_name);
        free(p);
    }
    closedir(d);
}
