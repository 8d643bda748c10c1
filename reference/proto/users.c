/*
 * users: users file parsing and password verification (see users.h).
 *
 * DESCRIPTION
 *   Entries are kept sorted by name for binary-search lookups. Verification runs crypt_r with
 *   a heap struct crypt_data (about 32 KiB: too big for small thread stacks), compares the
 *   result in constant time and wipes the crypt state afterwards.
 * STANDARDS
 *   crypt(3) / crypt(5) hash formats as implemented by libxcrypt.
 */
#include "users.h"

#include <crypt.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "xalloc.h"

struct users {
    struct users_entry *entries;  /* sorted by name; strings owned through the casts below */
    size_t count;
};

/*
 * Hashed instead of a real user's hash when the name is unknown or locked, so those answers
 * cost the same yescrypt work as a real check. Its password is irrelevant: the result is
 * never compared.
 */
static const char users_dummy_hash[] =
    "$y$j9T$jdlXKjNCrxxTxng2t2kBE1$1sVBYQ8QDgDxiveahUvIxUehl0ap/QYdup7SQkmSk74";

const char *users_auth_name(enum users_auth auth)
{
    switch (auth) {
    case USERS_AUTH_OK: return "ok";
    case USERS_AUTH_BAD_PASSWORD: return "bad-password";
    case USERS_AUTH_UNKNOWN_USER: return "unknown-user";
    case USERS_AUTH_LOCKED: return "locked";
    case USERS_AUTH_ERROR: return "error";
    }
    return "?";
}

static void users_entry_free(struct users_entry *e)
{
    free((char *)e->name);
    free((char *)e->hash);
    free((char *)e->home);
}

void users_free(struct users *users)
{
    if (!users)
        return;
    for (size_t i = 0; i < users->count; i++)
        users_entry_free(&users->entries[i]);
    free(users->entries);
    free(users);
}

size_t users_count(const struct users *users) { return users->count; }

static bool users_name_valid(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > USERS_NAME_MAX || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '.' ||
              s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

static bool users_hash_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '/' || c == '$' || c == '=' ||
           c == ',' || c == '+' || c == '-';
}

/*
 * Checks the shape of a hash and sets can_login / weak_hash. The message never includes the
 * field itself (it may be a password typed in the wrong place).
 */
static int users_hash_check(struct users_entry *e, const char *hash, const char *file,
                            unsigned lineno, struct cfg_error *err)
{
    size_t len = strlen(hash);
    if (len == 0) {
        cfg_error_set(err, file, lineno,
                      "empty password hash (use * for a user that cannot log in)");
        return -1;
    }
    size_t start = (hash[0] == '*' || hash[0] == '!') ? 1 : 0;
    for (size_t i = start; i < len; i++) {
        if (!users_hash_char(hash[i])) {
            cfg_error_set(err, file, lineno,
                          "invalid character in password hash (expected a crypt(3) hash)");
            return -1;
        }
    }
    if (start) {
        e->can_login = false;
        return 0;
    }
    e->can_login = true;
    bool shaped;
    if (hash[0] == '$') {
        /* "$id$[params$]salt$hash": at least three '$' and something after the last one. */
        size_t dollars = 0;
        for (size_t i = 0; i < len; i++)
            dollars += hash[i] == '$';
        shaped = dollars >= 3 && hash[len - 1] != '$';
    } else {
        /* Traditional DES: 13 characters from [./0-9A-Za-z]. */
        shaped = len == 13 && strspn(hash, "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "abcdefghijklmnopqrstuvwxyz") == 13;
    }
    int cs = shaped ? crypt_checksalt(hash) : CRYPT_SALT_INVALID;
    if (cs != CRYPT_SALT_OK && cs != CRYPT_SALT_METHOD_LEGACY) {
        cfg_error_set(err, file, lineno,
                      "expected a crypt(3) hash such as $y$... or $6$..., or * for no login "
                      "(is this a plain-text password?)");
        return -1;
    }
    e->weak_hash = cs == CRYPT_SALT_METHOD_LEGACY;
    return 0;
}

static bool users_home_valid(const char *home)
{
    size_t len = strlen(home);
    if (len == 0 || len > USERS_HOME_MAX || home[0] != '/')
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)home[i] < ' ' || home[i] == 0x7f)
            return false;
    /* No ".." component: a home is where mail may be written. */
    for (const char *p = home; (p = strstr(p, "..")) != NULL; p += 2)
        if (p[-1] == '/' && (p[2] == '/' || p[2] == '\0'))
            return false;
    return true;
}

static int users_line_parse(struct users_entry *e, char *line, const char *file, unsigned lineno,
                            struct cfg_error *err)
{
    char *f[3];
    int n = 0;
    memset(e, 0, sizeof *e);
    e->lineno = lineno;
    f[n++] = line;
    for (char *p = line; *p; p++) {
        if (*p != ':')
            continue;
        if (n == 3) {
            cfg_error_set(err, file, lineno, "expected name:hash[:home], got more fields");
            return -1;
        }
        *p = '\0';
        f[n++] = p + 1;
    }
    if (n < 2) {
        cfg_error_set(err, file, lineno, "expected name:hash[:home]");
        return -1;
    }
    if (!users_name_valid(f[0])) {
        cfg_error_set(err, file, lineno,
                      "expected a user name of 1-%d characters from a-z 0-9 . _ - (not starting "
                      "with . or -), got \"%.40s\"", USERS_NAME_MAX, f[0]);
        return -1;
    }
    if (users_hash_check(e, f[1], file, lineno, err) < 0)
        return -1;
    if (n == 3 && !users_home_valid(f[2])) {
        cfg_error_set(err, file, lineno,
                      "expected an absolute home directory without \"..\", got \"%.80s\"", f[2]);
        return -1;
    }
    e->name = xstrdup(f[0]);
    e->hash = xstrdup(f[1]);
    e->home = n == 3 ? xstrdup(f[2]) : NULL;
    return 0;
}

static int users_entry_cmp(const void *a, const void *b)
{
    const struct users_entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return (x->lineno > y->lineno) - (x->lineno < y->lineno);
}

int users_load(struct users **users_r, const char *file, const char *data, size_t len,
               struct cfg_error *err)
{
    struct cfg_reader r;
    struct users *u = xcalloc(1, sizeof *u);
    size_t cap = 0;
    char *line;
    unsigned lineno;
    int rc;

    *users_r = NULL;
    cfg_reader_init(&r, file, data, len, CFG_TRAILING_COMMENT);
    while ((rc = cfg_reader_next(&r, &line, &lineno, err)) == 1) {
        if (u->count == USERS_ENTRIES_MAX) {
            cfg_error_set(err, file, lineno, "more than %d users", USERS_ENTRIES_MAX);
            rc = -1;
            break;
        }
        if (u->count == cap) {
            cap = cap ? cap * 2 : 16;
            u->entries = xreallocarray(u->entries, cap, sizeof *u->entries);
        }
        if (users_line_parse(&u->entries[u->count], line, file, lineno, err) < 0) {
            rc = -1;
            break;
        }
        u->count++;
    }
    cfg_reader_free(&r);
    if (rc < 0) {
        users_free(u);
        return -1;
    }
    if (u->count > 1)
        qsort(u->entries, u->count, sizeof *u->entries, users_entry_cmp);
    const struct users_entry *dup = NULL, *first = NULL;
    for (size_t i = 1, run = 0; i < u->count; i++) {
        if (strcmp(u->entries[i].name, u->entries[run].name) != 0) {
            run = i;
        } else if (!dup || u->entries[i].lineno < dup->lineno) {
            dup = &u->entries[i];
            first = &u->entries[run];
        }
    }
    if (dup) {
        cfg_error_set(err, file, dup->lineno, "duplicate user \"%s\" (first defined on line %u)",
                      dup->name, first->lineno);
        users_free(u);
        return -1;
    }
    *users_r = u;
    return 0;
}

const struct users_entry *users_lookup(const struct users *users, const char *name)
{
    size_t lo = 0, hi = users->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, users->entries[mid].name);
        if (c == 0)
            return &users->entries[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Equal strings, in time that depends only on the length of the stored hash. */
static bool users_const_eq(const char *computed, const char *stored)
{
    size_t lc = strlen(computed), ls = strlen(stored);
    volatile unsigned char diff = lc != ls;
    for (size_t i = 0; i < ls; i++) {
        unsigned char c = i < lc ? (unsigned char)computed[i] : 0;
        diff |= (unsigned char)(c ^ (unsigned char)stored[i]);
    }
    return diff == 0;
}

/* 1: match, 0: no match, -1: libcrypt refused. */
static int users_crypt_check(const char *hash, const char *password)
{
    struct crypt_data *cd = xcalloc(1, sizeof *cd);
    const char *out = crypt_r(password, hash, cd);
    int rc;
    /* libxcrypt signals failure with NULL or a string starting with '*'. */
    if (!out || out[0] == '*')
        rc = -1;
    else
        rc = users_const_eq(out, hash) ? 1 : 0;
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    return rc;
}

void users_check_prepare(const struct users *users, const char *name, struct users_check *chk)
{
    const struct users_entry *e = users ? users_lookup(users, name) : NULL;
    if (!e || !e->can_login || !str_copy(chk->hash, sizeof chk->hash, e->hash)) {
        str_copy(chk->hash, sizeof chk->hash, users_dummy_hash);
        chk->if_unusable = !e ? USERS_AUTH_UNKNOWN_USER
                           : e->can_login ? USERS_AUTH_ERROR /* a hash longer than any crypt's */
                                          : USERS_AUTH_LOCKED;
        return;
    }
    chk->if_unusable = USERS_AUTH_OK;
}

enum users_auth users_check_run(const struct users_check *chk, const char *password)
{
    if (strlen(password) > USERS_PASSWORD_MAX)
        return USERS_AUTH_ERROR;
    int rc = users_crypt_check(chk->hash, password);
    if (chk->if_unusable != USERS_AUTH_OK)
        return chk->if_unusable;
    switch (rc) {
    case 1: return USERS_AUTH_OK;
    case 0: return USERS_AUTH_BAD_PASSWORD;
    default: return USERS_AUTH_ERROR;
    }
}

enum users_auth users_verify(const struct users *users, const char *name, const char *password)
{
    struct users_check chk;
    users_check_prepare(users, name, &chk);
    enum users_auth a = users_check_run(&chk, password);
    explicit_bzero(&chk, sizeof chk);
    return a;
}
