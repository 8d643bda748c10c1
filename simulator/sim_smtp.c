/* sim_smtp: the strict, pure SMTP server engine of ispsim (see sim_smtp.h). */
#include "sim_smtp.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sim_b64.h"
#include "str.h"

enum {
    SIM_DATA_BARE_LF = 1 << 0,
    SIM_DATA_BARE_CR = 1 << 1,
    SIM_DATA_LONG = 1 << 2,
    SIM_DATA_BAD_DOT = 1 << 3,
    SIM_DATA_8BIT = 1 << 4,
    SIM_DATA_NUL = 1 << 5,
    SIM_DATA_TOO_BIG = 1 << 6
};

static const char *const sim_smtp_stage_names[] = {"greeting", "helo", "mail", "rcpt", "data", "dot"};

const char *sim_smtp_stage_name(enum sim_smtp_stage stage)
{
    return sim_smtp_stage_names[stage];
}

bool sim_smtp_stage_parse(const char *name, enum sim_smtp_stage *stage_r)
{
    for (size_t i = 0; i < sizeof sim_smtp_stage_names / sizeof sim_smtp_stage_names[0]; i++)
        if (strcmp(name, sim_smtp_stage_names[i]) == 0) {
            *stage_r = (enum sim_smtp_stage)i;
            return true;
        }
    return false;
}

/* --- the command parser ------------------------------------------------------------------ */

static void sim_smtp_cmd_error(struct sim_smtp_cmd *cmd, const char *text)
{
    str_copy(cmd->error, sizeof cmd->error, text);
}

static bool sim_smtp_domain_ok(const char *d, size_t len)
{
    if (len == 0 || len > 255)
        return false;
    if (d[0] == '[')
        return len > 2 && d[len - 1] == ']';
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char c = d[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_') {
            label++;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* Parses "<path>" at p (len bytes). Returns bytes used, or 0 on a syntax error. */
static size_t sim_smtp_path(const char *p, size_t len, bool allow_empty, bool allow_postmaster,
                            char *out)
{
    if (len < 2 || p[0] != '<')
        return 0;
    size_t i = 1;
    /* A source route "@a,@b:" must be accepted and ignored (RFC 5321 4.1.2, C.). */
    if (p[i] == '@') {
        const char *colon = memchr(p + i, ':', len - i);
        if (!colon)
            return 0;
        i = (size_t)(colon - p) + 1;
    }
    size_t start = i;
    bool quoted = false;
    for (; i < len; i++) {
        char c = p[i];
        if (quoted) {
            if (c == '\\' && i + 1 < len)
                i++;
            else if (c == '"')
                quoted = false;
            continue;
        }
        if (c == '"')
            quoted = true;
        else if (c == '>')
            break;
        else if (c == ' ' || c == '<' || (unsigned char)c < 0x21)
            return 0;
    }
    if (i >= len || quoted)
        return 0;
    size_t plen = i - start;
    if (plen >= SIM_SMTP_PATH_MAX)
        return 0;
    memcpy(out, p + start, plen);
    out[plen] = '\0';
    if (plen == 0)
        return allow_empty ? i + 1 : 0;
    const char *at = strrchr(out, '@');
    if (!at)
        return allow_postmaster && strcasecmp(out, "postmaster") == 0 ? i + 1 : 0;
    if (at == out || at - out > 64 || !sim_smtp_domain_ok(at + 1, strlen(at + 1)))
        return 0;
    return i + 1;
}

static bool sim_smtp_no_arg(struct sim_smtp_cmd *cmd, const char *syntax)
{
    if (cmd->arg[0]) {
        sim_smtp_cmd_error(cmd, syntax);
        return false;
    }
    return true;
}

static void sim_smtp_parse_params(struct sim_smtp_cmd *cmd, char *params, bool esmtp)
{
    char *fields[16];
    int n = str_split(params, " ", fields, 16);
    if (n < 0) {
        sim_smtp_cmd_error(cmd, "555 5.5.4 Too many parameters");
        return;
    }
    if (n > 0 && !esmtp) {
        sim_smtp_cmd_error(cmd, "555 5.5.4 Parameters need EHLO");
        return;
    }
    for (int i = 0; i < n; i++) {
        char *f = fields[i];
        if (cmd->verb == SIM_SMTP_MAIL && strncasecmp(f, "BODY=", 5) == 0) {
            if (strcasecmp(f + 5, "8BITMIME") == 0)
                cmd->body_8bitmime = true;
            else if (strcasecmp(f + 5, "7BIT") != 0)
                sim_smtp_cmd_error(cmd, "501 5.5.4 Bad BODY parameter");
        } else if (cmd->verb == SIM_SMTP_MAIL && strncasecmp(f, "SIZE=", 5) == 0) {
            if (!str_to_ulong(f + 5, 999999999999UL, &cmd->size))
                sim_smtp_cmd_error(cmd, "501 5.5.4 Bad SIZE parameter");
        } else {
            sim_smtp_cmd_error(cmd, "555 5.5.4 Unsupported option");
        }
        if (cmd->error[0])
            return;
    }
}

void sim_smtp_parse_command(const char *line, size_t len, bool esmtp, struct sim_smtp_cmd *cmd)
{
    static const struct { const char *name; enum sim_smtp_verb verb; } verbs[] = {
        {"HELO", SIM_SMTP_HELO}, {"EHLO", SIM_SMTP_EHLO}, {"MAIL", SIM_SMTP_MAIL},
        {"RCPT", SIM_SMTP_RCPT}, {"DATA", SIM_SMTP_DATA}, {"RSET", SIM_SMTP_RSET},
        {"NOOP", SIM_SMTP_NOOP}, {"QUIT", SIM_SMTP_QUIT}, {"VRFY", SIM_SMTP_VRFY},
        {"EXPN", SIM_SMTP_EXPN}, {"HELP", SIM_SMTP_HELP}, {"STARTTLS", SIM_SMTP_STARTTLS},
        {"AUTH", SIM_SMTP_AUTH}};
    memset(cmd, 0, sizeof *cmd);
    if (len == 0) {
        cmd->verb = SIM_SMTP_NONE;
        sim_smtp_cmd_error(cmd, "500 5.5.2 Error: bad syntax");
        return;
    }
    if (len >= SIM_SMTP_CMD_MAX) {
        cmd->verb = SIM_SMTP_UNKNOWN;
        sim_smtp_cmd_error(cmd, "500 5.5.2 Error: line too long");
        return;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] >= 0x80 || line[i] == '\0' || line[i] == '\r' ||
            line[i] == '\n') {
            cmd->verb = SIM_SMTP_UNKNOWN;
            sim_smtp_cmd_error(cmd, "500 5.5.2 Error: bad character in command");
            return;
        }
    size_t vlen = 0;
    while (vlen < len && line[vlen] != ' ')
        vlen++;
    cmd->verb = SIM_SMTP_UNKNOWN;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strlen(verbs[i].name) == vlen && strncasecmp(line, verbs[i].name, vlen) == 0)
            cmd->verb = verbs[i].verb;
    if (cmd->verb == SIM_SMTP_UNKNOWN) {
        sim_smtp_cmd_error(cmd, "500 5.5.2 Error: command not recognized");
        return;
    }
    size_t alen = vlen < len ? len - vlen - 1 : 0;
    memcpy(cmd->arg, line + len - alen, alen);
    cmd->arg[alen] = '\0';
    switch (cmd->verb) {
    case SIM_SMTP_HELO:
    case SIM_SMTP_EHLO:
        if (!cmd->arg[0] || strchr(cmd->arg, ' '))
            sim_smtp_cmd_error(cmd, cmd->verb == SIM_SMTP_HELO ? "501 5.5.4 Syntax: HELO hostname"
                                                             : "501 5.5.4 Syntax: EHLO hostname");
        break;
    case SIM_SMTP_MAIL:
    case SIM_SMTP_RCPT: {
        bool mail = cmd->verb == SIM_SMTP_MAIL;
        const char *kw = mail ? "FROM:" : "TO:";
        size_t kwlen = strlen(kw);
        const char *syntax = mail ? "501 5.5.4 Syntax: MAIL FROM:<address>"
                                  : "501 5.5.4 Syntax: RCPT TO:<address>";
        if (alen < kwlen || strncasecmp(cmd->arg, kw, kwlen) != 0) {
            sim_smtp_cmd_error(cmd, syntax);
            break;
        }
        char *p = cmd->arg + kwlen;
        size_t used = sim_smtp_path(p, strlen(p), mail, !mail, cmd->path);
        if (!used) {
            sim_smtp_cmd_error(cmd, syntax);
            break;
        }
        p += used;
        if (*p && *p != ' ') {
            sim_smtp_cmd_error(cmd, syntax);
            break;
        }
        sim_smtp_parse_params(cmd, p, esmtp);
        break;
    }
    case SIM_SMTP_DATA: sim_smtp_no_arg(cmd, "501 5.5.4 Syntax: DATA"); break;
    case SIM_SMTP_RSET: sim_smtp_no_arg(cmd, "501 5.5.4 Syntax: RSET"); break;
    case SIM_SMTP_QUIT: sim_smtp_no_arg(cmd, "501 5.5.4 Syntax: QUIT"); break;
    case SIM_SMTP_STARTTLS: sim_smtp_no_arg(cmd, "501 5.5.4 Syntax: STARTTLS"); break;
    case SIM_SMTP_VRFY:
        if (!cmd->arg[0])
            sim_smtp_cmd_error(cmd, "501 5.5.4 Syntax: VRFY address");
        break;
    default:
        break;
    }
}

/* --- the session ----------------------------------------------------------------------------- */

void sim_smtp_session_init(struct sim_smtp_session *s, const struct sim_smtp_hooks *hooks,
                           const char *hostname)
{
    memset(s, 0, sizeof *s);
    s->hooks = hooks;
    str_copy(s->hostname, sizeof s->hostname, hostname);
    s->state = SIM_SMTP_S_GREET;
    buf_init(&s->in, SIM_SMTP_IN_MAX);
    buf_init(&s->out, 0);
    buf_init(&s->held, 0);
    buf_init(&s->tx.data, SIM_SMTP_MAX_SIZE + 4096);
}

void sim_smtp_session_free(struct sim_smtp_session *s)
{
    buf_free(&s->in);
    buf_free(&s->out);
    buf_free(&s->held);
    buf_free(&s->tx.data);
}

static void sim_smtp_violation(struct sim_smtp_session *s, const char *kind, const char *fmt, ...)
    LOG_PRINTF(3, 4);

static void sim_smtp_violation(struct sim_smtp_session *s, const char *kind, const char *fmt, ...)
{
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (s->hooks->violation)
        s->hooks->violation(s->hooks->ctx, kind, detail);
}

/* Queues one reply line; while a delay is pending it goes to the held buffer. */
static void sim_smtp_reply(struct sim_smtp_session *s, const char *text)
{
    struct buf *b = s->delay_ms ? &s->held : &s->out;
    buf_append_str(b, text);
    buf_append(b, "\r\n", 2);
    if (s->hooks->transcript)
        s->hooks->transcript(s->hooks->ctx, 's', text, strlen(text));
}

static void sim_smtp_reset_tx(struct sim_smtp_session *s)
{
    s->in_tx = false;
    s->mail_refused = false;
    s->tx.mail_from[0] = '\0';
    s->tx.body_8bitmime = false;
    s->tx.nrcpts = 0;
    buf_reset(&s->tx.data);
}

static void sim_smtp_script(struct sim_smtp_session *s, enum sim_smtp_stage stage, unsigned msgno,
                            const char *rcpt, struct sim_smtp_action *act)
{
    memset(act, 0, sizeof *act);
    if (s->hooks->script)
        s->hooks->script(s->hooks->ctx, stage, msgno, rcpt, act);
    s->delay_ms = act->delay_ms;
}

/*
 * Applies a scripted action: true when it replaced the normal reply (or hung up).
 * A scripted 421 closes the connection after the reply, as RFC 5321 3.8 has it.
 */
static bool sim_smtp_scripted(struct sim_smtp_session *s, const struct sim_smtp_action *act)
{
    if (act->hangup) {
        s->state = SIM_SMTP_S_CLOSED;
        return true;
    }
    if (!act->reply[0])
        return false;
    sim_smtp_reply(s, act->reply);
    if (strncmp(act->reply, "421", 3) == 0) {
        if (s->delay_ms)
            s->close_after_held = true;
        else
            s->state = SIM_SMTP_S_CLOSED;
    }
    return true;
}

static void sim_smtp_sequence(struct sim_smtp_session *s, const char *reply, const char *what)
{
    sim_smtp_violation(s, "sequence", "%s", what);
    sim_smtp_reply(s, reply);
}

static void sim_smtp_ehlo_reply(struct sim_smtp_session *s)
{
    char line[SIM_SMTP_REPLY_MAX];
    snprintf(line, sizeof line, "250-%s", s->hostname);
    sim_smtp_reply(s, line);
    sim_smtp_reply(s, "250-PIPELINING");
    snprintf(line, sizeof line, "250-SIZE %u", SIM_SMTP_MAX_SIZE);
    sim_smtp_reply(s, line);
    sim_smtp_reply(s, "250-8BITMIME");
    if (s->offer_starttls && !s->tls)
        sim_smtp_reply(s, "250-STARTTLS");
    if (s->hooks->auth_check && s->tls)
        sim_smtp_reply(s, "250-AUTH PLAIN LOGIN");
    sim_smtp_reply(s, "250 ENHANCEDSTATUSCODES");
}

/* One step of AUTH: text is the initial response or a client line (base64). */
static void sim_smtp_auth_step(struct sim_smtp_session *s, const char *text, size_t len)
{
    char dec[SIM_SMTP_CMD_MAX];
    size_t dlen;
    if (len == 1 && text[0] == '*') {
        s->auth_step = 0;
        sim_smtp_reply(s, "501 5.7.0 Authentication cancelled");
        return;
    }
    if (sim_b64_decode(text, len, dec, sizeof dec, &dlen) < 0) {
        s->auth_step = 0;
        sim_smtp_violation(s, "syntax", "AUTH data is not base64");
        sim_smtp_reply(s, "501 5.5.2 Cannot decode response");
        return;
    }
    if (s->auth_step == 2) {
        if (memchr(dec, '\0', dlen) || !str_copy(s->auth_user, sizeof s->auth_user, dec)) {
            s->auth_step = 0;
            sim_smtp_reply(s, "501 5.5.2 Bad user name");
            return;
        }
        s->auth_step = 3;
        sim_smtp_reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
        return;
    }
    const char *user, *pass;
    if (s->auth_step == 1) {
        /* RFC 4616: [authzid] NUL authcid NUL passwd */
        const char *nul1 = memchr(dec, '\0', dlen);
        const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', dlen - (size_t)(nul1 + 1 - dec)) : NULL;
        if (!nul2 || memchr(nul2 + 1, '\0', dlen - (size_t)(nul2 + 1 - dec))) {
            s->auth_step = 0;
            sim_smtp_reply(s, "501 5.5.2 Bad PLAIN response");
            return;
        }
        user = nul1 + 1;
        pass = nul2 + 1;
        str_copy(s->auth_user, sizeof s->auth_user, user);
    } else {
        if (memchr(dec, '\0', dlen)) {
            s->auth_step = 0;
            sim_smtp_reply(s, "501 5.5.2 Bad password");
            return;
        }
        user = s->auth_user;
        pass = dec;
    }
    s->auth_step = 0;
    if (s->hooks->auth_check(s->hooks->ctx, user, pass)) {
        s->authed = true;
        sim_smtp_reply(s, "235 2.7.0 Authentication successful");
    } else {
        s->auth_user[0] = '\0';
        sim_smtp_reply(s, "535 5.7.8 Error: authentication failed");
    }
}

static void sim_smtp_auth(struct sim_smtp_session *s, const char *arg)
{
    if (!s->hooks->auth_check) {
        sim_smtp_reply(s, "502 5.5.1 Error: command not implemented");
        return;
    }
    if (!s->tls) {
        sim_smtp_reply(s, "538 5.7.11 Encryption required for requested authentication mechanism");
        return;
    }
    if (!s->greeted_helo || !s->esmtp)
        return sim_smtp_sequence(s, "503 5.5.1 Error: send EHLO first", "AUTH before EHLO");
    if (s->authed)
        return sim_smtp_sequence(s, "503 5.5.1 Error: already authenticated", "second AUTH");
    if (s->in_tx)
        return sim_smtp_sequence(s, "503 5.5.1 Error: MAIL transaction in progress",
                                       "AUTH inside a transaction");
    const char *sp = strchr(arg, ' ');
    size_t mlen = sp ? (size_t)(sp - arg) : strlen(arg);
    const char *initial = sp ? sp + 1 : NULL;
    if (mlen == 5 && strncasecmp(arg, "PLAIN", 5) == 0) {
        s->auth_step = 1;
    } else if (mlen == 5 && strncasecmp(arg, "LOGIN", 5) == 0) {
        s->auth_step = 2;
    } else {
        sim_smtp_reply(s, "504 5.5.4 Unrecognized authentication type");
        return;
    }
    if (initial && strcmp(initial, "=") == 0) {
        /* RFC 4954 4: "=" is an empty initial response */
        sim_smtp_auth_step(s, "", 0);
    } else if (initial) {
        sim_smtp_auth_step(s, initial, strlen(initial));
    } else {
        sim_smtp_reply(s, s->auth_step == 1 ? "334 " : "334 VXNlcm5hbWU6"); /* "Username:" */
    }
}

static bool sim_smtp_must_be_last(enum sim_smtp_verb v)
{
    return v == SIM_SMTP_EHLO || v == SIM_SMTP_HELO || v == SIM_SMTP_DATA || v == SIM_SMTP_QUIT ||
           v == SIM_SMTP_NOOP || v == SIM_SMTP_VRFY || v == SIM_SMTP_EXPN ||
           v == SIM_SMTP_STARTTLS || v == SIM_SMTP_AUTH;
}


static void sim_smtp_command(struct sim_smtp_session *s, const char *line, size_t len,
                             size_t wire_len, bool bare_lf, bool bare_cr, bool more_input)
{
    struct sim_smtp_cmd cmd;
    struct sim_smtp_action act;
    char reply[SIM_SMTP_REPLY_MAX];

    if (bare_lf || bare_cr) {
        sim_smtp_violation(s, bare_lf ? "bare-lf" : "bare-cr", "in a command");
        sim_smtp_reply(s, "500 5.5.2 Error: bare CR or LF in command (RFC 5321 2.3.8)");
        return;
    }
    if (wire_len > SIM_SMTP_CMD_MAX) {
        sim_smtp_violation(s, "line-too-long", "command of %zu octets", wire_len);
        sim_smtp_reply(s, "500 5.5.2 Error: line too long (RFC 5321 4.5.3.1.4)");
        return;
    }
    sim_smtp_parse_command(line, len, s->esmtp, &cmd);
    if (more_input && (sim_smtp_must_be_last(cmd.verb) || !s->esmtp)) {
        sim_smtp_violation(s, "pipelining", "input after %.*s before its reply",
                           (int)(len > 16 ? 16 : len), line);
        sim_smtp_reply(s, "554 5.5.0 Error: SMTP protocol synchronization");
        s->state = SIM_SMTP_S_CLOSED;
        return;
    }
    if (s->refusing && cmd.verb != SIM_SMTP_QUIT) {
        sim_smtp_reply(s, "503 5.5.1 Error: no SMTP service here");
        return;
    }
    if (cmd.error[0]) {
        sim_smtp_violation(s, "syntax", "%s", cmd.error);
        sim_smtp_reply(s, cmd.error);
        return;
    }
    switch (cmd.verb) {
    case SIM_SMTP_HELO:
    case SIM_SMTP_EHLO:
        sim_smtp_script(s, SIM_STAGE_HELO, s->msgno + 1, NULL, &act);
        if (sim_smtp_scripted(s, &act))
            return;
        sim_smtp_reset_tx(s);
        s->greeted_helo = true;
        s->esmtp = cmd.verb == SIM_SMTP_EHLO;
        str_copy(s->tx.helo, sizeof s->tx.helo, cmd.arg);
        if (s->esmtp) {
            sim_smtp_ehlo_reply(s);
        } else {
            snprintf(reply, sizeof reply, "250 %s", s->hostname);
            sim_smtp_reply(s, reply);
        }
        return;
    case SIM_SMTP_MAIL:
        if (!s->greeted_helo)
            return sim_smtp_sequence(s, "503 5.5.1 Error: send HELO/EHLO first", "MAIL before HELO");
        if (s->in_tx)
            return sim_smtp_sequence(s, "503 5.5.1 Error: nested MAIL command", "nested MAIL");
        if (cmd.size > SIM_SMTP_MAX_SIZE) {
            s->mail_refused = true;
            sim_smtp_reply(s, "552 5.3.4 Message size exceeds fixed limit");
            return;
        }
        sim_smtp_script(s, SIM_STAGE_MAIL, s->msgno + 1, NULL, &act);
        if (sim_smtp_scripted(s, &act)) {
            s->mail_refused = true;
            return;
        }
        s->mail_refused = false;
        s->in_tx = true;
        str_copy(s->tx.mail_from, sizeof s->tx.mail_from, cmd.path);
        s->tx.body_8bitmime = cmd.body_8bitmime;
        sim_smtp_reply(s, "250 2.1.0 Ok");
        return;
    case SIM_SMTP_RCPT:
        /*
         * RFC 2920 3.1: a client may send MAIL and its RCPTs in one group; when the MAIL is
         * refused, the server answers the RCPTs with 503 and the client did nothing wrong.
         * So after a refused MAIL in an ESMTP session (PIPELINING offered) a RCPT gets its
         * 503 without a violation record. (ispsim flagged it before; a client that waited
         * for the refusal and still sent RCPT is not told apart from one that pipelined.)
         */
        if (!s->in_tx && s->mail_refused && s->esmtp) {
            sim_smtp_reply(s, "503 5.5.1 Error: need MAIL command");
            return;
        }
        if (!s->in_tx)
            return sim_smtp_sequence(s, "503 5.5.1 Error: need MAIL command", "RCPT before MAIL");
        if (s->tx.nrcpts >= SIM_SMTP_MAX_RCPTS) {
            sim_smtp_reply(s, "452 4.5.3 Error: too many recipients");
            return;
        }
        sim_smtp_script(s, SIM_STAGE_RCPT, s->msgno + 1, cmd.path, &act);
        if (sim_smtp_scripted(s, &act))
            return;
        reply[0] = '\0';
        if (s->hooks->rcpt_check)
            s->hooks->rcpt_check(s->hooks->ctx, cmd.path, reply, sizeof reply);
        if (reply[0]) {
            sim_smtp_reply(s, reply);
            return;
        }
        str_copy(s->tx.rcpts[s->tx.nrcpts++], SIM_SMTP_PATH_MAX, cmd.path);
        sim_smtp_reply(s, "250 2.1.5 Ok");
        return;
    case SIM_SMTP_DATA:
        if (!s->in_tx)
            return sim_smtp_sequence(s, "503 5.5.1 Error: need MAIL command", "DATA before MAIL");
        if (s->tx.nrcpts == 0)
            return sim_smtp_sequence(s, "503 5.5.1 Error: need RCPT command", "DATA before RCPT");
        sim_smtp_script(s, SIM_STAGE_DATA, s->msgno + 1, NULL, &act);
        if (sim_smtp_scripted(s, &act))
            return;
        s->state = SIM_SMTP_S_DATA;
        s->data_flags = 0;
        s->data_lines = 0;
        buf_reset(&s->tx.data);
        sim_smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
        return;
    case SIM_SMTP_RSET:
        sim_smtp_reset_tx(s);
        sim_smtp_reply(s, "250 2.0.0 Ok");
        return;
    case SIM_SMTP_NOOP:
        sim_smtp_reply(s, "250 2.0.0 Ok");
        return;
    case SIM_SMTP_QUIT:
        s->quit = true;
        sim_smtp_reply(s, "221 2.0.0 Bye");
        s->state = SIM_SMTP_S_CLOSED;
        return;
    case SIM_SMTP_VRFY:
        sim_smtp_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message");
        return;
    case SIM_SMTP_EXPN:
        sim_smtp_reply(s, "502 5.5.1 EXPN not available");
        return;
    case SIM_SMTP_HELP:
        sim_smtp_reply(s, "214 2.0.0 HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
        return;
    case SIM_SMTP_STARTTLS:
        if (!s->offer_starttls && !s->tls) {
            sim_smtp_reply(s, "502 5.5.1 Error: command not implemented");
            return;
        }
        if (s->tls)
            return sim_smtp_sequence(s, "503 5.5.1 Error: TLS already active", "second STARTTLS");
        if (s->in_tx)
            return sim_smtp_sequence(s, "503 5.5.1 Error: MAIL transaction in progress",
                                     "STARTTLS inside a transaction");
        sim_smtp_reply(s, "220 2.0.0 Ready to start TLS");
        s->starttls_now = true;
        return;
    case SIM_SMTP_AUTH:
        sim_smtp_auth(s, cmd.arg);
        return;
    case SIM_SMTP_NONE:
    case SIM_SMTP_UNKNOWN:
        break;
    }
}

static void sim_smtp_data_flag(struct sim_smtp_session *s, unsigned flag, const char *kind)
{
    if (s->data_flags & flag)
        return;
    s->data_flags |= flag;
    if (flag != SIM_DATA_TOO_BIG)
        sim_smtp_violation(s, kind, "DATA line %u", s->data_lines);
}

static void sim_smtp_end_of_data(struct sim_smtp_session *s)
{
    static const struct { unsigned flag; const char *reply; } refusals[] = {
        {SIM_DATA_BARE_LF | SIM_DATA_BARE_CR,
         "554 5.6.0 Message refused: bare CR or LF in DATA (RFC 5321 2.3.8)"},
        {SIM_DATA_LONG, "554 5.6.0 Message refused: line over 1000 octets (RFC 5321 4.5.3.1.6)"},
        {SIM_DATA_BAD_DOT, "554 5.6.0 Message refused: line with an unstuffed dot (RFC 5321 4.5.2)"},
        {SIM_DATA_8BIT, "554 5.6.1 Message refused: 8-bit data without BODY=8BITMIME (RFC 6152)"},
        {SIM_DATA_NUL, "554 5.6.0 Message refused: NUL in DATA"},
        {SIM_DATA_TOO_BIG, "552 5.3.4 Message size exceeds fixed limit"}};
    struct sim_smtp_action act;
    char reply[SIM_SMTP_REPLY_MAX];

    s->state = SIM_SMTP_S_CMD;
    s->msgno++;
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++)
        if (s->data_flags & refusals[i].flag) {
            sim_smtp_reply(s, refusals[i].reply);
            sim_smtp_reset_tx(s);
            return;
        }
    sim_smtp_script(s, SIM_STAGE_DOT, s->msgno, NULL, &act);
    if (act.hangup) {
        /* RFC 1047: the message is ours, but the client never hears so. */
        reply[0] = '\0';
        if (s->hooks->message)
            s->hooks->message(s->hooks->ctx, &s->tx, reply, sizeof reply);
        s->state = SIM_SMTP_S_CLOSED;
        sim_smtp_reset_tx(s);
        return;
    }
    if (!sim_smtp_scripted(s, &act)) {
        reply[0] = '\0';
        if (s->hooks->message)
            s->hooks->message(s->hooks->ctx, &s->tx, reply, sizeof reply);
        sim_smtp_reply(s, reply[0] ? reply : "250 2.0.0 Ok");
    }
    sim_smtp_reset_tx(s);
}

static void sim_smtp_data_line(struct sim_smtp_session *s, const char *line, size_t len,
                               size_t wire_len, bool bare_lf, bool bare_cr)
{
    if (s->hooks->transcript && !s->brief_data)
        s->hooks->transcript(s->hooks->ctx, 'c', line, len > SIM_SMTP_TEXT_MAX ? SIM_SMTP_TEXT_MAX : len);
    if (len == 1 && line[0] == '.') {
        if (s->hooks->transcript && s->brief_data) {
            char sum[96];
            int n = snprintf(sum, sizeof sum, "(message: %u lines, %zu bytes)", s->data_lines,
                             s->tx.data.len);
            s->hooks->transcript(s->hooks->ctx, 'c', sum, (size_t)n);
        }
        if (bare_lf)
            sim_smtp_data_flag(s, SIM_DATA_BARE_LF, "bare-lf");
        sim_smtp_end_of_data(s);
        return;
    }
    s->data_lines++;
    if (bare_lf)
        sim_smtp_data_flag(s, SIM_DATA_BARE_LF, "bare-lf");
    if (bare_cr)
        sim_smtp_data_flag(s, SIM_DATA_BARE_CR, "bare-cr");
    if (wire_len > SIM_SMTP_TEXT_MAX)
        sim_smtp_data_flag(s, SIM_DATA_LONG, "line-too-long");
    if (len >= 1 && line[0] == '.' && (len < 2 || line[1] != '.'))
        sim_smtp_data_flag(s, SIM_DATA_BAD_DOT, "bad-dot-stuffing");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c >= 0x80 && !s->tx.body_8bitmime)
            sim_smtp_data_flag(s, SIM_DATA_8BIT, "8bit-without-8bitmime");
        else if (c == 0)
            sim_smtp_data_flag(s, SIM_DATA_NUL, "nul");
    }
    size_t skip = len >= 1 && line[0] == '.' ? 1 : 0;
    if (!(s->data_flags & SIM_DATA_TOO_BIG) &&
        (!buf_append(&s->tx.data, line + skip, len - skip) || !buf_append(&s->tx.data, "\r\n", 2)))
        sim_smtp_data_flag(s, SIM_DATA_TOO_BIG, "too-big");
}

static enum sim_smtp_status sim_smtp_status_of(const struct sim_smtp_session *s)
{
    if (s->held.len)
        return SIM_SMTP_WAIT;
    if (s->starttls_now && s->state != SIM_SMTP_S_CLOSED)
        return SIM_SMTP_TLS;
    return s->state == SIM_SMTP_S_CLOSED ? SIM_SMTP_CLOSE : SIM_SMTP_CONTINUE;
}

static enum sim_smtp_status sim_smtp_process(struct sim_smtp_session *s)
{
    while (s->state == SIM_SMTP_S_CMD || s->state == SIM_SMTP_S_DATA) {
        if (s->held.len || s->starttls_now)
            break;
        s->delay_ms = 0;
        char *lf = memchr(s->in.data ? s->in.data : "", '\n', s->in.len);
        if (!lf) {
            size_t limit = s->state == SIM_SMTP_S_DATA ? SIM_SMTP_TEXT_MAX : SIM_SMTP_CMD_MAX;
            if (s->skipping) {
                buf_reset(&s->in);
            } else if (s->in.len > limit) {
                /* The line goes on and on: judge it now and drop the rest up to its LF. */
                s->skipping = true;
                if (s->state == SIM_SMTP_S_DATA) {
                    s->data_lines++;
                    sim_smtp_data_flag(s, SIM_DATA_LONG, "line-too-long");
                } else {
                    sim_smtp_violation(s, "line-too-long", "command over %u octets",
                                       SIM_SMTP_CMD_MAX);
                    sim_smtp_reply(s, "500 5.5.2 Error: line too long (RFC 5321 4.5.3.1.4)");
                }
                buf_reset(&s->in);
            }
            break;
        }
        size_t linelen = (size_t)(lf - s->in.data);
        size_t consumed = linelen + 1;
        if (s->skipping) {
            s->skipping = false;
            buf_consume(&s->in, consumed);
            continue;
        }
        bool crlf = linelen > 0 && s->in.data[linelen - 1] == '\r';
        size_t len = crlf ? linelen - 1 : linelen;
        bool bare_cr = memchr(s->in.data, '\r', len) != NULL;
        bool more = s->in.len > consumed;
        if (s->state == SIM_SMTP_S_DATA) {
            sim_smtp_data_line(s, s->in.data, len, consumed, !crlf, bare_cr);
        } else if (s->auth_step) {
            /* an AUTH response: never recorded in clear */
            if (s->hooks->transcript)
                s->hooks->transcript(s->hooks->ctx, 'c', "(auth data)", 11);
            if (!crlf || bare_cr || consumed > SIM_SMTP_CMD_MAX) {
                s->auth_step = 0;
                sim_smtp_violation(s, !crlf ? "bare-lf" : bare_cr ? "bare-cr" : "line-too-long",
                                   "in an AUTH response");
                sim_smtp_reply(s, "501 5.5.2 Bad AUTH response");
            } else {
                /* the line is copied: the reply may grow s->out, never s->in */
                char resp[SIM_SMTP_CMD_MAX];
                memcpy(resp, s->in.data, len);
                resp[len] = '\0';
                sim_smtp_auth_step(s, resp, len);
            }
        } else {
            if (s->hooks->transcript) {
                size_t tlen = len > SIM_SMTP_TEXT_MAX ? SIM_SMTP_TEXT_MAX : len;
                /* "AUTH PLAIN <secret>": the mechanism only */
                if (len > 5 && strncasecmp(s->in.data, "AUTH ", 5) == 0) {
                    const char *sp = memchr(s->in.data + 5, ' ', len - 5);
                    if (sp)
                        tlen = (size_t)(sp - s->in.data);
                }
                s->hooks->transcript(s->hooks->ctx, 'c', s->in.data, tlen);
            }
            sim_smtp_command(s, s->in.data, len, consumed, !crlf, bare_cr, more);
        }
        if (s->state == SIM_SMTP_S_CLOSED)
            buf_reset(&s->in);
        else
            buf_consume(&s->in, consumed);
    }
    return sim_smtp_status_of(s);
}

enum sim_smtp_status sim_smtp_start(struct sim_smtp_session *s)
{
    struct sim_smtp_action act;
    char greeting[SIM_SMTP_REPLY_MAX];
    sim_smtp_script(s, SIM_STAGE_GREETING, s->msgno + 1, NULL, &act);
    if (act.hangup) {
        s->state = SIM_SMTP_S_CLOSED;
        return SIM_SMTP_CLOSE;
    }
    if (act.reply[0]) {
        /* RFC 5321 3.1: after a 554 greeting the server refuses all but QUIT. */
        s->refusing = act.reply[0] == '5';
        sim_smtp_scripted(s, &act);
    } else {
        snprintf(greeting, sizeof greeting, "220 %s ESMTP ispsim", s->hostname);
        sim_smtp_reply(s, greeting);
    }
    if (s->held.len)
        return SIM_SMTP_WAIT;
    if (s->state == SIM_SMTP_S_GREET)
        s->state = SIM_SMTP_S_CMD;
    return sim_smtp_process(s);
}

enum sim_smtp_status sim_smtp_feed(struct sim_smtp_session *s, const void *data, size_t len)
{
    if (s->state == SIM_SMTP_S_CLOSED)
        return SIM_SMTP_CLOSE;
    if (s->state == SIM_SMTP_S_GREET && s->in.len == 0 && len > 0)
        sim_smtp_violation(s, "early-talk", "%zu bytes before the greeting", len);
    if (!buf_append(&s->in, data, len)) {
        sim_smtp_violation(s, "overflow", "more than %u bytes unread", SIM_SMTP_IN_MAX);
        s->state = SIM_SMTP_S_CLOSED;
        return SIM_SMTP_CLOSE;
    }
    if (s->state == SIM_SMTP_S_GREET)
        return sim_smtp_status_of(s);
    return sim_smtp_process(s);
}

enum sim_smtp_status sim_smtp_resume(struct sim_smtp_session *s)
{
    buf_append(&s->out, s->held.data ? s->held.data : "", s->held.len);
    buf_reset(&s->held);
    s->delay_ms = 0;
    if (s->close_after_held) {
        s->state = SIM_SMTP_S_CLOSED;
        return SIM_SMTP_CLOSE;
    }
    if (s->state == SIM_SMTP_S_GREET)
        s->state = SIM_SMTP_S_CMD;
    return sim_smtp_process(s);
}

enum sim_smtp_status sim_smtp_tls_started(struct sim_smtp_session *s)
{
    s->starttls_now = false;
    s->tls = true;
    s->greeted_helo = false;
    s->esmtp = false;
    s->authed = false;
    s->auth_step = 0;
    sim_smtp_reset_tx(s);
    buf_reset(&s->in); /* RFC 3207 4.2: nothing from before the handshake counts */
    return sim_smtp_process(s);
}

void sim_smtp_eof(struct sim_smtp_session *s)
{
    if (s->state == SIM_SMTP_S_DATA)
        sim_smtp_violation(s, "eof-in-data", "connection closed before CRLF.CRLF");
    else if (s->state == SIM_SMTP_S_CMD && !s->quit)
        sim_smtp_violation(s, "no-quit", "connection closed without QUIT");
    s->state = SIM_SMTP_S_CLOSED;
}
