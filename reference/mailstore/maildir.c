/*
 * maildir: the mail store's Maildir back-end (see maildir.h and mailstore.h, "Maildir").
 *
 * STANDARDS
 *   Maildir (cr.yp.to/proto/maildir.html) with the ":2," flag info mutt and Dovecot write;
 *   RFC 3501 2.3.1.1 (UIDs strictly ascending, UIDVALIDITY); RFC 1939 7 (UIDL persistent);
 *   RFC 7162 (MODSEQ).
 */
#include "maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fsutil.h"
#include "journal.h"
#include "log.h"
#include "maildir_name.h"
#include "mbox.h"
#include "mbox_flags.h"
#include "mbox_read.h"
#include "xalloc.h"

#define MAILDIR_INDEX_MAGIC_V1 "zolder-maildir-index 1"
#define MAILDIR_INDEX_MAGIC "zolder-maildir-index 2" /* 1 + the name's keyword letters a message */
#define MAILDIR_JOURNAL_MAGIC "zolder-maildir-journal 1"
#define MAILDIR_INDEX_MAX (256UL * 1024 * 1024)
#define MAILDIR_CACHES_MAX 64
#define MAILDIR_KEYWORDS_FILE "dovecot-keywords"
#define MAILDIR_KEYWORDS_FILE_MAX (64UL * 1024)
#define MAILDIR_LETTERS 26

/* One message as the last scan found it: the list entry and where its file is. */
struct md_msg {
    struct mailstore_msg m;
    char *key;           /* the file name without ":2,..." (the index's key) */
    char *name;          /* the file name now */
    bool in_new;         /* in new/ (else cur/) */
    char other[32];      /* uppercase info letters IMAP does not show (P): kept on rename */
    unsigned letters;    /* the name's keyword letters (bit N: 'a' + N), as the index last saw them */
    bool gone;           /* journal replay: removed ("X"), dropped at the end */
};

/*
 * The process's last scan of each Maildir (file names are not in the shared generations):
 * reading finds a message's file here by UID; STORE and EXPUNGE start from a fresh scan.
 */
struct md_cache {
    struct md_cache *next;
    char *path;
    uint32_t validity;
    struct md_msg *v;    /* UID order */
    size_t n;
    char *keyword[MAILSTORE_KEYWORDS_MAX];
    size_t nkeywords;
    bool stale;          /* the last change was not made durable: scan and read the index again */
};

/*
 * The index as it was last made durable (index file plus journal), for the next change's
 * journal records (md_index_update): UID order.
 */
struct md_base {
    struct mailstore_msg *m;
    unsigned *letters;
    size_t n;
    size_t nkeywords;    /* the keyword table's length then */
    bool full;           /* no usable index: write it whole */
    bool dirty;          /* md_sync: changes not yet made durable */
};

static struct md_cache *md_caches;

/*
 * A Maildir's keyword letters (its dovecot-keywords file, line "N NAME": letter 'a' + N is
 * keyword NAME), as bits of the mailbox's keyword table. Kept per Maildir in the process,
 * read again at every scan.
 */
struct md_letters {
    struct md_letters *next;
    char *path;
    signed char bit_of[MAILDIR_LETTERS];             /* keyword bit of letter N, -1: not ours */
    signed char letter_of[MAILSTORE_KEYWORDS_MAX];   /* letter N of keyword bit, -1: none */
    unsigned named;                                  /* letters the file names (ours or not) */
    bool loaded;
};

static struct md_letters *md_letter_maps;

static char *md_join(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *p = xmalloc(n);
    snprintf(p, n, "%s%s%s", a, b, c);
    return p;
}

static void md_msgs_free(struct md_msg *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].name);
    }
    free(v);
}

static void md_cache_free(struct md_cache *c)
{
    md_msgs_free(c->v, c->n);
    for (size_t i = 0; i < c->nkeywords; i++)
        free(c->keyword[i]);
    free(c->path);
    free(c);
}

static struct md_cache *md_cache_find(const char *path)
{
    for (struct md_cache *c = md_caches; c; c = c->next)
        if (strcmp(c->path, path) == 0)
            return c;
    return NULL;
}

/* Replaces the cache of ms's Maildir with v (taken over). */
static void md_cache_set(struct mailstore *ms, struct md_msg *v, size_t n)
{
    struct md_cache **pp = &md_caches, *c;
    size_t count = 0;
    for (; (c = *pp) != NULL; pp = &c->next, count++)
        if (strcmp(c->path, ms->mbox_path) == 0) {
            *pp = c->next;
            md_cache_free(c);
            break;
        }
    if (!c && count >= MAILDIR_CACHES_MAX) {
        for (pp = &md_caches; (*pp)->next; pp = &(*pp)->next)
            ;
        md_cache_free(*pp);
        *pp = NULL;
    }
    c = xcalloc(1, sizeof *c);
    c->path = xstrdup(ms->mbox_path);
    c->validity = ms->uidvalidity;
    c->v = v;
    c->n = n;
    for (size_t i = 0; i < ms->nkeywords; i++)
        c->keyword[i] = xstrdup(ms->keyword[i]);
    c->nkeywords = ms->nkeywords;
    c->next = md_caches;
    md_caches = c;
}

/* The last change was not made durable: the next call scans and reads the index again. */
static void md_cache_stale(const struct mailstore *ms)
{
    struct md_cache *c = (struct md_cache *)md_cache_find(ms->mbox_path);
    if (c)
        c->stale = true;
}

void maildir_store_cache_clear(void)
{
    while (md_caches) {
        struct md_cache *c = md_caches;
        md_caches = c->next;
        md_cache_free(c);
    }
    while (md_letter_maps) {
        struct md_letters *l = md_letter_maps;
        md_letter_maps = l->next;
        free(l->path);
        free(l);
    }
}

static void md_keywords_clear(struct mailstore *ms)
{
    for (size_t i = 0; i < ms->nkeywords; i++)
        free(ms->keyword[i]);
    ms->nkeywords = 0;
}

/* ---- stamps and generations ------------------------------------------------------------------ */

static void md_stamp(const char *path, struct mailstore_stamp *s)
{
    struct stat st;
    memset(s, 0, sizeof *s);
    if (stat(path, &st) == 0) {
        s->ino = (unsigned long long)st.st_ino;
        s->size = (unsigned long long)st.st_size;
        s->mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    }
}

static bool md_stamp_eq(const struct mailstore_stamp *a, const struct mailstore_stamp *b)
{
    return a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

/*
 * A generation's three stamps for a Maildir: cur/ (as "mbox"), the index with its journal
 * (a journal append changes its size and mtime, a fold the index's inode), new/ (as "journal").
 */
static void md_stamps_now(const struct mailstore *ms, struct mailstore_stamp *cur, struct mailstore_stamp *index,
                          struct mailstore_stamp *newdir)
{
    char *c = md_join(ms->mbox_path, "/cur", ""), *n = md_join(ms->mbox_path, "/new", "");
    struct mailstore_stamp journal;
    md_stamp(c, cur);
    md_stamp(ms->index_path, index);
    md_stamp(ms->journal_path, &journal);
    index->ino = index->ino * 1000003ULL ^ journal.ino;
    index->size += journal.size;
    index->mtime_ns += journal.mtime_ns;
    md_stamp(n, newdir);
    free(c);
    free(n);
}

/* Publishes v's list (v stays the caller's; the cache takes it) and returns the generation. */
static struct mailstore_gen *md_publish(struct mailstore *ms, struct md_msg *v, size_t n)
{
    struct mailstore_msg *list = xreallocarray(NULL, n ? n : 1, sizeof *list);
    for (size_t i = 0; i < n; i++)
        list[i] = v[i].m;
    struct mailstore_stamp cur, index, newdir;
    md_stamps_now(ms, &cur, &index, &newdir);
    md_cache_set(ms, v, n);
    return mailstore_gen_publish(ms->mbox_path, ms->uidvalidity, ms->uidnext, ms->highestmodseq, list, n, &cur, &index,
                                 &newdir);
}

/* Without the lock: the current generation was read from the folders as they are now. */
static bool md_take_current(struct mailstore *ms, bool fresh)
{
    struct mailstore_gen *g = mailstore_gen_current(ms->mbox_path);
    const struct md_cache *c = md_cache_find(ms->mbox_path);
    if (!g || !c || c->stale || c->validity != g->uidvalidity || (!fresh && g->uidvalidity != ms->uidvalidity))
        return false;
    struct mailstore_stamp cur, index, newdir;
    md_stamps_now(ms, &cur, &index, &newdir);
    if (!md_stamp_eq(&cur, &g->mbox) || !md_stamp_eq(&index, &g->index) || !md_stamp_eq(&newdir, &g->journal))
        return false;
    ms->uidvalidity = g->uidvalidity;
    for (size_t i = ms->nkeywords; i < c->nkeywords; i++)
        ms->keyword[i] = xstrdup(c->keyword[i]);
    if (c->nkeywords > ms->nkeywords)
        ms->nkeywords = c->nkeywords;
    if (g != ms->gen)
        mailstore_gen_adopt(ms, mailstore_gen_ref(g));
    return true;
}

/* ---- the lock (index updates only; readers of the files take none) --------------------------- */

static int md_lock(struct mailstore *ms, const char **error_r)
{
    int fd = open(ms->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fd < 0 || fcntl(fd, F_SETLKW, &fl) < 0) {
        if (fd >= 0)
            close(fd);
        *error_r = "cannot lock the mailbox index";
        return -1;
    }
    return fd;
}

static void md_unlock(int fd)
{
    close(fd); /* releases the fcntl lock; the file stays */
}

/* ---- sizes --------------------------------------------------------------------------------- */

/* The file's bytes as the mail store's "raw" form: mboxrd-quoted, LF line ends (mailstore_read). */
static void md_quote(const char *data, size_t len, struct buf *raw)
{
    struct mbox_quoter q;
    size_t before = raw->len;
    mbox_quoter_init(&q);
    mbox_quoter_feed(&q, data, len, raw);
    mbox_quoter_finish(&q, raw);
    if (raw->len > before) { /* the quoter ends with the blank line that separates mbox messages */
        raw->len--;
        raw->data[raw->len] = '\0';
    }
}

static int md_read_file(int dirfd_unused, const char *path, struct buf *out, unsigned long long *len_r)
{
    (void)dirfd_unused;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (unsigned long long)st.st_size > MAILSTORE_MESSAGE_MAX) {
        close(fd);
        errno = EFBIG;
        return -1;
    }
    size_t want = (size_t)st.st_size, got = 0;
    char *p = xmalloc(want + 1);
    while (got < want) {
        ssize_t k = read(fd, p + got, want - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    md_quote(p, got, out);
    free(p);
    *len_r = got;
    return 0;
}

/* RFC822.SIZE (exact: the CRLF wire form mbox_export makes of the raw form) and lines. */
static void md_measure(const char *path, struct mailstore_msg *m)
{
    struct buf raw, wire;
    unsigned long long len = 0;
    buf_init(&raw, 0);
    buf_init(&wire, 0);
    if (md_read_file(-1, path, &raw, &len) == 0) {
        m->size = mbox_export(raw.data ? raw.data : "", raw.len, 0, -1, &wire);
        m->lines = 0;
        for (size_t i = 0; i < raw.len; i++)
            m->lines += raw.data[i] == '\n';
    } else {
        m->size = m->content_len; /* too large to read (or gone): its file size, never read */
        m->lines = 0;
    }
    buf_free(&raw);
    buf_free(&wire);
}

static void md_key_hash(const char *key, unsigned char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL);
    memcpy(out, md, MAILSTORE_HASH_LEN);
}

/* ---- the index and its journal --------------------------------------------------------------- */

static bool md_num(const char **p, unsigned long long *v, unsigned base)
{
    char *end;
    errno = 0;
    *v = strtoull(*p, &end, (int)base);
    if (end == *p || errno || *end != ' ')
        return false;
    *p = end + 1;
    return true;
}

/*
 * One message's entry, "UID MODSEQ FLAGS KEYWORDS LETTERS CONTENTLEN SIZE LINES MTIME KEY"
 * (FLAGS, KEYWORDS and LETTERS hex; KEY last, to the end of the line; index format 1 has no
 * LETTERS), into *x (x->key allocated).
 */
static bool md_entry_parse(const char *p, const struct mailstore *ms, bool v1, struct md_msg *x)
{
    unsigned long long f[8], letters = 0;
    static const unsigned bases[8] = {10, 10, 16, 16, 10, 10, 10, 10};
    for (size_t k = 0; k < 8; k++) {
        if (!md_num(&p, &f[k], bases[k]))
            return false;
        if (k == 3 && !v1 && (!md_num(&p, &letters, 16) || letters >= (1u << MAILDIR_LETTERS)))
            return false;
    }
    struct maildir_name mn;
    size_t klen = strlen(p);
    if (!maildir_name_parse(p, klen, &mn) || mn.key_len != klen || f[0] == 0 || f[0] >= UINT32_MAX)
        return false;
    memset(x, 0, sizeof *x);
    x->m.uid = (uint32_t)f[0];
    x->m.modseq = f[1];
    x->m.flags = (unsigned)f[2] & MBOX_FLAGS_IMAP;
    x->m.keywords = ms->nkeywords < 32 ? (uint32_t)f[3] & ((1u << ms->nkeywords) - 1) : (uint32_t)f[3];
    x->m.content_len = f[4];
    x->m.size = f[5];
    x->m.lines = f[6];
    x->m.internaldate = (time_t)f[7];
    x->letters = (unsigned)letters;
    x->key = xstrdup(p);
    return true;
}

static void md_entry_put(struct buf *b, const struct md_msg *x)
{
    buf_printf(b, "%u %llu %x %x %x %llu %llu %llu %lld %s\n", x->m.uid, x->m.modseq ? x->m.modseq : 1,
               x->m.flags & MBOX_FLAGS_IMAP, (unsigned)x->m.keywords, x->letters, x->m.content_len, x->m.size,
               x->m.lines, (long long)x->m.internaldate, x->key);
}

static size_t md_lower_bound(const struct md_msg *v, size_t n, uint32_t uid)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].m.uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/*
 * The journal (INDEX.journal, journal.h) over the index just loaded (*vp, UID order; stamp
 * index). Records, absolute values so replaying is idempotent: "K NAME" a keyword added to
 * the table (in table order), "E ENTRY" a message's whole entry (new, or measured again),
 * "F UID MODSEQ FLAGS KEYWORDS LETTERS" its flags, "X UID" it is gone, "H UIDNEXT
 * HIGHESTMODSEQ".
 */
static void md_journal_apply(struct mailstore *ms, const struct mailstore_stamp *index, struct md_msg **vp,
                             size_t *np, size_t *capp)
{
    char *data = NULL, *body = NULL;
    size_t blen = 0;
    if (index_journal_read(ms->journal_path, MAILDIR_JOURNAL_MAGIC, ms->uidvalidity, index, MAILDIR_INDEX_MAX, &data,
                           &body, &blen) < 0) {
        log_warn("mailstore: cannot read %s; the changes in it are lost", ms->journal_path);
        return;
    }
    struct md_msg *v = *vp;
    size_t n = *np, cap = *capp, applied = 0;
    bool any_gone = false;
    for (char *line = body, *nl; line && line < body + blen; line = nl + 1) {
        nl = strchr(line, '\n');
        *nl = '\0';
        unsigned uid = 0, flags = 0, kw = 0, next = 0, letters = 0;
        unsigned long long modseq = 0;
        int used = 0;
        struct md_msg e;
        bool ok = true;
        if (line[0] == 'K' && line[1] == ' ') {
            ok = mailstore_keyword_add(ms, line + 2) >= 0;
        } else if (line[0] == 'E' && line[1] == ' ' && md_entry_parse(line + 2, ms, false, &e)) {
            size_t at = md_lower_bound(v, n, e.m.uid);
            if (at < n && v[at].m.uid == e.m.uid) {
                free(v[at].key);
                v[at] = e;
            } else if (n >= MAILSTORE_MESSAGES_MAX) {
                free(e.key);
                ok = false;
            } else {
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    v = xreallocarray(v, cap, sizeof *v);
                }
                memmove(v + at + 1, v + at, (n - at) * sizeof *v);
                v[at] = e;
                n++;
            }
            if (ok && e.m.uid >= ms->uidnext)
                ms->uidnext = e.m.uid + 1;
            if (ok && e.m.modseq > ms->highestmodseq)
                ms->highestmodseq = e.m.modseq;
        } else if (sscanf(line, "F %u %llu %x %x %x%n", &uid, &modseq, &flags, &kw, &letters, &used) == 5 &&
                   line[used] == '\0') {
            size_t at = md_lower_bound(v, n, uid);
            if (at < n && v[at].m.uid == uid) {
                v[at].letters = letters & ((1u << MAILDIR_LETTERS) - 1);
                v[at].m.flags = flags & MBOX_FLAGS_IMAP;
                v[at].m.keywords = ms->nkeywords < 32 ? kw & ((1u << ms->nkeywords) - 1) : kw;
                v[at].m.modseq = modseq;
            }
            if (modseq > ms->highestmodseq)
                ms->highestmodseq = modseq;
        } else if (sscanf(line, "X %u%n", &uid, &used) == 1 && line[used] == '\0') {
            size_t at = md_lower_bound(v, n, uid);
            if (at < n && v[at].m.uid == uid) {
                v[at].gone = true;
                any_gone = true;
            }
        } else if (sscanf(line, "H %u %llu%n", &next, &modseq, &used) == 2 && line[used] == '\0' && next > 0) {
            if (next > ms->uidnext)
                ms->uidnext = next;
            if (modseq > ms->highestmodseq)
                ms->highestmodseq = modseq;
        } else {
            ok = false;
        }
        if (!ok) {
            log_warnx("mailstore: %s is damaged after %zu records; the rest is ignored", ms->journal_path, applied);
            break;
        }
        applied++;
    }
    if (any_gone) {
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            if (v[i].gone) {
                free(v[i].key);
                continue;
            }
            v[kept++] = v[i];
        }
        n = kept;
    }
    free(data);
    *vp = v;
    *np = n;
    *capp = cap;
}

/*
 * Loads the index: "zolder-maildir-index 2 UIDVALIDITY UIDNEXT HIGHESTMODSEQ" (or 1), "keywords
 * NAME...", then a line a message (md_entry_parse), then applies its journal. -1 when
 * missing or unreadable (a new UIDVALIDITY).
 */
static int md_index_load(struct mailstore *ms, struct md_msg **v_r, size_t *n_r)
{
    char *data = NULL;
    size_t len = 0;
    *v_r = NULL;
    *n_r = 0;
    struct mailstore_stamp stamp;
    md_stamp(ms->index_path, &stamp);
    if (fs_read_file(ms->index_path, MAILDIR_INDEX_MAX, &data, &len) < 0)
        return -1;
    struct md_msg *v = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    char *line = data, *nl;
    unsigned validity = 0, next = 0;
    unsigned long long hms = 0;
    int used = 0;
    bool v1 = strncmp(line, MAILDIR_INDEX_MAGIC_V1 " ", strlen(MAILDIR_INDEX_MAGIC_V1) + 1) == 0;
    if (!(nl = strchr(line, '\n')) ||
        sscanf(line + strlen(MAILDIR_INDEX_MAGIC), " %u %u %llu%n", &validity, &next, &hms, &used) != 3 ||
        (!v1 && strncmp(line, MAILDIR_INDEX_MAGIC " ", strlen(MAILDIR_INDEX_MAGIC) + 1) != 0) ||
        line + strlen(MAILDIR_INDEX_MAGIC) + used != nl || validity == 0 || next == 0)
        goto out;
    line = nl + 1;
    if (!(nl = strchr(line, '\n')) || strncmp(line, "keywords", 8) != 0)
        goto out;
    *nl = '\0';
    md_keywords_clear(ms);
    for (char *save = NULL, *w = strtok_r(line + 8, " ", &save); w; w = strtok_r(NULL, " ", &save))
        if (mailstore_keyword_add(ms, w) < 0)
            goto out;
    for (line = nl + 1; *line; line = nl + 1) {
        if (!(nl = strchr(line, '\n')))
            goto out;
        *nl = '\0';
        struct md_msg x;
        if (n >= MAILSTORE_MESSAGES_MAX || !md_entry_parse(line, ms, v1, &x))
            goto out;
        if (x.m.uid >= next || (n && x.m.uid <= v[n - 1].m.uid)) {
            free(x.key);
            goto out;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = xreallocarray(v, cap, sizeof *v);
        }
        v[n++] = x;
    }
    ms->uidvalidity = validity;
    ms->uidnext = next;
    ms->highestmodseq = hms ? hms : 1;
    md_journal_apply(ms, &stamp, &v, &n, &cap);
    rc = 0;
out:
    free(data);
    if (rc < 0) {
        md_msgs_free(v, n);
        md_keywords_clear(ms);
        return -1;
    }
    *v_r = v;
    *n_r = n;
    return 0;
}

/* The whole index (tmp, fsync, rename, fsync the folder), then its journal removed. */
static int md_index_write(struct mailstore *ms, const struct md_msg *v, size_t n)
{
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, MAILDIR_INDEX_MAGIC " %u %u %llu\nkeywords", ms->uidvalidity, ms->uidnext, ms->highestmodseq);
    for (size_t i = 0; i < ms->nkeywords; i++)
        buf_printf(&b, " %s", ms->keyword[i]);
    buf_append_char(&b, '\n');
    for (size_t i = 0; i < n; i++)
        md_entry_put(&b, &v[i]);
    char *tmp = md_join(ms->index_path, ".tmp", "");
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
        /* the journal names the old index's inode: ignored from now on; removed to save the read */
        mailstore_step("index-renamed");
        if (unlink(ms->journal_path) < 0 && errno != ENOENT)
            log_warn("mailstore: cannot remove %s", ms->journal_path);
        mailstore_step("journal-removed");
    } else {
        log_warn("mailstore: cannot write %s", ms->index_path);
        unlink(tmp);
    }
    free(tmp);
    buf_free(&b);
    return rc;
}

static void md_base_take(struct md_base *base, const struct mailstore *ms, const struct md_msg *v, size_t n, bool full)
{
    base->m = xreallocarray(NULL, n ? n : 1, sizeof *base->m);
    base->letters = xreallocarray(NULL, n ? n : 1, sizeof *base->letters);
    for (size_t i = 0; i < n; i++) {
        base->m[i] = v[i].m;
        base->letters[i] = v[i].letters;
    }
    base->n = n;
    base->nkeywords = ms->nkeywords;
    base->full = full;
}

static void md_base_free(struct md_base *base)
{
    free(base->m);
    free(base->letters);
    base->m = NULL;
    base->letters = NULL;
    base->n = 0;
}

/*
 * Makes v (UID order) the durable state, base being the last one: what changed appended to
 * the journal as records (fsynced), or, when there is no usable index or the journal has
 * passed its bound, everything written as a new index. 0: durable.
 */
static int md_index_update(struct mailstore *ms, const struct md_base *base, const struct md_msg *v, size_t n)
{
    struct mailstore_stamp index, journal;
    md_stamp(ms->index_path, &index);
    md_stamp(ms->journal_path, &journal);
    if (base->full || index.ino == 0 || journal.size >= index_journal_bound(index.size))
        return md_index_write(ms, v, n);
    struct buf b;
    buf_init(&b, 0);
    for (size_t k = base->nkeywords; k < ms->nkeywords; k++)
        buf_printf(&b, "K %s\n", ms->keyword[k]);
    size_t i = 0, j = 0;
    while (i < base->n || j < n) {
        const struct mailstore_msg *o = i < base->n ? &base->m[i] : NULL;
        const struct md_msg *x = j < n ? &v[j] : NULL;
        if (o && (!x || o->uid < x->m.uid)) {
            buf_printf(&b, "X %u\n", o->uid);
            i++;
            continue;
        }
        if (!o || x->m.uid < o->uid || o->content_len != x->m.content_len || o->size != x->m.size ||
            o->lines != x->m.lines || o->internaldate != x->m.internaldate) {
            buf_append_str(&b, "E ");
            md_entry_put(&b, x);
        } else if ((o->flags & MBOX_FLAGS_IMAP) != (x->m.flags & MBOX_FLAGS_IMAP) || o->keywords != x->m.keywords ||
                   o->modseq != x->m.modseq || base->letters[i] != x->letters) {
            buf_printf(&b, "F %u %llu %x %x %x\n", x->m.uid, x->m.modseq, x->m.flags & MBOX_FLAGS_IMAP,
                       (unsigned)x->m.keywords, x->letters);
        }
        if (o && x->m.uid == o->uid)
            i++;
        j++;
    }
    buf_printf(&b, "H %u %llu\n", ms->uidnext, ms->highestmodseq);
    struct index_journal jr;
    int rc = index_journal_open(&jr, ms->journal_path, MAILDIR_JOURNAL_MAGIC, ms->uidvalidity, ms->index_path);
    if (rc == 0)
        rc = index_journal_commit(&jr, ms->journal_path, ms->index_dir, b.data, b.len);
    buf_free(&b);
    if (rc < 0) {
        log_warn("mailstore: cannot append to %s; writing the whole index", ms->journal_path);
        return md_index_write(ms, v, n);
    }
    return 0;
}

/* ---- keyword letters (dovecot-keywords) ------------------------------------------------------ */

static struct md_letters *md_letters_of(const struct mailstore *ms)
{
    struct md_letters **pp = &md_letter_maps, *l;
    size_t count = 0;
    for (; (l = *pp) != NULL; pp = &l->next, count++)
        if (strcmp(l->path, ms->mbox_path) == 0)
            return l;
    if (count >= MAILDIR_CACHES_MAX) {
        l = md_letter_maps;
        md_letter_maps = l->next;
        free(l->path);
        free(l);
    }
    l = xcalloc(1, sizeof *l);
    l->path = xstrdup(ms->mbox_path);
    memset(l->bit_of, -1, sizeof l->bit_of);
    memset(l->letter_of, -1, sizeof l->letter_of);
    l->next = md_letter_maps;
    md_letter_maps = l;
    return l;
}

/* Keyword bits of the letters in a name (letters not ours count for nothing). */
static uint32_t md_letters_bits(const struct md_letters *l, unsigned letters)
{
    uint32_t bits = 0;
    for (unsigned n = 0; n < MAILDIR_LETTERS; n++)
        if ((letters & (1u << n)) && l->bit_of[n] >= 0)
            bits |= 1u << l->bit_of[n];
    return bits;
}

/* The letters of these keyword bits (bits without a letter are index-only). */
static unsigned md_bits_letters(const struct md_letters *l, uint32_t bits)
{
    unsigned letters = 0;
    for (unsigned b = 0; b < MAILSTORE_KEYWORDS_MAX; b++)
        if ((bits & (1u << b)) && l->letter_of[b] >= 0)
            letters |= 1u << l->letter_of[b];
    return letters;
}

static uint32_t md_lettered_bits(const struct md_letters *l)
{
    uint32_t bits = 0;
    for (unsigned b = 0; b < MAILSTORE_KEYWORDS_MAX; b++)
        if (l->letter_of[b] >= 0)
            bits |= 1u << b;
    return bits;
}

static unsigned md_mapped_letters(const struct md_letters *l)
{
    unsigned letters = 0;
    for (unsigned n = 0; n < MAILDIR_LETTERS; n++)
        if (l->bit_of[n] >= 0)
            letters |= 1u << n;
    return letters;
}

/*
 * Reads dovecot-keywords' text into l: "N NAME" lines, N 0..25; each name joins ms's keyword
 * table (mailstore_keyword_add). A malformed line, a repeated letter or name, or a name the
 * table cannot take leaves that letter not ours (kept in names as it is).
 */
static void md_letters_parse(struct mailstore *ms, char *text, struct md_letters *l)
{
    memset(l->bit_of, -1, sizeof l->bit_of);
    memset(l->letter_of, -1, sizeof l->letter_of);
    l->named = 0;
    for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *end;
        errno = 0;
        unsigned long n = strtoul(line, &end, 10);
        if (end == line || *end != ' ' || errno || n >= MAILDIR_LETTERS || line[0] < '0' || line[0] > '9')
            continue;
        l->named |= 1u << n;
        int bit = mailstore_keyword_add(ms, end + 1);
        if (bit < 0 || l->bit_of[n] >= 0 || l->letter_of[bit] >= 0)
            continue;
        l->bit_of[n] = (signed char)bit;
        l->letter_of[bit] = (signed char)n;
    }
}

static char *md_keywords_path(const struct mailstore *ms, const char *suffix)
{
    return md_join(ms->mbox_path, "/" MAILDIR_KEYWORDS_FILE, suffix);
}

/* Reads the Maildir's dovecot-keywords (none: no letters) into ms's letter map. */
static struct md_letters *md_letters_load(struct mailstore *ms)
{
    struct md_letters *l = md_letters_of(ms);
    char *path = md_keywords_path(ms, ""), *data = NULL;
    size_t len = 0;
    if (fs_read_file(path, MAILDIR_KEYWORDS_FILE_MAX, &data, &len) < 0) {
        if (errno != ENOENT)
            log_warn("mailstore: cannot read %s; keyword letters are not read", path);
        data = NULL;
    }
    md_letters_parse(ms, data, l);
    l->loaded = true;
    free(data);
    free(path);
    return l;
}

/*
 * Gives the keyword bits in want that have no letter one each, in dovecot-keywords, as
 * Dovecot does: under its dotlock (dovecot-keywords.lock, made with O_EXCL, written, fsynced
 * and renamed over the file; the Maildir fsynced), the file read again first (Dovecot may have
 * added names meanwhile), the lowest letter neither named there nor in used (letters found in
 * names). Before any name carries the letter, so a crash leaves at most a letter no message
 * has. Bits that get none (26 letters taken, the lock held elsewhere) stay index-only.
 */
static void md_letters_assign(struct mailstore *ms, struct md_letters *l, uint32_t want, unsigned used)
{
    want &= ~md_lettered_bits(l);
    if (!want || ((l->named | used) & ((1u << MAILDIR_LETTERS) - 1)) == (1u << MAILDIR_LETTERS) - 1)
        return; /* nothing new, or all 26 letters taken */
    char *path = md_keywords_path(ms, ""), *lock = md_keywords_path(ms, ".lock");
    int fd = -1;
    for (int tries = 0; tries < 100 && fd < 0; tries++) {
        fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0 || errno != EEXIST)
            break;
        struct stat st;
        if (stat(lock, &st) == 0 && st.st_mtime < time(NULL) - 120) {
            (void)unlink(lock); /* left by a crash: Dovecot's stale dotlock rule */
            continue;
        }
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 10000000L};
        nanosleep(&pause, NULL);
    }
    if (fd < 0) {
        log_warn("mailstore: cannot lock %s; new keywords stay in the index only", path);
        free(path);
        free(lock);
        return;
    }
    char *data = NULL;
    size_t len = 0;
    if (fs_read_file(path, MAILDIR_KEYWORDS_FILE_MAX, &data, &len) < 0) {
        data = NULL;
        len = 0;
    }
    struct buf b;
    buf_init(&b, 0);
    buf_append(&b, data ? data : "", len);
    if (b.len && b.data[b.len - 1] != '\n')
        buf_append_char(&b, '\n');
    md_letters_parse(ms, data, l);
    free(data);
    want &= ~md_lettered_bits(l);
    bool added = false;
    for (unsigned bit = 0; bit < MAILSTORE_KEYWORDS_MAX && bit < ms->nkeywords; bit++) {
        if (!(want & (1u << bit)))
            continue;
        unsigned n = 0;
        while (n < MAILDIR_LETTERS && ((l->named | used) & (1u << n)))
            n++;
        if (n == MAILDIR_LETTERS)
            break; /* all 26 taken: the rest stay index-only */
        buf_printf(&b, "%u %s\n", n, ms->keyword[bit]);
        l->named |= 1u << n;
        l->bit_of[n] = (signed char)bit;
        l->letter_of[bit] = (signed char)n;
        added = true;
    }
    bool ok = !added || (fs_write_all(fd, b.data, b.len) == 0 && fsync(fd) == 0 && rename(lock, path) == 0 &&
                         fs_fsync_dir(ms->mbox_path) == 0);
    close(fd);
    if (!added || !ok) {
        (void)unlink(lock);
        if (!ok) {
            log_warn("mailstore: cannot write %s; new keywords stay in the index only", path);
            (void)md_letters_load(ms);
        }
    } else {
        mailstore_step("keywords-written");
    }
    buf_free(&b);
    free(path);
    free(lock);
}

/*
 * The name's letters for keyword bits k, keeping the letters that are not ours (another
 * program's keywords, unknown here).
 */
static unsigned md_letters_for(const struct md_letters *l, const struct md_msg *x, uint32_t k)
{
    return (x->letters & ~md_mapped_letters(l)) | md_bits_letters(l, k);
}

/* ---- scanning ------------------------------------------------------------------------------ */

struct md_found {
    char *key, *name;
    bool in_new;
    unsigned flags, letters;
    char other[32];
    unsigned long long size;
    time_t mtime;
};

static int md_found_key_cmp(const void *a, const void *b)
{
    const struct md_found *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return (int)x->in_new - (int)y->in_new; /* cur/ first: it wins over a leftover copy in new/ */
}

static int md_found_new_cmp(const void *a, const void *b)
{
    const struct md_found *const *x = a, *const *y = b;
    if ((*x)->mtime != (*y)->mtime)
        return (*x)->mtime < (*y)->mtime ? -1 : 1;
    return strcmp((*x)->key, (*y)->key);
}

static int md_msg_key_cmp(const void *a, const void *b)
{
    const struct md_msg *const *x = a, *const *y = b;
    return strcmp((*x)->key, (*y)->key);
}

static int md_msg_uid_cmp(const void *a, const void *b)
{
    const struct md_msg *x = a, *y = b;
    return x->m.uid < y->m.uid ? -1 : x->m.uid > y->m.uid;
}

/*
 * Lists one of new/ and cur/ into *v. move: files in new/ are renamed into cur/ (":2,"
 * added), as SELECT does. *moved_r counts the renames.
 */
static int md_scan_dir(struct mailstore *ms, bool in_new, bool move, struct md_found **v, size_t *n, size_t *cap,
                       size_t *moved_r)
{
    char *dir = md_join(ms->mbox_path, in_new ? "/new" : "/cur", "");
    char *cur = md_join(ms->mbox_path, "/cur", "");
    DIR *d = opendir(dir);
    int rc = 0;
    if (!d) {
        rc = errno == ENOENT ? 0 : -1;
        goto out;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        struct maildir_name mn;
        if (!maildir_name_parse(de->d_name, len, &mn))
            continue; /* ".", "..", dot files, names we refuse */
        char *path = md_join(dir, "/", de->d_name);
        struct stat st;
        if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue; /* gone meanwhile, or not a message */
        }
        char *name = xstrdup(de->d_name);
        bool file_in_new = in_new;
        if (in_new && move) {
            /* a name without info gets ":2," (flags none), as mutt and Dovecot move them */
            char newname[MAILDIR_NAME_MAX + 1];
            if (mn.has_info ||
                maildir_name_make(name, mn.key_len, mn.flags, mn.letters, mn.other, newname, sizeof newname) == 0)
                snprintf(newname, sizeof newname, "%s", name);
            char *to = md_join(cur, "/", newname);
            if (rename(path, to) == 0) {
                free(name);
                name = xstrdup(newname);
                file_in_new = false;
                (*moved_r)++;
            } else if (errno == ENOENT) {
                free(to);
                free(path);
                free(name);
                continue; /* moved by another program: the cur/ listing has it */
            }
            free(to);
        }
        free(path);
        if (*n >= MAILSTORE_MESSAGES_MAX) {
            free(name);
            rc = -1;
            break;
        }
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            *v = xreallocarray(*v, *cap, sizeof **v);
        }
        struct md_found *f = &(*v)[(*n)++];
        memset(f, 0, sizeof *f);
        f->key = xstrndup(name, mn.key_len);
        f->name = name;
        f->in_new = file_in_new;
        f->flags = mn.flags;
        f->letters = mn.letters;
        snprintf(f->other, sizeof f->other, "%s", mn.other);
        f->size = (unsigned long long)st.st_size;
        f->mtime = st.st_mtim.tv_sec;
    }
    closedir(d);
out:
    free(dir);
    free(cur);
    return rc;
}

static int md_fsync_dirs(const struct mailstore *ms, bool cur, bool newd);

/* Renames x in cur/ to carry flags f and letters (with its other letters); 0, or -1 (errno). */
static int md_rename_to(const struct mailstore *ms, struct md_msg *x, unsigned f, unsigned letters)
{
    char name[MAILDIR_NAME_MAX + 1];
    if (maildir_name_make(x->key, strlen(x->key), f, letters, x->other, name, sizeof name) == 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char *from = md_join(ms->mbox_path, x->in_new ? "/new/" : "/cur/", x->name);
    char *to = md_join(ms->mbox_path, "/cur/", name);
    int rc = strcmp(from, to) == 0 ? 0 : rename(from, to);
    int err = errno;
    free(from);
    free(to);
    if (rc < 0) {
        errno = err;
        return -1;
    }
    mailstore_step("maildir-renamed");
    free(x->name);
    x->name = xstrdup(name);
    x->in_new = false;
    x->letters = letters;
    return 0;
}

/*
 * Names in cur/ that lack the letter of a keyword the index gives them (set while the keyword
 * had no letter: before dovecot-keywords named it, or by an older zolder) are renamed to carry
 * it, so other programs see it; cur/ fsynced. True when any was.
 */
static bool md_letters_settle(const struct mailstore *ms, const struct md_letters *l, struct md_msg *v, size_t n)
{
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        struct md_msg *x = &v[i];
        unsigned want = md_letters_for(l, x, x->m.keywords);
        if (x->in_new || want == x->letters)
            continue;
        if (md_rename_to(ms, x, x->m.flags & MBOX_FLAGS_IMAP, want) == 0)
            any = true;
    }
    if (any && md_fsync_dirs(ms, true, false) < 0)
        log_warn("mailstore: cannot sync %s/cur", ms->mbox_path);
    return any;
}

/*
 * Under the lock: the Maildir as it is now, with UIDs from the index (new files get new ones,
 * vanished ones leave it), made durable (md_index_update) when anything changed. *v_r in UID
 * order.
 */
static enum mailstore_result md_sync(struct mailstore *ms, bool move_new, struct md_msg **v_r, size_t *n_r,
                                     const char **error_r)
{
    *v_r = NULL;
    *n_r = 0;
    struct md_msg *idx = NULL;
    size_t nidx = 0;
    bool write = false, full = false;
    if (md_index_load(ms, &idx, &nidx) < 0) {
        full = true;
        /* lost or unreadable: every UID starts again under a new UIDVALIDITY */
        uint32_t validity = (uint32_t)time(NULL);
        if (validity == ms->uidvalidity)
            validity++;
        ms->uidvalidity = validity;
        ms->uidnext = 1;
        ms->highestmodseq = 1;
        write = true;
    }
    size_t nkeywords_loaded = ms->nkeywords;
    struct md_letters *letters = md_letters_load(ms); /* may add names to the keyword table */
    uint32_t lettered = md_lettered_bits(letters);
    struct md_found *found = NULL;
    size_t nfound = 0, cap = 0, moved = 0;
    if (md_scan_dir(ms, true, move_new, &found, &nfound, &cap, &moved) < 0 ||
        md_scan_dir(ms, false, false, &found, &nfound, &cap, &moved) < 0) {
        for (size_t i = 0; i < nfound; i++) {
            free(found[i].key);
            free(found[i].name);
        }
        free(found);
        md_msgs_free(idx, nidx);
        *error_r = "cannot read the Maildir (or too many messages)";
        return MAILSTORE_ERROR;
    }
    if (moved) {
        char *cur = md_join(ms->mbox_path, "/cur", ""), *newd = md_join(ms->mbox_path, "/new", "");
        if (fs_fsync_dir(cur) < 0 || fs_fsync_dir(newd) < 0)
            log_warn("mailstore: cannot sync %s", ms->mbox_path);
        free(cur);
        free(newd);
    }
    if (nfound)
        qsort(found, nfound, sizeof *found, md_found_key_cmp);
    /* the index by key */
    struct md_msg **bykey = xreallocarray(NULL, nidx ? nidx : 1, sizeof(struct md_msg *));
    for (size_t i = 0; i < nidx; i++)
        bykey[i] = &idx[i];
    if (nidx)
        qsort(bykey, nidx, sizeof(struct md_msg *), md_msg_key_cmp);
    bool *matched = xcalloc(nidx ? nidx : 1, sizeof *matched);
    struct md_msg *v = xreallocarray(NULL, nfound ? nfound : 1, sizeof *v);
    struct md_found **fresh = xreallocarray(NULL, nfound ? nfound : 1, sizeof(struct md_found *));
    size_t n = 0, nfresh = 0;
    unsigned long long modseq = ms->highestmodseq + 1;
    bool bump = false;
    for (size_t i = 0; i < nfound; i++) {
        struct md_found *f = &found[i];
        if (i > 0 && strcmp(found[i - 1].key, f->key) == 0) {
            free(f->name); /* the same message in new/ and cur/ (a move cut short): cur/ counts */
            f->name = NULL;
            continue;
        }
        struct md_msg key = {.key = f->key}, *kp = &key;
        struct md_msg **hit = nidx ? bsearch(&kp, bykey, nidx, sizeof(struct md_msg *), md_msg_key_cmp) : NULL;
        if (!hit) {
            fresh[nfresh++] = f;
            continue;
        }
        struct md_msg *x = &v[n++];
        *x = **hit;
        x->key = xstrdup((*hit)->key); /* the index's copy stays for the other lookups */
        matched[*hit - idx] = true;
        x->name = f->name;
        x->in_new = f->in_new;
        snprintf(x->other, sizeof x->other, "%s", f->other);
        char *path = md_join(ms->mbox_path, f->in_new ? "/new/" : "/cur/", f->name);
        if (x->m.content_len != f->size || x->m.internaldate != f->mtime) {
            /* rewritten in place (an editor), or touched: measure again, same UID */
            x->m.content_len = f->size;
            x->m.internaldate = f->mtime;
            md_measure(path, &x->m);
            write = true;
        }
        free(path);
        /*
         * Keywords with a letter: a name whose letters changed since the index saw it (renamed
         * by Dovecot, or by our STORE cut short after its rename) says which it has; one whose
         * letters did not keeps the index's, plus any letter newly defined in dovecot-keywords.
         */
        uint32_t k = f->letters != x->letters
                         ? (x->m.keywords & ~lettered) | md_letters_bits(letters, f->letters)
                         : x->m.keywords | md_letters_bits(letters, f->letters);
        if (f->letters != x->letters)
            write = true;
        x->letters = f->letters;
        if ((f->flags & MBOX_FLAGS_IMAP) != (x->m.flags & MBOX_FLAGS_IMAP) || k != x->m.keywords) {
            /* renamed by another program (mutt, Dovecot): its flags count, with a new MODSEQ */
            x->m.flags = f->flags & MBOX_FLAGS_IMAP;
            x->m.keywords = k;
            x->m.modseq = modseq;
            bump = true;
            write = true;
        }
    }
    for (size_t i = 0; i < nidx; i++)
        if (!matched[i]) {
            write = true; /* vanished: removed by another program */
            bump = true;
        }
    if (nfresh) {
        qsort(fresh, nfresh, sizeof(struct md_found *), md_found_new_cmp);
        for (size_t i = 0; i < nfresh; i++) {
            struct md_found *f = fresh[i];
            struct md_msg *x = &v[n++];
            memset(x, 0, sizeof *x);
            x->key = f->key;
            f->key = NULL;
            x->name = f->name;
            x->in_new = f->in_new;
            snprintf(x->other, sizeof x->other, "%s", f->other);
            x->m.uid = ms->uidnext++;
            x->m.flags = f->flags & MBOX_FLAGS_IMAP;
            x->letters = f->letters;
            x->m.keywords = md_letters_bits(letters, f->letters);
            x->m.modseq = modseq;
            x->m.content_len = f->size;
            x->m.internaldate = f->mtime;
            char *path = md_join(ms->mbox_path, f->in_new ? "/new/" : "/cur/", f->name);
            md_measure(path, &x->m);
            free(path);
        }
        bump = true;
        write = true;
    }
    for (size_t i = 0; i < n; i++)
        md_key_hash(v[i].key, v[i].m.hash);
    if (n)
        qsort(v, n, sizeof *v, md_msg_uid_cmp);
    if (bump)
        ms->highestmodseq = modseq;
    uint32_t carried = 0;
    unsigned used = 0;
    for (size_t i = 0; i < n; i++) {
        carried |= v[i].m.keywords;
        used |= v[i].letters;
    }
    if (carried & ~lettered)
        md_letters_assign(ms, letters, carried, used); /* keywords an older index kept alone */
    if (md_letters_settle(ms, letters, v, n))
        write = true;
    free(fresh);
    for (size_t i = 0; i < nfound; i++)
        free(found[i].key); /* names went to v (or were freed); keys of fresh ones too */
    free(found);
    free(matched);
    free(bykey);
    struct md_base base;
    md_base_take(&base, ms, idx, nidx, full);
    base.nkeywords = nkeywords_loaded;
    base.dirty = write || ms->nkeywords != nkeywords_loaded;
    md_msgs_free(idx, nidx);
    int rc = base.dirty ? md_index_update(ms, &base, v, n) : 0;
    md_base_free(&base);
    if (rc < 0) {
        md_msgs_free(v, n);
        *error_r = "cannot write the mailbox index";
        return MAILSTORE_ERROR;
    }
    *v_r = v;
    *n_r = n;
    return MAILSTORE_OK;
}

static int md_uid_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t *md_sorted(const uint32_t *uids, size_t n)
{
    uint32_t *s = xreallocarray(NULL, n ? n : 1, sizeof *s);
    if (n)
        memcpy(s, uids, n * sizeof *s);
    qsort(s, n, sizeof *s, md_uid_cmp);
    return s;
}

/*
 * Under the lock, for STORE, EXPUNGE and APPEND: the process's last scan when the folders and the
 * index still carry the stamps of the current generation (nothing changed since: no readdir,
 * no index read), else a scan. A stale answer (a rename by another program within the
 * clock tick) shows as a file that is not there; the caller then scans (md_sync).
 */
static enum mailstore_result md_current(struct mailstore *ms, struct md_msg **v_r, size_t *n_r, const char **error_r)
{
    struct mailstore_gen *g = mailstore_gen_current(ms->mbox_path);
    struct md_cache *c = (struct md_cache *)md_cache_find(ms->mbox_path);
    if (g && c && !c->stale && c->validity == g->uidvalidity && g->uidvalidity == ms->uidvalidity &&
        c->n == g->nmsgs) {
        struct mailstore_stamp cur, index, newdir;
        md_stamps_now(ms, &cur, &index, &newdir);
        if (md_stamp_eq(&cur, &g->mbox) && md_stamp_eq(&index, &g->index) && md_stamp_eq(&newdir, &g->journal)) {
            /* the caller takes the cached list over (no copy of every name: a STORE at 10,000
             * messages spent most of its time in malloc); its md_publish gives the cache a new
             * one, until then it is stale */
            struct md_msg *v = c->v;
            size_t n = c->n;
            c->v = NULL;
            c->n = 0;
            c->stale = true;
            bool same = true;
            for (size_t i = 0; i < n; i++) {
                same &= v[i].m.uid == g->msgs[i].uid;
                v[i].m = g->msgs[i]; /* flags, keywords, MODSEQ as published */
            }
            if (!same) {
                md_msgs_free(v, n);
                return md_sync(ms, false, v_r, n_r, error_r);
            }
            md_keywords_clear(ms);
            for (size_t i = 0; i < c->nkeywords; i++)
                ms->keyword[i] = xstrdup(c->keyword[i]);
            ms->nkeywords = c->nkeywords;
            ms->uidnext = g->uidnext;
            ms->highestmodseq = g->highestmodseq;
            *v_r = v;
            *n_r = n;
            return MAILSTORE_OK;
        }
    }
    return md_sync(ms, false, v_r, n_r, error_r);
}

/* Are the files of these UIDs (sorted) where v says? (A cached list may be stale.) */
static bool md_targets_present(const struct mailstore *ms, const struct md_msg *v, size_t nv, const uint32_t *sorted,
                               size_t n)
{
    for (size_t i = 0; i < nv; i++) {
        if (!n || !bsearch(&v[i].m.uid, sorted, n, sizeof *sorted, md_uid_cmp))
            continue;
        char *path = md_join(ms->mbox_path, v[i].in_new ? "/new/" : "/cur/", v[i].name);
        struct stat st;
        int rc = lstat(path, &st);
        free(path);
        if (rc < 0)
            return false;
    }
    return true;
}

/* md_current, then a scan when a target's file is not where the cached list says. */
static enum mailstore_result md_current_for(struct mailstore *ms, const uint32_t *sorted, size_t n,
                                            struct md_msg **v_r, size_t *n_r, const char **error_r)
{
    enum mailstore_result r = md_current(ms, v_r, n_r, error_r);
    if (r == MAILSTORE_OK && !md_targets_present(ms, *v_r, *n_r, sorted, n)) {
        md_msgs_free(*v_r, *n_r);
        r = md_sync(ms, false, v_r, n_r, error_r);
    }
    return r;
}

static enum mailstore_result md_sync_publish(struct mailstore *ms, bool move_new, const char **error_r)
{
    int lock = md_lock(ms, error_r);
    if (lock < 0)
        return MAILSTORE_ERROR;
    struct md_msg *v = NULL;
    size_t n = 0;
    enum mailstore_result r = md_sync(ms, move_new, &v, &n, error_r);
    if (r == MAILSTORE_OK)
        mailstore_gen_adopt(ms, md_publish(ms, v, n));
    md_unlock(lock);
    return r;
}

/* ---- the API ------------------------------------------------------------------------------- */

enum mailstore_result maildir_store_open(struct mailstore *ms, const char *maildir_path, const char *index_path,
                                         const char *user, const char **error_r)
{
    memset(ms, 0, sizeof *ms);
    const char *index_base = strrchr(index_path, '/');
    if (maildir_path[0] != '/' || !index_base || index_base == index_path || !index_base[1] || !user[0]) {
        *error_r = "invalid mailbox location";
        return MAILSTORE_ERROR;
    }
    ms->maildir = true;
    ms->user = xstrdup(user);
    ms->mbox_path = xstrdup(maildir_path);
    ms->spool_dir = xstrdup(maildir_path);
    ms->index_path = xstrdup(index_path);
    ms->index_dir = xstrndup(index_path, (size_t)(index_base - index_path));
    ms->lock_path = md_join(index_path, ".lock", "");
    ms->journal_path = md_join(index_path, ".journal", "");
    ms->tmp_path = md_join(maildir_path, "/tmp", "");
    char *cur = md_join(maildir_path, "/cur", ""), *newd = md_join(maildir_path, "/new", "");
    bool ok = fs_mkdir_p(ms->tmp_path, 0700) == 0 && fs_mkdir_p(cur, 0700) == 0 && fs_mkdir_p(newd, 0700) == 0 &&
              fs_mkdir_p(ms->index_dir, 0700) == 0;
    free(cur);
    free(newd);
    if (!ok) {
        *error_r = "cannot create the Maildir or the index folder";
        return MAILSTORE_ERROR;
    }
    if (md_take_current(ms, true))
        return MAILSTORE_OK;
    return md_sync_publish(ms, false, error_r);
}

enum mailstore_result maildir_store_settle(struct mailstore *ms, const char **error_r)
{
    char *newd = md_join(ms->mbox_path, "/new", "");
    DIR *d = opendir(newd);
    bool any = false;
    struct dirent *de;
    while (d && !any && (de = readdir(d)) != NULL)
        any = de->d_name[0] != '.';
    if (d)
        closedir(d);
    free(newd);
    if (!any)
        return MAILSTORE_OK;
    uint32_t validity = ms->uidvalidity;
    enum mailstore_result r = md_sync_publish(ms, true, error_r);
    if (r == MAILSTORE_OK && ms->uidvalidity != validity) {
        *error_r = "the mailbox index was rebuilt (new UIDVALIDITY)";
        return MAILSTORE_GONE;
    }
    return r;
}

enum mailstore_result maildir_store_refresh(struct mailstore *ms, const char **error_r)
{
    if (md_take_current(ms, false))
        return MAILSTORE_OK;
    uint32_t validity = ms->uidvalidity;
    int lock = md_lock(ms, error_r);
    if (lock < 0)
        return MAILSTORE_ERROR;
    struct md_msg *v = NULL;
    size_t n = 0;
    enum mailstore_result r = md_sync(ms, false, &v, &n, error_r);
    if (r == MAILSTORE_OK && ms->uidvalidity != validity) {
        mailstore_gen_unref(md_publish(ms, v, n)); /* for the sessions that open anew */
        md_unlock(lock);
        *error_r = "the mailbox index was rebuilt (new UIDVALIDITY)";
        return MAILSTORE_GONE;
    }
    if (r == MAILSTORE_OK)
        mailstore_gen_adopt(ms, md_publish(ms, v, n));
    md_unlock(lock);
    return r;
}

bool maildir_store_changed(struct mailstore *ms)
{
    struct mailstore_gen *g = mailstore_gen_current(ms->mbox_path);
    if (g != ms->gen || !ms->gen)
        return true;
    struct mailstore_stamp cur, index, newdir;
    md_stamps_now(ms, &cur, &index, &newdir);
    return !md_stamp_eq(&cur, &g->mbox) || !md_stamp_eq(&index, &g->index) || !md_stamp_eq(&newdir, &g->journal);
}

/* The file of message uid in the process's last scan (its path), or NULL. */
static char *md_file_of(const struct mailstore *ms, const struct mailstore_msg *m)
{
    const struct md_cache *c = md_cache_find(ms->mbox_path);
    if (!c || c->validity != ms->uidvalidity)
        return NULL;
    struct md_msg key = {.m.uid = m->uid};
    const struct md_msg *x = c->n ? bsearch(&key, c->v, c->n, sizeof *c->v, md_msg_uid_cmp) : NULL;
    if (!x || memcmp(x->m.hash, m->hash, MAILSTORE_HASH_LEN) != 0)
        return NULL;
    return md_join(ms->mbox_path, x->in_new ? "/new/" : "/cur/", x->name);
}

enum mailstore_result maildir_store_read_msg(struct mailstore *ms, const struct mailstore_msg *m, struct buf *raw,
                                             const char **error_r)
{
    unsigned long long len = 0;
    char *path = md_file_of(ms, m);
    if (path && md_read_file(-1, path, raw, &len) == 0) {
        free(path);
        return MAILSTORE_OK;
    }
    if (path && errno == EFBIG) {
        free(path);
        *error_r = "message too large to read";
        return MAILSTORE_ERROR;
    }
    free(path);
    /* renamed (mutt set a flag) or removed since the last scan: scan again, find it by UID */
    int lock = md_lock(ms, error_r);
    if (lock < 0)
        return MAILSTORE_ERROR;
    uint32_t validity = ms->uidvalidity;
    struct md_msg *v = NULL;
    size_t n = 0;
    unsigned long long hms = ms->highestmodseq;
    uint32_t next = ms->uidnext;
    enum mailstore_result r = md_sync(ms, false, &v, &n, error_r);
    if (r == MAILSTORE_OK) {
        bool same = ms->uidvalidity == validity;
        mailstore_gen_unref(md_publish(ms, v, n)); /* the session's next refresh takes it */
        ms->uidvalidity = validity;                /* the session keeps its view */
        ms->highestmodseq = hms;
        ms->uidnext = next;
        path = same ? md_file_of(ms, m) : NULL;
        if (!path) {
            *error_r = "the message was removed by another program";
            r = MAILSTORE_GONE;
        } else if (md_read_file(-1, path, raw, &len) < 0) {
            *error_r = errno == EFBIG ? "message too large to read" : "the message was removed by another program";
            r = errno == EFBIG ? MAILSTORE_ERROR : MAILSTORE_GONE;
        }
        free(path);
    }
    md_unlock(lock);
    return r;
}

static int md_fsync_dirs(const struct mailstore *ms, bool cur, bool newd)
{
    int rc = 0;
    if (cur) {
        char *p = md_join(ms->mbox_path, "/cur", "");
        rc |= fs_fsync_dir(p);
        free(p);
    }
    if (newd) {
        char *p = md_join(ms->mbox_path, "/new", "");
        rc |= fs_fsync_dir(p);
        free(p);
    }
    return rc;
}

/*
 * The start of a STORE or an EXPUNGE: the index lock, uids sorted, and the message list as
 * it is now. Anything but MAILSTORE_OK leaves nothing held (GONE: the index was rebuilt
 * under us, so the client's UIDs mean nothing any more).
 */
static enum mailstore_result md_change_begin(struct mailstore *ms, const uint32_t *uids, size_t n, int *lock_r,
                                             uint32_t **sorted_r, struct md_msg **v_r, size_t *nv_r,
                                             const char **error_r)
{
    *v_r = NULL;
    *nv_r = 0;
    *sorted_r = NULL;
    int lock = md_lock(ms, error_r);
    if (lock < 0)
        return MAILSTORE_ERROR;
    uint32_t validity = ms->uidvalidity;
    uint32_t *sorted = md_sorted(uids, n);
    enum mailstore_result r = md_current_for(ms, sorted, n, v_r, nv_r, error_r);
    if (r == MAILSTORE_OK && ms->uidvalidity != validity) {
        mailstore_gen_unref(md_publish(ms, *v_r, *nv_r));
        *error_r = "the mailbox index was rebuilt (new UIDVALIDITY)";
        r = MAILSTORE_GONE;
    }
    if (r != MAILSTORE_OK) {
        md_unlock(lock);
        free(sorted);
        return r;
    }
    *lock_r = lock;
    *sorted_r = sorted;
    return MAILSTORE_OK;
}

enum mailstore_result maildir_store_expunge(struct mailstore *ms, const uint32_t *uids, size_t n, size_t *removed_r,
                                            const char **error_r)
{
    *removed_r = 0;
    int lock;
    struct md_msg *v;
    size_t nv;
    uint32_t *sorted;
    enum mailstore_result r = md_change_begin(ms, uids, n, &lock, &sorted, &v, &nv, error_r);
    if (r != MAILSTORE_OK)
        return r;
    struct md_base base;
    md_base_take(&base, ms, v, nv, false);
    size_t kept = 0;
    bool cur = false, newd = false, failed = false, durable = true;
    for (size_t i = 0; i < nv; i++) {
        if (n && bsearch(&v[i].m.uid, sorted, n, sizeof *sorted, md_uid_cmp)) {
            char *path = md_join(ms->mbox_path, v[i].in_new ? "/new/" : "/cur/", v[i].name);
            int rc = unlink(path), err = errno;
            free(path);
            if (rc == 0)
                mailstore_step("maildir-unlinked");
            /* ENOENT: renamed (or removed) by another program since the scan: kept in the
             * list, the next scan finds it by key (same UID) or drops it */
            if (rc == 0) {
                (*removed_r)++;
                cur |= !v[i].in_new;
                newd |= v[i].in_new;
                free(v[i].key);
                free(v[i].name);
                continue;
            }
            failed |= err != ENOENT;
        }
        v[kept++] = v[i];
    }
    free(sorted);
    if ((cur || newd) && md_fsync_dirs(ms, cur, newd) < 0) {
        *error_r = "cannot sync the Maildir";
        r = MAILSTORE_ERROR;
    }
    if (cur || newd) {
        mailstore_step("maildir-synced");
        ms->highestmodseq++;
        if (md_index_update(ms, &base, v, kept) < 0) {
            /* the files are gone for good; the next scan brings the index in step */
            log_warnx("mailstore: %s: index not written after expunge", ms->index_path);
            durable = false;
        }
    }
    md_base_free(&base);
    if (failed && r == MAILSTORE_OK) {
        *error_r = "cannot remove a message file";
        r = MAILSTORE_ERROR;
    }
    mailstore_gen_adopt(ms, md_publish(ms, v, kept));
    if (!durable)
        md_cache_stale(ms);
    md_unlock(lock);
    return r;
}

enum mailstore_result maildir_store_store_if(struct mailstore *ms, const uint32_t *uids, size_t n,
                                             enum mailstore_store_mode mode, unsigned flags,
                                             const char *const *keywords, size_t nkeywords,
                                             unsigned long long unchangedsince, uint32_t **modified_r,
                                             size_t *nmodified_r, const char **error_r)
{
    if (modified_r) {
        *modified_r = NULL;
        *nmodified_r = 0;
    }
    int lock;
    struct md_msg *v;
    size_t nv;
    uint32_t *sorted;
    enum mailstore_result r = md_change_begin(ms, uids, n, &lock, &sorted, &v, &nv, error_r);
    if (r != MAILSTORE_OK)
        return r;
    struct md_base base;
    md_base_take(&base, ms, v, nv, false);
    uint32_t kw = 0;
    for (size_t k = 0; k < nkeywords; k++) {
        int bit = mode == MAILSTORE_REMOVE ? mailstore_keyword_index(ms, keywords[k]) : mailstore_keyword_add(ms, keywords[k]);
        if (bit >= 0)
            kw |= 1u << bit;
        else if (mode != MAILSTORE_REMOVE) {
            *error_r = "too many keywords in this mailbox";
            r = MAILSTORE_ERROR;
        }
    }
    bool changed = false, renamed_cur = false, renamed_new = false;
    struct md_letters *letters = md_letters_of(ms); /* as the last scan read it */
    if (!letters->loaded)
        letters = md_letters_load(ms);
    if (r == MAILSTORE_OK && mode != MAILSTORE_REMOVE && (kw & ~md_lettered_bits(letters))) {
        /* new keywords get their letters before any name carries them */
        unsigned used = 0;
        for (size_t i = 0; i < nv; i++)
            used |= v[i].letters;
        md_letters_assign(ms, letters, kw, used);
    }
    if (r == MAILSTORE_OK) {
        uint32_t *modified = NULL;
        size_t nmodified = 0;
        unsigned long long modseq = ms->highestmodseq + 1;
        flags &= MBOX_FLAGS_IMAP;
        for (size_t i = 0; i < nv && r == MAILSTORE_OK; i++) {
            struct md_msg *x = &v[i];
            if (!n || !bsearch(&x->m.uid, sorted, n, sizeof *sorted, md_uid_cmp))
                continue;
            if (unchangedsince && x->m.modseq > unchangedsince) {
                if (!modified)
                    modified = xreallocarray(NULL, n, sizeof *modified);
                if (nmodified < n)
                    modified[nmodified++] = x->m.uid;
                continue;
            }
            unsigned f = x->m.flags & MBOX_FLAGS_IMAP;
            uint32_t k = x->m.keywords;
            mailstore_flags_apply(mode, flags, kw, &f, &k);
            if (f == (x->m.flags & MBOX_FLAGS_IMAP) && k == x->m.keywords)
                continue;
            unsigned nl = md_letters_for(letters, x, k);
            if (f != (x->m.flags & MBOX_FLAGS_IMAP) || nl != x->letters || x->in_new) {
                /* flags and keyword letters are in the name: one rename into cur/ carries the
                 * whole change (atomic); keywords without a letter are the journal's alone */
                bool was_new = x->in_new;
                if (md_rename_to(ms, x, f, nl) < 0) {
                    if (errno == ENOENT)
                        continue; /* removed or renamed by another program just now: the next scan tells */
                    *error_r = errno == ENAMETOOLONG ? "message file name too long for its flags"
                                                     : "cannot rename a message file";
                    r = MAILSTORE_ERROR;
                    break;
                }
                renamed_new |= was_new;
                renamed_cur = true;
            }
            x->m.flags = f;
            x->m.keywords = k;
            x->m.modseq = modseq;
            changed = true;
        }
        if (changed)
            ms->highestmodseq = modseq;
        if (modified_r) {
            *modified_r = modified;
            *nmodified_r = nmodified;
        } else {
            free(modified);
        }
    }
    /* the renames are durable before the index says so, and both before OK */
    if (renamed_cur && md_fsync_dirs(ms, true, renamed_new) < 0 && r == MAILSTORE_OK) {
        *error_r = "cannot sync the Maildir";
        r = MAILSTORE_ERROR;
    }
    if (renamed_cur)
        mailstore_step("maildir-synced");
    free(sorted);
    bool durable = (!changed && ms->nkeywords == base.nkeywords) || md_index_update(ms, &base, v, nv) == 0;
    md_base_free(&base);
    if (!durable && r == MAILSTORE_OK) {
        *error_r = "cannot write the mailbox index";
        r = MAILSTORE_ERROR;
    }
    mailstore_gen_adopt(ms, md_publish(ms, v, nv));
    if (!durable)
        md_cache_stale(ms);
    md_unlock(lock);
    return r;
}

enum mailstore_result maildir_store_append(struct mailstore *ms, const char *data, size_t len, time_t when,
                                           unsigned flags, const char *const *keywords, size_t nkeywords,
                                           uint32_t *uid_r, const char **error_r)
{
    static unsigned counter;
    *uid_r = 0;
    if (len > MAILSTORE_MESSAGE_MAX) {
        *error_r = "message too large";
        return MAILSTORE_ERROR;
    }
    /* LF line ends, as delivery writes Maildir files (for mail readers that open them) */
    struct buf body, raw, wire;
    buf_init(&body, 0);
    buf_init(&raw, 0);
    buf_init(&wire, 0);
    for (size_t i = 0; i < len; i++)
        if (!(data[i] == '\r' && i + 1 < len && data[i + 1] == '\n'))
            buf_append_char(&body, data[i]);
    md_quote(body.data ? body.data : "", body.len, &raw);
    size_t wsize = mbox_export(raw.data ? raw.data : "", raw.len, 0, -1, &wire);
    buf_free(&raw);
    buf_free(&wire);
    char host[128];
    if (gethostname(host, sizeof host) < 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (*p == '/' || *p == ':' || *p == ',' || (unsigned char)*p < 0x21)
            *p = '_';
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char key[MAILDIR_NAME_MAX + 1], name[MAILDIR_NAME_MAX + 1];
    snprintf(key, sizeof key, "%lld.M%ldP%dQ%u.%s,S=%zu,W=%zu", (long long)tv.tv_sec, (long)tv.tv_usec, (int)getpid(),
             ++counter, host, body.len, wsize);
    /*
     * Under the index lock from the start: the list as it is now (the process's last scan when
     * nothing changed since, else a scan), then the file, then its entry added to that list
     * and journalled. No scan after the rename: the new file is known.
     */
    int lock = md_lock(ms, error_r);
    if (lock < 0) {
        buf_free(&body);
        return MAILSTORE_ERROR;
    }
    struct md_msg *v = NULL;
    size_t nv = 0;
    enum mailstore_result r = md_current(ms, &v, &nv, error_r);
    if (r != MAILSTORE_OK) {
        md_unlock(lock);
        buf_free(&body);
        return r;
    }
    struct md_base base;
    md_base_take(&base, ms, v, nv, false);
    uint32_t kw = 0;
    for (size_t k = 0; k < nkeywords && r == MAILSTORE_OK; k++) {
        int bit = mailstore_keyword_add(ms, keywords[k]);
        if (bit < 0) {
            *error_r = "too many keywords in this mailbox";
            r = MAILSTORE_ERROR;
        }
        kw |= bit >= 0 ? 1u << bit : 0;
    }
    /* keywords with a letter go into the name (new ones get one first): the file carries them
     * from the start; the rest the journal gives it with its UID */
    struct md_letters *letters = md_letters_of(ms);
    if (!letters->loaded)
        letters = md_letters_load(ms);
    if (r == MAILSTORE_OK && (kw & ~md_lettered_bits(letters))) {
        unsigned used = 0;
        for (size_t i = 0; i < nv; i++)
            used |= v[i].letters;
        md_letters_assign(ms, letters, kw, used);
    }
    unsigned name_letters = md_bits_letters(letters, kw);
    if (r == MAILSTORE_OK && maildir_name_make(key, strlen(key), flags & MBOX_FLAGS_IMAP, name_letters, NULL, name,
                                               sizeof name) == 0) {
        *error_r = "message file name too long";
        r = MAILSTORE_ERROR;
    }
    char *tmp = md_join(ms->tmp_path, "/", key), *to = md_join(ms->mbox_path, "/cur/", name);
    struct stat st;
    if (r == MAILSTORE_OK) {
        r = MAILSTORE_ERROR;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        struct timespec times[2] = {{.tv_sec = when}, {.tv_sec = when}};
        if (fd < 0) {
            *error_r = "cannot create a Maildir file";
        } else if (fs_write_all(fd, body.data ? body.data : "", body.len) < 0 || fsync(fd) < 0 ||
                   (when > 0 && futimens(fd, times) < 0) || fstat(fd, &st) < 0) {
            *error_r = "Maildir write failed";
        } else if (mailstore_step("maildir-tmp-synced"), rename(tmp, to) < 0) {
            *error_r = "cannot move the Maildir file into cur/";
        } else if (mailstore_step("maildir-appended"), md_fsync_dirs(ms, true, false) < 0) {
            *error_r = "cannot sync the Maildir";
        } else {
            mailstore_step("maildir-synced");
            r = MAILSTORE_OK;
        }
        if (fd >= 0)
            close(fd);
        if (r != MAILSTORE_OK)
            unlink(tmp);
    }
    buf_free(&body);
    free(tmp);
    bool durable = true;
    if (r == MAILSTORE_OK) {
        /* the file is in cur/ for good: now its UID, as a scan would list it */
        v = xreallocarray(v, nv + 1, sizeof *v);
        struct md_msg *x = &v[nv++];
        memset(x, 0, sizeof *x);
        x->key = xstrdup(key);
        x->name = xstrdup(name);
        x->letters = name_letters;
        x->m.uid = ms->uidnext++;
        x->m.flags = flags & MBOX_FLAGS_IMAP;
        x->m.keywords = kw;
        x->m.modseq = ++ms->highestmodseq;
        x->m.content_len = (unsigned long long)st.st_size;
        x->m.internaldate = st.st_mtim.tv_sec;
        md_measure(to, &x->m);
        md_key_hash(key, x->m.hash);
        *uid_r = x->m.uid;
    }
    free(to);
    /* its UID and keywords (or a keyword added to the table before a failure): one journal append */
    if (r == MAILSTORE_OK || ms->nkeywords != base.nkeywords) {
        durable = md_index_update(ms, &base, v, nv) == 0;
        if (!durable && r == MAILSTORE_OK) {
            *error_r = "cannot write the mailbox index";
            r = MAILSTORE_ERROR;
        }
    }
    md_base_free(&base);
    mailstore_gen_adopt(ms, md_publish(ms, v, nv));
    if (!durable)
        md_cache_stale(ms);
    md_unlock(lock);
    return r;
}
