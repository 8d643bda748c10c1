/* mimewalk: the MIME tree of one message, flattened (see mimewalk.h). */
#include "mimewalk.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "str.h"
#include "xalloc.h"

void mimewalk_limits_default(struct mimewalk_limits *limits)
{
    limits->max_depth = 20;
    limits->max_parts = 500;
    limits->max_header_bytes = (size_t)64 * 1024;
    limits->max_body_bytes = (size_t)64 * 1024 * 1024;
}

struct mimewalk_state {
    const struct mimewalk_limits *limits;
    struct mimewalk *out;
    size_t objects;
    size_t body_bytes;
};

static void mimewalk_malformed(struct mimewalk *out, const char *why)
{
    if (!out->malformed)
        out->malformed = why;
}

/* GMime's parser reports what it had to guess at; the dangerous guesses make us distrust it. */
static void mimewalk_warning(gint64 offset, GMimeParserWarning code, const gchar *item, gpointer ctx)
{
    struct mimewalk *out = ctx;
    (void)offset;
    (void)item;
    switch (code) {
    case GMIME_WARN_MALFORMED_MULTIPART: mimewalk_malformed(out, "multipart without parts"); break;
    case GMIME_WARN_TRUNCATED_MESSAGE: mimewalk_malformed(out, "truncated message (missing end boundary)"); break;
    case GMIME_WARN_MALFORMED_MESSAGE: mimewalk_malformed(out, "malformed message"); break;
    case GMIME_CRIT_INVALID_HEADER_NAME: mimewalk_malformed(out, "invalid header name"); break;
    case GMIME_CRIT_CONFLICTING_HEADER: mimewalk_malformed(out, "conflicting MIME headers"); break;
    case GMIME_CRIT_CONFLICTING_PARAMETER: mimewalk_malformed(out, "conflicting MIME parameters"); break;
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY: mimewalk_malformed(out, "multipart without boundary"); break;
    case GMIME_CRIT_NESTING_OVERFLOW: mimewalk_malformed(out, "MIME nesting too deep"); break;
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT: mimewalk_malformed(out, "part without headers or content"); break;
    default: break;
    }
}

static size_t mimewalk_header_bytes(GMimeObject *obj)
{
    GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
    size_t total = 0;
    int n = hl ? g_mime_header_list_get_count(hl) : 0;
    for (int i = 0; i < n; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        const char *name = g_mime_header_get_name(h);
        const char *raw = g_mime_header_get_raw_value(h);
        total += (name ? strlen(name) : 0) + (raw ? strlen(raw) : 0) + 2;
    }
    return total;
}

static void mimewalk_add_name(struct mimewalk_part *p, const char *name)
{
    if (!name || p->nnames >= MIMEWALK_NAMES_MAX)
        return;
    for (size_t i = 0; i < p->nnames; i++)
        if (strcmp(p->names[i], name) == 0)
            return;
    p->names[p->nnames++] = xstrdup(name);
}

static struct mimewalk_part *mimewalk_new_part(struct mimewalk *out, GMimeObject *obj, size_t depth)
{
    out->parts = xreallocarray(out->parts, out->nparts + 1, sizeof *out->parts);
    struct mimewalk_part *p = &out->parts[out->nparts++];
    memset(p, 0, sizeof *p);
    buf_init(&p->body, 0);
    p->depth = depth;
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    char *type = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
    p->content_type = xstrdup(type ? type : "application/octet-stream");
    g_free(type);
    str_lower(p->content_type);
    mimewalk_add_name(p, g_mime_object_get_content_disposition_parameter(obj, "filename"));
    mimewalk_add_name(p, g_mime_object_get_content_type_parameter(obj, "name"));
    return p;
}

static void mimewalk_body(struct mimewalk_state *st, GMimePart *part, struct mimewalk_part *p)
{
    GMimeDataWrapper *content = g_mime_part_get_content(part);
    if (!content)
        return;
    GMimeStream *mem = g_mime_stream_mem_new();
    g_mime_data_wrapper_write_to_stream(content, mem);
    GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    size_t n = bytes ? bytes->len : 0;
    if (n > st->limits->max_body_bytes - st->body_bytes) {
        mimewalk_malformed(st->out, "decoded parts larger than the limit");
        n = st->limits->max_body_bytes - st->body_bytes;
    }
    if (n)
        buf_append(&p->body, bytes->data, n);
    st->body_bytes += n;
    g_object_unref(mem);
}

static void mimewalk_object(struct mimewalk_state *st, GMimeObject *obj, size_t depth)
{
    struct mimewalk *out = st->out;
    if (depth > st->limits->max_depth) {
        mimewalk_malformed(out, "MIME nesting too deep");
        return;
    }
    if (++st->objects > st->limits->max_parts) {
        mimewalk_malformed(out, "too many MIME parts");
        return;
    }
    if (mimewalk_header_bytes(obj) > st->limits->max_header_bytes) {
        mimewalk_malformed(out, "MIME header block too large");
        return;
    }
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        if (n <= 0)
            mimewalk_malformed(out, "multipart without parts");
        /* A name on the multipart itself is unusual, but mail readers may still show it. */
        if (g_mime_object_get_content_disposition_parameter(obj, "filename") ||
            g_mime_object_get_content_type_parameter(obj, "name"))
            mimewalk_new_part(out, obj, depth);
        for (int i = 0; i < n; i++)
            mimewalk_object(st, g_mime_multipart_get_part(mp, i), depth + 1);
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        mimewalk_new_part(out, obj, depth);
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        GMimeObject *body = inner ? g_mime_message_get_mime_part(inner) : NULL;
        if (inner && mimewalk_header_bytes(GMIME_OBJECT(inner)) > st->limits->max_header_bytes)
            mimewalk_malformed(out, "MIME header block too large");
        else if (body)
            mimewalk_object(st, body, depth + 1);
    } else if (GMIME_IS_PART(obj)) {
        struct mimewalk_part *p = mimewalk_new_part(out, obj, depth);
        mimewalk_body(st, GMIME_PART(obj), p);
    } else {
        mimewalk_malformed(out, "unknown MIME object");
    }
}

void mimewalk_run(const char *data, size_t len, const struct mimewalk_limits *limits,
                  struct mimewalk *out)
{
    memset(out, 0, sizeof *out);
    /* GMime cannot be shut down and started again in one process: start it once, for good. */
    static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;
    pthread_once(&gmime_once, g_mime_init);
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    GMimeParserOptions *options = g_mime_parser_options_new();
    g_mime_parser_options_set_warning_callback(options, mimewalk_warning, out);
    GMimeMessage *msg = g_mime_parser_construct_message(parser, options);
    if (!msg) {
        mimewalk_malformed(out, "not a message");
    } else {
        GMimeObject *body = g_mime_message_get_mime_part(msg);
        struct mimewalk_state st = {.limits = limits, .out = out};
        if (mimewalk_header_bytes(GMIME_OBJECT(msg)) > limits->max_header_bytes)
            mimewalk_malformed(out, "header block too large");
        else if (body)
            mimewalk_object(&st, body, 0);
        else
            mimewalk_malformed(out, "message without body part");
        g_object_unref(msg);
    }
    g_mime_parser_options_free(options);
    g_object_unref(parser);
    g_object_unref(stream);
}

void mimewalk_free(struct mimewalk *walk)
{
    for (size_t i = 0; i < walk->nparts; i++) {
        struct mimewalk_part *p = &walk->parts[i];
        free(p->content_type);
        for (size_t k = 0; k < p->nnames; k++)
            free(p->names[k]);
        buf_free(&p->body);
    }
    free(walk->parts);
    memset(walk, 0, sizeof *walk);
}
