/*
 * deliver: runs one queued message: local recipients are expanded through aliases and
 * delivered to their mailboxes, remote ones wait for an outbound route (issue "Outbound
 * delivery"); each delivered recipient is marked done (fsync'd) after its mailbox was
 * fsync'd, and the queue file goes when nothing is pending. A recipient that fails here
 * (unknown user, a permanent mailbox failure, or still deferred after queue_lifetime) gets
 * an RFC 3464 bounce to the sender, committed with its F mark in one step
 * (reference/queue/report, the relay's code; docs/outbound.md "Local bounces").
 */
#ifndef ZOLDER_DELIVER_H
#define ZOLDER_DELIVER_H

#include <stdbool.h>
#include <stddef.h>

#include "queue/queue.h"
#include "zconf.h"

/* Where a local recipient goes after alias expansion. */
struct deliver_targets {
    char **addrs;    /* local user names, or full addresses for remote targets */
    bool *remote;
    size_t n;
};

struct deliver_resolver {
    void *ctx;
    /*
     * Expands a local part through the aliases into final targets. Returns 0 and fills
     * targets (the caller frees with deliver_targets_free); -1 when the name is neither a
     * user nor an alias (the recipient fails).
     */
    int (*expand)(void *ctx, const char *local, struct deliver_targets *targets);
    /* Is user a mailbox owner (users file)? */
    bool (*is_user)(void *ctx, const char *user);
    /* user's mail folder (mail_dir, reference/proto/mailpath.h); false: no such user or unusable. */
    bool (*mail_dir)(void *ctx, const char *user, char *out, size_t outlen);
};

struct deliver {
    const struct zconf *conf;
    struct queue *queue;
    struct deliver_resolver resolver;
    char *spool_dir;   /* STATE_DIR/spool/mail or STATE_DIR/maildir */
    bool children_queued; /* delivery rules: a forwarded copy was queued (the caller runs the
                             queue soon and clears this) */
};

enum deliver_outcome {
    DELIVER_DONE,      /* queue file removed */
    DELIVER_PENDING,   /* only remote recipients wait (for an outbound route), or held */
    DELIVER_DEFERRED,  /* a local delivery failed for now (locked, disk full): retry soon */
    DELIVER_ERROR,     /* could not even read the queue file */
};

void deliver_init(struct deliver *d, const struct zconf *conf, struct queue *queue,
                  const struct deliver_resolver *resolver);
void deliver_free(struct deliver *d);
enum deliver_outcome deliver_message(struct deliver *d, const char *id);
/*
 * Runs n queued messages together (group commit): recipients of one mailbox are appended
 * under one lock with one fsync; queue files that are finished go with one folder fsync,
 * the others get their done marks with one syncfs. out[i] is message i's outcome.
 */
#define DELIVER_BATCH_MAX 256

/*
 * Sync later: the batch is part of a larger group commit. Mailboxes are appended without
 * fsync, done marks written without sync, and finished queue files are not removed but
 * listed here; the caller removes them only after one syncfs has made the appends and marks
 * durable (queue_commit_batch does), then fsyncs the folder. Valid only when the mail spool
 * and the queue are on one file system.
 */
struct deliver_later {
    char **unlink_paths;
    char **unlink_ids;
    size_t nunlinks;
};

void deliver_batch(struct deliver *d, char *const *ids, size_t n, enum deliver_outcome *out,
                   struct deliver_later *later);
void deliver_later_free(struct deliver_later *later);
void deliver_targets_add(struct deliver_targets *t, const char *addr, bool remote);
void deliver_targets_free(struct deliver_targets *t);

#endif
