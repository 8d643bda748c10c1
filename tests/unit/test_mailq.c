/*
 * Unit tests for reference/queue/mailq: the Postfix-style listing over loaded queue
 * messages (columns, held marker, reasons, totals), and mailq_list() over a real queue
 * folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue/mailq.h"
#include "queue/queue.h"
#include "xalloc.h"

static const char conf_text[] = "hostname = zolder.thuis\n"
                                "local_domains = zolder.thuis, localhost\n"
                                "state_dir = var\n";

static int setup(void **state)
{
    /* Arrival times print in local time: pin it so the expected text is fixed. */
    setenv("TZ", "UTC", 1);
    tzset();
    struct zconf *c = xcalloc(1, sizeof *c);
    struct cfg_error err;
    zconf_defaults(c, "/tmp");
    if (!zconf_parse(c, "/tmp/zolder.conf", conf_text, strlen(conf_text), &err))
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    zconf_free(*state);
    free(*state);
    return 0;
}

static void make_msg(struct queue_msg *m, const char *id, const char *sender, size_t size,
                     bool held)
{
    memset(m, 0, sizeof *m);
    snprintf(m->id, sizeof m->id, "%s", id);
    m->env.sender = xstrdup(sender);
    m->env.arrival = 1037488033; /* Sat Nov 16 23:07:13 2002 UTC */
    m->size = size;
    m->held = held;
}

static void test_mailq_empty(void **state)
{
    struct buf out;
    buf_init(&out, 0);
    mailq_format(*state, NULL, 0, &out);
    assert_string_equal(out.data, "Mail queue is empty\n");
    buf_free(&out);
}

static void test_mailq_remote_recipient_is_deferred(void **state)
{
    struct queue_msg m;
    make_msg(&m, "0ABCDEFGHJKLMNPQ", "sjoerd@zolder.thuis", 312, false);
    queue_envelope_add_rcpt(&m.env, "bouke@example.org", "", "", false);
    struct buf out;
    buf_init(&out, 0);
    mailq_format(*state, &m, 1, &out);
    const char *want =
        "-Queue ID-        --Size-- ----Arrival Time---- -Sender/Recipient-------\n"
        "0ABCDEFGHJKLMNPQ       312 Sat Nov 16 23:07:13  sjoerd@zolder.thuis\n"
        "                                              (waiting for remote delivery)\n"
        "                                               bouke@example.org\n"
        "\n"
        "-- 1 Kbytes in 1 Request.\n";
    assert_string_equal(out.data, want);
    buf_free(&out);
    queue_msg_free(&m);
}

static void test_mailq_defer_remote_says_held_for_a_flush(void **state)
{
    struct zconf *c = *state;
    struct queue_msg m;
    make_msg(&m, "0ABCDEFGHJKLMNPQ", "sjoerd@zolder.thuis", 312, false);
    queue_envelope_add_rcpt(&m.env, "jan@paprika", "", "", false);
    c->defer_remote = true;
    struct buf out;
    buf_init(&out, 0);
    mailq_format(c, &m, 1, &out);
    assert_non_null(strstr(out.data, "(held until a flush: defer_remote = yes)\n"));
    c->defer_remote = false;
    buf_free(&out);
    queue_msg_free(&m);
}

static void test_mailq_shows_the_last_reason_and_the_next_attempt(void **state)
{
    struct queue_msg m;
    make_msg(&m, "0ABCDEFGHJKLMNPQ", "sjoerd@zolder.thuis", 312, false);
    queue_envelope_add_rcpt(&m.env, "jan@paprika", "", "", false);
    queue_envelope_add_rcpt(&m.env, "bouke@zolder.thuis", "", "", false);
    snprintf(m.env.rcpts[0].reason, sizeof m.env.rcpts[0].reason, "%s",
             "connect to smtp.example[1.2.3.4]:25: Connection refused");
    snprintf(m.env.rcpts[1].reason, sizeof m.env.rcpts[1].reason, "%s", "mailbox is locked");
    m.env.next_attempt = 1037488333; /* five minutes after arrival */
    struct buf out = {0};
    mailq_format(*state, &m, 1, &out);
    const char *want =
        "0ABCDEFGHJKLMNPQ       312 Sat Nov 16 23:07:13  sjoerd@zolder.thuis\n"
        "                                              (connect to smtp.example[1.2.3.4]:25: Connection refused; "
        "next attempt Sat Nov 16 23:12:13)\n"
        "                                               jan@paprika\n"
        "                                              (mailbox is locked)\n"
        "                                               bouke@zolder.thuis\n";
    assert_non_null(strstr(out.data, want));
    buf_free(&out);
    queue_msg_free(&m);
}

static void test_mailq_held_marker_and_null_sender(void **state)
{
    struct queue_msg m;
    make_msg(&m, "0ABCDEFGHJKLMNPQ", "", 2048, true);
    queue_envelope_add_rcpt(&m.env, "sjoerd@ZOLDER.thuis", "", "", false);
    struct buf out;
    buf_init(&out, 0);
    mailq_format(*state, &m, 1, &out);
    assert_non_null(strstr(out.data, "\n0ABCDEFGHJKLMNPQ!     2048 Sat Nov 16 23:07:13  MAILER-DAEMON\n"));
    /* A local domain (compared without case) is not waiting for remote delivery. */
    assert_null(strstr(out.data, "remote delivery"));
    assert_non_null(strstr(out.data, "(waiting for local delivery)\n"));
    assert_non_null(strstr(out.data, "-- 2 Kbytes in 1 Request.\n"));
    buf_free(&out);
    queue_msg_free(&m);
}

static void test_mailq_only_pending_recipients_listed(void **state)
{
    struct queue_msg m;
    make_msg(&m, "0ABCDEFGHJKLMNPQ", "a@zolder.thuis", 10, false);
    queue_envelope_add_rcpt(&m.env, "done@example.org", "", "", false);
    queue_envelope_add_rcpt(&m.env, "failed@example.org", "", "", false);
    queue_envelope_add_rcpt(&m.env, "waiting@example.net", "", "", false);
    m.env.rcpts[0].status = QUEUE_RCPT_DONE;
    m.env.rcpts[1].status = QUEUE_RCPT_FAILED;
    struct buf out;
    buf_init(&out, 0);
    mailq_format(*state, &m, 1, &out);
    assert_null(strstr(out.data, "done@example.org"));
    assert_null(strstr(out.data, "failed@example.org"));
    assert_non_null(strstr(out.data, "waiting@example.net"));
    buf_free(&out);
    queue_msg_free(&m);
}

static void test_mailq_totals_over_several(void **state)
{
    static const struct {
        size_t sizes[4];
        size_t n;
        const char *footer;
    } cases[] = {
        {{1}, 1, "-- 1 Kbytes in 1 Request.\n"},
        {{1024}, 1, "-- 1 Kbytes in 1 Request.\n"},
        {{1024, 1}, 2, "-- 2 Kbytes in 2 Requests.\n"},
        {{4000, 4000, 4000}, 3, "-- 12 Kbytes in 3 Requests.\n"},
        {{0, 0, 0, 0}, 4, "-- 0 Kbytes in 4 Requests.\n"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct queue_msg m[4];
        for (size_t i = 0; i < cases[c].n; i++) {
            make_msg(&m[i], "0ABCDEFGHJKLMNPQ", "a@zolder.thuis", cases[c].sizes[i], false);
            queue_envelope_add_rcpt(&m[i].env, "x@example.org", "", "", false);
        }
        struct buf out;
        buf_init(&out, 0);
        mailq_format(*state, m, cases[c].n, &out);
        size_t flen = strlen(cases[c].footer);
        assert_true(out.len >= flen);
        assert_string_equal(out.data + out.len - flen, cases[c].footer);
        buf_free(&out);
        for (size_t i = 0; i < cases[c].n; i++)
            queue_msg_free(&m[i]);
    }
}

static void test_mailq_control_bytes_are_neutralised(void **state)
{
    struct queue_msg m;
    make_msg(&m, "0ABCDEFGHJKLMNPQ", "evil\n0FAKEFAKEFAKEFAK 1 x@y", 1, false);
    queue_envelope_add_rcpt(&m.env, "a\x1b[2Jb@example.org", "", "", false);
    struct buf out;
    buf_init(&out, 0);
    mailq_format(*state, &m, 1, &out);
    assert_non_null(strstr(out.data, "evil?0FAKEFAKEFAKEFAK 1 x@y\n"));
    assert_non_null(strstr(out.data, "a?[2Jb@example.org\n"));
    assert_null(strchr(out.data, '\x1b'));
    buf_free(&out);
    queue_msg_free(&m);
}

static void test_mailq_list_reads_msg_and_hold(void **state)
{
    char dir[] = "/tmp/zolder-test-mailq-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct zconf *c = *state;
    free(c->state_dir);
    c->state_dir = xstrdup(dir);

    struct buf out;
    const char *why;
    buf_init(&out, 0);
    /* No queue folder yet: an error, not a silently created queue. */
    assert_int_equal(mailq_list(c, &out, &why), -1);

    struct queue q;
    assert_int_equal(queue_open(&q, dir), 0);
    assert_int_equal(mailq_list(c, &out, &why), 0);
    assert_string_equal(out.data, "Mail queue is empty\n");

    char ids[2][QUEUE_ID_LEN + 1];
    for (int i = 0; i < 2; i++) {
        struct queue_envelope env;
        memset(&env, 0, sizeof env);
        env.sender = xstrdup("sjoerd@zolder.thuis");
        env.client_ip = xstrdup("127.0.0.1");
        env.helo = xstrdup("localhost");
        env.proto = xstrdup("ESMTP");
        env.arrival = 1037488033;
        queue_envelope_add_rcpt(&env, i ? "held@example.org" : "far@example.org", "", "", false);
        struct queue_writer w;
        assert_int_equal(queue_writer_begin(&q, &env, &w), 0);
        assert_int_equal(queue_writer_write(&w, "Subject: x\r\n\r\nhi\r\n", 19), 0);
        assert_int_equal(queue_writer_commit(&q, &w), 0);
        memcpy(ids[i], w.id, sizeof ids[i]);
        queue_envelope_free(&env);
    }
    assert_int_equal(queue_hold(&q, ids[1]), 0);
    buf_reset(&out);
    assert_int_equal(mailq_list(c, &out, &why), 0);
    char line[64];
    snprintf(line, sizeof line, "%s        19 ", ids[0]);
    assert_non_null(strstr(out.data, line));
    snprintf(line, sizeof line, "%s!       19 ", ids[1]);
    assert_non_null(strstr(out.data, line));
    assert_non_null(strstr(out.data, "held@example.org\n"));
    assert_non_null(strstr(out.data, "-- 1 Kbytes in 2 Requests.\n"));

    buf_free(&out);
    queue_delete(&q, ids[0]);
    queue_delete(&q, ids[1]);
    const char *sub[] = {"msg", "hold", "tmp", ""};
    for (size_t i = 0; i < 4; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/queue/%s", dir, sub[i]);
        rmdir(p);
    }
    rmdir(dir);
    queue_close(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mailq_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailq_remote_recipient_is_deferred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailq_held_marker_and_null_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailq_shows_the_last_reason_and_the_next_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailq_defer_remote_says_held_for_a_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailq_only_pending_recipients_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailq_totals_over_several, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailq_control_bytes_are_neutralised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailq_list_reads_msg_and_hold, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
