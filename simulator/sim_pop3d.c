/* sim_pop3d: the world's POP3 servers (`pop3 HOST store STORE`) on HOST:110, over sim_pop3. */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "sim_json.h"
#include "sim_pop3.h"
#include "sim_run.h"
#include "sim_tls.h"
#include "xalloc.h"

struct sim_pop3d_conn {
    struct sim_run *run;
    int service;
    int mailbox;            /* locked mailbox after login, else -1 */
    unsigned long long id;
    char peer[NETADDR_STRLEN + 8];
    struct bufferevent *bev;
    struct sim_pop3_hooks hooks;
    struct sim_pop3_session s;
    bool closing;
};

static const char *sim_pop3d_host(const struct sim_pop3d_conn *c)
{
    const struct sim_world *w = c->run->world;
    return w->hosts[w->services[c->service].host].name;
}

static void sim_pop3d_record(struct sim_pop3d_conn *c, const char *kind, const char *k1,
                             const char *v1, const char *k2, const char *v2, size_t v2len)
{
    struct buf f, r;
    buf_init(&f, 0);
    buf_init(&r, 0);
    buf_printf(&f, "\"session\":%llu,", c->id);
    sim_json_put_kv(&f, true, "host", sim_pop3d_host(c));
    sim_json_put_kv(&f, false, "peer", c->peer);
    sim_json_put_kv(&f, false, k1, v1);
    buf_printf(&f, ",\"%s\":", k2);
    sim_json_put_str(&f, v2, v2len);
    buf_printf(&r, "%llu %s %s %s: %.*s", c->id, sim_pop3d_host(c), c->peer, v1,
               (int)(v2len > 200 ? 200 : v2len), v2);
    sim_run_record(c->run, kind, f.data, r.data);
    buf_free(&f);
    buf_free(&r);
}

static void sim_pop3d_transcript(void *ctx, char dir, const char *line, size_t len)
{
    struct sim_pop3d_conn *c = ctx;
    /* PASS arguments are not recorded. */
    if (dir == 'c' && len >= 5 && strncasecmp(line, "PASS ", 5) == 0)
        len = 4;
    sim_pop3d_record(c, "pop3", "dir", dir == 'c' ? "c" : "s", "line", line, len);
}

static void sim_pop3d_violation(void *ctx, const char *kind, const char *detail)
{
    struct sim_pop3d_conn *c = ctx;
    sim_pop3d_record(c, "violation", "violation", kind, "detail", detail, strlen(detail));
    log_warnx("pop3 session=%llu host=%s peer=%s violation=%s detail=\"%s\"", c->id,
              sim_pop3d_host(c), c->peer, kind, detail);
}

static int sim_pop3d_login(void *ctx, const char *user, const char *pass,
                           struct sim_pop3_msg **msgs_r, int *n_r, char *reply, size_t size)
{
    struct sim_pop3d_conn *c = ctx;
    struct sim_run *run = c->run;
    const struct sim_world *w = run->world;
    int store = w->services[c->service].store;
    int box = sim_store_find(&run->store, w->stores[store], user);
    if (box < 0 || strcmp(w->mailboxes[box].password, pass) != 0) {
        log_info("pop3 session=%llu host=%s user=%s login=failed", c->id, sim_pop3d_host(c), user);
        snprintf(reply, size, "-ERR [AUTH] invalid user or password");
        return -1;
    }
    if (run->pop3_locked[box]) {
        snprintf(reply, size, "-ERR [IN-USE] mailbox in use");
        return -1;
    }
    run->pop3_locked[box] = true;
    c->mailbox = box;
    const struct sim_store_box *b = &run->store.boxes[box];
    struct sim_pop3_msg *msgs = xcalloc((size_t)b->n + 1, sizeof *msgs);
    for (int i = 0; i < b->n; i++) {
        msgs[i].uid = b->msgs[i].uid;
        msgs[i].size = b->msgs[i].size;
    }
    *msgs_r = msgs;
    *n_r = b->n;
    log_info("pop3 session=%llu host=%s user=%s login=ok messages=%d", c->id, sim_pop3d_host(c),
             user, b->n);
    return 0;
}

static int sim_pop3d_read(void *ctx, unsigned uid, char **data_r, size_t *len_r)
{
    struct sim_pop3d_conn *c = ctx;
    return sim_store_read(&c->run->store, c->mailbox, uid, data_r, len_r);
}

static void sim_pop3d_commit(void *ctx, const struct sim_pop3_msg *msgs, int n)
{
    struct sim_pop3d_conn *c = ctx;
    bool removed = false;
    for (int i = 0; i < n; i++) {
        if (!msgs[i].deleted)
            continue;
        if (sim_store_remove_nosync(&c->run->store, c->mailbox, msgs[i].uid) < 0)
            log_warn("pop3 session=%llu: cannot remove uid %u", c->id, msgs[i].uid);
        else
            removed = true;
    }
    /* one folder fsync for the whole UPDATE state, before the +OK and the records */
    if (removed && sim_store_sync(&c->run->store, c->mailbox) < 0)
        log_warn("pop3 session=%llu: cannot sync the mailbox folder", c->id);
    for (int i = 0; i < n; i++) {
        if (!msgs[i].deleted)
            continue;
        char uid[16];
        snprintf(uid, sizeof uid, "%u", msgs[i].uid);
        sim_pop3d_record(c, "pop3", "deleted", c->run->world->mailboxes[c->mailbox].user, "uid",
                         uid, strlen(uid));
    }
}

static void sim_pop3d_free(struct sim_pop3d_conn *c)
{
    if (c->mailbox >= 0)
        c->run->pop3_locked[c->mailbox] = false;
    if (c->bev)
        bufferevent_free(c->bev);
    sim_pop3_free(&c->s);
    free(c);
}

static void sim_pop3d_event(struct bufferevent *bev, short what, void *arg)
{
    struct sim_pop3d_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        /* a TLS handshake completed */
        char desc[128];
        sim_tls_describe(bev, desc, sizeof desc);
        struct buf f, r;
        buf_init(&f, 0);
        buf_init(&r, 0);
        buf_printf(&f, "\"session\":%llu,", c->id);
        sim_json_put_kv(&f, true, "host", sim_pop3d_host(c));
        sim_json_put_kv(&f, false, "peer", c->peer);
        sim_json_put_kv(&f, false, "proto", "pop3");
        sim_json_put_kv(&f, false, "tls", desc);
        buf_printf(&r, "%llu %s %s pop3 %s", c->id, sim_pop3d_host(c), c->peer, desc);
        sim_run_record(c->run, "tls", f.data, r.data);
        log_info("pop3 session=%llu host=%s peer=%s tls=\"%s\"", c->id, sim_pop3d_host(c),
                 c->peer, desc);
        buf_free(&f);
        buf_free(&r);
        return;
    }
    if ((what & BEV_EVENT_ERROR) && c->s.tls) {
        char e[256];
        sim_tls_error(bev, e, sizeof e);
        log_info("pop3 session=%llu host=%s peer=%s tls error: %s", c->id, sim_pop3d_host(c),
                 c->peer, e);
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (!c->closing)
            sim_pop3_eof(&c->s);
        sim_pop3d_free(c);
    }
}

/* Sends the output; true when c was freed. */
static bool sim_pop3d_flush(struct sim_pop3d_conn *c, bool keep)
{
    if (c->s.out.len) {
        bufferevent_write(c->bev, c->s.out.data, c->s.out.len);
        buf_reset(&c->s.out);
    }
    if (keep || c->closing)
        return false;
    /* what is written goes out (through TLS too), then the socket closes */
    c->closing = true;
    sim_run_linger(c->run, c->bev);
    c->bev = NULL;
    sim_pop3d_free(c);
    return true;
}

static void sim_pop3d_read_cb(struct bufferevent *bev, void *arg)
{
    struct sim_pop3d_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char chunk[16384];
    while (!c->closing && evbuffer_get_length(in) > 0) {
        int n = evbuffer_remove(in, chunk, sizeof chunk);
        if (n <= 0)
            break;
        if (sim_pop3d_flush(c, sim_pop3_feed(&c->s, chunk, (size_t)n)))
            return;
        if (c->s.stls_now) {
            /* "+OK Begin TLS negotiation" is in the plain output; TLS follows it */
            c->bev = sim_tls_wrap(c->run, c->run->world->services[c->service].host, c->bev);
            if (!c->bev) {
                log_warnx("pop3 session=%llu: cannot start TLS", c->id);
                if (c->mailbox >= 0)
                    c->run->pop3_locked[c->mailbox] = false;
                sim_pop3_free(&c->s);
                free(c);
                return;
            }
            bufferevent_setcb(c->bev, sim_pop3d_read_cb, NULL, sim_pop3d_event, c);
            bufferevent_enable(c->bev, EV_READ | EV_WRITE);
            sim_pop3_tls_started(&c->s);
            return;
        }
    }
}

static void sim_pop3d_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                             int salen, void *arg)
{
    (void)l;
    (void)salen;
    struct sim_listen_arg *la = arg;
    struct sim_pop3d_conn *c = xcalloc(1, sizeof *c);
    c->run = la->run;
    c->service = la->service;
    c->mailbox = -1;
    c->id = ++la->run->next_session;
    sim_run_peer_text(sa, c->peer, sizeof c->peer);
    const struct sim_service *svc = &la->run->world->services[la->service];
    c->bev = la->tls ? sim_tls_accept(la->run, svc->host, fd)
                     : bufferevent_socket_new(la->run->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        log_warnx("pop3 host=%s: cannot set up the connection", sim_pop3d_host(c));
        evutil_closesocket(fd);
        free(c);
        return;
    }
    c->hooks = (struct sim_pop3_hooks){.ctx = c, .login = sim_pop3d_login, .read = sim_pop3d_read,
                                       .commit = sim_pop3d_commit,
                                       .transcript = sim_pop3d_transcript,
                                       .violation = sim_pop3d_violation};
    sim_pop3_init(&c->s, &c->hooks, sim_pop3d_host(c));
    c->s.tls = la->tls;
    c->s.offer_stls = svc->starttls && !la->run->starttls_off[svc->host];
    bufferevent_setcb(c->bev, sim_pop3d_read_cb, NULL, sim_pop3d_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    sim_pop3d_flush(c, true);
}

static int sim_pop3d_listen_port(struct sim_run *run, int service, unsigned port, bool tls)
{
    if (!sim_run_listen(run, service, port, tls, sim_pop3d_accept, "pop3"))
        return -1;
    log_info("pop3 host=%s port=%u listening%s",
             run->world->hosts[run->world->services[service].host].name, port,
             tls ? " tls=implicit" : "");
    return 0;
}

int sim_pop3d_listen(struct sim_run *run, int service)
{
    if (sim_pop3d_listen_port(run, service, 110, false) < 0)
        return -1;
    if (run->world->services[service].implicit_tls &&
        sim_pop3d_listen_port(run, service, 995, true) < 0)
        return -1;
    return 0;
}
