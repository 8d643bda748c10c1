/* Unit tests for simulator/sim_pop3.c: ispsim's POP3 engine, with no sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_pop3.h"

static const char *const fake_msgs[] = {
    "Subject: one\r\n\r\nfirst\r\n.dot line\r\n",
    "Subject: two\r\nX: y\r\n\r\nl1\r\nl2\r\nl3\r\n",
};

struct fake {
    struct buf violations;
    int committed;
    unsigned deleted_uids[4];
};
static struct fake fk;

static int fake_login(void *ctx, const char *user, const char *pass, struct sim_pop3_msg **msgs_r,
                      int *n_r, char *reply, size_t size)
{
    (void)ctx;
    (void)reply;
    (void)size;
    if (strcmp(user, "sjoerd") != 0 || strcmp(pass, "ge heim") != 0)
        return -1;
    struct sim_pop3_msg *m = calloc(2, sizeof *m);
    m[0].uid = 7;
    m[0].size = strlen(fake_msgs[0]);
    m[1].uid = 9;
    m[1].size = strlen(fake_msgs[1]);
    *msgs_r = m;
    *n_r = 2;
    return 0;
}

static int fake_read(void *ctx, unsigned uid, char **data_r, size_t *len_r)
{
    (void)ctx;
    const char *m = uid == 7 ? fake_msgs[0] : fake_msgs[1];
    *data_r = strdup(m);
    *len_r = strlen(m);
    return 0;
}

static void fake_commit(void *ctx, const struct sim_pop3_msg *msgs, int n)
{
    (void)ctx;
    fk.committed++;
    for (int i = 0; i < n; i++)
        fk.deleted_uids[i] = msgs[i].deleted ? msgs[i].uid : 0;
}

static void fake_violation(void *ctx, const char *kind, const char *detail)
{
    (void)ctx;
    (void)detail;
    buf_printf(&fk.violations, "%s;", kind);
}

static const struct sim_pop3_hooks hooks = {.login = fake_login, .read = fake_read,
                                            .commit = fake_commit, .violation = fake_violation};

static const char *say(struct sim_pop3_session *s, const char *text, bool *open)
{
    buf_reset(&s->out);
    bool o = sim_pop3_feed(s, text, strlen(text));
    if (open)
        *open = o;
    return s->out.data ? s->out.data : "";
}

static int setup(void **state)
{
    (void)state;
    memset(&fk, 0, sizeof fk);
    buf_init(&fk.violations, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    buf_free(&fk.violations);
    return 0;
}

static void login(struct sim_pop3_session *s)
{
    sim_pop3_init(s, &hooks, "pop3.test");
    assert_string_equal(s->out.data, "+OK pop3.test POP3 ispsim ready\r\n");
    assert_string_equal(say(s, "USER sjoerd\r\n", NULL), "+OK send PASS\r\n");
    assert_string_equal(say(s, "PASS ge heim\r\n", NULL), "+OK 2 messages\r\n");
}

static void test_pop3_session(void **state)
{
    (void)state;
    struct sim_pop3_session s;
    login(&s);
    char want[128];
    snprintf(want, sizeof want, "+OK 2 %zu\r\n", strlen(fake_msgs[0]) + strlen(fake_msgs[1]));
    assert_string_equal(say(&s, "STAT\r\n", NULL), want);
    snprintf(want, sizeof want, "+OK\r\n1 %zu\r\n2 %zu\r\n.\r\n", strlen(fake_msgs[0]),
             strlen(fake_msgs[1]));
    assert_string_equal(say(&s, "LIST\r\n", NULL), want);
    assert_string_equal(say(&s, "UIDL\r\n", NULL), "+OK\r\n1 000007\r\n2 000009\r\n.\r\n");
    assert_string_equal(say(&s, "UIDL 2\r\n", NULL), "+OK 2 000009\r\n");
    snprintf(want, sizeof want, "+OK %zu octets\r\nSubject: one\r\n\r\nfirst\r\n..dot line\r\n.\r\n",
             strlen(fake_msgs[0]));
    assert_string_equal(say(&s, "RETR 1\r\n", NULL), want);
    snprintf(want, sizeof want, "+OK %zu octets\r\nSubject: two\r\nX: y\r\n\r\nl1\r\n.\r\n",
             strlen(fake_msgs[1]));
    assert_string_equal(say(&s, "TOP 2 1\r\n", NULL), want);
    assert_string_equal(say(&s, "DELE 1\r\n", NULL), "+OK deleted\r\n");
    assert_string_equal(say(&s, "RETR 1\r\n", NULL), "-ERR message deleted\r\n");
    assert_string_equal(say(&s, "RETR 3\r\n", NULL), "-ERR no such message\r\n");
    assert_string_equal(say(&s, "RSET\r\n", NULL), "+OK 2 messages\r\n");
    assert_string_equal(say(&s, "DELE 2\r\n", NULL), "+OK deleted\r\n");
    assert_non_null(strstr(say(&s, "CAPA\r\n", NULL), "UIDL\r\nTOP\r\n"));
    bool open;
    assert_string_equal(say(&s, "QUIT\r\n", &open), "+OK bye\r\n");
    assert_false(open);
    assert_int_equal(fk.committed, 1);
    assert_int_equal(fk.deleted_uids[0], 0);
    assert_int_equal(fk.deleted_uids[1], 9);
    assert_int_equal(fk.violations.len, 0);
    sim_pop3_free(&s);
}

static void test_pop3_errors(void **state)
{
    (void)state;
    struct sim_pop3_session s;
    sim_pop3_init(&s, &hooks, "pop3.test");
    assert_string_equal(say(&s, "STAT\r\n", NULL), "-ERR not logged in\r\n");
    assert_string_equal(say(&s, "PASS x\r\n", NULL), "-ERR USER first\r\n");
    assert_string_equal(say(&s, "USER sjoerd\nPASS x\r\n", NULL),
                        "-ERR lines end in CRLF\r\n-ERR USER first\r\n");
    assert_string_equal(say(&s, "USER sjoerd\r\nPASS wrong\r\n", NULL),
                        "+OK send PASS\r\n-ERR [AUTH] invalid user or password\r\n");
    char big[400];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_string_equal(say(&s, big, NULL), "-ERR line too long\r\n");
    assert_string_equal(say(&s, "\r\nXYZZY\r\n", NULL), "-ERR unknown command\r\n");
    sim_pop3_eof(&s);
    assert_string_equal(fk.violations.data, "sequence;sequence;bare-lf;sequence;line-too-long;syntax;no-quit;");
    assert_int_equal(fk.committed, 0);
    sim_pop3_free(&s);

    /* A dropped connection commits nothing (RFC 1939 6). */
    login(&s);
    say(&s, "DELE 1\r\n", NULL);
    sim_pop3_eof(&s);
    assert_int_equal(fk.committed, 0);
    sim_pop3_free(&s);
}

static void test_pop3_stls(void **state)
{
    (void)state;
    struct sim_pop3_session s;
    sim_pop3_init(&s, &hooks, "pop3.test");
    assert_null(strstr(say(&s, "CAPA\r\n", NULL), "STLS"));
    assert_non_null(strstr(say(&s, "STLS\r\n", NULL), "-ERR"));
    s.offer_stls = true;
    assert_non_null(strstr(say(&s, "CAPA\r\n", NULL), "\r\nSTLS\r\n.\r\n"));
    /* input after STLS waits for the handshake and is then dropped (RFC 2595 4) */
    assert_string_equal(say(&s, "STLS\r\nUSER evil\r\n", NULL), "+OK Begin TLS negotiation\r\n");
    assert_true(s.stls_now);
    assert_true(sim_pop3_tls_started(&s));
    assert_false(s.stls_now);
    assert_null(strstr(say(&s, "CAPA\r\n", NULL), "STLS"));
    assert_non_null(strstr(say(&s, "STLS\r\n", NULL), "-ERR"));
    assert_non_null(strstr(say(&s, "PASS x\r\n", NULL), "-ERR USER first"));
    sim_pop3_free(&s);
}

/* RFC 2449 6.6: offered, and a batch of commands in one write is answered in order. */
static void test_pop3_pipelining(void **state)
{
    (void)state;
    struct sim_pop3_session s;
    sim_pop3_init(&s, &hooks, "pop3.test");
    assert_non_null(strstr(say(&s, "CAPA\r\n", NULL), "\r\nPIPELINING\r\n"));
    /* login pipelined too, then UIDL, two RETRs, a DELE and QUIT in one feed */
    char want[512];
    snprintf(want, sizeof want,
             "+OK send PASS\r\n+OK 2 messages\r\n+OK\r\n1 000007\r\n2 000009\r\n.\r\n"
             "+OK %zu octets\r\nSubject: one\r\n\r\nfirst\r\n..dot line\r\n.\r\n"
             "+OK %zu octets\r\nSubject: two\r\nX: y\r\n\r\nl1\r\nl2\r\nl3\r\n.\r\n"
             "+OK deleted\r\n-ERR message deleted\r\n+OK bye\r\n",
             strlen(fake_msgs[0]), strlen(fake_msgs[1]));
    bool open;
    assert_string_equal(say(&s, "USER sjoerd\r\nPASS ge heim\r\nUIDL\r\nRETR 1\r\nRETR 2\r\n"
                                "DELE 1\r\nRETR 1\r\nQUIT\r\n", &open), want);
    assert_false(open);
    assert_int_equal(fk.committed, 1);
    assert_int_equal(fk.violations.len, 0);
    sim_pop3_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pop3_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pop3_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pop3_stls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pop3_pipelining, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
