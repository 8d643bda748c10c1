/*
 * libFuzzer target: the strict SMTP engine over any bytes, split into chunks where the input
 * has a 0xff byte (so the pipelining and line-splitting paths see many shapes). Also the
 * command parser on each chunk.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sim_smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_script(void *ctx, enum sim_smtp_stage stage, unsigned msgno, const char *rcpt,
                        struct sim_smtp_action *act)
{
    (void)ctx;
    (void)rcpt;
    if (stage == SIM_STAGE_RCPT && msgno == 2)
        memcpy(act->reply, "451 4.3.0 later", 16);
    if (stage == SIM_STAGE_DATA && msgno == 3)
        act->delay_ms = 10;
}

static void fuzz_rcpt(void *ctx, const char *rcpt, char *reply, size_t size)
{
    (void)ctx;
    if (strstr(rcpt, "deny") && size > 4)
        memcpy(reply, "554 x", 6);
}

static bool fuzz_auth(void *ctx, const char *user, const char *pass)
{
    (void)ctx;
    return strcmp(user, "u") == 0 && strcmp(pass, "p") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct sim_smtp_hooks hooks = {.script = fuzz_script, .rcpt_check = fuzz_rcpt,
                                                .auth_check = fuzz_auth};
    struct sim_smtp_session s;
    sim_smtp_session_init(&s, &hooks, "fuzz.test");
    /* STARTTLS offered; STARTTLS "completes" at once (the handshake is the caller's) */
    s.offer_starttls = true;
    enum sim_smtp_status st = sim_smtp_start(&s);
    size_t start = 0;
    for (size_t i = 0; i <= size && st != SIM_SMTP_CLOSE; i++) {
        if (i < size && data[i] != 0xff)
            continue;
        struct sim_smtp_cmd cmd;
        sim_smtp_parse_command((const char *)data + start, i - start, true, &cmd);
        st = sim_smtp_feed(&s, data + start, i - start);
        while (st == SIM_SMTP_WAIT || st == SIM_SMTP_TLS)
            st = st == SIM_SMTP_WAIT ? sim_smtp_resume(&s) : sim_smtp_tls_started(&s);
        buf_reset(&s.out);
        start = i + 1;
    }
    sim_smtp_eof(&s);
    sim_smtp_session_free(&s);
    return 0;
}
