/*
 * fetch: the poller, zolder's fetchmail. It polls the accounts of a fetchmailrc over POP3 or
 * IMAP and hands every message to zolderd's own SMTP listener, as a libevent state machine
 * usable inside zolderd (fetchmailrc, fetch_interval, `zolderctl fetch`) and standalone
 * (`zolder-fetch -v -f FILE`).
 *
 * DESCRIPTION
 *   Accounts are polled one after the other (as fetchmail does). `proto auto` (the default)
 *   probes: IMAP's port first, POP3's when it refuses or greets otherwise; with `port` the
 *   greeting decides (docs/fetch.md). Per account:
 *   POP3 (RFC 1939, 2449, 2595, 5034): greeting, CAPA, STLS (or implicit TLS on 995), USER/PASS
 *   or AUTH PLAIN, UIDL and LIST, then RETR (pipelined when the server offers PIPELINING), DELE
 *   unless keep, QUIT.
 *   IMAP (RFC 3501, 4315, 4959): greeting, CAPABILITY, STARTTLS (or 993), LOGIN or
 *   AUTHENTICATE PLAIN, SELECT the folder, UID SEARCH UNSEEN (ALL with fetchall), UID FETCH
 *   RFC822.SIZE then BODY.PEEK[] per message (several in flight), UID STORE +FLAGS (\Seen,
 *   plus \Deleted unless keep), UID EXPUNGE with UIDPLUS else EXPUNGE, LOGOUT.
 *   Each message gets a Received line (see fetch.c) and goes to zolder over SMTP (handoff.h;
 *   instead of fetch_smtp the first `smtphost` that greets with 220, tried in order before
 *   the server); envelope recipient USER@localhost for the mapped local user. Several IMAP `folder`s: one pass each, with its own UID record. `limit`:
 *   oversized messages are never fetched (deleted with limitflush) and the postmaster is
 *   warned once per message (ACCOUNT.warned); `flush` with keep deletes what an earlier poll
 *   delivered; `interval N` polls an entry every Nth cycle (fetch_config.cycle).
 *
 *   Never lost, never twice: a message's UID is written to the account's record (uidrec.h)
 *   after zolder's 250 and synced before the server is told anything (DELE, \Deleted); one
 *   sync covers the 250s of up to 5 ms or 32 messages. A
 *   recorded UID is never handed over again; if it is still on the server (the link was cut
 *   before QUIT or EXPUNGE), it is deleted now without fetching it. A 4xx from zolder leaves
 *   the message on the server for the next poll; a 5xx deletes it once an RFC 3464 DSN
 *   (dsn.h) went to its sender or the postmaster (fetchmail's default for refused mail;
 *   `fetch_refused = keep` leaves it), logged with the reply.
 *
 * SECURITY
 *   With ssl, sslproto or sslcertck the session must be encrypted before any credential is
 *   sent: a server that does not offer STLS/STARTTLS is an error, and bytes the server sent
 *   before the handshake are discarded (RFC 2595 4, RFC 3501 6.2.1 injection). Passwords are
 *   never logged: the transcript at debug level shows "PASS ****". Certificates are checked
 *   with sslcertck (sslcertfile or the system store, name from sslcommonname or the server).
 *
 * LIMITS
 *   Host names (servers and smtphosts) go through zolder's resolver when one is given (hosts file, then `nameserver`
 *   or resolv.conf, as outbound delivery does), else getaddrinfo (blocking, as fetchmail).
 *   TOP-based header peeks are PENDING (docs/fetch.md). IDLE only inside zolderd, one
 *   folder per account (as fetchmail).
 */
#ifndef ZOLDER_FETCH_FETCH_H
#define ZOLDER_FETCH_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "fetchmailrc.h"
#include "relay/dns.h"

/* fetchmail's exit codes (fetchmail(1), EXIT CODES). */
enum fetch_status {
    FETCH_PS_SUCCESS = 0,  /* one or more messages retrieved */
    FETCH_PS_NOMAIL = 1,
    FETCH_PS_SOCKET = 2,
    FETCH_PS_AUTHFAIL = 3,
    FETCH_PS_PROTOCOL = 4,
    FETCH_PS_SYNTAX = 5,
    FETCH_PS_IOERR = 6,    /* the rc file had bad permissions */
    FETCH_PS_ERROR = 7,    /* the server answered with an error */
    FETCH_PS_EXCLUDE = 8,
    FETCH_PS_LOCKBUSY = 9,
    FETCH_PS_SMTP = 10,
    FETCH_PS_DNS = 11,
    FETCH_PS_MAXFETCH = 13,
    FETCH_PS_INTERNAL = 23, /* local trouble (the UID record cannot be written) */
};

enum fetch_refused { FETCH_REFUSED_DELETE, FETCH_REFUSED_KEEP };

/* The accounts idling between polls (fetchmailrc `idle`): zolderd owns one for its life. */
struct fetch_idle;

struct fetch_config {
    const char *hostname;          /* Received "by", EHLO */
    const char *state_dir;         /* UID records under STATE_DIR/fetch/ */
    struct sockaddr_storage smtp;  /* zolderd's SMTP listener */
    socklen_t smtp_len;
    unsigned handoff_sessions;     /* SMTP sessions in parallel (fetch_smtp_sessions; 0: 4) */
    enum fetch_refused refused;
    const char *invoking_user;     /* for entries without `user` */
    struct relay_dns *dns;         /* zolder's resolver (hosts file, nameserver); NULL:
                                    * getaddrinfo, which blocks */
    unsigned long cycle;           /* the poll's number (0 first): an entry with `interval N`
                                    * is polled when cycle % N == 0 */
    /* progress lines ("reading message ..."), NULL: log_info */
    void (*progress)(void *ctx, const char *line);
    void *progress_ctx;
    bool daemon;                   /* inside zolderd (set idfile / set syslog do not apply) */
    struct fetch_idle *idle;       /* `idle` IMAP accounts stay connected here between polls;
                                    * NULL: polled like the others (zolder-fetch) */
    unsigned long idle_renew;      /* seconds before an IDLE is sent again (0: 28 minutes) */
};

struct fetch_account_result {
    char label[600];               /* "user at server" */
    unsigned messages;             /* on the server at the start */
    unsigned seen;                 /* already delivered earlier (in the UID record) */
    unsigned delivered;            /* handed to zolder (250) in this poll */
    unsigned deleted;              /* deleted on the server in this poll */
    unsigned deferred;             /* zolder said 4xx: left on the server */
    unsigned refused;              /* zolder said 5xx */
    unsigned skipped;              /* over the size limit / fetchlimit */
    int status;                    /* enum fetch_status */
    char error[300];
};

struct fetch_result {
    int status;                    /* overall (fetch.c: fetch_overall) */
    struct fetch_account_result *accounts;
    size_t naccounts;
};

typedef void (*fetch_done_fn)(void *ctx, const struct fetch_result *result);

struct fetch_run;

/*
 * Starts polling every `poll` entry of rc (skip entries are left out) and calls done once,
 * from the event loop, when all accounts are finished. Takes ownership of rc (freed at the
 * end). NULL when nothing could be started (done is then not called).
 */
struct fetch_run *fetch_start(struct event_base *base, struct fetchrc *rc,
                              const struct fetch_config *cfg, fetch_done_fn done, void *ctx);
/* Stops a run at once (daemon shutdown); done is not called. Unsynced work is redone later. */
void fetch_cancel(struct fetch_run *run);

/*
 * IMAP IDLE (RFC 2177) for `idle` accounts: after a clean poll of an IMAP account with one
 * folder whose server offers IDLE, the session is not logged out but moved here (the run
 * goes on with the next account) and IDLEs. New mail ("* N EXISTS" beyond what the session
 * knows) ends the IDLE (DONE) and is fetched at once, with the same never-lost/never-twice
 * rules as a poll, then the session IDLEs again; every cfg.idle_renew seconds the IDLE is
 * ended and sent again. A lost or failed session is dropped: the account is polled again by
 * the next poll (which skips accounts that are idling).
 */
struct fetch_idle *fetch_idle_new(struct event_base *base);
/* Ends every idling session (reload: the rc may have changed); the set stays usable. */
void fetch_idle_stop(struct fetch_idle *idle);
/* fetch_idle_stop, then frees the set (after the last run using it was cancelled or done). */
void fetch_idle_free(struct fetch_idle *idle);
/* Sessions idling now. */
size_t fetch_idle_count(const struct fetch_idle *idle);

/*
 * Reads an rc file as fetchmail does: refused (FETCH_PS_IOERR) when group or others have any
 * permission on it, FETCH_PS_SYNTAX when unreadable or invalid ("FILE:LINE:COL: ..." in
 * error). On success *data_r holds its bytes (the caller parses them with fetchrc_parse for
 * each run and wipes them with explicit_bzero before free).
 */
int fetch_read_rc(const char *path, char **data_r, size_t *len_r, char *error, size_t errsize);
/* fetch_read_rc's bytes parsed into a new allocation; NULL with error. */
struct fetchrc *fetch_parse_rc(const char *path, const char *data, size_t len, char *error,
                               size_t errsize);

/* The overall status of several accounts (documented in docs/fetch.md). */
int fetch_overall(const struct fetch_account_result *a, size_t n);

#endif
