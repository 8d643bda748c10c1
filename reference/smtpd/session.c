/*
 * session: one SMTP conversation (RFC 5321 4.1, RFC 2920 PIPELINING, RFC 3030 CHUNKING,
 * RFC 3207 STARTTLS, RFC 4954 AUTH, RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 3461 DSN,
 * RFC 2034 ENHANCEDSTATUSCODES).
 *
 * SECURITY: everything here is untrusted input. Limits: line length, message size,
 * recipients, errors per session, timeouts (all config keys). A bare LF or bare CR inside
 * DATA ends the session with 521 (SMTP smuggling: only CRLF.CRLF ends the data, and no
 * bytes after a bare newline are ever read as SMTP). Bytes pipelined after STARTTLS are
 * discarded before the handshake (STARTTLS command injection, CVE-2011-0411 class).
 *
 * DNS: with `dns = canonify` a remote recipient's domain is looked up at RCPT (the relay's
 * resolver, through the smtpd hooks domain_check/domain_cancel): reading pauses (state
 * LOOKUP, as for the group commit) until the answer, so pipelined commands keep their order;
 * 550 5.1.2 for a domain that does not exist, 450 4.1.2 when that cannot be told now.
 */
#include "session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "addr.h"
#include "auth/auth.h"
#include "buf.h"
#include "hdr.h"
#include "log.h"
#include "maps.h"
#include "received.h"
#include "smtp_cmd.h"
#include "str.h"
#include "timefmt.h"
#include "xalloc.h"

#define SMTPD_AUTH_LINE_MAX 12288

enum smtpd_state {
    SMTPD_S_COMMAND,
    SMTPD_S_DATA,
    SMTPD_S_BDAT,
    SMTPD_S_AUTH_PLAIN,     /* waiting for the PLAIN response line */
    SMTPD_S_AUTH_LOGIN_USER,
    SMTPD_S_AUTH_LOGIN_PASS,
    SMTPD_S_COMMIT_WAIT,    /* message written; reading paused until the group commit */
    SMTPD_S_AUTH_WAIT,      /* password being checked (reference/auth); reading paused */
    SMTPD_S_LOOKUP,         /* dns = canonify: reading paused until the RCPT domain's lookup */
    SMTPD_S_CLOSING,
};

struct smtpd_pending {
    struct smtpd_session *ss;  /* NULL when the session ended before the commit */
    struct queue_writer w;
    char *sender;
    size_t size;
    size_t nrcpt;
};

struct smtpd_rcpt {
    char *addr;
    char *orcpt;
    char *notify;
};

struct smtpd_tx {
    bool active;               /* MAIL accepted */
    char *sender;
    char *ret;
    char *envid;
    char *body;
    struct smtpd_rcpt *rcpts;
    size_t nrcpts;
    struct buf msg;            /* the message as received (dot-unstuffed), bounded */
    bool oversize;
    bool long_line;
    bool bdat_used;
    size_t line_len;           /* bytes of the current DATA line so far */
    bool mid_line;             /* inside a DATA line that was consumed in pieces */
};

struct smtpd_session {
    struct smtpd *srv;
    struct bufferevent *bev;
    unsigned long long id;
    struct netaddr addr;
    char ip[NETADDR_STRLEN];
    char *client_name;         /* forward-confirmed name, or NULL */
    char helo[256];
    bool helo_seen;
    bool esmtp;
    bool submission;
    bool tls;
    char tls_info[160];
    bool authenticated;
    char auth_user[256];
    bool relay_client;         /* local, relay_from or access RELAY */
    unsigned errors;
    enum smtpd_state state;
    unsigned long long bdat_remaining;
    bool bdat_last;
    bool discard_line;         /* dropping the rest of an overlong command line */
    char *auth_login_user;
    struct auth_request *auth_req; /* the password check under way */
    char auth_pending_user[256];
    struct smtpd_pending *pending;
    struct smtpd_tx tx;
    /* dns = canonify: the RCPT waiting for its domain's lookup (state SMTPD_S_LOOKUP) */
    void *lookup;
    struct smtpd_rcpt lookup_rcpt;
};

static void smtpd_session_read(struct bufferevent *bev, void *arg);
static void smtpd_session_write(struct bufferevent *bev, void *arg);
static void smtpd_session_event(struct bufferevent *bev, short what, void *arg);

/* ---- replies ------------------------------------------------------------------------------ */

static void smtpd_reply(struct smtpd_session *ss, const char *fmt, ...) LOG_PRINTF(2, 3);
static void smtpd_reply(struct smtpd_session *ss, const char *fmt, ...)
{
    struct evbuffer *out = bufferevent_get_output(ss->bev);
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(out, fmt, ap);
    va_end(ap);
    evbuffer_add(out, "\r\n", 2);
}

/* A 4xx/5xx that counts against smtpd_error_limit (Postfix's error counting). */
static void smtpd_error(struct smtpd_session *ss, const char *fmt, ...) LOG_PRINTF(2, 3);
static void smtpd_error(struct smtpd_session *ss, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    smtpd_reply(ss, "%s", text);
    if (++ss->errors >= ss->srv->conf->smtpd_error_limit && ss->state != SMTPD_S_CLOSING) {
        log_info("smtpd %llx: too many errors from %s[%s], disconnecting", ss->id,
                 ss->client_name ? ss->client_name : "unknown", ss->ip);
        smtpd_reply(ss, "421 4.7.0 %s Error: too many errors", ss->srv->conf->hostname);
        ss->state = SMTPD_S_CLOSING;
    }
}

static void smtpd_close_after_reply(struct smtpd_session *ss) { ss->state = SMTPD_S_CLOSING; }

/* ---- transaction -------------------------------------------------------------------------- */

static void smtpd_tx_reset(struct smtpd_tx *tx)
{
    free(tx->sender);
    free(tx->ret);
    free(tx->envid);
    free(tx->body);
    for (size_t i = 0; i < tx->nrcpts; i++) {
        free(tx->rcpts[i].addr);
        free(tx->rcpts[i].orcpt);
        free(tx->rcpts[i].notify);
    }
    free(tx->rcpts);
    buf_free(&tx->msg);
    memset(tx, 0, sizeof *tx);
}

static void smtpd_session_free(struct smtpd_session *ss)
{
    struct smtpd *s = ss->srv;
    for (size_t i = 0; i < s->nclients; i++) {
        if (memcmp(&s->clients[i].addr, &ss->addr, sizeof ss->addr) == 0) {
            if (--s->clients[i].count == 0)
                s->clients[i] = s->clients[--s->nclients];
            break;
        }
    }
    s->nsessions--;
    if (ss->pending)
        ss->pending->ss = NULL; /* never promised: the commit drops it */
    if (ss->auth_req)
        auth_cancel(ss->auth_req);
    if (ss->lookup && s->domain_cancel)
        s->domain_cancel(ss->lookup);
    free(ss->lookup_rcpt.addr);
    free(ss->lookup_rcpt.orcpt);
    free(ss->lookup_rcpt.notify);
    log_info("smtpd %llx: disconnect from %s[%s]", ss->id,
             ss->client_name ? ss->client_name : "unknown", ss->ip);
    smtpd_tx_reset(&ss->tx);
    if (ss->bev)
        bufferevent_free(ss->bev);
    free(ss->client_name);
    free(ss->auth_login_user);
    free(ss);
}

/* ---- policy ------------------------------------------------------------------------------- */

static bool smtpd_is_own_literal(const struct smtpd_session *ss, const char *domain)
{
    /* user@[address] is local only when the address is one we listen on. */
    char inner[NETADDR_STRLEN + 8];
    size_t len = strlen(domain);
    if (len < 3 || len - 2 >= sizeof inner)
        return false;
    memcpy(inner, domain + 1, len - 2);
    inner[len - 2] = '\0';
    const char *text = str_starts_with_nocase(inner, "IPv6:") ? inner + 5 : inner;
    struct netaddr a;
    if (!netaddr_parse(text, &a))
        return false;
    const struct zconf *c = ss->srv->conf;
    for (size_t i = 0; i < c->nlisten + c->nsubmission; i++) {
        const struct zconf_listen *l = i < c->nlisten ? &c->listen[i] : &c->submission[i - c->nlisten];
        struct netaddr la;
        if (netaddr_from_sockaddr((const struct sockaddr *)&l->sa, &la) &&
            memcmp(&la, &a, sizeof a) == 0)
            return true;
    }
    return false;
}

static bool smtpd_outbound_allowed(const struct smtpd_session *ss, const char **who_r)
{
    const struct zconf *c = ss->srv->conf;
    if (!c->outbound_restricted)
        return true;
    char who[ADDR_LOCAL_MAX * 2 + 3] = "";
    if (ss->authenticated) {
        str_copy(who, sizeof who, ss->auth_user);
    } else if (ss->tx.sender && ss->tx.sender[0]) {
        const char *at = strrchr(ss->tx.sender, '@');
        size_t n = at ? (size_t)(at - ss->tx.sender) : strlen(ss->tx.sender);
        if (n < sizeof who) {
            memcpy(who, ss->tx.sender, n);
            who[n] = '\0';
        }
    }
    *who_r = ss->authenticated ? ss->auth_user : (ss->tx.sender ? ss->tx.sender : "");
    for (size_t i = 0; i < c->noutbound_allow; i++)
        if (str_eq_nocase(c->outbound_allow[i], who))
            return true;
    return false;
}

/* ---- commands ----------------------------------------------------------------------------- */

static void smtpd_cmd_helo(struct smtpd_session *ss, const struct smtp_cmd *cmd)
{
    const struct zconf *c = ss->srv->conf;
    str_copy(ss->helo, sizeof ss->helo, cmd->arg);
    if (!ss->helo[0])
        str_copy(ss->helo, sizeof ss->helo, "unknown");
    ss->helo_seen = true;
    ss->esmtp = cmd->verb == SMTP_VERB_EHLO;
    smtpd_tx_reset(&ss->tx);
    if (!ss->esmtp) {
        smtpd_reply(ss, "250 %s", c->hostname);
        return;
    }
    smtpd_reply(ss, "250-%s", c->hostname);
    smtpd_reply(ss, "250-PIPELINING");
    smtpd_reply(ss, "250-SIZE %lu", c->message_size_limit);
    if (c->vrfy)
        smtpd_reply(ss, "250-VRFY");
    smtpd_reply(ss, "250-ETRN");
    if (ss->srv->tls && !ss->tls)
        smtpd_reply(ss, "250-STARTTLS");
    if (ss->tls || zconf_plaintext_auth_ok(c, &ss->addr))
        smtpd_reply(ss, "250-AUTH PLAIN LOGIN");
    smtpd_reply(ss, "250-ENHANCEDSTATUSCODES");
    smtpd_reply(ss, "250-8BITMIME");
    smtpd_reply(ss, "250-DSN");
    smtpd_reply(ss, "250 CHUNKING");
}

static void smtpd_cmd_mail(struct smtpd_session *ss, const struct smtp_cmd *cmd)
{
    const struct zconf *c = ss->srv->conf;
    if (!ss->helo_seen) {
        smtpd_error(ss, "503 5.5.1 Error: send HELO/EHLO first");
        return;
    }
    if (ss->tx.active) {
        smtpd_error(ss, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    if (ss->submission && !ss->authenticated) {
        smtpd_error(ss, "530 5.7.0 Authentication required");
        return;
    }
    const char *body = "", *ret = "", *envid = "";
    for (int i = 0; i < cmd->nparams; i++) {
        const struct smtp_param *p = &cmd->params[i];
        if (!ss->esmtp) {
            smtpd_error(ss, "555 5.5.4 MAIL parameters need EHLO");
            return;
        }
        if (strcmp(p->key, "SIZE") == 0) {
            unsigned long size;
            if (!str_to_ulong(p->value, ~0UL, &size)) {
                smtpd_error(ss, "501 5.5.4 Bad SIZE parameter");
                return;
            }
            if (size > c->message_size_limit) {
                smtpd_error(ss, "552 5.3.4 Message size exceeds fixed limit");
                return;
            }
        } else if (strcmp(p->key, "BODY") == 0) {
            if (!str_eq_nocase(p->value, "7BIT") && !str_eq_nocase(p->value, "8BITMIME")) {
                smtpd_error(ss, "501 5.5.4 Bad BODY parameter (7BIT or 8BITMIME)");
                return;
            }
            body = p->value;
        } else if (strcmp(p->key, "RET") == 0) {
            if (!str_eq_nocase(p->value, "FULL") && !str_eq_nocase(p->value, "HDRS")) {
                smtpd_error(ss, "501 5.5.4 Bad RET parameter (FULL or HDRS)");
                return;
            }
            ret = p->value;
        } else if (strcmp(p->key, "ENVID") == 0) {
            envid = p->value;
        } else if (strcmp(p->key, "AUTH") == 0) {
            /* RFC 4954 5: accepted and not trusted. */
        } else {
            smtpd_error(ss, "555 5.5.4 Unsupported option: %s", p->key);
            return;
        }
    }
    struct buf sender;
    buf_init(&sender, 0);
    addr_format(&cmd->addr, &sender);
    if (ss->srv->maps && ss->srv->maps->access_sender && sender.len) {
        const char *text = NULL;
        if (ss->srv->maps->access_sender(ss->srv->maps->ctx, sender.data, &text) ==
            SMTPD_ACCESS_REJECT) {
            smtpd_error(ss, "%s", text ? text : "554 5.7.1 Sender address rejected: Access denied");
            log_info("smtpd %llx: reject: MAIL from %s[%s]: sender <%s> refused by access map",
                     ss->id, ss->client_name ? ss->client_name : "unknown", ss->ip, sender.data);
            buf_free(&sender);
            return;
        }
    }
    ss->tx.active = true;
    ss->tx.sender = buf_steal(&sender);
    ss->tx.body = xstrdup(body);
    ss->tx.ret = xstrdup(ret);
    char decoded[SMTP_PARAM_VALUE_MAX + 1] = "";
    if (envid[0] && !smtp_xtext_decode(envid, decoded, sizeof decoded)) {
        smtpd_tx_reset(&ss->tx);
        smtpd_error(ss, "501 5.5.4 Bad ENVID parameter");
        return;
    }
    ss->tx.envid = xstrdup(decoded);
    buf_free(&sender);
    smtpd_reply(ss, "250 2.1.0 Ok");
}

/* Adds the recipient to the transaction (taking r's strings) and answers 250. */
static void smtpd_rcpt_accept(struct smtpd_session *ss, struct smtpd_rcpt *r)
{
    ss->tx.rcpts = xreallocarray(ss->tx.rcpts, ss->tx.nrcpts + 1, sizeof *ss->tx.rcpts);
    ss->tx.rcpts[ss->tx.nrcpts++] = *r;
    memset(r, 0, sizeof *r);
    smtpd_reply(ss, "250 2.1.5 Ok");
}

/*
 * dns = canonify, the answer for the RCPT in ss->lookup_rcpt (as Postfix's
 * reject_unknown_recipient_domain): 550 5.1.2 when the domain does not exist, 450 4.1.2 when
 * that cannot be told now. Then the commands the client pipelined behind the RCPT are read.
 */
static void smtpd_rcpt_domain_done(void *arg, int verdict, const char *detail)
{
    struct smtpd_session *ss = arg;
    ss->lookup = NULL;
    struct smtpd_rcpt r = ss->lookup_rcpt;
    memset(&ss->lookup_rcpt, 0, sizeof ss->lookup_rcpt);
    if (ss->state != SMTPD_S_LOOKUP) { /* the session is closing (timeout) */
        free(r.addr);
        free(r.orcpt);
        free(r.notify);
        return;
    }
    ss->state = SMTPD_S_COMMAND;
    if (verdict == 2) {
        smtpd_rcpt_accept(ss, &r);
    } else {
        bool perm = verdict == 5;
        log_info("smtpd %llx: reject: RCPT from %s[%s]: %s <%s>: Recipient address rejected: domain %s (%s)",
                 ss->id, ss->client_name ? ss->client_name : "unknown", ss->ip, perm ? "550 5.1.2" : "450 4.1.2",
                 r.addr, perm ? "not found" : "lookup failed", detail);
        if (perm)
            smtpd_error(ss, "550 5.1.2 <%s>: Recipient address rejected: Domain not found", r.addr);
        else
            smtpd_reply(ss, "450 4.1.2 <%s>: Recipient address rejected: Domain not found (lookup failed, try again later)",
                        r.addr);
        free(r.addr);
        free(r.orcpt);
        free(r.notify);
    }
    smtpd_session_read(ss->bev, ss); /* may free ss */
}

/* Starts the domain check of a remote RCPT; reading pauses until its answer. */
static void smtpd_rcpt_check_domain(struct smtpd_session *ss, struct smtpd_rcpt *r, const char *domain)
{
    struct smtpd *s = ss->srv;
    ss->lookup_rcpt = *r;
    memset(r, 0, sizeof *r);
    ss->lookup = s->domain_check(s->domain_ctx, domain, smtpd_rcpt_domain_done, ss);
    if (ss->lookup) {
        ss->state = SMTPD_S_LOOKUP;
        return;
    }
    smtpd_error(ss, "550 5.1.2 <%s>: Recipient address rejected: Domain not found", ss->lookup_rcpt.addr);
    free(ss->lookup_rcpt.addr);
    free(ss->lookup_rcpt.orcpt);
    free(ss->lookup_rcpt.notify);
    memset(&ss->lookup_rcpt, 0, sizeof ss->lookup_rcpt);
}

static void smtpd_cmd_rcpt(struct smtpd_session *ss, const struct smtp_cmd *cmd)
{
    const struct zconf *c = ss->srv->conf;
    const struct smtpd_maps *m = ss->srv->maps;
    if (!ss->tx.active) {
        smtpd_error(ss, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (ss->tx.nrcpts >= c->recipient_limit) {
        smtpd_reply(ss, "452 4.5.3 Error: too many recipients");
        return;
    }
    struct mailaddr a = cmd->addr;
    struct buf shown;
    buf_init(&shown, 0);
    addr_format(&cmd->addr, &shown);

    /* Address tricks: refused outright, whatever the domain (relay control's first rule). */
    if (a.flags & ADDR_F_ROUTING_CHARS) {
        smtpd_error(ss, "550 5.7.1 <%s>: Recipient address rejected: routing characters (%% ! @) in the local part are not accepted",
                    shown.data);
        log_info("smtpd %llx: reject: RCPT from %s[%s]: <%s>: address trick refused", ss->id,
                 ss->client_name ? ss->client_name : "unknown", ss->ip, shown.data);
        buf_free(&shown);
        return;
    }
    bool local;
    if (a.flags & ADDR_F_UNQUALIFIED) {
        str_copy(a.domain, sizeof a.domain, c->hostname);
        local = true;
    } else if (a.flags & ADDR_F_LITERAL) {
        local = smtpd_is_own_literal(ss, a.domain);
        if (local)
            str_copy(a.domain, sizeof a.domain, c->hostname);
    } else {
        local = zconf_is_local_domain(c, a.domain);
    }
    buf_reset(&shown);
    addr_format(&a, &shown);

    const char *text = NULL;
    enum smtpd_access verdict = SMTPD_ACCESS_DUNNO;
    if (m && m->access_rcpt)
        verdict = m->access_rcpt(m->ctx, shown.data, &text);
    if (verdict == SMTPD_ACCESS_REJECT) {
        smtpd_error(ss, "%s", text ? text : "554 5.7.1 Recipient address rejected: Access denied");
        buf_free(&shown);
        return;
    }
    if (local) {
        bool exists = str_eq_nocase(a.local, "postmaster") ||
                      (m && m->local_exists && m->local_exists(m->ctx, a.local));
        if (!exists) {
            smtpd_error(ss, "550 5.1.1 <%s>: Recipient address rejected: User unknown in local recipient table",
                        shown.data);
            log_info("smtpd %llx: reject: RCPT from %s[%s]: <%s>: user unknown", ss->id,
                     ss->client_name ? ss->client_name : "unknown", ss->ip, shown.data);
            buf_free(&shown);
            return;
        }
    } else {
        bool may_relay = ss->relay_client || ss->authenticated || verdict == SMTPD_ACCESS_RELAY;
        if (!may_relay) {
            smtpd_error(ss, "554 5.7.1 <%s>: Relay access denied", shown.data);
            log_info("smtpd %llx: reject: RCPT from %s[%s]: 554 5.7.1 <%s>: Relay access denied; from=<%s> helo=<%s>",
                     ss->id, ss->client_name ? ss->client_name : "unknown", ss->ip, shown.data,
                     ss->tx.sender, ss->helo);
            buf_free(&shown);
            return;
        }
        const char *who = "";
        if (!smtpd_outbound_allowed(ss, &who)) {
            smtpd_error(ss, "550 5.7.1 <%s>: Recipient address rejected: %s may not send mail outside the LAN",
                        shown.data, who[0] ? who : "this sender");
            buf_free(&shown);
            return;
        }
    }
    const struct smtp_param *orcpt = smtp_cmd_param(cmd, "ORCPT");
    const struct smtp_param *notify = smtp_cmd_param(cmd, "NOTIFY");
    for (int i = 0; i < cmd->nparams; i++) {
        const char *k = cmd->params[i].key;
        if (strcmp(k, "ORCPT") != 0 && strcmp(k, "NOTIFY") != 0) {
            smtpd_error(ss, "555 5.5.4 Unsupported option: %s", k);
            buf_free(&shown);
            return;
        }
    }
    char orcpt_decoded[SMTP_PARAM_VALUE_MAX + 1] = "";
    if (orcpt && !smtp_xtext_decode(orcpt->value, orcpt_decoded, sizeof orcpt_decoded)) {
        smtpd_error(ss, "501 5.5.4 Bad ORCPT parameter");
        buf_free(&shown);
        return;
    }
    struct smtpd_rcpt r = {buf_steal(&shown), xstrdup(orcpt_decoded), xstrdup(notify ? notify->value : "")};
    if (!local && !(a.flags & ADDR_F_LITERAL) && ss->srv->domain_check && strcmp(c->dns, "canonify") == 0) {
        smtpd_rcpt_check_domain(ss, &r, a.domain);
        return;
    }
    smtpd_rcpt_accept(ss, &r);
}

static void smtpd_begin_data(struct smtpd_session *ss, bool bdat)
{
    if (!ss->tx.active) {
        smtpd_error(ss, "503 5.5.1 Error: need MAIL command");
    } else if (ss->tx.nrcpts == 0) {
        smtpd_error(ss, "554 5.5.1 Error: no valid recipients");
    } else if (!bdat && ss->tx.bdat_used) {
        smtpd_error(ss, "503 5.5.1 Error: DATA after BDAT");
    } else {
        buf_init(&ss->tx.msg, ss->srv->conf->message_size_limit);
        return;
    }
    if (bdat)
        ss->tx.oversize = true; /* the chunk is still read, and dropped */
}

/* Finishes the message: checks, headers, queue file, then the one promise (250). */
static void smtpd_finish_message(struct smtpd_session *ss);

static void smtpd_cmd_data(struct smtpd_session *ss)
{
    if (ss->tx.active && ss->tx.nrcpts > 0 && !ss->tx.bdat_used) {
        smtpd_begin_data(ss, false);
        ss->state = SMTPD_S_DATA;
        ss->tx.mid_line = false;
        ss->tx.line_len = 0;
        smtpd_reply(ss, "354 End data with <CR><LF>.<CR><LF>");
        bufferevent_set_timeouts(ss->bev, &(struct timeval){(time_t)ss->srv->conf->smtpd_data_timeout, 0}, NULL);
        return;
    }
    smtpd_begin_data(ss, false);
}

static void smtpd_cmd_bdat(struct smtpd_session *ss, const struct smtp_cmd *cmd)
{
    ss->bdat_remaining = cmd->bdat_size;
    ss->bdat_last = cmd->bdat_last;
    if (!ss->tx.bdat_used) {
        ss->tx.oversize = false;
        if (ss->tx.active && ss->tx.nrcpts > 0)
            buf_init(&ss->tx.msg, ss->srv->conf->message_size_limit);
        else
            smtpd_begin_data(ss, true); /* replies the error; chunk read and dropped */
        ss->tx.bdat_used = ss->tx.active && ss->tx.nrcpts > 0;
    }
    ss->state = SMTPD_S_BDAT;
}

static void smtpd_starttls(struct smtpd_session *ss)
{
    if (!ss->srv->tls) {
        smtpd_error(ss, "502 5.5.1 Error: command not implemented");
        return;
    }
    if (ss->tls) {
        smtpd_error(ss, "554 5.5.1 Error: TLS already active");
        return;
    }
    smtpd_reply(ss, "220 2.0.0 Ready to start TLS");
    /* Anything the client pipelined after STARTTLS was sent in clear text: drop it. */
    struct evbuffer *in = bufferevent_get_input(ss->bev);
    size_t dropped = evbuffer_get_length(in);
    if (dropped) {
        log_info("smtpd %llx: discarded %zu bytes pipelined after STARTTLS from [%s]", ss->id,
                 dropped, ss->ip);
        evbuffer_drain(in, dropped);
    }
    /*
     * The TLS stream takes over the socket itself (not a filter over the plain bufferevent),
     * so that its output buffer is the only one: a final reply (221 after QUIT) is then on the
     * wire once that buffer is empty, and the session may close. What the plain stream still
     * holds (this 220, replies to commands pipelined before STARTTLS) is written out first.
     */
    evutil_socket_t fd = bufferevent_getfd(ss->bev);
    struct evbuffer *out = bufferevent_get_output(ss->bev);
    evbuffer_unfreeze(out, 1); /* a bufferevent keeps its output's front frozen for itself */
    for (int waited = 0; evbuffer_get_length(out) > 0;) {
        if (evbuffer_write(out, fd) >= 0)
            continue;
        if ((errno != EAGAIN && errno != EWOULDBLOCK) || waited++ >= 100) {
            log_info("smtpd %llx: cannot flush replies before TLS to [%s]", ss->id, ss->ip);
            ss->state = SMTPD_S_CLOSING;
            return;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        poll(&pfd, 1, 10);
    }
    SSL *ssl = SSL_new(ss->srv->tls);
    struct bufferevent *tls = ssl ? bufferevent_openssl_socket_new(ss->srv->base, fd, ssl,
                                                                    BUFFEREVENT_SSL_ACCEPTING,
                                                                    BEV_OPT_CLOSE_ON_FREE)
                                  : NULL;
    if (!tls) {
        if (ssl)
            SSL_free(ssl);
        log_info("smtpd %llx: cannot start TLS with [%s]", ss->id, ss->ip);
        ss->state = SMTPD_S_CLOSING; /* the client already heard 220: it cannot go on in clear */
        return;
    }
    /* The plain stream lets go of the socket (freed without closing it). */
    bufferevent_setfd(ss->bev, -1);
    bufferevent_free(ss->bev);
    ss->bev = tls;
    ss->tls = true;
    /* RFC 3207 4.2: forget everything learned before the handshake. */
    ss->helo_seen = false;
    ss->esmtp = false;
    smtpd_tx_reset(&ss->tx);
    bufferevent_setcb(ss->bev, smtpd_session_read, smtpd_session_write, smtpd_session_event, ss);
    bufferevent_set_timeouts(ss->bev, &(struct timeval){(time_t)ss->srv->conf->smtpd_timeout, 0}, NULL);
    bufferevent_enable(ss->bev, EV_READ | EV_WRITE);
}

static bool smtpd_base64_decode(const char *in, struct buf *out)
{
    size_t len = strlen(in);
    if (len % 4 != 0 || len > SMTPD_AUTH_LINE_MAX)
        return false;
    unsigned char *tmp = xmalloc(len / 4 * 3 + 1);
    int n = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)len);
    if (n < 0) {
        free(tmp);
        return false;
    }
    if (len >= 1 && in[len - 1] == '=')
        n--;
    if (len >= 2 && in[len - 2] == '=')
        n--;
    buf_append(out, tmp, (size_t)n);
    free(tmp);
    return true;
}

static void smtpd_auth_verdict(struct smtpd_session *ss, const char *user, bool ok)
{
    ss->state = SMTPD_S_COMMAND;
    if (ok) {
        ss->authenticated = true;
        str_copy(ss->auth_user, sizeof ss->auth_user, user);
        log_info("smtpd %llx: %s[%s]: authenticated as %s", ss->id,
                 ss->client_name ? ss->client_name : "unknown", ss->ip, user);
        smtpd_reply(ss, "235 2.7.0 Authentication successful");
    } else {
        log_info("smtpd %llx: %s[%s]: authentication failed for %s", ss->id,
                 ss->client_name ? ss->client_name : "unknown", ss->ip, user);
        smtpd_error(ss, "535 5.7.8 Error: authentication failed");
    }
}

static void smtpd_session_read(struct bufferevent *bev, void *arg);

static void smtpd_auth_done(enum users_auth result, void *arg)
{
    struct smtpd_session *ss = arg;
    ss->auth_req = NULL;
    if (result != USERS_AUTH_OK)
        log_info("auth: user=%s result=%s", ss->auth_pending_user, users_auth_name(result));
    smtpd_auth_verdict(ss, ss->auth_pending_user, result == USERS_AUTH_OK);
    /* what the client sent meanwhile is read now, after the reply */
    smtpd_session_read(ss->bev, ss);
}

static void smtpd_auth_check(struct smtpd_session *ss, const char *user, const char *pass)
{
    const struct smtpd_maps *m = ss->srv->maps;
    if (ss->srv->auth && m && m->auth_prepare) {
        struct users_check chk;
        m->auth_prepare(m->ctx, user, &chk);
        str_copy(ss->auth_pending_user, sizeof ss->auth_pending_user, user);
        ss->state = SMTPD_S_AUTH_WAIT;
        ss->auth_req = auth_submit(ss->srv->auth, &chk, pass, smtpd_auth_done, ss);
        OPENSSL_cleanse(&chk, sizeof chk);
        return;
    }
    smtpd_auth_verdict(ss, user, m && m->authenticate && m->authenticate(m->ctx, user, pass));
}

static void smtpd_auth_plain(struct smtpd_session *ss, const char *b64)
{
    struct buf raw;
    buf_init(&raw, SMTPD_AUTH_LINE_MAX);
    if (!smtpd_base64_decode(b64, &raw)) {
        ss->state = SMTPD_S_COMMAND;
        smtpd_error(ss, "501 5.5.2 Error: invalid base64 in AUTH response");
        buf_free(&raw);
        return;
    }
    /* authzid NUL authcid NUL password (RFC 4616) */
    const char *p = raw.data, *end = raw.data + raw.len;
    const char *nul1 = memchr(p, '\0', raw.len);
    const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1)) : NULL;
    if (!nul1 || !nul2) {
        ss->state = SMTPD_S_COMMAND;
        smtpd_error(ss, "501 5.5.2 Error: malformed AUTH PLAIN response");
    } else if (nul1 != p && strcmp(p, nul1 + 1) != 0) {
        ss->state = SMTPD_S_COMMAND;
        smtpd_error(ss, "535 5.7.8 Error: authorization identity must equal the user");
    } else {
        char *pass = xstrndup(nul2 + 1, (size_t)(end - nul2 - 1));
        smtpd_auth_check(ss, nul1 + 1, pass);
        OPENSSL_cleanse(pass, strlen(pass));
        free(pass);
    }
    OPENSSL_cleanse(raw.data, raw.len);
    buf_free(&raw);
}

static void smtpd_cmd_auth(struct smtpd_session *ss, const struct smtp_cmd *cmd)
{
    if (!ss->tls && !zconf_plaintext_auth_ok(ss->srv->conf, &ss->addr)) {
        smtpd_error(ss, "538 5.7.11 Encryption required for requested authentication mechanism");
        return;
    }
    if (ss->authenticated) {
        smtpd_error(ss, "503 5.5.1 Error: already authenticated");
        return;
    }
    if (ss->tx.active) {
        smtpd_error(ss, "503 5.5.1 Error: MAIL transaction in progress");
        return;
    }
    char arg[SMTP_ARG_MAX + 1];
    str_copy(arg, sizeof arg, cmd->arg);
    char *f[3];
    int n = str_split(arg, " ", f, 3);
    if (n < 1 || n > 2) {
        smtpd_error(ss, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
        return;
    }
    if (str_eq_nocase(f[0], "PLAIN")) {
        if (n == 2 && strcmp(f[1], "=") != 0) {
            smtpd_auth_plain(ss, f[1]);
        } else {
            ss->state = SMTPD_S_AUTH_PLAIN;
            smtpd_reply(ss, "334 ");
        }
    } else if (str_eq_nocase(f[0], "LOGIN")) {
        if (n == 2) {
            struct buf u;
            buf_init(&u, 1024);
            if (!smtpd_base64_decode(f[1], &u)) {
                buf_free(&u);
                smtpd_error(ss, "501 5.5.2 Error: invalid base64 in AUTH response");
                return;
            }
            free(ss->auth_login_user);
            ss->auth_login_user = buf_steal(&u);
            ss->state = SMTPD_S_AUTH_LOGIN_PASS;
            smtpd_reply(ss, "334 UGFzc3dvcmQ6");
        } else {
            ss->state = SMTPD_S_AUTH_LOGIN_USER;
            smtpd_reply(ss, "334 VXNlcm5hbWU6");
        }
    } else {
        smtpd_error(ss, "504 5.5.4 Error: unsupported authentication mechanism");
    }
}

static void smtpd_auth_line(struct smtpd_session *ss, const char *line)
{
    if (strcmp(line, "*") == 0) {
        ss->state = SMTPD_S_COMMAND;
        smtpd_error(ss, "501 5.0.0 Authentication aborted");
        return;
    }
    if (ss->state == SMTPD_S_AUTH_PLAIN) {
        smtpd_auth_plain(ss, line);
        return;
    }
    struct buf v;
    buf_init(&v, 1024);
    if (!smtpd_base64_decode(line, &v)) {
        buf_free(&v);
        ss->state = SMTPD_S_COMMAND;
        smtpd_error(ss, "501 5.5.2 Error: invalid base64 in AUTH response");
        return;
    }
    if (ss->state == SMTPD_S_AUTH_LOGIN_USER) {
        free(ss->auth_login_user);
        ss->auth_login_user = buf_steal(&v);
        ss->state = SMTPD_S_AUTH_LOGIN_PASS;
        smtpd_reply(ss, "334 UGFzc3dvcmQ6");
        return;
    }
    smtpd_auth_check(ss, ss->auth_login_user ? ss->auth_login_user : "", v.data ? v.data : "");
    OPENSSL_cleanse(v.data, v.len);
    buf_free(&v);
}

static void smtpd_cmd_help(struct smtpd_session *ss)
{
    smtpd_reply(ss, "214-2.0.0 This is zolder %s", ZOLDER_VERSION);
    smtpd_reply(ss, "214-2.0.0 Topics:");
    smtpd_reply(ss, "214-2.0.0       HELO    EHLO    MAIL    RCPT    DATA");
    smtpd_reply(ss, "214-2.0.0       RSET    NOOP    QUIT    HELP    VRFY");
    smtpd_reply(ss, "214-2.0.0       EXPN    VERB    ETRN    DSN     AUTH");
    smtpd_reply(ss, "214-2.0.0       STARTTLS    BDAT");
    smtpd_reply(ss, "214-2.0.0 For local information send email to Postmaster at your site.");
    smtpd_reply(ss, "214 2.0.0 End of HELP info");
}

static void smtpd_command(struct smtpd_session *ss, const char *line, size_t len)
{
    struct smtp_cmd cmd;
    struct smtp_reply_err err;
    if (!smtp_cmd_parse(line, len, &cmd, &err)) {
        smtpd_error(ss, "%d %s %s", err.code, err.enhanced, err.text);
        return;
    }
    switch (cmd.verb) {
    case SMTP_VERB_HELO:
    case SMTP_VERB_EHLO:
        smtpd_cmd_helo(ss, &cmd);
        break;
    case SMTP_VERB_MAIL:
        smtpd_cmd_mail(ss, &cmd);
        break;
    case SMTP_VERB_RCPT:
        smtpd_cmd_rcpt(ss, &cmd);
        break;
    case SMTP_VERB_DATA:
        smtpd_cmd_data(ss);
        break;
    case SMTP_VERB_BDAT:
        smtpd_cmd_bdat(ss, &cmd);
        break;
    case SMTP_VERB_RSET:
        smtpd_tx_reset(&ss->tx);
        smtpd_reply(ss, "250 2.0.0 Ok");
        break;
    case SMTP_VERB_NOOP:
        smtpd_reply(ss, "250 2.0.0 Ok");
        break;
    case SMTP_VERB_QUIT:
        smtpd_reply(ss, "221 2.0.0 Bye");
        smtpd_close_after_reply(ss);
        break;
    case SMTP_VERB_HELP:
        smtpd_cmd_help(ss);
        break;
    case SMTP_VERB_VRFY:
        if (ss->srv->conf->vrfy)
            smtpd_reply(ss, "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
        else
            smtpd_error(ss, "502 5.5.1 VRFY command is disabled");
        break;
    case SMTP_VERB_EXPN:
        if (ss->srv->conf->expn)
            smtpd_reply(ss, "252 2.0.0 Cannot EXPN list");
        else
            smtpd_error(ss, "502 5.5.1 EXPN command is disabled");
        break;
    case SMTP_VERB_VERB:
        smtpd_error(ss, "502 5.5.1 VERB command is not implemented");
        break;
    case SMTP_VERB_ETRN:
        if (!ss->relay_client && !ss->authenticated) {
            smtpd_error(ss, "554 5.7.1 Error: ETRN is only for the LAN and authenticated users");
        } else if (!cmd.arg[0]) {
            smtpd_error(ss, "500 5.5.2 Syntax: ETRN domain");
        } else {
            log_info("smtpd %llx: ETRN %s from [%s]: queue run requested", ss->id, cmd.arg, ss->ip);
            if (ss->srv->on_etrn)
                ss->srv->on_etrn(cmd.arg, ss->srv->on_etrn_ctx);
            smtpd_reply(ss, "250 2.0.0 Queuing started");
        }
        break;
    case SMTP_VERB_STARTTLS:
        smtpd_starttls(ss);
        break;
    case SMTP_VERB_AUTH:
        smtpd_cmd_auth(ss, &cmd);
        break;
    case SMTP_VERB_UNKNOWN:
        smtpd_error(ss, "500 5.5.2 Error: command not recognized");
        break;
    }
}

/* ---- message data ------------------------------------------------------------------------- */

static void smtpd_data_append(struct smtpd_session *ss, const char *data, size_t len)
{
    if (ss->tx.oversize)
        return;
    if (!buf_append(&ss->tx.msg, data, len)) {
        ss->tx.oversize = true;
        buf_free(&ss->tx.msg);
    }
}

static void smtpd_smuggling_abort(struct smtpd_session *ss, const char *what)
{
    log_info("smtpd %llx: reject: bare %s in DATA from %s[%s]; message dropped, session closed",
             ss->id, what, ss->client_name ? ss->client_name : "unknown", ss->ip);
    smtpd_reply(ss, "521 5.5.2 %s Error: bare %s received", ss->srv->conf->hostname, what);
    smtpd_tx_reset(&ss->tx);
    smtpd_close_after_reply(ss);
}

/* One DATA line including its LF. Returns false when the session stops reading. */
static bool smtpd_data_line(struct smtpd_session *ss, const char *line, size_t len)
{
    bool line_start = !ss->tx.mid_line;
    if (line_start && len == 3 && memcmp(line, ".\r\n", 3) == 0) {
        ss->state = SMTPD_S_COMMAND;
        bufferevent_set_timeouts(ss->bev, &(struct timeval){(time_t)ss->srv->conf->smtpd_timeout, 0}, NULL);
        smtpd_finish_message(ss);
        return ss->state != SMTPD_S_CLOSING;
    }
    if (len < 2 || line[len - 2] != '\r') {
        smtpd_smuggling_abort(ss, "<LF>");
        return false;
    }
    if (memchr(line, '\r', len - 2)) {
        smtpd_smuggling_abort(ss, "<CR>");
        return false;
    }
    ss->tx.line_len += len;
    if (ss->tx.line_len > ss->srv->conf->line_length_limit)
        ss->tx.long_line = true;
    if (line_start && line[0] == '.') {
        line++;
        len--;
    }
    smtpd_data_append(ss, line, len);
    ss->tx.mid_line = false;
    ss->tx.line_len = 0;
    return true;
}

static void smtpd_read_data(struct smtpd_session *ss, struct evbuffer *in)
{
    size_t n = evbuffer_get_length(in);
    if (n == 0)
        return;
    const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
    size_t i = 0;
    while (i < n && ss->state == SMTPD_S_DATA) {
        const char *lf = memchr(p + i, '\n', n - i);
        if (!lf) {
            /* A long line: take all but a possible trailing CR, keep reading. */
            size_t take = n - i;
            if (p[n - 1] == '\r')
                take--;
            if (take == 0)
                break;
            if (memchr(p + i, '\r', take)) {
                smtpd_smuggling_abort(ss, "<CR>");
                i = n;
                break;
            }
            const char *chunk = p + i;
            if (!ss->tx.mid_line && chunk[0] == '.') {
                chunk++;
                take--;
                i++;
            }
            ss->tx.line_len += take;
            if (ss->tx.line_len > ss->srv->conf->line_length_limit)
                ss->tx.long_line = true;
            smtpd_data_append(ss, chunk, take);
            ss->tx.mid_line = true;
            i += take;
            break;
        }
        size_t len = (size_t)(lf - (p + i)) + 1;
        if (!smtpd_data_line(ss, p + i, len)) {
            i = n;
            break;
        }
        i += len;
    }
    evbuffer_drain(in, i);
}

static void smtpd_read_bdat(struct smtpd_session *ss, struct evbuffer *in)
{
    size_t n = evbuffer_get_length(in);
    size_t take = ss->bdat_remaining < n ? (size_t)ss->bdat_remaining : n;
    if (take) {
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)take);
        if (ss->tx.bdat_used)
            smtpd_data_append(ss, p, take);
        evbuffer_drain(in, take);
        ss->bdat_remaining -= take;
    }
    if (ss->bdat_remaining > 0)
        return;
    ss->state = SMTPD_S_COMMAND;
    if (!ss->tx.bdat_used)
        return; /* error already answered when BDAT was refused */
    if (ss->bdat_last) {
        smtpd_finish_message(ss);
    } else if (ss->tx.oversize) {
        smtpd_reply(ss, "552 5.3.4 Message size exceeds fixed limit");
        smtpd_tx_reset(&ss->tx);
    } else {
        smtpd_reply(ss, "250 2.0.0 %zu octets received", ss->tx.msg.len);
    }
}

/* Builds the stored form: our Received line, the (masqueraded) header, added fields, body. */
static void smtpd_compose(struct smtpd_session *ss, const char *qid, time_t now, struct buf *out)
{
    const struct zconf *c = ss->srv->conf;
    const char *msg = ss->tx.msg.data ? ss->tx.msg.data : "";
    size_t len = ss->tx.msg.len;
    size_t hdr_len = hdr_section_len(msg, len);
    char software[64];
    snprintf(software, sizeof software, "zolder %s", ZOLDER_VERSION);
    const char *with = ss->esmtp ? (ss->tls ? (ss->authenticated ? "ESMTPSA" : "ESMTPS")
                                            : (ss->authenticated ? "ESMTPA" : "ESMTP"))
                                 : "SMTP";
    char ipbuf[NETADDR_STRLEN + 8];
    snprintf(ipbuf, sizeof ipbuf, "%s%s", ss->addr.family == AF_INET6 ? "IPv6:" : "", ss->ip);
    struct received_info ri = {
        .helo = ss->helo,
        .rdns = ss->client_name,
        .ip = ipbuf,
        .by_host = c->hostname,
        .software = software,
        .with = with,
        .queue_id = qid,
        .for_rcpt = ss->tx.nrcpts == 1 ? ss->tx.rcpts[0].addr : NULL,
        .tls_info = ss->tls ? ss->tls_info : NULL,
        .when = now,
    };
    received_write(out, &ri);

    bool trusted = ss->relay_client || ss->authenticated || ss->submission;
    if (trusted && c->masquerade.nhosts)
        hdr_masquerade(msg, hdr_len, (const char *const *)c->masquerade.hosts,
                       c->masquerade.nhosts, c->masquerade.domain, out);
    else
        buf_append(out, msg, hdr_len);

    /* Added fields go before the empty line that ends the header section. */
    bool has_blank = hdr_len >= 2 && memcmp(msg + hdr_len - 2, "\r\n", 2) == 0 &&
                     (hdr_len == 2 || (hdr_len >= 4 && memcmp(msg + hdr_len - 4, "\r\n", 2) == 0));
    bool need_id = trusted && hdr_count(msg, hdr_len, "Message-ID") == 0;
    bool need_date = trusted && hdr_count(msg, hdr_len, "Date") == 0;
    if (need_id || need_date) {
        if (has_blank)
            out->len -= 2;
        else if (out->len >= 2 && memcmp(out->data + out->len - 2, "\r\n", 2) != 0 && out->len > 0)
            buf_append_str(out, "\r\n");
        if (need_date) {
            char date[TIMEFMT_RFC5322_LEN];
            timefmt_rfc5322(now, date, sizeof date);
            buf_printf(out, "Date: %s\r\n", date);
        }
        if (need_id)
            buf_printf(out, "Message-ID: <%s@%s>\r\n", qid, c->hostname);
        if (has_blank)
            buf_append_str(out, "\r\n");
    }
    buf_append(out, msg + hdr_len, len - hdr_len);
}

static char *smtpd_masquerade_sender(const struct smtpd_session *ss)
{
    const struct zconf *c = ss->srv->conf;
    const char *s = ss->tx.sender;
    const char *at = strrchr(s, '@');
    bool trusted = ss->relay_client || ss->authenticated || ss->submission;
    if (!at || !trusted || !c->masquerade.domain)
        return xstrdup(s);
    for (size_t i = 0; i < c->masquerade.nhosts; i++) {
        if (str_eq_nocase(at + 1, c->masquerade.hosts[i])) {
            size_t n = (size_t)(at - s) + 2 + strlen(c->masquerade.domain);
            char *out = xmalloc(n);
            snprintf(out, n, "%.*s@%s", (int)(at - s), s, c->masquerade.domain);
            return out;
        }
    }
    return xstrdup(s);
}

static void smtpd_finish_message(struct smtpd_session *ss)
{
    const struct zconf *c = ss->srv->conf;
    struct smtpd_tx *tx = &ss->tx;
    if (tx->oversize) {
        smtpd_reply(ss, "552 5.3.4 Message size exceeds fixed limit");
        smtpd_tx_reset(tx);
        return;
    }
    if (tx->long_line) {
        smtpd_error(ss, "500 5.5.0 Message line longer than %lu octets (RFC 5321 4.5.3.1.6)",
                    c->line_length_limit);
        smtpd_tx_reset(tx);
        return;
    }
    const char *msg = tx->msg.data ? tx->msg.data : "";
    size_t hdr_len = hdr_section_len(msg, tx->msg.len);
    if (hdr_count(msg, hdr_len, "Received") >= c->hop_count_limit) {
        log_info("smtpd %llx: reject: too many Received lines (mail loop) from [%s]", ss->id, ss->ip);
        smtpd_reply(ss, "554 5.4.6 Too many hops: mail forwarding loop");
        smtpd_tx_reset(tx);
        return;
    }

    struct queue_envelope env;
    memset(&env, 0, sizeof env);
    env.sender = smtpd_masquerade_sender(ss);
    env.client_ip = xstrdup(ss->ip);
    env.helo = xstrdup(ss->helo);
    env.rdns = xstrdup(ss->client_name ? ss->client_name : "");
    env.proto = xstrdup(ss->esmtp ? "ESMTP" : "SMTP");
    env.auth_user = xstrdup(ss->authenticated ? ss->auth_user : "");
    env.ret = xstrdup(tx->ret ? tx->ret : "");
    env.envid = xstrdup(tx->envid ? tx->envid : "");
    env.body = xstrdup(tx->body ? tx->body : "");
    env.arrival = time(NULL);
    for (size_t i = 0; i < tx->nrcpts; i++)
        queue_envelope_add_rcpt(&env, tx->rcpts[i].addr, tx->rcpts[i].orcpt,
                                tx->rcpts[i].notify, false);

    struct smtpd_pending *p = xcalloc(1, sizeof *p);
    struct buf stored;
    buf_init(&stored, 0);
    if (queue_writer_begin(ss->srv->queue, &env, &p->w) < 0) {
        log_warn("smtpd %llx: cannot create queue file", ss->id);
        smtpd_reply(ss, "451 4.3.0 Error: queue file write error");
        free(p);
        goto out;
    }
    smtpd_compose(ss, p->w.id, env.arrival, &stored);
    if (queue_writer_write(&p->w, stored.data, stored.len) < 0) {
        log_warn("%s: queue file write error", p->w.id);
        queue_writer_abort(&p->w);
        smtpd_reply(ss, "451 4.3.0 Error: queue file write error");
        free(p);
        goto out;
    }
    log_info("%s: client=%s[%s] helo=<%s>%s%s", p->w.id, ss->client_name ? ss->client_name : "unknown",
             ss->ip, ss->helo, ss->authenticated ? " sasl_username=" : "",
             ss->authenticated ? ss->auth_user : "");
    p->ss = ss;
    p->sender = xstrdup(env.sender);
    p->size = stored.len;
    p->nrcpt = env.nrcpts;
    ss->pending = p;
    ss->state = SMTPD_S_COMMIT_WAIT;
    struct smtpd *s = ss->srv;
    s->pending = xreallocarray(s->pending, s->npending + 1, sizeof(struct smtpd_pending *));
    s->pending[s->npending++] = p;
    if (s->npending == 1)
        event_active(s->commit_event, EV_TIMEOUT, 0);
out:
    buf_free(&stored);
    queue_envelope_free(&env);
    smtpd_tx_reset(tx);
}

/* Runs once per loop turn with messages waiting: commit them all, then answer each. */
void smtpd_commit(evutil_socket_t fd, short what, void *arg)
{
    struct smtpd *s = arg;
    (void)fd;
    (void)what;
    size_t n = s->npending;
    struct smtpd_pending **batch = s->pending;
    s->pending = NULL;
    s->npending = 0;
    if (n == 0)
        return;
    struct queue_writer **ws = xcalloc(n, sizeof(struct queue_writer *));
    bool *ok = xcalloc(n, sizeof *ok);
    size_t live = 0;
    for (size_t i = 0; i < n; i++) {
        if (batch[i]->ss) {
            ws[live++] = &batch[i]->w;
        } else {
            log_info("%s: client left before the commit; dropped, never promised", batch[i]->w.id);
            queue_writer_abort(&batch[i]->w);
        }
    }
    char **unlinks = NULL;
    size_t nunlinks = s->before_round ? s->before_round(s->round_ctx, &unlinks) : 0;
    bool synced = queue_commit_round(s->queue, ws, live, ok, unlinks, nunlinks);
    if (s->after_round)
        s->after_round(s->round_ctx, synced);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct smtpd_pending *p = batch[i];
        struct smtpd_session *ss = p->ss;
        if (ss) {
            bool committed = ok[k++];
            ss->pending = NULL;
            ss->state = SMTPD_S_COMMAND;
            if (committed) {
                log_info("%s: from=<%s>, size=%zu, nrcpt=%zu (queue active)", p->w.id, p->sender,
                         p->size, p->nrcpt);
                smtpd_reply(ss, "250 2.0.0 Ok: queued as %s", p->w.id);
                if (s->on_queued)
                    s->on_queued(p->w.id, s->on_queued_ctx);
            } else {
                log_warn("%s: queue file commit failed", p->w.id);
                smtpd_reply(ss, "451 4.3.0 Error: queue file write error");
            }
        }
        free(p->sender);
        free(p);
        batch[i] = NULL;
        /* Whatever the client pipelined after the data is read now, after the reply. */
        if (ss)
            smtpd_session_read(ss->bev, ss);
    }
    free(batch);
    free(ws);
    free(ok);
}

/* ---- I/O glue ----------------------------------------------------------------------------- */

static void smtpd_read_commands(struct smtpd_session *ss, struct evbuffer *in)
{
    const struct zconf *c = ss->srv->conf;
    while (ss->state != SMTPD_S_CLOSING) {
        if (ss->state == SMTPD_S_COMMIT_WAIT || ss->state == SMTPD_S_AUTH_WAIT ||
            ss->state == SMTPD_S_LOOKUP)
            return;
        if (ss->state == SMTPD_S_DATA) {
            smtpd_read_data(ss, in);
            if (ss->state == SMTPD_S_DATA)
                return;
            continue;
        }
        if (ss->state == SMTPD_S_BDAT) {
            smtpd_read_bdat(ss, in);
            if (ss->state == SMTPD_S_BDAT)
                return;
            continue;
        }
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return;
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
        size_t limit = ss->state == SMTPD_S_COMMAND ? c->line_length_limit : SMTPD_AUTH_LINE_MAX;
        if (eol.pos < 0) {
            if (avail > limit) {
                evbuffer_drain(in, avail);
                if (!ss->discard_line)
                    smtpd_error(ss, "500 5.5.0 Error: line too long");
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
        } else if (len + 2 > limit) {
            smtpd_error(ss, "500 5.5.0 Error: line too long");
        } else if (ss->state == SMTPD_S_COMMAND) {
            smtpd_command(ss, line, len);
        } else {
            smtpd_auth_line(ss, line);
        }
        if (len)
            OPENSSL_cleanse(line, len);
        free(line);
        if (ss->tls && ss->state == SMTPD_S_COMMAND && ss->bev != NULL &&
            bufferevent_get_input(ss->bev) != in)
            return; /* STARTTLS replaced the stream; the old buffer is gone */
    }
}

static void smtpd_session_read(struct bufferevent *bev, void *arg)
{
    struct smtpd_session *ss = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    smtpd_read_commands(ss, in);
    if (ss->state == SMTPD_S_CLOSING) {
        bufferevent_disable(ss->bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(ss->bev)) == 0)
            smtpd_session_free(ss);
    }
}

static void smtpd_session_write(struct bufferevent *bev, void *arg)
{
    struct smtpd_session *ss = arg;
    if (ss->state == SMTPD_S_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        smtpd_session_free(ss);
}

static void smtpd_session_event(struct bufferevent *bev, short what, void *arg)
{
    struct smtpd_session *ss = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        SSL *ssl = bufferevent_openssl_get_ssl(ss->bev);
        if (ssl)
            snprintf(ss->tls_info, sizeof ss->tls_info, "version=%s cipher=%s",
                     SSL_get_version(ssl), SSL_get_cipher_name(ssl));
        log_info("smtpd %llx: TLS established with [%s]: %s", ss->id, ss->ip, ss->tls_info);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        log_info("smtpd %llx: timeout after %s from [%s]",
                 ss->id, ss->state == SMTPD_S_DATA ? "DATA" : "command", ss->ip);
        smtpd_reply(ss, "421 4.4.2 %s Error: timeout exceeded", ss->srv->conf->hostname);
        ss->state = SMTPD_S_CLOSING;
        bufferevent_disable(ss->bev, EV_READ);
        bufferevent_enable(ss->bev, EV_WRITE);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (what & BEV_EVENT_ERROR && ss->tls) {
            unsigned long e = bufferevent_get_openssl_error(ss->bev);
            if (e)
                log_info("smtpd %llx: TLS error from [%s]: %s", ss->id, ss->ip,
                         ERR_reason_error_string(e));
        }
        if (ss->state == SMTPD_S_DATA || ss->state == SMTPD_S_BDAT)
            log_info("smtpd %llx: lost connection after DATA from [%s]; nothing queued", ss->id, ss->ip);
        smtpd_session_free(ss);
    }
}

void smtpd_session_new(struct smtpd *s, evutil_socket_t fd, const struct sockaddr *sa, bool submission)
{
    const struct zconf *c = s->conf;
    struct smtpd_session *ss = xcalloc(1, sizeof *ss);
    ss->srv = s;
    ss->id = ++s->next_session_id;
    ss->submission = submission;
    netaddr_from_sockaddr(sa, &ss->addr);
    netaddr_format(&ss->addr, ss->ip, sizeof ss->ip);
    str_copy(ss->helo, sizeof ss->helo, "unknown");
    evutil_make_socket_nonblocking(fd);
    /* Replies of a turn leave in one write already; Nagle would hold a commit's 250 back
     * until the client acknowledged the previous replies (a delayed ACK, up to 40 ms) when
     * the client pipelines and sends nothing in between (BDAT, RFC 3030). */
    int nodelay = 1;
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
    ss->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!ss->bev) {
        evutil_closesocket(fd);
        free(ss);
        return;
    }
    s->nsessions++;
    size_t ci;
    for (ci = 0; ci < s->nclients; ci++)
        if (memcmp(&s->clients[ci].addr, &ss->addr, sizeof ss->addr) == 0)
            break;
    if (ci == s->nclients) {
        s->clients = xreallocarray(s->clients, s->nclients + 1, sizeof *s->clients);
        s->clients[ci].addr = ss->addr;
        s->clients[ci].count = 0;
        s->nclients++;
    }
    s->clients[ci].count++;
    bufferevent_setcb(ss->bev, smtpd_session_read, smtpd_session_write, smtpd_session_event, ss);
    bufferevent_set_timeouts(ss->bev, &(struct timeval){(time_t)c->smtpd_timeout, 0}, NULL);

    const struct smtpd_maps *m = s->maps;
    if (netaddr_is_local(&ss->addr))
        ss->client_name = xstrdup("localhost");
    else if (m && m->client_name) {
        const char *name = m->client_name(m->ctx, &ss->addr);
        if (name)
            ss->client_name = xstrdup(name);
    }
    const char *shown = ss->client_name ? ss->client_name : "unknown";
    log_info("smtpd %llx: connect from %s[%s]%s", ss->id, shown, ss->ip,
             submission ? " (submission)" : "");

    ss->relay_client = netaddr_is_local(&ss->addr);
    for (size_t i = 0; i < c->relay_from.n && !ss->relay_client; i++)
        if (netmask_match(&c->relay_from.net[i], &ss->addr))
            ss->relay_client = true;

    const char *text = NULL;
    if (m && m->client_allowed && !m->client_allowed(m->ctx, &ss->addr, ss->client_name)) {
        log_info("smtpd %llx: refused connect from %s[%s] by hosts.allow/hosts.deny", ss->id, shown, ss->ip);
        smtpd_reply(ss, "554 5.7.1 %s Access denied by host rules", c->hostname);
        ss->state = SMTPD_S_CLOSING;
    } else if (m && m->access_client) {
        enum smtpd_access v = m->access_client(m->ctx, &ss->addr, &text);
        if (v == SMTPD_ACCESS_REJECT) {
            log_info("smtpd %llx: reject: connect from %s[%s] by access map", ss->id, shown, ss->ip);
            smtpd_reply(ss, "%s", text ? text : "554 5.7.1 Access denied");
            ss->state = SMTPD_S_CLOSING;
        } else if (v == SMTPD_ACCESS_RELAY) {
            ss->relay_client = true;
        }
    }
    if (ss->state != SMTPD_S_CLOSING) {
        if (s->nsessions > c->smtpd_connection_limit) {
            smtpd_reply(ss, "421 4.7.0 %s Error: too many connections", c->hostname);
            ss->state = SMTPD_S_CLOSING;
        } else if (s->clients[ci].count > c->smtpd_client_connection_limit) {
            log_info("smtpd %llx: too many connections from [%s]", ss->id, ss->ip);
            smtpd_reply(ss, "421 4.7.0 %s Error: too many connections from %s", c->hostname, ss->ip);
            ss->state = SMTPD_S_CLOSING;
        } else {
            smtpd_reply(ss, "220 %s ESMTP zolder", c->hostname);
        }
    }
    bufferevent_enable(ss->bev, ss->state == SMTPD_S_CLOSING ? EV_WRITE : EV_READ | EV_WRITE);
}
