/* libFuzzer target: the smarthost's SMTP client against any server bytes (chunks at 0xff). */
#include <stddef.h>
#include <stdint.h>

#include "sim_smtpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char msg[] = "Subject: x\r\n\r\n.a\r\ncaf\xc3\xa9\r\n";
    struct sim_smtpc c;
    sim_smtpc_init(&c, "fuzz.test", "a@b", msg, sizeof msg - 1);
    sim_smtpc_add_rcpt(&c, "x@y");
    sim_smtpc_add_rcpt(&c, "z@y");
    size_t start = 0;
    bool more = true;
    for (size_t i = 0; i <= size && more; i++) {
        if (i < size && data[i] != 0xff)
            continue;
        more = sim_smtpc_feed(&c, data + start, i - start);
        buf_reset(&c.out);
        start = i + 1;
    }
    if (more)
        sim_smtpc_fail(&c, "eof");
    for (int i = 0; i < c.nrcpts; i++)
        if (c.rcpts[i].code != 0 && (c.rcpts[i].code < 200 || c.rcpts[i].code > 599))
            __builtin_trap();
    sim_smtpc_free(&c);
    return 0;
}
