/* Unit tests for reference/proto/imap_resp: status, capability, search, fetch with literals,
 * whole and byte by byte, and malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "imap_resp.h"

static enum imap_resp_result parse(const char *in, size_t len, size_t *used, struct imap_resp *r)
{
    size_t want;
    const char *err = NULL;
    return imap_resp_parse(in, len, used, &want, r, &err);
}

static void test_status_and_capability(void **state)
{
    (void)state;
    struct imap_resp r;
    size_t used;
    const char *in = "* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN SASL-IR] ispsim ready\r\n";
    assert_int_equal(parse(in, strlen(in), &used, &r), IMAP_RESP_OK);
    assert_int_equal(used, strlen(in));
    assert_int_equal(r.kind, IMAP_RESP_UNTAGGED);
    assert_int_equal(r.status, IMAP_STATUS_OK);
    assert_string_equal(r.code, "CAPABILITY");
    assert_true(r.has_capabilities);
    assert_int_equal(r.capabilities, IMAP_CAPA_IMAP4REV1 | IMAP_CAPA_STARTTLS |
                                         IMAP_CAPA_AUTH_PLAIN | IMAP_CAPA_SASL_IR);
    assert_string_equal(r.text, "ispsim ready");
    in = "* CAPABILITY IMAP4rev1 UIDPLUS LITERAL+ IDLE LOGINDISABLED\r\n";
    assert_int_equal(parse(in, strlen(in), &used, &r), IMAP_RESP_OK);
    assert_string_equal(r.keyword, "CAPABILITY");
    assert_int_equal(r.capabilities, IMAP_CAPA_IMAP4REV1 | IMAP_CAPA_UIDPLUS |
                                         IMAP_CAPA_LITERALPLUS | IMAP_CAPA_IDLE |
                                         IMAP_CAPA_LOGINDISABLED);
    in = "a3 NO [AUTHENTICATIONFAILED] bad \x01password\r\n";
    assert_int_equal(parse(in, strlen(in), &used, &r), IMAP_RESP_OK);
    assert_int_equal(r.kind, IMAP_RESP_TAGGED);
    assert_string_equal(r.tag, "a3");
    assert_int_equal(r.status, IMAP_STATUS_NO);
    assert_string_equal(r.code, "AUTHENTICATIONFAILED");
    assert_string_equal(r.text, "bad ?password");
    in = "* OK [UIDVALIDITY 7] UIDs valid\r\n* 3 EXISTS\r\n";
    assert_int_equal(parse(in, strlen(in), &used, &r), IMAP_RESP_OK);
    assert_string_equal(r.code, "UIDVALIDITY");
    assert_int_equal(r.code_number, 7);
    in += used;
    assert_int_equal(parse(in, strlen(in), &used, &r), IMAP_RESP_OK);
    assert_true(r.has_number);
    assert_int_equal(r.number, 3);
    assert_string_equal(r.keyword, "EXISTS");
    in = "+ Ready for literal data\r\n";
    assert_int_equal(parse(in, strlen(in), &used, &r), IMAP_RESP_OK);
    assert_int_equal(r.kind, IMAP_RESP_CONTINUATION);
    in = "+\r\n";
    assert_int_equal(parse(in, strlen(in), &used, &r), IMAP_RESP_OK);
    in = "* BYE logging out\r\n";
    assert_int_equal(parse(in, strlen(in), &used, &r), IMAP_RESP_OK);
    assert_int_equal(r.status, IMAP_STATUS_BYE);
    in = "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n";
    assert_int_equal(parse(in, strlen(in), &used, &r), IMAP_RESP_OK);
    assert_string_equal(r.keyword, "FLAGS");
}

static void test_search(void **state)
{
    (void)state;
    struct imap_resp r;
    size_t used, pos = 0;
    unsigned long n, got[4];
    size_t k = 0;
    const char *in = "* SEARCH 2 5 4000000000\r\n";
    assert_int_equal(parse(in, strlen(in), &used, &r), IMAP_RESP_OK);
    while (imap_resp_search_next(&r, &pos, &n) && k < 4)
        got[k++] = n;
    assert_int_equal(k, 3);
    assert_int_equal(got[0], 2);
    assert_int_equal(got[2], 4000000000UL);
    in = "* SEARCH\r\n";
    assert_int_equal(parse(in, strlen(in), &used, &r), IMAP_RESP_OK);
    pos = 0;
    assert_false(imap_resp_search_next(&r, &pos, &n));
    in = "* SEARCH 1 x\r\n";
    assert_int_equal(parse(in, strlen(in), &used, &r), IMAP_RESP_ERROR);
    in = "* SEARCH 99999999999\r\n";
    assert_int_equal(parse(in, strlen(in), &used, &r), IMAP_RESP_ERROR);
}

static const char fetch_in[] =
    "* 2 FETCH (UID 17 RFC822.SIZE 27 FLAGS (\\Seen \\Recent) BODY[] {27}\r\n"
    "Subject: a\r\n\r\nline )\r\n{2}\r\n INTERNALDATE \"01-Jan-2000 00:00:00 +0000\")\r\n"
    "a5 OK UID FETCH completed\r\n";

static void check_fetch(const struct imap_resp *r)
{
    assert_string_equal(r->keyword, "FETCH");
    assert_int_equal(r->number, 2);
    assert_true(r->has_uid && r->has_size && r->has_flags && r->has_body);
    assert_int_equal(r->uid, 17);
    assert_int_equal(r->size, 27);
    assert_int_equal(r->flags, IMAP_FLAG_SEEN | IMAP_FLAG_RECENT);
    assert_int_equal(r->body_len, 27);
    assert_memory_equal(r->body, "Subject: a\r\n\r\nline )\r\n{2}\r\n", 27);
}

static void test_fetch_whole(void **state)
{
    (void)state;
    struct imap_resp r;
    size_t used;
    assert_int_equal(parse(fetch_in, strlen(fetch_in), &used, &r), IMAP_RESP_OK);
    check_fetch(&r);
    assert_int_equal(used, strlen(fetch_in) - strlen("a5 OK UID FETCH completed\r\n"));
    const char *in = "* 1 FETCH (UID 3 BODY[] \"short\")\r\n";
    assert_int_equal(parse(in, strlen(in), &used, &r), IMAP_RESP_OK);
    assert_int_equal(r.body_len, 5);
    in = "* 1 FETCH (BODY[] NIL UID 4)\r\n";
    assert_int_equal(parse(in, strlen(in), &used, &r), IMAP_RESP_OK);
    assert_true(r.has_body);
    assert_null(r.body);
    assert_int_equal(r.uid, 4);
    in = "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {0}\r\n X-GM (a (b \"c\") {1}\r\nz) UID 9)\r\n";
    assert_int_equal(parse(in, strlen(in), &used, &r), IMAP_RESP_OK);
    assert_int_equal(r.uid, 9);
    assert_int_equal(r.body_len, 0);
}

static void test_fetch_byte_by_byte(void **state)
{
    (void)state;
    struct imap_resp r;
    size_t len = strlen(fetch_in), end = 0, used = 0, want = 0;
    const char *err = NULL;
    enum imap_resp_result res = IMAP_RESP_NEED_MORE;
    size_t calls = 0;
    while (res == IMAP_RESP_NEED_MORE && end < len) {
        end++;
        if (end < want)
            continue; /* the parser told us not to bother yet */
        calls++;
        res = imap_resp_parse(fetch_in, end, &used, &want, &r, &err);
        if (res == IMAP_RESP_NEED_MORE)
            assert_true(want > end);
    }
    assert_int_equal(res, IMAP_RESP_OK);
    check_fetch(&r);
    assert_true(calls < end); /* the literal was skipped over in one step */
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "hello\r\n",
        "a1 EXISTS\r\n",
        "a1 BYE x\r\n",
        "* 3 OK x\r\n",
        "* EXISTS\r\n",
        "* 1 FETCH UID 3\r\n",
        "* 1 FETCH (UID x)\r\n",
        "* 1 FETCH (UID 3\r\n",
        "* 1 FETCH (BODY[] {5}\r\nabc)\r\n",
        "* 1 FETCH (BODY[ {1}\r\nx)\r\n",
        "* 1 FETCH (FLAGS \\Seen)\r\n",
        "* 1 FETCH (BODY[] \"a\\\"b\")\r\n",
        "*\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct imap_resp r;
        size_t used, want;
        const char *err = NULL;
        enum imap_resp_result res = imap_resp_parse(bad[i], strlen(bad[i]), &used, &want, &r, &err);
        if (res != IMAP_RESP_ERROR)
            fail_msg("case %zu (%s) parsed: %d", i, bad[i], (int)res);
    }
    /* deep nesting is bounded */
    char deep[200] = "* 1 FETCH (X ";
    for (int i = 0; i < 40; i++)
        strcat(deep, "(");
    strcat(deep, "\r\n");
    struct imap_resp r;
    size_t used;
    assert_int_equal(parse(deep, strlen(deep), &used, &r), IMAP_RESP_ERROR);
    /* a literal over the limit is refused before it arrives */
    const char *huge = "* 1 FETCH (BODY[] {999999999999}\r\n";
    assert_int_equal(parse(huge, strlen(huge), &used, &r), IMAP_RESP_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_and_capability),
        cmocka_unit_test(test_search),
        cmocka_unit_test(test_fetch_whole),
        cmocka_unit_test(test_fetch_byte_by_byte),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
