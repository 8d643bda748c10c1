/* sim_store: per-message-file mailstores (see sim_store.h). */
#include "sim_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "xalloc.h"

static void sim_mbox_emit(struct buf *msg, void (*cb)(void *, const char *, size_t), void *ctx)
{
    /* The blank line before the next From_ line belongs to the mbox, not the message. */
    if (msg->len >= 4 && memcmp(msg->data + msg->len - 4, "\r\n\r\n", 4) == 0)
        msg->len -= 2;
    cb(ctx, msg->data ? msg->data : "", msg->len);
    buf_reset(msg);
}

void sim_mbox_split(const char *data, size_t len,
                    void (*cb)(void *ctx, const char *msg, size_t msglen), void *ctx)
{
    struct buf msg;
    buf_init(&msg, SIM_STORE_MSG_MAX);
    bool in_msg = false, prev_blank = true;
    size_t pos = 0;
    while (pos < len) {
        const char *p = data + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - p) : len - pos;
        pos += l + (nl ? 1 : 0);
        if (l > 0 && p[l - 1] == '\r')
            l--;
        if (l >= 5 && memcmp(p, "From ", 5) == 0 && prev_blank) {
            if (in_msg)
                sim_mbox_emit(&msg, cb, ctx);
            in_msg = true;
            prev_blank = false;
            continue;
        }
        prev_blank = l == 0;
        if (!in_msg)
            continue;
        size_t q = 0;
        while (q < l && p[q] == '>')
            q++;
        size_t skip = q > 0 && l - q >= 5 && memcmp(p + q, "From ", 5) == 0 ? 1 : 0;
        buf_append(&msg, p + skip, l - skip);
        buf_append(&msg, "\r\n", 2);
    }
    if (in_msg)
        sim_mbox_emit(&msg, cb, ctx);
    buf_free(&msg);
}

static int sim_store_empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        bool ours = (l > 4 && strcmp(e->d_name + l - 4, ".eml") == 0) ||
                    strncmp(e->d_name, ".tmp.", 5) == 0;
        if (!ours)
            continue;
        char *p = fs_path_resolve(dir, e->d_name);
        unlink(p);
        free(p);
    }
    closedir(d);
    return 0;
}

struct sim_store_load {
    struct sim_store *st;
    int mailbox;
    int failed;
};

static void sim_store_load_one(void *ctx, const char *msg, size_t len)
{
    struct sim_store_load *l = ctx;
    unsigned uid;
    if (sim_store_deliver(l->st, l->mailbox, msg, len, &uid) < 0)
        l->failed = 1;
}

int sim_store_reset(struct sim_store *st, char *err, size_t errsize)
{
    const struct sim_world *w = st->w;
    st->uidvalidity++;
    for (int i = 0; i < w->nmailboxes; i++) {
        struct sim_store_box *b = &st->boxes[i];
        if (fs_mkdir_p(b->dir, 0755) < 0 || sim_store_empty_dir(b->dir) < 0) {
            snprintf(err, errsize, "%s: %s", b->dir, strerror(errno));
            return -1;
        }
        free(b->msgs);
        b->msgs = NULL;
        b->n = 0;
        b->next_uid = 1;
        b->used = 0;
        b->quota = w->mailboxes[i].quota;
        b->full_code = w->mailboxes[i].full_code ? w->mailboxes[i].full_code : 552;
        if (!w->mailboxes[i].mbox)
            continue;
        char *path = fs_path_resolve(st->world_dir, w->mailboxes[i].mbox);
        char *data;
        size_t len;
        if (fs_read_file(path, SIM_STORE_MSG_MAX, &data, &len) < 0) {
            snprintf(err, errsize, "%s: %s", path, strerror(errno));
            free(path);
            return -1;
        }
        free(path);
        struct sim_store_load l = {.st = st, .mailbox = i};
        sim_mbox_split(data, len, sim_store_load_one, &l);
        free(data);
        if (l.failed) {
            snprintf(err, errsize, "%s: cannot store its messages", b->dir);
            return -1;
        }
    }
    return 0;
}

int sim_store_open(struct sim_store *st, const struct sim_world *w, const char *datadir,
                   const char *world_dir, char *err, size_t errsize)
{
    memset(st, 0, sizeof *st);
    st->w = w;
    st->root = fs_path_resolve(datadir, "store");
    st->world_dir = xstrdup(world_dir);
    st->boxes = xcalloc((size_t)w->nmailboxes + 1, sizeof *st->boxes);
    for (int i = 0; i < w->nmailboxes; i++) {
        char *sdir = fs_path_resolve(st->root, w->stores[w->mailboxes[i].store]);
        st->boxes[i].dir = fs_path_resolve(sdir, w->mailboxes[i].user);
        free(sdir);
    }
    return sim_store_reset(st, err, errsize);
}

void sim_store_close(struct sim_store *st)
{
    if (!st->boxes)
        return;
    for (int i = 0; i < st->w->nmailboxes; i++) {
        free(st->boxes[i].dir);
        free(st->boxes[i].msgs);
    }
    free(st->boxes);
    free(st->root);
    free(st->world_dir);
    memset(st, 0, sizeof *st);
}

static char *sim_store_path(const struct sim_store_box *b, unsigned uid)
{
    char name[32];
    snprintf(name, sizeof name, "%06u.eml", uid);
    return fs_path_resolve(b->dir, name);
}

int sim_store_deliver(struct sim_store *st, int mailbox, const char *data, size_t len,
                      unsigned *uid_r)
{
    struct sim_store_box *b = &st->boxes[mailbox];
    if (b->n >= SIM_STORE_MAX_MSGS || len > SIM_STORE_MSG_MAX) {
        errno = EFBIG;
        return -1;
    }
    unsigned uid = b->next_uid;
    char tmpname[48];
    snprintf(tmpname, sizeof tmpname, ".tmp.%06u", uid);
    char *tmp = fs_path_resolve(b->dir, tmpname);
    char *final = sim_store_path(b, uid);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = -1;
    if (fd >= 0) {
        if (fs_write_all(fd, data, len) == 0 && fsync(fd) == 0 && close(fd) == 0) {
            fd = -1;
            if (rename(tmp, final) == 0 && fs_fsync_dir(b->dir) == 0)
                rc = 0;
        }
        if (fd >= 0)
            close(fd);
    }
    if (rc < 0)
        unlink(tmp);
    free(tmp);
    free(final);
    if (rc < 0)
        return -1;
    b->msgs = xreallocarray(b->msgs, (size_t)b->n + 1, sizeof *b->msgs);
    b->msgs[b->n].uid = uid;
    b->msgs[b->n].size = len;
    b->msgs[b->n].flags = 0;
    b->n++;
    b->used += len;
    b->next_uid++;
    *uid_r = uid;
    return 0;
}

static int sim_store_index(const struct sim_store_box *b, unsigned uid)
{
    for (int i = 0; i < b->n; i++)
        if (b->msgs[i].uid == uid)
            return i;
    return -1;
}

int sim_store_read(struct sim_store *st, int mailbox, unsigned uid, char **data_r, size_t *len_r)
{
    struct sim_store_box *b = &st->boxes[mailbox];
    if (sim_store_index(b, uid) < 0) {
        errno = ENOENT;
        return -1;
    }
    char *p = sim_store_path(b, uid);
    int rc = fs_read_file(p, SIM_STORE_MSG_MAX, data_r, len_r);
    free(p);
    return rc;
}

bool sim_store_fits(const struct sim_store *st, int mailbox, unsigned long long len)
{
    const struct sim_store_box *b = &st->boxes[mailbox];
    return b->quota == 0 || b->used + len <= b->quota;
}

struct sim_store_msg *sim_store_msg(struct sim_store *st, int mailbox, unsigned uid)
{
    struct sim_store_box *b = &st->boxes[mailbox];
    for (int i = 0; i < b->n; i++)
        if (b->msgs[i].uid == uid)
            return &b->msgs[i];
    return NULL;
}

int sim_store_remove(struct sim_store *st, int mailbox, unsigned uid)
{
    if (sim_store_remove_nosync(st, mailbox, uid) < 0)
        return -1;
    return sim_store_sync(st, mailbox);
}

int sim_store_sync(struct sim_store *st, int mailbox)
{
    return fs_fsync_dir(st->boxes[mailbox].dir);
}

int sim_store_remove_nosync(struct sim_store *st, int mailbox, unsigned uid)
{
    struct sim_store_box *b = &st->boxes[mailbox];
    int i = sim_store_index(b, uid);
    if (i < 0) {
        errno = ENOENT;
        return -1;
    }
    char *p = sim_store_path(b, uid);
    int rc = unlink(p);
    free(p);
    if (rc < 0)
        return -1;
    b->used -= b->msgs[i].size;
    memmove(&b->msgs[i], &b->msgs[i + 1], (size_t)(b->n - i - 1) * sizeof *b->msgs);
    b->n--;
    return 0;
}

int sim_store_find(const struct sim_store *st, const char *store, const char *user)
{
    int s = sim_world_store_index(st->w, store);
    if (s < 0)
        return -1;
    for (int i = 0; i < st->w->nmailboxes; i++)
        if (st->w->mailboxes[i].store == s && strcmp(st->w->mailboxes[i].user, user) == 0)
            return i;
    return -1;
}
