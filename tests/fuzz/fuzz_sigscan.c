/*
 * Fuzz target for reference/proto/sigscan: the signature file parser, then matching the same
 * bytes. Invariants: a failure names "sigs:LINE:"; accepted signatures have valid names and
 * pattern lengths (4..4096, or 32 for sha256); a match returns a known name.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sigscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sigscan_db db;
    sigscan_db_init(&db);
    struct cfg_error err;
    if (!sigscan_db_parse(&db, "sigs", (const char *)data, size, &err))
        fuzz_check(strncmp(err.text, "sigs:", 5) == 0);
    for (size_t i = 0; i < db.n; i++) {
        const struct sigscan_sig *s = &db.sigs[i];
        fuzz_check(s->name[0] != '\0' && strlen(s->name) <= SIGSCAN_NAME_MAX);
        fuzz_check(s->kind == SIGSCAN_SHA256 ? s->len == 32 : (s->len >= 4 && s->len <= SIGSCAN_PATTERN_MAX));
    }
    const char *hit = sigscan_match(&db, (const char *)data, size);
    if (hit) {
        int known = 0;
        for (size_t i = 0; i < db.n; i++)
            known |= db.sigs[i].name == hit;
        fuzz_check(known);
    }
    sigscan_db_free(&db);
    return 0;
}
