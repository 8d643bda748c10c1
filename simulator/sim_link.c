/* sim_link: the dial-up link's profile, random numbers and DATA scanner (see sim_link.h). */
#include "sim_link.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sim_link_profile_default(struct sim_link_profile *p)
{
    memset(p, 0, sizeof *p);
    p->random_cut_max = 4096;
    p->seed = 1;
    p->tick_s = 300;
}

static bool sim_link_number(const char *value, unsigned long long max, unsigned long long *v)
{
    if (!value || value[0] < '0' || value[0] > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(value, &end, 10);
    if (errno || *end || n > max)
        return false;
    *v = n;
    return true;
}

bool sim_link_profile_set(struct sim_link_profile *p, const char *key, const char *value,
                          char *err, size_t errsize)
{
    char k[32];
    size_t i;
    for (i = 0; key[i] && i + 1 < sizeof k; i++)
        k[i] = (char)(key[i] == '_' ? '-' : key[i]);
    k[i] = '\0';
    if (key[i]) {
        snprintf(err, errsize, "unknown link setting \"%.40s\"", key);
        return false;
    }
    if (strcmp(k, "cut-at") == 0) {
        if (value && strcmp(value, "dot") == 0) {
            p->cut_at_dot = true;
        } else if (value && strcmp(value, "none") == 0) {
            p->cut_at_dot = false;
        } else {
            snprintf(err, errsize, "cut-at must be dot or none");
            return false;
        }
        return true;
    }
    static const struct {
        const char *name;
        unsigned long long max;
    } keys[] = {
        {"latency", SIM_LINK_MS_MAX},     {"jitter", SIM_LINK_MS_MAX},
        {"bandwidth", SIM_LINK_BPS_MAX},  {"cut-after", SIM_LINK_BYTES_MAX},
        {"cut-times", 1000000},           {"stall-after", SIM_LINK_BYTES_MAX},
        {"slow-close", SIM_LINK_MS_MAX},  {"random-cut", 1000},
        {"random-cut-max", SIM_LINK_BYTES_MAX}, {"seed", UINT64_MAX},
        {"dial-delay", SIM_LINK_MS_MAX},  {"idle", 86400},
        {"tick", 86400},
    };
    for (size_t j = 0; j < sizeof keys / sizeof keys[0]; j++) {
        if (strcmp(k, keys[j].name) != 0)
            continue;
        unsigned long long v;
        if (!sim_link_number(value, keys[j].max, &v) ||
            ((strcmp(k, "random-cut-max") == 0 || strcmp(k, "tick") == 0) && v == 0)) {
            snprintf(err, errsize, "%s must be a number from %d to %llu", k,
                     strcmp(k, "random-cut-max") == 0 || strcmp(k, "tick") == 0, keys[j].max);
            return false;
        }
        switch (j) {
        case 0: p->latency_ms = (unsigned)v; break;
        case 1: p->jitter_ms = (unsigned)v; break;
        case 2: p->bandwidth = v; break;
        case 3: p->cut_after = v; break;
        case 4: p->cut_times = (unsigned)v; break;
        case 5: p->stall_after = v; break;
        case 6: p->slow_close_ms = (unsigned)v; break;
        case 7: p->random_cut = (unsigned)v; break;
        case 8: p->random_cut_max = v; break;
        case 9: p->seed = v; break;
        case 10: p->dial_delay_ms = (unsigned)v; break;
        case 11: p->idle_s = (unsigned)v; break;
        default: p->tick_s = (unsigned)v; break;
        }
        return true;
    }
    snprintf(err, errsize, "unknown link setting \"%.40s\"", key);
    return false;
}

bool sim_link_mode_parse(const char *text, enum sim_link_mode *mode_r)
{
    if (strcmp(text, "down") == 0)
        *mode_r = SIM_LINK_DOWN;
    else if (strcmp(text, "up") == 0)
        *mode_r = SIM_LINK_UP;
    else if (strcmp(text, "demand") == 0)
        *mode_r = SIM_LINK_DEMAND;
    else
        return false;
    return true;
}

const char *sim_link_mode_name(enum sim_link_mode mode)
{
    return mode == SIM_LINK_DOWN ? "down" : mode == SIM_LINK_UP ? "up" : "demand";
}

uint64_t sim_link_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t sim_link_rand_upto(uint64_t *state, uint64_t max)
{
    uint64_t r = sim_link_rand(state);
    return max == UINT64_MAX ? r : r % (max + 1);
}

size_t sim_link_dot_scan(struct sim_link_dot *d, const uint8_t *data, size_t len)
{
    static const uint8_t pat[] = {'\r', '\n', '.', '\r', '\n'};
    for (size_t i = 0; i < len; i++) {
        if (data[i] == pat[d->state])
            d->state++;
        else
            d->state = data[i] == '\r' ? 1 : 0;
        if (d->state == sizeof pat) {
            d->state = 2; /* the CRLF may start the next end-of-data */
            return i + 1;
        }
    }
    return 0;
}

uint64_t sim_link_transmit_us(unsigned long long bw, size_t n)
{
    if (bw == 0)
        return 0;
    return (uint64_t)((unsigned __int128)n * 8u * 1000000u / bw);
}

unsigned long long sim_link_ticks(unsigned long long ms, unsigned tick_s)
{
    unsigned long long per = (unsigned long long)(tick_s ? tick_s : 300) * 1000;
    return 1 + ms / per;
}
