/*
 * mta: one outbound SMTP client session (OpenSMTPD's mta_session shape): resolve the
 * route's hosts, connect, then enter_state() sends the command of each state and
 * on_reply() decides the next state from the reply. One session carries every waiting
 * transaction of its route, then QUIT.
 *
 * STANDARDS
 *   RFC 5321 3.3 (transactions), 4.1.1 (commands), 4.2 (replies), 4.5.2 (dot-stuffing),
 *   4.5.3.2 (timeouts), 5.1 (MX, implicit MX, next host on failure); RFC 2920 (PIPELINING:
 *   MAIL and every RCPT in one group, DATA only after their replies); RFC 1870 (SIZE);
 *   RFC 6152 (8BITMIME); RFC 3461 (RET, ENVID, NOTIFY, ORCPT when the server offers DSN);
 *   RFC 3207 (STARTTLS; bytes received before the handshake are discarded); RFC 4954 and
 *   RFC 4616 (AUTH PLAIN), AUTH LOGIN (draft-murchison-sasl-login), only over TLS;
 *   RFC 8314 (implicit TLS on 465).
 *
 * SECURITY
 *   Every reply comes from the network: the parser (proto/smtp_reply) bounds line length,
 *   line count and text, and replaces bytes that could forge log lines. The session never
 *   continues in clear text when TLS is required (smarthost_tls = encrypt|verify, or
 *   credentials set) and never sends credentials without TLS.
 *
 * CONFIG
 *   smtp_connect_timeout, the RFC 5321 4.5.3.2 timeouts per command (smtp_helo_timeout for
 *   the 220 greeting and EHLO/HELO, smtp_mail_timeout, smtp_rcpt_timeout,
 *   smtp_data_init_timeout for the 354, smtp_data_xfer_timeout for each block of the message
 *   to leave, smtp_data_timeout for the reply to the final dot, smtp_reply_timeout for the
 *   other commands: STARTTLS, AUTH, RSET, QUIT), smtp_bind_address,
 *   smarthost*, hostname (EHLO).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "relay_int.h"
#include "smtp_cmd.h"
#include "smtp_data.h"
#include "smtp_reply.h"
#include "str.h"
#include "xalloc.h"

enum mta_state {
    MTA_S_MX,           /* waiting for the MX lookup */
    MTA_S_ADDR,         /* waiting for the address lookup of the current host */
    MTA_S_CONNECT,
    MTA_S_TLS,          /* TLS handshake (implicit or after STARTTLS) */
    MTA_S_BANNER,
    MTA_S_EHLO,
    MTA_S_HELO,
    MTA_S_STARTTLS,
    MTA_S_AUTH_PLAIN,
    MTA_S_AUTH_LOGIN,
    MTA_S_AUTH_USER,
    MTA_S_AUTH_PASS,
    MTA_S_READY,        /* between transactions: pick the next task or QUIT */
    MTA_S_MAIL,
    MTA_S_RCPT,
    MTA_S_DATA,
    MTA_S_BODY,
    MTA_S_RSET,
    MTA_S_QUIT,
};

static const char *const mta_state_names[] = {
    "MX", "ADDR", "CONNECT", "TLS", "BANNER", "EHLO", "HELO", "STARTTLS", "AUTH", "AUTH",
    "AUTH", "AUTH", "READY", "MAIL", "RCPT", "DATA", "BODY", "RSET", "QUIT",
};

struct mta_session {
    struct relay *relay;
    struct relay_route *route;
    unsigned long long id;
    enum mta_state state;
    /* where to go */
    struct relay_mx hosts[RELAY_DNS_MAX];
    size_t nhosts, ihost;
    unsigned port;
    bool implicit_tls;
    struct netaddr addrs[RELAY_DNS_MAX];
    size_t naddrs, iaddr;
    struct relay_dns_req *dnsreq;
    bool permanent;          /* the destination cannot exist (NXDOMAIN, null MX) */
    char relay_name[RELAY_DNS_NAME_MAX + NETADDR_STRLEN + 16]; /* host[ip]:port, for logs */
    char last_error[RELAY_REASON_MAX];
    char last_dsn[12];
    /* the connection */
    struct bufferevent *bev;
    bool tls_on;
    struct smtp_reply_parser parser;
    struct smtp_ehlo ehlo;
    bool greeted;            /* the server's greeting came (implicit TLS: over TLS) */
    bool transacted;         /* a transaction began: failures no longer move to the next host */
    bool in_read;            /* inside mta_read_cb: mta_end leaves the free to it */
    bool dead;
    /* the current transaction */
    struct relay_task *task;
    size_t rcpt_next;        /* next RCPT reply expected (index into task->rcpts) */
    size_t accepted;
    bool mail_failed;
    bool body_sent;          /* the whole message and the final dot left (write buffer drained) */
    char mail_dsn[12];
    char mail_reason[RELAY_REASON_MAX];
    /* recipients a host answered 4xx, to try at the next MX host of this route (RFC 5321 5.1) */
    struct relay_task_list next_host;
};

static unsigned long long mta_next_id = 1;

static void mta_enter_state(struct mta_session *s, enum mta_state st);
static void mta_next_host(struct mta_session *s);
static void mta_connect_next(struct mta_session *s);

/* ---- ending ------------------------------------------------------------------------------ */

static void mta_close_connection(struct mta_session *s)
{
    if (s->bev) {
        bufferevent_free(s->bev);
        s->bev = NULL;
    }
    s->tls_on = false;
    smtp_reply_parser_init(&s->parser);
}

/*
 * Ends the session: the current task gets reason; with settle_waiting, so does every task
 * still waiting for this route (they retry after the backoff, not in a tight loop).
 */
static void mta_end(struct mta_session *s, bool permanent, bool settle_waiting, const char *dsn,
                    const char *reason)
{
    struct relay *relay = s->relay;
    const char *name = s->relay_name[0] ? s->relay_name : "none";
    enum relay_rcpt_state st = permanent ? RELAY_R_FAILED : RELAY_R_DEFERRED;
    mta_close_connection(s);
    relay_dns_cancel(s->dnsreq);
    s->dnsreq = NULL;
    if (s->task) {
        relay_task_settle(s->task, st, dsn, reason);
        relay_task_done(relay, s->task, name);
        s->task = NULL;
    }
    struct relay_task *t;
    while ((t = TAILQ_FIRST(&s->next_host))) {
        TAILQ_REMOVE(&s->next_host, t, entry);
        relay_task_settle(t, st, dsn, reason);
        relay_task_done(relay, t, name);
    }
    if (settle_waiting) {
        while ((t = relay_route_next(s->route))) {
            relay_task_settle(t, st, dsn, reason);
            relay_task_done(relay, t, name);
        }
    }
    log_debug("mta %llx: session ends: %s", s->id, reason);
    struct relay_route *route = s->route;
    s->dead = true;
    if (!s->in_read)
        free(s);
    relay_session_ended(relay, route);
}

void mta_abort(struct mta_session *s)
{
    mta_end(s, false, false, "4.4.2", "zolderd is stopping");
}

/*
 * The connection failed (or the server refused us) before or between transactions. Before
 * any transaction: the next address, then the next MX host (RFC 5321 5.1). After one: the
 * session ends and what waits is deferred.
 */
static void mta_fail(struct mta_session *s, const char *dsn, const char *fmt, ...) LOG_PRINTF(3, 4);
static void mta_fail(struct mta_session *s, const char *dsn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->last_error, sizeof s->last_error, fmt, ap);
    va_end(ap);
    str_copy(s->last_dsn, sizeof s->last_dsn, dsn);
    log_info("mta %llx: %s: %s", s->id, s->relay_name[0] ? s->relay_name : s->route->key, s->last_error);
    mta_close_connection(s);
    if (s->transacted) {
        mta_end(s, false, true, dsn, s->last_error);
        return;
    }
    mta_connect_next(s);
}

/* ---- sending ------------------------------------------------------------------------------ */

static void mta_send(struct mta_session *s, const char *fmt, ...) LOG_PRINTF(2, 3);
static void mta_send(struct mta_session *s, const char *fmt, ...)
{
    va_list ap;
    struct evbuffer *out = bufferevent_get_output(s->bev);
    va_start(ap, fmt);
    evbuffer_add_vprintf(out, fmt, ap);
    va_end(ap);
    evbuffer_add(out, "\r\n", 2);
}

static void mta_send_rcpt(struct mta_session *s, size_t i)
{
    const struct queue_rcpt *r = &s->task->msg->qm.env.rcpts[s->task->rcpts[i].idx];
    struct buf line;
    buf_init(&line, SMTP_LINE_MAX);
    buf_printf(&line, "RCPT TO:<%s>", r->addr);
    if (s->ehlo.ext & SMTP_EXT_DSN) {
        if (r->notify[0])
            buf_printf(&line, " NOTIFY=%s", r->notify);
        if (r->orcpt[0]) {
            buf_append_str(&line, " ORCPT=");
            if (!strchr(r->orcpt, ';'))
                buf_append_str(&line, "rfc822;");
            smtp_xtext_encode(r->orcpt, &line);
        }
    }
    mta_send(s, "%s", line.data ? line.data : "");
    buf_free(&line);
}

static bool mta_auth_encode(const char *text, size_t len, char *out, size_t outsize)
{
    if ((len + 2) / 3 * 4 + 1 > outsize)
        return false;
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)text, (int)len);
    return true;
}

/* Sends MAIL (and with PIPELINING every RCPT) for the next task, or QUIT. */
static void mta_start_task(struct mta_session *s)
{
    s->task = relay_route_next(s->route);
    if (!s->task) {
        mta_enter_state(s, MTA_S_QUIT);
        return;
    }
    s->transacted = true;
    s->rcpt_next = 0;
    s->accepted = 0;
    s->mail_failed = false;
    mta_enter_state(s, MTA_S_MAIL);
}

/* Does the queued message hold any byte above 127? (Read only for an 8BITMIME message.) */
static bool mta_has_8bit(const struct relay_msg *m)
{
    struct buf data;
    buf_init(&data, 0);
    bool eight = false;
    if (queue_read_data(&m->qm, &data) < 0)
        eight = true; /* cannot tell: do not risk sending 8-bit to a 7-bit server */
    for (size_t i = 0; !eight && i < data.len; i++)
        eight = ((unsigned char)data.data[i] & 0x80) != 0;
    buf_free(&data);
    return eight;
}

static void mta_task_finished(struct mta_session *s, bool rset);

/* RFC 5321 4.5.3.2: how long to wait for the reply in state st (seconds). */
static unsigned long mta_reply_timeout(const struct zconf *conf, enum mta_state st)
{
    switch (st) {
    case MTA_S_BANNER:
    case MTA_S_EHLO:
    case MTA_S_HELO: return conf->smtp_helo_timeout;        /* 4.5.3.2.1 initial 220: 5 min */
    case MTA_S_MAIL: return conf->smtp_mail_timeout;        /* 4.5.3.2.2: 5 min */
    case MTA_S_RCPT: return conf->smtp_rcpt_timeout;        /* 4.5.3.2.3: 5 min */
    case MTA_S_DATA: return conf->smtp_data_init_timeout;   /* 4.5.3.2.4: 2 min */
    case MTA_S_BODY: return conf->smtp_data_timeout;        /* 4.5.3.2.6 final dot: 10 min */
    default: return conf->smtp_reply_timeout;
    }
}

static void mta_set_reply_timeout(struct mta_session *s, enum mta_state st)
{
    struct timeval to = {(time_t)mta_reply_timeout(s->relay->conf, st), 0};
    bufferevent_set_timeouts(s->bev, &to, &to);
}

/*
 * While the message goes (4.5.3.2.5), each block must leave within smtp_data_xfer_timeout
 * (the write timeout: no progress for that long ends it) and the server owes no reply; once
 * the final dot is out, the reply to it has smtp_data_timeout (4.5.3.2.6).
 */
static void mta_write_cb(struct bufferevent *bev, void *arg)
{
    struct mta_session *s = arg;
    if (s->state == MTA_S_BODY && !s->body_sent && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        s->body_sent = true;
        struct timeval done = {(time_t)s->relay->conf->smtp_data_timeout, 0};
        bufferevent_set_timeouts(bev, &done, NULL);
    }
}

static void mta_enter_state(struct mta_session *s, enum mta_state st)
{
    struct relay *relay = s->relay;
    const struct zconf *conf = relay->conf;
    log_debug("mta %llx: %s -> %s", s->id, mta_state_names[s->state], mta_state_names[st]);
    s->state = st;
    if (s->bev && st != MTA_S_TLS)
        mta_set_reply_timeout(s, st);
    switch (st) {
    case MTA_S_EHLO:
        mta_send(s, "EHLO %s", conf->hostname);
        break;
    case MTA_S_HELO:
        mta_send(s, "HELO %s", conf->hostname);
        break;
    case MTA_S_STARTTLS:
        mta_send(s, "STARTTLS");
        break;
    case MTA_S_AUTH_PLAIN: {
        char raw[2 * RELAY_CRED_MAX + 2], enc[(2 * RELAY_CRED_MAX + 4) / 3 * 4 + 8];
        size_t ul = strlen(relay->auth.user), pl = strlen(relay->auth.pass);
        raw[0] = '\0';
        memcpy(raw + 1, relay->auth.user, ul);
        raw[1 + ul] = '\0';
        memcpy(raw + 2 + ul, relay->auth.pass, pl);
        mta_auth_encode(raw, 2 + ul + pl, enc, sizeof enc);
        mta_send(s, "AUTH PLAIN %s", enc);
        explicit_bzero(raw, sizeof raw);
        explicit_bzero(enc, sizeof enc);
        break;
    }
    case MTA_S_AUTH_LOGIN:
        mta_send(s, "AUTH LOGIN");
        break;
    case MTA_S_AUTH_USER:
    case MTA_S_AUTH_PASS: {
        const char *v = st == MTA_S_AUTH_USER ? relay->auth.user : relay->auth.pass;
        char enc[(RELAY_CRED_MAX + 2) / 3 * 4 + 8];
        mta_auth_encode(v, strlen(v), enc, sizeof enc);
        mta_send(s, "%s", enc);
        explicit_bzero(enc, sizeof enc);
        break;
    }
    case MTA_S_READY:
        mta_start_task(s);
        break;
    case MTA_S_MAIL: {
        const struct queue_envelope *env = &s->task->msg->qm.env;
        if (strcmp(env->body, "8BITMIME") == 0 && !(s->ehlo.ext & SMTP_EXT_8BITMIME) &&
            mta_has_8bit(s->task->msg)) {
            /* RFC 6152 3: downgrade or return it; zolder returns it (docs/outbound.md). */
            relay_task_settle(s->task, RELAY_R_FAILED, "5.6.3",
                              "message has 8-bit content and the server does not offer 8BITMIME "
                              "(RFC 6152: returned, not converted)");
            mta_task_finished(s, false);
            return;
        }
        s->task->next_hop_dsn = (s->ehlo.ext & SMTP_EXT_DSN) != 0;
        struct buf line;
        buf_init(&line, SMTP_LINE_MAX);
        buf_printf(&line, "MAIL FROM:<%s>", env->sender);
        if (s->ehlo.ext & SMTP_EXT_SIZE)
            buf_printf(&line, " SIZE=%zu", s->task->msg->qm.size);
        if ((s->ehlo.ext & SMTP_EXT_8BITMIME) && strcmp(env->body, "8BITMIME") == 0)
            buf_append_str(&line, " BODY=8BITMIME");
        if (s->ehlo.ext & SMTP_EXT_DSN) {
            if (env->ret[0])
                buf_printf(&line, " RET=%s", env->ret);
            if (env->envid[0]) {
                buf_append_str(&line, " ENVID=");
                smtp_xtext_encode(env->envid, &line);
            }
        }
        mta_send(s, "%s", line.data ? line.data : "");
        buf_free(&line);
        if (s->ehlo.ext & SMTP_EXT_PIPELINING) /* RFC 2920: MAIL and the RCPTs in one group */
            for (size_t i = 0; i < s->task->nrcpts; i++)
                mta_send_rcpt(s, i);
        break;
    }
    case MTA_S_RCPT:
        if (!(s->ehlo.ext & SMTP_EXT_PIPELINING))
            mta_send_rcpt(s, s->rcpt_next);
        break;
    case MTA_S_DATA:
        mta_send(s, "DATA");
        break;
    case MTA_S_BODY: {
        struct buf data, stuffed;
        buf_init(&data, 0);
        buf_init(&stuffed, 0);
        if (queue_read_data(&s->task->msg->qm, &data) < 0) {
            buf_free(&data);
            /* The server waits for data; we cannot give it: drop the connection, not a message. */
            mta_fail(s, "4.3.0", "cannot read the queue file");
            return;
        }
        smtp_data_stuff(data.data ? data.data : "", data.len, &stuffed);
        evbuffer_add(bufferevent_get_output(s->bev), stuffed.data, stuffed.len);
        buf_free(&data);
        buf_free(&stuffed);
        struct timeval xfer = {(time_t)conf->smtp_data_xfer_timeout, 0};
        s->body_sent = false;
        bufferevent_set_timeouts(s->bev, NULL, &xfer);
        break;
    }
    case MTA_S_RSET:
        mta_send(s, "RSET");
        break;
    case MTA_S_QUIT:
        mta_send(s, "QUIT");
        break;
    default:
        break;
    }
}

/* ---- replies ----------------------------------------------------------------------------- */

static void mta_reply_text(const struct smtp_reply *r, char *out, size_t outsize, char dsn[12])
{
    struct buf b;
    buf_init(&b, 0);
    smtp_reply_format(r, &b);
    if (!str_copy(out, outsize, b.data)) {
        memcpy(out, b.data, outsize - 4);
        memcpy(out + outsize - 4, "...", 4);
    }
    buf_free(&b);
    if (r->enhanced[0])
        str_copy(dsn, 12, r->enhanced);
    else
        snprintf(dsn, 12, "%c.0.0", (char)('0' + r->code / 100));
}

/*
 * RFC 5321 5.1: recipients this MX host answered with 4xx go to the next MX host of the
 * route in the same attempt (after this session's QUIT), as a task of their own; their 4xx
 * here is still logged as this host's answer.
 */
static void mta_keep_for_next_host(struct mta_session *s, const struct relay_task *task)
{
    if (s->relay->use_smarthost || s->ihost + 1 >= s->nhosts)
        return;
    struct relay_task *t = NULL;
    for (size_t i = 0; i < task->nrcpts; i++) {
        const struct relay_task_rcpt *r = &task->rcpts[i];
        if (r->state != RELAY_R_DEFERRED || r->dsn[0] != '4')
            continue;
        if (!t) {
            t = xcalloc(1, sizeof *t);
            t->msg = task->msg;
            t->msg->busy++;
            TAILQ_INSERT_TAIL(&s->next_host, t, entry);
        }
        t->rcpts = xreallocarray(t->rcpts, t->nrcpts + 1, sizeof *t->rcpts);
        memset(&t->rcpts[t->nrcpts], 0, sizeof t->rcpts[0]);
        t->rcpts[t->nrcpts++].idx = r->idx;
    }
}

/* The transaction is over (final dot answered, or nothing to send): results, next one. */
static void mta_task_finished(struct mta_session *s, bool rset)
{
    mta_keep_for_next_host(s, s->task);
    relay_task_done(s->relay, s->task, s->relay_name);
    s->task = NULL;
    mta_enter_state(s, rset ? MTA_S_RSET : MTA_S_READY);
}

static bool mta_tls_required(const struct mta_session *s)
{
    return s->relay->use_smarthost && s->relay->tls_mode != RELAY_TLS_MAY;
}

static void mta_start_tls(struct mta_session *s);

/* After EHLO/HELO (and after TLS): STARTTLS, AUTH, or the first transaction. */
static void mta_after_greeting(struct mta_session *s)
{
    struct relay *relay = s->relay;
    if (!s->tls_on && relay->use_smarthost) {
        if (s->ehlo.ext & SMTP_EXT_STARTTLS) {
            mta_enter_state(s, MTA_S_STARTTLS);
            return;
        }
        if (mta_tls_required(s)) {
            mta_fail(s, "4.7.4", "TLS is required (smarthost_tls = %s%s) but the server does not offer STARTTLS",
                     relay->conf->smarthost_tls, relay->have_auth ? ", credentials set" : "");
            return;
        }
    }
    if (relay->use_smarthost && relay->have_auth) {
        if (!s->tls_on) {
            mta_fail(s, "4.7.4", "credentials are never sent without TLS");
            return;
        }
        if (s->ehlo.auth & SMTP_AUTH_PLAIN) {
            mta_enter_state(s, MTA_S_AUTH_PLAIN);
            return;
        }
        if (s->ehlo.auth & SMTP_AUTH_LOGIN) {
            mta_enter_state(s, MTA_S_AUTH_LOGIN);
            return;
        }
        log_info("mta %llx: %s: smarthost_auth is set but the server offers neither AUTH PLAIN nor LOGIN",
                 s->id, s->relay_name);
    }
    mta_enter_state(s, MTA_S_READY);
}

/* Records the RCPT reply for the next recipient; returns true when all are answered. */
static bool mta_rcpt_reply(struct mta_session *s, const struct smtp_reply *r)
{
    struct relay_task_rcpt *rc = &s->task->rcpts[s->rcpt_next++];
    if (s->mail_failed) {
        rc->state = s->mail_dsn[0] == '5' ? RELAY_R_FAILED : RELAY_R_DEFERRED;
        str_copy(rc->dsn, sizeof rc->dsn, s->mail_dsn);
        str_copy(rc->reason, sizeof rc->reason, s->mail_reason);
    } else {
        mta_reply_text(r, rc->reason, sizeof rc->reason, rc->dsn);
        switch (smtp_reply_class(r)) {
        case 2:
            rc->state = RELAY_R_ACCEPTED;
            s->accepted++;
            break;
        case 5:
            rc->state = RELAY_R_FAILED;
            break;
        default:
            rc->state = RELAY_R_DEFERRED;
        }
    }
    return s->rcpt_next == s->task->nrcpts;
}

/*
 * This host's session is over. Recipients it deferred with 4xx go to the next MX host now
 * (their tasks first in the route's list); without any, the session ends.
 */
static void mta_quit_done(struct mta_session *s)
{
    if (TAILQ_EMPTY(&s->next_host)) {
        mta_end(s, false, false, "2.0.0", "done");
        return;
    }
    struct relay_task *t;
    while ((t = TAILQ_LAST(&s->next_host, relay_task_list))) {
        TAILQ_REMOVE(&s->next_host, t, entry);
        TAILQ_INSERT_HEAD(&s->route->tasks, t, entry);
    }
    mta_close_connection(s);
    s->transacted = false;
    log_info("mta %llx: %s: trying the next MX host for the recipients deferred here", s->id, s->relay_name);
    s->ihost++;
    mta_next_host(s);
}

static void mta_on_reply(struct mta_session *s, const struct smtp_reply *r)
{
    char text[RELAY_REASON_MAX], dsn[12];
    mta_reply_text(r, text, sizeof text, dsn);
    int cls = smtp_reply_class(r);
    log_debug("mta %llx: %s <<< %s", s->id, mta_state_names[s->state], text);

    if (r->code == 421 && s->state != MTA_S_QUIT) {
        /* RFC 5321 3.8: the server is closing. Before any transaction: the next address or
         * MX host (5.1); after one: everything now is deferred. */
        if (!s->transacted) {
            mta_fail(s, dsn, "%s", text);
            return;
        }
        mta_end(s, false, true, dsn, text);
        return;
    }
    switch (s->state) {
    case MTA_S_BANNER:
        if (cls != 2) {
            mta_fail(s, dsn, "greeting: %s", text);
            return;
        }
        s->greeted = true;
        mta_enter_state(s, MTA_S_EHLO);
        return;
    case MTA_S_EHLO:
        if (cls == 2) {
            smtp_ehlo_parse(r, &s->ehlo);
            mta_after_greeting(s);
        } else if (cls == 5 && !s->tls_on) {
            mta_enter_state(s, MTA_S_HELO); /* an old server: RFC 5321 3.2 */
        } else {
            mta_fail(s, dsn, "EHLO: %s", text);
        }
        return;
    case MTA_S_HELO:
        if (cls != 2) {
            mta_fail(s, dsn, "HELO: %s", text);
            return;
        }
        memset(&s->ehlo, 0, sizeof s->ehlo);
        mta_after_greeting(s);
        return;
    case MTA_S_STARTTLS:
        if (r->code == 220) {
            mta_start_tls(s);
        } else if (mta_tls_required(s) || s->relay->have_auth) {
            mta_fail(s, dsn, "STARTTLS refused and TLS is required: %s", text);
        } else {
            s->tls_on = false;
            s->ehlo.ext &= ~(unsigned)SMTP_EXT_STARTTLS;
            mta_after_greeting(s);
        }
        return;
    case MTA_S_AUTH_PLAIN:
    case MTA_S_AUTH_PASS:
        if (r->code == 235) {
            mta_enter_state(s, MTA_S_READY);
            return;
        }
        mta_fail(s, dsn, "authentication failed: %s", text);
        return;
    case MTA_S_AUTH_LOGIN:
    case MTA_S_AUTH_USER:
        if (r->code != 334) {
            mta_fail(s, dsn, "authentication failed: %s", text);
            return;
        }
        mta_enter_state(s, s->state == MTA_S_AUTH_LOGIN ? MTA_S_AUTH_USER : MTA_S_AUTH_PASS);
        return;
    case MTA_S_MAIL:
        if (cls != 2) {
            s->mail_failed = true;
            str_copy(s->mail_dsn, sizeof s->mail_dsn, dsn);
            str_copy(s->mail_reason, sizeof s->mail_reason, text);
            if (!(s->ehlo.ext & SMTP_EXT_PIPELINING)) {
                /* no RCPT was sent: settle them all now */
                relay_task_settle(s->task, cls == 5 ? RELAY_R_FAILED : RELAY_R_DEFERRED, dsn, text);
                mta_task_finished(s, true);
                return;
            }
        }
        mta_enter_state(s, MTA_S_RCPT);
        return;
    case MTA_S_RCPT:
        if (!mta_rcpt_reply(s, r)) {
            mta_enter_state(s, MTA_S_RCPT); /* without PIPELINING: the next RCPT */
            return;
        }
        if (s->mail_failed || s->accepted == 0) {
            mta_task_finished(s, true);
            return;
        }
        mta_enter_state(s, MTA_S_DATA);
        return;
    case MTA_S_DATA:
        if (r->code != 354) {
            relay_task_settle(s->task, cls == 5 ? RELAY_R_FAILED : RELAY_R_DEFERRED, dsn, text);
            mta_task_finished(s, true);
            return;
        }
        mta_enter_state(s, MTA_S_BODY);
        return;
    case MTA_S_BODY:
        for (size_t i = 0; i < s->task->nrcpts; i++) {
            struct relay_task_rcpt *rc = &s->task->rcpts[i];
            if (rc->state != RELAY_R_ACCEPTED)
                continue;
            rc->state = cls == 2 ? RELAY_R_SENT : cls == 5 ? RELAY_R_FAILED : RELAY_R_DEFERRED;
            str_copy(rc->dsn, sizeof rc->dsn, dsn);
            str_copy(rc->reason, sizeof rc->reason, text);
        }
        mta_task_finished(s, false);
        return;
    case MTA_S_RSET:
        mta_enter_state(s, MTA_S_READY);
        return;
    case MTA_S_QUIT:
        mta_quit_done(s);
        return;
    default:
        mta_fail(s, "4.5.0", "unexpected reply in state %s: %s", mta_state_names[s->state], text);
        return;
    }
}

/* ---- connection events ------------------------------------------------------------------- */

static void mta_read_cb(struct bufferevent *bev, void *arg)
{
    struct mta_session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    s->in_read = true;
    while (!s->dead && s->bev == bev) {
        size_t eol_len = 0;
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
        if (eol.pos < 0) {
            if (evbuffer_get_length(in) > SMTP_REPLY_LINE_MAX)
                mta_fail(s, "4.5.0", "reply line too long in state %s", mta_state_names[s->state]);
            break;
        }
        size_t linelen = (size_t)eol.pos + eol_len;
        if (linelen > SMTP_REPLY_LINE_MAX) {
            mta_fail(s, "4.5.0", "reply line too long in state %s", mta_state_names[s->state]);
            break;
        }
        char line[SMTP_REPLY_LINE_MAX + 1];
        evbuffer_remove(in, line, linelen);
        size_t len = (size_t)eol.pos;
        if (len && line[len - 1] == '\r')
            len--;
        static struct smtp_reply reply; /* large; one event handler runs at a time */
        const char *error = NULL;
        enum smtp_reply_result res = smtp_reply_feed_line(&s->parser, line, len, &reply, &error);
        if (res == SMTP_REPLY_ERROR) {
            mta_fail(s, "4.5.0", "bad reply in state %s: %s", mta_state_names[s->state], error);
            break;
        }
        if (res == SMTP_REPLY_OK) {
            if (s->state == MTA_S_CONNECT || s->state == MTA_S_TLS || s->state == MTA_S_READY) {
                mta_fail(s, "4.5.0", "unexpected reply in state %s", mta_state_names[s->state]);
                break;
            }
            mta_on_reply(s, &reply); /* may end s or replace s->bev: the loop checks */
        }
    }
    s->in_read = false;
    if (s->dead)
        free(s);
}

static void mta_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct mta_session *s = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        if (s->state == MTA_S_CONNECT) {
            if (s->implicit_tls) {
                mta_start_tls(s);
                return;
            }
            s->state = MTA_S_BANNER;
            mta_set_reply_timeout(s, MTA_S_BANNER);
            return;
        }
        if (s->state == MTA_S_TLS) {
            SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
            s->tls_on = true;
            log_info("mta %llx: %s: TLS %s %s", s->id, s->relay_name, SSL_get_version(ssl),
                     SSL_get_cipher_name(ssl));
            if (!s->greeted) { /* implicit TLS: the greeting comes now, over TLS */
                s->state = MTA_S_BANNER;
                mta_set_reply_timeout(s, MTA_S_BANNER);
                return;
            }
            mta_enter_state(s, MTA_S_EHLO); /* RFC 3207 4.2: forget what was learned */
            return;
        }
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        mta_fail(s, "4.4.2", "timeout in state %s", mta_state_names[s->state]);
        return;
    }
    if (s->state == MTA_S_QUIT) {
        mta_quit_done(s);
        return;
    }
    unsigned long tls_err = ERR_get_error();
    if (s->state == MTA_S_TLS && tls_err) {
        char buf[256];
        ERR_error_string_n(tls_err, buf, sizeof buf);
        ERR_clear_error();
        mta_fail(s, "4.7.5", "TLS handshake failed: %s", buf);
        return;
    }
    ERR_clear_error();
    if (s->state == MTA_S_CONNECT) {
        mta_fail(s, "4.4.1", "connect to %s: %s", s->relay_name, strerror(EVUTIL_SOCKET_ERROR()));
        return;
    }
    if (s->state == MTA_S_BODY)
        mta_fail(s, "4.4.2", "lost connection after the message data (possible duplicate on retry)");
    else
        mta_fail(s, "4.4.2", "lost connection in state %s", mta_state_names[s->state]);
}

/* Wraps the connection in TLS (STARTTLS answered 220, or implicit TLS). */
static void mta_start_tls(struct mta_session *s)
{
    const char *host = s->hosts[s->ihost].host;
    /* RFC 3207: whatever the server sent after its 220 is dropped unread (injection). */
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t junk = evbuffer_get_length(in);
    if (junk) {
        log_info("mta %llx: %s: discarding %zu bytes received before the TLS handshake", s->id,
                 s->relay_name, junk);
        evbuffer_drain(in, junk);
    }
    smtp_reply_parser_init(&s->parser);
    SSL *ssl = SSL_new(s->relay->tls);
    if (!ssl) {
        mta_fail(s, "4.7.5", "cannot create a TLS session");
        return;
    }
    struct netaddr lit;
    if (!netaddr_parse(host, &lit))
        SSL_set_tlsext_host_name(ssl, host);
    if (s->relay->tls_mode == RELAY_TLS_VERIFY && s->relay->use_smarthost)
        SSL_set1_host(ssl, host);
    struct bufferevent *tls = bufferevent_openssl_filter_new(s->relay->base, s->bev, ssl,
                                                             BUFFEREVENT_SSL_CONNECTING,
                                                             BEV_OPT_CLOSE_ON_FREE);
    if (!tls) {
        SSL_free(ssl);
        mta_fail(s, "4.7.5", "cannot start TLS");
        return;
    }
    s->bev = tls;
    s->state = MTA_S_TLS;
    memset(&s->ehlo, 0, sizeof s->ehlo);
    bufferevent_setcb(tls, mta_read_cb, mta_write_cb, mta_event_cb, s);
    struct timeval to = {(time_t)s->relay->conf->smtp_connect_timeout, 0};
    bufferevent_set_timeouts(tls, &to, &to);
    bufferevent_enable(tls, EV_READ | EV_WRITE);
}

/* ---- finding the server ------------------------------------------------------------------ */

static void mta_connect_addr(struct mta_session *s)
{
    const struct netaddr *a = &s->addrs[s->iaddr++];
    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof ss);
    if (a->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)s->port);
        memcpy(&sin->sin_addr, a->bytes, 4);
        sslen = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)s->port);
        memcpy(&sin6->sin6_addr, a->bytes, 16);
        sslen = sizeof *sin6;
    }
    char ip[NETADDR_STRLEN];
    netaddr_format(a, ip, sizeof ip);
    snprintf(s->relay_name, sizeof s->relay_name, "%s[%s]:%u", s->hosts[s->ihost].host, ip, s->port);
    s->state = MTA_S_CONNECT;
    s->greeted = false;
    int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        mta_fail(s, "4.4.1", "socket: %s", strerror(errno));
        return;
    }
    const struct relay *relay = s->relay;
    if (relay->have_bind && bind(fd, (const struct sockaddr *)&relay->bind_sa, relay->bind_len) < 0) {
        int e = errno;
        close(fd);
        mta_fail(s, "4.4.1", "cannot bind to smtp_bind_address %s: %s", relay->conf->smtp_bind_address,
                 strerror(e));
        return;
    }
    s->bev = bufferevent_socket_new(relay->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!s->bev) {
        close(fd);
        mta_fail(s, "4.3.0", "cannot create a connection buffer");
        return;
    }
    bufferevent_setcb(s->bev, mta_read_cb, mta_write_cb, mta_event_cb, s);
    struct timeval to = {(time_t)relay->conf->smtp_connect_timeout, 0};
    bufferevent_set_timeouts(s->bev, &to, &to);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    log_debug("mta %llx: connecting to %s", s->id, s->relay_name);
    if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&ss, (int)sslen) < 0) {
        /* the event callback has not run: fail from here */
        mta_fail(s, "4.4.1", "connect to %s: %s", s->relay_name, strerror(errno));
        return;
    }
}

static void mta_addr_answer(void *arg, enum relay_dns_status st, const struct netaddr *addrs,
                            size_t n, const char *error)
{
    struct mta_session *s = arg;
    s->dnsreq = NULL;
    const char *host = s->hosts[s->ihost].host;
    if (st != RELAY_DNS_OK || n == 0) {
        snprintf(s->last_error, sizeof s->last_error, "Host or domain name not found: %s (%s)", host,
                 error ? error : "no address");
        str_copy(s->last_dsn, sizeof s->last_dsn, "4.4.3");
        /* an MX host without address is skipped; the whole route may still be permanent */
        if (st == RELAY_DNS_NXDOMAIN && s->nhosts == 1 && !s->relay->use_smarthost &&
            strcmp(host, s->route->key) == 0) {
            s->permanent = true;
            str_copy(s->last_dsn, sizeof s->last_dsn, "5.1.2");
        }
        s->ihost++;
        mta_next_host(s);
        return;
    }
    memcpy(s->addrs, addrs, n * sizeof *addrs);
    s->naddrs = n;
    s->iaddr = 0;
    mta_connect_next(s);
}

/* Resolves the current host, or ends when there is none left. */
static void mta_next_host(struct mta_session *s)
{
    if (s->ihost >= s->nhosts) {
        mta_end(s, s->permanent, true, s->last_dsn[0] ? s->last_dsn : "4.4.1",
                s->last_error[0] ? s->last_error : "no host to deliver to");
        return;
    }
    s->state = MTA_S_ADDR;
    s->naddrs = s->iaddr = 0;
    s->relay_name[0] = '\0';
    s->dnsreq = relay_dns_addr(s->relay->dns, s->hosts[s->ihost].host, s->relay->family,
                               mta_addr_answer, s);
}

/* The next address of the current host, else the next host. */
static void mta_connect_next(struct mta_session *s)
{
    if (s->iaddr < s->naddrs) {
        mta_connect_addr(s);
        return;
    }
    s->ihost++;
    mta_next_host(s);
}

static void mta_mx_answer(void *arg, enum relay_dns_status st, const struct relay_mx *mx, size_t n,
                          const char *error)
{
    struct mta_session *s = arg;
    s->dnsreq = NULL;
    switch (st) {
    case RELAY_DNS_OK:
        memcpy(s->hosts, mx, n * sizeof *mx);
        s->nhosts = n;
        break;
    case RELAY_DNS_NODATA: /* RFC 5321 5.1: the domain itself is the implicit MX */
        str_copy(s->hosts[0].host, sizeof s->hosts[0].host, s->route->key);
        s->nhosts = 1;
        break;
    case RELAY_DNS_NXDOMAIN: {
        char reason[RELAY_REASON_MAX];
        snprintf(reason, sizeof reason, "Host or domain name not found: %s (%s)", s->route->key,
                 error ? error : "NXDOMAIN");
        mta_end(s, true, true, "5.1.2", reason);
        return;
    }
    default: {
        char reason[RELAY_REASON_MAX];
        snprintf(reason, sizeof reason, "Host or domain name lookup failed: %s MX (%s)", s->route->key,
                 error ? error : "temporary failure");
        mta_end(s, false, true, "4.4.3", reason);
        return;
    }
    }
    s->ihost = 0;
    mta_next_host(s);
}

void mta_start(struct relay *relay, struct relay_route *route)
{
    struct mta_session *s = xcalloc(1, sizeof *s);
    s->relay = relay;
    s->route = route;
    s->id = mta_next_id++;
    route->session = s;
    TAILQ_INIT(&s->next_host);
    smtp_reply_parser_init(&s->parser);
    if (relay->use_smarthost) {
        str_copy(s->hosts[0].host, sizeof s->hosts[0].host, relay->smarthost.host);
        s->nhosts = 1;
        s->port = relay->smarthost.port;
        s->implicit_tls = relay->smarthost.implicit_tls;
        mta_next_host(s);
        return;
    }
    s->port = 25;
    s->state = MTA_S_MX;
    s->dnsreq = relay_dns_mx(relay->dns, route->key, mta_mx_answer, s);
}
