/*
 * mutf7: RFC 3501 5.1.3 modified UTF-7 (see mutf7.h).
 *
 * STANDARDS
 *   RFC 3501 5.1.3; RFC 2152 (UTF-7, whose base64 runs this narrows); RFC 3629 (UTF-8);
 *   RFC 2781 (UTF-16 surrogate pairs).
 */
#include "mutf7.h"

#include <stdint.h>

#include "str.h"

static const char mutf7_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static bool mutf7_fail(const char **why_r, const char *why)
{
    *why_r = why;
    return false;
}

size_t mutf7_utf8_char(const unsigned char *s, size_t len, unsigned long *cp_r)
{
    if (len == 0 || s[0] == 0)
        return 0;
    unsigned long cp;
    size_t n;
    unsigned long min;
    if (s[0] < 0x80) {
        *cp_r = s[0];
        return 1;
    } else if ((s[0] & 0xe0) == 0xc0) {
        cp = s[0] & 0x1f;
        n = 2;
        min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        cp = s[0] & 0x0f;
        n = 3;
        min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        cp = s[0] & 0x07;
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *cp_r = cp;
    return n;
}

static bool mutf7_put_utf8(struct buf *out, unsigned long cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | cp >> 12);
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | cp >> 18);
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return buf_append(out, b, n);
}

static bool mutf7_direct(unsigned long cp)
{
    return cp >= 0x20 && cp <= 0x7e;
}

/* Decodes the base64 run in[0..len) (between '&' and '-') as UTF-16BE into out. */
static bool mutf7_decode_run(const unsigned char *in, size_t len, struct buf *out, const char **why_r)
{
    uint32_t bits = 0;
    unsigned nbits = 0;
    unsigned long high = 0; /* a high surrogate waiting for its low half */
    for (size_t i = 0; i < len; i++) {
        int v = str_b64_digit(in[i], ',');
        if (v < 0)
            return mutf7_fail(why_r, "invalid character in a base64 run");
        bits = (bits << 6 | (uint32_t)v) & 0xffffffu;
        nbits += 6;
        if (nbits < 16)
            continue;
        nbits -= 16;
        unsigned long unit = (bits >> nbits) & 0xffff;
        if (high) {
            if (unit < 0xdc00 || unit > 0xdfff)
                return mutf7_fail(why_r, "unpaired high surrogate");
            unsigned long cp = 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00);
            high = 0;
            if (!mutf7_put_utf8(out, cp))
                return mutf7_fail(why_r, "name too long");
        } else if (unit >= 0xd800 && unit <= 0xdbff) {
            high = unit;
        } else if (unit >= 0xdc00 && unit <= 0xdfff) {
            return mutf7_fail(why_r, "unpaired low surrogate");
        } else if (unit == 0) {
            return mutf7_fail(why_r, "NUL character");
        } else if (mutf7_direct(unit)) {
            return mutf7_fail(why_r, "printable ASCII character encoded in base64");
        } else if (!mutf7_put_utf8(out, unit)) {
            return mutf7_fail(why_r, "name too long");
        }
    }
    if (high)
        return mutf7_fail(why_r, "unpaired high surrogate");
    if (nbits >= 6)
        return mutf7_fail(why_r, "base64 run has a superfluous character");
    if (bits & ((1u << nbits) - 1))
        return mutf7_fail(why_r, "base64 run ends with non-zero bits");
    return true;
}

bool mutf7_decode(const char *text, size_t len, struct buf *out, const char **why_r)
{
    const unsigned char *in = (const unsigned char *)text;
    bool after_run = false;
    for (size_t i = 0; i < len;) {
        unsigned char c = in[i];
        if (c < 0x20 || c > 0x7e)
            return mutf7_fail(why_r, c >= 0x80 ? "8-bit byte in a modified UTF-7 name" : "control character in a name");
        if (c != '&') {
            if (!buf_append_char(out, (char)c))
                return mutf7_fail(why_r, "name too long");
            i++;
            after_run = false;
            continue;
        }
        size_t end = i + 1;
        while (end < len && in[end] != '-')
            end++;
        if (end >= len)
            return mutf7_fail(why_r, "base64 run without its closing '-'");
        if (end == i + 1) {
            if (!buf_append_char(out, '&'))
                return mutf7_fail(why_r, "name too long");
            after_run = false;
        } else {
            if (after_run)
                return mutf7_fail(why_r, "two base64 runs back to back");
            if (!mutf7_decode_run(in + i + 1, end - i - 1, out, why_r))
                return false;
            after_run = true;
        }
        i = end + 1;
    }
    return true;
}

struct mutf7_run {
    bool open;
    uint32_t bits;
    unsigned nbits;
};

static bool mutf7_run_unit(struct mutf7_run *r, struct buf *out, unsigned unit)
{
    if (!r->open) {
        if (!buf_append_char(out, '&'))
            return false;
        r->open = true;
        r->bits = 0;
        r->nbits = 0;
    }
    r->bits = (r->bits << 16 | unit) & 0xffffffu;
    r->nbits += 16;
    while (r->nbits >= 6) {
        r->nbits -= 6;
        if (!buf_append_char(out, mutf7_alphabet[(r->bits >> r->nbits) & 0x3f]))
            return false;
    }
    return true;
}

static bool mutf7_run_close(struct mutf7_run *r, struct buf *out)
{
    if (!r->open)
        return true;
    r->open = false;
    if (r->nbits && !buf_append_char(out, mutf7_alphabet[(r->bits << (6 - r->nbits)) & 0x3f]))
        return false;
    return buf_append_char(out, '-');
}

bool mutf7_encode(const char *text, size_t len, struct buf *out, const char **why_r)
{
    const unsigned char *in = (const unsigned char *)text;
    struct mutf7_run run = {0};
    for (size_t i = 0; i < len;) {
        unsigned long cp = 0;
        size_t n = mutf7_utf8_char(in + i, len - i, &cp);
        if (n == 0)
            return mutf7_fail(why_r, in[i] == 0 ? "NUL character" : "invalid UTF-8");
        bool ok;
        if (mutf7_direct(cp)) {
            ok = mutf7_run_close(&run, out) &&
                 (cp == '&' ? buf_append(out, "&-", 2) : buf_append_char(out, (char)cp));
        } else if (cp >= 0x10000) {
            ok = mutf7_run_unit(&run, out, (unsigned)(0xd800 + ((cp - 0x10000) >> 10))) &&
                 mutf7_run_unit(&run, out, (unsigned)(0xdc00 + ((cp - 0x10000) & 0x3ff)));
        } else {
            ok = mutf7_run_unit(&run, out, (unsigned)cp);
        }
        if (!ok)
            return mutf7_fail(why_r, "name too long");
        i += n;
    }
    if (!mutf7_run_close(&run, out))
        return mutf7_fail(why_r, "name too long");
    return true;
}
