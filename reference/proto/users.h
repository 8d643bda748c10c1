/*
 * users: zolder's users file, "name:crypt-hash[:home]" per line, parsed from bytes, with
 * password verification through libcrypt. No file I/O: the caller reads the file.
 *
 * SYNTAX (see docs/maps.md)
 *   # comment (whole line, or after a blank)
 *   sjoerd:$y$j9T$...$...:/home/sjoerd
 *   bouke:$6$rounds=5000$...$...
 *   backup:*                        exists for delivery, can never log in
 *   Names: 1-32 characters from a-z 0-9 . _ -, not starting with '.' or '-', unique.
 *   Lookups are case-sensitive, as Unix user names are; since names are lower-case by syntax,
 *   callers lower-case SMTP local parts first (aliases_expand() does).
 *   Hash: any crypt(3) method libcrypt supports ($y$ yescrypt, $gy$, $7$, $2b$, $6$, $5$; the
 *   legacy $1$ and DES are accepted but flagged weak_hash). A hash starting with '*' or '!'
 *   (shadow's "locked") means the user cannot log in.
 *   Home: optional absolute path without ".." components.
 *
 * SECURITY
 *   Error messages never quote the hash field: a plain-text password pasted there must not
 *   end up in logs. Verification compares in constant time, and spends the same crypt work
 *   on unknown and locked users as on real ones (a yescrypt run), so timing does not tell
 *   which names exist. Hashing is slow by design: call users_verify() off the event loop.
 */
#ifndef ZOLDER_USERS_H
#define ZOLDER_USERS_H

#include <stdbool.h>
#include <stddef.h>

#include "cfglex.h"

#define USERS_NAME_MAX 32
#define USERS_HOME_MAX 1024
#define USERS_ENTRIES_MAX 10000
#define USERS_PASSWORD_MAX 1024  /* longer passwords are refused without hashing */

struct users;

struct users_entry {
    const char *name;
    const char *hash;
    const char *home;  /* NULL when the line has none */
    unsigned lineno;
    bool can_login;    /* false for '*' and '!' hashes */
    bool weak_hash;    /* legacy method (DES, MD5): worth a warning */
};

enum users_auth {
    USERS_AUTH_OK,
    USERS_AUTH_BAD_PASSWORD,
    USERS_AUTH_UNKNOWN_USER,
    USERS_AUTH_LOCKED,       /* '*' or '!' hash */
    USERS_AUTH_ERROR,        /* libcrypt refused the hash or the password (too long) */
};

/*
 * Parses a users file held in data[0..len). On success stores a new table in *users_r and
 * returns 0; on failure returns -1 with "FILE:LINE: what was expected" in err.
 */
int users_load(struct users **users_r, const char *file, const char *data, size_t len,
               struct cfg_error *err);
void users_free(struct users *users);
size_t users_count(const struct users *users);

/* The entry for name (exact, case-sensitive), or NULL. Valid while users lives. */
const struct users_entry *users_lookup(const struct users *users, const char *name);

/*
 * Checks password for name. Only USERS_AUTH_OK grants access; the other values are for the
 * log, never for the client (which gets one generic failure).
 */
enum users_auth users_verify(const struct users *users, const char *name, const char *password);

/*
 * users_verify in two halves, for checks on another thread: users_check_prepare copies what
 * the check needs out of the table (which a reload may free meanwhile) on the caller's
 * thread; users_check_run does the hashing, touching nothing but chk (thread-safe).
 */
#define USERS_HASH_MAX 512
struct users_check {
    char hash[USERS_HASH_MAX];    /* the user's hash, or the dummy hash */
    enum users_auth if_unusable;  /* UNKNOWN_USER or LOCKED when hash is the dummy, else OK */
};
void users_check_prepare(const struct users *users, const char *name, struct users_check *chk);
enum users_auth users_check_run(const struct users_check *chk, const char *password);

/* "ok", "bad-password", "unknown-user", "locked", "error": for key=value log lines. */
const char *users_auth_name(enum users_auth auth);

#endif
