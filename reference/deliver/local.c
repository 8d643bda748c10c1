/* local: final delivery into mbox or Maildir (see local.h for the crash-safety argument). */
#include "local.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "mailstore/generation.h"
#include "mbox.h"
#include "xalloc.h"

/* x 50 ms: the whole loop waits, so a lock held by a mail reader defers rather than stalls */
#define LOCAL_DOTLOCK_TRIES 10
#define LOCAL_DOTLOCK_STALE_SECONDS 300

void local_render_mbox(const struct queue_msg *msg, const char *rcpt, const struct buf *data,
                       struct buf *out)
{
    struct mbox_quoter q;
    mbox_from_line(out, msg->env.sender, msg->env.arrival);
    buf_printf(out, "Delivered-To: %s\n", rcpt);
    mbox_quoter_init(&q);
    mbox_quoter_feed(&q, data->data, data->len, out);
    mbox_quoter_finish(&q, out);
}

static char *local_join(const char *dir, const char *name, const char *suffix)
{
    size_t n = strlen(dir) + strlen(name) + strlen(suffix) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s%s", dir, name, suffix);
    return p;
}

/*
 * A dotlock left by a process that no longer exists (zolderd killed with -9 mid-delivery)
 * is stale at once; one without a readable PID (mutt, procmail write none) only after
 * LOCAL_DOTLOCK_STALE_SECONDS.
 */
static bool local_dotlock_stale(const char *lock_path)
{
    char text[32] = "";
    int fd = open(lock_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        ssize_t n = read(fd, text, sizeof text - 1);
        close(fd);
        text[n > 0 ? n : 0] = '\0';
    }
    char *end;
    long pid = strtol(text, &end, 10);
    if (end != text && (*end == '\n' || *end == '\0') && pid > 0) {
        if (pid == (long)getpid())
            return true; /* ours, from an earlier life: this process holds no lock now */
        if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
            return true;
    }
    struct stat st;
    return stat(lock_path, &st) == 0 && time(NULL) - st.st_mtime > LOCAL_DOTLOCK_STALE_SECONDS;
}

/*
 * The lock is made the way liblockfile makes it: a temporary file holding our PID is linked
 * to USER.lock, so the lock never exists without the PID in it (an O_EXCL create followed by
 * a write would leave an empty lock behind if we were killed in between, and an empty lock
 * only goes stale after LOCAL_DOTLOCK_STALE_SECONDS).
 */
int local_dotlock(const char *lock_path)
{
    char tmp_path[4200];
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if ((size_t)snprintf(tmp_path, sizeof tmp_path, "%s.%ld", lock_path, (long)getpid()) >= sizeof tmp_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    unlink(tmp_path); /* left by an earlier life of this PID */
    int fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = fs_write_all(fd, pid, (size_t)n);
    close(fd);
    if (rc < 0) {
        unlink(tmp_path);
        return -1;
    }
    for (int i = 0; i < LOCAL_DOTLOCK_TRIES; i++) {
        if (link(tmp_path, lock_path) == 0) {
            unlink(tmp_path);
            return 0;
        }
        if (errno != EEXIST)
            break;
        if (local_dotlock_stale(lock_path)) {
            log_warnx("removing stale lock %s", lock_path);
            unlink(lock_path);
            continue;
        }
        struct timespec ts = {0, 50L * 1000 * 1000};
        nanosleep(&ts, NULL);
        errno = EWOULDBLOCK;
    }
    int saved = errno == EEXIST ? EWOULDBLOCK : errno;
    unlink(tmp_path);
    errno = saved;
    return -1;
}

/* 1: the entry is already there; 0: not there (file truncated back if a torn copy was); -1 error */
static int local_check_previous(int fd, long long attempt, const struct buf *entry, off_t size)
{
    if (attempt < 0 || attempt >= size)
        return 0;
    size_t have = (size_t)(size - attempt);
    size_t cmp = have < entry->len ? have : entry->len;
    char *tmp = xmalloc(cmp ? cmp : 1);
    ssize_t n = pread(fd, tmp, cmp, (off_t)attempt);
    int same = n == (ssize_t)cmp && memcmp(tmp, entry->data, cmp) == 0;
    free(tmp);
    if (!same)
        return 0; /* someone else's bytes: leave them, deliver again at the end */
    if (have >= entry->len)
        return 1;
    /* Our own torn write (kill -9 mid-append): cut it off before writing it whole. */
    if (ftruncate(fd, (off_t)attempt) < 0 || fsync(fd) < 0)
        return -1;
    log_warnx("truncated a torn delivery at offset %lld", attempt);
    return 0;
}

/* Recovery items (a previous attempt was recorded) go first, so a torn write at the end of the
 * mailbox is found and cut before anything new is appended after it. */
static int local_item_order(const void *a, const void *b)
{
    const struct local_item *x = a, *y = b;
    long long ax = x->msg->env.rcpts[x->rcpt].attempt, ay = y->msg->env.rcpts[y->rcpt].attempt;
    bool rx = ax >= 0, ry = ay >= 0;
    if (rx != ry)
        return (int)ry - (int)rx;
    /* Recovery items in file order: a torn last entry is cut only after all before it. */
    return ax < ay ? -1 : ax > ay;
}

static void local_defer_all(struct local_item *items, size_t n, const char *error)
{
    for (size_t i = 0; i < n; i++) {
        items[i].result = LOCAL_DEFER;
        items[i].error = error;
    }
}

static void local_deliver_mbox(const struct local_target *t, struct local_item *items, size_t n)
{
    char *path = local_join(t->spool_dir, t->user, "");
    char *lock_path = local_join(t->spool_dir, t->user, ".lock");
    struct buf entry;
    buf_init(&entry, 0);
    int fd = -1;
    bool appended = false;
    qsort(items, n, sizeof *items, local_item_order);
    local_defer_all(items, n, "not attempted");

    if (local_dotlock(lock_path) < 0) {
        local_defer_all(items, n, errno == EWOULDBLOCK ? "mailbox is locked" : "cannot create lock file");
        goto out;
    }
    fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    struct stat st;
    if (fd < 0) {
        local_defer_all(items, n, "cannot open mailbox");
        goto unlock;
    }
    if (fcntl(fd, F_SETLKW, &fl) < 0) {
        local_defer_all(items, n, "cannot lock mailbox");
        goto unlock;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        local_defer_all(items, n, "mailbox is not a regular file");
        goto unlock;
    }
    off_t start = st.st_size, size = st.st_size;
    size_t written = 0;     /* items appended by this batch, awaiting the fsync */
    size_t i;
    for (i = 0; i < n; i++) {
        struct local_item *it = &items[i];
        struct queue_rcpt *r = &it->msg->env.rcpts[it->rcpt];
        buf_reset(&entry);
        local_render_mbox(it->msg, r->addr, it->data, &entry);
        int prev = local_check_previous(fd, r->attempt, &entry, size);
        if (prev == 1) {
            log_info("%s: to=<%s> mailbox=%s already delivered before a restart", it->msg->id,
                     r->addr, path);
            it->result = LOCAL_OK;
            continue;
        }
        if (prev < 0 || fstat(fd, &st) < 0) {
            it->error = "cannot repair mailbox";
            break;
        }
        if (st.st_size < size)
            start = st.st_size; /* a torn write was cut off */
        size = st.st_size;
        if (t->size_limit && (unsigned long long)size + entry.len > t->size_limit) {
            it->result = LOCAL_FAIL; /* as Postfix's mailbox_size_limit: bounced, not retried */
            it->error = "mailbox size limit exceeded (mailbox_size_limit)";
            it->status = "5.2.2";
            continue;
        }
        if (queue_set_attempt(it->msg, it->rcpt, (long long)size) < 0) {
            it->error = "cannot record delivery attempt";
            break;
        }
        if (fs_write_all(fd, entry.data, entry.len) < 0) {
            int saved = errno;
            /* Nothing half-written survives: cut back to where this message started. */
            if (ftruncate(fd, size) < 0)
                log_warn("%s: cannot truncate %s back to %lld", it->msg->id, path, (long long)size);
            it->error = saved == ENOSPC ? "mailbox write failed: no space"
                        : saved == EFBIG || saved == EDQUOT ? "mailbox write failed: size limit or quota"
                                                            : "mailbox write failed";
            break;
        }
        size += (off_t)entry.len;
        it->result = LOCAL_OK;
        written++;
    }
    if (i < n)
        for (size_t j = i + 1; j < n; j++)
            items[j].error = items[i].error; /* stopped at item i: the rest waits with its reason */
    if (!t->sync_later && fsync(fd) < 0) {
        /* Nothing of this batch is promised: back to the size before it. */
        if (ftruncate(fd, start) < 0 || fsync(fd) < 0)
            log_warn("cannot truncate %s back to %lld", path, (long long)start);
        for (size_t j = 0; j < n; j++)
            if (items[j].result == LOCAL_OK && written) {
                items[j].result = LOCAL_DEFER;
                items[j].error = "mailbox fsync failed";
            }
    }
    appended = written > 0;
unlock:
    if (fd >= 0)
        close(fd); /* releases the fcntl lock */
    unlink(lock_path);
    if (appended)
        mailstore_notify_changed(path); /* IMAP sessions in IDLE of this process look now */
out:
    buf_free(&entry);
    free(path);
    free(lock_path);
}

static enum local_result local_deliver_maildir(const struct local_target *t,
                                               struct queue_msg *msg, size_t rcpt,
                                               const struct buf *data, const char **error_r)
{
    const char *rcpt_addr = msg->env.rcpts[rcpt].addr;
    enum local_result result = LOCAL_DEFER;
    char *box = local_join(t->spool_dir, t->user, "");
    char *tmp_dir = local_join(box, "tmp", ""), *new_dir = local_join(box, "new", "");
    char *cur_dir = local_join(box, "cur", "");
    char name[256];
    snprintf(name, sizeof name, "%lld.%s_%zu.%s", (long long)msg->env.arrival, msg->id, rcpt,
             t->hostname);
    char *tmp_path = local_join(tmp_dir, name, ""), *new_path = local_join(new_dir, name, "");
    struct buf body;
    buf_init(&body, 0);

    if (fs_mkdir_p(tmp_dir, 0700) < 0 || fs_mkdir_p(new_dir, 0700) < 0 ||
        fs_mkdir_p(cur_dir, 0700) < 0) {
        *error_r = "cannot create Maildir";
        /* Something that is not a folder stands where the Maildir must be: no retry fixes
         * that by itself (permanent, bounced); anything else (no space, EACCES) defers. */
        if (errno == ENOTDIR || errno == EEXIST || errno == ELOOP || errno == ENAMETOOLONG) {
            *error_r = "cannot create Maildir: a file is in the way";
            result = LOCAL_FAIL;
        }
        goto out;
    }
    if (access(new_path, F_OK) == 0) {
        result = LOCAL_OK; /* delivered by an attempt that died before marking it */
        goto out;
    }
    /* Maildir keeps LF line ends too, for the mail readers that open the files directly. */
    buf_printf(&body, "Delivered-To: %s\n", rcpt_addr);
    for (size_t i = 0; i < data->len; i++)
        if (!(data->data[i] == '\r' && i + 1 < data->len && data->data[i + 1] == '\n'))
            buf_append_char(&body, data->data[i]);
    int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        *error_r = "cannot create Maildir file";
        goto out;
    }
    if (fs_write_all(fd, body.data, body.len) < 0 || fsync(fd) < 0) {
        close(fd);
        unlink(tmp_path);
        *error_r = "Maildir write failed";
        goto out;
    }
    close(fd);
    if (link(tmp_path, new_path) < 0 && errno != EEXIST) {
        unlink(tmp_path);
        *error_r = "cannot move Maildir file into new/";
        goto out;
    }
    unlink(tmp_path);
    if (fs_fsync_dir(new_dir) < 0) {
        *error_r = "cannot sync Maildir";
        goto out;
    }
    result = LOCAL_OK;
    mailstore_notify_changed(box); /* the key the Maildir INBOX's store watches by (mailstore.h) */
out:
    buf_free(&body);
    free(box);
    free(tmp_dir);
    free(new_dir);
    free(cur_dir);
    free(tmp_path);
    free(new_path);
    return result;
}

void local_deliver_batch(const struct local_target *target, struct local_item *items, size_t n)
{
    if (n == 0)
        return;
    if (strchr(target->user, '/') || target->user[0] == '.' || !target->user[0]) {
        local_defer_all(items, n, "invalid mailbox name");
        return;
    }
    if (fs_mkdir_p(target->spool_dir, 0700) < 0) {
        local_defer_all(items, n, "cannot create spool folder");
        return;
    }
    if (!target->maildir) {
        local_deliver_mbox(target, items, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        items[i].error = NULL;
        items[i].status = "5.2.0";
        items[i].result = local_deliver_maildir(target, items[i].msg, items[i].rcpt,
                                                items[i].data, &items[i].error);
    }
}

enum local_result local_deliver(const struct local_target *target, struct queue_msg *msg,
                                size_t rcpt, const struct buf *data, const char **error_r)
{
    struct local_item item = {.msg = msg, .rcpt = rcpt, .data = data};
    local_deliver_batch(target, &item, 1);
    if (item.result != LOCAL_OK)
        *error_r = item.error;
    return item.result;
}
