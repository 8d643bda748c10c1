/*
 * fetch: the poller (see fetch.h).
 *
 * STANDARDS
 *   RFC 1939 (POP3), RFC 2449 (CAPA, PIPELINING), RFC 2595 (STLS, STARTTLS), RFC 5034 (POP3
 *   AUTH), RFC 4616 (PLAIN), RFC 3501 (IMAP4rev1), RFC 4315 (UIDPLUS), RFC 4959 (SASL-IR),
 *   RFC 5321 4.4 (the Received line fetch prepends, in fetchmail's shape).
 *
 * DESIGN
 *   One account at a time. Each account has a FIFO of commands sent and not yet answered;
 *   replies are matched in order (POP3) or by tag (IMAP, still in order of sending). A pump
 *   decides what to send next whenever something happened: setup commands one at a time,
 *   then deletions of synced messages first, then the next RETR/FETCH while the window and
 *   the hand-off backlog allow, then the closing commands once nothing is in flight.
 *   Hand-off completions write the UID record; one deferred event syncs it for all 250s of
 *   the turn and only then releases those messages for deletion.
 */
#include "fetch/fetch.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "dsn.h"
#include "fetch/handoff.h"
#include "fsutil.h"
#include "fetch/uidrec.h"
#include "hdr.h"
#include "imap_resp.h"
#include "log.h"
#include "netaddr.h"
#include "pop3_reply.h"
#include "str.h"
#include "timefmt.h"
#include "xalloc.h"

#define FETCH_WINDOW 16              /* RETR/FETCH commands in flight when pipelining */
#define FETCH_BACKLOG_MAX 64         /* messages fetched and not yet answered by zolder */
#define FETCH_MESSAGE_MAX (256UL * 1024 * 1024)
#define FETCH_STORE_BATCH 200
/* One fdatasync of the UID record covers the 250s of up to FETCH_SYNC_BATCH messages or
 * FETCH_SYNC_DELAY_USEC (acct_sync_soon): the server still hears of none before it */
#define FETCH_SYNC_BATCH 32
#define FETCH_SYNC_DELAY_USEC 5000
#define FETCH_DEFAULT_TIMEOUT 300

enum msg_fate {
    M_NEW = 0,      /* to fetch */
    M_SKIP,         /* over limit / fetchlimit: left alone */
    M_KNOWN,        /* in the UID record already: delete if !keep */
    M_FETCHING,     /* RETR/FETCH sent */
    M_HANDOFF,      /* with zolder */
    M_RECORDED,     /* 250, UID written, sync pending */
    M_SYNCED,       /* durable: may be deleted / flagged */
    M_CLEANUP,      /* DELE / STORE sent */
    M_DONE,         /* deleted (or flagged), or kept */
    M_DEFERRED,     /* zolder said 4xx, or the fetch failed: stays for the next poll */
};

struct fetch_acct;

struct fetch_msg {
    struct fetch_acct *a;
    unsigned long num;              /* POP3 message number; IMAP UID */
    char uid[UIDREC_UID_MAX + 1];   /* record key */
    unsigned long size;
    enum msg_fate fate;
    bool refused;                   /* 5xx: deleted (or kept) without delivery */
    bool deleted_now;               /* counted in deleted */
    bool purge;                     /* delete on the server even with keep (flush of a
                                     * delivered message, limitflush of an oversized one) */
    bool oversized;                 /* over `limit`: never fetched */
    bool warn;                      /* oversized, the postmaster not yet told */
    unsigned batch;                 /* IMAP STORE batch */
    size_t ordinal;                 /* 1-based among messages to fetch, for progress */
    struct buf data;
    struct handoff_item item;
    struct buf bounce_data;         /* the notice for a message zolder refused */
    struct handoff_item bounce;
};

enum cmd_kind {
    A_GREETING, /* proto auto: a greeting that says which protocol the server speaks */
    P_GREETING, P_CAPA, P_STLS, P_AUTH, P_USER, P_PASS, P_UIDL, P_LIST, P_RETR, P_DELE, P_QUIT,
    I_GREETING, I_CAPABILITY, I_STARTTLS, I_LOGIN, I_AUTH, I_SELECT, I_SEARCH, I_SEARCH_DEL,
    I_SEARCH_SEEN,
    I_SIZES, I_FETCH, I_STORE, I_EXPUNGE, I_LOGOUT,
    I_IDLE,     /* RFC 2177: answered (tagged) only after our DONE */
};

struct fetch_cmd {
    enum cmd_kind kind;
    struct fetch_msg *msg;
    unsigned tag;                   /* IMAP */
    unsigned batch;                 /* IMAP STORE */
    bool multiline;                 /* POP3: the +OK was read, the body follows */
};

enum acct_phase { PH_CONNECT, PH_TLS, PH_SETUP, PH_TRANSFER, PH_CLOSING, PH_DRAIN, PH_IDLE };

#define FETCH_IDLE_RENEW_DEFAULT (28UL * 60) /* fetchmail's: below RFC 2177's 29 minutes */
#define FETCH_IDLE_TOLD_MAX 64              /* accounts told once why they do not IDLE */

struct fetch_acct {
    struct fetch_run *run;
    const struct fetchrc_server *srv;
    const struct fetchrc_user *user;
    struct fetch_account_result *res;
    char remote[256];
    char local[256];
    bool imap;
    bool keep, fetchall;
    bool tls_required, implicit_tls, tls_on;
    bool no_tls;                    /* sslproto '': stay in the clear */
    bool multidrop;
    unsigned port;
    /* proto auto (fetchmail's order: IMAP, then POP3) */
    bool probing;                   /* the protocol is not known yet */
    bool probe_default_port;        /* no `port`: IMAP's port first, POP3's when that fails */
    struct sockaddr_storage peer;   /* the server's address, to try POP3's port on it */
    socklen_t peer_len;
    SSL_CTX *ssl_ctx;
    struct bufferevent *bev;
    enum acct_phase phase;
    struct fetch_cmd fifo[FETCH_WINDOW + 8];
    size_t nfifo;
    unsigned next_tag;
    unsigned caps;                  /* pop3_capa or imap_capa bits */
    bool capa_known;
    bool tls_tried;
    bool authed;
    struct buf mbody;               /* POP3 multi-line in progress */
    struct pop3_multiline ml;
    struct fetch_msg **msgs;
    size_t nmsgs;
    size_t next_fetch;              /* index of the next M_NEW candidate */
    size_t to_fetch;                /* messages planned for fetching */
    size_t fetched_ord;
    unsigned long uidvalidity;
    unsigned store_batch;
    size_t inflight;                /* messages with zolder */
    size_t pending_deleted;         /* IMAP: \Deleted set, not yet expunged */
    size_t sizes_pending;           /* IMAP: UID FETCH (RFC822.SIZE) commands in flight */
    bool expunged;
    struct uidrec rec;
    bool rec_open;
    const char *folder;             /* IMAP: the folder of this pass (one per `folder` name) */
    struct handoff *handoff;        /* the run's (fetch_smtp), or own_handoff (smtphost) */
    struct handoff *own_handoff;
    size_t smtp_try;                /* the smtphost being tried */
    struct bufferevent *smtp_probe; /* its connection, until it greets */
    char smtp_host[300];
    unsigned smtp_port;
    struct sockaddr_storage smtp_addr;
    socklen_t smtp_addr_len;
    char smtp_last_error[800];
    const char *by_name;            /* Received "by" */
    char smtphost_by[256];
    struct uidrec warned;           /* oversized messages the postmaster was told about */
    bool warned_open;
    struct buf warn_data;           /* the oversized-messages warning, while with zolder */
    struct handoff_item warn_item;
    struct event *sync_ev;
    size_t unsynced;                /* 250s recorded since the last sync was started */
    struct relay_dns_req *dnsreq;   /* a lookup in flight */
    bool failed;
    bool no_prune;
    bool smtp_failed;               /* a hand-off session to zolder was lost */                  /* deletions not confirmed: keep every recorded UID */
    bool finished;
    /* IMAP IDLE (fetchmailrc `idle`, inside zolderd): after its poll the account leaves its
     * run for the idle set and stays connected */
    struct fetch_idle *idle_set;    /* non-NULL: idling between polls, no longer in the run */
    struct fetch_acct *idle_next;
    struct fetch_account_result idle_res; /* its result while idling (the run's row is done) */
    bool idling;                    /* "+ idling" seen, DONE not yet sent */
    bool idle_done_sent;
    bool idle_wake;                 /* new mail: fetch it once the IDLE is answered */
    bool exists_known;
    unsigned long exists;           /* the mailbox's size as this session was told */
    struct event *idle_timer;       /* the IDLE is renewed when it fires */
    unsigned long wakes;            /* fetches started by new mail */
};

struct fetch_idle {
    struct event_base *base;
    struct fetch_acct *list;        /* idling (or fetching after a wake) */
    struct fetch_acct *dead;        /* ended, to be freed from the loop */
    struct event *reap_ev;
    char *told[FETCH_IDLE_TOLD_MAX]; /* accounts whose "no IDLE here" was logged */
    size_t ntold;
};

struct fetch_run {
    struct event_base *base;
    struct fetchrc *rc;
    struct fetch_config cfg;
    char hostname[256];
    char by_name[256];              /* Received "by": localhost for a loopback hand-off */
    char state_dir[1024];
    char invoking_user[256];
    fetch_done_fn done;
    void *done_ctx;
    struct handoff *handoff;
    struct fetch_result result;
    size_t iserver, iuser, ifolder;
    unsigned char *probed;          /* per server entry, proto auto: 0 not yet, else PROBED_* */
    struct fetch_acct *acct;
    struct event *next_ev;
    unsigned refs;                  /* 1 while the run goes on, +1 per account it left idling:
                                     * rc (their srv/user) lives until the last one ends */
};

enum { PROBED_POP3 = 1, PROBED_IMAP = 2 };

static void acct_pump(struct fetch_acct *a);
static void acct_finish(struct fetch_acct *a);
static void acct_cycle_close(struct fetch_acct *a);
static bool acct_idle_begin(struct fetch_acct *a);
static void idle_key(char *out, size_t outsize, const char *server, const char *remote,
                     const char *folder);
static bool idle_has(const struct fetch_idle *set, const char *key);
static void idle_tell_once(struct fetch_idle *set, struct fetch_acct *a, const char *why);
static void acct_idle_send(struct fetch_acct *a);
static bool acct_probe_fallback(struct fetch_acct *a, const char *why);
static bool acct_open_records(struct fetch_acct *a);
static void acct_warn_oversized(struct fetch_acct *a);
static void run_next(struct fetch_run *run);

/* ---- progress and errors ------------------------------------------------------------------ */

static void fetch_progress(struct fetch_run *run, const char *fmt, ...) LOG_PRINTF(2, 3);

static void fetch_progress(struct fetch_run *run, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (run->cfg.progress)
        run->cfg.progress(run->cfg.progress_ctx, line);
    else
        log_info("fetch: %s", line);
}

static void acct_fail(struct fetch_acct *a, int status, const char *fmt, ...) LOG_PRINTF(3, 4);

/* Ends the session with an error: what zolder already has is still recorded (PH_DRAIN). */
static void acct_fail(struct fetch_acct *a, int status, const char *fmt, ...)
{
    if (a->failed || a->finished)
        return;
    a->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->res->error, sizeof a->res->error, fmt, ap);
    va_end(ap);
    a->res->status = status;
    log_warnx("fetch: %s: %s", a->res->label, a->res->error);
    fetch_progress(a->run, "%s: %s", a->res->label, a->res->error);
    if (a->dnsreq) {
        relay_dns_cancel(a->dnsreq);
        a->dnsreq = NULL;
    }
    if (a->smtp_probe) {
        bufferevent_free(a->smtp_probe);
        a->smtp_probe = NULL;
    }
    if (a->bev) {
        bufferevent_free(a->bev);
        a->bev = NULL;
    }
    a->phase = PH_DRAIN;
    acct_pump(a);
}

/* ---- sending ------------------------------------------------------------------------------ */

static struct fetch_cmd *acct_push(struct fetch_acct *a, enum cmd_kind kind, struct fetch_msg *m)
{
    struct fetch_cmd *c = &a->fifo[a->nfifo++];
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->msg = m;
    c->tag = ++a->next_tag;
    return c;
}

static void acct_pop(struct fetch_acct *a)
{
    memmove(&a->fifo[0], &a->fifo[1], (a->nfifo - 1) * sizeof a->fifo[0]);
    a->nfifo--;
}

static void pop3_send(struct fetch_acct *a, enum cmd_kind kind, struct fetch_msg *m,
                      const char *fmt, ...) LOG_PRINTF(4, 5);

static void pop3_send(struct fetch_acct *a, enum cmd_kind kind, struct fetch_msg *m,
                      const char *fmt, ...)
{
    struct evbuffer *out = bufferevent_get_output(a->bev);
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(out, fmt, ap);
    va_end(ap);
    evbuffer_add(out, "\r\n", 2);
    acct_push(a, kind, m);
    if (kind == P_PASS || kind == P_AUTH)
        log_debug("fetch: %s: > %s ****", a->res->label, kind == P_PASS ? "PASS" : "AUTH PLAIN");
}

static void imap_send(struct fetch_acct *a, enum cmd_kind kind, struct fetch_msg *m,
                      const char *fmt, ...) LOG_PRINTF(4, 5);

static void imap_send(struct fetch_acct *a, enum cmd_kind kind, struct fetch_msg *m,
                      const char *fmt, ...)
{
    struct fetch_cmd *c = acct_push(a, kind, m);
    struct evbuffer *out = bufferevent_get_output(a->bev);
    evbuffer_add_printf(out, "z%u ", c->tag);
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(out, fmt, ap);
    va_end(ap);
    evbuffer_add(out, "\r\n", 2);
}

/* base64 of "\0user\0pass" (RFC 4616). */
static char *sasl_plain(const char *user, const char *pass)
{
    size_t ul = strlen(user), pl = strlen(pass);
    size_t n = ul + pl + 2;
    unsigned char *raw = xmalloc(n);
    raw[0] = '\0';
    memcpy(raw + 1, user, ul);
    raw[1 + ul] = '\0';
    memcpy(raw + 2 + ul, pass, pl);
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, raw, (int)n);
    explicit_bzero(raw, n);
    free(raw);
    return out;
}

/* An IMAP quoted string; false when it cannot be one (CR, LF, NUL). */
static bool imap_quote(const char *s, struct buf *out)
{
    buf_append_char(out, '"');
    for (; *s; s++) {
        if (*s == '\r' || *s == '\n')
            return false;
        if (*s == '"' || *s == '\\')
            buf_append_char(out, '\\');
        buf_append_char(out, *s);
    }
    buf_append_char(out, '"');
    return true;
}

/* ---- messages and hand-off ------------------------------------------------------------------ */

static struct fetch_msg *acct_add_msg(struct fetch_acct *a, unsigned long num)
{
    struct fetch_msg *m = xcalloc(1, sizeof *m);
    m->a = a;
    m->num = num;
    buf_init(&m->data, FETCH_MESSAGE_MAX + 4096);
    a->msgs = xreallocarray(a->msgs, a->nmsgs + 1, sizeof(struct fetch_msg *));
    a->msgs[a->nmsgs++] = m;
    return m;
}

static struct fetch_msg *acct_find_num(struct fetch_acct *a, unsigned long num)
{
    for (size_t i = 0; i < a->nmsgs; i++)
        if (a->msgs[i]->num == num)
            return a->msgs[i];
    return NULL;
}

/* The envelope sender: Return-Path, else From's address, else <>. */
static void fetch_sender(const char *msg, size_t len, char *out, size_t outsize)
{
    out[0] = '\0';
    size_t hlen = hdr_section_len(msg, len);
    size_t pos = 0;
    struct hdr_field f;
    char from[512] = "";
    while (hdr_next(msg, hlen, &pos, &f)) {
        bool rp = f.name_len == 11 && strncasecmp(f.name, "Return-Path", 11) == 0;
        bool fr = f.name_len == 4 && strncasecmp(f.name, "From", 4) == 0;
        if (!rp && !fr)
            continue;
        const char *v = f.value, *end = f.value + f.value_len;
        const char *lt = memchr(v, '<', f.value_len);
        const char *s = lt ? lt + 1 : v;
        const char *e = lt ? memchr(s, '>', (size_t)(end - s)) : end;
        if (!e)
            continue;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
            e--;
        size_t n = (size_t)(e - s);
        bool ok = n < 500 && n > 0 && memchr(s, '@', n) != NULL;
        for (size_t i = 0; ok && i < n; i++)
            if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '<' ||
                s[i] == '>' || s[i] == ',' || s[i] == '(' || s[i] == '"')
                ok = false;
        if (!ok)
            continue;
        if (rp) {
            snprintf(out, outsize, "%.*s", (int)n, s);
            return;
        }
        if (!from[0])
            snprintf(from, sizeof from, "%.*s", (int)n, s);
    }
    snprintf(out, outsize, "%s", from);
}

static void acct_sync_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fetch_acct *a = arg;
    a->unsynced = 0;
    if (uidrec_sync(&a->rec) < 0) {
        /* nothing is promised to the server; the messages may come again (zolder has them) */
        log_error("fetch: %s: cannot sync the UID record %s: %s", a->res->label, a->rec.path,
                  strerror(errno));
        for (size_t i = 0; i < a->nmsgs; i++)
            if (a->msgs[i]->fate == M_RECORDED)
                a->msgs[i]->fate = M_DEFERRED;
        acct_fail(a, FETCH_PS_INTERNAL, "cannot sync the UID record");
        return;
    }
    for (size_t i = 0; i < a->nmsgs; i++)
        if (a->msgs[i]->fate == M_RECORDED)
            a->msgs[i]->fate = M_SYNCED;
    acct_pump(a);
}

/*
 * A 250 was recorded: the record is synced at once when FETCH_SYNC_BATCH wait or no other
 * hand-off is in flight (no 250 is coming soon), else within FETCH_SYNC_DELAY_USEC, so one
 * fdatasync covers the 250s of several sessions and the loop blocks in it less often. The
 * server is told nothing (DELE, \Deleted) before: only a crash in between costs more, a
 * message fetched again (a duplicate, never a loss), as it always could.
 */
static void acct_sync_soon(struct fetch_acct *a)
{
    if (++a->unsynced >= FETCH_SYNC_BATCH || handoff_pending(a->handoff) == 0) {
        event_del(a->sync_ev);
        event_active(a->sync_ev, EV_TIMEOUT, 0);
    } else if (!event_pending(a->sync_ev, EV_TIMEOUT, NULL)) {
        struct timeval delay = {0, FETCH_SYNC_DELAY_USEC};
        event_add(a->sync_ev, &delay);
    }
}

/* A notice of ours (refusal DSN, size warning) is done with: its text and recipients go. */
static void notice_clear(struct buf *data, struct handoff_item *item)
{
    buf_free(data);
    for (size_t i = 0; i < item->nrcpt; i++)
        free(item->rcpts[i]);
    item->nrcpt = 0;
}

static void acct_bounce_done(struct handoff_item *item, int code, const char *reply)
{
    struct fetch_msg *m = item->ctx;
    struct fetch_acct *a = m->a;
    a->inflight--;
    notice_clear(&m->bounce_data, &m->bounce);
    if (a->finished)
        return;
    if (code >= 200 && code < 300) {
        /* the notice is safe with zolder: the message may go (recorded, so it is neither
         * fetched nor bounced again after a cut link) */
        log_info("fetch: %s: message %s: refusal notice accepted (%s)", a->res->label, m->uid,
                 reply);
        if (uidrec_add(&a->rec, m->uid) < 0) {
            m->fate = M_DEFERRED;
            acct_fail(a, FETCH_PS_INTERNAL, "cannot write the UID record");
            return;
        }
        m->fate = M_RECORDED;
        event_active(a->sync_ev, EV_TIMEOUT, 0);
    } else {
        log_warnx("fetch: %s: message %s: refusal notice not accepted (%s): left on the server",
                  a->res->label, m->uid, reply);
        m->fate = M_DEFERRED;
    }
    acct_pump(a);
}

/*
 * fetchmail's bounce for a message zolder refused for good: to its sender (set bouncemail,
 * the default) or to the postmaster (set no bouncemail, or a null sender), from
 * MAILER-DAEMON with the null sender, holding the reply and the message's header.
 */
/* The postmaster's address: `set postmaster` (default postmaster, zolder's alias). */
static void acct_postmaster(const struct fetch_acct *a, char *out, size_t outsize)
{
    const char *domain = a->user->smtpaddress ? a->user->smtpaddress : "localhost";
    const char *pm = a->run->rc->postmaster ? a->run->rc->postmaster : "postmaster";
    bool qualified = strchr(pm, '@') != NULL;
    snprintf(out, outsize, "%s%s%s", pm, qualified ? "" : "@", qualified ? "" : domain);
}

/* A unique Message-ID for a notice of ours: time, pid, a counter. */
static void fetch_message_id(const struct fetch_run *run, char *out, size_t outsize)
{
    static unsigned long counter;
    snprintf(out, outsize, "fetch.%lld.%ld.%lu@%s", (long long)time(NULL), (long)getpid(),
             ++counter, run->hostname);
}

static bool acct_bounce(struct fetch_acct *a, struct fetch_msg *m, const char *reply)
{
    const struct fetchrc *rc = a->run->rc;
    char to[600];
    if (rc->bouncemail && m->item.sender[0])
        snprintf(to, sizeof to, "%s", m->item.sender);
    else
        acct_postmaster(a, to, sizeof to);
    char date[TIMEFMT_RFC5322_LEN];
    timefmt_rfc5322(time(NULL), date, sizeof date);
    char msgid[400];
    fetch_message_id(a->run, msgid, sizeof msgid);
    /* the reply's enhanced status code ("550 5.7.1 go away"), else dsn's default */
    char status[16] = "";
    const char *sp = strchr(reply, ' ');
    if (sp) {
        size_t n = strcspn(sp + 1, " ");
        if (n < sizeof status) {
            memcpy(status, sp + 1, n);
            status[n] = '\0';
        }
    }
    /* RFC 3464: one per-recipient block for each recipient zolder refused */
    struct dsn_rcpt rcpts[HANDOFF_RCPT_MAX];
    size_t nr = m->item.nrcpt < HANDOFF_RCPT_MAX ? m->item.nrcpt : HANDOFF_RCPT_MAX;
    for (size_t i = 0; i < nr; i++)
        rcpts[i] = (struct dsn_rcpt){.final_rcpt = m->item.rcpts[i], .orcpt = "",
                                     .action = DSN_ACTION_FAILED, .status = status,
                                     .remote_mta = a->by_name, .diagnostic = reply};
    struct dsn_report rep = {
        .kind = DSN_KIND_FAILURE, .reporting_mta = a->run->hostname, .to = to,
        .queue_id = m->uid, .envid = "", .arrival_date = date, .date = date,
        .message_id = msgid, .will_retry_until = "", .ret_full = false, .full_max = 0,
        .rcpts = rcpts, .nrcpts = nr, .message = m->data.data, .message_len = m->data.len,
    };
    struct buf *b = &m->bounce_data;
    buf_init(b, FETCH_MESSAGE_MAX);
    (void)dsn_format(&rep, b); /* 8-bit header bytes: handoff sends BODY=8BITMIME itself */
    bool ok = b->len > 0;      /* the buffer's cap (FETCH_MESSAGE_MAX) holds any header */
    if (!ok) {
        buf_free(b);
        return false;
    }
    memset(&m->bounce, 0, sizeof m->bounce);
    m->bounce.rcpts[0] = xstrdup(to);
    m->bounce.nrcpt = 1;
    m->bounce.data = b;
    m->bounce.done = acct_bounce_done;
    m->bounce.ctx = m;
    m->fate = M_HANDOFF;
    a->inflight++;
    log_info("fetch: %s: message %s refused: sending a notice to <%s>", a->res->label, m->uid, to);
    handoff_submit(a->handoff, &m->bounce);
    return true;
}

static void acct_handoff_done(struct handoff_item *item, int code, const char *reply)
{
    struct fetch_msg *m = item->ctx;
    struct fetch_acct *a = m->a;
    a->inflight--;
    if (a->finished)
        return; /* the run was cancelled: the message stays on the server */
    size_t size = m->data.len;
    if (code >= 500 && a->run->cfg.refused == FETCH_REFUSED_DELETE) {
        a->res->refused++;
        m->refused = true;
        log_warnx("fetch: %s: message %s refused by zolder (%s)", a->res->label, m->uid, reply);
        fetch_progress(a->run, "reading message %s@%s:%zu of %zu (%lu octets) refused: %s",
                       a->remote, a->srv->name, m->ordinal, a->to_fetch, m->size, reply);
        bool sent = acct_bounce(a, m, reply);
        buf_free(&m->data);
        buf_init(&m->data, FETCH_MESSAGE_MAX + 4096);
        if (!sent) {
            m->fate = M_DEFERRED;
            log_warnx("fetch: %s: message %s: no notice could be made: left on the server",
                      a->res->label, m->uid);
        }
        acct_pump(a);
        return;
    }
    buf_free(&m->data);
    buf_init(&m->data, FETCH_MESSAGE_MAX + 4096);
    const char *how = a->keep ? "not flushed" : "flushed";
    if (code >= 200 && code < 300) {
        a->res->delivered++;
        if (uidrec_add(&a->rec, m->uid) < 0) {
            log_error("fetch: %s: cannot write the UID record: %s", a->res->label,
                      strerror(errno));
            m->fate = M_DEFERRED; /* zolder has it; the server keeps it: a duplicate at worst */
            acct_fail(a, FETCH_PS_INTERNAL, "cannot write the UID record");
            return;
        }
        m->fate = M_RECORDED;
        acct_sync_soon(a);
        fetch_progress(a->run, "reading message %s@%s:%zu of %zu (%lu octets) %s", a->remote,
                       a->srv->name, m->ordinal, a->to_fetch, m->size ? m->size : (unsigned long)size,
                       how);
        log_info("fetch: %s: message %s delivered to %s (%s)", a->res->label, m->uid, a->local,
                 reply);
    } else {
        if (code >= 500)
            a->res->refused++;
        else
            a->res->deferred++;
        if (code == 421 && strncmp(reply, "421 4.4.", 8) == 0)
            a->smtp_failed = true; /* our own: the session to zolder was lost */
        log_warnx("fetch: %s: message %s not accepted by zolder (%s): left on the server",
                  a->res->label, m->uid, reply);
        fetch_progress(a->run, "reading message %s@%s:%zu of %zu (%lu octets) not flushed: %s",
                       a->remote, a->srv->name, m->ordinal, a->to_fetch, m->size, reply);
        m->fate = M_DEFERRED;
    }
    acct_pump(a);
}

/* ---- multidrop ------------------------------------------------------------------------------ */

static bool md_domain_local(const struct fetch_acct *a, const char *d, size_t n)
{
    const struct fetchrc_server *srv = a->srv;
    if (strlen(srv->name) == n && strncasecmp(srv->name, d, n) == 0)
        return true;
    for (size_t i = 0; i < srv->naka; i++)
        if (strlen(srv->aka[i]) == n && strncasecmp(srv->aka[i], d, n) == 0)
            return true;
    for (size_t i = 0; i < srv->nlocaldomains; i++) {
        size_t ln = strlen(srv->localdomains[i]);
        /* the domain itself or any name below it, as fetchmail matches localdomains */
        if (ln == n && strncasecmp(srv->localdomains[i], d, n) == 0)
            return true;
        if (n > ln + 1 && d[n - ln - 1] == '.' && strncasecmp(srv->localdomains[i], d + n - ln, ln) == 0)
            return true;
    }
    return false;
}

static bool md_valid_user(const char *u, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = u[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == '+'))
            return false;
    }
    return true;
}

/* One address: its local user, or NULL when it is not ours (written into out). */
static const char *md_map(const struct fetch_acct *a, const char *addr, size_t n, char *out,
                          size_t outsize)
{
    const char *at = memchr(addr, '@', n);
    if (!at || !md_domain_local(a, at + 1, (size_t)(addr + n - at - 1)))
        return NULL;
    const char *lp = addr;
    size_t ln = (size_t)(at - addr);
    const char *qv = a->srv->qvirtual;
    if (qv && qv[0] && ln > strlen(qv) && strncasecmp(lp, qv, strlen(qv)) == 0) {
        lp += strlen(qv);
        ln -= strlen(qv);
    }
    const struct fetchrc_user *u = a->user;
    bool star = false;
    for (size_t i = 0; i < u->nlocals; i++) {
        const struct fetchrc_local *l = &u->locals[i];
        if (strcmp(l->local, "*") == 0) {
            star = true;
            continue;
        }
        const char *name = l->remote ? l->remote : l->local;
        if (strlen(name) == ln && strncasecmp(name, lp, ln) == 0) {
            snprintf(out, outsize, "%s", l->local);
            return out;
        }
    }
    if (star && md_valid_user(lp, ln)) {
        snprintf(out, outsize, "%.*s", (int)ln, lp);
        for (char *p = out; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        return out;
    }
    return NULL;
}

/* The addresses of a header value: <...> parts, or bare words holding '@'. */
static void md_addresses(const char *v, size_t n, void (*each)(void *, const char *, size_t),
                         void *ctx)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',' || v[i] == '\r' || v[i] == '\n'))
            i++;
        size_t start = i;
        bool quoted = false;
        const char *lt = NULL, *gt = NULL;
        while (i < n && (quoted || v[i] != ',')) {
            if (v[i] == '"')
                quoted = !quoted;
            else if (!quoted && v[i] == '<')
                lt = v + i;
            else if (!quoted && v[i] == '>' && lt)
                gt = v + i;
            i++;
        }
        if (lt && gt && gt > lt + 1) {
            each(ctx, lt + 1, (size_t)(gt - lt - 1));
        } else {
            size_t s2 = start, e = i;
            while (s2 < e && (v[s2] == ' ' || v[s2] == '\t'))
                s2++;
            while (e > s2 && (v[e - 1] == ' ' || v[e - 1] == '\t' || v[e - 1] == '\r' || v[e - 1] == '\n'))
                e--;
            if (e > s2 && memchr(v + s2, '@', e - s2) && !memchr(v + s2, ' ', e - s2))
                each(ctx, v + s2, e - s2);
        }
    }
}

struct md_ctx {
    const struct fetch_acct *a;
    struct fetch_msg *m;
};

static void md_add(void *arg, const char *addr, size_t n)
{
    struct md_ctx *c = arg;
    char local[128];
    if (!md_map(c->a, addr, n, local, sizeof local))
        return;
    char rcpt[320];
    snprintf(rcpt, sizeof rcpt, "%s@%s", local,
             c->a->user->smtpaddress ? c->a->user->smtpaddress : "localhost");
    for (size_t i = 0; i < c->m->item.nrcpt; i++)
        if (strcasecmp(c->m->item.rcpts[i], rcpt) == 0)
            return;
    if (c->m->item.nrcpt < HANDOFF_RCPT_MAX)
        c->m->item.rcpts[c->m->item.nrcpt++] = xstrdup(rcpt);
}

/*
 * Multidrop recipients: the envelope header (the `envelope` one, after skipping N, else the
 * first of X-Original-To, Delivered-To, X-Envelope-To), else To and Cc; each address in a
 * local domain (poll name, aka, localdomains) mapped through `is`; none: the postmaster.
 */
static void md_recipients(struct fetch_acct *a, struct fetch_msg *m, const char *msg, size_t len)
{
    static const char *const envelopes[] = {"X-Original-To", "Delivered-To", "X-Envelope-To"};
    struct md_ctx ctx = {a, m};
    size_t hlen = hdr_section_len(msg, len);
    bool found = false;
    if (!a->srv->no_envelope) {
        size_t nnames = a->srv->envelope ? 1 : sizeof envelopes / sizeof envelopes[0];
        for (size_t k = 0; k < nnames && !found; k++) {
            const char *want = a->srv->envelope ? a->srv->envelope : envelopes[k];
            unsigned long skip = a->srv->envelope ? a->srv->envelope_skip : 0;
            size_t pos = 0;
            struct hdr_field f;
            while (hdr_next(msg, hlen, &pos, &f)) {
                if (f.name_len != strlen(want) || strncasecmp(f.name, want, f.name_len) != 0)
                    continue;
                if (skip) {
                    skip--;
                    continue;
                }
                found = true;
                md_addresses(f.value, f.value_len, md_add, &ctx);
                break; /* one envelope header: it names the recipient this copy is for */
            }
        }
    }
    if (!found) {
        size_t pos = 0;
        struct hdr_field f;
        while (hdr_next(msg, hlen, &pos, &f))
            if ((f.name_len == 2 && strncasecmp(f.name, "To", 2) == 0) ||
                (f.name_len == 2 && strncasecmp(f.name, "Cc", 2) == 0))
                md_addresses(f.value, f.value_len, md_add, &ctx);
    }
    if (m->item.nrcpt == 0) {
        const char *pm = a->run->rc->postmaster ? a->run->rc->postmaster : "postmaster";
        char rcpt[320];
        snprintf(rcpt, sizeof rcpt, "%s%s%s", pm, strchr(pm, '@') ? "" : "@",
                 strchr(pm, '@') ? "" : (a->user->smtpaddress ? a->user->smtpaddress : "localhost"));
        m->item.rcpts[m->item.nrcpt++] = xstrdup(rcpt);
        log_info("fetch: %s: message %s has no local recipient: to %s", a->res->label, m->uid,
                 rcpt);
    }
}

static void msg_free_rcpts(struct fetch_msg *m)
{
    for (size_t i = 0; i < m->item.nrcpt; i++)
        free(m->item.rcpts[i]);
    m->item.nrcpt = 0;
}

/* A whole message arrived: Received line, then off to zolder. */
static void acct_message_fetched(struct fetch_acct *a, struct fetch_msg *m, const char *body,
                                 size_t len)
{
    char date[TIMEFMT_RFC5322_LEN];
    timefmt_rfc5322(time(NULL), date, sizeof date);
    msg_free_rcpts(m);
    const char *domain = a->user->smtpaddress ? a->user->smtpaddress : "localhost";
    if (a->multidrop) {
        md_recipients(a, m, body, len);
    } else {
        char rcpt[320];
        snprintf(rcpt, sizeof rcpt, "%s@%s", a->local, domain);
        m->item.rcpts[m->item.nrcpt++] = xstrdup(rcpt);
    }
    struct buf *d = &m->data;
    buf_reset(d);
    bool ok;
    if (a->multidrop && m->item.nrcpt > 1)
        ok = buf_printf(d, "Received: from %s\r\n\tby %s with %s (zolder-fetch %s)\r\n"
                           "\t(multi-drop); %s\r\n",
                        a->srv->name, a->by_name, a->imap ? "IMAP" : "POP3",
                        ZOLDER_VERSION, date);
    else
        /* the seed's trace, fetchmail's shape: "by localhost ... for sjoerd@localhost
         * (single-drop)" */
        ok = buf_printf(d, "Received: from %s\r\n\tby %s with %s (zolder-fetch %s)\r\n"
                           "\tfor %s (%s); %s\r\n",
                        a->srv->name, a->by_name, a->imap ? "IMAP" : "POP3",
                        ZOLDER_VERSION, m->item.rcpts[0],
                        a->multidrop ? "multi-drop" : "single-drop", date);
    ok = ok && buf_append(d, body, len);
    if (ok && (d->len < 2 || d->data[d->len - 1] != '\n'))
        ok = buf_append(d, "\r\n", 2);
    if (!ok) {
        m->fate = M_DEFERRED;
        a->res->skipped++;
        log_warnx("fetch: %s: message %s too large to hand over: left on the server",
                  a->res->label, m->uid);
        return;
    }
    if (!m->size)
        m->size = len;
    fetch_sender(d->data, d->len, m->item.sender, sizeof m->item.sender);
    m->item.data = d;
    m->item.done = acct_handoff_done;
    m->item.ctx = m;
    m->fate = M_HANDOFF;
    a->inflight++;
    handoff_submit(a->handoff, &m->item);
}

/* ---- the oversized-messages warning ------------------------------------------------------- */

static void acct_warn_done(struct handoff_item *item, int code, const char *reply)
{
    struct fetch_acct *a = item->ctx;
    a->inflight--;
    notice_clear(&a->warn_data, &a->warn_item);
    if (a->finished)
        return;
    if (code >= 200 && code < 300) {
        /* told once: these UIDs are not reported again while they stay on the server */
        bool recorded = a->warned_open;
        for (size_t i = 0; i < a->nmsgs && recorded; i++)
            if (a->msgs[i]->warn && uidrec_add(&a->warned, a->msgs[i]->uid) < 0)
                recorded = false;
        if (!recorded || uidrec_sync(&a->warned) < 0)
            log_warnx("fetch: %s: cannot record the oversized-messages warning: it may come "
                      "again", a->res->label);
        log_info("fetch: %s: oversized-messages warning accepted (%s)", a->res->label, reply);
    } else {
        log_warnx("fetch: %s: oversized-messages warning not accepted (%s): sent again next "
                  "poll", a->res->label, reply);
    }
    acct_pump(a);
}

/*
 * fetchmail's size warning: once per oversized message (not every poll), to the postmaster,
 * from MAILER-DAEMON with the null sender, listing number, size and UID of each.
 */
static void acct_warn_oversized(struct fetch_acct *a)
{
    size_t n = 0;
    for (size_t i = 0; i < a->nmsgs; i++)
        if (a->msgs[i]->warn)
            n++;
    if (n == 0)
        return;
    char to[600], date[TIMEFMT_RFC5322_LEN], msgid[400];
    acct_postmaster(a, to, sizeof to);
    timefmt_rfc5322(time(NULL), date, sizeof date);
    fetch_message_id(a->run, msgid, sizeof msgid);
    struct buf *b = &a->warn_data;
    buf_init(b, 16UL * 1024 * 1024);
    bool ok = buf_printf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\nTo: <%s>\r\n"
                            "Subject: zolder-fetch oversized-messages warning\r\nDate: %s\r\n"
                            "Message-ID: <%s>\r\nAuto-Submitted: auto-generated\r\n"
                            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n"
                            "\r\nThe following oversized messages %s server %s account %s\r\n"
                            "(limit %lu octets):\r\n\r\n",
                         a->run->hostname, to, date, msgid,
                         a->user->limitflush ? "were deleted from" : "remain on",
                         a->srv->name, a->remote, a->user->limit);
    for (size_t i = 0; i < a->nmsgs && ok; i++) {
        const struct fetch_msg *m = a->msgs[i];
        if (m->warn)
            ok = buf_printf(b, "  %lu msg %lu octets long skipped by zolder-fetch (UID %s).\r\n",
                            m->num, m->size, m->uid);
    }
    if (!ok) {
        buf_free(b);
        return;
    }
    memset(&a->warn_item, 0, sizeof a->warn_item);
    a->warn_item.rcpts[0] = xstrdup(to);
    a->warn_item.nrcpt = 1;
    a->warn_item.data = b;
    a->warn_item.done = acct_warn_done;
    a->warn_item.ctx = a;
    a->inflight++;
    log_info("fetch: %s: %zu oversized message%s: warning <%s>", a->res->label, n,
             n == 1 ? "" : "s", to);
    handoff_submit(a->handoff, &a->warn_item);
}

/* ---- planning ------------------------------------------------------------------------------ */

/* After the listing: which messages to fetch, which are known already. */
static void acct_plan(struct fetch_acct *a)
{
    unsigned long total = 0;
    size_t fresh = 0;
    for (size_t i = 0; i < a->nmsgs; i++) {
        struct fetch_msg *m = a->msgs[i];
        if (uidrec_has(&a->rec, m->uid)) {
            m->fate = M_KNOWN;
            a->res->seen++;
            if (!a->keep || a->user->flush) {
                /* delivered before: delete it now, without fetching (fetchmail's flush:
                 * old messages go even with keep) */
                m->fate = M_SYNCED;
                m->purge = a->keep;
            } else {
                m->fate = M_DONE;
            }
            continue;
        }
        if (a->user->limit && m->size > a->user->limit) {
            /* fetchmail: never fetched, never marked seen; deleted with limitflush */
            m->oversized = true;
            m->warn = !a->warned_open || !uidrec_has(&a->warned, m->uid);
            a->res->skipped++;
            if (a->user->limitflush) {
                m->fate = M_SYNCED;
                m->purge = true;
            } else {
                m->fate = M_SKIP;
            }
            fetch_progress(a->run, "skipping message %s@%s:%lu (%lu octets) %s", a->remote,
                           a->srv->name, m->num, m->size,
                           a->user->limitflush ? "flushed" : "not flushed");
            log_info("fetch: %s: message %s is %lu octets, over the limit of %lu: %s",
                     a->res->label, m->uid, m->size, a->user->limit,
                     a->user->limitflush ? "deleted (limitflush)" : "left on the server");
            continue;
        }
        if (a->user->fetchlimit && fresh >= a->user->fetchlimit) {
            m->fate = M_SKIP;
            continue;
        }
        m->fate = M_NEW;
        m->ordinal = ++fresh;
        total += m->size;
    }
    a->to_fetch = fresh;
    a->res->messages = (unsigned)a->nmsgs;
    if (a->nmsgs == 0)
        fetch_progress(a->run, "No mail for %s at %s", a->remote, a->srv->name);
    else if (a->res->seen)
        fetch_progress(a->run, "%zu messages (%u seen) for %s at %s (%lu octets).", a->nmsgs,
                       a->res->seen, a->remote, a->srv->name, total);
    else
        fetch_progress(a->run, "%zu messages for %s at %s (%lu octets).", a->nmsgs, a->remote,
                       a->srv->name, total);
    a->phase = PH_TRANSFER;
    acct_warn_oversized(a);
}

/* ---- TLS ---------------------------------------------------------------------------------- */

static void acct_read_cb(struct bufferevent *bev, void *arg);
static void acct_event_cb(struct bufferevent *bev, short what, void *arg);

static bool acct_tls_context(struct fetch_acct *a)
{
    a->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!a->ssl_ctx)
        return false;
    int min = TLS1_2_VERSION;
    const char *proto = a->user->sslproto;
    if (proto) {
        if (str_starts_with_nocase(proto, "TLS1.3"))
            min = TLS1_3_VERSION;
        else if (str_starts_with_nocase(proto, "TLS1.1"))
            min = TLS1_1_VERSION;
        else if (str_eq_nocase(proto, "TLS1") || str_eq_nocase(proto, "TLS1+"))
            min = TLS1_VERSION;
    }
    SSL_CTX_set_min_proto_version(a->ssl_ctx, min);
    SSL_CTX_set_options(a->ssl_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (a->user->sslcertck) {
        int ok = a->user->sslcertfile
                     ? SSL_CTX_load_verify_locations(a->ssl_ctx, a->user->sslcertfile, NULL)
                     : SSL_CTX_set_default_verify_paths(a->ssl_ctx);
        if (ok != 1)
            return false;
        SSL_CTX_set_verify(a->ssl_ctx, SSL_VERIFY_PEER, NULL);
    }
    return true;
}

static void acct_start_tls(struct fetch_acct *a)
{
    /* RFC 2595 4 / RFC 3501 6.2.1: nothing the server sent before the handshake counts */
    struct evbuffer *in = bufferevent_get_input(a->bev);
    size_t junk = evbuffer_get_length(in);
    if (junk) {
        log_warnx("fetch: %s: discarding %zu bytes received before the TLS handshake",
                  a->res->label, junk);
        evbuffer_drain(in, junk);
    }
    if (!a->ssl_ctx && !acct_tls_context(a)) {
        acct_fail(a, FETCH_PS_SOCKET, "cannot set up TLS (sslcertfile %s)",
                  a->user->sslcertfile ? a->user->sslcertfile : "(system)");
        return;
    }
    SSL *ssl = SSL_new(a->ssl_ctx);
    if (!ssl) {
        acct_fail(a, FETCH_PS_SOCKET, "cannot create a TLS session");
        return;
    }
    const char *name = a->user->sslcommonname ? a->user->sslcommonname : a->srv->name;
    SSL_set_tlsext_host_name(ssl, name);
    if (a->user->sslcertck)
        SSL_set1_host(ssl, name);
    struct bufferevent *tls = bufferevent_openssl_filter_new(
        a->run->base, a->bev, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (!tls) {
        SSL_free(ssl);
        acct_fail(a, FETCH_PS_SOCKET, "cannot start TLS");
        return;
    }
    a->bev = tls;
    a->phase = PH_TLS;
    a->capa_known = false;
    a->caps = 0;
    bufferevent_setcb(tls, acct_read_cb, NULL, acct_event_cb, a);
    unsigned long t = a->srv->timeout ? a->srv->timeout : FETCH_DEFAULT_TIMEOUT;
    struct timeval to = {(time_t)t, 0};
    bufferevent_set_timeouts(tls, &to, &to);
    bufferevent_enable(tls, EV_READ | EV_WRITE);
}

/* ---- POP3 ----------------------------------------------------------------------------------- */

static void pop3_setup_next(struct fetch_acct *a)
{
    if (!a->capa_known) {
        pop3_send(a, P_CAPA, NULL, "CAPA");
        return;
    }
    if (!a->tls_on && !a->tls_tried && !a->no_tls &&
        (a->tls_required || (a->caps & POP3_CAPA_STLS))) {
        if (!(a->caps & POP3_CAPA_STLS)) {
            acct_fail(a, FETCH_PS_PROTOCOL, "TLS was asked for but the server offers no STLS");
            return;
        }
        a->tls_tried = true;
        pop3_send(a, P_STLS, NULL, "STLS");
        return;
    }
    if (a->tls_required && !a->tls_on) {
        acct_fail(a, FETCH_PS_PROTOCOL, "TLS was asked for: not sending the password in clear");
        return;
    }
    if (!a->authed) {
        const char *pass = a->user->password ? a->user->password : "";
        bool plain = a->srv->auth == FETCHRC_AUTH_PLAIN ||
                     (a->srv->auth == FETCHRC_AUTH_ANY && (a->caps & POP3_CAPA_SASL_PLAIN));
        if (plain) {
            char *b64 = sasl_plain(a->remote, pass);
            pop3_send(a, P_AUTH, NULL, "AUTH PLAIN %s", b64);
            explicit_bzero(b64, strlen(b64));
            free(b64);
        } else {
            pop3_send(a, P_USER, NULL, "USER %s", a->remote);
        }
        return;
    }
    pop3_send(a, P_UIDL, NULL, "UIDL");
}

static void pop3_pump(struct fetch_acct *a)
{
    bool pipelining = (a->caps & POP3_CAPA_PIPELINING) != 0;
    size_t window = pipelining ? FETCH_WINDOW : 1;
    if (a->phase == PH_SETUP) {
        if (a->nfifo == 0)
            pop3_setup_next(a);
        return;
    }
    if (a->phase == PH_TRANSFER) {
        /* deletions of what is durable first: they free the server's quota */
        for (size_t i = 0; i < a->nmsgs && a->nfifo < window; i++) {
            struct fetch_msg *m = a->msgs[i];
            if (m->fate == M_SYNCED && (!a->keep || m->purge)) {
                m->fate = M_CLEANUP;
                pop3_send(a, P_DELE, m, "DELE %lu", m->num);
            } else if (m->fate == M_SYNCED) {
                m->fate = M_DONE;
            }
        }
        while (a->nfifo < window && a->inflight < FETCH_BACKLOG_MAX && a->next_fetch < a->nmsgs) {
            struct fetch_msg *m = a->msgs[a->next_fetch++];
            if (m->fate != M_NEW)
                continue;
            m->fate = M_FETCHING;
            pop3_send(a, P_RETR, m, "RETR %lu", m->num);
        }
        bool busy = a->nfifo > 0 || a->inflight > 0 || a->next_fetch < a->nmsgs;
        for (size_t i = 0; i < a->nmsgs && !busy; i++)
            if (a->msgs[i]->fate == M_RECORDED || a->msgs[i]->fate == M_SYNCED)
                busy = true;
        if (!busy) {
            a->phase = PH_CLOSING;
            pop3_send(a, P_QUIT, NULL, "QUIT");
        }
    }
}

static void pop3_listing(struct fetch_acct *a, enum cmd_kind kind)
{
    const char *p = a->mbody.data ? a->mbody.data : "", *end = p + a->mbody.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t n = (size_t)(le - p);
        if (n && p[n - 1] == '\r')
            n--;
        unsigned long num, size;
        char uid[POP3_UID_MAX + 1];
        if (kind == P_UIDL && pop3_uidl_line(p, n, &num, uid)) {
            if (!acct_find_num(a, num) && a->nmsgs < UIDREC_MAX)
                snprintf(acct_add_msg(a, num)->uid, sizeof uid, "%s", uid);
        } else if (kind == P_LIST && pop3_list_line(p, n, &num, &size)) {
            struct fetch_msg *m = acct_find_num(a, num);
            if (m)
                m->size = size;
        } else if (n) {
            log_warnx("fetch: %s: ignoring a malformed %s line", a->res->label,
                      kind == P_UIDL ? "UIDL" : "LIST");
        }
        p = nl ? nl + 1 : end;
    }
}

/* One whole status (and body) for the head of the FIFO. */
static void pop3_on_reply(struct fetch_acct *a, struct fetch_cmd *c, const struct pop3_status *st)
{
    bool ok = st->kind == POP3_STATUS_OK;
    switch (c->kind) {
    case P_GREETING:
        if (!ok) {
            acct_fail(a, FETCH_PS_ERROR, "server greeting: -ERR %s", st->text);
            return;
        }
        a->phase = PH_SETUP;
        break;
    case P_CAPA:
        a->capa_known = true;
        if (ok)
            a->caps = pop3_capa_parse(a->mbody.data ? a->mbody.data : "", a->mbody.len);
        break;
    case P_STLS:
        if (!ok) {
            if (a->tls_required) {
                acct_fail(a, FETCH_PS_PROTOCOL, "STLS refused: -ERR %s", st->text);
                return;
            }
            break; /* opportunistic: go on in the clear */
        }
        acct_start_tls(a);
        return;
    case P_USER:
        if (!ok) {
            acct_fail(a, FETCH_PS_AUTHFAIL, "USER refused: -ERR %s", st->text);
            return;
        }
        pop3_send(a, P_PASS, NULL, "PASS %s", a->user->password ? a->user->password : "");
        return;
    case P_PASS:
    case P_AUTH:
        if (!ok) {
            bool busy = strcasecmp(st->code, "IN-USE") == 0;
            acct_fail(a, busy ? FETCH_PS_LOCKBUSY : FETCH_PS_AUTHFAIL,
                      "authentication failed: -ERR %s%s%s%s", st->code[0] ? "[" : "", st->code,
                      st->code[0] ? "] " : "", st->text);
            return;
        }
        a->authed = true;
        break;
    case P_UIDL:
        if (!ok) {
            acct_fail(a, FETCH_PS_PROTOCOL, "the server has no UIDL: -ERR %s", st->text);
            return;
        }
        pop3_listing(a, P_UIDL);
        pop3_send(a, P_LIST, NULL, "LIST");
        return;
    case P_LIST:
        if (!ok) {
            acct_fail(a, FETCH_PS_PROTOCOL, "LIST: -ERR %s", st->text);
            return;
        }
        pop3_listing(a, P_LIST);
        acct_plan(a);
        break;
    case P_RETR:
        if (!ok) {
            c->msg->fate = M_DEFERRED;
            log_warnx("fetch: %s: RETR %lu: -ERR %s", a->res->label, c->msg->num, st->text);
            break;
        }
        acct_message_fetched(a, c->msg, a->mbody.data ? a->mbody.data : "", a->mbody.len);
        break;
    case P_DELE:
        if (ok) {
            c->msg->fate = M_DONE;
            c->msg->deleted_now = true;
            a->res->deleted++;
        } else {
            c->msg->fate = M_DEFERRED;
            log_warnx("fetch: %s: DELE %lu: -ERR %s", a->res->label, c->msg->num, st->text);
        }
        break;
    case P_QUIT:
        if (!ok) {
            a->no_prune = true;
            log_warnx("fetch: %s: QUIT: -ERR %s (deletions may not have happened)",
                      a->res->label, st->text);
        }
        acct_finish(a);
        return;
    default:
        break;
    }
}

static bool pop3_multiline_kind(enum cmd_kind k)
{
    return k == P_CAPA || k == P_UIDL || k == P_LIST || k == P_RETR;
}

static void pop3_read(struct fetch_acct *a, struct evbuffer *in)
{
    while (a->bev && a->nfifo > 0 && !a->finished) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return;
        struct fetch_cmd *c = &a->fifo[0];
        const char *err = NULL;
        size_t used = 0;
        if (c->multiline) {
            /* whole lines only: pull up what is there (a partial line stays small) */
            const char *data = (const char *)evbuffer_pullup(in, -1);
            enum pop3_reply_result r = pop3_multiline_feed(&a->ml, data, len, &used, &a->mbody, &err);
            evbuffer_drain(in, used);
            if (r == POP3_REPLY_ERROR) {
                acct_fail(a, FETCH_PS_PROTOCOL, "%s", err);
                return;
            }
            if (r == POP3_REPLY_NEED_MORE)
                return;
            struct fetch_cmd done = *c;
            acct_pop(a);
            struct pop3_status st = {.kind = POP3_STATUS_OK};
            pop3_on_reply(a, &done, &st);
            buf_reset(&a->mbody);
            continue;
        }
        size_t look = len < POP3_REPLY_LINE_MAX ? len : POP3_REPLY_LINE_MAX;
        const char *data = (const char *)evbuffer_pullup(in, (ssize_t)look);
        struct pop3_status st;
        enum pop3_reply_result r = pop3_status_parse(data, look, &used, &st, &err);
        if (r == POP3_REPLY_ERROR) {
            acct_fail(a, FETCH_PS_PROTOCOL, "%s", err);
            return;
        }
        if (r == POP3_REPLY_NEED_MORE)
            return;
        evbuffer_drain(in, used);
        if (st.kind == POP3_STATUS_OK && pop3_multiline_kind(c->kind)) {
            c->multiline = true;
            pop3_multiline_init(&a->ml);
            buf_reset(&a->mbody);
            continue;
        }
        struct fetch_cmd done = *c;
        acct_pop(a);
        pop3_on_reply(a, &done, &st);
    }
}

/* ---- IMAP ----------------------------------------------------------------------------------- */

static void imap_setup_next(struct fetch_acct *a)
{
    if (!a->capa_known) {
        imap_send(a, I_CAPABILITY, NULL, "CAPABILITY");
        return;
    }
    if (!a->tls_on && !a->tls_tried && !a->no_tls &&
        (a->tls_required || (a->caps & IMAP_CAPA_STARTTLS))) {
        if (!(a->caps & IMAP_CAPA_STARTTLS)) {
            acct_fail(a, FETCH_PS_PROTOCOL, "TLS was asked for but the server offers no STARTTLS");
            return;
        }
        a->tls_tried = true;
        imap_send(a, I_STARTTLS, NULL, "STARTTLS");
        return;
    }
    if (a->tls_required && !a->tls_on) {
        acct_fail(a, FETCH_PS_PROTOCOL, "TLS was asked for: not sending the password in clear");
        return;
    }
    if (!a->authed) {
        const char *pass = a->user->password ? a->user->password : "";
        bool plain = a->srv->auth == FETCHRC_AUTH_PLAIN ||
                     (a->srv->auth == FETCHRC_AUTH_ANY && (a->caps & IMAP_CAPA_AUTH_PLAIN) &&
                      (a->caps & IMAP_CAPA_SASL_IR)) ||
                     (a->caps & IMAP_CAPA_LOGINDISABLED);
        if (plain) {
            char *b64 = sasl_plain(a->remote, pass);
            imap_send(a, I_AUTH, NULL, "AUTHENTICATE PLAIN %s", b64);
            explicit_bzero(b64, strlen(b64));
            free(b64);
        } else {
            struct buf u, p;
            buf_init(&u, 0);
            buf_init(&p, 0);
            if (!imap_quote(a->remote, &u) || !imap_quote(pass, &p)) {
                buf_free(&u);
                explicit_bzero(p.data, p.len);
                buf_free(&p);
                acct_fail(a, FETCH_PS_AUTHFAIL, "user name or password cannot be sent to IMAP");
                return;
            }
            imap_send(a, I_LOGIN, NULL, "LOGIN %s %s", u.data, p.data);
            explicit_bzero(p.data, p.len);
            buf_free(&u);
            buf_free(&p);
        }
        return;
    }
    const char *folder = a->folder;
    struct buf f;
    buf_init(&f, 0);
    if (!imap_quote(folder, &f)) {
        buf_free(&f);
        acct_fail(a, FETCH_PS_SYNTAX, "folder name cannot be sent to IMAP");
        return;
    }
    imap_send(a, I_SELECT, NULL, "SELECT %s", f.data);
    buf_free(&f);
}

#define IMAP_SET_MAX 4000 /* octets of one UID set: ispsim and others cap lines near 8 KiB */

static bool pick_all(const struct fetch_msg *m)
{
    (void)m;
    return true;
}

static bool pick_deleted(const struct fetch_msg *m)
{
    return m->deleted_now;
}

/*
 * The UIDs of msgs[*from..] that pick accepts, runs written "a:b" (msgs are sorted by UID),
 * until the set reaches IMAP_SET_MAX octets; *from is left where it stopped. false: none.
 */
static bool imap_uid_set(struct fetch_acct *a, size_t *from, bool (*pick)(const struct fetch_msg *),
                         struct buf *set)
{
    buf_reset(set);
    size_t i = *from;
    while (i < a->nmsgs && set->len < IMAP_SET_MAX) {
        if (!pick(a->msgs[i])) {
            i++;
            continue;
        }
        unsigned long first = a->msgs[i]->num, last = first;
        i++;
        while (i < a->nmsgs && pick(a->msgs[i]) && a->msgs[i]->num == last + 1)
            last = a->msgs[i++]->num;
        if (last == first)
            buf_printf(set, "%s%lu", set->len ? "," : "", first);
        else
            buf_printf(set, "%s%lu:%lu", set->len ? "," : "", first, last);
    }
    *from = i;
    return set->len > 0;
}

/* "UID STORE set +FLAGS.SILENT (...)" for up to FETCH_STORE_BATCH synced messages. */
static bool imap_store_batch(struct fetch_acct *a)
{
    struct buf set;
    buf_init(&set, 0);
    unsigned batch = ++a->store_batch;
    size_t n = 0;
    /* one flag set per batch: \Deleted too unless keep (or for a message to purge) */
    int deleting = -1;
    for (size_t i = 0; i < a->nmsgs && n < FETCH_STORE_BATCH; i++) {
        struct fetch_msg *m = a->msgs[i];
        if (m->fate != M_SYNCED)
            continue;
        bool del = !a->keep || m->purge;
        if (deleting < 0)
            deleting = del;
        else if (deleting != del)
            continue;
        m->fate = M_CLEANUP;
        m->batch = batch;
        n++;
    }
    if (n) {
        size_t from = 0;
        /* the batch's UIDs, runs compressed (the batch is small enough for one set) */
        while (from < a->nmsgs) {
            struct fetch_msg *m = a->msgs[from];
            if (m->fate != M_CLEANUP || m->batch != batch) {
                from++;
                continue;
            }
            unsigned long first = m->num, last = first;
            from++;
            while (from < a->nmsgs && a->msgs[from]->fate == M_CLEANUP &&
                   a->msgs[from]->batch == batch && a->msgs[from]->num == last + 1)
                last = a->msgs[from++]->num;
            if (last == first)
                buf_printf(&set, "%s%lu", set.len ? "," : "", first);
            else
                buf_printf(&set, "%s%lu:%lu", set.len ? "," : "", first, last);
        }
    }
    if (n) {
        imap_send(a, I_STORE, NULL, "UID STORE %s +FLAGS.SILENT (%s)", set.data,
                  deleting ? "\\Seen \\Deleted" : "\\Seen");
        a->fifo[a->nfifo - 1].batch = batch;
    }
    buf_free(&set);
    return n > 0;
}

static void imap_pump(struct fetch_acct *a)
{
    if (a->phase == PH_SETUP) {
        if (a->nfifo == 0)
            imap_setup_next(a);
        return;
    }
    if (a->phase != PH_TRANSFER)
        return;
    while (a->nfifo < FETCH_WINDOW && imap_store_batch(a))
        ;
    while (a->nfifo < FETCH_WINDOW && a->inflight < FETCH_BACKLOG_MAX && a->next_fetch < a->nmsgs) {
        struct fetch_msg *m = a->msgs[a->next_fetch++];
        if (m->fate != M_NEW)
            continue;
        m->fate = M_FETCHING;
        imap_send(a, I_FETCH, m, "UID FETCH %lu (UID BODY.PEEK[])", m->num);
    }
    bool busy = a->nfifo > 0 || a->inflight > 0 || a->next_fetch < a->nmsgs;
    for (size_t i = 0; i < a->nmsgs && !busy; i++)
        if (a->msgs[i]->fate == M_RECORDED || a->msgs[i]->fate == M_SYNCED)
            busy = true;
    if (busy)
        return;
    if (a->pending_deleted && !a->expunged) {
        a->expunged = true;
        if (a->caps & IMAP_CAPA_UIDPLUS) {
            /* only ours: another client's \Deleted messages are not ours to remove */
            struct buf set;
            buf_init(&set, 0);
            size_t from = 0;
            while (a->nfifo < FETCH_WINDOW && imap_uid_set(a, &from, pick_deleted, &set))
                imap_send(a, I_EXPUNGE, NULL, "UID EXPUNGE %s", set.data);
            buf_free(&set);
        } else {
            imap_send(a, I_EXPUNGE, NULL, "EXPUNGE");
        }
        return;
    }
    if (acct_idle_begin(a))
        return;
    a->phase = PH_CLOSING;
    imap_send(a, I_LOGOUT, NULL, "LOGOUT");
}

static void imap_search_result(struct fetch_acct *a, const struct imap_resp *r)
{
    size_t pos = 0;
    unsigned long uid;
    /* flush's SEARCH SEEN: only what we delivered ourselves counts as old (never someone
     * else's unread-by-us mail, unlike fetchmail) */
    bool only_known = a->nfifo && a->fifo[0].kind == I_SEARCH_SEEN;
    while (imap_resp_search_next(r, &pos, &uid)) {
        if (uid == 0 || acct_find_num(a, uid) || a->nmsgs >= UIDREC_MAX)
            continue;
        if (only_known) {
            char key[32];
            snprintf(key, sizeof key, "%lu", uid);
            if (!uidrec_has(&a->rec, key))
                continue;
        }
        struct fetch_msg *m = acct_add_msg(a, uid);
        snprintf(m->uid, sizeof m->uid, "%lu", uid);
    }
}

static int imap_cmp_num(const void *x, const void *y)
{
    const struct fetch_msg *a = *(struct fetch_msg *const *)x, *b = *(struct fetch_msg *const *)y;
    return a->num < b->num ? -1 : a->num > b->num;
}

static void imap_on_tagged(struct fetch_acct *a, struct fetch_cmd *c, const struct imap_resp *r)
{
    bool ok = r->status == IMAP_STATUS_OK;
    if (r->has_capabilities) {
        a->caps = r->capabilities;
        a->capa_known = true;
    }
    switch (c->kind) {
    case I_CAPABILITY:
        a->capa_known = true;
        break;
    case I_STARTTLS:
        if (!ok) {
            if (a->tls_required) {
                acct_fail(a, FETCH_PS_PROTOCOL, "STARTTLS refused: %s", r->text);
                return;
            }
            break;
        }
        acct_start_tls(a);
        return;
    case I_LOGIN:
    case I_AUTH:
        if (!ok) {
            acct_fail(a, FETCH_PS_AUTHFAIL, "authentication failed: %s", r->text);
            return;
        }
        a->authed = true;
        if (!r->has_capabilities)
            a->capa_known = false; /* capabilities may change after login (RFC 3501 6.2.3) */
        if (!a->capa_known) {
            imap_send(a, I_CAPABILITY, NULL, "CAPABILITY");
            return;
        }
        break;
    case I_SELECT:
        if (!ok) {
            acct_fail(a, FETCH_PS_ERROR, "SELECT failed: %s", r->text);
            return;
        }
        if (a->uidvalidity && uidrec_set_validity(&a->rec, a->uidvalidity) < 0) {
            acct_fail(a, FETCH_PS_INTERNAL, "cannot write the UID record");
            return;
        }
        if (a->uidvalidity && a->warned_open)
            (void)uidrec_set_validity(&a->warned, a->uidvalidity); /* at worst: warned again */
        imap_send(a, I_SEARCH, NULL, "UID SEARCH %s", a->fetchall ? "ALL" : "UNSEEN");
        return;
    case I_SEARCH:
        if (!ok) {
            acct_fail(a, FETCH_PS_ERROR, "SEARCH failed: %s", r->text);
            return;
        }
        if (!a->keep) {
            /* delivered earlier, flagged, not expunged (a cut link): finish the job */
            imap_send(a, I_SEARCH_DEL, NULL, "UID SEARCH DELETED");
            return;
        }
        if (a->user->flush && !a->fetchall) {
            /* flush with keep: the old (seen) messages we delivered go now */
            imap_send(a, I_SEARCH_SEEN, NULL, "UID SEARCH SEEN UNDELETED");
            return;
        }
        /* fall through */
    case I_SEARCH_DEL:
    case I_SEARCH_SEEN:
        if (c->kind == I_SEARCH_SEEN && !ok) {
            acct_fail(a, FETCH_PS_ERROR, "SEARCH failed: %s", r->text);
            return;
        }
        if (a->nmsgs > 1)
            qsort(a->msgs, a->nmsgs, sizeof(struct fetch_msg *), imap_cmp_num);
        if (a->nmsgs == 0) {
            acct_plan(a);
            break;
        }
        {
            struct buf set;
            buf_init(&set, 0);
            size_t from = 0;
            while (a->nfifo < FETCH_WINDOW && imap_uid_set(a, &from, pick_all, &set)) {
                imap_send(a, I_SIZES, NULL, "UID FETCH %s (UID RFC822.SIZE)", set.data);
                a->sizes_pending++;
            }
            buf_free(&set);
            if (from < a->nmsgs) {
                acct_fail(a, FETCH_PS_INTERNAL, "too many messages in one poll");
                return;
            }
        }
        return;
    case I_SIZES:
        if (!ok) {
            acct_fail(a, FETCH_PS_ERROR, "FETCH sizes failed: %s", r->text);
            return;
        }
        if (--a->sizes_pending == 0)
            acct_plan(a);
        break;
    case I_FETCH:
        if (c->msg->fate == M_FETCHING) {
            c->msg->fate = M_DEFERRED;
            log_warnx("fetch: %s: UID FETCH %lu gave no message: %s", a->res->label,
                      c->msg->num, r->text);
        }
        break;
    case I_STORE:
        for (size_t i = 0; i < a->nmsgs; i++) {
            struct fetch_msg *m = a->msgs[i];
            if (m->fate != M_CLEANUP || m->batch != c->batch)
                continue;
            if (!ok) {
                m->fate = M_DEFERRED; /* recorded: the next poll deletes it without fetching */
                continue;
            }
            m->fate = M_DONE;
            if (!a->keep || m->purge) {
                m->deleted_now = true;
                a->res->deleted++;
                a->pending_deleted++;
            }
        }
        if (!ok)
            log_warnx("fetch: %s: STORE failed: %s", a->res->label, r->text);
        break;
    case I_EXPUNGE:
        if (!ok) {
            a->no_prune = true; /* flagged but still there: keep their UIDs */
            log_warnx("fetch: %s: EXPUNGE failed: %s", a->res->label, r->text);
        }
        break;
    case I_LOGOUT:
        acct_finish(a);
        return;
    case I_IDLE: {
        a->idling = false;
        a->idle_done_sent = false;
        event_del(a->idle_timer);
        unsigned long t = a->srv->timeout ? a->srv->timeout : FETCH_DEFAULT_TIMEOUT;
        struct timeval to = {(time_t)t, 0};
        bufferevent_set_timeouts(a->bev, &to, &to);
        if (!ok) {
            /* offered but refused: not tried again until a reload */
            idle_tell_once(a->idle_set, a, "the server refused IDLE: polled on the schedule");
            acct_fail(a, FETCH_PS_ERROR, "IDLE failed: %s", r->text);
            return;
        }
        if (!a->idle_wake) {
            log_debug("fetch: %s: IDLE renewed", a->res->label);
            imap_send(a, I_IDLE, NULL, "IDLE");
            return;
        }
        /* new mail: the same search, fetch, record, delete as a poll, then IDLE again */
        a->idle_wake = false;
        a->wakes++;
        fetch_progress(a->run, "%s: new mail while idling: fetching", a->res->label);
        a->phase = PH_SETUP;
        imap_send(a, I_SEARCH, NULL, "UID SEARCH %s", a->fetchall ? "ALL" : "UNSEEN");
        return;
    }
    default:
        break;
    }
}

static void imap_on_untagged(struct fetch_acct *a, const struct imap_resp *r)
{
    if (r->has_capabilities) {
        a->caps = r->capabilities;
        a->capa_known = true;
    }
    if (r->status == IMAP_STATUS_OK && strcmp(r->code, "UIDVALIDITY") == 0)
        a->uidvalidity = r->code_number;
    if (r->has_number && strcmp(r->keyword, "EXISTS") == 0) {
        /* more than this session knew of: new mail (EXPUNGEs count the size down). During
         * a poll too: it may have come after the SEARCH, so an `idle` account fetches again
         * as soon as its IDLE starts */
        if (a->exists_known && r->number > a->exists && !a->idle_wake) {
            a->idle_wake = true;
            if (a->user->idle)
                log_info("fetch: %s: new mail %s(%lu messages, were %lu)", a->res->label,
                         a->idling ? "while idling " : "", r->number, a->exists);
        }
        a->exists = r->number;
        a->exists_known = true;
        if (a->idle_wake && a->idling && !a->idle_done_sent)
            acct_idle_send(a); /* DONE: the tagged OK starts the fetch */
        return;
    }
    if (r->has_number && strcmp(r->keyword, "EXPUNGE") == 0) {
        if (a->exists)
            a->exists--;
        return;
    }
    if (strcmp(r->keyword, "SEARCH") == 0) {
        imap_search_result(a, r);
        return;
    }
    if (strcmp(r->keyword, "FETCH") != 0 || !r->has_uid)
        return;
    struct fetch_msg *m = acct_find_num(a, r->uid);
    if (!m)
        return;
    if (r->has_size)
        m->size = r->size;
    if (r->has_body && m->fate == M_FETCHING) {
        if (!r->body) {
            m->fate = M_DEFERRED;
            log_warnx("fetch: %s: UID %lu has no body (NIL)", a->res->label, m->num);
            return;
        }
        acct_message_fetched(a, m, r->body, r->body_len);
    }
}

static void imap_read(struct fetch_acct *a, struct evbuffer *in)
{
    while (a->bev && !a->finished) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return;
        const char *data = (const char *)evbuffer_pullup(in, -1);
        struct imap_resp r;
        size_t used = 0, want = 0;
        const char *err = NULL;
        enum imap_resp_result res = imap_resp_parse(data, len, &used, &want, &r, &err);
        if (res == IMAP_RESP_ERROR) {
            acct_fail(a, FETCH_PS_PROTOCOL, "%s", err);
            return;
        }
        if (res == IMAP_RESP_NEED_MORE) {
            /* a large literal: be called again only once it is all there */
            bufferevent_setwatermark(a->bev, EV_READ, want < 64UL * 1024 * 1024 ? want : 0, 0);
            return;
        }
        bufferevent_setwatermark(a->bev, EV_READ, 0, 0);
        if (r.kind == IMAP_RESP_CONTINUATION) {
            evbuffer_drain(in, used);
            if (a->nfifo && a->fifo[0].kind == I_AUTH) {
                char *b64 = sasl_plain(a->remote, a->user->password ? a->user->password : "");
                evbuffer_add_printf(bufferevent_get_output(a->bev), "%s\r\n", b64);
                explicit_bzero(b64, strlen(b64));
                free(b64);
                continue;
            }
            if (a->nfifo && a->fifo[0].kind == I_IDLE && !a->idling && !a->idle_done_sent) {
                /* RFC 2177: idling; the server's silence is no timeout now (the renewal
                 * timer ends it), and mail that came meanwhile ends it at once */
                a->idling = true;
                struct timeval wto = {HANDOFF_TIMEOUT_S, 0};
                bufferevent_set_timeouts(a->bev, NULL, &wto);
                unsigned long renew = a->run->cfg.idle_renew ? a->run->cfg.idle_renew
                                                             : FETCH_IDLE_RENEW_DEFAULT;
                event_add(a->idle_timer, &(struct timeval){(time_t)renew, 0});
                log_debug("fetch: %s: idling", a->res->label);
                if (a->idle_wake)
                    acct_idle_send(a);
                continue;
            }
            acct_fail(a, FETCH_PS_PROTOCOL, "unexpected continuation request");
            return;
        }
        if (r.kind == IMAP_RESP_UNTAGGED) {
            if (a->nfifo && a->fifo[0].kind == I_GREETING) {
                struct fetch_cmd done = a->fifo[0];
                (void)done;
                acct_pop(a);
                if (r.status == IMAP_STATUS_BYE || r.status == IMAP_STATUS_NONE) {
                    evbuffer_drain(in, used);
                    acct_fail(a, FETCH_PS_ERROR, "server greeting: %s", r.text);
                    return;
                }
                if (r.has_capabilities) {
                    a->caps = r.capabilities;
                    a->capa_known = true;
                }
                a->authed = r.status == IMAP_STATUS_PREAUTH;
                a->phase = PH_SETUP;
                evbuffer_drain(in, used);
                acct_pump(a);
                continue;
            }
            imap_on_untagged(a, &r); /* may hand the body over: drain after */
            if (!a->bev)
                return;
            evbuffer_drain(in, used);
            continue;
        }
        char expect[16];
        snprintf(expect, sizeof expect, "z%u", a->nfifo ? a->fifo[0].tag : 0);
        if (!a->nfifo || strcmp(r.tag, expect) != 0) {
            evbuffer_drain(in, used);
            acct_fail(a, FETCH_PS_PROTOCOL, "unexpected tagged response %s", r.tag);
            return;
        }
        struct fetch_cmd done = a->fifo[0];
        acct_pop(a);
        evbuffer_drain(in, used);
        imap_on_tagged(a, &done, &r);
        acct_pump(a);
    }
}

/* ---- connection ----------------------------------------------------------------------------- */

static void acct_pump(struct fetch_acct *a)
{
    if (a->finished)
        return;
    if (a->phase == PH_DRAIN) {
        if (a->inflight == 0) {
            /* make durable what zolder took, so the next poll does not fetch it again */
            event_del(a->sync_ev);
            if (uidrec_sync(&a->rec) < 0)
                log_error("fetch: %s: cannot sync the UID record: %s", a->res->label,
                          strerror(errno));
            acct_finish(a);
        }
        return;
    }
    if (!a->bev || a->phase == PH_CONNECT || a->phase == PH_TLS)
        return;
    if (a->imap)
        imap_pump(a);
    else
        pop3_pump(a);
}

/*
 * proto auto: the first line says it: "* OK" / "* PREAUTH" / "* BYE" is IMAP, "+OK" / "-ERR"
 * POP3. On IMAP's own port anything but IMAP sends us to POP3's port (fetchmail's order);
 * on a `port` given, the greeting decides. true: decided, read it as that protocol.
 */
static bool acct_probe_greeting(struct fetch_acct *a, struct evbuffer *in)
{
    size_t len = evbuffer_get_length(in);
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_CRLF);
    if (eol.pos < 0 && len < 512)
        return false; /* not a whole line yet */
    char head[8] = "";
    evbuffer_copyout(in, head, len < sizeof head - 1 ? len : sizeof head - 1);
    bool imap = strncmp(head, "* ", 2) == 0;
    bool pop3 = strncmp(head, "+OK", 3) == 0 || strncmp(head, "-ERR", 4) == 0;
    if (!imap && (a->probe_default_port || !pop3)) {
        if (!acct_probe_fallback(a, "not an IMAP greeting"))
            acct_fail(a, FETCH_PS_PROTOCOL, "proto auto: %s port %u greets neither as IMAP nor "
                                            "as POP3", a->srv->name, a->port);
        return false;
    }
    a->probing = false;
    a->imap = imap;
    if (a->run->probed)
        a->run->probed[a->srv - a->run->rc->servers] = imap ? PROBED_IMAP : PROBED_POP3;
    a->fifo[0].kind = imap ? I_GREETING : P_GREETING;
    /* zolderd: fetch_progress is its log line */
    fetch_progress(a->run, "%s: proto auto: %s port %u greets as %s: using %s", a->res->label,
                   a->srv->name, a->port, imap ? "IMAP" : "POP3", imap ? "IMAP" : "POP3");
    if (!imap) {
        /* one pass only: POP3 has no folders */
        const char *at = strstr(a->res->label, " folder ");
        if (at)
            a->res->label[at - a->res->label] = '\0';
    }
    return acct_open_records(a);
}

static void acct_read_cb(struct bufferevent *bev, void *arg)
{
    struct fetch_acct *a = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (a->probing && a->nfifo && a->fifo[0].kind == A_GREETING && !acct_probe_greeting(a, in))
        return;
    if (a->imap)
        imap_read(a, in);
    else
        pop3_read(a, in);
    if (!a->finished && a->bev && !a->failed)
        acct_pump(a);
}

static void acct_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct fetch_acct *a = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (a->phase == PH_CONNECT) {
            int one = 1;
            setsockopt(bufferevent_getfd(a->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (a->implicit_tls) {
                acct_start_tls(a);
                return;
            }
            a->phase = PH_SETUP;
            acct_push(a, a->probing ? A_GREETING : a->imap ? I_GREETING : P_GREETING, NULL);
            return;
        }
        if (a->phase == PH_TLS) {
            SSL *ssl = bufferevent_openssl_get_ssl(a->bev);
            a->tls_on = true;
            fetch_progress(a->run, "%s: upgrade to TLS succeeded (%s %s)", a->res->label,
                           SSL_get_version(ssl), SSL_get_cipher_name(ssl));
            a->phase = PH_SETUP;
            if (a->implicit_tls && a->nfifo == 0) {
                acct_push(a, a->probing ? A_GREETING : a->imap ? I_GREETING : P_GREETING, NULL);
                return;
            }
            acct_pump(a);
            return;
        }
        return;
    }
    if (a->phase == PH_CLOSING && !(what & BEV_EVENT_TIMEOUT)) {
        acct_finish(a); /* closed after QUIT/LOGOUT */
        return;
    }
    unsigned long e = ERR_get_error();
    char tlserr[256] = "";
    if (e)
        ERR_error_string_n(e, tlserr, sizeof tlserr);
    ERR_clear_error();
    if (a->probing) {
        /* proto auto: whatever kept IMAP's port from greeting us sends us to POP3's */
        char why[300];
        int err = EVUTIL_SOCKET_ERROR();
        snprintf(why, sizeof why, "%s",
                 (what & BEV_EVENT_TIMEOUT) ? "timeout"
                 : a->phase == PH_TLS       ? (tlserr[0] ? tlserr : "TLS handshake failed")
                 : a->phase == PH_CONNECT   ? strerror(err)
                                            : "connection closed before the greeting");
        if (acct_probe_fallback(a, why))
            return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        acct_fail(a, FETCH_PS_SOCKET, "timeout talking to %s", a->srv->name);
    else if (a->phase == PH_TLS)
        acct_fail(a, FETCH_PS_SOCKET, "TLS handshake with %s failed: %s", a->srv->name,
                  tlserr[0] ? tlserr : "connection closed");
    else if (a->phase == PH_CONNECT)
        acct_fail(a, FETCH_PS_SOCKET, "cannot connect to %s port %u: %s", a->srv->name, a->port,
                  strerror(EVUTIL_SOCKET_ERROR()));
    else
        acct_fail(a, FETCH_PS_SOCKET, "connection to %s lost", a->srv->name);
}

static void acct_connect_to(struct fetch_acct *a, const struct sockaddr *sa, socklen_t salen)
{
    if (salen <= sizeof a->peer) {
        memcpy(&a->peer, sa, salen);
        a->peer_len = salen;
    }
    a->bev = bufferevent_socket_new(a->run->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!a->bev) {
        acct_fail(a, FETCH_PS_SOCKET, "cannot create a socket");
        return;
    }
    a->phase = PH_CONNECT;
    bufferevent_setcb(a->bev, acct_read_cb, NULL, acct_event_cb, a);
    unsigned long t = a->srv->timeout ? a->srv->timeout : FETCH_DEFAULT_TIMEOUT;
    struct timeval to = {(time_t)t, 0};
    bufferevent_set_timeouts(a->bev, &to, &to);
    bufferevent_enable(a->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(a->bev, sa, (int)salen) < 0 &&
        !(a->probing && acct_probe_fallback(a, strerror(EVUTIL_SOCKET_ERROR()))))
        acct_fail(a, FETCH_PS_SOCKET, "cannot connect to %s port %u", a->srv->name, a->port);
}

/*
 * proto auto, IMAP's port did not greet as IMAP (refused, closed, timeout, another
 * greeting): POP3 on its port (995 with ssl), same address. false: no fallback left.
 */
static bool acct_probe_fallback(struct fetch_acct *a, const char *why)
{
    if (!a->probing || !a->probe_default_port || !a->imap || a->failed || a->finished ||
        a->peer_len == 0)
        return false;
    unsigned pop3_port = a->implicit_tls ? 995 : 110;
    fetch_progress(a->run, "%s: proto auto: %s port %u: %s: trying POP3 on port %u",
                   a->res->label, a->srv->name, a->port, why, pop3_port);
    if (a->bev) {
        bufferevent_free(a->bev);
        a->bev = NULL;
    }
    a->probing = false;
    a->imap = false;
    a->port = pop3_port;
    a->nfifo = 0;
    a->caps = 0;
    a->capa_known = false;
    a->tls_on = false;
    a->tls_tried = false;
    a->authed = false;
    if (a->run->probed)
        a->run->probed[a->srv - a->run->rc->servers] = PROBED_POP3;
    const char *at = strstr(a->res->label, " folder ");
    if (at)
        a->res->label[at - a->res->label] = '\0';
    if (!acct_open_records(a))
        return true; /* failed with its reason */
    struct sockaddr_storage ss = a->peer;
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)pop3_port);
    else if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)pop3_port);
    socklen_t len = a->peer_len;
    acct_connect_to(a, (struct sockaddr *)&ss, len);
    return true;
}

static void acct_connect_netaddr(struct fetch_acct *a, const struct netaddr *na)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (na->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)a->port);
        memcpy(&sin->sin_addr, na->bytes, 4);
        len = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)a->port);
        memcpy(&sin6->sin6_addr, na->bytes, 16);
        len = sizeof *sin6;
    }
    acct_connect_to(a, (struct sockaddr *)&ss, len);
}

static void acct_addr_answer(void *arg, enum relay_dns_status st, const struct netaddr *addrs,
                             size_t n, const char *error)
{
    struct fetch_acct *a = arg;
    a->dnsreq = NULL;
    if (a->failed || a->finished)
        return;
    if (st != RELAY_DNS_OK || n == 0) {
        acct_fail(a, FETCH_PS_DNS, "cannot resolve %s: %s",
                  a->srv->via ? a->srv->via : a->srv->name, error ? error : "no address");
        return;
    }
    acct_connect_netaddr(a, &addrs[0]);
}

static void acct_connect(struct fetch_acct *a)
{
    const char *host = a->srv->via ? a->srv->via : a->srv->name;
    struct netaddr literal;
    if (netaddr_parse(host, &literal)) {
        acct_connect_netaddr(a, &literal);
        return;
    }
    if (a->run->cfg.dns) {
        /* zolder's resolver: the hosts file, then the nameserver (the seed's names) */
        a->phase = PH_CONNECT;
        a->dnsreq = relay_dns_addr(a->run->cfg.dns, host, AF_UNSPEC, acct_addr_answer, a);
        return;
    }
    char port[16];
    snprintf(port, sizeof port, "%u", a->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0 || !ai) {
        acct_fail(a, FETCH_PS_DNS, "cannot resolve %s: %s", host, gai_strerror(rc));
        return;
    }
    acct_connect_to(a, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
}

static void idle_bury(struct fetch_acct *a);

/* Record pruning and the account's result; the run goes on with the next account. */
static void acct_finish(struct fetch_acct *a)
{
    if (a->finished)
        return;
    if (a->inflight > 0) {
        /* zolder still has messages of ours: wait for them (PH_DRAIN) */
        if (a->bev) {
            bufferevent_free(a->bev);
            a->bev = NULL;
        }
        a->phase = PH_DRAIN;
        return;
    }
    a->finished = true;
    if (a->bev) {
        bufferevent_free(a->bev);
        a->bev = NULL;
    }
    acct_cycle_close(a);
    if (a->idle_set) {
        /* an idling session ended (lost, failed, or a wake's LOGOUT): back to the schedule */
        log_info("fetch: %s: IDLE session ended%s%s: the next poll connects again",
                 a->res->label, a->failed ? ": " : "", a->failed ? a->res->error : "");
        idle_bury(a);
        return;
    }
    event_active(a->run->next_ev, EV_TIMEOUT, 0);
}

/* The end of one poll (or one wake while idling): prune the records, the result line. */
static void acct_cycle_close(struct fetch_acct *a)
{
    if (a->rec_open) {
        (void)uidrec_sync(&a->rec);
        /* a clean end: forget the UIDs no longer on the server (keep the others) */
        if (!a->failed && !a->no_prune && a->imap) {
            /* IMAP searches see only part of the mailbox (UNSEEN): forget only what we
             * expunged ourselves */
            char **gone = xcalloc(a->nmsgs ? a->nmsgs : 1, sizeof *gone);
            size_t n = 0;
            for (size_t i = 0; i < a->nmsgs; i++)
                if (a->msgs[i]->deleted_now && a->expunged)
                    gone[n++] = a->msgs[i]->uid;
            if (n && uidrec_forget(&a->rec, gone, n) < 0)
                log_warnx("fetch: %s: cannot prune the UID record: %s", a->res->label,
                          strerror(errno));
            free(gone);
        } else if (!a->failed && !a->no_prune && a->nmsgs) {
            /* POP3's UIDL lists the whole mailbox: keep what is still there */
            char **keep = xcalloc(a->nmsgs, sizeof *keep);
            size_t n = 0;
            for (size_t i = 0; i < a->nmsgs; i++)
                if (!a->msgs[i]->deleted_now)
                    keep[n++] = a->msgs[i]->uid;
            if (uidrec_rewrite(&a->rec, keep, n) < 0)
                log_warnx("fetch: %s: cannot prune the UID record: %s", a->res->label,
                          strerror(errno));
            free(keep);
        } else if (!a->failed && !a->no_prune && !a->imap && a->nmsgs == 0 && a->rec.count) {
            (void)uidrec_rewrite(&a->rec, NULL, 0);
        }
    }
    if (a->warned_open && !a->failed && !a->no_prune && a->warned.count) {
        /* forget warnings about messages no longer there (both listings show every
         * oversized message that is still on the server: it is never fetched nor seen) */
        char **keep = xcalloc(a->nmsgs ? a->nmsgs : 1, sizeof *keep);
        size_t n = 0;
        for (size_t i = 0; i < a->nmsgs; i++)
            if (a->msgs[i]->oversized && !a->msgs[i]->deleted_now)
                keep[n++] = a->msgs[i]->uid;
        if (uidrec_rewrite(&a->warned, keep, n) < 0)
            log_warnx("fetch: %s: cannot prune the oversized-warning record: %s", a->res->label,
                      strerror(errno));
        free(keep);
    }
    if (!a->failed)
        a->res->status = a->smtp_failed ? FETCH_PS_SMTP
                         : a->res->delivered ? FETCH_PS_SUCCESS : FETCH_PS_NOMAIL;
    fetch_progress(a->run, "%s: %u messages, %u seen before, %u delivered, %u deleted, "
                           "%u deferred, %u refused, %u skipped",
                   a->res->label, a->res->messages, a->res->seen, a->res->delivered,
                   a->res->deleted, a->res->deferred, a->res->refused, a->res->skipped);
}

static void acct_free(struct fetch_acct *a)
{
    if (!a)
        return;
    if (a->dnsreq)
        relay_dns_cancel(a->dnsreq);
    if (a->smtp_probe)
        bufferevent_free(a->smtp_probe);
    if (a->bev)
        bufferevent_free(a->bev);
    if (a->own_handoff) {
        a->finished = true;        /* its 421s for items in flight only count down */
        handoff_free(a->own_handoff);
    }
    if (a->sync_ev)
        event_free(a->sync_ev);
    if (a->idle_timer)
        event_free(a->idle_timer);
    if (a->rec_open)
        uidrec_close(&a->rec);
    if (a->warned_open)
        uidrec_close(&a->warned);
    notice_clear(&a->warn_data, &a->warn_item);
    for (size_t i = 0; i < a->nmsgs; i++) {
        buf_free(&a->msgs[i]->data);
        notice_clear(&a->msgs[i]->bounce_data, &a->msgs[i]->bounce);
        msg_free_rcpts(a->msgs[i]);
        free(a->msgs[i]);
    }
    free(a->msgs);
    buf_free(&a->mbody);
    if (a->ssl_ctx)
        SSL_CTX_free(a->ssl_ctx);
    free(a);
}

/* IMAP, or maybe IMAP (proto auto not probed yet in this run): one pass per folder. */
static bool entry_is_imap(const struct fetch_run *run, const struct fetchrc_server *srv)
{
    if (srv->proto != FETCHRC_PROTO_AUTO)
        return srv->proto == FETCHRC_PROTO_IMAP;
    return !run->probed || run->probed[srv - run->rc->servers] != PROBED_POP3;
}

static bool sockaddr_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return false;
}

static void acct_begin_server(struct fetch_acct *a);
static void acct_smtphost_try(struct fetch_acct *a);

/* This smtphost did not answer: the next one (fetchmail's list), else the account fails. */
static void acct_smtphost_next(struct fetch_acct *a, const char *why)
{
    const char *sh = a->user->smtphosts[a->smtp_try];
    log_warnx("fetch: %s: smtphost %s: %s%s", a->res->label, sh, why,
              a->smtp_try + 1 < a->user->nsmtphosts ? ": trying the next" : "");
    if (a->run->cfg.progress) /* else fetch_progress would log it a second time */
        fetch_progress(a->run, "%s: smtphost %s: %s", a->res->label, sh, why);
    snprintf(a->smtp_last_error, sizeof a->smtp_last_error, "%s: %s", sh, why);
    if (a->smtp_probe) {
        bufferevent_free(a->smtp_probe);
        a->smtp_probe = NULL;
    }
    a->smtp_try++;
    if (a->smtp_try < a->user->nsmtphosts) {
        acct_smtphost_try(a);
        return;
    }
    /* nothing was fetched: the mail stays on the server for the next poll */
    acct_fail(a, FETCH_PS_SMTP, "no smtphost answered (%s)", a->smtp_last_error);
}

/* An smtphost greeted (220): its own hand-off sessions take the account's mail. */
static void acct_smtphost_use(struct fetch_acct *a)
{
    const char *sh = a->user->smtphosts[a->smtp_try];
    struct netaddr na;
    char text[NETADDR_STRLEN + 10] = "";
    if (netaddr_from_sockaddr((const struct sockaddr *)&a->smtp_addr, &na)) {
        char addr[NETADDR_STRLEN];
        netaddr_format(&na, addr, sizeof addr);
        snprintf(text, sizeof text, na.family == AF_INET6 ? "[%s]:%u" : "%s:%u", addr,
                 a->smtp_port);
    }
    bool loopback = sockaddr_is_loopback(&a->smtp_addr);
    snprintf(a->smtphost_by, sizeof a->smtphost_by, "%s",
             loopback ? "localhost" : a->run->hostname);
    a->by_name = a->smtphost_by;
    a->own_handoff = handoff_new(a->run->base, (const struct sockaddr *)&a->smtp_addr,
                                 a->smtp_addr_len, a->by_name,
                                 a->run->cfg.handoff_sessions ? a->run->cfg.handoff_sessions : 4);
    a->handoff = a->own_handoff;
    if (loopback)
        log_info("fetch: %s: handing mail to smtphost %s (%s)", a->res->label, sh, text);
    else
        log_warnx("fetch: %s: handing mail to smtphost %s (%s), not on this machine: the "
                  "messages leave it through that server", a->res->label, sh, text);
    fetch_progress(a->run, "%s: handing mail to smtphost %s%s", a->res->label, text,
                   loopback ? "" : " (a remote server)");
    acct_begin_server(a);
}

static void acct_smtp_probe_read(struct bufferevent *bev, void *arg)
{
    struct fetch_acct *a = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = 0;
    char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
    if (!line) {
        if (evbuffer_get_length(in) > 4096)
            acct_smtphost_next(a, "no SMTP greeting");
        return;
    }
    bool ok = n >= 3 && strncmp(line, "220", 3) == 0 && (n == 3 || line[3] == ' ' || line[3] == '-');
    char why[200];
    snprintf(why, sizeof why, "greeting %.120s", line);
    for (char *p = why; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    free(line);
    if (!ok) {
        acct_smtphost_next(a, why);
        return;
    }
    /* it answers: leave this probe politely, the hand-off opens its own sessions */
    (void)send(bufferevent_getfd(bev), "QUIT\r\n", 6, MSG_NOSIGNAL);
    bufferevent_free(a->smtp_probe);
    a->smtp_probe = NULL;
    acct_smtphost_use(a);
}

static void acct_smtp_probe_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct fetch_acct *a = arg;
    if (what & BEV_EVENT_CONNECTED)
        return;
    int err = EVUTIL_SOCKET_ERROR();
    acct_smtphost_next(a, (what & BEV_EVENT_TIMEOUT) ? "timeout"
                          : (what & BEV_EVENT_EOF) ? "connection closed"
                                                   : strerror(err));
}

static void acct_smtphost_connect(struct fetch_acct *a, const struct netaddr *na)
{
    memset(&a->smtp_addr, 0, sizeof a->smtp_addr);
    if (na->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a->smtp_addr;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)a->smtp_port);
        memcpy(&sin->sin_addr, na->bytes, 4);
        a->smtp_addr_len = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->smtp_addr;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)a->smtp_port);
        memcpy(&sin6->sin6_addr, na->bytes, 16);
        a->smtp_addr_len = sizeof *sin6;
    }
    a->smtp_probe = bufferevent_socket_new(a->run->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!a->smtp_probe) {
        acct_smtphost_next(a, "cannot create a socket");
        return;
    }
    bufferevent_setcb(a->smtp_probe, acct_smtp_probe_read, NULL, acct_smtp_probe_event, a);
    unsigned long t = a->srv->timeout ? a->srv->timeout : FETCH_DEFAULT_TIMEOUT;
    struct timeval to = {(time_t)t, 0};
    bufferevent_set_timeouts(a->smtp_probe, &to, &to);
    bufferevent_enable(a->smtp_probe, EV_READ);
    if (bufferevent_socket_connect(a->smtp_probe, (struct sockaddr *)&a->smtp_addr,
                                   (int)a->smtp_addr_len) < 0)
        acct_smtphost_next(a, strerror(EVUTIL_SOCKET_ERROR()));
}

static void acct_smtphost_answer(void *arg, enum relay_dns_status st, const struct netaddr *addrs,
                                 size_t n, const char *error)
{
    struct fetch_acct *a = arg;
    a->dnsreq = NULL;
    if (a->failed || a->finished)
        return;
    if (st != RELAY_DNS_OK || n == 0) {
        char why[600];
        snprintf(why, sizeof why, "cannot resolve %s: %s", a->smtp_host,
                 error ? error : "no address");
        acct_smtphost_next(a, why);
        return;
    }
    acct_smtphost_connect(a, &addrs[0]);
}

/*
 * fetchmail's smtphost list: each in order until one greets with 220. Names go through the
 * same resolver as the server's (acct_connect: zolder's hosts file and nameserver, else
 * getaddrinfo).
 */
static void acct_smtphost_try(struct fetch_acct *a)
{
    const char *sh = a->user->smtphosts[a->smtp_try];
    if (!fetchrc_smtphost(sh, a->smtp_host, sizeof a->smtp_host, &a->smtp_port)) {
        acct_smtphost_next(a, "not HOST, HOST/PORT, HOST:PORT or [V6]:PORT");
        return;
    }
    struct netaddr literal;
    if (netaddr_parse(a->smtp_host, &literal)) {
        acct_smtphost_connect(a, &literal);
        return;
    }
    if (a->run->cfg.dns) {
        a->dnsreq = relay_dns_addr(a->run->cfg.dns, a->smtp_host, AF_UNSPEC,
                                   acct_smtphost_answer, a);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(a->smtp_host, NULL, &hints, &ai);
    struct netaddr na;
    if (rc != 0 || !ai || !netaddr_from_sockaddr(ai->ai_addr, &na)) {
        char why[600];
        snprintf(why, sizeof why, "cannot resolve %s: %s", a->smtp_host,
                 rc ? gai_strerror(rc) : "no address");
        if (ai)
            freeaddrinfo(ai);
        acct_smtphost_next(a, why);
        return;
    }
    freeaddrinfo(ai);
    acct_smtphost_connect(a, &na);
}

static void acct_begin(struct fetch_run *run, const struct fetchrc_server *srv,
                       const struct fetchrc_user *user, size_t folder,
                       struct fetch_account_result *res)
{
    struct fetch_acct *a = xcalloc(1, sizeof *a);
    run->acct = a;
    a->run = run;
    a->srv = srv;
    a->user = user;
    a->res = res;
    a->handoff = run->handoff;
    a->by_name = run->by_name;
    buf_init(&a->mbody, FETCH_MESSAGE_MAX);
    snprintf(a->remote, sizeof a->remote, "%s", user->remote[0] ? user->remote : run->invoking_user);
    const char *local = a->remote;
    for (size_t i = 0; i < user->nlocals; i++)
        if (!user->locals[i].remote || strcmp(user->locals[i].remote, a->remote) == 0) {
            local = user->locals[i].local;
            break;
        }
    snprintf(a->local, sizeof a->local, "%s", local);
    a->folder = user->nfolders ? user->folders[folder] : "INBOX";
    if (user->nfolders > 1 && entry_is_imap(run, srv))
        snprintf(res->label, sizeof res->label, "%s at %s folder %s", a->remote, srv->name,
                 a->folder);
    else
        snprintf(res->label, sizeof res->label, "%s at %s", a->remote, srv->name);
    a->keep = user->keep;
    a->fetchall = user->fetchall;
    a->port = fetchrc_port(srv, user);
    a->imap = srv->proto == FETCHRC_PROTO_IMAP;
    if (srv->proto == FETCHRC_PROTO_AUTO) {
        /* fetchmail's auto: IMAP first, then POP3; what this run learnt holds for the
         * entry's other folders */
        unsigned char known = run->probed ? run->probed[srv - run->rc->servers] : 0;
        a->imap = known != PROBED_POP3;
        a->probing = known == 0;
        a->probe_default_port = srv->port == 0;
        if (!srv->port)
            a->port = a->imap ? (user->ssl ? 993 : 143) : (user->ssl ? 995 : 110);
    }
    a->implicit_tls = user->ssl || a->port == 995 || a->port == 993;
    /* fetchmail 6.4: sslproto '' means no TLS at all, any other sslproto (or sslcertck)
     * makes STLS/STARTTLS mandatory */
    a->no_tls = user->sslproto && !user->sslproto[0] && !a->implicit_tls;
    a->tls_required = a->implicit_tls || (user->sslproto && user->sslproto[0]) || user->sslcertck;
    a->sync_ev = event_new(run->base, -1, 0, acct_sync_cb, a);
    res->status = FETCH_PS_NOMAIL;
    /* `is *`, or several local names: multidrop, recipients from the headers */
    a->multidrop = fetchrc_multidrop(user) || user->nlocals > 1;
    for (const char *p = a->local; *p; p++)
        if (*p <= ' ' || *p == '<' || *p == '>' || *p == '@' || *p == '"' || (unsigned char)*p >= 0x7f) {
            a->phase = PH_DRAIN;
            acct_fail(a, FETCH_PS_SYNTAX, "local user name \"%s\" is not valid", a->local);
            return;
        }
    a->handoff = run->handoff;
    a->by_name = run->by_name;
    if (user->idle && !run->cfg.idle)
        fetch_progress(run, "%s: idle: IMAP IDLE is kept between zolderd's polls only: polled "
                            "once", res->label);
    if (user->nsmtphosts) {
        acct_smtphost_try(a); /* then acct_begin_server */
        return;
    }
    acct_begin_server(a);
}

/* Records (unless proto auto still has to choose), then the server. */
static void acct_begin_server(struct fetch_acct *a)
{
    struct fetch_account_result *res = a->res;
    if (!a->probing && !acct_open_records(a))
        return;
    if (a->probing)
        log_info("fetch: polling %s (proto auto: %s port %u%s first) for %s", res->label,
                 a->probe_default_port ? "IMAP" : "the greeting on", a->port,
                 a->implicit_tls ? " TLS" : "", a->local);
    else
        log_info("fetch: polling %s (%s port %u%s) for %s", res->label, a->imap ? "IMAP" : "POP3",
                 a->port, a->implicit_tls ? " TLS" : "", a->local);
    acct_connect(a);
}

/* The account's UID record (and oversized-warning record), once the protocol is known. */
static bool acct_open_records(struct fetch_acct *a)
{
    struct fetch_run *run = a->run;
    const struct fetchrc_server *srv = a->srv;
    struct fetch_account_result *res = a->res;
    char account[200];
    /* one record per protocol too: POP3 UIDLs and IMAP UIDs of one mailbox differ */
    char server[300];
    /* IMAP: one record per folder (UIDs are per folder); INBOX keeps the plain name */
    if (a->imap && strcasecmp(a->folder, "INBOX") != 0)
        snprintf(server, sizeof server, "imap.%s/%s", srv->name, a->folder);
    else
        snprintf(server, sizeof server, "%s%s", a->imap ? "imap." : "", srv->name);
    uidrec_account_name(server, a->remote, account, sizeof account);
    if (uidrec_open(&a->rec, run->state_dir, account) < 0) {
        a->phase = PH_DRAIN;
        acct_fail(a, FETCH_PS_INTERNAL, "cannot open the UID record under %s/fetch: %s",
                  run->state_dir, strerror(errno));
        return false;
    }
    a->rec_open = true;
    if (uidrec_open_ext(&a->warned, run->state_dir, account, "warned") == 0)
        a->warned_open = true;
    else
        log_warnx("fetch: %s: cannot open the oversized-warning record: %s", res->label,
                  strerror(errno));
    return true;
}

/* ---- the run ---------------------------------------------------------------------------------- */

int fetch_overall(const struct fetch_account_result *a, size_t n)
{
    bool mail = false;
    for (size_t i = 0; i < n; i++) {
        if (a[i].status != FETCH_PS_SUCCESS && a[i].status != FETCH_PS_NOMAIL)
            return a[i].status;
        if (a[i].status == FETCH_PS_SUCCESS)
            mail = true;
    }
    return mail ? FETCH_PS_SUCCESS : FETCH_PS_NOMAIL;
}

static void run_next(struct fetch_run *run)
{
    if (run->acct) {
        acct_free(run->acct);
        run->acct = NULL;
    }
    while (run->iserver < run->rc->nservers) {
        const struct fetchrc_server *srv = &run->rc->servers[run->iserver];
        if (srv->skip || run->iuser >= srv->nusers) {
            run->iserver++;
            run->iuser = 0;
            continue;
        }
        if (run->iuser == 0 && srv->interval > 1 && run->cfg.cycle % srv->interval != 0) {
            /* fetchmail's `interval N`: this site only every Nth poll cycle */
            log_info("fetch: interval not reached, not querying %s (poll %lu, every %lu)",
                     srv->name, run->cfg.cycle + 1, srv->interval);
            fetch_progress(run, "interval not reached, not querying %s", srv->name);
            run->iserver++;
            continue;
        }
        const struct fetchrc_user *user = &srv->users[run->iuser];
        /* IMAP: each `folder` in turn, as its own pass with its own UID record */
        size_t nfolders = entry_is_imap(run, srv) && user->nfolders > 1 ? user->nfolders : 1;
        size_t folder = run->ifolder++;
        if (run->ifolder >= nfolders) {
            run->ifolder = 0;
            run->iuser++;
        }
        if (folder >= nfolders)
            continue; /* proto auto found POP3 on the first pass: no folders */
        if (run->cfg.idle) {
            char key[800];
            idle_key(key, sizeof key, srv->name, user->remote[0] ? user->remote : run->invoking_user,
                     user->nfolders ? user->folders[folder] : "INBOX");
            if (idle_has(run->cfg.idle, key)) {
                /* its IDLE session fetches new mail as it comes */
                log_info("fetch: %s at %s: idling (IMAP IDLE), not polled",
                         user->remote[0] ? user->remote : run->invoking_user, srv->name);
                continue;
            }
        }
        run->result.accounts = xreallocarray(run->result.accounts, run->result.naccounts + 1,
                                             sizeof *run->result.accounts);
        struct fetch_account_result *res = &run->result.accounts[run->result.naccounts++];
        memset(res, 0, sizeof *res);
        acct_begin(run, srv, user, folder, res);
        return;
    }
    /* all done: wait for nothing (every account drained its hand-offs) */
    run->result.status = fetch_overall(run->result.accounts, run->result.naccounts);
    fetch_done_fn done = run->done;
    void *ctx = run->done_ctx;
    struct fetch_result result = run->result;
    run->result.accounts = NULL;
    fetch_cancel(run);
    done(ctx, &result);
    free(result.accounts);
}

static void run_next_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_next(arg);
}

struct fetch_run *fetch_start(struct event_base *base, struct fetchrc *rc,
                              const struct fetch_config *cfg, fetch_done_fn done, void *ctx)
{
    struct fetch_run *run = xcalloc(1, sizeof *run);
    run->base = base;
    run->rc = rc;
    run->cfg = *cfg;
    snprintf(run->hostname, sizeof run->hostname, "%s", cfg->hostname ? cfg->hostname : "localhost");
    snprintf(run->state_dir, sizeof run->state_dir, "%s", cfg->state_dir);
    snprintf(run->invoking_user, sizeof run->invoking_user, "%s",
             cfg->invoking_user ? cfg->invoking_user : "");
    run->done = done;
    run->done_ctx = ctx;
    run->cfg.hostname = run->hostname;
    run->cfg.state_dir = run->state_dir;
    /* fetchmail greets a local MTA as "localhost": the seed's trace shows
     * "Received: from localhost (localhost [127.0.0.1])" */
    bool loopback = false;
    if (cfg->smtp.ss_family == AF_INET)
        loopback = (ntohl(((const struct sockaddr_in *)&cfg->smtp)->sin_addr.s_addr) >> 24) == 127;
    else if (cfg->smtp.ss_family == AF_INET6)
        loopback = IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&cfg->smtp)->sin6_addr);
    snprintf(run->by_name, sizeof run->by_name, "%s", loopback ? "localhost" : run->hostname);
    run->handoff = handoff_new(base, (const struct sockaddr *)&cfg->smtp, cfg->smtp_len,
                               run->by_name,
                               cfg->handoff_sessions ? cfg->handoff_sessions : 4);
    run->probed = xcalloc(rc->nservers ? rc->nservers : 1, 1);
    run->refs = 1;
    if (cfg->daemon && cfg->cycle == 0 && (rc->idfile || rc->syslog))
        log_info("fetch: fetchmailrc: %s%s%s ignored inside zolderd: UID records stay under "
                 "%s/fetch and every line is in this log", rc->idfile ? "set idfile" : "",
                 rc->idfile && rc->syslog ? " and " : "", rc->syslog ? "set syslog" : "",
                 run->state_dir);
    run->next_ev = event_new(base, -1, 0, run_next_cb, run);
    event_active(run->next_ev, EV_TIMEOUT, 0);
    return run;
}

/* The rc goes with the last of the run and the accounts it left idling. */
static void run_unref(struct fetch_run *run)
{
    if (--run->refs > 0)
        return;
    fetchrc_free(run->rc);
    free(run->rc);
    free(run->probed);
    free(run);
}

void fetch_cancel(struct fetch_run *run)
{
    if (!run)
        return;
    if (run->acct)
        run->acct->finished = true;
    handoff_free(run->handoff); /* answers in-flight items 421: they stay on the server */
    run->handoff = NULL;
    acct_free(run->acct);
    run->acct = NULL;
    event_free(run->next_ev);
    run->next_ev = NULL;
    free(run->result.accounts);
    run->result.accounts = NULL;
    run_unref(run);
}

/* ---- IMAP IDLE between polls ------------------------------------------------------------------ */

/* Which account a poll entry is, for the idle set: server, login, folder. */
static void idle_key(char *out, size_t outsize, const char *server, const char *remote,
                     const char *folder)
{
    snprintf(out, outsize, "%s\n%s\n%s", server, remote, folder);
}

static bool idle_has(const struct fetch_idle *set, const char *key)
{
    for (const struct fetch_acct *a = set->list; a; a = a->idle_next) {
        char k[800];
        idle_key(k, sizeof k, a->srv->name, a->remote, a->folder);
        if (strcmp(k, key) == 0)
            return true;
    }
    return false;
}

/*
 * "Why this account does not IDLE", logged once per account until a reload; the account is
 * then polled on the schedule without trying again.
 */
static void idle_tell_once(struct fetch_idle *set, struct fetch_acct *a, const char *why)
{
    char key[800];
    idle_key(key, sizeof key, a->srv->name, a->remote, a->folder);
    for (size_t i = 0; i < set->ntold; i++)
        if (strcmp(set->told[i], key) == 0)
            return;
    if (set->ntold < FETCH_IDLE_TOLD_MAX)
        set->told[set->ntold++] = xstrdup(key);
    log_warnx("fetch: %s: idle: %s", a->res->label, why);
    if (a->run->cfg.progress) /* else fetch_progress would log it a second time */
        fetch_progress(a->run, "%s: idle: %s", a->res->label, why);
}

/* Sends DONE: the IDLE's tagged answer then says what comes next (a fetch, or IDLE again). */
static void acct_idle_send(struct fetch_acct *a)
{
    if (!a->bev || !a->idling || a->idle_done_sent)
        return;
    evbuffer_add(bufferevent_get_output(a->bev), "DONE\r\n", 6);
    a->idle_done_sent = true;
    /* from here on the server owes us an answer: a dead line is a timeout again */
    unsigned long t = a->srv->timeout ? a->srv->timeout : FETCH_DEFAULT_TIMEOUT;
    struct timeval to = {(time_t)t, 0};
    bufferevent_set_timeouts(a->bev, &to, &to);
}

static void acct_idle_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fetch_acct *a = arg;
    log_debug("fetch: %s: renewing the IDLE", a->res->label);
    acct_idle_send(a);
}

/* Forgets the poll or wake that just ended (its messages are recorded or left alone). */
static void acct_cycle_reset(struct fetch_acct *a)
{
    for (size_t i = 0; i < a->nmsgs; i++) {
        buf_free(&a->msgs[i]->data);
        notice_clear(&a->msgs[i]->bounce_data, &a->msgs[i]->bounce);
        msg_free_rcpts(a->msgs[i]);
        free(a->msgs[i]);
    }
    free(a->msgs);
    a->msgs = NULL;
    a->nmsgs = 0;
    a->next_fetch = 0;
    a->to_fetch = 0;
    a->fetched_ord = 0;
    a->pending_deleted = 0;
    a->sizes_pending = 0;
    a->expunged = false;
    struct fetch_account_result *r = a->res;
    r->messages = r->seen = r->delivered = r->deleted = r->deferred = r->refused = 0;
    r->skipped = 0;
    r->status = FETCH_PS_NOMAIL;
    r->error[0] = '\0';
}

/*
 * After a clean poll (or wake) of an `idle` account: IDLE instead of LOGOUT. The first time
 * the account leaves its run (which goes on with the next account) for the idle set, with
 * its own hand-off sessions (the run's end with the run). false: LOGOUT as usual.
 */
static bool acct_idle_begin(struct fetch_acct *a)
{
    if (!a->user->idle || !a->imap || a->failed || a->smtp_failed || a->no_prune)
        return false;
    struct fetch_run *run = a->run;
    struct fetch_idle *set = a->idle_set ? a->idle_set : run->cfg.idle;
    if (!set)
        return false;
    size_t left = 0;
    for (size_t i = 0; i < a->nmsgs; i++)
        if (a->msgs[i]->fate == M_DEFERRED || (a->msgs[i]->fate == M_SKIP && !a->msgs[i]->oversized))
            left++;
    if (left) {
        /* zolder said 4xx, or fetchlimit: those wait for a poll, which an idling account
         * would not get until new mail came */
        log_info("fetch: %s: %zu message%s left for the next poll: not idling this time",
                 a->res->label, left, left == 1 ? "" : "s");
        return false;
    }
    if (!a->idle_set) {
        char key[800];
        idle_key(key, sizeof key, a->srv->name, a->remote, a->folder);
        for (size_t i = 0; i < set->ntold; i++)
            if (strcmp(set->told[i], key) == 0)
                return false; /* told why not, once: polled on the schedule */
        if (a->user->nfolders > 1) {
            idle_tell_once(set, a, "IDLE watches one folder (as fetchmail's): polled on the "
                                   "schedule");
            return false;
        }
        if (!(a->caps & IMAP_CAPA_IDLE)) {
            idle_tell_once(set, a, "the server does not offer IDLE: polled on the schedule");
            return false;
        }
    }
    acct_cycle_close(a);
    if (!a->idle_set) {
        a->idle_res = *a->res;
        a->res = &a->idle_res;
        if (!a->own_handoff) {
            a->own_handoff = handoff_new(run->base, (const struct sockaddr *)&run->cfg.smtp,
                                         run->cfg.smtp_len, a->by_name, 2);
            a->handoff = a->own_handoff;
        }
        a->idle_timer = evtimer_new(run->base, acct_idle_timer_cb, a);
        a->idle_set = set;
        a->idle_next = set->list;
        set->list = a;
        run->acct = NULL;
        run->refs++;
        event_active(run->next_ev, EV_TIMEOUT, 0);
        log_info("fetch: %s: idling (IMAP IDLE) for new mail, renewed every %lu s",
                 a->res->label, run->cfg.idle_renew ? run->cfg.idle_renew
                                                    : FETCH_IDLE_RENEW_DEFAULT);
        if (run->cfg.progress)
            fetch_progress(run, "%s: idling (IMAP IDLE)", a->res->label);
    }
    acct_cycle_reset(a);
    a->phase = PH_IDLE;
    imap_send(a, I_IDLE, NULL, "IDLE");
    return true;
}

static void idle_reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fetch_idle *set = arg;
    while (set->dead) {
        struct fetch_acct *a = set->dead;
        set->dead = a->idle_next;
        struct fetch_run *run = a->run;
        acct_free(a);
        run_unref(run);
    }
}

/* An idling account ended (from its own callbacks): freed from the loop. */
static void idle_bury(struct fetch_acct *a)
{
    struct fetch_idle *set = a->idle_set;
    for (struct fetch_acct **pp = &set->list; *pp; pp = &(*pp)->idle_next)
        if (*pp == a) {
            *pp = a->idle_next;
            break;
        }
    a->idle_next = set->dead;
    set->dead = a;
    event_active(set->reap_ev, EV_TIMEOUT, 0);
}

struct fetch_idle *fetch_idle_new(struct event_base *base)
{
    struct fetch_idle *set = xcalloc(1, sizeof *set);
    set->base = base;
    set->reap_ev = event_new(base, -1, 0, idle_reap_cb, set);
    return set;
}

void fetch_idle_stop(struct fetch_idle *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->ntold; i++) /* a reload may have fixed what they said */
        free(set->told[i]);
    set->ntold = 0;
    while (set->list) {
        struct fetch_acct *a = set->list;
        set->list = a->idle_next;
        log_info("fetch: %s: IDLE session closed", a->res->label);
        if (a->rec_open && uidrec_sync(&a->rec) < 0)
            log_error("fetch: %s: cannot sync the UID record: %s", a->res->label,
                      strerror(errno));
        a->finished = true; /* hand-offs in flight only count down; unsynced work is redone */
        struct fetch_run *run = a->run;
        acct_free(a);
        run_unref(run);
    }
    idle_reap_cb(-1, 0, set);
}

void fetch_idle_free(struct fetch_idle *set)
{
    if (!set)
        return;
    fetch_idle_stop(set);
    event_free(set->reap_ev);
    free(set);
}

size_t fetch_idle_count(const struct fetch_idle *set)
{
    size_t n = 0;
    for (const struct fetch_acct *a = set ? set->list : NULL; a; a = a->idle_next)
        n++;
    return n;
}

/* ---- the rc file ------------------------------------------------------------------------------ */

int fetch_read_rc(const char *path, char **data_r, size_t *len_r, char *error, size_t errsize)
{
    *data_r = NULL;
    *len_r = 0;
    struct stat st;
    if (stat(path, &st) < 0) {
        snprintf(error, errsize, "%s: %s", path, strerror(errno));
        return FETCH_PS_SYNTAX;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(error, errsize, "%s must have no more than -rwx------ (0700) permissions", path);
        return FETCH_PS_IOERR;
    }
    if (fs_read_file(path, FETCHRC_FILE_MAX, data_r, len_r) < 0) {
        snprintf(error, errsize, "%s: %s", path, strerror(errno));
        return FETCH_PS_SYNTAX;
    }
    struct fetchrc *rc = fetch_parse_rc(path, *data_r, *len_r, error, errsize);
    if (!rc) {
        explicit_bzero(*data_r, *len_r);
        free(*data_r);
        *data_r = NULL;
        return FETCH_PS_SYNTAX;
    }
    fetchrc_free(rc);
    free(rc);
    return FETCH_PS_SUCCESS;
}

struct fetchrc *fetch_parse_rc(const char *path, const char *data, size_t len, char *error,
                               size_t errsize)
{
    struct fetchrc *rc = xcalloc(1, sizeof *rc);
    char err[FETCHRC_ERROR_MAX];
    if (!fetchrc_parse(rc, path, data, len, err)) {
        snprintf(error, errsize, "%s", err);
        fetchrc_free(rc);
        free(rc);
        return NULL;
    }
    return rc;
}
