/*
 * smtp_cmd: SMTP command lines (see smtp_cmd.h).
 *
 * DESCRIPTION
 *   Turns one command line into a struct smtp_cmd, or into the exact reply the server should
 *   send. Meaning (state, policy) is the server's business; this file only knows syntax.
 *
 * STANDARDS
 *   RFC 5321 4.1.1 (commands), 4.1.2 (Mail-parameters, esmtp-keyword, esmtp-value),
 *   4.5.3.1.4 (line length), 4.2.4 (500/501 vs 555 for parameters, via RFC 1869 6);
 *   RFC 3030 2 (BDAT); RFC 3461 4 (xtext); RFC 3463 (enhanced codes 5.5.2, 5.5.4, 5.1.3,
 *   5.1.7).
 *
 * SECURITY
 *   The whole line is untrusted. It is length-checked and scanned for control bytes first;
 *   every copy into struct smtp_cmd is bounded by the field size, and those sizes exceed the
 *   line limit or are checked explicitly.
 */
#include "smtp_cmd.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

struct smtp_verb_entry {
    const char *name;
    enum smtp_verb verb;
};

static const struct smtp_verb_entry smtp_verbs[] = {
    {"HELO", SMTP_VERB_HELO}, {"EHLO", SMTP_VERB_EHLO},         {"MAIL", SMTP_VERB_MAIL},
    {"RCPT", SMTP_VERB_RCPT}, {"DATA", SMTP_VERB_DATA},         {"BDAT", SMTP_VERB_BDAT},
    {"RSET", SMTP_VERB_RSET}, {"NOOP", SMTP_VERB_NOOP},         {"QUIT", SMTP_VERB_QUIT},
    {"HELP", SMTP_VERB_HELP}, {"VRFY", SMTP_VERB_VRFY},         {"EXPN", SMTP_VERB_EXPN},
    {"ETRN", SMTP_VERB_ETRN}, {"STARTTLS", SMTP_VERB_STARTTLS}, {"AUTH", SMTP_VERB_AUTH},
    {"VERB", SMTP_VERB_VERB},
};

#define SMTP_NVERBS (sizeof smtp_verbs / sizeof smtp_verbs[0])
#define SMTP_BDAT_MAX (1ULL << 63)

static bool smtp_cmd_fail(struct smtp_reply_err *err, int code, const char *enhanced,
                          const char *text, const char *detail)
{
    err->code = code;
    err->enhanced = enhanced;
    err->text = text;
    err->detail = detail;
    return false;
}

static bool smtp_param_fail(struct smtp_reply_err *err, const char *detail)
{
    return smtp_cmd_fail(err, 555, "5.5.4", "Syntax error in MAIL/RCPT parameters", detail);
}

static bool smtp_is_keyword(const char *s, size_t n)
{
    /* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
    if (n == 0 || n > SMTP_PARAM_KEY_MAX || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return false;
    return true;
}

static bool smtp_is_value(const char *s, size_t n)
{
    /* esmtp-value = 1*(%d33-60 / %d62-126) */
    if (n == 0 || n > SMTP_PARAM_VALUE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 33 || c > 126 || c == '=')
            return false;
    }
    return true;
}

/* Mail-parameters after the path: *(SP esmtp-param); runs of SP are tolerated. */
static bool smtp_parse_params(const char *p, const char *end, struct smtp_cmd *cmd,
                              struct smtp_reply_err *err)
{
    while (p < end) {
        if (*p != ' ')
            return smtp_param_fail(err, "no space after the address");
        while (p < end && *p == ' ')
            p++;
        if (p == end)
            break;
        const char *key = p;
        while (p < end && *p != ' ' && *p != '=')
            p++;
        size_t key_len = (size_t)(p - key);
        const char *value = NULL;
        size_t value_len = 0;
        if (p < end && *p == '=') {
            value = ++p;
            while (p < end && *p != ' ')
                p++;
            value_len = (size_t)(p - value);
        }
        if (!smtp_is_keyword(key, key_len))
            return smtp_param_fail(err, "bad parameter keyword");
        if (value && !smtp_is_value(value, value_len))
            return smtp_param_fail(err, "bad parameter value");
        for (int i = 0; i < cmd->nparams; i++)
            if (strlen(cmd->params[i].key) == key_len &&
                strncasecmp(cmd->params[i].key, key, key_len) == 0)
                return smtp_param_fail(err, "duplicate parameter");
        if (cmd->nparams == SMTP_PARAMS_MAX)
            return smtp_param_fail(err, "too many parameters");
        struct smtp_param *param = &cmd->params[cmd->nparams++];
        for (size_t i = 0; i < key_len; i++)
            param->key[i] = (char)toupper((unsigned char)key[i]);
        param->key[key_len] = '\0';
        if (value)
            memcpy(param->value, value, value_len);
        param->value[value_len] = '\0';
        param->has_value = value != NULL;
    }
    return true;
}

/* MAIL FROM:<path> [params] and RCPT TO:<path> [params]; p points just after the verb. */
static bool smtp_parse_mail_rcpt(const char *p, const char *end, struct smtp_cmd *cmd,
                                 struct smtp_reply_err *err)
{
    bool mail = cmd->verb == SMTP_VERB_MAIL;
    const char *kw = mail ? " FROM:" : " TO:";
    size_t kw_len = strlen(kw);
    if ((size_t)(end - p) < kw_len || strncasecmp(p, kw, kw_len) != 0)
        return smtp_cmd_fail(err, 501, "5.5.4",
                             mail ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>",
                             NULL);
    p += kw_len;
    /* One space after the colon is common enough (and harmless) to accept, as Postfix does. */
    if (p < end && *p == ' ')
        p++;
    const char *enhanced = mail ? "5.1.7" : "5.1.3";
    const char *text = mail ? "Bad sender address syntax" : "Bad recipient address syntax";
    size_t consumed;
    const char *error;
    if (!addr_parse_path(p, (size_t)(end - p), &cmd->addr, &consumed, &error))
        return smtp_cmd_fail(err, 501, enhanced, text, error);
    if (!mail && (cmd->addr.flags & ADDR_F_NULL))
        return smtp_cmd_fail(err, 501, enhanced, text, "null recipient");
    return smtp_parse_params(p + consumed, end, cmd, err);
}

/* BDAT SP chunk-size [SP "LAST"] (RFC 3030 2). */
static bool smtp_parse_bdat(const char *arg, struct smtp_cmd *cmd, struct smtp_reply_err *err)
{
    const char *p = arg;
    unsigned long long v = 0;
    size_t digits = 0;
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (SMTP_BDAT_MAX - d) / 10)
            return smtp_cmd_fail(err, 501, "5.5.4", "Syntax: BDAT size [LAST]",
                                 "chunk size too large");
        v = v * 10 + d;
        p++;
        digits++;
    }
    if (digits == 0)
        return smtp_cmd_fail(err, 501, "5.5.4", "Syntax: BDAT size [LAST]", "missing chunk size");
    if (*p != '\0') {
        while (*p == ' ' || *p == '\t')
            p++;
        if (p == arg + digits || strcasecmp(p, "LAST") != 0)
            return smtp_cmd_fail(err, 501, "5.5.4", "Syntax: BDAT size [LAST]", NULL);
        cmd->bdat_last = true;
    }
    cmd->bdat_size = v;
    return true;
}

static enum smtp_verb smtp_lookup_verb(const char *s, size_t n)
{
    for (size_t i = 0; i < SMTP_NVERBS; i++)
        if (strlen(smtp_verbs[i].name) == n && strncasecmp(smtp_verbs[i].name, s, n) == 0)
            return smtp_verbs[i].verb;
    return SMTP_VERB_UNKNOWN;
}

bool smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *cmd, struct smtp_reply_err *err)
{
    memset(cmd, 0, sizeof *cmd);
    err->detail = NULL;
    if (len > SMTP_LINE_MAX - 2)
        return smtp_cmd_fail(err, 500, "5.5.2", "Line too long", NULL);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 32 && c != '\t') || c == 127)
            return smtp_cmd_fail(err, 500, "5.5.2", "Syntax error, control character in command",
                                 NULL);
    }
    const char *end = line + len;
    while (end > line && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    const char *p = line;
    while (p < end && *p != ' ' && *p != '\t')
        p++;
    cmd->verb = smtp_lookup_verb(line, (size_t)(p - line));
    if (cmd->verb == SMTP_VERB_UNKNOWN)
        return smtp_cmd_fail(err, 500, "5.5.2", "Syntax error, command unrecognized", NULL);

    const char *a = p;
    while (a < end && (*a == ' ' || *a == '\t'))
        a++;
    size_t arg_len = (size_t)(end - a); /* < SMTP_LINE_MAX <= SMTP_ARG_MAX */
    memcpy(cmd->arg, a, arg_len);
    cmd->arg[arg_len] = '\0';

    switch (cmd->verb) {
    case SMTP_VERB_MAIL:
    case SMTP_VERB_RCPT:
        return smtp_parse_mail_rcpt(p, end, cmd, err);
    case SMTP_VERB_BDAT:
        return smtp_parse_bdat(cmd->arg, cmd, err);
    case SMTP_VERB_HELO:
        if (arg_len == 0)
            return smtp_cmd_fail(err, 501, "5.5.4", "Syntax: HELO hostname", NULL);
        return true;
    case SMTP_VERB_EHLO:
        if (arg_len == 0)
            return smtp_cmd_fail(err, 501, "5.5.4", "Syntax: EHLO hostname", NULL);
        return true;
    case SMTP_VERB_VRFY:
    case SMTP_VERB_EXPN:
    case SMTP_VERB_ETRN:
    case SMTP_VERB_AUTH:
        if (arg_len == 0)
            return smtp_cmd_fail(err, 501, "5.5.4", "Syntax error, argument required", NULL);
        return true;
    case SMTP_VERB_DATA:
    case SMTP_VERB_RSET:
    case SMTP_VERB_QUIT:
    case SMTP_VERB_STARTTLS:
        if (arg_len != 0)
            return smtp_cmd_fail(err, 501, "5.5.4", "Syntax error, no parameters allowed", NULL);
        return true;
    case SMTP_VERB_NOOP:
    case SMTP_VERB_HELP:
    case SMTP_VERB_VERB:
    case SMTP_VERB_UNKNOWN:
        break;
    }
    return true;
}

const struct smtp_param *smtp_cmd_param(const struct smtp_cmd *cmd, const char *key)
{
    for (int i = 0; i < cmd->nparams && i < SMTP_PARAMS_MAX; i++)
        if (strcasecmp(cmd->params[i].key, key) == 0)
            return &cmd->params[i];
    return NULL;
}

const char *smtp_verb_name(enum smtp_verb verb)
{
    for (size_t i = 0; i < SMTP_NVERBS; i++)
        if (smtp_verbs[i].verb == verb)
            return smtp_verbs[i].name;
    return "UNKNOWN";
}

static int smtp_hex_upper(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool smtp_xtext_decode(const char *in, char *out, size_t outsize)
{
    size_t o = 0;
    if (outsize == 0)
        return false;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        unsigned char c = *p;
        if (c == '+') {
            int hi = smtp_hex_upper(p[1]);
            int lo = hi < 0 ? -1 : smtp_hex_upper(p[2]);
            if (lo < 0)
                return false;
            c = (unsigned char)(hi * 16 + lo);
            if (c == 0)
                return false;
            p += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return false;
        }
        if (o + 1 >= outsize)
            return false;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}

void smtp_xtext_encode(const char *in, struct buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (*p >= 33 && *p <= 126 && *p != '+' && *p != '=') {
            buf_append_char(out, (char)*p);
        } else {
            char esc[3] = {'+', hex[*p >> 4], hex[*p & 15]};
            buf_append(out, esc, sizeof esc);
        }
    }
}
