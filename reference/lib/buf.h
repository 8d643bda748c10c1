/*
 * buf: a growable, binary-safe byte buffer with a hard maximum, so a peer can never make
 * us allocate without bound (OpenSMTPD iobuf / Postfix VSTRING in spirit).
 */
#ifndef ZOLDER_BUF_H
#define ZOLDER_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "log.h"

struct buf {
    char *data;  /* always NUL-terminated after len, for convenience */
    size_t len;
    size_t cap;
    size_t max;  /* 0: no limit */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* Returns false (and appends nothing) when the result would exceed max. */
bool buf_append(struct buf *b, const void *data, size_t len);
bool buf_append_str(struct buf *b, const char *s);
bool buf_append_char(struct buf *b, char c);
bool buf_printf(struct buf *b, const char *fmt, ...) LOG_PRINTF(2, 3);
bool buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Hands the storage to the caller (NUL-terminated) and resets the buffer. */
char *buf_steal(struct buf *b);

#endif
