/* Unit tests for reference/proto/dsn: report structure, RET, sanitising, status codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dsn.h"

static const char original[] = "Received: from ecs.thuis\r\n\tby zolder.thuis\r\n"
                               "From: sjoerd@zolder.thuis\r\nTo: piet@paprika\r\nSubject: hallo\r\n\r\n"
                               "Dag Piet.\r\nsecret body line\r\n";

static struct dsn_rcpt one_failed = {
    .final_rcpt = "piet@paprika", .orcpt = "rfc822;Piet@Paprika", .action = DSN_ACTION_FAILED,
    .status = "5.1.1", .remote_mta = "smtp.hccnet.nl",
    .diagnostic = "550 5.1.1 <piet@paprika>: Recipient address rejected"};

static struct dsn_report base_report(void)
{
    struct dsn_report r = {
        .kind = DSN_KIND_FAILURE, .reporting_mta = "zolder.thuis", .to = "sjoerd@zolder.thuis",
        .queue_id = "20QKBSX000THV273", .envid = "", .arrival_date = "Sat, 16 Nov 2002 23:07:13 +0100",
        .date = "Sat, 16 Nov 2002 23:09:00 +0100", .message_id = "20QKBSX0BOUNCE01@zolder.thuis",
        .will_retry_until = "", .ret_full = false, .full_max = 1 << 20, .rcpts = &one_failed, .nrcpts = 1,
        .message = original, .message_len = sizeof original - 1};
    return r;
}

static char *format(const struct dsn_report *r, bool *eight_r)
{
    struct buf out;
    buf_init(&out, 0);
    bool eight = dsn_format(r, &out);
    if (eight_r)
        *eight_r = eight;
    buf_append_char(&out, '\0');
    return buf_steal(&out);
}

/* The boundary the report declares. */
static void boundary_of(const char *text, char *out, size_t outsize)
{
    const char *b = strstr(text, "boundary=\"");
    assert_non_null(b);
    b += 10;
    size_t n = strcspn(b, "\"");
    assert_true(n < outsize);
    memcpy(out, b, n);
    out[n] = '\0';
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_dsn_failure_headers_only(void **state)
{
    (void)state;
    struct dsn_report r = base_report();
    bool eight = true;
    char *text = format(&r, &eight);
    assert_false(eight);
    assert_non_null(strstr(text, "From: Mail Delivery System <MAILER-DAEMON@zolder.thuis>\r\n"));
    assert_non_null(strstr(text, "To: <sjoerd@zolder.thuis>\r\n"));
    assert_non_null(strstr(text, "Subject: Undelivered Mail Returned to Sender\r\n"));
    assert_non_null(strstr(text, "Auto-Submitted: auto-replied\r\n"));
    assert_non_null(strstr(text, "Content-Type: multipart/report; report-type=delivery-status;"));
    char boundary[128], delim[140];
    boundary_of(text, boundary, sizeof boundary);
    snprintf(delim, sizeof delim, "\r\n--%s\r\n", boundary);
    assert_int_equal(count(text, delim), 3);
    snprintf(delim, sizeof delim, "\r\n--%s--\r\n", boundary);
    assert_int_equal(count(text, delim), 1);
    /* the per-message and per-recipient fields of RFC 3464 */
    assert_non_null(strstr(text, "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; zolder.thuis\r\n"));
    assert_non_null(strstr(text, "Arrival-Date: Sat, 16 Nov 2002 23:07:13 +0100\r\n"));
    assert_non_null(strstr(text, "\r\n\r\nFinal-Recipient: rfc822; piet@paprika\r\n"
                                 "Original-Recipient: rfc822;Piet@Paprika\r\n"
                                 "Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; smtp.hccnet.nl\r\n"
                                 "Diagnostic-Code: smtp; 550 5.1.1 <piet@paprika>: Recipient address rejected\r\n"));
    assert_null(strstr(text, "Original-Envelope-Id"));
    /* RET=HDRS: the header, not the body */
    assert_non_null(strstr(text, "Content-Type: text/rfc822-headers\r\n\r\nReceived: from ecs.thuis\r\n"));
    assert_non_null(strstr(text, "Subject: hallo\r\n"));
    assert_null(strstr(text, "secret body line"));
    free(text);
}

static void test_dsn_failure_full_and_size_limit(void **state)
{
    (void)state;
    struct dsn_report r = base_report();
    r.ret_full = true;
    r.envid = "QQ314159";
    char *text = format(&r, NULL);
    assert_non_null(strstr(text, "Content-Type: message/rfc822\r\n\r\nReceived: from ecs.thuis"));
    assert_non_null(strstr(text, "secret body line\r\n"));
    assert_non_null(strstr(text, "Original-Envelope-Id: QQ314159\r\n"));
    free(text);
    r.full_max = 10; /* too large to return whole: the header only */
    text = format(&r, NULL);
    assert_non_null(strstr(text, "Content-Type: text/rfc822-headers"));
    assert_null(strstr(text, "secret body line"));
    free(text);
}

static void test_dsn_delay_and_success(void **state)
{
    (void)state;
    struct dsn_rcpt rc = {.final_rcpt = "jan@paprika", .orcpt = "", .action = DSN_ACTION_DELAYED,
                          .status = "4.4.1", .remote_mta = "", .diagnostic = "connect failed"};
    struct dsn_report r = base_report();
    r.kind = DSN_KIND_DELAY;
    r.rcpts = &rc;
    r.will_retry_until = "Thu, 21 Nov 2002 23:07:13 +0100";
    char *text = format(&r, NULL);
    assert_non_null(strstr(text, "Subject: Delayed Mail (still being retried)\r\n"));
    assert_non_null(strstr(text, "Action: delayed\r\nStatus: 4.4.1\r\n"));
    assert_non_null(strstr(text, "Will-Retry-Until: Thu, 21 Nov 2002 23:07:13 +0100\r\n"));
    assert_non_null(strstr(text, "THIS IS A WARNING ONLY"));
    assert_null(strstr(text, "Original-Recipient"));
    free(text);
    rc.action = DSN_ACTION_RELAYED;
    rc.status = "2.0.0";
    r.kind = DSN_KIND_SUCCESS;
    text = format(&r, NULL);
    assert_non_null(strstr(text, "Subject: Successful Mail Delivery Report\r\n"));
    assert_non_null(strstr(text, "Action: relayed\r\nStatus: 2.0.0\r\n"));
    assert_null(strstr(text, "Will-Retry-Until"));
    free(text);
}

static void test_dsn_sanitises_remote_text(void **state)
{
    (void)state;
    struct dsn_rcpt rc = one_failed;
    rc.diagnostic = "550 no\r\nX-Injected: yes\r\n\r\n--boundary";
    rc.status = "5.1.1\r\nX-Evil: 1"; /* not a status code: replaced */
    struct dsn_report r = base_report();
    r.rcpts = &rc;
    char *text = format(&r, NULL);
    assert_null(strstr(text, "\r\nX-Injected"));
    assert_null(strstr(text, "\r\nX-Evil"));
    assert_non_null(strstr(text, "Diagnostic-Code: smtp; 550 no?" "?X-Injected: yes?" "?" "?" "?--boundary\r\n"));
    assert_non_null(strstr(text, "Status: 5.0.0\r\n"));
    free(text);
    /* very long text is cut */
    char *longtext = malloc(5000);
    memset(longtext, 'a', 4999);
    longtext[4999] = '\0';
    rc = one_failed;
    rc.diagnostic = longtext;
    r.rcpts = &rc;
    text = format(&r, NULL);
    const char *d = strstr(text, "Diagnostic-Code: smtp; ");
    assert_non_null(d);
    assert_int_equal(strcspn(d + 23, "\r"), DSN_FIELD_MAX + 3);
    free(text);
    free(longtext);
}

static void test_dsn_boundary_not_in_message_and_8bit(void **state)
{
    (void)state;
    struct dsn_report r = base_report();
    char *first = format(&r, NULL);
    char boundary[128];
    boundary_of(first, boundary, sizeof boundary);
    free(first);
    /* a message that holds the boundary the report would use: another one is chosen */
    struct buf msg;
    buf_init(&msg, 0);
    buf_printf(&msg, "Subject: caf\xc3\xa9\r\n\r\n--%s\r\nbody\n", boundary);
    r.message = msg.data;
    r.message_len = msg.len;
    r.ret_full = true;
    bool eight = false;
    char *text = format(&r, &eight);
    assert_true(eight);
    char other[128];
    boundary_of(text, other, sizeof other);
    assert_string_not_equal(other, boundary);
    assert_non_null(strstr(text, "Content-Transfer-Encoding: 8bit\r\n"));
    /* bare LF in the returned message became CRLF */
    assert_non_null(strstr(text, "\r\nbody\r\n"));
    free(text);
    buf_free(&msg);
}

static void test_dsn_header_len_and_status(void **state)
{
    (void)state;
    assert_int_equal(dsn_header_len("A: b\r\n\r\nbody", 13), 8);
    assert_int_equal(dsn_header_len("A: b\n\nbody", 10), 6);
    assert_int_equal(dsn_header_len("A: b\r\nno end", 13), 13);
    assert_int_equal(dsn_header_len("\r\nbody", 6), 2);
    assert_int_equal(dsn_header_len("", 0), 0);
    assert_true(dsn_status_valid("5.1.1"));
    assert_true(dsn_status_valid("4.4.7"));
    assert_true(dsn_status_valid("2.123.999"));
    assert_false(dsn_status_valid("3.1.1"));
    assert_false(dsn_status_valid("5.1"));
    assert_false(dsn_status_valid("5.1.1 "));
    assert_false(dsn_status_valid("5.1234.1"));
    assert_false(dsn_status_valid(""));
    assert_false(dsn_status_valid(NULL));
    assert_string_equal(dsn_action_name(DSN_ACTION_RELAYED), "relayed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dsn_failure_headers_only),
        cmocka_unit_test(test_dsn_failure_full_and_size_limit),
        cmocka_unit_test(test_dsn_delay_and_success),
        cmocka_unit_test(test_dsn_sanitises_remote_text),
        cmocka_unit_test(test_dsn_boundary_not_in_message_and_8bit),
        cmocka_unit_test(test_dsn_header_len_and_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
