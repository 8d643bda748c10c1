/*
 * libFuzzer target: the DSN writer with hostile input (the returned message, a remote reply
 * text, an address). Invariants: the header section ends where dsn_header_len says; the
 * report, up to the returned message, has no bare CR or LF from the input (no injection of
 * lines, hence of header fields or parts).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* input: TEXT \0 MESSAGE; TEXT is both the diagnostic and the address */
    const char *in = (const char *)data;
    const char *nul = memchr(in, '\0', size);
    size_t tlen = nul ? (size_t)(nul - in) : size;
    char *text = malloc(tlen + 1);
    memcpy(text, in, tlen);
    text[tlen] = '\0';
    const char *msg = nul ? nul + 1 : "";
    size_t mlen = nul ? size - tlen - 1 : 0;

    size_t hl = dsn_header_len(msg, mlen);
    if (hl > mlen)
        __builtin_trap();

    struct dsn_rcpt rc = {.final_rcpt = text, .orcpt = text, .action = DSN_ACTION_FAILED, .status = text,
                          .remote_mta = text, .diagnostic = text};
    struct dsn_report r = {.kind = (enum dsn_kind)(size % 3), .reporting_mta = "zolder.thuis", .to = text,
                           .queue_id = "20QKBSX000THV273", .envid = text, .arrival_date = "x", .date = "y",
                           .message_id = text, .will_retry_until = text, .ret_full = size & 1,
                           .full_max = 4096, .rcpts = &rc, .nrcpts = 1, .message = msg, .message_len = mlen};
    struct buf out;
    buf_init(&out, 0);
    dsn_format(&r, &out);
    /* the report up to the returned message: every CR is part of a CRLF */
    const char *ret = memmem(out.data, out.len, "rfc822-headers\r\n", 16);
    const char *ret2 = memmem(out.data, out.len, "message/rfc822\r\n", 16);
    if (!ret || (ret2 && ret2 < ret))
        ret = ret2;
    size_t upto = ret ? (size_t)(ret - out.data) : out.len;
    for (size_t i = 0; i < upto; i++) {
        if (out.data[i] == '\r' && (i + 1 >= out.len || out.data[i + 1] != '\n'))
            __builtin_trap();
        if (out.data[i] == '\n' && (i == 0 || out.data[i - 1] != '\r'))
            __builtin_trap();
    }
    buf_free(&out);
    free(text);
    return 0;
}
