/* Unit tests for simulator/sim_link.c: the dial-up link's profile, randomness and scanner. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sim_link.h"

static void test_link_profile_set(void **state)
{
    (void)state;
    struct sim_link_profile p;
    char err[160];
    sim_link_profile_default(&p);
    assert_int_equal(p.random_cut_max, 4096);
    assert_int_equal(p.tick_s, 300);
    assert_true(sim_link_profile_set(&p, "latency", "150", err, sizeof err));
    assert_true(sim_link_profile_set(&p, "cut_after", "1000", err, sizeof err));
    assert_true(sim_link_profile_set(&p, "cut-at", "dot", err, sizeof err));
    assert_true(sim_link_profile_set(&p, "bandwidth", "56000", err, sizeof err));
    assert_true(sim_link_profile_set(&p, "dial-delay", "2500", err, sizeof err));
    assert_true(sim_link_profile_set(&p, "seed", "18446744073709551615", err, sizeof err));
    assert_int_equal(p.latency_ms, 150);
    assert_int_equal(p.cut_after, 1000);
    assert_true(p.cut_at_dot);
    assert_int_equal(p.bandwidth, 56000);
    assert_int_equal(p.dial_delay_ms, 2500);
    assert_true(p.seed == UINT64_MAX);
    assert_true(sim_link_profile_set(&p, "cut-at", "none", err, sizeof err));
    assert_false(p.cut_at_dot);

    assert_false(sim_link_profile_set(&p, "latency", "600001", err, sizeof err));
    assert_non_null(strstr(err, "latency must be a number"));
    assert_false(sim_link_profile_set(&p, "latency", "-1", err, sizeof err));
    assert_false(sim_link_profile_set(&p, "latency", "1x", err, sizeof err));
    assert_false(sim_link_profile_set(&p, "latency", "", err, sizeof err));
    assert_false(sim_link_profile_set(&p, "random-cut", "1001", err, sizeof err));
    assert_false(sim_link_profile_set(&p, "tick", "0", err, sizeof err));
    assert_false(sim_link_profile_set(&p, "cut-at", "rcpt", err, sizeof err));
    assert_false(sim_link_profile_set(&p, "colour", "1", err, sizeof err));
    assert_non_null(strstr(err, "unknown link setting"));
    assert_false(sim_link_profile_set(&p, "a-very-long-key-that-does-not-fit-anywhere-at-all", "1",
                                      err, sizeof err));
    assert_int_equal(p.latency_ms, 150); /* unchanged by the failures */
}

static void test_link_modes(void **state)
{
    (void)state;
    enum sim_link_mode m;
    assert_true(sim_link_mode_parse("demand", &m));
    assert_int_equal(m, SIM_LINK_DEMAND);
    assert_string_equal(sim_link_mode_name(m), "demand");
    assert_true(sim_link_mode_parse("down", &m));
    assert_string_equal(sim_link_mode_name(m), "down");
    assert_true(sim_link_mode_parse("up", &m));
    assert_string_equal(sim_link_mode_name(m), "up");
    assert_false(sim_link_mode_parse("Up", &m));
}

static void test_link_rand_is_seeded(void **state)
{
    (void)state;
    uint64_t a = 42, b = 42, c = 43;
    for (int i = 0; i < 100; i++) {
        uint64_t x = sim_link_rand_upto(&a, 999);
        assert_true(x <= 999);
        assert_true(x == sim_link_rand_upto(&b, 999));
    }
    assert_true(sim_link_rand(&a) != sim_link_rand(&c));
    uint64_t z = 7;
    assert_int_equal(sim_link_rand_upto(&z, 0), 0);
}

static void test_link_dot_scan(void **state)
{
    (void)state;
    struct sim_link_dot d = {0};
    const char *s = "EHLO x\r\nDATA\r\nline\r\n..stuffed\r\n";
    assert_int_equal(sim_link_dot_scan(&d, (const uint8_t *)s, strlen(s)), 0);
    /* the end of DATA split over three reads */
    assert_int_equal(sim_link_dot_scan(&d, (const uint8_t *)".", 1), 0);
    assert_int_equal(sim_link_dot_scan(&d, (const uint8_t *)"\r", 1), 0);
    assert_int_equal(sim_link_dot_scan(&d, (const uint8_t *)"\nQUIT\r\n", 7), 1);
    struct sim_link_dot e = {0};
    const char *t = "DATA\r\n.\r\nQUIT\r\n";   /* an empty message */
    assert_int_equal(sim_link_dot_scan(&e, (const uint8_t *)t, strlen(t)), 9);
    struct sim_link_dot f = {0};
    const char *u = "x\r\r\n.\r\n";
    assert_int_equal(sim_link_dot_scan(&f, (const uint8_t *)u, strlen(u)), strlen(u));
    struct sim_link_dot g = {0};
    const char *v = "a\r\n.x\r\n.\r\r\n";
    assert_int_equal(sim_link_dot_scan(&g, (const uint8_t *)v, strlen(v)), 0);
}

static void test_link_arithmetic(void **state)
{
    (void)state;
    assert_int_equal(sim_link_transmit_us(0, 1000), 0);
    assert_int_equal(sim_link_transmit_us(56000, 7000), 1000000);
    assert_int_equal(sim_link_transmit_us(8000000, 1), 1);
    assert_int_equal(sim_link_ticks(0, 300), 1);
    assert_int_equal(sim_link_ticks(299999, 300), 1);
    assert_int_equal(sim_link_ticks(300000, 300), 2);
    assert_int_equal(sim_link_ticks(3600000, 300), 13);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_profile_set),
        cmocka_unit_test(test_link_modes),
        cmocka_unit_test(test_link_rand_is_seeded),
        cmocka_unit_test(test_link_dot_scan),
        cmocka_unit_test(test_link_arithmetic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
