/* session: one SMTP conversation (see smtpd.h). */
#ifndef ZOLDER_SMTPD_SESSION_H
#define ZOLDER_SMTPD_SESSION_H

#include <event2/util.h>
#include <sys/socket.h>

#include "smtpd.h"

/* Takes ownership of fd; the session frees itself when the conversation ends. */
void smtpd_session_new(struct smtpd *s, evutil_socket_t fd, const struct sockaddr *sa,
                       bool submission);

/* The group commit event's callback (smtpd.c creates the event). */
void smtpd_commit(evutil_socket_t fd, short what, void *arg);

#endif
