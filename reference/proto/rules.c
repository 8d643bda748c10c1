/* rules: a user's delivery rules (see rules.h). */
#include "rules.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hdr.h"
#include "str.h"
#include "xalloc.h"

enum rules_what { W_HEADER_CONTAINS, W_HEADER_MATCHES, W_HEADER_EXISTS, W_BODY_CONTAINS,
                  W_BODY_MATCHES, W_SIZE_GT, W_SIZE_LT, W_ALWAYS };

struct rules_cond {
    enum rules_what what;
    bool negate;
    char *header;        /* for W_HEADER_* */
    char *text;          /* for contains */
    regex_t re;          /* for matches */
    bool has_re;
    unsigned long size;
};

struct rules_rule {
    struct rules_cond conds[RULES_CONDS_MAX];
    size_t nconds;
    enum rules_kind kind;
    char *arg;
    unsigned days;       /* vacation */
    unsigned lineno;
};

struct rules {
    struct rules_rule *rules;
    size_t n;
};

bool rules_folder_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > RULES_FOLDER_MAX || name[0] == '.')
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-'))
            return false;
    /* MAIL_DIR/rules is this file; NAME.lock is the dotlock of folder NAME */
    if (strcasecmp(name, "rules") == 0 || (n >= 5 && strcasecmp(name + n - 5, ".lock") == 0))
        return false;
    return true;
}

static bool rules_address_ok(const char *a)
{
    const char *at = strchr(a, '@');
    if (!at || at == a || !at[1] || strchr(at + 1, '@') || strlen(a) > 255)
        return false;
    for (const char *c = a; *c; c++)
        if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f || strchr("<>\"(),;:\\[]", *c))
            return false;
    return true;
}

/* Reads the next token (a bare word or a quoted string) into a new string; NULL at the end
 * or on a bad quote (*bad set). */
static char *rules_token(const char **p, bool *bad)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s) {
        *p = s;
        return NULL;
    }
    size_t cap = strlen(s) + 1;
    char *out = xmalloc(cap);
    size_t n = 0;
    if (*s == '"') {
        s++;
        while (*s && *s != '"') {
            if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
                s++;
            out[n++] = *s++;
        }
        if (*s != '"') {
            free(out);
            *bad = true;
            *p = s;
            return NULL;
        }
        s++;
    } else {
        while (*s && *s != ' ' && *s != '\t')
            out[n++] = *s++;
    }
    out[n] = '\0';
    *p = s;
    return out;
}

static void rules_cond_free(struct rules_cond *c)
{
    free(c->header);
    free(c->text);
    if (c->has_re)
        regfree(&c->re);
}

static void rules_rule_free(struct rules_rule *r)
{
    for (size_t i = 0; i < r->nconds; i++)
        rules_cond_free(&r->conds[i]);
    free(r->arg);
}

static bool rules_header_name_ok(const char *name)
{
    if (!*name || strlen(name) > 76)
        return false;
    for (const char *c = name; *c; c++)
        if (*c <= ' ' || *c >= 0x7f || *c == ':')
            return false;
    return true;
}

/*
 * glibc's regcomp copies a subexpression once per repetition ("x{200}{200}" takes GiBs, and
 * every '+' doubles what it repeats: "a++++...+" grows as 2^n), so a user's rules file could
 * exhaust the daemon's memory. Bounded conservatively, ignoring nesting: the product of all
 * {n,m} counts (their larger bound) and 2 for every '+' must stay within
 * RULES_REGEX_COST_MAX, and the pattern within RULES_REGEX_LEN_MAX bytes.
 */
#define RULES_REGEX_LEN_MAX 1024
#define RULES_REGEX_COST_MAX 4096
static bool rules_regex_bounded(const char *re)
{
    if (strlen(re) > RULES_REGEX_LEN_MAX)
        return false;
    unsigned long product = 1;
    for (const char *c = re; *c; c++) {
        if (*c == '\\' && c[1]) {
            c++;
            continue;
        }
        unsigned long factor = 1;
        if (*c == '+') {
            factor = 2;
        } else if (*c == '{') {
            unsigned long v = 0;
            for (const char *d = c + 1; (*d >= '0' && *d <= '9') || *d == ','; d++) {
                if (*d == ',') {
                    v = 0;
                    continue;
                }
                v = v * 10 + (unsigned long)(*d - '0');
                if (v > RULES_REGEX_COST_MAX)
                    return false;
                if (v > factor)
                    factor = v;
            }
        }
        product *= factor;
        if (product > RULES_REGEX_COST_MAX)
            return false;
    }
    return true;
}

/* Parses one condition from the tokens at *p. false with why. */
static bool rules_parse_cond(const char **p, struct rules_cond *c, const char **why)
{
    bool bad = false;
    char *word = rules_token(p, &bad);
    memset(c, 0, sizeof *c);
    while (word && strcmp(word, "not") == 0) {
        c->negate = !c->negate;
        free(word);
        word = rules_token(p, &bad);
    }
    if (!word) {
        *why = bad ? "unterminated quoted string" : "expected a condition";
        return false;
    }
    bool ok = false;
    if (strcmp(word, "always") == 0) {
        c->what = W_ALWAYS;
        ok = true;
    } else if (strcmp(word, "size") == 0) {
        char *op = rules_token(p, &bad), *num = rules_token(p, &bad);
        unsigned long v;
        if (op && num && (strcmp(op, ">") == 0 || strcmp(op, "<") == 0) && str_to_ulong(num, 1UL << 40, &v)) {
            c->what = op[0] == '>' ? W_SIZE_GT : W_SIZE_LT;
            c->size = v;
            ok = true;
        } else {
            *why = "expected size > N or size < N";
        }
        free(op);
        free(num);
    } else if (strcmp(word, "header") == 0 || strcmp(word, "body") == 0) {
        bool header = word[0] == 'h';
        if (header) {
            c->header = rules_token(p, &bad);
            if (!c->header || !rules_header_name_ok(c->header)) {
                *why = "expected a header name after header";
                free(word);
                rules_cond_free(c);
                return false;
            }
        }
        char *verb = rules_token(p, &bad);
        if (verb && header && strcmp(verb, "exists") == 0) {
            c->what = W_HEADER_EXISTS;
            ok = true;
        } else if (verb && (strcmp(verb, "contains") == 0 || strcmp(verb, "matches") == 0)) {
            char *arg = rules_token(p, &bad);
            if (!arg || !*arg) {
                *why = bad ? "unterminated quoted string" : "expected a string or regex";
            } else if (verb[0] == 'c') {
                c->what = header ? W_HEADER_CONTAINS : W_BODY_CONTAINS;
                c->text = arg;
                arg = NULL;
                ok = true;
            } else if (!rules_regex_bounded(arg)) {
                *why = "regular expression too long or repeats too much ({n} counts and 2 per + multiply to over 4096)";
            } else if (regcomp(&c->re, arg, REG_EXTENDED | REG_ICASE | REG_NOSUB) != 0) {
                *why = "bad regular expression (POSIX extended)";
            } else {
                c->has_re = true;
                c->what = header ? W_HEADER_MATCHES : W_BODY_MATCHES;
                ok = true;
            }
            free(arg);
        } else {
            *why = header ? "expected contains, matches or exists" : "expected contains or matches";
        }
        free(verb);
    } else {
        *why = "unknown condition (header, body, size, not, always)";
    }
    free(word);
    if (!ok)
        rules_cond_free(c);
    return ok;
}

static bool rules_parse_line(const char *line, struct rules_rule *r, const char **why)
{
    const char *p = line;
    bool bad = false;
    char *word = rules_token(&p, &bad);
    memset(r, 0, sizeof *r);
    if (!word || strcmp(word, "if") != 0) {
        free(word);
        *why = "a rule starts with \"if\"";
        return false;
    }
    free(word);
    for (;;) {
        if (r->nconds == RULES_CONDS_MAX) {
            *why = "too many conditions in one rule (8)";
            return false;
        }
        if (!rules_parse_cond(&p, &r->conds[r->nconds], why))
            return false;
        r->nconds++;
        word = rules_token(&p, &bad);
        if (word && strcmp(word, "and") == 0) {
            free(word);
            continue;
        }
        if (word && strcmp(word, "then") == 0) {
            free(word);
            break;
        }
        free(word);
        *why = "expected \"and\" or \"then\" after a condition";
        return false;
    }
    char *action = rules_token(&p, &bad);
    char *arg = NULL;
    bool ok = false;
    if (!action) {
        *why = "expected an action after then (folder, forward, discard, inbox)";
    } else if (strcmp(action, "discard") == 0 || strcmp(action, "inbox") == 0) {
        r->kind = action[0] == 'd' ? RULES_DISCARD : RULES_INBOX;
        ok = true;
    } else if (strcmp(action, "folder") == 0) {
        arg = rules_token(&p, &bad);
        if (arg && strcasecmp(arg, "inbox") == 0) {
            r->kind = RULES_INBOX;
            ok = true;
        } else if (arg && rules_folder_name_ok(arg)) {
            r->kind = RULES_FOLDER;
            r->arg = arg;
            arg = NULL;
            ok = true;
        } else {
            *why = "folder NAME: 1-64 of A-Z a-z 0-9 . _ -, not starting with '.', not \"rules\", "
                   "not ending in \".lock\"";
        }
    } else if (strcmp(action, "forward") == 0) {
        arg = rules_token(&p, &bad);
        if (arg && rules_address_ok(arg)) {
            r->kind = RULES_FORWARD;
            r->arg = arg;
            arg = NULL;
            ok = true;
        } else {
            *why = "forward ADDRESS: one address local@domain";
        }
    } else if (strcmp(action, "vacation") == 0) {
        char *days = rules_token(&p, &bad);
        arg = days ? rules_token(&p, &bad) : NULL;
        unsigned long d = 0;
        if (days && str_to_ulong(days, 365, &d) && d >= 1 && arg && *arg && strlen(arg) <= 4096) {
            /* "\n" in the text is a line break */
            char *w = arg;
            for (const char *c = arg; *c; c++) {
                if (c[0] == '\\' && c[1] == 'n') {
                    *w++ = '\n';
                    c++;
                } else {
                    *w++ = *c;
                }
            }
            *w = '\0';
            r->kind = RULES_VACATION;
            r->days = (unsigned)d;
            r->arg = arg;
            arg = NULL;
            ok = true;
        } else {
            *why = "vacation DAYS TEXT: 1-365 days, then the reply text (quoted, at most 4096 bytes)";
        }
        free(days);
    } else if (strcmp(action, "pipe") == 0 || action[0] == '|') {
        *why = "piping to programs is not supported";
    } else {
        *why = "unknown action (folder, forward, discard, inbox, vacation)";
    }
    free(action);
    free(arg);
    if (ok) {
        char *rest = rules_token(&p, &bad);
        if (rest || bad) {
            *why = "text after the action";
            ok = false;
        }
        free(rest);
    }
    return ok;
}

int rules_parse(struct rules **rules_r, const char *file, const char *data, size_t len,
                struct cfg_error *err)
{
    struct rules *rs = xcalloc(1, sizeof *rs);
    struct cfg_reader r;
    cfg_reader_init(&r, file, data, len, 0);
    char *line;
    unsigned lineno;
    int rc;
    while ((rc = cfg_reader_next(&r, &line, &lineno, err)) == 1) {
        if (rs->n == RULES_MAX) {
            cfg_error_set(err, file, lineno, "more than %d rules", RULES_MAX);
            rc = -1;
            break;
        }
        struct rules_rule rule;
        const char *why = "syntax error";
        if (!rules_parse_line(line, &rule, &why)) {
            rules_rule_free(&rule);
            cfg_error_set(err, file, lineno, "%s", why);
            rc = -1;
            break;
        }
        rule.lineno = lineno;
        rs->rules = xreallocarray(rs->rules, rs->n + 1, sizeof *rs->rules);
        rs->rules[rs->n++] = rule;
    }
    cfg_reader_free(&r);
    if (rc < 0) {
        rules_free(rs);
        *rules_r = NULL;
        return -1;
    }
    *rules_r = rs;
    return 0;
}

void rules_free(struct rules *rules)
{
    if (!rules)
        return;
    for (size_t i = 0; i < rules->n; i++)
        rules_rule_free(&rules->rules[i]);
    free(rules->rules);
    free(rules);
}

size_t rules_count(const struct rules *rules)
{
    return rules ? rules->n : 0;
}

/* Case-insensitive memmem. */
static bool rules_contains(const char *hay, size_t hlen, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return true;
    for (size_t i = 0; i + n <= hlen; i++)
        if (strncasecmp(hay + i, needle, n) == 0)
            return true;
    return false;
}

/* regexec needs a NUL-terminated string: a bounded copy with NULs replaced. */
static bool rules_regex(const regex_t *re, const char *text, size_t len)
{
    char *copy = xmalloc(len + 1);
    memcpy(copy, text, len);
    for (size_t i = 0; i < len; i++)
        if (!copy[i])
            copy[i] = ' ';
    copy[len] = '\0';
    bool hit = regexec(re, copy, 0, NULL, 0) == 0;
    free(copy);
    return hit;
}

static bool rules_header_test(const struct rules_cond *c, const char *msg, size_t hlen)
{
    size_t pos = 0;
    struct hdr_field f;
    size_t nlen = strlen(c->header);
    while (hdr_next(msg, hlen, &pos, &f)) {
        if (f.name_len != nlen || strncasecmp(f.name, c->header, nlen) != 0)
            continue;
        if (c->what == W_HEADER_EXISTS)
            return true;
        /* unfolded value */
        char *v = xmalloc(f.value_len + 1);
        size_t n = 0;
        for (size_t i = 0; i < f.value_len; i++)
            if (f.value[i] != '\r' && f.value[i] != '\n')
                v[n++] = f.value[i];
        v[n] = '\0';
        size_t start = strspn(v, " \t");
        bool hit = c->what == W_HEADER_CONTAINS ? rules_contains(v + start, n - start, c->text)
                                                : rules_regex(&c->re, v + start, n - start);
        free(v);
        if (hit)
            return true;
    }
    return false;
}

static bool rules_cond_test(const struct rules_cond *c, const char *msg, size_t len, size_t hlen)
{
    const char *body = msg + hlen;
    size_t blen = len - hlen < RULES_BODY_MAX ? len - hlen : RULES_BODY_MAX;
    bool hit = false;
    switch (c->what) {
    case W_HEADER_CONTAINS:
    case W_HEADER_MATCHES:
    case W_HEADER_EXISTS: hit = rules_header_test(c, msg, hlen); break;
    case W_BODY_CONTAINS: hit = rules_contains(body, blen, c->text); break;
    case W_BODY_MATCHES: hit = rules_regex(&c->re, body, blen); break;
    case W_SIZE_GT: hit = len > c->size; break;
    case W_SIZE_LT: hit = len < c->size; break;
    case W_ALWAYS: hit = true; break;
    }
    return c->negate ? !hit : hit;
}

void rules_eval(const struct rules *rules, const char *msg, size_t len, struct rules_action *out)
{
    memset(out, 0, sizeof *out);
    out->kind = RULES_INBOX;
    if (!rules)
        return;
    size_t hlen = hdr_section_len(msg, len);
    for (size_t i = 0; i < rules->n; i++) {
        const struct rules_rule *r = &rules->rules[i];
        bool all = true;
        for (size_t k = 0; k < r->nconds && all; k++)
            all = rules_cond_test(&r->conds[k], msg, len, hlen);
        if (all && r->kind == RULES_VACATION) {
            if (!out->vacation_text) {
                out->vacation_text = r->arg;
                out->vacation_days = r->days;
                out->vacation_lineno = r->lineno;
            }
            continue;
        }
        if (all) {
            out->kind = r->kind;
            out->arg = r->arg;
            out->lineno = r->lineno;
            return;
        }
    }
}
