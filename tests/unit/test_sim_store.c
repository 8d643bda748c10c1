/* Unit tests for simulator/sim_store.c (mbox split, per-message files) and sim_records.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "sim_records.h"
#include "sim_store.h"

struct collected {
    struct buf all;
    int n;
};

static void collect(void *ctx, const char *msg, size_t len)
{
    struct collected *c = ctx;
    buf_printf(&c->all, "[%.*s]", (int)len, msg);
    c->n++;
}

static void test_mbox_split(void **state)
{
    (void)state;
    const char *mbox = "From a@b Sat Nov 16 23:07:13 2002\n"
                       "Subject: one\n\nbody\n>From the past\n>>From deeper\nFrom inside body\n\n"
                       "From c@d Sat Nov 16 23:08:13 2002\r\n"
                       "Subject: two\r\n\r\nlast";
    struct collected c = {.n = 0};
    buf_init(&c.all, 0);
    sim_mbox_split(mbox, strlen(mbox), collect, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.all.data,
                        "[Subject: one\r\n\r\nbody\r\nFrom the past\r\n>From deeper\r\n"
                        "From inside body\r\n][Subject: two\r\n\r\nlast\r\n]");
    buf_reset(&c.all);
    c.n = 0;
    sim_mbox_split("no from line\n", 13, collect, &c);
    assert_int_equal(c.n, 0);
    buf_free(&c.all);
}

static void test_store_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_sim_store.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *mbox = fs_path_resolve(dir, "jan.mbox");
    FILE *f = fopen(mbox, "w");
    assert_non_null(f);
    fputs("From x Sat Nov 16 23:07:13 2002\nSubject: old\n\nold mail\n", f);
    fclose(f);
    const char *text = "store paprika\nmailbox paprika jan mbox jan.mbox\nmailbox paprika piet\n";
    struct cfg_error err;
    struct sim_world *w = sim_world_parse("t.world", text, strlen(text), &err);
    assert_non_null(w);
    struct sim_store st;
    char e[256];
    assert_int_equal(sim_store_open(&st, w, dir, dir, e, sizeof e), 0);
    int jan = sim_store_find(&st, "paprika", "jan");
    assert_int_equal(jan, 0);
    assert_int_equal(sim_store_find(&st, "paprika", "nobody"), -1);
    assert_int_equal(st.boxes[jan].n, 1);
    unsigned uid;
    assert_int_equal(sim_store_deliver(&st, jan, "Subject: new\r\n\r\n", 16, &uid), 0);
    assert_int_equal(uid, 2);
    char *data;
    size_t len;
    assert_int_equal(sim_store_read(&st, jan, 1, &data, &len), 0);
    assert_string_equal(data, "Subject: old\r\n\r\nold mail\r\n");
    free(data);
    assert_int_equal(sim_store_remove(&st, jan, 1), 0);
    assert_int_equal(sim_store_read(&st, jan, 1, &data, &len), -1);
    assert_int_equal(st.boxes[jan].n, 1);
    assert_int_equal(sim_store_reset(&st, e, sizeof e), 0);
    assert_int_equal(st.boxes[jan].n, 1);
    assert_int_equal(st.boxes[jan].msgs[0].uid, 1);
    sim_store_close(&st);
    sim_world_free(w);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(mbox);
}

static void test_records(void **state)
{
    (void)state;
    struct sim_records r;
    assert_int_equal(sim_records_init(&r, NULL), 0);
    sim_records_add(&r, "dns", "\"name\":\"a\"", "a");
    sim_records_add(&r, "smtp", ",\"line\":\"x\"", "x");
    sim_records_add(&r, "dns", "\"name\":\"b\"", "b");
    struct buf out;
    buf_init(&out, 0);
    unsigned long long next;
    sim_records_read(&r, "dns", 0, 1, &out, &next);
    assert_non_null(strstr(out.data, "\"seq\":1,"));
    assert_non_null(strstr(out.data, "\"kind\":\"dns\",\"name\":\"a\"}]"));
    assert_int_equal(next, 2);
    buf_reset(&out);
    sim_records_read(&r, "dns", next, 10, &out, &next);
    assert_non_null(strstr(out.data, "\"name\":\"b\""));
    assert_null(strstr(out.data, "\"line\""));
    assert_int_equal(next, 4);
    buf_reset(&out);
    sim_records_clear(&r);
    sim_records_read(&r, NULL, 0, 10, &out, &next);
    assert_string_equal(out.data, "[]");
    buf_free(&out);
    sim_records_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mbox_split),
        cmocka_unit_test(test_store_files),
        cmocka_unit_test(test_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
