/*
 * libFuzzer target: any bytes as a DNS query against a small world, over UDP and TCP, with
 * faults. The first byte picks the fault so the fault paths are explored too.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sim_dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_world[] = "zone paprika\nzone hccnet.nl\nhost ns.hccnet.nl 127.0.2.53\n"
                                 "host mx.paprika 127.0.6.25\nnameserver ns.hccnet.nl\nstore s\n"
                                 "mx mx.paprika domains paprika store s\n"
                                 "record www.paprika CNAME mx.paprika.\n"
                                 "record a.paprika CNAME b.paprika.\nrecord b.paprika CNAME a.paprika.\n"
                                 "record paprika TXT \"v=spf1 -all\"\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sim_world *w;
    static struct sim_dns_db *db;
    if (!db) {
        struct cfg_error err;
        char e[256];
        w = sim_world_parse("fuzz", fuzz_world, sizeof fuzz_world - 1, &err);
        db = sim_dns_db_new(w, e, sizeof e);
    }
    if (size < 1)
        return 0;
    struct sim_dns_faults f;
    memset(&f, 0, sizeof f);
    sim_dns_faults_set(&f, (data[0] & 8) ? "*" : "mx.paprika", (enum sim_dns_fault)(data[0] % 6), 5);
    struct sim_dns_result res;
    sim_dns_answer(db, &f, data + 1, size - 1, false, &res);
    sim_dns_result_free(&res);
    sim_dns_answer(db, &f, data + 1, size - 1, true, &res);
    sim_dns_result_free(&res);
    return 0;
}
