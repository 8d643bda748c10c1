/*
 * sim_imapd: the world's IMAP servers (`imap HOST store STORE`) on HOST:143 (and 993 with
 * `tls implicit`), over sim_imap. Flags live in the store (memory); EXPUNGE removes the files.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sim_imap.h"
#include "sim_json.h"
#include "sim_run.h"
#include "sim_tls.h"
#include "xalloc.h"

#define SIM_IMAPD_IDLE_POLL_MS 200

struct sim_imapd_conn {
    struct sim_run *run;
    int service;
    int mailbox;            /* after login, else -1 */
    unsigned long long id;
    char peer[NETADDR_STRLEN + 8];
    struct bufferevent *bev;
    struct event *idle_timer;
    struct sim_imap_hooks hooks;
    struct sim_imap_session s;
};

static const char *sim_imapd_host(const struct sim_imapd_conn *c)
{
    const struct sim_world *w = c->run->world;
    return w->hosts[w->services[c->service].host].name;
}

static void sim_imapd_record(struct sim_imapd_conn *c, const char *kind, const char *k1,
                             const char *v1, const char *k2, const char *v2, size_t v2len)
{
    struct buf f, r;
    buf_init(&f, 0);
    buf_init(&r, 0);
    buf_printf(&f, "\"session\":%llu,", c->id);
    sim_json_put_kv(&f, true, "host", sim_imapd_host(c));
    sim_json_put_kv(&f, false, "peer", c->peer);
    sim_json_put_kv(&f, false, k1, v1);
    buf_printf(&f, ",\"%s\":", k2);
    sim_json_put_str(&f, v2, v2len);
    buf_printf(&r, "%llu %s %s %s: %.*s", c->id, sim_imapd_host(c), c->peer, v1,
               (int)(v2len > 200 ? 200 : v2len), v2);
    sim_run_record(c->run, kind, f.data, r.data);
    buf_free(&f);
    buf_free(&r);
}

static void sim_imapd_transcript(void *ctx, char dir, const char *line, size_t len)
{
    struct sim_imapd_conn *c = ctx;
    sim_imapd_record(c, "imap", "dir", dir == 'c' ? "c" : "s", "line", line, len);
}

static void sim_imapd_violation(void *ctx, const char *kind, const char *detail)
{
    struct sim_imapd_conn *c = ctx;
    sim_imapd_record(c, "violation", "violation", kind, "detail", detail, strlen(detail));
    log_warnx("imap session=%llu host=%s peer=%s violation=%s detail=\"%s\"", c->id,
              sim_imapd_host(c), c->peer, kind, detail);
}

static int sim_imapd_login(void *ctx, const char *user, const char *pass)
{
    struct sim_imapd_conn *c = ctx;
    const struct sim_world *w = c->run->world;
    int box = sim_store_find(&c->run->store, w->stores[w->services[c->service].store], user);
    bool ok = box >= 0 && strcmp(w->mailboxes[box].password, pass) == 0;
    log_info("imap session=%llu host=%s user=%s login=%s", c->id, sim_imapd_host(c), user,
             ok ? "ok" : "failed");
    if (!ok)
        return -1;
    c->mailbox = box;
    return 0;
}

static void sim_imapd_snapshot(void *ctx, struct sim_imap_msg **msgs_r, int *n_r,
                               unsigned *uidvalidity_r, unsigned *uidnext_r)
{
    struct sim_imapd_conn *c = ctx;
    const struct sim_store_box *b = &c->run->store.boxes[c->mailbox];
    struct sim_imap_msg *m = xcalloc((size_t)b->n + 1, sizeof *m);
    for (int i = 0; i < b->n; i++) {
        m[i].uid = b->msgs[i].uid;
        m[i].size = b->msgs[i].size;
        m[i].flags = b->msgs[i].flags;
    }
    *msgs_r = m;
    *n_r = b->n;
    *uidvalidity_r = c->run->store.uidvalidity;
    *uidnext_r = b->next_uid;
}

static int sim_imapd_read(void *ctx, unsigned uid, char **data_r, size_t *len_r)
{
    struct sim_imapd_conn *c = ctx;
    return sim_store_read(&c->run->store, c->mailbox, uid, data_r, len_r);
}

static void sim_imapd_set_flags(void *ctx, unsigned uid, unsigned flags)
{
    struct sim_imapd_conn *c = ctx;
    struct sim_store_msg *m = sim_store_msg(&c->run->store, c->mailbox, uid);
    if (m)
        m->flags = flags;
}

static void sim_imapd_expunge(void *ctx, unsigned uid)
{
    struct sim_imapd_conn *c = ctx;
    if (sim_store_remove_nosync(&c->run->store, c->mailbox, uid) < 0) {
        log_warn("imap session=%llu: cannot remove uid %u", c->id, uid);
        return;
    }
    char u[16];
    snprintf(u, sizeof u, "%u", uid);
    sim_imapd_record(c, "imap", "deleted", c->run->world->mailboxes[c->mailbox].user, "uid", u,
                     strlen(u));
}

/* After an EXPUNGE's removals, before its tagged OK: one folder fsync for them all. */
static void sim_imapd_expunged(void *ctx)
{
    struct sim_imapd_conn *c = ctx;
    if (sim_store_sync(&c->run->store, c->mailbox) < 0)
        log_warn("imap session=%llu: cannot sync the mailbox folder", c->id);
}

static void sim_imapd_free(struct sim_imapd_conn *c)
{
    log_info("imap session=%llu host=%s peer=%s closed", c->id, sim_imapd_host(c), c->peer);
    event_free(c->idle_timer);
    if (c->bev)
        bufferevent_free(c->bev);
    sim_imap_free(&c->s);
    free(c);
}

/* Sends the output; on !keep closes after it went out. true when c was freed. */
static bool sim_imapd_flush(struct sim_imapd_conn *c, bool keep)
{
    if (c->s.out.len) {
        bufferevent_write(c->bev, c->s.out.data, c->s.out.len);
        buf_reset(&c->s.out);
    }
    if (keep)
        return false;
    sim_run_linger(c->run, c->bev);
    c->bev = NULL;
    sim_imapd_free(c);
    return true;
}

static void sim_imapd_idle_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sim_imapd_conn *c = arg;
    if (!c->s.idling)
        return;
    sim_imap_check(&c->s);
    sim_imapd_flush(c, true);
    struct timeval tv = {.tv_sec = 0, .tv_usec = SIM_IMAPD_IDLE_POLL_MS * 1000L};
    evtimer_add(c->idle_timer, &tv);
}

static void sim_imapd_event(struct bufferevent *bev, short what, void *arg);

static void sim_imapd_read_cb(struct bufferevent *bev, void *arg)
{
    struct sim_imapd_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char chunk[16384];
    while (evbuffer_get_length(in) > 0) {
        int n = evbuffer_remove(in, chunk, sizeof chunk);
        if (n <= 0)
            break;
        bool open = sim_imap_feed(&c->s, chunk, (size_t)n);
        if (sim_imapd_flush(c, open))
            return;
        if (c->s.idling && !evtimer_pending(c->idle_timer, NULL)) {
            struct timeval tv = {.tv_sec = 0, .tv_usec = SIM_IMAPD_IDLE_POLL_MS * 1000L};
            evtimer_add(c->idle_timer, &tv);
        }
        if (c->s.starttls_now) {
            c->bev = sim_tls_wrap(c->run, c->run->world->services[c->service].host, c->bev);
            if (!c->bev) {
                log_warnx("imap session=%llu: cannot start TLS", c->id);
                sim_imapd_free(c);
                return;
            }
            bufferevent_setcb(c->bev, sim_imapd_read_cb, NULL, sim_imapd_event, c);
            bufferevent_enable(c->bev, EV_READ | EV_WRITE);
            sim_imap_tls_started(&c->s);
            return;
        }
    }
}

static void sim_imapd_event(struct bufferevent *bev, short what, void *arg)
{
    struct sim_imapd_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        char desc[128];
        sim_tls_describe(bev, desc, sizeof desc);
        struct buf f, r;
        buf_init(&f, 0);
        buf_init(&r, 0);
        buf_printf(&f, "\"session\":%llu,", c->id);
        sim_json_put_kv(&f, true, "host", sim_imapd_host(c));
        sim_json_put_kv(&f, false, "peer", c->peer);
        sim_json_put_kv(&f, false, "proto", "imap");
        sim_json_put_kv(&f, false, "tls", desc);
        buf_printf(&r, "%llu %s %s imap %s", c->id, sim_imapd_host(c), c->peer, desc);
        sim_run_record(c->run, "tls", f.data, r.data);
        log_info("imap session=%llu host=%s peer=%s tls=\"%s\"", c->id, sim_imapd_host(c),
                 c->peer, desc);
        buf_free(&f);
        buf_free(&r);
        return;
    }
    if ((what & BEV_EVENT_ERROR) && c->s.tls) {
        char e[256];
        sim_tls_error(bev, e, sizeof e);
        log_info("imap session=%llu host=%s peer=%s tls error: %s", c->id, sim_imapd_host(c),
                 c->peer, e);
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        sim_imap_eof(&c->s);
        sim_imapd_free(c);
    }
}

static void sim_imapd_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                             int salen, void *arg)
{
    (void)l;
    (void)salen;
    struct sim_listen_arg *la = arg;
    struct sim_run *run = la->run;
    const struct sim_service *svc = &run->world->services[la->service];
    struct sim_imapd_conn *c = xcalloc(1, sizeof *c);
    c->run = run;
    c->service = la->service;
    c->mailbox = -1;
    c->id = ++run->next_session;
    sim_run_peer_text(sa, c->peer, sizeof c->peer);
    c->bev = la->tls ? sim_tls_accept(run, svc->host, fd)
                     : bufferevent_socket_new(run->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        log_warnx("imap host=%s: cannot set up the connection", sim_imapd_host(c));
        evutil_closesocket(fd);
        free(c);
        return;
    }
    c->idle_timer = evtimer_new(run->base, sim_imapd_idle_tick, c);
    c->hooks = (struct sim_imap_hooks){.ctx = c, .login = sim_imapd_login,
                                       .snapshot = sim_imapd_snapshot, .read = sim_imapd_read,
                                       .set_flags = sim_imapd_set_flags,
                                       .expunge = sim_imapd_expunge,
                                       .expunged = sim_imapd_expunged,
                                       .transcript = sim_imapd_transcript,
                                       .violation = sim_imapd_violation};
    log_info("imap session=%llu host=%s peer=%s connect%s", c->id, sim_imapd_host(c), c->peer,
             la->tls ? " tls=implicit" : "");
    sim_imap_init(&c->s, &c->hooks, sim_imapd_host(c),
                  svc->starttls && !run->starttls_off[svc->host], la->tls);
    bufferevent_setcb(c->bev, sim_imapd_read_cb, NULL, sim_imapd_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    sim_imapd_flush(c, true);
}

static int sim_imapd_listen_port(struct sim_run *run, int service, unsigned port, bool tls)
{
    if (!sim_run_listen(run, service, port, tls, sim_imapd_accept, "imap"))
        return -1;
    log_info("imap host=%s port=%u listening%s",
             run->world->hosts[run->world->services[service].host].name, port,
             tls ? " tls=implicit" : "");
    return 0;
}

int sim_imapd_listen(struct sim_run *run, int service)
{
    if (sim_imapd_listen_port(run, service, 143, false) < 0)
        return -1;
    if (run->world->services[service].implicit_tls &&
        sim_imapd_listen_port(run, service, 993, true) < 0)
        return -1;
    return 0;
}
