/*
 * xalloc: allocation that cannot return NULL. Running out of memory in zolder is treated
 * like OpenSMTPD's xmalloc: fatal for the process, which the parent (or the queue, on
 * restart) recovers from; nothing promised is lost because promises follow fsync.
 */
#ifndef ZOLDER_XALLOC_H
#define ZOLDER_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Grows an array of nmemb elements of size each; checks the multiplication. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
