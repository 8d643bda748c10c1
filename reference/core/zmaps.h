/*
 * zmaps: the lookup tables one zolderd instance loads from its config (users, aliases,
 * access map, hosts.allow/hosts.deny, hosts file), and the adapters that hand them to the
 * SMTP service (struct smtpd_maps) and to delivery (struct deliver_resolver).
 * A reload loads a whole new set first and swaps only when every file parsed.
 */
#ifndef ZOLDER_ZMAPS_H
#define ZOLDER_ZMAPS_H

#include <stdbool.h>

#include "cfglex.h"
#include "deliver/deliver.h"
#include "hostsfile.h"
#include "smtpd/maps.h"
#include "zconf.h"

struct zmaps;

/* Loads every map the config names. NULL with err (FILE:LINE: ...) on the first bad one. */
struct zmaps *zmaps_load(const struct zconf *conf, struct cfg_error *err);
/* The config the maps read (mail_dir, local domains) now lives at conf: a reload loads the
 * maps against a fresh config and then moves that config into place. */
void zmaps_set_conf(struct zmaps *m, const struct zconf *conf);
void zmaps_free(struct zmaps *maps);
void zmaps_smtpd(struct zmaps *maps, struct smtpd_maps *out);
void zmaps_resolver(struct zmaps *maps, struct deliver_resolver *out);
/* The hosts file (hosts_file), or NULL when none is configured. */
const struct hostsfile *zmaps_hosts(const struct zmaps *maps);
/* The seed's pitfall: true when hosts.allow/hosts.deny would refuse 127.0.0.1 for smtpd. */
bool zmaps_localhost_denied(const struct zmaps *maps);

#endif
