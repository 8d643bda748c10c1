/* Unit tests for reference/proto/received: exact field text, folding, sanitising. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "received.h"

#define SEED_TIME 1037484433 /* Sat, 16 Nov 2002 23:07:13 +0100 in Europe/Amsterdam */
#define SEED_DATE "Sat, 16 Nov 2002 23:07:13 +0100"

struct received_case {
    const char *name;
    struct received_info ri;
    const char *want;
};

static const struct received_case received_cases[] = {
    {.name = "seed, one recipient",
     .ri = {.helo = "localhost", .rdns = "localhost", .ip = "127.0.0.1", .by_host = "zolder.thuis",
            .software = "zolder 0.1", .with = "ESMTP", .queue_id = "gAGM7DgB002779",
            .for_rcpt = "sjoerd@localhost", .when = SEED_TIME},
     .want = "Received: from localhost (localhost [127.0.0.1])\r\n"
             "\tby zolder.thuis (zolder 0.1) with ESMTP id gAGM7DgB002779\r\n"
             "\tfor <sjoerd@localhost>; " SEED_DATE "\r\n"},
    {.name = "seed, several recipients, no rdns",
     .ri = {.helo = "hccnet.nl", .rdns = NULL, .ip = "192.168.1.5", .by_host = "zolder.thuis",
            .software = "zolder 0.1", .with = "ESMTP", .queue_id = "gAGM3lgB002769",
            .when = SEED_TIME},
     .want = "Received: from hccnet.nl (unknown [192.168.1.5])\r\n"
             "\tby zolder.thuis (zolder 0.1) with ESMTP id gAGM3lgB002769;\r\n"
             "\t" SEED_DATE "\r\n"},
    {.name = "IPv6 and TLS",
     .ri = {.helo = "ecs.thuis", .rdns = "ecs.thuis", .ip = "IPv6:::1", .by_host = "zolder.thuis",
            .software = "zolder 0.1", .with = "ESMTPS",
            .tls_info = "version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384", .queue_id = "Q1",
            .for_rcpt = "bob@zolder.thuis", .when = SEED_TIME},
     .want = "Received: from ecs.thuis (ecs.thuis [IPv6:::1])\r\n"
             "\tby zolder.thuis (zolder 0.1) with ESMTPS (using TLS version=TLSv1.3\r\n"
             "\tcipher=TLS_AES_256_GCM_SHA384) id Q1\r\n"
             "\tfor <bob@zolder.thuis>; " SEED_DATE "\r\n"},
    {.name = "tls_info without 'with' is not written",
     .ri = {.helo = "h", .rdns = "r", .ip = "10.0.0.1", .by_host = "b", .tls_info = "x",
            .when = SEED_TIME},
     .want = "Received: from h (r [10.0.0.1])\r\n"
             "\tby b;\r\n"
             "\t" SEED_DATE "\r\n"},
    {.name = "hostile HELO",
     .ri = {.helo = "evil (x) [1.2.3.4]\r\nX-Injected: yes;\"\\<>\x01\xc3\xa9", .rdns = "r",
            .ip = "10.0.0.1", .by_host = "b", .software = "s", .with = "SMTP", .queue_id = "q",
            .when = SEED_TIME},
     .want = "Received: from evil\?\?x\?\?\?1.2.3.4\?\?\?X-Injected:\?yes\?\?\?\?\?\?\?\? (r [10.0.0.1])\r\n"
             "\tby b (s) with SMTP id q;\r\n"
             "\t" SEED_DATE "\r\n"},
    {.name = "long HELO is capped",
     .ri = {.helo = "aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeeeffffffffffgggggggggghhhhhhhhhh",
            .rdns = NULL, .ip = "10.0.0.1", .by_host = "b", .with = "SMTP", .when = SEED_TIME},
     .want = "Received: from aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeeeffffffffff...\r\n"
             "\t(unknown [10.0.0.1])\r\n"
             "\tby b with SMTP;\r\n"
             "\t" SEED_DATE "\r\n"},
    {.name = "empty HELO, no IP, hostile parts elsewhere",
     .ri = {.helo = "", .rdns = "a b(c)", .ip = NULL, .by_host = "zolder\r\n.thuis",
            .software = "zolder (0.1)\n", .with = "ESMTP\r\nX:", .queue_id = "id;1",
            .for_rcpt = "<a>\r\n@b", .when = SEED_TIME},
     .want = "Received: from unknown (a\?b\?c\?)\r\n"
             "\tby zolder\?\?.thuis (zolder \?0.1\?\?) with ESMTP\?\?X: id id\?1\r\n"
             "\tfor <\?a\?\?\?@b>; " SEED_DATE "\r\n"},
    {.name = "recipient with a quoted local part keeps its space",
     .ri = {.helo = "h", .rdns = "r", .ip = "10.0.0.1", .by_host = "b", .with = "LMTP",
            .queue_id = "q", .for_rcpt = "\"a b\"@c", .when = SEED_TIME},
     .want = "Received: from h (r [10.0.0.1])\r\n"
             "\tby b with LMTP id q\r\n"
             "\tfor <\"a b\"@c>; " SEED_DATE "\r\n"},
};

/* Every line ends in CRLF, continuation lines start with a tab, nothing else is a control. */
static void check_shape(const char *text)
{
    size_t len = strlen(text);
    assert_true(len > 2 && text[len - 2] == '\r' && text[len - 1] == '\n');
    const char *line = text;
    while (*line) {
        const char *eol = strstr(line, "\r\n");
        assert_non_null(eol);
        for (const char *p = line; p < eol; p++)
            assert_true((*p >= 32 && *p <= 126) || *p == '\t');
        assert_true(eol - line <= 998);
        if (line != text)
            assert_true(line[0] == '\t');
        line = eol + 2;
    }
}

static void test_received_table(void **state)
{
    (void)state;
    setenv("TZ", "Europe/Amsterdam", 1);
    tzset();
    for (size_t i = 0; i < sizeof received_cases / sizeof received_cases[0]; i++) {
        const struct received_case *c = &received_cases[i];
        struct buf out;
        buf_init(&out, 0);
        buf_append_str(&out, "");
        received_write(&out, &c->ri);
        if (strcmp(out.data, c->want) != 0)
            fail_msg("case %zu (%s):\n got: %s\nwant: %s", i, c->name, out.data, c->want);
        check_shape(out.data);
        buf_free(&out);
    }
}

static void test_received_long_parts_fold(void **state)
{
    (void)state;
    setenv("TZ", "Europe/Amsterdam", 1);
    tzset();
    char rdns[400], rcpt[400];
    memset(rdns, 'r', sizeof rdns - 1);
    rdns[sizeof rdns - 1] = '\0';
    memset(rcpt, 'x', sizeof rcpt - 1);
    rcpt[sizeof rcpt - 1] = '\0';
    struct received_info ri = {.helo = "h", .rdns = rdns, .ip = "10.0.0.1", .by_host = "b",
                               .software = "zolder 0.1", .with = "ESMTP", .queue_id = "q",
                               .for_rcpt = rcpt, .tls_info = rdns, .when = SEED_TIME};
    struct buf out;
    buf_init(&out, 0);
    received_write(&out, &ri);
    check_shape(out.data);
    /* each long value is capped and marked */
    assert_non_null(strstr(out.data, "rrr...\r\n\t[10.0.0.1])"));
    assert_non_null(strstr(out.data, "xxx...>;\r\n\t" SEED_DATE "\r\n"));
    /* no line but a capped word's exceeds the width */
    const char *line = out.data;
    while (*line) {
        const char *eol = strstr(line, "\r\n");
        size_t cols = (size_t)(eol - line) + (line[0] == '\t' ? 7 : 0);
        if (cols > 78)
            assert_non_null(memchr(line, '.', (size_t)(eol - line)));
        line = eol + 2;
    }
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_received_table),
        cmocka_unit_test(test_received_long_parts_fold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
