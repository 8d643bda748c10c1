/*
 * sim_pop3: ispsim's POP3 server engine (RFC 1939, CAPA, RESP-CODES and PIPELINING of RFC
 * 2449: every whole command line fed is answered, in order). Pure:
 * bytes in, replies out, the mailbox through hooks. At PASS the engine takes a snapshot of
 * the mailbox (uids and sizes); STLS (RFC 2595) when the caller offers it (the caller does
 * the handshake and calls sim_pop3_tls_started); DELE marks, QUIT in the TRANSACTION state commits the
 * deletions through hooks->commit (the UPDATE state), a dropped connection commits nothing.
 *
 * Violations (hooks->violation): bare-lf, bare-cr, line-too-long (over 255 octets, RFC 2449
 * 4), sequence (a TRANSACTION command before login, PASS without USER), syntax, no-quit.
 */
#ifndef ZOLDER_SIM_POP3_H
#define ZOLDER_SIM_POP3_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define SIM_POP3_LINE_MAX 255
#define SIM_POP3_ARG_MAX 128

struct sim_pop3_msg {
    unsigned uid;
    size_t size;
    bool deleted;
};

struct sim_pop3_hooks {
    void *ctx;
    /* Logs in: fills msgs (allocated with malloc, the engine frees it) or returns -1 with a
     * reply such as "-ERR [AUTH] invalid user or password" in reply. */
    int (*login)(void *ctx, const char *user, const char *pass, struct sim_pop3_msg **msgs_r,
                 int *n_r, char *reply, size_t size);
    /* The message's stored text (allocated), or -1. */
    int (*read)(void *ctx, unsigned uid, char **data_r, size_t *len_r);
    /* UPDATE: removes the messages marked deleted. */
    void (*commit)(void *ctx, const struct sim_pop3_msg *msgs, int n);
    void (*transcript)(void *ctx, char dir, const char *line, size_t len);
    void (*violation)(void *ctx, const char *kind, const char *detail);
};

enum sim_pop3_state { SIM_POP3_AUTH, SIM_POP3_TRANS, SIM_POP3_CLOSED };

struct sim_pop3_session {
    const struct sim_pop3_hooks *hooks;
    enum sim_pop3_state state;
    char user[SIM_POP3_ARG_MAX];
    bool have_user;
    bool quit;
    bool skipping;
    struct sim_pop3_msg *msgs;
    int n;
    struct buf in;
    struct buf out;
    bool offer_stls;        /* the caller sets it */
    bool tls;               /* encrypted (995, or after STLS) */
    bool stls_now;          /* STLS accepted: send out, handshake, then sim_pop3_tls_started */
};

void sim_pop3_init(struct sim_pop3_session *s, const struct sim_pop3_hooks *hooks,
                   const char *greeting_host);
void sim_pop3_free(struct sim_pop3_session *s);
/* false: close the connection after sending out. */
bool sim_pop3_feed(struct sim_pop3_session *s, const void *data, size_t len);
void sim_pop3_eof(struct sim_pop3_session *s);
/* The handshake after STLS is done; input from before it is dropped (RFC 2595 4). */
bool sim_pop3_tls_started(struct sim_pop3_session *s);

#endif
