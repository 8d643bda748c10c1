/* sigscan: the built-in virus scanner (see sigscan.h). */
#include "sigscan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "str.h"
#include "xalloc.h"

static void sigscan_add(struct sigscan_db *db, const char *name, enum sigscan_kind kind,
                        const void *bytes, size_t len)
{
    db->sigs = xreallocarray(db->sigs, db->n + 1, sizeof *db->sigs);
    struct sigscan_sig *s = &db->sigs[db->n++];
    memset(s, 0, sizeof *s);
    str_copy(s->name, sizeof s->name, name);
    s->kind = kind;
    s->bytes = xmalloc(len);
    memcpy(s->bytes, bytes, len);
    s->len = len;
    db->any_sha256 |= kind == SIGSCAN_SHA256;
}

void sigscan_db_init(struct sigscan_db *db)
{
    memset(db, 0, sizeof *db);
    /* Assembled from two halves, so this source file is not itself the test "virus". */
    char eicar[80];
    snprintf(eicar, sizeof eicar, "%s%s", "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-",
             "ANTIVIRUS-TEST-FILE!$H+H*");
    sigscan_add(db, "Eicar-Test-Signature", SIGSCAN_BYTES, eicar, strlen(eicar));
}

static bool sigscan_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > SIGSCAN_NAME_MAX)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              strchr("._@-+", *c)))
            return false;
    return true;
}

static int sigscan_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Hex digits (blanks allowed between bytes) into out; the byte count, or -1. */
static long sigscan_unhex(const char *text, unsigned char *out, size_t max)
{
    size_t n = 0;
    const char *p = text;
    while (*p) {
        if (*p == ' ' || *p == '\t') {
            p++;
            continue;
        }
        int hi = sigscan_hexval(p[0]);
        int lo = p[1] ? sigscan_hexval(p[1]) : -1;
        if (hi < 0 || lo < 0 || n == max)
            return -1;
        out[n++] = (unsigned char)(hi << 4 | lo);
        p += 2;
    }
    return (long)n;
}

bool sigscan_db_parse(struct sigscan_db *db, const char *file, const char *data, size_t len,
                      struct cfg_error *err)
{
    struct cfg_reader r;
    cfg_reader_init(&r, file, data, len, 0);
    char *line;
    unsigned lineno;
    int rc;
    unsigned char bytes[SIGSCAN_PATTERN_MAX];
    bool ok = true;
    while (ok && (rc = cfg_reader_next(&r, &line, &lineno, err)) == 1) {
        char *name = line;
        char *kind = strpbrk(name, " \t");
        char *value = NULL;
        if (kind) {
            *kind++ = '\0';
            kind += strspn(kind, " \t");
            value = strpbrk(kind, " \t");
            if (value) {
                *value++ = '\0';
                value += strspn(value, " \t");
            }
        }
        if (!kind || !value || !*value) {
            cfg_error_set(err, file, lineno, "expected NAME hex|text|sha256 VALUE");
            ok = false;
        } else if (!sigscan_name_ok(name)) {
            cfg_error_set(err, file, lineno, "bad signature name \"%s\" (1-64 of A-Z a-z 0-9 . _ @ - +)", name);
            ok = false;
        } else if (db->n >= SIGSCAN_MAX) {
            cfg_error_set(err, file, lineno, "more than %d signatures", SIGSCAN_MAX);
            ok = false;
        } else if (strcmp(kind, "hex") == 0) {
            long n = sigscan_unhex(value, bytes, sizeof bytes);
            if (n < 4) {
                cfg_error_set(err, file, lineno, "hex pattern must be 4 to %d bytes of hex digits", SIGSCAN_PATTERN_MAX);
                ok = false;
            } else {
                sigscan_add(db, name, SIGSCAN_BYTES, bytes, (size_t)n);
            }
        } else if (strcmp(kind, "text") == 0) {
            size_t n = strlen(value);
            if (n < 4 || n > SIGSCAN_PATTERN_MAX) {
                cfg_error_set(err, file, lineno, "text pattern must be 4 to %d bytes", SIGSCAN_PATTERN_MAX);
                ok = false;
            } else {
                sigscan_add(db, name, SIGSCAN_BYTES, value, n);
            }
        } else if (strcmp(kind, "sha256") == 0) {
            long n = strlen(value) == 64 ? sigscan_unhex(value, bytes, 32) : -1;
            if (n != 32) {
                cfg_error_set(err, file, lineno, "sha256 needs 64 hex digits");
                ok = false;
            } else {
                sigscan_add(db, name, SIGSCAN_SHA256, bytes, 32);
            }
        } else {
            cfg_error_set(err, file, lineno, "unknown signature kind \"%s\" (hex, text or sha256)", kind);
            ok = false;
        }
    }
    if (ok && rc < 0)
        ok = false;
    cfg_reader_free(&r);
    return ok;
}

void sigscan_db_free(struct sigscan_db *db)
{
    for (size_t i = 0; i < db->n; i++)
        free(db->sigs[i].bytes);
    free(db->sigs);
    memset(db, 0, sizeof *db);
}

const char *sigscan_match(const struct sigscan_db *db, const char *data, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (db->any_sha256)
        EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (size_t i = 0; i < db->n; i++) {
        const struct sigscan_sig *s = &db->sigs[i];
        if (s->kind == SIGSCAN_BYTES) {
            if (len >= s->len && memmem(data, len, s->bytes, s->len))
                return s->name;
        } else if (mdlen == 32 && memcmp(md, s->bytes, 32) == 0) {
            return s->name;
        }
    }
    return NULL;
}
