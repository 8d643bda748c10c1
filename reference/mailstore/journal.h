/*
 * journal: the append-only journal beside a mail store index (INDEX.journal), the part the
 * mbox back-end (mailstore.c) and the Maildir back-end (maildir.c) share: binding a journal
 * to one index file, cutting a torn last line, appending and fsyncing, reading back the whole
 * lines. Each back-end has its own magic and its own records (absolute values, so replaying
 * one twice is harmless); this file never looks inside a record. Internal to
 * reference/mailstore.
 *
 * DESCRIPTION
 *   First line: "MAGIC UIDVALIDITY INO MTIME_NS", the UIDVALIDITY and the inode and mtime
 *   (ns) of the index file the journal extends; then one record a line. A journal whose first
 *   line names another index (one written since: a fold whose journal removal did not happen)
 *   counts as empty, and the next append starts it again. A last line without its newline (a
 *   torn append, never acknowledged) is ignored by the reader and cut off by the next append.
 *   The folding itself (a new index, then the journal removed) is the back-end's.
 *
 *   The test hooks of mailstore_test_hooks live here too (one step hook and the journal bound
 *   for both back-ends).
 *
 * SECURITY
 *   The journal is ours (0600, O_NOFOLLOW); a damaged one is read as far as its lines are
 *   whole, and at most max bytes.
 *
 * LIMITS
 *   A journal is read whole into memory (at most max bytes).
 */
#ifndef ZOLDER_MAILSTORE_JOURNAL_H
#define ZOLDER_MAILSTORE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "generation.h"

/* The journal size past which the next change folds it into a new index (64 KiB, or a quarter
 * of the index when that is more; tests set it with mailstore_test_hooks). */
#define MAILSTORE_JOURNAL_MIN (64UL * 1024)

struct index_journal {
    int fd;
    off_t size;   /* where this append starts (whole lines before it) */
    bool fresh;   /* started anew: the header goes first, the folder is fsynced */
    const char *magic;
    uint32_t validity;
    struct mailstore_stamp index;
};

/*
 * Opens path to append records for the index file at index_path (its stamp now), cutting a
 * torn last line, starting it anew when it belongs to another index. -1: cannot (errno).
 */
int index_journal_open(struct index_journal *j, const char *path, const char *magic, uint32_t validity,
                       const char *index_path);
/*
 * Appends records (whole lines; the header first when fresh), fsyncs the journal (and
 * index_dir when fresh) and closes it: after 0 the records survive a crash. -1: they are cut
 * off again, nothing of them is promised.
 */
int index_journal_commit(struct index_journal *j, const char *path, const char *index_dir, const char *records,
                         size_t len);
/* Closes a journal opened for an append that is not made. */
void index_journal_abandon(struct index_journal *j);
/*
 * Reads the journal at path when it belongs to the index stamped index (UIDVALIDITY validity):
 * *data_r the file (free it), *body_r and *body_len_r its whole record lines after the header
 * (NUL-terminated, '\n' after each). 0: read (an empty body when the journal is missing, torn
 * before its header or another index's); -1: unreadable (errno; logged by the caller).
 */
int index_journal_read(const char *path, const char *magic, uint32_t validity, const struct mailstore_stamp *index,
                       size_t max, char **data_r, char **body_r, size_t *body_len_r);
/* The journal bound for an index of index_size bytes (MAILSTORE_JOURNAL_MIN, or the test's). */
unsigned long long index_journal_bound(unsigned long long index_size);

/* A step of a durable change: tests crash the process here (mailstore_test_hooks). */
void mailstore_step(const char *step);

#endif
