/* smtpd: listeners and the accept path (see smtpd.h). */
#include "smtpd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "session.h"

int smtpd_bind(const struct zconf_listen *addr)
{
    int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (addr->sa.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(fd, (const struct sockaddr *)&addr->sa, addr->salen) < 0 || listen(fd, 128) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static void smtpd_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                         int salen, void *arg)
{
    struct smtpd *s = arg;
    (void)salen;
    bool submission = false;
    for (size_t i = 0; i < s->nlisteners; i++)
        if (s->listeners[i] == l)
            submission = s->listener_is_submission[i];
    smtpd_session_new(s, fd, sa, submission);
}

static void smtpd_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    (void)arg;
    log_warn("smtpd: accept failed");
}

int smtpd_start(struct smtpd *s, const int *fds, size_t nlisten, size_t nsubmission)
{
    s->commit_event = event_new(s->base, -1, 0, smtpd_commit, s);
    if (!s->commit_event)
        return -1;
    for (size_t i = 0; i < nlisten + nsubmission; i++) {
        evutil_make_socket_nonblocking(fds[i]);
        struct evconnlistener *l = evconnlistener_new(s->base, smtpd_accept, s,
                                                      LEV_OPT_CLOSE_ON_FREE, -1, fds[i]);
        if (!l)
            return -1;
        evconnlistener_set_error_cb(l, smtpd_accept_error);
        s->listener_is_submission[s->nlisteners] = i >= nlisten;
        s->listeners[s->nlisteners++] = l;
    }
    return 0;
}

void smtpd_stop(struct smtpd *s)
{
    for (size_t i = 0; i < s->nlisteners; i++)
        evconnlistener_free(s->listeners[i]);
    s->nlisteners = 0;
    if (s->commit_event) {
        smtpd_commit(-1, 0, s); /* answer what is written rather than drop it */
        event_free(s->commit_event);
        s->commit_event = NULL;
    }
    free(s->clients);
    s->clients = NULL;
    s->nclients = 0;
}
