/*
 * daemon: one zolderd instance: config, privileges, listeners, the event loop, the queue
 * runner, reload and the control socket (zolderctl). main() in reference/cmd/zolderd.c only
 * parses arguments and calls daemon_run().
 */
#ifndef ZOLDER_DAEMON_H
#define ZOLDER_DAEMON_H

#include <stdbool.h>

#include "cfglex.h"
#include "zconf.h"

/* Reads and parses FILE into conf (defaults first). false with err on any problem. */
bool daemon_load_config(const char *path, struct zconf *conf, struct cfg_error *err);
/* zolderd -c FILE -t: config and every map it names. 0 ok, 1 with the error printed. */
int daemon_check(const char *path);
/* zolderd -c FILE: runs in the foreground until SIGTERM/SIGINT. Returns the exit status. */
int daemon_run(const char *path);
/* The control socket path of an instance: STATE_DIR/zolderd.ctl (allocated). */
char *daemon_control_path(const struct zconf *conf);

#endif
