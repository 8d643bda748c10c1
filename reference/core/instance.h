/*
 * instance: what every zolder command (zolderd, zolderctl, sendmail) needs to find one
 * instance: its config file loaded over the defaults, and its control socket.
 */
#ifndef ZOLDER_INSTANCE_H
#define ZOLDER_INSTANCE_H

#include <stdbool.h>

#include "cfglex.h"
#include "zconf.h"

/* Reads and parses FILE into conf (defaults first). false with err on any problem. */
bool instance_load_config(const char *path, struct zconf *conf, struct cfg_error *err);
/* The control socket of an instance: STATE_DIR/zolderd.ctl (allocated). */
char *instance_control_path(const struct zconf *conf);

#endif
