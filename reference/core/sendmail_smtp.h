/*
 * sendmail_smtp: the SMTP side of the `sendmail` command. It hands a message to zolderd
 * "through the same path" every other client uses: an SMTP session to the instance's first
 * `listen` address. When that address is in 127/8 the socket is bound to 127.0.0.1 first, so
 * zolderd sees a local program and trusts it as Postfix trusts its own sendmail (relay,
 * Message-ID/Date completion), whatever loopback alias the instance listens on.
 *
 * The dialogue is the simple sequential one (EHLO, MAIL, RCPT..., DATA, QUIT); a message is
 * handed over for all of its recipients or for none (any refused RCPT aborts it), so a
 * non-zero exit status always means "not sent" and a retry cannot duplicate mail.
 */
#ifndef ZOLDER_SENDMAIL_SMTP_H
#define ZOLDER_SENDMAIL_SMTP_H

#include <stdbool.h>
#include <stddef.h>

#include "zconf.h"

/* RFC 5321 4.5.3.2 timeouts, in milliseconds. */
#define SENDMAIL_CONNECT_TIMEOUT_MS 30000
#define SENDMAIL_REPLY_TIMEOUT_MS 300000
#define SENDMAIL_DATA_END_TIMEOUT_MS 600000
#define SENDMAIL_REPLY_LINE_MAX 4096
#define SENDMAIL_REPLY_LINES_MAX 100

struct sendmail_envelope {
    const char *sender;        /* "" for the null path */
    char *const *rcpts;
    size_t nrcpts;
    const char *body;          /* "7BIT", "8BITMIME" or NULL (then detected) */
    const char *notify;        /* DSN, or NULL */
    const char *ret;
    const char *envid;
};

/*
 * Connects to the instance (first listen address; a wildcard address means loopback).
 * Returns the socket, or -1 with a description in error.
 */
int sendmail_smtp_connect(const struct zconf *conf, char *error, size_t errsize);

/*
 * Sends one message (msg: raw bytes with LF or CRLF lines; converted, dot-stuffed here) to
 * the instance. Problems are reported on stderr prefixed with prog; verbose shows the
 * dialogue. Returns the sysexits status: EX_OK, EX_TEMPFAIL (not reachable, 4xx), EX_NOUSER
 * (a recipient refused with 5xx), EX_DATAERR (5xx to MAIL or DATA), EX_UNAVAILABLE (a 5xx
 * greeting: zolderd refuses local programs), EX_PROTOCOL (not SMTP).
 */
int sendmail_smtp_send(const struct zconf *conf, const struct sendmail_envelope *env,
                       const char *msg, size_t len, const char *prog, bool verbose);

/*
 * -bs: relays SMTP between in_fd/out_fd (the caller's stdin/stdout) and the instance until
 * the server closes the connection. Returns the sysexits status.
 */
int sendmail_smtp_relay(const struct zconf *conf, int in_fd, int out_fd, const char *prog);

#endif
