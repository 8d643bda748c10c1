/*
 * ctl: what `zolderctl` does, and the client side of zolderd's control socket that
 * `sendmail -q` shares.
 *
 * The control protocol (reference/core/daemon.c): a Unix stream socket at
 * STATE_DIR/zolderd.ctl; the client writes one request line ("flush", "reload", "ping",
 * "fetch"), the
 * daemon answers one line starting "ok " or "error " and closes.
 *
 * hold/release/delete work on the queue folders directly, as postsuper -h/-H/-d does: they
 * need no running daemon, only permission on STATE_DIR/queue.
 *
 * Exit statuses (sysexits.h, documented in docs/commands.md):
 *   0 EX_OK, 1 an id or the daemon refused, 64 EX_USAGE, 69 EX_UNAVAILABLE (no queue
 *   folder yet), 75 EX_TEMPFAIL (daemon not running or not answering), 77 EX_NOPERM (no
 *   access to the socket or queue), 78 EX_CONFIG (config file unreadable or invalid).
 */
#ifndef ZOLDER_CTL_H
#define ZOLDER_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include "zconf.h"

#define CTL_REPLY_MAX 512
#define CTL_TIMEOUT_MS 10000
/* A flush runs the whole queue before the daemon answers. */
#define CTL_FLUSH_TIMEOUT_MS 600000

enum ctl_status {
    CTL_OK,          /* the daemon answered "ok ..." */
    CTL_REFUSED,     /* the daemon answered "error ..." */
    CTL_NOT_RUNNING, /* no socket, or nobody listening on it */
    CTL_DENIED,      /* the socket exists but we may not connect */
    CTL_FAILED,      /* connected, but no (valid) answer in time */
};

enum ctl_verb {
    CTL_VERB_MAILQ,
    CTL_VERB_FLUSH,
    CTL_VERB_RELOAD,
    CTL_VERB_PING,
    CTL_VERB_HOLD,
    CTL_VERB_RELEASE,
    CTL_VERB_DELETE,
    CTL_VERB_FETCH,  /* fetch: a poll of the fetchmailrc now (answered when it is done) */
};

/*
 * Sends request to the control socket at path and reads the one reply line into reply
 * (without its newline). timeout_ms bounds the whole exchange. On CTL_NOT_RUNNING, CTL_DENIED
 * and CTL_FAILED, *error_r describes why (static text or strerror).
 */
enum ctl_status ctl_request(const char *path, const char *request, int timeout_ms,
                            char reply[CTL_REPLY_MAX], const char **error_r);

/* The exit status for a ctl_request outcome (table in the header comment). */
int ctl_exit_status(enum ctl_status status);

/* "mailq" -> CTL_VERB_MAILQ ...; false for an unknown name. */
bool ctl_verb_parse(const char *name, enum ctl_verb *verb_r);
/* true when the verb takes queue ids (hold, release, delete). */
bool ctl_verb_takes_ids(enum ctl_verb verb);

/*
 * Runs one zolderctl command against the instance conf describes, printing results to
 * stdout and problems to stderr prefixed with prog. Returns the exit status.
 */
int ctl_run(const struct zconf *conf, const char *prog, enum ctl_verb verb, char *const *ids,
            size_t nids);

/* `zolderctl mailq` / `sendmail -bp`. */
int ctl_mailq(const struct zconf *conf, const char *prog);
/* `zolderctl flush` / `sendmail -q`: a queue run by the daemon. */
int ctl_flush(const struct zconf *conf, const char *prog);

/*
 * content filter: `zolderctl quarantine list | show ID... | release ID... | delete ID...`
 * (reference/filter, docs/filter.md). Works on STATE_DIR/quarantine directly; release puts
 * the message back into the queue marked scanned and asks the daemon for a queue run.
 * Returns the exit status (EX_USAGE for a bad sub-command).
 */
int ctl_quarantine(const struct zconf *conf, const char *prog, char *const *args, size_t nargs);

#endif
