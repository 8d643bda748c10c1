/*
 * mbox_read: scanning an mbox file into messages, and exporting one message for the wire
 * (see mbox_read.h).
 *
 * STANDARDS
 *   RFC 4155 (the From_ line), mboxrd quoting as mutt, procmail and Dovecot read it (one '>'
 *   removed from ^>+From_), RFC 1939 3 (POP3 byte-stuffing, octet counts with CRLF).
 */
#include "mbox_read.h"

#include <string.h>
#include <strings.h>

#include "mbox.h"

/* Header fields mail readers rewrite in place to keep state; not part of a message's identity. */
static const char *const mbox_read_volatile_fields[] = {
    "Status:", "X-Status:", "X-Keywords:", "X-UID:", "X-IMAP:", "X-IMAPbase:", "Content-Length:",
    "Lines:", /* mutt adds Content-Length and Lines when it rewrites a mailbox */
};

bool mbox_line_is_quoted(const char *line, size_t len)
{
    size_t n = len < MBOX_READ_LINE_MAX ? len : MBOX_READ_LINE_MAX, i = 0;
    while (i < n && line[i] == '>')
        i++;
    return i > 0 && n - i >= 5 && memcmp(line + i, "From ", 5) == 0;
}

static bool mbox_read_volatile(const char *line, size_t len)
{
    for (size_t i = 0; i < sizeof mbox_read_volatile_fields / sizeof mbox_read_volatile_fields[0]; i++) {
        size_t n = strlen(mbox_read_volatile_fields[i]);
        if (len >= n && strncasecmp(line, mbox_read_volatile_fields[i], n) == 0)
            return true;
    }
    return false;
}

void mbox_scan_init(struct mbox_scan *s, const struct mbox_scan_callbacks *cb)
{
    memset(s, 0, sizeof *s);
    s->cb = *cb;
    s->prev_empty = true; /* the start of the file counts as after an empty line */
}

static void mbox_scan_data(struct mbox_scan *s, const char *p, size_t n)
{
    if (s->cb.data && n)
        s->cb.data(s->cb.ctx, p, n);
}

static void mbox_scan_end(struct mbox_scan *s, unsigned long long at)
{
    if (!s->in_msg)
        return;
    /* A held empty line is the separator: not part of the message. */
    s->cur.span = at - s->cur.offset;
    if (s->cb.end)
        s->cb.end(s->cb.ctx, &s->cur);
    s->in_msg = false;
    s->pending_empty = false;
}

/* The held empty line turned out to be content. */
static void mbox_scan_flush_empty(struct mbox_scan *s)
{
    if (!s->pending_empty)
        return;
    s->pending_empty = false;
    s->cur.size += 2;
    s->cur.lines++;
    mbox_scan_data(s, "\n", 1);
    s->cur.content_len = s->line_start - s->cur.offset - s->cur.from_len;
}

/*
 * One line, or the head of a long one (complete false). n excludes the LF; has_lf tells
 * whether one ended the line.
 */
static void mbox_scan_line(struct mbox_scan *s, const char *line, size_t n, bool complete, bool has_lf)
{
    if (complete && has_lf && s->prev_empty && mbox_is_from_line(line, n)) {
        mbox_scan_end(s, s->line_start);
        memset(&s->cur, 0, sizeof s->cur);
        s->cur.offset = s->line_start;
        s->cur.from_len = n + 1;
        s->in_msg = true;
        s->in_header = true;
        s->skip_field = false;
        if (s->cb.begin)
            s->cb.begin(s->cb.ctx, s->line_start);
        mbox_scan_data(s, line, n);
        mbox_scan_data(s, "\n", 1);
        s->prev_empty = false;
        return;
    }
    size_t content = n - (complete && has_lf && n > 0 && line[n - 1] == '\r');
    bool empty = complete && content == 0;
    if (!s->in_msg) {
        /* Bytes before the first message: kept by callers, not scanned. */
        s->prev_empty = empty;
        if (!complete) {
            s->streaming = true;
            s->stream_skip = true;
            s->stream_last_cr = false;
        }
        return;
    }
    mbox_scan_flush_empty(s);
    if (empty) {
        s->in_header = false;
        s->pending_empty = true;
        s->prev_empty = true;
        return;
    }
    s->prev_empty = false;
    bool skip = false;
    if (s->in_header) {
        if (line[0] != ' ' && line[0] != '\t')
            s->skip_field = mbox_read_volatile(line, n);
        skip = s->skip_field;
    }
    s->cur.size += content - (mbox_line_is_quoted(line, n) ? 1 : 0);
    if (!skip) {
        mbox_scan_data(s, line, n);
        if (complete && has_lf)
            mbox_scan_data(s, "\n", 1);
    }
    if (complete) {
        s->cur.size += 2;
        s->cur.lines++;
        s->cur.content_len = s->line_start + n + has_lf - s->cur.offset - s->cur.from_len;
    } else {
        s->streaming = true;
        s->stream_skip = skip;
        s->stream_last_cr = line[n - 1] == '\r';
    }
}

/* The rest of a long line; returns the bytes used (through the LF when there is one). */
static size_t mbox_scan_stream(struct mbox_scan *s, const char *p, size_t len)
{
    const char *lf = memchr(p, '\n', len);
    size_t n = lf ? (size_t)(lf - p) : len;
    if (s->in_msg) {
        s->cur.size += n;
        if (!s->stream_skip)
            mbox_scan_data(s, p, n + (lf != NULL));
    }
    if (n)
        s->stream_last_cr = p[n - 1] == '\r';
    if (!lf)
        return len;
    if (s->in_msg) {
        s->cur.size += 2 - (s->stream_last_cr ? 1 : 0);
        s->cur.lines++;
        s->cur.content_len = s->pos + n + 1 - s->cur.offset - s->cur.from_len;
    }
    s->streaming = false;
    s->prev_empty = false;
    return n + 1;
}

void mbox_scan_feed(struct mbox_scan *s, const char *data, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (s->streaming) {
            size_t used = mbox_scan_stream(s, data + i, len - i);
            i += used;
            s->pos += used;
            if (!s->streaming)
                s->line_start = s->pos;
            continue;
        }
        size_t room = sizeof s->head - s->nhead;
        size_t avail = len - i;
        const char *lf = memchr(data + i, '\n', avail < room ? avail : room);
        if (lf) {
            size_t n = (size_t)(lf - (data + i));
            memcpy(s->head + s->nhead, data + i, n);
            s->nhead += n;
            i += n + 1;
            s->pos += n + 1;
            mbox_scan_line(s, s->head, s->nhead, true, true);
            s->nhead = 0;
            s->line_start = s->pos;
            continue;
        }
        size_t n = avail < room ? avail : room;
        memcpy(s->head + s->nhead, data + i, n);
        s->nhead += n;
        i += n;
        s->pos += n;
        if (s->nhead == sizeof s->head) {
            mbox_scan_line(s, s->head, s->nhead, false, false);
            s->nhead = 0;
        }
    }
}

void mbox_scan_finish(struct mbox_scan *s)
{
    if (s->streaming) {
        /* A long last line without LF: it ends here, its CR (if any) is content. */
        if (s->in_msg) {
            s->cur.size += 2;
            s->cur.lines++;
            s->cur.content_len = s->pos - s->cur.offset - s->cur.from_len;
        }
        s->streaming = false;
    } else if (s->nhead) {
        mbox_scan_line(s, s->head, s->nhead, true, false);
        s->nhead = 0;
    }
    mbox_scan_end(s, s->pos);
    s->line_start = s->pos;
    s->prev_empty = true;
}

size_t mbox_export(const char *raw, size_t len, unsigned flags, long body_lines, struct buf *out)
{
    const char *p = raw, *end = raw + len;
    size_t before = out->len;
    bool in_header = true;
    long body = 0;
    while (p < end) {
        if (!in_header && body_lines >= 0 && body >= body_lines)
            break;
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        size_t n = lf ? (size_t)(lf - p) : (size_t)(end - p);
        size_t content = n - (lf && n > 0 && p[n - 1] == '\r');
        const char *q = p;
        size_t qn = content;
        if (mbox_line_is_quoted(p, n)) {
            q++;
            qn--;
        }
        if ((flags & MBOX_EXPORT_DOTSTUFF) && qn > 0 && q[0] == '.')
            buf_append_char(out, '.');
        buf_append(out, q, qn);
        buf_append(out, "\r\n", 2);
        if (in_header) {
            if (content == 0)
                in_header = false;
        } else {
            body++;
        }
        p += n + (lf != NULL);
    }
    return out->len - before;
}
