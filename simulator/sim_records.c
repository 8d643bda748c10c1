/* sim_records: ispsim's machine-readable and readable records (see sim_records.h). */
#include "sim_records.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "fsutil.h"
#include "sim_json.h"
#include "str.h"
#include "xalloc.h"

int sim_records_init(struct sim_records *r, const char *dir)
{
    memset(r, 0, sizeof *r);
    r->next_seq = 1;
    if (!dir)
        return 0;
    if (fs_mkdir_p(dir, 0755) < 0)
        return -1;
    char *p = fs_path_resolve(dir, "records.jsonl");
    r->jsonl = fopen(p, "ae");
    free(p);
    p = fs_path_resolve(dir, "records.txt");
    r->txt = fopen(p, "ae");
    free(p);
    if (!r->jsonl || !r->txt) {
        sim_records_free(r);
        return -1;
    }
    return 0;
}

void sim_records_clear(struct sim_records *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->entries[i].json);
    r->n = 0;
}

void sim_records_free(struct sim_records *r)
{
    sim_records_clear(r);
    free(r->entries);
    r->entries = NULL;
    r->cap = 0;
    if (r->jsonl)
        fclose(r->jsonl);
    if (r->txt)
        fclose(r->txt);
    r->jsonl = r->txt = NULL;
}

void sim_records_add(struct sim_records *r, const char *kind, const char *fields,
                     const char *readable)
{
    char when[64];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    /* the date and time to the second change seldom: formatted once per second */
    if (tv.tv_sec != r->stamp_sec || !r->stamp[0]) {
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        strftime(r->stamp, sizeof r->stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        r->stamp_sec = tv.tv_sec;
    }
    /* every message adds about ten records: no printf on this path */
    size_t stamp_len = strlen(r->stamp);
    unsigned ms = (unsigned)(tv.tv_usec / 1000);
    memcpy(when, r->stamp, stamp_len);
    when[stamp_len] = '.';
    when[stamp_len + 1] = (char)('0' + ms / 100);
    when[stamp_len + 2] = (char)('0' + ms / 10 % 10);
    when[stamp_len + 3] = (char)('0' + ms % 10);
    when[stamp_len + 4] = 'Z';
    when[stamp_len + 5] = '\0';

    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b, "{\"seq\":");
    sim_json_put_u64(&b, r->next_seq);
    buf_append_str(&b, ",\"time\":\"");
    buf_append(&b, when, stamp_len + 5);
    buf_append_str(&b, "\",\"kind\":\"");
    buf_append_str(&b, kind);
    buf_append_char(&b, '"');
    if (fields && *fields) {
        if (*fields != ',')
            buf_append_char(&b, ',');
        buf_append_str(&b, fields);
    }
    buf_append_char(&b, '}');
    if (r->jsonl) {
        fprintf(r->jsonl, "%s\n", b.data);
        fflush(r->jsonl);
    }
    if (r->txt) {
        /* One event, one line: control bytes never reach the readable file raw. */
        fprintf(r->txt, "%s %s ", when, kind);
        for (const char *p = readable ? readable : ""; *p; p++)
            fputc((unsigned char)*p < 0x20 ? '?' : *p, r->txt);
        fputc('\n', r->txt);
        fflush(r->txt);
    }
    if (r->n == SIM_RECORDS_MAX) {
        size_t drop = SIM_RECORDS_MAX / 10;
        for (size_t i = 0; i < drop; i++)
            free(r->entries[i].json);
        memmove(r->entries, r->entries + drop, (r->n - drop) * sizeof *r->entries);
        r->n -= drop;
        r->dropped += drop;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 256;
        r->entries = xreallocarray(r->entries, r->cap, sizeof *r->entries);
    }
    struct sim_record_entry *e = &r->entries[r->n++];
    e->seq = r->next_seq++;
    str_copy(e->kind, sizeof e->kind, kind);
    e->json = buf_steal(&b);
}

void sim_records_read(const struct sim_records *r, const char *kind, unsigned long long since,
                      size_t limit, struct buf *out, unsigned long long *next_r)
{
    if (limit == 0 || limit > SIM_RECORDS_READ_MAX)
        limit = SIM_RECORDS_READ_MAX;
    size_t count = 0;
    unsigned long long next = since;
    buf_append_char(out, '[');
    for (size_t i = 0; i < r->n && count < limit; i++) {
        const struct sim_record_entry *e = &r->entries[i];
        if (e->seq < since)
            continue;
        next = e->seq + 1;
        if (kind && strcmp(kind, e->kind) != 0)
            continue;
        if (count++)
            buf_append_char(out, ',');
        buf_append_str(out, e->json);
    }
    buf_append_char(out, ']');
    if (count < limit)
        next = r->next_seq;
    *next_r = next;
}
