/*
 * folders: the folder tree, LIST/LSUB, CREATE/DELETE/RENAME, subscriptions and COPY's
 * append loop (see folders.h).
 *
 * STANDARDS
 *   RFC 3501 6.3.3-6.3.9 (CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB), RFC 3348 and
 *   RFC 5258 4 (\HasChildren \HasNoChildren), RFC 5258 (LIST selection and return options
 *   SUBSCRIBED, REMOTE, RECURSIVEMATCH with CHILDINFO, CHILDREN), RFC 6154 (SPECIAL-USE),
 *   RFC 4315 (UID sets of COPYUID), RFC 5530 (response codes).
 */
#include "folders.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deliver/local.h"
#include "fsutil.h"
#include "log.h"
#include "mbox_flags.h"
#include "mbox_read.h"
#include "mutf7.h"
#include "xalloc.h"

#define FOLDERS_SUBS_FILE ".subscriptions"
#define FOLDERS_SUBS_MAX_BYTES (1024UL * 1024)

static const char *const folders_first_login_names[] = {"Sent", "Drafts", "Trash", "Junk"};

enum folders_kind {
    FOLDERS_MISSING,   /* nothing there; it can be created */
    FOLDERS_BLOCKED,   /* a parent is not a directory: nothing can be created there */
    FOLDERS_MBOX,
    FOLDERS_DIR,
    FOLDERS_OTHER,     /* something that is not ours: a link, a device, a file that is no mbox */
};

/* ---- paths ---------------------------------------------------------------------------------- */

static bool folders_mail_dir(const struct imapd_folders_ctx *ctx, char *out, size_t outlen)
{
    const struct smtpd_maps *m = ctx->srv->maps;
    out[0] = '\0';
    return m && m->mail_dir && m->mail_dir(m->ctx, ctx->user, out, outlen) && out[0] == '/';
}

/* Paths of a canonical name into f. false when the user has no mail_dir (or it is too long). */
static bool folders_locate(const struct imapd_folders_ctx *ctx, const char *name, struct imapd_folder *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    const char *state_dir = ctx->srv->conf->state_dir;
    if (strcmp(name, "INBOX") == 0) {
        f->inbox = true;
        folders_mail_dir(ctx, f->mail_dir, sizeof f->mail_dir);
        /* the path the INBOX's store keys its generations and watchers by (mailstore.h) */
        if (strcmp(ctx->srv->conf->mailbox_format, "maildir") == 0)
            snprintf(f->mbox_path, sizeof f->mbox_path, "%s/maildir/%s", state_dir, ctx->user);
        else
            snprintf(f->mbox_path, sizeof f->mbox_path, "%s/spool/mail/%s", state_dir, ctx->user);
        snprintf(f->index_path, sizeof f->index_path, "%s/index/%s/INBOX", state_dir, ctx->user);
        return true;
    }
    if (!folders_mail_dir(ctx, f->mail_dir, sizeof f->mail_dir))
        return false;
    char index_file[FOLDERNAME_INDEX_FILE_MAX];
    foldername_index_file(name, index_file, sizeof index_file);
    int a = snprintf(f->mbox_path, sizeof f->mbox_path, "%s/%s", f->mail_dir, name);
    int b = snprintf(f->index_path, sizeof f->index_path, "%s/index/%s/%s", state_dir, ctx->user, index_file);
    return a > 0 && (size_t)a < sizeof f->mbox_path && b > 0 && (size_t)b < sizeof f->index_path;
}

static bool folders_plausible_mbox(const char *path, const struct stat *st)
{
    if (st->st_size == 0)
        return true;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return false;
    char head[5];
    bool ok = read(fd, head, sizeof head) == (ssize_t)sizeof head && memcmp(head, "From ", 5) == 0;
    close(fd);
    return ok;
}

/* What is at the folder's path; every component under MAIL_DIR is lstat()ed (no links). */
static enum folders_kind folders_kind(const struct imapd_folder *f)
{
    if (f->inbox)
        return FOLDERS_MBOX;
    char path[IMAPD_FOLDER_PATH_MAX];
    size_t base = strlen(f->mail_dir);
    snprintf(path, sizeof path, "%s", f->mbox_path);
    struct stat st;
    for (char *p = path + base + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        int rc = lstat(path, &st);
        *p = saved;
        if (rc < 0)
            return errno == ENOENT ? FOLDERS_MISSING : FOLDERS_OTHER;
        if (saved == '\0')
            break;
        if (!S_ISDIR(st.st_mode))
            return FOLDERS_BLOCKED;
    }
    if (S_ISDIR(st.st_mode))
        return FOLDERS_DIR;
    if (S_ISREG(st.st_mode) && folders_plausible_mbox(f->mbox_path, &st))
        return FOLDERS_MBOX;
    return FOLDERS_OTHER;
}

/* Decodes and locates a wire name; false with the NO text in no. */
static bool folders_find(const struct imapd_folders_ctx *ctx, const char *wire, bool *trailing_r,
                         struct imapd_folder *f, char *no, size_t nolen)
{
    char name[FOLDERNAME_MAX + 1];
    const char *why = foldername_from_wire(wire, strlen(wire), name, sizeof name, trailing_r);
    if (why) {
        snprintf(no, nolen, "[CANNOT] Invalid mailbox name: %s.", why);
        return false;
    }
    if (!folders_locate(ctx, name, f)) {
        snprintf(no, nolen, "[%s] No mail folder for this user: only INBOX is served.",
                 trailing_r ? "CANNOT" : "NONEXISTENT");
        return false;
    }
    return true;
}

bool imapd_folder_mailbox(const struct imapd_folders_ctx *ctx, const char *wire, const char *missing_code,
                          struct imapd_folder *f, char *no, size_t nolen)
{
    if (!folders_find(ctx, wire, NULL, f, no, nolen))
        return false;
    switch (folders_kind(f)) {
    case FOLDERS_MBOX:
        return true;
    case FOLDERS_DIR:
        snprintf(no, nolen, "[CANNOT] Mailbox isn't selectable: it holds folders (\\Noselect).");
        return false;
    case FOLDERS_MISSING:
    case FOLDERS_BLOCKED:
    case FOLDERS_OTHER:
        break;
    }
    snprintf(no, nolen, "[%s] Mailbox doesn't exist.", missing_code);
    return false;
}

enum mailstore_result imapd_folder_open(const struct imapd_folders_ctx *ctx, const struct imapd_folder *f,
                                        struct mailstore *ms, const char **error_r)
{
    if (f->inbox)
        return mailstore_open_inbox(ms, ctx->srv->conf->state_dir, ctx->user,
                                    strcmp(ctx->srv->conf->mailbox_format, "maildir") == 0, error_r);
    struct mailstore_location loc = {.mbox_path = f->mbox_path, .index_path = f->index_path, .user = ctx->user};
    return mailstore_open_at(ms, &loc, error_r);
}

/* ---- COPY ----------------------------------------------------------------------------------- */

/* What one COPY batch holds at most: the target is written once and fsync'd once per batch. */
#define IMAPD_COPY_BATCH 256
#define IMAPD_COPY_BATCH_BYTES (8UL * 1024 * 1024)

enum mailstore_result imapd_folder_copy(struct mailstore *src, const struct mailstore_msg *const *msgs, size_t n,
                                        struct mailstore *dst, uint32_t *dst_uids, size_t *done_r,
                                        const char **error_r)
{
    *done_r = 0;
    struct buf raw, fixed, kwtext;
    buf_init(&raw, 0);
    buf_init(&fixed, 0);
    buf_init(&kwtext, 0);
    struct buf *wire = xcalloc(IMAPD_COPY_BATCH, sizeof *wire);
    struct mailstore_new *batch = xcalloc(IMAPD_COPY_BATCH, sizeof *batch);
    const char *(*kw)[MAILSTORE_KEYWORDS_MAX] = xcalloc(IMAPD_COPY_BATCH, sizeof *kw);
    size_t nbatch = 0, bytes = 0;
    enum mailstore_result r = MAILSTORE_OK;
    for (size_t i = 0; i <= n && r == MAILSTORE_OK; i++) {
        /* the batch goes when full, when the next message would make it too big, at the end */
        size_t next_len = i < n ? (size_t)msgs[i]->size : 0;
        if (nbatch && (i == n || nbatch == IMAPD_COPY_BATCH || bytes + next_len > IMAPD_COPY_BATCH_BYTES)) {
            r = mailstore_append_many(dst, batch, nbatch, dst_uids + *done_r, error_r);
            if (r == MAILSTORE_OK)
                *done_r += nbatch;
            else if (dst->maildir)
                for (size_t k = 0; k < nbatch && dst_uids[*done_r]; k++)
                    (*done_r)++; /* those added before the error, to be taken out */
            nbatch = 0;
            bytes = 0;
        }
        if (i == n || r != MAILSTORE_OK)
            break;
        const struct mailstore_msg *m = msgs[i];
        buf_reset(&raw);
        buf_reset(&fixed);
        buf_reset(&wire[nbatch]);
        buf_reset(&kwtext);
        r = mailstore_read_msg(src, m, &raw, error_r);
        if (r != MAILSTORE_OK)
            break;
        size_t nkw = 0;
        for (size_t k = 0; k < src->nkeywords; k++)
            if (m->keywords & (1u << k)) {
                kw[nbatch][nkw++] = src->keyword[k];
                buf_printf(&kwtext, "%s%s", kwtext.len ? " " : "", src->keyword[k]);
            }
        /* the copy's flag fields say what the source's index says (mutt reads them) */
        const char *data = raw.data ? raw.data : "";
        size_t hdr = mbox_header_len(data, raw.len);
        unsigned flags = m->flags & MBOX_FLAGS_IMAP;
        mbox_flags_rewrite(data, hdr, flags | MBOX_FLAG_OLD, kwtext.len ? kwtext.data : NULL, &fixed);
        buf_append(&fixed, data + hdr, raw.len - hdr);
        mbox_export(fixed.data ? fixed.data : "", fixed.len, 0, -1, &wire[nbatch]);
        batch[nbatch] = (struct mailstore_new){.data = wire[nbatch].data ? wire[nbatch].data : "",
                                               .len = wire[nbatch].len,
                                               .when = m->internaldate ? m->internaldate : time(NULL),
                                               .flags = flags,
                                               .keywords = kw[nbatch],
                                               .nkeywords = nkw};
        bytes += wire[nbatch].len;
        nbatch++;
    }
    if (r != MAILSTORE_OK && *done_r) {
        /* all or nothing (RFC 3501 6.4.7): take the copies made so far out again */
        size_t removed = 0;
        const char *why = NULL;
        if (mailstore_expunge(dst, dst_uids, *done_r, &removed, &why) == MAILSTORE_OK)
            *done_r = 0;
        else
            log_warnx("imapd: %zu copies left in %s after a failed copy: %s", *done_r, dst->mbox_path, why);
    }
    for (size_t k = 0; k < IMAPD_COPY_BATCH; k++)
        buf_free(&wire[k]);
    free(wire);
    free(batch);
    free(kw);
    buf_free(&raw);
    buf_free(&fixed);
    buf_free(&kwtext);
    return r;
}

void imapd_uid_set(struct buf *b, const uint32_t *uids, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && uids[j + 1] == uids[j] + 1)
            j++;
        if (j > i)
            buf_printf(b, "%s%u:%u", i ? "," : "", uids[i], uids[j]);
        else
            buf_printf(b, "%s%u", i ? "," : "", uids[i]);
        i = j + 1;
    }
}

/* ---- subscriptions -------------------------------------------------------------------------- */

struct folders_names {
    char **v;
    size_t n;
};

static void folders_names_free(struct folders_names *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* The list is kept sorted (strcmp), without duplicates: lookups are binary searches. */
static size_t folders_names_pos(const struct folders_names *s, const char *name)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(s->v[mid], name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool folders_names_has(const struct folders_names *s, const char *name)
{
    size_t at = folders_names_pos(s, name);
    return at < s->n && strcmp(s->v[at], name) == 0;
}

static void folders_names_add(struct folders_names *s, const char *name)
{
    size_t at = folders_names_pos(s, name);
    if (at < s->n && strcmp(s->v[at], name) == 0)
        return;
    s->v = xreallocarray(s->v, s->n + 1, sizeof *s->v);
    memmove(s->v + at + 1, s->v + at, (s->n - at) * sizeof *s->v);
    s->v[at] = xstrdup(name);
    s->n++;
}

static int folders_str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* MAIL_DIR/.subscriptions; a missing file is an empty list. Invalid lines are skipped. */
static void folders_subs_load(const char *mail_dir, struct folders_names *s)
{
    s->v = NULL;
    s->n = 0;
    if (!mail_dir[0])
        return;
    char path[MAILPATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", mail_dir, FOLDERS_SUBS_FILE);
    char *data = NULL;
    size_t len = 0;
    if (fs_read_file(path, FOLDERS_SUBS_MAX_BYTES, &data, &len) < 0) {
        if (errno != ENOENT)
            log_warn("imapd: cannot read %s", path);
        return;
    }
    for (size_t start = 0; start < len;) {
        const char *nl = memchr(data + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - data) : len;
        data[end] = '\0';
        const char *line = data + start;
        size_t llen = end - start;
        if (llen && !foldername_check(line, llen) && s->n < IMAPD_SUBSCRIPTIONS_MAX) {
            s->v = xreallocarray(s->v, s->n + 1, sizeof *s->v);
            s->v[s->n++] = xstrdup(foldername_is_inbox(line) ? "INBOX" : line);
        }
        start = end + 1;
    }
    free(data);
    if (s->n > 1)
        qsort(s->v, s->n, sizeof *s->v, folders_str_cmp);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (k && strcmp(s->v[k - 1], s->v[i]) == 0)
            free(s->v[i]);
        else
            s->v[k++] = s->v[i];
    }
    s->n = k;
}

/* Writes the list whole: tmp file, fsync, rename, fsync the folder. */
static bool folders_subs_save(const char *mail_dir, const struct folders_names *s)
{
    char path[MAILPATH_MAX + 32], tmp[MAILPATH_MAX + 40];
    snprintf(path, sizeof path, "%s/%s", mail_dir, FOLDERS_SUBS_FILE);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (fs_mkdir_p(mail_dir, 0700) < 0)
        return false;
    struct buf b;
    buf_init(&b, 0);
    for (size_t i = 0; i < s->n; i++)
        buf_printf(&b, "%s\n", s->v[i]);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    bool ok = fd >= 0 && fs_write_all(fd, b.data ? b.data : "", b.len) == 0 && fsync(fd) == 0;
    if (fd >= 0 && close(fd) < 0)
        ok = false;
    ok = ok && rename(tmp, path) == 0 && fs_fsync_dir(mail_dir) == 0;
    if (!ok) {
        log_warn("imapd: cannot write %s", path);
        unlink(tmp);
    }
    buf_free(&b);
    return ok;
}

/* ---- the folder tree ------------------------------------------------------------------------ */

struct folders_entry {
    char *name;        /* UTF-8 */
    char *wire;        /* modified UTF-7 */
    bool dir, inbox, exists, subscribed, childinfo;
    bool has_children;
};

struct folders_tree {
    struct folders_entry *v;
    size_t n;
    bool truncated;
};

static void folders_tree_free(struct folders_tree *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].name);
        free(t->v[i].wire);
    }
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

static struct folders_entry *folders_tree_add(struct folders_tree *t, const char *name, size_t len)
{
    struct buf w;
    const char *why = NULL;
    buf_init(&w, FOLDERNAME_WIRE_MAX);
    if (!mutf7_encode(name, len, &w, &why)) {
        buf_free(&w);
        return NULL;
    }
    t->v = xreallocarray(t->v, t->n + 1, sizeof *t->v);
    struct folders_entry *e = &t->v[t->n++];
    memset(e, 0, sizeof *e);
    e->name = xstrndup(name, len);
    e->wire = w.data ? buf_steal(&w) : xstrdup("");
    buf_free(&w);
    e->exists = true;
    return e;
}

/* Adds what is under MAIL_DIR/rel (rel "" for the top); returns how many entries it added. */
static size_t folders_walk(struct folders_tree *t, const char *mail_dir, const char *rel, unsigned depth)
{
    char dirpath[IMAPD_FOLDER_PATH_MAX];
    snprintf(dirpath, sizeof dirpath, "%s%s%s", mail_dir, rel[0] ? "/" : "", rel);
    DIR *d = opendir(dirpath);
    if (!d)
        return 0;
    size_t added = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (t->n >= IMAPD_FOLDERS_MAX) {
            t->truncated = true;
            break;
        }
        char name[FOLDERNAME_MAX + 2];
        int nlen = snprintf(name, sizeof name, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
        if (nlen <= 0 || (size_t)nlen > FOLDERNAME_MAX || foldername_check(name, (size_t)nlen) ||
            foldername_is_inbox(name))
            continue;
        char path[IMAPD_FOLDER_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", mail_dir, name);
        struct stat st;
        if (lstat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            size_t at = t->n;
            if (!folders_tree_add(t, name, (size_t)nlen))
                continue;
            t->v[at].dir = true;
            size_t inside = depth + 1 < FOLDERNAME_DEPTH_MAX ? folders_walk(t, mail_dir, name, depth + 1) : 0;
            t->v[at].has_children = inside > 0;
            added += 1 + inside;
        } else if (S_ISREG(st.st_mode) && folders_plausible_mbox(path, &st)) {
            if (folders_tree_add(t, name, (size_t)nlen))
                added++;
        }
    }
    closedir(d);
    return added;
}

static struct folders_entry *folders_tree_find(struct folders_tree *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0)
            return &t->v[i];
    return NULL;
}

static int folders_entry_cmp(const void *a, const void *b)
{
    const struct folders_entry *x = a, *y = b;
    if (x->inbox != y->inbox)
        return x->inbox ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* In a tree sorted by folders_entry_cmp (INBOX first, then by name). */
static struct folders_entry *folders_tree_find_sorted(struct folders_tree *t, const char *name)
{
    if (t->n && t->v[0].inbox && strcmp(name, "INBOX") == 0)
        return &t->v[0];
    size_t lo = t->n && t->v[0].inbox ? 1 : 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->v[mid].name, name);
        if (c == 0)
            return t->v[mid].inbox ? NULL : &t->v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* INBOX and everything under MAIL_DIR. */
static void folders_tree_load(const struct imapd_folders_ctx *ctx, const char *mail_dir, struct folders_tree *t)
{
    memset(t, 0, sizeof *t);
    struct folders_entry *inbox = folders_tree_add(t, "INBOX", 5);
    inbox->inbox = true;
    if (mail_dir[0])
        folders_walk(t, mail_dir, "", 0);
    if (t->n > 2)
        qsort(t->v + 1, t->n - 1, sizeof *t->v, folders_entry_cmp); /* INBOX first, then by name */
    if (t->truncated)
        log_warnx("imapd %llx: user=%s: more than %d folders, the listing is cut short", ctx->session_id, ctx->user,
                  IMAPD_FOLDERS_MAX);
}

/* ---- LIST and LSUB -------------------------------------------------------------------------- */

void imapd_quote(struct buf *b, const char *s)
{
    bool atom = s[0] != '\0';
    for (const char *c = s; *c && atom; c++)
        atom = *c > 0x20 && *c < 0x7f && !strchr("(){%*\"\\]", *c);
    if (atom) {
        buf_append_str(b, s); /* as Dovecot writes INBOX and plain names */
        return;
    }
    buf_append_char(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_append_char(b, '\\');
        buf_append_char(b, *s);
    }
    buf_append_char(b, '"');
}

struct folders_patterns {
    char *v[IMAP_ITEMS_MAX + 1];
    size_t n;
};

static bool folders_patterns_match(const struct folders_patterns *p, const char *wire)
{
    for (size_t i = 0; i < p->n; i++)
        if (foldername_match(p->v[i], wire))
            return true;
    return false;
}

static void folders_patterns_free(struct folders_patterns *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i]);
    p->n = 0;
}

/* reference + pattern for each pattern (RFC 3501 6.3.8: the two are joined). */
static bool folders_patterns_make(const struct imap_cmd *cmd, struct folders_patterns *p)
{
    p->n = 0;
    for (size_t i = 0; i <= cmd->nitems; i++) {
        const char *pat = i == 0 ? cmd->arg2 : cmd->items[i - 1];
        if (i > 0 && cmd->verb != IMAP_VERB_LIST)
            break;
        size_t len = strlen(cmd->arg1) + strlen(pat);
        size_t wild = 0;
        for (const char *c = pat; *c; c++)
            wild += *c == '*' || *c == '%';
        if (len > FOLDERNAME_PATTERN_MAX || wild > 32) {
            folders_patterns_free(p);
            return false;
        }
        char *joined = xmalloc(len + 1);
        snprintf(joined, len + 1, "%s%s", cmd->arg1, pat);
        p->v[p->n++] = joined;
    }
    return true;
}

static void folders_attrs(const struct folders_entry *e, const struct imap_cmd *cmd, bool lsub, struct buf *b)
{
    size_t start = b->len;
#define FOLDERS_ATTR(s) buf_printf(b, "%s%s", b->len > start ? " " : "", (s))
    if (lsub) {
        if (!e->subscribed || e->dir)
            FOLDERS_ATTR("\\Noselect");
        return;
    }
    if (!e->exists) {
        FOLDERS_ATTR("\\NonExistent");
    } else if (e->inbox) {
        FOLDERS_ATTR("\\HasNoChildren");
    } else if (e->dir) {
        FOLDERS_ATTR("\\Noselect");
        FOLDERS_ATTR(e->has_children ? "\\HasChildren" : "\\HasNoChildren");
    } else {
        FOLDERS_ATTR("\\NoInferiors");
    }
    if (e->subscribed && (cmd->list_select & IMAP_LIST_SEL_SUBSCRIBED || cmd->list_return & IMAP_LIST_RET_SUBSCRIBED))
        FOLDERS_ATTR("\\Subscribed");
    const char *use = e->exists && !e->dir ? foldername_special_use(e->name) : NULL;
    if (use)
        FOLDERS_ATTR(use);
#undef FOLDERS_ATTR
}

/* Subscribed names as entries (existing ones with their tree attributes, others \NonExistent). */
static void folders_subscribed_entries(struct folders_tree *all, const struct folders_names *subs,
                                       struct folders_tree *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < subs->n; i++) {
        const struct folders_entry *have = folders_tree_find_sorted(all, subs->v[i]);
        struct folders_entry *e = folders_tree_add(out, subs->v[i], strlen(subs->v[i]));
        if (!e)
            continue;
        e->subscribed = true;
        e->inbox = strcmp(subs->v[i], "INBOX") == 0;
        e->exists = have != NULL;
        if (have) {
            e->dir = have->dir;
            e->inbox = have->inbox;
            e->has_children = have->has_children;
        }
    }
}

/*
 * Parents of subscribed names that match where the names themselves do not: RECURSIVEMATCH's
 * CHILDINFO (RFC 5258 3.5) and LSUB's \Noselect parents for '%' (RFC 3501 6.3.9).
 */
static void folders_add_parents(struct folders_tree *all, struct folders_tree *sel, const struct folders_patterns *pats)
{
    size_t nsubs = sel->n;
    for (size_t i = 0; i < nsubs; i++) {
        if (folders_patterns_match(pats, sel->v[i].wire))
            continue;
        char parent[FOLDERNAME_MAX + 1];
        snprintf(parent, sizeof parent, "%s", sel->v[i].name);
        char *slash;
        while ((slash = strrchr(parent, '/')) != NULL) {
            *slash = '\0';
            struct folders_entry *known = folders_tree_find(sel, parent);
            if (known) {
                if (known->subscribed && known - sel->v < (ptrdiff_t)nsubs)
                    known->childinfo = true;
                continue;
            }
            struct folders_entry *e = folders_tree_add(sel, parent, strlen(parent));
            if (!e)
                continue;
            const struct folders_entry *have = folders_tree_find_sorted(all, parent);
            e->exists = have != NULL;
            e->dir = have ? have->dir : true;
            e->has_children = true;
            e->childinfo = true;
        }
    }
}

static enum imapd_reply folders_list(const struct imapd_folders_ctx *ctx, const struct imap_cmd *cmd, struct buf *out,
                                     char *text, size_t textlen)
{
    bool lsub = cmd->verb == IMAP_VERB_LSUB;
    const char *verb = lsub ? "LSUB" : "LIST";
    if (!lsub && cmd->arg2[0] == '\0' && cmd->nitems == 0) {
        /* the delimiter and the root (RFC 3501 6.3.8) */
        buf_append_str(out, "* LIST (\\Noselect) \"/\" \"\"\r\n");
        snprintf(text, textlen, "List completed.");
        return IMAPD_REPLY_OK;
    }
    struct folders_patterns pats;
    if (!folders_patterns_make(cmd, &pats)) {
        snprintf(text, textlen, "Pattern too long or too many wildcards.");
        return IMAPD_REPLY_BAD;
    }
    char mail_dir[MAILPATH_MAX];
    folders_mail_dir(ctx, mail_dir, sizeof mail_dir);
    struct folders_tree all;
    folders_tree_load(ctx, mail_dir, &all);
    struct folders_names subs;
    folders_subs_load(mail_dir, &subs);
    if (!folders_names_has(&subs, "INBOX"))
        folders_names_add(&subs, "INBOX");
    for (size_t i = 0; i < all.n; i++)
        all.v[i].subscribed = folders_names_has(&subs, all.v[i].name);
    bool by_subs = lsub || (cmd->list_select & IMAP_LIST_SEL_SUBSCRIBED);
    struct folders_tree subtree, *sel = &all;
    if (by_subs) {
        folders_subscribed_entries(&all, &subs, &subtree);
        sel = &subtree;
        if (lsub || (cmd->list_select & IMAP_LIST_SEL_RECURSIVEMATCH))
            folders_add_parents(&all, sel, &pats);
        if (sel->n > 1)
            qsort(sel->v, sel->n, sizeof *sel->v, folders_entry_cmp);
    }
    bool special_only = cmd->list_select & IMAP_LIST_SEL_SPECIAL_USE;
    for (size_t i = 0; i < sel->n; i++) {
        struct folders_entry *e = &sel->v[i];
        bool match = folders_patterns_match(&pats, e->wire);
        if (!match)
            continue;
        if (lsub && e->childinfo && !e->subscribed) {
            /* LSUB lists an unsubscribed parent only for a '%' that stopped at it */
            bool pct = false;
            for (size_t k = 0; k < pats.n; k++)
                pct |= strchr(pats.v[k], '%') != NULL;
            if (!pct)
                continue;
        }
        if (!lsub && by_subs && !e->subscribed && !(e->childinfo && (cmd->list_select & IMAP_LIST_SEL_RECURSIVEMATCH)))
            continue;
        if (special_only && !(e->exists && !e->dir && foldername_special_use(e->name))) {
            if (!(e->childinfo && (cmd->list_select & IMAP_LIST_SEL_RECURSIVEMATCH)))
                continue;
        }
        buf_printf(out, "* %s (", verb);
        folders_attrs(e, cmd, lsub, out);
        buf_append_str(out, ") \"/\" ");
        imapd_quote(out, e->wire);
        if (!lsub && e->childinfo && (cmd->list_select & IMAP_LIST_SEL_RECURSIVEMATCH) &&
            (cmd->list_select & IMAP_LIST_SEL_SUBSCRIBED))
            buf_append_str(out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
        buf_append_str(out, "\r\n");
    }
    if (by_subs)
        folders_tree_free(&subtree);
    folders_tree_free(&all);
    folders_names_free(&subs);
    folders_patterns_free(&pats);
    snprintf(text, textlen, "%s completed.", lsub ? "Lsub" : "List");
    return IMAPD_REPLY_OK;
}

/* ---- SUBSCRIBE, UNSUBSCRIBE ----------------------------------------------------------------- */

static enum imapd_reply folders_subscribe(const struct imapd_folders_ctx *ctx, const struct imap_cmd *cmd,
                                          char *text, size_t textlen)
{
    bool subscribe = cmd->verb == IMAP_VERB_SUBSCRIBE;
    struct imapd_folder f;
    if (!folders_find(ctx, cmd->arg1, NULL, &f, text, textlen))
        return IMAPD_REPLY_NO;
    if (f.inbox) {
        snprintf(text, textlen, "%s completed (INBOX is always subscribed).", subscribe ? "Subscribe" : "Unsubscribe");
        return IMAPD_REPLY_OK;
    }
    struct folders_names subs;
    folders_subs_load(f.mail_dir, &subs);
    bool has = folders_names_has(&subs, f.name);
    bool ok = true;
    if (subscribe && !has) {
        if (subs.n >= IMAPD_SUBSCRIPTIONS_MAX) {
            folders_names_free(&subs);
            snprintf(text, textlen, "[LIMIT] Too many subscriptions.");
            return IMAPD_REPLY_NO;
        }
        folders_names_add(&subs, f.name);
        ok = folders_subs_save(f.mail_dir, &subs);
    } else if (!subscribe && has) {
        size_t k = 0;
        for (size_t i = 0; i < subs.n; i++) {
            if (strcmp(subs.v[i], f.name) == 0)
                free(subs.v[i]);
            else
                subs.v[k++] = subs.v[i];
        }
        subs.n = k;
        ok = folders_subs_save(f.mail_dir, &subs);
    }
    folders_names_free(&subs);
    if (!ok) {
        snprintf(text, textlen, "[SERVERBUG] Internal error: the subscriptions could not be written.");
        return IMAPD_REPLY_NO;
    }
    snprintf(text, textlen, "%s completed.", subscribe ? "Subscribe" : "Unsubscribe");
    return IMAPD_REPLY_OK;
}

/* Renames subscriptions of from and everything under it to to. */
static void folders_subs_rename(const char *mail_dir, const char *from, const char *to)
{
    struct folders_names subs;
    folders_subs_load(mail_dir, &subs);
    size_t flen = strlen(from);
    bool changed = false;
    for (size_t i = 0; i < subs.n; i++) {
        const char *s = subs.v[i];
        if (strncmp(s, from, flen) == 0 && (s[flen] == '\0' || s[flen] == '/')) {
            size_t n = strlen(to) + strlen(s + flen) + 1;
            char *renamed = xmalloc(n);
            snprintf(renamed, n, "%s%s", to, s + flen);
            free(subs.v[i]);
            subs.v[i] = renamed;
            changed = true;
        }
    }
    if (changed)
        folders_subs_save(mail_dir, &subs);
    folders_names_free(&subs);
}

/* ---- CREATE, DELETE, RENAME ----------------------------------------------------------------- */

/* The folders above f's path, 0700; fsyncs the folder that gets the new entry. */
static bool folders_make_parents(const struct imapd_folder *f)
{
    char *dir = fs_dirname(f->mbox_path);
    bool ok = fs_mkdir_p(f->mail_dir, 0700) == 0 && fs_mkdir_p(dir, 0700) == 0;
    free(dir);
    return ok;
}

static bool folders_create_mbox(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return false;
    bool ok = fsync(fd) == 0;
    if (close(fd) < 0)
        ok = false;
    char *dir = fs_dirname(path);
    ok = ok && fs_fsync_dir(dir) == 0;
    free(dir);
    return ok;
}

/* CREATE and RENAME: may a new mailbox take f's name? false with the NO text. */
static bool folders_name_free(const struct imapd_folder *f, const char *what, char *text, size_t textlen)
{
    if (f->inbox) {
        snprintf(text, textlen, "[ALREADYEXISTS] INBOX always exists.");
        return false;
    }
    switch (folders_kind(f)) {
    case FOLDERS_MISSING:
        return true;
    case FOLDERS_BLOCKED:
        snprintf(text, textlen, "[CANNOT] A parent of %s is a mailbox, and an mbox cannot hold folders.", what);
        return false;
    case FOLDERS_MBOX:
    case FOLDERS_DIR:
    case FOLDERS_OTHER:
        break;
    }
    snprintf(text, textlen, "[ALREADYEXISTS] Mailbox already exists.");
    return false;
}

static enum imapd_reply folders_create(const struct imapd_folders_ctx *ctx, const struct imap_cmd *cmd, char *text,
                                       size_t textlen)
{
    struct imapd_folder f;
    bool trailing = false;
    if (!folders_find(ctx, cmd->arg1, &trailing, &f, text, textlen))
        return IMAPD_REPLY_NO;
    if (!folders_name_free(&f, "that name", text, textlen))
        return IMAPD_REPLY_NO;
    bool ok = folders_make_parents(&f);
    if (ok && trailing) {
        ok = mkdir(f.mbox_path, 0700) == 0;
        char *dir = fs_dirname(f.mbox_path);
        ok = ok && fs_fsync_dir(dir) == 0;
        free(dir);
    } else if (ok) {
        ok = folders_create_mbox(f.mbox_path);
    }
    if (!ok) {
        log_warn("imapd %llx: user=%s cannot create %s", ctx->session_id, ctx->user, f.mbox_path);
        snprintf(text, textlen, "[SERVERBUG] Internal error: the mailbox could not be created.");
        return IMAPD_REPLY_NO;
    }
    log_info("imapd %llx: user=%s create %s%s", ctx->session_id, ctx->user, f.name, trailing ? "/" : "");
    snprintf(text, textlen, "Create completed.");
    return IMAPD_REPLY_OK;
}

/* The mail store's files for one mailbox: the index and what sits beside it (mailstore.h). */
static const char *const folders_index_suffixes[] = {"", ".journal", ".recent"};

static void folders_index_remove(const char *index_path)
{
    static const char *const leftovers[] = {".tmp", ".recent.tmp"};
    char path[IMAPD_FOLDER_PATH_MAX + 16];
    for (size_t i = 0; i < sizeof folders_index_suffixes / sizeof folders_index_suffixes[0]; i++) {
        snprintf(path, sizeof path, "%s%s", index_path, folders_index_suffixes[i]);
        if (unlink(path) < 0 && errno != ENOENT)
            log_warn("imapd: cannot remove %s", path);
    }
    for (size_t i = 0; i < sizeof leftovers / sizeof leftovers[0]; i++) {
        snprintf(path, sizeof path, "%s%s", index_path, leftovers[i]);
        unlink(path);
    }
}

/*
 * Renames a mailbox's index with its flag journal (acknowledged STOREs not yet folded into
 * the index: left behind, they would be lost) and its \Recent boundary.
 */
static void folders_index_rename(const char *from, const char *to)
{
    char a[IMAPD_FOLDER_PATH_MAX + 16], b[IMAPD_FOLDER_PATH_MAX + 16];
    for (size_t i = 0; i < sizeof folders_index_suffixes / sizeof folders_index_suffixes[0]; i++) {
        snprintf(a, sizeof a, "%s%s", from, folders_index_suffixes[i]);
        snprintf(b, sizeof b, "%s%s", to, folders_index_suffixes[i]);
        if (rename(a, b) < 0 && errno != ENOENT)
            log_warn("imapd: cannot rename %s", a);
    }
}

static enum imapd_reply folders_delete(const struct imapd_folders_ctx *ctx, const struct imap_cmd *cmd, char *text,
                                       size_t textlen)
{
    struct imapd_folder f;
    bool trailing = false;
    if (!folders_find(ctx, cmd->arg1, &trailing, &f, text, textlen))
        return IMAPD_REPLY_NO;
    if (f.inbox) {
        snprintf(text, textlen, "[CANNOT] INBOX cannot be deleted.");
        return IMAPD_REPLY_NO;
    }
    enum folders_kind kind = folders_kind(&f);
    char *dir = fs_dirname(f.mbox_path);
    enum imapd_reply reply = IMAPD_REPLY_OK;
    if (kind == FOLDERS_DIR) {
        if (rmdir(f.mbox_path) < 0) {
            if (errno == ENOTEMPTY || errno == EEXIST)
                snprintf(text, textlen, "[CANNOT] The folder holds other folders: delete them first.");
            else
                snprintf(text, textlen, "[SERVERBUG] Internal error: the folder could not be deleted.");
            reply = IMAPD_REPLY_NO;
        }
    } else if (kind == FOLDERS_MBOX) {
        char lock[IMAPD_FOLDER_PATH_MAX + 8];
        snprintf(lock, sizeof lock, "%s.lock", f.mbox_path);
        if (local_dotlock(lock) < 0) {
            snprintf(text, textlen, "[INUSE] The mailbox is locked by another program, try again later.");
            reply = IMAPD_REPLY_NO;
        } else {
            if (unlink(f.mbox_path) < 0) {
                snprintf(text, textlen, "[SERVERBUG] Internal error: the mailbox could not be deleted.");
                reply = IMAPD_REPLY_NO;
            }
            unlink(lock);
            if (reply == IMAPD_REPLY_OK)
                folders_index_remove(f.index_path);
        }
    } else {
        snprintf(text, textlen, "[NONEXISTENT] Mailbox doesn't exist.");
        reply = IMAPD_REPLY_NO;
    }
    if (reply == IMAPD_REPLY_OK) {
        if (fs_fsync_dir(dir) < 0)
            log_warn("imapd: cannot sync %s", dir);
        log_info("imapd %llx: user=%s delete %s", ctx->session_id, ctx->user, f.name);
        snprintf(text, textlen, "Delete completed.");
    }
    free(dir);
    return reply;
}

/* Moves the index files of everything under the (already renamed) directory to their new names. */
static void folders_rename_indexes(const struct imapd_folders_ctx *ctx, const char *mail_dir, const char *from,
                                   const char *to)
{
    struct folders_tree t = {0};
    folders_walk(&t, mail_dir, to, 1);
    size_t tlen = strlen(to);
    for (size_t i = 0; i < t.n; i++) {
        if (t.v[i].dir)
            continue;
        char old_name[FOLDERNAME_MAX + 1];
        int n = snprintf(old_name, sizeof old_name, "%s%s", from, t.v[i].name + tlen);
        if (n <= 0 || (size_t)n >= sizeof old_name)
            continue;
        struct imapd_folder a, b;
        if (folders_locate(ctx, old_name, &a) && folders_locate(ctx, t.v[i].name, &b))
            folders_index_rename(a.index_path, b.index_path);
    }
    folders_tree_free(&t);
}

/* RENAME INBOX: its messages go into the new folder, INBOX stays, empty (RFC 3501 6.3.5). */
static enum imapd_reply folders_rename_inbox(const struct imapd_folders_ctx *ctx, const struct imapd_folder *to,
                                             char *text, size_t textlen)
{
    if (!folders_make_parents(to) || !folders_create_mbox(to->mbox_path)) {
        snprintf(text, textlen, "[SERVERBUG] Internal error: the mailbox could not be created.");
        return IMAPD_REPLY_NO;
    }
    struct imapd_folder inbox;
    folders_locate(ctx, "INBOX", &inbox);
    struct mailstore src, dst;
    const char *error = NULL;
    enum mailstore_result r = imapd_folder_open(ctx, &inbox, &src, &error);
    bool dst_open = false;
    if (r == MAILSTORE_OK) {
        r = imapd_folder_open(ctx, to, &dst, &error);
        dst_open = true;
    }
    size_t n = r == MAILSTORE_OK ? src.nmsgs : 0, done = 0, removed = 0;
    const struct mailstore_msg **msgs = xcalloc(n ? n : 1, sizeof(struct mailstore_msg *));
    uint32_t *src_uids = xreallocarray(NULL, n ? n : 1, sizeof *src_uids);
    uint32_t *dst_uids = xreallocarray(NULL, n ? n : 1, sizeof *dst_uids);
    for (size_t i = 0; i < n; i++) {
        msgs[i] = &src.msgs[i];
        src_uids[i] = src.msgs[i].uid;
    }
    if (r == MAILSTORE_OK)
        r = imapd_folder_copy(&src, msgs, n, &dst, dst_uids, &done, &error);
    if (r == MAILSTORE_OK)
        r = mailstore_expunge(&src, src_uids, n, &removed, &error);
    free(msgs);
    free(src_uids);
    free(dst_uids);
    if (dst_open)
        mailstore_close(&dst);
    mailstore_close(&src);
    if (r != MAILSTORE_OK) {
        log_warnx("imapd %llx: user=%s rename INBOX to %s: %s (copied %zu)", ctx->session_id, ctx->user, to->name,
                  error ? error : "?", done);
        snprintf(text, textlen, r == MAILSTORE_BUSY ? "[INUSE] INBOX is locked by another program, try again later."
                                                    : "[SERVERBUG] Internal error: INBOX could not be moved.");
        return IMAPD_REPLY_NO;
    }
    log_info("imapd %llx: user=%s rename INBOX to %s messages=%zu", ctx->session_id, ctx->user, to->name, removed);
    snprintf(text, textlen, "Rename completed.");
    return IMAPD_REPLY_OK;
}

static enum imapd_reply folders_rename(const struct imapd_folders_ctx *ctx, const struct imap_cmd *cmd, char *text,
                                       size_t textlen)
{
    struct imapd_folder from, to;
    bool t1 = false, t2 = false;
    if (!folders_find(ctx, cmd->arg1, &t1, &from, text, textlen) || !folders_find(ctx, cmd->arg2, &t2, &to, text, textlen))
        return IMAPD_REPLY_NO;
    if (!folders_name_free(&to, "the new name", text, textlen))
        return IMAPD_REPLY_NO;
    if (from.inbox)
        return folders_rename_inbox(ctx, &to, text, textlen);
    enum folders_kind kind = folders_kind(&from);
    if (kind != FOLDERS_MBOX && kind != FOLDERS_DIR) {
        snprintf(text, textlen, "[NONEXISTENT] Mailbox doesn't exist.");
        return IMAPD_REPLY_NO;
    }
    size_t flen = strlen(from.name);
    if (strncmp(to.name, from.name, flen) == 0 && to.name[flen] == '/') {
        snprintf(text, textlen, "[CANNOT] A mailbox cannot be moved into itself.");
        return IMAPD_REPLY_NO;
    }
    if (!folders_make_parents(&to)) {
        snprintf(text, textlen, "[SERVERBUG] Internal error: the new name's folder could not be created.");
        return IMAPD_REPLY_NO;
    }
    char lock[IMAPD_FOLDER_PATH_MAX + 8];
    snprintf(lock, sizeof lock, "%s.lock", from.mbox_path);
    if (kind == FOLDERS_MBOX && local_dotlock(lock) < 0) {
        snprintf(text, textlen, "[INUSE] The mailbox is locked by another program, try again later.");
        return IMAPD_REPLY_NO;
    }
    bool ok = rename(from.mbox_path, to.mbox_path) == 0;
    int saved = errno;
    if (kind == FOLDERS_MBOX)
        unlink(lock);
    if (!ok) {
        errno = saved;
        log_warn("imapd %llx: user=%s cannot rename %s", ctx->session_id, ctx->user, from.mbox_path);
        snprintf(text, textlen, "[SERVERBUG] Internal error: the mailbox could not be renamed.");
        return IMAPD_REPLY_NO;
    }
    char *d1 = fs_dirname(from.mbox_path), *d2 = fs_dirname(to.mbox_path);
    if (fs_fsync_dir(d1) < 0 || (strcmp(d1, d2) != 0 && fs_fsync_dir(d2) < 0))
        log_warn("imapd: cannot sync %s or %s", d1, d2);
    free(d1);
    free(d2);
    if (kind == FOLDERS_MBOX) {
        folders_index_rename(from.index_path, to.index_path);
    } else {
        folders_rename_indexes(ctx, from.mail_dir, from.name, to.name);
    }
    folders_subs_rename(from.mail_dir, from.name, to.name);
    log_info("imapd %llx: user=%s rename %s to %s", ctx->session_id, ctx->user, from.name, to.name);
    snprintf(text, textlen, "Rename completed.");
    return IMAPD_REPLY_OK;
}

enum imapd_reply imapd_folders_command(const struct imapd_folders_ctx *ctx, const struct imap_cmd *cmd,
                                       struct buf *out, char *text, size_t textlen)
{
    switch (cmd->verb) {
    case IMAP_VERB_LIST:
    case IMAP_VERB_LSUB:
        return folders_list(ctx, cmd, out, text, textlen);
    case IMAP_VERB_CREATE:
        return folders_create(ctx, cmd, text, textlen);
    case IMAP_VERB_DELETE:
        return folders_delete(ctx, cmd, text, textlen);
    case IMAP_VERB_RENAME:
        return folders_rename(ctx, cmd, text, textlen);
    case IMAP_VERB_SUBSCRIBE:
    case IMAP_VERB_UNSUBSCRIBE:
        return folders_subscribe(ctx, cmd, text, textlen);
    default:
        break;
    }
    snprintf(text, textlen, "Unknown command.");
    return IMAPD_REPLY_BAD;
}

void imapd_folders_first_login(const struct imapd_folders_ctx *ctx)
{
    char mail_dir[MAILPATH_MAX];
    struct stat st;
    if (!folders_mail_dir(ctx, mail_dir, sizeof mail_dir) || lstat(mail_dir, &st) == 0 || errno != ENOENT)
        return;
    if (fs_mkdir_p(mail_dir, 0700) < 0) {
        log_warn("imapd %llx: user=%s cannot create %s", ctx->session_id, ctx->user, mail_dir);
        return;
    }
    struct folders_names subs = {0};
    for (size_t i = 0; i < sizeof folders_first_login_names / sizeof folders_first_login_names[0]; i++) {
        char path[MAILPATH_MAX + 16];
        snprintf(path, sizeof path, "%s/%s", mail_dir, folders_first_login_names[i]);
        if (folders_create_mbox(path))
            folders_names_add(&subs, folders_first_login_names[i]);
        else
            log_warn("imapd %llx: user=%s cannot create %s", ctx->session_id, ctx->user, path);
    }
    folders_subs_save(mail_dir, &subs);
    folders_names_free(&subs);
    log_info("imapd %llx: user=%s first login: created %s with Sent, Drafts, Trash, Junk", ctx->session_id,
             ctx->user, mail_dir);
}
