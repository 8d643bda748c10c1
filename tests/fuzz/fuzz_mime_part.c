/*
 * Fuzz target for reference/proto/mime_part. The first bytes pick a section path; the rest is
 * a message. Invariants: every range found lies within the message and header ends where the
 * body starts; walking every part of every multipart terminates within the message.
 */
#include <stdint.h>
#include <stdlib.h>

#include "mime_part.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

static void fuzz_walk(const char *m, size_t len, const struct mime_entity *e, unsigned *budget)
{
    fuzz_check(e->hdr_start <= e->hdr_end && e->hdr_end == e->body_start && e->body_start <= e->body_end &&
               e->body_end <= len && e->depth <= MIME_DEPTH_MAX + 1);
    if (*budget == 0)
        return;
    (*budget)--;
    if (e->message) {
        struct mime_entity inner;
        mime_message_enter(m, e, &inner);
        fuzz_walk(m, len, &inner, budget);
    }
    size_t pos = 0;
    struct mime_entity part;
    size_t last = e->body_start;
    while (mime_multipart_next(m, e, &pos, &part)) {
        fuzz_check(part.hdr_start >= last && part.body_end <= e->body_end);
        last = part.body_end;
        fuzz_walk(m, len, &part, budget);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint32_t path[3] = {1u + data[0] % 4, 1u + data[1] % 4, 1u + data[2] % 4};
    size_t nparts = data[3] % 4;
    const char *m = (const char *)data + 4;
    size_t len = size - 4;
    struct mime_entity e;
    if (mime_section_find(m, len, path, nparts, &e))
        fuzz_check(e.body_end <= len && e.hdr_start <= e.body_start);
    mime_entity_parse(m, 0, len, false, 0, &e);
    unsigned budget = 1000;
    fuzz_walk(m, len, &e, &budget);
    return 0;
}
