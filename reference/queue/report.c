/* report: reports to a message's sender, queued with their marks (see report.h). */
#include "report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "log.h"
#include "str.h"
#include "timefmt.h"
#include "xalloc.h"

void report_outcome_add(struct report_outcomes *o, size_t idx, const char *dsn, const char *reason,
                        const char *relay_name)
{
    o->v = xreallocarray(o->v, o->n + 1, sizeof *o->v);
    struct report_outcome *x = &o->v[o->n++];
    memset(x, 0, sizeof *x);
    x->idx = idx;
    str_copy(x->dsn, sizeof x->dsn, dsn);
    if (!str_copy(x->reason, sizeof x->reason, reason)) {
        memcpy(x->reason, reason, sizeof x->reason - 4);
        memcpy(x->reason + sizeof x->reason - 4, "...", 4);
    }
    if (relay_name && strcmp(relay_name, "none") != 0) { /* host[ip]:port: the host */
        size_t n = strcspn(relay_name, "[");
        if (n < sizeof x->mta) {
            memcpy(x->mta, relay_name, n);
            x->mta[n] = '\0';
        }
    }
}

void report_outcomes_clear(struct report_outcomes *o)
{
    free(o->v);
    o->v = NULL;
    o->n = 0;
}

bool report_notify_wants(const char *notify, const char *what)
{
    if (!notify || !notify[0])
        return strcmp(what, "SUCCESS") != 0;
    size_t wl = strlen(what);
    for (const char *p = notify; *p;) {
        size_t n = strcspn(p, ",");
        if (n == wl && strncasecmp(p, what, n) == 0)
            return true;
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

/*
 * A report's queue id: the parent's time prefix, then a hash of the parent id, the kind,
 * the attempt number and the reported recipients. The same report of the same attempt gets
 * the same id, so writing it twice (a crash before the parent was marked) finds it queued.
 */
static void report_id(const char *parent, char kind, unsigned attempt, const struct report_outcomes *o,
                      char out[QUEUE_ID_LEN + 1])
{
    static const char digits[] = "0123456789BCDFGHJKLMNPQRSTVWXYZ";
    struct buf in;
    buf_init(&in, 0);
    buf_printf(&in, "%s/%c/%u", parent, kind, attempt);
    for (size_t i = 0; i < o->n; i++)
        buf_printf(&in, ",%zu", o->v[i].idx);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_Digest(in.data, in.len, md, &mdlen, EVP_sha256(), NULL);
    buf_free(&in);
    memcpy(out, parent, 7);
    for (int i = 7; i < QUEUE_ID_LEN; i++)
        out[i] = digits[md[i] % 31];
    out[QUEUE_ID_LEN] = '\0';
}

int report_queue(const struct report_ctx *rc, struct queue_msg *parent, unsigned attempt,
                 enum dsn_kind kind, enum dsn_action action, const struct report_outcomes *o,
                 const size_t *marks, size_t nmarks)
{
    const struct zconf *conf = rc->conf;
    const struct queue_envelope *env = &parent->env;
    static const char kinds[] = {[DSN_KIND_FAILURE] = 'b', [DSN_KIND_DELAY] = 'w', [DSN_KIND_SUCCESS] = 's'};
    static const char *const what[] = {
        [DSN_KIND_FAILURE] = "sender non-delivery notification",
        [DSN_KIND_DELAY] = "sender delay notification",
        [DSN_KIND_SUCCESS] = "sender delivery status notification",
    };
    char id[QUEUE_ID_LEN + 1];
    char tag = kinds[kind];
    if (kind == DSN_KIND_FAILURE && rc->tag)
        tag = rc->tag;
    report_id(parent->id, tag, attempt, o, id);

    struct buf data, report;
    buf_init(&data, 0);
    buf_init(&report, 0);
    if (queue_read_data(parent, &data) < 0)
        buf_reset(&data); /* the report still goes, without the message */
    struct dsn_rcpt *drc = xcalloc(o->n ? o->n : 1, sizeof *drc);
    for (size_t i = 0; i < o->n; i++) {
        const struct queue_rcpt *q = &env->rcpts[o->v[i].idx];
        drc[i] = (struct dsn_rcpt){.final_rcpt = q->addr, .orcpt = q->orcpt, .action = action,
                                   .status = o->v[i].dsn, .remote_mta = o->v[i].mta,
                                   .diagnostic = o->v[i].reason};
    }
    char arrival[TIMEFMT_RFC5322_LEN], now[TIMEFMT_RFC5322_LEN], until[TIMEFMT_RFC5322_LEN];
    char message_id[QUEUE_ID_LEN + 300];
    timefmt_rfc5322(env->arrival, arrival, sizeof arrival);
    timefmt_rfc5322(time(NULL), now, sizeof now);
    timefmt_rfc5322(env->arrival + (time_t)conf->queue_lifetime, until, sizeof until);
    snprintf(message_id, sizeof message_id, "%s@%s", id, conf->hostname);
    struct dsn_report r = {
        .kind = kind, .reporting_mta = conf->hostname, .to = env->sender, .queue_id = parent->id,
        .envid = env->envid, .arrival_date = arrival, .date = now, .message_id = message_id,
        .will_retry_until = kind == DSN_KIND_DELAY ? until : "",
        /* RFC 3461 4.3: RET=HDRS asks for the header only; without RET the whole message
         * comes back (as Postfix does), within bounce_size_limit. Delay and success reports
         * carry the header only. */
        .ret_full = kind == DSN_KIND_FAILURE && strcasecmp(env->ret, "HDRS") != 0,
        .full_max = conf->bounce_size_limit, .rcpts = drc, .nrcpts = o->n,
        .message = data.data, .message_len = data.len};
    bool eight = dsn_format(&r, &report);
    free(drc);
    buf_free(&data);

    struct queue_envelope benv;
    memset(&benv, 0, sizeof benv);
    benv.sender = xstrdup("");
    benv.client_ip = xstrdup("127.0.0.1");
    benv.helo = xstrdup(conf->hostname);
    benv.rdns = xstrdup("");
    benv.proto = xstrdup("local");
    benv.auth_user = xstrdup("");
    benv.ret = xstrdup("");
    benv.envid = xstrdup("");
    benv.body = xstrdup(eight ? "8BITMIME" : "7BIT");
    benv.arrival = time(NULL);
    queue_envelope_add_rcpt(&benv, env->sender, "", "", false);
    struct queue_writer w;
    int rc_w = queue_writer_begin_id(rc->queue, id, &benv, &w);
    bool fresh = false;
    if (rc_w == 0) {
        if (queue_writer_write(&w, report.data, report.len) < 0) {
            queue_writer_abort(&w);
            rc_w = -1;
        } else if (nmarks) {
            rc_w = queue_commit_marked(rc->queue, &w, parent, marks, nmarks, QUEUE_RCPT_FAILED);
        } else {
            rc_w = queue_writer_commit(rc->queue, &w);
        }
        fresh = rc_w == 0;
    } else if (errno == EEXIST) {
        rc_w = 0; /* queued already (a report of this attempt): only the marks may be missing */
        for (size_t i = 0; i < nmarks; i++)
            if (queue_mark(parent, marks[i], QUEUE_RCPT_FAILED) < 0)
                log_warn("%s: cannot mark a failed recipient", parent->id);
    }
    queue_envelope_free(&benv);
    buf_free(&report);
    if (rc_w < 0) {
        log_warn("%s: cannot queue the %s to <%s>", parent->id, what[kind], env->sender);
        return -1;
    }
    log_info("%s: %s: %s%s", parent->id, what[kind], id, fresh ? "" : " (queued before)");
    if (fresh && rc->on_queued)
        rc->on_queued(id, rc->on_queued_ctx);
    return 0;
}

bool report_settle_failures(const struct report_ctx *rc, struct queue_msg *parent, unsigned attempt,
                            const struct report_outcomes *f)
{
    if (!f->n)
        return true;
    const struct queue_envelope *env = &parent->env;
    struct report_outcomes due = {0};
    size_t *marks = xreallocarray(NULL, f->n, sizeof *marks);
    for (size_t i = 0; i < f->n; i++) {
        const struct report_outcome *x = &f->v[i];
        marks[i] = x->idx;
        if (report_notify_wants(env->rcpts[x->idx].notify, "FAILURE")) {
            due.v = xreallocarray(due.v, due.n + 1, sizeof *due.v);
            due.v[due.n++] = *x;
        }
    }
    bool ok = true, bounced = false;
    if (!env->sender[0]) {
        log_info("%s: no bounce: the sender is the null sender (a report is never reported)", parent->id);
    } else if (!due.n) {
        log_info("%s: no bounce: NOTIFY=NEVER (or without FAILURE) for every failed recipient", parent->id);
    } else {
        /* every failed recipient is marked with the bounce, also those it does not report */
        ok = report_queue(rc, parent, attempt, DSN_KIND_FAILURE, DSN_ACTION_FAILED, &due, marks, f->n) == 0;
        bounced = ok;
    }
    report_outcomes_clear(&due);
    if (!ok) {
        log_warnx("%s: %zu failed recipient(s) stay queued until their bounce can be written", parent->id, f->n);
    } else if (!bounced) {
        for (size_t i = 0; i < f->n; i++)
            if (queue_mark(parent, marks[i], QUEUE_RCPT_FAILED) < 0)
                log_warn("%s: to=<%s>: cannot mark as failed", parent->id, env->rcpts[marks[i]].addr);
    }
    free(marks);
    return ok;
}

int report_queue_local(struct queue *queue, const char *id, const char *hostname, const char *rcpt,
                       bool expanded, const char *body_type, const struct buf *data)
{
    struct queue_envelope env = {
        .sender = "", .client_ip = "127.0.0.1", .helo = (char *)hostname, .rdns = "", .proto = "local",
        .auth_user = "", .ret = "", .envid = "", .body = (char *)body_type, .arrival = time(NULL),
    };
    queue_envelope_add_rcpt(&env, rcpt, "", "", expanded);
    struct queue_writer w;
    int rc = queue_writer_begin_id(queue, id, &env, &w);
    if (rc == 0) {
        if (queue_writer_write(&w, data->data, data->len) < 0 || queue_writer_commit(queue, &w) < 0) {
            int saved = errno;
            queue_writer_abort(&w);
            errno = saved;
            rc = -1;
        } else {
            rc = 1;
        }
    } else if (errno == EEXIST) {
        rc = 0;
    }
    int saved = errno;
    free(env.rcpts[0].addr);
    free(env.rcpts[0].orcpt);
    free(env.rcpts[0].notify);
    free(env.rcpts);
    errno = saved;
    return rc;
}
