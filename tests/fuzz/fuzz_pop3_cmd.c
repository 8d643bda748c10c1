/*
 * Fuzz target for reference/proto/pop3_cmd. Invariants: a failure has an error text; a parsed
 * command written back in canonical form parses to the same command; numbers are in range;
 * SASL PLAIN fields are non-empty (but authzid) and NUL-free; base64 never overruns.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pop3_cmd cmd, again;
    static char canon[POP3_AUTH_LINE_MAX + 64];
    const char *error = NULL;
    const char *line = (const char *)data;
    if (!pop3_cmd_parse(line, size, &cmd, &error)) {
        fuzz_check(error != NULL && error[0] != '\0');
    } else {
        fuzz_check(cmd.verb != POP3_VERB_UNKNOWN);
        fuzz_check(!cmd.has_msg || (cmd.msg >= 1 && cmd.msg <= POP3_MSG_MAX));
        fuzz_check(cmd.lines <= POP3_LINES_MAX);
        int n;
        const char *v = pop3_verb_name(cmd.verb);
        switch (cmd.verb) {
        case POP3_VERB_TOP:
            n = snprintf(canon, sizeof canon, "%s %lu %lu", v, cmd.msg, cmd.lines);
            break;
        case POP3_VERB_USER:
        case POP3_VERB_PASS:
            n = snprintf(canon, sizeof canon, "%s %s", v, cmd.arg);
            break;
        case POP3_VERB_AUTH:
            n = snprintf(canon, sizeof canon, "%s %s%s%s", v, cmd.arg, cmd.has_initial ? " " : "", cmd.initial);
            break;
        default:
            n = cmd.has_msg ? snprintf(canon, sizeof canon, "%s %lu", v, cmd.msg) : snprintf(canon, sizeof canon, "%s", v);
        }
        fuzz_check(n > 0 && (size_t)n < sizeof canon);
        fuzz_check(pop3_cmd_parse(canon, (size_t)n, &again, &error));
        fuzz_check(again.verb == cmd.verb && again.has_msg == cmd.has_msg && again.msg == cmd.msg &&
                   again.lines == cmd.lines && strcmp(again.arg, cmd.arg) == 0 &&
                   again.has_initial == cmd.has_initial && strcmp(again.initial, cmd.initial) == 0);
    }
    static char z[POP3_SASL_FIELD_MAX + 1], c[POP3_SASL_FIELD_MAX + 1], p[POP3_SASL_FIELD_MAX + 1];
    if (pop3_sasl_plain(line, size, z, c, p, sizeof z)) {
        fuzz_check(c[0] != '\0' && p[0] != '\0');
        fuzz_check(strlen(z) + strlen(c) + strlen(p) + 2 <= size);
    }
    return 0;
}
