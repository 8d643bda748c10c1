/*
 * handoff: the poller's SMTP client to zolderd's own listener (fetch_smtp), as fetchmail
 * forwards to port 25 of localhost.
 *
 * DESCRIPTION
 *   A small pool of SMTP sessions: items queue up and go out on the first idle session; new
 *   sessions open (up to the pool size) while items wait. Each session pipelines MAIL, RCPT
 *   and DATA (RFC 2920) when offered, then the dot-stuffed body; the next item's MAIL, RCPT
 *   and DATA follow the final dot without waiting for its 250 (RFC 2920 3.1: one item at
 *   most rides behind each dot), so zolderd answers them in the same turn as its commit.
 *   When the server offers CHUNKING too (zolderd does), whole messages are pipelined
 *   instead, up to 4 per session: RSET, MAIL, RCPT..., BDAT n LAST and the bytes (RFC 3030,
 *   no stuffing), so zolderd reads the next message right after answering a commit and
 *   never waits for a round trip; the RSET closes a transaction the server kept open after
 *   refusing every recipient. A lost session answers 421 for every item in flight. Because zolderd commits
 *   messages of all sessions that arrive in the same turn with one fsync, several sessions
 *   in flight share syncs. Every item ends with exactly one callback: the reply code of the
 *   final dot (250), the first refusal (4xx/5xx), or 421 when the session was lost (the
 *   message may then be left on the server and fetched again, never lost).
 *   A loopback target is reached from 127.0.0.1, so zolderd treats the poller as a local
 *   program (as `sendmail` does).
 *
 * LIMITS
 *   No TLS or AUTH to zolderd (it is on loopback or the LAN); BDAT only as one LAST chunk
 *   per message.
 */
#ifndef ZOLDER_FETCH_HANDOFF_H
#define ZOLDER_FETCH_HANDOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "buf.h"

#define HANDOFF_SESSIONS_MAX 16
#define HANDOFF_TIMEOUT_S 300
#define HANDOFF_RCPT_MAX 16

struct handoff_item;
typedef void (*handoff_done_fn)(struct handoff_item *item, int code, const char *reply);

struct handoff_item {
    char sender[512];           /* "" for <> */
    char *rcpts[HANDOFF_RCPT_MAX];  /* 1..HANDOFF_RCPT_MAX, owned by the submitter */
    size_t nrcpt;
    unsigned rcpt_refused;          /* set by handoff: recipients zolder refused (a 250 means
                                     * the others have it) */
    struct buf *data;           /* the message, CRLF lines, not stuffed */
    handoff_done_fn done;
    void *ctx;
    struct handoff_item *next;  /* queue link (handoff's) */
};

struct handoff;

struct handoff *handoff_new(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
                            const char *helo, unsigned sessions);
/* Queues item; its done callback runs later, from the event loop, exactly once. */
void handoff_submit(struct handoff *h, struct handoff_item *item);
/* Items not yet answered (queued or in flight). */
size_t handoff_pending(const struct handoff *h);
/* QUITs idle sessions; items still pending get 421 at once. */
void handoff_free(struct handoff *h);

#endif
