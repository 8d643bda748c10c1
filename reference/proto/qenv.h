/*
 * qenv: the queue file's envelope, the text lines before the message bytes, as a pure
 * writer and parser (reference/queue does the file I/O). Format, values %XX-escaped so they
 * never contain blanks or newlines ("-" is the empty value):
 *   Z zolder-queue 1
 *   I ID
 *   T ARRIVAL-EPOCH
 *   S SENDER
 *   C CLIENT-IP HELO RDNS PROTO AUTH-USER
 *   E RET ENVID BODY
 *   X NEXT16HEX ATTEMPTS8HEX WARNED    (remote retry state; absent in older files)
 *   R STATUS ATTEMPT16HEX EXPANDED ADDR ORCPT NOTIFY      (one per recipient)
 *   Y REASON                           (after its R line: why it was last deferred; absent in
 *                                       older files)
 *   D
 * Each R line's status byte and attempt field, and the X line's fields, sit at fixed offsets
 * so they can be overwritten in place. X: the epoch of the next remote attempt, how many
 * remote attempts were made, and 'w' once the delay warning went out ('-' before). Y: the
 * last deferral reason of the recipient above it, %XX-escaped and padded with blanks to a
 * fixed QENV_REASON_LEN, so it too is overwritten in place (shown by mailq).
 */
#ifndef ZOLDER_QENV_H
#define ZOLDER_QENV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"

#define QUEUE_ID_LEN 16
#define QUEUE_RCPT_MAX 10000
/* The Y line's reason field: bytes on disk (escaped) and so at most this many characters. */
#define QENV_REASON_LEN 160
#define QENV_REASON_LINE_LEN (2 + QENV_REASON_LEN)

enum queue_rcpt_status {
    QUEUE_RCPT_PENDING = 'P',
    QUEUE_RCPT_DONE = 'D',    /* delivered (or handed to a child queue file) */
    QUEUE_RCPT_FAILED = 'F',  /* permanently failed; bounce written */
};

struct queue_rcpt {
    char *addr;         /* final envelope recipient, local@domain */
    char *orcpt;        /* RFC 3461 ORCPT (decoded), or "" */
    char *notify;       /* RFC 3461 NOTIFY, or "" */
    bool expanded;      /* produced by alias expansion: deliver as is */
    char status;        /* enum queue_rcpt_status */
    long long attempt;  /* mailbox size before the last delivery attempt, -1 when none */
    off_t status_off;   /* file offset of the status byte */
    off_t attempt_off;  /* file offset of the 16 hex digit attempt field */
    char reason[QENV_REASON_LEN + 1]; /* last deferral reason (printable ASCII), or "" */
    off_t reason_off;   /* file offset of the Y line, or -1 when the file has none */
};

struct queue_envelope {
    char *sender;       /* "" for the null path */
    char *client_ip;
    char *helo;
    char *rdns;         /* "" when unknown */
    char *proto;        /* ESMTP, ESMTPSA, local, ... */
    char *auth_user;    /* "" when none */
    char *ret;          /* RFC 3461 RET, or "" */
    char *envid;        /* RFC 3461 ENVID (decoded), or "" */
    char *body;         /* 7BIT, 8BITMIME, or "" */
    time_t arrival;
    /* remote retry state (the X line) */
    time_t next_attempt;    /* 0: as soon as possible */
    unsigned attempts;      /* remote attempts that ended deferred */
    bool warned;            /* the delay warning was sent */
    off_t retry_off;        /* file offset of the X line, or -1 when the file has none */
    struct queue_rcpt *rcpts;
    size_t nrcpts;
};

void queue_envelope_add_rcpt(struct queue_envelope *env, const char *addr, const char *orcpt,
                             const char *notify, bool expanded);
void queue_envelope_free(struct queue_envelope *env);
/* Appends the envelope lines for id (through the "D" line). */
void queue_envelope_format(struct buf *out, const char *id, const struct queue_envelope *env);
/*
 * Parses the envelope at the start of data, which must name id. On success stores the offset
 * of the message bytes in *data_off_r and fills env (free with queue_envelope_free); -1 with a
 * static reason in *error_r otherwise (env is then freed).
 */
int queue_envelope_parse(const char *data, size_t len, const char *id,
                         struct queue_envelope *env, size_t *data_off_r, const char **error_r);
bool queue_id_valid(const char *id);
/* The X line's fixed-width text for the retry state (QENV_RETRY_LEN bytes, no newline). */
#define QENV_RETRY_LEN 29
void queue_envelope_format_retry(char out[QENV_RETRY_LEN + 1], time_t next_attempt,
                                 unsigned attempts, bool warned);

/*
 * The Y line's fixed-width text for reason (QENV_REASON_LINE_LEN bytes, no newline): control
 * bytes and bytes above 126 become '?', blanks and '%' are %XX-escaped, the text is cut (never
 * inside an escape) to fit and padded with blanks.
 */
void queue_envelope_format_reason(char out[QENV_REASON_LINE_LEN + 1], const char *reason);
/* reason as kept in memory: control bytes and bytes above 126 as '?', cut to QENV_REASON_LEN. */
void queue_reason_sanitise(char out[QENV_REASON_LEN + 1], const char *reason);

#endif
