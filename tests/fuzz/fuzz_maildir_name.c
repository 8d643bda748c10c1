/*
 * libFuzzer target: maildir_name_parse over arbitrary bytes. Whatever parses must make a
 * name again (same key, same flags, keyword letters and other letters) that parses to the
 * same parts.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "maildir_name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024)
        return 0;
    const char *in = (const char *)data;
    struct maildir_name a, b;
    if (!maildir_name_parse(in, size, &a))
        return 0;
    if (a.key_len == 0 || a.key_len > size)
        __builtin_trap();
    char out[MAILDIR_NAME_MAX + 1];
    size_t n = maildir_name_make(in, a.key_len, a.flags, a.letters, a.other, out, sizeof out);
    if (n == 0)
        return 0; /* key plus info too long: the store keeps the old name */
    if (strlen(out) != n || !maildir_name_parse(out, n, &b) || !b.has_info || b.key_len != a.key_len ||
        memcmp(out, in, a.key_len) != 0 || b.flags != a.flags || b.letters != a.letters || a.letters >= (1u << 26) ||
        strcmp(b.other, a.other) != 0 || b.size != a.size ||
        b.vsize != a.vsize)
        __builtin_trap();
    return 0;
}
