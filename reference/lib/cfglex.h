/*
 * cfglex: the line lexer every config and map format shares (zolder.conf, aliases, access,
 * hosts.allow, users, hosts, fetchmailrc-style worlds). Pure: it walks a byte buffer.
 *
 * A logical line is one physical line with comments removed and whitespace trimmed, joined
 * with its continuations when the format has them. Empty logical lines are skipped. Every
 * line comes with the number of the physical line it started on, for file:line errors.
 */
#ifndef ZOLDER_CFGLEX_H
#define ZOLDER_CFGLEX_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "log.h"

enum cfg_flags {
    CFG_CONT_INDENT = 1 << 0,     /* a line starting with blank continues the previous (aliases, main.cf) */
    CFG_CONT_BACKSLASH = 1 << 1,  /* a line ending in '\' continues on the next (hosts.allow) */
    CFG_TRAILING_COMMENT = 1 << 2 /* "value  # note": '#' after a blank starts a comment */
};

#define CFG_LINE_MAX 8192

struct cfg_reader {
    const char *file;
    const char *data;
    size_t len;
    size_t pos;
    unsigned lineno;   /* physical lines consumed */
    unsigned flags;
    struct buf line;
};

struct cfg_error {
    char text[512];
};

void cfg_reader_init(struct cfg_reader *r, const char *file, const char *data, size_t len,
                     unsigned flags);
void cfg_reader_free(struct cfg_reader *r);
/*
 * 1: *line_r holds the next logical line (valid until the next call), *lineno_r its start.
 * 0: end of input. -1: error in err (a NUL byte, or a line over CFG_LINE_MAX).
 */
int cfg_reader_next(struct cfg_reader *r, char **line_r, unsigned *lineno_r,
                    struct cfg_error *err);

/* Splits "key = value" (or "key: value" when sep is ':'); both trimmed. false: no separator. */
bool cfg_split_key_value(char *line, char sep, char **key_r, char **value_r);

/* Formats "FILE:LINE: text" into err. */
void cfg_error_set(struct cfg_error *err, const char *file, unsigned lineno, const char *fmt, ...)
    LOG_PRINTF(4, 5);

#endif
