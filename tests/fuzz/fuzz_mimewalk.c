/*
 * Fuzz target for reference/proto/mimewalk (and banned on every name it yields, and zipwalk
 * on every body that looks like a zip). Invariants: limits hold (parts, depth, decoded
 * bytes); every part has a content type; names are NUL-terminated strings; a banned verdict
 * carries a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"
#include "mimewalk.h"
#include "zipwalk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mimewalk_limits limits = {.max_depth = 8, .max_parts = 64, .max_header_bytes = 4096,
                                     .max_body_bytes = 1 << 20};
    struct zipwalk_limits zlimits = {.max_depth = 2, .max_entries = 32, .max_expanded = 1 << 20};
    static struct banned_list list;
    static int ready;
    if (!ready) {
        const char *error;
        fuzz_check(banned_list_parse(&list, BANNED_DEFAULT, &error));
        ready = 1;
    }
    struct mimewalk walk;
    mimewalk_run((const char *)data, size, &limits, &walk);
    fuzz_check(walk.nparts <= limits.max_parts);
    size_t body = 0;
    for (size_t i = 0; i < walk.nparts; i++) {
        const struct mimewalk_part *p = &walk.parts[i];
        fuzz_check(p->content_type != NULL && p->depth <= limits.max_depth);
        fuzz_check(p->nnames <= MIMEWALK_NAMES_MAX);
        body += p->body.len;
        for (size_t k = 0; k < p->nnames; k++) {
            struct banned_verdict v;
            if (banned_check(&list, p->names[k], &v))
                fuzz_check(v.why != NULL);
        }
        if (zipwalk_is_archive(p->body.data, p->body.len)) {
            struct zipwalk z;
            zipwalk_run(p->body.data, p->body.len, &zlimits, &z);
            size_t expanded = 0;
            for (size_t k = 0; k < z.nentries; k++)
                expanded += z.entries[k].data.len;
            fuzz_check(expanded <= zlimits.max_expanded && z.nentries <= zlimits.max_entries);
            zipwalk_free(&z);
        }
    }
    fuzz_check(body <= limits.max_body_bytes);
    mimewalk_free(&walk);
    return 0;
}
