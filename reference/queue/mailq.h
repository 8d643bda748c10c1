/*
 * mailq: the queue listing of `zolderctl mailq` and `sendmail -bp`, in the shape of Postfix's
 * mailq so that people and scripts that know that one can read this one:
 *
 *   -Queue ID-        --Size-- ----Arrival Time---- -Sender/Recipient-------
 *   0Z3K1B2C4D5F6G7H!      312 Sat Nov 16 23:07:13  sjoerd@zolder.thuis
 *                                                  (waiting for remote delivery)
 *                                                   bouke@example.org
 *
 *   -- 1 Kbytes in 1 Request.
 *
 * A '!' after the id marks a message on hold. Only recipients still pending are listed, each
 * after the reason it waits: the last attempt's own reason when the queue file keeps one (its
 * Y line, as Postfix shows "(connect to smtp.example[1.2.3.4]:25: Connection refused)"), and
 * for a remote recipient the next attempt's time when a retry is scheduled:
 *
 *                                         (connect to smtp.hccnet.nl[127.9.2.25]:25: Connection refused; next attempt Sat Nov 28 08:40:12)
 *                                          jan@paprika Formatting is pure (loaded struct queue_msg values in, text out)
 * so it is unit-tested without a queue on disk; mailq_list() is the thin part that reads one.
 */
#ifndef ZOLDER_MAILQ_H
#define ZOLDER_MAILQ_H

#include <stddef.h>

#include "buf.h"
#include "queue/queue.h"
#include "zconf.h"

#define MAILQ_REASON_REMOTE "waiting for remote delivery"
#define MAILQ_REASON_FLUSH "held until a flush: defer_remote = yes"
#define MAILQ_REASON_LOCAL "waiting for local delivery"

/* Running totals for the `-- N Kbytes in M Requests.` line. */
struct mailq_totals {
    size_t requests;
    unsigned long long bytes;
};

/* The column header line. */
void mailq_format_header(struct buf *out);
/* One message: its id line, then a reason and an address line per pending recipient. */
void mailq_format_msg(const struct zconf *conf, const struct queue_msg *msg,
                      struct mailq_totals *totals, struct buf *out);
/* The closing totals line (the caller prints "Mail queue is empty" for none). */
void mailq_format_footer(const struct mailq_totals *totals, struct buf *out);
/* The whole listing of msgs[0..n), or "Mail queue is empty". */
void mailq_format(const struct zconf *conf, const struct queue_msg *msgs, size_t n,
                  struct buf *out);

/*
 * Lists the queue of the instance conf describes (msg/ and hold/) into out. A message that
 * is delivered while we read the folder is simply left out. 0, or -1 with *error_r (static
 * text; errno tells the cause) when the queue cannot be read at all.
 */
int mailq_list(const struct zconf *conf, struct buf *out, const char **error_r);

#endif
