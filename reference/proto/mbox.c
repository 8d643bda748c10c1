/*
 * mbox: mboxrd writing and From_ line recognition (see mbox.h).
 *
 * DESCRIPTION
 *   The quoter is a byte-driven state machine, so its output depends only on the bytes fed,
 *   never on how they were split into chunks. Only two things are ever held back between
 *   calls: a CR (is it the first half of CRLF?) and up to four bytes of "From" at the start
 *   of a line (is this a line to quote?). A run of '>' at the start of a line is written as it
 *   comes: adding the extra '>' after the run gives the same bytes as adding it before.
 *
 * STANDARDS
 *   RFC 4155 (application/mbox; the From_ line), the mboxrd variant of the format as mutt,
 *   procmail and Dovecot read it (reading strips one '>' from ^>+From_).
 *
 * SECURITY
 *   Message bytes are untrusted: a message must never be able to start a new message in the
 *   mailbox, so no output line begins with "From " except the separator we write. The sender
 *   in the From_ line is bounded and stripped of anything that would split the line.
 */
#include "mbox.h"

#include <ctype.h>
#include <string.h>

#include "timefmt.h"

#define MBOX_SENDER_MAX 512

enum mbox_quoter_state {
    MBOX_Q_LINE_START, /* in the ^>* run or the "From" prefix of a line */
    MBOX_Q_BODY,       /* past the point where the line could need quoting */
};

static const char mbox_from_[] = "From ";

void mbox_from_line(struct buf *out, const char *sender, time_t when)
{
    char date[64];
    buf_append_str(out, "From ");
    if (sender == NULL || sender[0] == '\0' || strcmp(sender, "<>") == 0) {
        buf_append_str(out, "MAILER-DAEMON");
    } else {
        /* Readers split the line at spaces; an 8-bit or control byte has no business here. */
        size_t n = strnlen(sender, MBOX_SENDER_MAX);
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)sender[i];
            char o = (char)c;
            if (c <= 32 || c >= 127)
                o = '_';
            buf_append_char(out, o);
        }
    }
    timefmt_mbox(when, date, sizeof date);
    buf_printf(out, " %s\n", date);
}

void mbox_quoter_init(struct mbox_quoter *q)
{
    memset(q, 0, sizeof *q);
    q->state = MBOX_Q_LINE_START;
    q->at_line_start = true;
}

static void mbox_out(struct mbox_quoter *q, struct buf *out, const char *p, size_t n)
{
    if (n == 0)
        return;
    buf_append(out, p, n);
    q->at_line_start = p[n - 1] == '\n';
}

static void mbox_flush_pending(struct mbox_quoter *q, struct buf *out)
{
    mbox_out(q, out, q->pending, q->npending);
    q->npending = 0;
}

/* One byte that is not a line end. */
static void mbox_content(struct mbox_quoter *q, struct buf *out, char c)
{
    if (q->state == MBOX_Q_LINE_START) {
        if (q->npending == 0 && c == '>') {
            mbox_out(q, out, &c, 1);
            return;
        }
        if (c == mbox_from_[q->npending]) {
            if (q->npending + 1 == sizeof mbox_from_ - 1) {
                mbox_out(q, out, ">From ", 6);
                q->npending = 0;
                q->state = MBOX_Q_BODY;
                return;
            }
            q->pending[q->npending++] = c;
            return;
        }
        mbox_flush_pending(q, out);
        q->state = MBOX_Q_BODY;
    }
    mbox_out(q, out, &c, 1);
}

static void mbox_newline(struct mbox_quoter *q, struct buf *out)
{
    mbox_flush_pending(q, out);
    mbox_out(q, out, "\n", 1);
    q->state = MBOX_Q_LINE_START;
}

void mbox_quoter_feed(struct mbox_quoter *q, const char *data, size_t len, struct buf *out)
{
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (q->last_was_cr) {
            q->last_was_cr = false;
            if (c == '\n') {
                mbox_newline(q, out);
                continue;
            }
            mbox_content(q, out, '\r'); /* a lone CR is content, not a line end */
        }
        if (c == '\r') {
            q->last_was_cr = true;
        } else if (c == '\n') {
            mbox_newline(q, out); /* a bare LF ends a line as well */
        } else if (q->state == MBOX_Q_BODY) {
            /* Fast path: the rest of the line up to the next CR or LF goes out as is. */
            size_t j = i;
            while (j < len && data[j] != '\r' && data[j] != '\n')
                j++;
            mbox_out(q, out, data + i, j - i);
            i = j - 1;
        } else {
            mbox_content(q, out, c);
        }
    }
}

void mbox_quoter_finish(struct mbox_quoter *q, struct buf *out)
{
    if (q->last_was_cr) {
        q->last_was_cr = false;
        mbox_content(q, out, '\r');
    }
    mbox_flush_pending(q, out);
    if (!q->at_line_start)
        mbox_out(q, out, "\n", 1);
    buf_append_char(out, '\n');
    mbox_quoter_init(q);
}

/* --- reading -------------------------------------------------------------------------------- */

struct mbox_cursor {
    const char *p;
    const char *end;
};

/* Next space-separated token; runs of spaces separate too ("Nov  6" from asctime's %2d). */
static bool mbox_token(struct mbox_cursor *c, const char **tok, size_t *n)
{
    while (c->p < c->end && *c->p == ' ')
        c->p++;
    if (c->p == c->end)
        return false;
    *tok = c->p;
    while (c->p < c->end && *c->p != ' ')
        c->p++;
    *n = (size_t)(c->p - *tok);
    return true;
}

static bool mbox_in_list(const char *tok, size_t n, const char *const *list, size_t count)
{
    if (n != 3)
        return false;
    for (size_t i = 0; i < count; i++)
        if (memcmp(tok, list[i], 3) == 0)
            return true;
    return false;
}

static bool mbox_number(const char *tok, size_t n, size_t min_digits, size_t max_digits,
                        unsigned max, unsigned *v_r)
{
    if (n < min_digits || n > max_digits)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)tok[i]))
            return false;
        v = v * 10 + (unsigned)(tok[i] - '0');
    }
    *v_r = v;
    return v <= max;
}

/* hh:mm or hh:mm:ss */
static bool mbox_is_time(const char *tok, size_t n)
{
    unsigned v;
    if (n != 5 && n != 8)
        return false;
    if (!mbox_number(tok, 2, 2, 2, 23, &v) || tok[2] != ':' || !mbox_number(tok + 3, 2, 2, 2, 59, &v))
        return false;
    return n == 5 || (tok[5] == ':' && mbox_number(tok + 6, 2, 2, 2, 60, &v));
}

/* A time zone: "+0100", "-0500", or a 1-5 letter abbreviation such as "CET". */
static bool mbox_is_zone(const char *tok, size_t n)
{
    unsigned v;
    if (n == 5 && (tok[0] == '+' || tok[0] == '-'))
        return mbox_number(tok + 1, 4, 4, 4, 9999, &v);
    if (n < 1 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isupper((unsigned char)tok[i]))
            return false;
    return true;
}

bool mbox_is_from_line(const char *line, size_t len)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (len < 5 || memcmp(line, mbox_from_, 5) != 0)
        return false;
    struct mbox_cursor c = {.p = line + 5, .end = line + len};
    /* The sender: one token, except that a quoted local part may hold spaces (as mutt). */
    if (c.p == c.end || *c.p == ' ')
        return false;
    if (*c.p == '"') {
        const char *close = memchr(c.p + 1, '"', (size_t)(c.end - c.p - 1));
        if (close != NULL)
            c.p = close + 1;
    }
    while (c.p < c.end && *c.p != ' ')
        c.p++;

    /* The date: asctime "Www Mmm dd hh:mm[:ss] yyyy", a zone allowed before or after the year. */
    const char *tok;
    size_t n;
    unsigned v;
    if (!mbox_token(&c, &tok, &n) || !mbox_in_list(tok, n, days, 7))
        return false;
    if (!mbox_token(&c, &tok, &n) || !mbox_in_list(tok, n, months, 12))
        return false;
    if (!mbox_token(&c, &tok, &n) || !mbox_number(tok, n, 1, 2, 31, &v) || v == 0)
        return false;
    if (!mbox_token(&c, &tok, &n) || !mbox_is_time(tok, n))
        return false;
    if (!mbox_token(&c, &tok, &n))
        return false;
    bool zone = false;
    if (mbox_is_zone(tok, n)) {
        zone = true;
        if (!mbox_token(&c, &tok, &n))
            return false;
    }
    if (!mbox_number(tok, n, 4, 4, 9999, &v))
        return false;
    if (mbox_token(&c, &tok, &n)) {
        if (zone || !mbox_is_zone(tok, n))
            return false;
        if (mbox_token(&c, &tok, &n))
            return false;
    }
    return true;
}
