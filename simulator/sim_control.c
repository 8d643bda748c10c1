/*
 * sim_control: the control protocol on ispsim's Unix socket (docs/ispsim.md, "Control").
 * JSON lines: one request object per line, one reply object per line, in order.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "sim_json.h"
#include "sim_run.h"
#include "str.h"
#include "xalloc.h"

#define SIM_CONTROL_LINE_MAX (80u << 20)

static void sim_control_error(struct buf *out, const char *fmt, ...) LOG_PRINTF(2, 3);

static void sim_control_error(struct buf *out, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    buf_reset(out);
    buf_append_str(out, "{\"ok\":false,");
    sim_json_put_kv(out, true, "error", text);
    buf_append_char(out, '}');
}

static bool sim_control_uint(const struct sim_json_obj *req, const char *key, unsigned long max,
                             unsigned long dflt, unsigned long *v, struct buf *out)
{
    long long n;
    const struct sim_json_field *f = sim_json_get(req, key);
    if (!f) {
        *v = dflt;
        return true;
    }
    if (!sim_json_int(req, key, &n) || n < 0 || (unsigned long long)n > max) {
        sim_control_error(out, "\"%s\" must be a number from 0 to %lu", key, max);
        return false;
    }
    *v = (unsigned long)n;
    return true;
}

static void sim_control_faults_set(struct sim_run *run, const struct sim_json_obj *req,
                                   struct buf *out)
{
    const char *service = sim_json_str(req, "service");
    unsigned long delay;
    if (!sim_control_uint(req, "delay_ms", 600000, 0, &delay, out))
        return;
    if (service && strcmp(service, "dns") == 0) {
        const char *name = sim_json_str(req, "name");
        const char *fault_text = sim_json_str(req, "fault");
        enum sim_dns_fault fault;
        if (!fault_text || !sim_dns_fault_parse(fault_text, &fault)) {
            sim_control_error(out, "dns fault must be none, servfail, nxdomain, drop, delay or truncate");
            return;
        }
        if (!sim_dns_faults_set(&run->dns_faults, name ? name : "*", fault, (unsigned)delay)) {
            sim_control_error(out, "bad name or too many dns faults");
            return;
        }
        buf_printf(out, "{\"ok\":true,\"faults\":%d}", run->dns_faults.n);
        return;
    }
    if (!service || strcmp(service, "smtp") != 0) {
        sim_control_error(out, "service must be dns or smtp");
        return;
    }
    struct sim_smtp_rule r;
    memset(&r, 0, sizeof r);
    r.service = -1;
    const char *host = sim_json_str(req, "host");
    if (host) {
        int h = sim_world_host_index(run->world, host);
        for (int i = 0; h >= 0 && i < run->world->nservices; i++)
            if (run->world->services[i].host == h &&
                (run->world->services[i].kind == SIM_SVC_SMARTHOST ||
                 run->world->services[i].kind == SIM_SVC_MX))
                r.service = i;
        if (r.service < 0) {
            sim_control_error(out, "no SMTP host \"%s\" in the world", host);
            return;
        }
    }
    const char *stage = sim_json_str(req, "stage");
    if (!stage || !sim_smtp_stage_parse(stage, &r.stage)) {
        sim_control_error(out, "stage must be greeting, helo, mail, rcpt, data or dot");
        return;
    }
    unsigned long message;
    if (!sim_control_uint(req, "message", 1000000, 0, &message, out))
        return;
    r.message = (unsigned)message;
    r.act.delay_ms = (unsigned)delay;
    const char *rcpt = sim_json_str(req, "rcpt");
    if (rcpt && !str_copy(r.rcpt, sizeof r.rcpt, rcpt)) {
        sim_control_error(out, "rcpt too long");
        return;
    }
    const char *reply = sim_json_str(req, "reply");
    if (reply) {
        size_t l = strlen(reply);
        bool ok = l >= 3 && l < sizeof r.act.reply && (reply[0] == '4' || reply[0] == '5') &&
                  reply[1] >= '0' && reply[1] <= '9' && reply[2] >= '0' && reply[2] <= '9' &&
                  (l == 3 || reply[3] == ' ') && !strpbrk(reply, "\r\n");
        if (!ok) {
            sim_control_error(out, "reply must be one line \"4xx text\" or \"5xx text\"");
            return;
        }
        memcpy(r.act.reply, reply, l + 1);
    }
    sim_json_bool(req, "hangup", &r.act.hangup);
    if (!reply && !r.act.hangup && !r.act.delay_ms) {
        sim_control_error(out, "an smtp fault needs reply, hangup or delay_ms");
        return;
    }
    if (run->nrules >= SIM_RUN_MAX_RULES) {
        sim_control_error(out, "too many smtp faults (at most %d)", SIM_RUN_MAX_RULES);
        return;
    }
    run->rules[run->nrules++] = r;
    buf_printf(out, "{\"ok\":true,\"faults\":%d}", run->nrules);
}

static void sim_control_faults_clear(struct sim_run *run, const struct sim_json_obj *req,
                                     struct buf *out)
{
    const char *service = sim_json_str(req, "service");
    if (!service || strcmp(service, "dns") == 0)
        run->dns_faults.n = 0;
    if (!service || strcmp(service, "smtp") == 0)
        run->nrules = 0;
    buf_append_str(out, "{\"ok\":true}");
}

static void sim_control_records(struct sim_run *run, const struct sim_json_obj *req,
                                struct buf *out)
{
    unsigned long since, limit;
    if (!sim_control_uint(req, "since", 0xffffffffUL, 0, &since, out) ||
        !sim_control_uint(req, "limit", SIM_RECORDS_READ_MAX, 1000, &limit, out))
        return;
    unsigned long long next;
    buf_append_str(out, "{\"ok\":true,\"records\":");
    sim_records_read(&run->records, sim_json_str(req, "kind"), since, limit, out, &next);
    buf_printf(out, ",\"next\":%llu,\"dropped\":%llu}", next, run->records.dropped);
}

static int sim_control_mailbox(struct sim_run *run, const struct sim_json_obj *req, struct buf *out)
{
    const char *store = sim_json_str(req, "store");
    const char *user = sim_json_str(req, "user");
    int box = store && user ? sim_store_find(&run->store, store, user) : -1;
    if (box < 0)
        sim_control_error(out, "no mailbox \"%s\" in store \"%s\"", user ? user : "",
                          store ? store : "");
    return box;
}

static void sim_control_list(struct sim_run *run, const struct sim_json_obj *req, struct buf *out)
{
    const struct sim_world *w = run->world;
    const char *store = sim_json_str(req, "store");
    if (store && !sim_json_get(req, "user")) {
        int s = sim_world_store_index(w, store);
        if (s < 0) {
            sim_control_error(out, "no store \"%s\"", store);
            return;
        }
        buf_append_str(out, "{\"ok\":true,\"mailboxes\":[");
        int k = 0;
        for (int i = 0; i < w->nmailboxes; i++) {
            if (w->mailboxes[i].store != s)
                continue;
            buf_append_str(out, k++ ? ",{" : "{");
            sim_json_put_kv(out, true, "user", w->mailboxes[i].user);
            const struct sim_store_box *b = &run->store.boxes[i];
            buf_printf(out, ",\"messages\":%d,\"bytes\":%llu,\"quota\":%llu}", b->n, b->used,
                       b->quota);
        }
        buf_append_str(out, "]}");
        return;
    }
    int box = sim_control_mailbox(run, req, out);
    if (box < 0)
        return;
    const struct sim_store_box *b = &run->store.boxes[box];
    buf_append_str(out, "{\"ok\":true,\"messages\":[");
    for (int i = 0; i < b->n; i++)
        buf_printf(out, "%s{\"uid\":%u,\"size\":%zu}", i ? "," : "", b->msgs[i].uid, b->msgs[i].size);
    buf_append_str(out, "]}");
}

static void sim_control_read(struct sim_run *run, const struct sim_json_obj *req, struct buf *out)
{
    int box = sim_control_mailbox(run, req, out);
    if (box < 0)
        return;
    unsigned long uid;
    if (!sim_control_uint(req, "uid", 0xffffffffUL, 0, &uid, out))
        return;
    char *data;
    size_t len;
    if (sim_store_read(&run->store, box, (unsigned)uid, &data, &len) < 0) {
        sim_control_error(out, "no message %lu: %s", uid, strerror(errno));
        return;
    }
    buf_printf(out, "{\"ok\":true,\"uid\":%lu,\"message\":", uid);
    sim_json_put_str(out, data, len);
    buf_append_char(out, '}');
    free(data);
}

static void sim_control_inject(struct sim_run *run, const struct sim_json_obj *req, struct buf *out)
{
    int box = sim_control_mailbox(run, req, out);
    if (box < 0)
        return;
    const struct sim_json_field *m = sim_json_get(req, "message");
    if (!m || m->type != SIM_JSON_STRING) {
        sim_control_error(out, "\"message\" must be a string");
        return;
    }
    /* Line ends become CRLF, as on the wire. */
    struct buf msg;
    buf_init(&msg, SIM_STORE_MSG_MAX);
    bool ok = true;
    for (size_t i = 0; i < m->str_len && ok; i++) {
        if (m->str[i] == '\n' && (i == 0 || m->str[i - 1] != '\r'))
            ok = buf_append_char(&msg, '\r');
        ok = ok && buf_append_char(&msg, m->str[i]);
    }
    if (ok && msg.len >= 1 && msg.data[msg.len - 1] != '\n')
        ok = buf_append(&msg, "\r\n", 2);
    unsigned uid;
    if (!ok || sim_store_deliver(&run->store, box, msg.data ? msg.data : "", msg.len, &uid) < 0) {
        sim_control_error(out, "cannot store the message");
        buf_free(&msg);
        return;
    }
    struct buf f, r;
    buf_init(&f, 0);
    buf_init(&r, 0);
    const struct sim_mailbox *mb = &run->world->mailboxes[box];
    sim_json_put_kv(&f, true, "via", "control");
    sim_json_put_kv(&f, false, "status", "stored");
    sim_json_put_kv(&f, false, "store", run->world->stores[mb->store]);
    sim_json_put_kv(&f, false, "user", mb->user);
    buf_printf(&f, ",\"uid\":%u,\"size\":%zu", uid, msg.len);
    buf_printf(&r, "via=control status=stored store=%s user=%s uid=%u", run->world->stores[mb->store],
               mb->user, uid);
    sim_run_record(run, "delivery", f.data, r.data);
    buf_free(&f);
    buf_free(&r);
    buf_free(&msg);
    buf_printf(out, "{\"ok\":true,\"uid\":%u}", uid);
}

/* mailstore.quota: a mailbox's quota (bytes, 0: none) and reply when full (452 or 552). */
static void sim_control_quota(struct sim_run *run, const struct sim_json_obj *req, struct buf *out)
{
    int box = sim_control_mailbox(run, req, out);
    if (box < 0)
        return;
    struct sim_store_box *b = &run->store.boxes[box];
    unsigned long bytes, code;
    if (!sim_control_uint(req, "bytes", 1ul << 40, b->quota, &bytes, out) ||
        !sim_control_uint(req, "code", 552, b->full_code, &code, out))
        return;
    if (code != 452 && code != 552) {
        sim_control_error(out, "\"code\" must be 452 or 552");
        return;
    }
    b->quota = bytes;
    b->full_code = (unsigned)code;
    buf_printf(out, "{\"ok\":true,\"bytes\":%llu,\"quota\":%llu,\"code\":%u}", b->used, b->quota,
               b->full_code);
}

/* tls.set: offer STARTTLS/STLS on a host's services or withdraw it (reset restores). */
static void sim_control_tls(struct sim_run *run, const struct sim_json_obj *req, struct buf *out)
{
    const char *host = sim_json_str(req, "host");
    int h = host ? sim_world_host_index(run->world, host) : -1;
    bool on;
    if (h < 0) {
        sim_control_error(out, "no host \"%s\" in the world", host ? host : "");
        return;
    }
    if (!sim_json_bool(req, "starttls", &on)) {
        sim_control_error(out, "\"starttls\" must be true or false");
        return;
    }
    bool any = false;
    for (int i = 0; i < run->world->nservices; i++)
        if (run->world->services[i].host == h && run->world->services[i].starttls)
            any = true;
    if (!any && on) {
        sim_control_error(out, "host \"%s\" has no service with tls starttls in the world", host);
        return;
    }
    run->starttls_off[h] = !on;
    buf_printf(out, "{\"ok\":true,\"starttls\":%s}", on && any ? "true" : "false");
}

void sim_control_handle(struct sim_run *run, const char *line, size_t len, struct buf *out)
{
    struct sim_json_obj req;
    char err[256];
    if (sim_json_parse(line, len, &req, err, sizeof err) < 0) {
        sim_json_obj_free(&req);
        sim_control_error(out, "%s", err);
        return;
    }
    const char *verb = sim_json_str(&req, "verb");
    if (!verb) {
        sim_control_error(out, "missing \"verb\"");
    } else if (strcmp(verb, "ping") == 0) {
        buf_append_str(out, "{\"ok\":true,");
        sim_json_put_kv(out, true, "world", run->world->name);
        buf_append_char(out, '}');
    } else if (strcmp(verb, "reset") == 0) {
        if (sim_run_reset(run, err, sizeof err) < 0)
            sim_control_error(out, "reset: %s", err);
        else
            buf_append_str(out, "{\"ok\":true}");
    } else if (strcmp(verb, "faults.set") == 0) {
        sim_control_faults_set(run, &req, out);
    } else if (strcmp(verb, "faults.clear") == 0) {
        sim_control_faults_clear(run, &req, out);
    } else if (strcmp(verb, "records.read") == 0) {
        sim_control_records(run, &req, out);
    } else if (strcmp(verb, "mailstore.list") == 0) {
        sim_control_list(run, &req, out);
    } else if (strcmp(verb, "mailstore.read") == 0) {
        sim_control_read(run, &req, out);
    } else if (strcmp(verb, "mailstore.inject") == 0) {
        sim_control_inject(run, &req, out);
    } else if (strcmp(verb, "queue.list") == 0) {
        sim_relay_list(run, out);
    } else if (strcmp(verb, "queue.flush") == 0) {
        sim_relay_flush(run, out);
    } else if (strcmp(verb, "mailstore.quota") == 0) {
        sim_control_quota(run, &req, out);
    } else if (strcmp(verb, "tls.set") == 0) {
        sim_control_tls(run, &req, out);
    } else if (sim_linkd_control(run, verb, &req, out)) {
        /* link.up, link.down, link.dial, link.profile, link.stats */
    } else {
        sim_control_error(out, "unknown verb \"%s\"", verb);
    }
    if (verb && strcmp(verb, "records.read") != 0 && strcmp(verb, "ping") != 0 &&
        strcmp(verb, "link.stats") != 0 && strcmp(verb, "queue.list") != 0) {
        log_info("control verb=%s ok=%s", verb,
                 strncmp(out->data, "{\"ok\":true", 10) == 0 ? "yes" : "no");
    }
    sim_json_obj_free(&req);
}

static void sim_control_read_cb(struct bufferevent *bev, void *arg)
{
    struct sim_run *run = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t len;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
        if (!line) {
            if (evbuffer_get_length(in) > SIM_CONTROL_LINE_MAX) {
                log_warnx("control: request over %u bytes, closing", SIM_CONTROL_LINE_MAX);
                bufferevent_free(bev);
            }
            return;
        }
        struct buf out;
        buf_init(&out, 0);
        sim_control_handle(run, line, len, &out);
        buf_append_char(&out, '\n');
        bufferevent_write(bev, out.data, out.len);
        buf_free(&out);
        free(line);
    }
}

static void sim_control_event(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

static void sim_control_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                               int salen, void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    struct sim_listen_arg *la = arg;
    struct bufferevent *bev = bufferevent_socket_new(la->run->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, sim_control_read_cb, NULL, sim_control_event, la->run);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int sim_control_listen(struct sim_run *run)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (!str_copy(sun.sun_path, sizeof sun.sun_path, run->socket_path)) {
        log_warnx("control: socket path too long: %s", run->socket_path);
        return -1;
    }
    /* A stale socket of an ispsim that died may go; a live one is someone else's. */
    struct stat sb;
    if (lstat(run->socket_path, &sb) == 0) {
        if (!S_ISSOCK(sb.st_mode)) {
            log_warnx("control: %s exists and is not a socket", run->socket_path);
            return -1;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0;
        if (probe >= 0)
            close(probe);
        if (live) {
            log_warnx("control: %s is in use", run->socket_path);
            return -1;
        }
        unlink(run->socket_path);
    }
    struct sim_listen_arg *arg = &run->listen_args[run->nlisteners];
    arg->run = run;
    arg->service = -1;
    struct evconnlistener *l = evconnlistener_new_bind(run->base, sim_control_accept, arg,
                                                       LEV_OPT_CLOSE_ON_FREE, 16,
                                                       (struct sockaddr *)&sun, sizeof sun);
    if (!l) {
        log_warn("control: cannot listen on %s", run->socket_path);
        return -1;
    }
    run->listeners[run->nlisteners++] = l;
    return 0;
}
