/*
 * libFuzzer target: zolder.conf parsing. Invariants: every error names "file:line:", and a
 * parsed config printed with zconf_print parses again to the very same printout.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct zconf conf;
    struct cfg_error err;
    zconf_defaults(&conf, "/etc/zolder");
    if (!zconf_parse(&conf, "/etc/zolder/fuzz.conf", (const char *)data, size, &err)) {
        if (strncmp(err.text, "/etc/zolder/fuzz.conf:", 22) != 0)
            __builtin_trap();
        zconf_free(&conf);
        return 0;
    }
    zconf_validate(&conf, &err);
    struct buf first, second;
    buf_init(&first, 0);
    buf_init(&second, 0);
    zconf_print(&conf, &first);
    struct zconf again;
    zconf_defaults(&again, "/etc/zolder");
    if (!zconf_parse(&again, "/etc/zolder/fuzz.conf", first.data, first.len, &err))
        __builtin_trap();
    zconf_print(&again, &second);
    if (first.len != second.len || memcmp(first.data, second.data, first.len) != 0)
        __builtin_trap();
    buf_free(&first);
    buf_free(&second);
    zconf_free(&again);
    zconf_free(&conf);
    return 0;
}
