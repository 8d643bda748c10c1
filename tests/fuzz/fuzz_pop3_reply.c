/*
 * Fuzz target for reference/proto/pop3_reply. Invariants: status parsing never consumes more
 * than given; a multi-line body fed whole and fed a byte at a time gives the same output and
 * the same end; UIDL/LIST/CAPA never overrun.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *err = NULL;
    size_t used;
    struct pop3_status st;
    enum pop3_reply_result r = pop3_status_parse(in, size, &used, &st, &err);
    fuzz_check(used <= size);
    fuzz_check(r != POP3_REPLY_OK || used > 0);
    fuzz_check(strlen(st.text) < sizeof st.text || r != POP3_REPLY_OK);

    struct pop3_multiline m1, m2;
    struct buf whole, bytes;
    buf_init(&whole, 1 << 20);
    buf_init(&bytes, 1 << 20);
    pop3_multiline_init(&m1);
    pop3_multiline_init(&m2);
    size_t used1;
    enum pop3_reply_result r1 = pop3_multiline_feed(&m1, in, size, &used1, &whole, &err);
    size_t start = 0, end = 0;
    enum pop3_reply_result r2 = POP3_REPLY_NEED_MORE;
    while (r2 == POP3_REPLY_NEED_MORE && end < size) {
        end++;
        size_t u;
        r2 = pop3_multiline_feed(&m2, in + start, end - start, &u, &bytes, &err);
        start += u;
    }
    if (r1 != POP3_REPLY_ERROR && r2 != POP3_REPLY_ERROR) {
        fuzz_check(r1 == r2);
        fuzz_check(whole.len == bytes.len && (whole.len == 0 || memcmp(whole.data, bytes.data, whole.len) == 0));
        if (r1 == POP3_REPLY_OK)
            fuzz_check(used1 == start);
    }
    unsigned caps = pop3_capa_parse(whole.data ? whole.data : "", whole.len);
    fuzz_check((caps & ~0x7fu) == 0);
    buf_free(&whole);
    buf_free(&bytes);

    unsigned long n, sz;
    char uid[POP3_UID_MAX + 1];
    if (pop3_uidl_line(in, size, &n, uid))
        fuzz_check(n >= 1 && strlen(uid) >= 1 && strlen(uid) <= POP3_UID_MAX);
    (void)pop3_list_line(in, size, &n, &sz);
    return 0;
}
