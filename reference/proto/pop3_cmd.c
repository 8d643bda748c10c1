/*
 * pop3_cmd: POP3 command line parsing (see pop3_cmd.h).
 *
 * STANDARDS
 *   RFC 1939 3 (commands: keyword, single SP, arguments), 5 (TRANSACTION commands), 7 (USER,
 *   PASS, TOP, UIDL); RFC 2449 4 (255-octet command lines, CAPA); RFC 2595 4 (STLS);
 *   RFC 5034 4 (AUTH, initial response, longer lines); RFC 4616 2 (PLAIN message).
 *
 * SECURITY
 *   The whole line is untrusted. Every field is bounded and copied with length checks; numbers
 *   are bounded before they are used; the password never appears in an error text.
 */
#include "pop3_cmd.h"

#include <string.h>
#include <strings.h>

#include "str.h"

enum pop3_args {
    POP3_ARGS_NONE,
    POP3_ARGS_NAME,     /* USER */
    POP3_ARGS_REST,     /* PASS */
    POP3_ARGS_AUTH,
    POP3_ARGS_OPT_MSG,  /* LIST, UIDL */
    POP3_ARGS_MSG,      /* RETR, DELE */
    POP3_ARGS_TOP,
};

static const struct pop3_verb_def {
    const char *name;
    enum pop3_verb verb;
    enum pop3_args args;
} pop3_verbs[] = {
    {"USER", POP3_VERB_USER, POP3_ARGS_NAME},   {"PASS", POP3_VERB_PASS, POP3_ARGS_REST},
    {"AUTH", POP3_VERB_AUTH, POP3_ARGS_AUTH},   {"CAPA", POP3_VERB_CAPA, POP3_ARGS_NONE},
    {"STLS", POP3_VERB_STLS, POP3_ARGS_NONE},   {"QUIT", POP3_VERB_QUIT, POP3_ARGS_NONE},
    {"STAT", POP3_VERB_STAT, POP3_ARGS_NONE},   {"LIST", POP3_VERB_LIST, POP3_ARGS_OPT_MSG},
    {"RETR", POP3_VERB_RETR, POP3_ARGS_MSG},    {"DELE", POP3_VERB_DELE, POP3_ARGS_MSG},
    {"NOOP", POP3_VERB_NOOP, POP3_ARGS_NONE},   {"RSET", POP3_VERB_RSET, POP3_ARGS_NONE},
    {"TOP", POP3_VERB_TOP, POP3_ARGS_TOP},      {"UIDL", POP3_VERB_UIDL, POP3_ARGS_OPT_MSG},
};

#define POP3_NVERBS (sizeof pop3_verbs / sizeof pop3_verbs[0])

const char *pop3_verb_name(enum pop3_verb verb)
{
    for (size_t i = 0; i < POP3_NVERBS; i++)
        if (pop3_verbs[i].verb == verb)
            return pop3_verbs[i].name;
    return "UNKNOWN";
}

/* A decimal number of 1-10 digits, within [min, max]; advances *p past it. */
static bool pop3_number(const char **p, const char *end, unsigned long min, unsigned long max,
                        unsigned long *v_r)
{
    const char *s = *p;
    unsigned long v = 0;
    size_t digits = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        if (++digits > 10)
            return false;
        v = v * 10 + (unsigned long)(*s - '0');
        s++;
    }
    if (digits == 0 || v < min || v > max)
        return false;
    *p = s;
    *v_r = v;
    return true;
}

static const char *pop3_skip_sp(const char *p, const char *end)
{
    while (p < end && *p == ' ')
        p++;
    return p;
}

bool pop3_cmd_parse(const char *line, size_t len, struct pop3_cmd *cmd, const char **error_r)
{
    memset(cmd, 0, offsetof(struct pop3_cmd, initial));
    cmd->initial[0] = '\0';
    cmd->has_initial = false;
    cmd->has_msg = false;
    cmd->msg = 0;
    cmd->lines = 0;
    if (len >= POP3_AUTH_LINE_MAX - 1 || memchr(line, '\0', len) || memchr(line, '\r', len) ||
        memchr(line, '\n', len)) {
        *error_r = "Invalid command line";
        return false;
    }
    size_t vlen = 0;
    while (vlen < len && vlen < 5 && line[vlen] != ' ')
        vlen++;
    const struct pop3_verb_def *def = NULL;
    for (size_t i = 0; i < POP3_NVERBS && (vlen == 3 || vlen == 4); i++)
        if (strlen(pop3_verbs[i].name) == vlen && strncasecmp(line, pop3_verbs[i].name, vlen) == 0)
            def = &pop3_verbs[i];
    if (!def) {
        *error_r = "Unknown command";
        return false;
    }
    cmd->verb = def->verb;
    if (def->verb != POP3_VERB_AUTH && len > POP3_LINE_MAX - 2) {
        *error_r = "Command line too long";
        return false;
    }
    const char *end = line + len;
    const char *p = line + vlen;
    if (def->args == POP3_ARGS_REST) {
        /* PASS: everything after the single SP, as it is. */
        if (p == end) {
            *error_r = "PASS needs a password";
            return false;
        }
        size_t n = (size_t)(end - p - 1);
        if (n > POP3_ARG_MAX) {
            *error_r = "Password too long";
            return false;
        }
        memcpy(cmd->arg, p + 1, n);
        cmd->arg[n] = '\0';
        return true;
    }
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (p < end && *p != ' ') {
        *error_r = "Unknown command";
        return false;
    }
    p = pop3_skip_sp(p, end);
    switch (def->args) {
    case POP3_ARGS_NONE:
        if (p != end) {
            *error_r = "No arguments allowed";
            return false;
        }
        return true;
    case POP3_ARGS_NAME:
    case POP3_ARGS_AUTH: {
        const char *w = p;
        while (p < end && *p != ' ')
            p++;
        size_t n = (size_t)(p - w);
        if (n == 0 || n > POP3_ARG_MAX || (def->args == POP3_ARGS_NAME && p != end)) {
            *error_r = def->args == POP3_ARGS_NAME ? "USER needs one name" : "AUTH needs a mechanism";
            return false;
        }
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)w[i] < 0x20 || w[i] == 0x7f) {
                *error_r = "Invalid characters in argument";
                return false;
            }
        memcpy(cmd->arg, w, n);
        cmd->arg[n] = '\0';
        if (def->args == POP3_ARGS_AUTH) {
            p = pop3_skip_sp(p, end);
            if (p < end) {
                size_t m = (size_t)(end - p);
                if (memchr(p, ' ', m) || m > POP3_AUTH_LINE_MAX) {
                    *error_r = "Invalid initial response";
                    return false;
                }
                memcpy(cmd->initial, p, m);
                cmd->initial[m] = '\0';
                cmd->has_initial = true;
            }
        }
        return true;
    }
    case POP3_ARGS_OPT_MSG:
        if (p == end)
            return true;
        /* fall through */
    case POP3_ARGS_MSG:
    case POP3_ARGS_TOP:
        if (!pop3_number(&p, end, 1, POP3_MSG_MAX, &cmd->msg)) {
            *error_r = "Invalid message number";
            return false;
        }
        cmd->has_msg = true;
        if (def->args == POP3_ARGS_TOP) {
            const char *q = pop3_skip_sp(p, end);
            if (q == p || !pop3_number(&q, end, 0, POP3_LINES_MAX, &cmd->lines)) {
                *error_r = "TOP needs a message number and a line count";
                return false;
            }
            p = q;
        }
        if (p != end) {
            *error_r = "Too many arguments";
            return false;
        }
        return true;
    case POP3_ARGS_REST:
        break;
    }
    *error_r = "Unknown command";
    return false;
}

long pop3_base64_decode(const char *in, size_t len, unsigned char *out, size_t outsize)
{
    if (len % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        size_t pad = 0;
        for (size_t k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + k];
            if (c == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad)
                return -1; /* data after padding */
            v[k] = str_b64_digit(c, '/');
            if (v[k] < 0)
                return -1;
        }
        if (pad == 1 && in[i + 2] == '=')
            return -1;
        unsigned long triple = ((unsigned long)v[0] << 18) | ((unsigned long)v[1] << 12) |
                               ((unsigned long)v[2] << 6) | (unsigned long)v[3];
        unsigned char bytes[3] = {(unsigned char)(triple >> 16), (unsigned char)(triple >> 8),
                                  (unsigned char)triple};
        size_t n = 3 - pad;
        if (o + n > outsize)
            return -1;
        memcpy(out + o, bytes, n);
        o += n;
    }
    return (long)o;
}

bool pop3_sasl_plain(const char *b64, size_t len, char *authzid, char *authcid, char *passwd,
                     size_t fieldsize)
{
    unsigned char raw[3 * POP3_SASL_FIELD_MAX + 8];
    authzid[0] = authcid[0] = passwd[0] = '\0';
    long n = pop3_base64_decode(b64, len, raw, sizeof raw);
    if (n < 0)
        return false;
    const unsigned char *p = raw, *end = raw + n;
    const unsigned char *nul1 = memchr(p, '\0', (size_t)n);
    if (!nul1)
        return false;
    const unsigned char *nul2 = memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1));
    if (!nul2 || memchr(nul2 + 1, '\0', (size_t)(end - nul2 - 1)))
        return false;
    size_t lz = (size_t)(nul1 - p), lc = (size_t)(nul2 - nul1 - 1), lp = (size_t)(end - nul2 - 1);
    size_t limit = fieldsize < POP3_SASL_FIELD_MAX + 1 ? fieldsize : POP3_SASL_FIELD_MAX + 1;
    if (lc == 0 || lp == 0 || lz >= limit || lc >= limit || lp >= limit) {
        memset(raw, 0, sizeof raw);
        return false;
    }
    memcpy(authzid, p, lz);
    authzid[lz] = '\0';
    memcpy(authcid, nul1 + 1, lc);
    authcid[lc] = '\0';
    memcpy(passwd, nul2 + 1, lp);
    passwd[lp] = '\0';
    memset(raw, 0, sizeof raw);
    return true;
}
