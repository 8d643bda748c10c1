/* Unit tests for reference/proto/smtp_reply: replies (single, multi-line, enhanced codes,
 * errors), byte-at-a-time and random splits, EHLO keywords. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "smtp_reply.h"

struct reply_case {
    const char *wire;       /* one or more replies' bytes */
    int code;               /* of the first reply; 0: an error is expected */
    const char *enhanced;
    size_t nlines;
    const char *text;       /* lines joined by '\n' */
    const char *error;      /* substring of the error */
};

static const struct reply_case reply_cases[] = {
    {.wire = "220 mx.paprika ESMTP ispsim\r\n", .code = 220, .enhanced = "", .nlines = 1,
     .text = "mx.paprika ESMTP ispsim"},
    {.wire = "250 2.1.5 Ok\r\n", .code = 250, .enhanced = "2.1.5", .nlines = 1, .text = "Ok"},
    {.wire = "250\r\n", .code = 250, .enhanced = "", .nlines = 1, .text = ""},
    {.wire = "250 \r\n", .code = 250, .enhanced = "", .nlines = 1, .text = ""},
    {.wire = "250 2.0.0\r\n", .code = 250, .enhanced = "2.0.0", .nlines = 1, .text = ""},
    {.wire = "451 4.3.0 try again later\n", .code = 451, .enhanced = "4.3.0", .nlines = 1,
     .text = "try again later"},
    {.wire = "550 2.1.5 class mismatch is text\r\n", .code = 550, .enhanced = "", .nlines = 1,
     .text = "2.1.5 class mismatch is text"},
    {.wire = "550 5.1.1234 four digits\r\n", .code = 550, .enhanced = "", .nlines = 1,
     .text = "5.1.1234 four digits"},
    {.wire = "554 5.7.1 <x@y>: Relay access denied\r\n", .code = 554, .enhanced = "5.7.1",
     .nlines = 1, .text = "<x@y>: Relay access denied"},
    {.wire = "250-smtp.hccnet.nl\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n250 8BITMIME\r\n",
     .code = 250, .enhanced = "", .nlines = 4,
     .text = "smtp.hccnet.nl\nPIPELINING\nSIZE 10485760\n8BITMIME"},
    {.wire = "550-5.1.1 first\r\n550-5.1.1 second\r\n550 5.1.1 third\r\n", .code = 550,
     .enhanced = "5.1.1", .nlines = 3, .text = "first\nsecond\nthird"},
    {.wire = "421 4.4.2 bye\x01\x7f\xff\r\n", .code = 421, .enhanced = "4.4.2", .nlines = 1,
     .text = "bye???"},
    {.wire = "250-a\r\n251 b\r\n", .error = "different codes"},
    {.wire = "25 short\r\n", .error = "code"},
    {.wire = "650 no such class\r\n", .error = "code"},
    {.wire = "260 bad second digit\r\n", .error = "code"},
    {.wire = "250x bad separator\r\n", .error = "separator"},
    {.wire = "hello\r\n", .error = "code"},
    {.wire = "\r\n", .error = "code"},
};

/* Feeds wire in pieces of at most step bytes (0: random pieces); returns the first reply. */
static enum smtp_reply_result feed(const char *wire, size_t step, struct smtp_reply *r,
                                   const char **error)
{
    struct smtp_reply_parser p;
    smtp_reply_parser_init(&p);
    struct buf pending;
    buf_init(&pending, 0);
    size_t len = strlen(wire), off = 0;
    enum smtp_reply_result res = SMTP_REPLY_NEED_MORE;
    while (off < len && res == SMTP_REPLY_NEED_MORE) {
        size_t n = step ? step : (size_t)(rand() % 7) + 1;
        if (n > len - off)
            n = len - off;
        buf_append(&pending, wire + off, n);
        off += n;
        size_t used;
        do {
            res = smtp_reply_parse(&p, pending.data, pending.len, &used, r, error);
            buf_consume(&pending, used);
        } while (res == SMTP_REPLY_NEED_MORE && used > 0);
    }
    buf_free(&pending);
    return res;
}

static void test_reply_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof reply_cases / sizeof reply_cases[0]; i++) {
        const struct reply_case *c = &reply_cases[i];
        size_t steps[] = {4096, 1, 0, 0, 3};
        for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
            struct smtp_reply r;
            const char *error = NULL;
            enum smtp_reply_result res = feed(c->wire, steps[s], &r, &error);
            if (!c->code) {
                assert_int_equal(res, SMTP_REPLY_ERROR);
                assert_non_null(strstr(error, c->error));
                continue;
            }
            if (res != SMTP_REPLY_OK)
                fail_msg("case %zu (%s) step %zu: %d %s", i, c->wire, steps[s], res, error ? error : "");
            assert_int_equal(r.code, c->code);
            assert_string_equal(r.enhanced, c->enhanced);
            assert_int_equal(r.nlines, c->nlines);
            assert_string_equal(r.text, c->text);
        }
    }
}

static void test_need_more_and_long_lines(void **state)
{
    (void)state;
    struct smtp_reply_parser p;
    struct smtp_reply r;
    const char *error;
    size_t used;
    smtp_reply_parser_init(&p);
    assert_int_equal(smtp_reply_parse(&p, "250 Ok", 6, &used, &r, &error), SMTP_REPLY_NEED_MORE);
    assert_int_equal(used, 0);
    char *big = malloc(SMTP_REPLY_LINE_MAX + 10);
    memset(big, 'a', SMTP_REPLY_LINE_MAX + 10);
    memcpy(big, "250 ", 4);
    assert_int_equal(smtp_reply_parse(&p, big, SMTP_REPLY_LINE_MAX + 10, &used, &r, &error),
                     SMTP_REPLY_ERROR);
    assert_non_null(strstr(error, "too long"));
    /* too many lines */
    smtp_reply_parser_init(&p);
    enum smtp_reply_result res = SMTP_REPLY_NEED_MORE;
    for (int i = 0; i <= SMTP_REPLY_LINES_MAX && res == SMTP_REPLY_NEED_MORE; i++)
        res = smtp_reply_feed_line(&p, "250-x", 5, &r, &error);
    assert_int_equal(res, SMTP_REPLY_ERROR);
    /* too much text in all */
    smtp_reply_parser_init(&p);
    memset(big, 'b', 1500);
    memcpy(big, "250-", 4);
    res = SMTP_REPLY_NEED_MORE;
    for (int i = 0; i < 10 && res == SMTP_REPLY_NEED_MORE; i++)
        res = smtp_reply_feed_line(&p, big, 1500, &r, &error);
    assert_int_equal(res, SMTP_REPLY_ERROR);
    free(big);
    /* two replies in one buffer come out one at a time */
    smtp_reply_parser_init(&p);
    const char *two = "250 2.1.0 Ok\r\n550 5.1.1 no\r\n";
    assert_int_equal(smtp_reply_parse(&p, two, strlen(two), &used, &r, &error), SMTP_REPLY_OK);
    assert_int_equal(r.code, 250);
    assert_int_equal(smtp_reply_parse(&p, two + used, strlen(two) - used, &used, &r, &error), SMTP_REPLY_OK);
    assert_int_equal(r.code, 550);
    assert_int_equal(smtp_reply_class(&r), 5);
}

static void test_format_and_lines(void **state)
{
    (void)state;
    struct smtp_reply r;
    const char *error;
    assert_int_equal(feed("550-5.1.1 <jan@paprika>:\r\n550 5.1.1 User unknown\r\n", 4096, &r, &error),
                     SMTP_REPLY_OK);
    struct buf b;
    buf_init(&b, 0);
    smtp_reply_format(&r, &b);
    assert_string_equal(b.data, "550 5.1.1 <jan@paprika>: User unknown");
    buf_free(&b);
    size_t len;
    const char *l = smtp_reply_line(&r, 1, &len);
    assert_int_equal(len, 12);
    assert_memory_equal(l, "User unknown", 12);
    assert_null(smtp_reply_line(&r, 2, &len));
}

static void test_ehlo(void **state)
{
    (void)state;
    struct smtp_reply r;
    struct smtp_ehlo e;
    const char *error;
    assert_int_equal(feed("250-smtp.hccnet.nl Hello\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n"
                          "250-8bitmime\r\n250-STARTTLS\r\n250-AUTH LOGIN PLAIN XOAUTH2\r\n"
                          "250-AUTH=CRAM-MD5\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n"
                          "250-CHUNKING\r\n250-SMTPUTF8\r\n250 X-UNKNOWN foo\r\n", 4096, &r, &error),
                     SMTP_REPLY_OK);
    smtp_ehlo_parse(&r, &e);
    assert_int_equal(e.ext, SMTP_EXT_PIPELINING | SMTP_EXT_SIZE | SMTP_EXT_8BITMIME |
                                SMTP_EXT_STARTTLS | SMTP_EXT_AUTH | SMTP_EXT_DSN |
                                SMTP_EXT_ENHANCEDSTATUSCODES | SMTP_EXT_CHUNKING | SMTP_EXT_SMTPUTF8);
    assert_int_equal(e.size, 10485760);
    assert_int_equal(e.auth, SMTP_AUTH_LOGIN | SMTP_AUTH_PLAIN | SMTP_AUTH_OTHER | SMTP_AUTH_CRAM_MD5);

    /* the greeting line is never a keyword; SIZE without a number; a bad number */
    assert_int_equal(feed("250-PIPELINING\r\n250-SIZE\r\n250 SIZEX\r\n", 4096, &r, &error), SMTP_REPLY_OK);
    smtp_ehlo_parse(&r, &e);
    assert_int_equal(e.ext, SMTP_EXT_SIZE);
    assert_int_equal(e.size, 0);
    assert_int_equal(feed("250-x\r\n250 SIZE 12ab\r\n", 4096, &r, &error), SMTP_REPLY_OK);
    smtp_ehlo_parse(&r, &e);
    assert_int_equal(e.size, 0);
    /* a refused EHLO has no keywords */
    assert_int_equal(feed("502-x\r\n502 PIPELINING\r\n", 4096, &r, &error), SMTP_REPLY_OK);
    smtp_ehlo_parse(&r, &e);
    assert_int_equal(e.ext, 0);
}

int main(void)
{
    srand(5);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_cases),
        cmocka_unit_test(test_need_more_and_long_lines),
        cmocka_unit_test(test_format_and_lines),
        cmocka_unit_test(test_ehlo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
