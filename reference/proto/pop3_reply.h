/*
 * pop3_reply: POP3 server responses as a client reads them (RFC 1939 3, RFC 2449 CAPA and
 * response codes), pure: bytes in, structs out, no I/O.
 *
 * DESCRIPTION
 *   A status line is "+OK text" or "-ERR text" (RFC 2449 8: an optional "[CODE]" first),
 *   or "+ base64" during AUTH. A multi-line response follows a +OK for RETR, TOP, LIST, UIDL
 *   and CAPA: lines ending in CRLF, a line starting with '.' carries an extra '.' (byte
 *   stuffing), and a line holding only "." ends it. pop3_multiline_feed() takes whole lines
 *   from a stream, unstuffs them and appends them with CRLF to an output buffer, so the caller
 *   can feed whatever has arrived (whole, or a byte at a time) and resume.
 *
 * SECURITY
 *   The server is untrusted: every line is bounded (POP3_REPLY_LINE_MAX for status lines,
 *   POP3_BODY_LINE_MAX in bodies), the output buffer has its own maximum, status text is
 *   made printable before anyone logs it, UIDs are checked against RFC 1939 7 (1-70 octets
 *   0x21-0x7E) before they become part of a state file.
 *
 * LIMITS
 *   Bare LF line ends are accepted (some servers send them); they come out as CRLF.
 */
#ifndef ZOLDER_POP3_REPLY_H
#define ZOLDER_POP3_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define POP3_REPLY_LINE_MAX 4096          /* a status line, CRLF included (RFC 2449: 512) */
#define POP3_REPLY_TEXT_MAX 512           /* kept of its text */
#define POP3_BODY_LINE_MAX (1024UL * 1024UL) /* one line of a multi-line body */
#define POP3_UID_MAX 70                   /* RFC 1939 7 */

enum pop3_reply_result {
    POP3_REPLY_OK,        /* a whole status line / the end of the multi-line body */
    POP3_REPLY_NEED_MORE, /* whole lines were taken (maybe none); feed more */
    POP3_REPLY_ERROR,     /* not POP3, too long, or the output is full: drop the connection */
};

enum pop3_status_kind { POP3_STATUS_OK, POP3_STATUS_ERR, POP3_STATUS_CONT };

struct pop3_status {
    enum pop3_status_kind kind;
    char code[64];                      /* RFC 2449 response code ("IN-USE", "AUTH"), or "" */
    char text[POP3_REPLY_TEXT_MAX];     /* the rest, printable ASCII ('?' for others) */
};

/*
 * Takes one status line from data[0..len). OK: *consumed_r bytes were used; NEED_MORE: no
 * whole line yet (*consumed_r 0); ERROR: *error_r says why.
 */
enum pop3_reply_result pop3_status_parse(const char *data, size_t len, size_t *consumed_r,
                                         struct pop3_status *st, const char **error_r);

struct pop3_multiline {
    size_t lines;   /* lines taken so far (the final "." not counted) */
};

void pop3_multiline_init(struct pop3_multiline *m);
/*
 * Takes whole lines from data[0..len), appending each unstuffed with CRLF to out. OK: the
 * final "." was taken (*consumed_r includes it); NEED_MORE: feed the rest (data[*consumed_r..])
 * again with more; ERROR: a line over POP3_BODY_LINE_MAX or out would exceed its max.
 */
enum pop3_reply_result pop3_multiline_feed(struct pop3_multiline *m, const char *data,
                                           size_t len, size_t *consumed_r, struct buf *out,
                                           const char **error_r);

/* "N UID" of a UIDL listing (line without CRLF). false when malformed. */
bool pop3_uidl_line(const char *line, size_t len, unsigned long *msg_r,
                    char uid[POP3_UID_MAX + 1]);
/* "N SIZE" of a LIST listing or the +OK text of "LIST N" / "STAT". */
bool pop3_list_line(const char *line, size_t len, unsigned long *msg_r, unsigned long *size_r);

enum pop3_capa {
    POP3_CAPA_STLS = 1 << 0,
    POP3_CAPA_USER = 1 << 1,
    POP3_CAPA_UIDL = 1 << 2,
    POP3_CAPA_TOP = 1 << 3,
    POP3_CAPA_PIPELINING = 1 << 4,
    POP3_CAPA_SASL_PLAIN = 1 << 5,
    POP3_CAPA_RESP_CODES = 1 << 6,
};

/* The capabilities in a CAPA body (lines with CRLF, as pop3_multiline_feed writes them). */
unsigned pop3_capa_parse(const char *body, size_t len);

#endif
