/*
 * hostsfile: /etc/hosts parsing and lookups (see hostsfile.h).
 *
 * DESCRIPTION
 *   One entry per line, kept in file order because order is meaning here (the first line for
 *   an address gives its canonical name; the order of addresses is the order callers try).
 *   Lookups are linear: a hosts file has a handful of lines and is bounded anyway.
 */
#include "hostsfile.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "str.h"
#include "xalloc.h"

struct hostsfile_entry {
    struct netaddr addr;
    char **names;  /* lower-case, no trailing dot */
    size_t count;
    unsigned lineno;
};

struct hostsfile {
    struct hostsfile_entry *entries;
    size_t count;
};

static void hostsfile_entry_free(struct hostsfile_entry *e)
{
    for (size_t i = 0; i < e->count; i++)
        free(e->names[i]);
    free(e->names);
}

void hostsfile_free(struct hostsfile *hosts)
{
    if (!hosts)
        return;
    for (size_t i = 0; i < hosts->count; i++)
        hostsfile_entry_free(&hosts->entries[i]);
    free(hosts->entries);
    free(hosts);
}

size_t hostsfile_count(const struct hostsfile *hosts) { return hosts->count; }

/* Host-name syntax (labels of [A-Za-z0-9_-]) over len bytes. */
static bool hostsfile_name_valid(const char *d, size_t len)
{
    size_t label = 0;
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

static int hostsfile_line_parse(struct hostsfile_entry *e, char *line, const char *file,
                                unsigned lineno, struct cfg_error *err)
{
    char *f[HOSTSFILE_NAMES_MAX + 1];
    memset(e, 0, sizeof *e);
    e->lineno = lineno;
    int n = str_split(line, " \t", f, HOSTSFILE_NAMES_MAX + 1);
    if (n < 0) {
        cfg_error_set(err, file, lineno, "more than %d names for one address",
                      HOSTSFILE_NAMES_MAX);
        return -1;
    }
    if (n == 0) {
        cfg_error_set(err, file, lineno, "expected an address and host names");
        return -1;
    }
    /* netaddr_parse also takes "[::1]", which /etc/hosts does not. */
    if (f[0][0] == '[' || !netaddr_parse(f[0], &e->addr)) {
        cfg_error_set(err, file, lineno, "expected an IPv4 or IPv6 address, got \"%.60s\"", f[0]);
        return -1;
    }
    /* One spelling per address, so lookups by a v4 address find a ::ffff: line too. */
    netaddr_unmap_v4(&e->addr);
    if (n < 2) {
        cfg_error_set(err, file, lineno, "expected a host name after %.60s", f[0]);
        return -1;
    }
    e->names = xcalloc((size_t)n - 1, sizeof *e->names);
    for (int i = 1; i < n; i++) {
        size_t len = strlen(f[i]);
        if (len > 1 && f[i][len - 1] == '.')
            len--;
        if (!hostsfile_name_valid(f[i], len)) {
            cfg_error_set(err, file, lineno, "expected a host name, got \"%.60s\"", f[i]);
            return -1;
        }
        e->names[e->count] = xstrndup(f[i], len);
        str_lower(e->names[e->count++]);
    }
    return 0;
}

int hostsfile_load(struct hostsfile **hosts_r, const char *file, const char *data, size_t len,
                   struct cfg_error *err)
{
    struct cfg_reader r;
    struct hostsfile *h = xcalloc(1, sizeof *h);
    size_t cap = 0;
    char *line;
    unsigned lineno;
    int rc;

    *hosts_r = NULL;
    cfg_reader_init(&r, file, data, len, CFG_TRAILING_COMMENT);
    while ((rc = cfg_reader_next(&r, &line, &lineno, err)) == 1) {
        if (h->count == HOSTSFILE_ENTRIES_MAX) {
            cfg_error_set(err, file, lineno, "more than %d entries", HOSTSFILE_ENTRIES_MAX);
            rc = -1;
            break;
        }
        if (h->count == cap) {
            cap = cap ? cap * 2 : 16;
            h->entries = xreallocarray(h->entries, cap, sizeof *h->entries);
        }
        struct hostsfile_entry *e = &h->entries[h->count];
        if (hostsfile_line_parse(e, line, file, lineno, err) < 0) {
            hostsfile_entry_free(e);
            rc = -1;
            break;
        }
        h->count++;
    }
    cfg_reader_free(&r);
    if (rc < 0) {
        hostsfile_free(h);
        return -1;
    }
    *hosts_r = h;
    return 0;
}

static bool hostsfile_addr_eq(const struct netaddr *a, const struct netaddr *b)
{
    size_t n = a->family == AF_INET ? 4 : 16;
    return a->family == b->family && memcmp(a->bytes, b->bytes, n) == 0;
}

size_t hostsfile_lookup_name(const struct hostsfile *hosts, const char *name, int family,
                             struct netaddr *addrs_r, size_t max)
{
    size_t nlen = strlen(name), found = 0;
    if (nlen > 1 && name[nlen - 1] == '.')
        nlen--;
    for (size_t i = 0; i < hosts->count && found < max; i++) {
        const struct hostsfile_entry *e = &hosts->entries[i];
        if (family != AF_UNSPEC && e->addr.family != family)
            continue;
        bool hit = false;
        for (size_t j = 0; j < e->count && !hit; j++)
            hit = strlen(e->names[j]) == nlen && strncasecmp(e->names[j], name, nlen) == 0;
        if (!hit)
            continue;
        bool dup = false;
        for (size_t k = 0; k < found && !dup; k++)
            dup = hostsfile_addr_eq(&addrs_r[k], &e->addr);
        if (!dup)
            addrs_r[found++] = e->addr;
    }
    return found;
}

const char *hostsfile_lookup_addr(const struct hostsfile *hosts, const struct netaddr *addr)
{
    struct netaddr a = *addr;
    netaddr_unmap_v4(&a);
    for (size_t i = 0; i < hosts->count; i++)
        if (hostsfile_addr_eq(&hosts->entries[i].addr, &a))
            return hosts->entries[i].names[0];
    return NULL;
}
