/*
 * relay: outbound delivery, the service that turns zolder's queue into the seed's
 * `sendmail -q`: remote recipients go to the smarthost (`smarthost`) or straight to the MX
 * hosts of their domain, over asynchronous SMTP sessions on zolderd's event loop
 * (relay/mta.c), with names from the hosts file and c-ares (relay/dns.c).
 *
 * The daemon hands over every queued message that still has pending recipients after local
 * delivery (relay_submit) and asks for runs: relay_run(false) at arrival and on the retry
 * timer, relay_run(true) for a flush (zolderctl flush, sendmail -q, ETRN, SIGUSR1), which
 * ignores the backoff and `defer_remote`. Each recipient's result is written into the queue
 * file in place: 2xx after the final dot D (done), 5xx F (failed, after the bounce to the
 * sender was queued), 4xx and connection failures leave it P with the reason logged and the
 * message retried with doubling delays (retry_min_delay .. retry_max_delay, the state kept in
 * the queue file's X line so a restart keeps it) until queue_lifetime; after
 * delay_warning_time the sender gets one delay warning.
 */
#ifndef ZOLDER_RELAY_H
#define ZOLDER_RELAY_H

#include <stdbool.h>

#include <event2/event.h>

#include "hostsfile.h"
#include "queue/queue.h"
#include "zconf.h"

struct relay;

#define RELAY_CRED_MAX 256

/* The smarthost credentials (smarthost_auth), read while still privileged. */
struct relay_auth {
    bool set;
    char user[RELAY_CRED_MAX];
    char pass[RELAY_CRED_MAX];
};

/*
 * Reads path (one line user:password; "" means none). The file must be a regular file
 * without group or other access (mode 0600). 0, or -1 with a reason in *error_r.
 */
int relay_auth_load(const char *path, struct relay_auth *auth, const char **error_r);
void relay_auth_clear(struct relay_auth *auth);

/*
 * NULL with a reason in *error_r (resolver setup, TLS). auth (copied; may be NULL) comes
 * from relay_auth_load before privileges were dropped.
 */
struct relay *relay_new(struct event_base *base, const struct zconf *conf, struct queue *queue,
                        const struct hostsfile *hosts, const struct relay_auth *auth,
                        const char **error_r);
/* Ends every session at once; unfinished recipients stay pending in the queue. */
void relay_free(struct relay *relay);
/*
 * After a config reload: conf was replaced in place, hosts is the new table. The
 * credentials are read again when the file is readable unprivileged; otherwise the old
 * ones stay (logged).
 */
void relay_reload(struct relay *relay, const struct hostsfile *hosts);
/* A queued message that may have remote recipients pending (ignored when already known). */
void relay_submit(struct relay *relay, const char *id);
/* Starts sessions for what is due (force: everything, a flush). */
void relay_run(struct relay *relay, bool force);
/*
 * ETRN DOMAIN (RFC 1985): a flush of the pending remote recipients in DOMAIN only ("@DOMAIN":
 * the domain and its subdomains), whatever the backoff and defer_remote.
 */
void relay_run_domain(struct relay *relay, const char *pattern);
/*
 * The relay queues reports to senders (bounces, delay warnings, success DSNs) as new queue
 * files; fn gets each new id after it was committed, to deliver it like any other message.
 */
void relay_set_queued_hook(struct relay *relay, void (*fn)(const char *id, void *ctx), void *ctx);

/*
 * `dns = canonify` (relay/canon.c): does a remote recipient's domain exist? done gets the
 * verdict later, from the event loop, never from inside the call: 2 yes, 5 no (NXDOMAIN, no
 * MX and no address, null MX), 4 not known now (SERVFAIL, timeout), with a reason. NULL
 * (and no call) when the name cannot be a DNS name. A cancelled check calls nothing.
 */
struct relay_canon;
typedef void (*relay_canon_fn)(void *arg, int verdict, const char *detail);
struct relay_canon *relay_canon_check(struct relay *relay, const char *domain, relay_canon_fn done,
                                      void *arg);
void relay_canon_cancel(struct relay_canon *c);

#endif
