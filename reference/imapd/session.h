/* session: one IMAP conversation (see imapd.h). */
#ifndef ZOLDER_IMAPD_SESSION_H
#define ZOLDER_IMAPD_SESSION_H

#include <event2/util.h>
#include <sys/socket.h>

#include "imapd.h"

/* Takes ownership of fd; the session frees itself when the conversation ends. */
void imapd_session_new(struct imapd *p, evutil_socket_t fd, const struct sockaddr *sa, bool implicit_tls);
/* At shutdown: ends every session (flags already in the index stay there). */
void imapd_session_free_all(struct imapd *p);

#endif
