/*
 * pop3_cmd: POP3 command lines (RFC 1939 3, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH), and
 * the SASL PLAIN response (RFC 4616), pure.
 *
 * Input is one line without its CRLF. The parser never reads a socket and knows nothing of
 * states; the server decides what each verb means when. Failures come back as the text of a
 * "-ERR" reply, static, so every caller answers the same way.
 *
 * Contract:
 *   - keywords are case-insensitive, 3 or 4 letters, followed by nothing or one SP and the
 *     arguments; trailing SP/TAB are ignored except in PASS, whose argument is the rest of
 *     the line verbatim (passwords may hold spaces, RFC 1939 7);
 *   - a line holding NUL, CR or LF is refused; a line longer than POP3_LINE_MAX - 2 is refused,
 *     except AUTH (up to POP3_AUTH_LINE_MAX - 2, RFC 5034 4);
 *   - message numbers are 1 to POP3_MSG_MAX in decimal digits only; TOP's line count 0 to
 *     POP3_LINES_MAX; LIST and UIDL take an optional number; RETR and DELE need one, TOP two;
 *   - USER needs a name (POP3_ARG_MAX), PASS a password (may be empty only as a "PASS " line),
 *     AUTH a mechanism name and an optional initial response;
 *   - STAT, NOOP, RSET, QUIT, CAPA and STLS take no argument.
 */
#ifndef ZOLDER_POP3_CMD_H
#define ZOLDER_POP3_CMD_H

#include <stdbool.h>
#include <stddef.h>

#define POP3_LINE_MAX 255          /* RFC 2449 4: command line incl. CRLF */
#define POP3_AUTH_LINE_MAX 8192    /* AUTH lines and SASL responses */
#define POP3_ARG_MAX 255
#define POP3_MSG_MAX 1000000000UL
#define POP3_LINES_MAX 1000000000UL
#define POP3_SASL_FIELD_MAX 1024

enum pop3_verb {
    POP3_VERB_UNKNOWN = 0,
    POP3_VERB_USER,
    POP3_VERB_PASS,
    POP3_VERB_AUTH,
    POP3_VERB_CAPA,
    POP3_VERB_STLS,
    POP3_VERB_QUIT,
    POP3_VERB_STAT,
    POP3_VERB_LIST,
    POP3_VERB_RETR,
    POP3_VERB_DELE,
    POP3_VERB_NOOP,
    POP3_VERB_RSET,
    POP3_VERB_TOP,
    POP3_VERB_UIDL,
};

struct pop3_cmd {
    enum pop3_verb verb;
    char arg[POP3_ARG_MAX + 1];           /* USER name, PASS password, AUTH mechanism */
    char initial[POP3_AUTH_LINE_MAX + 1]; /* AUTH initial response ("" when none) */
    bool has_initial;
    bool has_msg;                         /* a message number was given */
    unsigned long msg;
    unsigned long lines;                  /* TOP */
};

/* Parses one line. true, or false with *error_r set ("unknown command", ...). */
bool pop3_cmd_parse(const char *line, size_t len, struct pop3_cmd *cmd, const char **error_r);

const char *pop3_verb_name(enum pop3_verb verb);

/*
 * Decodes an RFC 4616 PLAIN response given in base64 ("authzid NUL authcid NUL passwd").
 * Fields must be non-empty (authzid may be empty), without NUL, at most
 * POP3_SASL_FIELD_MAX bytes; outputs are NUL-terminated. false on any malformation.
 */
bool pop3_sasl_plain(const char *b64, size_t len, char *authzid, char *authcid, char *passwd,
                     size_t fieldsize);

/* Strict base64 (RFC 4648 4, padding required). Returns the decoded length or -1. */
long pop3_base64_decode(const char *in, size_t len, unsigned char *out, size_t outsize);

#endif
