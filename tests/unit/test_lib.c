/* Unit tests for reference/lib: buf, str, netaddr, cfglex, fsutil. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cfglex.h"
#include "fsutil.h"
#include "netaddr.h"
#include "str.h"
#include "timefmt.h"

static void test_buf_limits(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 8);
    assert_true(buf_append_str(&b, "abcd"));
    assert_true(buf_printf(&b, "%d", 1234));
    assert_int_equal(b.len, 8);
    assert_false(buf_append_char(&b, 'x'));
    assert_string_equal(b.data, "abcd1234");
    buf_consume(&b, 3);
    assert_string_equal(b.data, "d1234");
    char *s = buf_steal(&b);
    assert_string_equal(s, "d1234");
    free(s);
    buf_free(&b);
}

static void test_str_b64_digit(void **state)
{
    (void)state;
    static const char rfc4648[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; i++)
        assert_int_equal(str_b64_digit((unsigned char)rfc4648[i], '/'), i);
    assert_int_equal(str_b64_digit(',', ','), 63);
    assert_int_equal(str_b64_digit('/', ','), -1);
    assert_int_equal(str_b64_digit(',', '/'), -1);
    assert_int_equal(str_b64_digit('=', '/'), -1);
    assert_int_equal(str_b64_digit(0xc3, '/'), -1);
}

static void test_str_split_and_trim(void **state)
{
    (void)state;
    char line[] = "  a, b ,,c  ";
    char *f[4];
    assert_int_equal(str_split(line, ", ", f, 4), 3);
    assert_string_equal(f[0], "a");
    assert_string_equal(f[2], "c");
    char many[] = "a b c d e";
    assert_int_equal(str_split(many, " ", f, 4), -1);
    char t[] = " \t x y \n";
    assert_string_equal(str_trim(t), "x y");
    unsigned long v;
    assert_true(str_to_ulong("42", 100, &v));
    assert_int_equal(v, 42);
    assert_false(str_to_ulong("420", 100, &v));
    assert_false(str_to_ulong("4x", 100, &v));
    assert_false(str_to_ulong("-1", 100, &v));
    char small[4];
    assert_false(str_copy(small, sizeof small, "abcd"));
    assert_true(str_copy(small, sizeof small, "abc"));
}

static bool net_matches(const char *net, const char *addr)
{
    struct netmask m;
    struct netaddr a;
    assert_true(netmask_parse(net, &m));
    assert_true(netaddr_parse(addr, &a));
    return netmask_match(&m, &a);
}

static void test_netaddr_octet_boundaries(void **state)
{
    (void)state;
    assert_true(net_matches("192.168.1", "192.168.1.7"));
    assert_true(net_matches("192.168.1.", "192.168.1.255"));
    assert_false(net_matches("192.168.1", "192.168.10.7"));
    assert_false(net_matches("192.168.1", "192.168.100.1"));
    assert_true(net_matches("127.0.1.0/24", "127.0.1.5"));
    assert_false(net_matches("127.0.1.0/24", "127.0.2.5"));
    assert_true(net_matches("10.0.0.0/255.0.0.0", "10.9.9.9"));
    assert_true(net_matches("10.1.2.3", "10.1.2.3"));
    assert_false(net_matches("10.1.2.3", "10.1.2.30"));
    assert_true(net_matches("fe80::/10", "fe80::1"));
    assert_true(net_matches("127.0.0.1", "::ffff:127.0.0.1"));
    struct netmask m;
    assert_false(netmask_parse("192.168.1.0/33", &m));
    assert_false(netmask_parse("192.168.1.0/255.0.255.0", &m));
    assert_false(netmask_parse("1.2.3.4.5", &m));
    assert_false(netmask_parse("256.1", &m));
    assert_false(netmask_parse("host.example", &m));
    struct netaddr a;
    assert_true(netaddr_parse("127.0.0.1", &a));
    assert_true(netaddr_is_local(&a));
    assert_true(netaddr_parse("127.0.1.20", &a));
    assert_false(netaddr_is_local(&a));
    assert_true(netaddr_parse("[::1]", &a));
    assert_true(netaddr_is_local(&a));
}

static void test_cfglex_lines(void **state)
{
    (void)state;
    const char *text = "# comment\n"
                       "key = value  # trailing\n"
                       "\n"
                       "list = a,\n"
                       "   b,\n"
                       "  # indented comment\n"
                       "   c\n"
                       "q = \"x # y\"\r\n";
    struct cfg_reader r;
    struct cfg_error err;
    char *line;
    unsigned lineno;
    cfg_reader_init(&r, "t.conf", text, strlen(text), CFG_CONT_INDENT | CFG_TRAILING_COMMENT);
    assert_int_equal(cfg_reader_next(&r, &line, &lineno, &err), 1);
    assert_string_equal(line, "key = value");
    assert_int_equal(lineno, 2);
    char *k, *v;
    assert_true(cfg_split_key_value(line, '=', &k, &v));
    assert_string_equal(k, "key");
    assert_string_equal(v, "value");
    assert_int_equal(cfg_reader_next(&r, &line, &lineno, &err), 1);
    assert_string_equal(line, "list = a, b, c");
    assert_int_equal(lineno, 4);
    assert_int_equal(cfg_reader_next(&r, &line, &lineno, &err), 1);
    assert_string_equal(line, "q = \"x # y\"");
    assert_int_equal(lineno, 8);
    assert_int_equal(cfg_reader_next(&r, &line, &lineno, &err), 0);
    cfg_reader_free(&r);

    const char bad[] = "a = 1\nb\0c = 2\n";
    cfg_reader_init(&r, "bad.conf", bad, sizeof bad - 1, 0);
    assert_int_equal(cfg_reader_next(&r, &line, &lineno, &err), 1);
    assert_int_equal(cfg_reader_next(&r, &line, &lineno, &err), -1);
    assert_string_equal(err.text, "bad.conf:2: NUL byte in line");
    cfg_reader_free(&r);

    const char *ws = "\f\r\n \v \nkey = 1\n";
    cfg_reader_init(&r, "ws.conf", ws, strlen(ws), 0);
    assert_int_equal(cfg_reader_next(&r, &line, &lineno, &err), 1);
    assert_string_equal(line, "key = 1");
    assert_int_equal(lineno, 3);
    cfg_reader_free(&r);

    const char *bs = "ALL: 127.0.0.1 \\\n  192.168.1.\n";
    cfg_reader_init(&r, "hosts.allow", bs, strlen(bs), CFG_CONT_BACKSLASH);
    assert_int_equal(cfg_reader_next(&r, &line, &lineno, &err), 1);
    assert_string_equal(line, "ALL: 127.0.0.1  192.168.1.");
    cfg_reader_free(&r);
}

static void test_fsutil_paths(void **state)
{
    (void)state;
    char *p = fs_path_resolve("/etc/zolder", "users");
    assert_string_equal(p, "/etc/zolder/users");
    free(p);
    p = fs_path_resolve("/etc/zolder", "/var/x");
    assert_string_equal(p, "/var/x");
    free(p);
    p = fs_dirname("a/b/c.conf");
    assert_string_equal(p, "a/b");
    free(p);
    p = fs_dirname("c.conf");
    assert_string_equal(p, ".");
    free(p);
}

static void test_timefmt_shapes(void **state)
{
    (void)state;
    char out[TIMEFMT_RFC5322_LEN];
    setenv("TZ", "Europe/Amsterdam", 1);
    timefmt_rfc5322(1037484433, out, sizeof out); /* the seed's 16 Nov 2002 22:07:13 UTC */
    assert_string_equal(out, "Sat, 16 Nov 2002 23:07:13 +0100");
    timefmt_mbox(1037484433, out, sizeof out);
    assert_string_equal(out, "Sat Nov 16 23:07:13 2002");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_limits),
        cmocka_unit_test(test_str_b64_digit),
        cmocka_unit_test(test_str_split_and_trim),
        cmocka_unit_test(test_netaddr_octet_boundaries),
        cmocka_unit_test(test_cfglex_lines),
        cmocka_unit_test(test_fsutil_paths),
        cmocka_unit_test(test_timefmt_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
