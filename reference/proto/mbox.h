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

/* "From SENDER Sat Nov 16 23:07:13 2002\n"; the null sender is written MAILER-DAEMON. */
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
/* Flushes held bytes, ends the last line, and writes the separating blank line. */
void mbox_quoter_finish(struct mbox_quoter *q, struct buf *out);

/*
 * Reading side, for recovery and later for IMAP/POP3: true when line (without LF) is a
 * message separator "From " line in the sense RFC 4155 readers use.
 */
bool mbox_is_from_line(const char *line, size_t len);

#endif
