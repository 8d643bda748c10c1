/*
 * dsn: delivery status notifications, a pure writer (see dsn.h).
 */
#include "dsn.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Printable ASCII only, no CR/LF, at most DSN_FIELD_MAX bytes: safe inside a header field. */
static void dsn_put_text(struct buf *out, const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && n < DSN_FIELD_MAX; p++, n++)
    {
        char c = '?';
        if (*p >= 0x20 && *p < 0x7f)
            c = (char)*p;
        else if (*p == '\t')
            c = ' ';
        buf_append_char(out, c);
    }
    if (s && strlen(s) > DSN_FIELD_MAX)
        buf_append_str(out, "...");
}

bool dsn_status_valid(const char *s)
{
    if (!s || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return false;
    const char *p = s + 2;
    for (int part = 0; part < 2; part++) {
        size_t digits = strspn(p, "0123456789");
        if (digits < 1 || digits > 3)
            return false;
        p += digits;
        if (part == 0) {
            if (*p != '.')
                return false;
            p++;
        }
    }
    return *p == '\0';
}

const char *dsn_action_name(enum dsn_action a)
{
    switch (a) {
    case DSN_ACTION_FAILED:
        return "failed";
    case DSN_ACTION_DELAYED:
        return "delayed";
    case DSN_ACTION_DELIVERED:
        return "delivered";
    case DSN_ACTION_RELAYED:
        return "relayed";
    }
    return "failed";
}

static const char *dsn_default_status(enum dsn_action a)
{
    return a == DSN_ACTION_FAILED ? "5.0.0" : a == DSN_ACTION_DELAYED ? "4.0.0" : "2.0.0";
}

size_t dsn_header_len(const char *msg, size_t len)
{
    /* The header ends at the first empty line: CRLF CRLF (as queued) or LF LF. */
    for (size_t i = 0; i < len; i++) {
        if (msg[i] != '\n')
            continue;
        if (i + 1 < len && msg[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && msg[i + 1] == '\r' && msg[i + 2] == '\n')
            return i + 3;
    }
    if (len && msg[0] == '\n')
        return 1;
    if (len >= 2 && msg[0] == '\r' && msg[1] == '\n')
        return 2;
    return len;
}

/* Appends data with every bare LF or bare CR turned into CRLF. */
static void dsn_put_lines(struct buf *out, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (c == '\r') {
            buf_append_str(out, "\r\n");
            if (i + 1 < len && data[i + 1] == '\n')
                i++;
        } else if (c == '\n') {
            buf_append_str(out, "\r\n");
        } else {
            buf_append_char(out, c);
        }
    }
    if (len && data[len - 1] != '\n' && data[len - 1] != '\r')
        buf_append_str(out, "\r\n");
}

static bool dsn_contains(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    if (n > len)
        return false;
    for (size_t i = 0; i + n <= len; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, n) == 0)
            return true;
    return false;
}

static void dsn_put_address_field(struct buf *out, const char *name, const char *addr)
{
    buf_printf(out, "%s: rfc822; ", name);
    dsn_put_text(out, addr);
    buf_append_str(out, "\r\n");
}

static void dsn_text_part(const struct dsn_report *r, struct buf *out)
{
    buf_append_str(out, "This is the mail system at host ");
    dsn_put_text(out, r->reporting_mta);
    buf_append_str(out, ".\r\n\r\n");
    switch (r->kind) {
    case DSN_KIND_FAILURE:
        buf_append_str(out, "I'm sorry to have to inform you that your message could not\r\n"
                            "be delivered to one or more recipients. It's attached below.\r\n\r\n"
                            "For further assistance, please send mail to postmaster.\r\n\r\n"
                            "If you do so, please include this problem report. You can\r\n"
                            "delete your own text from the attached returned message.\r\n");
        break;
    case DSN_KIND_DELAY:
        buf_append_str(out, "####################################################################\r\n"
                            "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
                            "####################################################################\r\n\r\n"
                            "Your message could not be delivered for some time.\r\n");
        if (r->will_retry_until && r->will_retry_until[0]) {
            buf_append_str(out, "It will be retried until ");
            dsn_put_text(out, r->will_retry_until);
            buf_append_str(out, ".\r\n");
        }
        break;
    case DSN_KIND_SUCCESS:
        buf_append_str(out, "Your message was successfully delivered to the destination(s)\r\n"
                            "listed below. If the message was delivered to a mailbox you will\r\n"
                            "receive no further notifications. Otherwise you may still receive\r\n"
                            "notifications of mail delivery errors from other systems.\r\n");
        break;
    }
    buf_append_str(out, "\r\n                   The mail system\r\n\r\n");
    for (size_t i = 0; i < r->nrcpts && i < DSN_RCPTS_MAX; i++) {
        const struct dsn_rcpt *rc = &r->rcpts[i];
        buf_append_char(out, '<');
        dsn_put_text(out, rc->final_rcpt);
        buf_append_str(out, ">: ");
        if (rc->diagnostic && rc->diagnostic[0]) {
            if (rc->remote_mta && rc->remote_mta[0]) {
                buf_append_str(out, "host ");
                dsn_put_text(out, rc->remote_mta);
                buf_append_str(out, " said: ");
            }
            dsn_put_text(out, rc->diagnostic);
        } else {
            buf_append_str(out, dsn_action_name(rc->action));
        }
        buf_append_str(out, "\r\n\r\n");
    }
    if (r->nrcpts > DSN_RCPTS_MAX)
        buf_printf(out, "(and %zu more recipients)\r\n\r\n", r->nrcpts - DSN_RCPTS_MAX);
}

static void dsn_status_part(const struct dsn_report *r, struct buf *out)
{
    buf_append_str(out, "Reporting-MTA: dns; ");
    dsn_put_text(out, r->reporting_mta);
    buf_append_str(out, "\r\nX-Zolder-Queue-ID: ");
    dsn_put_text(out, r->queue_id);
    buf_append_str(out, "\r\n");
    if (r->envid && r->envid[0]) {
        buf_append_str(out, "Original-Envelope-Id: ");
        dsn_put_text(out, r->envid);
        buf_append_str(out, "\r\n");
    }
    if (r->to && r->to[0])
        dsn_put_address_field(out, "X-Zolder-Sender", r->to);
    buf_append_str(out, "Arrival-Date: ");
    dsn_put_text(out, r->arrival_date);
    buf_append_str(out, "\r\n");
    for (size_t i = 0; i < r->nrcpts && i < DSN_RCPTS_MAX; i++) {
        const struct dsn_rcpt *rc = &r->rcpts[i];
        buf_append_str(out, "\r\n");
        dsn_put_address_field(out, "Final-Recipient", rc->final_rcpt);
        if (rc->orcpt && rc->orcpt[0]) {
            const char *semi = strchr(rc->orcpt, ';');
            if (semi) { /* already "type;address": keep the type the client gave */
                buf_append_str(out, "Original-Recipient: ");
                dsn_put_text(out, rc->orcpt);
                buf_append_str(out, "\r\n");
            } else {
                dsn_put_address_field(out, "Original-Recipient", rc->orcpt);
            }
        }
        buf_printf(out, "Action: %s\r\n", dsn_action_name(rc->action));
        const char *status = dsn_status_valid(rc->status) ? rc->status : dsn_default_status(rc->action);
        buf_printf(out, "Status: %s\r\n", status);
        if (rc->remote_mta && rc->remote_mta[0]) {
            buf_append_str(out, "Remote-MTA: dns; ");
            dsn_put_text(out, rc->remote_mta);
            buf_append_str(out, "\r\n");
        }
        if (rc->diagnostic && rc->diagnostic[0]) {
            buf_append_str(out, "Diagnostic-Code: smtp; ");
            dsn_put_text(out, rc->diagnostic);
            buf_append_str(out, "\r\n");
        }
        if (rc->action == DSN_ACTION_DELAYED && r->will_retry_until && r->will_retry_until[0]) {
            buf_append_str(out, "Will-Retry-Until: ");
            dsn_put_text(out, r->will_retry_until);
            buf_append_str(out, "\r\n");
        }
    }
}

static bool dsn_has_8bit(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] & 0x80)
            return true;
    return false;
}

bool dsn_format(const struct dsn_report *r, struct buf *out)
{
    const char *msg = r->message ? r->message : "";
    size_t msglen = r->message ? r->message_len : 0;
    bool full = r->ret_full && msglen <= r->full_max;
    size_t retlen = full ? msglen : dsn_header_len(msg, msglen);

    /* A boundary from the unique seed, changed until the returned text does not hold it. */
    char boundary[96];
    unsigned long long h = 1469598103934665603ULL;
    for (const char *p = r->message_id ? r->message_id : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    for (unsigned n = 0;; n++) {
        snprintf(boundary, sizeof boundary, "=_zolder_report_%016llx_%u", h, n);
        if (!dsn_contains(msg, retlen, boundary))
            break;
    }
    bool eight = dsn_has_8bit(msg, retlen);

    static const char *const subjects[] = {
        [DSN_KIND_FAILURE] = "Undelivered Mail Returned to Sender",
        [DSN_KIND_DELAY] = "Delayed Mail (still being retried)",
        [DSN_KIND_SUCCESS] = "Successful Mail Delivery Report",
    };
    buf_append_str(out, "From: Mail Delivery System <MAILER-DAEMON@");
    dsn_put_text(out, r->reporting_mta);
    buf_append_str(out, ">\r\nTo: <");
    dsn_put_text(out, r->to);
    buf_printf(out, ">\r\nSubject: %s\r\nDate: ", subjects[r->kind]);
    dsn_put_text(out, r->date);
    buf_append_str(out, "\r\nMessage-ID: <");
    dsn_put_text(out, r->message_id);
    buf_append_str(out, ">\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
    buf_printf(out, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n",
               boundary);
    if (eight)
        buf_append_str(out, "Content-Transfer-Encoding: 8bit\r\n");
    buf_append_str(out, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

    buf_printf(out, "--%s\r\nContent-Description: Notification\r\n"
                    "Content-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
    dsn_text_part(r, out);

    buf_printf(out, "--%s\r\nContent-Description: Delivery report\r\n"
                    "Content-Type: message/delivery-status\r\n\r\n", boundary);
    dsn_status_part(r, out);
    buf_append_str(out, "\r\n");

    const char *what = r->kind == DSN_KIND_FAILURE ? "Undelivered Message" : "Message";
    buf_printf(out, "--%s\r\nContent-Description: %s%s\r\nContent-Type: %s\r\n", boundary, what,
               full ? "" : " Headers", full ? "message/rfc822" : "text/rfc822-headers");
    if (eight)
        buf_append_str(out, "Content-Transfer-Encoding: 8bit\r\n");
    buf_append_str(out, "\r\n");
    dsn_put_lines(out, msg, retlen);
    buf_printf(out, "\r\n--%s--\r\n", boundary);
    return eight;
}
