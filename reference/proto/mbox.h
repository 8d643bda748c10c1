/*
 * mbox: writing messages in the mbox format that mutt, procmail and Dovecot read
 * (RFC 4155, the "mboxrd" quoting: any line matching ^>*From  gets one more '>').
 *
 * Streaming and pure: feed the message as stored in the queue (CRLF line ends) in chunks of
 * any size; the writer emits LF line ends, quoted From_ lines, a final newline when the
 * message lacked one, and the blank line that separates messages.
 */
#ifndef ZOLDER_MBOX_H
#define ZOLDER_MBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"

/*
 * "From SENDER Sat Nov 16 23:07:13 2002\n"; the null sender (NULL, "" or "<>") is written
 * MAILER-DAEMON. Spaces, control and 8-bit bytes in SENDER become '_' (readers split the line
 * at spaces), and SENDER is cut at 512 bytes.
 */
void mbox_from_line(struct buf *out, const char *sender, time_t when);

struct mbox_quoter {
    int state;          /* internal: position within a line start */
    char pending[8];    /* bytes held back while deciding whether a line is ^>*From  */
    size_t npending;
    bool at_line_start;
    bool last_was_cr;
};

void mbox_quoter_init(struct mbox_quoter *q);
void mbox_quoter_feed(struct mbox_quoter *q, const char *data, size_t len, struct buf *out);
/*
 * Flushes held bytes, ends the last line, and writes the separating blank line; q is then
 * ready for the next message. An empty message gives just the blank line. Output goes through
 * buf_append, so a buf with a max truncates silently: give out no max, or check its length.
 */
void mbox_quoter_finish(struct mbox_quoter *q, struct buf *out);

/*
 * Reading side, for recovery and later for IMAP/POP3: true when line (without LF) is a
 * message separator "From " line in the sense RFC 4155 readers use.
 * As strict as mutt: "From " at the very start, a non-empty sender token (a leading quoted
 * string may hold spaces), then an asctime date and nothing else:
 * "Www Mmm [d]d hh:mm[:ss] [ZONE] yyyy [ZONE]" (English names, at most one ZONE, which is
 * +hhmm/-hhmm or 1-5 capitals such as CET). Runs of spaces count as one separator.
 */
bool mbox_is_from_line(const char *line, size_t len);

#endif
