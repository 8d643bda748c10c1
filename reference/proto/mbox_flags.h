/*
 * mbox_flags: message flags as mbox keeps them in the header (mutt's convention, also
 * Dovecot's mbox driver and Pine), pure.
 *
 * DESCRIPTION
 *   Status: R = \Seen, O = old (the message was seen by a reader, not \Recent)
 *   X-Status: A = \Answered, F = \Flagged, T = \Draft, D = \Deleted
 *   X-Keywords: keywords, separated by commas and/or spaces
 *
 *   mbox_flags_parse reads these fields from a message's header section (as stored in mbox:
 *   LF line ends, CRLF accepted too); mbox_flags_rewrite writes the header section again
 *   without the old fields and with fields for the given flags just before the empty line.
 *   mbox_from_date reads the date of a From_ line (asctime form, local time, as delivery
 *   writes it) for IMAP's INTERNALDATE.
 *
 * SECURITY
 *   Header bytes are untrusted. Keywords are kept only when they are IMAP atoms of at most
 *   MBOX_KEYWORD_MAX bytes, at most MBOX_KEYWORDS_MAX of them; others are dropped.
 */
#ifndef ZOLDER_MBOX_FLAGS_H
#define ZOLDER_MBOX_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"

#define MBOX_FLAG_SEEN 0x01u
#define MBOX_FLAG_ANSWERED 0x02u
#define MBOX_FLAG_FLAGGED 0x04u
#define MBOX_FLAG_DELETED 0x08u
#define MBOX_FLAG_DRAFT 0x10u
#define MBOX_FLAG_OLD 0x20u        /* Status: O */
#define MBOX_FLAGS_IMAP 0x1fu      /* the IMAP system flags above (not \Recent) */

#define MBOX_KEYWORD_MAX 64
#define MBOX_KEYWORDS_MAX 32

/* Length of the header section of LF (or CRLF) content: up to and including the empty line. */
size_t mbox_header_len(const char *content, size_t len);

/*
 * Flags from Status/X-Status; keywords (space-separated, each an atom) are appended to
 * keywords when it is not NULL.
 */
unsigned mbox_flags_parse(const char *hdr, size_t hdr_len, struct buf *keywords);

/*
 * Appends hdr (a header section as mbox_header_len measured it) without its Status,
 * X-Status and X-Keywords fields, then those fields for flags and keywords (space-separated;
 * NULL or "" for none), then the empty line when hdr had one.
 */
void mbox_flags_rewrite(const char *hdr, size_t hdr_len, unsigned flags, const char *keywords, struct buf *out);

/* True when s is an IMAP atom usable as a keyword (no '\\', within MBOX_KEYWORD_MAX). */
bool mbox_keyword_valid(const char *s, size_t len);

/* The date of a From_ line ("From sender Sat Nov 28 06:53:24 2026"), or 0. */
time_t mbox_from_date(const char *line, size_t len);

#endif
