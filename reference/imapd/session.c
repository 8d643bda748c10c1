/*
 * session: one IMAP conversation.
 *
 * STANDARDS
 *   RFC 3501 (IMAP4rev1: states 3, commands 6, responses 7), RFC 2595 / RFC 3501 6.2.1
 *   (STARTTLS, LOGINDISABLED), RFC 4959 (SASL-IR), RFC 4616 (PLAIN), RFC 7888 (LITERAL+),
 *   RFC 2177 (IDLE), RFC 2971 (ID), RFC 5161 (ENABLE), RFC 2342 (NAMESPACE), RFC 3691
 *   (UNSELECT), RFC 4315 (UID EXPUNGE), RFC 5530 (response codes), RFC 2180 4.1 (messages
 *   expunged by another session are reported only where EXPUNGE is allowed), RFC 6851 (MOVE),
 *   RFC 4315 (COPYUID), RFC 7162 sections 3.1 (CONDSTORE) and 3.2 (QRESYNC: SELECT/EXAMINE
 *   QRESYNC, VANISHED, UID FETCH VANISHED, [CLOSED]); folders, LIST and friends: folders.h.
 *
 * DESCRIPTION
 *   The session keeps a view of the selected mailbox: the messages the client knows, in
 *   sequence-number order, with the flags last reported. After a command (and on NOOP, CHECK
 *   and every IMAPD_IDLE_POLL_SEC in IDLE) the view is brought up to date with the mail
 *   store: new messages as EXISTS, flag changes as FETCH (FLAGS), messages gone as EXPUNGE,
 *   except during FETCH, STORE and SEARCH (RFC 3501 7.4.1), when they stay in the view as
 *   gone until a later command. Mailbox locks are held only inside mail store calls.
 *   A FETCH whose output passes IMAPD_OUTPUT_HIGH pauses until the client has read it.
 *
 * SECURITY
 *   Everything here is untrusted input. Limits: the framing limits of imap_cmd.h with
 *   literals up to IMAPD_LITERAL_MAX, IMAPD_ERROR_MAX bad commands, imap_timeout,
 *   imap_connection_limit. Passwords are refused on a connection that is neither TLS nor from
 *   127.0.0.1/::1 or plaintext_auth_from (LOGINDISABLED is announced there), checked on
 *   reference/auth's threads (nothing is read meanwhile), wiped from memory after use, and the
 *   reason a login failed is logged, never told; the NO comes after auth_failure_delay plus a
 *   delay of the session's own (1 s times the failures so far, at most 5 s). Bytes pipelined after STARTTLS are
 *   discarded before the handshake. Mailbox names are checked by folders.c (foldername.h)
 *   before they become paths.
 */
#include "session.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <gmime/gmime.h>
#include <openssl/crypto.h>

#include "auth/auth.h"
#include "fetch.h"
#include "folders.h"
#include "imap_cmd.h"
#include "log.h"
#include "mailstore/mailstore.h"
#include "mbox_flags.h"
#include "mbox_read.h"
#include "mime_part.h"
#include "netaddr.h"
#include "netconn/netconn.h"
#include "pop3_cmd.h"
#include "str.h"
#include "view.h"
#include "xalloc.h"

#define IMAPD_ERROR_MAX 20
#define IMAPD_LITERAL_MAX (64UL * 1024)
#define IMAPD_OUTPUT_HIGH (4UL * 1024 * 1024)
#define IMAPD_CLOSE_POLL_MSEC 20
#define IMAPD_CLOSE_POLLS 250 /* 5 s for the last reply to leave */
#define IMAPD_USER_MAX 255
#define IMAPD_LOGIN_DELAY_MSEC 1000 /* after a failed login, times the failures so far, ... */
#define IMAPD_LOGIN_DELAY_MAX_MSEC 5000 /* ... at most this */

enum imapd_state {
    IMAPD_S_NOTAUTH,
    IMAPD_S_AUTH,
    IMAPD_S_SELECTED,
    IMAPD_S_CLOSING,
};

#define IMAPD_IN_NOTAUTH (1u << IMAPD_S_NOTAUTH)
#define IMAPD_IN_AUTH (1u << IMAPD_S_AUTH)
#define IMAPD_IN_SELECTED (1u << IMAPD_S_SELECTED)
#define IMAPD_ANY (IMAPD_IN_NOTAUTH | IMAPD_IN_AUTH | IMAPD_IN_SELECTED)
#define IMAPD_LOGGED_IN (IMAPD_IN_AUTH | IMAPD_IN_SELECTED)

struct imapd_session {
    struct imapd *srv;
    struct imapd_session *next;
    struct bufferevent *bev;
    unsigned long long id;
    struct netaddr addr;
    char ip[NETADDR_STRLEN];
    bool tls;
    enum imapd_state state;
    unsigned errors;
    struct imap_reader reader;
    char user[IMAPD_USER_MAX + 1];
    struct mailstore store;
    bool store_open;
    bool readonly;
    struct imapd_view view;           /* the generation the client was last told of (view.h) */
    bool condstore;                   /* RFC 7162 enabled: FETCH responses carry MODSEQ */
    bool qresync;                     /* ENABLE QRESYNC (RFC 7162 3.2.3): VANISHED, not EXPUNGE */
    size_t nkeywords_sent;
    bool auth_wait;                   /* AUTHENTICATE PLAIN: the response line comes next */
    char auth_tag[IMAP_TAG_MAX + 1];
    bool idling;
    char idle_tag[IMAP_TAG_MAX + 1];
    struct event *idle_timer;
    void *idle_watch;                 /* mailstore_watch while in IDLE with a mailbox selected */
    bool fetching;                    /* a FETCH paused until its output drains */
    struct imap_cmd fetch_cmd;
    size_t *fetch_list, fetch_n, fetch_pos;
    bool fetch_gone;
    unsigned long fetched;
    unsigned login_failures;
    bool delaying;                    /* a failed login's NO waits (input waits too) */
    char delay_tag[IMAP_TAG_MAX + 1];
    struct event *delay_timer;
    struct auth_request *auth_req; /* the password check under way (reading paused) */
    char auth_user[IMAPD_USER_MAX + 1];
    struct event *close_timer;
    unsigned close_polls;
    bool expunging;                   /* an EXPUNGE waits for its group's rewrite (input paused) */
    char expunge_tag[IMAP_TAG_MAX + 1];
    uint32_t *expunge_uids;
    size_t expunge_n;
    struct imapd_session *expunge_next;
};

static void imapd_session_read(struct bufferevent *bev, void *arg);
static void imapd_session_write(struct bufferevent *bev, void *arg);
static void imapd_session_event(struct bufferevent *bev, short what, void *arg);
static void imapd_process(struct imapd_session *ss);
static void imapd_after_io(struct imapd_session *ss);
static void imapd_expunge_enqueue(struct imapd_session *ss, const char *tag, uint32_t *uids, size_t n);
static unsigned imapd_system_flag(const char *name);

/* ---- replies ------------------------------------------------------------------------------ */

static void imapd_send(struct imapd_session *ss, const char *fmt, ...) LOG_PRINTF(2, 3);
static void imapd_send(struct imapd_session *ss, const char *fmt, ...)
{
    struct evbuffer *out = bufferevent_get_output(ss->bev);
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(out, fmt, ap);
    va_end(ap);
    evbuffer_add(out, "\r\n", 2);
}

static void imapd_send_buf(struct imapd_session *ss, const struct buf *b)
{
    evbuffer_add(bufferevent_get_output(ss->bev), b->data ? b->data : "", b->len);
}

/* A tagged (or, without a tag, untagged) BAD that counts against IMAPD_ERROR_MAX. */
static void imapd_bad(struct imapd_session *ss, const char *tag, const char *text)
{
    imapd_send(ss, "%s BAD %s", tag && tag[0] ? tag : "*", text);
    if (++ss->errors >= IMAPD_ERROR_MAX && ss->state != IMAPD_S_CLOSING) {
        log_info("imapd %llx: too many errors from [%s], disconnecting", ss->id, ss->ip);
        imapd_send(ss, "* BYE Too many invalid commands.");
        ss->state = IMAPD_S_CLOSING;
    }
}

static bool imapd_plaintext_ok(const struct imapd_session *ss)
{
    return ss->tls || zconf_plaintext_auth_ok(ss->srv->conf, &ss->addr);
}

static void imapd_capabilities(const struct imapd_session *ss, struct buf *b)
{
    buf_append_str(b, "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS UNSELECT CHILDREN SPECIAL-USE MOVE "
                      "CONDSTORE QRESYNC");
    if (ss->state == IMAPD_S_NOTAUTH) {
        if (ss->srv->tls && !ss->tls)
            buf_append_str(b, " STARTTLS");
        buf_append_str(b, imapd_plaintext_ok(ss) ? " AUTH=PLAIN" : " LOGINDISABLED");
    }
}

/* ---- the view ----------------------------------------------------------------------------- */

static void imapd_close_mailbox(struct imapd_session *ss)
{
    if (ss->store_open)
        mailstore_close(&ss->store);
    ss->store_open = false;
    imapd_view_close(&ss->view);
    ss->nkeywords_sent = 0;
    if (ss->state == IMAPD_S_SELECTED)
        ss->state = IMAPD_S_AUTH;
}

static void imapd_send_flags(struct imapd_session *ss)
{
    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
    for (size_t k = 0; k < ss->store.nkeywords; k++)
        buf_printf(&b, " %s", ss->store.keyword[k]);
    buf_append_str(&b, ")\r\n* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
    for (size_t k = 0; k < ss->store.nkeywords; k++)
        buf_printf(&b, " %s", ss->store.keyword[k]);
    buf_printf(&b, "%s)] Flags permitted.\r\n", ss->readonly || ss->store.nkeywords >= MAILSTORE_KEYWORDS_MAX ? "" : " \\*");
    imapd_send_buf(ss, &b);
    buf_free(&b);
    ss->nkeywords_sent = ss->store.nkeywords;
}

/*
 * Brings the view in step with the mail store's newest generation, telling the client (see
 * DESCRIPTION and view.h); skip: UIDs (sorted) whose flags the caller tells itself.
 */
/* A read-write session claims \Recent on the messages it is about to be told of first. */
static void imapd_claim_recent(struct imapd_session *ss)
{
    if (ss->readonly || !ss->store.gen)
        return;
    uint32_t upto = ss->store.gen->uidnext;
    imapd_view_add_recent(&ss->view, mailstore_recent_claim(&ss->store, upto), upto);
}

/* flags, with \Recent when uid is \Recent for this session */
static unsigned imapd_flags_of(const struct imapd_session *ss, uint32_t uid, unsigned flags)
{
    return flags | (imapd_view_is_recent(&ss->view, uid) ? IMAPD_FLAG_RECENT : 0);
}

static void imapd_merge(struct imapd_session *ss, bool allow_expunge, const uint32_t *skip, size_t nskip)
{
    if (ss->store.nkeywords != ss->nkeywords_sent)
        imapd_send_flags(ss);
    if (ss->store.gen != ss->view.shown)
        imapd_claim_recent(ss);
    struct buf b;
    buf_init(&b, 0);
    imapd_view_merge(&ss->view, ss->store.gen, allow_expunge, &ss->store, skip, nskip, ss->condstore, ss->qresync,
                     &b);
    imapd_send_buf(ss, &b);
    buf_free(&b);
}

/*
 * Looks at the mailbox (re-reading it when it changed, or always with force) and merges.
 * False when the session cannot go on (BYE sent).
 */
static bool imapd_sync(struct imapd_session *ss, bool allow_expunge, bool force)
{
    if (ss->state != IMAPD_S_SELECTED)
        return true;
    if (force || mailstore_changed(&ss->store)) {
        const char *error = NULL;
        enum mailstore_result r = mailstore_refresh(&ss->store, &error);
        if (r == MAILSTORE_GONE) {
            log_warnx("imapd %llx: user=%s INBOX: %s", ss->id, ss->user, error);
            imapd_send(ss, "* BYE [UNAVAILABLE] The mailbox was rebuilt, please log in again.");
            ss->state = IMAPD_S_CLOSING;
            return false;
        }
        if (r != MAILSTORE_OK) {
            log_info("imapd %llx: user=%s INBOX not refreshed: %s (%s)", ss->id, ss->user, error,
                     mailstore_result_name(r));
            return true; /* the next command tries again */
        }
    }
    imapd_merge(ss, allow_expunge, NULL, 0);
    return true;
}

/* Tagged OK, after the untagged news of the mailbox. */
static void imapd_ok(struct imapd_session *ss, const char *tag, bool allow_expunge, const char *text)
{
    if (!imapd_sync(ss, allow_expunge, false))
        return;
    imapd_send(ss, "%s OK %s", tag, text);
}

static void imapd_store_error(struct imapd_session *ss, const char *tag, enum mailstore_result r, const char *error)
{
    log_warnx("imapd %llx: user=%s %s: %s (%s)", ss->id, ss->user, ss->store_open ? ss->store.mbox_path : "mailbox",
              error, mailstore_result_name(r));
    if (r == MAILSTORE_BUSY)
        imapd_send(ss, "%s NO [INUSE] The mailbox is locked by another program, try again later.", tag);
    else
        imapd_send(ss, "%s NO [SERVERBUG] Internal error: the mailbox could not be updated.", tag);
}

/* Is n (1-based, or a UID) in the set? star is the value of '*'. */
static bool imapd_in_set(const struct imap_seqset *set, uint32_t n, uint32_t star)
{
    for (size_t i = 0; i < set->n; i++) {
        uint32_t lo, hi;
        imap_seq_range_bounds(&set->ranges[i], star, &lo, &hi);
        if (n >= lo && n <= hi)
            return true;
    }
    return false;
}

/*
 * The view indices a set names. Sequence numbers beyond the mailbox are an error (false);
 * UIDs that do not exist are skipped (RFC 3501 6.4.8).
 */
static bool imapd_resolve(const struct imapd_session *ss, const struct imap_seqset *set, bool uid, size_t **list_r,
                          size_t *n_r)
{
    *list_r = NULL;
    *n_r = 0;
    size_t nview = imapd_view_count(&ss->view);
    if (!uid) {
        /* a range with '*' is never out of range ("1:*" in an empty mailbox names nothing) */
        for (size_t i = 0; i < set->n; i++)
            if (set->ranges[i].lo != IMAP_SEQ_STAR && set->ranges[i].hi != IMAP_SEQ_STAR &&
                (set->ranges[i].lo > nview || set->ranges[i].hi > nview))
                return false;
    }
    uint32_t star = uid ? imapd_view_max_uid(&ss->view) : (uint32_t)nview;
    size_t *list = xreallocarray(NULL, nview ? nview : 1, sizeof *list);
    size_t n = 0;
    for (size_t i = 0; i < nview; i++)
        if (imapd_in_set(set, uid ? imapd_view_uid(&ss->view, i) : (uint32_t)(i + 1), star))
            list[n++] = i;
    *list_r = list;
    *n_r = n;
    return true;
}

static const struct mailstore_msg *imapd_store_find(const struct imapd_session *ss, uint32_t uid)
{
    return mailstore_gen_find(ss->store.gen, uid);
}

/* The mail store's newest entry of sequence number idx + 1; NULL when it is gone. */
static const struct mailstore_msg *imapd_msg(const struct imapd_session *ss, size_t idx)
{
    if (ss->view.shown == ss->store.gen)
        return &ss->store.gen->msgs[idx]; /* the view is the newest: same positions */
    uint32_t uid = imapd_view_uid(&ss->view, idx);
    const struct mailstore_gen *g = ss->store.gen;
    /* where it was, or a few places before (other sessions expunged some): UIDs ascend, so a
     * message is never after its place in the view; a binary search beyond that */
    size_t at = g && idx < g->nmsgs ? idx : g && g->nmsgs ? g->nmsgs - 1 : 0;
    for (size_t k = 0; g && g->nmsgs && k < 16 && k <= at && g->msgs[at - k].uid >= uid; k++)
        if (g->msgs[at - k].uid == uid)
            return &g->msgs[at - k];
    return imapd_store_find(ss, uid);
}

/* Appends v in decimal: a FETCH 1:* formats numbers for every message, printf is slow. */
static void imapd_put_num(struct buf *b, unsigned long long v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    buf_append(b, tmp + i, sizeof tmp - i);
}

/* The message in wire form (CRLF). */
static enum mailstore_result imapd_wire(struct imapd_session *ss, const struct mailstore_msg *m, struct buf *wire,
                                        const char **error_r)
{
    struct buf raw;
    buf_init(&raw, 0);
    enum mailstore_result r = mailstore_read_msg(&ss->store, m, &raw, error_r);
    if (r == MAILSTORE_OK)
        mbox_export(raw.data ? raw.data : "", raw.len, 0, -1, wire);
    buf_free(&raw);
    return r;
}

/* ---- not authenticated -------------------------------------------------------------------- */

static void imapd_cmd_capability(struct imapd_session *ss, struct imap_cmd *cmd)
{
    struct buf b;
    buf_init(&b, 0);
    imapd_capabilities(ss, &b);
    buf_append_char(&b, '\0');
    imapd_send(ss, "* CAPABILITY %s", b.data);
    buf_free(&b);
    imapd_ok(ss, cmd->tag, true, "Capability completed.");
}

static void imapd_cmd_noop(struct imapd_session *ss, struct imap_cmd *cmd)
{
    if (!imapd_sync(ss, true, false))
        return;
    imapd_send(ss, "%s OK %s completed.", cmd->tag, imap_verb_name(cmd->verb));
}

static void imapd_cmd_logout(struct imapd_session *ss, struct imap_cmd *cmd)
{
    if (ss->state == IMAPD_S_SELECTED && !ss->readonly) {
        const char *error = NULL;
        enum mailstore_result r = mailstore_write_flags(&ss->store, &error);
        if (r != MAILSTORE_OK)
            log_warnx("imapd %llx: user=%s flags not written to the mbox: %s", ss->id, ss->user, error);
    }
    imapd_send(ss, "* BYE Logging out");
    imapd_send(ss, "%s OK Logout completed.", cmd->tag);
    log_info("imapd %llx: logout user=%s fetched=%lu", ss->id, ss->user[0] ? ss->user : "-", ss->fetched);
    ss->state = IMAPD_S_CLOSING;
}

static void imapd_cmd_starttls(struct imapd_session *ss, struct imap_cmd *cmd)
{
    if (!ss->srv->tls) {
        imapd_send(ss, "%s NO STARTTLS is not available.", cmd->tag);
        return;
    }
    if (ss->tls) {
        imapd_bad(ss, cmd->tag, "TLS is already active.");
        return;
    }
    imapd_send(ss, "%s OK Begin TLS negotiation now.", cmd->tag);
    size_t dropped;
    struct bufferevent *tls = netconn_starttls(ss->srv->base, ss->bev, ss->srv->tls, &dropped);
    if (dropped)
        log_info("imapd %llx: discarded %zu bytes pipelined after STARTTLS from [%s]", ss->id, dropped, ss->ip);
    imap_reader_free(&ss->reader);
    imap_reader_init(&ss->reader, IMAPD_LITERAL_MAX);
    if (!tls) {
        imapd_send(ss, "* BYE TLS not available due to a local problem.");
        ss->state = IMAPD_S_CLOSING;
        return;
    }
    ss->bev = tls;
    ss->tls = true;
    bufferevent_setcb(ss->bev, imapd_session_read, imapd_session_write, imapd_session_event, ss);
    bufferevent_set_timeouts(ss->bev, &(struct timeval){(time_t)ss->srv->conf->imap_timeout, 0}, NULL);
    bufferevent_enable(ss->bev, EV_READ | EV_WRITE);
}

static void imapd_login_delay_done(evutil_socket_t fd, short what, void *arg)
{
    struct imapd_session *ss = arg;
    (void)fd;
    (void)what;
    ss->delaying = false;
    bufferevent_enable(ss->bev, EV_READ);
    imapd_send(ss, "%s NO [AUTHENTICATIONFAILED] Authentication failed.", ss->delay_tag);
    imapd_process(ss); /* commands that came meanwhile */
    if (ss->state == IMAPD_S_CLOSING) {
        bufferevent_disable(ss->bev, EV_READ);
        bufferevent_enable(ss->bev, EV_WRITE);
    }
}

/* The NO for a failed login, after a delay that grows with the failures (guessing slowed). */
static void imapd_login_failed(struct imapd_session *ss, const char *tag)
{
    ss->login_failures++;
    if (++ss->errors >= IMAPD_ERROR_MAX) {
        imapd_send(ss, "%s NO [AUTHENTICATIONFAILED] Authentication failed.", tag);
        imapd_send(ss, "* BYE Too many failures.");
        ss->state = IMAPD_S_CLOSING;
        return;
    }
    unsigned long msec = (unsigned long)IMAPD_LOGIN_DELAY_MSEC * ss->login_failures;
    if (msec > IMAPD_LOGIN_DELAY_MAX_MSEC)
        msec = IMAPD_LOGIN_DELAY_MAX_MSEC;
    if (!ss->delay_timer)
        ss->delay_timer = evtimer_new(ss->srv->base, imapd_login_delay_done, ss);
    str_copy(ss->delay_tag, sizeof ss->delay_tag, tag);
    ss->delaying = true;
    bufferevent_disable(ss->bev, EV_READ); /* what comes meanwhile waits in the socket */
    struct timeval tv = {(time_t)(msec / 1000), (suseconds_t)(msec % 1000) * 1000};
    evtimer_add(ss->delay_timer, &tv);
}

static void imapd_login_ok(struct imapd_session *ss, const char *tag, const char *user)
{
    str_copy(ss->user, sizeof ss->user, user);
    ss->state = IMAPD_S_AUTH;
    /* APPEND carries a whole message in one literal */
    if (ss->srv->conf->message_size_limit > ss->reader.literal_max)
        ss->reader.literal_max = ss->srv->conf->message_size_limit;
    log_info("imapd %llx: login user=%s from [%s]%s", ss->id, ss->user, ss->ip, ss->tls ? " tls=yes" : "");
    struct imapd_folders_ctx fctx = {ss->srv, ss->user, ss->id};
    imapd_folders_first_login(&fctx);
    struct buf b;
    buf_init(&b, 0);
    imapd_capabilities(ss, &b);
    buf_append_char(&b, '\0');
    imapd_send(ss, "%s OK [CAPABILITY %s] Logged in", tag, b.data);
    buf_free(&b);
}

/* The verdict of reference/auth, back on the loop: answer, then read what came meanwhile. */
static void imapd_auth_done(enum users_auth result, void *arg)
{
    struct imapd_session *ss = arg;
    ss->auth_req = NULL;
    ss->delaying = false;
    bufferevent_enable(ss->bev, EV_READ);
    if (result == USERS_AUTH_OK) {
        imapd_login_ok(ss, ss->delay_tag, ss->auth_user);
    } else {
        log_info("imapd %llx: login failed from [%s] user=%s result=%s", ss->id, ss->ip, ss->auth_user,
                 users_auth_name(result));
        char tag[sizeof ss->delay_tag];
        str_copy(tag, sizeof tag, ss->delay_tag);
        imapd_login_failed(ss, tag);
        if (ss->delaying)
            return; /* the NO goes out when the session's own delay is over */
    }
    imapd_process(ss);
    if (ss->state == IMAPD_S_CLOSING) {
        bufferevent_disable(ss->bev, EV_READ);
        bufferevent_enable(ss->bev, EV_WRITE);
    }
}

static void imapd_login(struct imapd_session *ss, const char *tag, const char *user, const char *password)
{
    const struct smtpd_maps *m = ss->srv->maps;
    bool name_ok = user[0] && strlen(user) <= IMAPD_USER_MAX && !strchr(user, '/');
    if (name_ok && ss->srv->auth && m && m->auth_prepare) {
        /* hashing happens on reference/auth's threads; nothing is read until the verdict */
        struct users_check chk;
        m->auth_prepare(m->ctx, user, &chk);
        str_copy(ss->auth_user, sizeof ss->auth_user, user);
        str_copy(ss->delay_tag, sizeof ss->delay_tag, tag);
        ss->delaying = true;
        bufferevent_disable(ss->bev, EV_READ);
        ss->auth_req = auth_submit(ss->srv->auth, &chk, password, imapd_auth_done, ss);
        OPENSSL_cleanse(&chk, sizeof chk);
        return;
    }
    bool ok = name_ok && m && m->authenticate && m->authenticate(m->ctx, user, password);
    if (!ok) {
        log_info("imapd %llx: login failed from [%s] user=%s", ss->id, ss->ip, user);
        imapd_login_failed(ss, tag);
        return;
    }
    imapd_login_ok(ss, tag, user);
}

static bool imapd_privacy(struct imapd_session *ss, const char *tag)
{
    if (imapd_plaintext_ok(ss))
        return true;
    imapd_send(ss, "%s NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
               tag);
    return false;
}

static void imapd_cmd_login(struct imapd_session *ss, struct imap_cmd *cmd)
{
    if (!imapd_privacy(ss, cmd->tag))
        return;
    if (strlen(cmd->arg1) != cmd->arg1_len || strlen(cmd->arg2) != cmd->arg2_len) {
        log_info("imapd %llx: login failed from [%s]: NUL in user name or password", ss->id, ss->ip);
        imapd_login_failed(ss, cmd->tag);
        return;
    }
    imapd_login(ss, cmd->tag, cmd->arg1, cmd->arg2);
}

static void imapd_auth_plain(struct imapd_session *ss, const char *tag, const char *b64, size_t len)
{
    static char authz[POP3_SASL_FIELD_MAX + 1], authc[POP3_SASL_FIELD_MAX + 1], pass[POP3_SASL_FIELD_MAX + 1];
    if (!pop3_sasl_plain(b64, len, authz, authc, pass, sizeof authz)) {
        imapd_bad(ss, tag, "Invalid PLAIN response.");
    } else if (authz[0] && strcmp(authz, authc) != 0) {
        log_info("imapd %llx: login failed from [%s] user=%s: authorization identity %s refused", ss->id, ss->ip,
                 authc, authz);
        imapd_login_failed(ss, tag);
    } else {
        imapd_login(ss, tag, authc, pass);
    }
    OPENSSL_cleanse(pass, sizeof pass);
}

static void imapd_cmd_authenticate(struct imapd_session *ss, struct imap_cmd *cmd)
{
    if (!str_eq_nocase(cmd->arg1, "PLAIN")) {
        imapd_send(ss, "%s NO Unsupported authentication mechanism.", cmd->tag);
        return;
    }
    if (!imapd_privacy(ss, cmd->tag))
        return;
    if (cmd->has_arg2) {
        if (strcmp(cmd->arg2, "=") == 0)
            imapd_auth_plain(ss, cmd->tag, "", 0);
        else
            imapd_auth_plain(ss, cmd->tag, cmd->arg2, cmd->arg2_len);
        return;
    }
    ss->auth_wait = true;
    str_copy(ss->auth_tag, sizeof ss->auth_tag, cmd->tag);
    imapd_send(ss, "+ ");
}

static void imapd_cmd_id(struct imapd_session *ss, struct imap_cmd *cmd)
{
    imapd_send(ss, "* ID (\"name\" \"zolder\" \"version\" \"%s\")", ZOLDER_VERSION);
    imapd_ok(ss, cmd->tag, true, "ID completed.");
}

/* ---- authenticated ------------------------------------------------------------------------ */

/*
 * RFC 7162 3.2.5.1: after SELECT/EXAMINE ... (QRESYNC (v m known (seqs uids)))) with the
 * mailbox's UIDVALIDITY: "* VANISHED (EARLIER)" with the known UIDs that are gone, then
 * "FETCH (UID FLAGS MODSEQ)" for the known messages changed since m. Known UIDs not given
 * mean 1:UIDNEXT-1. The mail store keeps no MODSEQ of an expunged message, so every known
 * UID (up to UIDNEXT-1, above what the sequence match data shows the client knows) that does
 * not exist now is told, whatever m (RFC 7162 5.1 allows this). Ranges all the way: a known
 * set of 1:4294967295 costs no more than 1:10.
 */
static void imapd_qresync_select(struct imapd_session *ss, const struct imap_cmd *cmd)
{
    const struct mailstore_gen *g = ss->view.shown;
    uint32_t maxuid = g->uidnext > 1 ? g->uidnext - 1 : 0;
    struct imap_seq_range all = {1, UINT32_MAX};
    struct imap_seqset whole = {&all, 1, false};
    const struct imap_seqset *known_set = cmd->qresync_known_uids.n ? &cmd->qresync_known_uids : &whole;
    uint32_t floor = imapd_seq_match_floor(&cmd->qresync_match_seqs, &cmd->qresync_match_uids, g);
    struct imapd_uidset known, vanish;
    imapd_uidset_make(&known, known_set, 0, 1, maxuid);
    imapd_uidset_make(&vanish, known_set, 0, floor, maxuid);
    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b, "* VANISHED (EARLIER) ");
    if (imapd_uidset_missing(&vanish, g, &b))
        buf_append_str(&b, "\r\n");
    else
        buf_reset(&b);
    size_t changed = 0;
    for (size_t i = 0; i < g->nmsgs; i++) {
        const struct mailstore_msg *m = &g->msgs[i];
        if (m->modseq <= cmd->qresync_modseq || !imapd_uidset_has(&known, m->uid))
            continue;
        buf_printf(&b, "* %zu FETCH (UID %u FLAGS ", i + 1, m->uid);
        imapd_flag_list(&ss->store, imapd_flags_of(ss, m->uid, m->flags), m->keywords, &b);
        buf_printf(&b, " MODSEQ (%llu))\r\n", m->modseq);
        changed++;
    }
    imapd_send_buf(ss, &b);
    log_info("imapd %llx: user=%s qresync known-ranges=%zu floor=%u changed=%zu", ss->id, ss->user, known.n, floor,
             changed);
    buf_free(&b);
    imapd_uidset_free(&known);
    imapd_uidset_free(&vanish);
}

static void imapd_cmd_select(struct imapd_session *ss, struct imap_cmd *cmd)
{
    if (cmd->qresync && !ss->qresync) {
        /* RFC 7162 3.2.3: the QRESYNC parameter without ENABLE QRESYNC first is a BAD */
        imapd_bad(ss, cmd->tag, "QRESYNC needs ENABLE QRESYNC first.");
        return;
    }
    if (ss->state == IMAPD_S_SELECTED) {
        if (!ss->readonly) {
            const char *error = NULL;
            if (mailstore_write_flags(&ss->store, &error) != MAILSTORE_OK)
                log_warnx("imapd %llx: user=%s flags not written to the mbox: %s", ss->id, ss->user, error);
        }
        imapd_close_mailbox(ss);
        /* RFC 7162 CLOSED, from every server that advertises QRESYNC (as Dovecot does, whether
         * or not the session enabled it): the boundary between the old mailbox's responses
         * and the new one's */
        imapd_send(ss, "* OK [CLOSED] Previous mailbox closed.");
    }
    struct imapd_folders_ctx fctx = {ss->srv, ss->user, ss->id};
    struct imapd_folder folder;
    char no[256];
    if (!imapd_folder_mailbox(&fctx, cmd->arg1, "NONEXISTENT", &folder, no, sizeof no)) {
        imapd_send(ss, "%s NO %s", cmd->tag, no);
        return;
    }
    const char *error = NULL;
    enum mailstore_result r = imapd_folder_open(&fctx, &folder, &ss->store, &error);
    if (r != MAILSTORE_OK) {
        mailstore_close(&ss->store);
        imapd_store_error(ss, cmd->tag, r, error);
        return;
    }
    if (cmd->verb != IMAP_VERB_EXAMINE && mailstore_settle(&ss->store, &error) != MAILSTORE_OK)
        log_warnx("imapd %llx: user=%s select %s: new mail not moved to cur/: %s", ss->id, ss->user, folder.name,
                  error); /* not fatal: the messages are listed from new/ as well */
    ss->store_open = true;
    ss->readonly = cmd->verb == IMAP_VERB_EXAMINE;
    ss->state = IMAPD_S_SELECTED;
    imapd_view_open(&ss->view, ss->store.gen);
    uint32_t upto = ss->store.gen->uidnext;
    if (ss->readonly) /* EXAMINE shows \Recent and leaves it to the next SELECT */
        imapd_view_add_recent(&ss->view, mailstore_recent_first(&ss->store), upto);
    else
        imapd_claim_recent(ss);
    size_t first_unseen = 0;
    for (size_t i = 0; i < ss->store.nmsgs && !first_unseen; i++)
        if (!(ss->store.msgs[i].flags & MBOX_FLAG_SEEN))
            first_unseen = i + 1;
    imapd_send_flags(ss);
    imapd_send(ss, "* %zu EXISTS", ss->store.nmsgs);
    imapd_send(ss, "* %zu RECENT", imapd_view_recent_count(&ss->view));
    if (first_unseen)
        imapd_send(ss, "* OK [UNSEEN %zu] First unseen.", first_unseen);
    imapd_send(ss, "* OK [UIDVALIDITY %u] UIDs valid", ss->store.uidvalidity);
    imapd_send(ss, "* OK [UIDNEXT %u] Predicted next UID", ss->store.uidnext);
    ss->condstore |= cmd->condstore;
    imapd_send(ss, "* OK [HIGHESTMODSEQ %llu] Highest", ss->store.highestmodseq);
    /* a UIDVALIDITY that differs: the rest is ignored, nothing more is told (RFC 7162 3.2.5.1) */
    if (cmd->qresync && cmd->qresync_uidvalidity == ss->store.uidvalidity)
        imapd_qresync_select(ss, cmd);
    log_info("imapd %llx: user=%s %s %s messages=%zu", ss->id, ss->user, ss->readonly ? "examine" : "select",
             folder.name, ss->store.nmsgs);
    imapd_send(ss, "%s OK [%s] %s completed.", cmd->tag, ss->readonly ? "READ-ONLY" : "READ-WRITE",
               imap_verb_name(cmd->verb));
}

/* LIST, LSUB, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE: folders.c does the work. */
static void imapd_cmd_folders(struct imapd_session *ss, struct imap_cmd *cmd)
{
    struct imapd_folders_ctx fctx = {ss->srv, ss->user, ss->id};
    struct buf out;
    char text[256];
    buf_init(&out, 0);
    enum imapd_reply reply = imapd_folders_command(&fctx, cmd, &out, text, sizeof text);
    imapd_send_buf(ss, &out);
    buf_free(&out);
    if (reply == IMAPD_REPLY_BAD)
        imapd_bad(ss, cmd->tag, text);
    else if (reply == IMAPD_REPLY_NO)
        imapd_send(ss, "%s NO %s", cmd->tag, text);
    else
        imapd_ok(ss, cmd->tag, true, text);
}

static void imapd_cmd_status(struct imapd_session *ss, struct imap_cmd *cmd)
{
    struct imapd_folders_ctx fctx = {ss->srv, ss->user, ss->id};
    struct imapd_folder folder;
    char no[256];
    if (!imapd_folder_mailbox(&fctx, cmd->arg1, "NONEXISTENT", &folder, no, sizeof no)) {
        imapd_send(ss, "%s NO %s", cmd->tag, no);
        return;
    }
    for (size_t i = 0; i < cmd->nitems; i++) {
        const char *it = cmd->items[i];
        if (strcmp(it, "MESSAGES") != 0 && strcmp(it, "RECENT") != 0 && strcmp(it, "UIDNEXT") != 0 &&
            strcmp(it, "UIDVALIDITY") != 0 && strcmp(it, "UNSEEN") != 0 && strcmp(it, "HIGHESTMODSEQ") != 0) {
            imapd_bad(ss, cmd->tag, "Unknown STATUS item.");
            return;
        }
    }
    struct mailstore tmp, *ms = &tmp;
    const char *error = NULL;
    enum mailstore_result r;
    if (ss->state == IMAPD_S_SELECTED && strcmp(ss->store.mbox_path, folder.mbox_path) == 0) {
        ms = &ss->store;
        r = mailstore_changed(ms) ? mailstore_refresh(ms, &error) : MAILSTORE_OK;
    } else {
        r = imapd_folder_open(&fctx, &folder, &tmp, &error);
    }
    if (r != MAILSTORE_OK) {
        if (ms == &tmp)
            mailstore_close(&tmp);
        imapd_store_error(ss, cmd->tag, r, error);
        return;
    }
    size_t unseen = 0;
    for (size_t i = 0; i < ms->nmsgs; i++)
        unseen += !(ms->msgs[i].flags & MBOX_FLAG_SEEN);
    /* RECENT: this session's own for the mailbox it has selected, else the messages nobody claimed */
    size_t recent = 0;
    if (ms == &ss->store) {
        recent = imapd_view_recent_count(&ss->view);
    } else {
        uint32_t first = mailstore_recent_first(ms);
        for (size_t i = 0; i < ms->nmsgs; i++)
            recent += ms->msgs[i].uid >= first;
    }
    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b, "* STATUS ");
    imapd_quote(&b, folder.inbox ? "INBOX" : cmd->arg1);
    buf_append_str(&b, " (");
    for (size_t i = 0; i < cmd->nitems; i++) {
        const char *it = cmd->items[i];
        unsigned long long v = strcmp(it, "MESSAGES") == 0      ? ms->nmsgs
                               : strcmp(it, "UIDNEXT") == 0     ? ms->uidnext
                               : strcmp(it, "UIDVALIDITY") == 0 ? ms->uidvalidity
                               : strcmp(it, "UNSEEN") == 0      ? unseen
                               : strcmp(it, "RECENT") == 0      ? recent
                               : strcmp(it, "HIGHESTMODSEQ") == 0 ? ms->highestmodseq
                                                                : 0;
        buf_printf(&b, "%s%s %llu", i ? " " : "", it, v);
    }
    buf_append_str(&b, ")\r\n");
    imapd_send_buf(ss, &b);
    buf_free(&b);
    if (ms == &tmp)
        mailstore_close(&tmp);
    imapd_ok(ss, cmd->tag, true, "Status completed.");
}

static void imapd_cmd_namespace(struct imapd_session *ss, struct imap_cmd *cmd)
{
    imapd_send(ss, "* NAMESPACE ((\"\" \"/\")) NIL NIL");
    imapd_ok(ss, cmd->tag, true, "Namespace completed.");
}

static void imapd_cmd_enable(struct imapd_session *ss, struct imap_cmd *cmd)
{
    bool condstore = false, qresync = false;
    for (size_t i = 0; i < cmd->nitems; i++) {
        condstore |= strcmp(cmd->items[i], "CONDSTORE") == 0;
        qresync |= strcmp(cmd->items[i], "QRESYNC") == 0;
    }
    /*
     * RFC 5161 3.1: only what was asked for and not enabled before is listed; RFC 7162 3.2.3:
     * QRESYNC enables CONDSTORE too (listed only when asked for by name).
     */
    imapd_send(ss, "* ENABLED%s%s", condstore && !ss->condstore ? " CONDSTORE" : "",
               qresync && !ss->qresync ? " QRESYNC" : "");
    ss->condstore |= condstore || qresync;
    ss->qresync |= qresync;
    imapd_ok(ss, cmd->tag, true, "Enable completed.");
}

static void imapd_cmd_append(struct imapd_session *ss, struct imap_cmd *cmd)
{
    struct imapd_folders_ctx fctx = {ss->srv, ss->user, ss->id};
    struct imapd_folder folder;
    char no[256];
    if (!imapd_folder_mailbox(&fctx, cmd->arg1, "TRYCREATE", &folder, no, sizeof no)) {
        imapd_send(ss, "%s NO %s", cmd->tag, no);
        return;
    }
    time_t when = time(NULL);
    if (cmd->nitems && !imap_parse_datetime(cmd->items[0], strlen(cmd->items[0]), &when)) {
        imapd_bad(ss, cmd->tag, "Invalid date-time.");
        return;
    }
    if (cmd->arg2_len == 0 || cmd->arg2_len > ss->srv->conf->message_size_limit) {
        imapd_send(ss, "%s NO [LIMIT] The message is empty or larger than message_size_limit.", cmd->tag);
        return;
    }
    unsigned flags = 0;
    const char **keywords = xreallocarray(NULL, cmd->nflags + 1, sizeof *keywords);
    size_t nkw = 0;
    for (size_t i = 0; i < cmd->nflags; i++) {
        if (cmd->flags[i][0] == '\\')
            flags |= imapd_system_flag(cmd->flags[i]);
        else
            keywords[nkw++] = cmd->flags[i];
    }
    struct mailstore tmp, *ms = &tmp;
    const char *error = NULL;
    enum mailstore_result r = MAILSTORE_OK;
    if (ss->state == IMAPD_S_SELECTED && strcmp(ss->store.mbox_path, folder.mbox_path) == 0)
        ms = &ss->store;
    else
        r = imapd_folder_open(&fctx, &folder, &tmp, &error);
    uint32_t uid = 0;
    if (r == MAILSTORE_OK)
        r = mailstore_append(ms, cmd->arg2, cmd->arg2_len, when, flags, keywords, nkw, &uid, &error);
    free(keywords);
    uint32_t validity = ms->uidvalidity;
    if (ms == &tmp)
        mailstore_close(&tmp);
    if (r != MAILSTORE_OK) {
        imapd_store_error(ss, cmd->tag, r, error);
        return;
    }
    log_info("imapd %llx: user=%s append %s uid=%u size=%zu", ss->id, ss->user, folder.name, uid, cmd->arg2_len);
    char text[96];
    snprintf(text, sizeof text, "[APPENDUID %u %u] Append completed.", validity, uid);
    imapd_ok(ss, cmd->tag, true, text);
}

/* The mailbox changed in this process (another session, local delivery): look at once. */
static void imapd_idle_wake(void *arg)
{
    struct imapd_session *ss = arg;
    if (ss->idling && ss->idle_timer)
        event_active(ss->idle_timer, EV_TIMEOUT, 1); /* runs imapd_idle_poll from the loop */
}

static void imapd_idle_unwatch(struct imapd_session *ss)
{
    mailstore_unwatch(ss->idle_watch);
    ss->idle_watch = NULL;
}

static void imapd_idle_poll(evutil_socket_t fd, short what, void *arg)
{
    struct imapd_session *ss = arg;
    (void)fd;
    (void)what;
    if (!ss->idling)
        return;
    imapd_sync(ss, true, false);
    if (ss->state == IMAPD_S_CLOSING) {
        bufferevent_disable(ss->bev, EV_READ);
        return;
    }
    struct timeval poll = {IMAPD_IDLE_POLL_SEC, 0};
    evtimer_add(ss->idle_timer, &poll);
}

static void imapd_cmd_idle(struct imapd_session *ss, struct imap_cmd *cmd)
{
    if (!imapd_sync(ss, true, false))
        return;
    ss->idling = true;
    str_copy(ss->idle_tag, sizeof ss->idle_tag, cmd->tag);
    imapd_send(ss, "+ idling");
    if (!ss->idle_timer)
        ss->idle_timer = evtimer_new(ss->srv->base, imapd_idle_poll, ss);
    /* changes made in this process are pushed; the poll finds other programs' (mutt) */
    if (ss->state == IMAPD_S_SELECTED && !ss->idle_watch)
        ss->idle_watch = mailstore_watch(ss->store.mbox_path, imapd_idle_wake, ss);
    struct timeval poll = {IMAPD_IDLE_POLL_SEC, 0};
    evtimer_add(ss->idle_timer, &poll);
}

/* ---- selected ----------------------------------------------------------------------------- */

static void imapd_cmd_check(struct imapd_session *ss, struct imap_cmd *cmd)
{
    if (!ss->readonly) {
        const char *error = NULL;
        /* a checkpoint: flags into the mbox headers, deferred expunges out of it, now */
        enum mailstore_result r = mailstore_compact(&ss->store, &error);
        if (r != MAILSTORE_OK) {
            imapd_store_error(ss, cmd->tag, r, error);
            return;
        }
    }
    imapd_ok(ss, cmd->tag, true, "Check completed.");
}

/* Removes the \Deleted messages (those in set, when set is given); sends EXPUNGE when tell. */
/* The UIDs an EXPUNGE (set NULL) or UID EXPUNGE removes: \Deleted as the mailbox is now. */
static enum mailstore_result imapd_expunge_uids(struct imapd_session *ss, const struct imap_seqset *set,
                                                uint32_t **uids_r, size_t *n_r, const char **error_r)
{
    *uids_r = NULL;
    *n_r = 0;
    enum mailstore_result r = mailstore_refresh(&ss->store, error_r);
    if (r != MAILSTORE_OK)
        return r;
    uint32_t star = imapd_view_max_uid(&ss->view);
    uint32_t *uids = xreallocarray(NULL, ss->store.nmsgs ? ss->store.nmsgs : 1, sizeof *uids);
    size_t n = 0;
    for (size_t i = 0; i < ss->store.nmsgs; i++)
        if ((ss->store.msgs[i].flags & MBOX_FLAG_DELETED) && (!set || imapd_in_set(set, ss->store.msgs[i].uid, star)))
            uids[n++] = ss->store.msgs[i].uid;
    *uids_r = uids;
    *n_r = n;
    return MAILSTORE_OK;
}

static bool imapd_expunge(struct imapd_session *ss, const char *tag, const struct imap_seqset *set, bool tell,
                          size_t *removed_r)
{
    const char *error = NULL;
    uint32_t *uids = NULL;
    size_t n = 0, removed = 0;
    *removed_r = 0;
    enum mailstore_result r = imapd_expunge_uids(ss, set, &uids, &n, &error);
    if (r == MAILSTORE_OK)
        r = mailstore_expunge(&ss->store, uids, n, &removed, &error);
    free(uids);
    if (r != MAILSTORE_OK) {
        if (tag)
            imapd_store_error(ss, tag, r, error);
        else
            log_warnx("imapd %llx: user=%s expunge failed: %s", ss->id, ss->user, error);
        return false;
    }
    log_info("imapd %llx: user=%s expunge removed=%zu", ss->id, ss->user, removed);
    *removed_r = removed;
    if (tell)
        return imapd_sync(ss, true, false);
    return true;
}

/*
 * The tagged OK of EXPUNGE and UID EXPUNGE: with QRESYNC on, one that removed messages carries
 * the new HIGHESTMODSEQ (RFC 7162 3.2.7, 3.2.9).
 */
static void imapd_expunge_ok(struct imapd_session *ss, const char *tag, bool removed)
{
    if (ss->qresync && removed)
        imapd_send(ss, "%s OK [HIGHESTMODSEQ %llu] Expunge completed.", tag, ss->store.highestmodseq);
    else
        imapd_send(ss, "%s OK Expunge completed.", tag);
}

static void imapd_cmd_expunge(struct imapd_session *ss, struct imap_cmd *cmd)
{
    if (ss->readonly) {
        imapd_send(ss, "%s NO [READ-ONLY] The mailbox was opened with EXAMINE.", cmd->tag);
        return;
    }
    const char *error = NULL;
    uint32_t *uids = NULL;
    size_t n = 0;
    enum mailstore_result r = imapd_expunge_uids(ss, cmd->uid ? &cmd->set : NULL, &uids, &n, &error);
    if (r != MAILSTORE_OK) {
        free(uids);
        imapd_store_error(ss, cmd->tag, r, error);
        return;
    }
    if (n == 0) {
        free(uids);
        if (imapd_sync(ss, true, false))
            imapd_send(ss, "%s OK Expunge completed.", cmd->tag);
        return;
    }
    imapd_expunge_enqueue(ss, cmd->tag, uids, n);
}

static void imapd_cmd_close(struct imapd_session *ss, struct imap_cmd *cmd)
{
    size_t removed = 0;
    if (!ss->readonly) {
        if (cmd->verb == IMAP_VERB_CLOSE)
            imapd_expunge(ss, NULL, NULL, false, &removed);
        const char *error = NULL;
        if (mailstore_write_flags(&ss->store, &error) != MAILSTORE_OK)
            log_warnx("imapd %llx: user=%s flags not written to the mbox: %s", ss->id, ss->user, error);
    }
    unsigned long long highest = ss->store.highestmodseq;
    imapd_close_mailbox(ss);
    if (ss->qresync && removed) /* RFC 7162 3.2.8: the HIGHESTMODSEQ after the CLOSE's expunge */
        imapd_send(ss, "%s OK [HIGHESTMODSEQ %llu] Close completed.", cmd->tag, highest);
    else
        imapd_send(ss, "%s OK %s completed.", cmd->tag, imap_verb_name(cmd->verb));
}

/* COPY, MOVE (RFC 6851) and their UID forms, answered with COPYUID (RFC 4315). */
static void imapd_cmd_copy(struct imapd_session *ss, struct imap_cmd *cmd)
{
    bool move = cmd->verb == IMAP_VERB_MOVE;
    if (move && ss->readonly) {
        imapd_send(ss, "%s NO [READ-ONLY] The mailbox was opened with EXAMINE.", cmd->tag);
        return;
    }
    size_t *list, n;
    if (!imapd_resolve(ss, &cmd->set, cmd->uid, &list, &n)) {
        imapd_bad(ss, cmd->tag, "Invalid message sequence number.");
        return;
    }
    struct imapd_folders_ctx fctx = {ss->srv, ss->user, ss->id};
    struct imapd_folder folder;
    char no[256];
    if (!imapd_folder_mailbox(&fctx, cmd->arg1, "TRYCREATE", &folder, no, sizeof no)) {
        free(list);
        imapd_send(ss, "%s NO %s", cmd->tag, no);
        return;
    }
    const struct mailstore_msg **msgs = xcalloc(n ? n : 1, sizeof(struct mailstore_msg *));
    uint32_t *src_uids = xreallocarray(NULL, n ? n : 1, sizeof *src_uids);
    uint32_t *dst_uids = xreallocarray(NULL, n ? n : 1, sizeof *dst_uids);
    size_t nm = 0;
    bool gone = false;
    for (size_t i = 0; i < n; i++) {
        const struct mailstore_msg *m = imapd_msg(ss, list[i]);
        if (!m) {
            gone = true;
            continue;
        }
        msgs[nm] = m;
        src_uids[nm++] = m->uid;
    }
    free(list);
    const char *error = NULL;
    enum mailstore_result r = MAILSTORE_OK;
    size_t done = 0;
    uint32_t validity = 0;
    if (!gone && nm) {
        struct mailstore dst;
        r = imapd_folder_open(&fctx, &folder, &dst, &error);
        if (r == MAILSTORE_OK)
            r = imapd_folder_copy(&ss->store, msgs, nm, &dst, dst_uids, &done, &error);
        validity = dst.uidvalidity;
        mailstore_close(&dst);
    }
    free(msgs);
    struct buf code;
    buf_init(&code, 0);
    if (done) {
        buf_printf(&code, "[COPYUID %u ", validity);
        imapd_uid_set(&code, src_uids, done);
        buf_append_char(&code, ' ');
        imapd_uid_set(&code, dst_uids, done);
        buf_append_str(&code, "] ");
    }
    free(dst_uids);
    if (gone) {
        imapd_send(ss, "%s NO [EXPUNGEISSUED] Some of the messages no longer exist; nothing was copied.", cmd->tag);
    } else if (r != MAILSTORE_OK) {
        log_warnx("imapd %llx: user=%s %s to %s stopped after %zu of %zu", ss->id, ss->user, move ? "move" : "copy",
                  folder.name, done, nm);
        imapd_store_error(ss, cmd->tag, r, error);
    } else if (!move) {
        log_info("imapd %llx: user=%s copy to %s messages=%zu", ss->id, ss->user, folder.name, done);
        buf_append_str(&code, "Copy completed.");
        imapd_ok(ss, cmd->tag, true, code.data);
    } else {
        /* the copies are fsync'd: now the originals go (RFC 6851 3.3: COPYUID first) */
        size_t removed = 0;
        if (done)
            r = mailstore_expunge(&ss->store, src_uids, done, &removed, &error);
        if (r != MAILSTORE_OK) {
            imapd_store_error(ss, cmd->tag, r, error);
        } else {
            log_info("imapd %llx: user=%s move to %s messages=%zu", ss->id, ss->user, folder.name, removed);
            if (done)
                imapd_send(ss, "* OK %sMoved.", code.data);
            imapd_ok(ss, cmd->tag, true, "Move completed.");
        }
    }
    buf_free(&code);
    free(src_uids);
}

static void imapd_cmd_store(struct imapd_session *ss, struct imap_cmd *cmd)
{
    if (ss->readonly) {
        imapd_send(ss, "%s NO [READ-ONLY] The mailbox was opened with EXAMINE.", cmd->tag);
        return;
    }
    size_t *list, n;
    if (!imapd_resolve(ss, &cmd->set, cmd->uid, &list, &n)) {
        imapd_bad(ss, cmd->tag, "Invalid message sequence number.");
        return;
    }
    unsigned flags = 0;
    const char **keywords = xreallocarray(NULL, cmd->nflags + 1, sizeof *keywords);
    size_t nkw = 0;
    for (size_t i = 0; i < cmd->nflags; i++) {
        const char *f = cmd->flags[i];
        if (strcasecmp(f, "\\Seen") == 0)
            flags |= MBOX_FLAG_SEEN;
        else if (strcasecmp(f, "\\Answered") == 0)
            flags |= MBOX_FLAG_ANSWERED;
        else if (strcasecmp(f, "\\Flagged") == 0)
            flags |= MBOX_FLAG_FLAGGED;
        else if (strcasecmp(f, "\\Deleted") == 0)
            flags |= MBOX_FLAG_DELETED;
        else if (strcasecmp(f, "\\Draft") == 0)
            flags |= MBOX_FLAG_DRAFT;
        else if (f[0] != '\\')
            keywords[nkw++] = f;
        /* \Recent cannot be stored (RFC 3501 2.3.2): ignored */
    }
    uint32_t *uids = xreallocarray(NULL, n ? n : 1, sizeof *uids);
    size_t nuids = 0;
    bool gone = false;
    for (size_t i = 0; i < n; i++) {
        uint32_t uid = imapd_view_uid(&ss->view, list[i]);
        if (!imapd_store_find(ss, uid))
            gone = true; /* expunged by another session, EXPUNGE not sent yet */
        else
            uids[nuids++] = uid; /* ascending, as the view is */
    }
    static const enum mailstore_store_mode modes[] = {[IMAP_STORE_REPLACE] = MAILSTORE_SET,
                                                      [IMAP_STORE_ADD] = MAILSTORE_ADD,
                                                      [IMAP_STORE_REMOVE] = MAILSTORE_REMOVE};
    const char *error = NULL;
    enum mailstore_result r = MAILSTORE_OK;
    uint32_t *modified = NULL;
    size_t nmodified = 0;
    ss->condstore |= cmd->has_unchangedsince; /* RFC 7162 3.1: a CONDSTORE command enables it */
    if (nuids && cmd->has_unchangedsince && cmd->unchangedsince == 0) {
        /* UNCHANGEDSINCE 0: every message has a MODSEQ above it; none is changed */
        modified = xreallocarray(NULL, nuids, sizeof *modified);
        memcpy(modified, uids, nuids * sizeof *modified);
        nmodified = nuids;
    } else if (nuids) {
        r = mailstore_store_if(&ss->store, uids, nuids, modes[cmd->store_mode], flags, keywords, nkw,
                               cmd->has_unchangedsince ? cmd->unchangedsince : 0, &modified, &nmodified, &error);
    }
    free(keywords);
    free(list);
    if (nmodified) {
        /* the ones left alone are not reported as stored, nor kept from the merge's news */
        size_t kept = 0;
        for (size_t i = 0, k = 0; i < nuids; i++) {
            while (k < nmodified && modified[k] < uids[i])
                k++;
            if (k < nmodified && modified[k] == uids[i])
                continue;
            uids[kept++] = uids[i];
        }
        nuids = kept;
    }
    if (r != MAILSTORE_OK) {
        free(modified);
        free(uids);
        if (r == MAILSTORE_ERROR && error && strstr(error, "keywords"))
            imapd_send(ss, "%s NO [LIMIT] Too many keywords in this mailbox.", cmd->tag);
        else
            imapd_store_error(ss, cmd->tag, r, error);
        return;
    }
    if (ss->store.nkeywords != ss->nkeywords_sent)
        imapd_send_flags(ss);
    /*
     * Other news first: the view moves to the newest generation unless an expunge the client
     * may not hear of yet holds it back (then the flags told are kept as told ahead).
     */
    struct buf b;
    buf_init(&b, 0);
    bool moved = imapd_view_merge(&ss->view, ss->store.gen, cmd->uid, &ss->store, uids, nuids, ss->condstore,
                                  ss->qresync, &b);
    for (size_t i = 0; i < nuids; i++) {
        const struct mailstore_msg *now = imapd_store_find(ss, uids[i]);
        size_t idx = mailstore_gen_index(ss->view.shown, uids[i]);
        if (!now || idx == (size_t)-1) {
            gone = true;
            continue;
        }
        if (!moved)
            imapd_view_told(&ss->view, now->uid, now->flags, now->keywords);
        if (!cmd->silent) {
            buf_printf(&b, "* %zu FETCH (", idx + 1);
            if (cmd->uid)
                buf_printf(&b, "UID %u ", now->uid);
            buf_append_str(&b, "FLAGS ");
            imapd_flag_list(&ss->store, imapd_flags_of(ss, now->uid, now->flags), now->keywords, &b);
            if (ss->condstore)
                buf_printf(&b, " MODSEQ (%llu)", now->modseq);
            buf_append_str(&b, ")\r\n");
        }
    }
    imapd_send_buf(ss, &b);
    buf_free(&b);
    free(uids);
    if (!imapd_sync(ss, cmd->uid, false)) {
        free(modified);
        return;
    }
    if (nmodified) {
        /* RFC 7162 3.1.3: the messages not stored, as UIDs for UID STORE */
        struct buf set;
        buf_init(&set, 0);
        for (size_t k = 0; k < nmodified; k++) {
            size_t idx = mailstore_gen_index(ss->view.shown, modified[k]);
            if (!cmd->uid && idx == (size_t)-1)
                continue;
            buf_printf(&set, "%s%zu", set.len ? "," : "", cmd->uid ? (size_t)modified[k] : idx + 1);
        }
        buf_append_char(&set, '\0');
        if (set.len > 1)
            imapd_send(ss, "%s OK [MODIFIED %s] Conditional STORE failed.", cmd->tag, set.data);
        else
            imapd_send(ss, "%s NO [EXPUNGEISSUED] Some of the messages no longer exist.", cmd->tag);
        buf_free(&set);
        free(modified);
        return;
    }
    free(modified);
    if (gone)
        imapd_send(ss, "%s NO [EXPUNGEISSUED] Some of the messages no longer exist.", cmd->tag);
    else
        imapd_send(ss, "%s OK Store completed.", cmd->tag);
}

/* ---- SEARCH ------------------------------------------------------------------------------- */

struct imapd_text {
    bool loaded, ok;
    struct buf wire;
    size_t hdr_len;
};

static bool imapd_contains(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return true;
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(hay + i, needle, n) == 0)
            return true;
    return false;
}

static bool imapd_text_load(struct imapd_session *ss, size_t idx, struct imapd_text *t)
{
    if (!t->loaded) {
        t->loaded = true;
        const char *error = NULL;
        const struct mailstore_msg *m = imapd_msg(ss, idx);
        t->ok = m && imapd_wire(ss, m, &t->wire, &error) == MAILSTORE_OK;
        struct mime_entity e;
        mime_entity_parse(t->wire.data ? t->wire.data : "", 0, t->wire.len, false, 0, &e);
        t->hdr_len = e.hdr_end;
    }
    return t->ok;
}

/* Days since the epoch of t in local time, as a UTC midnight (to compare with search dates). */
static time_t imapd_day(time_t t)
{
    struct tm tm;
    localtime_r(&t, &tm);
    struct tm day = {.tm_year = tm.tm_year, .tm_mon = tm.tm_mon, .tm_mday = tm.tm_mday};
    return timegm(&day);
}

static time_t imapd_sent_day(struct imapd_session *ss, size_t idx, struct imapd_text *t)
{
    const struct mailstore_msg *m = imapd_msg(ss, idx);
    time_t day = imapd_day(m ? m->internaldate : 0);
    struct buf date;
    buf_init(&date, 0);
    if (imapd_text_load(ss, idx, t) && mime_header_value(t->wire.data, 0, t->hdr_len, "Date", &date) && date.len) {
        buf_append_char(&date, '\0');
        GDateTime *dt = g_mime_utils_header_decode_date(date.data);
        if (dt) {
            struct tm tm = {.tm_year = g_date_time_get_year(dt) - 1900, .tm_mon = g_date_time_get_month(dt) - 1,
                            .tm_mday = g_date_time_get_day_of_month(dt)};
            day = timegm(&tm);
            g_date_time_unref(dt);
        }
    }
    buf_free(&date);
    return day;
}

static unsigned imapd_system_flag(const char *name)
{
    return strcasecmp(name, "\\Seen") == 0       ? MBOX_FLAG_SEEN
           : strcasecmp(name, "\\Answered") == 0 ? MBOX_FLAG_ANSWERED
           : strcasecmp(name, "\\Flagged") == 0  ? MBOX_FLAG_FLAGGED
           : strcasecmp(name, "\\Deleted") == 0  ? MBOX_FLAG_DELETED
           : strcasecmp(name, "\\Draft") == 0    ? MBOX_FLAG_DRAFT
                                                 : 0;
}

/* Evaluates the key at *k (and its children), moving *k past them. */
static bool imapd_search_eval(struct imapd_session *ss, const struct imap_cmd *cmd, size_t *k, size_t idx,
                              struct imapd_text *t)
{
    const struct imap_search_key *key = &cmd->keys[(*k)++];
    const struct mailstore_msg *m = imapd_msg(ss, idx);
    size_t nview = imapd_view_count(&ss->view);
    uint32_t maxuid = imapd_view_max_uid(&ss->view);
    unsigned flags; /* the newest: this session's own STORE may be ahead of the view */
    uint32_t keywords;
    if (m) {
        flags = m->flags;
        keywords = m->keywords;
    } else {
        imapd_view_flags(&ss->view, idx, &flags, &keywords);
    }
    switch (key->type) {
    case IMAP_SK_ALL:
        return true;
    case IMAP_SK_AND: {
        bool all = true;
        for (size_t c = 0; c < key->nchildren; c++)
            all &= imapd_search_eval(ss, cmd, k, idx, t);
        return all;
    }
    case IMAP_SK_NOT:
        return !imapd_search_eval(ss, cmd, k, idx, t);
    case IMAP_SK_OR: {
        bool a = imapd_search_eval(ss, cmd, k, idx, t);
        bool b = imapd_search_eval(ss, cmd, k, idx, t);
        return a || b;
    }
    case IMAP_SK_SEQSET:
        return imapd_in_set(&key->set, (uint32_t)(idx + 1), (uint32_t)nview);
    case IMAP_SK_UID:
        return imapd_in_set(&key->set, imapd_view_uid(&ss->view, idx), maxuid);
    case IMAP_SK_FLAG:
    case IMAP_SK_UNFLAG: {
        bool set;
        if (key->str[0] == '\\') {
            set = (flags & imapd_system_flag(key->str)) != 0;
        } else {
            int bit = mailstore_keyword_index(&ss->store, key->str);
            set = bit >= 0 && (keywords & (1u << bit));
        }
        return key->type == IMAP_SK_FLAG ? set : !set;
    }
    case IMAP_SK_NEW:
        return imapd_view_is_recent(&ss->view, imapd_view_uid(&ss->view, idx)) && !(flags & MBOX_FLAG_SEEN);
    case IMAP_SK_RECENT:
        return imapd_view_is_recent(&ss->view, imapd_view_uid(&ss->view, idx));
    case IMAP_SK_OLD:
        return !imapd_view_is_recent(&ss->view, imapd_view_uid(&ss->view, idx));
    case IMAP_SK_HEADER: {
        if (!imapd_text_load(ss, idx, t))
            return false;
        /* every field of that name, unfolded */
        const char *msg = t->wire.data;
        size_t pos = 0, nlen = strlen(key->str);
        while (pos < t->hdr_len) {
            const char *lf = memchr(msg + pos, '\n', t->hdr_len - pos);
            size_t end = lf ? (size_t)(lf - msg) + 1 : t->hdr_len;
            while (end < t->hdr_len && (msg[end] == ' ' || msg[end] == '\t')) {
                lf = memchr(msg + end, '\n', t->hdr_len - end);
                end = lf ? (size_t)(lf - msg) + 1 : t->hdr_len;
            }
            if (end - pos > nlen && msg[pos + nlen] == ':' && strncasecmp(msg + pos, key->str, nlen) == 0) {
                struct buf val;
                buf_init(&val, 0);
                for (size_t i = pos + nlen + 1; i < end; i++)
                    if (msg[i] != '\r' && msg[i] != '\n')
                        buf_append_char(&val, msg[i]);
                bool hit = imapd_contains(val.data ? val.data : "", val.len, key->str2);
                buf_free(&val);
                if (hit)
                    return true;
            }
            pos = end;
        }
        return false;
    }
    case IMAP_SK_BODY:
        return imapd_text_load(ss, idx, t) &&
               imapd_contains(t->wire.data + t->hdr_len, t->wire.len - t->hdr_len, key->str);
    case IMAP_SK_TEXT:
        return imapd_text_load(ss, idx, t) && imapd_contains(t->wire.data, t->wire.len, key->str);
    case IMAP_SK_BEFORE:
        return m && imapd_day(m->internaldate) < key->date;
    case IMAP_SK_ON:
        return m && imapd_day(m->internaldate) == key->date;
    case IMAP_SK_SINCE:
        return m && imapd_day(m->internaldate) >= key->date;
    case IMAP_SK_SENTBEFORE:
        return imapd_sent_day(ss, idx, t) < key->date;
    case IMAP_SK_SENTON:
        return imapd_sent_day(ss, idx, t) == key->date;
    case IMAP_SK_SENTSINCE:
        return imapd_sent_day(ss, idx, t) >= key->date;
    case IMAP_SK_LARGER:
        return m && m->size > key->number;
    case IMAP_SK_SMALLER:
        return m && m->size < key->number;
    case IMAP_SK_MODSEQ:
        return m && m->modseq >= key->modseq;
    }
    return false;
}

static void imapd_cmd_search(struct imapd_session *ss, struct imap_cmd *cmd)
{
    size_t nview = imapd_view_count(&ss->view);
    /* sequence numbers beyond the mailbox in a SEARCH key are an error, as in FETCH */
    for (size_t k = 0; k < cmd->nkeys; k++) {
        const struct imap_seqset *set = &cmd->keys[k].set;
        if (cmd->keys[k].type != IMAP_SK_SEQSET)
            continue;
        for (size_t i = 0; i < set->n; i++)
            if (set->ranges[i].lo != IMAP_SEQ_STAR && set->ranges[i].hi != IMAP_SEQ_STAR &&
                (set->ranges[i].lo > nview || set->ranges[i].hi > nview)) {
                imapd_bad(ss, cmd->tag, "Invalid message sequence number.");
                return;
            }
    }
    bool modseq_key = false;
    for (size_t k = 0; k < cmd->nkeys; k++)
        modseq_key |= cmd->keys[k].type == IMAP_SK_MODSEQ;
    ss->condstore |= modseq_key; /* RFC 7162 3.1: a CONDSTORE command enables it */
    unsigned long long highest = 0;
    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b, "* SEARCH");
    for (size_t i = 0; i < nview; i++) {
        const struct mailstore_msg *m = imapd_msg(ss, i);
        if (!m)
            continue;
        unsigned long long modseq = m->modseq;
        struct imapd_text t = {0};
        buf_init(&t.wire, 0);
        size_t k = 0;
        if (imapd_search_eval(ss, cmd, &k, i, &t)) {
            if (modseq > highest)
                highest = modseq;
            buf_append_char(&b, ' '); /* no printf: UNSEEN can list every message */
            imapd_put_num(&b, cmd->uid ? imapd_view_uid(&ss->view, i) : i + 1);
        }
        buf_free(&t.wire);
    }
    if (modseq_key && highest) /* RFC 7162 3.1.5: the highest MODSEQ of what was found */
        buf_printf(&b, " (MODSEQ %llu)", highest);
    buf_append_str(&b, "\r\n");
    imapd_send_buf(ss, &b);
    buf_free(&b);
    imapd_ok(ss, cmd->tag, cmd->uid, "Search completed.");
}

/* ---- FETCH -------------------------------------------------------------------------------- */

static bool imapd_att_needs_text(const struct imap_fetch_att *a)
{
    return a->kind != IMAP_FETCH_FLAGS && a->kind != IMAP_FETCH_UID && a->kind != IMAP_FETCH_INTERNALDATE &&
           a->kind != IMAP_FETCH_RFC822_SIZE && a->kind != IMAP_FETCH_MODSEQ;
}

static bool imapd_att_sets_seen(const struct imap_fetch_att *a)
{
    return a->kind == IMAP_FETCH_RFC822 || a->kind == IMAP_FETCH_RFC822_TEXT ||
           (a->kind == IMAP_FETCH_SECTION && !a->peek);
}

static void imapd_literal(struct buf *b, const char *data, size_t len)
{
    buf_printf(b, "{%zu}\r\n", len);
    buf_append(b, data, len);
}

/*
 * The FETCH line's buffer, kept from line to line (a FETCH 1:* formats 10,000 of them): no
 * allocation per line. One that a literal grew past IMAPD_FETCH_SCRATCH_KEEP is freed.
 */
#define IMAPD_FETCH_SCRATCH_KEEP 65536
static struct buf imapd_fetch_scratch;

static void imapd_fetch_scratch_take(struct buf *b)
{
    *b = imapd_fetch_scratch;
    memset(&imapd_fetch_scratch, 0, sizeof imapd_fetch_scratch);
    buf_reset(b);
}

static void imapd_fetch_scratch_give(struct buf *b)
{
    if (b->cap > IMAPD_FETCH_SCRATCH_KEEP || imapd_fetch_scratch.data) {
        buf_free(b);
        return;
    }
    imapd_fetch_scratch = *b;
    memset(b, 0, sizeof *b);
}

/* One message's FETCH response; false when the message is gone. */
static bool imapd_fetch_one(struct imapd_session *ss, const struct imap_cmd *cmd, size_t idx)
{
    const struct mailstore_msg *m = imapd_msg(ss, idx);
    /* Expunged by another session since this one was told (RFC 2180 4.1.1): its bytes stay
     * in the mbox until compaction, so the view's entry may still read them; when they are
     * gone, mailstore_read_msg says so and the answer is NO [EXPUNGEISSUED]. */
    bool expunged = m == NULL;
    if (expunged)
        m = &ss->view.shown->msgs[idx];
    uint32_t uid = m->uid;
    unsigned flags;
    uint32_t keywords;
    imapd_view_flags(&ss->view, idx, &flags, &keywords);
    /* copies: a \Seen set below moves the mail store to a new generation */
    unsigned long long size = m->size, modseq = m->modseq;
    time_t internaldate = m->internaldate;
    bool need_text = false, sets_seen = false, wants_flags = false, wants_modseq = false;
    for (size_t i = 0; i < cmd->natts; i++) {
        need_text |= imapd_att_needs_text(&cmd->atts[i]);
        sets_seen |= imapd_att_sets_seen(&cmd->atts[i]);
        wants_flags |= cmd->atts[i].kind == IMAP_FETCH_FLAGS;
        wants_modseq |= cmd->atts[i].kind == IMAP_FETCH_MODSEQ;
    }
    struct buf wire, b, part;
    buf_init(&wire, 0);
    imapd_fetch_scratch_take(&b);
    buf_init(&part, 0);
    const char *error = NULL;
    if (need_text) {
        enum mailstore_result r = imapd_wire(ss, m, &wire, &error);
        if (r != MAILSTORE_OK) {
            log_info("imapd %llx: user=%s uid=%u not fetched: %s", ss->id, ss->user, uid, error);
            buf_free(&wire);
            imapd_fetch_scratch_give(&b);
            return false;
        }
    }
    bool flags_changed = false;
    if (sets_seen && !expunged && !ss->readonly && !(flags & MBOX_FLAG_SEEN)) {
        if (mailstore_store(&ss->store, &uid, 1, MAILSTORE_ADD, MBOX_FLAG_SEEN, NULL, 0, &error) == MAILSTORE_OK) {
            const struct mailstore_msg *now = imapd_store_find(ss, uid);
            if (now) {
                flags = now->flags;
                keywords = now->keywords;
                modseq = now->modseq;
                imapd_view_told(&ss->view, uid, flags, keywords);
            }
            flags_changed = true;
        } else {
            log_info("imapd %llx: user=%s uid=%u \\Seen not set: %s", ss->id, ss->user, uid, error);
        }
    }
    const char *msg = wire.data ? wire.data : "";
    struct mime_entity top;
    if (need_text)
        mime_entity_parse(msg, 0, wire.len, false, 0, &top);
    buf_append_str(&b, "* ");
    imapd_put_num(&b, idx + 1);
    buf_append_str(&b, " FETCH (");
    size_t start = b.len;
    if (cmd->uid) {
        buf_append_str(&b, "UID ");
        imapd_put_num(&b, uid);
    }
    for (size_t i = 0; i < cmd->natts; i++) {
        const struct imap_fetch_att *a = &cmd->atts[i];
        if (a->kind == IMAP_FETCH_UID && cmd->uid)
            continue;
        if (b.len > start)
            buf_append_char(&b, ' ');
        char date[64];
        switch (a->kind) {
        case IMAP_FETCH_FLAGS:
            buf_append_str(&b, "FLAGS ");
            imapd_flag_list(&ss->store, imapd_flags_of(ss, uid, flags), keywords, &b);
            break;
        case IMAP_FETCH_UID:
            buf_append_str(&b, "UID ");
            imapd_put_num(&b, uid);
            break;
        case IMAP_FETCH_MODSEQ:
            buf_printf(&b, "MODSEQ (%llu)", modseq);
            break;
        case IMAP_FETCH_INTERNALDATE:
            imapd_internaldate(internaldate, date, sizeof date);
            buf_printf(&b, "INTERNALDATE \"%s\"", date);
            break;
        case IMAP_FETCH_RFC822_SIZE:
            buf_append_str(&b, "RFC822.SIZE ");
            imapd_put_num(&b, size);
            break;
        case IMAP_FETCH_ENVELOPE:
            buf_append_str(&b, "ENVELOPE ");
            imapd_envelope(&b, msg, top.hdr_start, top.hdr_end);
            break;
        case IMAP_FETCH_BODYSTRUCTURE:
        case IMAP_FETCH_BODY:
            buf_append_str(&b, a->kind == IMAP_FETCH_BODY ? "BODY " : "BODYSTRUCTURE ");
            imapd_bodystructure(&b, msg, &top, a->kind == IMAP_FETCH_BODYSTRUCTURE);
            break;
        case IMAP_FETCH_RFC822:
            buf_append_str(&b, "RFC822 ");
            imapd_literal(&b, msg, wire.len);
            break;
        case IMAP_FETCH_RFC822_HEADER:
            buf_append_str(&b, "RFC822.HEADER ");
            imapd_literal(&b, msg, top.hdr_end);
            break;
        case IMAP_FETCH_RFC822_TEXT:
            buf_append_str(&b, "RFC822.TEXT ");
            imapd_literal(&b, msg + top.body_start, top.body_end - top.body_start);
            break;
        case IMAP_FETCH_SECTION: {
            buf_reset(&part);
            imapd_section_name(a, &b);
            buf_append_char(&b, ' ');
            if (!imapd_section_bytes(msg, wire.len, a, &part)) {
                buf_append_str(&b, "NIL");
                break;
            }
            const char *data = part.data ? part.data : "";
            size_t len = part.len;
            if (a->partial) {
                size_t off = a->partial_offset < len ? a->partial_offset : len;
                data += off;
                len -= off;
                if (len > a->partial_length)
                    len = a->partial_length;
            }
            imapd_literal(&b, data, len);
            break;
        }
        }
    }
    if (flags_changed && !wants_flags) {
        buf_append_str(&b, b.len > start ? " FLAGS " : "FLAGS ");
        imapd_flag_list(&ss->store, imapd_flags_of(ss, uid, flags), keywords, &b);
    }
    /* RFC 7162 3.1.4.1: with CONDSTORE on, FLAGS come with MODSEQ; CHANGEDSINCE implies it */
    if (!wants_modseq && ((ss->condstore && (wants_flags || flags_changed)) || cmd->changedsince))
        buf_printf(&b, "%sMODSEQ (%llu)", b.len > start ? " " : "", modseq);
    buf_append_str(&b, ")\r\n");
    imapd_send_buf(ss, &b);
    imapd_fetch_scratch_give(&b);
    buf_free(&part);
    buf_free(&wire);
    ss->fetched++;
    return true;
}

static void imapd_fetch_run(struct imapd_session *ss)
{
    struct evbuffer *out = bufferevent_get_output(ss->bev);
    while (ss->fetch_pos < ss->fetch_n) {
        if (evbuffer_get_length(out) > IMAPD_OUTPUT_HIGH) {
            /* the write callback resumes; the client's next commands wait in its socket */
            bufferevent_disable(ss->bev, EV_READ);
            log_debug("imapd %llx: FETCH output paused until the client reads", ss->id);
            return;
        }
        if (!imapd_fetch_one(ss, &ss->fetch_cmd, ss->fetch_list[ss->fetch_pos]))
            ss->fetch_gone = true;
        ss->fetch_pos++;
    }
    ss->fetching = false;
    free(ss->fetch_list);
    ss->fetch_list = NULL;
    if (ss->state != IMAPD_S_CLOSING)
        bufferevent_enable(ss->bev, EV_READ);
    bool uid = ss->fetch_cmd.uid, gone = ss->fetch_gone;
    char tag[IMAP_TAG_MAX + 1];
    str_copy(tag, sizeof tag, ss->fetch_cmd.tag);
    imap_cmd_free(&ss->fetch_cmd);
    if (!imapd_sync(ss, uid, false))
        return;
    if (gone)
        imapd_send(ss, "%s NO [EXPUNGEISSUED] Some of the requested messages no longer exist.", tag);
    else
        imapd_send(ss, "%s OK Fetch completed.", tag);
}

/* Takes over cmd (the FETCH may outlive this call). */
static void imapd_cmd_fetch(struct imapd_session *ss, struct imap_cmd *cmd)
{
    if (cmd->vanished && !ss->qresync) {
        imapd_bad(ss, cmd->tag, "VANISHED needs ENABLE QRESYNC first."); /* RFC 7162 3.2.3 */
        return;
    }
    size_t *list, n;
    if (!imapd_resolve(ss, &cmd->set, cmd->uid, &list, &n)) {
        imapd_bad(ss, cmd->tag, "Invalid message sequence number.");
        return;
    }
    if (cmd->vanished) {
        /*
         * RFC 7162 3.2.6: the UIDs of the set (up to UIDNEXT-1) that the client's view lacks,
         * before the FETCHes; no MODSEQ is kept for an expunge, so all of them (RFC 7162 5.1).
         */
        const struct mailstore_gen *g = ss->view.shown;
        uint32_t maxuid = g && g->uidnext > 1 ? g->uidnext - 1 : 0;
        struct imapd_uidset set;
        /* '*' as UIDNEXT-1 here: "n:*" asks about everything from n on, gone or not */
        imapd_uidset_make(&set, &cmd->set, maxuid, 1, maxuid);
        struct buf b;
        buf_init(&b, 0);
        buf_append_str(&b, "* VANISHED (EARLIER) ");
        if (imapd_uidset_missing(&set, g, &b)) {
            buf_append_str(&b, "\r\n");
            imapd_send_buf(ss, &b);
        }
        buf_free(&b);
        imapd_uidset_free(&set);
    }
    bool modseq = cmd->changedsince > 0;
    for (size_t i = 0; i < cmd->natts; i++)
        modseq |= cmd->atts[i].kind == IMAP_FETCH_MODSEQ;
    ss->condstore |= modseq; /* RFC 7162 3.1: a CONDSTORE command enables it */
    if (cmd->changedsince) {
        /* only the messages changed since then (RFC 7162 3.1.4.1) */
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            const struct mailstore_msg *m = imapd_msg(ss, list[i]);
            if (m && m->modseq > cmd->changedsince)
                list[kept++] = list[i];
        }
        n = kept;
    }
    ss->fetch_cmd = *cmd;
    memset(cmd, 0, sizeof *cmd); /* now owned by the session */
    ss->fetch_list = list;
    ss->fetch_n = n;
    ss->fetch_pos = 0;
    ss->fetch_gone = false;
    ss->fetching = true;
    imapd_fetch_run(ss);
}

/* ---- the command table -------------------------------------------------------------------- */

static const struct imapd_command {
    enum imap_verb verb;
    unsigned states;
    void (*fn)(struct imapd_session *ss, struct imap_cmd *cmd);
} imapd_commands[] = {
    {IMAP_VERB_CAPABILITY, IMAPD_ANY, imapd_cmd_capability},
    {IMAP_VERB_NOOP, IMAPD_ANY, imapd_cmd_noop},
    {IMAP_VERB_LOGOUT, IMAPD_ANY, imapd_cmd_logout},
    {IMAP_VERB_ID, IMAPD_ANY, imapd_cmd_id},
    {IMAP_VERB_STARTTLS, IMAPD_IN_NOTAUTH, imapd_cmd_starttls},
    {IMAP_VERB_LOGIN, IMAPD_IN_NOTAUTH, imapd_cmd_login},
    {IMAP_VERB_AUTHENTICATE, IMAPD_IN_NOTAUTH, imapd_cmd_authenticate},
    {IMAP_VERB_SELECT, IMAPD_LOGGED_IN, imapd_cmd_select},
    {IMAP_VERB_EXAMINE, IMAPD_LOGGED_IN, imapd_cmd_select},
    {IMAP_VERB_CREATE, IMAPD_LOGGED_IN, imapd_cmd_folders},
    {IMAP_VERB_DELETE, IMAPD_LOGGED_IN, imapd_cmd_folders},
    {IMAP_VERB_RENAME, IMAPD_LOGGED_IN, imapd_cmd_folders},
    {IMAP_VERB_SUBSCRIBE, IMAPD_LOGGED_IN, imapd_cmd_folders},
    {IMAP_VERB_UNSUBSCRIBE, IMAPD_LOGGED_IN, imapd_cmd_folders},
    {IMAP_VERB_LIST, IMAPD_LOGGED_IN, imapd_cmd_folders},
    {IMAP_VERB_LSUB, IMAPD_LOGGED_IN, imapd_cmd_folders},
    {IMAP_VERB_STATUS, IMAPD_LOGGED_IN, imapd_cmd_status},
    {IMAP_VERB_APPEND, IMAPD_LOGGED_IN, imapd_cmd_append},
    {IMAP_VERB_NAMESPACE, IMAPD_LOGGED_IN, imapd_cmd_namespace},
    {IMAP_VERB_ENABLE, IMAPD_LOGGED_IN, imapd_cmd_enable},
    {IMAP_VERB_IDLE, IMAPD_LOGGED_IN, imapd_cmd_idle},
    {IMAP_VERB_CHECK, IMAPD_IN_SELECTED, imapd_cmd_check},
    {IMAP_VERB_CLOSE, IMAPD_IN_SELECTED, imapd_cmd_close},
    {IMAP_VERB_UNSELECT, IMAPD_IN_SELECTED, imapd_cmd_close},
    {IMAP_VERB_EXPUNGE, IMAPD_IN_SELECTED, imapd_cmd_expunge},
    {IMAP_VERB_SEARCH, IMAPD_IN_SELECTED, imapd_cmd_search},
    {IMAP_VERB_FETCH, IMAPD_IN_SELECTED, imapd_cmd_fetch},
    {IMAP_VERB_STORE, IMAPD_IN_SELECTED, imapd_cmd_store},
    {IMAP_VERB_COPY, IMAPD_IN_SELECTED, imapd_cmd_copy},
    {IMAP_VERB_MOVE, IMAPD_IN_SELECTED, imapd_cmd_copy},
};

static void imapd_command(struct imapd_session *ss, const char *text, size_t len)
{
    if (ss->auth_wait) {
        ss->auth_wait = false;
        if (len == 1 && text[0] == '*')
            imapd_bad(ss, ss->auth_tag, "Authentication aborted.");
        else
            imapd_auth_plain(ss, ss->auth_tag, text, len);
        return;
    }
    if (ss->idling) {
        ss->idling = false;
        evtimer_del(ss->idle_timer);
        imapd_idle_unwatch(ss);
        if (len == 4 && strncasecmp(text, "DONE", 4) == 0)
            imapd_ok(ss, ss->idle_tag, true, "Idle completed.");
        else
            imapd_bad(ss, ss->idle_tag, "Expected DONE.");
        return;
    }
    struct imap_cmd cmd;
    const char *error = NULL;
    if (!imap_cmd_parse(text, len, &cmd, &error)) {
        imapd_bad(ss, cmd.tag, error);
        imap_cmd_free(&cmd);
        return;
    }
    bool secret = cmd.verb == IMAP_VERB_LOGIN || cmd.verb == IMAP_VERB_AUTHENTICATE;
    for (size_t i = 0; i < sizeof imapd_commands / sizeof imapd_commands[0]; i++) {
        const struct imapd_command *c = &imapd_commands[i];
        if (c->verb != cmd.verb)
            continue;
        if (!(c->states & (1u << ss->state)))
            imapd_bad(ss, cmd.tag,
                      ss->state == IMAPD_S_NOTAUTH ? "Please log in first." : "Command not allowed in this state.");
        else
            c->fn(ss, &cmd);
        break;
    }
    if (secret) {
        if (cmd.arg2)
            OPENSSL_cleanse(cmd.arg2, cmd.arg2_len);
    }
    imap_cmd_free(&cmd);
}

/* ---- EXPUNGE: group commit ---------------------------------------------------------------- */

/*
 * An EXPUNGE waits (its input paused) until the loop has run the other sessions' commands
 * that arrived with it; then all EXPUNGEs of one mailbox share one rewrite (the copy and the
 * fsync of the whole mbox cost the same whatever is removed). Each is answered after the
 * rewrite that removed its messages, as it would be alone: EXPUNGE responses, then OK (or
 * the rewrite's NO). While one rewrite runs the loop is blocked, so under load the next
 * batch gathers every EXPUNGE that came meanwhile.
 */
static void imapd_expunge_run(evutil_socket_t fd, short what, void *arg);

static void imapd_expunge_enqueue(struct imapd_session *ss, const char *tag, uint32_t *uids, size_t n)
{
    struct imapd *p = ss->srv;
    if (!p->expunge_event)
        p->expunge_event = event_new(p->base, -1, 0, imapd_expunge_run, p);
    str_copy(ss->expunge_tag, sizeof ss->expunge_tag, tag);
    ss->expunge_uids = uids;
    ss->expunge_n = n;
    ss->expunging = true;
    bufferevent_disable(ss->bev, EV_READ);
    struct imapd_session **pp = &p->expunge_queue;
    while (*pp)
        pp = &(*pp)->expunge_next;
    ss->expunge_next = NULL;
    *pp = ss;
    if (!event_pending(p->expunge_event, EV_TIMEOUT, NULL))
        event_active(p->expunge_event, EV_TIMEOUT, 1);
}

static void imapd_expunge_unqueue(struct imapd_session *ss)
{
    for (struct imapd_session **pp = &ss->srv->expunge_queue; *pp; pp = &(*pp)->expunge_next)
        if (*pp == ss) {
            *pp = ss->expunge_next;
            break;
        }
    free(ss->expunge_uids);
    ss->expunge_uids = NULL;
    ss->expunging = false;
}

static void imapd_expunge_run(evutil_socket_t fd, short what, void *arg)
{
    struct imapd *p = arg;
    (void)fd;
    (void)what;
    while (p->expunge_queue) {
        /* one mailbox's group, in arrival order */
        struct imapd_session *group = NULL, **tail = &group, *first = p->expunge_queue;
        size_t total = 0, members = 0;
        for (struct imapd_session **pp = &p->expunge_queue; *pp;) {
            struct imapd_session *s = *pp;
            if (strcmp(s->store.mbox_path, first->store.mbox_path) != 0) {
                pp = &s->expunge_next;
                continue;
            }
            *pp = s->expunge_next;
            s->expunge_next = NULL;
            *tail = s;
            tail = &s->expunge_next;
            total += s->expunge_n;
            members++;
        }
        uint32_t *uids = xreallocarray(NULL, total ? total : 1, sizeof *uids);
        size_t n = 0;
        for (struct imapd_session *s = group; s; s = s->expunge_next) {
            memcpy(uids + n, s->expunge_uids, s->expunge_n * sizeof *uids);
            n += s->expunge_n;
        }
        const char *error = NULL;
        size_t removed = 0;
        enum mailstore_result r = mailstore_expunge(&first->store, uids, n, &removed, &error);
        free(uids);
        if (r == MAILSTORE_OK)
            log_info("imapd %llx: user=%s expunge removed=%zu sessions=%zu", first->id, first->user, removed, members);
        while (group) {
            struct imapd_session *ss = group;
            group = ss->expunge_next;
            free(ss->expunge_uids);
            ss->expunge_uids = NULL;
            ss->expunging = false;
            if (r != MAILSTORE_OK)
                imapd_store_error(ss, ss->expunge_tag, r, error);
            else if (imapd_sync(ss, true, false))
                imapd_expunge_ok(ss, ss->expunge_tag, removed > 0);
            if (ss->state != IMAPD_S_CLOSING)
                bufferevent_enable(ss->bev, EV_READ);
            imapd_process(ss); /* commands that came meanwhile */
            imapd_after_io(ss); /* may free ss */
        }
    }
}

/* ---- the event loop glue ------------------------------------------------------------------ */

static void imapd_process(struct imapd_session *ss)
{
    struct evbuffer *in = bufferevent_get_input(ss->bev);
    while (ss->state != IMAPD_S_CLOSING && !ss->fetching && !ss->delaying && !ss->expunging) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return;
        size_t take = avail < 65536 ? avail : 65536;
        const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)take);
        size_t used = 0;
        enum imap_read_result r = imap_reader_feed(&ss->reader, data, take, &used);
        evbuffer_drain(in, used);
        switch (r) {
        case IMAP_READ_MORE:
            break;
        case IMAP_READ_CONTINUE:
            imapd_send(ss, "+ OK");
            break;
        case IMAP_READ_ERROR:
            imapd_bad(ss, ss->reader.error_tag, ss->reader.error);
            break;
        case IMAP_READ_FATAL:
            log_info("imapd %llx: closing [%s]: %s", ss->id, ss->ip, ss->reader.error);
            imapd_send(ss, "* BYE %s", ss->reader.error);
            ss->state = IMAPD_S_CLOSING;
            return;
        case IMAP_READ_COMMAND: {
            bool was_tls = ss->tls;
            imapd_command(ss, ss->reader.cmd, ss->reader.cmd_len);
            OPENSSL_cleanse(ss->reader.cmd, ss->reader.cmd_len);
            if (!was_tls && ss->tls)
                return; /* STARTTLS replaced the stream; the old buffer is gone */
            break;
        }
        }
    }
}

static void imapd_session_free(struct imapd_session *ss)
{
    struct imapd *p = ss->srv;
    for (struct imapd_session **pp = &p->sessions; *pp; pp = &(*pp)->next)
        if (*pp == ss) {
            *pp = ss->next;
            break;
        }
    p->nsessions--;
    log_info("imapd %llx: disconnect from [%s]%s%s", ss->id, ss->ip, ss->user[0] ? " user=" : "", ss->user);
    imapd_idle_unwatch(ss);
    if (ss->expunging)
        imapd_expunge_unqueue(ss);
    imapd_close_mailbox(ss);
    if (ss->fetching) {
        free(ss->fetch_list);
        imap_cmd_free(&ss->fetch_cmd);
    }
    imap_reader_free(&ss->reader);
    if (ss->idle_timer)
        event_free(ss->idle_timer);
    if (ss->delay_timer)
        event_free(ss->delay_timer);
    if (ss->auth_req)
        auth_cancel(ss->auth_req);
    if (ss->close_timer)
        event_free(ss->close_timer);
    if (ss->bev)
        bufferevent_free(ss->bev);
    free(ss);
}

void imapd_session_free_all(struct imapd *p)
{
    while (p->sessions)
        imapd_session_free(p->sessions);
    if (p->expunge_event)
        event_free(p->expunge_event);
    p->expunge_event = NULL;
}

static void imapd_close_poll(evutil_socket_t fd, short what, void *arg);

/* Frees a closing session once its last reply has left (see pop3d's twin for the TLS case). */
static void imapd_close_when_sent(struct imapd_session *ss)
{
    bool poll;
    if (netconn_sent(ss->bev, &poll) || ss->close_polls >= IMAPD_CLOSE_POLLS) {
        imapd_session_free(ss);
        return;
    }
    if (!poll)
        return; /* the write callback comes back */
    if (!ss->close_timer)
        ss->close_timer = evtimer_new(ss->srv->base, imapd_close_poll, ss);
    ss->close_polls++;
    struct timeval soon = {0, (suseconds_t)IMAPD_CLOSE_POLL_MSEC * 1000};
    evtimer_add(ss->close_timer, &soon);
}

static void imapd_close_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    imapd_close_when_sent(arg);
}

static void imapd_after_io(struct imapd_session *ss)
{
    if (ss->state == IMAPD_S_CLOSING) {
        bufferevent_disable(ss->bev, EV_READ);
        if (!(ss->close_timer && evtimer_pending(ss->close_timer, NULL)))
            imapd_close_when_sent(ss);
    }
}

static void imapd_session_read(struct bufferevent *bev, void *arg)
{
    struct imapd_session *ss = arg;
    (void)bev;
    imapd_process(ss);
    imapd_after_io(ss);
}

static void imapd_session_write(struct bufferevent *bev, void *arg)
{
    struct imapd_session *ss = arg;
    (void)bev;
    if (ss->fetching && ss->state != IMAPD_S_CLOSING) {
        imapd_fetch_run(ss);
        if (!ss->fetching)
            imapd_process(ss); /* commands that came while the FETCH was paused */
    }
    imapd_after_io(ss);
}

static void imapd_session_event(struct bufferevent *bev, short what, void *arg)
{
    struct imapd_session *ss = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        netconn_log_tls_up("imapd", ss->id, ss->ip, ss->bev);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        log_info("imapd %llx: timeout from [%s]", ss->id, ss->ip);
        imapd_send(ss, "* BYE Disconnected for inactivity.");
        ss->state = IMAPD_S_CLOSING;
        bufferevent_disable(ss->bev, EV_READ);
        bufferevent_enable(ss->bev, EV_WRITE);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if ((what & BEV_EVENT_ERROR) && ss->tls)
            netconn_log_tls_error("imapd", ss->id, ss->ip, ss->bev);
        imapd_session_free(ss);
    }
}

void imapd_session_new(struct imapd *p, evutil_socket_t fd, const struct sockaddr *sa, bool implicit_tls)
{
    const struct zconf *c = p->conf;
    struct imapd_session *ss = xcalloc(1, sizeof *ss);
    ss->srv = p;
    ss->id = ++p->next_session_id;
    netaddr_from_sockaddr(sa, &ss->addr);
    netaddr_unmap_v4(&ss->addr);
    netaddr_format(&ss->addr, ss->ip, sizeof ss->ip);
    imap_reader_init(&ss->reader, IMAPD_LITERAL_MAX);
    ss->bev = netconn_accept(p->base, fd, sa, p->tls, implicit_tls);
    ss->tls = implicit_tls;
    if (!ss->bev) {
        imap_reader_free(&ss->reader);
        free(ss);
        return;
    }
    p->nsessions++;
    ss->next = p->sessions;
    p->sessions = ss;
    bufferevent_setcb(ss->bev, imapd_session_read, imapd_session_write, imapd_session_event, ss);
    bufferevent_set_timeouts(ss->bev, &(struct timeval){(time_t)c->imap_timeout, 0}, NULL);
    log_info("imapd %llx: connect from [%s]%s", ss->id, ss->ip, implicit_tls ? " (imaps)" : "");
    if (p->nsessions > c->imap_connection_limit) {
        log_info("imapd %llx: too many connections, refusing [%s]", ss->id, ss->ip);
        imapd_send(ss, "* BYE [UNAVAILABLE] Too many connections, try again later.");
        ss->state = IMAPD_S_CLOSING;
    } else {
        struct buf b;
        buf_init(&b, 0);
        imapd_capabilities(ss, &b);
        buf_append_char(&b, '\0');
        imapd_send(ss, "* OK [CAPABILITY %s] zolder IMAP ready.", b.data);
        buf_free(&b);
    }
    bufferevent_enable(ss->bev, ss->state == IMAPD_S_CLOSING ? EV_WRITE : EV_READ | EV_WRITE);
}
