/*
 * imapd: zolderd's IMAP service (RFC 3501 IMAP4rev1) on libevent, one process and many
 * sessions, over the INBOX the mail store (reference/mailstore/) reads from the spool and the
 * user's folders, mbox files under mail_dir (folders.h).
 *
 * Listeners are bound by the privileged part (daemon.c) before privileges are dropped;
 * imapd_start takes the fds. Every change one session makes goes through the mail store
 * under the mailbox lock; sessions share the mail store's generations (generation.h). The
 * others see a change after their commands and on NOOP (mailstore_changed), and in IDLE at
 * once when it was made in this process (a watcher; local delivery notifies too), else at
 * the next IMAPD_IDLE_POLL_SEC poll (mutt, procmail).
 *
 * CONFIG: imap, imaps, imap_timeout, imap_connection_limit, tls_cert/tls_key, users,
 * state_dir, mail_dir (through maps->mail_dir).
 */
#ifndef ZOLDER_IMAPD_H
#define ZOLDER_IMAPD_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "smtpd/maps.h"
#include "zconf.h"

#define IMAPD_IDLE_POLL_SEC 2

struct imapd_session;

struct imapd {
    const struct zconf *conf;
    struct event_base *base;
    const struct smtpd_maps *maps;   /* authenticate(); refreshed in place on reload */
    struct auth_service *auth;       /* password checks off the loop; NULL: maps->authenticate */
    SSL_CTX *tls;                    /* NULL: no STARTTLS, no imaps */
    struct evconnlistener *listeners[ZCONF_LISTEN_MAX * 2];
    bool listener_implicit_tls[ZCONF_LISTEN_MAX * 2];
    size_t nlisteners;
    unsigned nsessions;
    struct imapd_session *sessions;  /* every open session (freed at stop) */
    unsigned long long next_session_id;
    /* issue 7 section 6: EXPUNGEs waiting to share one mbox rewrite (session.c) */
    struct event *expunge_event;
    struct imapd_session *expunge_queue;
};

/* Starts accepting on bound fds: nplain IMAP fds, then nimplicit imaps fds. */
int imapd_start(struct imapd *p, const int *fds, size_t nplain, size_t nimplicit);
void imapd_stop(struct imapd *p);

#endif
