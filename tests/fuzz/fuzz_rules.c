/*
 * Fuzz target for reference/proto/rules: the input is split at its first NUL into a rules
 * file and a message. Invariants: a refused file has "rules:LINE:" in its error and no
 * rules; an accepted one has at most RULES_MAX; evaluation returns a known action whose
 * folder name is valid and whose line is one of the file's.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t flen = nul ? (size_t)(nul - text) : size;
    const char *msg = nul ? nul + 1 : "Subject: x\r\n\r\nbody\r\n";
    size_t mlen = nul ? size - flen - 1 : strlen(msg);
    struct rules *r = NULL;
    struct cfg_error err;
    if (rules_parse(&r, "rules", text, flen, &err) < 0) {
        fuzz_check(r == NULL && strncmp(err.text, "rules:", 6) == 0);
        return 0;
    }
    fuzz_check(rules_count(r) <= RULES_MAX);
    struct rules_action a;
    rules_eval(r, msg, mlen, &a);
    fuzz_check(a.kind == RULES_INBOX || a.kind == RULES_FOLDER || a.kind == RULES_FORWARD ||
               a.kind == RULES_DISCARD);
    if (a.kind == RULES_FOLDER)
        fuzz_check(a.arg && rules_folder_name_ok(a.arg));
    if (a.kind == RULES_FORWARD)
        fuzz_check(a.arg && strchr(a.arg, '@'));
    fuzz_check(a.lineno == 0 || rules_count(r) > 0);
    rules_free(r);
    return 0;
}
