/*
 * mutf7: IMAP mailbox names, RFC 3501 5.1.3 modified UTF-7 <-> UTF-8. Pure: no I/O, no globals.
 *
 * DESCRIPTION
 *   On the wire a mailbox name is modified UTF-7: printable US-ASCII (0x20-0x7e) stands for
 *   itself except '&', which is written "&-"; every other character is written as UTF-16BE in
 *   modified base64 (',' instead of '/', no '=' padding) between '&' and '-'. On disk zolder
 *   keeps folder names in UTF-8, so mutt and ls show readable names.
 *
 *   Decoding is strict: only the one canonical encoding of a name is accepted (what
 *   mutf7_encode would write), so two wire names never map to one folder. Refused: bytes
 *   outside 0x20-0x7e, an '&' run without its '-', an empty run other than "&-", bad base64,
 *   left-over bits that are not zero or that make a whole base64 character, a printable
 *   ASCII character encoded in a run, two runs back to back (they must be one), unpaired
 *   surrogates, and U+0000.
 *
 *   Encoding takes strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF,
 *   no NUL).
 *
 * SECURITY
 *   Input is untrusted. Output goes into a caller's struct buf whose max bounds it; a name
 *   longer than that fails cleanly.
 */
#ifndef ZOLDER_MUTF7_H
#define ZOLDER_MUTF7_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* Appends the UTF-8 form of the modified UTF-7 name to out; false (*why_r) when not canonical. */
bool mutf7_decode(const char *in, size_t len, struct buf *out, const char **why_r);

/* Appends the modified UTF-7 form of the UTF-8 name to out; false (*why_r) on bad UTF-8. */
bool mutf7_encode(const char *in, size_t len, struct buf *out, const char **why_r);

/* Decodes one strict UTF-8 character at s[0..len); its length, or 0 when invalid (or NUL). */
size_t mutf7_utf8_char(const unsigned char *s, size_t len, unsigned long *cp_r);

#endif
