/*
 * Fuzz target for reference/proto/downgrade. Invariants: a success is 7-bit with CRLF line
 * ends only and is not empty; a refusal carries a reason and leaves the output empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "downgrade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    struct buf out;
    buf_init(&out, 0);
    const char *why = NULL;
    if (downgrade_7bit((const char *)data, size, &out, &why)) {
        fuzz_check(out.len > 0);
        for (size_t i = 0; i < out.len; i++) {
            unsigned char c = (unsigned char)out.data[i];
            fuzz_check(!(c & 0x80) && c != 0);
            if (c == '\n')
                fuzz_check(i > 0 && out.data[i - 1] == '\r');
        }
    } else {
        fuzz_check(why != NULL && out.len == 0);
    }
    buf_free(&out);
    return 0;
}
