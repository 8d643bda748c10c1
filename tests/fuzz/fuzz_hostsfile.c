/* libFuzzer target: hostsfile_load over arbitrary bytes, then lookups both ways. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hostsfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hostsfile *h;
    struct cfg_error err;
    if (hostsfile_load(&h, "fuzz", (const char *)data, size, &err) < 0) {
        if (strncmp(err.text, "fuzz:", 5) != 0)
            __builtin_trap();
        return 0;
    }
    static const char *const names[] = {"localhost", "zolder.thuis.", "ECS", "", "."};
    static const char *const ips[] = {"127.0.0.1", "::1", "::ffff:127.0.1.5", "2001:db8::5"};
    struct netaddr addrs[3];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (hostsfile_lookup_name(h, names[i], AF_UNSPEC, addrs, 3) > 3)
            __builtin_trap();
        hostsfile_lookup_name(h, names[i], AF_INET6, addrs, 1);
    }
    for (size_t i = 0; i < sizeof ips / sizeof ips[0]; i++) {
        struct netaddr a;
        if (!netaddr_parse(ips[i], &a))
            __builtin_trap();
        const char *n = hostsfile_lookup_addr(h, &a);
        if (n && !n[0])
            __builtin_trap();
    }
    hostsfile_free(h);
    return 0;
}
