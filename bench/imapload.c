/*
 * imapload: the IMAP load generator of bench/imap.py (issue 7, section 6).
 *
 * DESCRIPTION
 *   One process, one thread, non-blocking sockets on one epoll set. --clients IMAP clients each
 *   repeat imaptest's default cycle against one server until --seconds have passed (a cycle
 *   that has started is finished, as the Python client did):
 *     LOGIN, SELECT INBOX, FETCH 1:* (FLAGS UID RFC822.SIZE), FETCH n BODY.PEEK[] and
 *     FETCH n ENVELOPE of a random message, UID SEARCH UNSEEN, STORE n +FLAGS (\Seen) in half
 *     the cycles, STORE n +FLAGS (\Deleted) and EXPUNGE, APPEND of a generated message of
 *     about --size bytes, LOGOUT
 *   (the FETCH n / STORE / EXPUNGE steps only when SELECT reported more than 20 messages).
 *   One command is one op. Every client has its own deterministic random generator
 *   (--seed + its index), which picks the messages and the APPENDed words. At the end it
 *   prints one JSON object on stdout: ops and mean latency per op, NO/BAD per op (and the
 *   last such line), connection errors (and the last one), elapsed seconds, ops/s, and its own CPU seconds (getrusage), so the
 *   caller can tell the client's cost from the server's.
 *   Responses are parsed only as far as the cycle needs: the tagged line's status, `+` before
 *   the APPEND literal, `* N EXISTS` in SELECT's answer; a {N} literal is skipped by its count
 *   without being looked at, so FETCH 1:* of 10,000 messages costs a memchr per line.
 *
 * SECURITY
 *   A bench tool for servers the bench started on loopback: plain-text LOGIN with the
 *   password from the command line. Server input only moves counters and offsets: a client
 *   keeps at most 64 KiB of a line; of a longer one (UID SEARCH UNSEEN of a big mailbox is
 *   one long line) it keeps the first 256 and the last 64 bytes, all that is ever looked at.
 *   A literal above 1 GiB is a connection error.
 *
 * LIMITS
 *   --clients 1..1000, --seconds 1..3600, --size 64..1 MiB, clients x size at most 256 MiB,
 *   --grace 1..600. It stops by itself at --seconds + --grace: clients still in a cycle then
 *   count a connection error ("deadline") and every socket is closed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES ((size_t)64 * 1024)
#define LONG_LINE_HEAD 256 /* of a longer line: the tag, "* N EXISTS", "+" */
#define LONG_LINE_TAIL 64  /* and the end: "{N}" or " EXISTS" */
#define LITERAL_MAX ((uint64_t)1 << 30)
#define CMD_MAX 512
#define RETRY_NS 50000000LL /* after a connection error, as the Python client slept 0.05 s */
#define TICK_MS 50

enum op {
    OP_LOGIN,
    OP_SELECT,
    OP_FETCH_ALL,
    OP_FETCH_BODY,
    OP_FETCH_ENVELOPE,
    OP_SEARCH,
    OP_STORE,
    OP_EXPUNGE,
    OP_APPEND,
    OP_LOGOUT,
    OP_COUNT
};

/* The names bench/imap.py reports (its table looks up SELECT, FETCH 1:*, FETCH BODY, ...). */
static const char *const op_name[OP_COUNT] = {
    "LOGIN", "SELECT", "FETCH 1:*", "FETCH BODY", "FETCH ENVELOPE",
    "UID SEARCH", "STORE", "EXPUNGE", "APPEND", "LOGOUT",
};

enum step {
    STEP_WAIT,        /* not connected: (re)connect at retry_at */
    STEP_CONNECTING,  /* non-blocking connect in progress */
    STEP_GREETING,
    STEP_LOGIN,
    STEP_SELECT,
    STEP_FETCH_ALL,
    STEP_FETCH_BODY,
    STEP_FETCH_ENVELOPE,
    STEP_SEARCH,
    STEP_STORE_SEEN,
    STEP_STORE_DELETED,
    STEP_EXPUNGE,
    STEP_APPEND_CONT, /* APPEND sent, waiting for "+" before the literal */
    STEP_APPEND,
    STEP_LOGOUT,
    STEP_DONE
};

struct client {
    int index;
    int fd;
    enum step step;
    uint64_t rng;
    unsigned seq;          /* tag number on this connection */
    char tag[16];
    size_t tag_len;
    long exists;
    long msgno;            /* the message FETCH BODY / ENVELOPE look at */
    int64_t op_started;
    int64_t retry_at;
    /* input: the unconsumed tail of what was read (at most one partial line) */
    char *in;
    size_t in_len;
    uint64_t skip;         /* literal bytes still to skip */
    bool after_literal;    /* the next line continues a line that ended in a literal */
    /* output: one command (or the APPEND literal) at a time */
    char *out;
    size_t out_cap, out_len, out_off;
    bool want_write;
    /* the APPEND message, generated before its command (the command carries its length) */
    char *msg;
    size_t msg_cap, msg_len;
};

struct options {
    struct in_addr host, bind;
    unsigned port;
    const char *user, *password;
    unsigned clients, seconds, grace;
    size_t size;
    uint64_t seed;
};

struct totals {
    uint64_t ops[OP_COUNT];
    int64_t latency_ns[OP_COUNT];
    uint64_t errors[OP_COUNT];
    uint64_t connection_errors;
    uint64_t connections;
    uint64_t cycles;
    char last_error[256];
    char last_refusal[256]; /* the last tagged NO/BAD line, for finding out why */
};

static struct options opt;
static struct totals tot;
static int epfd = -1;
static int64_t stop_at, hard_stop_at;
static unsigned active_clients; /* not STEP_DONE */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* splitmix64: small, fast, and the same sequence everywhere for a given seed */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* uniform in lo..hi (hi - lo is small here, the modulo bias does not matter for a bench) */
static long rng_range(uint64_t *state, long lo, long hi)
{
    return lo + (long)(rng_next(state) % (uint64_t)(hi - lo + 1));
}

static void usage(void)
{
    fprintf(stderr,
            "usage: imapload --host ADDR --port PORT --user USER --password PASS\n"
            "                [--bind ADDR] [--clients N] [--seconds S] [--size BYTES]\n"
            "                [--seed N] [--grace S]\n"
            "  --host ADDR      IPv4 address of the IMAP server\n"
            "  --bind ADDR      local IPv4 address of the clients (default 127.0.0.1)\n"
            "  --clients N      concurrent clients, 1..1000 (default 10)\n"
            "  --seconds S      start cycles for S seconds, 1..3600 (default 20)\n"
            "  --size BYTES     APPENDed message size, 64..1048576 (default 4096)\n"
            "  --seed N         client i draws from seed N + i (default 1000)\n"
            "  --grace S        stop anyway S seconds after --seconds, 1..600 (default 60)\n"
            "Prints one JSON object on stdout. Exit 0 after a run (errors are in the JSON),\n"
            "2 for bad arguments, 1 when the run could not start.\n");
    exit(2);
}

static unsigned long long parse_number(const char *name, const char *s, unsigned long long lo,
                                       unsigned long long hi)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi) {
        fprintf(stderr, "imapload: --%s %s: expected a number in %llu..%llu\n", name, s, lo, hi);
        exit(2);
    }
    return v;
}

/* LOGIN's arguments go out as atoms: no quoting, so nothing that would need it */
static const char *parse_atom(const char *name, const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || strpbrk(s, " \t\r\n\"\\(){}%*") != NULL) {
        fprintf(stderr, "imapload: --%s: 1..64 characters, no spaces, quotes or IMAP specials\n",
                name);
        exit(2);
    }
    return s;
}

static void parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'h'},     {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},     {"user", required_argument, NULL, 'u'},
        {"password", required_argument, NULL, 'w'}, {"clients", required_argument, NULL, 'c'},
        {"seconds", required_argument, NULL, 's'},  {"size", required_argument, NULL, 'z'},
        {"seed", required_argument, NULL, 'r'},     {"grace", required_argument, NULL, 'g'},
        {NULL, 0, NULL, 0},
    };
    bool have_host = false;
    opt.clients = 10;
    opt.seconds = 20;
    opt.grace = 60;
    opt.size = 4096;
    opt.seed = 1000;
    inet_pton(AF_INET, "127.0.0.1", &opt.bind);
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h':
        case 'b':
            if (inet_pton(AF_INET, optarg, ch == 'h' ? &opt.host : &opt.bind) != 1) {
                fprintf(stderr, "imapload: %s: not an IPv4 address\n", optarg);
                exit(2);
            }
            have_host |= ch == 'h';
            break;
        case 'p': opt.port = (unsigned)parse_number("port", optarg, 1, 65535); break;
        case 'u': opt.user = parse_atom("user", optarg); break;
        case 'w': opt.password = parse_atom("password", optarg); break;
        case 'c': opt.clients = (unsigned)parse_number("clients", optarg, 1, 1000); break;
        case 's': opt.seconds = (unsigned)parse_number("seconds", optarg, 1, 3600); break;
        case 'z': opt.size = (size_t)parse_number("size", optarg, 64, 1 << 20); break;
        case 'r': opt.seed = parse_number("seed", optarg, 0, UINT32_MAX); break;
        case 'g': opt.grace = (unsigned)parse_number("grace", optarg, 1, 600); break;
        default: usage();
        }
    }
    if (optind != argc || !have_host || opt.port == 0 || !opt.user || !opt.password)
        usage();
    if ((uint64_t)opt.clients * opt.size > ((uint64_t)256 << 20)) {
        fprintf(stderr, "imapload: --clients x --size above 256 MiB of message buffers\n");
        exit(2);
    }
}

/* ---------------------------------------------------------------- the APPENDed message */

static void msg_add(struct client *c, const char *s, size_t n)
{
    /* msg_cap = size + 2 KiB: the head is under 400 bytes and the body stops within one
     * line (< 100 bytes) of size; checked anyway */
    if (c->msg_len + n > c->msg_cap)
        n = c->msg_cap - c->msg_len;
    memcpy(c->msg + c->msg_len, s, n);
    c->msg_len += n;
}

/* The shape of message() in bench/imap.py: the same head, then lines of 12 random words
 * until about size bytes (counted with LF line ends, as there); sent with CRLF. */
static void make_message(struct client *c)
{
    static const char *const words[] = {"mail", "zolder", "imap", "dovecot", "mbox",
                                        "bench", "over", "the", "line", "post"};
    long i = rng_range(&c->rng, 1000000, 10000000);
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "From: Sender %ld <sender%ld@example.net>\r\n"
                      "To: %s@zolder.thuis\r\n"
                      "Subject: bench message %ld\r\n"
                      "Date: Sat, 28 Nov 2026 07:%02ld:00 +0000\r\n"
                      "Message-ID: <bench.%ld@example.net>\r\n"
                      "MIME-Version: 1.0\r\n"
                      "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
                      i % 97, i % 97, opt.user, i, i % 60, i);
    if (hn < 0 || (size_t)hn >= sizeof head)
        hn = 0;
    c->msg_len = 0;
    msg_add(c, head, (size_t)hn);
    size_t n = (size_t)hn - 8; /* LF-counted, as in imap.py: 8 header line ends */
    while (n < opt.size) {
        size_t line_start = c->msg_len;
        for (int w = 0; w < 12; w++) {
            const char *word = words[rng_next(&c->rng) % 10];
            if (w > 0)
                msg_add(c, " ", 1);
            msg_add(c, word, strlen(word));
        }
        n += c->msg_len - line_start + 1;
        msg_add(c, "\r\n", 2);
    }
}

/* ---------------------------------------------------------------- connections */

static void set_error(struct client *c, const char *what, const char *detail)
{
    const char *name = c->step >= STEP_LOGIN && c->step <= STEP_LOGOUT ? "in a command"
                                                                          : "connecting";
    snprintf(tot.last_error, sizeof tot.last_error, "client %d %s: %s%s%s", c->index, name,
             what, detail ? ": " : "", detail ? detail : "");
}

static void close_connection(struct client *c)
{
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->in_len = 0;
    c->skip = 0;
    c->after_literal = false;
    c->out_len = c->out_off = 0;
    c->want_write = false;
}

/* The connection is over (cleanly after LOGOUT, or broken): start the next cycle now, after
 * RETRY_NS when it broke, or stop when the time is up. */
static void start_connection(struct client *c, int64_t now);

static void set_done(struct client *c)
{
    close_connection(c);
    if (c->step != STEP_DONE)
        active_clients--;
    c->step = STEP_DONE;
}

static void end_connection(struct client *c, bool broken, int64_t now)
{
    close_connection(c);
    if (broken)
        tot.connection_errors++;
    if (now >= stop_at) {
        set_done(c);
    } else if (broken) {
        c->step = STEP_WAIT; /* the main loop's next scan after retry_at reconnects */
        c->retry_at = now + RETRY_NS;
    } else {
        start_connection(c, now);
    }
}

static void fail(struct client *c, const char *what, const char *detail, int64_t now)
{
    set_error(c, what, detail);
    end_connection(c, true, now);
}

/* Returns -1 when it failed and ended the connection. */
static int watch(struct client *c, bool want_write, int64_t now)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0u), .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        fail(c, "epoll_ctl", strerror(errno), now);
        return -1;
    }
    c->want_write = want_write;
    return 0;
}

static void start_connection(struct client *c, int64_t now)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        c->step = STEP_CONNECTING;
        fail(c, "socket", strerror(errno), now);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as asyncio does */
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_addr = opt.bind};
    struct sockaddr_in remote = {.sin_family = AF_INET, .sin_addr = opt.host,
                                 .sin_port = htons((uint16_t)opt.port)};
    c->fd = fd;
    c->step = STEP_CONNECTING;
    c->seq = 0;
    tot.connections++;
    if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0) {
        fail(c, "bind", strerror(errno), now);
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        fail(c, "epoll_ctl", strerror(errno), now);
        return;
    }
    if (connect(fd, (struct sockaddr *)&remote, sizeof remote) != 0 && errno != EINPROGRESS) {
        fail(c, "connect", strerror(errno), now);
        return;
    }
    c->want_write = true;
}

/* ---------------------------------------------------------------- commands */

/* Every function below that returns int returns -1 (or 1 where said) only after the
 * connection ended, so callers stop touching it. */
static int flush_output(struct client *c, int64_t now)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return c->want_write ? 0 : watch(c, true, now);
            fail(c, "send", strerror(errno), now);
            return -1;
        }
        c->out_off += (size_t)n;
    }
    c->out_len = c->out_off = 0;
    return c->want_write ? watch(c, false, now) : 0;
}

/* Sends "TAG text\r\n" for the op of step; the op's clock starts here. */
static int send_command(struct client *c, enum step step, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int send_command(struct client *c, enum step step, const char *fmt, ...)
{
    if (c->out_off < c->out_len) {
        /* the server answered before it had the whole command (an APPEND literal) */
        fail(c, "answer before the command was sent", NULL, now_ns());
        return -1;
    }
    c->seq++;
    c->tag_len = (size_t)snprintf(c->tag, sizeof c->tag, "b%u", c->seq);
    int n = snprintf(c->out, c->out_cap, "%s ", c->tag);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(c->out + n, c->out_cap - (size_t)n - 2, fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)(n + m) + 2 >= c->out_cap) {
        fail(c, "command too long", NULL, now_ns()); /* cannot happen: out_cap >= CMD_MAX */
        return -1;
    }
    memcpy(c->out + n + m, "\r\n", 2);
    c->out_len = (size_t)(n + m) + 2;
    c->out_off = 0;
    c->step = step;
    c->op_started = now_ns();
    return flush_output(c, c->op_started);
}

static enum op op_of(enum step step)
{
    switch (step) {
    case STEP_LOGIN: return OP_LOGIN;
    case STEP_SELECT: return OP_SELECT;
    case STEP_FETCH_ALL: return OP_FETCH_ALL;
    case STEP_FETCH_BODY: return OP_FETCH_BODY;
    case STEP_FETCH_ENVELOPE: return OP_FETCH_ENVELOPE;
    case STEP_SEARCH: return OP_SEARCH;
    case STEP_STORE_SEEN:
    case STEP_STORE_DELETED: return OP_STORE;
    case STEP_EXPUNGE: return OP_EXPUNGE;
    case STEP_APPEND_CONT:
    case STEP_APPEND: return OP_APPEND;
    default: return OP_LOGOUT;
    }
}

static long random_message(struct client *c)
{
    return rng_range(&c->rng, 1, c->exists - 10);
}

static int send_store_deleted(struct client *c)
{
    return send_command(c, STEP_STORE_DELETED, "STORE %ld +FLAGS (\\Deleted)", random_message(c));
}

static int send_append(struct client *c)
{
    make_message(c);
    return send_command(c, STEP_APPEND_CONT, "APPEND INBOX {%zu}", c->msg_len);
}

/* The tagged answer of the current op is in: count it, then send the cycle's next command. */
static int next_command(struct client *c, bool ok, int64_t now)
{
    enum op op = op_of(c->step);
    tot.ops[op]++;
    tot.latency_ns[op] += now - c->op_started;
    if (!ok)
        tot.errors[op]++;
    bool big = c->exists > 20;
    switch (c->step) {
    case STEP_LOGIN: return send_command(c, STEP_SELECT, "SELECT INBOX");
    case STEP_SELECT: return send_command(c, STEP_FETCH_ALL, "FETCH 1:* (FLAGS UID RFC822.SIZE)");
    case STEP_FETCH_ALL:
        if (!big)
            return send_command(c, STEP_SEARCH, "UID SEARCH UNSEEN");
        c->msgno = random_message(c);
        return send_command(c, STEP_FETCH_BODY, "FETCH %ld BODY.PEEK[]", c->msgno);
    case STEP_FETCH_BODY:
        return send_command(c, STEP_FETCH_ENVELOPE, "FETCH %ld ENVELOPE", c->msgno);
    case STEP_FETCH_ENVELOPE: return send_command(c, STEP_SEARCH, "UID SEARCH UNSEEN");
    case STEP_SEARCH:
        if (big && (rng_next(&c->rng) & 1))
            return send_command(c, STEP_STORE_SEEN, "STORE %ld +FLAGS (\\Seen)",
                                random_message(c));
        return big ? send_store_deleted(c) : send_append(c);
    case STEP_STORE_SEEN: return send_store_deleted(c);
    case STEP_STORE_DELETED: return send_command(c, STEP_EXPUNGE, "EXPUNGE");
    case STEP_EXPUNGE: return send_append(c);
    case STEP_APPEND_CONT: /* refused before the literal */
    case STEP_APPEND: return send_command(c, STEP_LOGOUT, "LOGOUT");
    case STEP_LOGOUT:
        tot.cycles++;
        end_connection(c, false, now);
        return 1; /* the connection is gone: stop reading it */
    default: fail(c, "internal", "tagged answer in no command", now); return -1;
    }
}

/* ---------------------------------------------------------------- responses */

static bool starts_with(const char *line, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(line, prefix, n) == 0;
}

/* A line ending in {N} or {N+} announces N bytes of literal: returns N, or -1 when there is
 * none, or -2 when N is too large. */
static int64_t literal_of(const char *line, size_t len)
{
    if (len < 3 || line[len - 1] != '}')
        return -1;
    size_t i = len - 1;
    if (line[i - 1] == '+')
        i--;
    size_t end = i;
    while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9' && end - i < 12)
        i--;
    if (i == end || i == 0 || line[i - 1] != '{')
        return -1;
    uint64_t n = 0;
    for (size_t k = i; k < end; k++)
        n = n * 10 + (uint64_t)(line[k] - '0');
    return n > LITERAL_MAX ? -2 : (int64_t)n;
}

/* One line without its CRLF. Returns 0 to go on, 1 when the connection ended (cleanly or not). */
static int handle_line(struct client *c, const char *line, size_t len, int64_t now)
{
    int64_t lit = literal_of(line, len);
    if (lit == -2) {
        fail(c, "literal above 1 GiB", NULL, now);
        return 1;
    }
    bool continuation = c->after_literal;
    c->after_literal = lit >= 0;
    if (lit >= 0)
        c->skip = (uint64_t)lit;
    if (continuation)
        return 0; /* the rest of a FETCH line after BODY[] {N}: nothing in it is needed */

    if (c->step == STEP_GREETING) {
        if (!starts_with(line, len, "* OK")) {
            fail(c, "greeting", "not * OK", now);
            return 1;
        }
        return send_command(c, STEP_LOGIN, "LOGIN %s %s", opt.user, opt.password) < 0;
    }
    if (len >= 2 && line[0] == '*' && line[1] == ' ') {
        if (c->step == STEP_SELECT && len > 9 && memcmp(line + len - 7, " EXISTS", 7) == 0) {
            long n = 0;
            for (size_t i = 2; i < len && line[i] >= '0' && line[i] <= '9' && n < 100000000; i++)
                n = n * 10 + (line[i] - '0');
            c->exists = n;
        }
        return 0;
    }
    if (len > 0 && line[0] == '+' && c->step == STEP_APPEND_CONT) {
        memcpy(c->out, c->msg, c->msg_len);
        memcpy(c->out + c->msg_len, "\r\n", 2);
        c->out_len = c->msg_len + 2;
        c->out_off = 0;
        c->step = STEP_APPEND;
        return flush_output(c, now) < 0;
    }
    if (len > c->tag_len && memcmp(line, c->tag, c->tag_len) == 0 && line[c->tag_len] == ' ') {
        bool ok = starts_with(line + c->tag_len + 1, len - c->tag_len - 1, "OK");
        if (!ok)
            snprintf(tot.last_refusal, sizeof tot.last_refusal, "%s: %.*s",
                     op_name[op_of(c->step)], (int)(len < 200 ? len : 200), line);
        return next_command(c, ok, now) != 0;
    }
    return 0; /* anything else (a stray continuation, an untagged line of another kind) */
}

/* Consumes c->in: literals by count, lines by memchr. Returns 1 when the connection ended. */
static int handle_input(struct client *c, int64_t now)
{
    size_t pos = 0;
    int rc = 0;
    while (pos < c->in_len) {
        if (c->skip > 0) {
            size_t n = c->in_len - pos;
            if ((uint64_t)n > c->skip)
                n = (size_t)c->skip;
            pos += n;
            c->skip -= n;
            continue;
        }
        char *nl = memchr(c->in + pos, '\n', c->in_len - pos);
        if (!nl)
            break;
        size_t len = (size_t)(nl - (c->in + pos));
        if (len > 0 && c->in[pos + len - 1] == '\r')
            len--;
        const char *line = c->in + pos;
        pos = (size_t)(nl - c->in) + 1;
        rc = handle_line(c, line, len, now);
        if (rc != 0)
            return 1; /* c->in is reset by close_connection */
    }
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
    if (c->in_len == LINE_MAX_BYTES) {
        /* a full buffer without a line end: drop the middle of the line */
        memmove(c->in + LONG_LINE_HEAD, c->in + c->in_len - LONG_LINE_TAIL, LONG_LINE_TAIL);
        c->in_len = LONG_LINE_HEAD + LONG_LINE_TAIL;
    }
    return 0;
}

static void on_readable(struct client *c, int64_t now)
{
    ssize_t n = read(c->fd, c->in + c->in_len, LINE_MAX_BYTES - c->in_len);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            fail(c, "read", strerror(errno), now);
        return;
    }
    if (n == 0) {
        fail(c, "server closed the connection", NULL, now);
        return;
    }
    c->in_len += (size_t)n;
    handle_input(c, now);
}

static void on_event(struct client *c, uint32_t events, int64_t now)
{
    if (c->step == STEP_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            fail(c, "connect", strerror(err), now);
            return;
        }
        c->step = STEP_GREETING;
        c->exists = 0;
        watch(c, false, now);
        return;
    }
    if ((events & EPOLLOUT) && c->out_off < c->out_len) {
        if (flush_output(c, now) < 0)
            return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        on_readable(c, now);
}

/* ---------------------------------------------------------------- report */

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void report(double elapsed, double cpu)
{
    uint64_t total = 0;
    for (int i = 0; i < OP_COUNT; i++)
        total += tot.ops[i];
    const char *sep = "";
    printf("{\"ops\": {");
    for (int i = 0; i < OP_COUNT; i++) {
        if (tot.ops[i] == 0)
            continue;
        printf("%s\"%s\": %llu", sep, op_name[i], (unsigned long long)tot.ops[i]);
        sep = ", ";
    }
    printf("}, \"latency_ms\": {");
    sep = "";
    for (int i = 0; i < OP_COUNT; i++) {
        if (tot.ops[i] == 0)
            continue;
        printf("%s\"%s\": %.3f", sep, op_name[i],
               (double)tot.latency_ns[i] / 1e6 / (double)tot.ops[i]);
        sep = ", ";
    }
    printf("}, \"errors\": {");
    sep = "";
    for (int i = 0; i < OP_COUNT; i++) {
        if (tot.errors[i] == 0)
            continue;
        printf("%s\"%s\": %llu", sep, op_name[i], (unsigned long long)tot.errors[i]);
        sep = ", ";
    }
    if (tot.connection_errors)
        printf("%s\"connection\": %llu", sep, (unsigned long long)tot.connection_errors);
    printf("}, ");
    if (tot.last_error[0]) {
        printf("\"last_error\": ");
        json_string(tot.last_error);
        printf(", ");
    }
    if (tot.last_refusal[0]) {
        printf("\"last_refusal\": ");
        json_string(tot.last_refusal);
        printf(", ");
    }
    printf("\"elapsed\": %.6f, \"ops_total\": %llu, \"ops_per_s\": %.3f, "
           "\"client_cpu_s\": %.6f, \"clients\": %u, \"connections\": %llu, \"cycles\": %llu, "
           "\"client\": \"imapload\"}\n",
           elapsed, (unsigned long long)total, elapsed > 0 ? (double)total / elapsed : 0.0, cpu,
           opt.clients, (unsigned long long)tot.connections, (unsigned long long)tot.cycles);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        perror("imapload: epoll_create1");
        return 1;
    }
    struct client *clients = calloc(opt.clients, sizeof *clients);
    if (!clients) {
        fprintf(stderr, "imapload: out of memory\n");
        return 1;
    }
    for (unsigned i = 0; i < opt.clients; i++) {
        struct client *c = &clients[i];
        c->index = (int)i;
        c->fd = -1;
        c->rng = opt.seed + i;
        c->in = malloc(LINE_MAX_BYTES);
        c->msg_cap = opt.size + 2048;
        c->msg = malloc(c->msg_cap);
        c->out_cap = c->msg_cap + CMD_MAX;
        c->out = malloc(c->out_cap);
        if (!c->in || !c->msg || !c->out) {
            fprintf(stderr, "imapload: out of memory\n");
            return 1;
        }
    }

    double cpu0 = cpu_seconds();
    int64_t start = now_ns();
    stop_at = start + (int64_t)opt.seconds * 1000000000LL;
    hard_stop_at = stop_at + (int64_t)opt.grace * 1000000000LL;
    active_clients = opt.clients;
    for (unsigned i = 0; i < opt.clients; i++)
        start_connection(&clients[i], start);

    struct epoll_event events[256];
    int64_t last_scan = start;
    while (active_clients > 0) {
        int n = epoll_wait(epfd, events, (int)(sizeof events / sizeof events[0]), TICK_MS);
        if (n < 0 && errno != EINTR) {
            perror("imapload: epoll_wait");
            break;
        }
        int64_t now = now_ns();
        /* each client has one socket, so a batch holds at most one event per client and
         * handling one client never closes another's socket under us */
        for (int i = 0; i < n; i++) {
            struct client *c = events[i].data.ptr;
            if (c->fd >= 0)
                on_event(c, events[i].events, now);
        }
        if (now - last_scan < TICK_MS * 1000000LL)
            continue;
        /* once a tick, not per event: retries that are due, and the hard stop */
        last_scan = now;
        for (unsigned i = 0; i < opt.clients; i++) {
            struct client *c = &clients[i];
            if (c->step == STEP_DONE)
                continue;
            if (now >= hard_stop_at) {
                set_error(c, "deadline", "still running at --seconds + --grace");
                tot.connection_errors++;
                set_done(c);
            } else if (c->step == STEP_WAIT && now >= c->retry_at) {
                if (now >= stop_at)
                    set_done(c);
                else
                    start_connection(c, now);
            }
        }
    }
    double elapsed = (double)(now_ns() - start) / 1e9;
    double cpu = cpu_seconds() - cpu0;
    for (unsigned i = 0; i < opt.clients; i++) {
        close_connection(&clients[i]);
        free(clients[i].in);
        free(clients[i].msg);
        free(clients[i].out);
    }
    free(clients);
    close(epfd);
    report(elapsed, cpu);
    return 0;
}
