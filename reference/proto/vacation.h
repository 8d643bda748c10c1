/*
 * vacation: may an automatic reply be sent, per RFC 3834 (section 2 and 3.1), and what it
 * looks like. Pure: the caller reads the message and the "already answered" state and
 * queues the reply.
 *
 * NOT answered: the null sender; senders that are programs or lists (MAILER-DAEMON,
 * postmaster, owner-*, *-request, *-owner, listserv, majordomo, noreply / no-reply /
 * do-not-reply); a message with Auto-Submitted other than "no" (RFC 3834 5); Precedence
 * bulk, list or junk; any List-Id / List-Unsubscribe / List-Post / List-Help header (RFC
 * 2369, 2919); X-Auto-Response-Suppress (Microsoft); a message where the recipient's address
 * is not in To or Cc (RFC 3834 2: it was a Bcc or a list copy); a sender answered less than
 * `days` days ago (the caller's state).
 *
 * The reply (RFC 3834 3.1): From the recipient, To the sender, "Subject: Auto: SUBJECT",
 * In-Reply-To and References from the original Message-ID, "Auto-Submitted: auto-replied";
 * the caller sends it from the null envelope sender (3.3).
 */
#ifndef ZOLDER_VACATION_H
#define ZOLDER_VACATION_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"

/* NULL: reply; otherwise a static reason not to. last_answered: 0 when never. */
const char *vacation_refusal(const char *sender, const char *rcpt, const char *msg, size_t len,
                             time_t last_answered, time_t now, unsigned days);

/* Renders the reply message (CRLF). text: the user's reply body (LF or CRLF). */
void vacation_render(const char *rcpt, const char *sender, const char *msg, size_t len,
                     const char *text, const char *date, const char *message_id, struct buf *out);

/* The last time sender appears in a state file's "EPOCH SENDER" lines (0 when never). */
time_t vacation_last(const char *state, size_t len, const char *sender);

#endif
