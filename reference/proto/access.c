/*
 * access: sendmail access map parsing and lookups (see access.h for syntax and precedence).
 *
 * DESCRIPTION
 *   Each entry is classified once at load (network, domain, full address, local part) and
 *   every lookup is one pass over the entries that keeps the best-ranked match: the rank
 *   encodes the precedence classes, the specificity inside a class (prefix bits, domain
 *   length) and the tag bit, so "most specific wins" is a single integer comparison.
 *   A home map has tens of entries; a linear pass over ACCESS_ENTRIES_MAX is still cheap.
 * SECURITY
 *   Host-name keys match only the verified name the caller passes. ERROR texts end up in SMTP
 *   replies, so they are printable ASCII and bounded.
 */
#include "access.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "str.h"
#include "xalloc.h"

#define ACCESS_LOCAL_MAX 64
#define ACCESS_DOMAIN_MAX 255

enum access_tag { ACCESS_TAG_ANY = 0, ACCESS_TAG_CONNECT, ACCESS_TAG_FROM, ACCESS_TAG_TO };
enum access_kind { ACCESS_K_NET, ACCESS_K_DOMAIN, ACCESS_K_ADDRESS, ACCESS_K_LOCAL };

struct access_entry {
    enum access_kind kind;
    enum access_tag tag;
    struct netmask net;  /* ACCESS_K_NET */
    char *local;         /* ACCESS_K_ADDRESS, ACCESS_K_LOCAL: lower-case */
    char *domain;        /* ACCESS_K_ADDRESS, ACCESS_K_DOMAIN: lower-case */
    char *text;          /* ERROR text */
    char *canon;         /* tag + normalised key, for duplicate detection */
    struct access_verdict verdict;
};

struct access {
    struct access_entry *entries;
    size_t count;
};

static const char *const access_tag_names[] = {"", "Connect:", "From:", "To:"};

const char *access_action_name(enum access_action action)
{
    switch (action) {
    case ACCESS_NONE: return "NONE";
    case ACCESS_OK: return "OK";
    case ACCESS_RELAY: return "RELAY";
    case ACCESS_REJECT: return "REJECT";
    case ACCESS_DISCARD: return "DISCARD";
    case ACCESS_SKIP: return "SKIP";
    case ACCESS_ERROR: return "ERROR";
    }
    return "?";
}

static void access_entry_free(struct access_entry *e)
{
    free(e->local);
    free(e->domain);
    free(e->text);
    free(e->canon);
}

void access_free(struct access *access)
{
    if (!access)
        return;
    for (size_t i = 0; i < access->count; i++)
        access_entry_free(&access->entries[i]);
    free(access->entries);
    free(access);
}

size_t access_count(const struct access *access) { return access->count; }

/* Host-name syntax; a numeric last label is refused so "192.168.1.256" is not a "domain". */
static bool access_domain_valid(const char *d)
{
    size_t len = strlen(d), label = 0;
    bool numeric = true;
    if (len == 0 || len > ACCESS_DOMAIN_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = d[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            numeric = true;
        } else if (isalnum((unsigned char)c) || c == '-' || c == '_') {
            if (++label > 63)
                return false;
            if (!isdigit((unsigned char)c))
                numeric = false;
        } else {
            return false;
        }
    }
    return label > 0 && !numeric;
}

static bool access_local_valid(const char *s, size_t len)
{
    if (len == 0 || len > ACCESS_LOCAL_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || c == '@' || c == '"' || c == '\\' || c == '<' ||
            c == '>' || c == ',' || c == ':' || c == ';' || c == '(' || c == ')')
            return false;
    }
    return true;
}

static char *access_lower_dup(const char *s, size_t len)
{
    char *d = xstrndup(s, len);
    str_lower(d);
    return d;
}

/* Classifies key (tag already removed) into e. */
static int access_key_parse(struct access_entry *e, const char *key, const char *file,
                            unsigned lineno, struct cfg_error *err)
{
    const char *tag = access_tag_names[e->tag];
    if (*key == '\0') {
        cfg_error_set(err, file, lineno, "expected a key after \"%s\"", tag);
        return -1;
    }
    if (str_starts_with_nocase(key, "IPv6:")) {
        if (!netmask_parse(key + 5, &e->net) || e->net.addr.family != AF_INET6) {
            cfg_error_set(err, file, lineno,
                          "expected an IPv6 address or network after \"IPv6:\", got \"%.80s\"",
                          key + 5);
            return -1;
        }
        e->kind = ACCESS_K_NET;
    } else if (strchr(key, '@')) {
        const char *at = strrchr(key, '@');
        if (e->tag == ACCESS_TAG_CONNECT) {
            cfg_error_set(err, file, lineno,
                          "expected a network or host name after \"Connect:\", got \"%.80s\"", key);
            return -1;
        }
        if (!access_local_valid(key, (size_t)(at - key))) {
            cfg_error_set(err, file, lineno,
                          "expected user@domain, user@ or domain as key, got \"%.80s\"", key);
            return -1;
        }
        e->local = access_lower_dup(key, (size_t)(at - key));
        if (at[1] == '\0') {
            e->kind = ACCESS_K_LOCAL;
        } else {
            if (!access_domain_valid(at + 1)) {
                cfg_error_set(err, file, lineno, "invalid domain in key \"%.80s\"", key);
                return -1;
            }
            e->domain = access_lower_dup(at + 1, strlen(at + 1));
            e->kind = ACCESS_K_ADDRESS;
        }
    } else if (netmask_parse(key, &e->net) && key[0] != '[') {
        if (e->tag == ACCESS_TAG_FROM || e->tag == ACCESS_TAG_TO) {
            cfg_error_set(err, file, lineno,
                          "expected an address or domain after \"%s\", got network \"%.80s\"",
                          tag, key);
            return -1;
        }
        e->kind = ACCESS_K_NET;
    } else if (key[0] == '[') {
        cfg_error_set(err, file, lineno, "expected IPv6:ADDRESS rather than \"%.80s\"", key);
        return -1;
    } else if (strchr(key, ':')) {
        cfg_error_set(err, file, lineno,
                      "unknown tag in \"%.80s\" (expected Connect:, From:, To: or IPv6:)", key);
        return -1;
    } else if (key[0] == '.') {
        cfg_error_set(err, file, lineno,
                      "expected a domain without leading dot (\"%.80s\" already matches its "
                      "subdomains)", key + 1);
        return -1;
    } else if (strspn(key, "0123456789./") == strlen(key)) {
        cfg_error_set(err, file, lineno, "invalid IPv4 network \"%.80s\"", key);
        return -1;
    } else if (!access_domain_valid(key)) {
        cfg_error_set(err, file, lineno, "expected a network, domain or address, got \"%.80s\"",
                      key);
        return -1;
    } else {
        e->domain = access_lower_dup(key, strlen(key));
        e->kind = ACCESS_K_DOMAIN;
    }

    /* The canonical key: two entries with the same one are duplicates. */
    struct buf c;
    buf_init(&c, 0);
    buf_printf(&c, "%d|%d|", (int)e->tag, (int)e->kind);
    if (e->kind == ACCESS_K_NET) {
        char a[NETADDR_STRLEN];
        netaddr_format(&e->net.addr, a, sizeof a);
        buf_printf(&c, "%s/%u", a, e->net.prefix);
    } else {
        buf_printf(&c, "%s@%s", e->local ? e->local : "", e->domain ? e->domain : "");
    }
    e->canon = buf_steal(&c);
    return 0;
}

/* "ERROR:[D.S.N:]CODE [text]" with the part after ERROR: optionally in double quotes. */
static int access_error_parse(struct access_entry *e, const char *spec, const char *file,
                              unsigned lineno, struct cfg_error *err)
{
    char inner[ACCESS_TEXT_MAX + 32];
    size_t len = strlen(spec);
    if (spec[0] == '"') {
        if (len < 2 || spec[len - 1] != '"' || memchr(spec + 1, '"', len - 2)) {
            cfg_error_set(err, file, lineno, "expected ERROR:\"CODE text\" with one closing quote");
            return -1;
        }
        spec++;
        len -= 2;
    }
    if (len >= sizeof inner) {
        cfg_error_set(err, file, lineno, "ERROR text longer than %d bytes", ACCESS_TEXT_MAX);
        return -1;
    }
    memcpy(inner, spec, len);
    inner[len] = '\0';

    const char *p = inner;
    unsigned dsn_class = 0;
    const char *colon = strchr(p, ':');
    /* A colon inside the text ("550 go away: spam") is not a DSN separator. */
    if (colon && memchr(p, '.', (size_t)(colon - p)) &&
        strspn(p, "0123456789.") == (size_t)(colon - p)) {
        unsigned cls, subj, det;
        char tail;
        size_t dlen = (size_t)(colon - p);
        if (dlen >= sizeof e->verdict.dsn ||
            sscanf(p, "%1u.%3u.%3u%c", &cls, &subj, &det, &tail) != 4 || tail != ':' ||
            (cls != 4 && cls != 5)) {
            cfg_error_set(err, file, lineno,
                          "expected a DSN like 5.7.1 before ':' in ERROR:, got \"%.*s\"",
                          (int)(dlen > 40 ? 40 : dlen), p);
            return -1;
        }
        memcpy(e->verdict.dsn, p, dlen);
        e->verdict.dsn[dlen] = '\0';
        dsn_class = cls;
        p = colon + 1;
    }
    if (!(p[0] == '4' || p[0] == '5') || !isdigit((unsigned char)p[1]) ||
        !isdigit((unsigned char)p[2]) || (p[3] != '\0' && p[3] != ' ')) {
        cfg_error_set(err, file, lineno,
                      "expected a 4xx or 5xx reply code in ERROR:, got \"%.40s\"", p);
        return -1;
    }
    e->verdict.code = (unsigned)(p[0] - '0') * 100 + (unsigned)(p[1] - '0') * 10 +
                      (unsigned)(p[2] - '0');
    if (dsn_class && dsn_class != (unsigned)(p[0] - '0')) {
        cfg_error_set(err, file, lineno, "DSN %s does not match reply code %u", e->verdict.dsn,
                      e->verdict.code);
        return -1;
    }
    const char *text = p[3] ? p + 4 : "";
    while (*text == ' ')
        text++;
    for (const char *t = text; *t; t++) {
        if ((unsigned char)*t < ' ' || (unsigned char)*t >= 0x7f) {
            cfg_error_set(err, file, lineno, "expected printable ASCII in ERROR text");
            return -1;
        }
    }
    if (strlen(text) > ACCESS_TEXT_MAX) {
        cfg_error_set(err, file, lineno, "ERROR text longer than %d bytes", ACCESS_TEXT_MAX);
        return -1;
    }
    e->text = xstrdup(text);
    str_trim(e->text);
    e->verdict.text = e->text;
    e->verdict.action = ACCESS_ERROR;
    return 0;
}

static int access_value_parse(struct access_entry *e, const char *value, const char *file,
                              unsigned lineno, struct cfg_error *err)
{
    static const struct {
        const char *name;
        enum access_action action;
    } words[] = {
        {"OK", ACCESS_OK},           {"RELAY", ACCESS_RELAY}, {"REJECT", ACCESS_REJECT},
        {"DISCARD", ACCESS_DISCARD}, {"SKIP", ACCESS_SKIP},
    };
    if (*value == '\0') {
        cfg_error_set(err, file, lineno, "expected an action after the key");
        return -1;
    }
    if (str_starts_with_nocase(value, "ERROR:"))
        return access_error_parse(e, value + 6, file, lineno, err);
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (str_eq_nocase(value, words[i].name)) {
            e->verdict.action = words[i].action;
            return 0;
        }
    }
    cfg_error_set(err, file, lineno,
                  "expected OK, RELAY, REJECT, DISCARD, SKIP or ERROR:... as action, got "
                  "\"%.60s\"", value);
    return -1;
}

static int access_line_parse(struct access_entry *e, char *line, const char *file,
                             unsigned lineno, struct cfg_error *err)
{
    memset(e, 0, sizeof *e);
    e->verdict.lineno = lineno;
    size_t klen = strcspn(line, " \t");
    char *value = line + klen;
    if (*value)
        *value++ = '\0';
    str_trim(value);

    const char *key = line;
    for (int t = ACCESS_TAG_CONNECT; t <= ACCESS_TAG_TO; t++) {
        if (str_starts_with_nocase(key, access_tag_names[t])) {
            e->tag = (enum access_tag)t;
            key += strlen(access_tag_names[t]);
            break;
        }
    }
    if (access_key_parse(e, key, file, lineno, err) < 0)
        return -1;
    return access_value_parse(e, value, file, lineno, err);
}

/* Sorting entries in place would reorder the map; duplicates are found on references. */
struct access_ref {
    const struct access_entry *e;
};

static int access_canon_cmp(const void *a, const void *b)
{
    const struct access_entry *x = ((const struct access_ref *)a)->e;
    const struct access_entry *y = ((const struct access_ref *)b)->e;
    int c = strcmp(x->canon, y->canon);
    if (c != 0)
        return c;
    return (x->verdict.lineno > y->verdict.lineno) - (x->verdict.lineno < y->verdict.lineno);
}

/* Finds the duplicate key that comes first in the file; 0 when there is none. */
static int access_check_duplicates(const struct access *a, const char *file,
                                   struct cfg_error *err)
{
    if (a->count < 2)
        return 0;
    struct access_ref *v = xreallocarray(NULL, a->count, sizeof *v);
    for (size_t i = 0; i < a->count; i++)
        v[i].e = &a->entries[i];
    qsort(v, a->count, sizeof *v, access_canon_cmp);
    const struct access_entry *dup = NULL, *first = NULL;
    size_t run = 0;
    for (size_t i = 1; i < a->count; i++) {
        if (strcmp(v[i].e->canon, v[run].e->canon) != 0) {
            run = i;
            continue;
        }
        if (!dup || v[i].e->verdict.lineno < dup->verdict.lineno) {
            dup = v[i].e;
            first = v[run].e;
        }
    }
    free(v);
    if (!dup)
        return 0;
    cfg_error_set(err, file, dup->verdict.lineno, "duplicate key (first defined on line %u)",
                  first->verdict.lineno);
    return -1;
}

int access_load(struct access **access_r, const char *file, const char *data, size_t len,
                struct cfg_error *err)
{
    struct cfg_reader r;
    struct access *a = xcalloc(1, sizeof *a);
    size_t cap = 0;
    char *line;
    unsigned lineno;
    int rc;

    *access_r = NULL;
    /* No trailing comments: '#' may be part of an ERROR text ("550 see ticket #12"). */
    cfg_reader_init(&r, file, data, len, 0);
    while ((rc = cfg_reader_next(&r, &line, &lineno, err)) == 1) {
        if (a->count == ACCESS_ENTRIES_MAX) {
            cfg_error_set(err, file, lineno, "more than %d entries", ACCESS_ENTRIES_MAX);
            rc = -1;
            break;
        }
        if (a->count == cap) {
            cap = cap ? cap * 2 : 16;
            a->entries = xreallocarray(a->entries, cap, sizeof *a->entries);
        }
        struct access_entry *e = &a->entries[a->count];
        if (access_line_parse(e, line, file, lineno, err) < 0) {
            access_entry_free(e);
            rc = -1;
            break;
        }
        a->count++;
    }
    cfg_reader_free(&r);
    if (rc < 0 || access_check_duplicates(a, file, err) < 0) {
        access_free(a);
        return -1;
    }
    *access_r = a;
    return 0;
}

/* key (lower-case) equals name or is one of its parent domains. name need not be lower-case. */
static bool access_domain_match(const char *key, const char *name, size_t nlen)
{
    size_t klen = strlen(key);
    if (klen > nlen || strncasecmp(name + nlen - klen, key, klen) != 0)
        return false;
    return klen == nlen || name[nlen - klen - 1] == '.';
}

/*
 * Ranks: class in the high bits (which kind of key), specificity in the middle (prefix bits
 * or domain length), tag in bit 0 (tagged beats untagged at the same key).
 */
static unsigned access_rank(unsigned cls, unsigned specificity, enum access_tag tag)
{
    return (cls << 16) | (specificity << 1) | (tag != ACCESS_TAG_ANY ? 1u : 0u);
}

static enum access_action access_result(const struct access_entry *best,
                                        struct access_verdict *verdict_r)
{
    if (verdict_r) {
        if (best) {
            *verdict_r = best->verdict;
        } else {
            memset(verdict_r, 0, sizeof *verdict_r);
            verdict_r->text = "";
        }
    }
    return best ? best->verdict.action : ACCESS_NONE;
}

enum access_action access_check_connect(const struct access *access, const struct netaddr *addr,
                                        const char *verified_name,
                                        struct access_verdict *verdict_r)
{
    const struct access_entry *best = NULL;
    unsigned best_rank = 0;
    size_t nlen = verified_name ? strlen(verified_name) : 0;
    if (nlen > 0 && verified_name[nlen - 1] == '.')
        nlen--;
    for (size_t i = 0; i < access->count; i++) {
        const struct access_entry *e = &access->entries[i];
        unsigned rank;
        if (e->tag != ACCESS_TAG_ANY && e->tag != ACCESS_TAG_CONNECT)
            continue;
        if (e->kind == ACCESS_K_NET && addr && netmask_match(&e->net, addr))
            rank = access_rank(1, e->net.prefix, e->tag);
        else if (e->kind == ACCESS_K_DOMAIN && nlen > 0 &&
                 access_domain_match(e->domain, verified_name, nlen))
            rank = access_rank(2, (unsigned)strlen(e->domain), e->tag);
        else
            continue;
        if (rank > best_rank) {
            best_rank = rank;
            best = e;
        }
    }
    return access_result(best, verdict_r);
}

static enum access_action access_check_mail(const struct access *access, enum access_tag tag,
                                            const char *address, struct access_verdict *verdict_r)
{
    const struct access_entry *best = NULL;
    unsigned best_rank = 0;
    const char *at = strrchr(address, '@');
    size_t llen = at ? (size_t)(at - address) : strlen(address);
    const char *domain = at ? at + 1 : "";
    size_t dlen = strlen(domain);
    if (dlen > 0 && domain[dlen - 1] == '.')
        dlen--;
    if (llen == 0 && dlen == 0)
        return access_result(NULL, verdict_r); /* the null sender */
    for (size_t i = 0; i < access->count; i++) {
        const struct access_entry *e = &access->entries[i];
        unsigned rank;
        if (e->tag != ACCESS_TAG_ANY && e->tag != tag)
            continue;
        bool local_eq = e->local && strlen(e->local) == llen &&
                        strncasecmp(e->local, address, llen) == 0;
        if (e->kind == ACCESS_K_ADDRESS && local_eq && strlen(e->domain) == dlen &&
            strncasecmp(e->domain, domain, dlen) == 0)
            rank = access_rank(3, 0, e->tag);
        else if (e->kind == ACCESS_K_DOMAIN && dlen > 0 &&
                 access_domain_match(e->domain, domain, dlen))
            rank = access_rank(2, (unsigned)strlen(e->domain), e->tag);
        else if (e->kind == ACCESS_K_LOCAL && local_eq)
            rank = access_rank(1, 0, e->tag);
        else
            continue;
        if (rank > best_rank) {
            best_rank = rank;
            best = e;
        }
    }
    return access_result(best, verdict_r);
}

enum access_action access_check_from(const struct access *access, const char *sender,
                                     struct access_verdict *verdict_r)
{
    return access_check_mail(access, ACCESS_TAG_FROM, sender, verdict_r);
}

enum access_action access_check_to(const struct access *access, const char *rcpt,
                                   struct access_verdict *verdict_r)
{
    return access_check_mail(access, ACCESS_TAG_TO, rcpt, verdict_r);
}
