/*
 * auth: password checks off the event loop, for SMTP AUTH, POP3 and IMAP logins.
 *
 * DESCRIPTION
 *   A crypt hash costs milliseconds by design (yescrypt); done inline it would stall every
 *   session of the one event loop, and a client repeating AUTH could stall the server. The
 *   caller prepares the check on the loop (users_check_prepare copies the hash, so a reload
 *   may free the users table meanwhile) and submits it; AUTH_WORKERS threads hash; the
 *   verdict comes back to the loop through a pipe and `done` is called there, never from
 *   inside auth_submit. A failed check is answered only after failure_delay_ms (Dovecot's
 *   auth_failure_delay), on a timer, so guessing is slow and the loop stays free.
 *
 *   Cache (auth_service_set_cache; zolderd's auth_cache_size, auth_cache_ttl; as Dovecot's
 *   auth cache): a check that succeeded is remembered for ttl seconds as an HMAC-SHA256,
 *   under a random key made at start, of the user's hash string (from the users file) and
 *   the password; the same password against the same hash string within the TTL is then
 *   answered OK without hashing (on the next loop turn, like every verdict). Failures are
 *   never cached; a locked or unknown user never reaches the cache; a users file whose hash
 *   for the user changed no longer matches; a reload (set_cache) empties it. At most
 *   `size` entries (AUTH_CACHE_MAX): a full cache replaces the entry that expires first.
 *
 * SECURITY
 *   Passwords are copied into the request and wiped (explicit_bzero) as soon as the hash is
 *   done; they are never logged. The cache holds digests only, under a key that never leaves
 *   the process (wiped at free); it is compared in constant time. A hit answers faster than
 *   a hash, which tells a guesser only that a password that works was used recently. The queue is bounded (AUTH_QUEUE_MAX): beyond it a check
 *   fails at once, as overload, rather than growing without limit.
 */
#ifndef ZOLDER_AUTH_H
#define ZOLDER_AUTH_H

#include <stdbool.h>

#include <event2/event.h>

#include "users.h"

#define AUTH_WORKERS 2
#define AUTH_QUEUE_MAX 256
#define AUTH_CACHE_MAX 100000
#define AUTH_DIGEST_LEN 32

struct auth_service;
struct auth_request;

/* Called on the event loop with the verdict (the enum is for the log, never the client). */
typedef void (*auth_done_fn)(enum users_auth result, void *arg);

/* NULL with *error_r when the threads or the pipe cannot be made. */
struct auth_service *auth_service_new(struct event_base *base, unsigned failure_delay_ms,
                                      const char **error_r);
/* Joins the workers; requests still open are dropped without their callback. */
void auth_service_free(struct auth_service *svc);
void auth_service_set_failure_delay(struct auth_service *svc, unsigned failure_delay_ms);
/* The cache of successful checks (see DESCRIPTION): size entries (0: none), ttl_s seconds
 * (0: none); emptied by every call. Off until called. */
void auth_service_set_cache(struct auth_service *svc, size_t size, unsigned long ttl_s);
/* How many checks ran a hash (cache hits and refusals do not): tests, statistics. */
unsigned long long auth_service_hashed(const struct auth_service *svc);

/*
 * Starts a check of password against chk. Returns a handle the caller must forget once done
 * has been called, or cancel with auth_cancel before (e.g. when its session closes).
 */
struct auth_request *auth_submit(struct auth_service *svc, const struct users_check *chk,
                                 const char *password, auth_done_fn done, void *arg);
/* The callback will not be called; the request is freed when the worker lets go of it. */
void auth_cancel(struct auth_request *req);

#endif
