/* str: small string helpers (see str.h). */
#include "str.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool str_copy(char *dst, size_t dstsize, const char *src)
{
    size_t len = strlen(src);
    if (dstsize == 0)
        return false;
    if (len >= dstsize) {
        dst[0] = '\0';
        return false;
    }
    memcpy(dst, src, len + 1);
    return true;
}

char *str_trim(char *s)
{
    char *start = s;
    while (*start && isspace((unsigned char)*start))
        start++;
    size_t len = strlen(start);
    while (len > 0 && isspace((unsigned char)start[len - 1]))
        len--;
    memmove(s, start, len);
    s[len] = '\0';
    return s;
}

bool str_starts_with_nocase(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

bool str_ends_with_nocase(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcasecmp(s + ls - lx, suffix) == 0;
}

bool str_eq_nocase(const char *a, const char *b) { return strcasecmp(a, b) == 0; }

void str_lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

int str_split(char *s, const char *separators, char **fields, int max)
{
    int n = 0;
    char *p = s;
    for (;;) {
        p += strspn(p, separators);
        if (!*p)
            return n;
        if (n == max)
            return -1;
        fields[n++] = p;
        p += strcspn(p, separators);
        if (!*p)
            return n;
        *p++ = '\0';
    }
}

bool str_to_ulong(const char *s, unsigned long max, unsigned long *value_r)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *value_r = v;
    return true;
}

int str_b64_digit(unsigned char c, char digit63)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == (unsigned char)digit63)
        return 63;
    return -1;
}
