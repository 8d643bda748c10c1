/*
 * Fuzz target for reference/proto/uuwalk. Invariants: never more than max_bytes decoded,
 * never more than max_entries entries, names are strings of at most UUWALK_NAME_MAX bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uuwalk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct uuwalk_limits limits = {.max_entries = 16, .max_bytes = 1 << 16};
    struct uuwalk w;
    uuwalk_run((const char *)data, size, &limits, &w);
    size_t total = 0;
    for (size_t i = 0; i < w.nentries; i++) {
        fuzz_check(w.entries[i].name != NULL && strlen(w.entries[i].name) <= UUWALK_NAME_MAX);
        total += w.entries[i].data.len;
    }
    fuzz_check(total <= limits.max_bytes && w.nentries <= limits.max_entries);
    if (w.nentries > 0)
        fuzz_check(uuwalk_maybe((const char *)data, size));
    uuwalk_free(&w);
    return 0;
}
