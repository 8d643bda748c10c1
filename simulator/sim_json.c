/* sim_json: flat JSON objects for the control protocol and escaped strings for records. */
#include "sim_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define SIM_JSON_MAX_NUMBER 20

struct sim_json_in {
    const char *p;
    const char *end;
    char *err;
    size_t errsize;
};

static int sim_json_fail(struct sim_json_in *in, const char *what)
{
    snprintf(in->err, in->errsize, "bad JSON: %s", what);
    return -1;
}

static void sim_json_ws(struct sim_json_in *in)
{
    while (in->p < in->end && (*in->p == ' ' || *in->p == '\t' || *in->p == '\r' || *in->p == '\n'))
        in->p++;
}

static int sim_json_hex4(struct sim_json_in *in, unsigned *v)
{
    if (in->end - in->p < 4)
        return sim_json_fail(in, "short \\u escape");
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *in->p++;
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return sim_json_fail(in, "bad \\u escape");
        *v = *v << 4 | d;
    }
    return 0;
}

static bool sim_json_utf8(struct buf *b, unsigned cp)
{
    char o[4];
    size_t n;
    if (cp < 0x80) {
        o[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        o[0] = (char)(0xf0 | cp >> 18);
        o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return buf_append(b, o, n);
}

/* Reads a string at in->p (on the opening quote) into b. */
static int sim_json_string(struct sim_json_in *in, struct buf *b)
{
    in->p++;
    for (;;) {
        if (in->p >= in->end)
            return sim_json_fail(in, "unterminated string");
        unsigned char c = (unsigned char)*in->p++;
        if (c == '"')
            return 0;
        if (c < 0x20)
            return sim_json_fail(in, "control character in string");
        if (c != '\\') {
            if (!buf_append_char(b, (char)c))
                return sim_json_fail(in, "string too long");
            continue;
        }
        if (in->p >= in->end)
            return sim_json_fail(in, "unterminated escape");
        char e = *in->p++;
        char out;
        switch (e) {
        case '"': out = '"'; break;
        case '\\': out = '\\'; break;
        case '/': out = '/'; break;
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'n': out = '\n'; break;
        case 'r': out = '\r'; break;
        case 't': out = '\t'; break;
        case 'u': {
            unsigned cp;
            if (sim_json_hex4(in, &cp) < 0)
                return -1;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return sim_json_fail(in, "lone low surrogate");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                unsigned lo;
                if (in->end - in->p < 2 || in->p[0] != '\\' || in->p[1] != 'u')
                    return sim_json_fail(in, "lone high surrogate");
                in->p += 2;
                if (sim_json_hex4(in, &lo) < 0)
                    return -1;
                if (lo < 0xdc00 || lo > 0xdfff)
                    return sim_json_fail(in, "bad surrogate pair");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0)
                return sim_json_fail(in, "NUL in string");
            if (!sim_json_utf8(b, cp))
                return sim_json_fail(in, "string too long");
            continue;
        }
        default:
            return sim_json_fail(in, "bad escape");
        }
        if (!buf_append_char(b, out))
            return sim_json_fail(in, "string too long");
    }
}

static int sim_json_value(struct sim_json_in *in, struct sim_json_field *f)
{
    if (in->p >= in->end)
        return sim_json_fail(in, "missing value");
    char c = *in->p;
    if (c == '"') {
        struct buf b;
        buf_init(&b, 64u << 20);
        if (sim_json_string(in, &b) < 0) {
            buf_free(&b);
            return -1;
        }
        f->type = SIM_JSON_STRING;
        f->str_len = b.len;
        f->str = buf_steal(&b);
        return 0;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char num[SIM_JSON_MAX_NUMBER + 1];
        size_t n = 0;
        while (in->p < in->end && (*in->p == '-' || (*in->p >= '0' && *in->p <= '9'))) {
            if (n == SIM_JSON_MAX_NUMBER)
                return sim_json_fail(in, "number too long");
            num[n++] = *in->p++;
        }
        num[n] = '\0';
        if (in->p < in->end && (*in->p == '.' || *in->p == 'e' || *in->p == 'E'))
            return sim_json_fail(in, "only integers are supported");
        char *endp;
        errno = 0;
        long long v = strtoll(num, &endp, 10);
        if (errno || *endp || (num[0] == '-' && n == 1) ||
            (n > 1 && num[num[0] == '-'] == '0'))
            return sim_json_fail(in, "bad number");
        f->type = SIM_JSON_NUMBER;
        f->num = v;
        return 0;
    }
    static const struct { const char *word; enum sim_json_type type; bool value; } words[] = {
        {"true", SIM_JSON_BOOL, true}, {"false", SIM_JSON_BOOL, false}, {"null", SIM_JSON_NULL, false}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t wl = strlen(words[i].word);
        if ((size_t)(in->end - in->p) >= wl && memcmp(in->p, words[i].word, wl) == 0) {
            in->p += wl;
            f->type = words[i].type;
            f->boolean = words[i].value;
            return 0;
        }
    }
    if (c == '{' || c == '[')
        return sim_json_fail(in, "nested objects and arrays are not supported");
    return sim_json_fail(in, "unexpected character");
}

int sim_json_parse(const char *text, size_t len, struct sim_json_obj *obj, char *err,
                   size_t errsize)
{
    struct sim_json_in in = {.p = text, .end = text + len, .err = err, .errsize = errsize};
    memset(obj, 0, sizeof *obj);
    sim_json_ws(&in);
    if (in.p >= in.end || *in.p != '{')
        return sim_json_fail(&in, "expected an object");
    in.p++;
    sim_json_ws(&in);
    if (in.p < in.end && *in.p == '}') {
        in.p++;
    } else {
        for (;;) {
            sim_json_ws(&in);
            if (in.p >= in.end || *in.p != '"')
                return sim_json_fail(&in, "expected a key");
            if (obj->n == SIM_JSON_MAX_FIELDS)
                return sim_json_fail(&in, "too many fields");
            struct sim_json_field *f = &obj->fields[obj->n];
            struct buf key;
            buf_init(&key, 256);
            if (sim_json_string(&in, &key) < 0) {
                buf_free(&key);
                return -1;
            }
            f->key = buf_steal(&key);
            obj->n++;
            for (int i = 0; i < obj->n - 1; i++)
                if (strcmp(obj->fields[i].key, f->key) == 0)
                    return sim_json_fail(&in, "duplicate key");
            sim_json_ws(&in);
            if (in.p >= in.end || *in.p != ':')
                return sim_json_fail(&in, "expected ':'");
            in.p++;
            sim_json_ws(&in);
            if (sim_json_value(&in, f) < 0)
                return -1;
            sim_json_ws(&in);
            if (in.p < in.end && *in.p == ',') {
                in.p++;
                continue;
            }
            if (in.p < in.end && *in.p == '}') {
                in.p++;
                break;
            }
            return sim_json_fail(&in, "expected ',' or '}'");
        }
    }
    sim_json_ws(&in);
    if (in.p != in.end)
        return sim_json_fail(&in, "trailing bytes after the object");
    return 0;
}

void sim_json_obj_free(struct sim_json_obj *obj)
{
    for (int i = 0; i < obj->n; i++) {
        free(obj->fields[i].key);
        free(obj->fields[i].str);
    }
    obj->n = 0;
}

const struct sim_json_field *sim_json_get(const struct sim_json_obj *obj, const char *key)
{
    for (int i = 0; i < obj->n; i++)
        if (strcmp(obj->fields[i].key, key) == 0)
            return &obj->fields[i];
    return NULL;
}

const char *sim_json_str(const struct sim_json_obj *obj, const char *key)
{
    const struct sim_json_field *f = sim_json_get(obj, key);
    return f && f->type == SIM_JSON_STRING ? f->str : NULL;
}

bool sim_json_int(const struct sim_json_obj *obj, const char *key, long long *value_r)
{
    const struct sim_json_field *f = sim_json_get(obj, key);
    if (!f || f->type != SIM_JSON_NUMBER)
        return false;
    *value_r = f->num;
    return true;
}

bool sim_json_bool(const struct sim_json_obj *obj, const char *key, bool *value_r)
{
    const struct sim_json_field *f = sim_json_get(obj, key);
    if (!f || f->type != SIM_JSON_BOOL)
        return false;
    *value_r = f->boolean;
    return true;
}

/* Length of a valid UTF-8 sequence at p (1..4), or 0 when the bytes are not valid UTF-8. */
static size_t sim_json_utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t n;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

bool sim_json_put_u64(struct buf *b, unsigned long long v)
{
    char digits[24];
    size_t i = sizeof digits;
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return buf_append(b, digits + i, sizeof digits - i);
}

bool sim_json_put_str(struct buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    if (!buf_append_char(b, '"'))
        return false;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        bool ok;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            ok = buf_append(b, esc, 2);
            i++;
        } else if (c == '\n') {
            ok = buf_append(b, "\\n", 2);
            i++;
        } else if (c == '\r') {
            ok = buf_append(b, "\\r", 2);
            i++;
        } else if (c == '\t') {
            ok = buf_append(b, "\\t", 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            ok = buf_printf(b, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            /* a run of plain ASCII in one append */
            size_t j = i + 1;
            while (j < len && p[j] >= 0x20 && p[j] < 0x7f && p[j] != '"' && p[j] != '\\')
                j++;
            ok = buf_append(b, p + i, j - i);
            i = j;
        } else {
            size_t n = sim_json_utf8_len(p + i, len - i);
            if (n) {
                ok = buf_append(b, p + i, n);
                i += n;
            } else {
                ok = buf_printf(b, "\\u%04x", c);
                i++;
            }
        }
        if (!ok)
            return false;
    }
    return buf_append_char(b, '"');
}

bool sim_json_put_kv(struct buf *b, bool first, const char *key, const char *value)
{
    return (first || buf_append_char(b, ',')) && sim_json_put_str(b, key, strlen(key)) &&
           buf_append_char(b, ':') && sim_json_put_str(b, value, strlen(value));
}
