/* maildir_name: Maildir file names, key and ":2," flag info (see maildir_name.h). */
#include "maildir_name.h"

#include <string.h>

#include "mbox_flags.h"

static const struct {
    char letter;
    unsigned flag;
} maildir_letters[] = {
    {'D', MBOX_FLAG_DRAFT}, {'F', MBOX_FLAG_FLAGGED}, {'R', MBOX_FLAG_ANSWERED},
    {'S', MBOX_FLAG_SEEN},  {'T', MBOX_FLAG_DELETED},
};

static unsigned maildir_letter_flag(char c)
{
    for (size_t i = 0; i < sizeof maildir_letters / sizeof maildir_letters[0]; i++)
        if (maildir_letters[i].letter == c)
            return maildir_letters[i].flag;
    return 0;
}

/* ",X=digits" inside key; -1 when absent or malformed. */
static long long maildir_key_field(const char *key, size_t len, char field)
{
    for (size_t i = 0; i + 3 <= len; i++) {
        if (key[i] != ',' || key[i + 1] != field || key[i + 2] != '=')
            continue;
        size_t j = i + 3;
        long long v = 0;
        if (j >= len || key[j] < '0' || key[j] > '9')
            return -1;
        for (; j < len && key[j] >= '0' && key[j] <= '9'; j++) {
            if (v > (1LL << 50))
                return -1;
            v = v * 10 + (key[j] - '0');
        }
        if (j < len && key[j] != ',')
            return -1;
        return v;
    }
    return -1;
}

/* Adds c to set (ASCII order, no repeats); false when full. */
static bool maildir_set_add(char *set, size_t cap, char c)
{
    size_t n = strlen(set), i = 0;
    while (i < n && set[i] < c)
        i++;
    if (i < n && set[i] == c)
        return true;
    if (n + 2 > cap)
        return false;
    memmove(set + i + 1, set + i, n - i + 1);
    set[i] = c;
    return true;
}

bool maildir_name_parse(const char *name, size_t len, struct maildir_name *out)
{
    memset(out, 0, sizeof *out);
    out->size = out->vsize = -1;
    if (len == 0 || len > MAILDIR_NAME_MAX || name[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == '/')
            return false;
    }
    const char *colon = memchr(name, ':', len);
    out->key_len = colon ? (size_t)(colon - name) : len;
    if (out->key_len == 0)
        return false;
    out->size = maildir_key_field(name, out->key_len, 'S');
    out->vsize = maildir_key_field(name, out->key_len, 'W');
    if (!colon)
        return true;
    const char *info = colon + 1;
    size_t ilen = len - out->key_len - 1;
    if (ilen < 2 || info[0] != '2' || info[1] != ',')
        return true; /* not flag info: no flags */
    out->has_info = true;
    for (size_t i = 2; i < ilen; i++) {
        char c = info[i];
        unsigned f = maildir_letter_flag(c);
        if (f)
            out->flags |= f;
        else if (c >= 'a' && c <= 'z')
            out->letters |= 1u << (c - 'a');
        else if (c >= 'A' && c <= 'Z')
            (void)maildir_set_add(out->other, sizeof out->other, c); /* 26 at most: always fits */
    }
    return true;
}

size_t maildir_name_make(const char *key, size_t key_len, unsigned flags, unsigned letters, const char *other,
                         char *out, size_t outsize)
{
    char set[64] = "";
    for (size_t i = 0; i < sizeof maildir_letters / sizeof maildir_letters[0]; i++)
        if (flags & maildir_letters[i].flag)
            (void)maildir_set_add(set, sizeof set, maildir_letters[i].letter);
    for (unsigned n = 0; n < 26; n++)
        if (letters & (1u << n))
            (void)maildir_set_add(set, sizeof set, (char)('a' + n)); /* 5 + 26 + 26 letters fit in 64 */
    for (size_t i = 0; other && other[i]; i++) {
        char c = other[i];
        if (!maildir_letter_flag(c) && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) &&
            !maildir_set_add(set, sizeof set, c))
            return 0;
    }
    size_t n = strlen(set), total = key_len + 3 + n;
    if (key_len == 0 || total > MAILDIR_NAME_MAX || total + 1 > outsize)
        return 0;
    snprintf(out, outsize, "%.*s:2,%s", (int)key_len, key, set);
    return total;
}
