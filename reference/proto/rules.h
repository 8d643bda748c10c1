/*
 * rules: a user's delivery rules (procmail's job, docs/filter.md "Delivery rules"), parsed
 * from bytes and evaluated against one message. Pure: no I/O (local delivery reads the file
 * MAIL_DIR/rules and acts on the verdict).
 *
 * SYNTAX, one rule a line, '#' comments, first match wins, no match: INBOX
 *   if COND [and COND]... then ACTION
 *   COND:   header NAME contains STRING | header NAME matches REGEX | header NAME exists
 *           body contains STRING | body matches REGEX
 *           size > N | size < N           (bytes of the whole message)
 *           not COND | always
 *   ACTION: folder NAME | forward ADDRESS | discard | inbox | vacation DAYS TEXT
 *   vacation is not final: it asks for an RFC 3834 automatic reply (vacation.h: at most once
 *   per sender per DAYS, 1-365) and evaluation goes on to the next rules for where the
 *   message itself goes. TEXT is the reply's body; "\n" in it is a line break.
 *   STRING and REGEX: a word without blanks, or "double quoted" with \" and \\ escapes.
 *   REGEX: POSIX extended, case-insensitive; contains is case-insensitive too.
 *   NAME (folder): 1-64 of A-Z a-z 0-9 . _ -, not starting with '.', not "rules" (the rules
 *   file's own name in MAIL_DIR), not ending in ".lock" (a folder's dotlock); "inbox" means INBOX.
 *   ADDRESS: local@domain, without blanks, quotes or angle brackets.
 *   No piping to programs: there is no such action.
 *
 * Header values are matched unfolded (line breaks of folded fields removed), raw (RFC 2047
 * encoded words are not decoded); `body` sees at most RULES_BODY_MAX bytes of the body.
 *
 * LIMITS: RULES_MAX rules, RULES_CONDS_MAX conditions each; lines of CFG_LINE_MAX.
 */
#ifndef ZOLDER_RULES_H
#define ZOLDER_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "cfglex.h"

#define RULES_MAX 200
#define RULES_CONDS_MAX 8
#define RULES_FOLDER_MAX 64
#define RULES_BODY_MAX ((size_t)256 * 1024)

enum rules_kind { RULES_INBOX, RULES_FOLDER, RULES_FORWARD, RULES_DISCARD, RULES_VACATION };

struct rules;

struct rules_action {
    enum rules_kind kind;
    const char *arg;       /* folder name or address (owned by the rules), or NULL */
    unsigned lineno;       /* the matching rule's line, 0 when none matched */
    const char *vacation_text;   /* the first matching vacation rule's text, or NULL */
    unsigned vacation_days;
    unsigned vacation_lineno;
};

/* Parses a rules file. 0 and *rules_r, or -1 with "FILE:LINE: what was expected" in err. */
int rules_parse(struct rules **rules_r, const char *file, const char *data, size_t len,
                struct cfg_error *err);
void rules_free(struct rules *rules);
size_t rules_count(const struct rules *rules);
/* The action for a message (CRLF or LF line ends); never RULES_VACATION (see vacation_text). */
void rules_eval(const struct rules *rules, const char *msg, size_t len, struct rules_action *out);
bool rules_folder_name_ok(const char *name);

#endif
