/*
 * sendmail: the `sendmail` command of zolder (so mutt, cron and scripts can use it). main()
 * in reference/cmd/sendmail.c parses the command line (sendmail_args_parse) and calls
 * sendmail_run(); docs/commands.md describes options and exit statuses.
 */
#ifndef ZOLDER_SENDMAIL_H
#define ZOLDER_SENDMAIL_H

#include "core/sendmail_client.h"

/*
 * Loads the config (-C, $ZOLDER_CONFIG, /etc/zolder/zolder.conf) and does what the mode
 * says, reading a message from stdin in the default mode. Returns the sysexits status.
 */
int sendmail_run(const struct sendmail_args *args);

#endif
