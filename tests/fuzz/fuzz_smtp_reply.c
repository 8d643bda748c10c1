/*
 * Fuzz target for reference/proto/smtp_reply. Invariants: parsing a byte stream whole and
 * byte by byte gives the same replies; every reply has a code 200..599, 1..LINES_MAX lines
 * and only printable text; formatting and EHLO parsing never fail.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

#define FUZZ_REPLIES_MAX 64

/* Parses all of data in pieces of step bytes; stores codes and text hashes of the replies. */
static size_t fuzz_run(const char *data, size_t size, size_t step, int *codes, size_t *lens,
                       int *error_r)
{
    static struct smtp_reply r;
    struct smtp_reply_parser p;
    struct buf pending;
    size_t n = 0, off = 0;
    smtp_reply_parser_init(&p);
    buf_init(&pending, 0);
    *error_r = 0;
    while (off < size && !*error_r && n < FUZZ_REPLIES_MAX) {
        size_t k = size - off < step ? size - off : step;
        buf_append(&pending, data + off, k);
        off += k;
        size_t used;
        do {
            const char *error = NULL;
            enum smtp_reply_result res = smtp_reply_parse(&p, pending.data, pending.len, &used, &r, &error);
            buf_consume(&pending, used);
            if (res == SMTP_REPLY_ERROR) {
                fuzz_check(error != NULL);
                *error_r = 1;
                break;
            }
            if (res == SMTP_REPLY_OK) {
                fuzz_check(r.code >= 200 && r.code <= 559);
                fuzz_check(r.nlines >= 1 && r.nlines <= SMTP_REPLY_LINES_MAX);
                fuzz_check(strlen(r.text) == r.textlen);
                for (size_t i = 0; i < r.textlen; i++)
                    fuzz_check(r.text[i] == '\n' || r.text[i] == '\t' ||
                               (r.text[i] >= 0x20 && r.text[i] < 0x7f));
                fuzz_check(!r.enhanced[0] || r.enhanced[0] == (char)('0' + r.code / 100));
                struct buf f;
                buf_init(&f, 0);
                smtp_reply_format(&r, &f);
                fuzz_check(f.len >= 3 && memchr(f.data, '\n', f.len) == NULL);
                buf_free(&f);
                struct smtp_ehlo e;
                smtp_ehlo_parse(&r, &e);
                codes[n] = r.code;
                lens[n] = r.textlen;
                if (++n == FUZZ_REPLIES_MAX)
                    break;
            }
        } while (used > 0);
    }
    buf_free(&pending);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int codes1[FUZZ_REPLIES_MAX], codes2[FUZZ_REPLIES_MAX];
    size_t lens1[FUZZ_REPLIES_MAX], lens2[FUZZ_REPLIES_MAX];
    int err1, err2;
    size_t n1 = fuzz_run((const char *)data, size, size ? size : 1, codes1, lens1, &err1);
    size_t n2 = fuzz_run((const char *)data, size, 1, codes2, lens2, &err2);
    fuzz_check(n1 == n2 && err1 == err2);
    for (size_t i = 0; i < n1; i++)
        fuzz_check(codes1[i] == codes2[i] && lens1[i] == lens2[i]);
    return 0;
}
