/*
 * mailq: the queue listing (see mailq.h for the shape).
 *
 * Columns follow Postfix's mailq with zolder's longer ids: the id column is QUEUE_ID_LEN
 * plus one status character, so every line still fits 80 columns for ordinary addresses.
 * Recipient lines hang one column left of the sender and reason lines two, as Postfix's do,
 * which lets a reader (and `grep '^ *('`) tell the three apart.
 *
 * SECURITY: addresses come from the queue file, i.e. from SMTP clients. Bytes below 0x20 and
 * 0x7f are printed as '?' so a crafted address cannot move the terminal cursor or forge
 * extra listing lines.
 */
#include "mailq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "str.h"
#include "timefmt.h"
#include "xalloc.h"

#define MAILQ_ID_WIDTH (QUEUE_ID_LEN + 1)
#define MAILQ_SIZE_WIDTH 8
#define MAILQ_TIME_WIDTH 20
/* "ID! SIZE TIME " */
#define MAILQ_SENDER_COL (MAILQ_ID_WIDTH + 1 + MAILQ_SIZE_WIDTH + 1 + MAILQ_TIME_WIDTH + 1)
#define MAILQ_RCPT_COL (MAILQ_SENDER_COL - 1)
#define MAILQ_REASON_COL (MAILQ_SENDER_COL - 2)

static void mailq_append_safe(struct buf *out, const char *s)
{
    for (const char *p = s; *p; p++) {
        char c = *p;
        if ((unsigned char)c < 0x20 || c == 0x7f)
            c = '?';
        buf_append_char(out, c);
    }
}

static void mailq_indent(struct buf *out, int col)
{
    buf_printf(out, "%*s", col, "");
}

void mailq_format_header(struct buf *out)
{
    buf_printf(out, "%-*s %*s %-*s %s\n", MAILQ_ID_WIDTH, "-Queue ID-", MAILQ_SIZE_WIDTH,
               "--Size--", MAILQ_TIME_WIDTH, "----Arrival Time----", "-Sender/Recipient-------");
}

/* The part after the '@' (the last one: a quoted local part may hold another). */
static const char *mailq_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : "";
}

void mailq_format_msg(const struct zconf *conf, const struct queue_msg *msg,
                      struct mailq_totals *totals, struct buf *out)
{
    char idcol[MAILQ_ID_WIDTH + 1];
    char when[TIMEFMT_RFC5322_LEN];
    /* "Sat Nov 16 23:07:13 2002" without the year, like Postfix's 20-column field. */
    timefmt_mbox(msg->env.arrival, when, sizeof when);
    when[19] = '\0';
    snprintf(idcol, sizeof idcol, "%s%s", msg->id, msg->held ? "!" : "");
    buf_printf(out, "%-*s %*zu %-*s ", MAILQ_ID_WIDTH, idcol, MAILQ_SIZE_WIDTH, msg->size,
               MAILQ_TIME_WIDTH, when);
    const char *sender = msg->env.sender && msg->env.sender[0] ? msg->env.sender : "MAILER-DAEMON";
    mailq_append_safe(out, sender);
    buf_append_char(out, '\n');
    for (size_t i = 0; i < msg->env.nrcpts; i++) {
        const struct queue_rcpt *r = &msg->env.rcpts[i];
        if (r->status != QUEUE_RCPT_PENDING)
            continue; /* delivered or bounced: no longer the queue's business */
        bool local = zconf_is_local_domain(conf, mailq_domain(r->addr));
        mailq_indent(out, MAILQ_REASON_COL);
        /* The last attempt's reason (the queue file's Y line), else why it waits at all. */
        const char *reason = local               ? MAILQ_REASON_LOCAL
                             : conf->defer_remote ? MAILQ_REASON_FLUSH
                                                  : MAILQ_REASON_REMOTE;
        buf_append_char(out, '(');
        if (r->reason[0]) {
            mailq_append_safe(out, r->reason);
            if (!local && conf->defer_remote)
                buf_printf(out, "; %s", MAILQ_REASON_FLUSH);
        } else {
            buf_append_str(out, reason);
        }
        if (!local && !conf->defer_remote && msg->env.next_attempt > 0) {
            char next[TIMEFMT_RFC5322_LEN];
            timefmt_mbox(msg->env.next_attempt, next, sizeof next);
            next[19] = '\0';
            buf_printf(out, "; next attempt %s", next);
        }
        buf_append_str(out, ")\n");
        mailq_indent(out, MAILQ_RCPT_COL);
        mailq_append_safe(out, r->addr);
        buf_append_char(out, '\n');
    }
    buf_append_char(out, '\n');
    if (totals) {
        totals->requests++;
        totals->bytes += msg->size;
    }
}

void mailq_format_footer(const struct mailq_totals *totals, struct buf *out)
{
    /* Rounded up, so one small message never reads as "0 Kbytes". */
    buf_printf(out, "-- %llu Kbytes in %zu Request%s.\n", (totals->bytes + 1023) / 1024,
               totals->requests, totals->requests == 1 ? "" : "s");
}

void mailq_format(const struct zconf *conf, const struct queue_msg *msgs, size_t n,
                  struct buf *out)
{
    if (n == 0) {
        buf_append_str(out, "Mail queue is empty\n");
        return;
    }
    struct mailq_totals totals = {0, 0};
    mailq_format_header(out);
    for (size_t i = 0; i < n; i++)
        mailq_format_msg(conf, &msgs[i], &totals, out);
    mailq_format_footer(&totals, out);
}

int mailq_list(const struct zconf *conf, struct buf *out, const char **error_r)
{
    /* Refuse rather than create: listing must not make folders the daemon has not made. */
    size_t n = strlen(conf->state_dir) + sizeof "/queue/msg";
    char *probe = xmalloc(n);
    snprintf(probe, n, "%s/queue/msg", conf->state_dir);
    int rc = access(probe, R_OK | X_OK);
    int e = errno;
    free(probe);
    if (rc < 0) {
        *error_r = e == ENOENT ? "no queue folder (has zolderd run with this config?)"
                               : "cannot read the queue folder";
        errno = e; /* the caller tells EACCES from ENOENT */
        return -1;
    }
    struct queue q;
    if (queue_open(&q, conf->state_dir) < 0) {
        *error_r = "cannot open the queue";
        queue_close(&q);
        return -1;
    }
    char **ids;
    size_t nids;
    queue_list(&q, true, &ids, &nids);
    struct mailq_totals totals = {0, 0};
    for (size_t i = 0; i < nids; i++) {
        struct queue_msg msg;
        const char *why;
        if (queue_load(&q, ids[i], &msg, &why) < 0) {
            if (errno == ENOENT)
                continue; /* delivered (or released/held) since we read the folder */
            if (totals.requests == 0)
                mailq_format_header(out);
            buf_printf(out, "%-*s (unreadable: %s)\n\n", MAILQ_ID_WIDTH, ids[i], why);
            totals.requests++;
            continue;
        }
        if (totals.requests == 0)
            mailq_format_header(out);
        mailq_format_msg(conf, &msg, &totals, out);
        queue_msg_free(&msg);
    }
    queue_list_free(ids, nids);
    queue_close(&q);
    if (totals.requests == 0)
        buf_append_str(out, "Mail queue is empty\n");
    else
        mailq_format_footer(&totals, out);
    return 0;
}
