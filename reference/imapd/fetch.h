/*
 * fetch: the FETCH data items that need a message's bytes (RFC 3501 7.4.2): ENVELOPE,
 * BODY/BODYSTRUCTURE, BODY[section]<partial>, and the IMAP string forms they are sent in.
 *
 * DESCRIPTION
 *   Messages are in wire form (CRLF). The structure (parts, byte ranges, sizes, lines) comes
 *   from mime_part.h so sizes agree with the BODY[n] bytes; GMime 3 parses addresses
 *   (ENVELOPE) and Content-Type / Content-Disposition parameters (BODYSTRUCTURE).
 *
 * SECURITY
 *   Message bytes are untrusted: strings with CR, LF, NUL or 8-bit bytes, or longer than
 *   IMAPD_QUOTED_MAX, go out as literals; nesting follows MIME_DEPTH_MAX.
 */
#ifndef ZOLDER_IMAPD_FETCH_H
#define ZOLDER_IMAPD_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "imap_cmd.h"
#include "mime_part.h"

#define IMAPD_QUOTED_MAX 1024

/* An IMAP string for s[0, len): quoted when safe, a literal otherwise; NIL when s is NULL. */
void imapd_string(struct buf *out, const char *s, size_t len);
/* ENVELOPE of the entity whose header is msg[hdr_start, hdr_end). */
void imapd_envelope(struct buf *out, const char *msg, size_t hdr_start, size_t hdr_end);
/* BODYSTRUCTURE (extensible) or BODY of entity e. */
void imapd_bodystructure(struct buf *out, const char *msg, const struct mime_entity *e, bool extensible);
/*
 * The bytes of a BODY[section] item (before <partial>) of msg[0, len); false when the
 * section does not exist (the item is then sent as NIL... or empty, per RFC 3501 an empty
 * string).
 */
bool imapd_section_bytes(const char *msg, size_t len, const struct imap_fetch_att *a, struct buf *out);
/* The response name of a section item: "BODY[1.HEADER.FIELDS (From)]<0>". */
void imapd_section_name(const struct imap_fetch_att *a, struct buf *out);
/* INTERNALDATE form: "28-Nov-2026 06:53:24 +0100". */
void imapd_internaldate(time_t t, char *out, size_t outsize);

#endif
