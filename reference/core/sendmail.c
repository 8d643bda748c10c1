/*
 * sendmail: the `sendmail` command (see sendmail.h): config, stdin, envelope, then the SMTP
 * hand-over in sendmail_smtp.c or a queue command shared with zolderctl.
 *
 * SECURITY: runs as whichever user invokes it and needs no privilege: it only reads its
 * config and stdin and talks SMTP to the instance like any client. No shell is ever run and
 * no input is passed to one. The message is read into memory, bounded by the instance's
 * message_size_limit (LF -> CRLF only grows it, so anything over the limit would be refused
 * by zolderd anyway).
 */
#include "sendmail.h"

#include <errno.h>
#include <gmime/gmime.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "core/ctl.h"
#include "core/instance.h"
#include "core/sendmail_smtp.h"
#include "xalloc.h"

#define SENDMAIL_PROG "sendmail"
#define SENDMAIL_READ_CHUNK 65536

/*
 * Reads the message from fd: to EOF, or (without ignore_dots) to a lone "." line, which
 * must end the read at once: someone typing at a terminal ends with "." and no EOF.
 * 0, -1 on a read error (errno), -2 when over max bytes.
 */
static int sendmail_read_input(int fd, bool ignore_dots, size_t max, struct buf *in)
{
    size_t scanned = 0; /* every complete line before this offset holds no lone "." */
    char chunk[SENDMAIL_READ_CHUNK];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        if (in->len + (size_t)n > max)
            return -2;
        buf_append(in, chunk, (size_t)n);
        if (ignore_dots)
            continue;
        /* Only complete lines: a "." at the end of a read may still become ".x". */
        const char *last_nl = memrchr(in->data + scanned, '\n', in->len - scanned);
        if (!last_nl)
            continue;
        size_t complete = (size_t)(last_nl - in->data) + 1;
        size_t cut = scanned + sendmail_input_cut(in->data + scanned, complete - scanned, false);
        if (cut < complete) {
            in->len = cut;
            in->data[cut] = '\0';
            return 0;
        }
        scanned = complete;
    }
    if (!ignore_dots) {
        in->len = scanned + sendmail_input_cut(in->data + scanned, in->len - scanned, false);
        if (in->data)
            in->data[in->len] = '\0';
    }
    return 0;
}

/* The envelope sender: -f (brackets optional, <> for none), else LOGIN@hostname. */
static char *sendmail_sender(const struct sendmail_args *args, const struct zconf *conf,
                             const struct passwd *pw)
{
    if (args->sender) {
        const char *s = args->sender;
        size_t n = strlen(s);
        char *bare = (n >= 2 && s[0] == '<' && s[n - 1] == '>') ? xstrndup(s + 1, n - 2)
                                                                : xstrdup(s);
        char *q = sendmail_qualify(bare, conf->hostname);
        free(bare);
        return q;
    }
    char login[64];
    if (pw && pw->pw_name && *pw->pw_name)
        snprintf(login, sizeof login, "%s", pw->pw_name);
    else
        snprintf(login, sizeof login, "uid%lu", (unsigned long)getuid());
    return sendmail_qualify(login, conf->hostname);
}

/* "Full Name <sender>" (RFC 2047-encoded when needed), or the bare sender. Allocated. */
static char *sendmail_from_value(const char *sender, const char *fullname)
{
    if (!fullname || !*fullname)
        return xstrdup(sender);
    InternetAddress *ia = internet_address_mailbox_new(fullname, sender);
    char *text = internet_address_to_string(ia, NULL, TRUE);
    char *out = xstrdup(text);
    g_free(text);
    g_object_unref(ia);
    return out;
}

static int sendmail_deliver(const struct sendmail_args *args, const struct zconf *conf)
{
    struct sendmail_rcpts rcpts = {NULL, 0};
    const char *why;
    int rc = EX_OK;
    char *sender = NULL, *from = NULL;
    struct buf in, msg;
    buf_init(&in, 0);
    buf_init(&msg, 0);

    for (size_t i = 0; i < args->nrcpts; i++) {
        if (sendmail_addr_list(args->rcpts[i], conf->hostname, &rcpts, &why) < 0) {
            fprintf(stderr, SENDMAIL_PROG ": %s: bad recipient: %s\n", args->rcpts[i], why);
            rc = EX_USAGE;
            goto out;
        }
    }
    if (!args->extract && rcpts.n == 0) {
        fprintf(stderr, SENDMAIL_PROG ": no recipients (name them, or use -t to take them "
                                      "from the message)\n");
        rc = EX_USAGE;
        goto out;
    }
    const struct passwd *pw = getpwuid(getuid());
    sender = sendmail_sender(args, conf, pw);
    if (*sender && !sendmail_addr_ok(sender)) {
        fprintf(stderr, SENDMAIL_PROG ": -f %s: not a usable sender address\n", sender);
        rc = EX_USAGE;
        goto out;
    }

    int r = sendmail_read_input(STDIN_FILENO, args->ignore_dots, conf->message_size_limit, &in);
    if (r == -2) {
        fprintf(stderr, SENDMAIL_PROG ": message too large (message_size_limit is %lu bytes); "
                        "not sent\n", conf->message_size_limit);
        rc = EX_DATAERR;
        goto out;
    }
    if (r < 0) {
        fprintf(stderr, SENDMAIL_PROG ": cannot read the message: %s\n", strerror(errno));
        rc = EX_IOERR;
        goto out;
    }

    if (*sender) {
        const char *fullname = args->fullname;
        char gecos[256] = "";
        if (!fullname && !args->sender && pw && pw->pw_gecos) {
            /* The first GECOS field is the full name, as Postfix's sendmail uses it. */
            snprintf(gecos, sizeof gecos, "%s", pw->pw_gecos);
            gecos[strcspn(gecos, ",")] = '\0';
            fullname = gecos;
        }
        from = sendmail_from_value(sender, fullname);
    }
    struct sendmail_header_opts opts = {args->extract, from, conf->hostname};
    if (sendmail_header_edit(in.data ? in.data : "", in.len, &opts, &msg, &rcpts, &why) < 0) {
        fprintf(stderr, SENDMAIL_PROG ": message header: %s; not sent\n", why);
        rc = EX_DATAERR;
        goto out;
    }
    if (rcpts.n == 0) {
        fprintf(stderr, SENDMAIL_PROG ": no recipient addresses found in the message header; "
                        "not sent\n");
        rc = EX_DATAERR;
        goto out;
    }
    struct sendmail_envelope env = {
        .sender = sender,
        .rcpts = rcpts.addrs,
        .nrcpts = rcpts.n,
        .body = args->body,
        .notify = args->notify,
        .ret = args->ret,
        .envid = args->envid,
    };
    rc = sendmail_smtp_send(conf, &env, msg.data ? msg.data : "", msg.len, SENDMAIL_PROG,
                            args->verbose);
out:
    buf_free(&in);
    buf_free(&msg);
    free(sender);
    free(from);
    sendmail_rcpts_free(&rcpts);
    return rc;
}

int sendmail_run(const struct sendmail_args *args)
{
    /* A vanished peer is an error we report, not a reason to die silently. */
    signal(SIGPIPE, SIG_IGN);
    const char *path = sendmail_config_path(args, getenv(SENDMAIL_CONFIG_ENV));
    struct zconf conf;
    struct cfg_error err;
    if (!instance_load_config(path, &conf, &err)) {
        fprintf(stderr, SENDMAIL_PROG ": %s\n", err.text);
        zconf_free(&conf);
        return EX_CONFIG;
    }
    int rc;
    switch (args->mode) {
    case SENDMAIL_MODE_PRINT: rc = ctl_mailq(&conf, SENDMAIL_PROG); break;
    case SENDMAIL_MODE_FLUSH: rc = ctl_flush(&conf, SENDMAIL_PROG); break;
    case SENDMAIL_MODE_ALIASES:
        fprintf(stderr, SENDMAIL_PROG ": nothing to rebuild: zolderd reads its aliases file "
                                      "itself (zolderctl reload after editing it)\n");
        rc = EX_OK;
        break;
    case SENDMAIL_MODE_SMTP:
        rc = sendmail_smtp_relay(&conf, STDIN_FILENO, STDOUT_FILENO, SENDMAIL_PROG);
        break;
    default:
        g_mime_init();
        rc = sendmail_deliver(args, &conf);
        g_mime_shutdown();
        break;
    }
    zconf_free(&conf);
    return rc;
}
