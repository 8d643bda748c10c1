/*
 * downgrade: RFC 6152 section 3's other choice for 8-bit mail to a server without 8BITMIME:
 * convert it to 7 bit, as a pure function over the message bytes (GMime parses and writes).
 *
 * DESCRIPTION
 *   Every 8-bit text leaf (text/ANY) (Content-Transfer-Encoding 8bit, binary or none) becomes
 *   quoted-printable; everything else is written back as it was. The message is refused (the
 *   caller returns it to the sender, 5.6.3) when converting would break it or cannot make it
 *   7-bit: 8-bit bytes in a header, no MIME-Version (the charset and structure are unknown),
 *   a multipart/signed or multipart/encrypted anywhere (the signature covers the bytes), an
 *   8-bit part that is not text, MIME that GMime had to guess at, or any byte above 127
 *   left in the result.
 *
 * STANDARDS
 *   RFC 6152 3, RFC 2045 6.7 (quoted-printable), RFC 1847 (signed/encrypted multiparts).
 *
 * SECURITY
 *   The input is a message from the network: GMime's warnings about malformed structure make
 *   it refuse; the result is checked byte by byte (7 bit, no NUL, no bare CR or LF).
 *
 * LIMITS
 *   DOWNGRADE_DEPTH_MAX nesting; the result may be at most 3 times the input plus 64 KiB.
 */
#ifndef ZOLDER_DOWNGRADE_H
#define ZOLDER_DOWNGRADE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define DOWNGRADE_DEPTH_MAX 20

/*
 * Converts msg (CRLF line ends, as queued) into out (CRLF). true when out holds the 7-bit
 * message; false with a static reason in *why_r (out is then empty).
 */
bool downgrade_7bit(const char *msg, size_t len, struct buf *out, const char **why_r);

#endif
