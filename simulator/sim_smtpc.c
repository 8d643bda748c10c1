/* sim_smtpc: the smarthost's SMTP client engine (see sim_smtpc.h). */
#include "sim_smtpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "str.h"

#define SIM_SMTPC_IN_MAX (64u << 10)

void sim_smtpc_init(struct sim_smtpc *c, const char *helo, const char *from, const char *data,
                    size_t len)
{
    memset(c, 0, sizeof *c);
    str_copy(c->helo, sizeof c->helo, helo);
    str_copy(c->from, sizeof c->from, from);
    c->data = data;
    c->len = len;
    for (size_t i = 0; i < len && !c->eightbit; i++)
        if ((unsigned char)data[i] >= 0x80)
            c->eightbit = true;
    buf_init(&c->in, SIM_SMTPC_IN_MAX);
    buf_init(&c->out, 0);
}

bool sim_smtpc_add_rcpt(struct sim_smtpc *c, const char *rcpt)
{
    if (c->nrcpts >= SIM_SMTPC_MAX_RCPTS)
        return false;
    return str_copy(c->rcpts[c->nrcpts++].addr, SIM_SMTPC_PATH_MAX, rcpt);
}

void sim_smtpc_free(struct sim_smtpc *c)
{
    buf_free(&c->in);
    buf_free(&c->out);
}

static void sim_smtpc_send(struct sim_smtpc *c, const char *fmt, const char *a, const char *b)
{
    char line[SIM_SMTPC_PATH_MAX * 2 + 64];
    snprintf(line, sizeof line, fmt, a, b);
    if (c->transcript)
        c->transcript(c->ctx, 'c', line, strlen(line));
    buf_append_str(&c->out, line);
    buf_append(&c->out, "\r\n", 2);
}

/* Every recipient still open gets code and text. */
static void sim_smtpc_all(struct sim_smtpc *c, int code, const char *text, bool only_accepted)
{
    for (int i = 0; i < c->nrcpts; i++) {
        struct sim_smtpc_rcpt *r = &c->rcpts[i];
        bool open = r->code == 0 || r->accepted;
        if (!open || (only_accepted && !r->accepted))
            continue;
        r->code = code;
        r->accepted = false;
        str_copy(r->reply, sizeof r->reply, text);
    }
}

static void sim_smtpc_quit(struct sim_smtpc *c)
{
    sim_smtpc_send(c, "QUIT%s%s", "", "");
    c->state = SIM_SMTPC_QUIT;
}

static void sim_smtpc_next_rcpt(struct sim_smtpc *c)
{
    if (c->cur < c->nrcpts) {
        sim_smtpc_send(c, "RCPT TO:<%s>%s", c->rcpts[c->cur].addr, "");
        c->state = SIM_SMTPC_RCPT;
        return;
    }
    bool any = false;
    for (int i = 0; i < c->nrcpts; i++)
        any = any || c->rcpts[i].accepted;
    if (!any) {
        sim_smtpc_quit(c);
        return;
    }
    sim_smtpc_send(c, "DATA%s%s", "", "");
    c->state = SIM_SMTPC_DATA;
}

static void sim_smtpc_body(struct sim_smtpc *c)
{
    const char *p = c->data, *end = c->data + c->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = eol ? (size_t)(eol - p) + 1 : (size_t)(end - p);
        if (*p == '.')
            buf_append_char(&c->out, '.');
        buf_append(&c->out, p, n);
        if (!eol)
            buf_append(&c->out, "\r\n", 2);
        p += n;
    }
    buf_append(&c->out, ".\r\n", 3);
    if (c->transcript)
        c->transcript(c->ctx, 'c', "(message and final dot)", 23);
    c->state = SIM_SMTPC_DOT;
}

/* One whole reply: code, its first line's text, and all its lines in text (for EHLO). */
static void sim_smtpc_reply(struct sim_smtpc *c, int code, const char *first, const char *all)
{
    char text[SIM_SMTPC_REPLY_MAX];
    snprintf(text, sizeof text, "%d %s", code, first);
    switch (c->state) {
    case SIM_SMTPC_GREETING:
        if (code / 100 != 2) {
            sim_smtpc_all(c, code, text, false);
            sim_smtpc_quit(c);
            return;
        }
        sim_smtpc_send(c, "EHLO %s%s", c->helo, "");
        c->state = SIM_SMTPC_EHLO;
        return;
    case SIM_SMTPC_EHLO:
    case SIM_SMTPC_HELO:
        if (code / 100 != 2) {
            if (c->state == SIM_SMTPC_EHLO && code / 100 == 5) {
                sim_smtpc_send(c, "HELO %s%s", c->helo, "");
                c->state = SIM_SMTPC_HELO;
                return;
            }
            sim_smtpc_all(c, code, text, false);
            sim_smtpc_quit(c);
            return;
        }
        if (c->state == SIM_SMTPC_EHLO) {
            /* an extension is a line "250-8BITMIME" or "250 8BITMIME" after the first */
            for (const char *l = strchr(all, '\n'); l; l = strchr(l + 1, '\n'))
                if (strncasecmp(l + 1, "8BITMIME", 8) == 0 && (l[9] == '\0' || l[9] == '\n' ||
                                                               l[9] == ' '))
                    c->offers_8bitmime = true;
        }
        if (c->eightbit && !c->offers_8bitmime) {
            sim_smtpc_all(c, 554, "554 5.6.3 8-bit message and no 8BITMIME at the server", false);
            sim_smtpc_quit(c);
            return;
        }
        sim_smtpc_send(c, "MAIL FROM:<%s>%s", c->from,
                       c->eightbit ? " BODY=8BITMIME" : "");
        c->state = SIM_SMTPC_MAIL;
        return;
    case SIM_SMTPC_MAIL:
        if (code / 100 != 2) {
            sim_smtpc_all(c, code, text, false);
            sim_smtpc_quit(c);
            return;
        }
        c->cur = 0;
        sim_smtpc_next_rcpt(c);
        return;
    case SIM_SMTPC_RCPT: {
        struct sim_smtpc_rcpt *r = &c->rcpts[c->cur++];
        r->code = code;
        str_copy(r->reply, sizeof r->reply, text);
        r->accepted = code / 100 == 2;
        sim_smtpc_next_rcpt(c);
        return;
    }
    case SIM_SMTPC_DATA:
        if (code != 354) {
            sim_smtpc_all(c, code, text, true);
            sim_smtpc_quit(c);
            return;
        }
        sim_smtpc_body(c);
        return;
    case SIM_SMTPC_DOT:
        sim_smtpc_all(c, code, text, true);
        sim_smtpc_quit(c);
        return;
    case SIM_SMTPC_QUIT:
    case SIM_SMTPC_DONE:
        c->state = SIM_SMTPC_DONE;
        return;
    }
}

bool sim_smtpc_feed(struct sim_smtpc *c, const void *data, size_t len)
{
    if (c->state == SIM_SMTPC_DONE)
        return false;
    if (!buf_append(&c->in, data, len)) {
        sim_smtpc_fail(c, "reply too long");
        return false;
    }
    /* whole replies only: lines "ddd-..." up to "ddd ..." */
    for (;;) {
        size_t start = 0, end = 0;
        bool whole = false;
        int code = 0;
        while (start < c->in.len) {
            char *lf = memchr(c->in.data + start, '\n', c->in.len - start);
            if (!lf)
                break;
            size_t l = (size_t)(lf - c->in.data) - start;
            const char *line = c->in.data + start;
            if (l < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
                line[2] < '0' || line[2] > '9' || (l > 3 && line[3] != '-' && line[3] != ' ' &&
                                                   line[3] != '\r')) {
                sim_smtpc_fail(c, "malformed reply");
                return false;
            }
            int lc = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
            if (code && lc != code) {
                sim_smtpc_fail(c, "inconsistent multiline reply");
                return false;
            }
            code = lc;
            start += l + 1;
            if (l <= 3 || line[3] != '-') {
                whole = true;
                end = start;
                break;
            }
        }
        if (!whole)
            return true;
        /* text: every line after "ddd-"/"ddd ", joined with '\n', CRs removed */
        char all[4096], first[SIM_SMTPC_REPLY_MAX - 8];
        size_t n = 0;
        first[0] = '\0';
        for (size_t i = 0; i < end;) {
            const char *lf = memchr(c->in.data + i, '\n', end - i);
            size_t l = (size_t)(lf - (c->in.data + i));
            const char *line = c->in.data + i;
            size_t tl = l > 4 ? l - 4 : 0;
            const char *t = line + 4;
            if (tl && t[tl - 1] == '\r')
                tl--;
            if (c->transcript)
                c->transcript(c->ctx, 's', line, l && line[l - 1] == '\r' ? l - 1 : l);
            if (!first[0] && i == 0)
                snprintf(first, sizeof first, "%.*s", (int)tl, t);
            if (n + tl + 2 < sizeof all) {
                if (n)
                    all[n++] = '\n';
                memcpy(all + n, t, tl);
                n += tl;
            }
            i += l + 1;
        }
        all[n] = '\0';
        buf_consume(&c->in, end);
        sim_smtpc_reply(c, code, first, all);
        if (c->state == SIM_SMTPC_DONE)
            return false;
    }
}

void sim_smtpc_fail(struct sim_smtpc *c, const char *why)
{
    char text[SIM_SMTPC_REPLY_MAX];
    snprintf(text, sizeof text, "421 4.4.2 %s", why);
    if (c->state != SIM_SMTPC_QUIT && c->state != SIM_SMTPC_DONE)
        sim_smtpc_all(c, 421, text, false);
    c->state = SIM_SMTPC_DONE;
}
