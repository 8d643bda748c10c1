/*
 * Unit tests for reference/filter: verdicts of filter_scan on whole messages (banned name,
 * EICAR, PE content under a harmless name, a zip with a banned name, doubtful MIME, clean
 * mail), the admin notice's seed-shaped lines, and clamd's INSTREAM answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "filter/clamd.h"
#include "filter/filter.h"

static char eicar[80];

static int setup(void **state)
{
    (void)state;
    snprintf(eicar, sizeof eicar, "%s%s", "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-",
             "ANTIVIRUS-TEST-FILE!$H+H*");
    return 0;
}

struct fixture {
    struct zconf conf;
    struct filter filter;
};

static void fixture_open(struct fixture *fx)
{
    zconf_defaults(&fx->conf, "/tmp");
    struct cfg_error err;
    assert_true(filter_init(&fx->filter, &fx->conf, NULL, &err));
}

static void fixture_close(struct fixture *fx)
{
    filter_free(&fx->filter);
    zconf_free(&fx->conf);
}

static const char sober[] =
    "Received: from cstesucgr.gov (cstesucgr.gov [198.51.100.7])\r\n\tby relay.example; Sat, 16 Nov 2002 22:03:00 +0000\r\n"
    "From: <>\r\nSubject: Your IP was logged\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
    "--b\r\nContent-Type: text/plain\r\n\r\n%s\r\n"
    "--b\r\nContent-Type: application/octet-stream; name=\"Liste.exe\"\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b--\r\n";

static void test_scan_sober(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_open(&fx);
    char msg[2048];
    snprintf(msg, sizeof msg, sober, eicar);
    struct filter_verdict v;
    filter_scan(&fx.filter, msg, strlen(msg), &v);
    assert_true(filter_verdict_quarantine(&v));
    assert_string_equal(v.virus, "Eicar-Test-Signature");
    assert_string_equal(v.scanner, FILTER_BUILTIN_SCANNER);
    assert_string_equal(v.banned_ext, ".exe");
    assert_string_equal(v.banned_name, "Liste.exe");
    assert_string_equal(v.doubt, "");

    /* the notice */
    struct queue_msg qm;
    memset(&qm, 0, sizeof qm);
    strcpy(qm.id, "20QKLTZ00087S9KV");
    qm.env.sender = "";
    qm.env.client_ip = "127.0.0.1";
    queue_envelope_add_rcpt(&qm.env, "bouke@localhost.zolder.thuis", "", "", false);
    qm.env.rcpts[0].status = QUEUE_RCPT_PENDING;
    struct buf out;
    buf_init(&out, 0);
    filter_notice_render(&v, &qm, msg, strlen(msg), "postmaster@zolder.thuis", "zolder.thuis",
                         "Sat, 16 Nov 2002 23:07:13 +0100", &out);
    static const char *const lines[] = {
        "A virus (Eicar-Test-Signature) was found.\r\n",
        "A banned name (.exe) was found.\r\n",
        "Scanner detecting a virus: zolder built-in signatures\r\n",
        "The mail originated from: <>\r\n",
        "According to the 'Received:' trace, the message originated at:\r\n"
        "   cstesucgr.gov (cstesucgr.gov [198.51.100.7])\r\n",
        "Notification to sender will not be mailed.\r\n",
        "The message WAS NOT delivered to:\r\n<bouke@localhost.zolder.thuis>:\r\n",
        "To: <postmaster@zolder.thuis>\r\n",
        "Auto-Submitted: auto-generated\r\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        if (!strstr(out.data, lines[i]))
            fail_msg("notice lacks %s in:\n%s", lines[i], out.data);
    buf_free(&out);
    free(qm.env.rcpts[0].addr);
    free(qm.env.rcpts[0].orcpt);
    free(qm.env.rcpts[0].notify);
    free(qm.env.rcpts);
    fixture_close(&fx);
}

static void test_scan_verdicts(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_open(&fx);
    struct filter_verdict v;

    const char *clean = "From: a@b\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
                        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
                        "--b\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n\r\n%PDF\r\n--b--\r\n";
    filter_scan(&fx.filter, clean, strlen(clean), &v);
    assert_false(filter_verdict_quarantine(&v));
    assert_string_equal(v.tempfail, "");

    /* a PE executable named like a picture */
    char pe[128];
    memset(pe, 0, sizeof pe);
    pe[0] = 'M';
    pe[1] = 'Z';
    pe[0x3c] = 0x40;
    memcpy(pe + 0x40, "PE\0\0", 4);
    struct buf msg;
    buf_init(&msg, 0);
    buf_append_str(&msg, "MIME-Version: 1.0\r\nContent-Type: image/jpeg; name=\"foto.jpg\"\r\n\r\n");
    buf_append(&msg, pe, sizeof pe);
    filter_scan(&fx.filter, msg.data, msg.len, &v);
    assert_string_equal(v.banned_ext, ".exe-ms");
    buf_free(&msg);

    /* EICAR in the plain body of a non-MIME message */
    char plain[256];
    snprintf(plain, sizeof plain, "Subject: x\r\n\r\n%s\r\n", eicar);
    filter_scan(&fx.filter, plain, strlen(plain), &v);
    assert_string_equal(v.virus, "Eicar-Test-Signature");

    /* doubtful structure */
    const char *broken = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\nhi\r\n--x--\r\n";
    filter_scan(&fx.filter, broken, strlen(broken), &v);
    assert_true(filter_verdict_quarantine(&v));
    assert_non_null(strstr(v.doubt, "malformed MIME"));

    /* banned_extensions empty: names pass, signatures still count */
    free(fx.conf.banned_extensions);
    fx.conf.banned_extensions = strdup("");
    filter_free(&fx.filter);
    struct cfg_error err;
    assert_true(filter_init(&fx.filter, &fx.conf, NULL, &err));
    const char *exe = "MIME-Version: 1.0\r\nContent-Type: application/octet-stream; name=\"a.exe\"\r\n\r\nxx\r\n";
    filter_scan(&fx.filter, exe, strlen(exe), &v);
    assert_false(filter_verdict_quarantine(&v));
    fixture_close(&fx);
}

static void test_signature_file_errors(void **state)
{
    (void)state;
    struct zconf conf;
    zconf_defaults(&conf, "/tmp");
    char path[] = "/tmp/zolder-test-sigs-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *bad = "# ok\nGood.One hex 01020304\nBad.One hex 0102\n";
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    free(conf.virus_signatures);
    conf.virus_signatures = strdup(path);
    struct filter f;
    struct cfg_error err;
    assert_false(filter_init(&f, &conf, NULL, &err));
    filter_free(&f);
    char want[128];
    snprintf(want, sizeof want, "%s:3:", path);
    assert_non_null(strstr(err.text, want));
    unlink(path);
    free(conf.virus_signatures);
    conf.virus_signatures = strdup("/nonexistent/sigs");
    assert_false(filter_init(&f, &conf, NULL, &err));
    filter_free(&f);
    assert_non_null(strstr(err.text, "cannot read"));
    zconf_free(&conf);
}

static void test_clamd_replies(void **state)
{
    (void)state;
    char virus[64];
    assert_int_equal(clamd_parse_reply("stream: OK", virus, sizeof virus), CLAMD_CLEAN);
    assert_int_equal(clamd_parse_reply("stream: Eicar-Signature FOUND", virus, sizeof virus), CLAMD_FOUND);
    assert_string_equal(virus, "Eicar-Signature");
    assert_int_equal(clamd_parse_reply("stream: Win.Test.EICAR_HDB-1 FOUND", virus, sizeof virus), CLAMD_FOUND);
    assert_string_equal(virus, "Win.Test.EICAR_HDB-1");
    assert_int_equal(clamd_parse_reply("INSTREAM size limit exceeded. ERROR", virus, sizeof virus), CLAMD_ERROR);
    assert_int_equal(clamd_parse_reply("stream: lstat() failed ERROR", virus, sizeof virus), CLAMD_ERROR);
    assert_int_equal(clamd_parse_reply("", virus, sizeof virus), CLAMD_ERROR);
    assert_int_equal(clamd_parse_reply("stream:  FOUND", virus, sizeof virus), CLAMD_ERROR); /* no name */
    /* a long name is cut, never overflows */
    char longreply[300];
    memset(longreply, 'A', sizeof longreply);
    memcpy(longreply, "stream: ", 8);
    strcpy(longreply + 280, " FOUND");
    assert_int_equal(clamd_parse_reply(longreply, virus, sizeof virus), CLAMD_FOUND);
    assert_int_equal(strlen(virus), sizeof virus - 1);
    /* nobody listening */
    char error[256];
    assert_int_equal(clamd_scan("unix:/nonexistent/clamd.ctl", "x", 1, 1000, virus, sizeof virus, error,
                                sizeof error), CLAMD_ERROR);
    assert_non_null(strstr(error, "cannot connect"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_sober),
        cmocka_unit_test(test_scan_verdicts),
        cmocka_unit_test(test_signature_file_errors),
        cmocka_unit_test(test_clamd_replies),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
