/*
 * smtp_reply: SMTP replies as a client reads them (RFC 5321 4.2), and the EHLO keyword list
 * (RFC 5321 4.1.1.1, RFC 1869), pure: lines in, struct out, no I/O.
 *
 * A reply is one or more lines "NNN-text" ending with "NNN text" (or a bare "NNN"); every
 * line must carry the same code. An enhanced status code (RFC 2034/3463, "X.Y.Z" with X the
 * code's class) at the start of the text is taken from the first line and stripped from
 * every line. Text bytes outside printable ASCII become '?', so the text is safe to log.
 */
#ifndef ZOLDER_SMTP_REPLY_H
#define ZOLDER_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define SMTP_REPLY_LINE_MAX 2048   /* octets in one reply line with CRLF (RFC 5321: 512; be lenient) */
#define SMTP_REPLY_LINES_MAX 100   /* lines in one reply */
#define SMTP_REPLY_TEXT_MAX 8192   /* all lines' text together */
#define SMTP_REPLY_ENH_MAX 12      /* "5.123.123" and NUL */

enum smtp_reply_result {
    SMTP_REPLY_OK,        /* a whole reply is in *reply_r */
    SMTP_REPLY_NEED_MORE, /* a continuation line was taken, or no whole line yet */
    SMTP_REPLY_ERROR,     /* not an SMTP reply: the caller drops the connection */
};

struct smtp_reply {
    int code;                          /* 200..599 */
    char enhanced[SMTP_REPLY_ENH_MAX]; /* "2.1.5", or "" */
    size_t nlines;
    size_t textlen;
    char text[SMTP_REPLY_TEXT_MAX];    /* each line's text, lines separated by '\n' */
};

struct smtp_reply_parser {
    struct smtp_reply cur;
    bool started;
};

void smtp_reply_parser_init(struct smtp_reply_parser *p);

/*
 * Feeds one line without its line end. OK: the reply is complete and copied to *reply_r
 * (the parser is ready for the next); NEED_MORE: a continuation line; ERROR: *error_r says
 * why (static text) and the parser is reset.
 */
enum smtp_reply_result smtp_reply_feed_line(struct smtp_reply_parser *p, const char *line,
                                            size_t len, struct smtp_reply *reply_r,
                                            const char **error_r);

/*
 * Takes at most one line from data[0..len) (ended by CRLF, or a bare LF, which real servers
 * send) and feeds it. *consumed_r is the number of bytes taken, 0 when no whole line is
 * there yet (NEED_MORE, or ERROR when len already exceeds SMTP_REPLY_LINE_MAX).
 */
enum smtp_reply_result smtp_reply_parse(struct smtp_reply_parser *p, const char *data,
                                        size_t len, size_t *consumed_r,
                                        struct smtp_reply *reply_r, const char **error_r);

/* The reply class: 2, 3, 4 or 5. */
int smtp_reply_class(const struct smtp_reply *r);
/* Line i's text (without code) and its length; NULL past the last line. */
const char *smtp_reply_line(const struct smtp_reply *r, size_t i, size_t *len_r);
/* "CODE ENH text text ..." on one line (lines joined by a blank), for logs and bounces. */
void smtp_reply_format(const struct smtp_reply *r, struct buf *out);

/* EHLO keywords zolder's client cares about. */
enum smtp_ext {
    SMTP_EXT_PIPELINING = 1 << 0,
    SMTP_EXT_SIZE = 1 << 1,
    SMTP_EXT_8BITMIME = 1 << 2,
    SMTP_EXT_STARTTLS = 1 << 3,
    SMTP_EXT_AUTH = 1 << 4,
    SMTP_EXT_DSN = 1 << 5,
    SMTP_EXT_ENHANCEDSTATUSCODES = 1 << 6,
    SMTP_EXT_SMTPUTF8 = 1 << 7,
    SMTP_EXT_CHUNKING = 1 << 8,
};

enum smtp_auth_mech {
    SMTP_AUTH_PLAIN = 1 << 0,
    SMTP_AUTH_LOGIN = 1 << 1,
    SMTP_AUTH_CRAM_MD5 = 1 << 2,
    SMTP_AUTH_OTHER = 1 << 3,
};

struct smtp_ehlo {
    unsigned ext;             /* enum smtp_ext bits */
    unsigned long long size;  /* SIZE limit; 0: none announced */
    unsigned auth;            /* enum smtp_auth_mech bits (AUTH and the old AUTH= form) */
};

/* The keywords of a 250 EHLO reply (lines after the first). */
void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *e);

#endif
