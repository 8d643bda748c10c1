/* sim_pop3: the pure POP3 server engine of ispsim (see sim_pop3.h). */
#include "sim_pop3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "str.h"

void sim_pop3_init(struct sim_pop3_session *s, const struct sim_pop3_hooks *hooks,
                   const char *greeting_host)
{
    memset(s, 0, sizeof *s);
    s->hooks = hooks;
    s->state = SIM_POP3_AUTH;
    buf_init(&s->in, (size_t)64 * 1024);
    buf_init(&s->out, 0);
    buf_printf(&s->out, "+OK %s POP3 ispsim ready\r\n", greeting_host);
    if (hooks->transcript)
        hooks->transcript(hooks->ctx, 's', s->out.data, s->out.len - 2);
}

void sim_pop3_free(struct sim_pop3_session *s)
{
    free(s->msgs);
    buf_free(&s->in);
    buf_free(&s->out);
}

static void sim_pop3_reply(struct sim_pop3_session *s, const char *text)
{
    buf_append_str(&s->out, text);
    buf_append(&s->out, "\r\n", 2);
    if (s->hooks->transcript)
        s->hooks->transcript(s->hooks->ctx, 's', text, strlen(text));
}

static void sim_pop3_violation(struct sim_pop3_session *s, const char *kind, const char *detail)
{
    if (s->hooks->violation)
        s->hooks->violation(s->hooks->ctx, kind, detail);
}

/* Message number argument: 1..n and not deleted; NULL on error (reply sent). */
static struct sim_pop3_msg *sim_pop3_msg_arg(struct sim_pop3_session *s, const char *arg)
{
    unsigned long n;
    if (!str_to_ulong(arg, 1000000, &n) || n < 1 || n > (unsigned long)s->n) {
        sim_pop3_reply(s, "-ERR no such message");
        return NULL;
    }
    struct sim_pop3_msg *m = &s->msgs[n - 1];
    if (m->deleted) {
        sim_pop3_reply(s, "-ERR message deleted");
        return NULL;
    }
    return m;
}

/* Sends the message (or its headers and lines body lines) dot-stuffed, ending in ".". */
static void sim_pop3_send(struct sim_pop3_session *s, const struct sim_pop3_msg *m, long lines)
{
    char *data;
    size_t len;
    if (!s->hooks->read || s->hooks->read(s->hooks->ctx, m->uid, &data, &len) < 0) {
        sim_pop3_reply(s, "-ERR cannot read the message");
        return;
    }
    char head[64];
    snprintf(head, sizeof head, "+OK %zu octets", m->size);
    sim_pop3_reply(s, head);
    size_t pos = 0;
    bool in_body = false;
    long body_lines = 0;
    while (pos < len) {
        const char *p = data + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - p) : len - pos;
        pos += l + (nl ? 1 : 0);
        if (l > 0 && p[l - 1] == '\r')
            l--;
        if (in_body && lines >= 0 && body_lines++ >= lines)
            break;
        if (l > 0 && p[0] == '.')
            buf_append_char(&s->out, '.');
        buf_append(&s->out, p, l);
        buf_append(&s->out, "\r\n", 2);
        if (!in_body && l == 0)
            in_body = true;
    }
    buf_append(&s->out, ".\r\n", 3);
    free(data);
}

static void sim_pop3_command(struct sim_pop3_session *s, char *line)
{
    char *args[3];
    char *verb = line;
    char *rest = strchr(line, ' ');
    char raw[SIM_POP3_LINE_MAX + 2] = "";
    int nargs = 0;
    if (rest) {
        *rest++ = '\0';
        str_copy(raw, sizeof raw, rest);
        nargs = str_split(rest, " ", args, 2);
        if (nargs < 0) {
            sim_pop3_violation(s, "syntax", "too many arguments");
            sim_pop3_reply(s, "-ERR too many arguments");
            return;
        }
    }
    char reply[128];
    if (strcasecmp(verb, "CAPA") == 0 && nargs == 0) {
        sim_pop3_reply(s, "+OK capability list follows");
        /* PIPELINING (RFC 2449 6.6): sim_pop3_feed answers every whole command line of the input
         * in order, so a client may send several at once */
        buf_append_str(&s->out, "USER\r\nUIDL\r\nTOP\r\nRESP-CODES\r\nPIPELINING\r\n");
        if (s->offer_stls && !s->tls && s->state == SIM_POP3_AUTH)
            buf_append_str(&s->out, "STLS\r\n");
        buf_append_str(&s->out, ".\r\n");
        return;
    }
    if (strcasecmp(verb, "STLS") == 0 && nargs == 0 && s->state == SIM_POP3_AUTH && !s->have_user &&
        s->offer_stls && !s->tls) {
        sim_pop3_reply(s, "+OK Begin TLS negotiation");
        s->stls_now = true;
        return;
    }
    if (strcasecmp(verb, "QUIT") == 0 && nargs == 0) {
        s->quit = true;
        if (s->state == SIM_POP3_TRANS && s->hooks->commit)
            s->hooks->commit(s->hooks->ctx, s->msgs, s->n);
        sim_pop3_reply(s, "+OK bye");
        s->state = SIM_POP3_CLOSED;
        return;
    }
    if (strcasecmp(verb, "NOOP") == 0 && nargs == 0 && s->state == SIM_POP3_TRANS) {
        sim_pop3_reply(s, "+OK");
        return;
    }
    if (s->state == SIM_POP3_AUTH) {
        if (strcasecmp(verb, "USER") == 0 && nargs == 1) {
            if (!str_copy(s->user, sizeof s->user, args[0])) {
                sim_pop3_reply(s, "-ERR user name too long");
                return;
            }
            s->have_user = true;
            sim_pop3_reply(s, "+OK send PASS");
            return;
        }
        if (strcasecmp(verb, "PASS") == 0 && rest) {
            if (!s->have_user) {
                sim_pop3_violation(s, "sequence", "PASS without USER");
                sim_pop3_reply(s, "-ERR USER first");
                return;
            }
            s->have_user = false;
            reply[0] = '\0';
            /* The password is the rest of the line: it may hold blanks (RFC 1939 7). */
            const char *pass = raw;
            if (!s->hooks->login ||
                s->hooks->login(s->hooks->ctx, s->user, pass, &s->msgs, &s->n, reply,
                                sizeof reply) < 0) {
                sim_pop3_reply(s, reply[0] ? reply : "-ERR [AUTH] invalid user or password");
                return;
            }
            s->state = SIM_POP3_TRANS;
            snprintf(reply, sizeof reply, "+OK %d messages", s->n);
            sim_pop3_reply(s, reply);
            return;
        }
        bool known = strcasecmp(verb, "STAT") == 0 || strcasecmp(verb, "LIST") == 0 ||
                     strcasecmp(verb, "RETR") == 0 || strcasecmp(verb, "DELE") == 0 ||
                     strcasecmp(verb, "UIDL") == 0 || strcasecmp(verb, "TOP") == 0 ||
                     strcasecmp(verb, "RSET") == 0 || strcasecmp(verb, "NOOP") == 0;
        sim_pop3_violation(s, known ? "sequence" : "syntax", verb);
        sim_pop3_reply(s, known ? "-ERR not logged in" : "-ERR unknown command");
        return;
    }
    /* TRANSACTION */
    if (strcasecmp(verb, "STAT") == 0 && nargs == 0) {
        int count = 0;
        size_t size = 0;
        for (int i = 0; i < s->n; i++)
            if (!s->msgs[i].deleted) {
                count++;
                size += s->msgs[i].size;
            }
        snprintf(reply, sizeof reply, "+OK %d %zu", count, size);
        sim_pop3_reply(s, reply);
        return;
    }
    bool list = strcasecmp(verb, "LIST") == 0, uidl = strcasecmp(verb, "UIDL") == 0;
    if ((list || uidl) && nargs <= 1) {
        if (nargs == 1) {
            struct sim_pop3_msg *m = sim_pop3_msg_arg(s, args[0]);
            if (!m)
                return;
            if (list)
                snprintf(reply, sizeof reply, "+OK %ld %zu", (long)(m - s->msgs) + 1, m->size);
            else
                snprintf(reply, sizeof reply, "+OK %ld %06u", (long)(m - s->msgs) + 1, m->uid);
            sim_pop3_reply(s, reply);
            return;
        }
        sim_pop3_reply(s, "+OK");
        for (int i = 0; i < s->n; i++) {
            if (s->msgs[i].deleted)
                continue;
            if (list)
                buf_printf(&s->out, "%d %zu\r\n", i + 1, s->msgs[i].size);
            else
                buf_printf(&s->out, "%d %06u\r\n", i + 1, s->msgs[i].uid);
        }
        buf_append(&s->out, ".\r\n", 3);
        return;
    }
    if (strcasecmp(verb, "RETR") == 0 && nargs == 1) {
        struct sim_pop3_msg *m = sim_pop3_msg_arg(s, args[0]);
        if (m)
            sim_pop3_send(s, m, -1);
        return;
    }
    if (strcasecmp(verb, "TOP") == 0 && nargs == 2) {
        unsigned long lines;
        if (!str_to_ulong(args[1], 100000000, &lines)) {
            sim_pop3_violation(s, "syntax", "TOP line count");
            sim_pop3_reply(s, "-ERR bad line count");
            return;
        }
        struct sim_pop3_msg *m = sim_pop3_msg_arg(s, args[0]);
        if (m)
            sim_pop3_send(s, m, (long)lines);
        return;
    }
    if (strcasecmp(verb, "DELE") == 0 && nargs == 1) {
        struct sim_pop3_msg *m = sim_pop3_msg_arg(s, args[0]);
        if (m) {
            m->deleted = true;
            sim_pop3_reply(s, "+OK deleted");
        }
        return;
    }
    if (strcasecmp(verb, "RSET") == 0 && nargs == 0) {
        for (int i = 0; i < s->n; i++)
            s->msgs[i].deleted = false;
        snprintf(reply, sizeof reply, "+OK %d messages", s->n);
        sim_pop3_reply(s, reply);
        return;
    }
    bool auth_cmd = strcasecmp(verb, "USER") == 0 || strcasecmp(verb, "PASS") == 0;
    sim_pop3_violation(s, auth_cmd ? "sequence" : "syntax", verb);
    sim_pop3_reply(s, auth_cmd ? "-ERR already logged in" : "-ERR unknown command or arguments");
}

bool sim_pop3_feed(struct sim_pop3_session *s, const void *data, size_t len)
{
    if (s->state == SIM_POP3_CLOSED)
        return false;
    if (!buf_append(&s->in, data, len)) {
        sim_pop3_violation(s, "overflow", "too much unread input");
        s->state = SIM_POP3_CLOSED;
        return false;
    }
    while (s->state != SIM_POP3_CLOSED && !s->stls_now) {
        char *lf = memchr(s->in.data ? s->in.data : "", '\n', s->in.len);
        if (!lf) {
            if (s->in.len > SIM_POP3_LINE_MAX) {
                if (!s->skipping) {
                    sim_pop3_violation(s, "line-too-long", "command over 255 octets");
                    sim_pop3_reply(s, "-ERR line too long");
                }
                s->skipping = true;
                buf_reset(&s->in);
            }
            break;
        }
        size_t linelen = (size_t)(lf - s->in.data);
        bool crlf = linelen > 0 && s->in.data[linelen - 1] == '\r';
        size_t l = crlf ? linelen - 1 : linelen;
        char line[SIM_POP3_LINE_MAX + 2];
        bool skip = s->skipping;
        s->skipping = false;
        if (!skip) {
            if (s->hooks->transcript)
                s->hooks->transcript(s->hooks->ctx, 'c', s->in.data,
                                     l > SIM_POP3_LINE_MAX ? SIM_POP3_LINE_MAX : l);
            if (!crlf || memchr(s->in.data, '\r', l) || memchr(s->in.data, '\0', l)) {
                sim_pop3_violation(s, !crlf ? "bare-lf" : "bare-cr", "in a command");
                sim_pop3_reply(s, "-ERR lines end in CRLF");
            } else if (linelen + 1 > SIM_POP3_LINE_MAX) {
                sim_pop3_violation(s, "line-too-long", "command over 255 octets");
                sim_pop3_reply(s, "-ERR line too long");
            } else {
                memcpy(line, s->in.data, l);
                line[l] = '\0';
                sim_pop3_command(s, line);
            }
        }
        buf_consume(&s->in, linelen + 1);
    }
    return s->state != SIM_POP3_CLOSED;
}

bool sim_pop3_tls_started(struct sim_pop3_session *s)
{
    s->stls_now = false;
    s->tls = true;
    buf_reset(&s->in);
    return s->state != SIM_POP3_CLOSED;
}

void sim_pop3_eof(struct sim_pop3_session *s)
{
    if (s->state != SIM_POP3_CLOSED && !s->quit)
        sim_pop3_violation(s, "no-quit", "connection closed without QUIT");
    s->state = SIM_POP3_CLOSED;
}
