/* Unit tests for reference/proto/mutf7: RFC 3501 5.1.3 modified UTF-7 names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mutf7.h"

static void expect_pair(const char *utf8, const char *wire)
{
    struct buf b;
    const char *why = NULL;
    buf_init(&b, 0);
    if (!mutf7_encode(utf8, strlen(utf8), &b, &why))
        fail_msg("encode %s: %s", utf8, why);
    buf_append_char(&b, '\0');
    assert_string_equal(b.data, wire);
    buf_reset(&b);
    if (!mutf7_decode(wire, strlen(wire), &b, &why))
        fail_msg("decode %s: %s", wire, why);
    buf_append_char(&b, '\0');
    assert_string_equal(b.data, utf8);
    buf_free(&b);
}

static void expect_decode_refused(const char *wire, size_t len, const char *why_part)
{
    struct buf b;
    const char *why = NULL;
    buf_init(&b, 0);
    if (mutf7_decode(wire, len, &b, &why))
        fail_msg("accepted %.*s", (int)len, wire);
    assert_non_null(why);
    if (!strstr(why, why_part))
        fail_msg("%.*s: \"%s\", expected \"%s\"", (int)len, wire, why, why_part);
    buf_free(&b);
}

static void expect_encode_refused(const char *utf8, size_t len)
{
    struct buf b;
    const char *why = NULL;
    buf_init(&b, 0);
    assert_false(mutf7_encode(utf8, len, &b, &why));
    assert_non_null(why);
    buf_free(&b);
}

static void test_rfc_examples(void **state)
{
    (void)state;
    /* RFC 3501 5.1.3: "~peter/mail/日本語/台北" */
    expect_pair("~peter/mail/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e/\xe5\x8f\xb0\xe5\x8c\x97",
                "~peter/mail/&ZeVnLIqe-/&U,BTFw-");
    expect_pair("", "");
    expect_pair("INBOX", "INBOX");
    expect_pair("A&B", "A&-B");
    expect_pair("&", "&-");
    expect_pair("&&", "&-&-");
    expect_pair("Verzonden/R\xc3\xa9", "Verzonden/R&AOk-");
    expect_pair("\xc3\xa9&", "&AOk-&-");
    expect_pair("\xc3\xa9\xc3\xa8", "&AOkA6A-");          /* two units: 6 chars */
    expect_pair("\xc3\xa9\xc3\xa8\xc3\xaa", "&AOkA6ADq-"); /* three units: 8 chars, no padding bits */
    expect_pair("Entw\xc3\xbcrfe", "Entw&APw-rfe");
    expect_pair("\xf0\x9f\x93\xa7 mail", "&2D3c5w- mail"); /* U+1F4E7: a surrogate pair */
    expect_pair("tab\there", "tab&AAk-here");              /* controls are encoded */
    expect_pair("\x7f", "&AH8-");
}

static void test_round_trips(void **state)
{
    (void)state;
    static const char *names[] = {
        "Sent", "Drafts/2026", "\xd0\x9f\xd0\xbe\xd1\x87\xd1\x82\xd0\xb0", "a\xc3\xa9" "b\xc3\xa9" "c",
        "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", "x&y&z", "\xf4\x8f\xbf\xbf", "\xef\xbf\xbd",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct buf w, u;
        const char *why = NULL;
        buf_init(&w, 0);
        buf_init(&u, 0);
        assert_true(mutf7_encode(names[i], strlen(names[i]), &w, &why));
        for (size_t k = 0; k < w.len; k++)
            assert_true(w.data[k] >= 0x20 && w.data[k] <= 0x7e);
        assert_true(mutf7_decode(w.data, w.len, &u, &why));
        assert_int_equal(u.len, strlen(names[i]));
        assert_memory_equal(u.data, names[i], u.len);
        buf_free(&w);
        buf_free(&u);
    }
}

static void test_decode_errors(void **state)
{
    (void)state;
    expect_decode_refused("R\xc3\xa9", 3, "8-bit");
    expect_decode_refused("a\tb", 3, "control");
    expect_decode_refused("a\0b", 3, "control");
    expect_decode_refused("&AOk", 4, "closing");
    expect_decode_refused("&", 1, "closing");
    expect_decode_refused("&AO!-", 5, "invalid character");
    expect_decode_refused("&AO/-", 5, "invalid character"); /* RFC 2152's '/' is ',' here */
    expect_decode_refused("&AOk=-", 6, "invalid character");
    expect_decode_refused("&AOl-", 5, "non-zero bits");
    expect_decode_refused("&AOkA-", 6, "superfluous");
    expect_decode_refused("&AGE-", 5, "printable ASCII");    /* 'a' encoded */
    expect_decode_refused("&ACY-", 5, "printable ASCII");    /* '&' encoded */
    expect_decode_refused("&AOk-&AOg-", 10, "back to back");
    expect_decode_refused("&2D0-", 5, "unpaired high");
    expect_decode_refused("&2D0AQQ-", 8, "unpaired high");
    expect_decode_refused("&3OcAQQ-", 8, "unpaired low");
    expect_decode_refused("&AAA-", 5, "NUL");
    struct buf small;
    const char *why = NULL;
    buf_init(&small, 4);
    assert_false(mutf7_decode("abcdef", 6, &small, &why));
    assert_string_equal(why, "name too long");
    buf_free(&small);
}

static void test_encode_errors(void **state)
{
    (void)state;
    expect_encode_refused("a\0b", 3);
    expect_encode_refused("\xc3", 1);                  /* truncated */
    expect_encode_refused("\xc0\xaf", 2);              /* overlong '/' */
    expect_encode_refused("\xe0\x80\xaf", 3);          /* overlong */
    expect_encode_refused("\xed\xa0\x80", 3);          /* a surrogate in UTF-8 */
    expect_encode_refused("\xf4\x90\x80\x80", 4);      /* above U+10FFFF */
    expect_encode_refused("\xff", 1);
    expect_encode_refused("\x80", 1);
    expect_encode_refused("\xe2\x28\xa1", 3);          /* bad continuation */
    struct buf small;
    const char *why = NULL;
    buf_init(&small, 3);
    assert_false(mutf7_encode("\xc3\xa9", 2, &small, &why));
    buf_free(&small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_examples),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_encode_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
