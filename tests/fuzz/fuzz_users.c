/*
 * libFuzzer target: users_load over arbitrary bytes, then lookups, and verification where it
 * is cheap. Hash costs come from the file (an admin's), so the fuzzer only runs crypt for the
 * fast legacy methods: a fuzzed "$6$rounds=999999999$" would only measure patience.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "users.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct users *u;
    struct cfg_error err;
    if (users_load(&u, "fuzz", (const char *)data, size, &err) < 0) {
        if (strncmp(err.text, "fuzz:", 5) != 0)
            __builtin_trap();
        return 0;
    }
    static const char *const names[] = {"root", "sjoerd", "a", "backup", "x.y-z_1"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const struct users_entry *e = users_lookup(u, names[i]);
        if (!e)
            continue;
        if (strcmp(e->name, names[i]) != 0 || !e->hash[0])
            __builtin_trap();
        if (e->can_login && e->weak_hash &&
            users_verify(u, names[i], "geheim") == USERS_AUTH_UNKNOWN_USER)
            __builtin_trap();
    }
    users_free(u);
    return 0;
}
