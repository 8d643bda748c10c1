/*
 * sim_relay: the smarthost's queue and its relaying over real SMTP to the MX hosts of the
 * world (docs/ispsim.md, "SMTP hosts"). Records of kind "relay" (results) and "relay-smtp"
 * (the client's transcript).
 */
#ifndef ZOLDER_SIM_RELAY_H
#define ZOLDER_SIM_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct sim_run;
struct sim_relay;

/* Queues one copy for rcpt to the MX service mx; the first attempt starts at once. */
bool sim_relay_submit(struct sim_run *run, int smarthost, const char *id, const char *from,
                      const char *rcpt, int mx, const char *data, size_t len);
/*
 * A delivery failed for good: sends the sender (unless "<>") an RFC 3464 DSN from
 * MAILER-DAEMON@smarthost, queued like any message to the MX of the sender's domain (a "relay"
 * record with status "no-route" when there is none). remote: the MX that refused, or "".
 */
void sim_relay_bounce(struct sim_run *run, int smarthost, const char *id, const char *from,
                      const char *rcpt, const char *remote, const char *reply, const char *data,
                      size_t len);
/* Drops every job (reset). */
void sim_relay_reset(struct sim_run *run);
void sim_relay_free(struct sim_run *run);
/* Control: queue.flush (retry the deferred now) and queue.list. */
void sim_relay_flush(struct sim_run *run, struct buf *out);
void sim_relay_list(struct sim_run *run, struct buf *out);

#endif
