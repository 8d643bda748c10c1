/*
 * Fuzz target for reference/proto/mbox_flags. Invariants: the header length is within the
 * input; a rewrite of any header parses back to exactly the flags written (plus "old"), and
 * rewriting that again changes nothing; keywords read are valid atoms; dates never crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mbox_flags.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned want = data[0] & MBOX_FLAGS_IMAP;
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    size_t hl = mbox_header_len(s, len);
    fuzz_check(hl <= len);
    struct buf kw, out, again, kw2;
    buf_init(&kw, 0);
    buf_init(&out, 0);
    buf_init(&again, 0);
    buf_init(&kw2, 0);
    mbox_flags_parse(s, hl, &kw);
    buf_append_char(&kw, '\0');
    for (char *p = kw.data, *e; *p; p = *e ? e + 1 : e) {
        e = strchr(p, ' ');
        if (!e)
            e = p + strlen(p);
        fuzz_check(mbox_keyword_valid(p, (size_t)(e - p)));
    }
    mbox_flags_rewrite(s, hl, want, kw.data, &out);
    size_t hl2 = mbox_header_len(out.data ? out.data : "", out.len);
    unsigned got = mbox_flags_parse(out.data ? out.data : "", hl2, &kw2);
    if (hl2 == out.len && memchr(s, '\n', hl) != NULL) {
        fuzz_check((got & MBOX_FLAGS_IMAP) == want && (got & MBOX_FLAG_OLD));
        mbox_flags_rewrite(out.data, out.len, want, kw.data, &again);
        fuzz_check(again.len == out.len && memcmp(again.data, out.data, out.len) == 0);
    }
    (void)mbox_from_date(s, len);
    buf_free(&kw);
    buf_free(&kw2);
    buf_free(&out);
    buf_free(&again);
    return 0;
}
