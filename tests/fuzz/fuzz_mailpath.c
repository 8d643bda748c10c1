/*
 * libFuzzer target: mailpath_user_dir over arbitrary mail_dir values, user names and homes
 * (three NUL-separated fields). Whatever it accepts must be an absolute path with no "..".
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mailpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[3 * MAILPATH_MAX];
    if (size >= sizeof text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    const char *field[3] = {text, "bouke", NULL};
    size_t nf = 1;
    for (size_t i = 0; i < size && nf < 3; i++) {
        if (text[i] == '\0')
            field[nf++] = text + i + 1;
    }
    char out[MAILPATH_MAX];
    const char *why = NULL;
    bool valid = mailpath_valid(field[0], &why);
    if (!mailpath_user_dir(field[0], "/var/lib/zolder", field[1], field[2], out, sizeof out, &why)) {
        if (!why || out[0])
            __builtin_trap();
        return 0;
    }
    if (!valid || out[0] != '/' || strstr(out, "/../") || strstr(out, "//"))
        __builtin_trap();
    size_t n = strlen(out);
    if (n >= 3 && strcmp(out + n - 3, "/..") == 0)
        __builtin_trap();
    return 0;
}
