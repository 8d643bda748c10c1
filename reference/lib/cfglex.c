/* cfglex: the shared line lexer for config and map files (see cfglex.h). */
#include "cfglex.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "str.h"

void cfg_reader_init(struct cfg_reader *r, const char *file, const char *data, size_t len,
                     unsigned flags)
{
    r->file = file;
    r->data = data;
    r->len = len;
    r->pos = 0;
    r->lineno = 0;
    r->flags = flags;
    buf_init(&r->line, (size_t)CFG_LINE_MAX * 4);
}

void cfg_reader_free(struct cfg_reader *r) { buf_free(&r->line); }

void cfg_error_set(struct cfg_error *err, const char *file, unsigned lineno, const char *fmt, ...)
{
    char text[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    snprintf(err->text, sizeof err->text, "%s:%u: %s", file ? file : "-", lineno, text);
}

/* Reads one physical line (without its newline) into start and len; false at end of input. */
static bool cfg_physical_line(struct cfg_reader *r, const char **start, size_t *len)
{
    if (r->pos >= r->len)
        return false;
    const char *p = r->data + r->pos;
    const char *nl = memchr(p, '\n', r->len - r->pos);
    size_t l = nl ? (size_t)(nl - p) : r->len - r->pos;
    r->pos += l + (nl ? 1 : 0);
    r->lineno++;
    if (l > 0 && p[l - 1] == '\r')
        l--;
    *start = p;
    *len = l;
    return true;
}

static size_t cfg_comment_start(const char *p, size_t len, unsigned flags)
{
    size_t i = 0;
    while (i < len && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (i < len && p[i] == '#')
        return 0;
    if (!(flags & CFG_TRAILING_COMMENT))
        return len;
    bool in_quote = false;
    for (; i < len; i++) {
        if (p[i] == '"')
            in_quote = !in_quote;
        else if (p[i] == '#' && !in_quote && i > 0 && (p[i - 1] == ' ' || p[i - 1] == '\t'))
            return i;
    }
    return len;
}

/* Blank as str_trim sees it, so a line that trims to "" is never handed out. */
static bool cfg_is_blank(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)p[i]))
            return false;
    return true;
}

int cfg_reader_next(struct cfg_reader *r, char **line_r, unsigned *lineno_r,
                    struct cfg_error *err)
{
    const char *p;
    size_t len;

    buf_reset(&r->line);
    for (;;) {
        if (!cfg_physical_line(r, &p, &len))
            return 0;
        if (memchr(p, '\0', len)) {
            cfg_error_set(err, r->file, r->lineno, "NUL byte in line");
            return -1;
        }
        if (len > CFG_LINE_MAX) {
            cfg_error_set(err, r->file, r->lineno, "line longer than %d bytes", CFG_LINE_MAX);
            return -1;
        }
        len = cfg_comment_start(p, len, r->flags);
        if (!cfg_is_blank(p, len))
            break;
    }
    unsigned start_line = r->lineno;
    buf_append(&r->line, p, len);

    for (;;) {
        if (r->flags & CFG_CONT_BACKSLASH && r->line.len > 0 &&
            r->line.data[r->line.len - 1] == '\\') {
            r->line.len--;
            r->line.data[r->line.len] = '\0';
            if (!cfg_physical_line(r, &p, &len))
                break;
        } else if (r->flags & CFG_CONT_INDENT && r->pos < r->len &&
                   (r->data[r->pos] == ' ' || r->data[r->pos] == '\t')) {
            size_t save_pos = r->pos;
            unsigned save_line = r->lineno;
            cfg_physical_line(r, &p, &len);
            size_t c = cfg_comment_start(p, len, r->flags);
            if (cfg_is_blank(p, c)) {
                /* A blank or comment-only indented line ends nothing; skip it. */
                if (c == len && cfg_is_blank(p, len)) {
                    r->pos = save_pos;
                    r->lineno = save_line;
                    break;
                }
                continue;
            }
            len = c;
        } else {
            break;
        }
        if (memchr(p, '\0', len)) {
            cfg_error_set(err, r->file, r->lineno, "NUL byte in line");
            return -1;
        }
        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        if (!buf_append_char(&r->line, ' ') || !buf_append(&r->line, p, len)) {
            cfg_error_set(err, r->file, start_line, "continued line too long");
            return -1;
        }
    }
    *line_r = str_trim(r->line.data);
    r->line.len = strlen(r->line.data);
    *lineno_r = start_line;
    return 1;
}

bool cfg_split_key_value(char *line, char sep, char **key_r, char **value_r)
{
    char *s = strchr(line, sep);
    if (!s)
        return false;
    *s = '\0';
    *key_r = str_trim(line);
    *value_r = str_trim(s + 1);
    return true;
}
