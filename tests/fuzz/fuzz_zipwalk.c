/*
 * Fuzz target for reference/proto/zipwalk. Invariants: never more than max_expanded bytes
 * produced, never more than max_entries entries, depth within the limit, names are strings.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zipwalk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct zipwalk_limits limits = {.max_depth = 3, .max_entries = 64, .max_expanded = 1 << 20};
    struct zipwalk z;
    zipwalk_run((const char *)data, size, &limits, &z);
    size_t expanded = 0;
    for (size_t i = 0; i < z.nentries; i++) {
        fuzz_check(z.entries[i].name != NULL);
        fuzz_check(z.entries[i].depth >= 1 && z.entries[i].depth <= limits.max_depth);
        expanded += z.entries[i].data.len;
    }
    fuzz_check(expanded <= limits.max_expanded && z.nentries <= limits.max_entries);
    zipwalk_free(&z);
    return 0;
}
