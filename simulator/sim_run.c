/* sim_run: ispsim's options, world loading, event loop and shared helpers (see sim_run.h). */
#include "sim_run.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "sim_tls.h"
#include "log.h"
#include "str.h"
#include "xalloc.h"

#define SIM_RUN_WORLD_MAX (4u << 20)

void sim_run_peer_text(const struct sockaddr *sa, char *out, size_t size)
{
    struct netaddr a;
    char addr[NETADDR_STRLEN];
    unsigned port = 0;
    if (!netaddr_from_sockaddr(sa, &a)) {
        snprintf(out, size, "local");
        return;
    }
    netaddr_unmap_v4(&a);
    netaddr_format(&a, addr, sizeof addr);
    if (sa->sa_family == AF_INET)
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    else if (sa->sa_family == AF_INET6)
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    snprintf(out, size, "%s:%u", addr, port);
}

void sim_run_note_link_cut(struct sim_run *run, const char *peer_text)
{
    str_copy(run->link_cuts[run->next_link_cut++ % SIM_RUN_LINK_CUTS],
             sizeof run->link_cuts[0], peer_text);
}

bool sim_run_was_link_cut(const struct sim_run *run, const char *peer_text)
{
    for (unsigned i = 0; i < SIM_RUN_LINK_CUTS; i++)
        if (run->link_cuts[i][0] && strcmp(run->link_cuts[i], peer_text) == 0)
            return true;
    return false;
}

void sim_run_record(struct sim_run *run, const char *kind, const char *fields,
                    const char *readable)
{
    sim_records_add(&run->records, kind, fields, readable);
}

struct sim_run_linger {
    struct sim_run_linger *prev, *next;
    struct sim_run *run;
    struct bufferevent *bev;
    struct event *timer;
    unsigned rounds;
};

static size_t sim_run_pending(struct bufferevent *bev)
{
    size_t n = evbuffer_get_length(bufferevent_get_output(bev));
    struct bufferevent *u = bufferevent_get_underlying(bev);
    if (u)
        n += evbuffer_get_length(bufferevent_get_output(u));
    return n;
}

static void sim_run_linger_end(struct sim_run_linger *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        l->run->lingers = l->next;
    if (l->next)
        l->next->prev = l->prev;
    bufferevent_free(l->bev);
    event_free(l->timer);
    free(l);
}

static void sim_run_linger_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sim_run_linger *l = arg;
    if (sim_run_pending(l->bev) == 0 || ++l->rounds > 1000) {
        sim_run_linger_end(l);
        return;
    }
    struct timeval tv = {.tv_sec = 0, .tv_usec = 10000};
    evtimer_add(l->timer, &tv);
}

void sim_run_linger(struct sim_run *run, struct bufferevent *bev)
{
    bufferevent_disable(bev, EV_READ);
    if (sim_run_pending(bev) == 0) {
        bufferevent_free(bev);
        return;
    }
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    struct sim_run_linger *l = xcalloc(1, sizeof *l);
    l->run = run;
    l->bev = bev;
    l->timer = evtimer_new(run->base, sim_run_linger_tick, l);
    l->next = run->lingers;
    if (l->next)
        l->next->prev = l;
    run->lingers = l;
    struct timeval tv = {.tv_sec = 0, .tv_usec = 10000};
    evtimer_add(l->timer, &tv);
}

struct evconnlistener *sim_run_listen(struct sim_run *run, int service, unsigned port, bool tls,
                                      evconnlistener_cb cb, const char *proto)
{
    const struct sim_host *h = &run->world->hosts[run->world->services[service].host];
    struct sockaddr_storage ss;
    socklen_t sslen = sim_run_sockaddr(&h->addr, port, &ss);
    if (run->nlisteners >= SIM_RUN_MAX_LISTENERS) {
        log_warnx("%s host=%s: too many listeners", proto, h->name);
        return NULL;
    }
    struct sim_listen_arg *arg = &run->listen_args[run->nlisteners];
    arg->run = run;
    arg->service = service;
    arg->tls = tls;
    struct evconnlistener *l = evconnlistener_new_bind(
        run->base, cb, arg, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64,
        (struct sockaddr *)&ss, (int)sslen);
    if (!l) {
        log_warn("%s host=%s: cannot listen on port %u", proto, h->name, port);
        return NULL;
    }
    run->listeners[run->nlisteners++] = l;
    return l;
}

socklen_t sim_run_sockaddr(const struct netaddr *addr, unsigned port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (addr->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        memcpy(&sin->sin_addr, addr->bytes, 4);
        return sizeof *sin;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    memcpy(&sin6->sin6_addr, addr->bytes, 16);
    return sizeof *sin6;
}

int sim_run_host_ports(const struct sim_run *run, int host, unsigned *ports, int max)
{
    const struct sim_world *w = run->world;
    int n = 0;
    for (int i = 0; i < w->nservices; i++) {
        const struct sim_service *s = &w->services[i];
        if (s->host != host)
            continue;
        unsigned p = s->kind == SIM_SVC_POP3 ? 110 : s->kind == SIM_SVC_IMAP ? 143 : 25;
        unsigned tp = s->kind == SIM_SVC_POP3 ? 995 : s->kind == SIM_SVC_IMAP ? 993 : 465;
        if (p && n < max)
            ports[n++] = p;
        if (tp && s->implicit_tls && n < max)
            ports[n++] = tp;
    }
    return n;
}

int sim_run_reset(struct sim_run *run, char *err, size_t errsize)
{
    sim_linkd_reset(run);
    sim_relay_reset(run);
    memset(run->starttls_off, 0, sizeof run->starttls_off);
    run->dns_faults.n = 0;
    run->nrules = 0;
    memset(run->messages, 0, sizeof run->messages);
    sim_records_clear(&run->records);
    return sim_store_reset(&run->store, err, errsize);
}

static void sim_run_usage(void)
{
    fprintf(stderr, "usage: ispsim -w WORLD -t\n"
                    "       ispsim -w WORLD -s SOCKET [-d DATADIR] [-r RECORDDIR] [-q] [-v]\n");
}

/* Reads and checks the world (and its DNS data). NULL after printing the error. */
static struct sim_world *sim_run_load(const char *path, struct sim_dns_db **db_r)
{
    char *data;
    size_t len;
    if (fs_read_file(path, SIM_RUN_WORLD_MAX, &data, &len) < 0) {
        log_warn("%s", path);
        return NULL;
    }
    struct cfg_error err;
    struct sim_world *w = sim_world_parse(path, data, len, &err);
    free(data);
    if (!w) {
        log_error("%s", err.text);
        return NULL;
    }
    char e[512];
    struct sim_dns_db *db = sim_dns_db_new(w, e, sizeof e);
    if (!db) {
        log_error("%s: %s", path, e);
        sim_world_free(w);
        return NULL;
    }
    if (db_r)
        *db_r = db;
    else
        sim_dns_db_free(db);
    return w;
}

static void sim_run_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct sim_run *run = arg;
    log_info("signal %d: stopping", (int)sig);
    event_base_loopbreak(run->base);
}

static void sim_run_free(struct sim_run *run)
{
    sim_relay_free(run);
    while (run->lingers)
        sim_run_linger_end(run->lingers);
    sim_linkd_free(run);
    sim_tls_free(run);
    for (int i = 0; i < run->nlisteners; i++)
        evconnlistener_free(run->listeners[i]);
    if (run->udp_event) {
        event_free(run->udp_event);
        close(run->udp_fd);
    }
    for (int i = 0; i < 2; i++)
        if (run->signals[i])
            event_free(run->signals[i]);
    if (run->socket_path && run->base)
        unlink(run->socket_path);
    if (run->base)
        event_base_free(run->base);
    sim_store_close(&run->store);
    sim_records_free(&run->records);
    sim_dns_db_free(run->dns);
    sim_world_free(run->world);
    free(run->world_dir);
}

int sim_run_main(int argc, char **argv)
{
    const char *world_path = NULL, *socket_path = NULL, *datadir = "ispsim-data",
               *recdir = NULL;
    bool check = false;
    int opt;
    log_init("ispsim", stderr);
    bool brief = false;
    while ((opt = getopt(argc, argv, "w:s:d:r:tqvh")) != -1) {
        switch (opt) {
        case 'w': world_path = optarg; break;
        case 's': socket_path = optarg; break;
        case 'd': datadir = optarg; break;
        case 'r': recdir = optarg; break;
        case 't': check = true; break;
        case 'q': brief = true; break;
        case 'v': log_set_level(LOG_LEVEL_DEBUG); break;
        default: sim_run_usage(); return 2;
        }
    }
    if (!world_path || optind != argc || (!check && !socket_path)) {
        sim_run_usage();
        return 2;
    }
    if (check) {
        struct sim_world *w = sim_run_load(world_path, NULL);
        if (!w)
            return 1;
        log_info("world=%s file=%s ok hosts=%d zones=%d services=%d mailboxes=%d", w->name,
                 world_path, w->nhosts, w->nzones, w->nservices, w->nmailboxes);
        sim_world_free(w);
        return 0;
    }

    static struct sim_run run;
    memset(&run, 0, sizeof run);
    run.udp_fd = -1;
    run.world = sim_run_load(world_path, &run.dns);
    if (!run.world)
        return 1;
    run.world_path = (char *)world_path;
    run.world_dir = fs_dirname(world_path);
    run.socket_path = (char *)socket_path;
    run.datadir = (char *)datadir;
    run.brief = brief;
    signal(SIGPIPE, SIG_IGN);
    if (sim_records_init(&run.records, recdir) < 0) {
        log_warn("records: %s", recdir);
        sim_run_free(&run);
        return 1;
    }
    char err[512];
    if (sim_store_open(&run.store, run.world, datadir, run.world_dir, err, sizeof err) < 0) {
        log_error("mailstore: %s", err);
        sim_run_free(&run);
        return 1;
    }
    /* epoll changes are batched per loop turn: fewer epoll_ctl calls per reply */
    struct event_config *cfg = event_config_new();
    if (cfg)
        event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    run.base = cfg ? event_base_new_with_config(cfg) : NULL;
    if (cfg)
        event_config_free(cfg);
    if (!run.base)
        run.base = event_base_new();
    if (!run.base) {
        log_error("event_base_new failed");
        sim_run_free(&run);
        return 1;
    }
    int bad = 0;
    if (sim_tls_init(&run) < 0)
        bad++;
    if (!bad && run.world->nameserver >= 0 && sim_dnsd_listen(&run) < 0)
        bad++;
    for (int i = 0; i < run.world->nservices && !bad; i++) {
        enum sim_service_kind k = run.world->services[i].kind;
        bool smtp = k == SIM_SVC_SMARTHOST || k == SIM_SVC_MX;
        if ((smtp && sim_smtpd_listen(&run, i) < 0) ||
            (k == SIM_SVC_POP3 && sim_pop3d_listen(&run, i) < 0) ||
            (k == SIM_SVC_IMAP && sim_imapd_listen(&run, i) < 0))
            bad++;
    }
    if (!bad && sim_linkd_start(&run) < 0)
        bad++;
    if (!bad && sim_control_listen(&run) < 0)
        bad++;
    if (bad) {
        sim_run_free(&run);
        return 1;
    }
    run.signals[0] = evsignal_new(run.base, SIGTERM, sim_run_signal, &run);
    run.signals[1] = evsignal_new(run.base, SIGINT, sim_run_signal, &run);
    event_add(run.signals[0], NULL);
    event_add(run.signals[1], NULL);
    log_info("ready world=%s listeners=%d control=%s", run.world->name, run.nlisteners,
             socket_path);
    event_base_dispatch(run.base);
    log_info("stopped");
    sim_run_free(&run);
    return 0;
}
