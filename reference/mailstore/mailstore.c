/*
 * mailstore: INBOX scanning, UID index, reading and expunging under the delivery locks
 * (see mailstore.h).
 *
 * STANDARDS
 *   RFC 4155 mbox; RFC 3501 2.3.1.1 (UIDs strictly ascending, UIDVALIDITY); RFC 1939 7
 *   (UIDL values unique and persistent).
 */
#include "mailstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "deliver/local.h"
#include "fsutil.h"
#include "log.h"
#include "mbox_read.h"
#include "xalloc.h"

#define MAILSTORE_READ_CHUNK 65536
#define MAILSTORE_INDEX_MAX (256UL * 1024 * 1024)
#define MAILSTORE_INDEX_MAGIC "zolder-mbox-index 1"

const char *mailstore_result_name(enum mailstore_result r)
{
    switch (r) {
    case MAILSTORE_OK:
        return "ok";
    case MAILSTORE_BUSY:
        return "busy";
    case MAILSTORE_GONE:
        return "gone";
    case MAILSTORE_ERROR:
        break;
    }
    return "error";
}

static char *mailstore_path(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *p = xmalloc(n);
    snprintf(p, n, "%s%s%s", a, b, c);
    return p;
}

/* ---- locking: exactly delivery's rules ----------------------------------------------------- */

/* Takes dotlock + fcntl lock; *fd_r is -1 when the mailbox does not exist (nothing to read). */
static enum mailstore_result mailstore_lock(struct mailstore *ms, bool write, int *fd_r,
                                            const char **error_r)
{
    *fd_r = -1;
    if (local_dotlock(ms->lock_path) < 0) {
        *error_r = errno == EWOULDBLOCK ? "mailbox is locked by another program" : "cannot create lock file";
        return errno == EWOULDBLOCK ? MAILSTORE_BUSY : MAILSTORE_ERROR;
    }
    int fd = open(ms->mbox_path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return MAILSTORE_OK;
        unlink(ms->lock_path);
        *error_r = "cannot open mailbox";
        return MAILSTORE_ERROR;
    }
    struct flock fl = {.l_type = write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET};
    struct stat st;
    if (fcntl(fd, F_SETLKW, &fl) < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        unlink(ms->lock_path);
        *error_r = "cannot lock mailbox, or not a regular file";
        return MAILSTORE_ERROR;
    }
    *fd_r = fd;
    return MAILSTORE_OK;
}

static void mailstore_unlock(struct mailstore *ms, int fd)
{
    if (fd >= 0)
        close(fd); /* releases the fcntl lock */
    unlink(ms->lock_path);
}

/* ---- scanning ------------------------------------------------------------------------------ */

struct mailstore_scan {
    struct mailstore_msg *msgs;
    size_t n, cap;
    EVP_MD_CTX *md;
    bool overflow;
};

static void mailstore_scan_begin(void *ctx, unsigned long long offset)
{
    struct mailstore_scan *sc = ctx;
    (void)offset;
    EVP_DigestInit_ex(sc->md, EVP_sha256(), NULL);
}

static void mailstore_scan_data(void *ctx, const char *bytes, size_t len)
{
    struct mailstore_scan *sc = ctx;
    EVP_DigestUpdate(sc->md, bytes, len);
}

static void mailstore_scan_end(void *ctx, const struct mbox_scan_msg *m)
{
    struct mailstore_scan *sc = ctx;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_DigestFinal_ex(sc->md, md, &mdlen);
    if (sc->n >= MAILSTORE_MESSAGES_MAX) {
        sc->overflow = true;
        return;
    }
    if (sc->n == sc->cap) {
        sc->cap = sc->cap ? sc->cap * 2 : 64;
        sc->msgs = xreallocarray(sc->msgs, sc->cap, sizeof *sc->msgs);
    }
    struct mailstore_msg *x = &sc->msgs[sc->n++];
    memset(x, 0, sizeof *x);
    x->offset = m->offset;
    x->span = m->span;
    x->from_len = m->from_len;
    x->content_len = m->content_len;
    x->size = m->size;
    x->lines = m->lines;
    memcpy(x->hash, md, MAILSTORE_HASH_LEN);
}

/* Scans bytes [start, start+len) of fd (len 0: to the end of the file). */
static int mailstore_scan_fd(int fd, unsigned long long start, unsigned long long len,
                             struct mailstore_msg **msgs_r, size_t *n_r)
{
    struct mailstore_scan sc = {.md = EVP_MD_CTX_new()};
    struct mbox_scan_callbacks cb = {.ctx = &sc, .begin = mailstore_scan_begin,
                                     .data = mailstore_scan_data, .end = mailstore_scan_end};
    struct mbox_scan s;
    char *chunk = xmalloc(MAILSTORE_READ_CHUNK);
    int rc = 0;
    if (!sc.md)
        log_fatalx("mailstore: cannot create digest context");
    mbox_scan_init(&s, &cb);
    unsigned long long off = start, done = 0;
    for (;;) {
        size_t want = MAILSTORE_READ_CHUNK;
        if (len && len - done < want)
            want = (size_t)(len - done);
        if (want == 0)
            break;
        ssize_t n = pread(fd, chunk, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        mbox_scan_feed(&s, chunk, (size_t)n);
        off += (unsigned long long)n;
        done += (unsigned long long)n;
    }
    mbox_scan_finish(&s);
    free(chunk);
    EVP_MD_CTX_free(sc.md);
    if (rc < 0 || sc.overflow) {
        free(sc.msgs);
        return -1;
    }
    /* The scan counted offsets from start. */
    for (size_t i = 0; i < sc.n; i++)
        sc.msgs[i].offset += start;
    *msgs_r = sc.msgs;
    *n_r = sc.n;
    return 0;
}

/* ---- the index ----------------------------------------------------------------------------- */

struct mailstore_entry {
    uint32_t uid;
    unsigned long long offset, span;
    unsigned char hash[MAILSTORE_HASH_LEN];
};

static int mailstore_hex(const char *s, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[i * 2 + (size_t)k];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= (unsigned)(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= (unsigned)(c - 'a' + 10);
            else
                return -1;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

/* 0 loaded, -1 missing or unusable (then rebuilt). */
static int mailstore_index_load(struct mailstore *ms, uint32_t *validity_r, uint32_t *next_r,
                                struct mailstore_entry **entries_r, size_t *n_r)
{
    char *data;
    size_t len;
    *entries_r = NULL;
    *n_r = 0;
    if (fs_read_file(ms->index_path, MAILSTORE_INDEX_MAX, &data, &len) < 0) {
        if (errno != ENOENT)
            log_warn("mailstore: cannot read %s; rebuilding it", ms->index_path);
        return -1;
    }
    struct mailstore_entry *e = NULL;
    size_t n = 0, cap = 0;
    char *line = data, *nl;
    unsigned v = 0, next = 0;
    int rc = -1;
    if ((nl = strchr(line, '\n')) == NULL)
        goto out;
    *nl = '\0';
    char magic_end;
    if (sscanf(line, MAILSTORE_INDEX_MAGIC " %u %u%c", &v, &next, &magic_end) != 2 || v == 0 || next == 0)
        goto out;
    uint32_t last = 0;
    for (line = nl + 1; *line; line = nl + 1) {
        if ((nl = strchr(line, '\n')) == NULL)
            goto out;
        *nl = '\0';
        unsigned uid;
        unsigned long long off, span;
        char hex[MAILSTORE_HASH_LEN * 2 + 1];
        int used = 0;
        if (sscanf(line, "%u %llu %llu %32s%n", &uid, &off, &span, hex, &used) != 4 ||
            line[used] != '\0' || strlen(hex) != (size_t)MAILSTORE_HASH_LEN * 2 || uid <= last || uid >= next ||
            n >= MAILSTORE_MESSAGES_MAX)
            goto out;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            e = xreallocarray(e, cap, sizeof *e);
        }
        e[n].uid = uid;
        e[n].offset = off;
        e[n].span = span;
        if (mailstore_hex(hex, e[n].hash, MAILSTORE_HASH_LEN) < 0)
            goto out;
        last = uid;
        n++;
    }
    rc = 0;
out:
    free(data);
    if (rc < 0) {
        log_warnx("mailstore: %s is damaged; rebuilding it with a new UIDVALIDITY", ms->index_path);
        free(e);
        return -1;
    }
    *validity_r = v;
    *next_r = next;
    *entries_r = e;
    *n_r = n;
    return 0;
}

static int mailstore_index_write(struct mailstore *ms, const struct mailstore_msg *msgs, size_t n)
{
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, MAILSTORE_INDEX_MAGIC " %u %u\n", ms->uidvalidity, ms->uidnext);
    for (size_t i = 0; i < n; i++) {
        buf_printf(&b, "%u %llu %llu ", msgs[i].uid, msgs[i].offset, msgs[i].span);
        for (size_t k = 0; k < MAILSTORE_HASH_LEN; k++)
            buf_printf(&b, "%02x", msgs[i].hash[k]);
        buf_append_char(&b, '\n');
    }
    char *tmp = mailstore_path(ms->index_path, ".tmp", "");
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        if (fs_write_all(fd, b.data ? b.data : "", b.len) == 0 && fsync(fd) == 0 &&
            rename(tmp, ms->index_path) == 0 && fs_fsync_dir(ms->index_dir) == 0)
            rc = 0;
        close(fd);
    }
    if (rc < 0) {
        log_warn("mailstore: cannot write %s", ms->index_path);
        unlink(tmp);
    }
    free(tmp);
    buf_free(&b);
    return rc;
}

static int mailstore_entry_cmp(const void *a, const void *b)
{
    const struct mailstore_entry *x = a, *y = b;
    int c = memcmp(x->hash, y->hash, MAILSTORE_HASH_LEN);
    if (c)
        return c;
    return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/*
 * Gives every scanned message a UID: the index entry with the same hash and the smallest
 * UID above the previous message's, else a new one. Writes the index when anything changed.
 */
static void mailstore_assign(struct mailstore *ms, struct mailstore_msg *msgs, size_t n)
{
    uint32_t validity = 0, next = 0;
    struct mailstore_entry *e;
    size_t ne;
    bool changed = false;
    if (mailstore_index_load(ms, &validity, &next, &e, &ne) < 0) {
        /* New, and different from a damaged index's (set no later than its mtime + 1). */
        struct stat st;
        time_t now = time(NULL);
        if (stat(ms->index_path, &st) == 0 && st.st_mtime + 2 > now)
            now = st.st_mtime + 2;
        validity = (uint32_t)now;
        if (validity == ms->uidvalidity || validity == 0)
            validity++;
        next = 1;
        changed = true;
    }
    changed |= ne != n;
    for (size_t i = 0; i < n && i < ne && !changed; i++)
        changed = e[i].offset != msgs[i].offset || e[i].span != msgs[i].span ||
                  memcmp(e[i].hash, msgs[i].hash, MAILSTORE_HASH_LEN) != 0;
    if (!changed) {
        for (size_t i = 0; i < n; i++)
            msgs[i].uid = e[i].uid; /* the common case: nothing moved */
    } else {
        if (ne)
            qsort(e, ne, sizeof *e, mailstore_entry_cmp);
        uint32_t last = 0;
        for (size_t i = 0; i < n; i++) {
            /* first entry with this hash (binary search), then the first UID above last */
            size_t lo = 0, hi = ne;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (memcmp(e[mid].hash, msgs[i].hash, MAILSTORE_HASH_LEN) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            uint32_t uid = 0;
            for (size_t k = lo; k < ne && memcmp(e[k].hash, msgs[i].hash, MAILSTORE_HASH_LEN) == 0; k++)
                if (e[k].uid > last) {
                    uid = e[k].uid;
                    break;
                }
            if (uid == 0) {
                if (next == UINT32_MAX) {
                    /* UIDs used up: start over under a new UIDVALIDITY (RFC 3501 2.3.1.1). */
                    validity++;
                    next = 1;
                    free(e);
                    e = NULL;
                    ne = 0;
                    i = (size_t)-1;
                    last = 0;
                    continue;
                }
                uid = next++;
            }
            msgs[i].uid = uid;
            last = uid;
        }
    }
    free(e);
    ms->uidvalidity = validity;
    ms->uidnext = next;
    if (changed)
        mailstore_index_write(ms, msgs, n);
}

/* Under the lock: the mailbox's current messages with their UIDs, the index brought in step. */
static enum mailstore_result mailstore_sync(struct mailstore *ms, int fd, struct mailstore_msg **msgs_r,
                                            size_t *n_r, const char **error_r)
{
    *msgs_r = NULL;
    *n_r = 0;
    if (fd >= 0 && mailstore_scan_fd(fd, 0, 0, msgs_r, n_r) < 0) {
        *error_r = "cannot read mailbox (or too many messages)";
        return MAILSTORE_ERROR;
    }
    mailstore_assign(ms, *msgs_r, *n_r);
    return MAILSTORE_OK;
}

/* ---- the API ------------------------------------------------------------------------------- */

enum mailstore_result mailstore_open(struct mailstore *ms, const char *state_dir, const char *user,
                                     const char **error_r)
{
    memset(ms, 0, sizeof *ms);
    if (!user[0] || user[0] == '.' || strchr(user, '/') || strlen(user) > 64) {
        *error_r = "invalid mailbox name";
        return MAILSTORE_ERROR;
    }
    ms->user = xstrdup(user);
    ms->spool_dir = mailstore_path(state_dir, "/spool/mail", "");
    ms->mbox_path = mailstore_path(ms->spool_dir, "/", user);
    ms->lock_path = mailstore_path(ms->mbox_path, ".lock", "");
    char *dot = mailstore_path("/.", user, ".new");
    ms->tmp_path = mailstore_path(ms->spool_dir, dot, "");
    free(dot);
    char *index_root = mailstore_path(state_dir, "/index/", user);
    ms->index_dir = index_root;
    ms->index_path = mailstore_path(index_root, "/INBOX", "");
    if (fs_mkdir_p(ms->spool_dir, 0700) < 0 || fs_mkdir_p(ms->index_dir, 0700) < 0) {
        *error_r = "cannot create mail folders";
        return MAILSTORE_ERROR;
    }
    int fd;
    enum mailstore_result r = mailstore_lock(ms, false, &fd, error_r);
    if (r != MAILSTORE_OK)
        return r;
    r = mailstore_sync(ms, fd, &ms->msgs, &ms->nmsgs, error_r);
    mailstore_unlock(ms, fd);
    return r;
}

static bool mailstore_same(const struct mailstore_msg *a, const struct mailstore_msg *b)
{
    return memcmp(a->hash, b->hash, MAILSTORE_HASH_LEN) == 0 && a->content_len == b->content_len;
}

enum mailstore_result mailstore_read(struct mailstore *ms, size_t i, struct buf *raw, const char **error_r)
{
    struct mailstore_msg *m = &ms->msgs[i];
    if (m->content_len > MAILSTORE_MESSAGE_MAX) {
        *error_r = "message too large to read";
        return MAILSTORE_ERROR;
    }
    int fd;
    enum mailstore_result r = mailstore_lock(ms, false, &fd, error_r);
    if (r != MAILSTORE_OK)
        return r;
    if (fd < 0) {
        mailstore_unlock(ms, fd);
        *error_r = "the mailbox was removed";
        return MAILSTORE_GONE;
    }
    /* Still where it was? (The usual case: deliveries only append.) */
    struct mailstore_msg *found = NULL, *list = NULL;
    size_t n = 0;
    if (mailstore_scan_fd(fd, m->offset, m->span, &list, &n) == 0 && n == 1 && list[0].offset == m->offset &&
        mailstore_same(&list[0], m))
        found = m;
    free(list);
    list = NULL;
    if (!found) {
        uint32_t validity = ms->uidvalidity;
        r = mailstore_sync(ms, fd, &list, &n, error_r);
        if (r == MAILSTORE_OK && ms->uidvalidity == validity)
            for (size_t k = 0; k < n; k++)
                if (list[k].uid == m->uid && mailstore_same(&list[k], m)) {
                    m->offset = list[k].offset;
                    m->span = list[k].span;
                    found = m;
                }
        ms->uidvalidity = validity; /* the session keeps its view */
        if (r == MAILSTORE_OK && !found) {
            *error_r = "the message was removed by another program";
            r = MAILSTORE_GONE;
        }
    }
    if (found) {
        size_t want = (size_t)m->content_len, got = 0;
        char *p = xmalloc(want + 1);
        while (got < want) {
            ssize_t k = pread(fd, p + got, want - got, (off_t)(m->offset + m->from_len + got));
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break;
            got += (size_t)k;
        }
        if (got == want) {
            buf_append(raw, p, want);
        } else {
            *error_r = "cannot read mailbox";
            r = MAILSTORE_ERROR;
        }
        free(p);
    }
    free(list);
    mailstore_unlock(ms, fd);
    return r;
}

static int mailstore_uid_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int mailstore_copy(int from, int to, unsigned long long off, unsigned long long len, char *chunk)
{
    while (len) {
        size_t want = len < MAILSTORE_READ_CHUNK ? (size_t)len : MAILSTORE_READ_CHUNK;
        ssize_t n = pread(from, chunk, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || fs_write_all(to, chunk, (size_t)n) < 0)
            return -1;
        off += (unsigned long long)n;
        len -= (unsigned long long)n;
    }
    return 0;
}

enum mailstore_result mailstore_expunge(struct mailstore *ms, const uint32_t *uids, size_t n,
                                        size_t *removed_r, const char **error_r)
{
    *removed_r = 0;
    if (n == 0)
        return MAILSTORE_OK;
    int fd;
    enum mailstore_result r = mailstore_lock(ms, true, &fd, error_r);
    if (r != MAILSTORE_OK)
        return r;
    if (fd < 0) {
        mailstore_unlock(ms, fd);
        return MAILSTORE_OK;
    }
    uint32_t validity = ms->uidvalidity;
    struct mailstore_msg *list = NULL;
    size_t nlist = 0;
    r = mailstore_sync(ms, fd, &list, &nlist, error_r);
    if (r != MAILSTORE_OK)
        goto out;
    if (ms->uidvalidity != validity) {
        /* The index was rebuilt: our UIDs may name other messages now. Delete nothing. */
        *error_r = "the mailbox index was rebuilt meanwhile";
        r = MAILSTORE_ERROR;
        goto out;
    }
    uint32_t *sorted = xreallocarray(NULL, n, sizeof *sorted);
    memcpy(sorted, uids, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, mailstore_uid_cmp);
    bool *gone = xcalloc(nlist ? nlist : 1, sizeof *gone);
    size_t ngone = 0;
    for (size_t i = 0; i < nlist; i++)
        if (bsearch(&list[i].uid, sorted, n, sizeof *sorted, mailstore_uid_cmp)) {
            gone[i] = true;
            ngone++;
        }
    free(sorted);
    if (ngone == 0) {
        free(gone);
        goto out;
    }
    struct stat st;
    char *chunk = xmalloc(MAILSTORE_READ_CHUNK);
    unlink(ms->tmp_path); /* a leftover of a crash: we hold the lock, nobody else writes it */
    int out = open(ms->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    int ok = out >= 0 && fstat(fd, &st) == 0 && fchmod(out, st.st_mode & 07777) == 0;
    /* Bytes before the first message are kept as they are. */
    if (ok && nlist)
        ok = mailstore_copy(fd, out, 0, list[0].offset, chunk) == 0;
    unsigned long long pos = nlist ? list[0].offset : 0;
    size_t kept = 0;
    for (size_t i = 0; ok && i < nlist; i++) {
        if (gone[i])
            continue;
        ok = mailstore_copy(fd, out, list[i].offset, list[i].span, chunk) == 0;
        list[i].offset = pos;
        pos += list[i].span;
        list[kept++] = list[i];
    }
    ok = ok && fsync(out) == 0;
    if (out >= 0)
        close(out);
    ok = ok && rename(ms->tmp_path, ms->mbox_path) == 0;
    if (!ok) {
        unlink(ms->tmp_path);
        *error_r = "cannot rewrite mailbox";
        r = MAILSTORE_ERROR;
    } else {
        if (fs_fsync_dir(ms->spool_dir) < 0)
            log_warn("mailstore: cannot sync %s", ms->spool_dir);
        *removed_r = ngone;
        mailstore_index_write(ms, list, kept);
    }
    free(chunk);
    free(gone);
out:
    free(list);
    mailstore_unlock(ms, fd);
    return r;
}

void mailstore_close(struct mailstore *ms)
{
    free(ms->user);
    free(ms->spool_dir);
    free(ms->mbox_path);
    free(ms->lock_path);
    free(ms->tmp_path);
    free(ms->index_dir);
    free(ms->index_path);
    free(ms->msgs);
    memset(ms, 0, sizeof *ms);
}
