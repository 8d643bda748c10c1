/*
 * mime_part: MIME entities, multipart splitting and IMAP section paths (see mime_part.h).
 *
 * STANDARDS
 *   RFC 2045 5 (Content-Type), RFC 2046 5.1 (multipart, boundary delimiters, digest),
 *   RFC 2046 5.2.1 (message/rfc822), RFC 3501 6.4.5 (section part numbers), RFC 5322 2.2.3
 *   (folding).
 */
#include "mime_part.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* End of the line starting at pos (just after its LF, or end). */
static size_t mime_line_end(const char *msg, size_t pos, size_t end)
{
    const char *lf = memchr(msg + pos, '\n', end - pos);
    return lf ? (size_t)(lf - msg) + 1 : end;
}

static bool mime_line_empty(const char *msg, size_t pos, size_t end)
{
    return (pos < end && msg[pos] == '\n') || (pos + 1 < end && msg[pos] == '\r' && msg[pos + 1] == '\n');
}

bool mime_header_value(const char *msg, size_t hdr_start, size_t hdr_end, const char *name, struct buf *out)
{
    size_t nlen = strlen(name);
    size_t pos = hdr_start;
    while (pos < hdr_end) {
        size_t le = mime_line_end(msg, pos, hdr_end);
        if (le - pos > nlen && msg[pos + nlen] == ':' && strncasecmp(msg + pos, name, nlen) == 0) {
            size_t v = pos + nlen + 1, fe = le;
            while (fe < hdr_end && (msg[fe] == ' ' || msg[fe] == '\t'))
                fe = mime_line_end(msg, fe, hdr_end);
            size_t start = out->len;
            for (size_t i = v; i < fe; i++)
                if (msg[i] != '\r' && msg[i] != '\n')
                    buf_append_char(out, msg[i]);
            /* trim */
            size_t a = start;
            while (a < out->len && (out->data[a] == ' ' || out->data[a] == '\t'))
                a++;
            if (a > start) {
                memmove(out->data + start, out->data + a, out->len - a);
                out->len -= a - start;
            }
            while (out->len > start && (out->data[out->len - 1] == ' ' || out->data[out->len - 1] == '\t'))
                out->len--;
            return true;
        }
        pos = le;
    }
    return false;
}

unsigned long mime_count_lines(const char *msg, size_t start, size_t end)
{
    unsigned long n = 0;
    for (size_t i = start; i < end; i++)
        n += msg[i] == '\n';
    if (end > start && msg[end - 1] != '\n')
        n++;
    return n;
}

static void mime_token(const char *s, size_t len, size_t *i, char *out, size_t outsize)
{
    size_t n = 0;
    while (*i < len && (s[*i] == ' ' || s[*i] == '\t'))
        (*i)++;
    while (*i < len && s[*i] != '/' && s[*i] != ';' && s[*i] != ' ' && s[*i] != '\t' && s[*i] != '(') {
        if (n + 1 < outsize)
            out[n++] = (char)tolower((unsigned char)s[*i]);
        (*i)++;
    }
    out[n] = '\0';
}

/* The boundary parameter of a Content-Type value (quoted or token). */
static void mime_boundary(const char *s, size_t len, char *out)
{
    out[0] = '\0';
    for (size_t i = 0; i + 9 <= len; i++) {
        if (strncasecmp(s + i, "boundary", 8) != 0 || (i > 0 && s[i - 1] != ';' && s[i - 1] != ' ' && s[i - 1] != '\t'))
            continue;
        size_t k = i + 8;
        while (k < len && (s[k] == ' ' || s[k] == '\t'))
            k++;
        if (k >= len || s[k] != '=')
            continue;
        k++;
        while (k < len && (s[k] == ' ' || s[k] == '\t'))
            k++;
        size_t n = 0;
        if (k < len && s[k] == '"') {
            for (k++; k < len && s[k] != '"'; k++) {
                if (s[k] == '\\' && k + 1 < len)
                    k++;
                if (n >= MIME_BOUNDARY_MAX)
                    return (void)(out[0] = '\0');
                out[n++] = s[k];
            }
        } else {
            for (; k < len && s[k] != ';' && s[k] != ' ' && s[k] != '\t'; k++) {
                if (n >= MIME_BOUNDARY_MAX)
                    return (void)(out[0] = '\0');
                out[n++] = s[k];
            }
        }
        out[n] = '\0';
        return;
    }
}

void mime_entity_parse(const char *msg, size_t start, size_t end, bool digest_child, unsigned depth,
                       struct mime_entity *e)
{
    memset(e, 0, sizeof *e);
    e->depth = depth;
    e->hdr_start = start;
    size_t pos = start;
    /* header: up to and including the empty line; a message without one is all header */
    while (pos < end && !mime_line_empty(msg, pos, end))
        pos = mime_line_end(msg, pos, end);
    if (pos < end)
        pos = mime_line_end(msg, pos, end);
    e->hdr_end = pos;
    e->body_start = pos;
    e->body_end = end;
    strcpy(e->type, digest_child ? "message" : "text");
    strcpy(e->subtype, digest_child ? "rfc822" : "plain");
    struct buf v;
    buf_init(&v, 0);
    if (mime_header_value(msg, e->hdr_start, e->hdr_end, "Content-Type", &v) && v.len) {
        char type[MIME_TYPE_MAX + 1], sub[MIME_TYPE_MAX + 1];
        size_t i = 0;
        mime_token(v.data, v.len, &i, type, sizeof type);
        if (i < v.len && v.data[i] == '/') {
            i++;
            mime_token(v.data, v.len, &i, sub, sizeof sub);
            if (type[0] && sub[0]) {
                strcpy(e->type, type);
                strcpy(e->subtype, sub);
            }
        }
        if (strcmp(e->type, "multipart") == 0)
            mime_boundary(v.data, v.len, e->boundary);
    }
    buf_free(&v);
    e->multipart = strcmp(e->type, "multipart") == 0 && e->boundary[0] && depth < MIME_DEPTH_MAX;
    e->message = strcmp(e->type, "message") == 0 &&
                 (strcmp(e->subtype, "rfc822") == 0 || strcmp(e->subtype, "global") == 0) && depth < MIME_DEPTH_MAX;
}

/* Is the line at pos a delimiter of boundary b? *close_r: the close delimiter "--b--". */
static bool mime_delimiter(const char *msg, size_t pos, size_t end, const char *b, size_t blen, bool *close_r)
{
    if (end - pos < blen + 2 || msg[pos] != '-' || msg[pos + 1] != '-' || memcmp(msg + pos + 2, b, blen) != 0)
        return false;
    size_t i = pos + 2 + blen;
    *close_r = false;
    if (end - i >= 2 && msg[i] == '-' && msg[i + 1] == '-') {
        *close_r = true;
        i += 2;
    }
    /* only transport padding may follow */
    while (i < end && (msg[i] == ' ' || msg[i] == '\t'))
        i++;
    return i == end || msg[i] == '\r' || msg[i] == '\n';
}

bool mime_multipart_next(const char *msg, const struct mime_entity *e, size_t *pos, struct mime_entity *part)
{
    if (!e->multipart)
        return false;
    size_t blen = strlen(e->boundary);
    size_t p = *pos ? *pos : e->body_start;
    if (p == SIZE_MAX)
        return false;
    bool close = false;
    if (*pos == 0) {
        /* skip the preamble: up to the first delimiter */
        while (p < e->body_end && !mime_delimiter(msg, p, e->body_end, e->boundary, blen, &close))
            p = mime_line_end(msg, p, e->body_end);
        if (p >= e->body_end || close) {
            *pos = SIZE_MAX;
            return false;
        }
        p = mime_line_end(msg, p, e->body_end);
    }
    size_t start = p;
    while (p < e->body_end && !mime_delimiter(msg, p, e->body_end, e->boundary, blen, &close))
        p = mime_line_end(msg, p, e->body_end);
    size_t end = p;
    if (p < e->body_end) {
        /* the line end before the delimiter belongs to the delimiter */
        if (end > start && msg[end - 1] == '\n')
            end--;
        if (end > start && msg[end - 1] == '\r')
            end--;
    }
    bool digest = strcmp(e->subtype, "digest") == 0;
    mime_entity_parse(msg, start, end, digest, e->depth + 1, part);
    if (p >= e->body_end || close)
        *pos = SIZE_MAX;  /* no close delimiter: the part runs to the end */
    else
        *pos = mime_line_end(msg, p, e->body_end);
    return true;
}

void mime_message_enter(const char *msg, const struct mime_entity *e, struct mime_entity *inner)
{
    mime_entity_parse(msg, e->body_start, e->body_end, false, e->depth + 1, inner);
}

bool mime_section_find(const char *msg, size_t len, const uint32_t *part, size_t nparts, struct mime_entity *e_r)
{
    struct mime_entity e;
    mime_entity_parse(msg, 0, len, false, 0, &e);
    bool top = true;
    for (size_t i = 0; i < nparts; i++) {
        if (!top && e.message) {
            struct mime_entity inner;
            mime_message_enter(msg, &e, &inner);
            e = inner;
        }
        top = false;
        if (e.multipart) {
            size_t pos = 0;
            struct mime_entity child;
            uint32_t k = 0;
            bool found = false;
            while (mime_multipart_next(msg, &e, &pos, &child))
                if (++k == part[i]) {
                    found = true;
                    break;
                }
            if (!found)
                return false;
            e = child;
        } else if (part[i] != 1) {
            return false;
        }
        /* part 1 of a single-part entity is the entity itself (its body) */
    }
    *e_r = e;
    return true;
}
