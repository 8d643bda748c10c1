/*
 * mbox_flags: Status / X-Status / X-Keywords and From_ line dates (see mbox_flags.h).
 *
 * STANDARDS
 *   mutt's mbox.c (Status RO, X-Status AFTD), RFC 3501 2.3.2 (flags, keywords are atoms),
 *   RFC 4155 (From_ line with an asctime date).
 */
#include "mbox_flags.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

size_t mbox_header_len(const char *content, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const char *lf = memchr(content + pos, '\n', len - pos);
        size_t end = lf ? (size_t)(lf - content) + 1 : len;
        size_t n = end - pos - (lf != NULL);
        if (n > 0 && content[pos + n - 1] == '\r')
            n--;
        if (n == 0)
            return end;
        pos = end;
    }
    return len;
}

/* The fields of hdr in order: [start, end) of a whole field including continuation lines. */
struct mbox_field {
    size_t start, end, name_len, value;
};

static bool mbox_next_field(const char *hdr, size_t len, size_t *pos, struct mbox_field *f)
{
    while (*pos < len) {
        size_t start = *pos;
        const char *lf = memchr(hdr + start, '\n', len - start);
        size_t end = lf ? (size_t)(lf - hdr) + 1 : len;
        /* continuation lines */
        while (end < len && (hdr[end] == ' ' || hdr[end] == '\t')) {
            lf = memchr(hdr + end, '\n', len - end);
            end = lf ? (size_t)(lf - hdr) + 1 : len;
        }
        *pos = end;
        const char *colon = memchr(hdr + start, ':', end - start);
        f->start = start;
        f->end = end;
        /* a line that is not a field is returned too (copied as it is by a rewrite) */
        f->name_len = colon ? (size_t)(colon - (hdr + start)) : SIZE_MAX;
        f->value = colon ? f->name_len + 1 + start : end;
        return true;
    }
    return false;
}

static bool mbox_field_is(const char *hdr, const struct mbox_field *f, const char *name)
{
    return f->name_len == strlen(name) && strncasecmp(hdr + f->start, name, f->name_len) == 0;
}

bool mbox_keyword_valid(const char *s, size_t len)
{
    if (len == 0 || len > MBOX_KEYWORD_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c))
            return false;
    }
    return true;
}

unsigned mbox_flags_parse(const char *hdr, size_t hdr_len, struct buf *keywords)
{
    unsigned flags = 0, nkw = 0;
    size_t pos = 0;
    struct mbox_field f;
    while (mbox_next_field(hdr, hdr_len, &pos, &f)) {
        bool status = mbox_field_is(hdr, &f, "Status"), xstatus = mbox_field_is(hdr, &f, "X-Status");
        if (status || xstatus) {
            for (size_t i = f.value; i < f.end; i++) {
                switch (hdr[i]) {
                case 'R':
                    flags |= status ? MBOX_FLAG_SEEN : 0;
                    break;
                case 'O':
                    flags |= status ? MBOX_FLAG_OLD : 0;
                    break;
                case 'A':
                    flags |= xstatus ? MBOX_FLAG_ANSWERED : 0;
                    break;
                case 'F':
                    flags |= xstatus ? MBOX_FLAG_FLAGGED : 0;
                    break;
                case 'T':
                    flags |= xstatus ? MBOX_FLAG_DRAFT : 0;
                    break;
                case 'D':
                    flags |= xstatus ? MBOX_FLAG_DELETED : 0;
                    break;
                default:
                    break;
                }
            }
        } else if (keywords && mbox_field_is(hdr, &f, "X-Keywords")) {
            size_t i = f.value;
            while (i < f.end) {
                while (i < f.end && (hdr[i] == ' ' || hdr[i] == '\t' || hdr[i] == ',' || hdr[i] == '\r' ||
                                     hdr[i] == '\n'))
                    i++;
                size_t start = i;
                while (i < f.end && !(hdr[i] == ' ' || hdr[i] == '\t' || hdr[i] == ',' || hdr[i] == '\r' ||
                                      hdr[i] == '\n'))
                    i++;
                if (i > start && nkw < MBOX_KEYWORDS_MAX && mbox_keyword_valid(hdr + start, i - start)) {
                    if (keywords->len)
                        buf_append_char(keywords, ' ');
                    buf_append(keywords, hdr + start, i - start);
                    nkw++;
                }
            }
        }
    }
    return flags;
}

void mbox_flags_rewrite(const char *hdr, size_t hdr_len, unsigned flags, const char *keywords, struct buf *out)
{
    size_t pos = 0, body_sep = hdr_len;
    /* the empty line that ends the section, if any */
    if (hdr_len >= 1 && hdr[hdr_len - 1] == '\n') {
        size_t k = hdr_len - 1;
        if (k >= 1 && hdr[k - 1] == '\r')
            k--;
        if (k == 0 || hdr[k - 1] == '\n')
            body_sep = k;
    }
    struct mbox_field f;
    while (mbox_next_field(hdr, body_sep, &pos, &f)) {
        if (mbox_field_is(hdr, &f, "Status") || mbox_field_is(hdr, &f, "X-Status") ||
            mbox_field_is(hdr, &f, "X-Keywords"))
            continue;
        buf_append(out, hdr + f.start, f.end - f.start);
        if (hdr[f.end - 1] != '\n')
            buf_append_char(out, '\n');
    }
    buf_printf(out, "Status: %sO\n", flags & MBOX_FLAG_SEEN ? "R" : "");
    if (flags & (MBOX_FLAG_ANSWERED | MBOX_FLAG_FLAGGED | MBOX_FLAG_DRAFT | MBOX_FLAG_DELETED))
        buf_printf(out, "X-Status: %s%s%s%s\n", flags & MBOX_FLAG_ANSWERED ? "A" : "",
                   flags & MBOX_FLAG_FLAGGED ? "F" : "", flags & MBOX_FLAG_DRAFT ? "T" : "",
                   flags & MBOX_FLAG_DELETED ? "D" : "");
    if (keywords && keywords[0])
        buf_printf(out, "X-Keywords: %s\n", keywords);
    if (body_sep < hdr_len)
        buf_append(out, hdr + body_sep, hdr_len - body_sep);
}

time_t mbox_from_date(const char *line, size_t len)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char text[256];
    if (len >= sizeof text)
        len = sizeof text - 1;
    memcpy(text, line, len);
    text[len] = '\0';
    /* The date starts at a weekday name after the sender: "Sat Nov 28 06:53:24 2026". */
    for (char *p = text + 5; *p; p++) {
        if (p[-1] != ' ')
            continue;
        bool day = false;
        for (size_t d = 0; d < 7; d++)
            day |= strncmp(p, days[d], 3) == 0 && p[3] == ' ';
        if (!day)
            continue;
        char mon[4];
        int mday, hh, mm, ss, year, used = 0;
        if (sscanf(p + 4, "%3s %d %d:%d:%d %d%n", mon, &mday, &hh, &mm, &ss, &year, &used) != 6)
            continue;
        const char *m = strstr(months, mon);
        if (!m || strlen(mon) != 3 || (m - months) % 3 != 0 || mday < 1 || mday > 31 || hh > 23 || mm > 59 ||
            ss > 60 || year < 1970 || year > 9999 || hh < 0 || mm < 0 || ss < 0)
            continue;
        struct tm tm = {.tm_year = year - 1900, .tm_mon = (int)((m - months) / 3), .tm_mday = mday,
                        .tm_hour = hh, .tm_min = mm, .tm_sec = ss, .tm_isdst = -1};
        time_t t = mktime(&tm);
        return t < 0 ? 0 : t;
    }
    return 0;
}
