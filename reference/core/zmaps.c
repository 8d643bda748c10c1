/* zmaps: an instance's lookup tables and their adapters (see zmaps.h). */
#include "zmaps.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "aliases.h"
#include "fsutil.h"
#include "hostsallow.h"
#include "hostsfile.h"
#include "log.h"
#include "mailpath.h"
#include "str.h"
#include "users.h"
#include "xalloc.h"

#define ZMAPS_FILE_MAX (64u << 20)

struct zmaps {
    const struct zconf *conf;
    struct users *users;
    struct aliases *aliases;
    struct access *access;
    struct hostsallow *allow;
    struct hostsallow *deny;
    struct hostsfile *hosts;
    char reply[320];   /* an access-map reply text, valid until the next lookup */
};

typedef int (*zmaps_loader)(void **out, const char *file, const char *data, size_t len,
                            struct cfg_error *err);

/* Reads path (when set) and hands its bytes to the format's loader. */
static bool zmaps_load_file(const char *path, void **out, zmaps_loader load, struct cfg_error *err)
{
    *out = NULL;
    if (!path || !path[0])
        return true;
    char *data;
    size_t len;
    if (fs_read_file(path, ZMAPS_FILE_MAX, &data, &len) < 0) {
        cfg_error_set(err, path, 0, "cannot read: %s", strerror(errno));
        return false;
    }
    int rc = load(out, path, data, len, err);
    free(data);
    return rc == 0;
}

/* The loaders differ only in their output type; these wrappers give them one shape. */
#define ZMAPS_WRAP(name, type)                                                                     \
    static int zmaps_load_##name(void **out, const char *file, const char *data, size_t len,       \
                                 struct cfg_error *err)                                            \
    {                                                                                              \
        struct type *p = NULL;                                                                     \
        int rc = name##_load(&p, file, data, len, err);                                            \
        *out = p;                                                                                  \
        return rc;                                                                                 \
    }
ZMAPS_WRAP(users, users)
ZMAPS_WRAP(aliases, aliases)
ZMAPS_WRAP(access, access)
ZMAPS_WRAP(hostsallow, hostsallow)
ZMAPS_WRAP(hostsfile, hostsfile)

void zmaps_set_conf(struct zmaps *m, const struct zconf *conf)
{
    m->conf = conf;
}

struct zmaps *zmaps_load(const struct zconf *conf, struct cfg_error *err)
{
    struct zmaps *m = xcalloc(1, sizeof *m);
    void *p;
    m->conf = conf;
    bool ok = zmaps_load_file(conf->users, &p, zmaps_load_users, err) && (m->users = p, true) &&
              zmaps_load_file(conf->aliases, &p, zmaps_load_aliases, err) && (m->aliases = p, true) &&
              zmaps_load_file(conf->access, &p, zmaps_load_access, err) && (m->access = p, true) &&
              zmaps_load_file(conf->hosts_allow, &p, zmaps_load_hostsallow, err) && (m->allow = p, true) &&
              zmaps_load_file(conf->hosts_deny, &p, zmaps_load_hostsallow, err) && (m->deny = p, true) &&
              zmaps_load_file(conf->hosts_file, &p, zmaps_load_hostsfile, err) && (m->hosts = p, true);
    if (!ok) {
        zmaps_free(m);
        return NULL;
    }
    return m;
}

void zmaps_free(struct zmaps *m)
{
    if (!m)
        return;
    users_free(m->users);
    aliases_free(m->aliases);
    access_free(m->access);
    hostsallow_free(m->allow);
    hostsallow_free(m->deny);
    hostsfile_free(m->hosts);
    free(m);
}

bool zmaps_localhost_denied(const struct zmaps *m)
{
    struct hostsallow_decision d;
    return (m->allow || m->deny) && hostsallow_denies_localhost(m->allow, m->deny, "smtpd", &d);
}

/* ---- SMTP adapters ------------------------------------------------------------------------ */

static bool zmaps_is_user(void *ctx, const char *name)
{
    struct zmaps *m = ctx;
    char lower[256];
    if (!m->users || !str_copy(lower, sizeof lower, name))
        return false;
    str_lower(lower);
    return users_lookup(m->users, lower) != NULL;
}

static bool zmaps_mail_dir(void *ctx, const char *user, char *out, size_t outlen)
{
    struct zmaps *m = ctx;
    const struct users_entry *e = m->users ? users_lookup(m->users, user) : NULL;
    const char *why;
    if (!e)
        return false;
    if (!mailpath_user_dir(m->conf->mail_dir, m->conf->state_dir, e->name, e->home, out, outlen, &why)) {
        log_warnx("mail_dir for %s: %s", e->name, why);
        return false;
    }
    return true;
}

static bool zmaps_local_exists(void *ctx, const char *local)
{
    struct zmaps *m = ctx;
    char lower[256];
    if (!str_copy(lower, sizeof lower, local))
        return false;
    str_lower(lower);
    size_t n;
    if (m->aliases && aliases_lookup(m->aliases, lower, &n, NULL))
        return true;
    return zmaps_is_user(ctx, lower);
}

static const char *zmaps_client_name(void *ctx, const struct netaddr *addr)
{
    struct zmaps *m = ctx;
    if (!m->hosts)
        return NULL;
    const char *name = hostsfile_lookup_addr(m->hosts, addr);
    if (!name)
        return NULL;
    /* Forward-confirmed: the name must lead back to the same address. */
    struct netaddr found[16];
    size_t n = hostsfile_lookup_name(m->hosts, name, addr->family, found, 16);
    for (size_t i = 0; i < n && i < 16; i++)
        if (memcmp(&found[i], addr, sizeof *addr) == 0)
            return name;
    return NULL;
}

static bool zmaps_client_allowed(void *ctx, const struct netaddr *addr, const char *name)
{
    struct zmaps *m = ctx;
    if (!m->allow && !m->deny)
        return true;
    struct hostsallow_decision d;
    return hostsallow_decide(m->allow, m->deny, "smtpd", addr, name, &d) == HOSTSALLOW_ALLOW;
}

static enum smtpd_access zmaps_verdict(struct zmaps *m, enum access_action action,
                                       const struct access_verdict *v, const char **text_r)
{
    switch (action) {
    case ACCESS_OK:
        return SMTPD_ACCESS_OK;
    case ACCESS_RELAY:
        return SMTPD_ACCESS_RELAY;
    case ACCESS_REJECT:
    case ACCESS_DISCARD: /* no silent discard yet: refusing is the honest answer */
        snprintf(m->reply, sizeof m->reply, "554 5.7.1 Access denied");
        *text_r = m->reply;
        return SMTPD_ACCESS_REJECT;
    case ACCESS_ERROR: {
        unsigned code = v->code ? v->code : 550;
        const char *dsn = v->dsn[0] ? v->dsn : (code >= 500 ? "5.7.1" : "4.7.1");
        snprintf(m->reply, sizeof m->reply, "%u %s %s", code, dsn,
                 v->text && v->text[0] ? v->text : "Access denied");
        *text_r = m->reply;
        return SMTPD_ACCESS_REJECT;
    }
    case ACCESS_NONE:
    case ACCESS_SKIP:
        break;
    }
    return SMTPD_ACCESS_DUNNO;
}

static enum smtpd_access zmaps_access_client(void *ctx, const struct netaddr *addr, const char **text_r)
{
    struct zmaps *m = ctx;
    if (!m->access)
        return SMTPD_ACCESS_DUNNO;
    struct access_verdict v;
    enum access_action a = access_check_connect(m->access, addr, zmaps_client_name(ctx, addr), &v);
    return zmaps_verdict(m, a, &v, text_r);
}

static enum smtpd_access zmaps_access_sender(void *ctx, const char *sender, const char **text_r)
{
    struct zmaps *m = ctx;
    if (!m->access)
        return SMTPD_ACCESS_DUNNO;
    struct access_verdict v;
    return zmaps_verdict(m, access_check_from(m->access, sender, &v), &v, text_r);
}

static enum smtpd_access zmaps_access_rcpt(void *ctx, const char *rcpt, const char **text_r)
{
    struct zmaps *m = ctx;
    if (!m->access)
        return SMTPD_ACCESS_DUNNO;
    struct access_verdict v;
    return zmaps_verdict(m, access_check_to(m->access, rcpt, &v), &v, text_r);
}

static bool zmaps_authenticate(void *ctx, const char *user, const char *password)
{
    struct zmaps *m = ctx;
    if (!m->users)
        return false;
    enum users_auth a = users_verify(m->users, user, password);
    if (a != USERS_AUTH_OK)
        log_info("auth: user=%s result=%s", user, users_auth_name(a));
    return a == USERS_AUTH_OK;
}

static void zmaps_auth_prepare(void *ctx, const char *user, struct users_check *chk)
{
    const struct zmaps *m = ctx;
    users_check_prepare(m->users, user, chk);
}

void zmaps_smtpd(struct zmaps *m, struct smtpd_maps *out)
{
    memset(out, 0, sizeof *out);
    out->ctx = m;
    out->local_exists = zmaps_local_exists;
    out->client_name = zmaps_client_name;
    out->client_allowed = zmaps_client_allowed;
    out->access_client = zmaps_access_client;
    out->access_sender = zmaps_access_sender;
    out->access_rcpt = zmaps_access_rcpt;
    out->authenticate = zmaps_authenticate;
    out->auth_prepare = zmaps_auth_prepare;
    out->mail_dir = zmaps_mail_dir;
}

/* ---- delivery adapter --------------------------------------------------------------------- */

static int zmaps_expand(void *ctx, const char *local, struct deliver_targets *t)
{
    struct zmaps *m = ctx;
    char name[256];
    if (!str_copy(name, sizeof name, local))
        return -1;
    str_lower(name);
    size_t n;
    if (!m->aliases || !aliases_lookup(m->aliases, name, &n, NULL)) {
        if (zmaps_is_user(ctx, name)) {
            deliver_targets_add(t, name, false);
            return 0;
        }
        /* RFC 5321 4.5.1: postmaster must work even when nobody aliased it. */
        if (strcmp(name, "postmaster") == 0 && m->aliases && aliases_lookup(m->aliases, "root", &n, NULL))
            return zmaps_expand(ctx, "root", t);
        return -1;
    }
    struct aliases_result res;
    const char *error;
    if (aliases_expand(m->aliases, name, &res, &error) < 0) {
        log_warnx("alias %s: %s", name, error);
        return -1;
    }
    if (res.loop)
        log_warnx("alias %s: loop in the aliases file; delivered to the user of that name", name);
    for (size_t i = 0; i < res.count; i++) {
        const char *at = strrchr(res.rcpts[i], '@');
        if (at && !zconf_is_local_domain(m->conf, at + 1)) {
            deliver_targets_add(t, res.rcpts[i], true);
        } else {
            char user[256];
            size_t len = at ? (size_t)(at - res.rcpts[i]) : strlen(res.rcpts[i]);
            if (len >= sizeof user)
                continue;
            memcpy(user, res.rcpts[i], len);
            user[len] = '\0';
            deliver_targets_add(t, user[0] == '\\' ? user + 1 : user, false);
        }
    }
    aliases_result_free(&res);
    return t->n ? 0 : -1;
}

void zmaps_resolver(struct zmaps *m, struct deliver_resolver *out)
{
    out->ctx = m;
    out->expand = zmaps_expand;
    out->is_user = zmaps_is_user;
    out->mail_dir = zmaps_mail_dir;
}

const struct hostsfile *zmaps_hosts(const struct zmaps *maps)
{
    return maps->hosts;
}
