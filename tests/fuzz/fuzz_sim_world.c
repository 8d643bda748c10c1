/* libFuzzer target: the ispsim world file parser must never crash or leak on any bytes. */
#include <stddef.h>
#include <stdint.h>

#include "sim_world.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg_error err;
    struct sim_world *w = sim_world_parse("fuzz.world", (const char *)data, size, &err);
    if (w) {
        struct netaddr a, pub;
        if (netaddr_parse("127.0.3.10", &a))
            sim_world_public_of(w, &a, &pub);
        sim_world_mx_for_domain(w, "paprika");
        sim_world_mailbox_for(w, 0, "jan@paprika");
        sim_world_zone_of(w, "a.b.c");
        sim_world_free(w);
    }
    return 0;
}
