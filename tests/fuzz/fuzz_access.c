/* libFuzzer target: access_load over arbitrary bytes, then every kind of lookup. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "access.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct access *a;
    struct cfg_error err;
    if (access_load(&a, "fuzz", (const char *)data, size, &err) < 0) {
        if (strncmp(err.text, "fuzz:", 5) != 0)
            __builtin_trap();
        return 0;
    }
    static const char *const ips[] = {"192.168.1.5", "192.168.10.5", "10.1.2.3", "::1",
                                      "2001:db8::1", "::ffff:127.0.0.1"};
    static const char *const names[] = {"mail.example.com", "example.com.", "lan", ""};
    static const char *const mails[] = {"spammer@example.com", "postmaster", "", "a@b.c.",
                                        "@example.com", "x@[10.0.0.1]"};
    struct access_verdict v;
    for (size_t i = 0; i < sizeof ips / sizeof ips[0]; i++) {
        struct netaddr addr;
        if (!netaddr_parse(ips[i], &addr))
            __builtin_trap();
        for (size_t j = 0; j < sizeof names / sizeof names[0]; j++)
            if (access_check_connect(a, &addr, names[j], &v) == ACCESS_ERROR && !v.text)
                __builtin_trap();
        access_check_connect(a, &addr, NULL, NULL);
    }
    for (size_t i = 0; i < sizeof mails / sizeof mails[0]; i++) {
        access_check_from(a, mails[i], &v);
        access_check_to(a, mails[i], &v);
    }
    access_free(a);
    return 0;
}
