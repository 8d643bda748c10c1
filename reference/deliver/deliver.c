/* deliver: runs one queued message (see deliver.h). */
#include "deliver.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "fsutil.h"
#include "local.h"
#include "hdr.h"
#include "log.h"
#include "mailpath.h"
#include "queue/report.h"
#include "rules.h"
#include "timefmt.h"
#include "vacation.h"
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
        else {
            log_info("%s: to=<%s>, status=expanded (%zu recipients in %s)", msg->id,
                     msg->env.rcpts[rcpt].addr, t->n, child);
            d->children_queued = true; /* delivered by the queue run the caller schedules */
        }
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

/* One message of a batch. */
struct deliver_job {
    const char *id;
    struct queue_msg msg;
    struct buf data;
    bool have_data;
    bool loaded;
    bool remote_pending;
    bool local_deferred;
    struct report_outcomes failures;   /* failed here: bounced and marked F together */
    struct report_outcomes deferrals;  /* deferred here, with why (bounced at queue_lifetime) */
};

/* One local recipient waiting for its mailbox's turn. */
struct deliver_slot {
    struct deliver_job *job;
    size_t rcpt;
    char user[DELIVER_LOCAL_MAX];
    char folder[RULES_FOLDER_MAX + 1]; /* delivery rules: "" for INBOX */
};

static bool deliver_need_data(struct deliver_job *job)
{
    if (job->have_data)
        return true;
    if (queue_read_data(&job->msg, &job->data) < 0) {
        log_warn("%s: cannot read queue file", job->id);
        job->local_deferred = true;
        return false;
    }
    job->have_data = true;
    return true;
}

/*
 * Resolves one local recipient to its mailbox owner. Returns true with user filled in when it
 * is to be appended; false when it was settled here (failed, exploded) or deferred.
 */
static bool deliver_resolve(struct deliver *d, struct deliver_job *job, size_t rcpt,
                            const char *local, char user[DELIVER_LOCAL_MAX])
{
    struct queue_msg *msg = &job->msg;
    struct queue_rcpt *r = &msg->env.rcpts[rcpt];
    str_copy(user, DELIVER_LOCAL_MAX, local);
    str_lower(user);
    if (!r->expanded) {
        struct deliver_targets t = {0};
        if (d->resolver.expand(d->resolver.ctx, user, &t) < 0) {
            char reason[DELIVER_LOCAL_MAX + 32];
            snprintf(reason, sizeof reason, "unknown user: \"%s\"", user);
            log_info("%s: to=<%s>, relay=local, dsn=5.1.1, status=bounced (%s)", msg->id, r->addr, reason);
            report_outcome_add(&job->failures, rcpt, "5.1.1", reason, NULL);
            return false;
        }
        if (!(t.n == 1 && !t.remote[0])) {
            if (!deliver_need_data(job) || deliver_explode(d, msg, rcpt, &t, &job->data) < 0) {
                log_warn("%s: to=<%s>, status=deferred (cannot write expanded queue file)",
                         msg->id, r->addr);
                job->local_deferred = true;
            }
            deliver_targets_free(&t);
            return false;
        }
        str_copy(user, DELIVER_LOCAL_MAX, t.addrs[0]);
        deliver_targets_free(&t);
    }
    if (!d->resolver.is_user(d->resolver.ctx, user)) {
        char reason[DELIVER_LOCAL_MAX + 32];
        snprintf(reason, sizeof reason, "no mailbox: \"%s\"", user);
        log_info("%s: to=<%s>, relay=local, dsn=5.1.1, status=bounced (%s)", msg->id, r->addr, reason);
        report_outcome_add(&job->failures, rcpt, "5.1.1", reason, NULL);
        return false;
    }
    return deliver_need_data(job);
}

/* ---- delivery rules (procmail's job; reference/proto/rules.h, docs/filter.md) ---------------- */

#define DELIVER_RULES_FILE_MAX ((size_t)1024 * 1024)

/* Does the message already carry "Delivered-To: addr"? (a forward that came back: a loop) */
static bool deliver_seen(const struct buf *data, const char *addr)
{
    size_t hlen = hdr_section_len(data->data, data->len);
    size_t pos = 0;
    struct hdr_field f;
    size_t alen = strlen(addr);
    while (hdr_next(data->data, hlen, &pos, &f)) {
        if (f.name_len != 12 || strncasecmp(f.name, "Delivered-To", 12) != 0)
            continue;
        const char *v = f.value;
        size_t n = f.value_len;
        while (n && (*v == ' ' || *v == '\t')) {
            v++;
            n--;
        }
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' || v[n - 1] == '\n'))
            n--;
        if (n == alen && strncasecmp(v, addr, n) == 0)
            return true;
    }
    return false;
}

/* A queue id derived from the parent's, the recipient and a tag: a retry finds the first one. */
static void deliver_derived_id(const char *parent, size_t rcpt, const char *tag, char out[QUEUE_ID_LEN + 1])
{
    static const char digits[] = "0123456789BCDFGHJKLMNPQRSTVWXYZ";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char input[96];
    snprintf(input, sizeof input, "%s/%zu/%s", parent, rcpt, tag);
    EVP_Digest(input, strlen(input), md, &mdlen, EVP_sha256(), NULL);
    memcpy(out, parent, 7);
    for (int i = 7; i < QUEUE_ID_LEN; i++)
        out[i] = digits[md[i] % 31];
    out[QUEUE_ID_LEN] = '\0';
}

/* Marks a queue file we made from scanned mail as scanned (the content filter's mark). */
static void deliver_mark_scanned(struct deliver *d, const char *id)
{
    size_t pn = strlen(d->queue->msg_dir) + QUEUE_ID_LEN + 2;
    char *path = xmalloc(pn);
    snprintf(path, pn, "%s/%s", d->queue->msg_dir, id);
    if (d->conf->filter && chmod(path, 0700) < 0)
        log_warn("%s: cannot mark as scanned", id);
    free(path);
}

/*
 * Queues a message zolder wrote for a local recipient (a vacation reply, the refused-rules
 * notice) from the null sender under id, derived from the message it is about (a retry
 * finds it: never two), marked scanned like the mail it answers. 0 (queued now or by an
 * earlier attempt) or -1.
 */
static int deliver_queue_own(struct deliver *d, const char *id, const char *rcpt, const char *body_type,
                             const struct buf *body)
{
    int rc = report_queue_local(d->queue, id, d->conf->hostname, rcpt, true, body_type, body);
    if (rc == 1) {
        deliver_mark_scanned(d, id);
        d->children_queued = true;
    }
    return rc < 0 ? -1 : 0;
}

/* Read at most this much of a vacation state file: its newest lines (an old, unpruned file
 * can be larger; the next prune brings it down to VACATION_STATE_BYTES_MAX). */
#define DELIVER_VACATION_STATE_MAX ((size_t)4 * 1024 * 1024)

/*
 * Reads the newest DELIVER_VACATION_STATE_MAX bytes of a vacation state file (from a line
 * start). 0 with *data_r (NULL and 0 when there is none), -1 with errno.
 */
static int deliver_vacation_read(const char *path, char **data_r, size_t *len_r)
{
    *data_r = NULL;
    *len_r = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    off_t from = size > DELIVER_VACATION_STATE_MAX ? (off_t)(size - DELIVER_VACATION_STATE_MAX) : 0;
    size_t want = size - (size_t)from;
    char *data = xmalloc(want + 1);
    size_t got = 0;
    while (got < want) {
        ssize_t r = pread(fd, data + got, want - got, from + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    data[got] = '\0';
    size_t skip = 0;
    if (from > 0) { /* cut in a line: start at the next one */
        const char *nl = memchr(data, '\n', got);
        skip = nl ? (size_t)(nl - data) + 1 : got;
        memmove(data, data + skip, got - skip + 1);
    }
    *data_r = data;
    *len_r = got - skip;
    return 0;
}

/*
 * Records that sender was answered at now in the vacation state (path, in dir): one line
 * appended and fsync'd; or, when vacation_prune_due says so, the whole file rewritten
 * without its stale and duplicate lines (and within VACATION_STATE_BYTES_MAX) by a temporary
 * file, fsync, rename and an fsync of the folder: a crash leaves the old file or the new one,
 * both holding every reply that was still recent.
 */
static int deliver_vacation_record(const char *dir, const char *path, const char *state, size_t slen,
                                   time_t now, unsigned days, const char *sender, const char *id)
{
    char line[VACATION_LINE_MAX];
    int n = snprintf(line, sizeof line, "%lld %s\n", (long long)now, sender);
    if (n <= 0 || (size_t)n >= sizeof line || strchr(sender, '\n') || strchr(sender, '\r')) {
        errno = EINVAL;
        return -1;
    }
    if (fs_mkdir_p(dir, 0700) < 0)
        return -1;
    struct vacation_prune_stats st;
    vacation_prune(state, slen, now, days, VACATION_STATE_BYTES_MAX - (size_t)n, NULL, &st);
    if (!vacation_prune_due(&st, slen, (size_t)n)) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
            return -1;
        int rc = fs_write_all(fd, line, (size_t)n) < 0 || fsync(fd) < 0 ? -1 : 0;
        int saved = errno;
        close(fd);
        errno = saved;
        return rc;
    }
    struct buf kept;
    buf_init(&kept, slen + (size_t)n);
    vacation_prune(state, slen, now, days, VACATION_STATE_BYTES_MAX - (size_t)n, &kept, &st);
    buf_append(&kept, line, (size_t)n);
    /* ".USER.new": no user name starts with a dot, so it is never another user's state */
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t tn = strlen(dir) + strlen(base) + sizeof "/..new";
    char *tmp = xmalloc(tn);
    snprintf(tmp, tn, "%s/.%s.new", dir, base);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (fs_write_all(fd, kept.data, kept.len) == 0 && fsync(fd) == 0 && close(fd) == 0) {
            fd = -1;
            if (rename(tmp, path) == 0 && fs_fsync_dir(dir) == 0)
                rc = 0;
        }
        if (fd >= 0)
            close(fd);
        if (rc < 0)
            unlink(tmp);
    }
    if (rc == 0)
        log_info("%s: vacation state %s pruned: %zu lines kept, %zu stale or duplicate, %zu over the cap",
                 id, path, st.lines - st.stale - st.capped + 1, st.stale, st.capped);
    free(tmp);
    buf_free(&kept);
    return rc;
}

/*
 * The RFC 3834 reply of a vacation rule: decided by vacation_refusal, queued from the null
 * sender under an id derived from the message's (a retry after a crash finds it: never two
 * replies), then the sender is recorded in STATE_DIR/vacation/USER ("EPOCH SENDER" lines,
 * fsync'd; pruned now and then, deliver_vacation_record). Failures are logged; the message
 * itself is delivered regardless.
 */
static void deliver_vacation(struct deliver *d, struct deliver_job *job, size_t rcpt, const char *user,
                             const struct rules_action *a)
{
    struct queue_msg *msg = &job->msg;
    const char *addr = msg->env.rcpts[rcpt].addr;
    const char *sender = msg->env.sender;
    size_t dn = strlen(d->conf->state_dir) + sizeof "/vacation";
    char *dir = xmalloc(dn);
    snprintf(dir, dn, "%s/vacation", d->conf->state_dir);
    size_t pn = dn + strlen(user) + 1;
    char *path = xmalloc(pn);
    snprintf(path, pn, "%s/%s", dir, user);
    char *state = NULL;
    size_t slen = 0;
    if (deliver_vacation_read(path, &state, &slen) < 0)
        log_warn("%s: vacation state %s unreadable", msg->id, path);
    time_t now = time(NULL);
    const char *why = vacation_refusal(sender, addr, job->data.data, job->data.len,
                                       state ? vacation_last(state, slen, sender) : 0, now, a->vacation_days);
    if (why) {
        log_info("%s: to=<%s>: vacation (rules line %u): no reply to <%s>: %s", msg->id, addr,
                 a->vacation_lineno, sender, why);
    } else {
        char reply_id[QUEUE_ID_LEN + 1];
        deliver_derived_id(msg->id, rcpt, "vacation", reply_id);
        char date[64], mid[128];
        timefmt_rfc5322(now, date, sizeof date);
        snprintf(mid, sizeof mid, "<%s.vacation@%s>", reply_id, d->conf->hostname);
        struct buf body;
        buf_init(&body, 0);
        vacation_render(addr, sender, job->data.data, job->data.len, a->vacation_text, date, mid, &body);
        if (deliver_queue_own(d, reply_id, sender, "8BITMIME", &body) < 0) {
            log_warn("%s: to=<%s>: vacation reply to <%s> could not be queued", msg->id, addr, sender);
        } else {
            if (deliver_vacation_record(dir, path, state ? state : "", slen, now, a->vacation_days, sender,
                                        msg->id) < 0)
                log_warn("%s: vacation state %s not updated", msg->id, path);
            log_info("%s: to=<%s>: vacation reply to <%s> queued as %s (rules line %u)", msg->id, addr,
                     sender, reply_id, a->vacation_lineno);
        }
        buf_free(&body);
    }
    free(state);
    free(dir);
    free(path);
}

/*
 * Forwards one recipient's copy to addr through a child queue file (id derived from the
 * parent's, so a retry after a crash finds it), with "Delivered-To: RCPT" prepended for loop
 * detection; the envelope sender stays (no SRS). Marks the parent recipient done.
 */
static int deliver_forward(struct deliver *d, struct queue_msg *msg, size_t rcpt, const char *addr,
                           const struct buf *data)
{
    char child[QUEUE_ID_LEN + 1];
    deliver_derived_id(msg->id, rcpt, "forward", child);

    struct queue_envelope env = msg->env;
    env.rcpts = NULL;
    env.nrcpts = 0;
    queue_envelope_add_rcpt(&env, addr, msg->env.rcpts[rcpt].addr, msg->env.rcpts[rcpt].notify, true);
    struct queue_writer w;
    int rc = queue_writer_begin_id(d->queue, child, &env, &w);
    if (rc == 0) {
        struct buf head;
        buf_init(&head, 0);
        buf_printf(&head, "Delivered-To: %s\r\n", msg->env.rcpts[rcpt].addr);
        if (queue_writer_write(&w, head.data, head.len) < 0 || queue_writer_write(&w, data->data, data->len) < 0 ||
            queue_writer_commit(d->queue, &w) < 0) {
            queue_writer_abort(&w);
            rc = -1;
        } else {
            deliver_mark_scanned(d, child); /* the parent was scanned clean: so is this copy */
            d->children_queued = true;
        }
        buf_free(&head);
    } else if (errno == EEXIST) {
        rc = 0; /* made by an attempt that died before marking the parent */
    }
    free(env.rcpts[0].addr);
    free(env.rcpts[0].orcpt);
    free(env.rcpts[0].notify);
    free(env.rcpts);
    if (rc < 0)
        return -1;
    log_info("%s: to=<%s>, relay=local, status=forwarded (to <%s> by rules, as %s)", msg->id,
             msg->env.rcpts[rcpt].addr, addr, child);
    return queue_mark(msg, rcpt, QUEUE_RCPT_DONE);
}

/*
 * Tells the user once per bad version of the rules file (its SHA-256, kept in
 * STATE_DIR/rules-told/USER) that it was refused: a message from the null sender into their
 * INBOX, queued under an id derived from the message that met the bad file.
 */
static void deliver_rules_tell(struct deliver *d, struct queue_msg *msg, size_t rcpt, const char *user,
                               const char *text, size_t len, const char *why)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL);
    char hex[2 * EVP_MAX_MD_SIZE + 2];
    size_t hexlen = 2 * (size_t)mdlen;
    for (size_t i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    size_t dn = strlen(d->conf->state_dir) + sizeof "/rules-told";
    char *dir = xmalloc(dn);
    snprintf(dir, dn, "%s/rules-told", d->conf->state_dir);
    size_t pn = dn + strlen(user) + 1;
    char *path = xmalloc(pn);
    snprintf(path, pn, "%s/%s", dir, user);
    char *told = NULL;
    size_t tlen = 0;
    bool already = fs_read_file(path, 256, &told, &tlen) == 0 && tlen >= hexlen &&
                   memcmp(told, hex, hexlen) == 0;
    free(told);
    if (already) {
        free(dir);
        free(path);
        return;
    }
    char id[QUEUE_ID_LEN + 1], date[64];
    deliver_derived_id(msg->id, rcpt, "rules-refused", id);
    timefmt_rfc5322(time(NULL), date, sizeof date);
    struct buf body;
    buf_init(&body, 0);
    buf_printf(&body, "From: Mail delivery at %s <postmaster@%s>\r\nTo: <%s>\r\n"
                      "Subject: Your delivery rules were refused\r\nDate: %s\r\n"
                      "Message-ID: <%s.rules@%s>\r\nAuto-Submitted: auto-generated\r\n"
                      "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
                      "Your delivery rules file has an error, so it is not used: all your mail\r\n"
                      "goes to your INBOX until it is fixed. Nothing was lost.\r\n\r\n   ",
               d->conf->hostname, d->conf->hostname, msg->env.rcpts[rcpt].addr, date, id, d->conf->hostname);
    for (const char *c = why; *c; c++) {
        if (*c >= ' ' && *c <= '~')
            buf_append_char(&body, *c);
        else
            buf_append_char(&body, '?');
    }
    buf_append_str(&body, "\r\n\r\nThe rules language is described in docs/filter.md.\r\n");
    int rc = deliver_queue_own(d, id, msg->env.rcpts[rcpt].addr, "7BIT", &body);
    buf_free(&body);
    if (rc == 0) {
        log_info("%s: to=<%s>: told the user about the refused rules file (%s)", msg->id,
                 msg->env.rcpts[rcpt].addr, id);
        int fd = -1;
        if (fs_mkdir_p(dir, 0700) == 0)
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || fs_write_all(fd, hex, hexlen) < 0 || fsync(fd) < 0)
            log_warn("%s: cannot record %s", msg->id, path);
        if (fd >= 0)
            close(fd);
    }
    free(dir);
    free(path);
}

/* USER's mail folder (mail_dir) into out; false (logged) when it has none usable. */
static bool deliver_mail_dir(struct deliver *d, const char *user, char *out, size_t outlen)
{
    return d->resolver.mail_dir && d->resolver.mail_dir(d->resolver.ctx, user, out, outlen);
}

/*
 * Applies USER's rules file (MAIL_DIR/rules; before mail_dir existed: STATE_DIR/rules/USER,
 * still read when the new one is absent) to one local recipient. true: append it, to folder
 * (or INBOX when folder stays ""); false: settled here (discarded, forwarded) or deferred. A
 * missing file means INBOX; an unreadable or bad one means INBOX and a log line.
 */
static bool deliver_rules(struct deliver *d, struct deliver_job *job, size_t rcpt, const char *user,
                          char folder[RULES_FOLDER_MAX + 1])
{
    struct queue_msg *msg = &job->msg;
    const char *addr = msg->env.rcpts[rcpt].addr;
    char mail_dir[MAILPATH_MAX];
    size_t pn = strlen(d->conf->state_dir) + strlen(user) + MAILPATH_MAX + sizeof "/rules/";
    char *path = xmalloc(pn);
    char *text = NULL;
    size_t len;
    int read_errno = ENOENT;
    if (deliver_mail_dir(d, user, mail_dir, sizeof mail_dir)) {
        snprintf(path, pn, "%s/rules", mail_dir);
        if (fs_read_file(path, DELIVER_RULES_FILE_MAX, &text, &len) < 0)
            read_errno = errno;
    }
    if (!text && read_errno == ENOENT) {
        snprintf(path, pn, "%s/rules/%s", d->conf->state_dir, user);
        if (fs_read_file(path, DELIVER_RULES_FILE_MAX, &text, &len) < 0)
            read_errno = errno;
        else
            log_warnx("%s: to=<%s>: rules read from %s, the old place: move it to MAIL_DIR/rules "
                      "(docs/filter.md)", msg->id, addr, path);
    }
    if (!text) {
        if (read_errno != ENOENT)
            log_warnx("%s: to=<%s>: rules file %s unreadable (%s), delivered to INBOX", msg->id, addr,
                      path, strerror(read_errno));
        free(path);
        return true;
    }
    struct rules *rules = NULL;
    struct cfg_error err;
    if (rules_parse(&rules, path, text, len, &err) < 0) {
        log_warnx("%s: to=<%s>: rules refused, delivered to INBOX: %s", msg->id, addr, err.text);
        deliver_rules_tell(d, msg, rcpt, user, text, len, err.text);
        free(text);
        free(path);
        return true;
    }
    free(text);
    free(path);
    struct rules_action a;
    rules_eval(rules, job->data.data, job->data.len, &a);
    if (a.vacation_text)
        deliver_vacation(d, job, rcpt, user, &a);
    bool append = true;
    switch (a.kind) {
    case RULES_INBOX:
    case RULES_VACATION: break;
    case RULES_FOLDER:
        if (strcmp(d->conf->mailbox_format, "mbox") != 0) {
            log_warnx("%s: to=<%s>: rules line %u: folders need mailbox_format = mbox; delivered to INBOX",
                      msg->id, addr, a.lineno);
            break;
        }
        str_copy(folder, RULES_FOLDER_MAX + 1, a.arg);
        break;
    case RULES_DISCARD:
        log_info("%s: to=<%s>, relay=local, status=discarded (rules line %u)", msg->id, addr, a.lineno);
        if (queue_mark(msg, rcpt, QUEUE_RCPT_DONE) < 0)
            job->local_deferred = true;
        append = false;
        break;
    case RULES_FORWARD:
        if (deliver_seen(&job->data, a.arg) || deliver_seen(&job->data, addr)) {
            log_warnx("%s: to=<%s>: rules line %u: forwarding loop (Delivered-To), delivered to INBOX",
                      msg->id, addr, a.lineno);
            break;
        }
        if (deliver_forward(d, msg, rcpt, a.arg, &job->data) < 0) {
            log_warn("%s: to=<%s>, status=deferred (cannot queue the forwarded copy)", msg->id, addr);
            job->local_deferred = true;
        }
        append = false;
        break;
    }
    rules_free(rules);
    return append;
}

static int deliver_slot_order(const void *a, const void *b)
{
    const struct deliver_slot *x = a, *y = b;
    int c = strcmp(x->user, y->user);
    return c ? c : strcmp(x->folder, y->folder);
}

/* Appends every slot of one mailbox owner in one go. */
static void deliver_mailbox(struct deliver *d, struct deliver_slot *slots, size_t n, bool sync_later)
{
    struct local_item *items = xcalloc(n, sizeof *items);
    for (size_t i = 0; i < n; i++) {
        items[i].msg = &slots[i].job->msg;
        items[i].rcpt = slots[i].rcpt;
        items[i].data = &slots[i].job->data;
    }
    bool maildir = strcmp(d->conf->mailbox_format, "maildir") == 0;
    struct local_target target = {
        .user = slots[0].user,
        .spool_dir = d->spool_dir,
        .hostname = d->conf->hostname,
        .maildir = maildir,
        .sync_later = sync_later,
        .size_limit = d->conf->mailbox_size_limit,
    };
    /* delivery rules: a folder is an mbox MAIL_DIR/NAME, locked the same way */
    char folder_dir[MAILPATH_MAX];
    bool in_folder = false;
    if (slots[0].folder[0]) {
        if (!deliver_mail_dir(d, slots[0].user, folder_dir, sizeof folder_dir))
            log_warnx("%s: no usable mail_dir for %s: folder %s delivered to INBOX",
                      slots[0].job->msg.id, slots[0].user, slots[0].folder);
        else if (fs_mkdir_p(folder_dir, 0700) < 0)
            log_warn("%s: cannot create %s: folder %s delivered to INBOX", slots[0].job->msg.id,
                     folder_dir, slots[0].folder);
        else
            in_folder = true;
        if (in_folder) {
            target.spool_dir = folder_dir;
            target.user = slots[0].folder;
        }
    }
    local_deliver_batch(&target, items, n);
    for (size_t i = 0; i < n; i++) {
        struct queue_msg *msg = items[i].msg;
        struct queue_rcpt *r = &msg->env.rcpts[items[i].rcpt];
        struct deliver_job *job = NULL;
        for (size_t j = 0; j < n && !job; j++)
            if (&slots[j].job->msg == msg)
                job = slots[j].job;
        if (items[i].result == LOCAL_OK) {
            r->status = QUEUE_RCPT_DONE; /* written to the file after the batch */
            if (in_folder)
                log_info("%s: to=<%s>, relay=local, status=sent (delivered to folder %s/%s by rules)",
                         msg->id, r->addr, slots[0].user, slots[0].folder);
            else
                log_info("%s: to=<%s>, relay=local, status=sent (delivered to %s %s)", msg->id,
                         r->addr, maildir ? "maildir" : "mailbox", target.user);
        } else if (items[i].result == LOCAL_FAIL) {
            const char *why = items[i].error ? items[i].error : "mailbox unavailable";
            log_info("%s: to=<%s>, relay=local, dsn=%s, status=bounced (%s)", msg->id, r->addr,
                     items[i].status, why);
            report_outcome_add(&job->failures, items[i].rcpt, items[i].status, why, NULL);
        } else {
            const char *why = items[i].error ? items[i].error : "unknown error";
            job->local_deferred = true;
            log_info("%s: to=<%s>, relay=local, dsn=4.2.0, status=deferred (%s)", msg->id, r->addr, why);
            report_outcome_add(&job->deferrals, items[i].rcpt, "4.2.0", why, NULL);
        }
    }
    free(items);
}

static void deliver_report_queued(const char *id, void *ctx)
{
    struct deliver *d = ctx;
    (void)id;
    d->children_queued = true; /* the caller runs the queue soon: the bounce goes out */
}

/*
 * The recipients that failed here (unknown user, a permanent mailbox failure) and, once the
 * message is older than queue_lifetime, those deferred here: one bounce to the sender and
 * their F marks in one step (reference/queue/report, as outbound delivery does). When the
 * bounce cannot be written they stay pending: the message is deferred and tried again.
 */
static void deliver_settle_failures(struct deliver *d, struct deliver_job *job)
{
    if (job->deferrals.n && time(NULL) - job->msg.env.arrival > (time_t)d->conf->queue_lifetime) {
        for (size_t i = 0; i < job->deferrals.n; i++) {
            const struct report_outcome *x = &job->deferrals.v[i];
            char reason[REPORT_REASON_MAX + 128]; /* cut to REPORT_REASON_MAX by report_outcome_add */
            snprintf(reason, sizeof reason, "message expired after %lu seconds in the queue (last: %s)",
                     d->conf->queue_lifetime, x->reason);
            log_info("%s: to=<%s>, relay=local, dsn=4.4.7, status=bounced (%s)", job->id,
                     job->msg.env.rcpts[x->idx].addr, reason);
            report_outcome_add(&job->failures, x->idx, "4.4.7", reason, NULL);
        }
        report_outcomes_clear(&job->deferrals);
    }
    for (size_t i = 0; i < job->deferrals.n; i++) /* why it waits, for mailq */
        if (queue_set_reason(&job->msg, job->deferrals.v[i].idx, job->deferrals.v[i].reason, true) < 0)
            log_warn("%s: cannot write the deferral reason", job->id);
    if (!job->failures.n)
        return;
    struct report_ctx rc = {.queue = d->queue, .conf = d->conf, .tag = 'l',
                            .on_queued = deliver_report_queued, .on_queued_ctx = d};
    if (!report_settle_failures(&rc, &job->msg, job->msg.env.attempts, &job->failures))
        job->local_deferred = true;
}

void deliver_later_free(struct deliver_later *later)
{
    for (size_t i = 0; i < later->nunlinks; i++) {
        free(later->unlink_paths[i]);
        free(later->unlink_ids[i]);
    }
    free(later->unlink_paths);
    free(later->unlink_ids);
    memset(later, 0, sizeof *later);
}

void deliver_batch(struct deliver *d, char *const *ids, size_t n, enum deliver_outcome *out,
                   struct deliver_later *later)
{
    struct deliver_job *jobs = xcalloc(n ? n : 1, sizeof *jobs);
    struct deliver_slot *slots = NULL;
    size_t nslots = 0;

    for (size_t k = 0; k < n; k++) {
        struct deliver_job *job = &jobs[k];
        job->id = ids[k];
        buf_init(&job->data, 0);
        const char *error;
        if (queue_load(d->queue, ids[k], &job->msg, &error) < 0) {
            log_warnx("%s: cannot load queue file: %s", ids[k], error);
            out[k] = DELIVER_ERROR;
            continue;
        }
        job->loaded = true;
        if (job->msg.held)
            continue;
        for (size_t i = 0; i < job->msg.env.nrcpts; i++) {
            struct queue_rcpt *r = &job->msg.env.rcpts[i];
            if (r->status != QUEUE_RCPT_PENDING)
                continue;
            char local[DELIVER_LOCAL_MAX];
            const char *domain;
            if (!deliver_split(r->addr, local, sizeof local, &domain)) {
                log_info("%s: to=<%s>, relay=local, dsn=5.1.3, status=bounced (local part too long)",
                         job->id, r->addr);
                report_outcome_add(&job->failures, i, "5.1.3", "local part too long", NULL);
                continue;
            }
            if (domain[0] && !zconf_is_local_domain(d->conf, domain)) {
                job->remote_pending = true;
                log_debug("%s: to=<%s>: remote, handed to outbound delivery", job->id, r->addr);
                continue;
            }
            char user[DELIVER_LOCAL_MAX];
            if (!deliver_resolve(d, job, i, local, user))
                continue;
            char folder[RULES_FOLDER_MAX + 1] = "";
            if (!deliver_rules(d, job, i, user, folder))
                continue;
            slots = xreallocarray(slots, nslots + 1, sizeof *slots);
            slots[nslots].job = job;
            slots[nslots].rcpt = i;
            str_copy(slots[nslots].user, sizeof slots[nslots].user, user);
            str_copy(slots[nslots].folder, sizeof slots[nslots].folder, folder);
            nslots++;
        }
    }

    if (nslots)
        qsort(slots, nslots, sizeof *slots, deliver_slot_order);
    for (size_t i = 0; i < nslots;) {
        size_t j = i + 1;
        while (j < nslots && strcmp(slots[j].user, slots[i].user) == 0 &&
               strcmp(slots[j].folder, slots[i].folder) == 0)
            j++;
        deliver_mailbox(d, slots + i, j - i, later != NULL);
        i = j;
    }

    for (size_t k = 0; k < n; k++)
        if (jobs[k].loaded && !jobs[k].msg.held)
            deliver_settle_failures(d, &jobs[k]);

    /* The mailboxes are fsync'd: now finished queue files go, the others get their marks. */
    bool marks = false, unlinks = false;
    for (size_t k = 0; k < n; k++) {
        struct deliver_job *job = &jobs[k];
        if (!job->loaded)
            continue;
        if (job->msg.held) {
            out[k] = DELIVER_PENDING;
            continue;
        }
        bool pending = false;
        for (size_t i = 0; i < job->msg.env.nrcpts; i++)
            pending |= job->msg.env.rcpts[i].status == QUEUE_RCPT_PENDING;
        if (!pending && later) {
            later->unlink_paths = xreallocarray(later->unlink_paths, later->nunlinks + 1, sizeof *later->unlink_paths);
            later->unlink_ids = xreallocarray(later->unlink_ids, later->nunlinks + 1, sizeof *later->unlink_ids);
            later->unlink_paths[later->nunlinks] = xstrdup(job->msg.path);
            later->unlink_ids[later->nunlinks++] = xstrdup(job->id);
            out[k] = DELIVER_DONE;
            continue;
        }
        if (!pending) {
            if (queue_unlink(&job->msg) == 0) {
                unlinks = true;
                out[k] = DELIVER_DONE;
                log_info("%s: removed", job->id);
                continue;
            }
            log_warn("%s: cannot remove queue file", job->id);
        }
        for (size_t s = 0; s < nslots; s++) {
            if (slots[s].job != job)
                continue;
            if (job->msg.env.rcpts[slots[s].rcpt].status == QUEUE_RCPT_DONE) {
                if (queue_mark_nosync(&job->msg, slots[s].rcpt, QUEUE_RCPT_DONE) < 0)
                    log_warn("%s: cannot mark a delivered recipient", job->id);
                marks = true;
            }
        }
        out[k] = job->local_deferred ? DELIVER_DEFERRED : DELIVER_PENDING;
    }
    if (!later && (marks || unlinks) && queue_sync(d->queue, marks, unlinks) < 0)
        log_warn("queue: sync after delivery failed");

    for (size_t k = 0; k < n; k++) {
        report_outcomes_clear(&jobs[k].failures);
        report_outcomes_clear(&jobs[k].deferrals);
        buf_free(&jobs[k].data);
        if (jobs[k].loaded)
            queue_msg_free(&jobs[k].msg);
    }
    free(jobs);
    free(slots);
}

enum deliver_outcome deliver_message(struct deliver *d, const char *id)
{
    char *ids[1] = {(char *)id};
    enum deliver_outcome out;
    deliver_batch(d, ids, 1, &out, NULL);
    return out;
}
