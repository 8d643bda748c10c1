/*
 * sim_imap: ispsim's IMAP4rev1 server engine over one mailbox (INBOX) per account. Pure:
 * bytes in (sim_imap_feed), responses out (session->out), the mailstore through hooks; no
 * sockets, no clock. Written from the RFCs.
 *
 * STANDARDS: RFC 3501 (IMAP4rev1), RFC 2177 (IDLE), RFC 4315 (UIDPLUS: UID EXPUNGE),
 * RFC 4959 (SASL-IR), RFC 4616 (PLAIN), RFC 3691 (UNSELECT), RFC 7888 (LITERAL+ accepted).
 *
 * Commands: CAPABILITY, NOOP, LOGOUT, STARTTLS (when the caller offers it), LOGIN,
 * AUTHENTICATE PLAIN, SELECT, EXAMINE, LIST, LSUB, STATUS, CHECK, CLOSE, UNSELECT, EXPUNGE,
 * SEARCH, FETCH, STORE, UID SEARCH/FETCH/STORE/EXPUNGE, IDLE. Messages are those of INBOX at
 * SELECT (NOOP, CHECK and IDLE look for new ones); flags live in the store through hooks.
 * FETCH items: FLAGS, UID, RFC822.SIZE, INTERNALDATE, RFC822, RFC822.HEADER, RFC822.TEXT,
 * BODY[], BODY[HEADER], BODY[TEXT] (and BODY.PEEK[...]), partial <o.n>, ALL/FAST/FULL.
 *
 * Violations (hooks->violation): bare-lf, bare-cr, line-too-long (a line over 8192 octets),
 * syntax (BAD), sequence (a command in the wrong state), no-logout.
 */
#ifndef ZOLDER_SIM_IMAP_H
#define ZOLDER_SIM_IMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define SIM_IMAP_LINE_MAX 8192          /* one line of a command, CRLF included */
#define SIM_IMAP_CMD_MAX (64u << 10)    /* a whole command with its literals */
#define SIM_IMAP_TAG_MAX 64
#define SIM_IMAP_MAX_TOKENS 256

/* System flags, as bits (kept in the store). */
#define SIM_IMAP_SEEN 1u
#define SIM_IMAP_ANSWERED 2u
#define SIM_IMAP_FLAGGED 4u
#define SIM_IMAP_DELETED 8u
#define SIM_IMAP_DRAFT 16u

enum sim_imap_tok_type { SIM_IMAP_ATOM, SIM_IMAP_STRING, SIM_IMAP_LPAREN, SIM_IMAP_RPAREN };

struct sim_imap_tok {
    enum sim_imap_tok_type type;
    const char *s;                      /* NUL-terminated (strings may hold no NUL) */
    size_t len;
};

/* One parsed command: "tag [UID] NAME args...". */
struct sim_imap_cmd {
    char tag[SIM_IMAP_TAG_MAX];
    char name[16];                      /* upper case; "FETCH" for "UID FETCH" with uid */
    bool uid;
    struct sim_imap_tok toks[SIM_IMAP_MAX_TOKENS];
    int ntoks;
    char *text;                         /* the tokens' storage (freed by sim_imap_cmd_free) */
    char error[128];                    /* non-empty: a syntax error (tag may be "*") */
};

/* Parses a whole command (literals inline as "{N}\r\n" + N bytes; no final CRLF). Pure. */
void sim_imap_parse(const char *data, size_t len, struct sim_imap_cmd *cmd);
void sim_imap_cmd_free(struct sim_imap_cmd *cmd);
/* A sequence set ("1:3,5,7:*"): valid? and does it hold v (star: the value of "*")? */
bool sim_imap_set_valid(const char *set);
bool sim_imap_set_has(const char *set, unsigned v, unsigned star);

struct sim_imap_msg {
    unsigned uid;
    size_t size;
    unsigned flags;
};

struct sim_imap_hooks {
    void *ctx;
    /* 0: logged in; -1: wrong user or password. */
    int (*login)(void *ctx, const char *user, const char *pass);
    /* INBOX now: msgs (malloc'd; the engine frees it), UIDVALIDITY and UIDNEXT. */
    void (*snapshot)(void *ctx, struct sim_imap_msg **msgs_r, int *n_r, unsigned *uidvalidity_r,
                     unsigned *uidnext_r);
    /* The message's text (malloc'd), or -1 when it is gone. */
    int (*read)(void *ctx, unsigned uid, char **data_r, size_t *len_r);
    void (*set_flags)(void *ctx, unsigned uid, unsigned flags);
    void (*expunge)(void *ctx, unsigned uid);
    /* After one command's expunges (at least one), before its reply; may be NULL. */
    void (*expunged)(void *ctx);
    void (*transcript)(void *ctx, char dir, const char *line, size_t len);
    void (*violation)(void *ctx, const char *kind, const char *detail);
};

enum sim_imap_state { SIM_IMAP_NOAUTH, SIM_IMAP_AUTH, SIM_IMAP_SELECTED, SIM_IMAP_LOGOUT };

struct sim_imap_session {
    const struct sim_imap_hooks *hooks;
    enum sim_imap_state state;
    bool readonly;                      /* EXAMINE */
    struct sim_imap_msg *msgs;          /* sequence number i+1 */
    int n;
    unsigned uidvalidity, uidnext;
    struct buf in;                      /* unread input */
    struct buf cmd;                     /* the command being assembled */
    size_t literal_left;                /* literal bytes still to come into cmd */
    size_t discard_left;                /* bytes of a refused non-synchronizing literal */
    bool skipping;                      /* dropping the rest of an overlong line */
    bool idling;
    bool auth_pending;                  /* AUTHENTICATE waits for the client's response */
    char pending_tag[SIM_IMAP_TAG_MAX];
    bool logout;                        /* LOGOUT received */
    bool offer_starttls;                /* the caller sets it */
    bool tls;
    bool starttls_now;                  /* send out, handshake, then sim_imap_tls_started */
    struct buf out;
};

/* Greets (its capabilities show STARTTLS when offer_starttls and not tls). */
void sim_imap_init(struct sim_imap_session *s, const struct sim_imap_hooks *hooks,
                   const char *host, bool offer_starttls, bool tls);
void sim_imap_free(struct sim_imap_session *s);
/* false: close after sending out. */
bool sim_imap_feed(struct sim_imap_session *s, const void *data, size_t len);
/* In IDLE (or any time when selected): reports new messages ("* N EXISTS"). */
void sim_imap_check(struct sim_imap_session *s);
bool sim_imap_tls_started(struct sim_imap_session *s);
void sim_imap_eof(struct sim_imap_session *s);

#endif
