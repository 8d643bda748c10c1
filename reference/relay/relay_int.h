/*
 * relay_int: what relay.c (the service: messages, routes, results) and mta.c (one SMTP
 * client session) share. Not used outside reference/relay.
 */
#ifndef ZOLDER_RELAY_INT_H
#define ZOLDER_RELAY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "dns.h"
#include "queue/report.h"
#include "queue/queue.h"
#include "relay.h"
#include "zconf.h"

#define RELAY_REASON_MAX 512
#define RELAY_SESSIONS_MAX 32       /* SMTP sessions at once */

enum relay_rcpt_state {
    RELAY_R_WAIT,       /* not answered yet */
    RELAY_R_ACCEPTED,   /* RCPT got 2xx; sent once the final dot gets 2xx */
    RELAY_R_SENT,
    RELAY_R_DEFERRED,
    RELAY_R_FAILED,
};

struct relay_task_rcpt {
    size_t idx;                          /* recipient number in the queue file */
    enum relay_rcpt_state state;
    char dsn[12];                        /* x.y.z */
    char reason[RELAY_REASON_MAX];
};

/* One queued message known to the relay. */
struct relay_msg {
    TAILQ_ENTRY(relay_msg) entry;
    char id[QUEUE_ID_LEN + 1];
    struct queue_msg qm;
    bool loaded;
    unsigned busy;          /* tasks in sessions */
    unsigned attempts;
    time_t next_attempt;
    bool deferred;          /* some recipient was deferred in the current attempt */
    bool failed;            /* some recipient failed in the current attempt */
    /* results of the current attempt waiting for the report that must precede the mark */
    struct report_outcomes failures;   /* marked F only after their bounce is queued */
    struct report_outcomes relayed;    /* sent to a next hop without DSN, NOTIFY=SUCCESS */
    struct report_outcomes delays;     /* deferred, for the delay warning */
};

/* One message's recipients for one route: one SMTP transaction. */
struct relay_task {
    TAILQ_ENTRY(relay_task) entry;
    struct relay_msg *msg;
    struct relay_task_rcpt *rcpts;
    size_t nrcpts;
    bool next_hop_dsn;      /* the server took the DSN parameters (it reports success itself) */
};

TAILQ_HEAD(relay_task_list, relay_task);

struct mta_session;

/* Where mail for one destination goes: the smarthost (key "") or a domain's MX hosts. */
struct relay_route {
    TAILQ_ENTRY(relay_route) entry;
    char key[RELAY_DNS_NAME_MAX];
    struct relay_task_list tasks;
    struct mta_session *session;
};

struct relay {
    struct event_base *base;
    const struct zconf *conf;
    struct queue *queue;
    struct relay_dns *dns;
    SSL_CTX *tls;
    TAILQ_HEAD(, relay_msg) msgs;
    TAILQ_HEAD(, relay_route) routes;
    struct event *retry_timer;
    struct event *kick;              /* starts sessions for routes with waiting tasks */
    size_t nsessions;
    bool use_smarthost;
    struct zconf_smarthost smarthost;
    bool have_bind;
    struct sockaddr_storage bind_sa;
    socklen_t bind_len;
    int family;                      /* AF_INET/AF_INET6 from smtp_bind_address, or AF_UNSPEC */
    bool have_auth;
    struct relay_auth auth;
    enum { RELAY_TLS_MAY, RELAY_TLS_ENCRYPT, RELAY_TLS_VERIFY } tls_mode;
    bool stopping;
    void (*on_queued)(const char *id, void *ctx);   /* a report was queued: deliver it */
    void *on_queued_ctx;
};

/* mta.c */
void mta_start(struct relay *relay, struct relay_route *route);
void mta_abort(struct mta_session *s);

/* relay.c, called by a session */
/* The next task of the route for this session, or NULL. */
struct relay_task *relay_route_next(struct relay_route *route);
/* A transaction is over: writes the results, logs them, frees the task. */
void relay_task_done(struct relay *relay, struct relay_task *task, const char *relay_name);
/* The session of route ended (it is freed by the caller right after). */
void relay_session_ended(struct relay *relay, struct relay_route *route);
/* Sets every unanswered recipient of task to state with reason. */
void relay_task_settle(struct relay_task *task, enum relay_rcpt_state state, const char *dsn,
                       const char *reason);

#endif
