/*
 * libFuzzer target: foldername_from_wire over arbitrary wire names, and foldername_match with
 * the input split at its first NUL into a pattern and a name. An accepted name never has an
 * empty, "." or ".." component or a leading '.'; its index file name stays one plain file
 * name (no '/', no '.'), and the name encodes back to the wire form it came from.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "foldername.h"
#include "mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2 * FOLDERNAME_WIRE_MAX)
        return 0;
    char text[2 * FOLDERNAME_WIRE_MAX + 1];
    memcpy(text, data, size);
    text[size] = '\0';
    char name[FOLDERNAME_MAX + 1];
    bool trailing = false;
    size_t len = strlen(text);
    if (!foldername_from_wire(text, len, name, sizeof name, &trailing)) {
        size_t n = strlen(name);
        if (n == 0 || n > FOLDERNAME_MAX || name[0] == '/' || name[0] == '.' || strstr(name, "//") ||
            strstr(name, "/.") || name[n - 1] == '/')
            __builtin_trap();
        if (strcmp(name, "INBOX") != 0) {
            char index[FOLDERNAME_INDEX_FILE_MAX];
            foldername_index_file(name, index, sizeof index);
            if (strchr(index, '/') || strchr(index, '.') || strlen(index) >= sizeof index - 1)
                __builtin_trap();
            struct buf w;
            const char *why = NULL;
            buf_init(&w, 0);
            if (!mutf7_encode(name, n, &w, &why) || w.len + trailing != len || memcmp(w.data, text, w.len) != 0)
                __builtin_trap();
            buf_free(&w);
        }
    }
    if (len < size)
        (void)foldername_match(text, text + len + 1);
    return 0;
}
