/*
 * aliases: /etc/aliases parsing and recursive expansion (see aliases.h).
 *
 * DESCRIPTION
 *   Lines come from cfglex with indented continuations and trailing comments. Each logical line
 *   is "name: targets"; targets are split at commas outside double quotes. The map is kept as
 *   an array sorted by name, so a lookup is a binary search and an expansion can keep its
 *   per-alias state in a plain array indexed like the map.
 * SECURITY
 *   Input is an admin file, but it is still treated as untrusted bytes: all sizes bounded,
 *   program/file/include targets refused, expansion bounded in depth and size.
 */
#include "aliases.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "str.h"
#include "xalloc.h"

struct aliases_entry {
    char *name;      /* lower-case */
    char **targets;  /* normalised: "name", "\name" or "local@domain" */
    size_t ntargets;
    unsigned lineno;
};

struct aliases {
    struct aliases_entry *entries;  /* sorted by name once loading is done */
    size_t count;
};

static bool aliases_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-' || c == '+';
}

/* A local name as zolder accepts it in aliases: bounded and from a conservative alphabet. */
static bool aliases_name_valid(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > ALIASES_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!aliases_name_char(s[i]))
            return false;
    return true;
}

static bool aliases_domain_valid(const char *d)
{
    size_t len = strlen(d), label = 0;
    if (len == 0 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = d[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (isalnum((unsigned char)c) || c == '-' || c == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* Local part of a full-address target: printable ASCII without blanks or specials we split on. */
static bool aliases_local_part_valid(const char *s, size_t len)
{
    if (len == 0 || len > ALIASES_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || c == '"' || c == ',' || c == '@' || c == '\\' ||
            c == '<' || c == '>' || c == '(' || c == ')' || c == ';' || c == ':')
            return false;
    }
    return true;
}

static int aliases_entry_cmp(const void *a, const void *b)
{
    const struct aliases_entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return (x->lineno > y->lineno) - (x->lineno < y->lineno);
}

static void aliases_entry_free(struct aliases_entry *e)
{
    for (size_t i = 0; i < e->ntargets; i++)
        free(e->targets[i]);
    free(e->targets);
    free(e->name);
}

void aliases_free(struct aliases *aliases)
{
    if (!aliases)
        return;
    for (size_t i = 0; i < aliases->count; i++)
        aliases_entry_free(&aliases->entries[i]);
    free(aliases->entries);
    free(aliases);
}

size_t aliases_count(const struct aliases *aliases) { return aliases->count; }

/*
 * Turns one raw target (trimmed, maybe quoted) into its stored form. Returns NULL with a
 * message in err for anything zolder refuses.
 */
static char *aliases_target_parse(const char *raw, const char *file, unsigned lineno,
                                  struct cfg_error *err)
{
    char v[ALIASES_TARGET_MAX + 2];
    size_t rlen = strlen(raw), vlen = 0;

    if (raw[0] == '"') {
        /* Only a wholly quoted target: "|cmd", "/file", "user@dom". */
        size_t i = 1;
        for (; i < rlen && raw[i] != '"'; i++) {
            if (raw[i] == '\\' && i + 1 < rlen)
                i++;
            if (vlen > ALIASES_TARGET_MAX) {
                cfg_error_set(err, file, lineno, "target longer than %d bytes",
                              ALIASES_TARGET_MAX);
                return NULL;
            }
            v[vlen++] = raw[i];
        }
        if (i != rlen - 1) {
            cfg_error_set(err, file, lineno,
                          "expected a wholly quoted target, got %.80s (quoted local parts are "
                          "not supported)", raw);
            return NULL;
        }
        v[vlen] = '\0';
    } else {
        if (strchr(raw, '"')) {
            cfg_error_set(err, file, lineno,
                          "expected a wholly quoted target, got %.80s (quoted local parts are "
                          "not supported)", raw);
            return NULL;
        }
        if (rlen > ALIASES_TARGET_MAX) {
            cfg_error_set(err, file, lineno, "target longer than %d bytes", ALIASES_TARGET_MAX);
            return NULL;
        }
        memcpy(v, raw, rlen + 1);
        vlen = rlen;
    }

    if (v[0] == '|') {
        cfg_error_set(err, file, lineno,
                      "program target \"%.60s\" is not supported: zolder never runs commands "
                      "from aliases", v);
        return NULL;
    }
    if (v[0] == '/') {
        cfg_error_set(err, file, lineno,
                      "file target \"%.60s\" is not supported: zolder never writes files named "
                      "in aliases", v);
        return NULL;
    }
    if (str_starts_with_nocase(v, ":include:")) {
        cfg_error_set(err, file, lineno,
                      ":include: target \"%.60s\" is not supported: list the targets in the "
                      "aliases file itself", v);
        return NULL;
    }
    if (vlen == 0 || strpbrk(v, " \t")) {
        cfg_error_set(err, file, lineno, "expected ',' between targets, got \"%.80s\"", v);
        return NULL;
    }
    if (v[0] == '\\') {
        if (!aliases_name_valid(v + 1)) {
            cfg_error_set(err, file, lineno, "expected a local name after '\\', got \"%.80s\"",
                          v);
            return NULL;
        }
        str_lower(v);
        return xstrdup(v);
    }
    char *at = strrchr(v, '@');
    if (at) {
        if (!aliases_local_part_valid(v, (size_t)(at - v))) {
            cfg_error_set(err, file, lineno, "invalid local part in target \"%.80s\"", v);
            return NULL;
        }
        if (!aliases_domain_valid(at + 1)) {
            cfg_error_set(err, file, lineno, "invalid domain in target \"%.80s\"", v);
            return NULL;
        }
        str_lower(at + 1);
        return xstrdup(v);
    }
    if (!aliases_name_valid(v)) {
        cfg_error_set(err, file, lineno,
                      "expected a local name or user@domain as target, got \"%.80s\"", v);
        return NULL;
    }
    str_lower(v);
    return xstrdup(v);
}

/* Splits the text after "name:" at commas outside quotes and parses every target into e. */
static int aliases_targets_parse(struct aliases_entry *e, char *list, const char *file,
                                 unsigned lineno, struct cfg_error *err)
{
    char *p = list;
    size_t cap = 0;
    for (;;) {
        char *start = p;
        bool quoted = false;
        for (; *p; p++) {
            if (*p == '"')
                quoted = !quoted;
            else if (*p == '\\' && quoted && p[1])
                p++;
            else if (*p == ',' && !quoted)
                break;
        }
        if (quoted) {
            cfg_error_set(err, file, lineno, "expected a closing '\"' in target list");
            return -1;
        }
        bool last = *p == '\0';
        *p = '\0';
        char *raw = str_trim(start);
        /* A dangling comma (often before a continuation) is harmless: skip empty items. */
        if (*raw) {
            if (e->ntargets == ALIASES_TARGETS_MAX) {
                cfg_error_set(err, file, lineno, "more than %d targets for alias \"%s\"",
                              ALIASES_TARGETS_MAX, e->name);
                return -1;
            }
            char *t = aliases_target_parse(raw, file, lineno, err);
            if (!t)
                return -1;
            if (e->ntargets == cap) {
                cap = cap ? cap * 2 : 4;
                e->targets = xreallocarray(e->targets, cap, sizeof *e->targets);
            }
            e->targets[e->ntargets++] = t;
        }
        if (last)
            break;
        p++;
    }
    if (e->ntargets == 0) {
        cfg_error_set(err, file, lineno, "expected at least one target after \"%s:\"", e->name);
        return -1;
    }
    return 0;
}

static int aliases_line_parse(struct aliases_entry *e, char *line, const char *file,
                              unsigned lineno, struct cfg_error *err)
{
    char *name, *list;
    memset(e, 0, sizeof *e);
    e->lineno = lineno;
    if (!cfg_split_key_value(line, ':', &name, &list)) {
        cfg_error_set(err, file, lineno, "expected \"name: target, ...\"");
        return -1;
    }
    if (*name == '\0') {
        cfg_error_set(err, file, lineno, "expected an alias name before ':'");
        return -1;
    }
    if (name[0] == '"') {
        cfg_error_set(err, file, lineno, "expected an unquoted alias name, got %.80s", name);
        return -1;
    }
    if (strchr(name, '@')) {
        cfg_error_set(err, file, lineno,
                      "expected a local name without @domain as alias name, got \"%.80s\"", name);
        return -1;
    }
    if (!aliases_name_valid(name)) {
        cfg_error_set(err, file, lineno,
                      "expected an alias name of at most %d characters from A-Z a-z 0-9 . _ + -,"
                      " got \"%.80s\"", ALIASES_NAME_MAX, name);
        return -1;
    }
    e->name = xstrdup(name);
    str_lower(e->name);
    return aliases_targets_parse(e, list, file, lineno, err);
}

int aliases_load(struct aliases **aliases_r, const char *file, const char *data, size_t len,
                 struct cfg_error *err)
{
    struct cfg_reader r;
    struct aliases *a = xcalloc(1, sizeof *a);
    size_t cap = 0;
    char *line;
    unsigned lineno;
    int rc;

    *aliases_r = NULL;
    cfg_reader_init(&r, file, data, len, CFG_CONT_INDENT | CFG_TRAILING_COMMENT);
    while ((rc = cfg_reader_next(&r, &line, &lineno, err)) == 1) {
        if (a->count == ALIASES_ENTRIES_MAX) {
            cfg_error_set(err, file, lineno, "more than %d aliases", ALIASES_ENTRIES_MAX);
            rc = -1;
            break;
        }
        if (a->count == cap) {
            cap = cap ? cap * 2 : 16;
            a->entries = xreallocarray(a->entries, cap, sizeof *a->entries);
        }
        struct aliases_entry *e = &a->entries[a->count];
        if (aliases_line_parse(e, line, file, lineno, err) < 0) {
            aliases_entry_free(e);
            rc = -1;
            break;
        }
        a->count++;
    }
    cfg_reader_free(&r);
    if (rc < 0) {
        aliases_free(a);
        return -1;
    }

    if (a->count > 1)
        qsort(a->entries, a->count, sizeof *a->entries, aliases_entry_cmp);
    /* Report the duplicate that comes first in the file, pointing at both lines. */
    const struct aliases_entry *dup = NULL, *first = NULL;
    for (size_t i = 1; i < a->count; i++) {
        const struct aliases_entry *x = &a->entries[i - 1], *y = &a->entries[i];
        if (strcmp(x->name, y->name) == 0 && (!dup || y->lineno < dup->lineno)) {
            size_t k = i - 1;
            while (k > 0 && strcmp(a->entries[k - 1].name, y->name) == 0)
                k--;
            dup = y;
            first = &a->entries[k];
        }
    }
    if (dup) {
        cfg_error_set(err, file, dup->lineno, "duplicate alias \"%s\" (first defined on line %u)",
                      dup->name, first->lineno);
        aliases_free(a);
        return -1;
    }
    *aliases_r = a;
    return 0;
}

/* Index of the alias named key (already lower-case), or -1. */
static long aliases_find(const struct aliases *a, const char *key)
{
    size_t lo = 0, hi = a->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, a->entries[mid].name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

/* Lower-cases name into out; false when it cannot be a local name at all. */
static bool aliases_key(const char *name, char out[ALIASES_NAME_MAX + 1])
{
    if (!aliases_name_valid(name))
        return false;
    str_copy(out, ALIASES_NAME_MAX + 1, name);
    str_lower(out);
    return true;
}

const char *const *aliases_lookup(const struct aliases *aliases, const char *name,
                                  size_t *count_r, unsigned *lineno_r)
{
    char key[ALIASES_NAME_MAX + 1];
    long i = aliases_key(name, key) ? aliases_find(aliases, key) : -1;
    if (i < 0) {
        *count_r = 0;
        return NULL;
    }
    const struct aliases_entry *e = &aliases->entries[i];
    *count_r = e->ntargets;
    if (lineno_r)
        *lineno_r = e->lineno;
    return (const char *const *)e->targets;
}

enum aliases_state { ALIASES_UNSEEN = 0, ALIASES_ON_PATH, ALIASES_DONE };

struct aliases_expander {
    const struct aliases *map;
    unsigned char *state;  /* enum aliases_state per map entry */
    struct aliases_result *res;
    const char *error;
};

static int aliases_add(struct aliases_expander *x, const char *rcpt)
{
    struct aliases_result *res = x->res;
    for (size_t i = 0; i < res->count; i++)
        if (strcmp(res->rcpts[i], rcpt) == 0)
            return 0;
    if (res->count == ALIASES_EXPAND_MAX) {
        x->error = "alias expansion exceeds the recipient limit";
        return -1;
    }
    res->rcpts = xreallocarray(res->rcpts, res->count + 1, sizeof *res->rcpts);
    res->rcpts[res->count++] = xstrdup(rcpt);
    return 0;
}

static int aliases_expand_entry(struct aliases_expander *x, size_t idx, unsigned depth)
{
    if (depth > ALIASES_DEPTH_MAX) {
        x->error = "aliases nested too deeply";
        return -1;
    }
    const struct aliases_entry *e = &x->map->entries[idx];
    x->state[idx] = ALIASES_ON_PATH;
    for (size_t i = 0; i < e->ntargets; i++) {
        const char *t = e->targets[i];
        int rc = 0;
        if (t[0] == '\\') {
            rc = aliases_add(x, t + 1);
        } else if (strchr(t, '@')) {
            rc = aliases_add(x, t);
        } else {
            long j = aliases_find(x->map, t);
            if (j < 0) {
                rc = aliases_add(x, t);
            } else if (x->state[j] == ALIASES_ON_PATH) {
                /* A loop back to an alias being expanded: that name is a user mailbox. */
                x->res->loop = true;
                rc = aliases_add(x, t);
            } else if (x->state[j] == ALIASES_UNSEEN) {
                rc = aliases_expand_entry(x, (size_t)j, depth + 1);
            }
            /* ALIASES_DONE: everything it yields is in the result already. */
        }
        if (rc < 0)
            return -1;
    }
    x->state[idx] = ALIASES_DONE;
    return 0;
}

int aliases_expand(const struct aliases *aliases, const char *name, struct aliases_result *res,
                   const char **error_r)
{
    char key[ALIASES_NAME_MAX + 1];
    memset(res, 0, sizeof *res);
    if (!aliases_key(name, key)) {
        *error_r = "not a valid local name";
        return -1;
    }
    struct aliases_expander x = {.map = aliases, .res = res, .error = NULL};
    long i = aliases_find(aliases, key);
    if (i < 0)
        return aliases_add(&x, key);
    x.state = xcalloc(aliases->count, 1);
    int rc = aliases_expand_entry(&x, (size_t)i, 1);
    free(x.state);
    if (rc < 0)
        *error_r = x.error;
    return rc;
}

void aliases_result_free(struct aliases_result *res)
{
    for (size_t i = 0; i < res->count; i++)
        free(res->rcpts[i]);
    free(res->rcpts);
    memset(res, 0, sizeof *res);
}
