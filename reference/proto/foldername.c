/*
 * foldername: folder names, their index files and LIST patterns (see foldername.h).
 *
 * STANDARDS
 *   RFC 3501 5.1 (mailbox naming), 5.1.3 (modified UTF-7), 6.3.8 (LIST wildcards);
 *   RFC 6154 (SPECIAL-USE).
 */
#include "foldername.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "mutf7.h"

bool foldername_is_inbox(const char *name)
{
    return strcasecmp(name, "INBOX") == 0;
}

const char *foldername_check(const char *name, size_t len)
{
    if (len == 0)
        return "empty name";
    if (len > FOLDERNAME_MAX)
        return "name too long";
    if (strlen(name) != len)
        return "NUL in the name";
    if (len == 5 && foldername_is_inbox(name))
        return NULL;
    if (strncasecmp(name, "INBOX/", 6) == 0)
        return "INBOX cannot hold folders";
    unsigned depth = 0;
    for (size_t start = 0; start <= len;) {
        const char *slash = memchr(name + start, '/', len - start);
        size_t end = slash ? (size_t)(slash - name) : len;
        size_t clen = end - start;
        const char *c = name + start;
        if (clen == 0)
            return start == 0 ? "a name cannot start with '/'" : "empty component (\"//\") in the name";
        if (++depth > FOLDERNAME_DEPTH_MAX)
            return "too many levels";
        if (c[0] == '.')
            return (clen == 1 || (clen == 2 && c[1] == '.')) ? "\".\" and \"..\" are not folder names"
                                                              : "a name cannot start with '.'";
        if (clen >= 5 && memcmp(c + clen - 5, ".lock", 5) == 0)
            return "names ending in \".lock\" are reserved";
        if (depth == 1 && !slash && clen == 5 && memcmp(c, "rules", 5) == 0)
            return "\"rules\" is the delivery rules file";
        for (size_t i = 0; i < clen;) {
            unsigned long cp;
            size_t n = mutf7_utf8_char((const unsigned char *)c + i, clen - i, &cp);
            if (n == 0)
                return "invalid UTF-8";
            if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
                return "control character in the name";
            i += n;
        }
        if (!slash)
            break;
        start = end + 1;
    }
    return NULL;
}

const char *foldername_from_wire(const char *wire, size_t len, char *out, size_t outlen, bool *trailing_r)
{
    if (trailing_r)
        *trailing_r = false;
    if (outlen)
        out[0] = '\0';
    if (len > FOLDERNAME_WIRE_MAX)
        return "name too long";
    if (strlen(wire) != len)
        return "NUL in the name";
    if (len == 5 && foldername_is_inbox(wire)) {
        if (outlen < 6)
            return "name too long";
        memcpy(out, "INBOX", 6);
        return NULL;
    }
    struct buf b;
    buf_init(&b, FOLDERNAME_MAX + 1);
    const char *why = NULL;
    if (!mutf7_decode(wire, len, &b, &why)) {
        buf_free(&b);
        return strcmp(why, "name too long") == 0 ? why : "not a valid modified UTF-7 name";
    }
    if (trailing_r && b.len > 1 && b.data[b.len - 1] == '/') {
        *trailing_r = true;
        b.data[--b.len] = '\0';
    }
    const char *text = b.data ? b.data : "";
    why = foldername_check(text, b.len);
    if (!why && b.len >= outlen)
        why = "name too long";
    if (!why) {
        if (b.len == 5 && foldername_is_inbox(text))
            memcpy(out, "INBOX", 6);
        else
            memcpy(out, text, b.len + 1);
    }
    buf_free(&b);
    return why;
}

void foldername_index_file(const char *name, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    char esc[FOLDERNAME_MAX * 3 + 1];
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p && n + 3 < sizeof esc; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-') {
            esc[n++] = (char)c;
        } else {
            esc[n++] = '%';
            esc[n++] = hex[c >> 4];
            esc[n++] = hex[c & 15];
        }
    }
    esc[n] = '\0';
    if (n <= FOLDERNAME_INDEX_ESCAPED_MAX) {
        snprintf(out, outlen, "folder-%s", esc);
        return;
    }
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    size_t keep = FOLDERNAME_INDEX_ESCAPED_MAX - 20;
    while (keep > 0 && (esc[keep - 1] == '%' || (keep > 1 && esc[keep - 2] == '%')))
        keep--; /* never cut a %XX in two */
    snprintf(out, outlen, "folderh-%.*s-%016llx", (int)keep, esc, (unsigned long long)h);
}

bool foldername_match(const char *pattern, const char *name)
{
    size_t pn = strlen(pattern), nn = strlen(name);
    if (pn > FOLDERNAME_PATTERN_MAX || nn > FOLDERNAME_WIRE_MAX)
        return false;
    bool nocase = foldername_is_inbox(name);
    /* row[j]: pattern[0..i) matches name[0..j) */
    bool row[FOLDERNAME_WIRE_MAX + 1], next[FOLDERNAME_WIRE_MAX + 1];
    row[0] = true;
    for (size_t j = 1; j <= nn; j++)
        row[j] = false;
    for (size_t i = 0; i < pn; i++) {
        char pc = pattern[i];
        if (pc == '*' || pc == '%') {
            next[0] = row[0];
            for (size_t j = 1; j <= nn; j++)
                next[j] = row[j] || (next[j - 1] && (pc == '*' || name[j - 1] != '/'));
        } else {
            next[0] = false;
            for (size_t j = 1; j <= nn; j++) {
                char nc = name[j - 1];
                bool same = nocase ? (pc | 0x20) == (nc | 0x20) && ((pc >= 'A' && pc <= 'Z') || (pc >= 'a' && pc <= 'z'))
                                   : pc == nc;
                next[j] = row[j - 1] && same;
            }
        }
        memcpy(row, next, (nn + 1) * sizeof row[0]);
    }
    return row[nn];
}

const char *foldername_special_use(const char *name)
{
    static const char *const names[][2] = {
        {"Sent", "\\Sent"}, {"Drafts", "\\Drafts"}, {"Trash", "\\Trash"}, {"Junk", "\\Junk"}, {"Archive", "\\Archive"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i][0]) == 0)
            return names[i][1];
    return NULL;
}
