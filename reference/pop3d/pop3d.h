/*
 * pop3d: zolderd's POP3 service (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH) on
 * libevent, over the INBOX the mail store (reference/mailstore/) reads from the spool.
 *
 * Listeners are bound by the privileged part (smtpd_bind) before privileges are dropped;
 * pop3d_start takes the fds. A user has at most one POP3 session (a lock of pop3d's own,
 * not the mailbox lock: delivery goes on during the session).
 *
 * CONFIG: pop3, pop3s, pop3_timeout, pop3_connection_limit, tls_cert/tls_key, users,
 * state_dir.
 */
#ifndef ZOLDER_POP3D_H
#define ZOLDER_POP3D_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "smtpd/maps.h"
#include "zconf.h"

struct pop3d_session;

struct pop3d {
    const struct zconf *conf;
    struct event_base *base;
    const struct smtpd_maps *maps;   /* authenticate(); refreshed in place on reload */
    struct auth_service *auth;       /* password checks off the loop; NULL: maps->authenticate */
    SSL_CTX *tls;                    /* NULL: no STLS, no pop3s */
    struct evconnlistener *listeners[ZCONF_LISTEN_MAX * 2];
    bool listener_implicit_tls[ZCONF_LISTEN_MAX * 2];
    size_t nlisteners;
    unsigned nsessions;
    struct pop3d_session *sessions;  /* every open session (freed at stop) */
    unsigned long long next_session_id;
    char **users_in_session;         /* users with a POP3 session in TRANSACTION */
    size_t nusers_in_session;
};

/* Starts accepting on bound fds: nplain POP3 fds, then nimplicit pop3s fds. */
int pop3d_start(struct pop3d *p, const int *fds, size_t nplain, size_t nimplicit);
void pop3d_stop(struct pop3d *p);

/* The per-user session lock: false when user already has a session. */
bool pop3d_user_lock(struct pop3d *p, const char *user);
void pop3d_user_unlock(struct pop3d *p, const char *user);

#endif
