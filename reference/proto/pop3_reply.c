/*
 * pop3_reply: POP3 responses as a client reads them (see pop3_reply.h).
 *
 * STANDARDS
 *   RFC 1939 3 (status indicators, multi-line responses and byte stuffing), 7 (UIDL: unique-id
 *   of 1 to 70 characters 0x21-0x7E); RFC 2449 5 (CAPA), 8 (response codes); RFC 2595 4 (STLS);
 *   RFC 5034 (SASL, "+ " continuations).
 *
 * SECURITY
 *   Lengths are checked before every copy; numbers are bounded; nothing here allocates except
 *   through the caller's bounded buffer.
 */
#include "pop3_reply.h"

#include <string.h>
#include <strings.h>

#include "str.h"

static size_t pop3_line_len(const char *data, size_t len, size_t *eol_r)
{
    const char *lf = memchr(data, '\n', len);
    if (!lf)
        return 0;
    size_t n = (size_t)(lf - data);
    *eol_r = 1;
    if (n > 0 && data[n - 1] == '\r') {
        n--;
        *eol_r = 2;
    }
    return n + 1; /* +1 so an empty line is distinguishable from "no line"; caller subtracts */
}

enum pop3_reply_result pop3_status_parse(const char *data, size_t len, size_t *consumed_r,
                                         struct pop3_status *st, const char **error_r)
{
    *consumed_r = 0;
    size_t eol = 0;
    size_t n1 = pop3_line_len(data, len < POP3_REPLY_LINE_MAX ? len : POP3_REPLY_LINE_MAX, &eol);
    if (n1 == 0) {
        if (len >= POP3_REPLY_LINE_MAX) {
            *error_r = "status line too long";
            return POP3_REPLY_ERROR;
        }
        return POP3_REPLY_NEED_MORE;
    }
    size_t n = n1 - 1;
    const char *p = data, *end = data + n;
    memset(st, 0, sizeof *st);
    if (n >= 3 && memcmp(p, "+OK", 3) == 0 && (n == 3 || p[3] == ' ')) {
        st->kind = POP3_STATUS_OK;
        p += 3;
    } else if (n >= 4 && memcmp(p, "-ERR", 4) == 0 && (n == 4 || p[4] == ' ')) {
        st->kind = POP3_STATUS_ERR;
        p += 4;
    } else if (n >= 1 && p[0] == '+' && (n == 1 || p[1] == ' ')) {
        st->kind = POP3_STATUS_CONT;
        p += 1;
    } else {
        *error_r = "not a POP3 status line";
        return POP3_REPLY_ERROR;
    }
    if (p < end && *p == ' ')
        p++;
    if (st->kind != POP3_STATUS_CONT && p < end && *p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (close && (size_t)(close - p - 1) < sizeof st->code) {
            size_t k = 0;
            for (const char *q = p + 1; q < close; q++) {
                st->code[k++] = *q;
                if (*q < 0x20 || *q >= 0x7f)
                    st->code[k - 1] = '?';
            }
            st->code[k] = '\0';
            p = close + 1;
            if (p < end && *p == ' ')
                p++;
        }
    }
    size_t k = 0;
    for (; p < end && k + 1 < sizeof st->text; p++) {
        st->text[k++] = *p;
        if (*p < 0x20 || *p >= 0x7f)
            st->text[k - 1] = '?';
    }
    st->text[k] = '\0';
    *consumed_r = n + eol;
    return POP3_REPLY_OK;
}

void pop3_multiline_init(struct pop3_multiline *m)
{
    m->lines = 0;
}

enum pop3_reply_result pop3_multiline_feed(struct pop3_multiline *m, const char *data,
                                           size_t len, size_t *consumed_r, struct buf *out,
                                           const char **error_r)
{
    size_t pos = 0;
    *consumed_r = 0;
    while (pos < len) {
        size_t eol = 0;
        size_t avail = len - pos;
        size_t n1 = pop3_line_len(data + pos, avail, &eol);
        if (n1 == 0) {
            if (avail > POP3_BODY_LINE_MAX) {
                *error_r = "line too long in a multi-line response";
                return POP3_REPLY_ERROR;
            }
            return POP3_REPLY_NEED_MORE;
        }
        size_t n = n1 - 1;
        if (n + eol > POP3_BODY_LINE_MAX) {
            *error_r = "line too long in a multi-line response";
            return POP3_REPLY_ERROR;
        }
        const char *line = data + pos;
        if (n == 1 && line[0] == '.') {
            pos += n + eol;
            *consumed_r = pos;
            return POP3_REPLY_OK;
        }
        if (n > 0 && line[0] == '.') {
            line++;
            n--;
        }
        if (!buf_append(out, line, n) || !buf_append(out, "\r\n", 2)) {
            *error_r = "multi-line response too large";
            return POP3_REPLY_ERROR;
        }
        m->lines++;
        pos += (n1 - 1) + eol;
        *consumed_r = pos;
    }
    return POP3_REPLY_NEED_MORE;
}

/* A decimal number up to max at *p; advances. */
static bool pop3_num(const char **p, const char *end, unsigned long max, unsigned long *v_r)
{
    unsigned long v = 0;
    const char *s = *p;
    if (s >= end || *s < '0' || *s > '9')
        return false;
    while (s < end && *s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *v_r = v;
    return true;
}

bool pop3_uidl_line(const char *line, size_t len, unsigned long *msg_r,
                    char uid[POP3_UID_MAX + 1])
{
    const char *p = line, *end = line + len;
    if (!pop3_num(&p, end, 1000000000UL, msg_r) || *msg_r == 0)
        return false;
    if (p >= end || *p != ' ')
        return false;
    while (p < end && *p == ' ')
        p++;
    size_t k = 0;
    while (p < end && *p != ' ') {
        if (*p < 0x21 || *p > 0x7e || k >= POP3_UID_MAX)
            return false;
        uid[k++] = *p++;
    }
    while (p < end && *p == ' ')
        p++;
    uid[k] = '\0';
    return k > 0 && p == end;
}

bool pop3_list_line(const char *line, size_t len, unsigned long *msg_r, unsigned long *size_r)
{
    const char *p = line, *end = line + len;
    if (!pop3_num(&p, end, 1000000000UL, msg_r))
        return false;
    if (p >= end || *p != ' ')
        return false;
    while (p < end && *p == ' ')
        p++;
    if (!pop3_num(&p, end, 0xffffffffffffUL, size_r))
        return false;
    /* RFC 1939 allows more after the size ("server-specific information"). */
    return p == end || *p == ' ';
}

static bool pop3_word_is(const char *w, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(w, name, n) == 0;
}

unsigned pop3_capa_parse(const char *body, size_t len)
{
    unsigned caps = 0;
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        const char *le = lf ? lf : end;
        const char *next = lf ? lf + 1 : end;
        if (le > p && le[-1] == '\r')
            le--;
        /* first word and the rest */
        const char *w = p;
        while (w < le && *w != ' ')
            w++;
        size_t wn = (size_t)(w - p);
        if (pop3_word_is(p, wn, "STLS")) {
            caps |= POP3_CAPA_STLS;
        } else if (pop3_word_is(p, wn, "USER")) {
            caps |= POP3_CAPA_USER;
        } else if (pop3_word_is(p, wn, "UIDL")) {
            caps |= POP3_CAPA_UIDL;
        } else if (pop3_word_is(p, wn, "TOP")) {
            caps |= POP3_CAPA_TOP;
        } else if (pop3_word_is(p, wn, "PIPELINING")) {
            caps |= POP3_CAPA_PIPELINING;
        } else if (pop3_word_is(p, wn, "RESP-CODES")) {
            caps |= POP3_CAPA_RESP_CODES;
        } else if (pop3_word_is(p, wn, "SASL")) {
            const char *q = w;
            while (q < le) {
                while (q < le && *q == ' ')
                    q++;
                const char *s = q;
                while (q < le && *q != ' ')
                    q++;
                if (pop3_word_is(s, (size_t)(q - s), "PLAIN"))
                    caps |= POP3_CAPA_SASL_PLAIN;
            }
        }
        p = next;
    }
    return caps;
}
