/*
 * smtpd maps: the lookups the SMTP service needs, as callbacks, so the session code does not
 * depend on how users, aliases, the access map, hosts.allow or the hosts file are stored.
 * zolderd fills this from its loaded maps (reference/core/); tests can fill it by hand.
 */
#ifndef ZOLDER_SMTPD_MAPS_H
#define ZOLDER_SMTPD_MAPS_H

#include <stdbool.h>
#include <stddef.h>

#include "netaddr.h"
#include "users.h"

enum smtpd_access {
    SMTPD_ACCESS_DUNNO,   /* no entry: the normal rules decide */
    SMTPD_ACCESS_OK,      /* accept (no relay right implied for Connect/From) */
    SMTPD_ACCESS_RELAY,   /* may relay */
    SMTPD_ACCESS_REJECT,  /* refuse with the map's text */
};

struct smtpd_maps {
    void *ctx;
    /* Does this local part name a local mailbox or alias (case-insensitive)? */
    bool (*local_exists)(void *ctx, const char *local);
    /* Forward-confirmed reverse name of addr, or NULL. */
    const char *(*client_name)(void *ctx, const struct netaddr *addr);
    /* hosts.allow/hosts.deny verdict for the smtpd service. */
    bool (*client_allowed)(void *ctx, const struct netaddr *addr, const char *name);
    /* Access map by client, sender, recipient; *text_r may carry a reply text. */
    enum smtpd_access (*access_client)(void *ctx, const struct netaddr *addr, const char **text_r);
    enum smtpd_access (*access_sender)(void *ctx, const char *addr, const char **text_r);
    enum smtpd_access (*access_rcpt)(void *ctx, const char *addr, const char **text_r);
    /* Password check on the calling thread; true when user/password are valid. */
    bool (*authenticate)(void *ctx, const char *user, const char *password);
    /* What a check of user needs, copied from the current users table, for reference/auth. */
    void (*auth_prepare)(void *ctx, const char *user, struct users_check *chk);
    /* user's mail folder (mail_dir, reference/proto/mailpath.h); false: no such user or unusable. */
    bool (*mail_dir)(void *ctx, const char *user, char *out, size_t outlen);
};

#endif
