/* sim_b64: base64 (RFC 4648) for the SASL exchanges of SMTP AUTH and IMAP AUTHENTICATE. Pure. */
#ifndef ZOLDER_SIM_B64_H
#define ZOLDER_SIM_B64_H

#include <stddef.h>

/* Decodes in (padding required, no blanks) into out, NUL-terminated; -1 when invalid or when
 * it does not fit. */
int sim_b64_decode(const char *in, size_t len, char *out, size_t outsize, size_t *outlen);
/* Encodes in; out gets as much as fits (4 per 3 bytes, NUL-terminated). */
void sim_b64_encode(const char *in, size_t len, char *out, size_t outsize);

#endif
