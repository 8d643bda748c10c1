/*
 * libFuzzer target: the IMAP engine over any bytes, split into chunks at 0xff bytes, against a
 * small fake mailbox; and the command parser on each chunk.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sim_imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sim_imap_msg fuzz_msgs[3] = {{1, 30, 0}, {2, 30, 1}, {5, 30, 8}};
static int fuzz_n = 3;

static int fuzz_login(void *ctx, const char *user, const char *pass)
{
    (void)ctx;
    return strcmp(user, "u") == 0 && strcmp(pass, "p") == 0 ? 0 : -1;
}

static void fuzz_snapshot(void *ctx, struct sim_imap_msg **m, int *n, unsigned *v, unsigned *next)
{
    (void)ctx;
    *m = malloc(sizeof fuzz_msgs);
    memcpy(*m, fuzz_msgs, sizeof fuzz_msgs);
    *n = fuzz_n;
    *v = 1;
    *next = 6;
}

static int fuzz_read(void *ctx, unsigned uid, char **data, size_t *len)
{
    (void)ctx;
    if (uid == 2)
        return -1;
    static const char text[] = "Subject: fuzz\r\n\r\nbody line\r\n";
    *data = malloc(sizeof text);
    memcpy(*data, text, sizeof text);
    *len = sizeof text - 1;
    return 0;
}

static void fuzz_flags(void *ctx, unsigned uid, unsigned flags)
{
    (void)ctx;
    (void)uid;
    (void)flags;
}

static void fuzz_expunge(void *ctx, unsigned uid)
{
    (void)ctx;
    (void)uid;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct sim_imap_hooks hooks = {.login = fuzz_login, .snapshot = fuzz_snapshot,
                                                .read = fuzz_read, .set_flags = fuzz_flags,
                                                .expunge = fuzz_expunge};
    struct sim_imap_session s;
    sim_imap_init(&s, &hooks, "fuzz.test", true, false);
    size_t start = 0;
    bool open = true;
    for (size_t i = 0; i <= size && open; i++) {
        if (i < size && data[i] != 0xff)
            continue;
        struct sim_imap_cmd cmd;
        sim_imap_parse((const char *)data + start, i - start, &cmd);
        sim_imap_cmd_free(&cmd);
        open = sim_imap_feed(&s, data + start, i - start);
        if (open && s.starttls_now)
            open = sim_imap_tls_started(&s);
        if (open)
            sim_imap_check(&s);
        buf_reset(&s.out);
        start = i + 1;
    }
    sim_imap_eof(&s);
    sim_imap_free(&s);
    return 0;
}
