/* libFuzzer target: the control protocol's JSON reader, and the writer on what it read. */
#include <stddef.h>
#include <stdint.h>

#include "sim_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sim_json_obj obj;
    char err[128];
    struct buf out;
    buf_init(&out, 0);
    if (sim_json_parse((const char *)data, size, &obj, err, sizeof err) == 0) {
        for (int i = 0; i < obj.n; i++)
            if (obj.fields[i].type == SIM_JSON_STRING)
                sim_json_put_str(&out, obj.fields[i].str, obj.fields[i].str_len);
    }
    sim_json_obj_free(&obj);
    sim_json_put_str(&out, (const char *)data, size);
    buf_free(&out);
    return 0;
}
