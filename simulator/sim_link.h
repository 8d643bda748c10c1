/*
 * sim_link: the pure parts of the dial-up link (docs/ispsim.md, "The dial-up link"): its
 * profile (latency, jitter, bandwidth, cuts, stall, slow close, dial delay, idle hang-up),
 * the seeded random numbers behind jitter and random cuts, the scanner that finds the final
 * dot of SMTP DATA in the client's byte stream, and the telefoontikken arithmetic. No I/O,
 * no clock: callers pass times. The event side lives in sim_linkd.c.
 */
#ifndef ZOLDER_SIM_LINK_H
#define ZOLDER_SIM_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_LINK_MS_MAX 600000u              /* latency, jitter, delays: at most 10 minutes */
#define SIM_LINK_BPS_MAX 10000000000ull      /* bandwidth: at most 10 Gbit/s */
#define SIM_LINK_BYTES_MAX (1ull << 40)      /* byte counts in a profile */

enum sim_link_mode { SIM_LINK_DOWN, SIM_LINK_UP, SIM_LINK_DEMAND };

struct sim_link_profile {
    unsigned latency_ms;          /* one way, each direction */
    unsigned jitter_ms;           /* added to latency: uniform 0..jitter, order kept */
    unsigned long long bandwidth; /* bits per second per direction, shared by all; 0: unlimited */
    unsigned long long cut_after; /* close a connection after N bytes (both directions); 0: off */
    bool cut_at_dot;              /* close after the client's final dot of SMTP DATA */
    unsigned cut_times;           /* cut_after/cut_at_dot hit at most N connections; 0: all */
    unsigned long long stall_after; /* stop forwarding after N bytes (connection stays open) */
    unsigned slow_close_ms;       /* delay passing on a close */
    unsigned random_cut;          /* per mille of connections cut at a random byte */
    unsigned long long random_cut_max; /* ... in 1..N (default 4096) */
    unsigned long long seed;      /* for jitter and random cuts */
    unsigned dial_delay_ms;       /* dial-on-demand: time from the first packet to online */
    unsigned idle_s;              /* dial-on-demand: hang up after N idle seconds; 0: never */
    unsigned tick_s;              /* one telefoontik per N seconds online (and one per dial) */
};

void sim_link_profile_default(struct sim_link_profile *p);
/*
 * Sets one profile key from text ("latency", "cut-after", also with '_' for '-'); numbers
 * are decimal, cut-at is "dot" or "none". false with err set for an unknown key or bad value.
 */
bool sim_link_profile_set(struct sim_link_profile *p, const char *key, const char *value,
                          char *err, size_t errsize);
bool sim_link_mode_parse(const char *text, enum sim_link_mode *mode_r);
const char *sim_link_mode_name(enum sim_link_mode mode);

/* splitmix64: the link's only source of randomness, seeded from the profile. */
uint64_t sim_link_rand(uint64_t *state);
/* 0..max inclusive (0 when max is 0). */
uint64_t sim_link_rand_upto(uint64_t *state, uint64_t max);

/* Finds the end of DATA (CRLF.CRLF) in a client's SMTP stream, across reads. */
struct sim_link_dot {
    unsigned state;               /* bytes of "\r\n.\r\n" matched so far */
};
/* Scans data; returns the count of bytes up to and including the end of DATA, or 0. */
size_t sim_link_dot_scan(struct sim_link_dot *d, const uint8_t *data, size_t len);

/* Microseconds to send n bytes at bw bits/s (0 when unlimited). */
uint64_t sim_link_transmit_us(unsigned long long bw, size_t n);
/* Telefoontikken for one session online for ms: one at the dial, one more each full tick_s. */
unsigned long long sim_link_ticks(unsigned long long ms, unsigned tick_s);

#endif
