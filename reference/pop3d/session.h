/* session: one POP3 conversation (see pop3d.h). */
#ifndef ZOLDER_POP3D_SESSION_H
#define ZOLDER_POP3D_SESSION_H

#include <event2/util.h>
#include <sys/socket.h>

#include "pop3d.h"

/* Takes ownership of fd; the session frees itself when the conversation ends. */
void pop3d_session_new(struct pop3d *p, evutil_socket_t fd, const struct sockaddr *sa, bool implicit_tls);
/* At shutdown: ends every session without the UPDATE state (nothing is deleted). */
void pop3d_session_free_all(struct pop3d *p);

#endif
