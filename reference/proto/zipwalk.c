/* zipwalk: the entries of a zip archive, within limits (see zipwalk.h). */
#include "zipwalk.h"

#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "xalloc.h"

void zipwalk_limits_default(struct zipwalk_limits *limits)
{
    limits->max_depth = 3;
    limits->max_entries = 1000;
    limits->max_expanded = (size_t)100 * 1024 * 1024;
}

bool zipwalk_is_zip(const char *data, size_t len)
{
    return len >= 4 && data[0] == 'P' && data[1] == 'K' &&
           ((data[2] == 3 && data[3] == 4) || (data[2] == 5 && data[3] == 6));
}

bool zipwalk_is_archive(const char *data, size_t len)
{
    const unsigned char *u = (const unsigned char *)data;
    if (zipwalk_is_zip(data, len))
        return true;
    if (len >= 262 && memcmp(data + 257, "ustar", 5) == 0)
        return true; /* tar (POSIX and GNU) */
    if (len >= 6 && memcmp(data, "7z\xbc\xaf\x27\x1c", 6) == 0)
        return true;
    if (len >= 7 && memcmp(data, "Rar!\x1a\x07", 6) == 0 && (u[6] == 0 || u[6] == 1))
        return true; /* RAR 4 and 5 */
    if (len >= 3 && u[0] == 0x1f && u[1] == 0x8b && u[2] == 8)
        return true; /* gzip (a .tar.gz, or one compressed file) */
    if (len >= 10 && memcmp(data, "BZh", 3) == 0 && u[3] >= '1' && u[3] <= '9' &&
        memcmp(data + 4, "\x31\x41\x59\x26\x53\x59", 6) == 0)
        return true; /* bzip2 */
    if (len >= 6 && memcmp(data, "\xfd" "7zXZ\0", 6) == 0)
        return true; /* xz */
    return false;
}

struct zipwalk_state {
    const struct zipwalk_limits *limits;
    struct zipwalk *out;
    size_t expanded;
};

static void zipwalk_refuse(struct zipwalk *out, const char *why)
{
    if (!out->refused)
        out->refused = why;
}

static void zipwalk_archive(struct zipwalk_state *st, const char *data, size_t len, size_t depth);

/* Reads one entry's data into e->data, counting against the budget. false: stop the walk. */
static bool zipwalk_read_entry(struct zipwalk_state *st, struct archive *a, struct archive_entry *ae,
                               struct zipwalk_entry *e)
{
    size_t left = st->limits->max_expanded - st->expanded;
    if (archive_entry_size_is_set(ae) && archive_entry_size(ae) > 0 &&
        (unsigned long long)archive_entry_size(ae) > left) {
        zipwalk_refuse(st->out, "zip bomb: expands beyond the limit");
        return false;
    }
    char chunk[16384];
    for (;;) {
        la_ssize_t n = archive_read_data(a, chunk, sizeof chunk);
        if (n == 0)
            return true;
        if (n < 0) {
            zipwalk_refuse(st->out, "damaged archive");
            return false;
        }
        if ((size_t)n > left) {
            zipwalk_refuse(st->out, "zip bomb: expands beyond the limit");
            return false;
        }
        left -= (size_t)n;
        st->expanded += (size_t)n;
        buf_append(&e->data, chunk, (size_t)n);
    }
}

static void zipwalk_archive(struct zipwalk_state *st, const char *data, size_t len, size_t depth)
{
    struct zipwalk *out = st->out;
    if (depth > st->limits->max_depth) {
        zipwalk_refuse(out, "archives nested too deep");
        return;
    }
    struct archive *a = archive_read_new();
    archive_read_support_format_zip(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_7zip(a);
    archive_read_support_format_rar(a);
    archive_read_support_format_rar5(a);
    archive_read_support_format_raw(a); /* one compressed file (.gz, .bz2, .xz): entry "data" */
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_bzip2(a);
    archive_read_support_filter_xz(a);
    if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
        zipwalk_refuse(out, "damaged archive");
        archive_read_free(a);
        return;
    }
    size_t first = out->nentries;
    for (;;) {
        struct archive_entry *ae;
        int rc = archive_read_next_header(a, &ae);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
            zipwalk_refuse(out, "damaged archive");
            break;
        }
        if (out->nentries >= st->limits->max_entries) {
            zipwalk_refuse(out, "too many archive entries");
            break;
        }
        out->entries = xreallocarray(out->entries, out->nentries + 1, sizeof *out->entries);
        struct zipwalk_entry *e = &out->entries[out->nentries++];
        memset(e, 0, sizeof *e);
        const char *name = archive_entry_pathname(ae);
        e->name = xstrdup(name ? name : "");
        e->depth = depth;
        buf_init(&e->data, 0);
        e->encrypted = archive_entry_is_encrypted(ae);
        if (e->encrypted || archive_entry_filetype(ae) == AE_IFDIR)
            continue;
        if (!zipwalk_read_entry(st, a, ae, e))
            break;
    }
    archive_read_free(a);
    /* Nested archives after this one is closed: entries[] may move as it grows. */
    size_t last = out->nentries;
    for (size_t i = first; i < last && !out->refused; i++) {
        if (zipwalk_is_archive(out->entries[i].data.data, out->entries[i].data.len)) {
            char *inner = xmalloc(out->entries[i].data.len + 1);
            size_t ilen = out->entries[i].data.len;
            memcpy(inner, out->entries[i].data.data, ilen);
            zipwalk_archive(st, inner, ilen, depth + 1);
            free(inner);
        }
    }
}

void zipwalk_run(const char *data, size_t len, const struct zipwalk_limits *limits,
                 struct zipwalk *out)
{
    memset(out, 0, sizeof *out);
    struct zipwalk_state st = {.limits = limits, .out = out};
    zipwalk_archive(&st, data, len, 1);
}

void zipwalk_free(struct zipwalk *walk)
{
    for (size_t i = 0; i < walk->nentries; i++) {
        free(walk->entries[i].name);
        buf_free(&walk->entries[i].data);
    }
    free(walk->entries);
    memset(walk, 0, sizeof *walk);
}
