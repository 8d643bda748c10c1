/*
 * sim_tls: TLS for ispsim's hosts with OpenSSL through libevent's bufferevent_openssl. One
 * server context per host that offers TLS (a service with "tls"), with the host's
 * certificate and key from the world's certs folder (CERTS/NAME.pem, CERTS/NAME.key, as
 * tools/gen-certs makes them). Implicit TLS wraps an accepted socket; STARTTLS/STLS wraps
 * the plain bufferevent after the "go ahead" reply went into its output.
 */
#ifndef ZOLDER_SIM_TLS_H
#define ZOLDER_SIM_TLS_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

struct sim_run;

/* Loads the contexts of every TLS host. -1 after logging what is missing. */
int sim_tls_init(struct sim_run *run);
void sim_tls_free(struct sim_run *run);
bool sim_tls_host_ready(const struct sim_run *run, int host);
/* A server bufferevent over an accepted socket (implicit TLS), or NULL. */
struct bufferevent *sim_tls_accept(struct sim_run *run, int host, evutil_socket_t fd);
/* A server TLS filter over a plain bufferevent (STARTTLS), or NULL (plain is then freed). */
struct bufferevent *sim_tls_wrap(struct sim_run *run, int host, struct bufferevent *plain);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" of an established connection, or "". */
void sim_tls_describe(struct bufferevent *bev, char *out, size_t size);
/* The last OpenSSL error of a failed connection, for the log. */
void sim_tls_error(struct bufferevent *bev, char *out, size_t size);

#endif
