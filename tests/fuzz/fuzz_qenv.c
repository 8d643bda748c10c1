/*
 * libFuzzer target: the queue file envelope parser. Invariant: a parsed envelope written out
 * again parses to the same envelope, and its status/attempt offsets point at the fields.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qenv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_id[] = "20QKBSX000THV273";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct queue_envelope env, again;
    size_t off, off2;
    const char *error;
    if (queue_envelope_parse((const char *)data, size, fuzz_id, &env, &off, &error) < 0)
        return 0;
    if (off > size)
        __builtin_trap();
    struct buf out;
    buf_init(&out, 0);
    queue_envelope_format(&out, fuzz_id, &env);
    if (queue_envelope_parse(out.data, out.len, fuzz_id, &again, &off2, &error) < 0)
        __builtin_trap();
    if (off2 != out.len || again.nrcpts != env.nrcpts || strcmp(again.sender, env.sender) != 0 ||
        strcmp(again.helo, env.helo) != 0 || again.attempts != env.attempts ||
        again.warned != env.warned || again.next_attempt != env.next_attempt || again.retry_off < 0 ||
        out.data[again.retry_off] != 'X')
        __builtin_trap();
    for (size_t i = 0; i < again.nrcpts; i++) {
        const struct queue_rcpt *r = &again.rcpts[i];
        if (strcmp(r->addr, env.rcpts[i].addr) != 0 || out.data[r->status_off] != r->status ||
            (size_t)r->attempt_off + 16 > out.len)
            __builtin_trap();
    }
    queue_envelope_free(&again);
    queue_envelope_free(&env);
    buf_free(&out);
    return 0;
}
