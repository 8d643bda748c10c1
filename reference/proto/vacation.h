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
 *
 * STATE: the caller keeps "EPOCH SENDER" lines (one per reply). vacation_prune says which
 * lines are worth keeping (the newest line per sender, none older than DAYS, none
 * unreadable, at most VACATION_STATE_BYTES_MAX bytes: beyond that the oldest go first) and
 * whether a rewrite is due: only when VACATION_PRUNE_MIN lines can go or the cap is reached,
 * so the file is rewritten once per many replies, never at every one.
 *
 * LIMITS: a state of VACATION_STATE_BYTES_MAX bytes holds ~25000 senders of 40 bytes; a
 * sender pushed out by the cap before DAYS have passed may get a second reply.
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

/* The longest sender a state line holds, and a whole line ("EPOCH SENDER\n"). */
#define VACATION_SENDER_MAX 1024
#define VACATION_LINE_MAX (VACATION_SENDER_MAX + 24)
/* The state file's size after a prune (the cap); the oldest lines go first beyond it. */
#define VACATION_STATE_BYTES_MAX ((size_t)1024 * 1024)
/* A rewrite is due once this many lines can go (stale, duplicate, unreadable). */
#define VACATION_PRUNE_MIN 64

struct vacation_prune_stats {
    size_t lines;    /* lines in the state (a last line without '\n' counts) */
    size_t stale;    /* older than DAYS, a duplicate sender's older line, or unreadable */
    size_t capped;   /* recent lines dropped by the cap, oldest first */
    size_t kept_bytes;
};

/*
 * The lines of state worth keeping at now for a rule of `days`: the newest line of each
 * sender (compared without case), unless it is `days` days old or more (epochs in the future
 * are kept), and of those the newest ones that fit in max_bytes. Written to out (when not
 * NULL) oldest first, each "EPOCH SENDER\n". stats (when not NULL) says what went.
 */
void vacation_prune(const char *state, size_t len, time_t now, unsigned days, size_t max_bytes,
                    struct buf *out, struct vacation_prune_stats *stats);

/*
 * Whether the state should be rewritten before adding a line of add_len bytes: enough lines
 * can go (VACATION_PRUNE_MIN), or appending would pass VACATION_STATE_BYTES_MAX.
 */
bool vacation_prune_due(const struct vacation_prune_stats *stats, size_t len, size_t add_len);

#endif
