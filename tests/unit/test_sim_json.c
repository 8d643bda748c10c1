/* Unit tests for simulator/sim_json.c: flat JSON objects for ispsim's control protocol. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sim_json.h"

static void test_json_parse_flat(void **state)
{
    (void)state;
    const char *text = " {\"verb\":\"faults.set\", \"n\": -12, \"on\":true,\"off\":false,\"x\":null,"
                       "\"s\":\"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\"} \n";
    struct sim_json_obj o;
    char err[128];
    assert_int_equal(sim_json_parse(text, strlen(text), &o, err, sizeof err), 0);
    assert_string_equal(sim_json_str(&o, "verb"), "faults.set");
    long long n;
    assert_true(sim_json_int(&o, "n", &n));
    assert_int_equal(n, -12);
    bool b;
    assert_true(sim_json_bool(&o, "on", &b));
    assert_true(b);
    assert_true(sim_json_bool(&o, "off", &b));
    assert_false(b);
    assert_int_equal(sim_json_get(&o, "x")->type, SIM_JSON_NULL);
    assert_string_equal(sim_json_str(&o, "s"), "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80");
    assert_null(sim_json_str(&o, "n"));
    assert_false(sim_json_int(&o, "verb", &n));
    sim_json_obj_free(&o);
}

static void test_json_parse_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "[]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":1} x", "{\"a\":{\"b\":1}}",
        "{\"a\":[1]}", "{\"a\":1.5}", "{\"a\":01}", "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\q\"}", "{\"a\":\"x\ty\"}", "{\"a\":1,\"a\":2}", "{\"a\":tru}", "{\"a\":-}",
        "{\"a\":123456789012345678901234}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sim_json_obj o;
        char err[128];
        if (sim_json_parse(bad[i], strlen(bad[i]), &o, err, sizeof err) == 0)
            fail_msg("accepted: %s", bad[i]);
        assert_true(strncmp(err, "bad JSON: ", 10) == 0);
        sim_json_obj_free(&o);
    }
}

static void test_json_write(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    static const char raw[] = "a\"\\\r\n\t\x01\x7f caf\xc3\xa9 \xe9\xff";
    assert_true(sim_json_put_str(&b, raw, sizeof raw - 1));
    assert_string_equal(b.data, "\"a\\\"\\\\\\r\\n\\t\\u0001\\u007f caf\xc3\xa9 \\u00e9\\u00ff\"");
    buf_reset(&b);
    assert_true(sim_json_put_kv(&b, true, "k", "v"));
    assert_true(sim_json_put_kv(&b, false, "k2", "v2"));
    assert_string_equal(b.data, "\"k\":\"v\",\"k2\":\"v2\"");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_parse_flat),
        cmocka_unit_test(test_json_parse_errors),
        cmocka_unit_test(test_json_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
