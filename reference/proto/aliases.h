/*
 * aliases: the /etc/aliases map, parsed from bytes and expanded. No I/O: the caller reads the
 * file (fs_read_file) and hands over its bytes and name.
 *
 * SYNTAX (see docs/maps.md)
 *   # comment                       whole-line, or after a blank ("root: admin  # note")
 *   name: target, target, ...
 *       target, ...                 a line starting with a blank continues the previous one
 *   Targets: a local name ("admin"), a full address ("bob@example.org"), "\name" (deliver to
 *   the user name without expanding it again), or any of those in double quotes.
 *   Names and local targets: [A-Za-z0-9._+-], at most ALIASES_NAME_MAX bytes, compared
 *   case-insensitively (stored lower-case).
 *
 * SECURITY
 *   zolder never runs programs or writes files named in an alias: "|command", "/file" and
 *   ":include:/path" targets are parsed (quoted or not) and rejected with a file:line error,
 *   so a map written for sendmail fails loudly instead of silently losing mail. Every size is
 *   bounded: lines by cfglex, entries, targets per alias, expansion depth and result size.
 */
#ifndef ZOLDER_ALIASES_H
#define ZOLDER_ALIASES_H

#include <stdbool.h>
#include <stddef.h>

#include "cfglex.h"

#define ALIASES_NAME_MAX 64          /* RFC 5321 local-part limit */
#define ALIASES_TARGET_MAX 320       /* local@domain: 64 + 1 + 255 */
#define ALIASES_ENTRIES_MAX 10000
#define ALIASES_TARGETS_MAX 1000     /* per alias */
#define ALIASES_DEPTH_MAX 20         /* nested aliases followed during one expansion */
#define ALIASES_EXPAND_MAX 1000      /* final recipients of one expansion */

struct aliases;

/* The outcome of aliases_expand(): final recipients, each listed once, in first-seen order. */
struct aliases_result {
    char **rcpts;  /* lower-case local names, or local@domain with the domain lower-cased */
    size_t count;
    bool loop;     /* a name referred back to one being expanded; it was delivered to as a user */
};

/*
 * Parses an aliases file held in data[0..len). file names it in error messages. On success
 * stores a new map in *aliases_r and returns 0; on failure returns -1 with
 * "FILE:LINE: what was expected" in err and *aliases_r NULL.
 */
int aliases_load(struct aliases **aliases_r, const char *file, const char *data, size_t len,
                 struct cfg_error *err);
void aliases_free(struct aliases *aliases);

/* Number of aliases defined. */
size_t aliases_count(const struct aliases *aliases);

/*
 * The targets an alias lists, as written (after unquoting; "\name" keeps its backslash), or
 * NULL when name is not an alias. *count_r gets their number; *lineno_r (may be NULL) the line
 * that defined it.
 */
const char *const *aliases_lookup(const struct aliases *aliases, const char *name,
                                  size_t *count_r, unsigned *lineno_r);

/*
 * Expands the local name (case-insensitive, no "@domain") recursively into res, which the
 * caller releases with aliases_result_free() whatever the return value.
 *
 *  - A name that is not an alias is itself the (only) final recipient: expanding "bob" with
 *    no "bob:" line yields "bob".
 *  - A full address target is final: whether its domain is local is the caller's business.
 *  - "\name" is final: the user name, never expanded again ("bob: \bob, bob@isp.example").
 *  - A name that refers back to an alias being expanded (a: a, b  or  a: b / b: a) is
 *    delivered to as the user of that name, as sendmail does, and res->loop is set.
 *  - An alias reached again through another branch adds nothing new and is not re-expanded.
 *
 * Returns 0, or -1 with a static reason in *error_r when nesting exceeds ALIASES_DEPTH_MAX
 * or the result would exceed ALIASES_EXPAND_MAX recipients.
 */
int aliases_expand(const struct aliases *aliases, const char *name, struct aliases_result *res,
                   const char **error_r);
void aliases_result_free(struct aliases_result *res);

#endif
