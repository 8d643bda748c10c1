/*
 * uidrec: durable record of delivered UIDs (see uidrec.h).
 *
 * SECURITY
 *   Paths are built from a sanitised account name; UIDs are validated before they are
 *   written or hashed.
 */
#include "fetch/uidrec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "xalloc.h"

static unsigned long long uidrec_hash(const char *s)
{
    unsigned long long h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void uidrec_account_name(const char *server, const char *user, char *out, size_t outsize)
{
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, "%s@%s", user, server);
    unsigned long long h = uidrec_hash(b.data);
    size_t k = 0;
    for (size_t i = 0; i < b.len && k + 18 < outsize && k < 100; i++) {
        char c = b.data[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == '_' || c == '@';
        out[k++] = c;
        if (!ok)
            out[k - 1] = '_';
    }
    snprintf(out + k, outsize - k, "-%08llx", h & 0xffffffffULL);
    buf_free(&b);
}

bool uidrec_uid_valid(const char *uid)
{
    size_t n = strlen(uid);
    if (n == 0 || n > UIDREC_UID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (uid[i] < 0x21 || uid[i] > 0x7e)
            return false;
    return true;
}

static void uidrec_clear(struct uidrec *r)
{
    for (size_t i = 0; i < r->cap; i++)
        free(r->slots[i]);
    free(r->slots);
    r->slots = NULL;
    r->cap = r->count = 0;
}

static void uidrec_insert(struct uidrec *r, const char *uid)
{
    if ((r->count + 1) * 2 > r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 64;
        char **old = r->slots;
        size_t ocap = r->cap;
        r->slots = xcalloc(ncap, sizeof *r->slots);
        r->cap = ncap;
        r->count = 0;
        for (size_t i = 0; i < ocap; i++)
            if (old[i]) {
                size_t j = (size_t)uidrec_hash(old[i]) & (ncap - 1);
                while (r->slots[j])
                    j = (j + 1) & (ncap - 1);
                r->slots[j] = old[i];
                r->count++;
            }
        free(old);
    }
    size_t j = (size_t)uidrec_hash(uid) & (r->cap - 1);
    while (r->slots[j]) {
        if (strcmp(r->slots[j], uid) == 0)
            return;
        j = (j + 1) & (r->cap - 1);
    }
    r->slots[j] = xstrdup(uid);
    r->count++;
}

bool uidrec_has(const struct uidrec *r, const char *uid)
{
    if (!r->cap)
        return false;
    size_t j = (size_t)uidrec_hash(uid) & (r->cap - 1);
    while (r->slots[j]) {
        if (strcmp(r->slots[j], uid) == 0)
            return true;
        j = (j + 1) & (r->cap - 1);
    }
    return false;
}

int uidrec_open(struct uidrec *r, const char *state_dir, const char *account)
{
    return uidrec_open_ext(r, state_dir, account, "uids");
}

int uidrec_open_ext(struct uidrec *r, const char *state_dir, const char *account, const char *ext)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    struct buf p;
    buf_init(&p, 0);
    buf_printf(&p, "%s/fetch", state_dir);
    if (fs_mkdir_p(p.data, 0700) < 0) {
        buf_free(&p);
        return -1;
    }
    buf_printf(&p, "/%s.%s", account, ext);
    r->path = buf_steal(&p);
    char *data = NULL;
    size_t len = 0;
    if (fs_read_file(r->path, 256UL * 1024 * 1024, &data, &len) < 0) {
        if (errno != ENOENT)
            return -1;
        return 0;
    }
    char *line = data, *end = data + len;
    while (line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            break; /* a torn last line: the append never completed, nothing was promised */
        *nl = '\0';
        if (line[0] == 'U' && line[1] == ' ' && uidrec_uid_valid(line + 2) &&
            r->count < UIDREC_MAX)
            uidrec_insert(r, line + 2);
        else if (line[0] == 'V' && line[1] == ' ')
            r->validity = strtoul(line + 2, NULL, 10);
        line = nl + 1;
    }
    free(data);
    return 0;
}

void uidrec_close(struct uidrec *r)
{
    if (r->fd >= 0)
        close(r->fd);
    uidrec_clear(r);
    free(r->path);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

static int uidrec_open_append(struct uidrec *r)
{
    if (r->fd >= 0)
        return 0;
    r->fd = open(r->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (r->fd < 0)
        return -1;
    struct stat st;
    if (fstat(r->fd, &st) == 0 && st.st_size == 0) {
        char head[64];
        int n = snprintf(head, sizeof head, "zolder-fetch-uids 1\nV %lu\n", r->validity);
        if (fs_write_all(r->fd, head, (size_t)n) < 0)
            return -1;
        char *dir = fs_dirname(r->path);
        int rc = fs_fsync_dir(dir);
        free(dir);
        if (rc < 0)
            return -1;
        r->dirty = true;
    }
    return 0;
}

int uidrec_add(struct uidrec *r, const char *uid)
{
    if (!uidrec_uid_valid(uid) || r->count >= UIDREC_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (uidrec_has(r, uid))
        return 0;
    if (uidrec_open_append(r) < 0)
        return -1;
    char line[UIDREC_UID_MAX + 4];
    int n = snprintf(line, sizeof line, "U %s\n", uid);
    if (fs_write_all(r->fd, line, (size_t)n) < 0)
        return -1;
    uidrec_insert(r, uid);
    r->dirty = true;
    return 0;
}

int uidrec_sync(struct uidrec *r)
{
    if (!r->dirty || r->fd < 0)
        return 0;
    if (fdatasync(r->fd) < 0)
        return -1;
    r->dirty = false;
    return 0;
}

static int uidrec_write_all(struct uidrec *r, char *const *keep, size_t n)
{
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, "zolder-fetch-uids 1\nV %lu\n", r->validity);
    for (size_t i = 0; i < n; i++)
        if (uidrec_has(r, keep[i]))
            buf_printf(&b, "U %s\n", keep[i]);
    struct buf tmp;
    buf_init(&tmp, 0);
    buf_printf(&tmp, "%s.tmp", r->path);
    int rc = -1;
    int fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (fs_write_all(fd, b.data, b.len) == 0 && fsync(fd) == 0 && close(fd) == 0) {
            fd = -1;
            if (rename(tmp.data, r->path) == 0) {
                char *dir = fs_dirname(r->path);
                rc = fs_fsync_dir(dir);
                free(dir);
            }
        }
        if (fd >= 0)
            close(fd);
    }
    if (rc < 0)
        unlink(tmp.data);
    buf_free(&tmp);
    /* the hash now holds what the file holds */
    char **kept = xcalloc(n ? n : 1, sizeof *kept);
    size_t nk = 0;
    for (size_t i = 0; i < n; i++)
        if (uidrec_has(r, keep[i]))
            kept[nk++] = keep[i];
    if (rc == 0) {
        uidrec_clear(r);
        for (size_t i = 0; i < nk; i++)
            uidrec_insert(r, kept[i]);
    }
    free(kept);
    buf_free(&b);
    if (r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
    r->dirty = false;
    return rc;
}

int uidrec_rewrite(struct uidrec *r, char *const *keep, size_t n)
{
    if (uidrec_sync(r) < 0)
        return -1;
    return uidrec_write_all(r, keep, n);
}

int uidrec_set_validity(struct uidrec *r, unsigned long validity)
{
    if (r->validity == validity)
        return 0;
    bool had = r->count > 0 || r->validity != 0;
    r->validity = validity;
    uidrec_clear(r);
    if (!had && r->fd < 0) {
        struct stat st;
        if (stat(r->path, &st) < 0)
            return 0; /* a new file gets the V line with its first UID */
    }
    return uidrec_write_all(r, NULL, 0);
}

int uidrec_forget(struct uidrec *r, char *const *gone, size_t n)
{
    struct uidrec drop;
    memset(&drop, 0, sizeof drop);
    for (size_t i = 0; i < n; i++)
        uidrec_insert(&drop, gone[i]);
    char **keep = xcalloc(r->count ? r->count : 1, sizeof *keep);
    size_t nk = 0;
    for (size_t i = 0; i < r->cap; i++)
        if (r->slots[i] && !uidrec_has(&drop, r->slots[i]))
            keep[nk++] = xstrdup(r->slots[i]);
    uidrec_clear(&drop);
    int rc = uidrec_rewrite(r, keep, nk);
    for (size_t i = 0; i < nk; i++)
        free(keep[i]);
    free(keep);
    return rc;
}
