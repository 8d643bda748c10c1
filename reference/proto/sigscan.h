/*
 * sigscan: the built-in virus scanner: signatures from a file, matched against decoded
 * message parts. Pure: bytes in, verdict out (the caller reads the file).
 *
 * DESCRIPTION: signature file (virus_signatures), one signature a line, '#' comments:
 *   NAME hex HEXBYTES       a byte pattern found anywhere in a part (4 to 4096 bytes)
 *   NAME text STRING        the same for a literal string (the rest of the line, >= 4 bytes)
 *   NAME sha256 HEX64       the SHA-256 of a whole part
 * NAME: 1 to 64 of A-Z a-z 0-9 . _ @ - + (e.g. Sober.K@mm). The EICAR test file
 * (https://www.eicar.org) is always known as "Eicar-Test-Signature", file or not.
 *
 * LIMITS: SIGSCAN_MAX signatures; matching costs about parts x patterns x part size
 * (memmem), fine for a home server's few hundred local signatures; ClamAV (clamd) is the
 * back-end for real signature databases.
 */
#ifndef ZOLDER_SIGSCAN_H
#define ZOLDER_SIGSCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "cfglex.h"

#define SIGSCAN_MAX 10000
#define SIGSCAN_NAME_MAX 64
#define SIGSCAN_PATTERN_MAX 4096

enum sigscan_kind { SIGSCAN_BYTES, SIGSCAN_SHA256 };

struct sigscan_sig {
    char name[SIGSCAN_NAME_MAX + 1];
    enum sigscan_kind kind;
    unsigned char *bytes;   /* pattern, or the 32-byte digest */
    size_t len;
};

struct sigscan_db {
    struct sigscan_sig *sigs;
    size_t n;
    bool any_sha256;
};

/* An empty database holding only the built-in EICAR signature. */
void sigscan_db_init(struct sigscan_db *db);
/* Adds the signatures of a file's bytes. false with "FILE:LINE: why" in err. */
bool sigscan_db_parse(struct sigscan_db *db, const char *file, const char *data, size_t len,
                      struct cfg_error *err);
void sigscan_db_free(struct sigscan_db *db);
/* The name of the first signature found in data, or NULL. */
const char *sigscan_match(const struct sigscan_db *db, const char *data, size_t len);

#endif
