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
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "deliver/local.h"
#include "fsutil.h"
#include "journal.h"
#include "log.h"
#include "maildir.h"
#include "mbox.h"
#include "mbox_flags.h"
#include "mbox_read.h"
#include "xalloc.h"

#define MAILSTORE_READ_CHUNK 65536
#define MAILSTORE_INDEX_MAX (256UL * 1024 * 1024)
#define MAILSTORE_INDEX_MAGIC_V1 "zolder-mbox-index 1"
#define MAILSTORE_INDEX_MAGIC_V2 "zolder-mbox-index 2"
#define MAILSTORE_INDEX_MAGIC "zolder-mbox-index 3" /* 2 + HIGHESTMODSEQ and a MODSEQ a message */
#define MAILSTORE_HEADER_READ_MAX 65536

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
    char from_line[256];        /* the first bytes of the current From_ line (INTERNALDATE) */
    size_t nfrom;
    bool from_done;
};

static void mailstore_scan_begin(void *ctx, unsigned long long offset)
{
    struct mailstore_scan *sc = ctx;
    (void)offset;
    EVP_DigestInit_ex(sc->md, EVP_sha256(), NULL);
    sc->nfrom = 0;
    sc->from_done = false;
}

static void mailstore_scan_data(void *ctx, const char *bytes, size_t len)
{
    struct mailstore_scan *sc = ctx;
    EVP_DigestUpdate(sc->md, bytes, len);
    for (size_t i = 0; i < len && !sc->from_done; i++) {
        if (bytes[i] == '\n' || sc->nfrom == sizeof sc->from_line)
            sc->from_done = true;
        else
            sc->from_line[sc->nfrom++] = bytes[i];
    }
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
    x->internaldate = mbox_from_date(sc->from_line, sc->nfrom);
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
    bool has_flags;   /* a version 1 index had none: read them from the headers */
    unsigned flags;
    uint32_t keywords;
    unsigned long long modseq; /* 1 from a version 1 or 2 index */
};

/* ---- the process cache --------------------------------------------------------------------- */

/*
 * One entry per mailbox this process has read, shared by all its sessions (IMAP and POP3):
 * the last scan (message boundaries and hashes; no UIDs or flags) with the spool file's inode,
 * size and mtime when it was taken, and the last index read or written with the index file's.
 * A mailbox whose file did not change is not read again; one that only grew (same inode,
 * larger) is scanned from its last known message on, after checking that its first and last
 * known messages still hash the same; anything else is scanned whole. Used only on the event
 * loop thread (no lock); at most MAILSTORE_CACHES_MAX mailboxes, the least recently used
 * dropped first.
 */
#define MAILSTORE_CACHES_MAX 64

struct mailstore_cache {
    struct mailstore_cache *next;
    char *mbox_path;
    bool mbox_valid;
    struct mailstore_stamp mbox;
    struct mailstore_msg *msgs;
    size_t n;
    bool index_valid;
    struct mailstore_stamp index, journal; /* the index as read with its journal applied */
    uint32_t validity, uidnext;
    unsigned long long highestmodseq;
    struct mailstore_entry *e;
    size_t ne;
    char *keyword[MAILSTORE_KEYWORDS_MAX];
    size_t nkeywords;
};

static struct mailstore_cache *mailstore_caches;

static void mailstore_stamp_of(const struct stat *st, struct mailstore_stamp *s)
{
    s->ino = (unsigned long long)st->st_ino;
    s->size = (unsigned long long)st->st_size;
    s->mtime_ns = (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

static bool mailstore_stamp_eq(const struct mailstore_stamp *a, const struct mailstore_stamp *b)
{
    return a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

/* The stamp of a file now (all 0 when it is missing). */
static void mailstore_stat_stamp(const char *path, struct mailstore_stamp *s)
{
    struct stat st;
    memset(s, 0, sizeof *s);
    if (stat(path, &st) == 0)
        mailstore_stamp_of(&st, s);
}

/* The stamps of the spool file, the index and its flag journal now. */
static void mailstore_stamps_now(const struct mailstore *ms, struct mailstore_stamp *mbox, struct mailstore_stamp *index,
                                 struct mailstore_stamp *journal)
{
    mailstore_stat_stamp(ms->mbox_path, mbox);
    mailstore_stat_stamp(ms->index_path, index);
    mailstore_stat_stamp(ms->journal_path, journal);
}

/*
 * Under the lock: list (taken over) becomes the mailbox's current generation (or the equal
 * current one is shared); a reference for the caller.
 */
static void mailstore_job_note(const struct mailstore *ms, size_t pending, unsigned long long bytes, bool dirty,
                               unsigned long long file_size);
static struct mailstore_job *mailstore_job_get(const struct mailstore *ms, bool create);
static void mailstore_job_opened(struct mailstore *ms);

static struct mailstore_gen *mailstore_publish(struct mailstore *ms, struct mailstore_msg *list, size_t n)
{
    struct mailstore_stamp mbox, index, journal;
    mailstore_stamps_now(ms, &mbox, &index, &journal);
    /* messages expunged but still in the mbox are in no generation: no session sees them */
    size_t kept = 0, pending = 0;
    unsigned long long bytes = 0;
    bool dirty = false;
    for (size_t i = 0; i < n; i++) {
        if (list[i].flags & MAILSTORE_EXPUNGED) {
            pending++;
            bytes += list[i].span;
            continue;
        }
        dirty = dirty || (list[i].flags & MAILSTORE_DIRTY);
        if (kept != i)
            list[kept] = list[i];
        kept++;
    }
    mailstore_job_note(ms, pending, bytes, dirty, mbox.size);
    return mailstore_gen_publish(ms->mbox_path, ms->uidvalidity, ms->uidnext, ms->highestmodseq, list, kept, &mbox,
                                 &index, &journal);
}

static void *mailstore_dup(const void *p, size_t n, size_t size)
{
    void *q = xreallocarray(NULL, n ? n : 1, size);
    if (n)
        memcpy(q, p, n * size);
    return q;
}

static void mailstore_cache_index_drop(struct mailstore_cache *c)
{
    free(c->e);
    c->e = NULL;
    c->ne = 0;
    for (size_t i = 0; i < c->nkeywords; i++)
        free(c->keyword[i]);
    c->nkeywords = 0;
    c->index_valid = false;
}

static void mailstore_cache_free(struct mailstore_cache *c)
{
    mailstore_cache_index_drop(c);
    free(c->msgs);
    free(c->mbox_path);
    free(c);
}

/* The cache of this mailbox (made empty when new), moved to the front of the list. */
static struct mailstore_cache *mailstore_cache_get(const char *mbox_path)
{
    struct mailstore_cache **pp = &mailstore_caches, *c;
    size_t count = 0;
    for (; (c = *pp) != NULL; pp = &c->next, count++)
        if (strcmp(c->mbox_path, mbox_path) == 0) {
            *pp = c->next;
            c->next = mailstore_caches;
            mailstore_caches = c;
            return c;
        }
    if (count >= MAILSTORE_CACHES_MAX) {
        /* drop the least recently used */
        for (pp = &mailstore_caches; (*pp)->next; pp = &(*pp)->next)
            ;
        mailstore_cache_free(*pp);
        *pp = NULL;
    }
    c = xcalloc(1, sizeof *c);
    c->mbox_path = xstrdup(mbox_path);
    c->next = mailstore_caches;
    mailstore_caches = c;
    return c;
}

static void mailstore_jobs_drop(void);

void mailstore_cache_clear(void)
{
    mailstore_jobs_drop();
    maildir_store_cache_clear();
    while (mailstore_caches) {
        struct mailstore_cache *c = mailstore_caches;
        mailstore_caches = c->next;
        mailstore_cache_free(c);
    }
    mailstore_gen_clear();
}

/* Does the message at m->offset in fd still hash the same (one message scanned)? */
static bool mailstore_msg_still(int fd, const struct mailstore_msg *m)
{
    struct mailstore_msg *one = NULL;
    size_t n = 0;
    bool same = mailstore_scan_fd(fd, m->offset, m->span, &one, &n) == 0 && n == 1 && one[0].offset == m->offset &&
                one[0].content_len == m->content_len && memcmp(one[0].hash, m->hash, MAILSTORE_HASH_LEN) == 0;
    free(one);
    return same;
}

/* The whole mailbox as scanned now, from the cache where the file allows (see above). */
static int mailstore_scan_cached(struct mailstore *ms, int fd, struct mailstore_msg **msgs_r, size_t *n_r)
{
    struct stat st;
    struct mailstore_stamp now;
    *msgs_r = NULL;
    *n_r = 0;
    if (fstat(fd, &st) < 0)
        return -1;
    mailstore_stamp_of(&st, &now);
    struct mailstore_cache *c = mailstore_cache_get(ms->mbox_path);
    struct mailstore_msg *list = NULL;
    size_t n = 0;
    bool done = false;
    if (c->mbox_valid && mailstore_stamp_eq(&c->mbox, &now)) {
        list = mailstore_dup(c->msgs, c->n, sizeof *list);
        n = c->n;
        done = true;
    } else if (c->mbox_valid && c->mbox.ino == now.ino && now.size > c->mbox.size && c->n > 0) {
        /* grown: the last known message again (its span grows if padding was added) and the tail */
        const struct mailstore_msg *last = &c->msgs[c->n - 1];
        struct mailstore_msg *tail = NULL;
        size_t nt = 0;
        if ((c->n == 1 || mailstore_msg_still(fd, &c->msgs[0])) &&
            mailstore_scan_fd(fd, last->offset, 0, &tail, &nt) == 0 && nt >= 1 && tail[0].offset == last->offset &&
            tail[0].content_len == last->content_len &&
            memcmp(tail[0].hash, last->hash, MAILSTORE_HASH_LEN) == 0 && c->n - 1 + nt <= MAILSTORE_MESSAGES_MAX) {
            n = c->n - 1 + nt;
            list = xreallocarray(NULL, n, sizeof *list);
            memcpy(list, c->msgs, (c->n - 1) * sizeof *list);
            memcpy(list + c->n - 1, tail, nt * sizeof *list);
            done = true;
        }
        free(tail);
    }
    if (!done && mailstore_scan_fd(fd, 0, 0, &list, &n) < 0) {
        c->mbox_valid = false;
        return -1;
    }
    free(c->msgs);
    c->msgs = mailstore_dup(list, n, sizeof *list);
    c->n = n;
    c->mbox = now;
    c->mbox_valid = true;
    *msgs_r = list;
    *n_r = n;
    return 0;
}

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

static void mailstore_keywords_clear(struct mailstore *ms)
{
    for (size_t i = 0; i < ms->nkeywords; i++)
        free(ms->keyword[i]);
    ms->nkeywords = 0;
}

/* ---- \Recent ----------------------------------------------------------------------------- */

static uint32_t mailstore_recent_load(struct mailstore *ms)
{
    uint32_t first = mailstore_gen_recent(ms->mbox_path);
    if (first)
        return first;
    char *path = mailstore_path(ms->index_path, ".recent", ""), *data = NULL;
    size_t len = 0;
    unsigned v = 0, uid = 0;
    first = 1;
    if (fs_read_file(path, 64, &data, &len) == 0 && sscanf(data, "%u %u", &v, &uid) == 2 && v == ms->uidvalidity &&
        uid > 0)
        first = uid;
    free(data);
    free(path);
    mailstore_gen_set_recent(ms->mbox_path, first);
    return first;
}

uint32_t mailstore_recent_first(struct mailstore *ms)
{
    uint32_t first = mailstore_recent_load(ms);
    if (first > ms->uidnext) /* a rebuilt index: numbers start again */
        first = 1;
    return first;
}

uint32_t mailstore_recent_claim(struct mailstore *ms, uint32_t upto)
{
    uint32_t first = mailstore_recent_first(ms);
    if (upto <= first)
        return upto;
    mailstore_gen_set_recent(ms->mbox_path, upto);
    /*
     * advisory: not fsynced (see mailstore.h). Written in place, one fixed-width line that
     * covers any earlier one (a SELECT per new message made a new file and a rename each
     * time); kill -9 cannot tear a write; after a power loss see mailstore.h.
     */
    char *path = mailstore_path(ms->index_path, ".recent", "");
    char text[32];
    int n = snprintf(text, sizeof text, "%10u %10u\n", ms->uidvalidity, upto);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    bool ok = fd >= 0 && pwrite(fd, text, (size_t)n, 0) == n;
    if (fd >= 0 && close(fd) < 0)
        ok = false;
    if (!ok)
        log_warn("mailstore: cannot write %s", path);
    free(path);
    return first;
}

int mailstore_keyword_index(const struct mailstore *ms, const char *name)
{
    for (size_t i = 0; i < ms->nkeywords; i++)
        if (strcasecmp(ms->keyword[i], name) == 0)
            return (int)i;
    return -1;
}

void mailstore_flags_apply(enum mailstore_store_mode mode, unsigned flags, uint32_t keywords, unsigned *f,
                           uint32_t *k)
{
    if (mode == MAILSTORE_SET) {
        *f = flags;
        *k = keywords;
    } else if (mode == MAILSTORE_ADD) {
        *f |= flags;
        *k |= keywords;
    } else {
        *f &= ~flags;
        *k &= ~keywords;
    }
}

int mailstore_keyword_add(struct mailstore *ms, const char *name)
{
    int k = mailstore_keyword_index(ms, name);
    if (k >= 0)
        return k;
    if (ms->nkeywords >= MAILSTORE_KEYWORDS_MAX || !mbox_keyword_valid(name, strlen(name)))
        return -1;
    ms->keyword[ms->nkeywords] = xstrdup(name);
    return (int)ms->nkeywords++;
}

/* As mailstore_cache_index_set, taking e over (no copy). */
static void mailstore_cache_index_take(const struct mailstore *ms, struct mailstore_cache *c,
                                       const struct mailstore_stamp *stamp, const struct mailstore_stamp *journal,
                                       uint32_t validity, uint32_t next, struct mailstore_entry *e, size_t n)
{
    mailstore_cache_index_drop(c);
    for (size_t i = 0; i < ms->nkeywords; i++)
        c->keyword[i] = xstrdup(ms->keyword[i]);
    c->nkeywords = ms->nkeywords;
    c->validity = validity;
    c->uidnext = next;
    c->highestmodseq = ms->highestmodseq;
    c->e = e;
    c->ne = n;
    c->index = *stamp;
    c->journal = *journal;
    c->index_valid = true;
}

static void mailstore_cache_index_set(const struct mailstore *ms, struct mailstore_cache *c,
                                      const struct mailstore_stamp *stamp, const struct mailstore_stamp *journal,
                                      uint32_t validity, uint32_t next, const struct mailstore_entry *e, size_t n)
{
    mailstore_cache_index_drop(c);
    for (size_t i = 0; i < ms->nkeywords; i++)
        c->keyword[i] = xstrdup(ms->keyword[i]);
    c->nkeywords = ms->nkeywords;
    c->validity = validity;
    c->uidnext = next;
    c->highestmodseq = ms->highestmodseq;
    c->e = mailstore_dup(e, n, sizeof *e);
    c->ne = n;
    c->index = *stamp;
    c->journal = *journal;
    c->index_valid = true;
}

/* ---- the flag journal ---------------------------------------------------------------------- */

/*
 * INDEX.journal beside the index: a STORE appends what it changed instead of rewriting the
 * index. First line: MAILSTORE_JOURNAL_MAGIC, UIDVALIDITY, and the inode and mtime (ns) of
 * the index file it extends; then "K name" (a keyword added to the table, in table order)
 * and "F uid flags keywords" (hex: a message's flags and keyword bits, absolute values)
 * lines. Replaying it is idempotent. A journal whose first line names another index (an
 * index written since, e.g. by a fold whose journal removal did not happen) is ignored. A
 * line without its newline (a torn append) ends the journal and is cut off by the next
 * append. Every index write folds the journal into the index, then removes it.
 */
#define MAILSTORE_JOURNAL_MAGIC "zolder-flag-journal 1"

static void mailstore_put_num(struct buf *b, unsigned long long v, unsigned base);
static void mailstore_cache_index_from(struct mailstore *ms, const struct mailstore_msg *msgs, size_t n);
static int mailstore_index_update(struct mailstore *ms, const struct mailstore_msg *list, const bool *marked,
                                  size_t first_new, size_t n, size_t nkeywords_before);

static int mailstore_entry_uid_cmp(const void *key, const void *elem)
{
    uint32_t uid = *(const uint32_t *)key, other = ((const struct mailstore_entry *)elem)->uid;
    return uid < other ? -1 : uid > other;
}

/*
 * Applies the journal to entries e (the index as loaded: UIDVALIDITY validity, file stamp
 * index), adding its keywords to ms's table.
 */
static void mailstore_journal_apply(struct mailstore *ms, uint32_t validity, const struct mailstore_stamp *index,
                                    struct mailstore_entry **ep, size_t *np, uint32_t *nextp)
{
    struct mailstore_entry *e = *ep;
    size_t n = *np, cap = n;
    char *data, *body;
    size_t len;
    if (index_journal_read(ms->journal_path, MAILSTORE_JOURNAL_MAGIC, validity, index, MAILSTORE_INDEX_MAX, &data,
                           &body, &len) < 0) {
        log_warn("mailstore: cannot read %s; flag changes in it are lost", ms->journal_path);
        return;
    }
    size_t applied = 0;
    for (char *line = body, *nl; line && line < body + len; line = nl + 1) {
        nl = strchr(line, '\n'); /* whole lines only (a torn last one was left out) */
        *nl = '\0';
        unsigned uid = 0, flags = 0, kw = 0;
        unsigned long long off = 0, span = 0;
        char hex[MAILSTORE_HASH_LEN * 2 + 1];
        int used = 0;
        unsigned long long modseq = 0;
        if (line[0] == 'A' &&
            sscanf(line, "A %u %llu %llu %32s %x %x %llu%n", &uid, &off, &span, hex, &flags, &kw, &modseq, &used) == 7 &&
            line[used] == '\0' && strlen(hex) == (size_t)MAILSTORE_HASH_LEN * 2) {
            if (modseq > ms->highestmodseq)
                ms->highestmodseq = modseq;
            /* a message added after the index was written (idempotent: known UIDs are skipped) */
            if (n && uid <= e[n - 1].uid) {
                if (!bsearch(&uid, e, n, sizeof *e, mailstore_entry_uid_cmp)) {
                    log_warnx("mailstore: %s: UID %u out of order; the rest is ignored", ms->journal_path, uid);
                    break;
                }
            } else if (uid == 0 || uid == UINT32_MAX || n >= MAILSTORE_MESSAGES_MAX) {
                break;
            } else {
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    e = xreallocarray(e, cap, sizeof *e);
                }
                struct mailstore_entry *x = &e[n];
                memset(x, 0, sizeof *x);
                x->uid = uid;
                x->offset = off;
                x->span = span;
                if (mailstore_hex(hex, x->hash, MAILSTORE_HASH_LEN) < 0)
                    break;
                x->has_flags = true;
                x->flags = flags & MAILSTORE_KEPT_FLAGS;
                x->keywords = ms->nkeywords < 32 ? kw & ((1u << ms->nkeywords) - 1) : kw;
                x->modseq = modseq;
                n++;
                if (uid >= *nextp)
                    *nextp = uid + 1;
            }
        } else if (line[0] == 'K' && line[1] == ' ') {
            if (mailstore_keyword_add(ms, line + 2) < 0)
                break;
        } else if (sscanf(line, "F %u %x %x %llu%n", &uid, &flags, &kw, &modseq, &used) == 4 && line[used] == '\0') {
            struct mailstore_entry *x = bsearch(&uid, e, n, sizeof *e, mailstore_entry_uid_cmp);
            if (x) {
                x->flags = flags & MAILSTORE_KEPT_FLAGS;
                x->keywords = ms->nkeywords < 32 ? kw & ((1u << ms->nkeywords) - 1) : kw;
                x->has_flags = true;
                x->modseq = modseq;
            }
            if (modseq > ms->highestmodseq)
                ms->highestmodseq = modseq;
        } else if (sscanf(line, "M %llu%n", &modseq, &used) == 1 && line[used] == '\0') {
            if (modseq > ms->highestmodseq)
                ms->highestmodseq = modseq;
        } else {
            log_warnx("mailstore: %s is damaged after %zu records; the rest is ignored", ms->journal_path, applied);
            break;
        }
        applied++;
    }
    free(data);
    *ep = e;
    *np = n;
}

/*
 * Appends the flags of the messages marked in changed (and the keywords added to ms's table
 * from nkeywords_before on) to the journal, and fsyncs it: after 0, the change survives a
 * crash. -1: nothing of it is promised (a partial record is cut off again).
 */
static int mailstore_journal_append(struct mailstore *ms, const struct mailstore_msg *list, const bool *changed,
                                    size_t first_new, size_t n, size_t nkeywords_before)
{
    struct index_journal j;
    if (index_journal_open(&j, ms->journal_path, MAILSTORE_JOURNAL_MAGIC, ms->uidvalidity, ms->index_path) < 0)
        return -1;
    struct buf b;
    buf_init(&b, 0);
    for (size_t k = nkeywords_before; k < ms->nkeywords; k++)
        buf_printf(&b, "K %s\n", ms->keyword[k]);
    for (size_t i = first_new; i < n; i++) {
        char hex[MAILSTORE_HASH_LEN * 2 + 1];
        for (size_t k = 0; k < MAILSTORE_HASH_LEN; k++) {
            hex[k * 2] = "0123456789abcdef"[list[i].hash[k] >> 4];
            hex[k * 2 + 1] = "0123456789abcdef"[list[i].hash[k] & 15];
        }
        hex[sizeof hex - 1] = '\0';
        buf_append_str(&b, "A ");
        mailstore_put_num(&b, list[i].uid, 10);
        buf_append_char(&b, ' ');
        mailstore_put_num(&b, list[i].offset, 10);
        buf_append_char(&b, ' ');
        mailstore_put_num(&b, list[i].span, 10);
        buf_append_char(&b, ' ');
        buf_append_str(&b, hex);
        buf_append_char(&b, ' ');
        mailstore_put_num(&b, list[i].flags & MAILSTORE_KEPT_FLAGS, 16);
        buf_append_char(&b, ' ');
        mailstore_put_num(&b, list[i].keywords, 16);
        buf_append_char(&b, ' ');
        mailstore_put_num(&b, list[i].modseq, 10);
        buf_append_char(&b, '\n');
    }
    for (size_t i = 0; changed && i < first_new; i++) {
        if (!changed[i])
            continue;
        buf_append_str(&b, "F ");
        mailstore_put_num(&b, list[i].uid, 10);
        buf_append_char(&b, ' ');
        mailstore_put_num(&b, list[i].flags & MAILSTORE_KEPT_FLAGS, 16);
        buf_append_char(&b, ' ');
        mailstore_put_num(&b, list[i].keywords, 16);
        buf_append_char(&b, ' ');
        mailstore_put_num(&b, list[i].modseq, 10);
        buf_append_char(&b, '\n');
    }
    int rc = index_journal_commit(&j, ms->journal_path, ms->index_dir, b.data ? b.data : "", b.len);
    buf_free(&b);
    return rc;
}

/* 0 loaded, -1 missing or unusable (then rebuilt). Loads the keyword table into ms. */
static int mailstore_index_load(struct mailstore *ms, uint32_t *validity_r, uint32_t *next_r,
                                struct mailstore_entry **entries_r, size_t *n_r)
{
    char *data;
    size_t len;
    *entries_r = NULL;
    *n_r = 0;
    struct mailstore_cache *c = mailstore_cache_get(ms->mbox_path);
    struct stat st;
    struct mailstore_stamp now = {0, 0, 0}, journal;
    bool stamped = stat(ms->index_path, &st) == 0;
    if (stamped)
        mailstore_stamp_of(&st, &now);
    mailstore_stat_stamp(ms->journal_path, &journal);
    if (stamped && c->index_valid && mailstore_stamp_eq(&c->index, &now) && mailstore_stamp_eq(&c->journal, &journal)) {
        /* as this process last read or wrote it: no parse */
        mailstore_keywords_clear(ms);
        for (size_t i = 0; i < c->nkeywords; i++)
            ms->keyword[i] = xstrdup(c->keyword[i]);
        ms->nkeywords = c->nkeywords;
        ms->highestmodseq = c->highestmodseq;
        *validity_r = c->validity;
        *next_r = c->uidnext;
        *entries_r = mailstore_dup(c->e, c->ne, sizeof *c->e);
        *n_r = c->ne;
        return 0;
    }
    mailstore_cache_index_drop(c);
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
    bool v2 = false, v3 = false;
    unsigned long long highest = 1;
    if ((nl = strchr(line, '\n')) == NULL)
        goto out;
    *nl = '\0';
    char magic_end;
    if (sscanf(line, MAILSTORE_INDEX_MAGIC " %u %u %llu%c", &v, &next, &highest, &magic_end) == 3)
        v2 = v3 = true;
    else if (sscanf(line, MAILSTORE_INDEX_MAGIC_V2 " %u %u%c", &v, &next, &magic_end) == 2)
        v2 = true;
    else if (sscanf(line, MAILSTORE_INDEX_MAGIC_V1 " %u %u%c", &v, &next, &magic_end) != 2)
        goto out;
    if (highest == 0)
        goto out;
    ms->highestmodseq = highest;
    if (v == 0 || next == 0)
        goto out;
    mailstore_keywords_clear(ms);
    if (v2) {
        line = nl + 1;
        if ((nl = strchr(line, '\n')) == NULL || strncmp(line, "keywords", 8) != 0)
            goto out;
        *nl = '\0';
        for (char *kw = strtok(line + 8, " "); kw; kw = strtok(NULL, " "))
            if (mailstore_keyword_add(ms, kw) < 0)
                goto out;
    }
    uint32_t last = 0;
    for (line = nl + 1; *line; line = nl + 1) {
        if ((nl = strchr(line, '\n')) == NULL)
            goto out;
        *nl = '\0';
        unsigned uid, flags = 0, kw = 0;
        unsigned long long off, span;
        char hex[MAILSTORE_HASH_LEN * 2 + 1];
        int used = 0;
        unsigned long long modseq = 1;
        int want = v3 ? 7 : v2 ? 6 : 4;
        int got = v3   ? sscanf(line, "%u %llu %llu %32s %x %x %llu%n", &uid, &off, &span, hex, &flags, &kw, &modseq, &used)
                  : v2 ? sscanf(line, "%u %llu %llu %32s %x %x%n", &uid, &off, &span, hex, &flags, &kw, &used)
                       : sscanf(line, "%u %llu %llu %32s%n", &uid, &off, &span, hex, &used);
        if (got != want || line[used] != '\0' || strlen(hex) != (size_t)MAILSTORE_HASH_LEN * 2 || uid <= last ||
            uid >= next || n >= MAILSTORE_MESSAGES_MAX)
            goto out;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            e = xreallocarray(e, cap, sizeof *e);
        }
        e[n].uid = uid;
        e[n].offset = off;
        e[n].span = span;
        e[n].has_flags = v2;
        e[n].flags = flags & MAILSTORE_KEPT_FLAGS;
        e[n].keywords = ms->nkeywords < 32 ? kw & ((1u << ms->nkeywords) - 1) : kw;
        e[n].modseq = modseq;
        if (modseq > ms->highestmodseq)
            ms->highestmodseq = modseq;
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
        mailstore_keywords_clear(ms);
        free(e);
        return -1;
    }
    if (stamped)
        mailstore_journal_apply(ms, v, &now, &e, &n, &next);
    *validity_r = v;
    *next_r = next;
    *entries_r = e;
    *n_r = n;
    if (stamped)
        mailstore_cache_index_set(ms, c, &now, &journal, v, next, e, n);
    return 0;
}

static void mailstore_note_index(struct mailstore *ms)
{
    struct stat st;
    if (stat(ms->index_path, &st) == 0) {
        ms->seen_index_ino = (unsigned long long)st.st_ino;
        ms->seen_index_mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    }
}

/* Appends v in decimal (base 10) or hex (base 16): the index is written per STORE, printf is slow. */
static void mailstore_put_num(struct buf *b, unsigned long long v, unsigned base)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    buf_append(b, tmp + i, sizeof tmp - i);
}

static int mailstore_index_write(struct mailstore *ms, const struct mailstore_msg *msgs, size_t n)
{
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, MAILSTORE_INDEX_MAGIC " %u %u %llu\nkeywords", ms->uidvalidity, ms->uidnext, ms->highestmodseq);
    for (size_t i = 0; i < ms->nkeywords; i++)
        buf_printf(&b, " %s", ms->keyword[i]);
    buf_append_char(&b, '\n');
    for (size_t i = 0; i < n; i++) {
        char hex[MAILSTORE_HASH_LEN * 2 + 2];
        mailstore_put_num(&b, msgs[i].uid, 10);
        buf_append_char(&b, ' ');
        mailstore_put_num(&b, msgs[i].offset, 10);
        buf_append_char(&b, ' ');
        mailstore_put_num(&b, msgs[i].span, 10);
        hex[0] = ' ';
        for (size_t k = 0; k < MAILSTORE_HASH_LEN; k++) {
            hex[1 + k * 2] = "0123456789abcdef"[msgs[i].hash[k] >> 4];
            hex[2 + k * 2] = "0123456789abcdef"[msgs[i].hash[k] & 15];
        }
        buf_append(&b, hex, sizeof hex - 1);
        buf_append_char(&b, ' ');
        mailstore_put_num(&b, msgs[i].flags, 16);
        buf_append_char(&b, ' ');
        mailstore_put_num(&b, msgs[i].keywords, 16);
        buf_append_char(&b, ' ');
        mailstore_put_num(&b, msgs[i].modseq ? msgs[i].modseq : 1, 10);
        buf_append_char(&b, '\n');
    }
    char *tmp = mailstore_path(ms->index_path, ".tmp", "");
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        bool written = fs_write_all(fd, b.data ? b.data : "", b.len) == 0;
        mailstore_step("index-written");
        if (written && fsync(fd) == 0 && rename(tmp, ms->index_path) == 0 && fs_fsync_dir(ms->index_dir) == 0)
            rc = 0;
        close(fd);
    }
    if (rc == 0) {
        /* the journal's changes are in the index now (replaying it would be harmless too) */
        mailstore_step("index-renamed");
        if (unlink(ms->journal_path) < 0 && errno != ENOENT)
            log_warn("mailstore: cannot remove %s", ms->journal_path);
        mailstore_step("journal-removed");
    }
    if (rc == 0)
        mailstore_cache_index_from(ms, msgs, n);
    else
        mailstore_cache_index_drop(mailstore_cache_get(ms->mbox_path));
    if (rc < 0) {
        log_warn("mailstore: cannot write %s", ms->index_path);
        unlink(tmp);
    }
    free(tmp);
    buf_free(&b);
    mailstore_note_index(ms);
    return rc;
}

/* The process cache's index becomes msgs, as a load of the index and journal would give it. */
static void mailstore_cache_index_from(struct mailstore *ms, const struct mailstore_msg *msgs, size_t n)
{
    struct mailstore_cache *c = mailstore_cache_get(ms->mbox_path);
    struct stat st;
    if (stat(ms->index_path, &st) == 0) {
        struct mailstore_stamp now, journal;
        mailstore_stamp_of(&st, &now);
        mailstore_stat_stamp(ms->journal_path, &journal);
        struct mailstore_entry *e = xreallocarray(NULL, n ? n : 1, sizeof *e);
        uint32_t kwmask = ms->nkeywords < 32 ? (1u << ms->nkeywords) - 1 : UINT32_MAX;
        for (size_t i = 0; i < n; i++) {
            e[i].uid = msgs[i].uid;
            e[i].offset = msgs[i].offset;
            e[i].span = msgs[i].span;
            memcpy(e[i].hash, msgs[i].hash, MAILSTORE_HASH_LEN);
            e[i].has_flags = true;
            e[i].flags = msgs[i].flags & MAILSTORE_KEPT_FLAGS;
            e[i].keywords = msgs[i].keywords & kwmask;
            e[i].modseq = msgs[i].modseq ? msgs[i].modseq : 1;
        }
        mailstore_cache_index_take(ms, c, &now, &journal, ms->uidvalidity, ms->uidnext, e, n);
    } else {
        mailstore_cache_index_drop(c);
    }
}

static int mailstore_entry_cmp(const void *a, const void *b)
{
    const struct mailstore_entry *x = a, *y = b;
    int c = memcmp(x->hash, y->hash, MAILSTORE_HASH_LEN);
    if (c)
        return c;
    return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* Reads a message's flags from its Status/X-Status/X-Keywords fields. */
static void mailstore_flags_from_headers(struct mailstore *ms, int fd, struct mailstore_msg *m)
{
    size_t want = m->content_len < MAILSTORE_HEADER_READ_MAX ? (size_t)m->content_len : MAILSTORE_HEADER_READ_MAX;
    char *p = xmalloc(want + 1);
    ssize_t got = want ? pread(fd, p, want, (off_t)(m->offset + m->from_len)) : 0;
    m->flags = 0;
    m->keywords = 0;
    if (got > 0) {
        struct buf kw;
        buf_init(&kw, 0);
        size_t hl = mbox_header_len(p, (size_t)got);
        m->flags = mbox_flags_parse(p, hl, &kw) & MBOX_FLAGS_IMAP;
        buf_append_char(&kw, '\0');
        for (char *k = strtok(kw.data, " "); k; k = strtok(NULL, " ")) {
            int bit = mailstore_keyword_add(ms, k);
            if (bit >= 0)
                m->keywords |= 1u << bit;
        }
        buf_free(&kw);
    }
    free(p);
}

/*
 * Gives every scanned message a UID: the index entry with the same hash and the smallest
 * UID above the previous message's, else a new one; and its flags: the entry's, or the
 * headers' for a new message and for one whose bytes changed in place. Writes the index
 * when anything changed.
 */
static void mailstore_assign(struct mailstore *ms, int fd, struct mailstore_msg *msgs, size_t n)
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
        ms->highestmodseq = 1;
        changed = true;
    }
    /* how many messages are as the index has them, from the first on */
    size_t same = 0;
    while (!changed && same < n && same < ne && e[same].offset == msgs[same].offset &&
           e[same].span == msgs[same].span && e[same].has_flags &&
           memcmp(e[same].hash, msgs[same].hash, MAILSTORE_HASH_LEN) == 0)
        same++;
    if (!changed && same == ne && n > ne && next <= UINT32_MAX - (n - ne)) {
        /* the common change: messages appended (delivery, APPEND); the rest as it was */
        size_t nkeywords_before = ms->nkeywords;
        for (size_t i = 0; i < ne; i++) {
            msgs[i].uid = e[i].uid;
            msgs[i].flags = e[i].flags;
            msgs[i].keywords = e[i].keywords;
            msgs[i].modseq = e[i].modseq;
        }
        unsigned long long modseq = ++ms->highestmodseq; /* one for the messages found now */
        for (size_t i = ne; i < n; i++) {
            msgs[i].uid = next++;
            msgs[i].modseq = modseq;
            if (fd >= 0)
                mailstore_flags_from_headers(ms, fd, &msgs[i]);
        }
        free(e);
        ms->uidvalidity = validity;
        ms->uidnext = next;
        if (mailstore_index_update(ms, msgs, NULL, ne, n, nkeywords_before) < 0)
            log_warn("mailstore: cannot record the new messages of %s", ms->mbox_path);
        return;
    }
    changed |= ne != n || same != n;
    if (!changed) {
        for (size_t i = 0; i < n; i++) {
            msgs[i].uid = e[i].uid; /* the common case: nothing moved */
            msgs[i].flags = e[i].flags;
            msgs[i].keywords = e[i].keywords;
            msgs[i].modseq = e[i].modseq;
        }
    } else {
        unsigned long long modseq = ++ms->highestmodseq; /* for what is new or changed now */
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
            const struct mailstore_entry *match = NULL;
            for (size_t k = lo; k < ne && memcmp(e[k].hash, msgs[i].hash, MAILSTORE_HASH_LEN) == 0; k++)
                if (e[k].uid > last) {
                    match = &e[k];
                    break;
                }
            /* a copy of a message expunged and not compacted yet (found again out of order):
             * it stays expunged, under a UID no session is ever shown */
            bool hidden = false;
            for (size_t k = lo; !match && k < ne && memcmp(e[k].hash, msgs[i].hash, MAILSTORE_HASH_LEN) == 0; k++)
                hidden = hidden || (e[k].flags & MAILSTORE_EXPUNGED);
            uint32_t uid = match ? match->uid : 0;
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
            /* expunged stays expunged, whatever a mail reader did to its flag fields */
            bool keep = match && ((match->flags & MAILSTORE_EXPUNGED) || (match->has_flags && match->span == msgs[i].span));
            if (hidden) {
                msgs[i].flags = MAILSTORE_EXPUNGED;
                msgs[i].modseq = modseq;
            } else if (keep) {
                msgs[i].flags = match->flags;
                msgs[i].keywords = match->keywords;
                msgs[i].modseq = match->modseq;
            } else {
                /* new, or rewritten in place by a mail reader: its headers say */
                msgs[i].modseq = modseq;
                if (fd >= 0)
                    mailstore_flags_from_headers(ms, fd, &msgs[i]);
            }
            last = uid;
        }
    }
    free(e);
    ms->uidvalidity = validity;
    ms->uidnext = next;
    if (changed)
        mailstore_index_write(ms, msgs, n);
}

static void mailstore_note_mbox(struct mailstore *ms, int fd)
{
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0) {
        ms->seen_size = (unsigned long long)st.st_size;
        ms->seen_ino = (unsigned long long)st.st_ino;
        ms->seen_mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    } else {
        ms->seen_size = 0;
        ms->seen_ino = 0;
        ms->seen_mtime_ns = 0;
    }
}

/* Under the lock: the mailbox's current messages with their UIDs, the index brought in step. */
static enum mailstore_result mailstore_sync(struct mailstore *ms, int fd, struct mailstore_msg **msgs_r,
                                            size_t *n_r, const char **error_r)
{
    *msgs_r = NULL;
    *n_r = 0;
    mailstore_note_mbox(ms, fd);
    if (fd >= 0 && mailstore_scan_cached(ms, fd, msgs_r, n_r) < 0) {
        *error_r = "cannot read mailbox (or too many messages)";
        return MAILSTORE_ERROR;
    }
    mailstore_assign(ms, fd, *msgs_r, *n_r);
    mailstore_note_index(ms);
    return MAILSTORE_OK;
}

/* ---- the API ------------------------------------------------------------------------------- */

static bool mailstore_take_current(struct mailstore *ms, bool fresh);

enum mailstore_result mailstore_open_at(struct mailstore *ms, const struct mailstore_location *loc,
                                        const char **error_r)
{
    memset(ms, 0, sizeof *ms);
    const char *base = strrchr(loc->mbox_path, '/');
    const char *index_base = strrchr(loc->index_path, '/');
    if (!base || !base[1] || base[1] == '.' || !index_base || !index_base[1] || !loc->user[0]) {
        *error_r = "invalid mailbox location";
        return MAILSTORE_ERROR;
    }
    ms->user = xstrdup(loc->user);
    ms->mbox_path = xstrdup(loc->mbox_path);
    ms->spool_dir = base == loc->mbox_path ? xstrdup("/") : xstrndup(loc->mbox_path, (size_t)(base - loc->mbox_path));
    ms->lock_path = mailstore_path(ms->mbox_path, ".lock", "");
    char *dot = mailstore_path("/.", base + 1, ".new");
    ms->tmp_path = mailstore_path(ms->spool_dir, dot, "");
    free(dot);
    ms->index_path = xstrdup(loc->index_path);
    ms->index_dir = index_base == loc->index_path ? xstrdup("/")
                                                  : xstrndup(loc->index_path, (size_t)(index_base - loc->index_path));
    ms->journal_path = mailstore_path(ms->index_path, ".journal", "");
    if (fs_mkdir_p(ms->index_dir, 0700) < 0) {
        *error_r = "cannot create the index folder";
        return MAILSTORE_ERROR;
    }
    mailstore_job_opened(ms);
    /* another session of this process read it as it is now: share that, no lock, no read */
    if (mailstore_take_current(ms, true))
        return MAILSTORE_OK;
    int fd;
    enum mailstore_result r = mailstore_lock(ms, false, &fd, error_r);
    if (r != MAILSTORE_OK)
        return r;
    struct mailstore_msg *list = NULL;
    size_t n = 0;
    r = mailstore_sync(ms, fd, &list, &n, error_r);
    if (r == MAILSTORE_OK)
        mailstore_gen_adopt(ms, mailstore_publish(ms, list, n));
    mailstore_unlock(ms, fd);
    return r;
}

enum mailstore_result mailstore_open(struct mailstore *ms, const char *state_dir, const char *user,
                                     const char **error_r)
{
    memset(ms, 0, sizeof *ms);
    if (!user[0] || user[0] == '.' || strchr(user, '/') || strlen(user) > 64) {
        *error_r = "invalid mailbox name";
        return MAILSTORE_ERROR;
    }
    char *spool_dir = mailstore_path(state_dir, "/spool/mail", "");
    char *mbox_path = mailstore_path(spool_dir, "/", user);
    char *index_root = mailstore_path(state_dir, "/index/", user);
    char *index_path = mailstore_path(index_root, "/INBOX", "");
    enum mailstore_result r;
    if (fs_mkdir_p(spool_dir, 0700) < 0) {
        *error_r = "cannot create mail folders";
        r = MAILSTORE_ERROR;
    } else {
        struct mailstore_location loc = {.mbox_path = mbox_path, .index_path = index_path, .user = user};
        r = mailstore_open_at(ms, &loc, error_r);
    }
    free(spool_dir);
    free(mbox_path);
    free(index_root);
    free(index_path);
    return r;
}

/*
 * Under the lock, when the mbox is as ms->msgs was read (same inode, size and mtime) and only
 * the index changed (another session's flags): a copy of ms->msgs with the flags from the
 * index, no scan. False when the index does not match ms->msgs entry for entry (then a full
 * sync decides).
 */
static bool mailstore_refresh_flags(struct mailstore *ms, int fd, struct mailstore_msg **list_r, size_t *n_r)
{
    *list_r = NULL;
    *n_r = 0;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || (unsigned long long)st.st_size != ms->seen_size ||
        (unsigned long long)st.st_ino != ms->seen_ino ||
        (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec != ms->seen_mtime_ns)
        return false;
    uint32_t validity = 0, next = 0;
    struct mailstore_entry *e = NULL;
    size_t ne = 0;
    if (mailstore_index_load(ms, &validity, &next, &e, &ne) < 0)
        return false;
    /*
     * The index's entries are ms->msgs with, between them, the messages expunged and not yet
     * compacted (in no generation): those are made from their entries (what the index and the
     * journal need of them; they are never read or shown).
     */
    bool same = validity == ms->uidvalidity && ne >= ms->nmsgs;
    struct mailstore_msg *list = same ? xreallocarray(NULL, ne ? ne : 1, sizeof *list) : NULL;
    size_t j = 0;
    for (size_t i = 0; same && i < ne; i++) {
        if (e[i].flags & MAILSTORE_EXPUNGED) {
            memset(&list[i], 0, sizeof list[i]);
            list[i].uid = e[i].uid;
            list[i].offset = e[i].offset;
            list[i].span = e[i].span;
            memcpy(list[i].hash, e[i].hash, MAILSTORE_HASH_LEN);
        } else {
            same = j < ms->nmsgs && e[i].has_flags && e[i].uid == ms->msgs[j].uid &&
                   e[i].offset == ms->msgs[j].offset && e[i].span == ms->msgs[j].span &&
                   memcmp(e[i].hash, ms->msgs[j].hash, MAILSTORE_HASH_LEN) == 0;
            if (same)
                list[i] = ms->msgs[j++];
        }
        list[i].flags = e[i].flags;
        list[i].keywords = e[i].keywords;
        list[i].modseq = e[i].modseq;
    }
    same = same && j == ms->nmsgs;
    if (same) {
        ms->uidnext = next;
        mailstore_note_index(ms);
        *list_r = list;
        *n_r = ne;
    } else {
        free(list);
    }
    free(e);
    return same;
}

/* The keyword table of the process cache's index when it has more names than ms's (shared
 * names keep their bits: the table only grows under one UIDVALIDITY). */
static void mailstore_keywords_from_cache(struct mailstore *ms)
{
    struct mailstore_cache *c = mailstore_cache_get(ms->mbox_path);
    if (!c->index_valid || c->validity != ms->uidvalidity || c->nkeywords <= ms->nkeywords)
        return;
    for (size_t i = ms->nkeywords; i < c->nkeywords; i++)
        ms->keyword[i] = xstrdup(c->keyword[i]);
    ms->nkeywords = c->nkeywords;
}

/*
 * Without the lock: when the mailbox's current generation was read from the files as they
 * are now (all three stamps), ms takes it. fresh: ms has no generation yet (an open): its
 * UIDVALIDITY and keyword table come from the generation and the process cache's index.
 */
static bool mailstore_take_current(struct mailstore *ms, bool fresh)
{
    struct mailstore_gen *cur = mailstore_gen_current(ms->mbox_path);
    if (!cur || (!fresh && cur->uidvalidity != ms->uidvalidity))
        return false;
    if (fresh) {
        struct mailstore_cache *c = mailstore_cache_get(ms->mbox_path);
        if (!c->index_valid || c->validity != cur->uidvalidity)
            return false;
    }
    struct mailstore_stamp mbox, index, journal;
    mailstore_stamps_now(ms, &mbox, &index, &journal);
    if (!mailstore_stamp_eq(&mbox, &cur->mbox) || !mailstore_stamp_eq(&index, &cur->index) ||
        !mailstore_stamp_eq(&journal, &cur->journal))
        return false;
    if (fresh)
        ms->uidvalidity = cur->uidvalidity;
    mailstore_keywords_from_cache(ms);
    if (cur != ms->gen)
        mailstore_gen_adopt(ms, mailstore_gen_ref(cur));
    ms->seen_size = mbox.size;
    ms->seen_ino = mbox.ino;
    ms->seen_mtime_ns = mbox.mtime_ns;
    ms->seen_index_ino = index.ino;
    ms->seen_index_mtime_ns = index.mtime_ns;
    return true;
}

enum mailstore_result mailstore_refresh(struct mailstore *ms, const char **error_r)
{
    if (ms->maildir)
        return maildir_store_refresh(ms, error_r);
    /*
     * Another session of this process read or changed the mailbox last, and both files are
     * as it saw them: share its generation, no lock, no read.
     */
    if (mailstore_take_current(ms, false))
        return MAILSTORE_OK;
    int fd;
    enum mailstore_result r = mailstore_lock(ms, false, &fd, error_r);
    if (r != MAILSTORE_OK)
        return r;
    struct mailstore_msg *flagged = NULL;
    size_t nflagged = 0;
    if (mailstore_refresh_flags(ms, fd, &flagged, &nflagged)) {
        mailstore_gen_adopt(ms, mailstore_publish(ms, flagged, nflagged));
        mailstore_unlock(ms, fd);
        return MAILSTORE_OK;
    }
    uint32_t validity = ms->uidvalidity;
    struct mailstore_msg *list = NULL;
    size_t n = 0;
    r = mailstore_sync(ms, fd, &list, &n, error_r);
    if (r == MAILSTORE_OK && ms->uidvalidity != validity) {
        /* The index was rebuilt: the UIDs a session holds mean nothing now. */
        mailstore_gen_unref(mailstore_publish(ms, list, n)); /* for the sessions that open anew */
        mailstore_unlock(ms, fd);
        *error_r = "the mailbox index was rebuilt (new UIDVALIDITY)";
        return MAILSTORE_GONE;
    }
    if (r == MAILSTORE_OK)
        mailstore_gen_adopt(ms, mailstore_publish(ms, list, n));
    mailstore_unlock(ms, fd);
    return r;
}

bool mailstore_changed(struct mailstore *ms)
{
    if (ms->maildir)
        return maildir_store_changed(ms);
    struct mailstore_gen *cur = mailstore_gen_current(ms->mbox_path);
    if (cur != ms->gen || !ms->gen)
        return true; /* another session of this process saw or made a change */
    /* another program's change: the files are not as the generation was read from them */
    struct mailstore_stamp mbox, index, journal;
    mailstore_stamps_now(ms, &mbox, &index, &journal);
    return !mailstore_stamp_eq(&mbox, &ms->gen->mbox) || !mailstore_stamp_eq(&index, &ms->gen->index) ||
           !mailstore_stamp_eq(&journal, &ms->gen->journal);
}

static bool mailstore_same(const struct mailstore_msg *a, const struct mailstore_msg *b)
{
    /* The hash leaves out the flag fields: a message whose Status was rewritten is the same. */
    return memcmp(a->hash, b->hash, MAILSTORE_HASH_LEN) == 0;
}

enum mailstore_result mailstore_read_msg(struct mailstore *ms, const struct mailstore_msg *orig, struct buf *raw,
                                         const char **error_r)
{
    if (ms->maildir)
        return maildir_store_read_msg(ms, orig, raw, error_r);
    /* m: where the message is believed to be; the newest generation knows best */
    struct mailstore_msg at = *orig, *m = &at;
    const struct mailstore_gen *cur = mailstore_gen_current(ms->mbox_path);
    const struct mailstore_msg *newer = cur && cur != ms->gen && cur->uidvalidity == ms->uidvalidity
                                            ? mailstore_gen_find(cur, m->uid) : NULL;
    if (newer && mailstore_same(newer, m))
        at = *newer;
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
        mailstore_same(&list[0], m) && list[0].content_len == m->content_len)
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
                    m->content_len = list[k].content_len;
                    m->size = list[k].size;
                    m->lines = list[k].lines;
                    found = m;
                }
        if (r == MAILSTORE_OK) {
            /* the scan becomes the current generation: the session's next refresh takes it */
            mailstore_gen_unref(mailstore_publish(ms, list, n));
            list = NULL;
        }
        ms->uidvalidity = validity; /* the session keeps its view */
        ms->seen_mtime_ns = -1;     /* ms->msgs is older than this scan: changed says so */
        if (r == MAILSTORE_OK && !found) {
            *error_r = "the message was removed by another program";
            r = MAILSTORE_GONE;
        }
    }
    if (found && m->content_len > MAILSTORE_MESSAGE_MAX) {
        *error_r = "message too large to read";
        r = MAILSTORE_ERROR;
        found = NULL;
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

enum mailstore_result mailstore_read(struct mailstore *ms, size_t i, struct buf *raw, const char **error_r)
{
    return mailstore_read_msg(ms, &ms->msgs[i], raw, error_r);
}

static int mailstore_uid_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * Copies len bytes at off in from to to's file position: in the kernel (copy_file_range, no
 * trip through user space), or with pread/write where the kernel cannot (another file
 * system, an old kernel).
 */
static int mailstore_copy(int from, int to, unsigned long long off, unsigned long long len, char *chunk)
{
    while (len) {
        loff_t in = (loff_t)off;
        size_t want = len < (1UL << 30) ? (size_t)len : (1UL << 30);
        ssize_t n = copy_file_range(from, &in, to, NULL, want, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EXDEV, ENOSYS, EINVAL...; or 0 at an unexpected end: the plain copy decides */
        off += (unsigned long long)n;
        len -= (unsigned long long)n;
    }
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

/* The keywords of m as a space-separated list. */
static void mailstore_keyword_text(const struct mailstore *ms, uint32_t keywords, struct buf *out)
{
    for (size_t k = 0; k < ms->nkeywords; k++)
        if (keywords & (1u << k)) {
            if (out->len)
                buf_append_char(out, ' ');
            buf_append_str(out, ms->keyword[k]);
        }
    buf_append_char(out, '\0');
}

/*
 * Copies message m with its flag fields written anew: From_ line, header (rewritten), body.
 * A header longer than MAILSTORE_HEADER_READ_MAX without its end is copied as it is.
 */
static int mailstore_copy_flagged(const struct mailstore *ms, int from, int to, const struct mailstore_msg *m,
                                  char *chunk)
{
    size_t want = m->content_len < MAILSTORE_HEADER_READ_MAX ? (size_t)m->content_len : MAILSTORE_HEADER_READ_MAX;
    char *p = xmalloc(want + 1);
    size_t got = 0;
    while (got < want) {
        ssize_t k = pread(from, p + got, want - got, (off_t)(m->offset + m->from_len + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    size_t hl = got == want ? mbox_header_len(p, got) : 0;
    bool complete = hl > 0 && (hl < got || got == m->content_len);
    int rc;
    if (!complete) {
        rc = mailstore_copy(from, to, m->offset, m->span, chunk);
    } else {
        struct buf out, kw;
        buf_init(&out, 0);
        buf_init(&kw, 0);
        mailstore_keyword_text(ms, m->keywords, &kw);
        mbox_flags_rewrite(p, hl, m->flags & MBOX_FLAGS_IMAP, kw.data, &out);
        rc = mailstore_copy(from, to, m->offset, m->from_len, chunk);
        if (rc == 0)
            rc = fs_write_all(to, out.data ? out.data : "", out.len);
        /* the body and the separator as they are */
        if (rc == 0)
            rc = mailstore_copy(from, to, m->offset + m->from_len + hl, m->span - m->from_len - hl, chunk);
        buf_free(&out);
        buf_free(&kw);
    }
    free(p);
    return rc;
}

/*
 * The scan of a file mailstore_rewrite just wrote, from what it wrote: the n kept messages
 * (old scan) now at newoff, the file ending at end; only the messages whose headers were
 * rewritten are scanned again. Falls back to a full scan when the file is not as written.
 * The result goes into the process cache.
 */
static int mailstore_scan_known(struct mailstore *ms, int fd, const struct mailstore_msg *kept, size_t n,
                                const unsigned long long *newoff, const bool *rewritten, unsigned long long end,
                                struct mailstore_msg **msgs_r, size_t *n_r)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || (unsigned long long)st.st_size != end)
        return mailstore_scan_cached(ms, fd, msgs_r, n_r);
    struct mailstore_msg *fresh = xreallocarray(NULL, n ? n : 1, sizeof *fresh);
    for (size_t i = 0; i < n; i++) {
        fresh[i] = kept[i];
        fresh[i].offset = newoff[i];
        fresh[i].span = (i + 1 < n ? newoff[i + 1] : end) - newoff[i];
        fresh[i].uid = 0;
        fresh[i].flags = 0;
        fresh[i].keywords = 0;
        if (rewritten[i]) {
            struct mailstore_msg *one = NULL;
            size_t none = 0;
            bool good = mailstore_scan_fd(fd, fresh[i].offset, fresh[i].span, &one, &none) == 0 && none == 1 &&
                        one[0].offset == fresh[i].offset && one[0].span == fresh[i].span;
            if (good)
                fresh[i] = one[0];
            free(one);
            if (!good) {
                free(fresh);
                return mailstore_scan_cached(ms, fd, msgs_r, n_r);
            }
        }
    }
    struct mailstore_cache *c = mailstore_cache_get(ms->mbox_path);
    free(c->msgs);
    c->msgs = mailstore_dup(fresh, n, sizeof *fresh);
    c->n = n;
    mailstore_stamp_of(&st, &c->mbox);
    c->mbox_valid = true;
    *msgs_r = fresh;
    *n_r = n;
    return 0;
}

/*
 * Rewrites the mailbox under the write lock without the messages in uids (sorted) and with
 * the flag fields of dirty messages written. force: rewrite even when nothing is removed
 * (flags only).
 */
static enum mailstore_result mailstore_rewrite(struct mailstore *ms, const uint32_t *sorted, size_t n, bool flags_only,
                                               size_t *removed_r, const char **error_r)
{
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
    bool *gone = NULL, *rewritten = NULL;
    unsigned long long *newoff = NULL;
    char *chunk = NULL;
    r = mailstore_sync(ms, fd, &list, &nlist, error_r);
    if (r != MAILSTORE_OK)
        goto out;
    if (ms->uidvalidity != validity) {
        /* The index was rebuilt: our UIDs may name other messages now. Delete nothing. */
        *error_r = "the mailbox index was rebuilt meanwhile";
        r = MAILSTORE_ERROR;
        goto out;
    }
    gone = xcalloc(nlist ? nlist : 1, sizeof *gone);
    size_t ngone = 0, ndirty = 0, nasked = 0;
    for (size_t i = 0; i < nlist; i++) {
        if (list[i].flags & MAILSTORE_EXPUNGED) {
            gone[i] = true; /* expunged earlier (deferred): the bytes go now */
            ngone++;
        } else if (n && bsearch(&list[i].uid, sorted, n, sizeof *sorted, mailstore_uid_cmp)) {
            gone[i] = true;
            ngone++;
            nasked++;
        } else if (list[i].flags & MAILSTORE_DIRTY) {
            ndirty++;
        }
    }
    if (ngone == 0 && (ndirty == 0 || !flags_only))
        goto refresh;
    struct stat st;
    chunk = xmalloc(MAILSTORE_READ_CHUNK);
    unlink(ms->tmp_path); /* a leftover of a crash: we hold the lock, nobody else writes it */
    int out = open(ms->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    int ok = out >= 0 && fstat(fd, &st) == 0 && fchmod(out, st.st_mode & 07777) == 0;
    /*
     * Bytes before the first message are kept as they are. Unchanged messages next to each
     * other are copied as one stretch (one copy_file_range, not three calls a message).
     */
    unsigned long long pos = 0, run_from = 0, run_len = 0;
    if (nlist) {
        run_len = list[0].offset;
        pos = run_len;
    }
    size_t kept = 0;
    /* where each kept message lands, so that the new file need not be scanned again */
    newoff = xreallocarray(NULL, nlist ? nlist : 1, sizeof *newoff);
    rewritten = xcalloc(nlist ? nlist : 1, sizeof *rewritten);
    for (size_t i = 0; ok && i < nlist; i++) {
        if (gone[i])
            continue;
        newoff[kept] = pos;
        rewritten[kept] = (list[i].flags & MAILSTORE_DIRTY) != 0;
        if (rewritten[kept]) {
            ok = mailstore_copy(fd, out, run_from, run_len, chunk) == 0;
            run_len = 0;
            ok = ok && mailstore_copy_flagged(ms, fd, out, &list[i], chunk) == 0;
            off_t at = ok ? lseek(out, 0, SEEK_CUR) : -1;
            ok = ok && at >= 0;
            pos = (unsigned long long)at;
        } else {
            if (run_len && run_from + run_len != list[i].offset) {
                ok = mailstore_copy(fd, out, run_from, run_len, chunk) == 0;
                run_len = 0;
            }
            if (!run_len)
                run_from = list[i].offset;
            run_len += list[i].span;
            pos += list[i].span;
        }
        list[kept++] = list[i];
    }
    ok = ok && mailstore_copy(fd, out, run_from, run_len, chunk) == 0;
    off_t end = out >= 0 && ok ? lseek(out, 0, SEEK_CUR) : -1;
    ok = ok && end >= 0 && (unsigned long long)end == pos;
    ok = ok && fsync(out) == 0;
    if (out >= 0)
        close(out);
    if (ok)
        mailstore_step("mbox-written");
    ok = ok && rename(ms->tmp_path, ms->mbox_path) == 0;
    if (!ok) {
        unlink(ms->tmp_path);
        *error_r = "cannot rewrite mailbox";
        r = MAILSTORE_ERROR;
        goto out;
    }
    if (fs_fsync_dir(ms->spool_dir) < 0)
        log_warn("mailstore: cannot sync %s", ms->spool_dir);
    mailstore_step("mbox-renamed");
    *removed_r = nasked;
    /* Where everything is now: scan the new file (we still hold the dotlock). */
    struct mailstore_msg *fresh = NULL;
    size_t nfresh = 0;
    int nfd = open(ms->mbox_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (nfd >= 0 &&
        mailstore_scan_known(ms, nfd, list, kept, newoff, rewritten, (unsigned long long)end, &fresh, &nfresh) == 0 &&
        nfresh == kept) {
        for (size_t i = 0; i < kept; i++) {
            if (memcmp(fresh[i].hash, list[i].hash, MAILSTORE_HASH_LEN) != 0)
                break;
            fresh[i].uid = list[i].uid;
            fresh[i].flags = list[i].flags & ~MAILSTORE_DIRTY;
            fresh[i].keywords = list[i].keywords;
            fresh[i].modseq = list[i].modseq;
        }
        if (nasked)
            ms->highestmodseq++; /* RFC 7162 3.2: an expunge raises HIGHESTMODSEQ too */
        mailstore_note_mbox(ms, nfd);
        mailstore_index_write(ms, fresh, nfresh);
        free(list);
        list = fresh;
        nlist = nfresh;
    } else {
        /* cannot happen with the lock held; the next open rebuilds the index from the file */
        free(fresh);
        log_warnx("mailstore: %s changed under the lock while rewriting", ms->mbox_path);
        nlist = kept;
    }
    if (nfd >= 0)
        close(nfd);
refresh:
    mailstore_gen_adopt(ms, mailstore_publish(ms, list, nlist));
    list = NULL;
out:
    free(newoff);
    free(rewritten);
    free(chunk);
    free(gone);
    free(list);
    mailstore_unlock(ms, fd);
    return r;
}

/* ---- deferred compaction ------------------------------------------------------------------- */

/*
 * One job per mbox some mailstore of this process has open or that waits for a compaction:
 * how many have it open, what its last published list left for the rewrite (expunged
 * messages' bytes, flags not in the headers) and the timer of the scheduled rewrite. Jobs
 * live on the event loop thread only; one is freed when nothing has the mailbox open and
 * nothing waits.
 */
struct mailstore_job {
    struct mailstore_job *next;
    char *mbox_path, *index_path, *user;
    unsigned opens;
    size_t pending;
    unsigned long long pending_bytes, file_size;
    bool dirty;
    bool running;          /* the timer's compaction is under way (its own open/close) */
    struct event *timer;
};

static struct mailstore_job *mailstore_jobs;
static struct event_base *mailstore_compact_base;
static unsigned long mailstore_compact_delay;
static bool mailstore_flushing; /* mailstore_compact_flush: one try each, no retry */

static bool mailstore_deferred(void)
{
    return mailstore_compact_base && mailstore_compact_delay;
}

static struct mailstore_job *mailstore_job_get(const struct mailstore *ms, bool create)
{
    for (struct mailstore_job *j = mailstore_jobs; j; j = j->next)
        if (strcmp(j->mbox_path, ms->mbox_path) == 0)
            return j;
    if (!create)
        return NULL;
    struct mailstore_job *j = xcalloc(1, sizeof *j);
    j->mbox_path = xstrdup(ms->mbox_path);
    j->index_path = xstrdup(ms->index_path);
    j->user = xstrdup(ms->user);
    j->next = mailstore_jobs;
    mailstore_jobs = j;
    return j;
}

/* ms has the mailbox open (mailstore_close counts it out) */
static void mailstore_job_opened(struct mailstore *ms)
{
    mailstore_job_get(ms, true)->opens++;
    ms->counted = true;
}

static void mailstore_job_free_if_idle(struct mailstore_job *j)
{
    if (j->opens || j->running || j->pending || j->dirty || (j->timer && evtimer_pending(j->timer, NULL)))
        return;
    for (struct mailstore_job **pp = &mailstore_jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    if (j->timer)
        event_free(j->timer);
    free(j->mbox_path);
    free(j->index_path);
    free(j->user);
    free(j);
}

static void mailstore_job_run(evutil_socket_t fd, short what, void *arg);

/* The compaction in delay_s seconds (0: at the loop's next turn), unless one is due sooner. */
static void mailstore_job_schedule(struct mailstore_job *j, unsigned long delay_s)
{
    if (!mailstore_compact_base)
        return;
    if (!j->timer)
        j->timer = evtimer_new(mailstore_compact_base, mailstore_job_run, j);
    struct timeval due, now, want, tv = {(time_t)delay_s, 0};
    if (evtimer_pending(j->timer, &due)) {
        event_base_gettimeofday_cached(mailstore_compact_base, &now);
        timeradd(&now, &tv, &want);
        if (!timercmp(&due, &want, >))
            return; /* already due by then */
    }
    evtimer_add(j->timer, &tv);
}

/* What publish found (under the lock): the job remembers it and schedules the rewrite. */
static void mailstore_job_note(const struct mailstore *ms, size_t pending, unsigned long long bytes, bool dirty,
                               unsigned long long file_size)
{
    if (ms->maildir)
        return;
    struct mailstore_job *j = mailstore_job_get(ms, (pending || dirty) && mailstore_deferred());
    if (!j)
        return;
    j->pending = pending;
    j->pending_bytes = bytes;
    j->dirty = dirty;
    j->file_size = file_size;
    if ((pending || dirty) && mailstore_deferred() && !j->running)
        mailstore_job_schedule(j, mailstore_compact_delay);
}

static bool mailstore_job_over_threshold(const struct mailstore_job *j)
{
    return j->pending && (j->pending_bytes >= MAILSTORE_COMPACT_BYTES ||
                          j->pending_bytes * MAILSTORE_COMPACT_FRACTION >= j->file_size);
}

static void mailstore_job_run(evutil_socket_t fd, short what, void *arg)
{
    struct mailstore_job *j = arg;
    (void)fd;
    (void)what;
    struct mailstore ms;
    struct mailstore_location loc = {.mbox_path = j->mbox_path, .index_path = j->index_path, .user = j->user};
    const char *error = NULL;
    struct stat st;
    if (lstat(j->mbox_path, &st) < 0) {
        /* the folder was deleted or renamed meanwhile (its index moved with it: the
         * expunges wait there for the next session): nothing here to compact, and no index
         * to make again at the old place */
        j->pending = 0;
        j->dirty = false;
        mailstore_job_free_if_idle(j);
        return;
    }
    j->running = true;
    enum mailstore_result r = mailstore_open_at(&ms, &loc, &error);
    if (r == MAILSTORE_OK)
        r = mailstore_compact(&ms, &error);
    mailstore_close(&ms);
    j->running = false;
    if (r != MAILSTORE_OK && mailstore_flushing) {
        log_warnx("mailstore: %s: compaction %s: %s; the next start compacts", j->mbox_path, mailstore_result_name(r),
                  error ? error : "?");
    } else if (r != MAILSTORE_OK) {
        log_warnx("mailstore: %s: compaction %s: %s; trying again in %lu s", j->mbox_path, mailstore_result_name(r),
                  error ? error : "?", mailstore_compact_delay ? mailstore_compact_delay : 1);
        mailstore_job_schedule(j, mailstore_compact_delay ? mailstore_compact_delay : 1);
    }
    mailstore_job_free_if_idle(j);
}

/* Forgets every job without running it (mailstore_cache_clear: tests, a "new process"). */
static void mailstore_jobs_drop(void)
{
    while (mailstore_jobs) {
        struct mailstore_job *j = mailstore_jobs;
        mailstore_jobs = j->next;
        if (j->timer)
            event_free(j->timer);
        free(j->mbox_path);
        free(j->index_path);
        free(j->user);
        free(j);
    }
}

void mailstore_compact_setup(struct event_base *base, unsigned long delay_s)
{
    if (base != mailstore_compact_base)
        mailstore_compact_flush();
    mailstore_compact_base = base;
    mailstore_compact_delay = delay_s;
}

void mailstore_compact_flush(void)
{
    /* each run may free its job: take them one at a time (a failed one is not retried) */
    mailstore_flushing = true;
    for (bool again = true; again;) {
        again = false;
        for (struct mailstore_job *j = mailstore_jobs; j; j = j->next)
            if (j->timer && evtimer_pending(j->timer, NULL)) {
                evtimer_del(j->timer);
                mailstore_job_run(-1, 0, j);
                again = true;
                break;
            }
    }
    for (struct mailstore_job *j = mailstore_jobs; j; j = j->next)
        if (j->timer) {
            event_free(j->timer);
            j->timer = NULL;
        }
    mailstore_flushing = false;
    mailstore_compact_base = NULL;
    mailstore_compact_delay = 0;
}

size_t mailstore_pending(const struct mailstore *ms, unsigned long long *bytes_r)
{
    const struct mailstore_job *j = ms->maildir ? NULL : mailstore_job_get(ms, false);
    *bytes_r = j ? j->pending_bytes : 0;
    return j ? j->pending : 0;
}

enum mailstore_result mailstore_compact(struct mailstore *ms, const char **error_r)
{
    if (ms->maildir)
        return MAILSTORE_OK;
    size_t removed = 0;
    return mailstore_rewrite(ms, NULL, 0, true, &removed, error_r);
}

/*
 * Deferred expunge: the messages are marked MAILSTORE_EXPUNGED in the journal (fsync'd)
 * under the lock; their bytes stay until the compaction.
 */
static enum mailstore_result mailstore_expunge_mark(struct mailstore *ms, const uint32_t *sorted, size_t n,
                                                    size_t *removed_r, const char **error_r)
{
    int fd;
    enum mailstore_result r = mailstore_lock(ms, false, &fd, error_r);
    if (r != MAILSTORE_OK)
        return r;
    if (fd < 0) {
        mailstore_unlock(ms, fd);
        return MAILSTORE_OK;
    }
    uint32_t validity = ms->uidvalidity;
    struct mailstore_msg *list = NULL;
    size_t nlist = 0, count = 0;
    r = mailstore_sync(ms, fd, &list, &nlist, error_r);
    if (r == MAILSTORE_OK && ms->uidvalidity != validity) {
        *error_r = "the mailbox index was rebuilt meanwhile";
        r = MAILSTORE_ERROR;
    }
    if (r == MAILSTORE_OK) {
        bool *marked = xcalloc(nlist ? nlist : 1, sizeof *marked);
        unsigned long long modseq = ms->highestmodseq + 1; /* RFC 7162 3.2: an expunge raises it */
        for (size_t i = 0; i < nlist; i++)
            if (!(list[i].flags & MAILSTORE_EXPUNGED) &&
                bsearch(&list[i].uid, sorted, n, sizeof *sorted, mailstore_uid_cmp)) {
                list[i].flags |= MAILSTORE_EXPUNGED;
                list[i].modseq = modseq;
                marked[i] = true;
                count++;
            }
        if (count) {
            ms->highestmodseq = modseq;
            if (mailstore_index_update(ms, list, marked, nlist, nlist, ms->nkeywords) < 0) {
                *error_r = "cannot write the mailbox index";
                r = MAILSTORE_ERROR;
            }
        }
        free(marked);
    }
    if (r == MAILSTORE_OK) {
        *removed_r = count;
        mailstore_gen_adopt(ms, mailstore_publish(ms, list, nlist));
    } else {
        free(list);
    }
    mailstore_unlock(ms, fd);
    mailstore_step("expunge-marked");
    struct mailstore_job *j = mailstore_job_get(ms, false);
    if (r == MAILSTORE_OK && j && !j->running && mailstore_job_over_threshold(j)) {
        const char *why = NULL;
        if (mailstore_compact(ms, &why) != MAILSTORE_OK) /* the expunge stands; the timer tries again */
            log_warnx("mailstore: %s: compaction: %s", ms->mbox_path, why ? why : "?");
    }
    return r;
}

enum mailstore_result mailstore_expunge(struct mailstore *ms, const uint32_t *uids, size_t n,
                                        size_t *removed_r, const char **error_r)
{
    if (ms->maildir)
        return maildir_store_expunge(ms, uids, n, removed_r, error_r);
    *removed_r = 0;
    if (n == 0)
        return MAILSTORE_OK;
    uint32_t *sorted = xreallocarray(NULL, n, sizeof *sorted);
    memcpy(sorted, uids, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, mailstore_uid_cmp);
    enum mailstore_result r = mailstore_deferred() ? mailstore_expunge_mark(ms, sorted, n, removed_r, error_r)
                                                   : mailstore_rewrite(ms, sorted, n, false, removed_r, error_r);
    free(sorted);
    return r;
}

enum mailstore_result mailstore_write_flags(struct mailstore *ms, const char **error_r)
{
    if (ms->maildir)
        return MAILSTORE_OK /* flags are in the file names already */;
    /* deferred: the flags reach the headers with the next compaction (scheduled when they
     * were stored) */
    if (mailstore_deferred())
        return MAILSTORE_OK;
    /* nothing to write when the newest generation, read from the files as they are, has no
     * flag waiting for the mbox headers (the common LOGOUT): no lock, no read */
    if (mailstore_take_current(ms, false)) {
        bool dirty = false;
        for (size_t i = 0; i < ms->nmsgs && !dirty; i++)
            dirty = (ms->msgs[i].flags & MAILSTORE_DIRTY) != 0;
        if (!dirty)
            return MAILSTORE_OK;
    }
    size_t removed = 0;
    return mailstore_rewrite(ms, NULL, 0, true, &removed, error_r);
}

/*
 * A change made durable: the flags of the messages marked and the messages from first_new on
 * (new ones) appended to the journal, or, once the journal has grown past its bound
 * (MAILSTORE_JOURNAL_MIN, or a quarter of the index when that is more), folded with
 * everything into a new index.
 */
static int mailstore_index_update(struct mailstore *ms, const struct mailstore_msg *list, const bool *marked,
                                  size_t first_new, size_t n, size_t nkeywords_before)
{
    struct mailstore_stamp index, journal;
    mailstore_stat_stamp(ms->index_path, &index);
    mailstore_stat_stamp(ms->journal_path, &journal);
    if (journal.size >= index_journal_bound(index.size))
        return mailstore_index_write(ms, list, n);
    if (mailstore_journal_append(ms, list, marked, first_new, n, nkeywords_before) < 0) {
        log_warn("mailstore: cannot append to %s; writing the whole index", ms->journal_path);
        return mailstore_index_write(ms, list, n);
    }
    mailstore_cache_index_from(ms, list, n);
    mailstore_note_index(ms);
    return 0;
}

enum mailstore_result mailstore_store(struct mailstore *ms, const uint32_t *uids, size_t n,
                                      enum mailstore_store_mode mode, unsigned flags,
                                      const char *const *keywords, size_t nkeywords, const char **error_r)
{
    return mailstore_store_if(ms, uids, n, mode, flags, keywords, nkeywords, 0, NULL, NULL, error_r);
}

enum mailstore_result mailstore_store_if(struct mailstore *ms, const uint32_t *uids, size_t n,
                                         enum mailstore_store_mode mode, unsigned flags,
                                         const char *const *keywords, size_t nkeywords,
                                         unsigned long long unchangedsince, uint32_t **modified_r,
                                         size_t *nmodified_r, const char **error_r)
{
    if (ms->maildir)
        return maildir_store_store_if(ms, uids, n, mode, flags, keywords, nkeywords, unchangedsince, modified_r,
                                      nmodified_r, error_r);
    if (modified_r) {
        *modified_r = NULL;
        *nmodified_r = 0;
    }
    int fd;
    enum mailstore_result r = mailstore_lock(ms, false, &fd, error_r);
    if (r != MAILSTORE_OK)
        return r;
    uint32_t validity = ms->uidvalidity;
    struct mailstore_msg *list = NULL;
    size_t nlist = 0;
    if (!mailstore_refresh_flags(ms, fd, &list, &nlist)) /* else the mbox is as ms->msgs has it: no scan */
        r = mailstore_sync(ms, fd, &list, &nlist, error_r);
    if (r == MAILSTORE_OK && ms->uidvalidity != validity) {
        *error_r = "the mailbox index was rebuilt (new UIDVALIDITY)";
        r = MAILSTORE_GONE;
    }
    uint32_t kw = 0;
    size_t nkeywords_before = ms->nkeywords;
    for (size_t k = 0; r == MAILSTORE_OK && k < nkeywords; k++) {
        int bit = mode == MAILSTORE_REMOVE ? mailstore_keyword_index(ms, keywords[k])
                                           : mailstore_keyword_add(ms, keywords[k]);
        if (bit >= 0)
            kw |= 1u << bit;
        else if (mode != MAILSTORE_REMOVE) {
            *error_r = "too many keywords in this mailbox";
            r = MAILSTORE_ERROR;
        }
    }
    if (r == MAILSTORE_OK) {
        uint32_t *sorted = xreallocarray(NULL, n ? n : 1, sizeof *sorted);
        if (n)
            memcpy(sorted, uids, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, mailstore_uid_cmp);
        bool changed = false;
        bool *marked = xcalloc(nlist ? nlist : 1, sizeof *marked);
        uint32_t *modified = NULL;
        size_t nmodified = 0;
        unsigned long long modseq = ms->highestmodseq + 1; /* one for every message this call changes */
        flags &= MBOX_FLAGS_IMAP;
        for (size_t i = 0; i < nlist; i++) {
            if (!n || (list[i].flags & MAILSTORE_EXPUNGED) ||
                !bsearch(&list[i].uid, sorted, n, sizeof *sorted, mailstore_uid_cmp))
                continue;
            struct mailstore_msg *m = &list[i];
            if (unchangedsince && m->modseq > unchangedsince) {
                /* RFC 7162 3.1.3: changed since the client looked; left alone, reported */
                if (!modified)
                    modified = xreallocarray(NULL, n, sizeof *modified);
                if (nmodified < n)
                    modified[nmodified++] = m->uid;
                continue;
            }
            unsigned f = m->flags & MBOX_FLAGS_IMAP;
            uint32_t k = m->keywords;
            mailstore_flags_apply(mode, flags, kw, &f, &k);
            if (f != (m->flags & MBOX_FLAGS_IMAP) || k != m->keywords) {
                m->flags = f | MAILSTORE_DIRTY;
                m->keywords = k;
                m->modseq = modseq;
                changed = true;
                marked[i] = true;
            }
        }
        free(sorted);
        if (changed)
            ms->highestmodseq = modseq;
        if (modified_r) {
            *modified_r = modified;
            *nmodified_r = nmodified;
        } else {
            free(modified);
        }
        if (changed && mailstore_index_update(ms, list, marked, nlist, nlist, nkeywords_before) < 0) {
            *error_r = "cannot write the mailbox index";
            r = MAILSTORE_ERROR;
        }
        free(marked);
    }
    if (r == MAILSTORE_OK)
        mailstore_gen_adopt(ms, mailstore_publish(ms, list, nlist));
    else
        free(list);
    mailstore_unlock(ms, fd);
    return r;
}

enum mailstore_result mailstore_append(struct mailstore *ms, const char *data, size_t len, time_t when,
                                       unsigned flags, const char *const *keywords, size_t nkeywords,
                                       uint32_t *uid_r, const char **error_r)
{
    if (ms->maildir)
        return maildir_store_append(ms, data, len, when, flags, keywords, nkeywords, uid_r, error_r);
    struct mailstore_new one = {.data = data, .len = len, .when = when, .flags = flags, .keywords = keywords,
                                .nkeywords = nkeywords};
    return mailstore_append_many(ms, &one, 1, uid_r, error_r);
}

enum mailstore_result mailstore_append_many(struct mailstore *ms, const struct mailstore_new *msgs, size_t n,
                                            uint32_t *uids_r, const char **error_r)
{
    for (size_t i = 0; i < n; i++)
        uids_r[i] = 0;
    if (ms->maildir) {
        for (size_t i = 0; i < n; i++) {
            enum mailstore_result r = maildir_store_append(ms, msgs[i].data, msgs[i].len, msgs[i].when, msgs[i].flags,
                                                           msgs[i].keywords, msgs[i].nkeywords, &uids_r[i], error_r);
            if (r != MAILSTORE_OK)
                return r; /* the caller takes out what was added (uids_r says) */
        }
        return MAILSTORE_OK;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += msgs[i].len;
        if (msgs[i].len > MAILSTORE_MESSAGE_MAX || total > MAILSTORE_MESSAGE_MAX) {
            *error_r = "message too large";
            return MAILSTORE_ERROR;
        }
    }
    if (n == 0)
        return MAILSTORE_OK;
    int fd;
    enum mailstore_result r = mailstore_lock(ms, true, &fd, error_r);
    if (r != MAILSTORE_OK)
        return r;
    if (fd < 0) {
        /* no mailbox yet: create it as delivery would (we hold the dotlock) */
        fd = open(ms->mbox_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fd < 0 || fcntl(fd, F_SETLKW, &fl) < 0) {
            if (fd >= 0)
                close(fd);
            unlink(ms->lock_path);
            *error_r = "cannot create mailbox";
            return MAILSTORE_ERROR;
        }
    }
    uint32_t validity = ms->uidvalidity;
    struct stat st;
    struct buf entry;
    buf_init(&entry, 0);
    struct mailstore_msg *list = NULL;
    size_t nlist = 0;
    unsigned long long *at = xreallocarray(NULL, n, sizeof *at);
    if (fstat(fd, &st) < 0) {
        *error_r = "cannot stat mailbox";
        r = MAILSTORE_ERROR;
        goto out;
    }
    off_t size = st.st_size;
    /* The previous message must end with its blank separator line. */
    char tail[2] = {'\n', '\n'};
    if (size >= 2 && pread(fd, tail, 2, size - 2) != 2) {
        *error_r = "cannot read mailbox";
        r = MAILSTORE_ERROR;
        goto out;
    }
    if (size == 1)
        tail[0] = '\0';
    unsigned long long have = (unsigned long long)size; /* bytes before entry's end */
    for (size_t i = 0; i < n; i++) {
        if (have > 0 && tail[1] != '\n')
            buf_append_str(&entry, "\n\n");
        else if (have > 0 && tail[0] != '\n')
            buf_append_char(&entry, '\n');
        at[i] = (unsigned long long)size + entry.len;
        mbox_from_line(&entry, ms->user, msgs[i].when);
        struct mbox_quoter q;
        mbox_quoter_init(&q);
        mbox_quoter_feed(&q, msgs[i].data, msgs[i].len, &entry);
        mbox_quoter_finish(&q, &entry);
        have = (unsigned long long)size + entry.len;
        if (entry.len >= 2)
            tail[0] = entry.data[entry.len - 2];
        tail[1] = entry.data[entry.len - 1];
    }
    /* one write and one fsync for all of them */
    if (lseek(fd, size, SEEK_SET) != size || fs_write_all(fd, entry.data, entry.len) < 0 || fsync(fd) < 0) {
        if (ftruncate(fd, size) < 0 || fsync(fd) < 0)
            log_warn("mailstore: cannot truncate %s back to %lld", ms->mbox_path, (long long)size);
        *error_r = "cannot write mailbox";
        r = MAILSTORE_ERROR;
        goto out;
    }
    r = mailstore_sync(ms, fd, &list, &nlist, error_r);
    if (r != MAILSTORE_OK)
        goto out;
    if (ms->uidvalidity != validity) {
        *error_r = "the mailbox index was rebuilt (new UIDVALIDITY)";
        r = MAILSTORE_GONE;
        goto out;
    }
    size_t nkeywords_before = ms->nkeywords;
    bool *marked = xcalloc(nlist ? nlist : 1, sizeof *marked), any = false;
    size_t k = nlist; /* the new messages are at the end, in order: search backwards once */
    for (size_t i = n; r == MAILSTORE_OK && i-- > 0;) {
        while (k > 0 && list[k - 1].offset > at[i])
            k--;
        if (k == 0 || list[k - 1].offset != at[i]) {
            *error_r = "the appended message is not where it was written";
            r = MAILSTORE_ERROR;
            break;
        }
        struct mailstore_msg *m = &list[--k];
        uids_r[i] = m->uid;
        uint32_t kw = 0;
        for (size_t j = 0; j < msgs[i].nkeywords; j++) {
            int bit = mailstore_keyword_add(ms, msgs[i].keywords[j]);
            if (bit >= 0)
                kw |= 1u << bit;
        }
        unsigned flags = msgs[i].flags & MBOX_FLAGS_IMAP;
        if (flags || kw) {
            m->flags = flags | MAILSTORE_DIRTY;
            m->keywords = kw;
            marked[m - list] = true;
            any = true;
        }
    }
    if (r == MAILSTORE_OK && any && mailstore_index_update(ms, list, marked, nlist, nlist, nkeywords_before) < 0) {
        *error_r = "cannot write the mailbox index";
        r = MAILSTORE_ERROR;
    }
    free(marked);
    if (r != MAILSTORE_OK)
        goto out;
    mailstore_gen_adopt(ms, mailstore_publish(ms, list, nlist));
    list = NULL;
out:
    free(list);
    free(at);
    buf_free(&entry);
    mailstore_unlock(ms, fd);
    return r;
}

void mailstore_close(struct mailstore *ms)
{
    struct mailstore_job *j = ms->counted ? mailstore_job_get(ms, false) : NULL;
    if (j) {
        j->opens--;
        /* the last one with the mailbox open: compact within a second (not at once: clients
         * that log in and out in turn would otherwise cause a rewrite per session) */
        if (!j->opens && !j->running && (j->pending || j->dirty) && mailstore_deferred())
            mailstore_job_schedule(j, MAILSTORE_COMPACT_CLOSE_DELAY);
        mailstore_job_free_if_idle(j);
    }
    free(ms->user);
    free(ms->spool_dir);
    free(ms->mbox_path);
    free(ms->lock_path);
    free(ms->tmp_path);
    free(ms->index_dir);
    free(ms->index_path);
    free(ms->journal_path);
    mailstore_gen_unref(ms->gen);
    mailstore_keywords_clear(ms);
    memset(ms, 0, sizeof *ms);
}

enum mailstore_result mailstore_open_maildir(struct mailstore *ms, const char *maildir_path, const char *index_path,
                                             const char *user, const char **error_r)
{
    return maildir_store_open(ms, maildir_path, index_path, user, error_r);
}

enum mailstore_result mailstore_open_inbox(struct mailstore *ms, const char *state_dir, const char *user, bool maildir,
                                           const char **error_r)
{
    if (!maildir)
        return mailstore_open(ms, state_dir, user, error_r);
    memset(ms, 0, sizeof *ms);
    if (!user[0] || user[0] == '.' || strchr(user, '/') || strlen(user) > 64) {
        *error_r = "invalid mailbox name";
        return MAILSTORE_ERROR;
    }
    char *maildir_path = mailstore_path(state_dir, "/maildir/", user);
    char *index_root = mailstore_path(state_dir, "/index/", user);
    char *index_path = mailstore_path(index_root, "/INBOX", "");
    enum mailstore_result r = maildir_store_open(ms, maildir_path, index_path, user, error_r);
    free(maildir_path);
    free(index_root);
    free(index_path);
    return r;
}

enum mailstore_result mailstore_settle(struct mailstore *ms, const char **error_r)
{
    return ms->maildir ? maildir_store_settle(ms, error_r) : MAILSTORE_OK;
}
