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

/* zolderd -c FILE -t: config and every map it names. 0 ok, 1 with the error printed. */
int daemon_check(const char *path);
/* zolderd -c FILE: runs in the foreground until SIGTERM/SIGINT. Returns the exit status. */
int daemon_run(const char *path);

#endif
