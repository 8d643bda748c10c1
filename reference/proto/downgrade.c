/* downgrade: 8-bit text parts to quoted-printable (see downgrade.h). */
#include "downgrade.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "hdr.h"

struct downgrade_state {
    const char *why;
};

static void downgrade_refuse(struct downgrade_state *st, const char *why)
{
    if (!st->why)
        st->why = why;
}

static void downgrade_warning(gint64 offset, GMimeParserWarning code, const gchar *item, gpointer ctx)
{
    (void)offset;
    (void)item;
    switch (code) {
    case GMIME_WARN_MALFORMED_MULTIPART:
    case GMIME_WARN_TRUNCATED_MESSAGE:
    case GMIME_WARN_MALFORMED_MESSAGE:
    case GMIME_CRIT_INVALID_HEADER_NAME:
    case GMIME_CRIT_CONFLICTING_HEADER:
    case GMIME_CRIT_CONFLICTING_PARAMETER:
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY:
    case GMIME_CRIT_NESTING_OVERFLOW:
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT:
        downgrade_refuse(ctx, "malformed MIME structure");
        break;
    default: break;
    }
}

static bool downgrade_has_8bit(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] & 0x80)
            return true;
    return false;
}

/* Does the (still encoded) content of part hold a byte above 127? */
static bool downgrade_part_8bit(GMimePart *part)
{
    GMimeDataWrapper *w = g_mime_part_get_content(part);
    if (!w)
        return false;
    GMimeStream *mem = g_mime_stream_mem_new();
    g_mime_stream_write_to_stream(g_mime_data_wrapper_get_stream(w), mem);
    g_mime_stream_reset(g_mime_data_wrapper_get_stream(w));
    GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    bool eight = bytes && downgrade_has_8bit(bytes->data, bytes->len);
    g_object_unref(mem);
    return eight;
}

static void downgrade_object(struct downgrade_state *st, GMimeObject *obj, int depth)
{
    if (st->why)
        return;
    if (depth > DOWNGRADE_DEPTH_MAX) {
        downgrade_refuse(st, "MIME nesting too deep");
        return;
    }
    if (GMIME_IS_MULTIPART_SIGNED(obj) || GMIME_IS_MULTIPART_ENCRYPTED(obj)) {
        downgrade_refuse(st, "signed or encrypted (multipart/signed, multipart/encrypted): converting it would break it");
        return;
    }
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n; i++)
            downgrade_object(st, g_mime_multipart_get_part(mp, i), depth + 1);
        return;
    }
    if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        GMimeObject *body = inner ? g_mime_message_get_mime_part(inner) : NULL;
        if (body)
            downgrade_object(st, body, depth + 1);
        return;
    }
    if (!GMIME_IS_PART(obj))
        return;
    GMimePart *part = GMIME_PART(obj);
    GMimeContentEncoding enc = g_mime_part_get_content_encoding(part);
    if (enc != GMIME_CONTENT_ENCODING_DEFAULT && enc != GMIME_CONTENT_ENCODING_7BIT &&
        enc != GMIME_CONTENT_ENCODING_8BIT && enc != GMIME_CONTENT_ENCODING_BINARY)
        return; /* base64, quoted-printable, uuencode: 7 bit already */
    if (!downgrade_part_8bit(part))
        return;
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    if (!ct || !g_mime_content_type_is_type(ct, "text", "*")) {
        downgrade_refuse(st, "an 8-bit part that is not text");
        return;
    }
    g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
}

bool downgrade_7bit(const char *msg, size_t len, struct buf *out, const char **why_r)
{
    struct downgrade_state st = {0};
    buf_reset(out);
    size_t hlen = hdr_section_len(msg, len);
    if (downgrade_has_8bit((const unsigned char *)msg, hlen)) {
        *why_r = "8-bit bytes in the header";
        return false;
    }
    size_t pos = 0;
    struct hdr_field f;
    bool mime = false;
    while (!mime && hdr_next(msg, hlen, &pos, &f))
        mime = f.name_len == 12 && strncasecmp(f.name, "MIME-Version", 12) == 0;
    if (!mime) {
        *why_r = "not MIME (no MIME-Version): its charset and structure are unknown";
        return false;
    }
    /* GMime gets LF line ends, so a CR never becomes =0D; it writes CRLF back. */
    struct buf lf;
    buf_init(&lf, 0);
    for (size_t i = 0; i < len; i++)
        if (!(msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n'))
            buf_append_char(&lf, msg[i]);

    static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;
    pthread_once(&gmime_once, g_mime_init);
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(lf.data ? lf.data : "", lf.len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    GMimeParserOptions *options = g_mime_parser_options_new();
    g_mime_parser_options_set_warning_callback(options, downgrade_warning, &st);
    GMimeMessage *m = g_mime_parser_construct_message(parser, options);
    GMimeObject *body = m ? g_mime_message_get_mime_part(m) : NULL;
    if (!body)
        downgrade_refuse(&st, "not a message");
    else
        downgrade_object(&st, body, 0);
    if (!st.why) {
        GMimeFormatOptions *fo = g_mime_format_options_new();
        g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
        GMimeStream *mem = g_mime_stream_mem_new();
        g_mime_object_write_to_stream(GMIME_OBJECT(m), fo, mem);
        GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
        if (!bytes || bytes->len > 3 * len + 65536)
            downgrade_refuse(&st, "conversion failed");
        else
            buf_append(out, bytes->data, bytes->len);
        g_object_unref(mem);
        g_mime_format_options_free(fo);
    }
    if (m)
        g_object_unref(m);
    g_mime_parser_options_free(options);
    g_object_unref(parser);
    g_object_unref(stream);
    buf_free(&lf);
    /* The promise is 7 bit with CRLF lines: checked, not assumed. */
    for (size_t i = 0; !st.why && i < out->len; i++) {
        unsigned char c = (unsigned char)out->data[i];
        if (c & 0x80 || c == 0 || (c == '\n' && (i == 0 || out->data[i - 1] != '\r')) ||
            (c == '\r' && (i + 1 >= out->len || out->data[i + 1] != '\n')))
            downgrade_refuse(&st, "8-bit data left after the conversion");
    }
    if (st.why) {
        buf_reset(out);
        *why_r = st.why;
        return false;
    }
    return true;
}
