/*
 * Fuzz target for the vacation state's pruning (reference/proto/vacation.c). The first byte
 * is DAYS (1-256), the second the cap in KiB (0-255, 0: 64 bytes), the rest the state file.
 * Invariants: the output fits the cap and is what the stats say; every line reads back with
 * one line per sender, none DAYS old; for a sender kept, vacation_last is what it was; when
 * nothing was capped, no sender's "answered recently" decision changes; a second prune of
 * the output keeps it as it is.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "vacation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define fuzz_check(cond)                                               \
    do {                                                               \
        if (!(cond)) {                                                 \
            fprintf(stderr, "fuzz_vacation.c:%d: %s\n", __LINE__, #cond); \
            abort();                                                   \
        }                                                              \
    } while (0)

static bool recent(time_t last, time_t now, unsigned days)
{
    return last > 0 && now - last < (time_t)days * 86400;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned days = (unsigned)data[0] + 1;
    size_t max_bytes = data[1] ? (size_t)data[1] * 1024 : 64;
    const char *state = (const char *)data + 2;
    size_t len = size - 2;
    const time_t now = 1000000;
    struct buf out;
    buf_init(&out, 0);
    struct vacation_prune_stats st;
    vacation_prune(state, len, now, days, max_bytes, &out, &st);
    fuzz_check(out.len == st.kept_bytes && out.len <= max_bytes);
    fuzz_check(st.stale + st.capped <= st.lines);
    const char *o = out.data ? out.data : "";
    fuzz_check(out.len == 0 || o[out.len - 1] == '\n');
    /* each output line: a sender once, recent, with the input's last time */
    for (const char *p = o; p < o + out.len;) {
        const char *nl = memchr(p, '\n', (size_t)(o + out.len - p));
        fuzz_check(nl != NULL);
        const char *sp = memchr(p, ' ', (size_t)(nl - p));
        fuzz_check(sp != NULL && sp + 1 < nl);
        char sender[VACATION_LINE_MAX];
        size_t sl = (size_t)(nl - sp - 1);
        fuzz_check(sl < sizeof sender);
        memcpy(sender, sp + 1, sl);
        sender[sl] = '\0';
        if (!memchr(sender, '\0', sl)) {
            time_t t = vacation_last(o, out.len, sender);
            fuzz_check(recent(t, now, days) || t > now);
            fuzz_check(t == vacation_last(state, len, sender));
        }
        p = nl + 1;
    }
    /* nothing capped: the senders of the input get the same decision */
    if (st.capped == 0) {
        for (const char *p = state; p < state + len;) {
            const char *nl = memchr(p, '\n', (size_t)(state + len - p));
            const char *le = nl ? nl : state + len;
            const char *sp = memchr(p, ' ', (size_t)(le - p));
            if (sp && (size_t)(le - sp - 1) < VACATION_SENDER_MAX && le > sp + 1) {
                char sender[VACATION_LINE_MAX];
                size_t sl = (size_t)(le - sp - 1);
                memcpy(sender, sp + 1, sl);
                sender[sl] = '\0';
                if (strlen(sender) == sl && !strchr(sender, '\r'))
                    fuzz_check(recent(vacation_last(state, len, sender), now, days) ==
                               recent(vacation_last(o, out.len, sender), now, days));
            }
            p = le + 1;
        }
    }
    struct buf again;
    buf_init(&again, 0);
    struct vacation_prune_stats st2;
    vacation_prune(o, out.len, now, days, max_bytes, &again, &st2);
    fuzz_check(st2.stale == 0 && st2.capped == 0 && again.len == out.len &&
               (out.len == 0 || memcmp(again.data, o, out.len) == 0));
    buf_free(&again);
    buf_free(&out);
    return 0;
}
