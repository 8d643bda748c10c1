/* libFuzzer target: aliases_load over arbitrary bytes, then lookups and expansions. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aliases.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct aliases *a;
    struct cfg_error err;
    if (aliases_load(&a, "fuzz", (const char *)data, size, &err) < 0) {
        /* Every error must be a "file:line: ..." text. */
        if (strncmp(err.text, "fuzz:", 5) != 0)
            __builtin_trap();
        return 0;
    }
    static const char *const names[] = {"root", "postmaster", "a", "b", "ping", "x.y", "Root"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n;
        aliases_lookup(a, names[i], &n, NULL);
        struct aliases_result res;
        const char *error;
        aliases_expand(a, names[i], &res, &error);
        aliases_result_free(&res);
    }
    aliases_free(a);
    return 0;
}
