/*
 * netconn: the connection plumbing the line-based mail services (POP3, IMAP) share: a new
 * connection's bufferevent (plain, or TLS from the first byte for pop3s/imaps), the switch
 * to TLS after STLS/STARTTLS, the TLS log lines, and the check that a closing session's last
 * reply has left. The protocol, the states and the replies stay with each service.
 *
 * SECURITY
 *   netconn_starttls drops whatever the client sent after its STARTTLS/STLS line before the
 *   handshake: those bytes came in clear text and must never be taken for commands sent
 *   inside TLS (the STARTTLS command-injection attack, CVE-2011-0411 and kin).
 */
#ifndef ZOLDER_NETCONN_H
#define ZOLDER_NETCONN_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

/*
 * A bufferevent for an accepted connection: fd made non-blocking, Nagle off on TCP (a
 * response's last segment must not wait for the client's delayed ACK), TLS accepting when
 * implicit_tls (NULL when tls is NULL then). NULL on failure, with fd closed.
 */
struct bufferevent *netconn_accept(struct event_base *base, evutil_socket_t fd, const struct sockaddr *sa,
                                   SSL_CTX *tls, bool implicit_tls);

/*
 * After STARTTLS/STLS was answered: drains the clear-text input pipelined behind it
 * (*dropped_r bytes) and returns a TLS filter over bev, which then belongs to it. NULL
 * when TLS could not be set up (bev stays as it was, minus the drained input).
 */
struct bufferevent *netconn_starttls(struct event_base *base, struct bufferevent *bev, SSL_CTX *tls,
                                     size_t *dropped_r);

/*
 * Has everything written left? Under a TLS filter the bytes wait in the socket's buffer
 * beneath it, which raises no write callback: *poll_r says the caller must poll for that.
 */
bool netconn_sent(struct bufferevent *bev, bool *poll_r);

/* "SVC ID: TLS established with [IP]: version=... cipher=..." once the handshake is done. */
void netconn_log_tls_up(const char *svc, unsigned long long id, const char *ip, struct bufferevent *bev);
/* "SVC ID: TLS error from [IP]: ..." when the connection failed inside TLS. */
void netconn_log_tls_error(const char *svc, unsigned long long id, const char *ip, struct bufferevent *bev);

#endif
