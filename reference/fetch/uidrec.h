/*
 * uidrec: the per-account record of messages already handed to zolder, so a poll never
 * delivers one twice (fetchmail's .fetchids, made durable).
 *
 * DESCRIPTION
 *   One file per account, STATE_DIR/fetch/ACCOUNT.uids:
 *     zolder-fetch-uids 1
 *     V UIDVALIDITY        (IMAP only; a new value forgets every UID)
 *     U UID                (one line per delivered message)
 *   uidrec_add() appends a line; uidrec_sync() makes every appended line durable (fdatasync)
 *   with one call, so a batch of hand-offs costs one sync. The poller promises the server
 *   nothing (DELE, \Deleted) about a message before its line is synced. uidrec_rewrite()
 *   keeps only the UIDs still on the server (write, fsync, rename, fsync of the folder).
 *
 * SECURITY
 *   UIDs come from the server: only 1-70 bytes 0x21-0x7E are accepted (RFC 1939 7), so a
 *   line can never be forged or split. Files are created 0600.
 *
 * LIMITS
 *   At most UIDREC_MAX UIDs per account; a torn last line (a crash mid-append) is ignored.
 */
#ifndef ZOLDER_FETCH_UIDREC_H
#define ZOLDER_FETCH_UIDREC_H

#include <stdbool.h>
#include <stddef.h>

#define UIDREC_MAX 1000000
#define UIDREC_UID_MAX 70

struct uidrec {
    char *path;
    int fd;                 /* append descriptor, -1 until the first add */
    unsigned long validity; /* IMAP UIDVALIDITY, 0 for POP3 */
    char **slots;           /* open-addressing hash of UIDs */
    size_t cap, count;
    bool dirty;             /* appended and not yet synced */
};

/* ACCOUNT from server and user: safe characters only, plus a hash against collisions. */
void uidrec_account_name(const char *server, const char *user, char *out, size_t outsize);
/* Opens (creating STATE_DIR/fetch) and loads. 0, or -1 with errno. */
int uidrec_open(struct uidrec *r, const char *state_dir, const char *account);
/* The same format under another extension: STATE_DIR/fetch/ACCOUNT.EXT (e.g. "warned", the
 * oversized messages the postmaster was told about). */
int uidrec_open_ext(struct uidrec *r, const char *state_dir, const char *account, const char *ext);
void uidrec_close(struct uidrec *r);
bool uidrec_has(const struct uidrec *r, const char *uid);
/* Appends (not yet durable). -1 on a bad UID or a write error. */
int uidrec_add(struct uidrec *r, const char *uid);
/* fdatasync of the appended lines (no-op when nothing is pending). 0 or -1. */
int uidrec_sync(struct uidrec *r);
/* IMAP: a UIDVALIDITY different from the recorded one forgets every UID (rewrites). */
int uidrec_set_validity(struct uidrec *r, unsigned long validity);
/* Keeps only the UIDs in keep[0..n) that are recorded; durable on return. */
int uidrec_rewrite(struct uidrec *r, char *const *keep, size_t n);
/* Forgets the UIDs in gone[0..n) (deleted on the server), keeps every other; durable. */
int uidrec_forget(struct uidrec *r, char *const *gone, size_t n);
bool uidrec_uid_valid(const char *uid);

#endif
