/*
 * sendmail_smtp: the SMTP client of the `sendmail` command (see sendmail_smtp.h).
 *
 * STANDARDS: RFC 5321 3.3 (mail transaction), 4.2 (replies), 4.5.3.2 (timeouts); RFC 1870
 * SIZE; RFC 6152 8BITMIME; RFC 3461 DSN parameters (NOTIFY, RET, ENVID as xtext).
 *
 * SECURITY: the peer is our own daemon, but replies are still read with bounded lines and
 * counts and a timeout on every wait; nothing from a reply is ever interpreted beyond its
 * code and the EHLO keywords.
 */
#include "sendmail_smtp.h"
#include "deadline.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "core/sendmail_client.h"
#include "str.h"

#define SENDMAIL_CHUNK 65536

struct sendmail_conn {
    int fd;
    const char *prog;
    bool verbose;
    struct buf in;    /* received, not yet consumed */
    struct buf reply; /* the last reply, continuation lines joined with a blank */
    int code;
    bool size, eightbit, dsn;
};

static int sendmail_write_all(int fd, const char *data, size_t len, int timeout_ms)
{
    long long deadline = deadline_now_ms() + timeout_ms;
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
        if (n >= 0) {
            off += (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        int w = deadline_poll(fd, POLLOUT, deadline);
        if (w <= 0) {
            if (w == 0)
                errno = ETIMEDOUT;
            return -1;
        }
    }
    return 0;
}

int sendmail_smtp_connect(const struct zconf *conf, char *error, size_t errsize)
{
    if (conf->nlisten == 0) {
        snprintf(error, errsize, "the config has no listen address");
        return -1;
    }
    const struct zconf_listen *l = &conf->listen[0];
    struct sockaddr_storage sa;
    memcpy(&sa, &l->sa, sizeof sa);
    bool loopback = false;
    if (sa.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&sa;
        if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
            sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    } else if (sa.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&sa;
        if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
            sin6->sin6_addr = in6addr_loopback;
    }
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(error, errsize, "socket: %s", strerror(errno));
        return -1;
    }
    if (loopback) {
        /* zolderd trusts 127.0.0.1 as a local program; the kernel might pick the listen
         * alias itself as source, so say which one we are. */
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
            snprintf(error, errsize, "cannot bind to 127.0.0.1: %s", strerror(errno));
            close(fd);
            return -1;
        }
    }
    int rc = connect(fd, (struct sockaddr *)&sa, l->salen);
    if (rc < 0 && errno == EINPROGRESS) {
        int w = deadline_poll(fd, POLLOUT, deadline_now_ms() + SENDMAIL_CONNECT_TIMEOUT_MS);
        int soerr = 0;
        socklen_t slen = sizeof soerr;
        if (w == 0) {
            errno = ETIMEDOUT;
        } else if (w > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0) {
            errno = soerr;
            rc = soerr ? -1 : 0;
        }
    }
    if (rc < 0) {
        snprintf(error, errsize, "cannot connect to zolderd at %s: %s", l->text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- replies ------------------------------------------------------------------------------- */

/* Reads one line (without CRLF) into line. 0 ok, -1 error/EOF/timeout (errno). */
static int sendmail_read_line(struct sendmail_conn *c, char *line, size_t size, long long deadline)
{
    for (;;) {
        char *nl = c->in.len ? memchr(c->in.data, '\n', c->in.len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - c->in.data);
            size_t keep = n && c->in.data[n - 1] == '\r' ? n - 1 : n;
            if (keep >= size)
                keep = size - 1;
            memcpy(line, c->in.data, keep);
            line[keep] = '\0';
            buf_consume(&c->in, n + 1);
            return 0;
        }
        if (c->in.len >= SENDMAIL_REPLY_LINE_MAX) {
            errno = EMSGSIZE;
            return -1;
        }
        int w = deadline_poll(c->fd, POLLIN, deadline);
        if (w <= 0) {
            if (w == 0)
                errno = ETIMEDOUT;
            return -1;
        }
        char chunk[SENDMAIL_REPLY_LINE_MAX];
        ssize_t n = read(c->fd, chunk, sizeof chunk);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = ECONNRESET;
            return -1;
        }
        buf_append(&c->in, chunk, (size_t)n);
    }
}

/* Reads a whole (multi-line) reply into c->code and c->reply. 0, or -1 (reported). */
static int sendmail_reply(struct sendmail_conn *c, int timeout_ms, bool ehlo)
{
    long long deadline = deadline_now_ms() + timeout_ms;
    char line[SENDMAIL_REPLY_LINE_MAX];
    buf_reset(&c->reply);
    for (int i = 0; i < SENDMAIL_REPLY_LINES_MAX; i++) {
        if (sendmail_read_line(c, line, sizeof line, deadline) < 0) {
            fprintf(stderr, "%s: lost zolderd while waiting for its answer: %s\n", c->prog,
                    strerror(errno));
            return -1;
        }
        if (c->verbose)
            fprintf(stderr, "<<< %s\n", line);
        int code;
        bool last;
        if (!sendmail_reply_line(line, &code, &last) || (i > 0 && code != c->code)) {
            fprintf(stderr, "%s: zolderd answered something that is not SMTP: %s\n", c->prog,
                    line);
            return -1;
        }
        c->code = code;
        if (i == 0)
            buf_append_str(&c->reply, line);
        else if (line[3] && line[4])
            buf_printf(&c->reply, " %s", line + 4);
        if (ehlo && i > 0 && line[3]) {
            const char *kw = line + 4;
            if (str_eq_nocase(kw, "8BITMIME"))
                c->eightbit = true;
            else if (str_eq_nocase(kw, "DSN"))
                c->dsn = true;
            else if (str_starts_with_nocase(kw, "SIZE") && (kw[4] == '\0' || kw[4] == ' '))
                c->size = true;
        }
        if (last)
            return 0;
    }
    fprintf(stderr, "%s: zolderd's answer has too many lines\n", c->prog);
    return -1;
}

/* Sends one command line and reads its reply. 0, or -1 (reported). */
static int sendmail_command(struct sendmail_conn *c, const char *cmd, int timeout_ms)
{
    if (c->verbose)
        fprintf(stderr, ">>> %s\n", cmd);
    struct buf line;
    buf_init(&line, 0);
    buf_printf(&line, "%s\r\n", cmd);
    int rc = sendmail_write_all(c->fd, line.data, line.len, timeout_ms);
    buf_free(&line);
    if (rc < 0) {
        fprintf(stderr, "%s: lost zolderd while sending: %s\n", c->prog, strerror(errno));
        return -1;
    }
    return sendmail_reply(c, timeout_ms, false);
}

/* RFC 3461 4: xtext. */
static void sendmail_xtext(struct buf *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < '!' || *p > '~' || *p == '+' || *p == '=')
            buf_printf(out, "+%02X", *p);
        else
            buf_append_char(out, (char)*p);
    }
}

/* 4xx is worth a retry, anything else that is not 2xx/3xx is not. */
static int sendmail_status_for(int code, int permanent)
{
    return code >= 500 ? permanent : EX_TEMPFAIL;
}

static void sendmail_quit(struct sendmail_conn *c)
{
    /* Politeness only: the transaction is already decided. */
    if (sendmail_command(c, "QUIT", 10000) < 0 && c->verbose)
        fprintf(stderr, "%s: no answer to QUIT\n", c->prog);
}

static int sendmail_transaction(struct sendmail_conn *c, const struct sendmail_envelope *env,
                                const char *msg, size_t len)
{
    struct buf cmd;
    buf_init(&cmd, 0);
    if (sendmail_reply(c, SENDMAIL_REPLY_TIMEOUT_MS, false) < 0)
        return EX_PROTOCOL;
    if (c->code != 220) {
        fprintf(stderr, "%s: zolderd does not accept mail from this host: %s%s\n", c->prog,
                c->reply.data,
                c->code >= 500 ? " (hosts.allow/hosts.deny must allow 127.0.0.1 for smtpd)" : "");
        return sendmail_status_for(c->code, EX_UNAVAILABLE);
    }
    /* EHLO with the keywords read, HELO when EHLO is refused (RFC 5321 3.2). */
    if (c->verbose)
        fprintf(stderr, ">>> EHLO localhost\n");
    if (sendmail_write_all(c->fd, "EHLO localhost\r\n", 16, SENDMAIL_REPLY_TIMEOUT_MS) < 0 ||
        sendmail_reply(c, SENDMAIL_REPLY_TIMEOUT_MS, true) < 0)
        return EX_TEMPFAIL;
    if (c->code >= 500 && c->code != 554) {
        if (sendmail_command(c, "HELO localhost", SENDMAIL_REPLY_TIMEOUT_MS) < 0)
            return EX_TEMPFAIL;
    }
    if (c->code != 250) {
        fprintf(stderr, "%s: zolderd refused the greeting: %s\n", c->prog, c->reply.data);
        sendmail_quit(c);
        return sendmail_status_for(c->code, EX_UNAVAILABLE);
    }

    buf_printf(&cmd, "MAIL FROM:<%s>", env->sender);
    if (c->size) {
        /* RFC 1870 asks for an estimate: every LF may become CRLF on the wire. */
        size_t estimate = len;
        for (const char *p = msg; (p = memchr(p, '\n', (size_t)(msg + len - p))) != NULL; p++)
            estimate++;
        buf_printf(&cmd, " SIZE=%zu", estimate);
    }
    const char *body = env->body ? env->body : sendmail_is_8bit(msg, len) ? "8BITMIME" : NULL;
    if (body && c->eightbit)
        buf_printf(&cmd, " BODY=%s", body);
    if (c->dsn && env->ret)
        buf_printf(&cmd, " RET=%s", env->ret);
    if (c->dsn && env->envid) {
        buf_append_str(&cmd, " ENVID=");
        sendmail_xtext(&cmd, env->envid);
    }
    int rc = sendmail_command(c, cmd.data, SENDMAIL_REPLY_TIMEOUT_MS);
    buf_free(&cmd);
    if (rc < 0)
        return EX_TEMPFAIL;
    if (c->code != 250) {
        fprintf(stderr, "%s: sender <%s>: %s\n", c->prog, env->sender, c->reply.data);
        sendmail_quit(c);
        return sendmail_status_for(c->code, EX_DATAERR);
    }

    size_t refused = 0, perm = 0;
    for (size_t i = 0; i < env->nrcpts; i++) {
        buf_init(&cmd, 0);
        buf_printf(&cmd, "RCPT TO:<%s>", env->rcpts[i]);
        if (c->dsn && env->notify)
            buf_printf(&cmd, " NOTIFY=%s", env->notify);
        rc = sendmail_command(c, cmd.data, SENDMAIL_REPLY_TIMEOUT_MS);
        buf_free(&cmd);
        if (rc < 0)
            return EX_TEMPFAIL;
        if (c->code != 250 && c->code != 251) {
            fprintf(stderr, "%s: %s: %s\n", c->prog, env->rcpts[i], c->reply.data);
            refused++;
            if (c->code >= 500)
                perm++;
        }
    }
    if (refused) {
        fprintf(stderr, "%s: message not sent: %zu of %zu recipient%s refused\n", c->prog,
                refused, env->nrcpts, env->nrcpts == 1 ? "" : "s");
        sendmail_quit(c);
        return perm ? EX_NOUSER : EX_TEMPFAIL;
    }

    if (sendmail_command(c, "DATA", SENDMAIL_REPLY_TIMEOUT_MS) < 0)
        return EX_TEMPFAIL;
    if (c->code != 354) {
        fprintf(stderr, "%s: DATA: %s\n", c->prog, c->reply.data);
        sendmail_quit(c);
        return sendmail_status_for(c->code, EX_DATAERR);
    }
    struct sendmail_writer w;
    struct buf out;
    sendmail_writer_init(&w);
    buf_init(&out, 0);
    for (size_t off = 0;;) {
        size_t n = len - off < SENDMAIL_CHUNK ? len - off : SENDMAIL_CHUNK;
        sendmail_writer_feed(&w, msg + off, n, &out);
        off += n;
        if (off == len) {
            sendmail_writer_finish(&w, &out);
            buf_append(&out, ".\r\n", 3);
        }
        if (sendmail_write_all(c->fd, out.data, out.len, SENDMAIL_REPLY_TIMEOUT_MS) < 0) {
            fprintf(stderr, "%s: lost zolderd while sending the message: %s\n", c->prog,
                    strerror(errno));
            buf_free(&out);
            return EX_TEMPFAIL;
        }
        if (off == len)
            break;
        buf_reset(&out);
    }
    buf_free(&out);
    if (c->verbose)
        fprintf(stderr, ">>> (message, %zu bytes)\n>>> .\n", len);
    if (sendmail_reply(c, SENDMAIL_DATA_END_TIMEOUT_MS, false) < 0)
        return EX_TEMPFAIL; /* no answer: not promised, so not sent */
    if (c->code != 250) {
        fprintf(stderr, "%s: message refused: %s\n", c->prog, c->reply.data);
        sendmail_quit(c);
        return sendmail_status_for(c->code, EX_DATAERR);
    }
    sendmail_quit(c);
    return EX_OK;
}

int sendmail_smtp_send(const struct zconf *conf, const struct sendmail_envelope *env,
                       const char *msg, size_t len, const char *prog, bool verbose)
{
    char error[256];
    int fd = sendmail_smtp_connect(conf, error, sizeof error);
    if (fd < 0) {
        fprintf(stderr, "%s: %s (mail not sent; is zolderd running?)\n", prog, error);
        return EX_TEMPFAIL;
    }
    struct sendmail_conn c;
    memset(&c, 0, sizeof c);
    c.fd = fd;
    c.prog = prog;
    c.verbose = verbose;
    buf_init(&c.in, 0);
    buf_init(&c.reply, 0);
    int rc = sendmail_transaction(&c, env, msg, len);
    buf_free(&c.in);
    buf_free(&c.reply);
    close(fd);
    return rc;
}

/* ---- -bs relay ----------------------------------------------------------------------------- */

int sendmail_smtp_relay(const struct zconf *conf, int in_fd, int out_fd, const char *prog)
{
    char error[256];
    int fd = sendmail_smtp_connect(conf, error, sizeof error);
    if (fd < 0) {
        /* Tell the SMTP client in its own language, as a server that cannot serve would. */
        const char msg[] = "421 4.3.0 zolderd is not available\r\n";
        if (write(out_fd, msg, sizeof msg - 1) < 0)
            fprintf(stderr, "%s: cannot write to stdout: %s\n", prog, strerror(errno));
        fprintf(stderr, "%s: %s\n", prog, error);
        return EX_TEMPFAIL;
    }
    char chunk[SENDMAIL_CHUNK];
    bool in_open = true;
    int rc = EX_OK;
    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = in_fd, .events = POLLIN}};
        int n = poll(p, in_open ? 2 : 1, SENDMAIL_REPLY_TIMEOUT_MS);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "%s: -bs: %s\n", prog, n == 0 ? "idle timeout" : strerror(errno));
            rc = EX_TEMPFAIL;
            break;
        }
        if (p[0].revents) {
            ssize_t got = read(fd, chunk, sizeof chunk);
            if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (got <= 0)
                break; /* the server closed: after QUIT, or on its own terms */
            size_t off = 0;
            while (off < (size_t)got) {
                ssize_t wn = write(out_fd, chunk + off, (size_t)got - off);
                if (wn < 0 && errno == EINTR)
                    continue;
                if (wn <= 0) {
                    fprintf(stderr, "%s: -bs: cannot write to stdout: %s\n", prog,
                            strerror(errno));
                    close(fd);
                    return EX_IOERR;
                }
                off += (size_t)wn;
            }
        }
        if (in_open && p[1].revents) {
            ssize_t got = read(in_fd, chunk, sizeof chunk);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                /* Our client is done talking; let the server finish and close. */
                in_open = false;
                shutdown(fd, SHUT_WR);
                continue;
            }
            if (sendmail_write_all(fd, chunk, (size_t)got, SENDMAIL_REPLY_TIMEOUT_MS) < 0) {
                fprintf(stderr, "%s: -bs: lost zolderd: %s\n", prog, strerror(errno));
                rc = EX_TEMPFAIL;
                break;
            }
        }
    }
    close(fd);
    return rc;
}
