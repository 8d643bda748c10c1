/*
 * Unit tests for reference/proto/mbox: the mboxrd quoter (one-shot, byte-at-a-time, random
 * splits), the From_ line writer, and the From_ line recogniser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mbox.h"

struct quote_case {
    const char *in;
    size_t len; /* 0: strlen(in) */
    const char *out;
};

static const struct quote_case quote_cases[] = {
    {.in = "", .out = "\n"},
    {.in = "a", .out = "a\n\n"},
    {.in = "a\r\n", .out = "a\n\n"},
    {.in = "\r\n", .out = "\n\n"},
    {.in = "Subject: x\r\n\r\nbody\r\n", .out = "Subject: x\n\nbody\n\n"},
    {.in = "From me\r\n", .out = ">From me\n\n"},
    {.in = "x\r\nFrom me\r\n>From x\r\n>>From y\r\n", .out = "x\n>From me\n>>From x\n>>>From y\n\n"},
    {.in = ">>>>>>>>>>>>>>>>>>>>From deep", .out = ">>>>>>>>>>>>>>>>>>>>>From deep\n\n"},
    {.in = "From ", .out = ">From \n\n"},
    {.in = "From", .out = "From\n\n"},
    {.in = "Fro\r\nFrom\r\n", .out = "Fro\nFrom\n\n"},
    {.in = "FromX\r\n", .out = "FromX\n\n"},
    {.in = "From\tx\r\n", .out = "From\tx\n\n"},
    {.in = ">From", .out = ">From\n\n"},
    {.in = ">", .out = ">\n\n"},
    {.in = " From x\r\n", .out = " From x\n\n"},
    {.in = "from x\r\n", .out = "from x\n\n"},
    {.in = ">F>From x\r\n", .out = ">F>From x\n\n"},
    {.in = "From From x\r\n", .out = ">From From x\n\n"},
    {.in = "a\rFrom x\r\n", .out = "a\rFrom x\n\n"},
    {.in = "\rFrom x", .out = "\rFrom x\n\n"},
    {.in = "Fr\rom x", .out = "Fr\rom x\n\n"},
    {.in = "a\r", .out = "a\r\n\n"},
    {.in = "a\r\r\n", .out = "a\r\n\n"},
    {.in = "\r", .out = "\r\n\n"},
    {.in = "\r\r", .out = "\r\r\n\n"},
    {.in = "a\nFrom b\n", .out = "a\n>From b\n\n"},
    {.in = "Body\r\n\r\nFrom \r\n", .out = "Body\n\n>From \n\n"},
    {.in = "a\r\n.\r\n", .out = "a\n.\n\n"},
    {.in = "nul\0From x\r\nFrom\0 x\r\n", .len = 21, .out = "nul\0From x\nFrom\0 x\n\n"},
    {.in = "x\r\nFro", .out = "x\nFro\n\n"},
};

static size_t case_len(const struct quote_case *c) { return c->len ? c->len : strlen(c->in); }

static size_t out_len(const struct quote_case *c)
{
    /* The expected output has the same embedded NULs as the input, and ends "\n\n" or "\n". */
    if (c->len == 0)
        return strlen(c->out);
    size_t n = 0;
    while (!(c->out[n] == '\n' && c->out[n + 1] == '\n' && c->out[n + 2] == '\0'))
        n++;
    return n + 2;
}

/* xorshift32: a seeded, local generator so the random splits are reproducible. */
static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Feeds in using chunk sizes from step: 0 one shot, 1 byte at a time, >1 random (seed). */
static void quote(const char *in, size_t len, uint32_t mode, struct buf *out)
{
    struct mbox_quoter q;
    mbox_quoter_init(&q);
    size_t pos = 0;
    uint32_t seed = mode;
    while (pos < len) {
        size_t n = len - pos;
        if (mode == 1)
            n = 1;
        else if (mode > 1)
            n = next_rand(&seed) % (n < 7 ? n + 1 : 7); /* includes empty chunks */
        mbox_quoter_feed(&q, in + pos, n, out);
        pos += n;
    }
    mbox_quoter_finish(&q, out);
}

static void test_mbox_quoter_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof quote_cases / sizeof quote_cases[0]; i++) {
        const struct quote_case *c = &quote_cases[i];
        for (uint32_t mode = 0; mode < 40; mode++) {
            struct buf out;
            buf_init(&out, 0);
            buf_append_str(&out, "");
            quote(c->in, case_len(c), mode == 0 ? 0 : mode == 1 ? 1 : 0x9e3779b9u * mode, &out);
            if (out.len != out_len(c) || memcmp(out.data, c->out, out.len) != 0)
                fail_msg("case %zu (mode %u): got \"%s\" want \"%s\"", i, mode, out.data, c->out);
            buf_free(&out);
        }
    }
}

/* One quoter, several messages: finish resets it, and messages do not leak into each other. */
static void test_mbox_quoter_reuse(void **state)
{
    (void)state;
    struct mbox_quoter q;
    struct buf out;
    buf_init(&out, 0);
    mbox_quoter_init(&q);
    mbox_from_line(&out, "a@b", 0);
    mbox_quoter_feed(&q, "x\r\nFro", 6, &out);
    mbox_quoter_finish(&q, &out);
    buf_reset(&out);
    mbox_quoter_feed(&q, "From y\r", 7, &out);
    mbox_quoter_finish(&q, &out);
    assert_string_equal(out.data, ">From y\r\n\n");
    buf_free(&out);
}

/* A long message split at every offset produces the same output as in one go. */
static void test_mbox_quoter_every_split(void **state)
{
    (void)state;
    const char *msg = "From: a\r\n\r\nFrom here\r\n>From there\r\r\n>>Fro\r\nFrom";
    size_t len = strlen(msg);
    struct buf whole;
    buf_init(&whole, 0);
    quote(msg, len, 0, &whole);
    assert_string_equal(whole.data, "From: a\n\n>From here\n>>From there\r\n>>Fro\nFrom\n\n");
    for (size_t a = 0; a <= len; a++) {
        for (size_t b = a; b <= len; b++) {
            struct mbox_quoter q;
            struct buf out;
            buf_init(&out, 0);
            buf_append_str(&out, "");
            mbox_quoter_init(&q);
            mbox_quoter_feed(&q, msg, a, &out);
            mbox_quoter_feed(&q, msg + a, b - a, &out);
            mbox_quoter_feed(&q, msg + b, len - b, &out);
            mbox_quoter_finish(&q, &out);
            assert_string_equal(out.data, whole.data);
            buf_free(&out);
        }
    }
    buf_free(&whole);
}

struct from_case {
    const char *sender;
    const char *want;
};

static void test_mbox_from_line(void **state)
{
    (void)state;
    static const struct from_case cases[] = {
        {.sender = "sjoerd@ecs.thuis", .want = "From sjoerd@ecs.thuis Sat Nov 16 23:07:13 2002\n"},
        {.sender = NULL, .want = "From MAILER-DAEMON Sat Nov 16 23:07:13 2002\n"},
        {.sender = "", .want = "From MAILER-DAEMON Sat Nov 16 23:07:13 2002\n"},
        {.sender = "<>", .want = "From MAILER-DAEMON Sat Nov 16 23:07:13 2002\n"},
        {.sender = "\"a b\"@c", .want = "From \"a_b\"@c Sat Nov 16 23:07:13 2002\n"},
        {.sender = "a\tb\r\nc\x7f\xc3\xa9", .want = "From a_b__c___ Sat Nov 16 23:07:13 2002\n"},
    };
    setenv("TZ", "Europe/Amsterdam", 1);
    tzset();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf out;
        buf_init(&out, 0);
        mbox_from_line(&out, cases[i].sender, 1037484433);
        assert_string_equal(out.data, cases[i].want);
        assert_true(mbox_is_from_line(out.data, out.len - 1));
        buf_free(&out);
    }
    /* single-digit days are space-padded, as asctime does */
    struct buf out;
    buf_init(&out, 0);
    mbox_from_line(&out, "x@y", 1036537200); /* Wed Nov  6 00:00:00 2002 CET */
    assert_string_equal(out.data, "From x@y Wed Nov  6 00:00:00 2002\n");
    assert_true(mbox_is_from_line(out.data, out.len - 1));
    buf_free(&out);
    /* an overlong sender is cut */
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    buf_init(&out, 0);
    mbox_from_line(&out, big, 1037484433);
    assert_int_equal(out.len, 5 + 512 + 1 + 24 + 1);
    buf_free(&out);
}

struct is_from_case {
    const char *line;
    bool want;
};

static void test_mbox_is_from_line(void **state)
{
    (void)state;
    static const struct is_from_case cases[] = {
        {.line = "From sjoerd@ecs.thuis Sat Nov 16 23:07:13 2002", .want = true},
        {.line = "From MAILER-DAEMON Wed Nov  6 00:00:00 2002", .want = true},
        {.line = "From a@b Sat Nov 16 23:07 2002", .want = true},
        {.line = "From a@b Sat Nov 16 23:07:13 CET 2002", .want = true},
        {.line = "From a@b Sat Nov 16 23:07:13 2002 +0100", .want = true},
        {.line = "From a@b Sat Nov 16 23:07:13 2002 -0500", .want = true},
        {.line = "From \"a b\"@c Sat Nov 16 23:07:13 2002", .want = true},
        {.line = "From a@b  Sat  Nov  16  23:07:13  2002", .want = true},
        {.line = "From a@b Sat Nov 16 23:07:60 2002", .want = true},
        {.line = "From a@b Sat Nov 16 23:07:13 CET 2002 +0100", .want = false},
        {.line = "From a@b Sat Nov 16 23:07:13 2002 CET x", .want = false},
        {.line = "From a@b Sat Nov 16 23:07:13 2002 x", .want = false},
        {.line = "From a@b Sat Nov 16 23:07:13 02", .want = false},
        {.line = "From a@b Sat Nov 16 23:07:13", .want = false},
        {.line = "From a@b Sat Nov 16 24:07:13 2002", .want = false},
        {.line = "From a@b Sat Nov 16 23:60:13 2002", .want = false},
        {.line = "From a@b Sat Nov 16 23:07:61 2002", .want = false},
        {.line = "From a@b Sat Nov 16 2:07:13 2002", .want = false},
        {.line = "From a@b Sat Nov 0 23:07:13 2002", .want = false},
        {.line = "From a@b Sat Nov 32 23:07:13 2002", .want = false},
        {.line = "From a@b Sat Foo 16 23:07:13 2002", .want = false},
        {.line = "From a@b Sunday Nov 16 23:07:13 2002", .want = false},
        {.line = "From a@b sat nov 16 23:07:13 2002", .want = false},
        {.line = "From a@b Sat Nov 16 23:07:13 2002\r", .want = false},
        {.line = "From a@b Sat Nov 16 23:07:13 cet 2002", .want = false},
        {.line = "From a@b Sat Nov 16 23:07:13 ABCDEF 2002", .want = false},
        {.line = "From  Sat Nov 16 23:07:13 2002", .want = false},
        {.line = "From Sat Nov 16 23:07:13 2002", .want = false},
        {.line = "From a@b", .want = false},
        {.line = "From ", .want = false},
        {.line = "From", .want = false},
        {.line = "", .want = false},
        {.line = "from a@b Sat Nov 16 23:07:13 2002", .want = false},
        {.line = ">From a@b Sat Nov 16 23:07:13 2002", .want = false},
        {.line = " From a@b Sat Nov 16 23:07:13 2002", .want = false},
        {.line = "From: a@b Sat Nov 16 23:07:13 2002", .want = false},
        {.line = "From me, hello, how are you", .want = false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (mbox_is_from_line(cases[i].line, strlen(cases[i].line)) != cases[i].want)
            fail_msg("case %zu \"%s\": want %d", i, cases[i].line, cases[i].want);
    /* length-bounded: a valid line cut short is not a separator */
    const char *line = "From a@b Sat Nov 16 23:07:13 2002 and then some";
    assert_true(mbox_is_from_line(line, 33));
    assert_false(mbox_is_from_line(line, 32));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mbox_quoter_table),
        cmocka_unit_test(test_mbox_quoter_reuse),
        cmocka_unit_test(test_mbox_quoter_every_split),
        cmocka_unit_test(test_mbox_from_line),
        cmocka_unit_test(test_mbox_is_from_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
