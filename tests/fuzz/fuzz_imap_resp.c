/*
 * Fuzz target for reference/proto/imap_resp. Invariants: a response is never longer than the
 * input; a FETCH body lies inside it; feeding a growing prefix (as a socket would) gives the
 * same first response as the whole input; search numbers iterate to the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap_resp.h"

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
    size_t pos = 0;
    for (int i = 0; i < 64 && pos < size; i++) {
        struct imap_resp r;
        size_t used, want;
        enum imap_resp_result res = imap_resp_parse(in + pos, size - pos, &used, &want, &r, &err);
        if (res != IMAP_RESP_OK) {
            fuzz_check(res == IMAP_RESP_ERROR || want > size - pos);
            break;
        }
        fuzz_check(used > 0 && used <= size - pos);
        if (r.body)
            fuzz_check(r.body >= in + pos && r.body + r.body_len <= in + pos + used);
        size_t sp = 0;
        unsigned long n;
        while (imap_resp_search_next(&r, &sp, &n))
            fuzz_check(sp <= r.search_len);
        if (i == 0) {
            /* the same response, found by growing prefixes */
            size_t end = 0, want2 = 0, used2 = 0;
            struct imap_resp r2;
            enum imap_resp_result res2 = IMAP_RESP_NEED_MORE;
            while (res2 == IMAP_RESP_NEED_MORE && end < size) {
                end = want2 > end + 1 ? want2 : end + 1;
                if (end > size)
                    end = size;
                res2 = imap_resp_parse(in, end, &used2, &want2, &r2, &err);
            }
            fuzz_check(res2 == IMAP_RESP_OK && used2 == used && r2.uid == r.uid &&
                       r2.body_len == r.body_len && r2.kind == r.kind);
        }
        pos += used;
    }
    return 0;
}
