/* qenv: the queue file envelope, written and parsed without I/O (see qenv.h). */
#include "qenv.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "xalloc.h"

bool queue_id_valid(const char *id)
{
    if (strlen(id) != QUEUE_ID_LEN)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z')))
            return false;
    return true;
}

static void queue_escape(struct buf *out, const char *s)
{
    if (!s || !*s) {
        buf_append_char(out, '-');
        return;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p >= 0x7f || *p == '%' || (*p == '-' && p == (const unsigned char *)s))
            buf_printf(out, "%%%02X", *p);
        else
            buf_append_char(out, (char)*p);
    }
}

static char *queue_unescape(const char *s)
{
    if (strcmp(s, "-") == 0)
        return xstrdup("");
    size_t n = strlen(s);
    char *out = xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n + 1 && s[i + 1] && s[i + 2]) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            char *end;
            long v = strtol(hex, &end, 16);
            if (*end == '\0' && v > 0) {
                *o++ = (char)v;
                i += 2;
                continue;
            }
        }
        *o++ = s[i];
    }
    *o = '\0';
    return out;
}

void queue_envelope_add_rcpt(struct queue_envelope *env, const char *addr, const char *orcpt,
                             const char *notify, bool expanded)
{
    env->rcpts = xreallocarray(env->rcpts, env->nrcpts + 1, sizeof *env->rcpts);
    struct queue_rcpt *r = &env->rcpts[env->nrcpts++];
    memset(r, 0, sizeof *r);
    r->addr = xstrdup(addr);
    r->orcpt = xstrdup(orcpt ? orcpt : "");
    r->notify = xstrdup(notify ? notify : "");
    r->expanded = expanded;
    r->status = QUEUE_RCPT_PENDING;
    r->attempt = -1;
    r->reason_off = -1;
}

void queue_envelope_free(struct queue_envelope *env)
{
    free(env->sender);
    free(env->client_ip);
    free(env->helo);
    free(env->rdns);
    free(env->proto);
    free(env->auth_user);
    free(env->ret);
    free(env->envid);
    free(env->body);
    for (size_t i = 0; i < env->nrcpts; i++) {
        free(env->rcpts[i].addr);
        free(env->rcpts[i].orcpt);
        free(env->rcpts[i].notify);
    }
    free(env->rcpts);
    memset(env, 0, sizeof *env);
}

void queue_reason_sanitise(char out[QENV_REASON_LEN + 1], const char *reason)
{
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)reason; *p && k < QENV_REASON_LEN; p++) {
        char c = (char)*p;
        if (*p < ' ' || *p > '~')
            c = '?';
        out[k++] = c;
    }
    out[k] = '\0';
}

void queue_envelope_format_reason(char out[QENV_REASON_LINE_LEN + 1], const char *reason)
{
    size_t o = 0;
    out[o++] = 'Y';
    out[o++] = ' ';
    for (const unsigned char *p = (const unsigned char *)(reason ? reason : ""); *p; p++) {
        unsigned char c = *p < ' ' || *p > '~' ? '?' : *p;
        if (c == ' ' || c == '%' || (c == '-' && o == 2)) { /* a lone "-" means empty */
            if (o + 3 > QENV_REASON_LINE_LEN)
                break;
            snprintf(out + o, 4, "%%%02X", c);
            o += 3;
        } else {
            if (o + 1 > QENV_REASON_LINE_LEN)
                break;
            out[o++] = (char)c;
        }
    }
    while (o < QENV_REASON_LINE_LEN)
        out[o++] = ' ';
    out[o] = '\0';
}

void queue_envelope_format_retry(char out[QENV_RETRY_LEN + 1], time_t next_attempt,
                                 unsigned attempts, bool warned)
{
    snprintf(out, QENV_RETRY_LEN + 1, "X %016llx %08x %c",
             (unsigned long long)(next_attempt < 0 ? 0 : next_attempt), attempts, warned ? 'w' : '-');
}

void queue_envelope_format(struct buf *out, const char *id, const struct queue_envelope *env)
{
    buf_printf(out, "Z zolder-queue 1\nI %s\nT %lld\nS ", id, (long long)env->arrival);
    queue_escape(out, env->sender);
    buf_append_str(out, "\nC ");
    queue_escape(out, env->client_ip);
    buf_append_char(out, ' ');
    queue_escape(out, env->helo);
    buf_append_char(out, ' ');
    queue_escape(out, env->rdns);
    buf_append_char(out, ' ');
    queue_escape(out, env->proto);
    buf_append_char(out, ' ');
    queue_escape(out, env->auth_user);
    buf_append_str(out, "\nE ");
    queue_escape(out, env->ret);
    buf_append_char(out, ' ');
    queue_escape(out, env->envid);
    buf_append_char(out, ' ');
    queue_escape(out, env->body);
    buf_append_char(out, '\n');
    char retry[QENV_RETRY_LEN + 1];
    queue_envelope_format_retry(retry, env->next_attempt, env->attempts, env->warned);
    buf_append_str(out, retry);
    buf_append_char(out, '\n');
    for (size_t i = 0; i < env->nrcpts; i++) {
        const struct queue_rcpt *r = &env->rcpts[i];
        buf_printf(out, "R %c %016llx %c ", r->status,
                   (unsigned long long)r->attempt, r->expanded ? 'x' : '-');
        queue_escape(out, r->addr);
        buf_append_char(out, ' ');
        queue_escape(out, r->orcpt);
        buf_append_char(out, ' ');
        queue_escape(out, r->notify);
        char reason[QENV_REASON_LINE_LEN + 1];
        queue_envelope_format_reason(reason, r->reason);
        buf_printf(out, "\n%s\n", reason);
    }
    buf_append_str(out, "D\n");
}

int queue_envelope_parse(const char *data, size_t len, const char *id,
                         struct queue_envelope *env, size_t *data_off_r, const char **error_r)
{
    memset(env, 0, sizeof *env);
    env->retry_off = -1;
    size_t pos = 0;
    bool saw_magic = false;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        if (!nl)
            break;
        size_t llen = (size_t)(nl - (data + pos));
        char *line = xstrndup(data + pos, llen);
        size_t line_off = pos;
        pos += llen + 1;
        char *f[8];
        int n = str_split(line, " ", f, 8);
        int ok = 1;
        if (n < 1) {
            free(line);
            *error_r = "empty envelope line";
            queue_envelope_free(env);
            return -1;
        }
        if (strcmp(f[0], "Z") == 0) {
            saw_magic = n == 3 && strcmp(f[1], "zolder-queue") == 0 && strcmp(f[2], "1") == 0;
            ok = saw_magic;
        } else if (strcmp(f[0], "I") == 0 && n == 2) {
            ok = strcmp(f[1], id) == 0;
        } else if (strcmp(f[0], "T") == 0 && n == 2) {
            env->arrival = (time_t)strtoll(f[1], NULL, 10);
        } else if (strcmp(f[0], "S") == 0 && n == 2 && !env->sender) {
            env->sender = queue_unescape(f[1]);
        } else if (strcmp(f[0], "C") == 0 && n == 6 && !env->client_ip) {
            env->client_ip = queue_unescape(f[1]);
            env->helo = queue_unescape(f[2]);
            env->rdns = queue_unescape(f[3]);
            env->proto = queue_unescape(f[4]);
            env->auth_user = queue_unescape(f[5]);
        } else if (strcmp(f[0], "E") == 0 && n == 4 && !env->ret) {
            env->ret = queue_unescape(f[1]);
            env->envid = queue_unescape(f[2]);
            env->body = queue_unescape(f[3]);
        } else if (strcmp(f[0], "X") == 0 && n == 4 && env->retry_off < 0) {
            const char *raw = data + line_off;
            ok = llen == QENV_RETRY_LEN && strspn(raw + 2, "0123456789abcdef") == 16 && raw[18] == ' ' &&
                 strspn(raw + 19, "0123456789abcdef") == 8 && raw[27] == ' ' && strchr("-w", raw[28]);
            if (ok) {
                unsigned long long next = strtoull(f[1], NULL, 16);
                env->next_attempt = next > (unsigned long long)INT64_MAX / 2 ? 0 : (time_t)next;
                env->attempts = (unsigned)strtoul(f[2], NULL, 16);
                env->warned = f[3][0] == 'w';
                env->retry_off = (off_t)line_off;
            }
        } else if (strcmp(f[0], "R") == 0 && n == 7) {
            /* Fixed columns: the status byte and attempt field are overwritten in place. */
            const char *raw = data + line_off;
            bool fixed = llen > 21 && raw[1] == ' ' && raw[3] == ' ' && raw[20] == ' ' &&
                         strchr("PDF", raw[2]) && strspn(raw + 4, "0123456789abcdef") == 16;
            if (!fixed || env->nrcpts >= QUEUE_RCPT_MAX) {
                ok = 0;
            } else {
                char *addr = queue_unescape(f[4]), *orcpt = queue_unescape(f[5]),
                     *notify = queue_unescape(f[6]);
                queue_envelope_add_rcpt(env, addr, orcpt, notify, f[3][0] == 'x');
                free(addr);
                free(orcpt);
                free(notify);
                struct queue_rcpt *r = &env->rcpts[env->nrcpts - 1];
                r->status = f[1][0];
                r->attempt = (long long)strtoull(f[2], NULL, 16);
                r->status_off = (off_t)(line_off + 2);
                r->attempt_off = (off_t)(line_off + 4);
            }
        } else if (strcmp(f[0], "Y") == 0) {
            /* Fixed width, blank padded: read from the raw line, after its recipient's R. */
            const char *raw = data + line_off;
            struct queue_rcpt *r = env->nrcpts ? &env->rcpts[env->nrcpts - 1] : NULL;
            ok = r && r->reason_off < 0 && llen == QENV_REASON_LINE_LEN && raw[1] == ' ';
            if (ok) {
                size_t end = llen;
                while (end > 2 && raw[end - 1] == ' ')
                    end--;
                char field[QENV_REASON_LEN + 1];
                memcpy(field, raw + 2, end - 2);
                field[end - 2] = '\0';
                ok = !strchr(field, ' ');
                if (ok) {
                    char *text = field[0] ? queue_unescape(field) : xstrdup("");
                    queue_reason_sanitise(r->reason, text);
                    free(text);
                    r->reason_off = (off_t)line_off;
                }
            }
        } else if (strcmp(f[0], "D") == 0 && n == 1) {
            free(line);
            if (!saw_magic || !env->sender || !env->client_ip || !env->ret) {
                *error_r = "incomplete envelope";
                queue_envelope_free(env);
                return -1;
            }
            *data_off_r = pos;
            return 0;
        } else {
            ok = 0;
        }
        free(line);
        if (!ok) {
            *error_r = "malformed envelope line";
            queue_envelope_free(env);
            return -1;
        }
    }
    *error_r = "no data marker (truncated queue file)";
    queue_envelope_free(env);
    return -1;
}

