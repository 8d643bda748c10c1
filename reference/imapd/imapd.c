/* imapd: listeners and the accept path (see imapd.h). */
#include "imapd.h"

#include <gmime/gmime.h>

#include "log.h"
#include "session.h"

static void imapd_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    struct imapd *p = arg;
    (void)salen;
    bool implicit = false;
    for (size_t i = 0; i < p->nlisteners; i++)
        if (p->listeners[i] == l)
            implicit = p->listener_implicit_tls[i];
    imapd_session_new(p, fd, sa, implicit);
}

static void imapd_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    (void)arg;
    log_warn("imapd: accept failed");
}

int imapd_start(struct imapd *p, const int *fds, size_t nplain, size_t nimplicit)
{
    if (nplain + nimplicit)
        g_mime_init(); /* ENVELOPE and BODYSTRUCTURE parse addresses and parameters with GMime */
    for (size_t i = 0; i < nplain + nimplicit; i++) {
        evutil_make_socket_nonblocking(fds[i]);
        struct evconnlistener *l = evconnlistener_new(p->base, imapd_accept, p, LEV_OPT_CLOSE_ON_FREE, -1, fds[i]);
        if (!l)
            return -1;
        evconnlistener_set_error_cb(l, imapd_accept_error);
        p->listener_implicit_tls[p->nlisteners] = i >= nplain;
        p->listeners[p->nlisteners++] = l;
    }
    return 0;
}

void imapd_stop(struct imapd *p)
{
    for (size_t i = 0; i < p->nlisteners; i++)
        evconnlistener_free(p->listeners[i]);
    p->nlisteners = 0;
    imapd_session_free_all(p);
}
