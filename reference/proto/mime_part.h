/*
 * mime_part: the MIME structure of a message as IMAP numbers it (RFC 3501 6.4.5 section
 * parts), located by byte ranges, pure.
 *
 * DESCRIPTION
 *   Works on a message in wire form (CRLF line ends; bare LF is accepted too). An entity is a
 *   header section and a body. mime_entity_parse reads an entity's Content-Type (type,
 *   subtype, boundary); mime_multipart_next walks the parts of a multipart body (between
 *   "--boundary" lines, RFC 2046 5.1.1: the CRLF before a delimiter belongs to it);
 *   mime_section_find follows a section path the way IMAP does: a number selects the n-th part
 *   of a multipart, part 1 of a single-part entity is its body, and a message/rfc822 part is
 *   entered first (its parts are those of the message it holds).
 *   The ranges are exact, so sizes and BODY[n] bytes agree with each other.
 *
 * SECURITY
 *   Message bytes are untrusted. Parsing is bounded by the message: nesting at most
 *   MIME_DEPTH_MAX (deeper parts are treated as opaque bodies), boundary at most
 *   MIME_BOUNDARY_MAX bytes (RFC 2046 says 70), type names at most MIME_TYPE_MAX.
 */
#ifndef ZOLDER_MIME_PART_H
#define ZOLDER_MIME_PART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define MIME_DEPTH_MAX 32
#define MIME_BOUNDARY_MAX 200
#define MIME_TYPE_MAX 64

struct mime_entity {
    size_t hdr_start, hdr_end;    /* header section, including the empty line that ends it */
    size_t body_start, body_end;
    char type[MIME_TYPE_MAX + 1]; /* lower case; "text" / "plain" when absent */
    char subtype[MIME_TYPE_MAX + 1];
    char boundary[MIME_BOUNDARY_MAX + 1];
    bool multipart;               /* multipart/ with a boundary */
    bool message;                 /* message/rfc822 (or message/global) */
    unsigned depth;
};

/*
 * The entity in msg[start, end). digest_child: a part of multipart/digest (default type
 * message/rfc822, RFC 2046 5.1.5).
 */
void mime_entity_parse(const char *msg, size_t start, size_t end, bool digest_child, unsigned depth,
                       struct mime_entity *e);
/* The next part of multipart e; start with *pos = 0. False when there are no more. */
bool mime_multipart_next(const char *msg, const struct mime_entity *e, size_t *pos, struct mime_entity *part);
/* The message held by message/rfc822 part e. */
void mime_message_enter(const char *msg, const struct mime_entity *e, struct mime_entity *inner);
/*
 * Follows section path part[0..nparts) from the top-level message msg[0, len). *e_r is the
 * entity named: for BODY[path] its body (a message/rfc822 part: the whole inner message,
 * i.e. its body range), for path.MIME its header. False when there is no such part.
 */
bool mime_section_find(const char *msg, size_t len, const uint32_t *part, size_t nparts, struct mime_entity *e_r);
/*
 * The value of the first header field name in [hdr_start, hdr_end), unfolded (CRLF and LF
 * before white space removed), leading and trailing white space trimmed. False when absent.
 */
bool mime_header_value(const char *msg, size_t hdr_start, size_t hdr_end, const char *name, struct buf *out);
/* Lines (LF) in msg[start, end), counting a final line without a line end. */
unsigned long mime_count_lines(const char *msg, size_t start, size_t end);

#endif
