/*
 * zconf: zolderd's configuration file, one table for every key (see zconf.h and
 * docs/config.md, which must list the same keys).
 */
#include "zconf.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"
#include "fsutil.h"
#include "mailpath.h"
#include "str.h"
#include "xalloc.h"

enum zconf_type {
    ZCONF_STR,
    ZCONF_PATH,
    ZCONF_BOOL,
    ZCONF_UINT,
    ZCONF_LISTEN,
    ZCONF_SUBMISSION,
    ZCONF_DOMAINS,
    ZCONF_NETS,
    ZCONF_MASQ,
    ZCONF_OUTBOUND,
    ZCONF_CHOICE,
};

struct zconf_key {
    const char *name;
    enum zconf_type type;
    size_t offset;
    const char *def;         /* text default, parsed like a config value ("" = unset) */
    unsigned long min, max;  /* ZCONF_UINT bounds */
    const char *choices;     /* ZCONF_CHOICE: space separated */
};

#define K(name, type, def) {#name, type, offsetof(struct zconf, name), def, 0, 0, NULL}
#define KU(name, def, min, max) {#name, ZCONF_UINT, offsetof(struct zconf, name), def, min, max, NULL}
#define KC(name, def, choices) {#name, ZCONF_CHOICE, offsetof(struct zconf, name), def, 0, 0, choices}

static const struct zconf_key zconf_keys[] = {
    K(hostname, ZCONF_STR, "localhost"),
    K(listen, ZCONF_LISTEN, "127.0.0.1:25"),
    K(submission, ZCONF_SUBMISSION, ""),
    K(pop3, ZCONF_LISTEN, ""),
    K(pop3s, ZCONF_LISTEN, ""),
    K(local_domains, ZCONF_DOMAINS, "localhost"),
    K(relay_from, ZCONF_NETS, ""),
    K(masquerade, ZCONF_MASQ, ""),
    K(outbound_allow, ZCONF_OUTBOUND, ""),
    K(state_dir, ZCONF_PATH, "/var/lib/zolder"),
    K(users, ZCONF_PATH, ""),
    K(aliases, ZCONF_PATH, ""),
    K(access, ZCONF_PATH, ""),
    K(hosts_allow, ZCONF_PATH, ""),
    K(hosts_deny, ZCONF_PATH, ""),
    K(hosts_file, ZCONF_PATH, ""),
    K(run_as, ZCONF_STR, "zolder"),
    K(tls_cert, ZCONF_PATH, ""),
    K(tls_key, ZCONF_PATH, ""),
    KC(mailbox_format, "mbox", "mbox maildir"),
    KC(log_level, "info", "debug info warning error"),
    K(vrfy, ZCONF_BOOL, "no"),
    K(expn, ZCONF_BOOL, "no"),
    KU(message_size_limit, "10240000", 1024, 1UL << 31),
    KU(recipient_limit, "100", 1, 10000),
    KU(line_length_limit, "1000", 512, 65536),
    KU(smtpd_error_limit, "20", 1, 1000),
    KU(smtpd_client_connection_limit, "10", 1, 10000),
    KU(smtpd_connection_limit, "100", 1, 100000),
    KU(smtpd_timeout, "300", 1, 86400),
    KU(smtpd_data_timeout, "600", 1, 86400),
    KU(hop_count_limit, "100", 5, 1000),
    KU(queue_run_interval, "300", 1, 86400),
    KU(local_retry_delay, "10", 1, 86400),
    KU(pop3_timeout, "600", 1, 86400),
    KU(pop3_connection_limit, "100", 1, 100000),
    K(plaintext_auth_from, ZCONF_NETS, ""),
    KU(auth_failure_delay, "2", 0, 60),
    K(smarthost, ZCONF_STR, ""),
    KC(smarthost_tls, "may", "may encrypt verify"),
    K(smarthost_auth, ZCONF_PATH, ""),
    K(tls_ca_file, ZCONF_PATH, ""),
    K(smtp_bind_address, ZCONF_STR, ""),
    K(nameserver, ZCONF_STR, ""),
    KC(dns, "canonify", "canonify nocanonify nodns"),
    K(defer_remote, ZCONF_BOOL, "no"),
    KU(retry_min_delay, "300", 1, 86400),
    KU(retry_max_delay, "4000", 1, 604800),
    KU(queue_lifetime, "432000", 1, 8640000),
    KU(smtp_connect_timeout, "30", 1, 3600),
    KU(smtp_reply_timeout, "300", 1, 86400),
    KU(smtp_data_timeout, "600", 1, 86400),
    /* outbound delivery: bounces and delay warnings */
    KU(delay_warning_time, "14400", 0, 8640000),
    KU(bounce_size_limit, "50000", 0, 1UL << 31),
    /* content filter (reference/filter, docs/filter.md) */
    K(filter, ZCONF_BOOL, "yes"),
    K(banned_extensions, ZCONF_STR, BANNED_DEFAULT),
    K(virus_signatures, ZCONF_PATH, ""),
    K(clamd, ZCONF_STR, ""),
    K(filter_admin, ZCONF_STR, "postmaster"),
    K(filter_fail_open, ZCONF_BOOL, "no"),
    KU(clamd_timeout, "60", 1, 3600),
    KU(filter_mime_depth, "20", 1, 100),
    KU(filter_mime_parts, "500", 1, 100000),
    KU(filter_header_limit, "65536", 1024, 1UL << 24),
    KU(filter_archive_depth, "3", 1, 20),
    KU(filter_archive_entries, "1000", 1, 1000000),
    KU(filter_archive_expanded, "104857600", 1024, 1UL << 32),
    /* fetch (reference/fetch) */
    K(fetchmailrc, ZCONF_PATH, ""),
    KU(fetch_interval, "3600", 0, 604800),
    K(fetch_smtp, ZCONF_STR, ""),
    KC(fetch_refused, "delete", "delete keep"),
    /* IMAP service (reference/imapd) */
    K(imap, ZCONF_LISTEN, ""),
    K(imaps, ZCONF_LISTEN, ""),
    KU(imap_timeout, "1800", 1, 86400),
    KU(imap_connection_limit, "100", 1, 100000),
    /* outbound delivery 2 (issue 5): local bounces, RFC 5321 4.5.3.2 timeouts per command */
    KU(mailbox_size_limit, "0", 0, 1UL << 40),
    KU(smtp_helo_timeout, "300", 1, 86400),
    KU(smtp_mail_timeout, "300", 1, 86400),
    KU(smtp_rcpt_timeout, "300", 1, 86400),
    KU(smtp_data_init_timeout, "120", 1, 86400),
    KU(smtp_data_xfer_timeout, "180", 1, 86400),
    /* content filter: asynchronous scanning (reference/filter) */
    KU(filter_scanners, "2", 1, 16),
    /* mail folders (issues 7 and 8) */
    K(mail_dir, ZCONF_STR, "~/Mail"),
    /* fetch: IMAP IDLE between polls (reference/fetch, fetchmailrc `idle`) */
    KU(fetch_idle_renew, "1680", 1, 1740),
    /* content filter: the scanner processes' own user (reference/filter/launcher) */
    K(filter_user, ZCONF_STR, ""),
    /* IMAP/POP3 throughput (issue 7): deferred compaction of mbox mailboxes */
    KU(mbox_compact_delay, "5", 0, 3600),
    KU(auth_cache_size, "100", 0, 100000),
    KU(auth_cache_ttl, "3600", 0, 86400),
    /* fetch: hand-off sessions to zolderd's SMTP listener (reference/fetch/handoff) */
    KU(fetch_smtp_sessions, "8", 1, 16),
};

#define ZCONF_NKEYS (sizeof zconf_keys / sizeof zconf_keys[0])

bool zconf_parse_listen(const char *text, unsigned default_port, struct zconf_listen *out)
{
    char host[NETADDR_STRLEN + 2];
    const char *port_text = NULL;
    size_t hlen;
    memset(out, 0, sizeof *out);
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close)
            return false;
        hlen = (size_t)(close - text - 1);
        if (hlen >= sizeof host)
            return false;
        memcpy(host, text + 1, hlen);
        if (close[1] == ':')
            port_text = close + 2;
        else if (close[1])
            return false;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon && strchr(text, ':') != colon)
            return false; /* bare IPv6 needs brackets to carry a port */
        hlen = colon ? (size_t)(colon - text) : strlen(text);
        if (hlen >= sizeof host)
            return false;
        memcpy(host, text, hlen);
        if (colon)
            port_text = colon + 1;
    }
    host[hlen] = '\0';
    unsigned long port = default_port;
    if (port_text && !str_to_ulong(port_text, 65535, &port))
        return false;
    if (port == 0)
        return false;
    struct netaddr a;
    if (!netaddr_parse(host, &a))
        return false;
    if (a.family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->sa;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        memcpy(&sin->sin_addr, a.bytes, 4);
        out->salen = sizeof *sin;
        snprintf(out->text, sizeof out->text, "%s:%lu", host, port);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->sa;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        memcpy(&sin6->sin6_addr, a.bytes, 16);
        out->salen = sizeof *sin6;
        snprintf(out->text, sizeof out->text, "[%s]:%lu", host, port);
    }
    return true;
}

/* The address list a listener key fills, and its default port. */
static struct zconf_listen *zconf_listen_slot(struct zconf *conf, const char *key, size_t **count_r,
                                              unsigned *port_r)
{
    if (strcmp(key, "submission") == 0) {
        *count_r = &conf->nsubmission;
        *port_r = 587;
        return conf->submission;
    }
    if (strcmp(key, "pop3") == 0) {
        *count_r = &conf->npop3;
        *port_r = 110;
        return conf->pop3;
    }
    if (strcmp(key, "pop3s") == 0) {
        *count_r = &conf->npop3s;
        *port_r = 995;
        return conf->pop3s;
    }
    if (strcmp(key, "imap") == 0) {
        *count_r = &conf->nimap;
        *port_r = 143;
        return conf->imap;
    }
    if (strcmp(key, "imaps") == 0) {
        *count_r = &conf->nimaps;
        *port_r = 993;
        return conf->imaps;
    }
    *count_r = &conf->nlisten;
    *port_r = 25;
    return conf->listen;
}

static void zconf_free_strs(char **list, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free(list[i]);
    *n = 0;
}

/* Splits a list value on commas and blanks into at most ZCONF_LIST_MAX fields. */
static int zconf_split_list(char *value, char **fields)
{
    return str_split(value, ", \t", fields, ZCONF_LIST_MAX);
}

static bool zconf_valid_domain(const char *d)
{
    size_t len = strlen(d), label = 0;
    if (len == 0 || len > 253)
        return false;
    for (const char *p = d; *p; p++) {
        if (*p == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                   (*p >= '0' && *p <= '9') || *p == '-' || *p == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* content filter: "unix:/absolute/path" (fits a sockaddr_un) or "ADDRESS:PORT". */
static bool zconf_valid_clamd(const char *value)
{
    if (strncmp(value, "unix:", 5) == 0)
        return value[5] == '/' && strlen(value + 5) < 108;
    struct zconf_listen l;
    return strchr(value, ':') && zconf_parse_listen(value, 0, &l);
}

static bool zconf_set(struct zconf *conf, const struct zconf_key *k, char *value,
                      const char *base_dir, const char *file, unsigned lineno,
                      struct cfg_error *err)
{
    char *base = (char *)conf;
    char *items[ZCONF_LIST_MAX];
    int n;

    switch (k->type) {
    case ZCONF_STR: {
        char **slot = (char **)(void *)(base + k->offset);
        if (strcmp(k->name, "run_as") == 0 &&
            (!value[0] || strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_-.") != strlen(value) ||
             value[0] == '-' || strlen(value) > 32)) {
            cfg_error_set(err, file, lineno, "run_as: expected a user name, got \"%s\"", value);
            return false;
        }
        if (strcmp(k->name, "filter_user") == 0 && value[0] &&
            (strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_-.") != strlen(value) || value[0] == '-' ||
             strlen(value) > 32)) {
            cfg_error_set(err, file, lineno, "filter_user: expected a user name, got \"%s\"", value);
            return false;
        }
        if (strcmp(k->name, "smarthost") == 0 && value[0]) {
            struct zconf_smarthost sh;
            if (!zconf_parse_smarthost(value, &sh)) {
                cfg_error_set(err, file, lineno, "smarthost: expected HOST[:PORT], [ADDRESS]:PORT or "
                              "smtps://HOST:465, got \"%s\"", value);
                return false;
            }
        }
        if (strcmp(k->name, "smtp_bind_address") == 0 && value[0]) {
            struct netaddr a;
            if (!netaddr_parse(value, &a)) {
                cfg_error_set(err, file, lineno, "smtp_bind_address: expected an IP address, got \"%s\"", value);
                return false;
            }
        }
        if (strcmp(k->name, "nameserver") == 0 && value[0]) {
            struct zconf_listen ns;
            if (!zconf_parse_listen(value, 53, &ns)) {
                cfg_error_set(err, file, lineno, "nameserver: expected ADDRESS[:PORT] such as 127.0.2.53 "
                              "or [::1]:53, got \"%s\"", value);
                return false;
            }
        }
        /* content filter (reference/filter) */
        if (strcmp(k->name, "banned_extensions") == 0) {
            struct banned_list list;
            const char *why;
            if (!banned_list_parse(&list, value, &why)) {
                cfg_error_set(err, file, lineno, "banned_extensions: %s, in \"%s\"", why, value);
                return false;
            }
        }
        if (strcmp(k->name, "clamd") == 0 && value[0] && !zconf_valid_clamd(value)) {
            cfg_error_set(err, file, lineno, "clamd: expected unix:/PATH/TO/clamd.ctl or ADDRESS:PORT, "
                          "got \"%s\"", value);
            return false;
        }
        if (strcmp(k->name, "filter_admin") == 0 &&
            (!value[0] || strpbrk(value, " \t<>\"(),;:\\") || value[0] == '@' || value[0] == '-')) {
            cfg_error_set(err, file, lineno, "filter_admin: expected a user name or address, got \"%s\"", value);
            return false;
        }
        const char *mail_dir_why;
        if (strcmp(k->name, "mail_dir") == 0 && !mailpath_valid(value, &mail_dir_why)) {
            cfg_error_set(err, file, lineno, "mail_dir: %s, got \"%s\"", mail_dir_why, value);
            return false;
        }
        if (strcmp(k->name, "hostname") == 0 && !zconf_valid_domain(value)) {
            cfg_error_set(err, file, lineno, "hostname: expected a host name like zolder.thuis, got \"%s\"", value);
            return false;
        }
        free(*slot);
        *slot = xstrdup(value);
        return true;
    }
    case ZCONF_PATH: {
        char **slot = (char **)(void *)(base + k->offset);
        free(*slot);
        *slot = value[0] ? fs_path_resolve(base_dir, value) : xstrdup("");
        return true;
    }
    case ZCONF_CHOICE: {
        char **slot = (char **)(void *)(base + k->offset);
        char choices[128];
        str_copy(choices, sizeof choices, k->choices);
        char *opts[8];
        int nopts = str_split(choices, " ", opts, 8);
        for (int i = 0; i < nopts; i++) {
            if (strcmp(opts[i], value) == 0) {
                free(*slot);
                *slot = xstrdup(value);
                return true;
            }
        }
        cfg_error_set(err, file, lineno, "%s: expected one of: %s; got \"%s\"", k->name,
                      k->choices, value);
        return false;
    }
    case ZCONF_BOOL: {
        bool *slot = (bool *)(void *)(base + k->offset);
        if (str_eq_nocase(value, "yes") || str_eq_nocase(value, "true") || strcmp(value, "1") == 0)
            *slot = true;
        else if (str_eq_nocase(value, "no") || str_eq_nocase(value, "false") || strcmp(value, "0") == 0)
            *slot = false;
        else {
            cfg_error_set(err, file, lineno, "%s: expected yes or no, got \"%s\"", k->name, value);
            return false;
        }
        return true;
    }
    case ZCONF_UINT: {
        unsigned long *slot = (unsigned long *)(void *)(base + k->offset);
        unsigned long v;
        if (!str_to_ulong(value, k->max, &v) || v < k->min) {
            cfg_error_set(err, file, lineno, "%s: expected a whole number from %lu to %lu, got \"%s\"",
                          k->name, k->min, k->max, value);
            return false;
        }
        *slot = v;
        return true;
    }
    case ZCONF_LISTEN:
    case ZCONF_SUBMISSION: {
        size_t *count;
        unsigned port;
        struct zconf_listen *arr = zconf_listen_slot(conf, k->name, &count, &port);
        n = zconf_split_list(value, items);
        if (n < 0 || (size_t)n > ZCONF_LISTEN_MAX) {
            cfg_error_set(err, file, lineno, "%s: at most %d addresses", k->name, ZCONF_LISTEN_MAX);
            return false;
        }
        *count = 0;
        for (int i = 0; i < n; i++) {
            if (!zconf_parse_listen(items[i], port, &arr[i])) {
                cfg_error_set(err, file, lineno,
                              "%s: expected ADDRESS[:PORT] such as 127.0.0.1:%u or [::1]:%u, got \"%s\"",
                              k->name, port, port, items[i]);
                return false;
            }
        }
        *count = (size_t)n;
        return true;
    }
    case ZCONF_DOMAINS:
    case ZCONF_OUTBOUND: {
        bool dom = k->type == ZCONF_DOMAINS;
        char **arr = dom ? conf->local_domains : conf->outbound_allow;
        size_t *count = dom ? &conf->nlocal_domains : &conf->noutbound_allow;
        n = zconf_split_list(value, items);
        if (n < 0) {
            cfg_error_set(err, file, lineno, "%s: at most %d entries", k->name, ZCONF_LIST_MAX);
            return false;
        }
        zconf_free_strs(arr, count);
        for (int i = 0; i < n; i++) {
            if (dom && !zconf_valid_domain(items[i])) {
                cfg_error_set(err, file, lineno, "%s: expected domain names, got \"%s\"", k->name, items[i]);
                return false;
            }
            arr[i] = xstrdup(items[i]);
            if (dom)
                str_lower(arr[i]);
            *count = (size_t)i + 1;
        }
        if (!dom)
            conf->outbound_restricted = n > 0; /* empty: nobody is restricted */
        return true;
    }
    case ZCONF_NETS: {
        n = zconf_split_list(value, items);
        if (n < 0) {
            cfg_error_set(err, file, lineno, "%s: at most %d networks", k->name, ZCONF_LIST_MAX);
            return false;
        }
        struct zconf_nets *nets = (struct zconf_nets *)((char *)conf + k->offset);
        for (int i = 0; i < n; i++) {
            if (!netmask_parse(items[i], &nets->net[i])) {
                cfg_error_set(err, file, lineno,
                              "%s: expected networks such as 192.168.1.0/24 or 192.168.1, got \"%s\"",
                              k->name, items[i]);
                return false;
            }
        }
        nets->n = (size_t)n;
        return true;
    }
    case ZCONF_MASQ: {
        struct zconf_masquerade *m = &conf->masquerade;
        zconf_free_strs(m->hosts, &m->nhosts);
        free(m->domain);
        m->domain = NULL;
        if (!value[0])
            return true;
        char *arrow = strstr(value, "->");
        if (!arrow) {
            cfg_error_set(err, file, lineno,
                          "masquerade: expected \"HOST [HOST...] -> DOMAIN\", got \"%s\"", value);
            return false;
        }
        *arrow = '\0';
        char *target = str_trim(arrow + 2);
        n = zconf_split_list(value, items);
        if (n <= 0 || !zconf_valid_domain(target) || strchr(target, ' ')) {
            cfg_error_set(err, file, lineno,
                          "masquerade: expected \"HOST [HOST...] -> DOMAIN\" with at least one host");
            return false;
        }
        for (int i = 0; i < n; i++) {
            if (!zconf_valid_domain(items[i])) {
                zconf_free_strs(m->hosts, &m->nhosts);
                cfg_error_set(err, file, lineno, "masquerade: \"%s\" is not a host name", items[i]);
                return false;
            }
            m->hosts[i] = xstrdup(items[i]);
            str_lower(m->hosts[i]);
            m->nhosts = (size_t)i + 1;
        }
        m->domain = xstrdup(target);
        str_lower(m->domain);
        return true;
    }
    }
    return false;
}

void zconf_defaults(struct zconf *conf, const char *base_dir)
{
    struct cfg_error err;
    memset(conf, 0, sizeof *conf);
    for (size_t i = 0; i < ZCONF_NKEYS; i++) {
        char value[512]; /* the longest default is banned_extensions */
        str_copy(value, sizeof value, zconf_keys[i].def);
        if (!zconf_set(conf, &zconf_keys[i], value, base_dir, "(defaults)", 0, &err))
            log_panic("bad default for %s: %s", zconf_keys[i].name, err.text);
    }
    conf->outbound_restricted = false;
}

bool zconf_parse(struct zconf *conf, const char *file, const char *data, size_t len,
                 struct cfg_error *err)
{
    struct cfg_reader r;
    char *line;
    unsigned lineno;
    int rc;
    bool seen[ZCONF_NKEYS] = {false};
    char *base_dir = fs_dirname(file);
    bool ok = true;

    free(conf->file);
    conf->file = xstrdup(file);
    cfg_reader_init(&r, file, data, len, CFG_CONT_INDENT | CFG_TRAILING_COMMENT);
    while ((rc = cfg_reader_next(&r, &line, &lineno, err)) == 1) {
        char *key, *value;
        if (!cfg_split_key_value(line, '=', &key, &value)) {
            cfg_error_set(err, file, lineno, "expected \"key = value\", got \"%s\"", line);
            ok = false;
            break;
        }
        size_t i;
        for (i = 0; i < ZCONF_NKEYS; i++)
            if (strcmp(zconf_keys[i].name, key) == 0)
                break;
        if (i == ZCONF_NKEYS) {
            cfg_error_set(err, file, lineno, "unknown key \"%s\" (docs/config.md lists every key)", key);
            ok = false;
            break;
        }
        if (seen[i]) {
            cfg_error_set(err, file, lineno, "key \"%s\" set twice", key);
            ok = false;
            break;
        }
        seen[i] = true;
        size_t vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        }
        if (strchr(value, '"')) {
            cfg_error_set(err, file, lineno, "%s: quotes may only enclose the whole value", key);
            ok = false;
            break;
        }
        if (!zconf_set(conf, &zconf_keys[i], value, base_dir, file, lineno, err)) {
            ok = false;
            break;
        }
    }
    if (rc < 0)
        ok = false;
    cfg_reader_free(&r);
    free(base_dir);
    return ok;
}

bool zconf_validate(const struct zconf *conf, struct cfg_error *err)
{
    const char *file = conf->file ? conf->file : "-";
    if (!conf->tls_cert[0] != !conf->tls_key[0]) {
        cfg_error_set(err, file, 0, "tls_cert and tls_key must be set together");
        return false;
    }
    if (conf->nlisten == 0 && conf->nsubmission == 0) {
        cfg_error_set(err, file, 0, "no listen or submission address: nothing to serve");
        return false;
    }
    if (conf->npop3s && !conf->tls_cert[0]) {
        cfg_error_set(err, file, 0, "pop3s needs tls_cert and tls_key");
        return false;
    }
    if (conf->nimaps && !conf->tls_cert[0]) {
        cfg_error_set(err, file, 0, "imaps needs tls_cert and tls_key");
        return false;
    }
    if (strcmp(conf->smarthost_tls, "verify") == 0 && !conf->tls_ca_file[0]) {
        cfg_error_set(err, file, 0, "smarthost_tls = verify needs tls_ca_file");
        return false;
    }
    if (conf->retry_max_delay < conf->retry_min_delay) {
        cfg_error_set(err, file, 0, "retry_max_delay must not be below retry_min_delay");
        return false;
    }
    if (!conf->state_dir[0]) {
        cfg_error_set(err, file, 0, "state_dir must be set");
        return false;
    }
    /* fetch */
    struct zconf_listen fetch_smtp;
    if (conf->fetch_smtp[0] && !zconf_parse_listen(conf->fetch_smtp, 25, &fetch_smtp)) {
        cfg_error_set(err, file, 0, "fetch_smtp must be ADDR:PORT, not \"%s\"", conf->fetch_smtp);
        return false;
    }
    if (conf->fetchmailrc[0] && !conf->fetch_smtp[0] && conf->nlisten == 0) {
        cfg_error_set(err, file, 0, "fetchmailrc needs a listen address or fetch_smtp");
        return false;
    }
    return true;
}

void zconf_free(struct zconf *conf)
{
    free(conf->file);
    free(conf->hostname);
    free(conf->state_dir);
    free(conf->users);
    free(conf->aliases);
    free(conf->access);
    free(conf->hosts_allow);
    free(conf->hosts_deny);
    free(conf->hosts_file);
    free(conf->run_as);
    free(conf->tls_cert);
    free(conf->tls_key);
    free(conf->mailbox_format);
    free(conf->log_level);
    free(conf->smarthost);
    free(conf->smarthost_tls);
    free(conf->smarthost_auth);
    free(conf->tls_ca_file);
    free(conf->smtp_bind_address);
    free(conf->nameserver);
    free(conf->dns);
    free(conf->fetchmailrc);
    free(conf->fetch_smtp);
    free(conf->fetch_refused);
    free(conf->mail_dir);
    zconf_free_strs(conf->local_domains, &conf->nlocal_domains);
    zconf_free_strs(conf->outbound_allow, &conf->noutbound_allow);
    zconf_free_strs(conf->masquerade.hosts, &conf->masquerade.nhosts);
    free(conf->masquerade.domain);
    /* content filter */
    free(conf->banned_extensions);
    free(conf->virus_signatures);
    free(conf->clamd);
    free(conf->filter_admin);
    free(conf->filter_user);
    memset(conf, 0, sizeof *conf);
}

static void zconf_print_strs(struct buf *out, const char *key, char *const *list, size_t n)
{
    buf_printf(out, "%s =", key);
    for (size_t i = 0; i < n; i++)
        buf_printf(out, "%s%s", i ? ", " : " ", list[i]);
    buf_append_char(out, '\n');
}

void zconf_print(const struct zconf *conf, struct buf *out)
{
    const char *base = (const char *)conf;
    for (size_t i = 0; i < ZCONF_NKEYS; i++) {
        const struct zconf_key *k = &zconf_keys[i];
        const void *slot = base + k->offset;
        switch (k->type) {
        case ZCONF_STR:
        case ZCONF_PATH:
        case ZCONF_CHOICE: {
            const char *v = *(char *const *)slot;
            /* Quoted when a '#' or edge blank would otherwise read differently. */
            bool quote = strchr(v, '#') || (v[0] && (v[0] == ' ' || v[strlen(v) - 1] == ' '));
            buf_printf(out, quote ? "%s = \"%s\"\n" : "%s = %s\n", k->name, v);
            break;
        }
        case ZCONF_BOOL:
            buf_printf(out, "%s = %s\n", k->name, *(const bool *)slot ? "yes" : "no");
            break;
        case ZCONF_UINT:
            buf_printf(out, "%s = %lu\n", k->name, *(const unsigned long *)slot);
            break;
        case ZCONF_LISTEN:
        case ZCONF_SUBMISSION: {
            size_t *count;
            unsigned port;
            const struct zconf_listen *arr = zconf_listen_slot((struct zconf *)conf, k->name, &count, &port);
            size_t n = *count;
            buf_printf(out, "%s =", k->name);
            for (size_t j = 0; j < n; j++)
                buf_printf(out, "%s%s", j ? ", " : " ", arr[j].text);
            buf_append_char(out, '\n');
            break;
        }
        case ZCONF_DOMAINS:
            zconf_print_strs(out, k->name, conf->local_domains, conf->nlocal_domains);
            break;
        case ZCONF_OUTBOUND:
            zconf_print_strs(out, k->name, conf->outbound_allow, conf->noutbound_allow);
            break;
        case ZCONF_NETS: {
            const struct zconf_nets *nets =
                (const struct zconf_nets *)((const char *)conf + k->offset);
            buf_printf(out, "%s =", k->name);
            for (size_t j = 0; j < nets->n; j++) {
                char a[NETADDR_STRLEN];
                netaddr_format(&nets->net[j].addr, a, sizeof a);
                buf_printf(out, "%s%s/%u", j ? ", " : " ", a, nets->net[j].prefix);
            }
            buf_append_char(out, '\n');
            break;
        }
        case ZCONF_MASQ:
            buf_printf(out, "%s =", k->name);
            for (size_t j = 0; j < conf->masquerade.nhosts; j++)
                buf_printf(out, " %s", conf->masquerade.hosts[j]);
            if (conf->masquerade.domain)
                buf_printf(out, " -> %s", conf->masquerade.domain);
            buf_append_char(out, '\n');
            break;
        }
    }
}

bool zconf_parse_smarthost(const char *text, struct zconf_smarthost *out)
{
    memset(out, 0, sizeof *out);
    out->port = 25;
    if (str_starts_with_nocase(text, "smtps://")) {
        text += 8;
        out->implicit_tls = true;
        out->port = 465;
    }
    const char *host = text, *port = NULL;
    size_t hlen;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close)
            return false;
        host = text + 1;
        hlen = (size_t)(close - host);
        if (close[1] == ':')
            port = close + 2;
        else if (close[1])
            return false;
        struct netaddr a;
        char lit[NETADDR_STRLEN];
        if (hlen == 0 || hlen >= sizeof lit)
            return false;
        memcpy(lit, host, hlen);
        lit[hlen] = '\0';
        if (!netaddr_parse(lit, &a))
            return false;
    } else {
        const char *colon = strchr(text, ':');
        hlen = colon ? (size_t)(colon - text) : strlen(text);
        if (colon)
            port = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof out->host)
        return false;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    if (text[0] != '[' && !zconf_valid_domain(out->host))
        return false;
    if (port) {
        unsigned long v;
        if (!str_to_ulong(port, 65535, &v) || v == 0)
            return false;
        out->port = (unsigned)v;
    }
    str_lower(out->host);
    return true;
}

bool zconf_is_local_domain(const struct zconf *conf, const char *domain)
{
    for (size_t i = 0; i < conf->nlocal_domains; i++)
        if (str_eq_nocase(conf->local_domains[i], domain))
            return true;
    return str_eq_nocase(conf->hostname, domain);
}

bool zconf_plaintext_auth_ok(const struct zconf *conf, const struct netaddr *addr)
{
    if (netaddr_is_local(addr))
        return true;
    for (size_t i = 0; i < conf->plaintext_auth_from.n; i++)
        if (netmask_match(&conf->plaintext_auth_from.net[i], addr))
            return true;
    return false;
}
