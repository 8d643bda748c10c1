/*
 * imap_resp: IMAP4rev1 server responses as a client reads them (RFC 3501 7), pure: bytes in,
 * struct out, no I/O. (The server side, commands, is imap_cmd; this is the client's.)
 *
 * DESCRIPTION
 *   A response is a tagged status ("A1 OK ..."), an untagged response ("* ...") or a
 *   continuation request ("+ ..."). One response may span several lines: a line that ends in
 *   a literal "{N}" is followed by exactly N octets and the response goes on after them.
 *   imap_resp_parse() takes one whole response from the front of a byte stream; while it is
 *   not all there it says how many bytes it needs in all, so a caller holding a large literal
 *   in a socket buffer does not re-scan it on every read.
 *   Understood: status responses (OK/NO/BAD/PREAUTH/BYE) with their response code,
 *   "* N EXISTS/EXPUNGE/RECENT", "* CAPABILITY" (and the [CAPABILITY ...] code), "* SEARCH",
 *   "* N FETCH (...)" with UID, RFC822.SIZE, FLAGS and BODY[]/BODY[...]/RFC822 (a literal, a
 *   quoted string or NIL). Other data is skipped as balanced values.
 *
 * SECURITY
 *   The server is untrusted: a line (outside literals) is at most IMAP_RESP_LINE_MAX octets, a
 *   literal at most IMAP_LITERAL_MAX, nesting at most IMAP_RESP_DEPTH_MAX; text kept for logs is
 *   made printable. The body is returned as a pointer into the caller's data, never copied.
 *
 * LIMITS
 *   Only the first BODY[...] of a FETCH is returned; sections and partial origins are not
 *   told apart (the poller asks for BODY.PEEK[] only).
 */
#ifndef ZOLDER_IMAP_RESP_H
#define ZOLDER_IMAP_RESP_H

#include <stdbool.h>
#include <stddef.h>

#define IMAP_RESP_LINE_MAX (1024UL * 1024UL)         /* one line outside literals (SEARCH lists) */
#define IMAP_LITERAL_MAX (256UL * 1024UL * 1024UL) /* one literal */
#define IMAP_RESP_DEPTH_MAX 32                    /* nested parentheses */
#define IMAP_RESP_TEXT_MAX 512

enum imap_resp_result {
    IMAP_RESP_OK,        /* a whole response is in *r (pointers into data) */
    IMAP_RESP_NEED_MORE, /* not all there: call again once *want_r bytes are available */
    IMAP_RESP_ERROR,     /* not IMAP: drop the connection */
};

enum imap_resp_kind { IMAP_RESP_TAGGED, IMAP_RESP_UNTAGGED, IMAP_RESP_CONTINUATION };

enum imap_status {
    IMAP_STATUS_NONE = 0, /* untagged data (EXISTS, FETCH, SEARCH, CAPABILITY, FLAGS ...) */
    IMAP_STATUS_OK,
    IMAP_STATUS_NO,
    IMAP_STATUS_BAD,
    IMAP_STATUS_PREAUTH,
    IMAP_STATUS_BYE,
};

enum imap_capa {
    IMAP_CAPA_IMAP4REV1 = 1 << 0,
    IMAP_CAPA_STARTTLS = 1 << 1,
    IMAP_CAPA_AUTH_PLAIN = 1 << 2,
    IMAP_CAPA_LOGINDISABLED = 1 << 3,
    IMAP_CAPA_UIDPLUS = 1 << 4,
    IMAP_CAPA_SASL_IR = 1 << 5,
    IMAP_CAPA_LITERALPLUS = 1 << 6,
    IMAP_CAPA_IDLE = 1 << 7,
};

enum imap_flag {
    IMAP_FLAG_SEEN = 1 << 0,
    IMAP_FLAG_DELETED = 1 << 1,
    IMAP_FLAG_ANSWERED = 1 << 2,
    IMAP_FLAG_FLAGGED = 1 << 3,
    IMAP_FLAG_DRAFT = 1 << 4,
    IMAP_FLAG_RECENT = 1 << 5,
};

struct imap_resp {
    enum imap_resp_kind kind;
    char tag[64];                   /* tagged only */
    enum imap_status status;
    char code[64];                  /* the response code's atom ("UIDVALIDITY"), or "" */
    unsigned long code_number;      /* its first number argument ("UIDVALIDITY 7"), or 0 */
    char text[IMAP_RESP_TEXT_MAX];  /* human text after the code, printable */
    bool has_number;
    unsigned long number;           /* "* N EXISTS", "* N FETCH" */
    char keyword[32];               /* upper case: "EXISTS", "FETCH", "SEARCH", "CAPABILITY"... */
    unsigned capabilities;          /* from "* CAPABILITY" or "[CAPABILITY ...]" */
    bool has_capabilities;
    /* SEARCH: the numbers, as the text after the keyword (use imap_resp_search_next) */
    const char *search;
    size_t search_len;
    /* FETCH */
    bool has_uid, has_size, has_flags, has_body;
    unsigned long uid;
    unsigned long size;
    unsigned flags;                 /* enum imap_flag bits */
    const char *body;               /* into the caller's data; NULL for NIL */
    size_t body_len;
};

/*
 * Takes one whole response from data[0..len). OK: *consumed_r bytes make it up, *r is filled
 * (body/search point into data). NEED_MORE: *want_r is the least total length worth calling
 * again with. ERROR: *error_r says why.
 */
enum imap_resp_result imap_resp_parse(const char *data, size_t len, size_t *consumed_r,
                                      size_t *want_r, struct imap_resp *r,
                                      const char **error_r);

/* Next number of a SEARCH response: true with *n; false at the end. *pos starts at 0. */
bool imap_resp_search_next(const struct imap_resp *r, size_t *pos, unsigned long *n);

/* The capability bits of a space-separated list of capability atoms. */
unsigned imap_capa_parse(const char *list, size_t len);

#endif
