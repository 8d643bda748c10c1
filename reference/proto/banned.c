/* banned: is an attachment name banned? (see banned.h) */
#include "banned.h"

#include <string.h>
#include <strings.h>

#include "str.h"

static bool banned_ext_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

bool banned_list_parse(struct banned_list *list, const char *text, const char **error_r)
{
    memset(list, 0, sizeof *list);
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            return true;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t' && *p != ',')
            p++;
        size_t n = (size_t)(p - start);
        if (*start == '.') {
            start++;
            n--;
        }
        if (n == 0) {
            *error_r = "empty extension";
            return false;
        }
        if (n > BANNED_EXT_LEN) {
            *error_r = "extension longer than 16 characters";
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            if (!banned_ext_char(start[i])) {
                *error_r = "an extension holds only letters, digits, '-' and '_'";
                return false;
            }
        }
        if (list->n == BANNED_EXT_MAX) {
            *error_r = "more than 128 extensions";
            return false;
        }
        memcpy(list->exts[list->n], start, n);
        list->exts[list->n][n] = '\0';
        str_lower(list->exts[list->n]);
        list->n++;
    }
}

static bool banned_listed(const struct banned_list *list, const char *ext, size_t n)
{
    if (n == 0 || n > BANNED_EXT_LEN)
        return false;
    for (size_t i = 0; i < list->n; i++)
        if (strlen(list->exts[i]) == n && strncasecmp(list->exts[i], ext, n) == 0)
            return true;
    return false;
}

bool banned_check(const struct banned_list *list, const char *name, struct banned_verdict *v)
{
    memset(v, 0, sizeof *v);
    /* The last path component, as a Windows shell would save it. */
    const char *base = name;
    for (const char *c = name; *c; c++)
        if (*c == '/' || *c == '\\' || *c == ':')
            base = c + 1;
    size_t len = strlen(base);
    while (len > 0 && (base[len - 1] == '.' || base[len - 1] == ' ' || base[len - 1] == '\t'))
        len--;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)base[i];
        /* C0 controls and DEL; U+202E RIGHT-TO-LEFT OVERRIDE (and the other bidi
         * overrides/isolates U+202A-U+202E, U+2066-U+2069) disguise the real extension. */
        bool bidi = c == 0xE2 && i + 2 < len && (unsigned char)base[i + 1] == 0x80 &&
                    (unsigned char)base[i + 2] >= 0xAA && (unsigned char)base[i + 2] <= 0xAE;
        bool isolate = c == 0xE2 && i + 2 < len && (unsigned char)base[i + 1] == 0x81 &&
                       (unsigned char)base[i + 2] >= 0xA6 && (unsigned char)base[i + 2] <= 0xA9;
        if (c < 0x20 || c == 0x7f || bidi || isolate) {
            v->banned = true;
            v->why = bidi || isolate ? "bidirectional override in the name" : "control character in the name";
            return true;
        }
    }
    const char *dot = NULL;
    size_t dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (base[i] == '.') {
            dot = base + i;
            dots++;
        }
    }
    if (!dot)
        return false;
    size_t extlen = len - (size_t)(dot + 1 - base);
    if (!banned_listed(list, dot + 1, extlen))
        return false;
    v->banned = true;
    v->ext[0] = '.';
    memcpy(v->ext + 1, dot + 1, extlen);
    v->ext[extlen + 1] = '\0';
    str_lower(v->ext);
    /* "invoice.pdf.exe": a harmless-looking inner extension; ".hidden.exe" has none. */
    v->double_ext = dots >= 2 && dot > base + 1 &&
                    memchr(base + 1, '.', (size_t)(dot - base - 1)) != NULL;
    v->why = v->double_ext ? "double extension" : "banned extension";
    return true;
}
