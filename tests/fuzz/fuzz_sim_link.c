/* libFuzzer target: the link's profile settings and DATA scanner on any bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sim_link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* "key=value" up to the first newline, then the scanner over the rest, in two halves */
    char line[128];
    size_t n = 0;
    while (n < size && n + 1 < sizeof line && data[n] != '\n')
        n++;
    memcpy(line, data, n);
    line[n] = '\0';
    char *eq = strchr(line, '=');
    struct sim_link_profile p;
    sim_link_profile_default(&p);
    char err[160];
    if (eq) {
        *eq = '\0';
        (void)sim_link_profile_set(&p, line, eq + 1, err, sizeof err);
    }
    const uint8_t *rest = data + n;
    size_t len = size - n;
    struct sim_link_dot d = {0};
    size_t half = len / 2;
    size_t k = sim_link_dot_scan(&d, rest, half);
    if (k > half)
        __builtin_trap();
    k = sim_link_dot_scan(&d, rest + half, len - half);
    if (k > len - half)
        __builtin_trap();
    uint64_t st = p.seed;
    (void)sim_link_rand_upto(&st, p.random_cut_max);
    (void)sim_link_transmit_us(p.bandwidth, len);
    (void)sim_link_ticks(p.cut_after, p.tick_s);
    return 0;
}
