/*
 * fetch: ENVELOPE, BODYSTRUCTURE and sections (see fetch.h).
 *
 * STANDARDS
 *   RFC 3501 7.4.2 (FETCH response items, envelope and body structure fields), 6.4.5 (section
 *   specifications, HEADER.FIELDS includes the empty line), 9 (string, quoted, literal);
 *   RFC 2045 (Content-Transfer-Encoding default 7BIT), RFC 2183 (Content-Disposition).
 */
#include "fetch.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

void imapd_string(struct buf *out, const char *s, size_t len)
{
    if (!s) {
        buf_append_str(out, "NIL");
        return;
    }
    bool quoted = len <= IMAPD_QUOTED_MAX;
    for (size_t i = 0; i < len && quoted; i++) {
        unsigned char c = (unsigned char)s[i];
        quoted = c != 0 && c != '\r' && c != '\n' && c < 0x80;
    }
    if (!quoted) {
        buf_printf(out, "{%zu}\r\n", len);
        buf_append(out, s, len);
        return;
    }
    buf_append_char(out, '"');
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\')
            buf_append_char(out, '\\');
        buf_append_char(out, s[i]);
    }
    buf_append_char(out, '"');
}

static void imapd_cstring(struct buf *out, const char *s)
{
    imapd_string(out, s, s ? strlen(s) : 0);
}

static void imapd_upper_string(struct buf *out, const char *s)
{
    char tmp[MIME_TYPE_MAX + 1];
    size_t n = 0;
    for (; s[n] && n < MIME_TYPE_MAX; n++)
        tmp[n] = (char)toupper((unsigned char)s[n]);
    tmp[n] = '\0';
    imapd_cstring(out, tmp);
}

/* The header field's unfolded value as an nstring. */
static void imapd_header_nstring(struct buf *out, const char *msg, size_t hs, size_t he, const char *name)
{
    struct buf v;
    buf_init(&v, 0);
    if (mime_header_value(msg, hs, he, name, &v))
        imapd_string(out, v.data ? v.data : "", v.len);
    else
        buf_append_str(out, "NIL");
    buf_free(&v);
}

static void imapd_address(struct buf *out, InternetAddress *ia)
{
    const char *name = internet_address_get_name(ia);
    char *encoded = NULL;
    if (name && name[0]) {
        bool ascii = true;
        for (const char *c = name; *c; c++)
            ascii &= (unsigned char)*c < 0x80;
        if (!ascii)
            encoded = g_mime_utils_header_encode_text(NULL, name, NULL);
    }
    buf_append_char(out, '(');
    imapd_cstring(out, name && name[0] ? (encoded ? encoded : name) : NULL);
    buf_append_str(out, " NIL ");
    const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
    const char *at = addr ? strrchr(addr, '@') : NULL;
    if (addr && at) {
        imapd_string(out, addr, (size_t)(at - addr));
        buf_append_char(out, ' ');
        imapd_cstring(out, at + 1);
    } else {
        imapd_cstring(out, addr ? addr : "");
        buf_append_str(out, " NIL");
    }
    buf_append_char(out, ')');
    g_free(encoded);
}

static void imapd_address_list(struct buf *out, InternetAddressList *list, unsigned depth)
{
    int n = list ? internet_address_list_length(list) : 0;
    for (int i = 0; i < n; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_GROUP(ia)) {
            /* RFC 3501 7.4.2: group start (NIL NIL "name" NIL), members, end (NIL NIL NIL NIL) */
            buf_append_str(out, "(NIL NIL ");
            imapd_cstring(out, internet_address_get_name(ia) ? internet_address_get_name(ia) : "");
            buf_append_str(out, " NIL)");
            if (depth < 4)
                imapd_address_list(out, internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), depth + 1);
            buf_append_str(out, "(NIL NIL NIL NIL)");
        } else if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            imapd_address(out, ia);
        }
    }
}

/* An address field as an ENVELOPE list; fallback names the field used when this one is absent. */
static void imapd_envelope_addresses(struct buf *out, const char *msg, size_t hs, size_t he, const char *name,
                                     const char *fallback)
{
    struct buf v;
    buf_init(&v, 0);
    bool found = mime_header_value(msg, hs, he, name, &v) && v.len;
    if (!found && fallback) {
        buf_reset(&v);
        found = mime_header_value(msg, hs, he, fallback, &v) && v.len;
    }
    InternetAddressList *list = NULL;
    if (found) {
        buf_append_char(&v, '\0');
        list = internet_address_list_parse(NULL, v.data);
    }
    if (!list || internet_address_list_length(list) == 0) {
        buf_append_str(out, "NIL");
    } else {
        buf_append_char(out, '(');
        imapd_address_list(out, list, 0);
        buf_append_char(out, ')');
    }
    if (list)
        g_object_unref(list);
    buf_free(&v);
}

void imapd_envelope(struct buf *out, const char *msg, size_t hs, size_t he)
{
    buf_append_char(out, '(');
    imapd_header_nstring(out, msg, hs, he, "Date");
    buf_append_char(out, ' ');
    imapd_header_nstring(out, msg, hs, he, "Subject");
    buf_append_char(out, ' ');
    imapd_envelope_addresses(out, msg, hs, he, "From", NULL);
    buf_append_char(out, ' ');
    imapd_envelope_addresses(out, msg, hs, he, "Sender", "From");
    buf_append_char(out, ' ');
    imapd_envelope_addresses(out, msg, hs, he, "Reply-To", "From");
    buf_append_char(out, ' ');
    imapd_envelope_addresses(out, msg, hs, he, "To", NULL);
    buf_append_char(out, ' ');
    imapd_envelope_addresses(out, msg, hs, he, "Cc", NULL);
    buf_append_char(out, ' ');
    imapd_envelope_addresses(out, msg, hs, he, "Bcc", NULL);
    buf_append_char(out, ' ');
    imapd_header_nstring(out, msg, hs, he, "In-Reply-To");
    buf_append_char(out, ' ');
    imapd_header_nstring(out, msg, hs, he, "Message-ID");
    buf_append_char(out, ')');
}

static void imapd_params(struct buf *out, GMimeParamList *params)
{
    int n = params ? g_mime_param_list_length(params) : 0, shown = 0;
    for (int i = 0; i < n; i++) {
        GMimeParam *p = g_mime_param_list_get_parameter_at(params, i);
        const char *name = g_mime_param_get_name(p), *value = g_mime_param_get_value(p);
        if (!name || !value)
            continue;
        buf_append_str(out, shown++ ? " " : "(");
        imapd_upper_string(out, name);
        buf_append_char(out, ' ');
        imapd_cstring(out, value);
    }
    buf_append_str(out, shown ? ")" : "NIL");
}

/* "(type params)" of Content-Type, or NIL when absent. */
static void imapd_content_type_params(struct buf *out, const char *msg, const struct mime_entity *e)
{
    struct buf v;
    buf_init(&v, 0);
    GMimeContentType *ct = NULL;
    if (mime_header_value(msg, e->hdr_start, e->hdr_end, "Content-Type", &v) && v.len) {
        buf_append_char(&v, '\0');
        ct = g_mime_content_type_parse(NULL, v.data);
    }
    if (ct) {
        imapd_params(out, g_mime_content_type_get_parameters(ct));
        g_object_unref(ct);
    } else if (strcmp(e->type, "text") == 0) {
        buf_append_str(out, "(\"CHARSET\" \"US-ASCII\")");
    } else {
        buf_append_str(out, "NIL");
    }
    buf_free(&v);
}

static void imapd_disposition(struct buf *out, const char *msg, const struct mime_entity *e)
{
    struct buf v;
    buf_init(&v, 0);
    GMimeContentDisposition *cd = NULL;
    if (mime_header_value(msg, e->hdr_start, e->hdr_end, "Content-Disposition", &v) && v.len) {
        buf_append_char(&v, '\0');
        cd = g_mime_content_disposition_parse(NULL, v.data);
    }
    if (cd && g_mime_content_disposition_get_disposition(cd)) {
        buf_append_char(out, '(');
        imapd_upper_string(out, g_mime_content_disposition_get_disposition(cd));
        buf_append_char(out, ' ');
        imapd_params(out, g_mime_content_disposition_get_parameters(cd));
        buf_append_char(out, ')');
    } else {
        buf_append_str(out, "NIL");
    }
    if (cd)
        g_object_unref(cd);
    buf_free(&v);
}

void imapd_bodystructure(struct buf *out, const char *msg, const struct mime_entity *e, bool extensible)
{
    buf_append_char(out, '(');
    if (e->multipart) {
        size_t pos = 0;
        struct mime_entity part;
        unsigned n = 0;
        while (mime_multipart_next(msg, e, &pos, &part)) {
            imapd_bodystructure(out, msg, &part, extensible);
            n++;
        }
        if (n == 0) /* RFC 3501 needs at least one part: an empty text part stands in */
            buf_append_str(out, "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
        buf_append_char(out, ' ');
        imapd_upper_string(out, e->subtype);
        if (extensible) {
            buf_append_char(out, ' ');
            imapd_content_type_params(out, msg, e);
            buf_append_char(out, ' ');
            imapd_disposition(out, msg, e);
            buf_append_char(out, ' ');
            imapd_header_nstring(out, msg, e->hdr_start, e->hdr_end, "Content-Language");
            buf_append_char(out, ' ');
            imapd_header_nstring(out, msg, e->hdr_start, e->hdr_end, "Content-Location");
        }
        buf_append_char(out, ')');
        return;
    }
    imapd_upper_string(out, e->type);
    buf_append_char(out, ' ');
    imapd_upper_string(out, e->subtype);
    buf_append_char(out, ' ');
    imapd_content_type_params(out, msg, e);
    buf_append_char(out, ' ');
    imapd_header_nstring(out, msg, e->hdr_start, e->hdr_end, "Content-ID");
    buf_append_char(out, ' ');
    imapd_header_nstring(out, msg, e->hdr_start, e->hdr_end, "Content-Description");
    buf_append_char(out, ' ');
    struct buf enc;
    buf_init(&enc, 0);
    if (mime_header_value(msg, e->hdr_start, e->hdr_end, "Content-Transfer-Encoding", &enc) && enc.len &&
        enc.len <= MIME_TYPE_MAX) {
        buf_append_char(&enc, '\0');
        imapd_upper_string(out, enc.data);
    } else {
        buf_append_str(out, "\"7BIT\"");
    }
    buf_free(&enc);
    buf_printf(out, " %zu", e->body_end - e->body_start);
    if (e->message) {
        struct mime_entity inner;
        mime_message_enter(msg, e, &inner);
        buf_append_char(out, ' ');
        imapd_envelope(out, msg, inner.hdr_start, inner.hdr_end);
        buf_append_char(out, ' ');
        imapd_bodystructure(out, msg, &inner, extensible);
        buf_printf(out, " %lu", mime_count_lines(msg, e->body_start, e->body_end));
    } else if (strcmp(e->type, "text") == 0) {
        buf_printf(out, " %lu", mime_count_lines(msg, e->body_start, e->body_end));
    }
    if (extensible) {
        buf_append_char(out, ' ');
        imapd_header_nstring(out, msg, e->hdr_start, e->hdr_end, "Content-MD5");
        buf_append_char(out, ' ');
        imapd_disposition(out, msg, e);
        buf_append_char(out, ' ');
        imapd_header_nstring(out, msg, e->hdr_start, e->hdr_end, "Content-Language");
        buf_append_char(out, ' ');
        imapd_header_nstring(out, msg, e->hdr_start, e->hdr_end, "Content-Location");
    }
    buf_append_char(out, ')');
}

/* Header fields of [hs, he) named (or, not_: not named) in a->fields, then the empty line. */
static void imapd_header_fields(const char *msg, size_t hs, size_t he, const struct imap_fetch_att *a, bool not_,
                                struct buf *out)
{
    size_t pos = hs;
    while (pos < he) {
        const char *lf = memchr(msg + pos, '\n', he - pos);
        size_t end = lf ? (size_t)(lf - msg) + 1 : he;
        while (end < he && (msg[end] == ' ' || msg[end] == '\t')) {
            lf = memchr(msg + end, '\n', he - end);
            end = lf ? (size_t)(lf - msg) + 1 : he;
        }
        const char *colon = memchr(msg + pos, ':', end - pos);
        if (colon) {
            size_t nlen = (size_t)(colon - (msg + pos));
            bool named = false;
            for (size_t k = 0; k < a->nfields && !named; k++)
                named = strlen(a->fields[k]) == nlen && strncasecmp(a->fields[k], msg + pos, nlen) == 0;
            if (named != not_)
                buf_append(out, msg + pos, end - pos);
        }
        pos = end;
    }
    buf_append_str(out, "\r\n");
}

bool imapd_section_bytes(const char *msg, size_t len, const struct imap_fetch_att *a, struct buf *out)
{
    struct mime_entity e;
    if (!mime_section_find(msg, len, a->part, a->nparts, &e))
        return false;
    if (a->nparts > 0 && a->text != IMAP_SECTION_ALL && a->text != IMAP_SECTION_MIME) {
        /* HEADER, TEXT, HEADER.FIELDS of a part: only of a message/rfc822 part */
        if (!e.message)
            return false;
        struct mime_entity inner;
        mime_message_enter(msg, &e, &inner);
        e = inner;
    }
    switch (a->text) {
    case IMAP_SECTION_ALL:
        if (a->nparts == 0)
            buf_append(out, msg, len);
        else
            buf_append(out, msg + e.body_start, e.body_end - e.body_start);
        return true;
    case IMAP_SECTION_HEADER:
    case IMAP_SECTION_MIME:
        buf_append(out, msg + e.hdr_start, e.hdr_end - e.hdr_start);
        return true;
    case IMAP_SECTION_TEXT:
        buf_append(out, msg + e.body_start, e.body_end - e.body_start);
        return true;
    case IMAP_SECTION_HEADER_FIELDS:
    case IMAP_SECTION_HEADER_FIELDS_NOT:
        imapd_header_fields(msg, e.hdr_start, e.hdr_end, a, a->text == IMAP_SECTION_HEADER_FIELDS_NOT, out);
        return true;
    }
    return false;
}

void imapd_section_name(const struct imap_fetch_att *a, struct buf *out)
{
    static const char *const texts[] = {
        [IMAP_SECTION_ALL] = "", [IMAP_SECTION_HEADER] = "HEADER",
        [IMAP_SECTION_HEADER_FIELDS] = "HEADER.FIELDS", [IMAP_SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
        [IMAP_SECTION_TEXT] = "TEXT", [IMAP_SECTION_MIME] = "MIME",
    };
    buf_append_str(out, "BODY[");
    for (size_t i = 0; i < a->nparts; i++)
        buf_printf(out, "%s%u", i ? "." : "", a->part[i]);
    if (a->nparts && a->text != IMAP_SECTION_ALL)
        buf_append_char(out, '.');
    buf_append_str(out, texts[a->text]);
    if (a->text == IMAP_SECTION_HEADER_FIELDS || a->text == IMAP_SECTION_HEADER_FIELDS_NOT) {
        buf_append_str(out, " (");
        for (size_t i = 0; i < a->nfields; i++) {
            if (i)
                buf_append_char(out, ' ');
            imapd_cstring(out, a->fields[i]);
        }
        buf_append_char(out, ')');
    }
    buf_append_char(out, ']');
    if (a->partial)
        buf_printf(out, "<%u>", a->partial_offset);
}

void imapd_internaldate(time_t t, char *out, size_t outsize)
{
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    localtime_r(&t, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(out, outsize, "%2d-%s-%04d %02d:%02d:%02d %c%02ld%02ld", tm.tm_mday, months[tm.tm_mon],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
}
