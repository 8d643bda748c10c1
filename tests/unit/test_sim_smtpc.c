/* Unit tests for simulator/sim_smtpc.c: the smarthost's SMTP client engine, with no sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sim_smtpc.h"

/* Feeds a server reply; returns what the client sent in answer. */
static const char *srv(struct sim_smtpc *c, const char *reply, bool *more)
{
    buf_reset(&c->out);
    bool m = sim_smtpc_feed(c, reply, strlen(reply));
    if (more)
        *more = m;
    buf_append(&c->out, "", 1);
    c->out.len--;
    return c->out.data;
}

static void test_smtpc_happy_and_stuffing(void **state)
{
    (void)state;
    static const char msg[] = "Received: x\r\n\r\n.dot\r\nend";
    struct sim_smtpc c;
    sim_smtpc_init(&c, "smtp.test", "a@b.test", msg, strlen(msg));
    assert_true(sim_smtpc_add_rcpt(&c, "jan@paprika"));
    assert_true(sim_smtpc_add_rcpt(&c, "piet@paprika"));
    assert_string_equal(srv(&c, "220 mx ESMTP\r\n", NULL), "EHLO smtp.test\r\n");
    /* a reply in pieces, multiline */
    assert_string_equal(srv(&c, "250-mx\r\n250-PIPE", NULL), "");
    assert_string_equal(srv(&c, "LINING\r\n250 8BITMIME\r\n", NULL), "MAIL FROM:<a@b.test>\r\n");
    assert_true(c.offers_8bitmime);
    assert_string_equal(srv(&c, "250 ok\r\n", NULL), "RCPT TO:<jan@paprika>\r\n");
    assert_string_equal(srv(&c, "250 ok\r\n", NULL), "RCPT TO:<piet@paprika>\r\n");
    assert_string_equal(srv(&c, "550 5.1.1 no such user\r\n", NULL), "DATA\r\n");
    assert_string_equal(srv(&c, "354 go\r\n", NULL), "Received: x\r\n\r\n..dot\r\nend\r\n.\r\n");
    assert_string_equal(srv(&c, "250 2.0.0 queued\r\n", NULL), "QUIT\r\n");
    bool more;
    srv(&c, "221 bye\r\n", &more);
    assert_false(more);
    assert_int_equal(c.state, SIM_SMTPC_DONE);
    assert_int_equal(c.rcpts[0].code, 250);
    assert_string_equal(c.rcpts[0].reply, "250 2.0.0 queued");
    assert_int_equal(c.rcpts[1].code, 550);
    assert_string_equal(c.rcpts[1].reply, "550 5.1.1 no such user");
    sim_smtpc_free(&c);
}

static void test_smtpc_failures(void **state)
{
    (void)state;
    struct sim_smtpc c;
    /* 8-bit and no 8BITMIME: permanent; with it: BODY=8BITMIME */
    sim_smtpc_init(&c, "h", "a@b", "caf\xc3\xa9\r\n", 7);
    sim_smtpc_add_rcpt(&c, "x@y");
    srv(&c, "220 hi\r\n", NULL);
    assert_string_equal(srv(&c, "250 mx\r\n", NULL), "QUIT\r\n");
    assert_int_equal(c.rcpts[0].code, 554);
    sim_smtpc_free(&c);
    sim_smtpc_init(&c, "h", "a@b", "caf\xc3\xa9\r\n", 7);
    sim_smtpc_add_rcpt(&c, "x@y");
    srv(&c, "220 hi\r\n", NULL);
    assert_string_equal(srv(&c, "250-mx\r\n250 8bitmime\r\n", NULL), "MAIL FROM:<a@b> BODY=8BITMIME\r\n");
    /* a 451 at DATA's end keeps it temporary */
    srv(&c, "250 ok\r\n", NULL);
    srv(&c, "250 ok\r\n", NULL);
    srv(&c, "354 go\r\n", NULL);
    assert_string_equal(srv(&c, "451 4.3.0 later\r\n", NULL), "QUIT\r\n");
    assert_int_equal(c.rcpts[0].code, 451);
    sim_smtpc_free(&c);
    /* greeting refused; EHLO refused falls back to HELO */
    sim_smtpc_init(&c, "h", "", "x\r\n", 3);
    sim_smtpc_add_rcpt(&c, "x@y");
    assert_string_equal(srv(&c, "554 go away\r\n", NULL), "QUIT\r\n");
    assert_int_equal(c.rcpts[0].code, 554);
    sim_smtpc_free(&c);
    sim_smtpc_init(&c, "h", "", "x\r\n", 3);
    sim_smtpc_add_rcpt(&c, "x@y");
    srv(&c, "220 hi\r\n", NULL);
    assert_string_equal(srv(&c, "502 no\r\n", NULL), "HELO h\r\n");
    assert_string_equal(srv(&c, "250 mx\r\n", NULL), "MAIL FROM:<>\r\n");
    /* the connection drops: 421 for what is open */
    sim_smtpc_fail(&c, "connection closed");
    assert_int_equal(c.rcpts[0].code, 421);
    assert_string_equal(c.rcpts[0].reply, "421 4.4.2 connection closed");
    sim_smtpc_free(&c);
    /* garbage from the server */
    sim_smtpc_init(&c, "h", "", "x\r\n", 3);
    sim_smtpc_add_rcpt(&c, "x@y");
    bool more = true;
    srv(&c, "hello there\r\n", &more);
    assert_false(more);
    assert_int_equal(c.rcpts[0].code, 421);
    sim_smtpc_free(&c);
    sim_smtpc_init(&c, "h", "", "x\r\n", 3);
    srv(&c, "250-a\r\n220 b\r\n", &more);
    assert_false(more);
    sim_smtpc_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smtpc_happy_and_stuffing),
        cmocka_unit_test(test_smtpc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
