/* clamd: ClamAV's daemon over INSTREAM (see clamd.h). */
#include "clamd.h"
#include "deadline.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "str.h"
#include "zconf.h"

enum clamd_result clamd_parse_reply(const char *reply, char *virus, size_t vsize)
{
    virus[0] = '\0';
    const char *p = reply;
    if (strncmp(p, "stream: ", 8) == 0)
        p += 8;
    else if (strncmp(p, "stream:", 7) == 0)
        p += 7;
    else
        return CLAMD_ERROR;
    size_t n = strlen(p);
    if (strcmp(p, "OK") == 0)
        return CLAMD_CLEAN;
    if (n > 6 && strcmp(p + n - 6, " FOUND") == 0) {
        size_t name = n - 6;
        if (name == 0 || name >= vsize)
            name = vsize - 1;
        memcpy(virus, p, name);
        virus[name] = '\0';
        /* a name is printable ASCII without blanks; anything else is masked */
        for (char *c = virus; *c; c++)
            if (*c <= ' ' || *c > '~')
                *c = '?';
        return CLAMD_FOUND;
    }
    return CLAMD_ERROR;
}

static int clamd_send(int fd, const void *data, size_t len, long long deadline)
{
    const char *p = data;
    while (len > 0) {
        if (deadline_poll(fd, POLLOUT, deadline) <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int clamd_connect(const char *spec, long long deadline, char *error, size_t esize)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof ss);
    if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
        sun->sun_family = AF_UNIX;
        if (!str_copy(sun->sun_path, sizeof sun->sun_path, spec + 5)) {
            snprintf(error, esize, "clamd socket path too long");
            return -1;
        }
        sslen = sizeof *sun;
    } else {
        struct zconf_listen l;
        if (!zconf_parse_listen(spec, 0, &l)) {
            snprintf(error, esize, "bad clamd address %s", spec);
            return -1;
        }
        ss = l.sa;
        sslen = l.salen;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(error, esize, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&ss, sslen) < 0) {
        if (errno != EINPROGRESS) {
            snprintf(error, esize, "cannot connect to clamd at %s: %s", spec, strerror(errno));
            close(fd);
            return -1;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (deadline_poll(fd, POLLOUT, deadline) <= 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
            snprintf(error, esize, "cannot connect to clamd at %s: %s", spec,
                     soerr ? strerror(soerr) : "timed out");
            close(fd);
            return -1;
        }
    }
    return fd;
}

enum clamd_result clamd_scan(const char *spec, const char *data, size_t len, int timeout_ms,
                             char *virus, size_t vsize, char *error, size_t esize)
{
    long long deadline = deadline_now_ms() + timeout_ms;
    virus[0] = '\0';
    error[0] = '\0';
    int fd = clamd_connect(spec, deadline, error, esize);
    if (fd < 0)
        return CLAMD_ERROR;
    static const char cmd[] = "zINSTREAM"; /* sent with its NUL */
    int rc = clamd_send(fd, cmd, sizeof cmd, deadline);
    for (size_t off = 0; rc == 0 && off < len; off += CLAMD_CHUNK) {
        size_t n = len - off < CLAMD_CHUNK ? len - off : CLAMD_CHUNK;
        uint32_t be = htonl((uint32_t)n);
        rc = clamd_send(fd, &be, sizeof be, deadline);
        if (rc == 0)
            rc = clamd_send(fd, data + off, n, deadline);
    }
    uint32_t end = 0;
    if (rc == 0)
        rc = clamd_send(fd, &end, sizeof end, deadline);
    /* clamd may answer early (size limit) and close: read its answer even after a send error */
    int send_errno = rc < 0 ? errno : 0;
    char reply[CLAMD_REPLY_MAX];
    size_t got = 0;
    for (;;) {
        if (got == sizeof reply - 1)
            break;
        int w = deadline_poll(fd, POLLIN, deadline);
        if (w <= 0) {
            if (got == 0) {
                snprintf(error, esize, "clamd at %s: %s", spec, w == 0 ? "timed out" : strerror(errno));
                close(fd);
                return CLAMD_ERROR;
            }
            break;
        }
        ssize_t n = read(fd, reply + got, sizeof reply - 1 - got);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (memchr(reply, '\0', got) || memchr(reply, '\n', got))
            break;
    }
    close(fd);
    reply[got] = '\0';
    reply[strcspn(reply, "\n")] = '\0';
    if (got == 0) {
        snprintf(error, esize, "clamd at %s closed without an answer%s%s", spec,
                 send_errno ? ": " : "", send_errno ? strerror(send_errno) : "");
        return CLAMD_ERROR;
    }
    enum clamd_result r = clamd_parse_reply(reply, virus, vsize);
    if (r == CLAMD_ERROR) {
        /* keep only printable bytes of the answer for the log */
        for (char *c = reply; *c; c++)
            if (*c < ' ' || *c > '~')
                *c = '?';
        snprintf(error, esize, "clamd at %s answered: %.200s", spec, reply);
    }
    return r;
}
