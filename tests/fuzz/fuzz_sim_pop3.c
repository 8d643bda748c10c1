/* libFuzzer target: the POP3 engine over any bytes, chunked at 0xff bytes, logged in or not. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sim_pop3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_login(void *ctx, const char *user, const char *pass, struct sim_pop3_msg **msgs_r,
                      int *n_r, char *reply, size_t size)
{
    (void)ctx;
    (void)pass;
    (void)reply;
    (void)size;
    if (strcmp(user, "u") != 0)
        return -1;
    struct sim_pop3_msg *m = calloc(3, sizeof *m);
    for (int i = 0; i < 3; i++) {
        m[i].uid = (unsigned)i + 1;
        m[i].size = 20;
    }
    *msgs_r = m;
    *n_r = 3;
    return 0;
}

static int fuzz_read(void *ctx, unsigned uid, char **data_r, size_t *len_r)
{
    (void)ctx;
    static const char msg[] = "Subject: x\r\n\r\n.a\r\nb\nc";
    if (uid == 3)
        return -1;
    *data_r = malloc(sizeof msg);
    memcpy(*data_r, msg, sizeof msg);
    *len_r = sizeof msg - 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct sim_pop3_hooks hooks = {.login = fuzz_login, .read = fuzz_read};
    struct sim_pop3_session s;
    sim_pop3_init(&s, &hooks, "fuzz.test");
    s.offer_stls = true;
    size_t start = 0;
    bool open = true;
    for (size_t i = 0; i <= size && open; i++) {
        if (i < size && data[i] != 0xff)
            continue;
        open = sim_pop3_feed(&s, data + start, i - start);
        if (open && s.stls_now)
            open = sim_pop3_tls_started(&s);
        buf_reset(&s.out);
        start = i + 1;
    }
    sim_pop3_eof(&s);
    sim_pop3_free(&s);
    return 0;
}
