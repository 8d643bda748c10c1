/*
 * sim_records: everything ispsim sees, as JSON lines, kept in memory for the control
 * protocol (records.read) and, with -r DIR, appended to DIR/records.jsonl and, readable,
 * DIR/records.txt.
 *
 * Each record is one JSON object on one line: {"seq":N,"time":"...Z","kind":K, ...fields}.
 * Kinds: smtp (one transcript line: session, host, peer, dir "c" or "s", line), violation
 * (session, host, peer, kind, detail), delivery, dns (client, proto, name, type, rcode,
 * answers, fault, delay_ms, tc), control, pop3, imap, tls, link (the dial-up link, sim_linkd.h).
 */
#ifndef ZOLDER_SIM_RECORDS_H
#define ZOLDER_SIM_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "buf.h"

#define SIM_RECORDS_MAX 200000      /* kept in memory; the oldest go first */
#define SIM_RECORDS_READ_MAX 10000  /* per records.read */

struct sim_record_entry {
    unsigned long long seq;
    char kind[16];
    char *json;
};

struct sim_records {
    struct sim_record_entry *entries;
    size_t n;
    size_t cap;
    unsigned long long next_seq;
    unsigned long long dropped;
    FILE *jsonl;
    FILE *txt;
    long long stamp_sec;       /* the second stamp[] was made for */
    char stamp[40];
};

/* dir may be NULL (memory only). -1 when the files cannot be opened (errno set). */
int sim_records_init(struct sim_records *r, const char *dir);
void sim_records_free(struct sim_records *r);
void sim_records_clear(struct sim_records *r);
/*
 * Adds a record. fields holds JSON members without braces (",\"a\":1" or "\"a\":1");
 * readable is the records.txt line after the time and kind.
 */
void sim_records_add(struct sim_records *r, const char *kind, const char *fields,
                     const char *readable);
/* Does anyone read the readable form (records.txt)? Callers may skip building it. */
static inline bool sim_records_readable(const struct sim_records *r) { return r->txt != NULL; }
/* Appends a JSON array of the records with seq >= since (kind NULL: all); *next_r: next since. */
void sim_records_read(const struct sim_records *r, const char *kind, unsigned long long since,
                      size_t limit, struct buf *out, unsigned long long *next_r);

#endif
