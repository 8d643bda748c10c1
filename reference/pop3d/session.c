/*
 * session: one POP3 conversation.
 *
 * STANDARDS
 *   RFC 1939 3 (states AUTHORIZATION, TRANSACTION, UPDATE), 5 (STAT LIST RETR DELE NOOP
 *   RSET), 6 (QUIT and the UPDATE state), 7 (USER PASS TOP UIDL); RFC 2449 (CAPA, response
 *   codes [IN-USE] [AUTH] [SYS/TEMP] [SYS/PERM]); RFC 2595 4 (STLS); RFC 5034 (AUTH PLAIN,
 *   initial response, "*" cancels); RFC 4616 (PLAIN).
 *
 * DESCRIPTION
 *   The maildrop is the INBOX as the mail store listed it at login; messages delivered later
 *   appear at the next login. DELE only marks; the marked messages are removed in the UPDATE
 *   state (QUIT), by UID, so a message delivered meanwhile is never touched. A connection
 *   that ends without QUIT removes nothing. Mailbox locks are held only inside each
 *   mailstore call, never between commands.
 *
 * SECURITY
 *   Everything here is untrusted input. Limits: line length (POP3_AUTH_LINE_MAX for any
 *   line, the parser holds commands to POP3_LINE_MAX), POP3D_ERROR_MAX errors, pop3_timeout,
 *   pop3_connection_limit. Passwords are refused on a connection that is neither TLS nor
 *   from 127.0.0.1/::1 (as Dovecot's disable_plaintext_auth), wiped from memory after use,
 *   and the reason a login failed is logged, never told. Bytes pipelined after STLS are
 *   discarded before the handshake.
 */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <openssl/crypto.h>

#include "auth/auth.h"
#include "log.h"
#include "netconn/netconn.h"
#include "mailstore/mailstore.h"
#include "mbox_read.h"
#include "netaddr.h"
#include "pop3_cmd.h"
#include "str.h"
#include "xalloc.h"

#define POP3D_ERROR_MAX 10
#define POP3D_CLOSE_POLL_MSEC 20
#define POP3D_CLOSE_POLLS 250   /* 5 s for the last reply to leave after STLS */

enum pop3d_state {
    POP3D_S_AUTHORIZATION,
    POP3D_S_AUTH_PLAIN,     /* waiting for the PLAIN response line */
    POP3D_S_AUTH_WAIT,      /* password being checked (reference/auth); reading paused */
    POP3D_S_TRANSACTION,
    POP3D_S_CLOSING,
};

#define POP3D_IN_AUTH (1u << POP3D_S_AUTHORIZATION)
#define POP3D_IN_TRANS (1u << POP3D_S_TRANSACTION)

struct pop3d_session {
    struct pop3d *srv;
    struct pop3d_session *next;
    struct bufferevent *bev;
    unsigned long long id;
    struct netaddr addr;
    char ip[NETADDR_STRLEN];
    bool tls;
    enum pop3d_state state;
    unsigned errors;
    bool discard_line;
    char user[POP3_ARG_MAX + 1];
    bool user_given;
    bool user_locked;          /* holds pop3d's per-user session lock */
    struct auth_request *auth_req; /* the password check under way */
    struct mailstore store;
    bool store_open;
    unsigned char *deleted;    /* a bit per message of the login view (the store's generation) */
    unsigned long retrieved;
    struct event *close_timer; /* waits for the TLS filter's socket to drain before closing */
    unsigned close_polls;
};

static void pop3d_session_read(struct bufferevent *bev, void *arg);
static void pop3d_session_write(struct bufferevent *bev, void *arg);
static void pop3d_session_event(struct bufferevent *bev, short what, void *arg);

/* ---- replies ------------------------------------------------------------------------------ */

static void pop3d_reply(struct pop3d_session *ss, const char *fmt, ...) LOG_PRINTF(2, 3);
static void pop3d_reply(struct pop3d_session *ss, const char *fmt, ...)
{
    struct evbuffer *out = bufferevent_get_output(ss->bev);
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(out, fmt, ap);
    va_end(ap);
    evbuffer_add(out, "\r\n", 2);
}

/* A -ERR that counts against POP3D_ERROR_MAX. */
static void pop3d_error(struct pop3d_session *ss, const char *fmt, ...) LOG_PRINTF(2, 3);
static void pop3d_error(struct pop3d_session *ss, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    pop3d_reply(ss, "-ERR %s", text);
    if (++ss->errors >= POP3D_ERROR_MAX && ss->state != POP3D_S_CLOSING) {
        log_info("pop3d %llx: too many errors from [%s], disconnecting", ss->id, ss->ip);
        pop3d_reply(ss, "-ERR Too many errors, closing connection");
        ss->state = POP3D_S_CLOSING;
    }
}

static void pop3d_session_free(struct pop3d_session *ss)
{
    struct pop3d *p = ss->srv;
    for (struct pop3d_session **pp = &p->sessions; *pp; pp = &(*pp)->next)
        if (*pp == ss) {
            *pp = ss->next;
            break;
        }
    p->nsessions--;
    if (ss->auth_req)
        auth_cancel(ss->auth_req);
    if (ss->user_locked)
        pop3d_user_unlock(p, ss->user);
    if (ss->store_open)
        mailstore_close(&ss->store);
    log_info("pop3d %llx: disconnect from [%s]%s%s", ss->id, ss->ip, ss->user_locked ? " user=" : "",
             ss->user_locked ? ss->user : "");
    free(ss->deleted);
    if (ss->close_timer)
        event_free(ss->close_timer);
    if (ss->bev)
        bufferevent_free(ss->bev);
    free(ss);
}

void pop3d_session_free_all(struct pop3d *p)
{
    while (p->sessions)
        pop3d_session_free(p->sessions);
}

static bool pop3d_plaintext_ok(const struct pop3d_session *ss)
{
    return ss->tls || zconf_plaintext_auth_ok(ss->srv->conf, &ss->addr);
}

/* ---- AUTHORIZATION ------------------------------------------------------------------------ */

/* The rest of a login once the password was checked: the session lock and the mailbox. */
static void pop3d_login_checked(struct pop3d_session *ss, const char *user, bool ok)
{
    if (!ok) {
        log_info("pop3d %llx: login failed from [%s] user=%s", ss->id, ss->ip, user);
        pop3d_error(ss, "[AUTH] Authentication failed.");
        ss->user_given = false;
        return;
    }
    str_copy(ss->user, sizeof ss->user, user);
    if (!pop3d_user_lock(ss->srv, ss->user)) {
        log_info("pop3d %llx: login refused from [%s] user=%s: another POP3 session is open", ss->id,
                 ss->ip, ss->user);
        pop3d_error(ss, "[IN-USE] Mailbox is in use by another POP3 session.");
        ss->user_given = false;
        return;
    }
    ss->user_locked = true;
    const char *error = NULL;
    enum mailstore_result r = mailstore_open_inbox(&ss->store, ss->srv->conf->state_dir, ss->user,
                                                   strcmp(ss->srv->conf->mailbox_format, "maildir") == 0, &error);
    if (r != MAILSTORE_OK) {
        mailstore_close(&ss->store);
        pop3d_user_unlock(ss->srv, ss->user);
        ss->user_locked = false;
        ss->user_given = false;
        log_warnx("pop3d %llx: user=%s cannot open INBOX: %s (%s)", ss->id, ss->user, error,
                  mailstore_result_name(r));
        pop3d_error(ss, r == MAILSTORE_BUSY ? "[IN-USE] Mailbox is locked by another program, try again later."
                                            : "[SYS/TEMP] Cannot open the mailbox, try again later.");
        return;
    }
    ss->store_open = true;
    ss->deleted = xcalloc(ss->store.nmsgs / 8 + 1, 1);
    unsigned long long total = 0;
    for (size_t i = 0; i < ss->store.nmsgs; i++)
        total += ss->store.msgs[i].size;
    ss->state = POP3D_S_TRANSACTION;
    log_info("pop3d %llx: login user=%s from [%s]%s messages=%zu size=%llu", ss->id, ss->user, ss->ip,
             ss->tls ? " tls=yes" : "", ss->store.nmsgs, total);
    pop3d_reply(ss, "+OK Logged in.");
}

static void pop3d_auth_done(enum users_auth result, void *arg)
{
    struct pop3d_session *ss = arg;
    ss->auth_req = NULL;
    if (result != USERS_AUTH_OK)
        log_info("auth: user=%s result=%s", ss->user, users_auth_name(result));
    ss->state = POP3D_S_AUTHORIZATION;
    char user[sizeof ss->user];
    str_copy(user, sizeof user, ss->user);
    pop3d_login_checked(ss, user, result == USERS_AUTH_OK);
    /* what the client sent meanwhile is read now, after the reply */
    pop3d_session_read(ss->bev, ss);
}

static void pop3d_login(struct pop3d_session *ss, const char *user, const char *password)
{
    const struct smtpd_maps *m = ss->srv->maps;
    if (ss->srv->auth && m && m->auth_prepare && user[0]) {
        struct users_check chk;
        m->auth_prepare(m->ctx, user, &chk);
        if (user != ss->user)
            str_copy(ss->user, sizeof ss->user, user);
        ss->state = POP3D_S_AUTH_WAIT;
        ss->auth_req = auth_submit(ss->srv->auth, &chk, password, pop3d_auth_done, ss);
        OPENSSL_cleanse(&chk, sizeof chk);
        return;
    }
    pop3d_login_checked(ss, user,
                        m && m->authenticate && user[0] && m->authenticate(m->ctx, user, password));
}

static void pop3d_cmd_user(struct pop3d_session *ss, const struct pop3_cmd *cmd)
{
    if (!pop3d_plaintext_ok(ss)) {
        pop3d_error(ss, "[AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.");
        return;
    }
    str_copy(ss->user, sizeof ss->user, cmd->arg);
    ss->user_given = true;
    pop3d_reply(ss, "+OK");
}

static void pop3d_cmd_pass(struct pop3d_session *ss, const struct pop3_cmd *cmd)
{
    if (!ss->user_given) {
        pop3d_error(ss, "No username given.");
        return;
    }
    if (!pop3d_plaintext_ok(ss)) {
        pop3d_error(ss, "[AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.");
        return;
    }
    char user[POP3_ARG_MAX + 1];
    str_copy(user, sizeof user, ss->user);
    pop3d_login(ss, user, cmd->arg);
}

static void pop3d_auth_plain(struct pop3d_session *ss, const char *b64, size_t len)
{
    static char authz[POP3_SASL_FIELD_MAX + 1], authc[POP3_SASL_FIELD_MAX + 1],
        pass[POP3_SASL_FIELD_MAX + 1];
    if (!pop3_sasl_plain(b64, len, authz, authc, pass, sizeof authz)) {
        pop3d_error(ss, "[AUTH] Invalid PLAIN response.");
    } else if (authz[0] && strcmp(authz, authc) != 0) {
        log_info("pop3d %llx: login failed from [%s] user=%s: authorization identity %s refused", ss->id,
                 ss->ip, authc, authz);
        pop3d_error(ss, "[AUTH] Authentication failed.");
    } else {
        pop3d_login(ss, authc, pass);
    }
    OPENSSL_cleanse(pass, sizeof pass);
}

static void pop3d_cmd_auth(struct pop3d_session *ss, const struct pop3_cmd *cmd)
{
    if (!str_eq_nocase(cmd->arg, "PLAIN")) {
        pop3d_error(ss, "Unsupported authentication mechanism.");
        return;
    }
    if (!pop3d_plaintext_ok(ss)) {
        pop3d_error(ss, "[AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.");
        return;
    }
    if (cmd->has_initial && strcmp(cmd->initial, "=") != 0) {
        pop3d_auth_plain(ss, cmd->initial, strlen(cmd->initial));
        return;
    }
    ss->state = POP3D_S_AUTH_PLAIN;
    pop3d_reply(ss, "+ ");
}

static void pop3d_cmd_capa(struct pop3d_session *ss, const struct pop3_cmd *cmd)
{
    (void)cmd;
    pop3d_reply(ss, "+OK Capability list follows");
    pop3d_reply(ss, "CAPA");
    pop3d_reply(ss, "TOP");
    pop3d_reply(ss, "UIDL");
    pop3d_reply(ss, "RESP-CODES");
    pop3d_reply(ss, "AUTH-RESP-CODE");
    pop3d_reply(ss, "PIPELINING");
    if (ss->state == POP3D_S_AUTHORIZATION) {
        if (ss->srv->tls && !ss->tls)
            pop3d_reply(ss, "STLS");
        if (pop3d_plaintext_ok(ss)) {
            pop3d_reply(ss, "USER");
            pop3d_reply(ss, "SASL PLAIN");
        }
    }
    pop3d_reply(ss, "IMPLEMENTATION zolder");
    pop3d_reply(ss, ".");
}

static void pop3d_cmd_stls(struct pop3d_session *ss, const struct pop3_cmd *cmd)
{
    (void)cmd;
    if (!ss->srv->tls) {
        pop3d_error(ss, "STLS not available.");
        return;
    }
    if (ss->tls) {
        pop3d_error(ss, "TLS is already active.");
        return;
    }
    pop3d_reply(ss, "+OK Begin TLS negotiation now.");
    size_t dropped;
    struct bufferevent *tls = netconn_starttls(ss->srv->base, ss->bev, ss->srv->tls, &dropped);
    if (dropped)
        log_info("pop3d %llx: discarded %zu bytes pipelined after STLS from [%s]", ss->id, dropped, ss->ip);
    if (!tls) {
        pop3d_reply(ss, "-ERR [SYS/TEMP] TLS not available due to a local problem.");
        ss->state = POP3D_S_CLOSING;
        return;
    }
    ss->bev = tls;
    ss->tls = true;
    ss->user_given = false; /* forget what was said in clear text */
    bufferevent_setcb(ss->bev, pop3d_session_read, pop3d_session_write, pop3d_session_event, ss);
    bufferevent_set_timeouts(ss->bev, &(struct timeval){(time_t)ss->srv->conf->pop3_timeout, 0}, NULL);
    bufferevent_enable(ss->bev, EV_READ | EV_WRITE);
}

/* ---- TRANSACTION -------------------------------------------------------------------------- */

static bool pop3d_deleted(const struct pop3d_session *ss, size_t i)
{
    return (ss->deleted[i / 8] >> (i % 8)) & 1;
}

/* Message n of the login view, not deleted; NULL (and -ERR sent) otherwise. */
static const struct mailstore_msg *pop3d_msg(struct pop3d_session *ss, unsigned long n)
{
    if (n == 0 || n > ss->store.nmsgs) {
        pop3d_error(ss, "There is no message %lu.", n);
        return NULL;
    }
    if (pop3d_deleted(ss, n - 1)) {
        pop3d_error(ss, "Message %lu is deleted.", n);
        return NULL;
    }
    return &ss->store.msgs[n - 1];
}

static void pop3d_cmd_stat(struct pop3d_session *ss, const struct pop3_cmd *cmd)
{
    (void)cmd;
    unsigned long long count = 0, size = 0;
    for (size_t i = 0; i < ss->store.nmsgs; i++)
        if (!pop3d_deleted(ss, i)) {
            count++;
            size += ss->store.msgs[i].size;
        }
    pop3d_reply(ss, "+OK %llu %llu", count, size);
}

static void pop3d_uid_text(const struct pop3d_session *ss, const struct mailstore_msg *m, char *out,
                           size_t outsize)
{
    /* Dovecot's default form: UIDVALIDITY and UID, stable while the index lives. */
    snprintf(out, outsize, "%08x%08x", (unsigned)m->uid, (unsigned)ss->store.uidvalidity);
}

static void pop3d_cmd_list_uidl(struct pop3d_session *ss, const struct pop3_cmd *cmd)
{
    bool uidl = cmd->verb == POP3_VERB_UIDL;
    char uid[32];
    if (cmd->has_msg) {
        const struct mailstore_msg *m = pop3d_msg(ss, cmd->msg);
        if (!m)
            return;
        if (uidl) {
            pop3d_uid_text(ss, m, uid, sizeof uid);
            pop3d_reply(ss, "+OK %lu %s", cmd->msg, uid);
        } else {
            pop3d_reply(ss, "+OK %lu %llu", cmd->msg, m->size);
        }
        return;
    }
    pop3d_reply(ss, "+OK");
    for (size_t i = 0; i < ss->store.nmsgs; i++) {
        if (pop3d_deleted(ss, i))
            continue;
        if (uidl) {
            pop3d_uid_text(ss, &ss->store.msgs[i], uid, sizeof uid);
            pop3d_reply(ss, "%zu %s", i + 1, uid);
        } else {
            pop3d_reply(ss, "%zu %llu", i + 1, ss->store.msgs[i].size);
        }
    }
    pop3d_reply(ss, ".");
}

static void pop3d_cmd_retr_top(struct pop3d_session *ss, const struct pop3_cmd *cmd)
{
    const struct mailstore_msg *m = pop3d_msg(ss, cmd->msg);
    if (!m)
        return;
    struct buf raw, wire;
    buf_init(&raw, 0);
    buf_init(&wire, 0);
    const char *error = NULL;
    enum mailstore_result r = mailstore_read(&ss->store, cmd->msg - 1, &raw, &error);
    if (r == MAILSTORE_OK) {
        bool top = cmd->verb == POP3_VERB_TOP;
        mbox_export(raw.data ? raw.data : "", raw.len, MBOX_EXPORT_DOTSTUFF, top ? (long)cmd->lines : -1,
                    &wire);
        if (top)
            pop3d_reply(ss, "+OK");
        else
            pop3d_reply(ss, "+OK %llu octets", m->size);
        evbuffer_add(bufferevent_get_output(ss->bev), wire.data ? wire.data : "", wire.len);
        pop3d_reply(ss, ".");
        if (!top)
            ss->retrieved++;
    } else {
        log_warnx("pop3d %llx: user=%s message %lu uid=%u: %s", ss->id, ss->user, cmd->msg, m->uid, error);
        pop3d_error(ss, "%s", r == MAILSTORE_BUSY   ? "[IN-USE] Mailbox is locked by another program, try again later."
                              : r == MAILSTORE_GONE ? "Message was removed by another program."
                                                    : "[SYS/TEMP] Cannot read the message.");
    }
    buf_free(&raw);
    buf_free(&wire);
}

static void pop3d_cmd_dele(struct pop3d_session *ss, const struct pop3_cmd *cmd)
{
    if (!pop3d_msg(ss, cmd->msg))
        return;
    ss->deleted[(cmd->msg - 1) / 8] |= (unsigned char)(1u << ((cmd->msg - 1) % 8));
    pop3d_reply(ss, "+OK Marked to be deleted.");
}

static void pop3d_cmd_noop(struct pop3d_session *ss, const struct pop3_cmd *cmd)
{
    (void)cmd;
    pop3d_reply(ss, "+OK");
}

static void pop3d_cmd_rset(struct pop3d_session *ss, const struct pop3_cmd *cmd)
{
    (void)cmd;
    memset(ss->deleted, 0, ss->store.nmsgs / 8 + 1);
    pop3d_reply(ss, "+OK");
}

static void pop3d_cmd_quit(struct pop3d_session *ss, const struct pop3_cmd *cmd)
{
    (void)cmd;
    if (ss->state != POP3D_S_TRANSACTION) {
        pop3d_reply(ss, "+OK Logging out.");
        ss->state = POP3D_S_CLOSING;
        return;
    }
    /* UPDATE (RFC 1939 6): remove the marked messages, by UID. */
    uint32_t *uids = xreallocarray(NULL, ss->store.nmsgs ? ss->store.nmsgs : 1, sizeof *uids);
    size_t n = 0, removed = 0;
    for (size_t i = 0; i < ss->store.nmsgs; i++)
        if (pop3d_deleted(ss, i))
            uids[n++] = ss->store.msgs[i].uid;
    const char *error = NULL;
    enum mailstore_result r = mailstore_expunge(&ss->store, uids, n, &removed, &error);
    free(uids);
    if (r != MAILSTORE_OK) {
        log_warnx("pop3d %llx: logout user=%s retrieved=%lu deleted=%zu: not removed: %s", ss->id, ss->user,
                  ss->retrieved, n, error);
        pop3d_reply(ss, "-ERR [SYS/TEMP] Some deleted messages were not removed.");
    } else {
        log_info("pop3d %llx: logout user=%s retrieved=%lu deleted=%zu removed=%zu", ss->id, ss->user,
                 ss->retrieved, n, removed);
        pop3d_reply(ss, "+OK Logging out, %zu messages deleted.", removed);
    }
    ss->state = POP3D_S_CLOSING;
}

/* ---- the command table -------------------------------------------------------------------- */

static const struct pop3d_command {
    enum pop3_verb verb;
    unsigned states;
    void (*fn)(struct pop3d_session *ss, const struct pop3_cmd *cmd);
} pop3d_commands[] = {
    {POP3_VERB_CAPA, POP3D_IN_AUTH | POP3D_IN_TRANS, pop3d_cmd_capa},
    {POP3_VERB_STLS, POP3D_IN_AUTH, pop3d_cmd_stls},
    {POP3_VERB_USER, POP3D_IN_AUTH, pop3d_cmd_user},
    {POP3_VERB_PASS, POP3D_IN_AUTH, pop3d_cmd_pass},
    {POP3_VERB_AUTH, POP3D_IN_AUTH, pop3d_cmd_auth},
    {POP3_VERB_QUIT, POP3D_IN_AUTH | POP3D_IN_TRANS, pop3d_cmd_quit},
    {POP3_VERB_STAT, POP3D_IN_TRANS, pop3d_cmd_stat},
    {POP3_VERB_LIST, POP3D_IN_TRANS, pop3d_cmd_list_uidl},
    {POP3_VERB_UIDL, POP3D_IN_TRANS, pop3d_cmd_list_uidl},
    {POP3_VERB_RETR, POP3D_IN_TRANS, pop3d_cmd_retr_top},
    {POP3_VERB_TOP, POP3D_IN_TRANS, pop3d_cmd_retr_top},
    {POP3_VERB_DELE, POP3D_IN_TRANS, pop3d_cmd_dele},
    {POP3_VERB_NOOP, POP3D_IN_TRANS, pop3d_cmd_noop},
    {POP3_VERB_RSET, POP3D_IN_TRANS, pop3d_cmd_rset},
};

static void pop3d_command(struct pop3d_session *ss, const char *line, size_t len)
{
    static struct pop3_cmd cmd; /* large (AUTH initial response); the loop is single-threaded */
    const char *error = NULL;
    if (!pop3_cmd_parse(line, len, &cmd, &error)) {
        pop3d_error(ss, "%s", error);
        return;
    }
    for (size_t i = 0; i < sizeof pop3d_commands / sizeof pop3d_commands[0]; i++) {
        const struct pop3d_command *c = &pop3d_commands[i];
        if (c->verb != cmd.verb)
            continue;
        if (!(c->states & (1u << ss->state)))
            pop3d_error(ss, "%s is not allowed %s.", pop3_verb_name(cmd.verb),
                        ss->state == POP3D_S_TRANSACTION ? "after login" : "before login");
        else
            c->fn(ss, &cmd);
        break;
    }
    if (cmd.verb == POP3_VERB_PASS || cmd.verb == POP3_VERB_AUTH) {
        OPENSSL_cleanse(cmd.arg, sizeof cmd.arg);
        OPENSSL_cleanse(cmd.initial, sizeof cmd.initial);
    }
}

/* ---- the event loop glue ------------------------------------------------------------------ */

static void pop3d_read_lines(struct pop3d_session *ss, struct evbuffer *in)
{
    while (ss->state != POP3D_S_CLOSING && ss->state != POP3D_S_AUTH_WAIT) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return;
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
        if (eol.pos < 0) {
            if (avail > POP3_AUTH_LINE_MAX) {
                evbuffer_drain(in, avail);
                if (!ss->discard_line)
                    pop3d_error(ss, "Line too long.");
                ss->discard_line = true;
            }
            return;
        }
        size_t len = (size_t)eol.pos;
        char *line = xmalloc(len + 1);
        evbuffer_remove(in, line, len);
        evbuffer_drain(in, 1);
        line[len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (ss->discard_line) {
            ss->discard_line = false;
        } else if (len + 2 > POP3_AUTH_LINE_MAX) {
            pop3d_error(ss, "Line too long.");
        } else if (ss->state == POP3D_S_AUTH_PLAIN) {
            ss->state = POP3D_S_AUTHORIZATION;
            if (strcmp(line, "*") == 0)
                pop3d_error(ss, "Authentication aborted.");
            else
                pop3d_auth_plain(ss, line, len);
        } else {
            bool was_tls = ss->tls;
            pop3d_command(ss, line, len);
            if (!was_tls && ss->tls) {
                OPENSSL_cleanse(line, len);
                free(line);
                return; /* STLS replaced the stream; the old buffer is gone */
            }
        }
        OPENSSL_cleanse(line, len);
        free(line);
    }
}

static void pop3d_close_poll(evutil_socket_t fd, short what, void *arg);

/*
 * Frees a closing session once its last reply has left. After STLS the session's buffer is a
 * TLS filter whose bytes wait in the socket's buffer underneath: poll that one (bounded).
 */
static void pop3d_close_when_sent(struct pop3d_session *ss)
{
    bool poll;
    if (netconn_sent(ss->bev, &poll) || ss->close_polls >= POP3D_CLOSE_POLLS) {
        pop3d_session_free(ss);
        return;
    }
    if (!poll)
        return; /* the write callback comes back */
    if (!ss->close_timer)
        ss->close_timer = evtimer_new(ss->srv->base, pop3d_close_poll, ss);
    ss->close_polls++;
    struct timeval soon = {0, (suseconds_t)POP3D_CLOSE_POLL_MSEC * 1000};
    evtimer_add(ss->close_timer, &soon);
}

static void pop3d_close_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pop3d_close_when_sent(arg);
}

static void pop3d_session_read(struct bufferevent *bev, void *arg)
{
    struct pop3d_session *ss = arg;
    pop3d_read_lines(ss, bufferevent_get_input(bev));
    if (ss->state == POP3D_S_CLOSING) {
        bufferevent_disable(ss->bev, EV_READ);
        pop3d_close_when_sent(ss);
    }
}

static void pop3d_session_write(struct bufferevent *bev, void *arg)
{
    struct pop3d_session *ss = arg;
    (void)bev;
    if (ss->state == POP3D_S_CLOSING && !(ss->close_timer && evtimer_pending(ss->close_timer, NULL)))
        pop3d_close_when_sent(ss);
}

static void pop3d_session_event(struct bufferevent *bev, short what, void *arg)
{
    struct pop3d_session *ss = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        netconn_log_tls_up("pop3d", ss->id, ss->ip, ss->bev);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        log_info("pop3d %llx: timeout from [%s]", ss->id, ss->ip);
        pop3d_reply(ss, "-ERR Disconnected for inactivity.");
        ss->state = POP3D_S_CLOSING;
        bufferevent_disable(ss->bev, EV_READ);
        bufferevent_enable(ss->bev, EV_WRITE);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if ((what & BEV_EVENT_ERROR) && ss->tls)
            netconn_log_tls_error("pop3d", ss->id, ss->ip, ss->bev);
        pop3d_session_free(ss);
    }
}

void pop3d_session_new(struct pop3d *p, evutil_socket_t fd, const struct sockaddr *sa, bool implicit_tls)
{
    const struct zconf *c = p->conf;
    struct pop3d_session *ss = xcalloc(1, sizeof *ss);
    ss->srv = p;
    ss->id = ++p->next_session_id;
    netaddr_from_sockaddr(sa, &ss->addr);
    netaddr_unmap_v4(&ss->addr);
    netaddr_format(&ss->addr, ss->ip, sizeof ss->ip);
    ss->bev = netconn_accept(p->base, fd, sa, p->tls, implicit_tls);
    ss->tls = implicit_tls;
    if (!ss->bev) {
        free(ss);
        return;
    }
    p->nsessions++;
    ss->next = p->sessions;
    p->sessions = ss;
    bufferevent_setcb(ss->bev, pop3d_session_read, pop3d_session_write, pop3d_session_event, ss);
    bufferevent_set_timeouts(ss->bev, &(struct timeval){(time_t)c->pop3_timeout, 0}, NULL);
    log_info("pop3d %llx: connect from [%s]%s", ss->id, ss->ip, implicit_tls ? " (pop3s)" : "");
    if (p->nsessions > c->pop3_connection_limit) {
        log_info("pop3d %llx: too many connections, refusing [%s]", ss->id, ss->ip);
        pop3d_reply(ss, "-ERR [SYS/TEMP] Too many connections, try again later.");
        ss->state = POP3D_S_CLOSING;
    } else {
        pop3d_reply(ss, "+OK zolder POP3 ready.");
    }
    bufferevent_enable(ss->bev, ss->state == POP3D_S_CLOSING ? EV_WRITE : EV_READ | EV_WRITE);
}
