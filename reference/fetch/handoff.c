/*
 * handoff: pipelined SMTP to zolderd (see handoff.h).
 *
 * STANDARDS
 *   RFC 5321 (the dialogue, dot-stuffing 4.5.2), RFC 2920 (PIPELINING: MAIL, RCPT and DATA
 *   in one group, the body after 354), RFC 6152 (BODY=8BITMIME for 8-bit messages).
 *
 * SECURITY
 *   zolderd is trusted no more than any server: replies go through smtp_reply's bounded
 *   parser, and a session that says something unexpected is dropped (its item answered 421).
 */
#include "fetch/handoff.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "log.h"
#include "smtp_reply.h"
#include "xalloc.h"

enum ho_state { HO_CONNECT, HO_GREETING, HO_EHLO, HO_IDLE, HO_TXN, HO_DOT, HO_RSET, HO_QUIT, HO_CHUNKS };

/* With CHUNKING and PIPELINING: whole messages in flight per session (RSET, MAIL, RCPT...,
 * BDAT n LAST and the bytes, RFC 3030 4.2), so zolderd never waits for a round trip: it
 * reads the next message right after answering the previous one's commit. */
#define HANDOFF_PIPELINE 4

struct ho_session {
    struct handoff *h;
    struct bufferevent *bev;
    enum ho_state state;
    struct smtp_reply_parser parser;
    struct smtp_ehlo ehlo;
    struct handoff_item *item;
    struct handoff_item *next; /* pipelined behind item's final dot: its MAIL, RCPT, DATA are
                                * sent, their replies follow item's (RFC 2920 3.1) */
    int waiting;               /* replies seen in HO_TXN (MAIL, RCPT, DATA) */
    bool chunking;             /* CHUNKING and PIPELINING offered: HO_CHUNKS mode */
    struct handoff_item *fifo[HANDOFF_PIPELINE]; /* HO_CHUNKS: in flight, oldest first */
    size_t fifo_head, fifo_n;
    int fail_code;             /* first refusal in the transaction */
    int accepted;              /* recipients accepted */
    bool mail_failed;
    char fail_text[256];
};

struct handoff {
    struct event_base *base;
    struct sockaddr_storage sa;
    socklen_t salen;
    char helo[256];
    unsigned max_sessions;
    struct ho_session *sessions[HANDOFF_SESSIONS_MAX];
    struct handoff_item *head, *tail;
    size_t queued, inflight;
    bool connect_failed;       /* a session died before it was ready */
    char connect_error[160];
};

static void ho_pump(struct handoff *h);
static void ho_txn_failed(struct ho_session *s, const struct smtp_reply *r);

static void ho_finish_item(struct ho_session *s, int code, const char *reply)
{
    struct handoff_item *it = s->item;
    s->item = NULL;
    if (!it)
        return;
    s->h->inflight--;
    it->done(it, code, reply);
}

/* The pipelined item never reached zolder's queue: answered like a lost session's. */
static void ho_finish_next(struct ho_session *s, int code, const char *reply)
{
    struct handoff_item *it = s->next;
    s->next = NULL;
    if (!it)
        return;
    s->h->inflight--;
    it->done(it, code, reply);
}

static void ho_session_free(struct ho_session *s, const char *why)
{
    struct handoff *h = s->h;
    if (s->state < HO_IDLE) {
        h->connect_failed = true; /* never got ready: do not spin reconnecting */
        snprintf(h->connect_error, sizeof h->connect_error, "%s", why);
    }
    for (unsigned i = 0; i < h->max_sessions; i++)
        if (h->sessions[i] == s)
            h->sessions[i] = NULL;
    if (s->bev)
        bufferevent_free(s->bev);
    s->bev = NULL;
    if (s->item) {
        char text[300];
        snprintf(text, sizeof text, "421 4.4.2 hand-off session lost: %s", why);
        log_warnx("fetch: hand-off: %s", text);
        ho_finish_item(s, 421, text);
    }
    if (s->next) {
        char text[300];
        snprintf(text, sizeof text, "421 4.4.2 hand-off session lost: %s", why);
        ho_finish_next(s, 421, text);
    }
    while (s->fifo_n > 0) {
        struct handoff_item *it = s->fifo[s->fifo_head];
        s->fifo_head = (s->fifo_head + 1) % HANDOFF_PIPELINE;
        s->fifo_n--;
        char text[300];
        snprintf(text, sizeof text, "421 4.4.2 hand-off session lost: %s", why);
        h->inflight--;
        it->done(it, 421, text);
    }
    free(s);
}

/* MAIL (and with PIPELINING, RCPT and DATA) for it; the transaction's counters start over. */
static void ho_send_txn_for(struct ho_session *s, struct handoff_item *it)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);
    bool eight = false;
    for (size_t i = 0; i < it->data->len; i++)
        if ((unsigned char)it->data->data[i] >= 0x80) {
            eight = true;
            break;
        }
    evbuffer_add_printf(out, "MAIL FROM:<%s>%s\r\n", it->sender,
                        eight && (s->ehlo.ext & SMTP_EXT_8BITMIME) ? " BODY=8BITMIME" : "");
    s->fail_code = 0;
    s->waiting = 0; /* replies seen in this transaction */
    s->accepted = 0;
    s->mail_failed = false;
    it->rcpt_refused = 0;
    if (s->ehlo.ext & SMTP_EXT_PIPELINING) {
        for (size_t i = 0; i < it->nrcpt; i++)
            evbuffer_add_printf(out, "RCPT TO:<%s>\r\n", it->rcpts[i]);
        evbuffer_add_printf(out, "DATA\r\n");
    }
}

static void ho_send_txn(struct ho_session *s)
{
    ho_send_txn_for(s, s->item);
    s->state = HO_TXN;
}

/* Takes the first queued item off the queue (NULL when none). */
static struct handoff_item *ho_take(struct handoff *h)
{
    struct handoff_item *it = h->head;
    if (!it)
        return NULL;
    h->head = it->next;
    if (!h->head)
        h->tail = NULL;
    h->queued--;
    h->inflight++;
    return it;
}

static void ho_send_body(struct ho_session *s)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);
    const char *p = s->item->data->data, *end = p + s->item->data->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *next = nl ? nl + 1 : end;
        if (*p == '.')
            evbuffer_add(out, ".", 1);
        evbuffer_add(out, p, (size_t)(next - p));
        if (!nl)
            evbuffer_add(out, "\r\n", 2);
        p = next;
    }
    evbuffer_add(out, ".\r\n", 3);
    s->state = HO_DOT;
    /* RFC 2920 3.1: the next transaction's MAIL, RCPT and DATA may follow the final dot in
     * the same group, so zolderd answers them with the 250 of its commit round instead of
     * one round trip (and one turn of its loop) later */
    if ((s->ehlo.ext & SMTP_EXT_PIPELINING) && !s->next && (s->next = ho_take(s->h)) != NULL)
        ho_send_txn_for(s, s->next);
}

/* HO_CHUNKS: it's whole transaction, pipelined. RSET first: a transaction before it that
 * failed at RCPT is still open on the server (RFC 3030: BDAT then only answers the error). */
static void ho_chunk_send(struct ho_session *s, struct handoff_item *it)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);
    const char *d = it->data->data ? it->data->data : "";
    size_t len = it->data->len;
    bool eight = false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)d[i] >= 0x80) {
            eight = true;
            break;
        }
    bool add_crlf = len == 0 || d[len - 1] != '\n'; /* as ho_send_body ends the last line */
    evbuffer_add_printf(out, "RSET\r\nMAIL FROM:<%s>%s\r\n", it->sender,
                        eight && (s->ehlo.ext & SMTP_EXT_8BITMIME) ? " BODY=8BITMIME" : "");
    for (size_t i = 0; i < it->nrcpt; i++)
        evbuffer_add_printf(out, "RCPT TO:<%s>\r\n", it->rcpts[i]);
    evbuffer_add_printf(out, "BDAT %zu LAST\r\n", len + (add_crlf ? 2 : 0));
    evbuffer_add(out, d, len);
    if (add_crlf)
        evbuffer_add(out, "\r\n", 2);
    it->rcpt_refused = 0;
    if (s->fifo_n == 0) { /* it is the head: its replies come first */
        s->fail_code = 0;
        s->waiting = 0;
        s->accepted = 0;
        s->mail_failed = false;
    }
    s->fifo[(s->fifo_head + s->fifo_n) % HANDOFF_PIPELINE] = it;
    s->fifo_n++;
    s->state = HO_CHUNKS;
}

/* HO_CHUNKS: queued items join the session's pipeline, up to `upto` in flight. */
static void ho_chunk_fill(struct ho_session *s, size_t upto)
{
    while (s->fifo_n < upto && s->h->head)
        ho_chunk_send(s, ho_take(s->h));
    if (s->fifo_n == 0)
        s->state = HO_IDLE;
}

/* HO_CHUNKS: one reply for the oldest transaction (RSET, MAIL, each RCPT, BDAT). */
static bool ho_chunk_reply(struct ho_session *s, const struct smtp_reply *r)
{
    struct handoff_item *it = s->fifo[s->fifo_head];
    int cls = smtp_reply_class(r);
    int which = s->waiting++;
    int nrcpt = (int)it->nrcpt;
    if (which == 0)
        return cls == 2; /* RSET refused: something is wrong with the session */
    if (which == 1) {
        if (cls != 2) {
            ho_txn_failed(s, r);
            s->mail_failed = true;
        }
        return true;
    }
    if (which <= nrcpt + 1) {
        if (cls == 2) {
            s->accepted++;
        } else {
            it->rcpt_refused++;
            if (!s->mail_failed)
                log_warnx("fetch: hand-off: <%s> refused: %d", it->rcpts[which - 2], r->code);
            if (!s->accepted && !s->mail_failed)
                ho_txn_failed(s, r); /* kept in case no recipient is accepted */
        }
        return true;
    }
    /* BDAT's reply ends the transaction: it says it, unless MAIL or every RCPT failed */
    int code;
    char text[300];
    if (!s->mail_failed && s->accepted) {
        struct buf t;
        buf_init(&t, 0);
        smtp_reply_format(r, &t);
        snprintf(text, sizeof text, "%s", t.data ? t.data : "");
        buf_free(&t);
        code = r->code;
    } else {
        snprintf(text, sizeof text, "%s", s->fail_text);
        code = s->fail_code ? s->fail_code : r->code;
    }
    s->fifo_head = (s->fifo_head + 1) % HANDOFF_PIPELINE;
    s->fifo_n--;
    s->fail_code = 0;
    s->waiting = 0;
    s->accepted = 0;
    s->mail_failed = false;
    s->h->inflight--;
    it->done(it, code, text);
    ho_chunk_fill(s, HANDOFF_PIPELINE);
    return true;
}

static void ho_next(struct ho_session *s)
{
    if (s->chunking) {
        ho_chunk_fill(s, 1);
        return;
    }
    struct handoff *h = s->h;
    if (s->next) { /* its commands are out already: its replies come next */
        s->item = s->next;
        s->next = NULL;
        s->state = HO_TXN;
        return;
    }
    if (!h->head) {
        s->state = HO_IDLE;
        return;
    }
    s->item = ho_take(h);
    ho_send_txn(s);
}

static void ho_txn_failed(struct ho_session *s, const struct smtp_reply *r)
{
    if (s->fail_code)
        return;
    s->fail_code = r->code;
    struct buf t;
    buf_init(&t, 0);
    smtp_reply_format(r, &t);
    snprintf(s->fail_text, sizeof s->fail_text, "%s", t.data ? t.data : "");
    buf_free(&t);
}

/* One complete reply; false when the session must end. */
static bool ho_on_reply(struct ho_session *s, const struct smtp_reply *r)
{
    int cls = smtp_reply_class(r);
    switch (s->state) {
    case HO_GREETING:
        if (cls != 2)
            return false;
        evbuffer_add_printf(bufferevent_get_output(s->bev), "EHLO %s\r\n", s->h->helo);
        s->state = HO_EHLO;
        return true;
    case HO_EHLO:
        if (cls != 2)
            return false;
        smtp_ehlo_parse(r, &s->ehlo);
        s->chunking = (s->ehlo.ext & SMTP_EXT_CHUNKING) && (s->ehlo.ext & SMTP_EXT_PIPELINING);
        ho_next(s);
        return true;
    case HO_TXN: {
        /* replies come in order: MAIL, each RCPT, DATA (pipelined or one by one) */
        bool piped = (s->ehlo.ext & SMTP_EXT_PIPELINING) != 0;
        struct handoff_item *it = s->item;
        int which = ++s->waiting;
        int nrcpt = (int)it->nrcpt;
        struct evbuffer *out = bufferevent_get_output(s->bev);
        if (which == 1) {
            if (cls != 2) {
                ho_txn_failed(s, r);
                s->mail_failed = true;
            }
            if (!piped) {
                if (s->mail_failed) {
                    evbuffer_add_printf(out, "RSET\r\n");
                    s->state = HO_RSET;
                } else {
                    evbuffer_add_printf(out, "RCPT TO:<%s>\r\n", it->rcpts[0]);
                }
            }
            return true;
        }
        if (which <= nrcpt + 1) {
            int i = which - 2;
            if (cls == 2) {
                s->accepted++;
            } else {
                it->rcpt_refused++;
                if (!s->mail_failed)
                    log_warnx("fetch: hand-off: <%s> refused: %d", it->rcpts[i], r->code);
                if (!s->accepted && !s->mail_failed)
                    ho_txn_failed(s, r); /* kept in case no recipient is accepted */
            }
            if (!piped) {
                if (i + 1 < nrcpt) {
                    evbuffer_add_printf(out, "RCPT TO:<%s>\r\n", it->rcpts[i + 1]);
                } else if (s->accepted) {
                    evbuffer_add_printf(out, "DATA\r\n");
                } else {
                    evbuffer_add_printf(out, "RSET\r\n");
                    s->state = HO_RSET;
                }
            }
            return true;
        }
        if (r->code == 354 && !s->mail_failed && s->accepted) {
            ho_send_body(s);
            return true;
        }
        if (r->code == 354)
            return false; /* DATA accepted without a recipient: never send the message */
        if (s->accepted)
            s->fail_code = 0; /* the DATA refusal is the one to report */
        ho_txn_failed(s, r);
        evbuffer_add_printf(out, "RSET\r\n");
        s->state = HO_RSET;
        return true;
    }
    case HO_DOT: {
        struct buf t;
        buf_init(&t, 0);
        smtp_reply_format(r, &t);
        char text[300];
        snprintf(text, sizeof text, "%s", t.data ? t.data : "");
        buf_free(&t);
        ho_finish_item(s, r->code, text);
        ho_next(s);
        return true;
    }
    case HO_CHUNKS:
        return ho_chunk_reply(s, r);
    case HO_RSET: {
        char text[300];
        snprintf(text, sizeof text, "%s", s->fail_text);
        ho_finish_item(s, s->fail_code, text);
        if (cls != 2)
            return false;
        ho_next(s);
        return true;
    }
    default:
        return false;
    }
}

static void ho_read_cb(struct bufferevent *bev, void *arg)
{
    struct ho_session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct handoff *h = s->h;
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            break;
        const char *data = (const char *)evbuffer_pullup(in, -1);
        size_t used = 0;
        struct smtp_reply reply;
        const char *err = NULL;
        enum smtp_reply_result res = smtp_reply_parse(&s->parser, data, len, &used, &reply, &err);
        if (res == SMTP_REPLY_ERROR) {
            ho_session_free(s, err ? err : "bad reply");
            ho_pump(h);
            return;
        }
        if (used == 0)
            break;
        evbuffer_drain(in, used);
        if (res == SMTP_REPLY_OK && !ho_on_reply(s, &reply)) {
            char why[64];
            snprintf(why, sizeof why, "unexpected reply %d", reply.code);
            ho_session_free(s, why);
            ho_pump(h);
            return;
        }
    }
    ho_pump(h);
}

static void ho_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct ho_session *s = arg;
    struct handoff *h = s->h;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(s->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        s->state = HO_GREETING;
        return;
    }
    const char *why = (what & BEV_EVENT_TIMEOUT) ? "timeout" : (what & BEV_EVENT_EOF) ? "closed"
                                                                                     : "error";
    char text[160];
    snprintf(text, sizeof text, "%s (%s)", why,
             (what & BEV_EVENT_ERROR) ? strerror(EVUTIL_SOCKET_ERROR()) : "connection");
    ho_session_free(s, text);
    ho_pump(h);
}

static struct ho_session *ho_open(struct handoff *h)
{
    int fd = socket(h->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    if (h->sa.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&h->sa;
        if ((ntohl(sin->sin_addr.s_addr) >> 24) == 127) {
            struct sockaddr_in local = {.sin_family = AF_INET};
            local.sin_addr.s_addr = htonl(0x7f000001);
            (void)bind(fd, (struct sockaddr *)&local, sizeof local); /* best effort */
        }
    }
    struct ho_session *s = xcalloc(1, sizeof *s);
    s->h = h;
    s->state = HO_CONNECT;
    smtp_reply_parser_init(&s->parser);
    s->bev = bufferevent_socket_new(h->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!s->bev) {
        close(fd);
        free(s);
        return NULL;
    }
    bufferevent_setcb(s->bev, ho_read_cb, NULL, ho_event_cb, s);
    struct timeval to = {HANDOFF_TIMEOUT_S, 0};
    bufferevent_set_timeouts(s->bev, &to, &to);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&h->sa, (int)h->salen) < 0) {
        bufferevent_free(s->bev);
        free(s);
        return NULL;
    }
    return s;
}

static void ho_fail_queued(struct handoff *h, const char *reply)
{
    while (h->head) {
        struct handoff_item *it = h->head;
        h->head = it->next;
        h->queued--;
        it->done(it, 421, reply);
    }
    h->tail = NULL;
}

/* Idle sessions take queued items; missing sessions are opened. */
static void ho_pump(struct handoff *h)
{
    if (h->connect_failed) {
        bool alive = false;
        for (unsigned i = 0; i < h->max_sessions; i++)
            if (h->sessions[i])
                alive = true;
        if (!alive) {
            /* zolder cannot be reached: answer what waits (it stays on the server); the next
             * submission tries again */
            char reply[256];
            snprintf(reply, sizeof reply, "421 4.4.1 cannot connect to zolder's SMTP listener: %s",
                     h->connect_error);
            h->connect_failed = false;
            ho_fail_queued(h, reply);
            return;
        }
    }
    for (unsigned i = 0; i < h->max_sessions && h->head; i++) {
        struct ho_session *s = h->sessions[i];
        if (s && s->state == HO_IDLE)
            ho_next(s);
    }
    /* CHUNKING: one more in flight per session and pass, so the sessions share the load */
    for (size_t depth = 2; depth <= HANDOFF_PIPELINE && h->head; depth++)
        for (unsigned i = 0; i < h->max_sessions && h->head; i++) {
            struct ho_session *s = h->sessions[i];
            if (s && s->state == HO_CHUNKS)
                ho_chunk_fill(s, depth);
        }
    /* then behind the final dot of a session waiting for its 250 (RFC 2920 3.1) */
    for (unsigned i = 0; i < h->max_sessions && h->head; i++) {
        struct ho_session *s = h->sessions[i];
        if (s && s->state == HO_DOT && !s->next && (s->ehlo.ext & SMTP_EXT_PIPELINING)) {
            s->next = ho_take(h);
            ho_send_txn_for(s, s->next);
        }
    }
    size_t opening = 0;
    for (unsigned i = 0; i < h->max_sessions; i++)
        if (h->sessions[i] && h->sessions[i]->state < HO_IDLE)
            opening++;
    for (unsigned i = 0; i < h->max_sessions && h->queued > opening; i++) {
        if (h->sessions[i])
            continue;
        h->sessions[i] = ho_open(h);
        if (!h->sessions[i]) {
            /* cannot even open a socket: answer what waits, so nothing hangs */
            ho_fail_queued(h, "421 4.4.1 cannot connect to zolder's SMTP listener");
            return;
        }
        opening++;
    }
}

struct handoff *handoff_new(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
                            const char *helo, unsigned sessions)
{
    struct handoff *h = xcalloc(1, sizeof *h);
    h->base = base;
    memcpy(&h->sa, sa, salen);
    h->salen = salen;
    snprintf(h->helo, sizeof h->helo, "%s", helo);
    h->max_sessions = sessions < 1 ? 1 : sessions > HANDOFF_SESSIONS_MAX ? HANDOFF_SESSIONS_MAX
                                                                          : sessions;
    return h;
}

void handoff_submit(struct handoff *h, struct handoff_item *item)
{
    if (item->nrcpt == 0 || item->nrcpt > HANDOFF_RCPT_MAX)
        log_panic("handoff_submit: %zu recipients", item->nrcpt);
    item->next = NULL;
    if (h->tail)
        h->tail->next = item;
    else
        h->head = item;
    h->tail = item;
    h->queued++;
    ho_pump(h);
}

size_t handoff_pending(const struct handoff *h)
{
    return h->queued + h->inflight;
}

void handoff_free(struct handoff *h)
{
    if (!h)
        return;
    for (unsigned i = 0; i < h->max_sessions; i++) {
        struct ho_session *s = h->sessions[i];
        if (!s)
            continue;
        if (s->state == HO_IDLE && s->bev) {
            /* a polite QUIT, best effort: the socket closes when the buffer is freed */
            evbuffer_add_printf(bufferevent_get_output(s->bev), "QUIT\r\n");
            bufferevent_flush(s->bev, EV_WRITE, BEV_FLUSH);
            int fd = bufferevent_getfd(s->bev);
            struct evbuffer *out = bufferevent_get_output(s->bev);
            size_t n = evbuffer_get_length(out);
            if (n && fd >= 0) {
                const char *d = (const char *)evbuffer_pullup(out, -1);
                ssize_t w = write(fd, d, n);
                (void)w;
            }
        }
        ho_session_free(s, "shutting down");
    }
    while (h->head) {
        struct handoff_item *it = h->head;
        h->head = it->next;
        it->done(it, 421, "421 4.3.0 hand-off shutting down");
    }
    free(h);
}
