/*
 * uuwalk: the files uuencoded inside a text (the `begin 644 name.exe` blocks that mail
 * programs before MIME, and some still, put in a plain body), for the banned-name check and
 * the virus scanners. A pure function over the text's bytes (any part's decoded body).
 *
 * DESCRIPTION: a block starts with a line `begin MODE NAME` (MODE: 1-6 octal digits, one
 * space or tab between the fields, NAME the rest of the line) and runs to a line `end`; its
 * lines are classic uuencode (a length character, then 4 characters per 3 bytes, `` ` ``
 * or space for 0). `begin-base64 MODE NAME` (GNU uuencode -m) runs to `====` with base64
 * lines. Lines end with LF or CRLF. A block without its end line (a truncated message)
 * still yields its name and what was decoded up to there; a damaged line ends the block.
 *
 * SECURITY: names come from attackers: given as sent (the caller sanitises and normalises
 * them, banned.c); they can be empty or hold control characters.
 *
 * LIMITS: max_entries blocks, max_bytes decoded bytes in all (then `refused` is set and the
 * walk stops: the filter quarantines), names of at most 1024 bytes (longer ones are cut).
 */
#ifndef ZOLDER_UUWALK_H
#define ZOLDER_UUWALK_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define UUWALK_NAME_MAX 1024

struct uuwalk_limits {
    size_t max_entries;
    size_t max_bytes;
};

struct uuwalk_entry {
    char *name;            /* as sent (NUL-terminated; cut at UUWALK_NAME_MAX) */
    struct buf data;       /* the decoded bytes */
    bool complete;         /* its end line was found */
};

struct uuwalk {
    struct uuwalk_entry *entries;
    size_t nentries;
    const char *refused;   /* static reason (beyond the limits), or NULL */
};

/* Quick test: may data hold a uuencoded block (a line starting with "begin")? */
bool uuwalk_maybe(const char *data, size_t len);
void uuwalk_run(const char *data, size_t len, const struct uuwalk_limits *limits, struct uuwalk *out);
void uuwalk_free(struct uuwalk *walk);

#endif
