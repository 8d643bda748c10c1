/*
 * sim_dnsd: the world's nameserver on its sockets, port 53 over UDP and TCP (RFC 1035 4.2,
 * RFC 7766). Answers come from sim_dns; every query is recorded (kind "dns").
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
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "sim_json.h"
#include "sim_run.h"
#include "xalloc.h"

#define SIM_DNSD_MSG_MAX 65535

struct sim_dnsd_udp_later {
    struct sim_run *run;
    struct sockaddr_storage to;
    socklen_t tolen;
    uint8_t *wire;
    size_t len;
};

struct sim_dnsd_tcp {
    struct sim_run *run;
    struct bufferevent *bev;
    struct event *timer;
    uint8_t *pending;       /* a delayed answer, with its length prefix */
    size_t pending_len;
    char peer[NETADDR_STRLEN + 8];
};

static void sim_dnsd_log(struct sim_run *run, const char *client, const char *proto,
                         const struct sim_dns_result *res, const char *link_fault)
{
    const struct sim_dns_fault_rule *rule = NULL;
    for (int i = 0; i < run->dns_faults.n && !rule; i++)
        if (strcmp(run->dns_faults.rules[i].name, res->qname) == 0)
            rule = &run->dns_faults.rules[i];
    for (int i = 0; i < run->dns_faults.n && !rule; i++)
        if (strcmp(run->dns_faults.rules[i].name, "*") == 0)
            rule = &run->dns_faults.rules[i];
    const char *answers = res->answers.data ? res->answers.data : "";
    struct buf f, r;
    buf_init(&f, 0);
    buf_init(&r, 0);
    sim_json_put_kv(&f, true, "client", client);
    sim_json_put_kv(&f, false, "proto", proto);
    sim_json_put_kv(&f, false, "name", res->qname);
    sim_json_put_kv(&f, false, "type", res->qtype);
    sim_json_put_kv(&f, false, "rcode", res->rcode);
    sim_json_put_kv(&f, false, "answers", answers);
    sim_json_put_kv(&f, false, "fault",
                    link_fault ? link_fault : rule ? sim_dns_fault_name(rule->fault) : "none");
    buf_printf(&f, ",\"delay_ms\":%u,\"tc\":%s", res->delay_ms, res->truncated ? "true" : "false");
    buf_printf(&r, "%s %s %s %s %s%s [%s]", client, proto, res->qname, res->qtype, res->rcode,
               res->truncated ? " TC" : "", answers);
    sim_run_record(run, "dns", f.data, r.data);
    log_info("dns client=%s proto=%s name=%s type=%s rcode=%s%s", client, proto, res->qname,
             res->qtype, res->rcode, res->truncated ? " tc=1" : "");
    buf_free(&f);
    buf_free(&r);
}

/*
 * The nameserver behind a link answers only through it: a down link drops the answer
 * (res->wire freed, rcode DROPPED); otherwise the link's latency (and dial) is added.
 * Returns the fault text for the log, or NULL.
 */
static const char *sim_dnsd_through_link(struct sim_run *run, size_t qlen,
                                         struct sim_dns_result *res)
{
    int link = run->world->hosts[run->world->nameserver].link;
    if (link < 0)
        return NULL;
    unsigned delay;
    if (sim_linkd_gate(run, link, qlen, &delay) < 0) {
        free(res->wire);
        res->wire = NULL;
        res->len = 0;
        snprintf(res->rcode, sizeof res->rcode, "DROPPED");
        return "link-down";
    }
    if (res->wire) {
        res->delay_ms += delay;
        sim_linkd_count_down(run, link, res->len);
    }
    return NULL;
}

static void sim_dnsd_udp_send_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sim_dnsd_udp_later *l = arg;
    if (sendto(l->run->udp_fd, l->wire, l->len, 0, (struct sockaddr *)&l->to, l->tolen) < 0)
        log_warn("dns: sendto");
    free(l->wire);
    free(l);
}

static void sim_dnsd_udp(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct sim_run *run = arg;
    static uint8_t packet[SIM_DNSD_MSG_MAX];
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof from;
    ssize_t n = recvfrom(fd, packet, sizeof packet, 0, (struct sockaddr *)&from, &fromlen);
    if (n < 0)
        return;
    char client[NETADDR_STRLEN + 8];
    sim_run_peer_text((struct sockaddr *)&from, client, sizeof client);
    struct sim_dns_result res;
    sim_dns_answer(run->dns, &run->dns_faults, packet, (size_t)n, false, &res);
    const char *lf = sim_dnsd_through_link(run, (size_t)n, &res);
    sim_dnsd_log(run, client, "udp", &res, lf);
    if (res.wire && res.delay_ms) {
        struct sim_dnsd_udp_later *l = xcalloc(1, sizeof *l);
        l->run = run;
        memcpy(&l->to, &from, fromlen);
        l->tolen = fromlen;
        l->wire = res.wire;
        l->len = res.len;
        res.wire = NULL;
        struct timeval tv = {.tv_sec = res.delay_ms / 1000, .tv_usec = (long)(res.delay_ms % 1000) * 1000};
        event_base_once(run->base, -1, EV_TIMEOUT, sim_dnsd_udp_send_later, l, &tv);
    } else if (res.wire) {
        if (sendto(fd, res.wire, res.len, 0, (struct sockaddr *)&from, fromlen) < 0)
            log_warn("dns: sendto %s", client);
    }
    sim_dns_result_free(&res);
}

static void sim_dnsd_tcp_free(struct sim_dnsd_tcp *t)
{
    event_free(t->timer);
    bufferevent_free(t->bev);
    free(t->pending);
    free(t);
}

static void sim_dnsd_tcp_read(struct bufferevent *bev, void *arg);

static void sim_dnsd_tcp_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sim_dnsd_tcp *t = arg;
    bufferevent_write(t->bev, t->pending, t->pending_len);
    free(t->pending);
    t->pending = NULL;
    bufferevent_enable(t->bev, EV_READ);
    sim_dnsd_tcp_read(t->bev, t);
}

static void sim_dnsd_tcp_read(struct bufferevent *bev, void *arg)
{
    struct sim_dnsd_tcp *t = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    static uint8_t msg[SIM_DNSD_MSG_MAX];
    while (!t->pending && evbuffer_get_length(in) >= 2) {
        uint8_t lenbytes[2];
        evbuffer_copyout(in, lenbytes, 2);
        size_t len = (size_t)lenbytes[0] << 8 | lenbytes[1];
        if (evbuffer_get_length(in) < len + 2)
            return;
        evbuffer_drain(in, 2);
        evbuffer_remove(in, msg, len);
        struct sim_dns_result res;
        sim_dns_answer(t->run->dns, &t->run->dns_faults, msg, len, true, &res);
        const char *lf = sim_dnsd_through_link(t->run, len, &res);
        sim_dnsd_log(t->run, t->peer, "tcp", &res, lf);
        if (lf) {
            /* the line is down: nothing answers, the connection dies */
            sim_dns_result_free(&res);
            sim_dnsd_tcp_free(t);
            return;
        }
        if (res.wire && res.len <= SIM_DNSD_MSG_MAX) {
            uint8_t *framed = xmalloc(res.len + 2);
            framed[0] = (uint8_t)(res.len >> 8);
            framed[1] = (uint8_t)res.len;
            memcpy(framed + 2, res.wire, res.len);
            if (res.delay_ms) {
                t->pending = framed;
                t->pending_len = res.len + 2;
                bufferevent_disable(bev, EV_READ);
                struct timeval tv = {.tv_sec = res.delay_ms / 1000,
                                     .tv_usec = (long)(res.delay_ms % 1000) * 1000};
                evtimer_add(t->timer, &tv);
            } else {
                bufferevent_write(bev, framed, res.len + 2);
                free(framed);
            }
        }
        sim_dns_result_free(&res);
    }
}

static void sim_dnsd_tcp_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        sim_dnsd_tcp_free(arg);
}

static void sim_dnsd_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                            int salen, void *arg)
{
    (void)l;
    (void)salen;
    struct sim_listen_arg *la = arg;
    struct sim_dnsd_tcp *t = xcalloc(1, sizeof *t);
    t->run = la->run;
    sim_run_peer_text(sa, t->peer, sizeof t->peer);
    t->bev = bufferevent_socket_new(la->run->base, fd, BEV_OPT_CLOSE_ON_FREE);
    t->timer = evtimer_new(la->run->base, sim_dnsd_tcp_timer, t);
    bufferevent_setcb(t->bev, sim_dnsd_tcp_read, NULL, sim_dnsd_tcp_event, t);
    bufferevent_enable(t->bev, EV_READ | EV_WRITE);
}

int sim_dnsd_listen(struct sim_run *run)
{
    const struct sim_host *h = &run->world->hosts[run->world->nameserver];
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sslen;
    if (h->addr.family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(53);
        memcpy(&sin->sin_addr, h->addr.bytes, 4);
        sslen = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(53);
        memcpy(&sin6->sin6_addr, h->addr.bytes, 16);
        sslen = sizeof *sin6;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sslen) < 0) {
        log_warn("dns host=%s: cannot bind UDP port 53", h->name);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    run->udp_fd = fd;
    run->udp_event = event_new(run->base, fd, EV_READ | EV_PERSIST, sim_dnsd_udp, run);
    event_add(run->udp_event, NULL);
    struct sim_listen_arg *arg = &run->listen_args[run->nlisteners];
    arg->run = run;
    arg->service = -1;
    struct evconnlistener *l = evconnlistener_new_bind(
        run->base, sim_dnsd_accept, arg, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64,
        (struct sockaddr *)&ss, (int)sslen);
    if (!l) {
        log_warn("dns host=%s: cannot listen on TCP port 53", h->name);
        return -1;
    }
    run->listeners[run->nlisteners++] = l;
    log_info("dns host=%s listening udp+tcp", h->name);
    return 0;
}
