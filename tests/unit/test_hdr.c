/* Unit tests for reference/proto/hdr: section length, field walking, counting, masquerading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "buf.h"
#include "hdr.h"

struct section_case {
    const char *msg;
    size_t want;
};

static void test_hdr_section_len(void **state)
{
    (void)state;
    static const struct section_case cases[] = {
        {.msg = "From: a\r\nTo: b\r\n\r\nbody\r\n", .want = 18},
        {.msg = "From: a\r\n\r\n", .want = 11},
        {.msg = "\r\nbody", .want = 2},
        {.msg = "", .want = 0},
        {.msg = "From: a\r\nTo: b\r\n", .want = 16},          /* no separator: all of it */
        {.msg = "From: a\r\nTo: b", .want = 14},              /* not even a final CRLF */
        {.msg = "From: a\r\n folded\r\n\tagain\r\n\r\nx", .want = 28},
        {.msg = "From: a\nTo: b\n\nbody", .want = 15},            /* bare LF */
        {.msg = "From: a\r\nnot a header line\r\nTo: b\r\n\r\n", .want = 9},
        {.msg = "From: a\r\n: no name\r\n\r\n", .want = 9},
        {.msg = " continuation first\r\n\r\n", .want = 0},
        {.msg = "From sjoerd Sat Nov 16 23:07:13 2002\r\nFrom: a\r\n", .want = 0},
        {.msg = "Subject : obsolete\r\n\r\n", .want = 22},
        {.msg = "Bad\x01name: x\r\n\r\n", .want = 0},
        {.msg = "X: a\r\n\r\r\n", .want = 6},                       /* "\r\r\n" is not a field */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t got = hdr_section_len(cases[i].msg, strlen(cases[i].msg));
        if (got != cases[i].want)
            fail_msg("case %zu: %zu, want %zu", i, got, cases[i].want);
    }
}

static void test_hdr_next_fields(void **state)
{
    (void)state;
    const char *msg = "Received: from a\r\n"
                      "\tby b; date\r\n"
                      "Subject : hi\r\n"
                      "X-Empty:\r\n"
                      "To: x\n"
                      "  y\r\n"
                      "\r\n"
                      "From: body@x\r\n";
    size_t hdr_len = hdr_section_len(msg, strlen(msg));
    assert_int_equal(hdr_len, strlen(msg) - strlen("From: body@x\r\n"));
    struct {
        const char *name;
        const char *value;
        size_t start, end;
    } want[] = {
        {"Received", " from a\r\n\tby b; date", 0, 31},
        {"Subject", " hi", 31, 45},
        {"X-Empty", "", 45, 55},
        {"To", " x\n  y", 55, 66},
    };
    size_t pos = 0;
    struct hdr_field f;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_true(hdr_next(msg, hdr_len, &pos, &f));
        assert_int_equal(f.name_len, strlen(want[i].name));
        assert_memory_equal(f.name, want[i].name, f.name_len);
        assert_int_equal(f.value_len, strlen(want[i].value));
        assert_memory_equal(f.value, want[i].value, f.value_len);
        assert_int_equal(f.start, want[i].start);
        assert_int_equal(f.end, want[i].end);
        assert_int_equal(pos, f.end);
    }
    assert_false(hdr_next(msg, hdr_len, &pos, &f));
    assert_int_equal(pos, 66);

    /* a last field without CRLF ends at hdr_len */
    const char *tail = "A: 1\r\nB: 2";
    pos = 0;
    assert_true(hdr_next(tail, strlen(tail), &pos, &f));
    assert_true(hdr_next(tail, strlen(tail), &pos, &f));
    assert_int_equal(f.value_len, 2);
    assert_int_equal(f.end, strlen(tail));
    assert_false(hdr_next(tail, strlen(tail), &pos, &f));
    /* a value can run into a folded line at the very end */
    const char *fold = "A: 1\r\n 2";
    pos = 0;
    assert_true(hdr_next(fold, strlen(fold), &pos, &f));
    assert_int_equal(f.value_len, strlen(" 1\r\n 2"));
}

static void test_hdr_count(void **state)
{
    (void)state;
    const char *msg = "Received: a\r\n"
                      "received: b\r\n"
                      "X-Received: c\r\n"
                      "RECEIVED : d\r\n"
                      " Received: folded, not a field\r\n"
                      "Subject: Received: no\r\n"
                      "\r\n"
                      "Received: in the body\r\n";
    assert_int_equal(hdr_count(msg, strlen(msg), "Received"), 3);
    assert_int_equal(hdr_count(msg, strlen(msg), "x-received"), 1);
    assert_int_equal(hdr_count(msg, strlen(msg), "Receive"), 0);
    assert_int_equal(hdr_count(msg, strlen(msg), "Subject"), 1);
    assert_int_equal(hdr_count("", 0, "Received"), 0);
}

struct masq_case {
    const char *in;
    const char *out;
    unsigned count;
};

static const char *const masq_hosts[] = {"ecs.thuis", "visser.thuis"};
#define MASQ_TO "mijn.domein.nl"

static const struct masq_case masq_cases[] = {
    {.in = "From: sjoerd@ecs.thuis\r\n\r\n", .out = "From: sjoerd@" MASQ_TO "\r\n\r\n", .count = 1},
    {.in = "From: Sjoerd <sjoerd@ECS.Thuis>\r\n", .out = "From: Sjoerd <sjoerd@" MASQ_TO ">\r\n",
     .count = 1},
    {.in = "Sender: <a@visser.thuis> (the \"sender\" a@ecs.thuis)\r\n",
     .out = "Sender: <a@" MASQ_TO "> (the \"sender\" a@ecs.thuis)\r\n", .count = 1},
    /* display names and comments are not addresses */
    {.in = "From: \"sjoerd@ecs.thuis\" <sjoerd@ecs.thuis>\r\n",
     .out = "From: \"sjoerd@ecs.thuis\" <sjoerd@" MASQ_TO ">\r\n", .count = 1},
    {.in = "From: sjoerd@ecs.thuis (Sjoerd, at sjoerd@ecs.thuis (really))\r\n",
     .out = "From: sjoerd@" MASQ_TO " (Sjoerd, at sjoerd@ecs.thuis (really))\r\n", .count = 1},
    {.in = "From: \"Visser, S. <s@ecs.thuis>\" <s@other.example>\r\n",
     .out = "From: \"Visser, S. <s@ecs.thuis>\" <s@other.example>\r\n", .count = 0},
    {.in = "From: (comment <a@ecs.thuis>) b@ecs.thuis\r\n",
     .out = "From: (comment <a@ecs.thuis>) b@" MASQ_TO "\r\n", .count = 1},
    {.in = "From: x (\\) a@ecs.thuis) y@ecs.thuis\r\n",
     .out = "From: x (\\) a@ecs.thuis) y@ecs.thuis\r\n", .count = 0}, /* "x y@..." is no mailbox */
    /* lists, groups, folding */
    {.in = "Reply-To: a@ecs.thuis, B <b@visser.thuis>, c@elsewhere.example\r\n",
     .out = "Reply-To: a@" MASQ_TO ", B <b@" MASQ_TO ">, c@elsewhere.example\r\n", .count = 2},
    {.in = "From: team: a@ecs.thuis, \"B\" <b@ecs.thuis>;, c@ecs.thuis\r\n",
     .out = "From: team: a@" MASQ_TO ", \"B\" <b@" MASQ_TO ">;, c@" MASQ_TO "\r\n", .count = 3},
    {.in = "From: undisclosed-recipients:;\r\n", .out = "From: undisclosed-recipients:;\r\n",
     .count = 0},
    {.in = "From: ecs.thuis: a@b;\r\n", .out = "From: ecs.thuis: a@b;\r\n", .count = 0},
    {.in = "From: Sjoerd\r\n <sjoerd@ecs.thuis>,\r\n\tother@ecs.thuis\r\n",
     .out = "From: Sjoerd\r\n <sjoerd@" MASQ_TO ">,\r\n\tother@" MASQ_TO "\r\n", .count = 2},
    {.in = "From:a@ecs.thuis\n\n", .out = "From:a@" MASQ_TO "\n\n", .count = 1},
    {.in = "From: \"a b\"@ecs.thuis\r\n", .out = "From: \"a b\"@" MASQ_TO "\r\n", .count = 1},
    /* obsolete route: only the addr-spec's domain */
    {.in = "From: <@ecs.thuis,@visser.thuis:u@ecs.thuis>\r\n",
     .out = "From: <@ecs.thuis,@visser.thuis:u@" MASQ_TO ">\r\n", .count = 1},
    /* exact domain match only */
    {.in = "From: a@sub.ecs.thuis, b@ecs.thuis.nl, c@ecs.thuis.\r\n",
     .out = "From: a@sub.ecs.thuis, b@ecs.thuis.nl, c@ecs.thuis.\r\n", .count = 0},
    {.in = "From: a@[192.168.1.5]\r\n", .out = "From: a@[192.168.1.5]\r\n", .count = 0},
    /* which fields */
    {.in = "To: a@ecs.thuis\r\nCc: b@ecs.thuis\r\nSubject: c@ecs.thuis\r\n"
           "Message-ID: <x@ecs.thuis>\r\nResent-From: d@ecs.thuis\r\n"
           "resent-sender: e@ecs.thuis\r\nRESENT-REPLY-TO: f@ecs.thuis\r\n\r\n",
     .out = "To: a@ecs.thuis\r\nCc: b@ecs.thuis\r\nSubject: c@ecs.thuis\r\n"
            "Message-ID: <x@ecs.thuis>\r\nResent-From: d@" MASQ_TO "\r\n"
            "resent-sender: e@" MASQ_TO "\r\nRESENT-REPLY-TO: f@" MASQ_TO "\r\n\r\n",
     .count = 3},
    /* malformed: copied unchanged */
    {.in = "From: (unclosed a@ecs.thuis\r\n", .out = "From: (unclosed a@ecs.thuis\r\n", .count = 0},
    {.in = "From: \"unclosed <a@ecs.thuis>\r\n", .out = "From: \"unclosed <a@ecs.thuis>\r\n",
     .count = 0},
    {.in = "From: a@ecs.thuis b@ecs.thuis\r\n", .out = "From: a@ecs.thuis b@ecs.thuis\r\n",
     .count = 0},
    {.in = "From: <a@ecs.thuis\r\n", .out = "From: <a@ecs.thuis\r\n", .count = 0},
    {.in = "From: a@ecs . thuis\r\n", .out = "From: a@ecs . thuis\r\n", .count = 0},
    {.in = "From: a@@ecs.thuis\r\n", .out = "From: a@@ecs.thuis\r\n", .count = 0},
    /* a separate bad field does not stop the others */
    {.in = "Sender: (x\r\nFrom: a@ecs.thuis\r\n", .out = "Sender: (x\r\nFrom: a@" MASQ_TO "\r\n",
     .count = 1},
    {.in = "", .out = "", .count = 0},
};

static void test_hdr_masquerade_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof masq_cases / sizeof masq_cases[0]; i++) {
        const struct masq_case *c = &masq_cases[i];
        struct buf out;
        buf_init(&out, 0);
        buf_append_str(&out, "");
        size_t hdr_len = hdr_section_len(c->in, strlen(c->in));
        unsigned n = hdr_masquerade(c->in, hdr_len, masq_hosts, 2, MASQ_TO, &out);
        if (n != c->count || strcmp(out.data, c->out) != 0)
            fail_msg("case %zu: count %u (want %u)\n got: %s\nwant: %s", i, n, c->count, out.data,
                     c->out);
        buf_free(&out);
    }
}

static void test_hdr_masquerade_body_untouched(void **state)
{
    (void)state;
    const char *msg = "From: a@ecs.thuis\r\n\r\nFrom: b@ecs.thuis\r\n";
    struct buf out;
    buf_init(&out, 0);
    size_t hdr_len = hdr_section_len(msg, strlen(msg));
    assert_int_equal(hdr_masquerade(msg, hdr_len, masq_hosts, 2, MASQ_TO, &out), 1);
    assert_string_equal(out.data, "From: a@" MASQ_TO "\r\n\r\n");
    /* no hosts: a byte-for-byte copy */
    buf_reset(&out);
    assert_int_equal(hdr_masquerade(msg, hdr_len, masq_hosts, 0, MASQ_TO, &out), 0);
    assert_int_equal(out.len, hdr_len);
    assert_memory_equal(out.data, msg, hdr_len);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdr_section_len),
        cmocka_unit_test(test_hdr_next_fields),
        cmocka_unit_test(test_hdr_count),
        cmocka_unit_test(test_hdr_masquerade_table),
        cmocka_unit_test(test_hdr_masquerade_body_untouched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
