/* pop3d: listeners, the accept path and the per-user session lock (see pop3d.h). */
#include "pop3d.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "session.h"
#include "xalloc.h"

#define POP3D_USERS_MAX 100000

static void pop3d_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                         void *arg)
{
    struct pop3d *p = arg;
    (void)salen;
    bool implicit = false;
    for (size_t i = 0; i < p->nlisteners; i++)
        if (p->listeners[i] == l)
            implicit = p->listener_implicit_tls[i];
    pop3d_session_new(p, fd, sa, implicit);
}

static void pop3d_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    (void)arg;
    log_warn("pop3d: accept failed");
}

int pop3d_start(struct pop3d *p, const int *fds, size_t nplain, size_t nimplicit)
{
    for (size_t i = 0; i < nplain + nimplicit; i++) {
        evutil_make_socket_nonblocking(fds[i]);
        struct evconnlistener *l = evconnlistener_new(p->base, pop3d_accept, p, LEV_OPT_CLOSE_ON_FREE,
                                                      -1, fds[i]);
        if (!l)
            return -1;
        evconnlistener_set_error_cb(l, pop3d_accept_error);
        p->listener_implicit_tls[p->nlisteners] = i >= nplain;
        p->listeners[p->nlisteners++] = l;
    }
    return 0;
}

void pop3d_stop(struct pop3d *p)
{
    for (size_t i = 0; i < p->nlisteners; i++)
        evconnlistener_free(p->listeners[i]);
    p->nlisteners = 0;
    pop3d_session_free_all(p);
    for (size_t i = 0; i < p->nusers_in_session; i++)
        free(p->users_in_session[i]);
    free(p->users_in_session);
    p->users_in_session = NULL;
    p->nusers_in_session = 0;
}

bool pop3d_user_lock(struct pop3d *p, const char *user)
{
    for (size_t i = 0; i < p->nusers_in_session; i++)
        if (strcmp(p->users_in_session[i], user) == 0)
            return false;
    if (p->nusers_in_session >= POP3D_USERS_MAX)
        return false;
    p->users_in_session = xreallocarray(p->users_in_session, p->nusers_in_session + 1,
                                        sizeof *p->users_in_session);
    p->users_in_session[p->nusers_in_session++] = xstrdup(user);
    return true;
}

void pop3d_user_unlock(struct pop3d *p, const char *user)
{
    for (size_t i = 0; i < p->nusers_in_session; i++)
        if (strcmp(p->users_in_session[i], user) == 0) {
            free(p->users_in_session[i]);
            p->users_in_session[i] = p->users_in_session[--p->nusers_in_session];
            return;
        }
}
