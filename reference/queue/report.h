/*
 * report: the reports zolder sends to a message's envelope sender about its recipients
 * (bounce, delay warning, success DSN), queued as new queue files from the null sender.
 * Shared by outbound delivery (reference/relay) and local delivery (reference/deliver), so
 * a recipient that fails in a mailbox and one refused by a remote server get the same
 * report with the same durability.
 *
 * DESCRIPTION
 *   The caller collects a message's outcomes (recipient number, RFC 3463 status, reason,
 *   remote server) and calls report_settle_failures for the failed ones, or report_queue
 *   for a delay warning or success report. The report is written by proto/dsn (RFC 3464
 *   multipart/report) and queued under an id derived from the parent id, a tag, the
 *   attempt number and the reported recipients, so writing it twice (a crash before the
 *   parent was marked) finds the first one (EEXIST) instead of queueing a second copy.
 *
 * DURABILITY
 *   A bounce and the F marks of the recipients it reports become durable in one step
 *   (queue_commit_marked): the sender gets exactly one bounce, never none and never two.
 *   A failed recipient whose bounce cannot be queued stays pending (and fails again later).
 *
 * STANDARDS
 *   RFC 3461 (NOTIFY decides which reports go out, RET how much of the message comes back),
 *   RFC 3464, RFC 3463, RFC 5321 6.1 (never a report to the null sender).
 *
 * LIMITS
 *   REPORT_REASON_MAX bytes per reason (longer ones end in "..."); the returned message is
 *   cut to its header above bounce_size_limit (proto/dsn).
 */
#ifndef ZOLDER_REPORT_H
#define ZOLDER_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "dsn.h"
#include "queue/queue.h"
#include "zconf.h"

#define REPORT_REASON_MAX 512
#define REPORT_MTA_MAX 256

/* A recipient's result kept for a report to the sender. */
struct report_outcome {
    size_t idx;                       /* recipient number in the queue file */
    char dsn[12];                     /* x.y.z */
    char reason[REPORT_REASON_MAX];
    char mta[REPORT_MTA_MAX];         /* the remote server's name, or "" */
};

struct report_outcomes {
    struct report_outcome *v;
    size_t n;
};

/* Appends one outcome; relay_name "host[ip]:port" gives the host ("none", NULL: none). */
void report_outcome_add(struct report_outcomes *o, size_t idx, const char *dsn, const char *reason,
                        const char *relay_name);
void report_outcomes_clear(struct report_outcomes *o);

/*
 * RFC 3461 4.1: NOTIFY is NEVER or a list of SUCCESS, FAILURE and DELAY. Without one, the
 * implementation decides: failures and delays are reported, successes are not.
 */
bool report_notify_wants(const char *notify, const char *what);

/* Who sends the reports and how (from the config). */
struct report_ctx {
    struct queue *queue;
    const struct zconf *conf;
    char tag;               /* in the report id: 'b' relay bounces, 'l' local bounces, ... */
    /* a report was queued (fresh): deliver it like any other message */
    void (*on_queued)(const char *id, void *ctx);
    void *on_queued_ctx;
};

/*
 * Queues a report about the outcomes o of parent (attempt number attempt) to its sender,
 * with the null sender. With marks (n), those recipients of parent are marked F in the same
 * step (queue_commit_marked). 0 when it is queued (now, or by an earlier try of the same
 * attempt), -1 when it could not be.
 */
int report_queue(const struct report_ctx *rc, struct queue_msg *parent, unsigned attempt,
                 enum dsn_kind kind, enum dsn_action action, const struct report_outcomes *o,
                 const size_t *marks, size_t nmarks);

/*
 * The failed recipients f of parent: the bounce first (when one is due: not to the null
 * sender, only for recipients whose NOTIFY asks for failures), with every recipient of f
 * marked F in the same step; without a due bounce they are just marked. true when they are
 * settled; false when the bounce could not be queued (then they stay pending, logged).
 */
bool report_settle_failures(const struct report_ctx *rc, struct queue_msg *parent, unsigned attempt,
                            const struct report_outcomes *f);

/*
 * Queues a message zolder writes itself (a vacation reply, a notice to a user or to the
 * admin) from the null sender to rcpt, under id: an id derived from the message it is
 * about, so a second attempt after a crash finds the first one (EEXIST) instead of queueing
 * another. expanded: rcpt is a mailbox already (no alias expansion); body_type "7BIT" or
 * "8BITMIME". 1 when queued now, 0 when an earlier attempt had, -1 on failure (errno).
 */
int report_queue_local(struct queue *queue, const char *id, const char *hostname, const char *rcpt,
                       bool expanded, const char *body_type, const struct buf *data);

#endif
