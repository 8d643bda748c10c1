/*
 * sim_smtpd: the SMTP hosts of the world on their sockets: smarthosts (relay only for their
 * customers, then hand the message to the destination MX inside the world) and MX hosts
 * (accept for their domains into their mailstore). The protocol is sim_smtp's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "sim_tls.h"
#include "sim_json.h"
#include "sim_run.h"
#include "str.h"
#include "timefmt.h"
#include "xalloc.h"

#define SIM_SMTPD_READ_CHUNK 65536

struct sim_smtpd_conn {
    struct sim_run *run;
    int service;
    unsigned long long id;
    struct netaddr peer;
    char peer_text[NETADDR_STRLEN + 8];
    struct bufferevent *bev;   /* writes; reads too once behind TLS */
    struct event *plain_read;  /* reads of a plain connection (see sim_smtpd_plain_read) */
    struct event *timer;
    struct sim_smtp_hooks hooks;
    struct sim_smtp_session s;
    bool closing;
};

static const char *sim_smtpd_host(const struct sim_smtpd_conn *c)
{
    const struct sim_world *w = c->run->world;
    return w->hosts[w->services[c->service].host].name;
}

/* Common members of this connection's records: ,"session":N,"host":"h","peer":"a:p" */
static void sim_smtpd_fields(const struct sim_smtpd_conn *c, struct buf *b)
{
    buf_append_str(b, "\"session\":");
    sim_json_put_u64(b, c->id);
    buf_append_char(b, ',');
    sim_json_put_kv(b, true, "host", sim_smtpd_host(c));
    sim_json_put_kv(b, false, "peer", c->peer_text);
}

static void sim_smtpd_transcript(void *ctx, char dir, const char *line, size_t len)
{
    struct sim_smtpd_conn *c = ctx;
    struct buf f, r;
    buf_init(&f, 0);
    buf_init(&r, 0);
    sim_smtpd_fields(c, &f);
    char dir_member[] = ",\"dir\":\"?\",\"line\":";
    *strchr(dir_member, '?') = dir;
    buf_append_str(&f, dir_member);
    sim_json_put_str(&f, line, len);
    if (sim_records_readable(&c->run->records))
        buf_printf(&r, "%llu %s %s %c: %.*s", c->id, sim_smtpd_host(c), c->peer_text, dir,
                   (int)(len > 200 ? 200 : len), line);
    sim_run_record(c->run, "smtp", f.data, r.data ? r.data : "");
    buf_free(&f);
    buf_free(&r);
}

static void sim_smtpd_violation(void *ctx, const char *kind, const char *detail)
{
    struct sim_smtpd_conn *c = ctx;
    struct buf f, r;
    buf_init(&f, 0);
    buf_init(&r, 0);
    sim_smtpd_fields(c, &f);
    sim_json_put_kv(&f, false, "violation", kind);
    sim_json_put_kv(&f, false, "detail", detail);
    buf_printf(&r, "%llu %s %s %s: %s", c->id, sim_smtpd_host(c), c->peer_text, kind, detail);
    /* An end of the connection that a dial-up link caused is the line's fault, not the client's. */
    bool by_link = (strcmp(kind, "eof-in-data") == 0 || strcmp(kind, "no-quit") == 0) &&
                   sim_run_was_link_cut(c->run, c->peer_text);
    sim_run_record(c->run, by_link ? "link-cut" : "violation", f.data, r.data);
    if (by_link)
        log_info("smtp session=%llu host=%s peer=%s %s: the link cut the connection", c->id,
                 sim_smtpd_host(c), c->peer_text, kind);
    else
        log_warnx("smtp session=%llu host=%s peer=%s violation=%s detail=\"%s\"", c->id,
                  sim_smtpd_host(c), c->peer_text, kind, detail);
    buf_free(&f);
    buf_free(&r);
}

static void sim_smtpd_script(void *ctx, enum sim_smtp_stage stage, unsigned msgno,
                             const char *rcpt, struct sim_smtp_action *act)
{
    struct sim_smtpd_conn *c = ctx;
    struct sim_run *run = c->run;
    (void)msgno;
    /* "The Nth message" counts clean messages reaching the final dot on this host. */
    unsigned n = run->messages[c->service] + 1;
    if (stage == SIM_STAGE_DOT)
        run->messages[c->service]++;
    for (int i = 0; i < run->nrules; i++) {
        const struct sim_smtp_rule *r = &run->rules[i];
        if (r->stage != stage || (r->service >= 0 && r->service != c->service) ||
            (r->message && r->message != n) ||
            (r->rcpt[0] && (!rcpt || strcasecmp(r->rcpt, rcpt) != 0)))
            continue;
        *act = r->act;
        return;
    }
}

static bool sim_smtpd_domain_of(const char *addr, const char **domain_r)
{
    const char *at = strrchr(addr, '@');
    if (!at || !at[1])
        return false;
    *domain_r = at + 1;
    return true;
}

/* RFC 3463 X.2.2: mailbox full; 552 (permanent) or 452 (try later) as the world says. */
static void sim_smtpd_full_reply(const struct sim_store *st, int box, const char *rcpt,
                                 char *reply, size_t size)
{
    bool temp = st->boxes[box].full_code == 452;
    snprintf(reply, size, "%s <%s>: Mailbox full, quota exceeded",
             temp ? "452 4.2.2" : "552 5.2.2", rcpt);
}

static void sim_smtpd_rcpt_check(void *ctx, const char *rcpt, char *reply, size_t size)
{
    struct sim_smtpd_conn *c = ctx;
    const struct sim_world *w = c->run->world;
    const struct sim_service *svc = &w->services[c->service];
    if (svc->kind == SIM_SVC_SMARTHOST) {
        if (c->s.authed)
            return;
        for (int i = 0; i < svc->ncustomers; i++)
            if (netmask_match(&svc->customers[i], &c->peer))
                return;
        snprintf(reply, size, "554 5.7.1 <%s>: Relay access denied", rcpt);
        return;
    }
    const char *domain;
    bool ours = false;
    if (sim_smtpd_domain_of(rcpt, &domain)) {
        for (int d = 0; d < svc->ndomains; d++)
            if (strcasecmp(svc->domains[d], domain) == 0)
                ours = true;
        for (int d = 0; d < svc->nbackup; d++)
            if (strcasecmp(svc->backup[d], domain) == 0)
                ours = true;
    }
    if (!ours) {
        snprintf(reply, size, "554 5.7.1 <%s>: Relay access denied", rcpt);
        return;
    }
    int box = sim_world_mailbox_for(w, svc->store, rcpt);
    if (box < 0) {
        snprintf(reply, size, "550 5.1.1 <%s>: Recipient address rejected: User unknown", rcpt);
        return;
    }
    if (!sim_store_fits(&c->run->store, box, 1))
        sim_smtpd_full_reply(&c->run->store, box, rcpt, reply, size);
}

static void sim_smtpd_new_id(struct sim_run *run, int service, char *out, size_t size)
{
    snprintf(out, size, "%06llX-%04X-00", ++run->next_id, (unsigned)service & 0xffff);
}

/* Stores one copy for rcpt at mx (a service index) and records the delivery. */
static void sim_smtpd_store(struct sim_run *run, const char *via, int mx, const char *from_name,
                            const char *rcpt, const char *mail_from, const struct buf *message,
                            const char *id, size_t sent_len)
{
    const struct sim_world *w = run->world;
    const char *status = "stored";
    const char *store = "";
    const char *user = "";
    unsigned uid = 0;
    if (mx < 0) {
        status = "no-route";
    } else {
        const struct sim_service *svc = &w->services[mx];
        store = w->stores[svc->store];
        int box = sim_world_mailbox_for(w, svc->store, rcpt);
        if (box < 0) {
            status = "no-mailbox";
        } else {
            user = w->mailboxes[box].user;
        }
        if (box >= 0 && !sim_store_fits(&run->store, box, sent_len)) {
            status = "over-quota";
        } else if (box >= 0) {
            char date[TIMEFMT_RFC5322_LEN], mid[32];
            timefmt_rfc5322(time(NULL), date, sizeof date);
            sim_smtpd_new_id(run, mx, mid, sizeof mid);
            struct buf full;
            buf_init(&full, 0);
            buf_printf(&full, "Received: from %s by %s for <%s> id %s; %s\r\n", from_name, store,
                       rcpt, mid, date);
            buf_append(&full, message->data, message->len);
            if (sim_store_deliver(&run->store, box, full.data, full.len, &uid) < 0) {
                log_warn("delivery id=%s to=<%s> store=%s: cannot store", id, rcpt, store);
                status = "store-failed";
            }
            buf_free(&full);
        }
    }
    struct buf f, r;
    buf_init(&f, 0);
    buf_init(&r, 0);
    sim_json_put_kv(&f, true, "id", id);
    sim_json_put_kv(&f, false, "via", via);
    sim_json_put_kv(&f, false, "from", mail_from);
    sim_json_put_kv(&f, false, "rcpt", rcpt);
    sim_json_put_kv(&f, false, "status", status);
    sim_json_put_kv(&f, false, "store", store);
    sim_json_put_kv(&f, false, "user", user);
    buf_printf(&f, ",\"uid\":%u,\"size\":%zu", uid, message->len);
    buf_printf(&r, "id=%s via=%s from=<%s> to=<%s> status=%s store=%s user=%s uid=%u", id, via,
               mail_from, rcpt, status, store, user, uid);
    sim_run_record(run, "delivery", f.data, r.data);
    log_info("delivery id=%s via=%s from=<%s> to=<%s> status=%s store=%s user=%s uid=%u", id,
             via, mail_from, rcpt, status, store, user, uid);
    buf_free(&f);
    buf_free(&r);
}

static void sim_smtpd_message(void *ctx, const struct sim_smtp_tx *tx, char *reply, size_t size)
{
    struct sim_smtpd_conn *c = ctx;
    struct sim_run *run = c->run;
    const struct sim_world *w = run->world;
    const struct sim_service *svc = &w->services[c->service];
    const struct sim_host *me = &w->hosts[svc->host];
    char id[32], date[TIMEFMT_RFC5322_LEN], pub[NETADDR_STRLEN];
    struct netaddr pubaddr;
    /* An MX takes the message for all its recipients or for none: a mailbox over its quota
     * refuses the whole message (as received, before the Received lines). */
    if (svc->kind == SIM_SVC_MX) {
        for (int i = 0; i < tx->nrcpts; i++) {
            int box = sim_world_mailbox_for(w, svc->store, tx->rcpts[i]);
            if (box >= 0 && !sim_store_fits(&run->store, box, tx->data.len)) {
                sim_smtpd_full_reply(&run->store, box, tx->rcpts[i], reply, size);
                log_info("smtp session=%llu host=%s rcpt=<%s> over-quota: message refused",
                         c->id, me->name, tx->rcpts[i]);
                return;
            }
        }
    }
    sim_smtpd_new_id(run, c->service, id, sizeof id);
    timefmt_rfc5322(time(NULL), date, sizeof date);
    sim_world_public_of(w, &c->peer, &pubaddr);
    netaddr_format(&pubaddr, pub, sizeof pub);

    for (int i = 0; i < tx->nrcpts; i++) {
        const char *rcpt = tx->rcpts[i];
        struct buf msg;
        buf_init(&msg, 0);
        /* RFC 3848: esmtps over TLS, esmtpa authenticated, esmtpsa both */
        buf_printf(&msg, "Received: from [%s] (helo=%s)\r\n\tby %s with esmtp%s%s (ispsim)\r\n"
                         "\tid %s\r\n\tfor <%s>; %s\r\n", pub, tx->helo, me->name,
                   c->s.tls ? "s" : "", c->s.authed ? "a" : "", id, rcpt, date);
        buf_append(&msg, tx->data.data ? tx->data.data : "", tx->data.len);
        if (svc->kind == SIM_SVC_MX) {
            sim_smtpd_store(run, me->name, c->service, me->name, rcpt, tx->mail_from, &msg, id,
                            tx->data.len);
        } else {
            const char *domain = NULL;
            int mx = sim_smtpd_domain_of(rcpt, &domain) ? sim_world_mx_for_domain(w, domain) : -1;
            if (mx >= 0 && !svc->handoff) {
                /* over SMTP to the MX, from the smarthost's address (sim_relay.c) */
                if (!sim_relay_submit(run, c->service, id, tx->mail_from, rcpt, mx, msg.data,
                                      msg.len))
                    log_warnx("relay id=%s to=<%s>: queue full, message dropped", id, rcpt);
            } else if (mx < 0) {
                sim_smtpd_store(run, me->name, -1, me->name, rcpt, tx->mail_from, &msg, id,
                                tx->data.len);
                if (!svc->handoff) {
                    char why[SIM_SMTP_PATH_MAX + 64];
                    snprintf(why, sizeof why, "550 5.4.4 <%s>: no mail exchanger for %s in the "
                             "world", rcpt, domain ? domain : "");
                    sim_relay_bounce(run, c->service, id, tx->mail_from, rcpt, "", why, msg.data,
                                     msg.len);
                }
            } else {
                /* The in-process hand-off to the destination MX, which adds its own line. */
                const struct sim_host *mxh = &w->hosts[w->services[mx].host];
                char mid[32], mepub[NETADDR_STRLEN];
                sim_smtpd_new_id(run, mx, mid, sizeof mid);
                netaddr_format(&me->pub, mepub, sizeof mepub);
                struct buf hop;
                buf_init(&hop, 0);
                buf_printf(&hop, "Received: from [%s] (helo=%s)\r\n\tby %s with esmtp (ispsim)"
                                 "\r\n\tid %s\r\n\tfor <%s>; %s\r\n", mepub, me->name, mxh->name,
                           mid, rcpt, date);
                buf_append(&hop, msg.data, msg.len);
                sim_smtpd_store(run, me->name, mx, mxh->name, rcpt, tx->mail_from, &hop, id,
                                tx->data.len);
                buf_free(&hop);
            }
        }
        buf_free(&msg);
    }
    snprintf(reply, size, "250 2.0.0 Ok: queued as %s", id);
}

static bool sim_smtpd_auth_check(void *ctx, const char *user, const char *pass)
{
    struct sim_smtpd_conn *c = ctx;
    const struct sim_service *svc = &c->run->world->services[c->service];
    bool ok = strcmp(user, svc->auth_user) == 0 && strcmp(pass, svc->auth_pass) == 0;
    log_info("smtp session=%llu host=%s peer=%s auth user=%s result=%s", c->id, sim_smtpd_host(c),
             c->peer_text, user, ok ? "ok" : "failed");
    return ok;
}

/* One "tls" record and log line when a handshake is done. */
static void sim_smtpd_tls_record(struct sim_smtpd_conn *c)
{
    char desc[128];
    sim_tls_describe(c->bev, desc, sizeof desc);
    struct buf f, r;
    buf_init(&f, 0);
    buf_init(&r, 0);
    sim_smtpd_fields(c, &f);
    sim_json_put_kv(&f, false, "proto", "smtp");
    sim_json_put_kv(&f, false, "tls", desc);
    buf_printf(&r, "%llu %s %s smtp %s", c->id, sim_smtpd_host(c), c->peer_text, desc);
    sim_run_record(c->run, "tls", f.data, r.data);
    log_info("smtp session=%llu host=%s peer=%s tls=\"%s\"", c->id, sim_smtpd_host(c),
             c->peer_text, desc);
    buf_free(&f);
    buf_free(&r);
}

static void sim_smtpd_free(struct sim_smtpd_conn *c)
{
    log_info("smtp session=%llu host=%s peer=%s closed", c->id, sim_smtpd_host(c), c->peer_text);
    if (c->timer)
        event_free(c->timer);
    if (c->plain_read)
        event_free(c->plain_read);
    if (c->bev)
        bufferevent_free(c->bev);
    sim_smtp_session_free(&c->s);
    free(c);
}

static void sim_smtpd_event(struct bufferevent *bev, short what, void *arg);
static void sim_smtpd_read(struct bufferevent *bev, void *arg);

/*
 * Sends a reply. On a plain connection with nothing queued it goes straight to the socket
 * (as a sink ispsim must not cost more than smtp-sink: libevent would switch the write event
 * on and off for every reply); the rest, and everything over TLS, through the bufferevent.
 */
static void sim_smtpd_send(struct sim_smtpd_conn *c, const char *data, size_t len)
{
    if (!c->s.tls && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        ssize_t n = send(bufferevent_getfd(c->bev), data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        }
    }
    if (len)
        bufferevent_write(c->bev, data, len);
}

/* Sends what the engine wrote and acts on its status. true: c was freed. */
static bool sim_smtpd_after(struct sim_smtpd_conn *c, enum sim_smtp_status st)
{
    if (c->s.out.len) {
        sim_smtpd_send(c, c->s.out.data, c->s.out.len);
        buf_reset(&c->s.out);
    }
    if (st == SIM_SMTP_TLS) {
        if (c->plain_read) {
            /* from here on the TLS filter reads the socket through the plain bufferevent */
            event_free(c->plain_read);
            c->plain_read = NULL;
            bufferevent_enable(c->bev, EV_READ);
        }
        struct bufferevent *f = sim_tls_wrap(c->run, c->run->world->services[c->service].host,
                                             c->bev);
        c->bev = f;
        if (!f) {
            log_warnx("smtp session=%llu host=%s: cannot start TLS", c->id, sim_smtpd_host(c));
            c->closing = true;
            /* the plain bufferevent is gone; nothing more can be sent */
            if (c->timer)
                event_free(c->timer);
            sim_smtp_session_free(&c->s);
            free(c);
            return true;
        }
        bufferevent_setcb(f, sim_smtpd_read, NULL, sim_smtpd_event, c);
        bufferevent_enable(f, EV_READ | EV_WRITE);
        return sim_smtpd_after(c, sim_smtp_tls_started(&c->s));
    }
    if (st == SIM_SMTP_WAIT) {
        struct timeval tv = {.tv_sec = c->s.delay_ms / 1000,
                             .tv_usec = (long)(c->s.delay_ms % 1000) * 1000};
        evtimer_add(c->timer, &tv);
    } else if (st == SIM_SMTP_CLOSE && !c->closing) {
        /* what is written goes out (through TLS too), then the socket closes */
        c->closing = true;
        if (c->plain_read) {
            event_free(c->plain_read);
            c->plain_read = NULL;
        }
        sim_run_linger(c->run, c->bev);
        c->bev = NULL;
        sim_smtpd_free(c);
        return true;
    }
    return false;
}

static void sim_smtpd_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sim_smtpd_conn *c = arg;
    (void)sim_smtpd_after(c, sim_smtp_resume(&c->s));
}

/* Feeds one chunk to the engine. true: c was freed or is now behind TLS (stop reading here). */
static bool sim_smtpd_feed(struct sim_smtpd_conn *c, const char *data, size_t len)
{
    const struct bufferevent *bev = c->bev;
    enum sim_smtp_status st = sim_smtp_feed(&c->s, data, len);
    if (st == SIM_SMTP_WAIT && evtimer_pending(c->timer, NULL)) {
        if (c->s.out.len) {
            sim_smtpd_send(c, c->s.out.data, c->s.out.len);
            buf_reset(&c->s.out);
        }
        return false;
    }
    return sim_smtpd_after(c, st) || c->bev != bev;
}

static void sim_smtpd_read(struct bufferevent *bev, void *arg)
{
    struct sim_smtpd_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char chunk[SIM_SMTPD_READ_CHUNK];
    while (!c->closing && evbuffer_get_length(in) > 0) {
        int n = evbuffer_remove(in, chunk, sizeof chunk);
        if (n <= 0 || sim_smtpd_feed(c, chunk, (size_t)n))
            return;
    }
}

/*
 * Reads a plain connection straight from its socket: a bufferevent asks the kernel how much
 * is readable (FIONREAD) before every read, one system call in nine of a sink's per-message
 * work. Everything read goes to the engine, which keeps bytes that follow a STARTTLS and
 * drops them when the handshake is done (RFC 3207 4.2).
 */
static void sim_smtpd_plain_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct sim_smtpd_conn *c = arg;
    char chunk[SIM_SMTPD_READ_CHUNK];
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) {
        (void)sim_smtpd_feed(c, chunk, (size_t)n);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    sim_smtpd_event(c->bev, n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR, c);
}

static void sim_smtpd_event(struct bufferevent *bev, short what, void *arg)
{
    struct sim_smtpd_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        sim_smtpd_tls_record(c); /* a TLS handshake completed */
        return;
    }
    if ((what & BEV_EVENT_ERROR) && c->s.tls) {
        char e[256];
        sim_tls_error(bev, e, sizeof e);
        log_info("smtp session=%llu host=%s peer=%s tls error: %s", c->id, sim_smtpd_host(c),
                 c->peer_text, e);
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (!c->closing)
            sim_smtp_eof(&c->s);
        sim_smtpd_free(c);
    }
}

static void sim_smtpd_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                             int salen, void *arg)
{
    (void)l;
    (void)salen;
    struct sim_listen_arg *la = arg;
    struct sim_run *run = la->run;
    int service = la->service;
    struct sim_smtpd_conn *c = xcalloc(1, sizeof *c);
    c->run = run;
    c->service = service;
    c->id = ++run->next_session;
    netaddr_from_sockaddr(sa, &c->peer);
    netaddr_unmap_v4(&c->peer);
    sim_run_peer_text(sa, c->peer_text, sizeof c->peer_text);
    const struct sim_service *svc = &run->world->services[service];
    c->bev = la->tls ? sim_tls_accept(run, svc->host, fd)
                     : bufferevent_socket_new(run->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        log_warnx("smtp host=%s: cannot set up the connection", sim_smtpd_host(c));
        evutil_closesocket(fd);
        free(c);
        return;
    }
    c->timer = evtimer_new(run->base, sim_smtpd_timer, c);
    c->hooks = (struct sim_smtp_hooks){.ctx = c, .script = sim_smtpd_script,
                                       .rcpt_check = sim_smtpd_rcpt_check,
                                       .message = sim_smtpd_message,
                                       .transcript = sim_smtpd_transcript,
                                       .violation = sim_smtpd_violation,
                                       .auth_check = svc->auth_user[0] ? sim_smtpd_auth_check
                                                                       : NULL};
    sim_smtp_session_init(&c->s, &c->hooks, sim_smtpd_host(c));
    c->s.tls = la->tls;
    c->s.brief_data = run->brief;
    c->s.offer_starttls = svc->starttls && !run->starttls_off[svc->host];
    bufferevent_setcb(c->bev, sim_smtpd_read, NULL, sim_smtpd_event, c);
    if (la->tls) {
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    } else {
        bufferevent_enable(c->bev, EV_WRITE);
        c->plain_read = event_new(run->base, fd, EV_READ | EV_PERSIST, sim_smtpd_plain_read, c);
        event_add(c->plain_read, NULL);
    }
    log_info("smtp session=%llu host=%s peer=%s connect%s", c->id, sim_smtpd_host(c), c->peer_text,
             la->tls ? " tls=implicit" : "");
    (void)sim_smtpd_after(c, sim_smtp_start(&c->s));
}

static int sim_smtpd_listen_port(struct sim_run *run, int service, unsigned port, bool tls)
{
    if (!sim_run_listen(run, service, port, tls, sim_smtpd_accept, "smtp"))
        return -1;
    const struct sim_service *svc = &run->world->services[service];
    log_info("smtp host=%s port=%u listening role=%s%s%s", run->world->hosts[svc->host].name, port,
             svc->kind == SIM_SVC_SMARTHOST ? "smarthost" : "mx", tls ? " tls=implicit" : "",
             !tls && svc->starttls ? " starttls=yes" : "");
    return 0;
}

int sim_smtpd_listen(struct sim_run *run, int service)
{
    if (sim_smtpd_listen_port(run, service, 25, false) < 0)
        return -1;
    if (run->world->services[service].implicit_tls &&
        sim_smtpd_listen_port(run, service, 465, true) < 0)
        return -1;
    return 0;
}
