/*
 * Unit tests for reference/proto/mimewalk and banned: attachment names from a table of
 * tricky headers (RFC 2231 continued and charset-encoded names, RFC 2047 encoded words,
 * trailing dots and spaces, case, double extensions, the name only in Content-Type),
 * decoded bodies, and malformed structures that must be distrusted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"
#include "buf.h"
#include "mimewalk.h"

/* A multipart/mixed message with one text part and one attachment with the given headers. */
static char *make_message(const char *attachment_headers, const char *body)
{
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, "From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: multipart/mixed; boundary=\"XyZ\"\r\n\r\n"
                   "preamble\r\n--XyZ\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
                   "--XyZ\r\n%s\r\n\r\n%s\r\n--XyZ--\r\n", attachment_headers, body);
    return buf_steal(&b);
}

struct name_case {
    const char *headers;      /* the attachment's MIME headers */
    const char *want_name;    /* one of the names found */
    const char *want_ext;     /* banned extension, or NULL when the name is allowed */
    bool want_double;
};

static const struct name_case name_cases[] = {
    {"Content-Type: application/octet-stream; name=\"spel.exe\"", "spel.exe", ".exe", false},
    {"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"a.PIF\"",
     "a.PIF", ".pif", false},
    /* filename and name disagree: both are checked */
    {"Content-Type: application/octet-stream; name=\"harmless.txt\"\r\n"
     "Content-Disposition: attachment; filename=\"evil.scr\"", "evil.scr", ".scr", false},
    {"Content-Type: application/octet-stream; name=\"harmless.txt\"\r\n"
     "Content-Disposition: attachment; filename=\"fine.txt\"", "fine.txt", NULL, false},
    /* RFC 2231 continuations */
    {"Content-Type: application/octet-stream\r\nContent-Disposition: attachment;\r\n"
     " filename*0=\"inv\"; filename*1=\"oice.pd\"; filename*2=\"f.exe\"", "invoice.pdf.exe", ".exe", true},
    /* RFC 2231 charset and percent encoding, continued */
    {"Content-Type: application/octet-stream\r\nContent-Disposition: attachment;\r\n"
     " filename*0*=UTF-8''r%C3%A9sum%C3%A9; filename*1*=%2Ebat", "r\xc3\xa9sum\xc3\xa9.bat", ".bat", false},
    /* RFC 2047 encoded word in a parameter (not standard, but what Outlook sends) */
    {"Content-Type: application/octet-stream; name=\"=?UTF-8?B?Zm90by5qcGcudmJz?=\"", "foto.jpg.vbs",
     ".vbs", true},
    {"Content-Type: application/octet-stream; name=\"=?iso-8859-1?Q?f=E9e=2Ecmd?=\"", "f\xc3\xa9\x65.cmd",
     ".cmd", false},
    /* trailing dots and spaces are dropped by Windows */
    {"Content-Type: application/octet-stream; name=\"game.exe.\"", "game.exe.", ".exe", false},
    {"Content-Type: application/octet-stream; name=\"game.exe . .\"", "game.exe . .", ".exe", false},
    /* case */
    {"Content-Type: application/octet-stream; name=\"GAME.ExE\"", "GAME.ExE", ".exe", false},
    /* path components */
    {"Content-Disposition: attachment; filename=\"C:\\\\temp\\\\x.lnk\"", NULL, ".lnk", false},
    /* allowed */
    {"Content-Type: application/pdf; name=\"invoice.pdf\"", "invoice.pdf", NULL, false},
    {"Content-Type: application/octet-stream; name=\"exe\"", "exe", NULL, false},
    {"Content-Type: application/octet-stream; name=\"notes.executive\"", "notes.executive", NULL, false},
    /* right-to-left override: shows as "photogpj.exe" */
    {"Content-Type: application/octet-stream; name*=UTF-8''photo%E2%80%AEgpj.exe", NULL, "", false},
    {"Content-Type: application/octet-stream; name*=UTF-8''a%E2%80%AEexe.txt", NULL, "", false},
};

static void test_name_table(void **state)
{
    (void)state;
    struct banned_list list;
    const char *error = NULL;
    assert_true(banned_list_parse(&list, BANNED_DEFAULT, &error));
    struct mimewalk_limits limits;
    mimewalk_limits_default(&limits);
    for (size_t i = 0; i < sizeof name_cases / sizeof name_cases[0]; i++) {
        const struct name_case *c = &name_cases[i];
        char *msg = make_message(c->headers, "AAAA");
        struct mimewalk walk;
        mimewalk_run(msg, strlen(msg), &limits, &walk);
        if (walk.malformed)
            fail_msg("case %zu: malformed: %s", i, walk.malformed);
        bool found = c->want_name == NULL;
        bool banned = false;
        struct banned_verdict v = {0};
        for (size_t p = 0; p < walk.nparts; p++) {
            for (size_t k = 0; k < walk.parts[p].nnames; k++) {
                if (c->want_name && strcmp(walk.parts[p].names[k], c->want_name) == 0)
                    found = true;
                struct banned_verdict one;
                if (banned_check(&list, walk.parts[p].names[k], &one) && !banned) {
                    banned = true;
                    v = one;
                }
            }
        }
        if (!found) {
            for (size_t p = 0; p < walk.nparts; p++)
                for (size_t k = 0; k < walk.parts[p].nnames; k++)
                    print_message("case %zu: name \"%s\"\n", i, walk.parts[p].names[k]);
            fail_msg("case %zu: name \"%s\" not found", i, c->want_name);
        }
        if (c->want_ext) {
            if (!banned)
                fail_msg("case %zu: not banned", i);
            assert_string_equal(v.ext, c->want_ext);
            assert_int_equal(v.double_ext, c->want_double);
        } else if (banned) {
            fail_msg("case %zu: banned (%s) but should pass", i, v.ext);
        }
        mimewalk_free(&walk);
        free(msg);
    }
}

static void test_banned_list(void **state)
{
    (void)state;
    struct banned_list list;
    const char *error = NULL;
    assert_true(banned_list_parse(&list, ".EXE pif, scr", &error));
    assert_int_equal(list.n, 3);
    assert_string_equal(list.exts[0], "exe");
    struct banned_verdict v;
    assert_true(banned_check(&list, "x.Scr", &v));
    assert_false(banned_check(&list, "x.bat", &v));
    assert_false(banned_check(&list, "", &v));
    assert_false(banned_check(&list, "...", &v));
    assert_true(banned_check(&list, "a.pdf.exe", &v));
    assert_true(v.double_ext);
    assert_true(banned_check(&list, ".exe", &v));
    assert_false(v.double_ext);
    assert_true(banned_check(&list, "tab\there.txt", &v)); /* control character */
    assert_false(banned_list_parse(&list, ". exe", &error));
    assert_false(banned_list_parse(&list, ".ex/e", &error));
    assert_false(banned_list_parse(&list, ".abcdefghijklmnopq", &error));
    assert_true(banned_list_parse(&list, "", &error));
    assert_int_equal(list.n, 0);
}

static void test_bodies_decoded(void **state)
{
    (void)state;
    char *msg = make_message("Content-Type: application/octet-stream; name=\"x.bin\"\r\n"
                             "Content-Transfer-Encoding: base64", "aGVsbG8gd29ybGQ=");
    struct mimewalk_limits limits;
    mimewalk_limits_default(&limits);
    struct mimewalk walk;
    mimewalk_run(msg, strlen(msg), &limits, &walk);
    assert_null(walk.malformed);
    assert_int_equal(walk.nparts, 2);
    assert_string_equal(walk.parts[0].content_type, "text/plain");
    assert_string_equal(walk.parts[1].content_type, "application/octet-stream");
    assert_int_equal(walk.parts[1].body.len, 11);
    assert_memory_equal(walk.parts[1].body.data, "hello world", 11);
    assert_int_equal(walk.parts[1].depth, 1);
    mimewalk_free(&walk);
    free(msg);

    /* a plain message is one part with its body */
    const char *plain = "Subject: x\r\n\r\nline one\r\n";
    mimewalk_run(plain, strlen(plain), &limits, &walk);
    assert_null(walk.malformed);
    assert_int_equal(walk.nparts, 1);
    assert_non_null(memmem(walk.parts[0].body.data, walk.parts[0].body.len, "line one", 8));
    mimewalk_free(&walk);
}

/* An attached message's attachment is found too. */
static void test_nested_message(void **state)
{
    (void)state;
    const char *msg =
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
        "--o\r\nContent-Type: message/rfc822\r\n\r\n"
        "Subject: inner\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n"
        "--i\r\nContent-Type: application/x-msdownload; name=deep.com\r\n\r\nMZ\r\n--i--\r\n"
        "--o--\r\n";
    struct mimewalk_limits limits;
    mimewalk_limits_default(&limits);
    struct mimewalk walk;
    mimewalk_run(msg, strlen(msg), &limits, &walk);
    assert_null(walk.malformed);
    bool found = false;
    for (size_t i = 0; i < walk.nparts; i++)
        if (walk.parts[i].nnames && strcmp(walk.parts[i].names[0], "deep.com") == 0)
            found = walk.parts[i].depth == 3;
    assert_true(found);
    mimewalk_free(&walk);

    limits.max_depth = 2; /* the same message is now too deep: distrusted */
    mimewalk_run(msg, strlen(msg), &limits, &walk);
    assert_non_null(walk.malformed);
    mimewalk_free(&walk);
}

struct malformed_case {
    const char *msg;
    const char *why;
};

static void test_malformed(void **state)
{
    (void)state;
    static const struct malformed_case cases[] = {
        {"MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\n"
         "Content-Type: application/octet-stream; name=a.exe\r\n\r\nMZ\r\n--x--\r\n", "no boundary"},
        {"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
         "no boundary line anywhere\r\n", "boundary never used"},
        {"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
         "Content-Type: text/plain\r\n\r\ncut off here\r\n", "no end boundary"},
        {"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
         "Content-Type: application/octet-stream; name=\"a.txt\"; name=\"a.exe\"\r\n\r\nx\r\n--x--\r\n",
         "conflicting name parameters"},
    };
    struct mimewalk_limits limits;
    mimewalk_limits_default(&limits);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mimewalk walk;
        mimewalk_run(cases[i].msg, strlen(cases[i].msg), &limits, &walk);
        if (!walk.malformed)
            fail_msg("case %zu (%s): trusted", i, cases[i].why);
        mimewalk_free(&walk);
    }
}

static void test_limits(void **state)
{
    (void)state;
    struct mimewalk_limits limits;
    mimewalk_limits_default(&limits);
    /* deep nesting: 60 multiparts inside each other */
    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n");
    for (int i = 0; i < 60; i++)
        buf_printf(&b, "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n", i, i + 1);
    buf_append_str(&b, "--b60\r\nContent-Type: text/plain\r\n\r\nx\r\n--b60--\r\n");
    for (int i = 59; i >= 0; i--)
        buf_printf(&b, "--b%d--\r\n", i);
    struct mimewalk walk;
    mimewalk_run(b.data, b.len, &limits, &walk);
    assert_non_null(walk.malformed);
    mimewalk_free(&walk);
    buf_free(&b);

    /* too many parts */
    buf_init(&b, 0);
    buf_append_str(&b, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
    for (int i = 0; i < 20; i++)
        buf_append_str(&b, "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n");
    buf_append_str(&b, "--b--\r\n");
    limits.max_parts = 10;
    mimewalk_run(b.data, b.len, &limits, &walk);
    assert_non_null(walk.malformed);
    mimewalk_free(&walk);
    limits.max_parts = 100;
    mimewalk_run(b.data, b.len, &limits, &walk);
    assert_null(walk.malformed);
    assert_int_equal(walk.nparts, 20);
    mimewalk_free(&walk);
    buf_free(&b);

    /* a huge header block */
    buf_init(&b, 0);
    buf_append_str(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n");
    for (int i = 0; i < 200; i++)
        buf_printf(&b, "X-Pad-%d: %0200d\r\n", i, 0);
    buf_append_str(&b, "\r\nbody\r\n");
    mimewalk_limits_default(&limits);
    limits.max_header_bytes = 16 * 1024;
    mimewalk_run(b.data, b.len, &limits, &walk);
    assert_non_null(walk.malformed);
    mimewalk_free(&walk);
    buf_free(&b);
}

/* Byte by byte prefixes: never a crash, always a filled result. */
static void test_prefixes(void **state)
{
    (void)state;
    char *msg = make_message("Content-Type: application/octet-stream; name=\"a.exe\"\r\n"
                             "Content-Transfer-Encoding: base64", "TVqQAAMAAAAEAAAA");
    struct mimewalk_limits limits;
    mimewalk_limits_default(&limits);
    size_t len = strlen(msg);
    for (size_t n = 0; n <= len; n++) {
        struct mimewalk walk;
        mimewalk_run(msg, n, &limits, &walk);
        mimewalk_free(&walk);
    }
    free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_table),
        cmocka_unit_test(test_banned_list),
        cmocka_unit_test(test_bodies_decoded),
        cmocka_unit_test(test_nested_message),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
