/* vacation: RFC 3834 automatic replies (see vacation.h). */
#include "vacation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hdr.h"
#include "xalloc.h"

/* The value of the first header field named name (unfolded, trimmed), or NULL. Caller frees. */
static char *vacation_header(const char *msg, size_t len, const char *name)
{
    size_t hlen = hdr_section_len(msg, len);
    size_t pos = 0, nlen = strlen(name);
    struct hdr_field f;
    while (hdr_next(msg, hlen, &pos, &f)) {
        if (f.name_len != nlen || strncasecmp(f.name, name, nlen) != 0)
            continue;
        char *v = xmalloc(f.value_len + 1);
        size_t n = 0;
        for (size_t i = 0; i < f.value_len; i++) {
            char c = f.value[i];
            if (c == '\r' || c == '\n')
                continue;
            if (c == '\t')
                c = ' ';
            v[n++] = c;
        }
        while (n && v[n - 1] == ' ')
            n--;
        v[n] = '\0';
        size_t start = strspn(v, " ");
        memmove(v, v + start, n - start + 1);
        return v;
    }
    return NULL;
}

static bool vacation_has(const char *msg, size_t len, const char *name)
{
    char *v = vacation_header(msg, len, name);
    free(v);
    return v != NULL;
}

/* Case-insensitive: does text mention addr as a whole address? */
static bool vacation_mentions(const char *text, const char *addr)
{
    size_t n = strlen(addr);
    for (const char *p = text; *p; p++) {
        if (strncasecmp(p, addr, n) != 0)
            continue;
        char before = ' ';
        if (p != text)
            before = p[-1];
        char after = p[n];
        bool left = strchr(" \t<,:;\"", before) != NULL;
        bool right = after == '\0' || strchr(" \t>,;\"", after) != NULL;
        if (left && right)
            return true;
    }
    return false;
}

static bool vacation_program_sender(const char *sender)
{
    const char *at = strrchr(sender, '@');
    size_t n = at ? (size_t)(at - sender) : strlen(sender);
    char local[256];
    if (n >= sizeof local)
        n = sizeof local - 1;
    memcpy(local, sender, n);
    local[n] = '\0';
    static const char *const exact[] = {"mailer-daemon", "postmaster", "listserv", "majordomo",
                                        "noreply", "no-reply", "do-not-reply", "donotreply",
                                        "root", "nobody"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcasecmp(local, exact[i]) == 0)
            return true;
    if (strncasecmp(local, "owner-", 6) == 0)
        return true;
    if (n > 8 && strcasecmp(local + n - 8, "-request") == 0)
        return true;
    if (n > 6 && strcasecmp(local + n - 6, "-owner") == 0)
        return true;
    return false;
}

const char *vacation_refusal(const char *sender, const char *rcpt, const char *msg, size_t len,
                             time_t last_answered, time_t now, unsigned days)
{
    if (!sender[0])
        return "null sender";
    if (vacation_program_sender(sender))
        return "sender is a program or a list";
    char *v = vacation_header(msg, len, "Auto-Submitted");
    bool auto_submitted = v && strncasecmp(v, "no", 2) != 0;
    if (v && strncasecmp(v, "no", 2) == 0 && v[2] && v[2] != ' ' && v[2] != ';' && v[2] != '(')
        auto_submitted = true; /* "notify..." is not "no" */
    free(v);
    if (auto_submitted)
        return "Auto-Submitted";
    v = vacation_header(msg, len, "Precedence");
    bool bulk = v && (strcasecmp(v, "bulk") == 0 || strcasecmp(v, "list") == 0 || strcasecmp(v, "junk") == 0);
    free(v);
    if (bulk)
        return "Precedence bulk/list/junk";
    static const char *const list_headers[] = {"List-Id", "List-Unsubscribe", "List-Post", "List-Help",
                                               "X-Auto-Response-Suppress"};
    for (size_t i = 0; i < sizeof list_headers / sizeof list_headers[0]; i++)
        if (vacation_has(msg, len, list_headers[i]))
            return "mailing list or auto-response suppressed";
    char *to = vacation_header(msg, len, "To");
    char *cc = vacation_header(msg, len, "Cc");
    bool addressed = (to && vacation_mentions(to, rcpt)) || (cc && vacation_mentions(cc, rcpt));
    free(to);
    free(cc);
    if (!addressed)
        return "recipient not in To or Cc";
    if (last_answered > 0 && now - last_answered < (time_t)days * 86400)
        return "answered recently";
    return NULL;
}

static void vacation_sanitise_line(struct buf *out, const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            buf_append_char(out, ' ');
        else
            buf_append_char(out, *s);
}

void vacation_render(const char *rcpt, const char *sender, const char *msg, size_t len,
                     const char *text, const char *date, const char *message_id, struct buf *out)
{
    buf_append_str(out, "From: <");
    vacation_sanitise_line(out, rcpt);
    buf_append_str(out, ">\r\nTo: <");
    vacation_sanitise_line(out, sender);
    buf_append_str(out, ">\r\nSubject: Auto: ");
    char *subject = vacation_header(msg, len, "Subject");
    vacation_sanitise_line(out, subject ? subject : "(no subject)");
    free(subject);
    buf_printf(out, "\r\nDate: %s\r\nMessage-ID: %s\r\n", date, message_id);
    char *orig = vacation_header(msg, len, "Message-ID");
    if (orig && orig[0] == '<' && !strpbrk(orig, "\r\n")) {
        buf_printf(out, "In-Reply-To: %s\r\nReferences: %s\r\n", orig, orig);
    }
    free(orig);
    buf_append_str(out, "Auto-Submitted: auto-replied\r\nPrecedence: bulk\r\nMIME-Version: 1.0\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
    for (const char *p = text; *p; p++) {
        if (*p == '\r')
            continue;
        if (*p == '\n')
            buf_append_str(out, "\r\n");
        else
            buf_append_char(out, *p);
    }
    if (out->len < 2 || out->data[out->len - 1] != '\n')
        buf_append_str(out, "\r\n");
}

/* ---- the state file's pruning (see vacation.h, STATE) ---------------------------------------- */

struct vacation_line {
    const char *sender;
    size_t slen;
    long long t;
    size_t pos; /* its place in the file: ties keep the later line */
};

/* Parses "EPOCH SENDER" (no '\n'). false for an unreadable line. */
static bool vacation_line_parse(const char *p, const char *le, struct vacation_line *l)
{
    const char *sp = memchr(p, ' ', (size_t)(le - p));
    if (!sp || sp == p || sp - p > 11 || le - sp - 1 < 1 || le - sp - 1 > VACATION_SENDER_MAX)
        return false;
    long long t = 0;
    for (const char *d = p; d < sp; d++) {
        if (*d < '0' || *d > '9')
            return false;
        t = t * 10 + (*d - '0');
    }
    if (t == 0)
        return false; /* 0 means "never" to vacation_refusal */
    for (const char *c = sp + 1; c < le; c++)
        if (*c == '\0' || *c == '\r')
            return false;
    l->t = t;
    l->sender = sp + 1;
    l->slen = (size_t)(le - sp - 1);
    return true;
}

time_t vacation_last(const char *state, size_t len, const char *sender)
{
    time_t last = 0;
    size_t slen = strlen(sender);
    const char *p = state, *end = state + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        struct vacation_line l;
        if (vacation_line_parse(p, le, &l) && l.slen == slen && strncasecmp(l.sender, sender, slen) == 0 &&
            (time_t)l.t > last)
            last = (time_t)l.t;
        p = le + 1;
    }
    return last;
}

static int vacation_sender_cmp(const struct vacation_line *a, const struct vacation_line *b)
{
    size_t n = a->slen < b->slen ? a->slen : b->slen;
    int c = strncasecmp(a->sender, b->sender, n);
    if (c)
        return c;
    return (a->slen > b->slen) - (a->slen < b->slen);
}

/* By sender, then newest first (the one kept comes first in its group). */
static int vacation_by_sender(const void *x, const void *y)
{
    const struct vacation_line *a = x, *b = y;
    int c = vacation_sender_cmp(a, b);
    if (c)
        return c;
    if (a->t != b->t)
        return a->t > b->t ? -1 : 1;
    return (a->pos < b->pos) - (a->pos > b->pos);
}

/* Oldest first, in file order among equals. */
static int vacation_by_time(const void *x, const void *y)
{
    const struct vacation_line *a = x, *b = y;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

static size_t vacation_line_bytes(const struct vacation_line *l)
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%lld", l->t);
    return (size_t)n + 1 + l->slen + 1;
}

void vacation_prune(const char *state, size_t len, time_t now, unsigned days, size_t max_bytes,
                    struct buf *out, struct vacation_prune_stats *stats)
{
    struct vacation_prune_stats st = {0};
    struct vacation_line *lines = NULL;
    size_t n = 0, cap = 0;
    const char *p = state, *end = state + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        st.lines++;
        struct vacation_line l;
        if (vacation_line_parse(p, le, &l)) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                lines = xreallocarray(lines, cap, sizeof *lines);
            }
            l.pos = st.lines;
            lines[n++] = l;
        }
        p = le + 1;
    }
    /* the newest line per sender, unless it is stale */
    if (n)
        qsort(lines, n, sizeof *lines, vacation_by_sender);
    long long horizon = (long long)now - (long long)days * 86400;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && vacation_sender_cmp(&lines[i - 1], &lines[i]) == 0)
            continue; /* an older line of the same sender */
        if (lines[i].t <= horizon)
            continue; /* now - t >= days: vacation_refusal would answer again anyway */
        lines[kept++] = lines[i];
    }
    st.stale = st.lines - kept;
    /* the cap: the newest lines that fit, the oldest go first */
    if (kept)
        qsort(lines, kept, sizeof *lines, vacation_by_time);
    size_t first = kept, bytes = 0;
    while (first > 0) {
        size_t b = vacation_line_bytes(&lines[first - 1]);
        if (bytes + b > max_bytes)
            break;
        bytes += b;
        first--;
    }
    st.capped = first;
    st.kept_bytes = bytes;
    if (out)
        for (size_t i = first; i < kept; i++)
            buf_printf(out, "%lld %.*s\n", lines[i].t, (int)lines[i].slen, lines[i].sender);
    free(lines);
    if (stats)
        *stats = st;
}

bool vacation_prune_due(const struct vacation_prune_stats *stats, size_t len, size_t add_len)
{
    return stats->stale >= VACATION_PRUNE_MIN || len + add_len > VACATION_STATE_BYTES_MAX;
}
