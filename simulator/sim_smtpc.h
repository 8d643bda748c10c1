/*
 * sim_smtpc: the SMTP client the smarthost relays with (RFC 5321). Pure: server bytes in
 * (sim_smtpc_feed), commands out (c->out), results per recipient; no sockets. One message
 * per session, no PIPELINING (one command, one reply), dot-stuffing, BODY=8BITMIME when the
 * message has 8-bit bytes and the server offers it (else a permanent failure, RFC 6152).
 */
#ifndef ZOLDER_SIM_SMTPC_H
#define ZOLDER_SIM_SMTPC_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define SIM_SMTPC_MAX_RCPTS 100
#define SIM_SMTPC_REPLY_MAX 512
#define SIM_SMTPC_PATH_MAX 256

enum sim_smtpc_state {
    SIM_SMTPC_GREETING, SIM_SMTPC_EHLO, SIM_SMTPC_HELO, SIM_SMTPC_MAIL, SIM_SMTPC_RCPT,
    SIM_SMTPC_DATA, SIM_SMTPC_DOT, SIM_SMTPC_QUIT, SIM_SMTPC_DONE
};

struct sim_smtpc_rcpt {
    char addr[SIM_SMTPC_PATH_MAX];
    int code;                          /* 0 not tried; the last reply code for it */
    char reply[SIM_SMTPC_REPLY_MAX];   /* that reply's text (first line) */
    bool accepted;                     /* RCPT got 2xx (waiting for the final dot) */
};

struct sim_smtpc {
    enum sim_smtpc_state state;
    char helo[SIM_SMTPC_PATH_MAX];
    char from[SIM_SMTPC_PATH_MAX];
    struct sim_smtpc_rcpt rcpts[SIM_SMTPC_MAX_RCPTS];
    int nrcpts;
    int cur;                           /* the recipient being asked */
    const char *data;                  /* the message, un-stuffed, CRLF line ends */
    size_t len;
    bool eightbit;                     /* the message has bytes >= 0x80 */
    bool offers_8bitmime;
    struct buf in;                     /* reply lines so far */
    struct buf out;
    void (*transcript)(void *ctx, char dir, const char *line, size_t len);
    void *ctx;
};

/* data stays the caller's until DONE. */
void sim_smtpc_init(struct sim_smtpc *c, const char *helo, const char *from, const char *data,
                    size_t len);
bool sim_smtpc_add_rcpt(struct sim_smtpc *c, const char *rcpt);
void sim_smtpc_free(struct sim_smtpc *c);
/* Server bytes; false when the session is over (DONE: read the results). */
bool sim_smtpc_feed(struct sim_smtpc *c, const void *data, size_t len);
/* The connection failed or closed early: recipients without a final answer get code 421. */
void sim_smtpc_fail(struct sim_smtpc *c, const char *why);

#endif
