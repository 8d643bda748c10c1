/* str: small string helpers over NUL-terminated and counted strings. */
#ifndef ZOLDER_STR_H
#define ZOLDER_STR_H

#include <stdbool.h>
#include <stddef.h>

/* Copies with truncation check: returns false when src does not fit (dst then holds "" ). */
bool str_copy(char *dst, size_t dstsize, const char *src);
/* Trims ASCII whitespace at both ends, in place; returns s. */
char *str_trim(char *s);
bool str_starts_with_nocase(const char *s, const char *prefix);
bool str_ends_with_nocase(const char *s, const char *suffix);
bool str_eq_nocase(const char *a, const char *b);
void str_lower(char *s);
/*
 * Splits s (modified in place) at any of the separator bytes, skipping empty fields.
 * Stores up to max pointers; returns the number of fields, or -1 when there were more.
 */
int str_split(char *s, const char *separators, char **fields, int max);
/* Parses a non-negative decimal integer with an upper bound; false on junk or overflow. */
bool str_to_ulong(const char *s, unsigned long max, unsigned long *value_r);
/*
 * The value 0-63 of a base64 digit, or -1. digit63 is the last digit: '/' in RFC 4648
 * base64 (MIME, SASL), ',' in IMAP's modified UTF-7 (RFC 3501 5.1.3).
 */
int str_b64_digit(unsigned char c, char digit63);

#endif
