/* zolderctl: queue and daemon control for one zolder instance. main() only: arguments. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "core/ctl.h"
#include "core/instance.h"

static void usage(void)
{
    fprintf(stderr, "usage: zolderctl -c FILE COMMAND [QUEUEID...]\n"
                    "  mailq              list the queue (like Postfix's mailq)\n"
                    "  flush              ask zolderd for a queue run now\n"
                    "  reload             ask zolderd to reload its config and maps\n"
                    "  ping               check that zolderd answers\n"
                    "  hold ID...         put messages on hold (postsuper -h)\n"
                    "  release ID...      release held messages (postsuper -H)\n"
                    "  delete ID...       delete messages (postsuper -d)\n"
                    "  fetch              ask zolderd to poll its fetchmailrc now (waits for the end)\n"
                    "  quarantine list | show ID... | release ID... | delete ID...\n"
                    "                     the content filter's quarantine (docs/filter.md)\n"
                    "exit: 0 ok, 1 refused, 64 usage, 69 no queue yet, 75 zolderd not running,\n"
                    "      77 no permission, 78 bad config (docs/commands.md)\n");
    exit(EX_USAGE);
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "+c:")) != -1) {
        switch (opt) {
        case 'c': config = optarg; break;
        default: usage();
        }
    }
    /* content filter: zolderctl quarantine SUBCOMMAND [ID...] */
    if (config && optind < argc && strcmp(argv[optind], "quarantine") == 0) {
        struct zconf qconf;
        struct cfg_error qerr;
        if (!instance_load_config(config, &qconf, &qerr)) {
            fprintf(stderr, "zolderctl: %s\n", qerr.text);
            zconf_free(&qconf);
            return EX_CONFIG;
        }
        int qrc = ctl_quarantine(&qconf, "zolderctl", argv + optind + 1, (size_t)(argc - optind - 1));
        zconf_free(&qconf);
        if (qrc == EX_USAGE)
            usage();
        return qrc;
    }
    enum ctl_verb verb = 0;
    if (!config || optind >= argc || !ctl_verb_parse(argv[optind], &verb))
        usage();
    size_t nids = (size_t)(argc - optind - 1);
    if (ctl_verb_takes_ids(verb) != (nids > 0))
        usage();
    struct zconf conf;
    struct cfg_error err;
    if (!instance_load_config(config, &conf, &err)) {
        fprintf(stderr, "zolderctl: %s\n", err.text);
        zconf_free(&conf);
        return EX_CONFIG;
    }
    int rc = ctl_run(&conf, "zolderctl", verb, argv + optind + 1, nids);
    zconf_free(&conf);
    return rc;
}
