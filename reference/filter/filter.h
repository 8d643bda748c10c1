/*
 * filter: the content filter (amavis's job, docs/filter.md). Every committed message is
 * scanned before any delivery, local or remote; the sender already has its 250, so the
 * verdict is acted on by quarantine and a notice, never by an SMTP reply.
 *
 * DESCRIPTION
 *   scan: mimewalk flattens the MIME tree; every attachment name (and every name inside a
 *   zip, nested zips too) is checked by banned; every decoded part (and zip entry) goes
 *   through the built-in signatures (sigscan), and the whole message through clamd when
 *   configured. Doubtful structure (malformed MIME, limits, a refused archive) counts as
 *   a finding: when in doubt, quarantine.
 *   verdicts: clean -> the queue file gets the owner-execute bit (the "scanned clean" mark,
 *   like Postfix's mark on complete queue files) and is delivered; banned / infected /
 *   doubtful -> a notice for filter_admin is queued, then the queue file is renamed into
 *   STATE_DIR/quarantine (0700) with a one-line ID.verdict beside it; a scanner failure ->
 *   the message stays queued (deferred), unless filter_fail_open.
 *
 * Nothing lost, nothing twice: the notice's queue id is derived from the message's, so a
 * crash after the notice was committed and before the rename finds it (EEXIST) on the
 * rescan and does not send a second one; the rename is atomic and both folders are
 * fsync'd after it. The clean mark is not fsync'd: losing it in a crash costs one rescan.
 *
 * SECURITY: zolderd runs the filter as its unprivileged run_as user. The scanning itself
 * (GMime, libarchive, signatures, the clamd exchange) happens in separate scanner processes
 * forked from zolderd (no new privileges, resource limits, no descriptor but its socket,
 * killed with zolderd): each gets a message's bytes over its socket and answers with a
 * fixed-size verdict, asynchronously on zolderd's event loop (filter_submit). Each message
 * gets a private folder STATE_DIR/filter-tmp/ID (0700) as the scanner's working folder,
 * removed after the verdict, and Landlock confines the process to STATE_DIR/filter-tmp
 * (read-only: the system's /usr, /etc, /proc, /dev): the spool, the queue, the quarantine
 * and the mailboxes are out of its reach; clamd gets the bytes over its own socket. A
 * seccomp filter (libseccomp) allows only the system calls scanning needs: anything else
 * (execve, fork, ptrace, a socket other than clamd's...) kills the process (SIGSYS), and the
 * message is deferred. With filter_user (zolderd started as root) the scanner processes run
 * as that user, started by the launcher (launcher.h) zolderd forked before its privilege
 * drop. A crash in a parser costs that process, not zolderd. The
 * quarantine folder is 0700 and its files 0600: not readable by users. Ids are validated
 * (queue_id_valid) before they become paths. Notices go to the admin only; senders of
 * viruses are forged, so they are never told.
 */
#ifndef ZOLDER_FILTER_H
#define ZOLDER_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "banned.h"
#include "buf.h"
#include "cfglex.h"
#include "mimewalk.h"
#include "deliver/deliver.h"
#include "queue/queue.h"
#include "sigscan.h"
#include "zconf.h"
#include "zipwalk.h"

#define FILTER_BUILTIN_SCANNER "zolder built-in signatures"

struct filter {
    const struct zconf *conf;
    struct queue *queue;
    struct banned_list banned;
    struct sigscan_db sigs;
    struct mimewalk_limits mime_limits;
    struct zipwalk_limits zip_limits;
    char *quarantine_dir;   /* STATE_DIR/quarantine */
    pid_t worker_pid;       /* the scanner process, 0 when not running */
    int worker_fd;          /* its socket */
    struct filter_async *async; /* the scanner pool on the event loop (filter_async_start) */
    struct deliver_resolver resolver; /* alias expansion for the notice (filter_set_resolver) */
    bool has_resolver;
    /* filter_user: scanner processes started by the launcher (reference/filter/launcher.h) */
    struct launcher *launcher;  /* NULL: forked by zolderd itself, as run_as */
    bool own_tmp;               /* in such a process: it makes and removes filter-tmp/ID itself */
    size_t nspare;              /* emptied working folders in STATE_DIR/filter-spare (0..n-1) */
    bool spare_ready;           /* filter-spare was emptied of what an earlier run left */
    char *sigs_text;            /* the signature file as read, for the launcher's processes */
    size_t sigs_len;
};

/*
 * filter_user: scanner processes are started by l (as its user) instead of being forked by
 * zolderd; each gets the filter's configuration over its socket (filter_scanner_child).
 * zolderd no longer touches STATE_DIR/filter-tmp (the launcher's user owns it).
 */
struct launcher;
void filter_set_launcher(struct filter *f, struct launcher *l);
/* What a process started by the launcher runs (launcher_child_fn): never returns. */
void filter_scanner_child(int fd);

/* Lets the notice name where each local recipient's aliases lead (zolderd's maps). */
void filter_set_resolver(struct filter *f, const struct deliver_resolver *resolver);

/* What one scan found. Several findings can hold at once (the seed's Sober.K: both). */
struct filter_verdict {
    char virus[128];          /* signature name, or "" */
    char scanner[64];         /* which scanner found it */
    char banned_ext[BANNED_EXT_LEN + 2]; /* ".exe", or "" */
    char banned_name[256];    /* the attachment name (sanitised), or "" */
    char doubt[160];          /* malformed MIME / refused archive, or "" */
    char tempfail[256];       /* a scanner could not give a verdict, or "" */
};

enum filter_action {
    FILTER_PASS,         /* clean (or filter = no): deliver */
    FILTER_QUARANTINED,  /* moved to the quarantine; a notice was queued */
    FILTER_DEFERRED,     /* a scanner failed: stays queued, try again later */
    FILTER_GONE,         /* not in msg/ (delivered, held or deleted meanwhile) */
    FILTER_PENDING,      /* filter_submit: being scanned; the verdict comes by the callback */
};

/* Loads the signature file and parses the lists. false with FILE:LINE (or why) in err. */
bool filter_init(struct filter *f, const struct zconf *conf, struct queue *queue,
                 struct cfg_error *err);
void filter_free(struct filter *f);

bool filter_verdict_quarantine(const struct filter_verdict *v);
/* Scans message bytes (no queue involved). */
void filter_scan(struct filter *f, const char *data, size_t len, struct filter_verdict *v);
/* One line for the log and ID.verdict: "virus=NAME (SCANNER) banned=.exe (a.exe) doubt=..." */
void filter_verdict_text(const struct filter_verdict *v, struct buf *out);

/*
 * Filters queued messages ids[0..n) (msg/ID): skipped when marked scanned; otherwise scanned
 * (in the scanner process, started on first use and again after it died) and acted upon
 * (see above); out[i] is message i's fate. *notice_r is set when a notice was queued (it
 * needs delivering). A message that crashes the scanner process is quarantined as
 * doubtful; one whose scan timed out is deferred.
 */
void filter_messages(struct filter *f, char *const *ids, size_t n, enum filter_action *out, bool *notice_r);
/* filter_messages for one id. */
enum filter_action filter_message(struct filter *f, const char *id, bool *notice_r);

/*
 * Asynchronous filtering on zolderd's event loop (what zolderd uses). A pool of `scanners`
 * scanner processes, each scanning one message at a time: zolderd writes the message to an
 * idle one's socket (else it queues it at the least loaded one: up to 8 messages, or 4 MiB
 * beyond the first, so a process never waits for zolderd's loop between two scans) and goes
 * on serving; each verdict arrives as a read event, belongs to that process's oldest
 * message and is acted on exactly as filter_messages does (mark, notice then quarantine, or
 * deferred), then done() is called with the message's fate. Ids beyond that wait in order
 * (their bytes are read from the queue only when a process has room). A scan that takes
 * longer than clamd_timeout + 30 s is killed and deferred; a crash quarantines the message
 * being scanned as doubtful, and the ones queued behind it are scanned again by the next
 * process.
 */
struct event_base;
struct filter_async;
typedef void (*filter_done_fn)(void *ctx, const char *id, enum filter_action action, bool notice);
void filter_async_start(struct filter *f, struct event_base *base, size_t scanners, filter_done_fn done,
                        void *ctx);
/*
 * Submits a queued message: FILTER_PASS (filter off, or marked scanned), FILTER_GONE at once,
 * or FILTER_PENDING: done() will say (once, also when id was already being scanned: then it
 * is not scanned twice). filter_free drops what is pending: those messages stay queued,
 * unscanned, for the next queue run.
 */
enum filter_action filter_submit(struct filter *f, const char *id);
/*
 * What a scanner process gives up before its first message (docs/filter.md, "Security"):
 * working folder STATE_DIR/filter-tmp (must exist), resource limits, Landlock. Irreversible:
 * for the scanner process (and tests' children) only. The Landlock ABI version applied, 0
 * without Landlock, -1 when the folder is missing.
 */
int filter_sandbox(const struct filter *f);
/* Messages being scanned or waiting for a scanner process. */
size_t filter_async_in_flight(const struct filter *f);

/*
 * Renders the admin notice for a quarantined message (the seed's amavis lines). Pure;
 * `date` is the RFC 5322 date to put in.
 */
void filter_notice_render(const struct filter_verdict *v, const struct queue_msg *msg,
                          const char *data, size_t len, const char *admin, const char *hostname,
                          const char *date, struct buf *out);
/*
 * The same with expanded[i] (or NULL): where recipient i's aliases lead ("admin, sjoerd"),
 * shown as "<postmaster@zolder.thuis> (for: admin, sjoerd):" when it differs from the name.
 */
void filter_notice_render_expanded(const struct filter_verdict *v, const struct queue_msg *msg,
                                   const char *data, size_t len, const char *admin, const char *hostname,
                                   const char *date, char *const *expanded, struct buf *out);

/* ---- the quarantine (zolderctl quarantine) ---- */

/* Lists quarantined ids, sorted (caller frees with queue_list_free). -1 with errno. */
int quarantine_list(const char *state_dir, char ***ids_r, size_t *n_r);
/* Reads the verdict line of id into out. */
int quarantine_verdict(const char *state_dir, const char *id, struct buf *out);
/* Path of the quarantined queue file (caller frees). NULL when id is not a queue id. */
char *quarantine_path(const char *state_dir, const char *id);
/* Moves quarantine/ID back to queue/msg/ID, marked scanned (no rescan); fsyncs. -1 with errno. */
int quarantine_release(const char *state_dir, const char *id);
/* Removes quarantine/ID and its verdict. -1 with errno. */
int quarantine_delete(const char *state_dir, const char *id);

#endif
