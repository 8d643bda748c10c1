/*
 * smtp_data: a queued message turned into the bytes of an SMTP DATA section (RFC 5321
 * 4.5.2 transparency, 2.3.8 line ends), pure.
 */
#ifndef ZOLDER_SMTP_DATA_H
#define ZOLDER_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/*
 * Appends data[0..len) to out with every line end made CRLF (a bare LF or bare CR becomes
 * CRLF: the queue holds CRLF already, this is the last guard), every line that starts with
 * '.' given one more '.', a final CRLF when the message lacks one, and the ".\r\n" end.
 * false when out's maximum was reached.
 */
bool smtp_data_stuff(const char *data, size_t len, struct buf *out);
/* Does the message hold a byte >= 0x80 (needs 8BITMIME, RFC 6152)? */
bool smtp_data_has_8bit(const char *data, size_t len);

#endif
