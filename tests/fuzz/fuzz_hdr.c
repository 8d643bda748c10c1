/*
 * Fuzz target for reference/proto/hdr. Invariants: the fields hdr_next walks are contiguous,
 * in bounds, and their names and values lie inside them; hdr_count agrees with a walk;
 * masquerading changes nothing but the replaced domains (the output is as long as predicted),
 * and masquerading back restores the input up to the case of those domains.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "hdr.h"

static void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool fuzz_contains_nocase(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (strncasecmp(hay + i, needle, m) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    size_t hdr_len = hdr_section_len(msg, size);
    fuzz_check(hdr_len <= size);

    size_t pos = 0;
    unsigned received = 0;
    struct hdr_field f;
    while (hdr_next(msg, hdr_len, &pos, &f)) {
        fuzz_check(f.start < f.end && f.end <= hdr_len && f.end == pos);
        fuzz_check(f.name == msg + f.start && f.name_len > 0);
        fuzz_check(f.value > f.name + f.name_len && f.value[-1] == ':');
        fuzz_check(f.value + f.value_len <= msg + f.end);
        fuzz_check(memchr(f.name, ':', f.name_len) == NULL);
        if (f.name_len == 8 && strncasecmp(f.name, "Received", 8) == 0)
            received++;
    }
    fuzz_check(received == hdr_count(msg, size, "received"));
    /* What stops the walk is the separator, a non-field line, or the end. */
    fuzz_check(pos <= hdr_len);

    static const char *const hosts[] = {"ecs.thuis", "a"};
    static const char *const back_hosts[] = {"zz.q"};
    const char *to = "zz.q";
    if (fuzz_contains_nocase(msg, hdr_len, to))
        return 0;
    struct buf out, back;
    buf_init(&out, 0);
    buf_append_str(&out, "");
    unsigned n = hdr_masquerade(msg, hdr_len, hosts, 2, to, &out);
    /* Each replacement swaps a 9- or 1-byte domain for 4 bytes. */
    fuzz_check(out.len >= hdr_len - 5 * (size_t)n && out.len <= hdr_len + 3 * (size_t)n);
    if (n == 0)
        fuzz_check(out.len == hdr_len && memcmp(out.data, msg, hdr_len) == 0);
    /* The token structure is unchanged, so a second pass finds nothing left to rewrite... */
    struct buf again;
    buf_init(&again, 0);
    fuzz_check(hdr_masquerade(out.data, out.len, hosts, 2, to, &again) == 0);
    buf_free(&again);
    /* ...and rewriting back restores the same bytes wherever nothing was replaced. */
    buf_init(&back, 0);
    buf_append_str(&back, "");
    unsigned m = hdr_masquerade(out.data, out.len, back_hosts, 1, "ecs.thuis", &back);
    fuzz_check(m == n);
    if (back.len == hdr_len) {
        for (size_t i = 0; i < hdr_len; i++)
            fuzz_check(tolower((unsigned char)back.data[i]) == tolower((unsigned char)msg[i]));
    }
    buf_free(&out);
    buf_free(&back);
    return 0;
}
