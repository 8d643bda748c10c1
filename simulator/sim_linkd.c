/* sim_linkd: the dial-up link's listeners, forwarding, states and counters (see sim_linkd.h). */
#include "sim_linkd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sim_run.h"
#include "xalloc.h"

#define SIM_LINKD_QUEUE_MAX (1u << 20)   /* bytes queued per direction before reading stops */
#define SIM_LINKD_OUT_MAX (256u << 10)   /* bytes waiting in a socket's output */
#define SIM_LINKD_CHUNK 16384
#define SIM_LINKD_CHUNK_SLOW 512         /* chunks on a link with a bandwidth below 1 Mbit/s */
#define SIM_LINKD_MAX_CONNS 4096

struct sim_link_chunk {
    struct sim_link_chunk *next;
    uint64_t ready_us;
    size_t len;
    size_t off;
    uint8_t data[];
};

struct sim_link_conn;

struct sim_link_pipe {
    struct sim_link_conn *conn;
    int dir;                       /* 0: client to host (up), 1: host to client (down) */
    struct sim_link_chunk *head, *tail;
    size_t queued;
    uint64_t last_ready_us;
    bool src_eof;
    struct event *timer;
    struct sim_link_dot dot;
};

struct sim_link_conn {
    struct sim_linkd *ld;
    struct sim_link_conn *prev, *next;
    unsigned long long id;
    int host;
    unsigned port;
    char peer[NETADDR_STRLEN + 8];
    struct bufferevent *bev[2];    /* 0: the client (LAN side), 1: the host */
    struct sim_link_pipe pipe[2];
    unsigned long long bytes;      /* both directions, delivered */
    unsigned long long dir_bytes[2];
    unsigned long long cut_limit;  /* 0: none */
    bool cut_dot;
    bool stalled;
    bool waiting;                  /* for the dial */
    bool closing;
    const char *close_reason;
    struct event *close_timer;
};

struct sim_linkd_listen {
    struct sim_linkd *ld;
    int host;
    unsigned port;
};

struct sim_linkd {
    struct sim_run *run;
    int index;
    const struct sim_link *cfg;
    enum sim_link_mode mode;
    struct sim_link_profile prof;
    bool online, dialing;
    uint64_t online_since_us, dial_done_us, last_activity_us;
    uint64_t next_free_us[2];
    uint64_t rng;
    unsigned cuts_armed;
    struct event *dial_timer, *idle_timer;
    struct evconnlistener **listeners;
    struct sim_linkd_listen *largs;
    int nlisteners;                /* allocated slots: hosts via the link x their ports */
    bool listening;
    struct sim_link_conn *conns;
    int nconns;
    /* counters since start or reset */
    unsigned long long dials, connected_ms, ticks, bytes[2], connections, cuts, stalls,
        dns_queries, dns_dropped;
};

static uint64_t sim_linkd_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct timeval sim_linkd_tv(uint64_t us)
{
    struct timeval tv = {.tv_sec = (time_t)(us / 1000000u), .tv_usec = (suseconds_t)(us % 1000000u)};
    return tv;
}

/* One "link" record and one log line. extra: more JSON members (",\"k\":v") or "". */
static void sim_linkd_event(struct sim_linkd *ld, const char *event, const char *extra,
                            const char *readable_extra)
{
    struct buf f, r;
    buf_init(&f, 0);
    buf_init(&r, 0);
    sim_json_put_kv(&f, true, "link", ld->cfg->name);
    sim_json_put_kv(&f, false, "event", event);
    buf_append_str(&f, extra);
    buf_printf(&r, "%s %s%s%s", ld->cfg->name, event, readable_extra[0] ? " " : "", readable_extra);
    sim_run_record(ld->run, "link", f.data, r.data);
    log_info("link name=%s event=%s%s%s", ld->cfg->name, event, readable_extra[0] ? " " : "",
             readable_extra);
    buf_free(&f);
    buf_free(&r);
}

static const char *sim_linkd_host(const struct sim_link_conn *c)
{
    return c->ld->run->world->hosts[c->host].name;
}

/* ---- connections -------------------------------------------------------------------------- */

static void sim_linkd_conn_done(struct sim_link_conn *c)
{
    struct sim_linkd *ld = c->ld;
    char extra[768], readable[768];
    snprintf(extra, sizeof extra,
             ",\"conn\":%llu,\"host\":\"%s\",\"port\":%u,\"peer\":\"%s\",\"bytes_up\":%llu,"
             "\"bytes_down\":%llu,\"reason\":\"%s\"",
             c->id, sim_linkd_host(c), c->port, c->peer, c->dir_bytes[0], c->dir_bytes[1],
             c->close_reason ? c->close_reason : "closed");
    snprintf(readable, sizeof readable, "conn=%llu host=%s port=%u peer=%s up=%llu down=%llu reason=%s",
             c->id, sim_linkd_host(c), c->port, c->peer, c->dir_bytes[0], c->dir_bytes[1],
             c->close_reason ? c->close_reason : "closed");
    sim_linkd_event(ld, "close", extra, readable);
    if (c->prev)
        c->prev->next = c->next;
    else
        ld->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ld->nconns--;
    for (int d = 0; d < 2; d++) {
        struct sim_link_chunk *ch = c->pipe[d].head;
        while (ch) {
            struct sim_link_chunk *n = ch->next;
            free(ch);
            ch = n;
        }
        event_free(c->pipe[d].timer);
    }
    event_free(c->close_timer);
    free(c);
}

static void sim_linkd_bev_drained(struct bufferevent *bev, void *arg);

static void sim_linkd_bev_drained_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    sim_linkd_bev_drained(bev, arg);
}

/* Frees a side once what was delivered to it has gone out; the conn when both are gone. */
static void sim_linkd_side_close(struct sim_link_conn *c, int side)
{
    struct bufferevent *bev = c->bev[side];
    if (!bev)
        return;
    if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        bufferevent_disable(bev, EV_READ);
        bufferevent_setcb(bev, NULL, sim_linkd_bev_drained, sim_linkd_bev_drained_event, c);
        bufferevent_enable(bev, EV_WRITE);
        return;
    }
    bufferevent_free(bev);
    c->bev[side] = NULL;
}

static void sim_linkd_bev_drained(struct bufferevent *bev, void *arg)
{
    struct sim_link_conn *c = arg;
    int side = c->bev[0] == bev ? 0 : 1;
    bufferevent_free(bev);
    c->bev[side] = NULL;
    if (!c->bev[0] && !c->bev[1])
        sim_linkd_conn_done(c);
}

/* Stops forwarding: flushes what was delivered, then closes both sides. */
static void sim_linkd_conn_close(struct sim_link_conn *c, const char *reason)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_reason = reason;
    if (strcmp(reason, "closed") != 0 && c->bev[1]) {
        /* the host must not blame the client for what the line did */
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(bufferevent_getfd(c->bev[1]), (struct sockaddr *)&ss, &sl) == 0) {
            char local[NETADDR_STRLEN + 8];
            sim_run_peer_text((struct sockaddr *)&ss, local, sizeof local);
            sim_run_note_link_cut(c->ld->run, local);
        }
    }
    for (int d = 0; d < 2; d++)
        event_del(c->pipe[d].timer);
    event_del(c->close_timer);
    sim_linkd_side_close(c, 0);
    sim_linkd_side_close(c, 1);
    if (!c->bev[0] && !c->bev[1])
        sim_linkd_conn_done(c);
}

static void sim_linkd_close_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sim_linkd_conn_close(arg, "closed");
}

/* One side closed and everything it sent is through: close, after slow-close. */
static void sim_linkd_begin_close(struct sim_link_conn *c)
{
    if (c->closing || evtimer_pending(c->close_timer, NULL))
        return;
    unsigned ms = c->ld->prof.slow_close_ms;
    if (ms == 0) {
        sim_linkd_conn_close(c, "closed");
        return;
    }
    struct timeval tv = sim_linkd_tv((uint64_t)ms * 1000u);
    evtimer_add(c->close_timer, &tv);
}

static void sim_linkd_pipe_run(struct sim_link_pipe *p);

static void sim_linkd_pipe_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sim_linkd_pipe_run(arg);
}

/* Delivers what is due, as the profile allows. May free the connection. */
static void sim_linkd_pipe_run(struct sim_link_pipe *p)
{
    struct sim_link_conn *c = p->conn;
    struct sim_linkd *ld = c->ld;
    if (c->closing || c->waiting)
        return;
    struct bufferevent *src = c->bev[p->dir], *dst = c->bev[1 - p->dir];
    uint64_t now = sim_linkd_now_us();
    while (p->head && !c->stalled) {
        if (evbuffer_get_length(bufferevent_get_output(dst)) > SIM_LINKD_OUT_MAX)
            return; /* the write callback resumes */
        struct sim_link_chunk *ch = p->head;
        uint64_t t = ch->ready_us > ld->next_free_us[p->dir] ? ch->ready_us : ld->next_free_us[p->dir];
        if (t > now) {
            struct timeval tv = sim_linkd_tv(t - now);
            evtimer_add(p->timer, &tv);
            return;
        }
        size_t n = ch->len - ch->off;
        bool cut = false, stall = false;
        const char *why = NULL;
        if (ld->prof.stall_after && c->bytes + n >= ld->prof.stall_after) {
            n = (size_t)(ld->prof.stall_after - c->bytes);
            stall = true;
        }
        if (c->cut_limit && c->bytes + n >= c->cut_limit) {
            n = (size_t)(c->cut_limit - c->bytes);
            cut = true;
            stall = false;
            why = "cut-after";
        }
        if (p->dir == 0 && c->cut_dot) {
            size_t k = sim_link_dot_scan(&p->dot, ch->data + ch->off, n);
            if (k) {
                n = k;
                cut = true;
                stall = false;
                why = "cut-at-dot";
            }
        }
        if (n) {
            bufferevent_write(dst, ch->data + ch->off, n);
            c->bytes += n;
            c->dir_bytes[p->dir] += n;
            ld->bytes[p->dir] += n;
            ld->last_activity_us = now;
            uint64_t base = ld->next_free_us[p->dir] > now ? ld->next_free_us[p->dir] : now;
            ld->next_free_us[p->dir] = base + sim_link_transmit_us(ld->prof.bandwidth, n);
            ch->off += n;
            p->queued -= n;
        }
        if (ch->off == ch->len) {
            p->head = ch->next;
            if (!p->head)
                p->tail = NULL;
            free(ch);
        }
        if (cut) {
            ld->cuts++;
            sim_linkd_conn_close(c, why);
            return;
        }
        if (stall) {
            ld->stalls++;
            c->stalled = true;
            char extra[256], readable[256];
            snprintf(extra, sizeof extra, ",\"conn\":%llu,\"bytes\":%llu", c->id, c->bytes);
            snprintf(readable, sizeof readable, "conn=%llu bytes=%llu", c->id, c->bytes);
            sim_linkd_event(ld, "stall", extra, readable);
            return;
        }
    }
    if (!p->src_eof && p->queued < SIM_LINKD_QUEUE_MAX / 2 && src)
        bufferevent_enable(src, EV_READ);
    if (!p->head && p->src_eof)
        sim_linkd_begin_close(c);
}

static void sim_linkd_read(struct bufferevent *bev, void *arg)
{
    struct sim_link_conn *c = arg;
    int dir = c->bev[0] == bev ? 0 : 1;
    struct sim_link_pipe *p = &c->pipe[dir];
    struct sim_linkd *ld = c->ld;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t chunk = ld->prof.bandwidth && ld->prof.bandwidth < 1000000 ? SIM_LINKD_CHUNK_SLOW
                                                                       : SIM_LINKD_CHUNK;
    uint64_t now = sim_linkd_now_us();
    while (evbuffer_get_length(in) > 0 && p->queued < SIM_LINKD_QUEUE_MAX) {
        size_t n = evbuffer_get_length(in);
        if (n > chunk)
            n = chunk;
        struct sim_link_chunk *ch = xmalloc(sizeof *ch + n);
        ch->next = NULL;
        ch->len = n;
        ch->off = 0;
        evbuffer_remove(in, ch->data, n);
        uint64_t jitter = ld->prof.jitter_ms ? sim_link_rand_upto(&ld->rng, ld->prof.jitter_ms) : 0;
        ch->ready_us = now + ((uint64_t)ld->prof.latency_ms + jitter) * 1000u;
        if (ch->ready_us < p->last_ready_us)
            ch->ready_us = p->last_ready_us;
        p->last_ready_us = ch->ready_us;
        if (p->tail)
            p->tail->next = ch;
        else
            p->head = ch;
        p->tail = ch;
        p->queued += n;
    }
    if (p->queued >= SIM_LINKD_QUEUE_MAX)
        bufferevent_disable(bev, EV_READ);
    sim_linkd_pipe_run(p);
}

/* The output of bev drained: the pipe that writes to it may go on. */
static void sim_linkd_write(struct bufferevent *bev, void *arg)
{
    struct sim_link_conn *c = arg;
    int dir = c->bev[1] == bev ? 0 : 1;
    sim_linkd_pipe_run(&c->pipe[dir]);
}

static void sim_linkd_bev_event(struct bufferevent *bev, short what, void *arg)
{
    struct sim_link_conn *c = arg;
    int side = c->bev[0] == bev ? 0 : 1;
    if (what & BEV_EVENT_CONNECTED)
        return;
    if (c->waiting) {
        /* the client gave up while the line was still dialling */
        sim_linkd_conn_close(c, "closed");
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        c->pipe[side].src_eof = true;
        sim_linkd_conn_close(c, side ? "host-error" : "client-error");
        return;
    }
    if (what & BEV_EVENT_EOF) {
        c->pipe[side].src_eof = true;
        bufferevent_disable(bev, EV_READ);
        sim_linkd_pipe_run(&c->pipe[side]);
    }
}

/* The line is up: connect to the host from the customer's address and start forwarding. */
static void sim_linkd_conn_start(struct sim_link_conn *c)
{
    struct sim_linkd *ld = c->ld;
    struct sim_run *run = ld->run;
    const struct sim_host *h = &run->world->hosts[c->host];
    c->waiting = false;
    struct sockaddr_storage from, to;
    socklen_t fromlen = sim_run_sockaddr(&ld->cfg->from, 0, &from);
    socklen_t tolen = sim_run_sockaddr(&h->addr, c->port, &to);
    int fd = socket(to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&from, fromlen) < 0) {
        log_warn("link name=%s conn=%llu: cannot bind the customer address", ld->cfg->name, c->id);
        if (fd >= 0)
            close(fd);
        sim_linkd_conn_close(c, "bind-failed");
        return;
    }
    c->bev[1] = bufferevent_socket_new(run->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev[1], sim_linkd_read, sim_linkd_write, sim_linkd_bev_event, c);
    if (bufferevent_socket_connect(c->bev[1], (struct sockaddr *)&to, (int)tolen) < 0) {
        sim_linkd_conn_close(c, "connect-failed");
        return;
    }
    bufferevent_enable(c->bev[1], EV_READ | EV_WRITE);
    bufferevent_setcb(c->bev[0], sim_linkd_read, sim_linkd_write, sim_linkd_bev_event, c);
    bufferevent_enable(c->bev[0], EV_READ | EV_WRITE);
    if (evbuffer_get_length(bufferevent_get_input(c->bev[0])) > 0)
        sim_linkd_read(c->bev[0], c); /* sent while the line was dialling */
}

/* ---- the line ------------------------------------------------------------------------------ */

static void sim_linkd_arm_idle(struct sim_linkd *ld, uint64_t now)
{
    if (ld->mode != SIM_LINK_DEMAND || !ld->online || ld->prof.idle_s == 0)
        return;
    uint64_t due = ld->last_activity_us + (uint64_t)ld->prof.idle_s * 1000000u;
    struct timeval tv = sim_linkd_tv(due > now ? due - now : 0);
    evtimer_add(ld->idle_timer, &tv);
}

static void sim_linkd_online(struct sim_linkd *ld)
{
    uint64_t now = sim_linkd_now_us();
    ld->dialing = false;
    ld->online = true;
    ld->online_since_us = now;
    ld->last_activity_us = now;
    sim_linkd_event(ld, "online", "", "");
    sim_linkd_arm_idle(ld, now);
    struct sim_link_conn *c = ld->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->waiting)
            sim_linkd_conn_start(c);
    }
}

static void sim_linkd_dial_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sim_linkd_online(arg);
}

static void sim_linkd_dial(struct sim_linkd *ld)
{
    if (ld->online || ld->dialing)
        return;
    ld->dialing = true;
    ld->dials++;
    uint64_t now = sim_linkd_now_us();
    ld->dial_done_us = now + (uint64_t)ld->prof.dial_delay_ms * 1000u;
    char extra[64], readable[64];
    snprintf(extra, sizeof extra, ",\"dial_delay_ms\":%u", ld->prof.dial_delay_ms);
    snprintf(readable, sizeof readable, "delay=%ums", ld->prof.dial_delay_ms);
    sim_linkd_event(ld, "dial", extra, readable);
    if (ld->prof.dial_delay_ms == 0) {
        sim_linkd_online(ld);
        return;
    }
    struct timeval tv = sim_linkd_tv(ld->dial_done_us - now);
    evtimer_add(ld->dial_timer, &tv);
}

/* Ends the call: every connection through the link is closed. */
static void sim_linkd_hangup(struct sim_linkd *ld, const char *reason)
{
    event_del(ld->dial_timer);
    event_del(ld->idle_timer);
    bool was = ld->online || ld->dialing;
    unsigned long long ms = 0, ticks = 0;
    if (ld->online) {
        ms = (sim_linkd_now_us() - ld->online_since_us) / 1000u;
        ticks = sim_link_ticks(ms, ld->prof.tick_s);
        ld->connected_ms += ms;
        ld->ticks += ticks;
    }
    ld->online = false;
    ld->dialing = false;
    /* conn_close frees only c (or leaves it flushing, still listed), so next stays valid */
    struct sim_link_conn *c = ld->conns, *next;
    for (; c; c = next) {
        next = c->next;
        sim_linkd_conn_close(c, reason);
    }
    if (was) {
        /* the call's cost: its time online and its telefoontikken */
        char extra[160], readable[160];
        snprintf(extra, sizeof extra,
                 ",\"reason\":\"%s\",\"connected_ms\":%llu,\"ticks\":%llu,\"bytes_up\":%llu,"
                 "\"bytes_down\":%llu", reason, ms, ticks, ld->bytes[0], ld->bytes[1]);
        snprintf(readable, sizeof readable, "reason=%s connected=%llums ticks=%llu", reason, ms,
                 ticks);
        sim_linkd_event(ld, "hangup", extra, readable);
    }
}

static void sim_linkd_idle_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sim_linkd *ld = arg;
    uint64_t now = sim_linkd_now_us();
    if (now - ld->last_activity_us >= (uint64_t)ld->prof.idle_s * 1000000u)
        sim_linkd_hangup(ld, "idle");
    else
        sim_linkd_arm_idle(ld, now);
}

static void sim_linkd_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                             int salen, void *arg)
{
    (void)l;
    (void)salen;
    struct sim_linkd_listen *la = arg;
    struct sim_linkd *ld = la->ld;
    struct sim_run *run = ld->run;
    if (ld->nconns >= SIM_LINKD_MAX_CONNS) {
        log_warnx("link name=%s: too many connections, refusing", ld->cfg->name);
        close(fd);
        return;
    }
    struct sim_link_conn *c = xcalloc(1, sizeof *c);
    c->ld = ld;
    c->id = ++run->next_session;
    c->host = la->host;
    c->port = la->port;
    sim_run_peer_text(sa, c->peer, sizeof c->peer);
    c->bev[0] = bufferevent_socket_new(run->base, fd, BEV_OPT_CLOSE_ON_FREE);
    /* read while dialling too: what the client sends waits in the input, and a client that
     * gives up is noticed */
    bufferevent_setcb(c->bev[0], NULL, NULL, sim_linkd_bev_event, c);
    bufferevent_enable(c->bev[0], EV_READ);
    for (int d = 0; d < 2; d++) {
        c->pipe[d].conn = c;
        c->pipe[d].dir = d;
        c->pipe[d].timer = evtimer_new(run->base, sim_linkd_pipe_timer, &c->pipe[d]);
    }
    c->close_timer = evtimer_new(run->base, sim_linkd_close_timer, c);
    const struct sim_link_profile *pr = &ld->prof;
    if ((pr->cut_after || pr->cut_at_dot) && (pr->cut_times == 0 || ld->cuts_armed < pr->cut_times)) {
        ld->cuts_armed++;
        c->cut_limit = pr->cut_after;
        c->cut_dot = pr->cut_at_dot;
    }
    if (pr->random_cut && sim_link_rand_upto(&ld->rng, 999) < pr->random_cut) {
        unsigned long long at = 1 + sim_link_rand_upto(&ld->rng, pr->random_cut_max - 1);
        if (!c->cut_limit || at < c->cut_limit)
            c->cut_limit = at;
    }
    c->next = ld->conns;
    if (ld->conns)
        ld->conns->prev = c;
    ld->conns = c;
    ld->nconns++;
    ld->connections++;
    char extra[768], readable[768];
    snprintf(extra, sizeof extra, ",\"conn\":%llu,\"host\":\"%s\",\"port\":%u,\"peer\":\"%s\"",
             c->id, sim_linkd_host(c), c->port, c->peer);
    snprintf(readable, sizeof readable, "conn=%llu host=%s port=%u peer=%s", c->id,
             sim_linkd_host(c), c->port, c->peer);
    sim_linkd_event(ld, "connect", extra, readable);
    if (ld->online) {
        sim_linkd_conn_start(c);
    } else {
        c->waiting = true;
        sim_linkd_dial(ld);
    }
}

static void sim_linkd_unlisten(struct sim_linkd *ld)
{
    for (int i = 0; i < ld->nlisteners; i++) {
        if (ld->listeners[i])
            evconnlistener_free(ld->listeners[i]);
        ld->listeners[i] = NULL;
    }
    ld->listening = false;
}

static int sim_linkd_listen(struct sim_linkd *ld)
{
    if (ld->listening)
        return 0;
    const struct sim_world *w = ld->run->world;
    for (int i = 0; i < ld->nlisteners; i++) {
        struct sim_linkd_listen *la = &ld->largs[i];
        const struct sim_host *h = &w->hosts[la->host];
        struct sockaddr_storage ss;
        socklen_t len = sim_run_sockaddr(&h->link_addr, la->port, &ss);
        ld->listeners[i] = evconnlistener_new_bind(ld->run->base, sim_linkd_accept, la,
                                                   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64,
                                                   (struct sockaddr *)&ss, (int)len);
        if (!ld->listeners[i]) {
            char a[NETADDR_STRLEN];
            netaddr_format(&h->link_addr, a, sizeof a);
            log_warn("link name=%s host=%s: cannot listen on %s:%u", ld->cfg->name, h->name, a,
                     la->port);
            sim_linkd_unlisten(ld);
            return -1;
        }
    }
    ld->listening = true;
    return 0;
}

/* Sets the mode: down closes the listeners and hangs up; up dials at once and stays up. */
static int sim_linkd_set_mode(struct sim_linkd *ld, enum sim_link_mode mode, bool dial_now)
{
    ld->mode = mode;
    sim_linkd_event(ld, sim_link_mode_name(mode), "", "");
    if (mode == SIM_LINK_DOWN) {
        sim_linkd_hangup(ld, "down");
        sim_linkd_unlisten(ld);
        return 0;
    }
    if (sim_linkd_listen(ld) < 0)
        return -1;
    if (mode == SIM_LINK_UP || dial_now) {
        /* "up" needs no dial delay: the line is there */
        if (mode == SIM_LINK_UP && !ld->online) {
            unsigned d = ld->prof.dial_delay_ms;
            ld->prof.dial_delay_ms = 0;
            sim_linkd_dial(ld);
            ld->prof.dial_delay_ms = d;
        } else {
            sim_linkd_dial(ld);
        }
        event_del(ld->idle_timer);
    }
    sim_linkd_arm_idle(ld, sim_linkd_now_us());
    return 0;
}

static void sim_linkd_defaults(struct sim_linkd *ld)
{
    ld->prof = ld->cfg->profile;
    ld->rng = ld->prof.seed;
    ld->cuts_armed = 0;
    ld->next_free_us[0] = ld->next_free_us[1] = 0;
    ld->dials = ld->connected_ms = ld->ticks = ld->bytes[0] = ld->bytes[1] = 0;
    ld->connections = ld->cuts = ld->stalls = ld->dns_queries = ld->dns_dropped = 0;
}

int sim_linkd_start(struct sim_run *run)
{
    const struct sim_world *w = run->world;
    for (int l = 0; l < w->nlinks; l++) {
        struct sim_linkd *ld = xcalloc(1, sizeof *ld);
        run->links[l] = ld;
        ld->run = run;
        ld->index = l;
        ld->cfg = &w->links[l];
        ld->dial_timer = evtimer_new(run->base, sim_linkd_dial_timer, ld);
        ld->idle_timer = evtimer_new(run->base, sim_linkd_idle_timer, ld);
        int n = 0;
        for (int h = 0; h < w->nhosts; h++) {
            if (w->hosts[h].link != l || h == w->nameserver)
                continue;
            unsigned ports[SIM_RUN_MAX_PORTS];
            int np = sim_run_host_ports(run, h, ports, SIM_RUN_MAX_PORTS);
            for (int i = 0; i < np; i++) {
                ld->largs = xreallocarray(ld->largs, (size_t)n + 1, sizeof *ld->largs);
                ld->largs[n] = (struct sim_linkd_listen){.ld = ld, .host = h, .port = ports[i]};
                n++;
            }
        }
        ld->nlisteners = n;
        ld->listeners = xcalloc((size_t)(n ? n : 1), sizeof(struct evconnlistener *));
        sim_linkd_defaults(ld);
        if (sim_linkd_set_mode(ld, ld->cfg->mode, false) < 0)
            return -1;
        log_info("link name=%s listeners=%d mode=%s", ld->cfg->name, n,
                 sim_link_mode_name(ld->mode));
    }
    return 0;
}

void sim_linkd_free(struct sim_run *run)
{
    for (int l = 0; l < SIM_WORLD_MAX_LINKS; l++) {
        struct sim_linkd *ld = run->links[l];
        if (!ld)
            continue;
        /* Closing conns flush nothing more at exit: free them outright. */
        while (ld->conns) {
            struct sim_link_conn *c = ld->conns;
            for (int s = 0; s < 2; s++)
                if (c->bev[s]) {
                    bufferevent_free(c->bev[s]);
                    c->bev[s] = NULL;
                }
            c->close_reason = "exit";
            sim_linkd_conn_done(c);
        }
        sim_linkd_unlisten(ld);
        event_free(ld->dial_timer);
        event_free(ld->idle_timer);
        free(ld->listeners);
        free(ld->largs);
        free(ld);
        run->links[l] = NULL;
    }
}

void sim_linkd_reset(struct sim_run *run)
{
    for (int l = 0; l < run->world->nlinks; l++) {
        struct sim_linkd *ld = run->links[l];
        if (!ld)
            continue;
        sim_linkd_hangup(ld, "reset");
        sim_linkd_defaults(ld);
        if (sim_linkd_set_mode(ld, ld->cfg->mode, false) < 0)
            log_warnx("link name=%s: reset could not listen again", ld->cfg->name);
    }
}

int sim_linkd_gate(struct sim_run *run, int link, size_t qlen, unsigned *delay_ms)
{
    struct sim_linkd *ld = run->links[link];
    *delay_ms = 0;
    if (!ld)
        return 0;
    ld->dns_queries++;
    if (ld->mode == SIM_LINK_DOWN) {
        ld->dns_dropped++;
        return -1;
    }
    uint64_t now = sim_linkd_now_us();
    uint64_t wait = 0;
    if (!ld->online) {
        sim_linkd_dial(ld);
        if (ld->dialing && ld->dial_done_us > now)
            wait = ld->dial_done_us - now;
    }
    uint64_t j1 = ld->prof.jitter_ms ? sim_link_rand_upto(&ld->rng, ld->prof.jitter_ms) : 0;
    uint64_t j2 = ld->prof.jitter_ms ? sim_link_rand_upto(&ld->rng, ld->prof.jitter_ms) : 0;
    wait += (2u * (uint64_t)ld->prof.latency_ms + j1 + j2) * 1000u;
    wait += sim_link_transmit_us(ld->prof.bandwidth, qlen);
    ld->bytes[0] += qlen;
    ld->last_activity_us = now;
    *delay_ms = (unsigned)(wait / 1000u);
    return 0;
}

void sim_linkd_count_down(struct sim_run *run, int link, size_t n)
{
    struct sim_linkd *ld = run->links[link];
    if (ld)
        ld->bytes[1] += n;
}

/* ---- control ------------------------------------------------------------------------------- */

static struct sim_linkd *sim_linkd_pick(struct sim_run *run, const struct sim_json_obj *req,
                                        struct buf *out)
{
    const char *name = sim_json_str(req, "link");
    int l = name ? sim_world_link_index(run->world, name) : (run->world->nlinks > 0 ? 0 : -1);
    if (l < 0) {
        buf_append_str(out, "{\"ok\":false,");
        char text[160];
        snprintf(text, sizeof text, "no link \"%.100s\" in the world", name ? name : "");
        sim_json_put_kv(out, true, "error", text);
        buf_append_char(out, '}');
        return NULL;
    }
    return run->links[l];
}

static void sim_linkd_stats(struct sim_linkd *ld, struct buf *out)
{
    unsigned long long ms = ld->connected_ms, ticks = ld->ticks;
    if (ld->online) {
        unsigned long long cur = (sim_linkd_now_us() - ld->online_since_us) / 1000u;
        ms += cur;
        ticks += sim_link_ticks(cur, ld->prof.tick_s);
    }
    buf_append_str(out, "{\"ok\":true,");
    sim_json_put_kv(out, true, "link", ld->cfg->name);
    sim_json_put_kv(out, false, "mode", sim_link_mode_name(ld->mode));
    buf_printf(out, ",\"online\":%s,\"dialing\":%s,\"dials\":%llu,\"connected_ms\":%llu,"
                    "\"ticks\":%llu,\"bytes_up\":%llu,\"bytes_down\":%llu,\"connections\":%llu,"
                    "\"open\":%d,\"cuts\":%llu,\"stalls\":%llu,\"dns_queries\":%llu,"
                    "\"dns_dropped\":%llu}",
               ld->online ? "true" : "false", ld->dialing ? "true" : "false", ld->dials, ms,
               ticks, ld->bytes[0], ld->bytes[1], ld->connections, ld->nconns, ld->cuts,
               ld->stalls, ld->dns_queries, ld->dns_dropped);
}

static void sim_linkd_profile(struct sim_linkd *ld, const struct sim_json_obj *req,
                              struct buf *out)
{
    struct sim_link_profile p = ld->prof;
    bool clear = false;
    sim_json_bool(req, "clear", &clear);
    if (clear)
        p = ld->cfg->profile;
    for (int i = 0; i < req->n; i++) {
        const struct sim_json_field *f = &req->fields[i];
        if (strcmp(f->key, "verb") == 0 || strcmp(f->key, "link") == 0 ||
            strcmp(f->key, "clear") == 0)
            continue;
        char value[32], err[160];
        if (f->type == SIM_JSON_NUMBER && f->num >= 0)
            snprintf(value, sizeof value, "%lld", f->num);
        else if (f->type == SIM_JSON_STRING && f->str_len < sizeof value)
            memcpy(value, f->str, f->str_len + 1);
        else
            snprintf(value, sizeof value, "-");
        if (!sim_link_profile_set(&p, f->key, value, err, sizeof err)) {
            buf_append_str(out, "{\"ok\":false,");
            sim_json_put_kv(out, true, "error", err);
            buf_append_char(out, '}');
            return;
        }
    }
    bool reseed = p.seed != ld->prof.seed || clear;
    ld->prof = p;
    if (reseed)
        ld->rng = p.seed;
    ld->cuts_armed = 0;
    if (ld->online && ld->mode == SIM_LINK_DEMAND) {
        event_del(ld->idle_timer);
        sim_linkd_arm_idle(ld, sim_linkd_now_us());
    }
    char readable[256];
    snprintf(readable, sizeof readable,
             "latency=%u jitter=%u bandwidth=%llu cut_after=%llu cut_at=%s stall_after=%llu "
             "random_cut=%u dial_delay=%u idle=%u",
             p.latency_ms, p.jitter_ms, p.bandwidth, p.cut_after, p.cut_at_dot ? "dot" : "none",
             p.stall_after, p.random_cut, p.dial_delay_ms, p.idle_s);
    sim_linkd_event(ld, "profile", "", readable);
    buf_append_str(out, "{\"ok\":true}");
}

bool sim_linkd_control(struct sim_run *run, const char *verb, const struct sim_json_obj *req,
                       struct buf *out)
{
    if (strncmp(verb, "link.", 5) != 0)
        return false;
    const char *v = verb + 5;
    if (strcmp(v, "up") != 0 && strcmp(v, "down") != 0 && strcmp(v, "dial") != 0 &&
        strcmp(v, "profile") != 0 && strcmp(v, "stats") != 0 && strcmp(v, "hangup") != 0)
        return false;
    struct sim_linkd *ld = sim_linkd_pick(run, req, out);
    if (!ld)
        return true;
    if (strcmp(v, "stats") == 0) {
        sim_linkd_stats(ld, out);
    } else if (strcmp(v, "hangup") == 0) {
        /* ends the call now (the line drops); up mode dials again at once, demand on use */
        sim_linkd_hangup(ld, "control");
        if (ld->mode == SIM_LINK_UP) {
            unsigned d = ld->prof.dial_delay_ms;
            ld->prof.dial_delay_ms = 0;
            sim_linkd_dial(ld);
            ld->prof.dial_delay_ms = d;
        }
        sim_linkd_stats(ld, out);
    } else if (strcmp(v, "profile") == 0) {
        sim_linkd_profile(ld, req, out);
    } else {
        bool now = false;
        sim_json_bool(req, "now", &now);
        enum sim_link_mode m = strcmp(v, "up") == 0     ? SIM_LINK_UP
                               : strcmp(v, "down") == 0 ? SIM_LINK_DOWN
                                                        : SIM_LINK_DEMAND;
        if (sim_linkd_set_mode(ld, m, now) < 0) {
            buf_append_str(out, "{\"ok\":false,\"error\":\"cannot listen on the link addresses\"}");
            return true;
        }
        sim_linkd_stats(ld, out);
    }
    return true;
}
