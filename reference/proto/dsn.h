/*
 * dsn: delivery status notifications, as a pure writer: the bounce, the delay warning and the
 * success report zolder sends to a message's envelope sender.
 *
 * DESCRIPTION
 *   dsn_format writes one whole message (header and body, CRLF line ends) of type
 *   multipart/report; report-type=delivery-status: a human readable explanation, the
 *   machine readable message/delivery-status part (one per-recipient block each), and the
 *   original message, whole (RET=FULL, when it fits within full_max) or its header only
 *   (text/rfc822-headers). The caller decides who gets it (never the null sender) and queues
 *   it with a null envelope sender, so a report can never cause another one.
 *
 * STANDARDS
 *   RFC 3464 (message/delivery-status fields), RFC 3462/6522 (multipart/report), RFC 3463
 *   (x.y.z status codes, checked here), RFC 3461 (RET, ENVID, ORCPT), RFC 3834
 *   (Auto-Submitted: auto-replied), RFC 5322 (header syntax), RFC 6152 (the returned
 *   message may be 8-bit; the caller sends the report with BODY=8BITMIME then).
 *
 * SECURITY
 *   Everything written comes from the network (addresses, reply texts of remote servers,
 *   the message): text that goes into header fields is reduced to printable ASCII without
 *   CR/LF (anything else becomes '?') and cut to DSN_FIELD_MAX bytes, so a remote reply
 *   cannot inject header fields or parts. The boundary is derived from the caller's unique
 *   seed and is checked not to occur in the returned message (a counter changes it until it
 *   does not).
 *
 * LIMITS
 *   DSN_FIELD_MAX bytes per field value; the returned message is cut to its header when it
 *   is larger than full_max; at most DSN_RCPTS_MAX per-recipient blocks (more are summed up
 *   in one line of the text part).
 */
#ifndef ZOLDER_DSN_H
#define ZOLDER_DSN_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define DSN_FIELD_MAX 900
#define DSN_RCPTS_MAX 1000

enum dsn_kind {
    DSN_KIND_FAILURE,   /* "Undelivered Mail Returned to Sender" */
    DSN_KIND_DELAY,     /* the delay warning: still trying */
    DSN_KIND_SUCCESS,   /* NOTIFY=SUCCESS and the next hop did not take DSN */
};

enum dsn_action {
    DSN_ACTION_FAILED,
    DSN_ACTION_DELAYED,
    DSN_ACTION_DELIVERED,
    DSN_ACTION_RELAYED,   /* handed to a server that does not do DSN (RFC 3464 2.3.3) */
};

struct dsn_rcpt {
    const char *final_rcpt;   /* the address zolder tried, local@domain */
    const char *orcpt;        /* ORCPT as given ("rfc822;a@b", or a bare address), or "" */
    enum dsn_action action;
    const char *status;       /* RFC 3463 x.y.z; a malformed one is written as 5.0.0/4.0.0/2.0.0 */
    const char *remote_mta;   /* the server's host name, or "" */
    const char *diagnostic;   /* the server's reply ("550 5.1.1 ..."), or "" */
};

struct dsn_report {
    enum dsn_kind kind;
    const char *reporting_mta;  /* our host name */
    const char *to;             /* the envelope sender of the original message */
    const char *queue_id;       /* the original message's queue id */
    const char *envid;          /* RFC 3461 ENVID, or "" */
    const char *arrival_date;   /* RFC 5322 date of the original's arrival */
    const char *date;           /* RFC 5322 date of this report */
    const char *message_id;     /* unique, without <>: "ID@host" */
    const char *will_retry_until; /* RFC 5322 date, for DSN_KIND_DELAY, or "" */
    bool ret_full;              /* RET=FULL; otherwise the header only */
    size_t full_max;            /* a larger message is returned as its header only */
    const struct dsn_rcpt *rcpts;
    size_t nrcpts;
    const char *message;        /* the original message (CRLF line ends, as queued) */
    size_t message_len;
};

/*
 * Appends the whole report message to out. Returns true when the report carries 8-bit bytes
 * (from the returned message): the caller must then send it with BODY=8BITMIME.
 */
bool dsn_format(const struct dsn_report *r, struct buf *out);

/* Length of the message's header section, through the empty line (or all of it when none). */
size_t dsn_header_len(const char *msg, size_t len);

/* Is s an RFC 3463 status code: class 2, 4 or 5, then .1-3 digits .1-3 digits? */
bool dsn_status_valid(const char *s);

/* The action's RFC 3464 keyword. */
const char *dsn_action_name(enum dsn_action a);

#endif
