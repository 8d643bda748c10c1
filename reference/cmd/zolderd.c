/* zolderd: the zolder mail server. main() only: arguments, then daemon_run(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/daemon.h"
#include "core/instance.h"
#include "log.h"

static void usage(void)
{
    fprintf(stderr, "usage: zolderd -c FILE [-t | -n]\n"
                    "  -c FILE  config file (zolder.conf)\n"
                    "  -t       check the config and every map it names, then exit 0 or 1\n"
                    "  -n       print the effective config\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    int check = 0, print = 0, opt;
    while ((opt = getopt(argc, argv, "c:tn")) != -1) {
        switch (opt) {
        case 'c': config = optarg; break;
        case 't': check = 1; break;
        case 'n': print = 1; break;
        default: usage();
        }
    }
    if (!config || optind != argc)
        usage();
    log_init("zolderd", stderr);
    if (check)
        return daemon_check(config);
    if (print) {
        struct zconf conf;
        struct cfg_error err;
        if (!instance_load_config(config, &conf, &err)) {
            fprintf(stderr, "zolderd: %s\n", err.text);
            zconf_free(&conf);
            return 1;
        }
        struct buf out;
        buf_init(&out, 0);
        zconf_print(&conf, &out);
        fputs(out.data ? out.data : "", stdout);
        buf_free(&out);
        zconf_free(&conf);
        return 0;
    }
    return daemon_run(config);
}
