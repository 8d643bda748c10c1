/*
 * smtpd: zolderd's SMTP service (RFC 5321) on libevent: listeners, sessions, relay control.
 * A session buffers one message (bounded by message_size_limit), checks it and writes it to
 * the queue; the messages finished in one loop turn are committed together
 * (queue_commit_batch: one syncfs, renames, one fsync of the folder) and only then each
 * session answers 250 and reads on.
 */
#ifndef ZOLDER_SMTPD_H
#define ZOLDER_SMTPD_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "queue/queue.h"
#include "zconf.h"

struct smtpd_maps; /* users, aliases, access, hosts: see smtpd/maps.h */

struct smtpd_pending; /* a message written, waiting for the group commit (session.c) */

struct smtpd_client_count {
    struct netaddr addr;
    unsigned count;
};

/* What the service calls when a message was committed (local delivery, later relay). */
typedef void (*smtpd_queued_fn)(const char *queue_id, void *ctx);
/*
 * Group commit rounds are shared: before the round's syncfs the owner may hand over queue
 * files of delivered messages (their mailbox appends ride on the same syncfs); they are
 * unlinked before the folder fsync. After the round the owner learns whether it synced.
 */
typedef size_t (*smtpd_round_fn)(void *ctx, char ***unlink_paths_r);
typedef void (*smtpd_round_done_fn)(void *ctx, bool synced);

struct smtpd {
    const struct zconf *conf;
    struct event_base *base;
    struct queue *queue;
    struct smtpd_maps *maps;
    struct auth_service *auth;    /* password checks off the loop; NULL: maps->authenticate */
    SSL_CTX *tls;                 /* NULL: no STARTTLS */
    struct evconnlistener *listeners[ZCONF_LISTEN_MAX * 2];
    bool listener_is_submission[ZCONF_LISTEN_MAX * 2];
    size_t nlisteners;
    unsigned nsessions;
    struct smtpd_client_count *clients;
    size_t nclients;
    unsigned long long next_session_id;
    smtpd_queued_fn on_queued;
    void *on_queued_ctx;
    smtpd_queued_fn on_etrn;
    void *on_etrn_ctx;
    /* Group commit: messages finished in one loop turn become durable together. */
    struct smtpd_pending **pending;
    size_t npending;
    struct event *commit_event;
    smtpd_round_fn before_round;
    smtpd_round_done_fn after_round;
    void *round_ctx;
    /*
     * Outbound delivery (issue 5): with `dns = canonify` a remote recipient's domain is
     * checked at RCPT. domain_check starts a lookup and returns its handle, or NULL when it
     * cannot (then the RCPT is refused as a bad domain); domain_done is called later from the
     * event loop, never from inside domain_check, with 2 (exists), 4 (not known now) or 5
     * (does not exist). domain_cancel forgets a lookup (the session ended). Unset: no check.
     */
    void *(*domain_check)(void *ctx, const char *domain, void (*domain_done)(void *arg, int verdict,
                                                                            const char *detail),
                          void *arg);
    void (*domain_cancel)(void *handle);
    void *domain_ctx;
};

/*
 * Binds a listening socket for addr (done by the privileged part, before dropping root).
 * Returns the fd or -1 with errno.
 */
int smtpd_bind(const struct zconf_listen *addr);

/* Starts accepting on already bound fds (listen fds then submission fds). */
int smtpd_start(struct smtpd *s, const int *fds, size_t nlisten, size_t nsubmission);
void smtpd_stop(struct smtpd *s);

#endif
