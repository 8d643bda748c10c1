/*
 * Fuzz target for reference/proto/addr. Invariants: a parsed path formats to text that parses
 * back to the same mailbox (same local part, domain, and the flags formatting cannot drop),
 * the bare mailbox parser agrees, consumed never exceeds the input, and fields are bounded.
 * The first input byte selects the parse options so both 8-bit settings are explored.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "buf.h"

static void fuzz_addr_check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned opts = (data[0] & 1) ? ADDR_OPT_ALLOW_8BIT : 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    struct mailaddr a, b;
    size_t consumed = 0;
    const char *error = NULL;
    if (!addr_parse_path_opts(text, len, opts, &a, &consumed, &error)) {
        fuzz_addr_check(error != NULL && a.local[0] == '\0' && a.domain[0] == '\0');
        return 0;
    }
    fuzz_addr_check(consumed >= 2 && consumed <= len && consumed <= ADDR_PATH_MAX);
    fuzz_addr_check(text[consumed - 1] == '>');
    fuzz_addr_check(strlen(a.local) <= ADDR_LOCAL_MAX && strlen(a.domain) <= ADDR_DOMAIN_MAX);
    if (!(opts & ADDR_OPT_ALLOW_8BIT))
        fuzz_addr_check(!(a.flags & ADDR_F_8BIT));
    /* Domains are lower-case; a literal keeps only its "IPv6:" tag in RFC spelling. */
    for (const char *d = a.domain + ((a.flags & ADDR_F_LITERAL) && a.domain[1] == 'I' ? 5 : 0);
         *d; d++)
        fuzz_addr_check(!(*d >= 'A' && *d <= 'Z'));

    struct buf out;
    buf_init(&out, 0);
    buf_append_char(&out, '<');
    addr_format(&a, &out);
    buf_append_char(&out, '>');
    size_t consumed2 = 0;
    fuzz_addr_check(addr_parse_path_opts(out.data, out.len, opts, &b, &consumed2, &error));
    fuzz_addr_check(consumed2 == out.len);
    fuzz_addr_check(strcmp(a.local, b.local) == 0 && strcmp(a.domain, b.domain) == 0);
    unsigned keep = ~(unsigned)(ADDR_F_QUOTED | ADDR_F_SOURCE_ROUTE | ADDR_F_TRAILING_DOT);
    fuzz_addr_check((a.flags & keep) == (b.flags & keep));
    fuzz_addr_check(!(b.flags & (ADDR_F_SOURCE_ROUTE | ADDR_F_TRAILING_DOT)));

    if (!(a.flags & ADDR_F_NULL)) {
        /* The same text without brackets is a bare mailbox. */
        out.data[out.len - 1] = '\0';
        fuzz_addr_check(addr_parse_mailbox_opts(out.data + 1, opts, &b, &error));
        fuzz_addr_check(strcmp(a.local, b.local) == 0 && strcmp(a.domain, b.domain) == 0);
    }
    buf_free(&out);
    return 0;
}
