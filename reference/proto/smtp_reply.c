/*
 * smtp_reply: SMTP replies and EHLO keywords (see smtp_reply.h).
 *
 * STANDARDS
 *   RFC 5321 4.2 (reply syntax, multi-line replies, one code for all lines), 4.2.1 (classes),
 *   4.5.3.1.5 (reply line length); RFC 2034 and RFC 3463 (enhanced status codes);
 *   RFC 1869 / RFC 5321 4.1.1.1 (EHLO keywords); RFC 4954 (AUTH, and the pre-standard
 *   "AUTH=" form some servers still send).
 *
 * SECURITY
 *   Every line comes from a remote server. Line length, line count and total text are
 *   bounded by the SMTP_REPLY_* limits; text bytes that could forge log lines (control
 *   bytes, 8-bit bytes) are replaced before anything else sees them.
 */
#include "smtp_reply.h"

#include <string.h>
#include <strings.h>

void smtp_reply_parser_init(struct smtp_reply_parser *p)
{
    memset(p, 0, sizeof *p);
}

static bool smtp_reply_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Length of an enhanced code "X.Y.Z" at s (X == cls, Y and Z 1-3 digits) followed by a blank
 * or the end; 0 when there is none.
 */
static size_t smtp_reply_enhanced_len(const char *s, size_t len, char cls)
{
    size_t i = 0;
    if (len < 5 || s[0] != cls || s[1] != '.')
        return 0;
    i = 2;
    for (int part = 0; part < 2; part++) {
        size_t start = i;
        while (i < len && smtp_reply_digit(s[i]) && i - start < 4)
            i++;
        if (i == start || i - start > 3)
            return 0;
        if (part == 0) {
            if (i >= len || s[i] != '.')
                return 0;
            i++;
        }
    }
    if (i < len && s[i] != ' ')
        return 0;
    return i;
}

static enum smtp_reply_result smtp_reply_fail(struct smtp_reply_parser *p, const char **error_r,
                                              const char *why)
{
    *error_r = why;
    smtp_reply_parser_init(p);
    return SMTP_REPLY_ERROR;
}

enum smtp_reply_result smtp_reply_feed_line(struct smtp_reply_parser *p, const char *line,
                                            size_t len, struct smtp_reply *reply_r,
                                            const char **error_r)
{
    struct smtp_reply *r = &p->cur;
    if (len + 2 > SMTP_REPLY_LINE_MAX)
        return smtp_reply_fail(p, error_r, "reply line too long");
    if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
        !smtp_reply_digit(line[2]))
        return smtp_reply_fail(p, error_r, "reply does not start with a code");
    if (len > 3 && line[3] != ' ' && line[3] != '-')
        return smtp_reply_fail(p, error_r, "bad separator after the reply code");
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    bool last = len == 3 || line[3] == ' ';
    if (p->started && code != r->code)
        return smtp_reply_fail(p, error_r, "reply lines with different codes");
    if (!p->started) {
        memset(r, 0, sizeof *r);
        r->code = code;
        p->started = true;
    }
    if (r->nlines >= SMTP_REPLY_LINES_MAX)
        return smtp_reply_fail(p, error_r, "too many reply lines");
    const char *text = len > 4 ? line + 4 : "";
    size_t tlen = len > 4 ? len - 4 : 0;
    size_t elen = smtp_reply_enhanced_len(text, tlen, line[0]);
    if (elen) {
        if (r->nlines == 0) {
            memcpy(r->enhanced, text, elen); /* elen <= 9 < SMTP_REPLY_ENH_MAX */
            r->enhanced[elen] = '\0';
        }
        text += elen;
        tlen -= elen;
        if (tlen && text[0] == ' ') {
            text++;
            tlen--;
        }
    }
    if (r->textlen + tlen + 2 > sizeof r->text)
        return smtp_reply_fail(p, error_r, "reply text too long");
    if (r->nlines)
        r->text[r->textlen++] = '\n';
    for (size_t i = 0; i < tlen; i++) {
        char c = text[i];
        unsigned char u = (unsigned char)c;
        if ((u < 0x20 && c != '\t') || u >= 0x7f)
            c = '?';
        r->text[r->textlen++] = c;
    }
    r->text[r->textlen] = '\0';
    r->nlines++;
    if (!last)
        return SMTP_REPLY_NEED_MORE;
    *reply_r = *r;
    p->started = false;
    return SMTP_REPLY_OK;
}

enum smtp_reply_result smtp_reply_parse(struct smtp_reply_parser *p, const char *data,
                                        size_t len, size_t *consumed_r,
                                        struct smtp_reply *reply_r, const char **error_r)
{
    const char *lf = memchr(data, '\n', len < SMTP_REPLY_LINE_MAX ? len : SMTP_REPLY_LINE_MAX);
    *consumed_r = 0;
    if (!lf) {
        if (len >= SMTP_REPLY_LINE_MAX)
            return smtp_reply_fail(p, error_r, "reply line too long");
        return SMTP_REPLY_NEED_MORE;
    }
    size_t linelen = (size_t)(lf - data);
    *consumed_r = linelen + 1;
    if (linelen && data[linelen - 1] == '\r')
        linelen--;
    return smtp_reply_feed_line(p, data, linelen, reply_r, error_r);
}

int smtp_reply_class(const struct smtp_reply *r)
{
    return r->code / 100;
}

const char *smtp_reply_line(const struct smtp_reply *r, size_t i, size_t *len_r)
{
    if (i >= r->nlines)
        return NULL;
    const char *s = r->text, *end = r->text + r->textlen;
    for (size_t k = 0; k < i; k++) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl)
            return NULL;
        s = nl + 1;
    }
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    *len_r = nl ? (size_t)(nl - s) : (size_t)(end - s);
    return s;
}

void smtp_reply_format(const struct smtp_reply *r, struct buf *out)
{
    buf_printf(out, "%d", r->code);
    if (r->enhanced[0])
        buf_printf(out, " %s", r->enhanced);
    for (size_t i = 0; i < r->nlines; i++) {
        size_t len;
        const char *s = smtp_reply_line(r, i, &len);
        if (s && len) {
            buf_append_char(out, ' ');
            buf_append(out, s, len);
        }
    }
}

struct smtp_ext_name {
    const char *name;
    unsigned bit;
};

static const struct smtp_ext_name smtp_ext_names[] = {
    {"PIPELINING", SMTP_EXT_PIPELINING},
    {"SIZE", SMTP_EXT_SIZE},
    {"8BITMIME", SMTP_EXT_8BITMIME},
    {"STARTTLS", SMTP_EXT_STARTTLS},
    {"AUTH", SMTP_EXT_AUTH},
    {"DSN", SMTP_EXT_DSN},
    {"ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES},
    {"SMTPUTF8", SMTP_EXT_SMTPUTF8},
    {"CHUNKING", SMTP_EXT_CHUNKING},
};

static unsigned smtp_auth_mech_bit(const char *s, size_t len)
{
    if (len == 5 && strncasecmp(s, "PLAIN", 5) == 0)
        return SMTP_AUTH_PLAIN;
    if (len == 5 && strncasecmp(s, "LOGIN", 5) == 0)
        return SMTP_AUTH_LOGIN;
    if (len == 8 && strncasecmp(s, "CRAM-MD5", 8) == 0)
        return SMTP_AUTH_CRAM_MD5;
    return len ? SMTP_AUTH_OTHER : 0;
}

/* The AUTH mechanisms in s[0..len), separated by blanks. */
static unsigned smtp_auth_mechs(const char *s, size_t len)
{
    unsigned bits = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && s[i] == ' ')
            i++;
        size_t start = i;
        while (i < len && s[i] != ' ')
            i++;
        bits |= smtp_auth_mech_bit(s + start, i - start);
    }
    return bits;
}

void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *e)
{
    memset(e, 0, sizeof *e);
    if (r->code != 250)
        return;
    for (size_t i = 1; i < r->nlines; i++) {
        size_t len;
        const char *s = smtp_reply_line(r, i, &len);
        if (!s)
            break;
        size_t kw = 0;
        while (kw < len && s[kw] != ' ' && s[kw] != '=')
            kw++;
        for (size_t k = 0; k < sizeof smtp_ext_names / sizeof smtp_ext_names[0]; k++) {
            const char *name = smtp_ext_names[k].name;
            if (strlen(name) != kw || strncasecmp(s, name, kw) != 0)
                continue;
            e->ext |= smtp_ext_names[k].bit;
            const char *arg = kw < len ? s + kw + 1 : s + len;
            size_t alen = kw < len ? len - kw - 1 : 0;
            if (smtp_ext_names[k].bit == SMTP_EXT_AUTH) {
                e->auth |= smtp_auth_mechs(arg, alen);
            } else if (smtp_ext_names[k].bit == SMTP_EXT_SIZE) {
                unsigned long long v = 0;
                size_t d = 0;
                while (d < alen && smtp_reply_digit(arg[d]) && v < 1000000000000ULL)
                    v = v * 10 + (unsigned long long)(arg[d++] - '0');
                if (d == alen)
                    e->size = v;
            }
        }
    }
}
