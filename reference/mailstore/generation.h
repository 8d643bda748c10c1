/*
 * generation: immutable, shared snapshots of a mailbox's message list, one "current" per
 * mailbox in the process, and in-process change notification.
 *
 * DESCRIPTION
 *   A generation is what the mail store knew of a mailbox after one read under the lock: its
 *   UIDVALIDITY, UIDNEXT and the message list (UIDs ascending, offsets, sizes, hashes, flags,
 *   keywords) with the stamps (inode, size, mtime) of the spool file, the index and its flag
 *   journal it was read at. It never changes once published; it is reference counted and freed with its last
 *   reference. The process keeps, per mailbox path, the newest published generation (the
 *   "current" one); publishing a list equal to the current one returns the current one, so
 *   sessions that read an unchanged mailbox share one copy. An IMAP session holds the
 *   generation it last reported to its client (and the mail store the newest it has seen);
 *   a POP3 session holds its login generation. Per session this is two pointers, whatever
 *   the mailbox's size.
 *
 *   Watchers: an IMAP session in IDLE registers a callback for its mailbox. Publishing a new
 *   current generation, and mailstore_notify_changed (called by local delivery after it
 *   appended and synced, and usable by anything else in the process that changed a mailbox
 *   file), call every watcher of that mailbox. Callbacks run inside the caller (possibly under
 *   the mailbox lock): they must only schedule work (e.g. event_active), never read the store.
 *
 * LIMITS
 *   Used on the event loop thread only (no locking). At most GENERATION_MAILBOXES_MAX
 *   mailboxes keep a current generation without watchers; the least recently published beyond
 *   that lose theirs (sessions keep their own references). A change made by another program
 *   (mutt, procmail) is not notified: sessions find it by polling the files' stamps.
 */
#ifndef ZOLDER_GENERATION_H
#define ZOLDER_GENERATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mailstore_msg;

#define GENERATION_MAILBOXES_MAX 64

/* inode, size and mtime (ns) of a file as seen when a generation was read; all 0: absent */
struct mailstore_stamp {
    unsigned long long ino, size;
    long long mtime_ns;
};

struct mailstore_gen {
    unsigned refs;
    unsigned long long serial;          /* ascending in the process: newer is larger */
    uint32_t uidvalidity, uidnext;
    unsigned long long highestmodseq;   /* RFC 7162 */
    struct mailstore_msg *msgs;         /* UID order; never changed after publication */
    size_t nmsgs;
    struct mailstore_stamp mbox, index, journal; /* the files as this list was read from */
};

typedef void (*mailstore_watch_fn)(void *arg);

struct mailstore_gen *mailstore_gen_ref(struct mailstore_gen *g);
void mailstore_gen_unref(struct mailstore_gen *g);
/* The message with this UID (binary search), or NULL. */
const struct mailstore_msg *mailstore_gen_find(const struct mailstore_gen *g, uint32_t uid);
/* Its position in g->msgs, or (size_t)-1. */
size_t mailstore_gen_index(const struct mailstore_gen *g, uint32_t uid);

/*
 * Makes msgs (taken over) the mailbox's current generation, or, when it equals the current
 * one (same UIDVALIDITY, UIDNEXT, list and stamps), frees msgs and returns the current one.
 * The result carries a reference for the caller. Watchers are called when it is new.
 */
struct mailstore_gen *mailstore_gen_publish(const char *mbox_path, uint32_t uidvalidity, uint32_t uidnext,
                                            unsigned long long highestmodseq, struct mailstore_msg *msgs, size_t n,
                                            const struct mailstore_stamp *mbox,
                                            const struct mailstore_stamp *index,
                                            const struct mailstore_stamp *journal);
/* The mailbox's current generation (no reference taken), or NULL. */
struct mailstore_gen *mailstore_gen_current(const char *mbox_path);
struct mailstore;
/* ms takes g (and its reference) as its message list, dropping the one it held. */
void mailstore_gen_adopt(struct mailstore *ms, struct mailstore_gen *g);
/*
 * The mailbox's \Recent boundary (RFC 3501 2.3.2): the lowest UID no session has claimed
 * yet; 0 when this process does not know it (mailstore.c reads it from its file then).
 */
uint32_t mailstore_gen_recent(const char *mbox_path);
void mailstore_gen_set_recent(const char *mbox_path, uint32_t first_unclaimed);
/* Forgets every current generation and watcher (tests, shutdown). */
void mailstore_gen_clear(void);

/* Calls fn(arg) when the mailbox changes (see DESCRIPTION); returns a handle for unwatch. */
void *mailstore_watch(const char *mbox_path, mailstore_watch_fn fn, void *arg);
void mailstore_unwatch(void *handle);
/* Tells the mailbox's watchers that its file changed (delivery calls it after appending). */
void mailstore_notify_changed(const char *mbox_path);

#endif
