/*
 * daemon: one zolderd instance (see daemon.h).
 *
 * SECURITY: started as root, zolderd binds its ports and reads the TLS key, then switches
 * to run_as (setgroups, setgid, setuid, verified) before the event loop reads a byte from
 * the network. Everything after that, SMTP parsing and local delivery into the spool it
 * owns, runs unprivileged. Started as another user (tests, demos) it runs as that user.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "auth/auth.h"
#include "deliver/deliver.h"
#include "filter/filter.h"
#include "filter/launcher.h"
#include "fetch/fetch.h"
#include "fsutil.h"
#include "log.h"
#include "pop3d/pop3d.h"
#include "imapd/imapd.h"
#include "mailstore/mailstore.h"
#include "queue/queue.h"
#include "relay/relay.h"
#include "smtpd/smtpd.h"
#include "str.h"
#include "xalloc.h"
#include "instance.h"
#include "zmaps.h"

#define DAEMON_CONTROL_LINE_MAX 512

struct daemon {
    char *config_path;
    struct zconf conf;
    struct zmaps *maps;
    struct event_base *base;
    struct queue queue;
    struct smtpd smtpd;
    struct pop3d pop3d;
    struct imapd imapd;  /* IMAP service (reference/imapd) */
    struct smtpd_maps smtpd_maps;
    struct deliver deliver;
    struct relay *relay;        /* outbound delivery */
    struct auth_service *auth;  /* password checks on worker threads */
    struct event *sig_term, *sig_int, *sig_hup, *sig_usr1;
    struct event *queue_timer;
    struct evconnlistener *control;
    char *control_path;
    bool queue_run_scheduled;
    bool queue_run_flush;       /* the scheduled run is a flush (SIGUSR1, ETRN) */
    bool flush_after_scans;     /* a flush came while messages were being scanned: flush again
                                   when the last verdict is in, so they go out on this dial too */
    char *etrn_after_scans[8];  /* the same for ETRN DOMAIN: its domains, run again then */
    size_t netrn_after_scans;
    bool etrn_run_scheduled;
    struct event *retry_timer;  /* a queue run soon after a local delivery was deferred */
    struct event *backlog_event;
    char **backlog;             /* committed ids waiting for the next delivery batch */
    size_t nbacklog;
    struct deliver_later later; /* deliveries riding on the current SMTP commit round */
    bool spool_on_queue_fs;     /* one syncfs covers queue and mailboxes */
    struct filter filter;       /* content filter: runs before every delivery */
    /* fetch (reference/fetch): the fetchmail-compatible poller */
    char *fetch_rcdata;         /* the fetchmailrc's bytes (read before privileges go) */
    size_t fetch_rclen;
    struct fetch_run *fetch_run;
    unsigned long fetch_cycle;      /* polls started: fetchmailrc `interval N` */
    struct event *fetch_timer;
    struct bufferevent *fetch_waiters[8]; /* `zolderctl fetch` clients waiting for the end */
    struct relay_dns *fetch_dns;          /* the poller's resolver: hosts file, then DNS */
    size_t fetch_nwaiters;
    struct fetch_idle *fetch_idle;        /* `idle` accounts between polls (IMAP IDLE) */
    /* content filter: the scanner processes' own user (filter_user, reference/filter/launcher) */
    struct launcher *filter_launcher; /* NULL: zolderd forks them itself, as run_as */
    char *filter_launcher_user;       /* filter_user at start (a change needs a restart) */
};

int daemon_check(const char *path)
{
    struct zconf conf;
    struct cfg_error err;
    if (!instance_load_config(path, &conf, &err)) {
        fprintf(stderr, "zolderd: %s\n", err.text);
        zconf_free(&conf);
        return 1;
    }
    struct zmaps *maps = zmaps_load(&conf, &err);
    if (!maps) {
        fprintf(stderr, "zolderd: %s\n", err.text);
        zconf_free(&conf);
        return 1;
    }
    if (zmaps_localhost_denied(maps))
        fprintf(stderr, "zolderd: warning: hosts.allow/hosts.deny refuse 127.0.0.1 for smtpd: "
                        "local programs (fetch, sendmail, cron) cannot hand over mail\n");
    zmaps_free(maps);
    struct filter filter; /* content filter: the signature file must load */
    bool filter_ok = filter_init(&filter, &conf, NULL, &err);
    filter_free(&filter);
    if (!filter_ok) {
        fprintf(stderr, "zolderd: %s\n", err.text);
        zconf_free(&conf);
        return 1;
    }
    if (conf.filter_user[0] && !getpwnam(conf.filter_user)) { /* content filter: scanner user */
        fprintf(stderr, "zolderd: filter_user \"%s\" does not exist\n", conf.filter_user);
        zconf_free(&conf);
        return 1;
    }
    if (conf.fetchmailrc[0]) { /* fetch: the rc file as the poller will read it */
        char *data;
        size_t len;
        char error[FETCHRC_ERROR_MAX + 64];
        if (fetch_read_rc(conf.fetchmailrc, &data, &len, error, sizeof error) != FETCH_PS_SUCCESS) {
            fprintf(stderr, "zolderd: fetchmailrc: %s\n", error);
            zconf_free(&conf);
            return 1;
        }
        explicit_bzero(data, len);
        free(data);
    }
    printf("zolderd: %s: config ok\n", path);
    zconf_free(&conf);
    return 0;
}

static enum log_level daemon_log_level(const char *name)
{
    if (strcmp(name, "debug") == 0)
        return LOG_LEVEL_DEBUG;
    if (strcmp(name, "warning") == 0)
        return LOG_LEVEL_WARN;
    if (strcmp(name, "error") == 0)
        return LOG_LEVEL_ERROR;
    return LOG_LEVEL_INFO;
}

static SSL_CTX *daemon_tls_context(const struct zconf *conf)
{
    if (!conf->tls_cert[0])
        return NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        log_fatalx("tls: cannot create context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, conf->tls_cert) != 1)
        log_fatalx("tls: cannot load certificate %s: %s", conf->tls_cert,
                   ERR_reason_error_string(ERR_get_error()));
    if (SSL_CTX_use_PrivateKey_file(ctx, conf->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        log_fatalx("tls: cannot load key %s: %s", conf->tls_key,
                   ERR_reason_error_string(ERR_get_error()));
    return ctx;
}

static void daemon_prepare_state_dir(const struct zconf *conf, const struct passwd *pw)
{
    const char *subdirs[] = {"", "/queue", "/queue/tmp", "/queue/msg", "/queue/hold", "/spool",
                             "/spool/mail", "/maildir", "/home"};
    for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s%s", conf->state_dir, subdirs[i]);
        if (fs_mkdir_p(path, 0700) < 0)
            log_fatal("cannot create %s", path);
        if (pw && chown(path, pw->pw_uid, pw->pw_gid) < 0)
            log_fatal("cannot give %s to %s", path, pw->pw_name);
    }
}

/* ---- content filter: the scanner processes' own user (filter_user) ------------------------- */

/*
 * While still root, before anything secret is loaded (the launcher and the scanners it forks
 * carry only this process's memory as it is now): STATE_DIR/filter-tmp is emptied and given
 * to whoever runs the scanner processes (filter_user, or run_as), mode 0700; with a
 * filter_user the launcher is forked as that user (reference/filter/launcher.h). NULL when
 * zolderd forks the scanner processes itself (no filter_user, or not started as root).
 */
static struct launcher *daemon_filter_launcher(const struct zconf *conf)
{
    const char *user = conf->filter_user;
    if (geteuid() != 0) {
        if (user[0])
            log_warnx("filter_user = %s ignored: zolderd was not started as root (scanner processes "
                      "run as this process's user)", user);
        return NULL;
    }
    bool own = user[0] && strcmp(user, conf->run_as) != 0;
    const struct passwd *pw = getpwnam(own ? user : conf->run_as);
    if (!pw) {
        if (own)
            log_fatalx("filter_user \"%s\" does not exist (tools/deps creates \"zolder-scan\")", user);
        return NULL; /* no run_as: daemon_drop_privileges stops us */
    }
    if (pw->pw_uid == 0)
        return NULL; /* root refused by daemon_drop_privileges (run_as) or below (filter_user) */
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    char path[4096];
    snprintf(path, sizeof path, "%s/filter-tmp", conf->state_dir);
    if (fs_mkdir_p(path, 0700) < 0)
        log_fatal("cannot create %s", path);
    launcher_sweep(path); /* nothing runs in it yet: whatever is there is left over */
    if (chown(path, uid, gid) < 0 || chmod(path, 0700) < 0)
        log_fatal("cannot give %s to uid %ld", path, (long)uid);
    if (!own)
        return NULL;
    int tmp_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (tmp_fd < 0)
        log_fatal("cannot open %s", path);
    struct launcher *l = launcher_start(uid, gid, tmp_fd, filter_scanner_child);
    close(tmp_fd);
    if (!l)
        log_fatal("cannot start the scanner launcher as %s", user);
    log_info("content filter: scanner processes run as %s (uid %ld), started by the launcher (pid %ld)",
             user, (long)uid, (long)launcher_pid(l));
    return l;
}

/* Drops root for good; a no-op when not started as root. */
static void daemon_drop_privileges(const struct zconf *conf, const struct passwd *pw)
{
    if (geteuid() != 0)
        return;
    if (!pw)
        log_fatalx("run_as user \"%s\" does not exist (tools/deps creates \"zolder\")", conf->run_as);
    if (pw->pw_uid == 0)
        log_fatalx("run_as must not be root");
    if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
        log_fatal("cannot switch to user %s", pw->pw_name);
    if (setuid(0) == 0 || seteuid(0) == 0)
        log_fatalx("privilege drop failed: root could be regained");
    log_info("running as %s (uid %ld)", pw->pw_name, (long)pw->pw_uid);
}

/* ---- queue runs --------------------------------------------------------------------------- */

static void daemon_schedule_queue_run(struct daemon *d, bool flush);

/* ---- content filter (reference/filter) ------------------------------------------------------ */

static void daemon_on_queued(const char *id, void *ctx);
static void daemon_schedule_retry(struct daemon *d);

/*
 * Filters ids before delivery: pass[] gets those to deliver at once (pointers into ids):
 * already scanned, or filter = no. The others go to the scanner processes (filter_submit)
 * and the event loop goes on; their verdicts come back in daemon_filter_done. Vanished ones
 * are dropped; deferred ones (a scanner failed) stay queued and set *deferred.
 */
static int daemon_filter_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t daemon_filter(struct daemon *d, char *const *ids, size_t n, char **pass, bool *deferred)
{
    size_t npass = 0;
    for (size_t i = 0; i < n; i++) {
        switch (filter_submit(&d->filter, ids[i])) {
        case FILTER_PASS: pass[npass++] = ids[i]; break;
        case FILTER_DEFERRED: *deferred = true; break;
        case FILTER_QUARANTINED:
        case FILTER_GONE:
        case FILTER_PENDING: break;
        }
    }
    /* An id can come twice (a queue run found a message while its verdict was on its way to
     * the backlog): one batch must deliver it once. */
    qsort(pass, npass, sizeof *pass, daemon_filter_cmp);
    size_t kept = 0;
    for (size_t i = 0; i < npass; i++)
        if (kept == 0 || strcmp(pass[kept - 1], pass[i]) != 0)
            pass[kept++] = pass[i];
    return kept;
}

/*
 * A verdict from a scanner process, acted on already (marked clean, or quarantined with its
 * notice queued, or deferred). Clean mail joins the delivery backlog: delivered in the next
 * batch (DAEMON_BACKLOG_USEC, or with the next SMTP commit round), not waiting for the others
 * being scanned; the backlog's filter_submit finds it marked and passes it.
 */
static void daemon_etrn_after_scans_cb(evutil_socket_t fd, short what, void *arg);

static void daemon_filter_done(void *ctx, const char *id, enum filter_action action, bool notice)
{
    struct daemon *d = ctx;
    if (action == FILTER_PASS)
        daemon_on_queued(id, d);
    else if (action == FILTER_DEFERRED)
        daemon_schedule_retry(d);
    if (notice)
        daemon_schedule_queue_run(d, false);
    if (d->flush_after_scans && filter_async_in_flight(&d->filter) == 0) {
        d->flush_after_scans = false;
        daemon_schedule_queue_run(d, true);
    }
    if (d->netrn_after_scans && !d->etrn_run_scheduled && filter_async_in_flight(&d->filter) == 0) {
        d->etrn_run_scheduled = true; /* after the verdicts' messages reach the relay */
        event_base_once(d->base, -1, EV_TIMEOUT, daemon_etrn_after_scans_cb, d, &(struct timeval){0, 0});
    }
}

static void daemon_schedule_retry(struct daemon *d)
{
    if (!evtimer_pending(d->retry_timer, NULL)) {
        struct timeval delay = {(time_t)d->conf.local_retry_delay, 0};
        evtimer_add(d->retry_timer, &delay);
    }
}

/*
 * Delivers ids in batches (group commit) after the content filter; schedules a retry when a
 * local delivery (or a scan) deferred. With later, the mailbox syncs and queue file removals
 * are left to the SMTP commit round. Messages that still have pending recipients go to the
 * relay, which sends the remote ones (at once, or with flush regardless of defer_remote and
 * backoff).
 */
static size_t daemon_deliver(struct daemon *d, char *const *all_ids, size_t nall, struct deliver_later *later,
                             bool flush)
{
    size_t done = 0;
    bool deferred = false;
    char **ids = xreallocarray(NULL, nall ? nall : 1, sizeof *ids);
    size_t n = daemon_filter(d, all_ids, nall, ids, &deferred);
    if (flush && filter_async_in_flight(&d->filter) > 0)
        d->flush_after_scans = true;
    enum deliver_outcome out[DELIVER_BATCH_MAX];
    for (size_t i = 0; i < n; i += DELIVER_BATCH_MAX) {
        size_t chunk = n - i < DELIVER_BATCH_MAX ? n - i : DELIVER_BATCH_MAX;
        deliver_batch(&d->deliver, ids + i, chunk, out, later);
        for (size_t k = 0; k < chunk; k++) {
            done += out[k] == DELIVER_DONE;
            deferred |= out[k] == DELIVER_DEFERRED;
            if (out[k] == DELIVER_PENDING || out[k] == DELIVER_DEFERRED)
                relay_submit(d->relay, ids[i + k]);
        }
    }
    free(ids);
    if (d->deliver.children_queued) { /* delivery rules forwarded a copy: deliver it soon */
        d->deliver.children_queued = false;
        daemon_schedule_queue_run(d, false);
    }
    relay_run(d->relay, flush);
    if (deferred && !evtimer_pending(d->retry_timer, NULL)) {
        struct timeval delay = {(time_t)d->conf.local_retry_delay, 0};
        evtimer_add(d->retry_timer, &delay);
    }
    return done;
}

static void daemon_run_queue(struct daemon *d, bool flush)
{
    char **ids;
    size_t n;
    queue_list(&d->queue, false, &ids, &n);
    size_t done = daemon_deliver(d, ids, n, NULL, flush);
    if (n)
        log_info("queue run: %zu messages, %zu finished, %zu waiting", n, done, n - done);
    queue_list_free(ids, n);
}

static void daemon_queue_run_cb(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    (void)fd;
    (void)what;
    d->queue_run_scheduled = false;
    daemon_run_queue(d, d->queue_run_flush);
    d->queue_run_flush = false;
}

static void daemon_schedule_queue_run(struct daemon *d, bool flush)
{
    d->queue_run_flush |= flush;
    if (d->queue_run_scheduled)
        return;
    d->queue_run_scheduled = true;
    event_base_once(d->base, -1, EV_TIMEOUT, daemon_queue_run_cb, d, &(struct timeval){0, 0});
}

/* Takes the committed-but-undelivered ids and delivers them. */
static void daemon_deliver_backlog(struct daemon *d, struct deliver_later *later)
{
    char **ids = d->backlog;
    size_t n = d->nbacklog;
    d->backlog = NULL;
    d->nbacklog = 0;
    evtimer_del(d->backlog_event);
    daemon_deliver(d, ids, n, later, false);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

static void daemon_backlog_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon *d = arg;
    /* An SMTP commit round runs later in this same loop turn (messages wait for it): it
     * carries the backlog's mailbox syncs and queue file removals (daemon_before_round),
     * instead of a batch of its own with three more syncs. */
    if (d->spool_on_queue_fs && d->smtpd.npending > 0)
        return;
    daemon_deliver_backlog(d, NULL);
}

/*
 * A committed message is delivered shortly after its 250: within DAEMON_BACKLOG_USEC, or
 * earlier by the next SMTP commit round, which then carries its mailbox sync and removal.
 */
#define DAEMON_BACKLOG_USEC 2000
static void daemon_on_queued(const char *id, void *ctx)
{
    struct daemon *d = ctx;
    d->backlog = xreallocarray(d->backlog, d->nbacklog + 1, sizeof *d->backlog);
    d->backlog[d->nbacklog++] = xstrdup(id);
    if (d->nbacklog == 1) {
        struct timeval soon = {0, DAEMON_BACKLOG_USEC};
        evtimer_add(d->backlog_event, &soon);
    }
}

static size_t daemon_before_round(void *ctx, char ***unlink_paths_r)
{
    struct daemon *d = ctx;
    if (!d->spool_on_queue_fs || d->nbacklog == 0)
        return 0;
    daemon_deliver_backlog(d, &d->later);
    *unlink_paths_r = d->later.unlink_paths;
    return d->later.nunlinks;
}

static void daemon_after_round(void *ctx, bool synced)
{
    struct daemon *d = ctx;
    for (size_t i = 0; i < d->later.nunlinks; i++) {
        if (synced)
            log_info("%s: removed", d->later.unlink_ids[i]);
        else
            log_warnx("%s: sync failed; stays queued (a retry finds it delivered)", d->later.unlink_ids[i]);
    }
    deliver_later_free(&d->later);
}

/* ---- outbound delivery (issue 5): dns = canonify at RCPT, on the relay's resolver -------- */

static void *daemon_domain_check(void *ctx, const char *domain,
                                 void (*done)(void *arg, int verdict, const char *detail), void *arg)
{
    struct daemon *d = ctx;
    return relay_canon_check(d->relay, domain, done, arg);
}

static void daemon_domain_cancel(void *handle)
{
    relay_canon_cancel(handle);
}

/* ETRN (RFC 1985): a flush of one domain's remote recipients ("#queue": of the whole queue). */
static void daemon_on_etrn(const char *domain, void *ctx)
{
    struct daemon *d = ctx;
    if (!domain[0] || domain[0] == '#') { /* "#queue" names no domain: the whole queue */
        daemon_schedule_queue_run(d, true);
        return;
    }
    /* outbound delivery (issue 5): only that domain's remote recipients go now. The queue
     * run first hands every queued message to the relay (after a restart it knows none). */
    daemon_run_queue(d, false);
    relay_run_domain(d->relay, domain);
    /* messages still in the content filter missed this run: run the domain again after */
    if (filter_async_in_flight(&d->filter) == 0)
        return;
    for (size_t i = 0; i < d->netrn_after_scans; i++)
        if (strcasecmp(d->etrn_after_scans[i], domain) == 0)
            return;
    if (d->netrn_after_scans == sizeof d->etrn_after_scans / sizeof d->etrn_after_scans[0]) {
        log_warnx("ETRN %s: too many ETRN domains waiting for scans; it is not run again after them", domain);
        return;
    }
    d->etrn_after_scans[d->netrn_after_scans++] = xstrdup(domain);
}

static void daemon_etrn_after_scans_cb(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    (void)fd;
    (void)what;
    d->etrn_run_scheduled = false;
    size_t n = d->netrn_after_scans;
    d->netrn_after_scans = 0;
    daemon_run_queue(d, false); /* hands the scanned messages to the relay */
    for (size_t i = 0; i < n; i++) {
        relay_run_domain(d->relay, d->etrn_after_scans[i]);
        free(d->etrn_after_scans[i]);
    }
}

static void daemon_queue_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    daemon_run_queue(arg, false);
}

/* fetch (reference/fetch), defined with the rest of the poller's glue below */
static bool daemon_fetch_load(struct daemon *d);
static void daemon_fetch_schedule(struct daemon *d);

/* ---- signals and reload ------------------------------------------------------------------- */

static void daemon_reload(struct daemon *d)
{
    struct zconf fresh;
    struct cfg_error err;
    if (!instance_load_config(d->config_path, &fresh, &err)) {
        log_error("reload refused, keeping the running config: %s", err.text);
        zconf_free(&fresh);
        return;
    }
    struct zmaps *maps = zmaps_load(&fresh, &err);
    if (!maps) {
        log_error("reload refused, keeping the running config: %s", err.text);
        zconf_free(&fresh);
        return;
    }
    struct filter probe; /* content filter: a bad signature file refuses the reload */
    bool filter_ok = filter_init(&probe, &fresh, &d->queue, &err);
    filter_free(&probe);
    if (!filter_ok) {
        log_error("reload refused, keeping the running config: %s", err.text);
        zmaps_free(maps);
        zconf_free(&fresh);
        return;
    }
    if (zmaps_localhost_denied(maps))
        log_error("hosts.allow/hosts.deny refuse 127.0.0.1 for smtpd: local programs (fetch, "
                  "sendmail, cron) cannot hand over mail; add \"smtpd: 127.0.0.1\" to hosts.allow");
    /* Listeners, state_dir and TLS stay as started: they need root or a restart. */
    free(fresh.state_dir);
    fresh.state_dir = xstrdup(d->conf.state_dir);
    zmaps_free(d->maps);
    zconf_free(&d->conf);
    d->conf = fresh;
    d->maps = maps;
    zmaps_set_conf(d->maps, &d->conf); /* loaded from `fresh`, a local that is gone now */
    zmaps_smtpd(d->maps, &d->smtpd_maps);
    auth_service_set_failure_delay(d->auth, (unsigned)d->conf.auth_failure_delay * 1000);
    auth_service_set_cache(d->auth, d->conf.auth_cache_size, d->conf.auth_cache_ttl); /* issue 7 */
    struct deliver_resolver resolver;
    zmaps_resolver(d->maps, &resolver);
    deliver_free(&d->deliver);
    deliver_init(&d->deliver, &d->conf, &d->queue, &resolver);
    relay_reload(d->relay, zmaps_hosts(d->maps));
    filter_free(&d->filter); /* content filter: scans under way are dropped (still queued) */
    if (!filter_init(&d->filter, &d->conf, &d->queue, &err))
        log_error("content filter: %s (only the built-in EICAR signature is loaded)", err.text);
    filter_set_resolver(&d->filter, &resolver); /* the notice names where aliases lead */
    filter_set_launcher(&d->filter, d->filter_launcher); /* filter_user: as started */
    if (strcmp(d->conf.filter_user, d->filter_launcher_user) != 0)
        log_warnx("filter_user changes need a restart: scanner processes still run as %s",
                  d->filter_launcher ? d->filter_launcher_user : "zolderd's user");
    filter_async_start(&d->filter, d->base, d->conf.filter_scanners, daemon_filter_done, d);
    daemon_schedule_queue_run(d, false); /* rescans what was dropped */
    /* fetch: the rc file again (it may be unreadable now that we run unprivileged: then the
     * old one stays), and the schedule */
    if (!daemon_fetch_load(d))
        log_error("fetchmailrc: keeping the copy read before");
    fetch_idle_stop(d->fetch_idle); /* the rc may have changed: the next poll IDLEs anew */
    daemon_fetch_schedule(d);
    if (d->fetch_dns && !d->fetch_run) { /* made again with the new nameserver and hosts */
        relay_dns_free(d->fetch_dns);
        d->fetch_dns = NULL;
    } else if (d->fetch_dns) {
        relay_dns_set_hosts(d->fetch_dns, zmaps_hosts(d->maps));
    }
    log_set_level(daemon_log_level(d->conf.log_level));
    mailstore_compact_setup(d->base, d->conf.mbox_compact_delay); /* mbox expunges (issue 7) */
    log_info("reloaded %s", d->config_path);
}

static void daemon_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    (void)what;
    if (sig == SIGHUP) {
        daemon_reload(d);
    } else if (sig == SIGUSR1) {
        daemon_schedule_queue_run(d, true);
    } else {
        log_info("stopping on signal %d", (int)sig);
        event_base_loopbreak(d->base);
    }
}

/* ---- fetch (reference/fetch): the fetchmail-compatible poller ------------------------------ */

static void daemon_control_write(struct bufferevent *bev, void *arg);

/* Reads the fetchmailrc (fetchmail's permission rule). false with the reason logged. */
static bool daemon_fetch_load(struct daemon *d)
{
    if (!d->conf.fetchmailrc[0]) {
        if (d->fetch_rcdata) { /* the key was removed on reload: nothing to poll any more */
            explicit_bzero(d->fetch_rcdata, d->fetch_rclen);
            free(d->fetch_rcdata);
            d->fetch_rcdata = NULL;
        }
        return true;
    }
    char *data;
    size_t len;
    char error[FETCHRC_ERROR_MAX + 64];
    if (fetch_read_rc(d->conf.fetchmailrc, &data, &len, error, sizeof error) != FETCH_PS_SUCCESS) {
        log_error("fetchmailrc: %s", error);
        return false;
    }
    if (d->fetch_rcdata) {
        explicit_bzero(d->fetch_rcdata, d->fetch_rclen);
        free(d->fetch_rcdata);
    }
    d->fetch_rcdata = data;
    d->fetch_rclen = len;
    return true;
}

static void daemon_fetch_done(void *ctx, const struct fetch_result *r)
{
    struct daemon *d = ctx;
    d->fetch_run = NULL;
    unsigned delivered = 0;
    for (size_t i = 0; i < r->naccounts; i++)
        delivered += r->accounts[i].delivered;
    log_info("fetch: poll done: %zu accounts, %u messages delivered, status %d", r->naccounts,
             delivered, r->status);
    for (size_t i = 0; i < d->fetch_nwaiters; i++) {
        struct bufferevent *bev = d->fetch_waiters[i];
        evbuffer_add_printf(bufferevent_get_output(bev),
                            "ok fetch done: status %d, %zu accounts, %u delivered\n", r->status,
                            r->naccounts, delivered);
        bufferevent_enable(bev, EV_WRITE);
    }
    d->fetch_nwaiters = 0;
}

/* A poll now, unless one is running. false when there is nothing to poll. */
static bool daemon_fetch_start(struct daemon *d)
{
    if (d->fetch_run)
        return true;
    if (!d->fetch_rcdata)
        return false;
    char error[FETCHRC_ERROR_MAX + 64];
    struct fetchrc *rc = fetch_parse_rc(d->conf.fetchmailrc, d->fetch_rcdata, d->fetch_rclen,
                                        error, sizeof error);
    if (!rc) {
        log_error("fetchmailrc: %s", error);
        return false;
    }
    struct fetch_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.hostname = d->conf.hostname;
    cfg.state_dir = d->conf.state_dir;
    struct zconf_listen target;
    if (d->conf.fetch_smtp[0]) {
        zconf_parse_listen(d->conf.fetch_smtp, 25, &target); /* validated with the config */
    } else {
        target = d->conf.listen[0];
        struct sockaddr_in *sin = (struct sockaddr_in *)&target.sa;
        if (target.sa.ss_family == AF_INET && sin->sin_addr.s_addr == htonl(INADDR_ANY))
            sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    memcpy(&cfg.smtp, &target.sa, sizeof cfg.smtp);
    cfg.smtp_len = target.salen;
    cfg.handoff_sessions = (unsigned)d->conf.fetch_smtp_sessions;
    cfg.refused = strcmp(d->conf.fetch_refused, "keep") == 0 ? FETCH_REFUSED_KEEP
                                                             : FETCH_REFUSED_DELETE;
    cfg.invoking_user = d->conf.run_as;
    if (!d->fetch_dns) {
        const char *dns_error = NULL;
        d->fetch_dns = relay_dns_new(d->base, &d->conf, zmaps_hosts(d->maps), &dns_error);
        if (!d->fetch_dns)
            log_warnx("fetch: no resolver (%s): server names go to getaddrinfo", dns_error);
    }
    cfg.dns = d->fetch_dns;
    cfg.daemon = true;
    if (!d->fetch_idle)
        d->fetch_idle = fetch_idle_new(d->base);
    cfg.idle = d->fetch_idle;
    cfg.idle_renew = d->conf.fetch_idle_renew;
    cfg.cycle = d->fetch_cycle++; /* `interval N` entries: every Nth poll (schedule or ctl) */
    log_info("fetch: poll started (%s)", d->conf.fetchmailrc);
    d->fetch_run = fetch_start(d->base, rc, &cfg, daemon_fetch_done, d);
    return d->fetch_run != NULL;
}

static void daemon_fetch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    daemon_fetch_start(arg);
}

static void daemon_fetch_waiter_event(struct bufferevent *bev, short what, void *arg)
{
    struct daemon *d = arg;
    (void)what;
    for (size_t i = 0; i < d->fetch_nwaiters; i++)
        if (d->fetch_waiters[i] == bev)
            d->fetch_waiters[i] = d->fetch_waiters[--d->fetch_nwaiters];
    bufferevent_free(bev);
}

/* `zolderctl fetch`: the reply comes when the poll is done. */
static void daemon_fetch_control(struct daemon *d, struct bufferevent *bev)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    bufferevent_disable(bev, EV_READ);
    if (!d->conf.fetchmailrc[0] || !d->fetch_rcdata) {
        evbuffer_add_printf(out, "error no fetchmailrc configured (or it was refused, see the log)\n");
        bufferevent_enable(bev, EV_WRITE);
        return;
    }
    if (d->fetch_nwaiters == sizeof d->fetch_waiters / sizeof d->fetch_waiters[0] ||
        !daemon_fetch_start(d)) {
        evbuffer_add_printf(out, "error cannot start a poll now (see the log)\n");
        bufferevent_enable(bev, EV_WRITE);
        return;
    }
    d->fetch_waiters[d->fetch_nwaiters++] = bev;
    bufferevent_setcb(bev, NULL, daemon_control_write, daemon_fetch_waiter_event, d);
}

/* Starts the schedule (fetch_interval) when a fetchmailrc is set. */
static void daemon_fetch_schedule(struct daemon *d)
{
    if (d->fetch_timer) {
        event_free(d->fetch_timer);
        d->fetch_timer = NULL;
    }
    if (!d->conf.fetchmailrc[0] || d->conf.fetch_interval == 0)
        return;
    d->fetch_timer = event_new(d->base, -1, EV_PERSIST, daemon_fetch_timer_cb, d);
    event_add(d->fetch_timer, &(struct timeval){(time_t)d->conf.fetch_interval, 0});
}

static void daemon_fetch_stop(struct daemon *d)
{
    bool was_running = d->fetch_run != NULL || fetch_idle_count(d->fetch_idle) > 0;
    fetch_cancel(d->fetch_run); /* what zolder took is recorded; the rest stays on the server */
    d->fetch_run = NULL;
    fetch_idle_free(d->fetch_idle);
    d->fetch_idle = NULL;
    /* The hand-off sessions just closed are our own smtpd's clients: let smtpd see the
     * close and end those sessions before it stops (a few passes of the loop, no waiting). */
    for (int i = 0; was_running && i < 20; i++)
        event_base_loop(d->base, EVLOOP_NONBLOCK);
    for (size_t i = 0; i < d->fetch_nwaiters; i++)
        bufferevent_free(d->fetch_waiters[i]);
    d->fetch_nwaiters = 0;
    if (d->fetch_timer)
        event_free(d->fetch_timer);
    d->fetch_timer = NULL;
    if (d->fetch_dns)
        relay_dns_free(d->fetch_dns);
    d->fetch_dns = NULL;
    if (d->fetch_rcdata) {
        explicit_bzero(d->fetch_rcdata, d->fetch_rclen);
        free(d->fetch_rcdata);
    }
    d->fetch_rcdata = NULL;
}

/* ---- control socket (zolderctl) ----------------------------------------------------------- */

static void daemon_control_read(struct bufferevent *bev, void *arg)
{
    struct daemon *d = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len;
    char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
    if (!line) {
        if (evbuffer_get_length(in) > DAEMON_CONTROL_LINE_MAX)
            bufferevent_free(bev);
        return;
    }
    struct evbuffer *out = bufferevent_get_output(bev);
    if (strcmp(line, "flush") == 0) {
        daemon_run_queue(d, true);
        evbuffer_add_printf(out, "ok queue run done\n");
    } else if (strcmp(line, "reload") == 0) {
        daemon_reload(d);
        evbuffer_add_printf(out, "ok reload requested (see the log)\n");
    } else if (strcmp(line, "ping") == 0) {
        evbuffer_add_printf(out, "ok pong\n");
    } else if (strcmp(line, "fetch") == 0) {
        free(line);
        daemon_fetch_control(d, bev); /* answers when the poll is done */
        return;
    } else {
        evbuffer_add_printf(out, "error unknown command\n");
    }
    free(line);
    bufferevent_disable(bev, EV_READ);
    bufferevent_enable(bev, EV_WRITE);
}

static void daemon_control_write(struct bufferevent *bev, void *arg)
{
    (void)arg;
    bufferevent_free(bev); /* one request, one reply */
}

static void daemon_control_event(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

static void daemon_control_accept(struct evconnlistener *l, evutil_socket_t fd,
                                  struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    struct daemon *d = arg;
    struct bufferevent *bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        close(fd);
        return;
    }
    bufferevent_setcb(bev, daemon_control_read, daemon_control_write, daemon_control_event, d);
    bufferevent_set_timeouts(bev, &(struct timeval){30, 0}, &(struct timeval){30, 0});
    /* Write only once a reply is queued: the write callback closes the connection. */
    bufferevent_enable(bev, EV_READ);
}

static void daemon_open_control(struct daemon *d)
{
    d->control_path = instance_control_path(&d->conf);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (!str_copy(sun.sun_path, sizeof sun.sun_path, d->control_path))
        log_fatalx("control socket path too long: %s", d->control_path);
    unlink(d->control_path);
    mode_t old = umask(0077);
    d->control = evconnlistener_new_bind(d->base, daemon_control_accept, d,
                                         LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
                                         (struct sockaddr *)&sun, sizeof sun);
    umask(old);
    if (!d->control)
        log_fatal("cannot listen on control socket %s", d->control_path);
}

/* ---- main loop ---------------------------------------------------------------------------- */

int daemon_run(const char *path)
{
    struct daemon d;
    struct cfg_error err;
    memset(&d, 0, sizeof d);
    d.config_path = xstrdup(path);
    signal(SIGPIPE, SIG_IGN);
    /* A write over RLIMIT_FSIZE must fail with EFBIG (and be rolled back), not kill us. */
    signal(SIGXFSZ, SIG_IGN);

    if (!instance_load_config(path, &d.conf, &err))
        log_fatalx("%s", err.text);
    log_set_level(daemon_log_level(d.conf.log_level));
    /* content filter: the scanner launcher (filter_user) is forked first, holding nothing */
    d.filter_launcher = daemon_filter_launcher(&d.conf);
    d.filter_launcher_user = xstrdup(d.conf.filter_user);
    d.maps = zmaps_load(&d.conf, &err);
    if (!d.maps)
        log_fatalx("%s", err.text);
    if (zmaps_localhost_denied(d.maps))
        log_error("hosts.allow/hosts.deny refuse 127.0.0.1 for smtpd: local programs (fetch, "
                  "sendmail, cron) cannot hand over mail; add \"smtpd: 127.0.0.1\" to hosts.allow");

    /* Privileged part: ports, key, state folder ownership. */
    int fds[ZCONF_LISTEN_MAX * 2];
    size_t nfds = 0;
    for (size_t i = 0; i < d.conf.nlisten + d.conf.nsubmission; i++) {
        const struct zconf_listen *l = i < d.conf.nlisten ? &d.conf.listen[i]
                                                          : &d.conf.submission[i - d.conf.nlisten];
        int fd = smtpd_bind(l);
        if (fd < 0)
            log_fatal("cannot listen on %s", l->text);
        fds[nfds++] = fd;
    }
    /* POP3 listeners (plain, then implicit TLS), bound here too. */
    int pop3_fds[ZCONF_LISTEN_MAX * 2];
    size_t npop3_fds = 0;
    for (size_t i = 0; i < d.conf.npop3 + d.conf.npop3s; i++) {
        const struct zconf_listen *l = i < d.conf.npop3 ? &d.conf.pop3[i] : &d.conf.pop3s[i - d.conf.npop3];
        int fd = smtpd_bind(l);
        if (fd < 0)
            log_fatal("cannot listen on %s", l->text);
        pop3_fds[npop3_fds++] = fd;
    }
    /* IMAP listeners (plain, then implicit TLS), bound here too. */
    int imap_fds[ZCONF_LISTEN_MAX * 2];
    size_t nimap_fds = 0;
    for (size_t i = 0; i < d.conf.nimap + d.conf.nimaps; i++) {
        const struct zconf_listen *l = i < d.conf.nimap ? &d.conf.imap[i] : &d.conf.imaps[i - d.conf.nimap];
        int fd = smtpd_bind(l);
        if (fd < 0)
            log_fatal("cannot listen on %s", l->text);
        imap_fds[nimap_fds++] = fd;
    }
    SSL_CTX *tls = daemon_tls_context(&d.conf);
    struct relay_auth auth; /* read before privileges go, like the TLS key */
    const char *relay_error = NULL;
    if (relay_auth_load(d.conf.smarthost_auth, &auth, &relay_error) < 0)
        log_fatalx("outbound delivery: %s", relay_error);
    /* fetch: the fetchmailrc holds passwords and may be root's only, like the TLS key */
    if (!daemon_fetch_load(&d))
        log_fatalx("fetchmailrc %s refused", d.conf.fetchmailrc);
    const struct passwd *pw = geteuid() == 0 ? getpwnam(d.conf.run_as) : NULL;
    daemon_prepare_state_dir(&d.conf, pw);
    daemon_drop_privileges(&d.conf, pw);

    d.base = event_base_new();
    if (!d.base)
        log_fatalx("cannot create event base");
    if (queue_open(&d.queue, d.conf.state_dir) < 0)
        log_fatal("cannot open queue under %s", d.conf.state_dir);
    queue_clean_tmp(&d.queue);
    struct deliver_resolver resolver;
    zmaps_resolver(d.maps, &resolver);
    deliver_init(&d.deliver, &d.conf, &d.queue, &resolver);
    d.relay = relay_new(d.base, &d.conf, &d.queue, zmaps_hosts(d.maps), &auth, &relay_error);
    relay_auth_clear(&auth);
    if (!d.relay)
        log_fatalx("outbound delivery: %s", relay_error);

    /* content filter: before the first queue run, which filters what a previous run left */
    if (!filter_init(&d.filter, &d.conf, &d.queue, &err))
        log_fatalx("content filter: %s", err.text);
    filter_set_resolver(&d.filter, &resolver); /* the notice names where aliases lead */
    filter_set_launcher(&d.filter, d.filter_launcher); /* filter_user: its scanner processes */
    filter_async_start(&d.filter, d.base, d.conf.filter_scanners, daemon_filter_done, &d);

    d.retry_timer = evtimer_new(d.base, daemon_queue_timer_cb, &d);
    d.backlog_event = evtimer_new(d.base, daemon_backlog_cb, &d);
    /* outbound delivery (issue 5): the relay's reports to senders (bounces, delay warnings,
     * success DSNs) are queued files delivered like any other message */
    relay_set_queued_hook(d.relay, daemon_on_queued, &d);
    struct stat qst, sst;
    d.spool_on_queue_fs = stat(d.queue.msg_dir, &qst) == 0 && stat(d.deliver.spool_dir, &sst) == 0 &&
                          qst.st_dev == sst.st_dev && strcmp(d.conf.mailbox_format, "mbox") == 0;
    /* Recovery: whatever a previous run promised and did not finish goes out first. */
    daemon_run_queue(&d, false);

    /* the threads start after the privilege drop: they never held root */
    const char *auth_error = NULL;
    d.auth = auth_service_new(d.base, (unsigned)d.conf.auth_failure_delay * 1000, &auth_error);
    if (!d.auth)
        log_fatalx("password checks: %s", auth_error);
    auth_service_set_cache(d.auth, d.conf.auth_cache_size, d.conf.auth_cache_ttl); /* issue 7 */
    zmaps_smtpd(d.maps, &d.smtpd_maps);
    d.smtpd.conf = &d.conf;
    d.smtpd.auth = d.auth;
    d.smtpd.base = d.base;
    d.smtpd.queue = &d.queue;
    d.smtpd.maps = &d.smtpd_maps;
    d.smtpd.tls = tls;
    d.smtpd.on_queued = daemon_on_queued;
    d.smtpd.on_queued_ctx = &d;
    d.smtpd.on_etrn = daemon_on_etrn;
    d.smtpd.on_etrn_ctx = &d;
    d.smtpd.before_round = daemon_before_round;
    d.smtpd.after_round = daemon_after_round;
    d.smtpd.round_ctx = &d;
    /* outbound delivery (issue 5): dns = canonify checks recipient domains at RCPT */
    d.smtpd.domain_check = daemon_domain_check;
    d.smtpd.domain_cancel = daemon_domain_cancel;
    d.smtpd.domain_ctx = &d;
    if (smtpd_start(&d.smtpd, fds, d.conf.nlisten, d.conf.nsubmission) < 0)
        log_fatalx("cannot start SMTP listeners");
    d.pop3d.conf = &d.conf;
    d.pop3d.base = d.base;
    d.pop3d.maps = &d.smtpd_maps;
    d.pop3d.auth = d.auth;
    d.pop3d.tls = tls;
    if (pop3d_start(&d.pop3d, pop3_fds, d.conf.npop3, d.conf.npop3s) < 0)
        log_fatalx("cannot start POP3 listeners");
    /* IMAP service */
    d.imapd.conf = &d.conf;
    d.imapd.base = d.base;
    d.imapd.maps = &d.smtpd_maps;
    d.imapd.auth = d.auth;
    d.imapd.tls = tls;
    if (imapd_start(&d.imapd, imap_fds, d.conf.nimap, d.conf.nimaps) < 0)
        log_fatalx("cannot start IMAP listeners");
    /* mbox expunges: deferred compaction (issue 7, mailstore.h) */
    mailstore_compact_setup(d.base, d.conf.mbox_compact_delay);
    daemon_open_control(&d);

    d.sig_term = evsignal_new(d.base, SIGTERM, daemon_signal_cb, &d);
    d.sig_int = evsignal_new(d.base, SIGINT, daemon_signal_cb, &d);
    d.sig_hup = evsignal_new(d.base, SIGHUP, daemon_signal_cb, &d);
    d.sig_usr1 = evsignal_new(d.base, SIGUSR1, daemon_signal_cb, &d);
    evsignal_add(d.sig_term, NULL);
    evsignal_add(d.sig_int, NULL);
    evsignal_add(d.sig_hup, NULL);
    evsignal_add(d.sig_usr1, NULL);
    d.queue_timer = event_new(d.base, -1, EV_PERSIST, daemon_queue_timer_cb, &d);
    event_add(d.queue_timer, &(struct timeval){(time_t)d.conf.queue_run_interval, 0});
    daemon_fetch_schedule(&d); /* fetch: polls every fetch_interval */

    struct buf where;
    buf_init(&where, 0);
    for (size_t i = 0; i < d.conf.nlisten; i++)
        buf_printf(&where, " smtp=%s", d.conf.listen[i].text);
    for (size_t i = 0; i < d.conf.nsubmission; i++)
        buf_printf(&where, " submission=%s", d.conf.submission[i].text);
    for (size_t i = 0; i < d.conf.npop3; i++)
        buf_printf(&where, " pop3=%s", d.conf.pop3[i].text);
    for (size_t i = 0; i < d.conf.npop3s; i++)
        buf_printf(&where, " pop3s=%s", d.conf.pop3s[i].text);
    for (size_t i = 0; i < d.conf.nimap; i++)
        buf_printf(&where, " imap=%s", d.conf.imap[i].text);
    for (size_t i = 0; i < d.conf.nimaps; i++)
        buf_printf(&where, " imaps=%s", d.conf.imaps[i].text);
    log_info("ready: zolderd %s hostname=%s%s tls=%s state_dir=%s", ZOLDER_VERSION,
             d.conf.hostname, where.data ? where.data : "", tls ? "yes" : "no", d.conf.state_dir);
    buf_free(&where);

    event_base_dispatch(d.base);

    daemon_fetch_stop(&d); /* fetch: before the SMTP side it hands mail to */
    smtpd_stop(&d.smtpd);
    pop3d_stop(&d.pop3d);
    imapd_stop(&d.imapd);
    mailstore_compact_flush(); /* mbox expunges: what waits for its compaction, now */
    auth_service_free(d.auth); /* after the sessions: they cancel their checks */
    evconnlistener_free(d.control);
    unlink(d.control_path);
    free(d.control_path);
    event_free(d.sig_term);
    event_free(d.sig_int);
    event_free(d.sig_hup);
    event_free(d.sig_usr1);
    event_free(d.queue_timer);
    event_free(d.retry_timer);
    daemon_deliver_backlog(&d, NULL); /* deliver what was committed in the last turn */
    event_free(d.backlog_event);
    relay_free(d.relay); /* open sessions end; their recipients stay pending */
    deliver_free(&d.deliver);
    filter_free(&d.filter); /* content filter */
    for (size_t i = 0; i < d.netrn_after_scans; i++)
        free(d.etrn_after_scans[i]);
    launcher_free(d.filter_launcher); /* content filter: filter_user's launcher */
    free(d.filter_launcher_user);
    queue_close(&d.queue);
    event_base_free(d.base);
    if (tls)
        SSL_CTX_free(tls);
    zmaps_free(d.maps);
    zconf_free(&d.conf);
    free(d.config_path);
    log_info("stopped");
    return 0;
}
