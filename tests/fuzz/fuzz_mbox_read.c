/*
 * Fuzz target for reference/proto/mbox_read. Invariants: scanning whole and in the pieces
 * the first byte chooses gives the same messages; messages tile the file from the first one
 * to the end; each message's export has exactly the scanned size; content lies in the span.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mbox_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MSGS 64

struct fuzz_seen {
    struct mbox_scan_msg m[FUZZ_MSGS];
    size_t n;
};

static void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

static void fuzz_end(void *ctx, const struct mbox_scan_msg *m)
{
    struct fuzz_seen *s = ctx;
    if (s->n < FUZZ_MSGS)
        s->m[s->n] = *m;
    s->n++;
}

static void fuzz_scan(const char *p, size_t len, size_t step, struct fuzz_seen *s)
{
    struct mbox_scan_callbacks cb = {.ctx = s, .end = fuzz_end};
    struct mbox_scan sc;
    memset(s, 0, sizeof *s);
    mbox_scan_init(&sc, &cb);
    for (size_t i = 0; i < len; i += step)
        mbox_scan_feed(&sc, p + i, len - i < step ? len - i : step);
    mbox_scan_finish(&sc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 13) + 1;
    const char *p = (const char *)data + 1;
    size_t len = size - 1;
    static struct fuzz_seen whole, split;
    fuzz_scan(p, len, len ? len : 1, &whole);
    fuzz_scan(p, len, step, &split);
    fuzz_check(whole.n == split.n);
    size_t n = whole.n < FUZZ_MSGS ? whole.n : FUZZ_MSGS;
    fuzz_check(memcmp(whole.m, split.m, n * sizeof whole.m[0]) == 0);
    for (size_t i = 0; i < n; i++) {
        const struct mbox_scan_msg *m = &whole.m[i];
        fuzz_check(m->from_len + m->content_len <= m->span);
        fuzz_check(m->offset + m->span <= len);
        if (i + 1 < whole.n && i + 1 < FUZZ_MSGS)
            fuzz_check(m->offset + m->span == whole.m[i + 1].offset);
        if (i + 1 == whole.n)
            fuzz_check(m->offset + m->span == len);
        struct buf out;
        buf_init(&out, 0);
        size_t got = mbox_export(p + m->offset + m->from_len, (size_t)m->content_len, 0, -1, &out);
        fuzz_check(got == m->size && out.len == got);
        buf_reset(&out);
        mbox_export(p + m->offset + m->from_len, (size_t)m->content_len, MBOX_EXPORT_DOTSTUFF, 1, &out);
        /* dot-stuffed output never holds a lone "." line */
        fuzz_check(out.len < 3 || memcmp(out.data, ".\r\n", 3) != 0);
        fuzz_check(strstr(out.data ? out.data : "", "\r\n.\r\n") == NULL);
        buf_free(&out);
    }
    return 0;
}
