/*
 * sim_json: the JSON that ispsim's control protocol and records need, no more. Pure.
 *
 * Requests are flat objects: {"verb":"x","key":"string","n":12,"flag":true,"none":null}.
 * Nested objects and arrays are refused with an error (the protocol never needs them).
 * Writing escapes strings; bytes that are not valid UTF-8 are written as \u00XX (Latin-1),
 * so every record is valid JSON and one line.
 */
#ifndef ZOLDER_SIM_JSON_H
#define ZOLDER_SIM_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define SIM_JSON_MAX_FIELDS 32

enum sim_json_type { SIM_JSON_STRING, SIM_JSON_NUMBER, SIM_JSON_BOOL, SIM_JSON_NULL };

struct sim_json_field {
    char *key;
    enum sim_json_type type;
    char *str;        /* SIM_JSON_STRING: decoded UTF-8, NUL-terminated (no NUL inside) */
    size_t str_len;
    long long num;    /* SIM_JSON_NUMBER: integers only */
    bool boolean;
};

struct sim_json_obj {
    struct sim_json_field fields[SIM_JSON_MAX_FIELDS];
    int n;
};

/* 0 on success; -1 with err filled. The object is freed with sim_json_obj_free either way. */
int sim_json_parse(const char *text, size_t len, struct sim_json_obj *obj, char *err,
                   size_t errsize);
void sim_json_obj_free(struct sim_json_obj *obj);

const struct sim_json_field *sim_json_get(const struct sim_json_obj *obj, const char *key);
/* NULL when absent or not a string. */
const char *sim_json_str(const struct sim_json_obj *obj, const char *key);
/* false when absent or not a number. */
bool sim_json_int(const struct sim_json_obj *obj, const char *key, long long *value_r);
/* false when absent; *value_r holds the boolean. */
bool sim_json_bool(const struct sim_json_obj *obj, const char *key, bool *value_r);

/* Appends s (len bytes) as a quoted JSON string. */
bool sim_json_put_str(struct buf *b, const char *s, size_t len);
/* Appends an unsigned number in decimal (the hot record paths avoid printf). */
bool sim_json_put_u64(struct buf *b, unsigned long long v);
/* Appends ,"key":"value" (or without the comma when first). */
bool sim_json_put_kv(struct buf *b, bool first, const char *key, const char *value);

#endif
