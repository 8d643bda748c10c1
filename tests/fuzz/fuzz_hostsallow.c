/* libFuzzer target: hostsallow_load over arbitrary bytes (used as both tables), decisions. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hostsallow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hostsallow *t;
    struct cfg_error err;
    if (hostsallow_load(&t, "fuzz", (const char *)data, size, &err) < 0) {
        if (strncmp(err.text, "fuzz:", 5) != 0)
            __builtin_trap();
        return 0;
    }
    static const char *const ips[] = {"127.0.0.1", "192.168.1.5", "192.168.10.5", "::1",
                                      "2001:db8::1", "::ffff:10.1.2.3"};
    static const char *const names[] = {"localhost", "ecs.thuis", "paprika", "x.example.org.",
                                        ""};
    static const char *const daemons[] = {"smtpd", "pop3d", "imapd", "sshd"};
    for (size_t i = 0; i < sizeof ips / sizeof ips[0]; i++) {
        struct netaddr addr;
        if (!netaddr_parse(ips[i], &addr))
            __builtin_trap();
        for (size_t d = 0; d < sizeof daemons / sizeof daemons[0]; d++) {
            struct hostsallow_decision dec;
            for (size_t j = 0; j < sizeof names / sizeof names[0]; j++)
                hostsallow_decide(t, t, daemons[d], &addr, names[j], &dec);
            hostsallow_decide(t, NULL, daemons[d], &addr, NULL, NULL);
            hostsallow_decide(NULL, t, daemons[d], &addr, NULL, &dec);
        }
    }
    hostsallow_denies_localhost(t, t, "smtpd", NULL);
    hostsallow_free(t);
    return 0;
}
