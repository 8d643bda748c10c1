/* Unit tests for reference/proto/downgrade: 8-bit text parts to quoted-printable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "downgrade.h"

static bool run(const char *msg, struct buf *out, const char **why)
{
    buf_init(out, 0);
    *why = NULL;
    return downgrade_7bit(msg, strlen(msg), out, why);
}

static bool seven_bit_crlf(const struct buf *b)
{
    for (size_t i = 0; i < b->len; i++) {
        unsigned char c = (unsigned char)b->data[i];
        if (c & 0x80 || (c == '\n' && (i == 0 || b->data[i - 1] != '\r')))
            return false;
    }
    return true;
}

/* Converts in, checks the result is 7-bit CRLF text holding every needle and no =0D. */
static void expect_converted(const char *in, const char *const *needles)
{
    struct buf out;
    const char *why;
    assert_true(run(in, &out, &why));
    buf_append_char(&out, '\0');
    assert_true(seven_bit_crlf(&out));
    for (const char *const *n = needles; *n; n++)
        assert_non_null(strstr(out.data, *n));
    assert_null(strstr(out.data, "=0D"));
    buf_free(&out);
}

static void test_8bit_text_becomes_quoted_printable(void **state)
{
    (void)state;
    static const char *const plain[] = {"Content-Transfer-Encoding: quoted-printable\r\n",
                                        "Gr=C3=BC=C3=9F aus K=C3=B6ln\r\nregel twee\r\n", "Subject: kaas\r\n", NULL};
    expect_converted("From: a@b\r\nSubject: kaas\r\nMIME-Version: 1.0\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                     "Gr\xc3\xbc\xc3\x9f aus K\xc3\xb6ln\r\nregel twee\r\n", plain);
    /* multipart/alternative: only the 8-bit text part changes */
    static const char *const alt[] = {"caf=E9", "<p>cafe</p>", NULL};
    expect_converted("From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"XX\"\r\n\r\n"
                     "--XX\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\ncaf\xe9\r\n"
                     "--XX\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: 7bit\r\n\r\n<p>cafe</p>\r\n"
                     "--XX--\r\n", alt);
}

static void test_refusals(void **state)
{
    (void)state;
    static const char *const refused[] = {
        /* signed: the signature covers the bytes */
        "From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol=\"application/pgp-signature\"; "
        "micalg=pgp-sha256; boundary=\"S\"\r\n\r\n--S\r\nContent-Type: text/plain\r\n\r\nt\xc3\xa9st\r\n"
        "--S\r\nContent-Type: application/pgp-signature\r\n\r\nsig\r\n--S--\r\n",
        /* 8-bit header */
        "From: a@b\r\nSubject: caf\xc3\xa9\r\nMIME-Version: 1.0\r\n\r\nbody\r\n",
        /* not MIME */
        "From: a@b\r\n\r\ncaf\xc3\xa9\r\n",
        /* 8-bit part that is not text */
        "From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: binary\r\n\r\n\x80\x81\x82\r\n",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        struct buf out;
        const char *why;
        assert_false(run(refused[i], &out, &why));
        assert_non_null(why);
        assert_int_equal(out.len, 0);
        buf_free(&out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_8bit_text_becomes_quoted_printable),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
