/* vacation: RFC 3834 automatic replies (see vacation.h). */
#include "vacation.h"

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

time_t vacation_last(const char *state, size_t len, const char *sender)
{
    time_t last = 0;
    size_t slen = strlen(sender);
    const char *p = state, *end = state + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *sp = memchr(p, ' ', (size_t)(le - p));
        if (sp && (size_t)(le - sp - 1) == slen && strncasecmp(sp + 1, sender, slen) == 0) {
            long long t = 0;
            bool ok = sp > p;
            for (const char *d = p; d < sp && ok; d++) {
                ok = *d >= '0' && *d <= '9' && t < 100000000000LL;
                t = t * 10 + (*d - '0');
            }
            if (ok && (time_t)t > last)
                last = (time_t)t;
        }
        p = le + 1;
    }
    return last;
}
