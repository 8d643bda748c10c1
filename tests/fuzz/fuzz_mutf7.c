/*
 * libFuzzer target: mutf7_decode over arbitrary bytes, mutf7_encode over arbitrary bytes.
 * Whatever decodes must encode back to exactly the input (only canonical forms are taken),
 * and whatever encodes must be printable ASCII that decodes back to the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    const char *in = (const char *)data;
    struct buf a, b;
    const char *why = NULL;
    buf_init(&a, 16384);
    buf_init(&b, 16384);
    if (mutf7_decode(in, size, &a, &why)) {
        if (!mutf7_encode(a.data ? a.data : "", a.len, &b, &why) || b.len != size || memcmp(b.data, in, size) != 0)
            __builtin_trap();
    } else if (!why) {
        __builtin_trap();
    }
    buf_reset(&a);
    buf_reset(&b);
    if (mutf7_encode(in, size, &a, &why)) {
        for (size_t i = 0; i < a.len; i++)
            if (a.data[i] < 0x20 || a.data[i] > 0x7e)
                __builtin_trap();
        if (!mutf7_decode(a.data ? a.data : "", a.len, &b, &why) || b.len != size || memcmp(b.data ? b.data : "", in, size) != 0)
            __builtin_trap();
    }
    buf_free(&a);
    buf_free(&b);
    return 0;
}
