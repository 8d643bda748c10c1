/*
 * mimewalk: the MIME tree of one message, flattened for the content filter (amavis's
 * decoding step). A pure function over the message bytes, built on GMime 3.
 *
 * DESCRIPTION: every leaf part (and every message/rfc822 part) yields its attachment names,
 * taken from BOTH the Content-Disposition filename and the Content-Type name parameter,
 * decoded (RFC 2231 charset/continuations, RFC 2047 encoded words, which GMime decodes in
 * parameters too), and its body with the transfer encoding undone, for the banned-name check
 * and the virus scanners. Names are given as sent; normalising them (trailing dots and
 * spaces, case) is banned.c's job.
 *
 * SECURITY: attackers shape MIME to hide a part from the filter while mail readers still
 * show it. So the structure is only trusted when it parses cleanly: GMime's critical
 * warnings (conflicting headers or parameters, multipart without boundary, nesting
 * overflow, part without headers or content), a malformed or truncated multipart, a
 * multipart with no parts, and every limit below set `malformed`, and the filter then
 * quarantines ("when in doubt, quarantine"). Parts found before the problem are still
 * listed, so a banned name is reported as such when it was seen.
 *
 * LIMITS: nesting depth, number of parts, bytes of one part's header block, bytes of all
 * decoded bodies together (the message itself is bounded by message_size_limit).
 */
#ifndef ZOLDER_MIMEWALK_H
#define ZOLDER_MIMEWALK_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define MIMEWALK_NAMES_MAX 2   /* filename= and name= */

struct mimewalk_limits {
    size_t max_depth;          /* multipart / message nesting; the top level is 0 */
    size_t max_parts;          /* MIME objects in all */
    size_t max_header_bytes;   /* one part's header block */
    size_t max_body_bytes;     /* decoded bodies, all parts together */
};

struct mimewalk_part {
    char *content_type;        /* "type/subtype", lower case */
    char *names[MIMEWALK_NAMES_MAX]; /* decoded attachment names (UTF-8), distinct */
    size_t nnames;
    struct buf body;           /* the decoded body (empty for message/rfc822 containers) */
    size_t depth;
};

struct mimewalk {
    struct mimewalk_part *parts;
    size_t nparts;
    const char *malformed;     /* static reason the structure is not trusted, or NULL */
};

/* Defaults: depth 20, 500 parts, 64 KiB of header per part, 64 MiB of decoded bodies. */
void mimewalk_limits_default(struct mimewalk_limits *limits);

/* Walks the message (CRLF or LF line ends). out is always filled; free it with mimewalk_free. */
void mimewalk_run(const char *data, size_t len, const struct mimewalk_limits *limits,
                  struct mimewalk *out);
void mimewalk_free(struct mimewalk *walk);

#endif
