/*
 * Fuzz target for reference/proto/smtp_cmd. Invariants: every failure carries a complete
 * reply; a parsed command written back in canonical form parses to the same command
 * (verb, argument, address, parameters, BDAT size); xtext decode/encode round-trips.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "smtp_cmd.h"

static void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_canonical(const struct smtp_cmd *cmd, struct buf *out)
{
    buf_append_str(out, smtp_verb_name(cmd->verb));
    switch (cmd->verb) {
    case SMTP_VERB_MAIL:
    case SMTP_VERB_RCPT:
        buf_append_str(out, cmd->verb == SMTP_VERB_MAIL ? " FROM:<" : " TO:<");
        addr_format(&cmd->addr, out);
        buf_append_char(out, '>');
        for (int i = 0; i < cmd->nparams; i++) {
            buf_append_char(out, ' ');
            buf_append_str(out, cmd->params[i].key);
            if (cmd->params[i].has_value) {
                buf_append_char(out, '=');
                buf_append_str(out, cmd->params[i].value);
            }
        }
        break;
    case SMTP_VERB_BDAT:
        buf_printf(out, " %llu%s", cmd->bdat_size, cmd->bdat_last ? " LAST" : "");
        break;
    default:
        if (cmd->arg[0]) {
            buf_append_char(out, ' ');
            buf_append_str(out, cmd->arg);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct smtp_cmd cmd, again; /* large; static only to keep the fuzzer stack small */
    struct smtp_reply_err err;
    const char *line = (const char *)data;

    if (!smtp_cmd_parse(line, size, &cmd, &err)) {
        fuzz_check(err.code == 500 || err.code == 501 || err.code == 555);
        fuzz_check(err.enhanced != NULL && err.text != NULL);
        fuzz_check((err.code == 500) == (err.enhanced[2] == '5' && err.enhanced[4] == '2'));
    } else {
        fuzz_check(cmd.verb != SMTP_VERB_UNKNOWN);
        fuzz_check(cmd.nparams >= 0 && cmd.nparams <= SMTP_PARAMS_MAX);
        for (int i = 0; i < cmd.nparams; i++) {
            fuzz_check(cmd.params[i].key[0] != '\0');
            fuzz_check(strchr(cmd.params[i].value, ' ') == NULL);
            fuzz_check(strchr(cmd.params[i].value, '=') == NULL);
            for (int j = 0; j < i; j++)
                fuzz_check(strcmp(cmd.params[i].key, cmd.params[j].key) != 0);
        }
        if (cmd.verb == SMTP_VERB_RCPT)
            fuzz_check(!(cmd.addr.flags & ADDR_F_NULL));
        struct buf canon;
        buf_init(&canon, 0);
        fuzz_canonical(&cmd, &canon);
        fuzz_check(smtp_cmd_parse(canon.data, canon.len, &again, &err));
        fuzz_check(again.verb == cmd.verb && again.nparams == cmd.nparams);
        fuzz_check(again.bdat_size == cmd.bdat_size && again.bdat_last == cmd.bdat_last);
        fuzz_check(strcmp(again.addr.local, cmd.addr.local) == 0);
        fuzz_check(strcmp(again.addr.domain, cmd.addr.domain) == 0);
        for (int i = 0; i < cmd.nparams; i++)
            fuzz_check(strcmp(again.params[i].key, cmd.params[i].key) == 0 &&
                       strcmp(again.params[i].value, cmd.params[i].value) == 0 &&
                       again.params[i].has_value == cmd.params[i].has_value);
        if (cmd.verb != SMTP_VERB_MAIL && cmd.verb != SMTP_VERB_RCPT &&
            cmd.verb != SMTP_VERB_BDAT)
            fuzz_check(strcmp(again.arg, cmd.arg) == 0);
        buf_free(&canon);
    }

    /* xtext on the same bytes, as a C string */
    char *in = malloc(size + 1);
    memcpy(in, data, size);
    in[size] = '\0';
    char dec[256];
    if (smtp_xtext_decode(in, dec, sizeof dec)) {
        fuzz_check(strlen(dec) <= strlen(in));
        struct buf enc;
        buf_init(&enc, 0);
        buf_append_str(&enc, ""); /* data stays NULL until something is appended */
        smtp_xtext_encode(dec, &enc);
        char dec2[256];
        fuzz_check(smtp_xtext_decode(enc.data, dec2, sizeof dec2));
        fuzz_check(strcmp(dec, dec2) == 0);
        buf_free(&enc);
    }
    free(in);
    return 0;
}
