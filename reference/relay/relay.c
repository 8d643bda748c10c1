/*
 * relay: outbound delivery, the service (see relay.h).
 *
 * DESCRIPTION
 *   Keeps the queued messages that wait for remote delivery, groups their pending remote
 *   recipients by route (the smarthost, or the recipient domain), starts one SMTP session
 *   per route (relay/mta.c) which carries every transaction for that destination, and
 *   writes each recipient's result into the queue file (status byte in place, fdatasync),
 *   with one Postfix-style log line per recipient and attempt.
 *
 * STANDARDS
 *   RFC 5321 4.5.4.1 (retry strategy: doubling delays, give up after days), 4.2.5 (a
 *   possible duplicate when the link drops after the final dot: the message stays queued),
 *   6.1 (a failed recipient is reported to the sender, never to the null sender); RFC 3461
 *   (NOTIFY decides which reports go out, RET how much of the message comes back, and a
 *   success report is due when the next hop does not take the DSN parameters); RFC 3464
 *   (the reports, written by proto/dsn); RFC 3463 (status codes).
 *
 * DURABILITY
 *   A failed recipient's F mark and the bounce that reports it become durable in one step
 *   (queue_commit_marked: the bounce is committed to tmp/ with the list of marks, renamed to
 *   its commit point, then the marks are written and the bounce moves into the queue; after a
 *   crash queue_clean_tmp finishes what passed the commit point and drops what did not), so
 *   the sender gets exactly one bounce, never none and never two. The bounce's queue id is
 *   derived from the parent id, the attempt number and the failed recipients. The retry state
 *   (next attempt, attempts, delay warning sent) is written to the queue file's X line
 *   (fdatasync) after each deferred attempt, so a restart neither retries at once nor warns
 *   twice. A delay warning or success report is committed before its flag or mark; a crash
 *   between the two may send a warning twice, never a bounce.
 * CONFIG
 *   smarthost, smarthost_tls, smarthost_auth, tls_ca_file, smtp_bind_address, defer_remote,
 *   retry_min_delay, retry_max_delay, queue_lifetime, delay_warning_time, bounce_size_limit,
 *   hostname (reports are From MAILER-DAEMON@hostname) (and through dns.c / mta.c:
 *   nameserver, dns, hosts_file, smtp_*_timeout).
 */
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "dsn.h"
#include "log.h"
#include "queue/report.h"
#include "relay_int.h"
#include "str.h"
#include "timefmt.h"
#include "xalloc.h"

/* ---- setup ----------------------------------------------------------------------------- */

int relay_auth_load(const char *path, struct relay_auth *auth, const char **error_r)
{
    memset(auth, 0, sizeof *auth);
    if (!path[0])
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        *error_r = "smarthost_auth: cannot read the file";
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
        close(fd);
        *error_r = "smarthost_auth: the file must be a regular file of mode 0600 (chmod 600)";
        return -1;
    }
    char text[2 * RELAY_CRED_MAX + 4];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) {
        *error_r = "smarthost_auth: empty file";
        return -1;
    }
    text[n] = '\0';
    text[strcspn(text, "\r\n")] = '\0';
    char *colon = strchr(text, ':');
    bool ok = colon && colon != text;
    if (ok) {
        *colon = '\0';
        ok = str_copy(auth->user, sizeof auth->user, text) && str_copy(auth->pass, sizeof auth->pass, colon + 1);
    }
    explicit_bzero(text, sizeof text);
    if (!ok) {
        relay_auth_clear(auth);
        *error_r = "smarthost_auth: expected one line user:password";
        return -1;
    }
    auth->set = true;
    return 0;
}

void relay_auth_clear(struct relay_auth *auth)
{
    explicit_bzero(auth, sizeof *auth);
}

static bool relay_configure(struct relay *relay, const char **error_r)
{
    const struct zconf *conf = relay->conf;
    relay->use_smarthost = conf->smarthost[0] && zconf_parse_smarthost(conf->smarthost, &relay->smarthost);
    relay->have_bind = false;
    relay->family = AF_UNSPEC;
    if (conf->smtp_bind_address[0]) {
        struct netaddr a;
        if (!netaddr_parse(conf->smtp_bind_address, &a)) {
            *error_r = "smtp_bind_address: not an address";
            return false;
        }
        memset(&relay->bind_sa, 0, sizeof relay->bind_sa);
        if (a.family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&relay->bind_sa;
            sin->sin_family = AF_INET;
            memcpy(&sin->sin_addr, a.bytes, 4);
            relay->bind_len = sizeof *sin;
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&relay->bind_sa;
            sin6->sin6_family = AF_INET6;
            memcpy(&sin6->sin6_addr, a.bytes, 16);
            relay->bind_len = sizeof *sin6;
        }
        relay->family = a.family;
        relay->have_bind = true;
    }
    if (strcmp(conf->smarthost_tls, "verify") == 0)
        relay->tls_mode = RELAY_TLS_VERIFY;
    else if (strcmp(conf->smarthost_tls, "encrypt") == 0)
        relay->tls_mode = RELAY_TLS_ENCRYPT;
    else
        relay->tls_mode = RELAY_TLS_MAY;
    relay->have_auth = relay->auth.set;
    if (relay->have_auth && relay->tls_mode == RELAY_TLS_MAY)
        relay->tls_mode = RELAY_TLS_ENCRYPT; /* credentials never travel in clear text */
    if (relay->tls)
        SSL_CTX_free(relay->tls);
    relay->tls = SSL_CTX_new(TLS_client_method());
    if (!relay->tls) {
        *error_r = "tls: cannot create a client context";
        return false;
    }
    SSL_CTX_set_min_proto_version(relay->tls, TLS1_2_VERSION);
    SSL_CTX_set_options(relay->tls, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (relay->tls_mode == RELAY_TLS_VERIFY) {
        if (SSL_CTX_load_verify_locations(relay->tls, conf->tls_ca_file, NULL) != 1) {
            *error_r = "tls_ca_file: cannot load the CA certificates";
            return false;
        }
        SSL_CTX_set_verify(relay->tls, SSL_VERIFY_PEER, NULL);
    }
    return true;
}

static void relay_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    relay_run(arg, false);
}

static void relay_start_sessions(struct relay *relay);
static const struct timeval relay_now = {0, 0};

static void relay_kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    relay_start_sessions(arg);
}

struct relay *relay_new(struct event_base *base, const struct zconf *conf, struct queue *queue,
                        const struct hostsfile *hosts, const struct relay_auth *auth,
                        const char **error_r)
{
    struct relay *relay = xcalloc(1, sizeof *relay);
    if (auth)
        relay->auth = *auth;
    relay->base = base;
    relay->conf = conf;
    relay->queue = queue;
    TAILQ_INIT(&relay->msgs);
    TAILQ_INIT(&relay->routes);
    relay->retry_timer = evtimer_new(base, relay_retry_cb, relay);
    relay->kick = evtimer_new(base, relay_kick_cb, relay);
    if (!relay_configure(relay, error_r) || !(relay->dns = relay_dns_new(base, conf, hosts, error_r))) {
        relay_free(relay);
        return NULL;
    }
    return relay;
}

void relay_set_queued_hook(struct relay *relay, void (*fn)(const char *id, void *ctx), void *ctx)
{
    relay->on_queued = fn;
    relay->on_queued_ctx = ctx;
}

void relay_reload(struct relay *relay, const struct hostsfile *hosts)
{
    const char *error = NULL;
    struct relay_auth fresh;
    if (relay_auth_load(relay->conf->smarthost_auth, &fresh, &error) == 0) {
        relay_auth_clear(&relay->auth);
        relay->auth = fresh;
        relay_auth_clear(&fresh);
    } else {
        log_error("relay: %s; keeping the credentials read at start", error);
    }
    if (!relay_configure(relay, &error))
        log_error("relay: %s; outbound delivery keeps going without it", error);
    relay_dns_set_hosts(relay->dns, hosts);
}

static void relay_msg_free(struct relay *relay, struct relay_msg *m)
{
    TAILQ_REMOVE(&relay->msgs, m, entry);
    report_outcomes_clear(&m->failures);
    report_outcomes_clear(&m->relayed);
    report_outcomes_clear(&m->delays);
    if (m->loaded)
        queue_msg_free(&m->qm);
    free(m);
}

static void relay_task_free(struct relay_task *t)
{
    free(t->rcpts);
    free(t);
}

void relay_free(struct relay *relay)
{
    if (!relay)
        return;
    relay->stopping = true; /* sessions end deferred: no reports, no retry state from here */
    struct relay_route *r;
    while ((r = TAILQ_FIRST(&relay->routes))) {
        if (r->session)
            mta_abort(r->session); /* settles its task as deferred, calls relay_session_ended */
        struct relay_task *t;
        while ((t = TAILQ_FIRST(&r->tasks))) {
            TAILQ_REMOVE(&r->tasks, t, entry);
            relay_task_free(t);
        }
        TAILQ_REMOVE(&relay->routes, r, entry);
        free(r);
    }
    struct relay_msg *m;
    while ((m = TAILQ_FIRST(&relay->msgs)))
        relay_msg_free(relay, m);
    relay_dns_free(relay->dns);
    if (relay->retry_timer)
        event_free(relay->retry_timer);
    if (relay->kick)
        event_free(relay->kick);
    if (relay->tls)
        SSL_CTX_free(relay->tls);
    relay_auth_clear(&relay->auth);
    free(relay);
}

/* ---- messages and routes -------------------------------------------------------------- */

static struct relay_msg *relay_find(struct relay *relay, const char *id)
{
    struct relay_msg *m;
    TAILQ_FOREACH(m, &relay->msgs, entry)
        if (strcmp(m->id, id) == 0)
            return m;
    return NULL;
}

void relay_submit(struct relay *relay, const char *id)
{
    if (relay_find(relay, id) || !queue_id_valid(id))
        return;
    struct relay_msg *m = xcalloc(1, sizeof *m);
    str_copy(m->id, sizeof m->id, id);
    m->next_attempt = 0;
    TAILQ_INSERT_TAIL(&relay->msgs, m, entry);
}

static bool relay_is_remote(const struct relay *relay, const char *addr, const char **domain_r)
{
    const char *at = strrchr(addr, '@');
    if (!at || !at[1] || zconf_is_local_domain(relay->conf, at + 1))
        return false;
    *domain_r = at + 1;
    return true;
}

static struct relay_route *relay_route_get(struct relay *relay, const char *key)
{
    struct relay_route *r;
    TAILQ_FOREACH(r, &relay->routes, entry)
        if (str_eq_nocase(r->key, key))
            return r;
    r = xcalloc(1, sizeof *r);
    str_copy(r->key, sizeof r->key, key);
    str_lower(r->key);
    TAILQ_INIT(&r->tasks);
    TAILQ_INSERT_TAIL(&relay->routes, r, entry);
    return r;
}

struct relay_task *relay_route_next(struct relay_route *route)
{
    struct relay_task *t = TAILQ_FIRST(&route->tasks);
    if (t)
        TAILQ_REMOVE(&route->tasks, t, entry);
    return t;
}

static double relay_delay(const struct relay_msg *m)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double d = (double)(now.tv_sec - m->qm.env.arrival) + (double)now.tv_nsec / 1e9;
    return d < 0 ? 0 : d;
}

/* ---- reports to the sender (reference/queue/report) -------------------------------------- */

static struct report_ctx relay_report_ctx(const struct relay *relay)
{
    return (struct report_ctx){.queue = relay->queue, .conf = relay->conf, .tag = 'b',
                               .on_queued = relay->on_queued, .on_queued_ctx = relay->on_queued_ctx};
}

static int relay_report(struct relay *relay, struct relay_msg *m, enum dsn_kind kind, enum dsn_action action,
                        const struct report_outcomes *o)
{
    struct report_ctx rc = relay_report_ctx(relay);
    return report_queue(&rc, &m->qm, m->attempts, kind, action, o, NULL, 0);
}

/*
 * The failed recipients of this attempt: the bounce first (when one is due), then the F
 * marks, in one step. When the bounce cannot be queued they stay pending and fail again on
 * a retry.
 */
static void relay_settle_failures(struct relay *relay, struct relay_msg *m)
{
    if (!m->failures.n)
        return;
    struct report_ctx rc = relay_report_ctx(relay);
    if (!report_settle_failures(&rc, &m->qm, m->attempts, &m->failures))
        m->deferred = true;
    report_outcomes_clear(&m->failures);
}

/* Fails every pending remote recipient of an expired message (with its bounce). */
static void relay_expire(struct relay *relay, struct relay_msg *m)
{
    char reason[128];
    snprintf(reason, sizeof reason, "message expired after %lu seconds in the queue",
             relay->conf->queue_lifetime);
    for (size_t i = 0; i < m->qm.env.nrcpts; i++) {
        struct queue_rcpt *r = &m->qm.env.rcpts[i];
        const char *domain;
        if (r->status != QUEUE_RCPT_PENDING || !relay_is_remote(relay, r->addr, &domain))
            continue;
        report_outcome_add(&m->failures, i, "4.4.7", reason, NULL);
        log_info("%s: to=<%s>, relay=none, delay=%.2f, dsn=4.4.7, status=bounced (%s)", m->id, r->addr,
                 relay_delay(m), reason);
    }
    relay_settle_failures(relay, m);
}

/*
 * Loads a due message and turns its pending remote recipients into tasks. The retry state
 * in the file wins over what we knew (a restart): not yet due, it waits (unless force).
 */
static bool relay_domain_matches(const char *pattern, const char *domain)
{
    if (pattern[0] != '@')
        return str_eq_nocase(domain, pattern);
    const char *p = pattern + 1; /* "@example.org": the domain and its subdomains (RFC 1985) */
    size_t dl = strlen(domain), pl = strlen(p);
    return str_eq_nocase(domain, p) || (dl > pl && domain[dl - pl - 1] == '.' && str_eq_nocase(domain + dl - pl, p));
}

static void relay_schedule(struct relay *relay, struct relay_msg *m, bool force, const char *only)
{
    const char *error;
    if (m->loaded) {
        queue_msg_free(&m->qm);
        m->loaded = false;
    }
    if (queue_load(relay->queue, m->id, &m->qm, &error) < 0) {
        relay_msg_free(relay, m); /* gone: delivered, deleted by the operator */
        return;
    }
    m->loaded = true;
    if (m->qm.held)
        return;
    m->attempts = m->qm.env.attempts;
    if (time(NULL) - m->qm.env.arrival > (time_t)relay->conf->queue_lifetime) {
        relay_expire(relay, m);
        queue_remove_if_done(relay->queue, &m->qm);
        relay_msg_free(relay, m);
        return;
    }
    if (!force && m->qm.env.next_attempt > time(NULL)) {
        m->next_attempt = m->qm.env.next_attempt;
        queue_msg_free(&m->qm);
        m->loaded = false;
        return;
    }
    m->deferred = m->failed = false;
    for (size_t i = 0; i < m->qm.env.nrcpts; i++) {
        struct queue_rcpt *r = &m->qm.env.rcpts[i];
        const char *domain;
        if (r->status != QUEUE_RCPT_PENDING || !relay_is_remote(relay, r->addr, &domain) ||
            (only && !relay_domain_matches(only, domain)))
            continue;
        struct relay_route *route = relay_route_get(relay, relay->use_smarthost ? "" : domain);
        struct relay_task *t = TAILQ_LAST(&route->tasks, relay_task_list);
        if (!t || t->msg != m) {
            t = xcalloc(1, sizeof *t);
            t->msg = m;
            TAILQ_INSERT_TAIL(&route->tasks, t, entry);
            m->busy++;
        }
        t->rcpts = xreallocarray(t->rcpts, t->nrcpts + 1, sizeof *t->rcpts);
        memset(&t->rcpts[t->nrcpts], 0, sizeof t->rcpts[0]);
        t->rcpts[t->nrcpts++].idx = i;
    }
    if (!m->busy && only) { /* other domains wait for their own run */
        queue_msg_free(&m->qm);
        m->loaded = false;
    } else if (!m->busy) {
        relay_msg_free(relay, m); /* nothing remote pending */
    }
}

static void relay_arm_retry(struct relay *relay)
{
    if (relay->conf->defer_remote)
        return; /* only a flush sends */
    time_t now = time(NULL), next = 0;
    struct relay_msg *m;
    TAILQ_FOREACH(m, &relay->msgs, entry)
        if (!m->busy && m->next_attempt && (!next || m->next_attempt < next))
            next = m->next_attempt;
    if (!next)
        return;
    struct timeval tv = {next > now ? next - now : 0, 0};
    evtimer_add(relay->retry_timer, &tv);
}

void relay_run(struct relay *relay, bool force)
{
    time_t now = time(NULL);
    if (!force && relay->conf->defer_remote)
        return;
    struct relay_msg *m, *next;
    for (m = TAILQ_FIRST(&relay->msgs); m; m = next) {
        next = TAILQ_NEXT(m, entry);
        if (m->busy || (!force && m->next_attempt > now))
            continue;
        relay_schedule(relay, m, force, NULL);
    }
    relay_start_sessions(relay);
    relay_arm_retry(relay);
}

void relay_run_domain(struct relay *relay, const char *pattern)
{
    struct relay_msg *m, *next;
    for (m = TAILQ_FIRST(&relay->msgs); m; m = next) {
        next = TAILQ_NEXT(m, entry);
        if (!m->busy)
            relay_schedule(relay, m, true, pattern);
    }
    relay_start_sessions(relay);
    relay_arm_retry(relay);
}

static void relay_start_sessions(struct relay *relay)
{
    struct relay_route *r;
    TAILQ_FOREACH(r, &relay->routes, entry) {
        if (r->session || TAILQ_EMPTY(&r->tasks) || relay->nsessions >= RELAY_SESSIONS_MAX)
            continue;
        relay->nsessions++;
        mta_start(relay, r);
    }
}

/* ---- results ----------------------------------------------------------------------------- */

void relay_task_settle(struct relay_task *task, enum relay_rcpt_state state, const char *dsn,
                       const char *reason)
{
    for (size_t i = 0; i < task->nrcpts; i++) {
        struct relay_task_rcpt *r = &task->rcpts[i];
        if (r->state != RELAY_R_WAIT && r->state != RELAY_R_ACCEPTED)
            continue;
        r->state = state;
        str_copy(r->dsn, sizeof r->dsn, dsn);
        if (!str_copy(r->reason, sizeof r->reason, reason)) {
            memcpy(r->reason, reason, sizeof r->reason - 4);
            memcpy(r->reason + sizeof r->reason - 4, "...", 4);
        }
    }
}

/* After a deferred attempt: the one delay warning, when it is time and someone wants it. */
static bool relay_maybe_warn(struct relay *relay, struct relay_msg *m)
{
    const struct queue_envelope *env = &m->qm.env;
    if (env->warned || !relay->conf->delay_warning_time || !env->sender[0] ||
        time(NULL) - env->arrival < (time_t)relay->conf->delay_warning_time)
        return env->warned;
    struct report_outcomes due = {0};
    for (size_t i = 0; i < m->delays.n; i++) {
        const struct report_outcome *x = &m->delays.v[i];
        const struct queue_rcpt *q = &env->rcpts[x->idx];
        if (q->status == QUEUE_RCPT_PENDING && report_notify_wants(q->notify, "DELAY")) {
            due.v = xreallocarray(due.v, due.n + 1, sizeof *due.v);
            due.v[due.n++] = *x;
        }
    }
    /* Nobody asked: counts as warned, so the question is not asked at every retry. */
    bool warned = !due.n || relay_report(relay, m, DSN_KIND_DELAY, DSN_ACTION_DELAYED, &due) == 0;
    report_outcomes_clear(&due);
    return warned;
}

/* All tasks of a message are done: reports, then the queue file goes when nothing is pending. */
static void relay_msg_settled(struct relay *relay, struct relay_msg *m)
{
    if (relay->stopping) {
        report_outcomes_clear(&m->failures); /* none: sessions end deferred when stopping */
        report_outcomes_clear(&m->relayed);
        report_outcomes_clear(&m->delays);
        return;
    }
    relay_settle_failures(relay, m);
    if (m->relayed.n) {
        relay_report(relay, m, DSN_KIND_SUCCESS, DSN_ACTION_RELAYED, &m->relayed);
        report_outcomes_clear(&m->relayed);
    }
    /* Reload: local delivery may have marked recipients since we loaded the file. */
    const char *error;
    queue_msg_free(&m->qm);
    m->loaded = false;
    if (queue_load(relay->queue, m->id, &m->qm, &error) < 0) {
        relay_msg_free(relay, m);
        return;
    }
    m->loaded = true;
    if (queue_remove_if_done(relay->queue, &m->qm) == 1) {
        log_info("%s: removed", m->id);
        relay_msg_free(relay, m);
        return;
    }
    if (m->deferred) {
        m->attempts++;
        unsigned long delay = relay->conf->retry_min_delay;
        for (unsigned i = 1; i < m->attempts && delay < relay->conf->retry_max_delay; i++)
            delay *= 2;
        if (delay > relay->conf->retry_max_delay)
            delay = relay->conf->retry_max_delay;
        m->next_attempt = time(NULL) + (time_t)delay;
        bool warned = relay_maybe_warn(relay, m);
        /* the reasons ride on the retry state's fdatasync (mailq shows them) */
        for (size_t i = 0; i < m->delays.n; i++)
            if (queue_set_reason(&m->qm, m->delays.v[i].idx, m->delays.v[i].reason, false) < 0)
                log_warn("%s: cannot write the deferral reason", m->id);
        if (queue_set_retry(&m->qm, m->next_attempt, m->attempts, warned) < 0)
            log_warn("%s: cannot write the retry state (a restart retries at once)", m->id);
        log_debug("%s: attempt %u deferred; next in %lu seconds", m->id, m->attempts, delay);
    }
    report_outcomes_clear(&m->delays);
    queue_msg_free(&m->qm);
    m->loaded = false;
    if (!m->deferred)
        relay_msg_free(relay, m); /* only local recipients left: not ours */
}

void relay_task_done(struct relay *relay, struct relay_task *task, const char *relay_name)
{
    struct relay_msg *m = task->msg;
    for (size_t i = 0; i < task->nrcpts; i++) {
        struct relay_task_rcpt *r = &task->rcpts[i];
        const struct queue_rcpt *q = &m->qm.env.rcpts[r->idx];
        const char *status = "deferred";
        if (r->state == RELAY_R_SENT) {
            status = "sent";
            if (queue_mark(&m->qm, r->idx, QUEUE_RCPT_DONE) < 0)
                log_warn("%s: to=<%s>: cannot mark as delivered; a later attempt may send it again",
                         m->id, q->addr);
            /* RFC 3461 5.2.2.2: a next hop without DSN: we report "relayed" if asked to */
            if (!task->next_hop_dsn && m->qm.env.sender[0] && report_notify_wants(q->notify, "SUCCESS") &&
                q->notify[0])
                report_outcome_add(&m->relayed, r->idx, r->dsn[0] ? r->dsn : "2.0.0", r->reason, relay_name);
        } else if (r->state == RELAY_R_FAILED) {
            status = "bounced";
            m->failed = true;
            report_outcome_add(&m->failures, r->idx, r->dsn[0] ? r->dsn : "5.0.0", r->reason, relay_name);
        } else {
            m->deferred = true;
            if (!r->reason[0])
                str_copy(r->reason, sizeof r->reason, "delivery not completed");
            if (!r->dsn[0])
                str_copy(r->dsn, sizeof r->dsn, "4.0.0");
            report_outcome_add(&m->delays, r->idx, r->dsn, r->reason, relay_name);
        }
        log_info("%s: to=<%s>, relay=%s, delay=%.2f, dsn=%s, status=%s (%s)", m->id, q->addr,
                 relay_name, relay_delay(m), r->dsn[0] ? r->dsn : "2.0.0", status, r->reason);
    }
    relay_task_free(task);
    if (--m->busy == 0)
        relay_msg_settled(relay, m);
}

void relay_session_ended(struct relay *relay, struct relay_route *route)
{
    route->session = NULL;
    relay->nsessions--;
    /* More work may have arrived for this route (or waited for a free session). */
    if (!TAILQ_EMPTY(&route->tasks))
        evtimer_add(relay->kick, &relay_now);
    relay_arm_retry(relay);
}
