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
 *   possible duplicate when the link drops after the final dot: the message stays queued).
 *
 * SECURITY
 *   smarthost_auth must be a file of mode 0600 (no group or other access) holding
 *   user:password; the password lives in memory only and is never logged.
 *
 * CONFIG
 *   smarthost, smarthost_tls, smarthost_auth, tls_ca_file, smtp_bind_address, defer_remote,
 *   retry_min_delay, retry_max_delay, queue_lifetime (and through dns.c / mta.c:
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

#include "log.h"
#include "relay_int.h"
#include "str.h"
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

/* Fails every pending remote recipient of an expired message. */
static void relay_expire(struct relay *relay, struct relay_msg *m)
{
    for (size_t i = 0; i < m->qm.env.nrcpts; i++) {
        struct queue_rcpt *r = &m->qm.env.rcpts[i];
        const char *domain;
        if (r->status != QUEUE_RCPT_PENDING || !relay_is_remote(relay, r->addr, &domain))
            continue;
        if (queue_mark(&m->qm, i, QUEUE_RCPT_FAILED) < 0)
            log_warn("%s: cannot mark a failed recipient", m->id);
        log_info("%s: to=<%s>, relay=none, delay=%.2f, dsn=4.4.7, status=bounced (message expired "
                 "after %lu seconds in the queue)", m->id, r->addr, relay_delay(m),
                 relay->conf->queue_lifetime);
    }
    /* PENDING(issue 5, section 4): the RFC 3464 bounce to the sender is not generated yet. */
    log_warnx("%s: no bounce sent to <%s>: bounce generation is not implemented yet", m->id,
              m->qm.env.sender);
}

/* Loads a due message and turns its pending remote recipients into tasks. */
static void relay_schedule(struct relay *relay, struct relay_msg *m)
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
    if (time(NULL) - m->qm.env.arrival > (time_t)relay->conf->queue_lifetime) {
        relay_expire(relay, m);
        queue_remove_if_done(relay->queue, &m->qm);
        relay_msg_free(relay, m);
        return;
    }
    m->deferred = m->failed = false;
    for (size_t i = 0; i < m->qm.env.nrcpts; i++) {
        struct queue_rcpt *r = &m->qm.env.rcpts[i];
        const char *domain;
        if (r->status != QUEUE_RCPT_PENDING || !relay_is_remote(relay, r->addr, &domain))
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
    if (!m->busy)
        relay_msg_free(relay, m); /* nothing remote pending */
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
        relay_schedule(relay, m);
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

/* All tasks of a message are done: the queue file goes when nothing is pending. */
static void relay_msg_settled(struct relay *relay, struct relay_msg *m)
{
    if (m->failed)
        /* PENDING(issue 5, section 4): the RFC 3464 bounce to the sender is not generated yet. */
        log_warnx("%s: no bounce sent to <%s>: bounce generation is not implemented yet", m->id,
                  m->qm.env.sender);
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
    }
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
        const char *addr = m->qm.env.rcpts[r->idx].addr;
        const char *status = "deferred";
        if (r->state == RELAY_R_SENT) {
            status = "sent";
            if (queue_mark(&m->qm, r->idx, QUEUE_RCPT_DONE) < 0)
                log_warn("%s: to=<%s>: cannot mark as delivered; a later attempt may send it again",
                         m->id, addr);
        } else if (r->state == RELAY_R_FAILED) {
            status = "bounced";
            m->failed = true;
            if (queue_mark(&m->qm, r->idx, QUEUE_RCPT_FAILED) < 0)
                log_warn("%s: to=<%s>: cannot mark as failed", m->id, addr);
        } else {
            m->deferred = true;
            if (!r->reason[0])
                str_copy(r->reason, sizeof r->reason, "delivery not completed");
            if (!r->dsn[0])
                str_copy(r->dsn, sizeof r->dsn, "4.0.0");
        }
        log_info("%s: to=<%s>, relay=%s, delay=%.2f, dsn=%s, status=%s (%s)", m->id, addr,
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
