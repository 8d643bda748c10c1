/* sim_tls: OpenSSL server contexts and bufferevents for ispsim's hosts (see sim_tls.h). */
#include "sim_tls.h"

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sim_run.h"
#include "xalloc.h"

static bool sim_tls_wanted(const struct sim_world *w, int host)
{
    for (int i = 0; i < w->nservices; i++)
        if (w->services[i].host == host && (w->services[i].starttls || w->services[i].implicit_tls))
            return true;
    return false;
}

int sim_tls_init(struct sim_run *run)
{
    const struct sim_world *w = run->world;
    run->tls_ctx = xcalloc((size_t)(w->nhosts ? w->nhosts : 1), sizeof(SSL_CTX *));
    for (int h = 0; h < w->nhosts; h++) {
        if (!sim_tls_wanted(w, h))
            continue;
        char dir[2048], cert[2400], key[2400];
        if (w->certs[0] == '/')
            snprintf(dir, sizeof dir, "%s", w->certs);
        else
            snprintf(dir, sizeof dir, "%s/%s", run->world_dir, w->certs);
        snprintf(cert, sizeof cert, "%s/%s.pem", dir, w->hosts[h].name);
        snprintf(key, sizeof key, "%s/%s.key", dir, w->hosts[h].name);
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
            SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            char e[256];
            ERR_error_string_n(ERR_get_error(), e, sizeof e);
            log_error("tls host=%s: cannot load %s and its key (make certs?): %s",
                      w->hosts[h].name, cert, e);
            SSL_CTX_free(ctx);
            return -1;
        }
        SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        run->tls_ctx[h] = ctx;
        log_debug("tls host=%s certificate=%s", w->hosts[h].name, cert);
    }
    return 0;
}

void sim_tls_free(struct sim_run *run)
{
    if (!run->tls_ctx)
        return;
    for (int h = 0; h < run->world->nhosts; h++)
        SSL_CTX_free(run->tls_ctx[h]);
    free(run->tls_ctx);
    run->tls_ctx = NULL;
}

bool sim_tls_host_ready(const struct sim_run *run, int host)
{
    return run->tls_ctx && run->tls_ctx[host];
}

struct bufferevent *sim_tls_accept(struct sim_run *run, int host, evutil_socket_t fd)
{
    SSL *ssl = sim_tls_host_ready(run, host) ? SSL_new(run->tls_ctx[host]) : NULL;
    if (!ssl)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        run->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

struct bufferevent *sim_tls_wrap(struct sim_run *run, int host, struct bufferevent *plain)
{
    SSL *ssl = sim_tls_host_ready(run, host) ? SSL_new(run->tls_ctx[host]) : NULL;
    if (!ssl) {
        bufferevent_free(plain);
        return NULL;
    }
    struct bufferevent *bev = bufferevent_openssl_filter_new(
        run->base, plain, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        bufferevent_free(plain);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

void sim_tls_describe(struct bufferevent *bev, char *out, size_t size)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    if (!ssl) {
        snprintf(out, size, "%s", "");
        return;
    }
    snprintf(out, size, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

void sim_tls_error(struct bufferevent *bev, char *out, size_t size)
{
    unsigned long e = bufferevent_get_openssl_error(bev);
    if (!e) {
        snprintf(out, size, "%s", "no TLS error");
        return;
    }
    ERR_error_string_n(e, out, size);
}
