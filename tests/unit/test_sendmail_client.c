/*
 * Unit tests for reference/core/sendmail_client: the sendmail command line, cutting input
 * at a lone ".", -t recipient extraction with Bcc removal, the DATA writer (LF -> CRLF,
 * dot-stuffing, folding; also fed one byte at a time) and SMTP reply lines. Table-driven.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>

#include "core/sendmail_client.h"

#define MAXARGS 12

/* ---- command line ---- */

struct args_case {
    const char *argv[MAXARGS]; /* NULL-terminated, argv[0] included */
    int rc;
    enum sendmail_mode mode;
    bool extract, ignore_dots;
    const char *config, *sender, *fullname, *body, *notify, *ret, *envid;
    size_t nrcpts;
    const char *first_rcpt;
    const char *error_part; /* in args.error when rc == -1 */
};

static const struct args_case args_cases[] = {
    {.argv = {"sendmail", "sjoerd@zolder.thuis"}, .nrcpts = 1, .first_rcpt = "sjoerd@zolder.thuis"},
    {.argv = {"sendmail", "-t"}, .extract = true},
    {.argv = {"sendmail", "-ti", "extra"}, .extract = true, .ignore_dots = true, .nrcpts = 1,
     .first_rcpt = "extra"},
    {.argv = {"sendmail", "-oi", "-f", "a@b", "-F", "Sjoerd V", "x", "y"}, .ignore_dots = true,
     .sender = "a@b", .fullname = "Sjoerd V", .nrcpts = 2, .first_rcpt = "x"},
    {.argv = {"sendmail", "-fa@b", "-FSjoerd", "--", "-odd"}, .sender = "a@b",
     .fullname = "Sjoerd", .nrcpts = 1, .first_rcpt = "-odd"},
    {.argv = {"sendmail", "-C", "/x/z.conf", "-bs"}, .mode = SENDMAIL_MODE_SMTP, .config = "/x/z.conf"},
    {.argv = {"sendmail", "-C/y.conf", "-bp"}, .mode = SENDMAIL_MODE_PRINT, .config = "/y.conf"},
    {.argv = {"sendmail", "-q"}, .mode = SENDMAIL_MODE_FLUSH},
    {.argv = {"sendmail", "-q30m"}, .mode = SENDMAIL_MODE_FLUSH},
    {.argv = {"sendmail", "-bi"}, .mode = SENDMAIL_MODE_ALIASES},
    {.argv = {"sendmail", "-bm", "-odi", "-oem", "-U", "-h", "20", "-L", "tag", "r"}, .nrcpts = 1,
     .first_rcpt = "r"},
    {.argv = {"sendmail", "-B", "8bitmime", "-N", "success,failure", "-R", "hdrs", "-V", "id1", "r"},
     .body = "8bitmime", .notify = "success,failure", .ret = "hdrs", .envid = "id1", .nrcpts = 1,
     .first_rcpt = "r"},
    {.argv = {"sendmail", "-r", "old@style", "r"}, .sender = "old@style", .nrcpts = 1, .first_rcpt = "r"},
    /* errors */
    {.argv = {"sendmail", "-Z"}, .rc = -1, .error_part = "unknown option -Z"},
    {.argv = {"sendmail", "-f"}, .rc = -1, .error_part = "-f needs a value"},
    {.argv = {"sendmail", "-bd"}, .rc = -1, .error_part = "run zolderd"},
    {.argv = {"sendmail", "-bv", "x"}, .rc = -1, .error_part = "not supported"},
    {.argv = {"sendmail", "-bs", "rcpt"}, .rc = -1, .error_part = "take no recipients"},
    {.argv = {"sendmail", "-q", "-t"}, .rc = -1, .error_part = "take no recipients"},
    {.argv = {"sendmail", "-qRexample.org"}, .rc = -1, .error_part = "selective"},
    {.argv = {"sendmail", "-B", "binary", "r"}, .rc = -1, .error_part = "7BIT or 8BITMIME"},
    {.argv = {"sendmail", "-R", "some", "r"}, .rc = -1, .error_part = "hdrs or full"},
    {.argv = {"sendmail", "-N", "success;rm", "r"}, .rc = -1, .error_part = "-N"},
    {.argv = {"sendmail", "-V", "a b", "r"}, .rc = -1, .error_part = "printable"},
    {.argv = {"sendmail", "-X", "/tmp/log", "r"}, .rc = -1, .error_part = "not supported"},
};

static void check_str(const char *want, const char *got)
{
    if (!want)
        assert_null(got);
    else
        assert_string_equal(want, got);
}

static void test_sendmail_args(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof args_cases / sizeof args_cases[0]; c++) {
        const struct args_case *t = &args_cases[c];
        int argc = 0;
        while (argc < MAXARGS && t->argv[argc])
            argc++;
        struct sendmail_args a;
        int rc = sendmail_args_parse(argc, (char *const *)t->argv, &a);
        if (rc != t->rc)
            fail_msg("case %zu (%s): rc %d, want %d (%s)", c, t->argv[1], rc, t->rc, a.error);
        if (rc < 0) {
            if (!strstr(a.error, t->error_part))
                fail_msg("case %zu: error \"%s\" lacks \"%s\"", c, a.error, t->error_part);
            continue;
        }
        assert_int_equal(a.mode, t->mode);
        assert_int_equal(a.extract, t->extract);
        assert_int_equal(a.ignore_dots, t->ignore_dots);
        check_str(t->config, a.config);
        check_str(t->sender, a.sender);
        check_str(t->fullname, a.fullname);
        check_str(t->body, a.body);
        check_str(t->notify, a.notify);
        check_str(t->ret, a.ret);
        check_str(t->envid, a.envid);
        assert_int_equal(a.nrcpts, t->nrcpts);
        if (t->first_rcpt)
            assert_string_equal(a.rcpts[0], t->first_rcpt);
    }
}

static void test_sendmail_config_path(void **state)
{
    (void)state;
    struct sendmail_args a;
    const char *argv1[] = {"sendmail", "r", NULL};
    assert_int_equal(sendmail_args_parse(2, (char *const *)argv1, &a), 0);
    assert_string_equal(sendmail_config_path(&a, NULL), "/etc/zolder/zolder.conf");
    assert_string_equal(sendmail_config_path(&a, ""), "/etc/zolder/zolder.conf");
    assert_string_equal(sendmail_config_path(&a, "/env.conf"), "/env.conf");
    const char *argv2[] = {"sendmail", "-C", "/c.conf", "r", NULL};
    assert_int_equal(sendmail_args_parse(4, (char *const *)argv2, &a), 0);
    assert_string_equal(sendmail_config_path(&a, "/env.conf"), "/c.conf");
}

/* ---- input cut ---- */

static void test_sendmail_input_cut(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool ignore_dots;
        size_t want;
    } cases[] = {
        {"a\nb\n", false, 4},
        {"a\n.\nafter\n", false, 2},
        {"a\r\n.\r\nafter\r\n", false, 3},
        {".\n", false, 0},
        {"a\n.", false, 2},
        {"a\n..\nb\n", false, 7},
        {"a\n.x\n", false, 5},
        {"a.\n", false, 3},
        {"a\n.\nafter\n", true, 10},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t got = sendmail_input_cut(cases[c].in, strlen(cases[c].in), cases[c].ignore_dots);
        if (got != cases[c].want)
            fail_msg("case %zu: cut at %zu, want %zu", c, got, cases[c].want);
    }
}

/* ---- writer ---- */

static void write_all(const char *in, size_t len, bool bytewise, struct buf *out)
{
    struct sendmail_writer w;
    sendmail_writer_init(&w);
    if (bytewise) {
        for (size_t i = 0; i < len; i++)
            sendmail_writer_feed(&w, in + i, 1, out);
    } else {
        sendmail_writer_feed(&w, in, len, out);
    }
    sendmail_writer_finish(&w, out);
}

static void test_sendmail_writer(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"", ""},
        {"a\nb\n", "a\r\nb\r\n"},
        {"a\r\nb\r\n", "a\r\nb\r\n"},
        {"no newline at end", "no newline at end\r\n"},
        {".\n", "..\r\n"},
        {"a\n.hidden\n..two\n", "a\r\n..hidden\r\n...two\r\n"},
        {"a.b\n", "a.b\r\n"},
        {"bare\rcr\n", "bare\r\ncr\r\n"},
        {"ends in cr\r", "ends in cr\r\n"},
        {"\n\n", "\r\n\r\n"},
        {"x\r\r\ny", "x\r\n\r\ny\r\n"},
    };
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            struct buf out;
            buf_init(&out, 0);
            write_all(cases[c].in, strlen(cases[c].in), bytewise, &out);
            assert_int_equal(out.len, strlen(cases[c].want));
            if (out.len && memcmp(out.data, cases[c].want, out.len) != 0)
                fail_msg("case %zu%s: got \"%s\"", c, bytewise ? " (bytewise)" : "", out.data);
            buf_free(&out);
        }
    }
}

static void test_sendmail_writer_folds_long_lines(void **state)
{
    (void)state;
    size_t n = 2500;
    char *in = malloc(n + 1);
    memset(in, 'x', n);
    in[0] = '.';
    in[n] = '\n';
    struct buf out;
    buf_init(&out, 0);
    write_all(in, n + 1, false, &out);
    /* Every output line within the limit, and nothing but the folds added. */
    size_t line = 0, lines = 0;
    for (size_t i = 0; i < out.len; i++) {
        if (out.data[i] == '\r') {
            assert_true(line <= SENDMAIL_LINE_WRAP);
            assert_int_equal(out.data[i + 1], '\n');
            line = 0;
            lines++;
            i++;
            continue;
        }
        line++;
    }
    assert_int_equal(lines, 3);
    assert_int_equal(out.len, n + 1 /* stuffed dot */ + 2 * 3 /* folds */ + 2 /* CRLF */);
    assert_memory_equal(out.data, "..x", 3);
    assert_memory_equal(out.data + SENDMAIL_LINE_WRAP, "\r\n x", 4);
    buf_free(&out);
    free(in);
}

/* ---- header edits and -t ---- */

struct header_case {
    const char *in;
    bool extract;
    const char *add_from;
    const char *want_out;
    const char *want_rcpts[5];
    int rc;
};

static const struct header_case header_cases[] = {
    /* -t: To, Cc, Bcc collected (once each), Bcc removed, unqualified names qualified */
    {"To: sjoerd@zolder.thuis, Bouke <bouke@zolder.thuis>\n"
     "Cc: sjoerd@ZOLDER.thuis\n"
     "Bcc: geheim@zolder.thuis,\n\tnog@zolder.thuis\n"
     "Subject: hoi\n\nBcc: not a header\n",
     true, NULL,
     "To: sjoerd@zolder.thuis, Bouke <bouke@zolder.thuis>\n"
     "Cc: sjoerd@ZOLDER.thuis\n"
     "Subject: hoi\n\nBcc: not a header\n",
     {"sjoerd@zolder.thuis", "bouke@zolder.thuis", "geheim@zolder.thuis", "nog@zolder.thuis"}, 0},
    {"to: jan\nsubject: x\n\nbody\n", true, NULL, "to: jan\nsubject: x\n\nbody\n",
     {"jan@zolder.thuis"}, 0},
    /* groups */
    {"To: team: a@x.nl, b@x.nl;, c@y.nl\n\n", true, NULL, "To: team: a@x.nl, b@x.nl;, c@y.nl\n\n",
     {"a@x.nl", "b@x.nl", "c@y.nl"}, 0},
    {"To: undisclosed-recipients:;\nBcc: hidden@x.nl\n\n", true, NULL,
     "To: undisclosed-recipients:;\n\n", {"hidden@x.nl"}, 0},
    /* Resent- fields win when present */
    {"To: orig@x.nl\nResent-To: new@x.nl\nResent-Bcc: quiet@x.nl\n\n", true, NULL,
     "To: orig@x.nl\nResent-To: new@x.nl\n\n", {"new@x.nl", "quiet@x.nl"}, 0},
    /* Bcc removed even without -t; CRLF input kept as is */
    {"Subject: s\r\nBCC: x@y.nl\r\n\r\nb\r\n", false, NULL, "Subject: s\r\n\r\nb\r\n", {NULL}, 0},
    /* mbox From_ line dropped */
    {"From sjoerd Sat Nov 16 23:07:13 2002\nSubject: s\n\nb\n", false, NULL, "Subject: s\n\nb\n",
     {NULL}, 0},
    /* From: added when missing, never when present */
    {"Subject: s\n\nb\n", false, "Sjoerd <s@zolder.thuis>",
     "Subject: s\nFrom: Sjoerd <s@zolder.thuis>\n\nb\n", {NULL}, 0},
    {"FROM: me@x.nl\n\nb\n", false, "s@zolder.thuis", "FROM: me@x.nl\n\nb\n", {NULL}, 0},
    {"just a body line\n", false, "s@zolder.thuis", "From: s@zolder.thuis\n\njust a body line\n",
     {NULL}, 0},
    {"", false, "s@zolder.thuis", "From: s@zolder.thuis\n", {NULL}, 0},
    {"Subject: no newline", false, "s@zolder.thuis", "Subject: no newline\nFrom: s@zolder.thuis\n",
     {NULL}, 0},
    /* unusable addresses are refused, not passed to RCPT */
    {"To: \"a b\"@x.nl\n\n", true, NULL, NULL, {NULL}, -1},
};

static void test_sendmail_header_edit(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof header_cases / sizeof header_cases[0]; c++) {
        const struct header_case *t = &header_cases[c];
        struct sendmail_header_opts o = {t->extract, t->add_from, "zolder.thuis"};
        struct sendmail_rcpts r = {NULL, 0};
        struct buf out;
        const char *why = NULL;
        buf_init(&out, 0);
        int rc = sendmail_header_edit(t->in, strlen(t->in), &o, &out, &r, &why);
        if (rc != t->rc)
            fail_msg("case %zu: rc %d (%s)", c, rc, why ? why : "");
        if (rc == 0) {
            if (strcmp(out.data ? out.data : "", t->want_out) != 0)
                fail_msg("case %zu: got\n%s\nwant\n%s", c, out.data ? out.data : "", t->want_out);
            size_t n = 0;
            while (n < 5 && t->want_rcpts[n])
                n++;
            assert_int_equal(r.n, n);
            for (size_t i = 0; i < n; i++)
                assert_string_equal(r.addrs[i], t->want_rcpts[i]);
        }
        sendmail_rcpts_free(&r);
        buf_free(&out);
    }
}

static void test_sendmail_addresses(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        const char *want[3];
    } cases[] = {
        {"sjoerd", 0, {"sjoerd@zolder.thuis"}},
        {"a@x.nl, b@x.nl", 0, {"a@x.nl", "b@x.nl"}},
        {"Sjoerd Visser <sjoerd@zolder.thuis>", 0, {"sjoerd@zolder.thuis"}},
        {"", 0, {NULL}},
        {"a@x.nl, A@X.NL", 0, {"a@x.nl"}},
        {"<a@x.nl>\r\nRCPT TO:<b@y>", -1, {NULL}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct sendmail_rcpts r = {NULL, 0};
        const char *why;
        int rc = sendmail_addr_list(cases[c].text, "zolder.thuis", &r, &why);
        if (rc != cases[c].rc)
            fail_msg("case %zu: rc %d", c, rc);
        if (rc == 0) {
            size_t n = 0;
            while (n < 3 && cases[c].want[n])
                n++;
            assert_int_equal(r.n, n);
            for (size_t i = 0; i < n; i++)
                assert_string_equal(r.addrs[i], cases[c].want[i]);
        }
        sendmail_rcpts_free(&r);
    }
    static const struct {
        const char *addr;
        bool ok;
    } okcases[] = {
        {"a@b", true},     {"a@b.nl", true},  {"", false},        {"a", false},
        {"@b", false},     {"a@", false},     {"a b@c", false},   {"a>@c", false},
        {"a\r\n@c", false}, {"a\x7f@c", false},
    };
    for (size_t c = 0; c < sizeof okcases / sizeof okcases[0]; c++)
        if (sendmail_addr_ok(okcases[c].addr) != okcases[c].ok)
            fail_msg("addr_ok case %zu", c);
    char *q = sendmail_qualify("root", "zolder.thuis");
    assert_string_equal(q, "root@zolder.thuis");
    free(q);
    q = sendmail_qualify("root@x", "zolder.thuis");
    assert_string_equal(q, "root@x");
    free(q);
}

static void test_sendmail_reply_line(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        bool ok;
        int code;
        bool last;
    } cases[] = {
        {"250 ok", true, 250, true},
        {"250-PIPELINING", true, 250, false},
        {"354", true, 354, true},
        {"550 5.1.1 <x>: User unknown", true, 550, true},
        {"25 short", false, 0, false},
        {"600 bad", false, 0, false},
        {"250x", false, 0, false},
        {"", false, 0, false},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int code = 0;
        bool last = false;
        bool ok = sendmail_reply_line(cases[c].line, &code, &last);
        assert_int_equal(ok, cases[c].ok);
        if (ok) {
            assert_int_equal(code, cases[c].code);
            assert_int_equal(last, cases[c].last);
        }
    }
    assert_true(sendmail_is_8bit("caf\xc3\xa9", 5));
    assert_false(sendmail_is_8bit("cafe", 4));
}

int main(void)
{
    g_mime_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sendmail_args),
        cmocka_unit_test(test_sendmail_config_path),
        cmocka_unit_test(test_sendmail_input_cut),
        cmocka_unit_test(test_sendmail_writer),
        cmocka_unit_test(test_sendmail_writer_folds_long_lines),
        cmocka_unit_test(test_sendmail_header_edit),
        cmocka_unit_test(test_sendmail_addresses),
        cmocka_unit_test(test_sendmail_reply_line),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    g_mime_shutdown();
    return rc;
}
