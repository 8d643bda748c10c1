/*
 * sim_linkd: the dial-up link on its sockets (docs/ispsim.md, "The dial-up link"). For every
 * host "via" a link it listens on the host's link address, on each port the host serves, and
 * forwards the bytes to the host from the link's customer address, applying the link's state
 * (down, up, dial-on-demand) and profile. The nameserver behind a link asks sim_linkd_gate
 * for each query. Records of kind "link"; link.* control verbs.
 */
#ifndef ZOLDER_SIM_LINKD_H
#define ZOLDER_SIM_LINKD_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "sim_json.h"

struct sim_run;
struct sim_linkd;

/* Creates every link of the world and its listeners (per its mode). -1 on a bind error. */
int sim_linkd_start(struct sim_run *run);
void sim_linkd_free(struct sim_run *run);
/* Back to the world's mode and profile: hangs up, zeroes the counters. */
void sim_linkd_reset(struct sim_run *run);
/*
 * A DNS packet of qlen bytes through link (the nameserver is behind it): -1 when the link is
 * down (no answer), else 0 with *delay_ms set (latency both ways, plus the dial when the line
 * was idle; a query dials on demand).
 */
int sim_linkd_gate(struct sim_run *run, int link, size_t qlen, unsigned *delay_ms);
/* Counts an answer of n bytes going back through the link. */
void sim_linkd_count_down(struct sim_run *run, int link, size_t n);
/* Handles link.up, link.down, link.dial, link.hangup, link.profile and link.stats; false for
 * other verbs. */
bool sim_linkd_control(struct sim_run *run, const char *verb, const struct sim_json_obj *req,
                       struct buf *out);

#endif
