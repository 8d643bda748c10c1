/*
 * local: final delivery into one user's mailbox (mbox, RFC 4155; or Maildir), idempotent
 * across a crash.
 *
 * mbox: dotlock (USER.lock beside the spool) + fcntl lock, the same pair mutt and procmail
 * respect, held only while appending. Before appending, the mailbox size is written into the
 * recipient's attempt field in the queue file; after a kill -9 the next attempt compares the
 * bytes at that offset with the exact entry it would write: equal means it was delivered,
 * a prefix means a torn write (truncated away and written again). A failed write (disk full,
 * quota, RLIMIT_FSIZE) truncates the mbox back to its old size, so nothing half-written stays.
 *
 * Maildir: tmp/ then link() into new/ under a name made of the queue id and recipient
 * number, so a second attempt finds the first one's file and stops.
 */
#ifndef ZOLDER_LOCAL_H
#define ZOLDER_LOCAL_H

#include <stdbool.h>

#include "buf.h"
#include "queue/queue.h"

/* LOCAL_FAIL: permanent (the mailbox can never take it: over mailbox_size_limit, a file
 * where the Maildir should be); the caller bounces it. LOCAL_DEFER: try again later. */
enum local_result { LOCAL_OK, LOCAL_DEFER, LOCAL_FAIL };

struct local_target {
    const char *user;      /* mailbox owner, e.g. "sjoerd" */
    const char *spool_dir; /* STATE_DIR/spool/mail (mbox) or STATE_DIR/maildir (Maildir) */
    const char *hostname;  /* for Maildir file names */
    bool maildir;
    bool sync_later;       /* mbox: skip the fsync; the caller's syncfs of the file system
                              covers the appends before anything relies on them */
    unsigned long size_limit; /* mbox: mailbox_size_limit in bytes, 0 for none */
};

/* One recipient of one message for the target's mailbox. */
struct local_item {
    struct queue_msg *msg;
    size_t rcpt;               /* index in msg->env.rcpts; its address goes in Delivered-To */
    const struct buf *data;    /* the message bytes from the queue file */
    enum local_result result;  /* set by local_deliver_batch */
    const char *error;         /* why, when LOCAL_DEFER or LOCAL_FAIL */
    const char *status;        /* RFC 3463 code when LOCAL_FAIL */
};

/* Renders the mbox entry (From_ line, Delivered-To, quoted message, blank line). */
void local_render_mbox(const struct queue_msg *msg, const char *rcpt, const struct buf *data,
                       struct buf *out);

/*
 * Delivers items into target's mailbox: for mbox under one lock and with one fsync for the
 * whole batch (group commit); every item gets LOCAL_OK (durably in the mailbox) or
 * LOCAL_DEFER (not delivered, the mailbox as it was before that item).
 */
void local_deliver_batch(const struct local_target *target, struct local_item *items, size_t n);

/* One item: local_deliver_batch with n = 1. */
enum local_result local_deliver(const struct local_target *target, struct queue_msg *msg,
                                size_t rcpt, const struct buf *data, const char **error_r);

/*
 * Takes the dotlock lock_path (USER.lock beside the spool file, holding our PID), with the
 * rules delivery uses: a stale lock (dead PID, or none and older than 5 minutes) is removed,
 * a live one is waited for briefly. 0, or -1 with errno (EWOULDBLOCK: still locked). The
 * mail store (reference/mailstore/) takes the same lock to read and rewrite mailboxes.
 */
int local_dotlock(const char *lock_path);

#endif
