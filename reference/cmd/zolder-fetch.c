/*
 * zolder-fetch: the poller standalone, like `fetchmail -vv -f FILE` (docs/fetch.md).
 * main() only: arguments, the rc file, the event loop.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/instance.h"
#include "fetch/fetch.h"
#include "fetchmailrc.h"
#include "fsutil.h"
#include "hostsfile.h"
#include "log.h"
#include "xalloc.h"
#include "zconf.h"

static void usage(void)
{
    fprintf(stderr,
            "usage: zolder-fetch [-v] [-c ZOLDER.CONF] [-f RCFILE] [-s ADDR:PORT] [-d STATE_DIR]\n"
            "                    [-H HOSTNAME] [-k]\n"
            "  -f RCFILE     fetchmail run-control file (default ~/.fetchmailrc)\n"
            "  -c FILE       take hostname, state_dir and fetch_smtp from zolderd's config\n"
            "  -s ADDR:PORT  zolder's SMTP listener (default fetch_smtp, else 127.0.0.1:25)\n"
            "  -d DIR        UID records under DIR/fetch (default: the folder of the rc's `set idfile`,\n"
            "                else state_dir, else ~/.zolder-fetch)\n"
            "  -H NAME       the name in the Received line (default hostname, else localhost)\n"
            "  -k            keep every message on the server (fetchmail -k)\n"
            "  -v            progress lines; -vv also the protocol at debug level\n"
            "exit: fetchmail's codes: 0 mail, 1 no mail, 2 socket, 3 auth, 4 protocol, 5 syntax,\n"
            "      6 rc file permissions, 7 server error, 9 lock busy, 10 SMTP, 11 DNS, 23 internal\n");
    exit(FETCH_PS_SYNTAX);
}

static int verbose;
static FILE *logfile; /* `set logfile`: progress and log lines are appended there too */
static bool use_syslog; /* `set syslog`: progress and log lines go to syslog (LOG_MAIL) */

static void print_progress(void *ctx, const char *line)
{
    (void)ctx;
    if (verbose)
        printf("zolder-fetch: %s\n", line);
    fflush(stdout);
    if (logfile) {
        fprintf(logfile, "zolder-fetch: %s\n", line);
        fflush(logfile);
    }
    if (use_syslog)
        syslog(LOG_INFO, "%s", line);
}

/* `set syslog`: each log line (log.h's "STAMP zolder-fetch[PID]: LEVEL: text") to syslog,
 * with the level as its priority; syslogd adds its own stamp and pid. */
static void syslog_line(const char *line, void *ctx)
{
    (void)ctx;
    static const struct {
        const char *name;
        int prio;
    } levels[] = {{"]: debug: ", LOG_DEBUG}, {"]: info: ", LOG_INFO},
                  {"]: warning: ", LOG_WARNING}, {"]: error: ", LOG_ERR}};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        const char *at = strstr(line, levels[i].name);
        if (at) {
            syslog(levels[i].prio, "%s", at + strlen(levels[i].name));
            return;
        }
    }
    syslog(LOG_NOTICE, "%s", line);
}

/* The hosts table for the resolver: the config's hosts_file, else /etc/hosts (as
 * getaddrinfo would read it); NULL when there is none or it does not parse. */
static struct hostsfile *load_hosts(const char *path)
{
    char *data = NULL;
    size_t len = 0;
    if (fs_read_file(path, 64UL * 1024 * 1024, &data, &len) < 0)
        return NULL;
    struct hostsfile *hosts = NULL;
    struct cfg_error err;
    if (hostsfile_load(&hosts, path, data, len, &err) < 0) {
        fprintf(stderr, "zolder-fetch: %s (names go to DNS only)\n", err.text);
        hosts = NULL;
    }
    free(data);
    return hosts;
}

static int exit_status = FETCH_PS_NOMAIL;

static void on_done(void *ctx, const struct fetch_result *r)
{
    struct event_base *base = ctx;
    exit_status = r->status;
    for (size_t i = 0; i < r->naccounts; i++)
        if (r->accounts[i].status != FETCH_PS_SUCCESS && r->accounts[i].status != FETCH_PS_NOMAIL)
            fprintf(stderr, "zolder-fetch: %s: %s (exit %d)\n", r->accounts[i].label,
                    r->accounts[i].error, r->accounts[i].status);
    event_base_loopbreak(base);
}

int main(int argc, char **argv)
{
    const char *rcfile = NULL, *config = NULL, *smtp = NULL, *state_dir = NULL, *hostname = NULL;
    bool keep = false;
    int opt;
    while ((opt = getopt(argc, argv, "vf:c:s:d:H:k")) != -1) {
        switch (opt) {
        case 'v': verbose++; break;
        case 'f': rcfile = optarg; break;
        case 'c': config = optarg; break;
        case 's': smtp = optarg; break;
        case 'd': state_dir = optarg; break;
        case 'H': hostname = optarg; break;
        case 'k': keep = true; break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();
    log_init("zolder-fetch", stderr);
    log_set_level(verbose >= 2 ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
    signal(SIGPIPE, SIG_IGN);

    const char *home = getenv("HOME");
    struct passwd *pw = getpwuid(getuid());
    if (!home && pw)
        home = pw->pw_dir;
    char *rcdefault = NULL;
    if (!rcfile) {
        size_t n = strlen(home ? home : ".") + 16;
        rcdefault = xmalloc(n);
        snprintf(rcdefault, n, "%s/.fetchmailrc", home ? home : ".");
        rcfile = rcdefault;
    }

    struct zconf conf;
    memset(&conf, 0, sizeof conf);
    bool have_conf = false;
    if (config) {
        struct cfg_error err;
        if (!instance_load_config(config, &conf, &err)) {
            fprintf(stderr, "zolder-fetch: %s\n", err.text);
            zconf_free(&conf);
            free(rcdefault);
            return FETCH_PS_SYNTAX;
        }
        have_conf = true;
    }

    /* fetchmail refuses an rc file others may read: it holds passwords */
    char *data = NULL;
    size_t len = 0;
    char error[FETCHRC_ERROR_MAX + 64];
    int st = fetch_read_rc(rcfile, &data, &len, error, sizeof error);
    struct fetchrc *rc = NULL;
    if (st == FETCH_PS_SUCCESS) {
        rc = fetch_parse_rc(rcfile, data, len, error, sizeof error);
        explicit_bzero(data, len);
        free(data);
        if (!rc)
            st = FETCH_PS_SYNTAX;
    }
    if (st != FETCH_PS_SUCCESS) {
        fprintf(stderr, "zolder-fetch: %s\n", error);
        free(rcdefault);
        if (have_conf)
            zconf_free(&conf);
        return st;
    }
    if (rc->logfile && rc->logfile[0]) {
        /* fetchmail's `set logfile`: the session's lines are appended to FILE (stdout keeps
         * the -v progress lines, stderr the errors) */
        logfile = fopen(rc->logfile, "ae");
        if (!logfile) {
            fprintf(stderr, "zolder-fetch: set logfile %s: %s\n", rc->logfile, strerror(errno));
            exit(FETCH_PS_SYNTAX); /* a usage error, as a bad -s: nothing worth freeing first */
        }
        log_init("zolder-fetch", logfile);
        log_set_level(verbose >= 2 ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
    }
    if (rc->syslog) {
        /* fetchmail's `set syslog`: the session's lines to syslog's mail facility (stdout
         * keeps the -v progress lines, stderr the errors) */
        openlog("zolder-fetch", LOG_PID | LOG_NDELAY, LOG_MAIL);
        use_syslog = true;
        log_set_capture(syslog_line, NULL);
        log_set_level(verbose >= 2 ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
    }
    if (keep)
        for (size_t i = 0; i < rc->nservers; i++)
            for (size_t j = 0; j < rc->servers[i].nusers; j++)
                rc->servers[i].users[j].keep = true;

    struct fetch_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.hostname = hostname ? hostname : have_conf ? conf.hostname : "localhost";
    char *statedefault = NULL;
    if (!state_dir && rc->idfile && rc->idfile[0]) {
        /* fetchmail's `set idfile FILE`: where the UIDs are kept. zolder keeps one durable
         * record per account, so they go in FILE's folder, under fetch/ (-d still wins) */
        const char *slash = strrchr(rc->idfile, '/');
        size_t n = slash ? (size_t)(slash - rc->idfile) : 1;
        if (slash && n == 0)
            n = 1; /* "/FILE": the root folder */
        statedefault = xmalloc(n + 1);
        memcpy(statedefault, slash ? rc->idfile : ".", n);
        statedefault[n] = '\0';
        state_dir = statedefault;
    } else if (!state_dir && have_conf) {
        state_dir = conf.state_dir;
    } else if (!state_dir) {
        size_t n = strlen(home ? home : ".") + 20;
        statedefault = xmalloc(n);
        snprintf(statedefault, n, "%s/.zolder-fetch", home ? home : ".");
        state_dir = statedefault;
    }
    cfg.state_dir = state_dir;
    struct zconf_listen target;
    const char *smtp_text = smtp ? smtp
                            : have_conf && conf.fetch_smtp[0] ? conf.fetch_smtp
                            : have_conf && conf.nlisten ? conf.listen[0].text
                                                        : "127.0.0.1:25";
    if (!zconf_parse_listen(smtp_text, 25, &target)) {
        fprintf(stderr, "zolder-fetch: bad SMTP address %s\n", smtp_text);
        exit(FETCH_PS_SYNTAX); /* a usage error: nothing worth freeing first */
    }
    memcpy(&cfg.smtp, &target.sa, sizeof cfg.smtp);
    cfg.smtp_len = target.salen;
    cfg.handoff_sessions = have_conf ? (unsigned)conf.fetch_smtp_sessions : 8; /* zconf default */
    cfg.refused = have_conf && strcmp(conf.fetch_refused, "keep") == 0 ? FETCH_REFUSED_KEEP
                                                                       : FETCH_REFUSED_DELETE;
    cfg.invoking_user = pw ? pw->pw_name : "";
    cfg.progress = print_progress;

    struct event_base *base = event_base_new();
    if (!base) {
        fprintf(stderr, "zolder-fetch: cannot create an event base\n");
        return FETCH_PS_INTERNAL;
    }
    cfg.progress_ctx = base;
    /* names resolve without blocking, as zolderd's do: the hosts file, then c-ares against
     * -c's nameserver (the seed world's DNS) or /etc/resolv.conf (`dns = nodns`: the hosts
     * file only); getaddrinfo only when c-ares cannot be set up */
    struct zconf dnsconf;
    memset(&dnsconf, 0, sizeof dnsconf);
    dnsconf.dns = "canonify";
    dnsconf.nameserver = "";
    const struct zconf *dc = have_conf ? &conf : &dnsconf;
    struct hostsfile *hosts = load_hosts(have_conf && conf.hosts_file && conf.hosts_file[0]
                                             ? conf.hosts_file : "/etc/hosts");
    const char *dns_error = NULL;
    struct relay_dns *dns = relay_dns_new(base, dc, hosts, &dns_error);
    if (!dns)
        fprintf(stderr, "zolder-fetch: resolver: %s (using getaddrinfo, which blocks)\n",
                dns_error ? dns_error : "cannot set up");
    cfg.dns = dns;
    struct fetch_run *run = fetch_start(base, rc, &cfg, on_done, base);
    if (run)
        event_base_dispatch(base);
    if (dns)
        relay_dns_free(dns);
    hostsfile_free(hosts);
    if (logfile)
        fclose(logfile);
    if (use_syslog) {
        log_set_capture(NULL, NULL);
        closelog();
    }
    event_base_free(base);
    free(rcdefault);
    free(statedefault);
    if (have_conf)
        zconf_free(&conf);
    return exit_status;
}
