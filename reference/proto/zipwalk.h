/*
 * zipwalk: the entries of an archive (nested ones too), for the banned-name check and
 * the virus scanners. A pure function over the archive bytes, built on libarchive. Zip
 * first (hence the name), and every format zipwalk_is_archive recognises: tar, 7z, RAR 4
 * and 5 (as far as libarchive reads them: not RAR's solid or encrypted parts), and gzip,
 * bzip2 or xz around a tar or around one file (its entry is then called "data"); all
 * within the same limits.
 *
 * SECURITY: a zip bomb is refused, never expanded: the declared size of each entry is
 * checked against what is left of the budget before a byte is inflated, and the bytes
 * actually inflated are counted as they come (declared sizes lie), so at most
 * max_expanded bytes are ever produced. Too many entries, nesting too deep, a damaged
 * archive: refused too (the filter quarantines). Encrypted entries cannot be scanned; their
 * names still are, and `encrypted` says so.
 *
 * LIMITS: max_depth nested archives, max_entries entries in all, max_expanded bytes in all.
 */
#ifndef ZOLDER_ZIPWALK_H
#define ZOLDER_ZIPWALK_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct zipwalk_limits {
    size_t max_depth;      /* 1: a zip inside the message; 2: a zip in that zip ... */
    size_t max_entries;
    size_t max_expanded;   /* bytes */
};

struct zipwalk_entry {
    char *name;            /* as stored (path inside the archive) */
    struct buf data;       /* expanded bytes (empty for folders, encrypted entries) */
    size_t depth;          /* 1 for entries of the outer archive */
    bool encrypted;
};

struct zipwalk {
    struct zipwalk_entry *entries;
    size_t nentries;
    const char *refused;   /* static reason (zip bomb, too deep, damaged), or NULL */
};

/* Defaults: depth 3, 1000 entries, 100 MiB expanded. */
void zipwalk_limits_default(struct zipwalk_limits *limits);
/* "PK\3\4" (or the empty archive "PK\5\6") at the start. */
bool zipwalk_is_zip(const char *data, size_t len);
/* A zip or another archive (or compressed file) zipwalk opens: by its signature. */
bool zipwalk_is_archive(const char *data, size_t len);
/* Walks the archive; out is always filled (free with zipwalk_free). */
void zipwalk_run(const char *data, size_t len, const struct zipwalk_limits *limits,
                 struct zipwalk *out);
void zipwalk_free(struct zipwalk *walk);

#endif
