/*
 * sim_run: ispsim's running world. The event loop (libevent) around the pure parts: the
 * nameserver's UDP and TCP sockets, one SMTP listener per smarthost and mx, the POP3
 * listeners, and the control socket. main() in simulator/main/ispsim.c only calls
 * sim_run_main.
 */
#ifndef ZOLDER_SIM_RUN_H
#define ZOLDER_SIM_RUN_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdbool.h>

#include "sim_dns.h"
#include "sim_linkd.h"
#include "sim_records.h"
#include "sim_relay.h"
#include "sim_smtp.h"
#include "sim_store.h"
#include "sim_world.h"

#define SIM_RUN_MAX_RULES 64
#define SIM_RUN_MAX_LISTENERS (SIM_WORLD_MAX_SERVICES * 2 + 4)
#define SIM_RUN_MAX_PORTS 8   /* ports one host serves */

/* A scripted SMTP behaviour (control: faults.set service=smtp). */
struct sim_smtp_rule {
    int service;                  /* -1: every SMTP host */
    enum sim_smtp_stage stage;
    unsigned message;             /* 0: every message; else the Nth on that host */
    char rcpt[SIM_SMTP_PATH_MAX]; /* "": every recipient */
    struct sim_smtp_action act;
};

struct sim_listen_arg {
    struct sim_run *run;
    int service;
    bool tls;                     /* implicit TLS (465, 995, 993) */
};

#define SIM_RUN_LINK_CUTS 64

struct sim_run {
    struct sim_world *world;
    char *world_path;
    char *world_dir;
    char *datadir;
    char *socket_path;
    struct event_base *base;
    struct sim_records records;
    struct sim_store store;
    struct sim_dns_db *dns;
    struct sim_dns_faults dns_faults;
    struct sim_smtp_rule rules[SIM_RUN_MAX_RULES];
    int nrules;
    unsigned messages[SIM_WORLD_MAX_SERVICES];   /* messages per SMTP service since reset */
    unsigned long long next_session;
    unsigned long long next_id;
    struct evconnlistener *listeners[SIM_RUN_MAX_LISTENERS];
    struct sim_listen_arg listen_args[SIM_RUN_MAX_LISTENERS];
    int nlisteners;
    struct event *udp_event;
    int udp_fd;
    struct event *signals[2];
    bool pop3_locked[SIM_WORLD_MAX_MAILBOXES];
    struct sim_linkd *links[SIM_WORLD_MAX_LINKS];
    bool brief;                                  /* -q: DATA lines not recorded one by one */
    struct sim_relay *relay;                     /* the smarthosts' queue (sim_relay.c) */
    struct sim_run_linger *lingers;              /* closed connections still sending */
    struct ssl_ctx_st **tls_ctx;                 /* per host, NULL where no TLS (sim_tls.c) */
    bool starttls_off[SIM_WORLD_MAX_HOSTS];      /* control: STARTTLS/STLS withdrawn */
    /* the host-side ends ("addr:port") of the last connections the links cut (sim_linkd) */
    char link_cuts[SIM_RUN_LINK_CUTS][NETADDR_STRLEN + 8];
    unsigned next_link_cut;
};

int sim_run_main(int argc, char **argv);

/*
 * A link cut (or dropped) the connection whose host-side peer is peer_text: what the host
 * then sees (EOF inside DATA, no QUIT) is the line's doing, not the client's violation.
 */
void sim_run_note_link_cut(struct sim_run *run, const char *peer_text);
bool sim_run_was_link_cut(const struct sim_run *run, const char *peer_text);

/* Shared by the services. */
void sim_run_peer_text(const struct sockaddr *sa, char *out, size_t size);
void sim_run_record(struct sim_run *run, const char *kind, const char *fields,
                    const char *readable);
/*
 * Takes over a closed connection's bufferevent: frees it once everything written to it (and,
 * for a TLS filter, to the socket under it) has gone out, or after 10 s.
 */
void sim_run_linger(struct sim_run *run, struct bufferevent *bev);
/*
 * Binds a listener for service on its host's address and port (tls: implicit TLS), hands
 * accepted connections to cb with a struct sim_listen_arg. proto names it in log lines.
 * Returns the listener, or NULL (logged) when the table is full or the bind fails.
 */
struct evconnlistener *sim_run_listen(struct sim_run *run, int service, unsigned port, bool tls,
                                      evconnlistener_cb cb, const char *proto);
/* Fills ss with addr:port; returns its length. */
socklen_t sim_run_sockaddr(const struct netaddr *addr, unsigned port, struct sockaddr_storage *ss);
/* The TCP ports the services of host listen on (at most max); returns the count. */
int sim_run_host_ports(const struct sim_run *run, int host, unsigned *ports, int max);
/* Clears faults, scripts, counters and records, and empties the mailstores. */
int sim_run_reset(struct sim_run *run, char *err, size_t errsize);

/* sim_control.c */
int sim_control_listen(struct sim_run *run);
/* Handles one request line; appends the reply (one line, no newline) to out. */
void sim_control_handle(struct sim_run *run, const char *line, size_t len, struct buf *out);

/* sim_smtpd.c */
int sim_smtpd_listen(struct sim_run *run, int service);
/* sim_pop3d.c */
int sim_pop3d_listen(struct sim_run *run, int service);
/* sim_imapd.c */
int sim_imapd_listen(struct sim_run *run, int service);
/* sim_dnsd.c */
int sim_dnsd_listen(struct sim_run *run);

#endif
