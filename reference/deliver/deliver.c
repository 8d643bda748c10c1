/* deliver: runs one queued message (see deliver.h). */
#include "deliver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "local.h"
#include "log.h"
#include "str.h"
#include "xalloc.h"

#define DELIVER_LOCAL_MAX 256

void deliver_init(struct deliver *d, const struct zconf *conf, struct queue *queue,
                  const struct deliver_resolver *resolver)
{
    memset(d, 0, sizeof *d);
    d->conf = conf;
    d->queue = queue;
    d->resolver = *resolver;
    size_t n = strlen(conf->state_dir) + 32;
    d->spool_dir = xmalloc(n);
    snprintf(d->spool_dir, n, "%s/%s", conf->state_dir,
             strcmp(conf->mailbox_format, "maildir") == 0 ? "maildir" : "spool/mail");
}

void deliver_free(struct deliver *d)
{
    free(d->spool_dir);
    d->spool_dir = NULL;
}

void deliver_targets_add(struct deliver_targets *t, const char *addr, bool remote)
{
    for (size_t i = 0; i < t->n; i++)
        if (str_eq_nocase(t->addrs[i], addr))
            return;
    t->addrs = xreallocarray(t->addrs, t->n + 1, sizeof *t->addrs);
    t->remote = xreallocarray(t->remote, t->n + 1, sizeof *t->remote);
    t->addrs[t->n] = xstrdup(addr);
    t->remote[t->n] = remote;
    t->n++;
}

void deliver_targets_free(struct deliver_targets *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->addrs[i]);
    free(t->addrs);
    free(t->remote);
    memset(t, 0, sizeof *t);
}

/* Splits local@domain; domain "" when there is none. Returns false on overflow. */
static bool deliver_split(const char *addr, char *local, size_t lsize, const char **domain_r)
{
    const char *at = strrchr(addr, '@');
    size_t n = at ? (size_t)(at - addr) : strlen(addr);
    if (n >= lsize)
        return false;
    memcpy(local, addr, n);
    local[n] = '\0';
    *domain_r = at ? at + 1 : "";
    return true;
}

/*
 * A child queue file's id is derived from the parent's id and the recipient number, so a
 * second attempt after a crash finds the first attempt's child (EEXIST) instead of making
 * another copy.
 */
static void deliver_child_id(const char *parent, size_t rcpt, char out[QUEUE_ID_LEN + 1])
{
    static const char digits[] = "0123456789BCDFGHJKLMNPQRSTVWXYZ";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char input[64];
    snprintf(input, sizeof input, "%s/%zu", parent, rcpt);
    EVP_Digest(input, strlen(input), md, &mdlen, EVP_sha256(), NULL);
    /* Keep the parent's time prefix so ids stay roughly time-ordered. */
    memcpy(out, parent, 7);
    for (int i = 7; i < QUEUE_ID_LEN; i++)
        out[i] = digits[md[i] % 31];
    out[QUEUE_ID_LEN] = '\0';
}

/* Hands expanded targets to a child queue file, then marks the parent recipient done. */
static int deliver_explode(struct deliver *d, struct queue_msg *msg, size_t rcpt,
                           const struct deliver_targets *t, const struct buf *data)
{
    struct queue_envelope env = msg->env;
    env.rcpts = NULL;
    env.nrcpts = 0;
    const char *domain;
    char local[DELIVER_LOCAL_MAX];
    deliver_split(msg->env.rcpts[rcpt].addr, local, sizeof local, &domain);
    for (size_t i = 0; i < t->n; i++) {
        char full[600];
        if (t->remote[i])
            snprintf(full, sizeof full, "%s", t->addrs[i]);
        else
            snprintf(full, sizeof full, "%s@%s", t->addrs[i], domain[0] ? domain : d->conf->hostname);
        queue_envelope_add_rcpt(&env, full, msg->env.rcpts[rcpt].orcpt[0] ? msg->env.rcpts[rcpt].orcpt
                                                                         : msg->env.rcpts[rcpt].addr,
                                msg->env.rcpts[rcpt].notify, true);
    }
    char child[QUEUE_ID_LEN + 1];
    deliver_child_id(msg->id, rcpt, child);
    struct queue_writer w;
    int rc = queue_writer_begin_id(d->queue, child, &env, &w);
    if (rc == 0) {
        if (queue_writer_write(&w, data->data, data->len) < 0 ||
            queue_writer_commit(d->queue, &w) < 0)
            rc = -1;
        else
            log_info("%s: to=<%s>, status=expanded (%zu recipients in %s)", msg->id,
                     msg->env.rcpts[rcpt].addr, t->n, child);
    } else if (errno == EEXIST) {
        rc = 0; /* made by an attempt that died before marking the parent */
    }
    for (size_t i = 0; i < env.nrcpts; i++) {
        free(env.rcpts[i].addr);
        free(env.rcpts[i].orcpt);
        free(env.rcpts[i].notify);
    }
    free(env.rcpts);
    if (rc < 0) {
        queue_writer_abort(&w);
        return -1;
    }
    return queue_mark(msg, rcpt, QUEUE_RCPT_DONE);
}

/* Returns false when the recipient was deferred (it stays pending, to be retried soon). */
static bool deliver_local(struct deliver *d, struct queue_msg *msg, size_t rcpt,
                          const char *local, const struct buf *data)
{
    struct queue_rcpt *r = &msg->env.rcpts[rcpt];
    char user[DELIVER_LOCAL_MAX];
    str_copy(user, sizeof user, local);
    str_lower(user);

    if (!r->expanded) {
        struct deliver_targets t = {0};
        if (d->resolver.expand(d->resolver.ctx, user, &t) < 0) {
            log_info("%s: to=<%s>, status=bounced (unknown user \"%s\")", msg->id, r->addr, user);
            queue_mark(msg, rcpt, QUEUE_RCPT_FAILED);
            return true;
        }
        bool single_local = t.n == 1 && !t.remote[0];
        if (!single_local) {
            bool ok = deliver_explode(d, msg, rcpt, &t, data) == 0;
            if (!ok)
                log_warn("%s: to=<%s>, status=deferred (cannot write expanded queue file)",
                         msg->id, r->addr);
            deliver_targets_free(&t);
            return ok;
        }
        str_copy(user, sizeof user, t.addrs[0]);
        deliver_targets_free(&t);
    }
    if (!d->resolver.is_user(d->resolver.ctx, user)) {
        log_info("%s: to=<%s>, status=bounced (no mailbox \"%s\")", msg->id, r->addr, user);
        queue_mark(msg, rcpt, QUEUE_RCPT_FAILED);
        return true;
    }
    struct local_target target = {
        .user = user,
        .rcpt = r->addr,
        .spool_dir = d->spool_dir,
        .hostname = d->conf->hostname,
        .maildir = strcmp(d->conf->mailbox_format, "maildir") == 0,
    };
    const char *error = "unknown error";
    if (local_deliver(&target, msg, rcpt, data, &error) != LOCAL_OK) {
        log_info("%s: to=<%s>, relay=local, status=deferred (%s)", msg->id, r->addr, error);
        return false;
    }
    if (queue_mark(msg, rcpt, QUEUE_RCPT_DONE) < 0) {
        log_warn("%s: to=<%s>: delivered but cannot mark it in the queue file", msg->id, r->addr);
        return false;
    }
    log_info("%s: to=<%s>, relay=local, status=sent (delivered to %s %s)", msg->id, r->addr,
             target.maildir ? "maildir" : "mailbox", user);
    return true;
}

enum deliver_outcome deliver_message(struct deliver *d, const char *id)
{
    struct queue_msg msg;
    const char *error;
    if (queue_load(d->queue, id, &msg, &error) < 0) {
        log_warnx("%s: cannot load queue file: %s", id, error);
        return DELIVER_ERROR;
    }
    if (msg.held) {
        queue_msg_free(&msg);
        return DELIVER_PENDING;
    }
    struct buf data;
    buf_init(&data, 0);
    bool have_data = false;
    bool remote_pending = false, local_deferred = false;
    for (size_t i = 0; i < msg.env.nrcpts; i++) {
        struct queue_rcpt *r = &msg.env.rcpts[i];
        if (r->status != QUEUE_RCPT_PENDING)
            continue;
        char local[DELIVER_LOCAL_MAX];
        const char *domain;
        if (!deliver_split(r->addr, local, sizeof local, &domain)) {
            queue_mark(&msg, i, QUEUE_RCPT_FAILED);
            continue;
        }
        if (domain[0] && !zconf_is_local_domain(d->conf, domain)) {
            remote_pending = true;
            continue;
        }
        if (!have_data) {
            if (queue_read_data(&msg, &data) < 0) {
                log_warn("%s: cannot read queue file", id);
                local_deferred = true;
                break;
            }
            have_data = true;
        }
        if (!deliver_local(d, &msg, i, local, &data))
            local_deferred = true;
    }
    if (remote_pending)
        for (size_t i = 0; i < msg.env.nrcpts; i++) {
            const struct queue_rcpt *r = &msg.env.rcpts[i];
            const char *domain = strrchr(r->addr, '@');
            if (r->status == QUEUE_RCPT_PENDING && domain && !zconf_is_local_domain(d->conf, domain + 1))
                log_info("%s: to=<%s>, status=deferred (no outbound route yet)", id, r->addr);
        }
    buf_free(&data);
    int removed = queue_remove_if_done(d->queue, &msg);
    if (removed == 1)
        log_info("%s: removed", id);
    queue_msg_free(&msg);
    if (removed == 1)
        return DELIVER_DONE;
    return local_deferred ? DELIVER_DEFERRED : DELIVER_PENDING;
}
