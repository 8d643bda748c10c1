/*
 * sim_relay: the smarthost's queue. A message the smarthost accepted goes, one job per
 * recipient, over real SMTP (sim_smtpc) from the smarthost's address to the MX of the
 * recipient's domain inside the world. 2xx: relayed; 5xx: bounced; 4xx or a broken
 * connection: deferred and retried every `retry` seconds (queue.flush: now), at most
 * SIM_RELAY_MAX_ATTEMPTS times. Records of kind "relay".
 */
#include "sim_relay.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sim_json.h"
#include "sim_run.h"
#include "sim_smtpc.h"
#include "timefmt.h"
#include "xalloc.h"

#define SIM_RELAY_MAX_ATTEMPTS 5
#define SIM_RELAY_MAX_JOBS 10000
#define SIM_RELAY_TIMEOUT_S 60

struct sim_relay_job {
    struct sim_relay_job *prev, *next;
    struct sim_run *run;
    char id[32];
    int smarthost;                 /* service */
    int mx;                        /* service */
    char from[SIM_SMTPC_PATH_MAX];
    char rcpt[SIM_SMTPC_PATH_MAX];
    char *data;
    size_t len;
    unsigned attempts;
    unsigned long long session;
    struct event *timer;
    struct bufferevent *bev;
    struct sim_smtpc c;
    bool active;
};

struct sim_relay {
    struct sim_relay_job *jobs;
    int njobs;
};

static struct sim_relay *sim_relay_of(struct sim_run *run)
{
    if (!run->relay)
        run->relay = xcalloc(1, sizeof *run->relay);
    return run->relay;
}

static const char *sim_relay_name(const struct sim_run *run, int service)
{
    return run->world->hosts[run->world->services[service].host].name;
}

static void sim_relay_record(struct sim_relay_job *j, const char *status, const char *reply)
{
    struct sim_run *run = j->run;
    struct buf f, r;
    buf_init(&f, 0);
    buf_init(&r, 0);
    sim_json_put_kv(&f, true, "id", j->id);
    sim_json_put_kv(&f, false, "host", sim_relay_name(run, j->smarthost));
    sim_json_put_kv(&f, false, "mx", sim_relay_name(run, j->mx));
    sim_json_put_kv(&f, false, "from", j->from);
    sim_json_put_kv(&f, false, "rcpt", j->rcpt);
    sim_json_put_kv(&f, false, "status", status);
    sim_json_put_kv(&f, false, "reply", reply);
    buf_printf(&f, ",\"attempt\":%u", j->attempts);
    buf_printf(&r, "id=%s host=%s mx=%s to=<%s> status=%s attempt=%u reply=\"%s\"", j->id,
               sim_relay_name(run, j->smarthost), sim_relay_name(run, j->mx), j->rcpt, status,
               j->attempts, reply);
    sim_run_record(run, "relay", f.data, r.data);
    log_info("relay %s", r.data);
    buf_free(&f);
    buf_free(&r);
}

static void sim_relay_transcript(void *ctx, char dir, const char *line, size_t len)
{
    struct sim_relay_job *j = ctx;
    struct buf f, r;
    buf_init(&f, 0);
    buf_init(&r, 0);
    buf_printf(&f, "\"session\":%llu,", j->session);
    sim_json_put_kv(&f, true, "host", sim_relay_name(j->run, j->smarthost));
    sim_json_put_kv(&f, false, "mx", sim_relay_name(j->run, j->mx));
    buf_printf(&f, ",\"dir\":\"%c\",\"line\":", dir);
    sim_json_put_str(&f, line, len > 1000 ? 1000 : len);
    buf_printf(&r, "%llu %s>%s %c: %.*s", j->session, sim_relay_name(j->run, j->smarthost),
               sim_relay_name(j->run, j->mx), dir, (int)(len > 200 ? 200 : len), line);
    sim_run_record(j->run, "relay-smtp", f.data, r.data);
    buf_free(&f);
    buf_free(&r);
}

static void sim_relay_job_free(struct sim_relay_job *j)
{
    struct sim_relay *q = j->run->relay;
    if (j->prev)
        j->prev->next = j->next;
    else
        q->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    q->njobs--;
    if (j->bev)
        bufferevent_free(j->bev);
    if (j->active)
        sim_smtpc_free(&j->c);
    event_free(j->timer);
    free(j->data);
    free(j);
}

static void sim_relay_try(struct sim_relay_job *j);

static void sim_relay_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sim_relay_try(arg);
}

/* The session ended: act on the recipient's result. May free j. */
static void sim_relay_done(struct sim_relay_job *j)
{
    struct sim_run *run = j->run;
    if (j->bev) {
        sim_run_linger(run, j->bev);
        j->bev = NULL;
    }
    const struct sim_smtpc_rcpt *r = &j->c.rcpts[0];
    int code = r->code ? r->code : 421;
    char reply[SIM_SMTPC_REPLY_MAX];
    snprintf(reply, sizeof reply, "%s", r->code ? r->reply : "421 4.4.2 no answer");
    sim_smtpc_free(&j->c);
    j->active = false;
    if (code / 100 == 2) {
        sim_relay_record(j, "relayed", reply);
        sim_relay_job_free(j);
        return;
    }
    if (code / 100 == 5 || j->attempts >= SIM_RELAY_MAX_ATTEMPTS) {
        sim_relay_record(j, "bounced", reply);
        sim_relay_bounce(run, j->smarthost, j->id, j->from, j->rcpt, sim_relay_name(run, j->mx),
                         reply, j->data, j->len);
        sim_relay_job_free(j);
        return;
    }
    sim_relay_record(j, "deferred", reply);
    unsigned s = run->world->services[j->smarthost].retry_s;
    struct timeval tv = {.tv_sec = s, .tv_usec = 0};
    evtimer_add(j->timer, &tv);
}

static void sim_relay_flush_out(struct sim_relay_job *j)
{
    if (j->c.out.len) {
        bufferevent_write(j->bev, j->c.out.data, j->c.out.len);
        buf_reset(&j->c.out);
    }
}

static void sim_relay_read(struct bufferevent *bev, void *arg)
{
    struct sim_relay_job *j = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char chunk[4096];
    while (evbuffer_get_length(in) > 0) {
        int n = evbuffer_remove(in, chunk, sizeof chunk);
        if (n <= 0)
            break;
        bool more = sim_smtpc_feed(&j->c, chunk, (size_t)n);
        sim_relay_flush_out(j);
        if (!more) {
            sim_relay_done(j);
            return;
        }
    }
}

static void sim_relay_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct sim_relay_job *j = arg;
    if (what & BEV_EVENT_CONNECTED)
        return;
    sim_smtpc_fail(&j->c, what & BEV_EVENT_TIMEOUT ? "timeout" : (what & BEV_EVENT_EOF)
                                                                   ? "connection closed"
                                                                   : "connection failed");
    sim_relay_done(j);
}

static void sim_relay_try(struct sim_relay_job *j)
{
    struct sim_run *run = j->run;
    if (j->active)
        return;
    event_del(j->timer);
    j->attempts++;
    j->active = true;
    j->session = ++run->next_session;
    const struct sim_world *w = run->world;
    const struct sim_host *me = &w->hosts[w->services[j->smarthost].host];
    const struct sim_host *mx = &w->hosts[w->services[j->mx].host];
    sim_smtpc_init(&j->c, me->name, j->from, j->data, j->len);
    sim_smtpc_add_rcpt(&j->c, j->rcpt);
    j->c.transcript = sim_relay_transcript;
    j->c.ctx = j;
    /* The smarthost looks up the domain's MX and the MX's address: the DNS faults count. */
    const char *at = strrchr(j->rcpt, '@');
    const char *names[2] = {at ? at + 1 : "", mx->name};
    for (int i = 0; i < 2; i++) {
        const struct sim_dns_fault_rule *rule = sim_dns_faults_find(&run->dns_faults, names[i]);
        enum sim_dns_fault f = rule ? rule->fault : SIM_DNS_NONE;
        if (f != SIM_DNS_SERVFAIL && f != SIM_DNS_DROP && f != SIM_DNS_NXDOMAIN)
            continue;
        struct sim_smtpc_rcpt *r = &j->c.rcpts[0];
        if (f == SIM_DNS_NXDOMAIN) {
            r->code = 550;
            snprintf(r->reply, sizeof r->reply, "550 5.1.2 <%.200s>: %s %.200s: Host not found", j->rcpt,
                     i ? "address of" : "domain", names[i]);
        } else {
            r->code = 451;
            snprintf(r->reply, sizeof r->reply, "451 4.4.3 <%.200s>: %s lookup for %.200s failed (%s)",
                     j->rcpt, i ? "A" : "MX", names[i],
                     f == SIM_DNS_SERVFAIL ? "SERVFAIL" : "timeout");
        }
        j->c.state = SIM_SMTPC_DONE;
        sim_relay_done(j);
        return;
    }
    struct sockaddr_storage from, to;
    socklen_t fromlen = sim_run_sockaddr(&me->addr, 0, &from);
    socklen_t tolen = sim_run_sockaddr(&mx->addr, 25, &to);
    int fd = socket(to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&from, fromlen) < 0) {
        if (fd >= 0)
            close(fd);
        sim_smtpc_fail(&j->c, "cannot bind the smarthost's address");
        sim_relay_done(j);
        return;
    }
    j->bev = bufferevent_socket_new(run->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(j->bev, sim_relay_read, NULL, sim_relay_event, j);
    struct timeval tmo = {.tv_sec = SIM_RELAY_TIMEOUT_S, .tv_usec = 0};
    bufferevent_set_timeouts(j->bev, &tmo, &tmo);
    bufferevent_enable(j->bev, EV_READ | EV_WRITE);
    log_info("relay id=%s session=%llu host=%s mx=%s to=<%s> attempt=%u", j->id, j->session,
             me->name, mx->name, j->rcpt, j->attempts);
    if (bufferevent_socket_connect(j->bev, (struct sockaddr *)&to, (int)tolen) < 0) {
        sim_smtpc_fail(&j->c, "connection failed");
        sim_relay_done(j);
    }
}

bool sim_relay_submit(struct sim_run *run, int smarthost, const char *id, const char *from,
                      const char *rcpt, int mx, const char *data, size_t len)
{
    struct sim_relay *q = sim_relay_of(run);
    if (q->njobs >= SIM_RELAY_MAX_JOBS)
        return false;
    struct sim_relay_job *j = xcalloc(1, sizeof *j);
    j->run = run;
    snprintf(j->id, sizeof j->id, "%s", id);
    j->smarthost = smarthost;
    j->mx = mx;
    snprintf(j->from, sizeof j->from, "%s", from);
    snprintf(j->rcpt, sizeof j->rcpt, "%s", rcpt);
    j->data = xmalloc(len + 1);
    memcpy(j->data, data, len);
    j->len = len;
    j->timer = evtimer_new(run->base, sim_relay_timer, j);
    j->next = q->jobs;
    if (q->jobs)
        q->jobs->prev = j;
    q->jobs = j;
    q->njobs++;
    /* the first attempt right after the current callback */
    struct timeval now = {0, 0};
    evtimer_add(j->timer, &now);
    return true;
}

/* "5.1.1" from "550 5.1.1 text", else 5.0.0 (4.4.7 style codes after giving up become 5.x). */
static void sim_relay_status(const char *reply, char *out, size_t size)
{
    const char *p = strchr(reply, ' ');
    unsigned a, b, c;
    int used = 0;
    if (p && sscanf(p + 1, "%1u.%3u.%3u%n", &a, &b, &c, &used) == 3 && used >= 5 &&
        (p[1 + used] == ' ' || p[1 + used] == '\0'))
        snprintf(out, size, "5.%u.%u", b, c);
    else
        snprintf(out, size, "5.0.0");
}

void sim_relay_bounce(struct sim_run *run, int smarthost, const char *id, const char *from,
                      const char *rcpt, const char *remote, const char *reply, const char *data,
                      size_t len)
{
    if (!from[0])
        return; /* never a DSN for a DSN (RFC 3461 6.2) */
    const struct sim_world *w = run->world;
    const char *me = sim_relay_name(run, smarthost);
    const char *at = strrchr(from, '@');
    int mx = at ? sim_world_mx_for_domain(w, at + 1) : -1;
    char date[TIMEFMT_RFC5322_LEN], status[16], dsn_id[48];
    timefmt_rfc5322(time(NULL), date, sizeof date);
    sim_relay_status(reply, status, sizeof status);
    snprintf(dsn_id, sizeof dsn_id, "%s-DSN", id);
    /* the original's header section, for text/rfc822-headers */
    size_t hlen = len;
    for (size_t i = 0; i + 3 < len; i++)
        if (memcmp(data + i, "\r\n\r\n", 4) == 0) {
            hlen = i + 2;
            break;
        }
    struct buf m;
    buf_init(&m, 0);
    buf_printf(&m,
               "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
               "To: <%s>\r\n"
               "Subject: Undelivered Mail Returned to Sender\r\n"
               "Date: %s\r\n"
               "Message-ID: <%s@%s>\r\n"
               "Auto-Submitted: auto-replied\r\n"
               "MIME-Version: 1.0\r\n"
               "Content-Type: multipart/report; report-type=delivery-status;\r\n"
               "\tboundary=\"%s/%s\"\r\n"
               "\r\n"
               "This is a MIME-encapsulated message.\r\n"
               "\r\n"
               "--%s/%s\r\n"
               "Content-Type: text/plain; charset=us-ascii\r\n"
               "\r\n"
               "This is the mail system at host %s.\r\n"
               "\r\n"
               "Your message could not be delivered to one or more recipients.\r\n"
               "\r\n"
               "<%s>: %s%s%s\r\n"
               "\r\n"
               "--%s/%s\r\n"
               "Content-Type: message/delivery-status\r\n"
               "\r\n"
               "Reporting-MTA: dns; %s\r\n"
               "Arrival-Date: %s\r\n"
               "\r\n"
               "Final-Recipient: rfc822; %s\r\n"
               "Action: failed\r\n"
               "Status: %s\r\n",
               me, from, date, dsn_id, me, dsn_id, me, dsn_id, me, me, rcpt,
               remote[0] ? "host " : "", remote[0] ? remote : "", remote[0] ? " said: " : "",
               dsn_id, me, me, date, rcpt, status);
    buf_append_str(&m, reply);
    buf_append(&m, "\r\n", 2);
    if (remote[0])
        buf_printf(&m, "Remote-MTA: dns; %s\r\n", remote);
    buf_printf(&m, "Diagnostic-Code: smtp; %s\r\n\r\n--%s/%s\r\n"
                   "Content-Type: text/rfc822-headers\r\n\r\n", reply, dsn_id, me);
    buf_append(&m, data, hlen);
    buf_printf(&m, "\r\n--%s/%s--\r\n", dsn_id, me);
    struct buf f, r;
    buf_init(&f, 0);
    buf_init(&r, 0);
    sim_json_put_kv(&f, true, "id", dsn_id);
    sim_json_put_kv(&f, false, "host", me);
    sim_json_put_kv(&f, false, "mx", mx >= 0 ? sim_relay_name(run, mx) : "");
    sim_json_put_kv(&f, false, "from", "");
    sim_json_put_kv(&f, false, "rcpt", from);
    sim_json_put_kv(&f, false, "status", mx >= 0 ? "dsn" : "no-route");
    sim_json_put_kv(&f, false, "reply", reply);
    buf_append_str(&f, ",\"attempt\":0");
    buf_printf(&r, "id=%s host=%s to=<%s> status=%s (a DSN for <%s>)", dsn_id, me, from,
               mx >= 0 ? "dsn" : "no-route", rcpt);
    sim_run_record(run, "relay", f.data, r.data);
    log_info("relay %s", r.data);
    if (mx >= 0 && !sim_relay_submit(run, smarthost, dsn_id, "", from, mx, m.data, m.len))
        log_warnx("relay id=%s: queue full, DSN dropped", dsn_id);
    buf_free(&f);
    buf_free(&r);
    buf_free(&m);
}

void sim_relay_reset(struct sim_run *run)
{
    while (run->relay && run->relay->jobs)
        sim_relay_job_free(run->relay->jobs);
}

void sim_relay_free(struct sim_run *run)
{
    sim_relay_reset(run);
    free(run->relay);
    run->relay = NULL;
}

void sim_relay_flush(struct sim_run *run, struct buf *out)
{
    int n = 0;
    for (struct sim_relay_job *j = run->relay ? run->relay->jobs : NULL; j; j = j->next)
        if (!j->active) {
            struct timeval now = {0, 0};
            evtimer_add(j->timer, &now);
            n++;
        }
    buf_printf(out, "{\"ok\":true,\"flushed\":%d}", n);
}

void sim_relay_list(struct sim_run *run, struct buf *out)
{
    buf_append_str(out, "{\"ok\":true,\"queue\":[");
    int k = 0;
    for (struct sim_relay_job *j = run->relay ? run->relay->jobs : NULL; j; j = j->next) {
        buf_append_str(out, k++ ? ",{" : "{");
        sim_json_put_kv(out, true, "id", j->id);
        sim_json_put_kv(out, false, "mx", sim_relay_name(run, j->mx));
        sim_json_put_kv(out, false, "from", j->from);
        sim_json_put_kv(out, false, "rcpt", j->rcpt);
        buf_printf(out, ",\"attempts\":%u,\"active\":%s,\"size\":%zu}", j->attempts,
                   j->active ? "true" : "false", j->len);
    }
    buf_append_str(out, "]}");
}
