/* uuwalk: uuencoded files inside a text (see uuwalk.h). */
#include "uuwalk.h"

#include <stdlib.h>
#include <string.h>

#include "str.h"

#include "xalloc.h"

/* One line: [*pos, end of line), CR stripped; *pos moves past the LF. false at the end. */
static bool uuwalk_line(const char *data, size_t len, size_t *pos, const char **line, size_t *llen)
{
    if (*pos >= len)
        return false;
    const char *start = data + *pos;
    const char *nl = memchr(start, '\n', len - *pos);
    size_t n = nl ? (size_t)(nl - start) : len - *pos;
    *pos += n + (nl ? 1 : 0);
    if (n > 0 && start[n - 1] == '\r')
        n--;
    *line = start;
    *llen = n;
    return true;
}

/* "begin MODE NAME" or "begin-base64 MODE NAME": the name's start, or NULL. */
static const char *uuwalk_begin(const char *line, size_t n, bool *base64, size_t *name_len)
{
    size_t i;
    if (n >= 13 && memcmp(line, "begin-base64", 12) == 0 && (line[12] == ' ' || line[12] == '\t')) {
        *base64 = true;
        i = 13;
    } else if (n >= 6 && memcmp(line, "begin", 5) == 0 && (line[5] == ' ' || line[5] == '\t')) {
        *base64 = false;
        i = 6;
    } else {
        return NULL;
    }
    size_t digits = 0;
    while (i < n && line[i] >= '0' && line[i] <= '7') {
        i++;
        digits++;
    }
    if (digits < 1 || digits > 6 || i >= n || (line[i] != ' ' && line[i] != '\t'))
        return NULL;
    i++;
    if (i >= n)
        return NULL;
    *name_len = n - i;
    return line + i;
}

enum uuwalk_step { UUWALK_OK, UUWALK_DAMAGED, UUWALK_LIMIT };

/* Decodes one uuencode line into out. */
static enum uuwalk_step uuwalk_uu_line(const char *line, size_t n, struct buf *out, size_t *budget)
{
    if (line[0] < ' ' || line[0] > '`')
        return UUWALK_DAMAGED;
    size_t want = (size_t)((line[0] - ' ') & 63);
    if (want > *budget)
        return UUWALK_LIMIT;
    unsigned char bytes[64];
    size_t got = 0;
    for (size_t i = 1; got < want; i += 4) {
        unsigned v[4];
        for (size_t k = 0; k < 4; k++) {
            char c = '`';
            if (i + k < n)
                c = line[i + k];
            if (c < ' ' || c > '`')
                return UUWALK_DAMAGED;
            v[k] = (unsigned)((c - ' ') & 63);
        }
        unsigned char b[3] = {(unsigned char)(v[0] << 2 | v[1] >> 4), (unsigned char)(v[1] << 4 | v[2] >> 2),
                              (unsigned char)(v[2] << 6 | v[3])};
        for (size_t k = 0; k < 3 && got < want; k++)
            bytes[got++] = b[k];
    }
    buf_append(out, (const char *)bytes, got);
    *budget -= got;
    return UUWALK_OK;
}

/* Decodes one base64 line into out. */
static enum uuwalk_step uuwalk_b64_line(const char *line, size_t n, struct buf *out, size_t *budget)
{
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (line[i] == '=')
            break;
        int v = str_b64_digit((unsigned char)line[i], '/');
        if (v < 0)
            return UUWALK_DAMAGED;
        acc = (acc << 6 | (unsigned)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (*budget == 0)
                return UUWALK_LIMIT;
            buf_append_char(out, (char)((acc >> bits) & 0xff));
            (*budget)--;
        }
    }
    return UUWALK_OK;
}

bool uuwalk_maybe(const char *data, size_t len)
{
    return (len >= 5 && memcmp(data, "begin", 5) == 0) || (len >= 6 && memmem(data, len, "\nbegin", 6));
}

void uuwalk_run(const char *data, size_t len, const struct uuwalk_limits *limits, struct uuwalk *out)
{
    memset(out, 0, sizeof *out);
    size_t budget = limits->max_bytes;
    size_t pos = 0;
    const char *line;
    size_t n;
    while (uuwalk_line(data, len, &pos, &line, &n)) {
        bool base64 = false;
        size_t name_len = 0;
        const char *name = uuwalk_begin(line, n, &base64, &name_len);
        if (!name)
            continue;
        if (out->nentries >= limits->max_entries) {
            out->refused = "too many uuencoded files";
            return;
        }
        out->entries = xreallocarray(out->entries, out->nentries + 1, sizeof *out->entries);
        struct uuwalk_entry *e = &out->entries[out->nentries++];
        memset(e, 0, sizeof *e);
        if (name_len > UUWALK_NAME_MAX)
            name_len = UUWALK_NAME_MAX;
        e->name = xmalloc(name_len + 1);
        memcpy(e->name, name, name_len);
        e->name[name_len] = '\0';
        buf_init(&e->data, 0);
        while (uuwalk_line(data, len, &pos, &line, &n)) {
            if (base64 ? (n == 4 && memcmp(line, "====", 4) == 0) : (n == 3 && memcmp(line, "end", 3) == 0)) {
                e->complete = true;
                break;
            }
            if (n == 0)
                continue; /* a blank line */
            enum uuwalk_step step = base64 ? uuwalk_b64_line(line, n, &e->data, &budget)
                                           : uuwalk_uu_line(line, n, &e->data, &budget);
            if (step == UUWALK_LIMIT) {
                out->refused = "uuencoded data beyond the limit";
                return;
            }
            if (step == UUWALK_DAMAGED)
                break; /* a damaged line ends the block (the next one may begin later) */
        }
    }
}

void uuwalk_free(struct uuwalk *walk)
{
    for (size_t i = 0; i < walk->nentries; i++) {
        free(walk->entries[i].name);
        buf_free(&walk->entries[i].data);
    }
    free(walk->entries);
    memset(walk, 0, sizeof *walk);
}
