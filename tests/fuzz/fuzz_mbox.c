/*
 * Fuzz target for reference/proto/mbox. Invariants: the quoter's output is the same for one
 * shot, byte-at-a-time and input-driven splits; no output line starts with "From " (or is a
 * From_ line by mbox_is_from_line); reading it back the mboxrd way (strip one '>' from
 * ^>+From ) gives the input with CRLF turned into LF, a final LF, and the blank line; and a
 * From_ line written for any sender is recognised as one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mbox.h"

static void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_quote(const char *in, size_t len, int mode, struct buf *out)
{
    struct mbox_quoter q;
    mbox_quoter_init(&q);
    buf_append_str(out, "");
    size_t pos = 0, k = 0;
    while (pos < len) {
        size_t n = len - pos;
        if (mode == 1)
            n = 1;
        else if (mode == 2) { /* chunk sizes 0-8 taken from the data; 0 only every other time */
            size_t c = (size_t)(unsigned char)in[k++ % len] % 9;
            n = c < n ? c : n;
            if (n == 0 && (k & 1))
                n = 1;
        }
        mbox_quoter_feed(&q, in + pos, n, out);
        pos += n;
    }
    mbox_quoter_finish(&q, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct buf one, bytes, split, want, back;
    buf_init(&one, 0);
    buf_init(&bytes, 0);
    buf_init(&split, 0);
    fuzz_quote(in, size, 0, &one);
    fuzz_quote(in, size, 1, &bytes);
    fuzz_quote(in, size, 2, &split);
    fuzz_check(one.len == bytes.len && memcmp(one.data, bytes.data, one.len) == 0);
    fuzz_check(one.len == split.len && memcmp(one.data, split.data, one.len) == 0);

    /* No line of the output is a message separator. */
    fuzz_check(one.len >= 1 && one.data[one.len - 1] == '\n');
    fuzz_check(size == 0 || (one.len >= 2 && one.data[one.len - 2] == '\n'));
    for (size_t start = 0; start < one.len;) {
        const char *nl = memchr(one.data + start, '\n', one.len - start);
        size_t end = (size_t)(nl - one.data);
        fuzz_check(end - start < 5 || memcmp(one.data + start, "From ", 5) != 0);
        fuzz_check(!mbox_is_from_line(one.data + start, end - start));
        start = end + 1;
    }

    /* Expected: CRLF -> LF, a final LF if missing, then the blank line. */
    buf_init(&want, 0);
    buf_append_str(&want, "");
    for (size_t i = 0; i < size; i++) {
        if (in[i] == '\r' && i + 1 < size && in[i + 1] == '\n')
            continue;
        buf_append_char(&want, in[i]);
    }
    if (want.len > 0 && want.data[want.len - 1] != '\n')
        buf_append_char(&want, '\n');
    buf_append_char(&want, '\n');
    /* Read back: drop one '>' from every ^>+From  line. */
    buf_init(&back, 0);
    buf_append_str(&back, "");
    for (size_t start = 0; start < one.len;) {
        const char *nl = memchr(one.data + start, '\n', one.len - start);
        size_t end = (size_t)(nl - one.data) + 1;
        size_t g = start;
        while (g < end && one.data[g] == '>')
            g++;
        bool quoted = g > start && end - g >= 5 && memcmp(one.data + g, "From ", 5) == 0;
        buf_append(&back, one.data + start + (quoted ? 1 : 0), end - start - (quoted ? 1 : 0));
        start = end;
    }
    fuzz_check(back.len == want.len && memcmp(back.data, want.data, want.len) == 0);

    /* Any sender gives a recognisable From_ line. */
    char sender[64];
    size_t n = size < sizeof sender - 1 ? size : sizeof sender - 1;
    memcpy(sender, in, n);
    sender[n] = '\0';
    struct buf from;
    buf_init(&from, 0);
    mbox_from_line(&from, sender, 1037484433);
    fuzz_check(from.len > 1 && memchr(from.data, '\n', from.len) == from.data + from.len - 1);
    fuzz_check(mbox_is_from_line(from.data, from.len - 1));
    /* and arbitrary lines never crash the recogniser */
    (void)mbox_is_from_line(in, size);

    buf_free(&from);
    buf_free(&one);
    buf_free(&bytes);
    buf_free(&split);
    buf_free(&want);
    buf_free(&back);
    return 0;
}
