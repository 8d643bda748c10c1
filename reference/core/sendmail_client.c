/*
 * sendmail_client: command line, header edits and the DATA writer of `sendmail` (see
 * sendmail_client.h).
 *
 * STANDARDS: RFC 5321 4.5.2 (transparency: dot-stuffing), 4.5.3.1.6 (text line length),
 * 4.2 (reply lines); RFC 5322 3.6.3 (Bcc), 3.6.6 (Resent- fields), 2.2.3 (folding);
 * RFC 3461 (the -N/-R/-V DSN options are only checked here, zolderd keeps them).
 *
 * SECURITY: everything here is input from the invoking user; nothing is passed to a shell,
 * and addresses that could break out of "<...>" in an SMTP command (blanks, controls, angle
 * brackets) are refused before they reach the socket.
 */
#include "sendmail_client.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "str.h"
#include "xalloc.h"

/* ---- command line -------------------------------------------------------------------------- */

static int sendmail_args_error(struct sendmail_args *a, const char *fmt, const char *what)
{
    snprintf(a->error, sizeof a->error, fmt, what);
    return -1;
}

static bool sendmail_printable(const char *s)
{
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p >= 0x7f)
            return false;
    return true;
}

/* Options that take an argument; the value is checked in sendmail_args_value(). */
static bool sendmail_takes_value(char opt)
{
    return strchr("CfrFobBNRVOhLAeX", opt) != NULL;
}

static int sendmail_args_value(struct sendmail_args *a, char opt, const char *value)
{
    switch (opt) {
    case 'C': a->config = value; break;
    case 'f':
    case 'r': a->sender = value; break;
    case 'F': a->fullname = value; break;
    case 'o':
        /* -oi is the only -o option with a meaning here; -odi, -oem, -om ... are accepted
         * because MUAs pass them, and mean nothing to a daemon that delivers at once. */
        if (strcmp(value, "i") == 0)
            a->ignore_dots = true;
        break;
    case 'b':
        if (strcmp(value, "m") == 0)
            a->mode = SENDMAIL_MODE_DELIVER;
        else if (strcmp(value, "s") == 0)
            a->mode = SENDMAIL_MODE_SMTP;
        else if (strcmp(value, "p") == 0)
            a->mode = SENDMAIL_MODE_PRINT;
        else if (strcmp(value, "i") == 0)
            a->mode = SENDMAIL_MODE_ALIASES;
        else if (strcmp(value, "d") == 0 || strcmp(value, "D") == 0)
            return sendmail_args_error(a, "-b%s: run zolderd for a daemon", value);
        else
            return sendmail_args_error(a, "-b%s: mode not supported", value);
        break;
    case 'B':
        if (!str_eq_nocase(value, "7BIT") && !str_eq_nocase(value, "8BITMIME"))
            return sendmail_args_error(a, "-B %s: body type must be 7BIT or 8BITMIME", value);
        a->body = value;
        break;
    case 'N':
        for (const char *p = value; *p; p++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ,", *p))
                return sendmail_args_error(a, "-N %s: expected never or a list of "
                                              "success,failure,delay", value);
        a->notify = value;
        break;
    case 'R':
        if (!str_eq_nocase(value, "hdrs") && !str_eq_nocase(value, "full"))
            return sendmail_args_error(a, "-R %s: expected hdrs or full", value);
        a->ret = value;
        break;
    case 'V':
        if (!sendmail_printable(value) || strlen(value) > 100)
            return sendmail_args_error(a, "-V %s: envelope id must be printable ASCII, at "
                                          "most 100 characters", value);
        a->envid = value;
        break;
    case 'X': return sendmail_args_error(a, "-X %s: traffic logging is not supported", value);
    default: break; /* -O, -h, -L, -A, -e: accepted and ignored */
    }
    return 0;
}

int sendmail_args_parse(int argc, char *const *argv, struct sendmail_args *a)
{
    memset(a, 0, sizeof *a);
    a->mode = SENDMAIL_MODE_DELIVER;
    int i = 1;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (arg[0] != '-' || arg[1] == '\0')
            break;
        for (const char *p = arg + 1; *p; p++) {
            char opt = *p;
            if (strchr("tivnmUG", opt)) {
                if (opt == 't')
                    a->extract = true;
                else if (opt == 'i')
                    a->ignore_dots = true;
                else if (opt == 'v')
                    a->verbose = true;
                continue;
            }
            if (opt == 'q') {
                /* -q, -q30m: a queue run now (zolderd keeps its own timer); -qR/-qS select
                 * sites, which zolderd does not do. */
                if (p[1] == 'R' || p[1] == 'S')
                    return sendmail_args_error(a, "-q%s: selective queue runs are not supported",
                                               p + 1);
                a->mode = SENDMAIL_MODE_FLUSH;
                break;
            }
            if (!sendmail_takes_value(opt)) {
                char o[2] = {opt, '\0'};
                return sendmail_args_error(a, "unknown option -%s", o);
            }
            const char *value = p[1] ? p + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!value) {
                char o[2] = {opt, '\0'};
                return sendmail_args_error(a, "option -%s needs a value", o);
            }
            if (sendmail_args_value(a, opt, value) < 0)
                return -1;
            break; /* the value took the rest of this argument */
        }
    }
    a->rcpts = argv + i;
    a->nrcpts = (size_t)(argc - i);
    if (a->mode != SENDMAIL_MODE_DELIVER && (a->nrcpts || a->extract))
        return sendmail_args_error(a, "%s", "-bs, -bp, -bi and -q take no recipients");
    return 0;
}

const char *sendmail_config_path(const struct sendmail_args *args, const char *env_value)
{
    if (args->config)
        return args->config;
    if (env_value && *env_value)
        return env_value;
    return SENDMAIL_DEFAULT_CONFIG;
}

/* ---- input --------------------------------------------------------------------------------- */

size_t sendmail_input_cut(const char *in, size_t len, bool ignore_dots)
{
    if (ignore_dots)
        return len;
    size_t pos = 0;
    while (pos < len) {
        if (in[pos] == '.') {
            size_t rest = len - pos;
            if (rest == 1 || in[pos + 1] == '\n' ||
                (in[pos + 1] == '\r' && (rest == 2 || in[pos + 2] == '\n')))
                return pos;
        }
        const char *nl = memchr(in + pos, '\n', len - pos);
        if (!nl)
            break;
        pos = (size_t)(nl - in) + 1;
    }
    return len;
}

bool sendmail_is_8bit(const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)data[i] >= 0x80)
            return true;
    return false;
}

/* ---- addresses ----------------------------------------------------------------------------- */

bool sendmail_rcpts_add(struct sendmail_rcpts *r, const char *addr)
{
    for (size_t i = 0; i < r->n; i++)
        if (str_eq_nocase(r->addrs[i], addr))
            return true;
    if (r->n >= SENDMAIL_RCPT_MAX)
        return false;
    r->addrs = xreallocarray(r->addrs, r->n + 1, sizeof *r->addrs);
    r->addrs[r->n++] = xstrdup(addr);
    return true;
}

void sendmail_rcpts_free(struct sendmail_rcpts *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->addrs[i]);
    free(r->addrs);
    r->addrs = NULL;
    r->n = 0;
}

char *sendmail_qualify(const char *addr, const char *hostname)
{
    if (!*addr || strchr(addr, '@'))
        return xstrdup(addr);
    size_t n = strlen(addr) + strlen(hostname) + 2;
    char *q = xmalloc(n);
    snprintf(q, n, "%s@%s", addr, hostname);
    return q;
}

bool sendmail_addr_ok(const char *addr)
{
    size_t n = strlen(addr);
    if (n == 0 || n > SENDMAIL_ADDR_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '<' || *p == '>')
            return false;
    const char *at = strrchr(addr, '@');
    return at && at != addr && at[1];
}

static int sendmail_addr_walk(InternetAddressList *list, const char *hostname, int depth,
                              struct sendmail_rcpts *r, const char **error_r)
{
    int n = internet_address_list_length(list);
    for (int i = 0; i < n; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_GROUP(ia)) {
            /* RFC 5322 3.4: groups do not nest; one level is all a valid list has. */
            InternetAddressList *members =
                internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia));
            if (depth > 0 || !members)
                continue;
            if (sendmail_addr_walk(members, hostname, depth + 1, r, error_r) < 0)
                return -1;
            continue;
        }
        if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
            continue;
        const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
        if (!addr || !*addr)
            continue; /* "Name <>" names nobody */
        char *q = sendmail_qualify(addr, hostname);
        bool ok = sendmail_addr_ok(q);
        bool added = ok && sendmail_rcpts_add(r, q);
        free(q);
        if (!ok) {
            *error_r = "unusable address (blank, control character or angle bracket, or no "
                       "domain)";
            return -1;
        }
        if (!added) {
            *error_r = "too many recipients";
            return -1;
        }
    }
    return 0;
}

int sendmail_addr_list(const char *text, const char *hostname, struct sendmail_rcpts *r,
                       const char **error_r)
{
    /* Header values arrive unfolded; a CR or LF here came from a command line and would
     * make GMime read the rest as another (group) entry: refuse it outright. */
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if ((*p < ' ' && *p != '\t') || *p == 0x7f) {
            *error_r = "control character in address list";
            return -1;
        }
    }
    InternetAddressList *list = internet_address_list_parse(NULL, text);
    if (!list) {
        for (const char *p = text; *p; p++) {
            if (*p != ' ' && *p != '\t' && *p != ',') {
                *error_r = "cannot parse the address list";
                return -1;
            }
        }
        return 0; /* empty list */
    }
    int rc = sendmail_addr_walk(list, hostname, 0, r, error_r);
    g_object_unref(list);
    return rc;
}

/* ---- header section ------------------------------------------------------------------------ */

struct sendmail_field {
    size_t start, end;  /* raw bytes, through the final LF */
    size_t name_len;    /* name is in[start .. start+name_len) */
};

static bool sendmail_field_is(const char *in, const struct sendmail_field *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp(in + f->start, name, n) == 0;
}

/* The field's value, unfolded (CR and LF dropped), allocated. */
static char *sendmail_field_value(const char *in, const struct sendmail_field *f)
{
    size_t from = f->start + f->name_len + 1;
    char *v = xmalloc(f->end - from + 1), *o = v;
    for (size_t i = from; i < f->end; i++)
        if (in[i] != '\r' && in[i] != '\n')
            *o++ = in[i];
    *o = '\0';
    return v;
}

/* Length of a field name at in[pos..end) (printable, no colon), followed by ':'. 0 if none. */
static size_t sendmail_field_name(const char *in, size_t pos, size_t end)
{
    size_t i = pos;
    while (i < end && (unsigned char)in[i] > ' ' && (unsigned char)in[i] < 0x7f && in[i] != ':')
        i++;
    return (i > pos && i < end && in[i] == ':') ? i - pos : 0;
}

static int sendmail_collect(const char *in, const struct sendmail_field *f, const char *hostname,
                            struct sendmail_rcpts *r, const char **error_r)
{
    char *value = sendmail_field_value(in, f);
    int rc = sendmail_addr_list(value, hostname, r, error_r);
    free(value);
    return rc;
}

int sendmail_header_edit(const char *in, size_t len, const struct sendmail_header_opts *opts,
                         struct buf *out, struct sendmail_rcpts *rcpts, const char **error_r)
{
    size_t pos = 0;
    /* An mbox "From " envelope line in front is not part of the message. */
    if (len >= 5 && memcmp(in, "From ", 5) == 0) {
        const char *nl = memchr(in, '\n', len);
        pos = nl ? (size_t)(nl - in) + 1 : len;
    }
    struct sendmail_field *fields = NULL;
    size_t nfields = 0;
    bool separator = false;
    size_t body = len;
    while (pos < len) {
        const char *nl = memchr(in + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - in) + 1 : len;
        size_t content_end = end;
        if (content_end > pos && in[content_end - 1] == '\n')
            content_end--;
        if (content_end > pos && in[content_end - 1] == '\r')
            content_end--;
        if (content_end == pos) {
            separator = true;
            body = pos;
            break;
        }
        if ((in[pos] == ' ' || in[pos] == '\t') && nfields) {
            fields[nfields - 1].end = end;
        } else {
            size_t name_len = sendmail_field_name(in, pos, content_end);
            if (!name_len) {
                body = pos; /* not a field: the body starts without a blank line */
                break;
            }
            fields = xreallocarray(fields, nfields + 1, sizeof *fields);
            fields[nfields++] = (struct sendmail_field){pos, end, name_len};
        }
        if (end > SENDMAIL_HEADER_MAX) {
            free(fields);
            *error_r = "header section too large";
            return -1;
        }
        pos = end;
    }

    struct sendmail_rcpts normal = {NULL, 0}, resent = {NULL, 0};
    bool has_from = false, ends_with_lf = true;
    int rc = 0;
    for (size_t i = 0; i < nfields && rc == 0; i++) {
        const struct sendmail_field *f = &fields[i];
        bool bcc = sendmail_field_is(in, f, "Bcc"), rbcc = sendmail_field_is(in, f, "Resent-Bcc");
        if (opts->extract) {
            if (bcc || sendmail_field_is(in, f, "To") || sendmail_field_is(in, f, "Cc"))
                rc = sendmail_collect(in, f, opts->hostname, &normal, error_r);
            else if (rbcc || sendmail_field_is(in, f, "Resent-To") ||
                     sendmail_field_is(in, f, "Resent-Cc"))
                rc = sendmail_collect(in, f, opts->hostname, &resent, error_r);
        }
        if (sendmail_field_is(in, f, "From"))
            has_from = true;
        if (bcc || rbcc)
            continue;
        buf_append(out, in + f->start, f->end - f->start);
        ends_with_lf = in[f->end - 1] == '\n';
    }
    free(fields);
    if (rc == 0 && opts->extract) {
        /* RFC 5322 3.6.6: when a message is resent, the Resent- fields name the recipients. */
        const struct sendmail_rcpts *use = resent.n ? &resent : &normal;
        for (size_t i = 0; i < use->n && rc == 0; i++) {
            if (!sendmail_rcpts_add(rcpts, use->addrs[i])) {
                *error_r = "too many recipients";
                rc = -1;
            }
        }
    }
    sendmail_rcpts_free(&normal);
    sendmail_rcpts_free(&resent);
    if (rc < 0)
        return -1;
    if (opts->add_from && !has_from) {
        if (!ends_with_lf)
            buf_append_char(out, '\n');
        buf_printf(out, "From: %s\n", opts->add_from);
        /* A body that began without a blank line gets one, or it would read as header. */
        if (!separator && body < len)
            buf_append_char(out, '\n');
    }
    buf_append(out, in + body, len - body);
    return 0;
}

/* ---- DATA writer --------------------------------------------------------------------------- */

void sendmail_writer_init(struct sendmail_writer *w)
{
    w->at_line_start = true;
    w->pending_cr = false;
    w->line_len = 0;
}

static void sendmail_writer_eol(struct sendmail_writer *w, struct buf *out)
{
    buf_append(out, "\r\n", 2);
    w->at_line_start = true;
    w->line_len = 0;
}

void sendmail_writer_feed(struct sendmail_writer *w, const char *data, size_t len,
                          struct buf *out)
{
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (w->pending_cr) {
            /* CR LF is one line end; a bare CR is made one too, never sent bare (zolderd,
             * rightly, refuses bare CR against SMTP smuggling). */
            w->pending_cr = false;
            sendmail_writer_eol(w, out);
            if (c == '\n')
                continue;
        }
        if (c == '\r') {
            w->pending_cr = true;
            continue;
        }
        if (c == '\n') {
            sendmail_writer_eol(w, out);
            continue;
        }
        if (w->line_len >= SENDMAIL_LINE_WRAP) {
            buf_append(out, "\r\n ", 3);
            w->line_len = 1;
            w->at_line_start = false;
        }
        if (w->at_line_start && c == '.') {
            buf_append_char(out, '.');
            w->line_len++;
        }
        buf_append_char(out, c);
        w->line_len++;
        w->at_line_start = false;
    }
}

void sendmail_writer_finish(struct sendmail_writer *w, struct buf *out)
{
    if (w->pending_cr || !w->at_line_start) {
        w->pending_cr = false;
        sendmail_writer_eol(w, out);
    }
}

/* ---- SMTP replies -------------------------------------------------------------------------- */

bool sendmail_reply_line(const char *line, int *code_r, bool *last_r)
{
    if (line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' ||
        line[2] > '9')
        return false;
    if (line[3] != '\0' && line[3] != ' ' && line[3] != '-')
        return false;
    *code_r = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    *last_r = line[3] != '-';
    return true;
}
