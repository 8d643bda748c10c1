/* sim_b64: base64 for SASL (see sim_b64.h). */
#include "sim_b64.h"

#include <string.h>

int sim_b64_decode(const char *in, size_t len, char *out, size_t outsize, size_t *outlen)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0;
    if (len % 4)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        unsigned v = 0;
        int pad = 0;
        for (size_t j = 0; j < 4; j++) {
            char ch = in[i + j];
            const char *pos = ch ? strchr(alphabet, ch) : NULL;
            if (ch == '=' && i + 4 == len && j >= 2 && (j == 3 || in[i + 3] == '=')) {
                pad++;
                v <<= 6;
            } else if (pos && !pad) {
                v = v << 6 | (unsigned)(pos - alphabet);
            } else {
                return -1;
            }
        }
        for (int k = 0; k < 3 - pad; k++) {
            if (n + 1 >= outsize)
                return -1;
            out[n++] = (char)(v >> (16 - 8 * k) & 0xff);
        }
    }
    out[n] = '\0';
    *outlen = n;
    return 0;
}

void sim_b64_encode(const char *in, size_t len, char *out, size_t outsize)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0;
    for (size_t i = 0; i < len && n + 5 <= outsize; i += 3) {
        unsigned v = (unsigned)(unsigned char)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)(unsigned char)in[i + 1] << 8;
        if (i + 2 < len)
            v |= (unsigned char)in[i + 2];
        out[n++] = alphabet[v >> 18 & 63];
        out[n++] = alphabet[v >> 12 & 63];
        out[n++] = (char)(i + 1 < len ? alphabet[v >> 6 & 63] : '=');
        out[n++] = (char)(i + 2 < len ? alphabet[v & 63] : '=');
    }
    if (outsize)
        out[n < outsize ? n : outsize - 1] = '\0';
}
