/* Unit tests for reference/proto/pop3_reply: status lines, multi-line bodies whole and byte by
 * byte, UIDL/LIST lines, CAPA. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pop3_reply.h"

static void test_status(void **state)
{
    (void)state;
    struct pop3_status st;
    size_t used;
    const char *err = NULL;
    const char *in = "+OK ispsim POP3 ready\r\nrest";
    assert_int_equal(pop3_status_parse(in, strlen(in), &used, &st, &err), POP3_REPLY_OK);
    assert_int_equal(used, 23);
    assert_int_equal(st.kind, POP3_STATUS_OK);
    assert_string_equal(st.text, "ispsim POP3 ready");
    in = "-ERR [IN-USE] mailbox locked\r\n";
    assert_int_equal(pop3_status_parse(in, strlen(in), &used, &st, &err), POP3_REPLY_OK);
    assert_int_equal(st.kind, POP3_STATUS_ERR);
    assert_string_equal(st.code, "IN-USE");
    assert_string_equal(st.text, "mailbox locked");
    in = "+OK\n";
    assert_int_equal(pop3_status_parse(in, strlen(in), &used, &st, &err), POP3_REPLY_OK);
    assert_int_equal(used, 4);
    assert_string_equal(st.text, "");
    in = "+ \r\n";
    assert_int_equal(pop3_status_parse(in, strlen(in), &used, &st, &err), POP3_REPLY_OK);
    assert_int_equal(st.kind, POP3_STATUS_CONT);
    in = "-ERR bad \x01\xff\r\n";
    assert_int_equal(pop3_status_parse(in, strlen(in), &used, &st, &err), POP3_REPLY_OK);
    assert_string_equal(st.text, "bad ??");
    in = "+OK partial";
    assert_int_equal(pop3_status_parse(in, strlen(in), &used, &st, &err), POP3_REPLY_NEED_MORE);
    assert_int_equal(used, 0);
    in = "+OKAY\r\n";
    assert_int_equal(pop3_status_parse(in, strlen(in), &used, &st, &err), POP3_REPLY_ERROR);
    in = "220 smtp\r\n";
    assert_int_equal(pop3_status_parse(in, strlen(in), &used, &st, &err), POP3_REPLY_ERROR);
    assert_non_null(err);
    static char big[POP3_REPLY_LINE_MAX + 10];
    memset(big, 'a', sizeof big);
    memcpy(big, "+OK ", 4);
    assert_int_equal(pop3_status_parse(big, sizeof big, &used, &st, &err), POP3_REPLY_ERROR);
}

static const char body_in[] = "Subject: x\r\n\r\n..punt\r\n..\r\nbare lf\nlast\r\n.\r\n+OK next";
static const char body_out[] = "Subject: x\r\n\r\n.punt\r\n.\r\nbare lf\r\nlast\r\n";

static void test_multiline_whole(void **state)
{
    (void)state;
    struct pop3_multiline m;
    struct buf out;
    buf_init(&out, 0);
    pop3_multiline_init(&m);
    size_t used;
    const char *err = NULL;
    size_t len = strlen(body_in);
    assert_int_equal(pop3_multiline_feed(&m, body_in, len, &used, &out, &err), POP3_REPLY_OK);
    assert_int_equal(used, len - strlen("+OK next"));
    assert_string_equal(out.data, body_out);
    assert_int_equal(m.lines, 6);
    buf_free(&out);
}

static void test_multiline_byte_by_byte(void **state)
{
    (void)state;
    struct pop3_multiline m;
    struct buf out;
    buf_init(&out, 0);
    pop3_multiline_init(&m);
    const char *err = NULL;
    size_t len = strlen(body_in), start = 0, end = 0;
    enum pop3_reply_result res = POP3_REPLY_NEED_MORE;
    while (res == POP3_REPLY_NEED_MORE && end < len) {
        end++;
        size_t used;
        res = pop3_multiline_feed(&m, body_in + start, end - start, &used, &out, &err);
        start += used;
    }
    assert_int_equal(res, POP3_REPLY_OK);
    assert_int_equal(start, len - strlen("+OK next"));
    assert_string_equal(out.data, body_out);
    buf_free(&out);
}

static void test_multiline_limits(void **state)
{
    (void)state;
    struct pop3_multiline m;
    struct buf out;
    buf_init(&out, 10);
    pop3_multiline_init(&m);
    size_t used;
    const char *err = NULL;
    const char *in = "0123456789abc\r\n.\r\n";
    assert_int_equal(pop3_multiline_feed(&m, in, strlen(in), &used, &out, &err), POP3_REPLY_ERROR);
    assert_string_equal(err, "multi-line response too large");
    buf_free(&out);
    buf_init(&out, 0);
    static char big[POP3_BODY_LINE_MAX + 2];
    memset(big, 'x', sizeof big);
    assert_int_equal(pop3_multiline_feed(&m, big, sizeof big, &used, &out, &err), POP3_REPLY_ERROR);
    big[sizeof big - 1] = '\n';
    assert_int_equal(pop3_multiline_feed(&m, big, sizeof big, &used, &out, &err), POP3_REPLY_ERROR);
    buf_free(&out);
}

static void test_listings(void **state)
{
    (void)state;
    unsigned long n, size;
    char uid[POP3_UID_MAX + 1];
    assert_true(pop3_uidl_line("1 000001", 8, &n, uid));
    assert_int_equal(n, 1);
    assert_string_equal(uid, "000001");
    assert_true(pop3_uidl_line("12  abc~!", 9, &n, uid));
    assert_string_equal(uid, "abc~!");
    assert_false(pop3_uidl_line("0 a", 3, &n, uid));
    assert_false(pop3_uidl_line("1 a b", 5, &n, uid));
    assert_false(pop3_uidl_line("1 a\x01", 4, &n, uid));
    assert_false(pop3_uidl_line("1", 1, &n, uid));
    assert_false(pop3_uidl_line("x a", 3, &n, uid));
    char longuid[80] = "1 ";
    memset(longuid + 2, 'u', 71);
    longuid[73] = '\0';
    assert_false(pop3_uidl_line(longuid, strlen(longuid), &n, uid));
    longuid[72] = '\0';
    assert_true(pop3_uidl_line(longuid, strlen(longuid), &n, uid));
    assert_true(pop3_list_line("3 1234", 6, &n, &size));
    assert_int_equal(n, 3);
    assert_int_equal(size, 1234);
    assert_true(pop3_list_line("2 99 octets", 11, &n, &size));
    assert_false(pop3_list_line("2 x", 3, &n, &size));
    assert_false(pop3_list_line("99999999999999 1", 16, &n, &size));
}

static void test_capa(void **state)
{
    (void)state;
    const char *body = "USER\r\nUIDL\r\nTOP\r\nRESP-CODES\r\nSTLS\r\nSASL LOGIN PLAIN\r\nPIPELINING\r\n";
    unsigned c = pop3_capa_parse(body, strlen(body));
    assert_int_equal(c, POP3_CAPA_USER | POP3_CAPA_UIDL | POP3_CAPA_TOP | POP3_CAPA_RESP_CODES |
                        POP3_CAPA_STLS | POP3_CAPA_SASL_PLAIN | POP3_CAPA_PIPELINING);
    body = "USER\r\nSASL CRAM-MD5\r\nSTLSX\r\n";
    assert_int_equal(pop3_capa_parse(body, strlen(body)), POP3_CAPA_USER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_multiline_whole),
        cmocka_unit_test(test_multiline_byte_by_byte),
        cmocka_unit_test(test_multiline_limits),
        cmocka_unit_test(test_listings),
        cmocka_unit_test(test_capa),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
