/*
 * sim_smtp: ispsim's strict SMTP server engine. Pure: bytes in (sim_smtp_feed), replies out
 * (session->out), decisions through hooks; no sockets, no clock. Written from the RFCs, not
 * from reference/proto, so that it disagrees with the reference's bugs.
 *
 * STANDARDS: RFC 5321 (SMTP), RFC 1869/5321 (EHLO), RFC 2920 (PIPELINING), RFC 6152
 * (8BITMIME), RFC 1870 (SIZE), RFC 2034/3463 (enhanced status codes), RFC 3207 (STARTTLS:
 * offered when the caller says so; the caller does the handshake), RFC 4954 with RFC 4616
 * (AUTH PLAIN) and LOGIN, offered only on an encrypted connection.
 *
 * Strictness: each of these is refused and reported through hooks->violation with a kind:
 *   bare-lf, bare-cr       a line ended by LF alone, or a CR not followed by LF (RFC 5321 2.3.8)
 *   line-too-long          command over 512 octets, text line over 1000 (RFC 5321 4.5.3.1)
 *   bad-dot-stuffing       a DATA line starting with "." that is neither "." nor ".." (4.5.2)
 *   8bit-without-8bitmime  a byte >= 0x80 in DATA without MAIL ... BODY=8BITMIME (RFC 6152)
 *   nul                    a NUL byte in DATA
 *   sequence               MAIL before HELO, RCPT before MAIL, DATA before RCPT, nested MAIL
 *   syntax                 unknown command or bad arguments
 *   pipelining             a command the client had to wait on (EHLO, HELO, DATA, QUIT, NOOP,
 *                          VRFY, EXPN, STARTTLS, AUTH; any command after HELO) followed by more
 *                          input before its reply (RFC 2920 3.1)
 *   early-talk             input before the greeting (RFC 5321 4.3.1)
 *   eof-in-data            connection closed before the final CRLF.CRLF
 *   no-quit                connection closed by the client without QUIT (RFC 5321 4.1.1.10)
 */
#ifndef ZOLDER_SIM_SMTP_H
#define ZOLDER_SIM_SMTP_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define SIM_SMTP_CMD_MAX 512          /* octets with CRLF, RFC 5321 4.5.3.1.4 */
#define SIM_SMTP_TEXT_MAX 1000        /* octets with CRLF, RFC 5321 4.5.3.1.6 */
#define SIM_SMTP_PATH_MAX 256
#define SIM_SMTP_MAX_RCPTS 100
#define SIM_SMTP_MAX_SIZE (10u << 20) /* advertised SIZE and the hard message limit */
#define SIM_SMTP_IN_MAX (1u << 20)    /* unprocessed input kept while a reply is delayed */
#define SIM_SMTP_REPLY_MAX 512

enum sim_smtp_verb {
    SIM_SMTP_NONE, SIM_SMTP_HELO, SIM_SMTP_EHLO, SIM_SMTP_MAIL, SIM_SMTP_RCPT, SIM_SMTP_DATA,
    SIM_SMTP_RSET, SIM_SMTP_NOOP, SIM_SMTP_QUIT, SIM_SMTP_VRFY, SIM_SMTP_EXPN, SIM_SMTP_HELP,
    SIM_SMTP_STARTTLS, SIM_SMTP_AUTH, SIM_SMTP_UNKNOWN
};

/* One parsed command line (without its CRLF). */
struct sim_smtp_cmd {
    enum sim_smtp_verb verb;
    char arg[SIM_SMTP_CMD_MAX];        /* everything after the verb and one blank */
    char path[SIM_SMTP_PATH_MAX];      /* MAIL/RCPT: the address inside <> ("" for <>) */
    bool body_8bitmime;                /* MAIL: BODY=8BITMIME */
    unsigned long size;                /* MAIL: SIZE=n, 0 when absent */
    char error[SIM_SMTP_REPLY_MAX];    /* non-empty: the reply for a syntax error */
};

/* Parses one command line (len bytes, no CRLF). Pure. */
void sim_smtp_parse_command(const char *line, size_t len, bool esmtp, struct sim_smtp_cmd *cmd);

enum sim_smtp_stage {
    SIM_STAGE_GREETING, SIM_STAGE_HELO, SIM_STAGE_MAIL, SIM_STAGE_RCPT, SIM_STAGE_DATA,
    SIM_STAGE_DOT
};
const char *sim_smtp_stage_name(enum sim_smtp_stage stage);
bool sim_smtp_stage_parse(const char *name, enum sim_smtp_stage *stage_r);

/* What a script says for a stage: nothing, a reply instead of the normal one, or hang up. */
struct sim_smtp_action {
    char reply[SIM_SMTP_REPLY_MAX];    /* "" for the normal reply */
    unsigned delay_ms;                 /* hold the reply this long */
    bool hangup;                       /* close without a reply (at DOT: after storing) */
};

struct sim_smtp_tx {
    char helo[SIM_SMTP_PATH_MAX];
    char mail_from[SIM_SMTP_PATH_MAX];
    bool body_8bitmime;
    char rcpts[SIM_SMTP_MAX_RCPTS][SIM_SMTP_PATH_MAX];
    int nrcpts;
    struct buf data;                   /* un-stuffed content, CRLF line ends */
};

struct sim_smtp_hooks {
    void *ctx;
    void (*script)(void *ctx, enum sim_smtp_stage stage, unsigned msgno, const char *rcpt,
                   struct sim_smtp_action *act);
    /* Leaves reply empty to accept the recipient. */
    void (*rcpt_check)(void *ctx, const char *rcpt, char *reply, size_t size);
    /* The message is complete and clean; leave reply empty for "250 2.0.0 Ok". */
    void (*message)(void *ctx, const struct sim_smtp_tx *tx, char *reply, size_t size);
    /* dir 'c': client line, 's': server line (without CRLF). */
    void (*transcript)(void *ctx, char dir, const char *line, size_t len);
    void (*violation)(void *ctx, const char *kind, const char *detail);
    /* AUTH: true when user and password are right. NULL: AUTH never offered. */
    bool (*auth_check)(void *ctx, const char *user, const char *pass);
};

enum sim_smtp_state { SIM_SMTP_S_GREET, SIM_SMTP_S_CMD, SIM_SMTP_S_DATA, SIM_SMTP_S_CLOSED };

struct sim_smtp_session {
    const struct sim_smtp_hooks *hooks;
    char hostname[SIM_SMTP_PATH_MAX];
    enum sim_smtp_state state;
    bool greeted_helo;                 /* HELO or EHLO seen */
    bool esmtp;                        /* EHLO seen (PIPELINING, 8BITMIME offered) */
    bool in_tx;                        /* MAIL accepted */
    bool mail_refused;                 /* the last MAIL was refused (RFC 2920 3.1, see sim_smtp.c) */
    bool quit;                         /* QUIT received */
    bool refusing;                     /* greeted with 5xx: only QUIT works */
    bool skipping;                     /* discarding the rest of an overlong line */
    unsigned msgno;                    /* messages that reached the final dot */
    unsigned data_lines;
    unsigned data_flags;
    struct sim_smtp_tx tx;
    struct buf in;
    struct buf out;
    /* A reply held back by a script delay: the caller waits delay_ms, then calls resume. */
    struct buf held;
    unsigned delay_ms;
    bool close_after_held;
    /* TLS and AUTH */
    bool offer_starttls;               /* the caller sets it (before start, and any time) */
    bool tls;                          /* the connection is encrypted (implicit or STARTTLS) */
    bool starttls_now;                 /* STARTTLS accepted: handshake, then tls_started */
    bool authed;
    char auth_user[SIM_SMTP_PATH_MAX];
    int auth_step;                     /* 0, or waiting for: 1 PLAIN, 2 LOGIN user, 3 LOGIN pass */
    bool brief_data;                   /* transcript: one "(message: N lines, M bytes)" line
                                          instead of every DATA line (ispsim -q) */
};

enum sim_smtp_status {
    SIM_SMTP_CONTINUE,   /* send out, wait for more input */
    SIM_SMTP_WAIT,       /* send out, then call sim_smtp_resume after delay_ms */
    SIM_SMTP_CLOSE,      /* send out, then close */
    SIM_SMTP_TLS         /* send out, start TLS as the server, then call sim_smtp_tls_started */
};

void sim_smtp_session_init(struct sim_smtp_session *s, const struct sim_smtp_hooks *hooks,
                           const char *hostname);
void sim_smtp_session_free(struct sim_smtp_session *s);
/* Starts the session: the greeting (or a scripted refusal or delay). */
enum sim_smtp_status sim_smtp_start(struct sim_smtp_session *s);
/* Adds input and processes every complete line. false when input overflows (close). */
enum sim_smtp_status sim_smtp_feed(struct sim_smtp_session *s, const void *data, size_t len);
/* After a WAIT: releases the held reply and goes on with buffered input. */
enum sim_smtp_status sim_smtp_resume(struct sim_smtp_session *s);
/* The TLS handshake after STARTTLS is done: the session starts over (RFC 3207 4.2). */
enum sim_smtp_status sim_smtp_tls_started(struct sim_smtp_session *s);
/* The client closed the connection. */
void sim_smtp_eof(struct sim_smtp_session *s);

#endif
