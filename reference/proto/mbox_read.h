/*
 * mbox_read: the reading side of mbox (RFC 4155, mboxrd) for POP3 and IMAP, pure.
 *
 * DESCRIPTION
 *   mbox_scan is a push parser: feed a mailbox file's bytes in chunks of any size, then
 *   finish. It finds the messages (a From_ line as mbox_is_from_line() accepts it, at the
 *   start of the file or after an empty line), and reports for each one where it lies and
 *   its size as POP3 and IMAP count it (mboxrd-unquoted, CRLF line ends, without the From_
 *   line and without the empty line that separates it from the next message).
 *   It also passes the bytes that identify a message (the From_ line and the content, except
 *   the header fields mail readers rewrite to keep flags: Status, X-Status, X-Keywords,
 *   X-UID, X-IMAP, X-IMAPbase, Content-Length, Lines) to a callback, so the caller can hash them.
 *   Bytes before the first From_ line belong to no message (a caller keeps them as they are).
 *
 *   mbox_export converts one message's raw content (as located by the scan) into what goes
 *   on the wire: one '>' removed from ^>+From_ lines, CRLF line ends, a final line end added,
 *   optionally POP3 dot-stuffing and a cut after the header plus N body lines (POP3 TOP).
 *   Its output length without dot-stuffing equals the scan's size for the same bytes.
 *
 * SECURITY
 *   Mailbox bytes are untrusted (they come from mail). Memory is bounded: the scanner holds
 *   at most MBOX_READ_LINE_MAX bytes of a line; longer lines stream through. A line counts as
 *   quoted ("^>+From ") only when "From " appears within its first MBOX_READ_LINE_MAX bytes,
 *   in the scanner and the exporter alike, so their sizes always agree.
 */
#ifndef ZOLDER_MBOX_READ_H
#define ZOLDER_MBOX_READ_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define MBOX_READ_LINE_MAX 1024

struct mbox_scan_msg {
    unsigned long long offset;      /* of the From_ line in the file */
    unsigned long long from_len;    /* From_ line including its LF */
    unsigned long long content_len; /* raw bytes after the From_ line, without the separator */
    unsigned long long span;        /* offset to the next message (or the end of the file) */
    unsigned long long size;        /* wire size: unquoted, CRLF line ends */
    unsigned long long lines;       /* lines of content */
};

struct mbox_scan_callbacks {
    void *ctx;
    /* A message starts at offset (its From_ line). */
    void (*begin)(void *ctx, unsigned long long offset);
    /* Identifying bytes of the current message, in order (for a content hash). */
    void (*data)(void *ctx, const char *bytes, size_t len);
    /* The current message is complete. */
    void (*end)(void *ctx, const struct mbox_scan_msg *msg);
};

struct mbox_scan {
    struct mbox_scan_callbacks cb;
    unsigned long long pos;        /* file offset of the next byte fed */
    unsigned long long line_start; /* file offset of the current line */
    char head[MBOX_READ_LINE_MAX]; /* the first bytes of the current line */
    size_t nhead;
    bool streaming;                /* the current line is longer than head: rest streams */
    bool stream_skip;              /* ... and its bytes are not identifying */
    bool stream_last_cr;           /* the last streamed byte was CR */
    bool prev_empty;               /* the previous line was empty (or there was none) */
    bool in_msg;
    bool in_header;
    bool skip_field;               /* the current header field is not identifying */
    bool pending_empty;            /* an empty line held back: separator or content? */
    struct mbox_scan_msg cur;
};

void mbox_scan_init(struct mbox_scan *s, const struct mbox_scan_callbacks *cb);
void mbox_scan_feed(struct mbox_scan *s, const char *data, size_t len);
/* Ends the last message (a final line without LF counts as a line). */
void mbox_scan_finish(struct mbox_scan *s);

/* True when a line (without its line end) is mboxrd-quoted: ^>+From_ within the limit. */
bool mbox_line_is_quoted(const char *line, size_t len);

#define MBOX_EXPORT_DOTSTUFF 0x1   /* POP3: a line starting with '.' gets another '.' */

/*
 * Appends the wire form of raw content (the bytes between the From_ line and the separator).
 * body_lines < 0: the whole message; otherwise the header, the empty line and at most
 * body_lines lines of the body (POP3 TOP). Returns the number of bytes appended.
 */
size_t mbox_export(const char *raw, size_t len, unsigned flags, long body_lines, struct buf *out);

#endif
