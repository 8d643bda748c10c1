/*
 * hostsallow: hosts.allow / hosts.deny parsing and evaluation (see hostsallow.h).
 *
 * DESCRIPTION
 *   Every pattern is classified once at load, so evaluation never re-parses text and never
 *   mistakes one kind for another (the classic "192.168.1" host-name-that-never-matches is a
 *   load error here). List evaluation follows hosts_access(5): a list matches when an item
 *   before the first EXCEPT matches and the list after it does not.
 * SECURITY
 *   No option can run anything; host-name patterns only ever see the caller's verified name.
 */
#include "hostsallow.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "str.h"
#include "xalloc.h"

enum hostsallow_kind {
    HOSTSALLOW_P_ALL,
    HOSTSALLOW_P_EXCEPT,
    HOSTSALLOW_P_DAEMON,   /* text: daemon name */
    HOSTSALLOW_P_LOCAL,
    HOSTSALLOW_P_KNOWN,
    HOSTSALLOW_P_UNKNOWN,
    HOSTSALLOW_P_NET,      /* net */
    HOSTSALLOW_P_SUFFIX,   /* text: ".example.com", lower-case */
    HOSTSALLOW_P_NAME,     /* text: "host.example.com", lower-case */
};

struct hostsallow_pat {
    enum hostsallow_kind kind;
    struct netmask net;
    char *text;
};

struct hostsallow_list {
    struct hostsallow_pat *pats;
    size_t count;
};

struct hostsallow_rule {
    struct hostsallow_list daemons;
    struct hostsallow_list clients;
    bool has_option;
    enum hostsallow_verdict option;
    unsigned lineno;
};

struct hostsallow {
    char *file;
    struct hostsallow_rule *rules;
    size_t count;
};

static const char *const hostsallow_daemons[] = {"smtpd", "pop3d", "imapd"};

static void hostsallow_list_free(struct hostsallow_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->pats[i].text);
    free(l->pats);
}

void hostsallow_free(struct hostsallow *table)
{
    if (!table)
        return;
    for (size_t i = 0; i < table->count; i++) {
        hostsallow_list_free(&table->rules[i].daemons);
        hostsallow_list_free(&table->rules[i].clients);
    }
    free(table->rules);
    free(table->file);
    free(table);
}

size_t hostsallow_count(const struct hostsallow *table) { return table->count; }

/* Host-name syntax: dot-separated labels of [A-Za-z0-9_-]. */
static bool hostsallow_name_valid(const char *d)
{
    size_t len = strlen(d), label = 0;
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (d[i] == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (isalnum((unsigned char)d[i]) || d[i] == '-' || d[i] == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

static int hostsallow_daemon_parse(struct hostsallow_pat *p, const char *tok, const char *file,
                                   unsigned lineno, struct cfg_error *err)
{
    if (str_eq_nocase(tok, "ALL")) {
        p->kind = HOSTSALLOW_P_ALL;
        return 0;
    }
    if (str_eq_nocase(tok, "EXCEPT")) {
        p->kind = HOSTSALLOW_P_EXCEPT;
        return 0;
    }
    if (strchr(tok, '@')) {
        cfg_error_set(err, file, lineno, "daemon@host pattern \"%.60s\" is not supported", tok);
        return -1;
    }
    for (size_t i = 0; i < sizeof hostsallow_daemons / sizeof hostsallow_daemons[0]; i++) {
        if (str_eq_nocase(tok, hostsallow_daemons[i])) {
            p->kind = HOSTSALLOW_P_DAEMON;
            p->text = xstrdup(hostsallow_daemons[i]);
            return 0;
        }
    }
    cfg_error_set(err, file, lineno,
                  "unknown daemon \"%.60s\" (expected smtpd, pop3d, imapd or ALL)", tok);
    return -1;
}

static int hostsallow_client_parse(struct hostsallow_pat *p, const char *tok, const char *file,
                                   unsigned lineno, struct cfg_error *err)
{
    static const struct {
        const char *word;
        enum hostsallow_kind kind;
    } words[] = {
        {"ALL", HOSTSALLOW_P_ALL},     {"EXCEPT", HOSTSALLOW_P_EXCEPT},
        {"LOCAL", HOSTSALLOW_P_LOCAL}, {"KNOWN", HOSTSALLOW_P_KNOWN},
        {"UNKNOWN", HOSTSALLOW_P_UNKNOWN},
    };
    size_t len = strlen(tok);
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (str_eq_nocase(tok, words[i].word)) {
            p->kind = words[i].kind;
            return 0;
        }
    }
    if (str_eq_nocase(tok, "PARANOID")) {
        cfg_error_set(err, file, lineno,
                      "PARANOID is not supported: host-name patterns only ever match "
                      "forward-confirmed names");
        return -1;
    }
    if (tok[0] == '@') {
        cfg_error_set(err, file, lineno, "netgroup pattern \"%.60s\" is not supported", tok);
        return -1;
    }
    if (tok[0] == '/') {
        cfg_error_set(err, file, lineno, "file pattern \"%.60s\" is not supported", tok);
        return -1;
    }
    if (strpbrk(tok, "*?")) {
        cfg_error_set(err, file, lineno, "wildcard pattern \"%.60s\" is not supported", tok);
        return -1;
    }
    if (tok[0] == '[') {
        /* [v6] or [v6]/bits */
        const char *close = strchr(tok, ']');
        char text[NETADDR_STRLEN + 8];
        size_t alen = close ? (size_t)(close - tok - 1) : 0;
        const char *rest = close ? close + 1 : "";
        if (!close || alen == 0 || alen + strlen(rest) >= sizeof text ||
            (*rest && (rest[0] != '/' || !rest[1] || strspn(rest + 1, "0123456789") !=
                                                          strlen(rest + 1)))) {
            cfg_error_set(err, file, lineno,
                          "expected [IPv6-address] or [IPv6-address]/bits, got \"%.60s\"", tok);
            return -1;
        }
        memcpy(text, tok + 1, alen);
        memcpy(text + alen, rest, strlen(rest) + 1);
        if (!netmask_parse(text, &p->net) || p->net.addr.family != AF_INET6) {
            cfg_error_set(err, file, lineno,
                          "expected [IPv6-address] or [IPv6-address]/bits, got \"%.60s\"", tok);
            return -1;
        }
        p->kind = HOSTSALLOW_P_NET;
        return 0;
    }
    if (tok[0] == '.') {
        if (!hostsallow_name_valid(tok + 1)) {
            cfg_error_set(err, file, lineno, "expected a domain after '.', got \"%.60s\"", tok);
            return -1;
        }
        p->kind = HOSTSALLOW_P_SUFFIX;
        p->text = xstrdup(tok);
        str_lower(p->text);
        return 0;
    }
    bool numeric = strspn(tok, "0123456789.") == len;
    if (tok[len - 1] == '.') {
        if (!numeric || !netmask_parse(tok, &p->net) || p->net.prefix == 32) {
            cfg_error_set(err, file, lineno,
                          "expected an address prefix like 192.168.1., got \"%.60s\"", tok);
            return -1;
        }
        p->kind = HOSTSALLOW_P_NET;
        return 0;
    }
    if (strchr(tok, '/')) {
        if (!netmask_parse(tok, &p->net) || p->net.addr.family != AF_INET) {
            cfg_error_set(err, file, lineno,
                          "expected net/mask like 192.168.1.0/255.255.255.0 or 192.168.1.0/24, "
                          "got \"%.60s\"", tok);
            return -1;
        }
        p->kind = HOSTSALLOW_P_NET;
        return 0;
    }
    if (numeric) {
        struct netaddr a;
        if (netaddr_parse(tok, &a)) {
            p->kind = HOSTSALLOW_P_NET;
            p->net.addr = a;
            p->net.prefix = 32;
            return 0;
        }
        if (netmask_parse(tok, &p->net)) {
            cfg_error_set(err, file, lineno,
                          "expected \"%.60s.\" with a trailing dot for an address prefix", tok);
            return -1;
        }
        cfg_error_set(err, file, lineno, "invalid IPv4 address \"%.60s\"", tok);
        return -1;
    }
    if (strchr(tok, ':')) {
        cfg_error_set(err, file, lineno,
                      "expected an IPv6 address in brackets ([%.60s]), got \"%.60s\"", tok, tok);
        return -1;
    }
    if (!hostsallow_name_valid(tok)) {
        cfg_error_set(err, file, lineno, "expected a client pattern, got \"%.60s\"", tok);
        return -1;
    }
    p->kind = HOSTSALLOW_P_NAME;
    p->text = xstrdup(tok);
    str_lower(p->text);
    return 0;
}

typedef int hostsallow_pat_fn(struct hostsallow_pat *p, const char *tok, const char *file,
                              unsigned lineno, struct cfg_error *err);

static int hostsallow_list_parse(struct hostsallow_list *l, char *text, const char *what,
                                 hostsallow_pat_fn *parse, const char *file, unsigned lineno,
                                 struct cfg_error *err)
{
    char *toks[HOSTSALLOW_ITEMS_MAX];
    int n = str_split(text, " \t,", toks, HOSTSALLOW_ITEMS_MAX);
    if (n < 0) {
        cfg_error_set(err, file, lineno, "more than %d patterns in the %s list",
                      HOSTSALLOW_ITEMS_MAX, what);
        return -1;
    }
    if (n == 0) {
        cfg_error_set(err, file, lineno, "expected a %s list", what);
        return -1;
    }
    l->pats = xcalloc((size_t)n, sizeof *l->pats);
    for (int i = 0; i < n; i++) {
        struct hostsallow_pat *p = &l->pats[l->count++];
        if (parse(p, toks[i], file, lineno, err) < 0)
            return -1;
        bool except = p->kind == HOSTSALLOW_P_EXCEPT;
        if (except && (i == 0 || i == n - 1 || l->pats[i - 1].kind == HOSTSALLOW_P_EXCEPT)) {
            cfg_error_set(err, file, lineno, "expected a pattern on both sides of EXCEPT in the %s "
                          "list", what);
            return -1;
        }
    }
    return 0;
}

/* Splits at ':' outside [brackets] (IPv6 addresses); returns the number of fields or -1. */
static int hostsallow_fields(char *line, char **fields, int max)
{
    int n = 0, depth = 0;
    fields[n++] = line;
    for (char *p = line; *p; p++) {
        if (*p == '[')
            depth++;
        else if (*p == ']' && depth > 0)
            depth--;
        else if (*p == ':' && depth == 0) {
            if (n == max)
                return -1;
            *p = '\0';
            fields[n++] = p + 1;
        }
    }
    return n;
}

static int hostsallow_line_parse(struct hostsallow_rule *rule, char *line, const char *file,
                                 unsigned lineno, struct cfg_error *err)
{
    char *f[4];
    memset(rule, 0, sizeof *rule);
    rule->lineno = lineno;
    int n = hostsallow_fields(line, f, 4);
    if (n < 2) {
        cfg_error_set(err, file, lineno, "expected \"daemon_list : client_list [: option]\"");
        return -1;
    }
    if (n >= 3) {
        char *opt = str_trim(f[2]);
        if (str_eq_nocase(opt, "allow")) {
            rule->option = HOSTSALLOW_ALLOW;
        } else if (str_eq_nocase(opt, "deny")) {
            rule->option = HOSTSALLOW_DENY;
        } else {
            cfg_error_set(err, file, lineno,
                          "unsupported option \"%.60s\" (expected allow or deny: zolder runs no "
                          "commands from access tables)", opt);
            return -1;
        }
        rule->has_option = true;
        if (n > 3) {
            cfg_error_set(err, file, lineno, "expected only one option (allow or deny)");
            return -1;
        }
    }
    if (hostsallow_list_parse(&rule->daemons, f[0], "daemon", hostsallow_daemon_parse, file,
                              lineno, err) < 0)
        return -1;
    return hostsallow_list_parse(&rule->clients, f[1], "client", hostsallow_client_parse, file,
                                 lineno, err);
}

int hostsallow_load(struct hostsallow **table_r, const char *file, const char *data, size_t len,
                    struct cfg_error *err)
{
    struct cfg_reader r;
    struct hostsallow *t = xcalloc(1, sizeof *t);
    size_t cap = 0;
    char *line;
    unsigned lineno;
    int rc;

    *table_r = NULL;
    t->file = xstrdup(file ? file : "-");
    cfg_reader_init(&r, file, data, len, CFG_CONT_BACKSLASH | CFG_TRAILING_COMMENT);
    while ((rc = cfg_reader_next(&r, &line, &lineno, err)) == 1) {
        if (t->count == HOSTSALLOW_RULES_MAX) {
            cfg_error_set(err, file, lineno, "more than %d rules", HOSTSALLOW_RULES_MAX);
            rc = -1;
            break;
        }
        if (t->count == cap) {
            cap = cap ? cap * 2 : 16;
            t->rules = xreallocarray(t->rules, cap, sizeof *t->rules);
        }
        struct hostsallow_rule *rule = &t->rules[t->count];
        if (hostsallow_line_parse(rule, line, file, lineno, err) < 0) {
            hostsallow_list_free(&rule->daemons);
            hostsallow_list_free(&rule->clients);
            rc = -1;
            break;
        }
        t->count++;
    }
    cfg_reader_free(&r);
    if (rc < 0) {
        hostsallow_free(t);
        return -1;
    }
    *table_r = t;
    return 0;
}

/* What a client pattern is matched against; name is the verified name without trailing dot. */
struct hostsallow_client {
    const char *daemon;
    const struct netaddr *addr;
    const char *name;  /* NULL: no verified name */
    size_t nlen;
};

static bool hostsallow_pat_match(const struct hostsallow_pat *p,
                                 const struct hostsallow_client *c)
{
    switch (p->kind) {
    case HOSTSALLOW_P_ALL:
        return true;
    case HOSTSALLOW_P_EXCEPT:
        return false;
    case HOSTSALLOW_P_DAEMON:
        return c->daemon && str_eq_nocase(p->text, c->daemon);
    case HOSTSALLOW_P_LOCAL:
        return c->name && !memchr(c->name, '.', c->nlen);
    case HOSTSALLOW_P_KNOWN:
        return c->name != NULL;
    case HOSTSALLOW_P_UNKNOWN:
        return c->name == NULL;
    case HOSTSALLOW_P_NET:
        return c->addr && netmask_match(&p->net, c->addr);
    case HOSTSALLOW_P_SUFFIX: {
        size_t slen = strlen(p->text);
        return c->name && c->nlen > slen &&
               strncasecmp(c->name + c->nlen - slen, p->text, slen) == 0;
    }
    case HOSTSALLOW_P_NAME:
        return c->name && strlen(p->text) == c->nlen &&
               strncasecmp(c->name, p->text, c->nlen) == 0;
    }
    return false;
}

/* hosts_access list semantics: "A B EXCEPT C D EXCEPT E" is (A|B) and not ((C|D) and not E). */
static bool hostsallow_list_match(const struct hostsallow_pat *pats, size_t n,
                                  const struct hostsallow_client *c)
{
    for (size_t i = 0; i < n; i++) {
        if (pats[i].kind == HOSTSALLOW_P_EXCEPT)
            return false;
        if (hostsallow_pat_match(&pats[i], c)) {
            for (size_t j = i + 1; j < n; j++)
                if (pats[j].kind == HOSTSALLOW_P_EXCEPT)
                    return !hostsallow_list_match(pats + j + 1, n - j - 1, c);
            return true;
        }
    }
    return false;
}

bool hostsallow_match(const struct hostsallow *table, const char *daemon,
                      const struct netaddr *addr, const char *verified_name,
                      enum hostsallow_verdict dflt, enum hostsallow_verdict *verdict_r,
                      unsigned *lineno_r)
{
    struct hostsallow_client c = {.daemon = daemon, .addr = addr, .name = NULL, .nlen = 0};
    if (!table)
        return false;
    if (verified_name && *verified_name) {
        c.name = verified_name;
        c.nlen = strlen(verified_name);
        if (c.name[c.nlen - 1] == '.')
            c.nlen--;
    }
    for (size_t i = 0; i < table->count; i++) {
        const struct hostsallow_rule *r = &table->rules[i];
        if (hostsallow_list_match(r->daemons.pats, r->daemons.count, &c) &&
            hostsallow_list_match(r->clients.pats, r->clients.count, &c)) {
            *verdict_r = r->has_option ? r->option : dflt;
            *lineno_r = r->lineno;
            return true;
        }
    }
    return false;
}

enum hostsallow_verdict hostsallow_decide(const struct hostsallow *allow,
                                          const struct hostsallow *deny, const char *daemon,
                                          const struct netaddr *addr, const char *verified_name,
                                          struct hostsallow_decision *decision_r)
{
    struct hostsallow_decision d = {.verdict = HOSTSALLOW_ALLOW, .file = NULL, .lineno = 0};
    if (hostsallow_match(allow, daemon, addr, verified_name, HOSTSALLOW_ALLOW, &d.verdict,
                         &d.lineno))
        d.file = allow->file;
    else if (hostsallow_match(deny, daemon, addr, verified_name, HOSTSALLOW_DENY, &d.verdict,
                              &d.lineno))
        d.file = deny->file;
    if (decision_r)
        *decision_r = d;
    return d.verdict;
}

bool hostsallow_denies_localhost(const struct hostsallow *allow, const struct hostsallow *deny,
                                 const char *daemon, struct hostsallow_decision *decision_r)
{
    static const char *const names[] = {"localhost", NULL};
    struct netaddr lo;
    netaddr_parse("127.0.0.1", &lo);
    for (size_t i = 0; i < 2; i++) {
        struct hostsallow_decision d;
        if (hostsallow_decide(allow, deny, daemon, &lo, names[i], &d) == HOSTSALLOW_DENY) {
            if (decision_r)
                *decision_r = d;
            return true;
        }
    }
    if (decision_r)
        hostsallow_decide(allow, deny, daemon, &lo, names[0], decision_r);
    return false;
}
