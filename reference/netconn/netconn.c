/* netconn: connection plumbing shared by the POP3 and IMAP services (see netconn.h). */
#include "netconn.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "log.h"

struct bufferevent *netconn_accept(struct event_base *base, evutil_socket_t fd, const struct sockaddr *sa,
                                   SSL_CTX *tls, bool implicit_tls)
{
    evutil_make_socket_nonblocking(fd);
    int nodelay = 1;
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
    struct bufferevent *bev = NULL;
    if (implicit_tls) {
        SSL *ssl = tls ? SSL_new(tls) : NULL;
        bev = ssl ? bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE)
                  : NULL;
        if (!bev && ssl)
            SSL_free(ssl);
    } else {
        bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!bev)
        evutil_closesocket(fd);
    return bev;
}

struct bufferevent *netconn_starttls(struct event_base *base, struct bufferevent *bev, SSL_CTX *tls,
                                     size_t *dropped_r)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    *dropped_r = evbuffer_get_length(in);
    evbuffer_drain(in, *dropped_r);
    SSL *ssl = SSL_new(tls);
    struct bufferevent *filter =
        ssl ? bufferevent_openssl_filter_new(base, bev, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (!filter && ssl)
        SSL_free(ssl);
    return filter;
}

bool netconn_sent(struct bufferevent *bev, bool *poll_r)
{
    struct bufferevent *under = bufferevent_get_underlying(bev);
    *poll_r = under != NULL;
    return evbuffer_get_length(bufferevent_get_output(bev)) == 0 &&
           (!under || evbuffer_get_length(bufferevent_get_output(under)) == 0);
}

void netconn_log_tls_up(const char *svc, unsigned long long id, const char *ip, struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    if (ssl)
        log_info("%s %llx: TLS established with [%s]: version=%s cipher=%s", svc, id, ip, SSL_get_version(ssl),
                 SSL_get_cipher_name(ssl));
}

void netconn_log_tls_error(const char *svc, unsigned long long id, const char *ip, struct bufferevent *bev)
{
    unsigned long e = bufferevent_get_openssl_error(bev);
    if (e)
        log_info("%s %llx: TLS error from [%s]: %s", svc, id, ip, ERR_reason_error_string(e));
}
