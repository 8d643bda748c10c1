/* Unit tests for simulator/sim_smtp.c: ispsim's strict SMTP engine, with no sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_b64.h"
#include "sim_smtp.h"

struct fake {
    struct buf violations;   /* "kind;kind;" */
    struct buf messages;     /* from>rcpt|data, one per delivered message */
    enum sim_smtp_stage stage;
    unsigned msgno;
    const char *rcpt;
    struct sim_smtp_action act;
    bool script_on;
    const char *reject_rcpt;
};

static void fake_script(void *ctx, enum sim_smtp_stage stage, unsigned msgno, const char *rcpt,
                        struct sim_smtp_action *act)
{
    struct fake *f = ctx;
    if (!f->script_on || stage != f->stage || (f->msgno && msgno != f->msgno))
        return;
    if (f->rcpt && (!rcpt || strcmp(rcpt, f->rcpt) != 0))
        return;
    *act = f->act;
}

static void fake_rcpt(void *ctx, const char *rcpt, char *reply, size_t size)
{
    struct fake *f = ctx;
    if (f->reject_rcpt && strcmp(rcpt, f->reject_rcpt) == 0)
        snprintf(reply, size, "554 5.7.1 <%s>: Relay access denied", rcpt);
}

static void fake_message(void *ctx, const struct sim_smtp_tx *tx, char *reply, size_t size)
{
    struct fake *f = ctx;
    buf_printf(&f->messages, "%s>%s|%s", tx->mail_from, tx->rcpts[0], tx->data.data ? tx->data.data : "");
    snprintf(reply, size, "250 2.0.0 Ok: queued as X%d", tx->nrcpts);
}

static void fake_violation(void *ctx, const char *kind, const char *detail)
{
    struct fake *f = ctx;
    (void)detail;
    buf_printf(&f->violations, "%s;", kind);
}

static bool fake_auth(void *ctx, const char *user, const char *pass)
{
    (void)ctx;
    return strcmp(user, "sjoerd") == 0 && strcmp(pass, "geheim") == 0;
}

static struct fake fk;
static struct sim_smtp_hooks auth_hooks = {
    .ctx = &fk, .script = fake_script, .rcpt_check = fake_rcpt, .message = fake_message,
    .violation = fake_violation, .auth_check = fake_auth};
static struct sim_smtp_hooks hooks = {
    .ctx = &fk, .script = fake_script, .rcpt_check = fake_rcpt, .message = fake_message,
    .violation = fake_violation};

static int setup(void **state)
{
    (void)state;
    memset(&fk, 0, sizeof fk);
    buf_init(&fk.violations, 0);
    buf_init(&fk.messages, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    buf_free(&fk.violations);
    buf_free(&fk.messages);
    return 0;
}

/* Feeds text and returns the replies it produced (owned by the session's out buffer). */
static const char *say(struct sim_smtp_session *s, const char *text, enum sim_smtp_status *st)
{
    buf_reset(&s->out);
    enum sim_smtp_status r = sim_smtp_feed(s, text, strlen(text));
    if (st)
        *st = r;
    return s->out.data ? s->out.data : "";
}

static void start(struct sim_smtp_session *s)
{
    sim_smtp_session_init(s, &hooks, "mx.test");
    assert_int_equal(sim_smtp_start(s), SIM_SMTP_CONTINUE);
    assert_string_equal(s->out.data, "220 mx.test ESMTP ispsim\r\n");
}

static void open_tx(struct sim_smtp_session *s, const char *mail)
{
    assert_non_null(strstr(say(s, "EHLO client.test\r\n", NULL), "250-PIPELINING\r\n"));
    assert_string_equal(say(s, mail, NULL), "250 2.1.0 Ok\r\n");
    assert_string_equal(say(s, "RCPT TO:<jan@paprika>\r\n", NULL), "250 2.1.5 Ok\r\n");
    assert_string_equal(say(s, "DATA\r\n", NULL), "354 End data with <CR><LF>.<CR><LF>\r\n");
}

static void test_smtp_happy_path(void **state)
{
    (void)state;
    struct sim_smtp_session s;
    start(&s);
    open_tx(&s, "MAIL FROM:<sjoerd@zolder.thuis> BODY=8BITMIME SIZE=100\r\n");
    assert_string_equal(say(&s, "Subject: hi\r\n\r\n..dot\r\ncaf\xc3\xa9\r\n.\r\n", NULL),
                        "250 2.0.0 Ok: queued as X1\r\n");
    assert_string_equal(fk.messages.data,
                        "sjoerd@zolder.thuis>jan@paprika|Subject: hi\r\n\r\n.dot\r\ncaf\xc3\xa9\r\n");
    enum sim_smtp_status st;
    assert_string_equal(say(&s, "QUIT\r\n", &st), "221 2.0.0 Bye\r\n");
    assert_int_equal(st, SIM_SMTP_CLOSE);
    assert_int_equal(fk.violations.len, 0);
    sim_smtp_session_free(&s);
}

static void test_smtp_byte_at_a_time(void **state)
{
    (void)state;
    const char *session = "EHLO c\r\n";
    const char *rest[] = {"MAIL FROM:<>\r\nRCPT TO:<a@b.test>\r\nDATA\r\n", "x\r\n.\r\n", "QUIT\r\n"};
    struct sim_smtp_session s;
    start(&s);
    struct buf all;
    buf_init(&all, 0);
    for (size_t i = 0; i < strlen(session); i++)
        sim_smtp_feed(&s, session + i, 1);
    for (size_t k = 0; k < 3; k++)
        for (size_t i = 0; i < strlen(rest[k]); i++)
            sim_smtp_feed(&s, rest[k] + i, 1);
    assert_non_null(strstr(s.out.data, "354 End data"));
    assert_non_null(strstr(s.out.data, "250 2.0.0 Ok: queued as X1\r\n221 2.0.0 Bye\r\n"));
    assert_int_equal(fk.violations.len, 0);
    buf_free(&all);
    sim_smtp_session_free(&s);
}

static void expect_refused(const char *mail, const char *body, const char *reply, const char *kinds)
{
    struct sim_smtp_session s;
    buf_reset(&fk.violations);
    start(&s);
    open_tx(&s, mail);
    assert_string_equal(say(&s, body, NULL), reply);
    assert_string_equal(fk.violations.data, kinds);
    assert_int_equal(fk.messages.len, 0);
    sim_smtp_session_free(&s);
}

static void test_smtp_strict_data(void **state)
{
    (void)state;
    const char *plain = "MAIL FROM:<a@b.test>\r\n";
    expect_refused(plain, "one\ntwo\r\n.\r\n",
                   "554 5.6.0 Message refused: bare CR or LF in DATA (RFC 5321 2.3.8)\r\n", "bare-lf;");
    expect_refused(plain, "one\rtwo\r\n.\r\n",
                   "554 5.6.0 Message refused: bare CR or LF in DATA (RFC 5321 2.3.8)\r\n", "bare-cr;");
    expect_refused(plain, ".hidden\r\n.\r\n",
                   "554 5.6.0 Message refused: line with an unstuffed dot (RFC 5321 4.5.2)\r\n",
                   "bad-dot-stuffing;");
    expect_refused(plain, "caf\xc3\xa9\r\n.\r\n",
                   "554 5.6.1 Message refused: 8-bit data without BODY=8BITMIME (RFC 6152)\r\n",
                   "8bit-without-8bitmime;");
    char long_line[1200];
    memset(long_line, 'x', 999);
    memcpy(long_line + 999, "\r\n.\r\n", 6);
    expect_refused(plain, long_line,
                   "554 5.6.0 Message refused: line over 1000 octets (RFC 5321 4.5.3.1.6)\r\n",
                   "line-too-long;");
    /* 998 octets plus CRLF is the most a line may have. */
    long_line[998] = '\r';
    long_line[999] = '\n';
    long_line[1000] = '.';
    long_line[1001] = '\r';
    long_line[1002] = '\n';
    long_line[1003] = '\0';
    struct sim_smtp_session s;
    start(&s);
    open_tx(&s, plain);
    assert_string_equal(say(&s, long_line, NULL), "250 2.0.0 Ok: queued as X1\r\n");
    sim_smtp_session_free(&s);
    /* The end of data with a bare LF ends the message, and refuses it. */
    buf_reset(&fk.messages);
    expect_refused(plain, "x\r\n.\n",
                   "554 5.6.0 Message refused: bare CR or LF in DATA (RFC 5321 2.3.8)\r\n", "bare-lf;");
}

static void test_smtp_overlong_unterminated(void **state)
{
    (void)state;
    struct sim_smtp_session s;
    start(&s);
    char big[3000];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_string_equal(say(&s, big, NULL), "500 5.5.2 Error: line too long (RFC 5321 4.5.3.1.4)\r\n");
    assert_string_equal(say(&s, "AAAA\r\n", NULL), "");
    assert_string_equal(say(&s, "NOOP\r\n", NULL), "250 2.0.0 Ok\r\n");
    assert_string_equal(fk.violations.data, "line-too-long;");
    sim_smtp_session_free(&s);
}

static void test_smtp_sequence(void **state)
{
    (void)state;
    struct sim_smtp_session s;
    start(&s);
    assert_string_equal(say(&s, "MAIL FROM:<a@b.test>\r\n", NULL), "503 5.5.1 Error: send HELO/EHLO first\r\n");
    assert_string_equal(say(&s, "HELO c\r\n", NULL), "250 mx.test\r\n");
    assert_string_equal(say(&s, "RCPT TO:<a@b.test>\r\n", NULL), "503 5.5.1 Error: need MAIL command\r\n");
    assert_string_equal(say(&s, "DATA\r\n", NULL), "503 5.5.1 Error: need MAIL command\r\n");
    assert_string_equal(say(&s, "MAIL FROM:<a@b.test>\r\n", NULL), "250 2.1.0 Ok\r\n");
    assert_string_equal(say(&s, "MAIL FROM:<a@b.test>\r\n", NULL), "503 5.5.1 Error: nested MAIL command\r\n");
    assert_string_equal(say(&s, "DATA\r\n", NULL), "503 5.5.1 Error: need RCPT command\r\n");
    assert_string_equal(fk.violations.data, "sequence;sequence;sequence;sequence;sequence;");
    sim_smtp_session_free(&s);
}

static void test_smtp_pipelining(void **state)
{
    (void)state;
    struct sim_smtp_session s;
    start(&s);
    enum sim_smtp_status st;
    assert_string_equal(say(&s, "EHLO c\r\nMAIL FROM:<a@b.test>\r\n", &st),
                        "554 5.5.0 Error: SMTP protocol synchronization\r\n");
    assert_int_equal(st, SIM_SMTP_CLOSE);
    assert_string_equal(fk.violations.data, "pipelining;");
    sim_smtp_session_free(&s);

    /* Allowed: MAIL, RCPT and DATA in one group after EHLO; DATA last. */
    buf_reset(&fk.violations);
    start(&s);
    say(&s, "EHLO c\r\n", NULL);
    assert_string_equal(say(&s, "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n", &st),
                        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    assert_int_equal(st, SIM_SMTP_CONTINUE);
    assert_int_equal(fk.violations.len, 0);
    sim_smtp_session_free(&s);

    /* Not allowed: the content before the 354. */
    start(&s);
    say(&s, "EHLO c\r\n", NULL);
    say(&s, "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n", NULL);
    assert_string_equal(say(&s, "DATA\r\nSubject: x\r\n", &st),
                        "554 5.5.0 Error: SMTP protocol synchronization\r\n");
    assert_string_equal(fk.violations.data, "pipelining;");
    sim_smtp_session_free(&s);

    /* After HELO nothing may be pipelined. */
    buf_reset(&fk.violations);
    start(&s);
    say(&s, "HELO c\r\n", NULL);
    say(&s, "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n", &st);
    assert_int_equal(st, SIM_SMTP_CLOSE);
    assert_string_equal(fk.violations.data, "pipelining;");
    sim_smtp_session_free(&s);
}

/* RFC 2920 3.1: RCPTs pipelined behind a refused MAIL get 503, and that is no violation. */
static void test_smtp_rcpt_after_refused_mail(void **state)
{
    (void)state;
    struct sim_smtp_session s;
    fk.script_on = true;
    fk.stage = SIM_STAGE_MAIL;
    snprintf(fk.act.reply, sizeof fk.act.reply, "%s", "554 5.7.1 sender refused");
    start(&s);
    say(&s, "EHLO c\r\n", NULL);
    assert_string_equal(say(&s, "MAIL FROM:<a@b.test>\r\nRCPT TO:<jan@paprika>\r\nRCPT TO:<piet@paprika>\r\n", NULL),
                        "554 5.7.1 sender refused\r\n503 5.5.1 Error: need MAIL command\r\n"
                        "503 5.5.1 Error: need MAIL command\r\n");
    assert_int_equal(fk.violations.len, 0);
    /* after RSET the exemption is gone: a RCPT without MAIL is a sequence violation again */
    assert_string_equal(say(&s, "RSET\r\n", NULL), "250 2.0.0 Ok\r\n");
    assert_string_equal(say(&s, "RCPT TO:<jan@paprika>\r\n", NULL), "503 5.5.1 Error: need MAIL command\r\n");
    assert_string_equal(fk.violations.data, "sequence;");
    sim_smtp_session_free(&s);
    /* HELO (no PIPELINING offered): no exemption */
    start(&s);
    say(&s, "HELO c\r\n", NULL);
    say(&s, "MAIL FROM:<a@b.test>\r\n", NULL);
    buf_reset(&fk.violations);
    assert_string_equal(say(&s, "RCPT TO:<jan@paprika>\r\n", NULL), "503 5.5.1 Error: need MAIL command\r\n");
    assert_string_equal(fk.violations.data, "sequence;");
    sim_smtp_session_free(&s);
}

static void test_smtp_scripts(void **state)
{
    (void)state;
    struct sim_smtp_session s;
    enum sim_smtp_status st;

    /* A recipient refused by the policy hook and one by a script. */
    fk.reject_rcpt = "x@outside.test";
    fk.script_on = true;
    fk.stage = SIM_STAGE_RCPT;
    fk.rcpt = "piet@paprika";
    snprintf(fk.act.reply, sizeof fk.act.reply, "%s", "550 5.1.1 <piet@paprika>: no such user");
    start(&s);
    say(&s, "EHLO c\r\n", NULL);
    say(&s, "MAIL FROM:<a@b.test>\r\n", NULL);
    assert_string_equal(say(&s, "RCPT TO:<x@outside.test>\r\n", NULL),
                        "554 5.7.1 <x@outside.test>: Relay access denied\r\n");
    assert_string_equal(say(&s, "RCPT TO:<piet@paprika>\r\n", NULL),
                        "550 5.1.1 <piet@paprika>: no such user\r\n");
    assert_string_equal(say(&s, "RCPT TO:<jan@paprika>\r\n", NULL), "250 2.1.5 Ok\r\n");
    sim_smtp_session_free(&s);

    /* The second message gets a 451 at the dot; the first is accepted. */
    memset(&fk.act, 0, sizeof fk.act);
    fk.rcpt = NULL;
    fk.stage = SIM_STAGE_DOT;
    fk.msgno = 2;
    snprintf(fk.act.reply, sizeof fk.act.reply, "%s", "451 4.3.0 try again later");
    start(&s);
    open_tx(&s, "MAIL FROM:<a@b.test>\r\n");
    assert_string_equal(say(&s, "one\r\n.\r\n", NULL), "250 2.0.0 Ok: queued as X1\r\n");
    say(&s, "MAIL FROM:<a@b.test>\r\n", NULL);
    say(&s, "RCPT TO:<jan@paprika>\r\n", NULL);
    say(&s, "DATA\r\n", NULL);
    assert_string_equal(say(&s, "two\r\n.\r\n", NULL), "451 4.3.0 try again later\r\n");
    sim_smtp_session_free(&s);

    /* Hang up after the dot: stored, no reply (RFC 1047). */
    buf_reset(&fk.messages);
    memset(&fk.act, 0, sizeof fk.act);
    fk.msgno = 0;
    fk.act.hangup = true;
    start(&s);
    open_tx(&s, "MAIL FROM:<a@b.test>\r\n");
    assert_string_equal(say(&s, "one\r\n.\r\n", &st), "");
    assert_int_equal(st, SIM_SMTP_CLOSE);
    assert_non_null(fk.messages.data);
    sim_smtp_session_free(&s);

    /* A delayed greeting: the client that talks first is recorded. */
    memset(&fk.act, 0, sizeof fk.act);
    fk.stage = SIM_STAGE_GREETING;
    fk.act.delay_ms = 500;
    sim_smtp_session_init(&s, &hooks, "mx.test");
    assert_int_equal(sim_smtp_start(&s), SIM_SMTP_WAIT);
    assert_int_equal(s.delay_ms, 500);
    assert_null(s.out.data);
    assert_int_equal(sim_smtp_feed(&s, "EHLO c\r\n", 8), SIM_SMTP_WAIT);
    assert_int_equal(sim_smtp_resume(&s), SIM_SMTP_CONTINUE);
    assert_non_null(strstr(s.out.data, "220 mx.test ESMTP ispsim\r\n250-mx.test\r\n"));
    assert_string_equal(fk.violations.data, "early-talk;");
    sim_smtp_session_free(&s);

    /* A 554 greeting: only QUIT works. */
    memset(&fk.act, 0, sizeof fk.act);
    snprintf(fk.act.reply, sizeof fk.act.reply, "%s", "554 5.3.2 go away");
    sim_smtp_session_init(&s, &hooks, "mx.test");
    assert_int_equal(sim_smtp_start(&s), SIM_SMTP_CONTINUE);
    assert_string_equal(say(&s, "EHLO c\r\n", NULL), "503 5.5.1 Error: no SMTP service here\r\n");
    assert_string_equal(say(&s, "QUIT\r\n", &st), "221 2.0.0 Bye\r\n");
    sim_smtp_session_free(&s);
}

static void test_smtp_eof(void **state)
{
    (void)state;
    struct sim_smtp_session s;
    start(&s);
    open_tx(&s, "MAIL FROM:<a@b.test>\r\n");
    say(&s, "half a message\r\n", NULL);
    sim_smtp_eof(&s);
    assert_string_equal(fk.violations.data, "eof-in-data;");
    sim_smtp_session_free(&s);
    buf_reset(&fk.violations);
    start(&s);
    sim_smtp_eof(&s);
    assert_string_equal(fk.violations.data, "no-quit;");
    sim_smtp_session_free(&s);
}

static void test_smtp_parse_command(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        bool esmtp;
        enum sim_smtp_verb verb;
        const char *path;
        const char *error_prefix;
    } cases[] = {
        {"MAIL FROM:<a@b.test>", true, SIM_SMTP_MAIL, "a@b.test", ""},
        {"mail from:<>", false, SIM_SMTP_MAIL, "", ""},
        {"MAIL FROM: <a@b.test>", true, SIM_SMTP_MAIL, "", "501"},
        {"MAIL FROM:a@b.test", true, SIM_SMTP_MAIL, "", "501"},
        {"MAIL FROM:<a@b.test> SIZE=10", false, SIM_SMTP_MAIL, "a@b.test", "555"},
        {"MAIL FROM:<a@b.test> SIZE=x", true, SIM_SMTP_MAIL, "a@b.test", "501"},
        {"MAIL FROM:<a@b.test> SMTPUTF8", true, SIM_SMTP_MAIL, "a@b.test", "555"},
        {"MAIL FROM:<a@b.test> BODY=BINARYMIME", true, SIM_SMTP_MAIL, "a@b.test", "501"},
        {"MAIL FROM:<@relay.test,@r2.test:a@b.test>", true, SIM_SMTP_MAIL, "a@b.test", ""},
        {"MAIL FROM:<\"a b\"@b.test>", true, SIM_SMTP_MAIL, "\"a b\"@b.test", ""},
        {"RCPT TO:<>", true, SIM_SMTP_RCPT, "", "501"},
        {"RCPT TO:<Postmaster>", true, SIM_SMTP_RCPT, "Postmaster", ""},
        {"RCPT TO:<jan@paprika>", true, SIM_SMTP_RCPT, "jan@paprika", ""},
        {"RCPT TO:<jan@[127.0.6.25]>", true, SIM_SMTP_RCPT, "jan@[127.0.6.25]", ""},
        {"RCPT TO:<jan@pap..rika>", true, SIM_SMTP_RCPT, "", "501"},
        {"RCPT TO:<jan@paprika", true, SIM_SMTP_RCPT, "", "501"},
        {"RCPT TO:<jan@paprika>x", true, SIM_SMTP_RCPT, "", "501"},
        {"EHLO", true, SIM_SMTP_EHLO, "", "501"},
        {"ehlo zolder.thuis", true, SIM_SMTP_EHLO, "", ""},
        {"DATA x", true, SIM_SMTP_DATA, "", "501"},
        {"NOOP whatever", true, SIM_SMTP_NOOP, "", ""},
        {"MAILX", true, SIM_SMTP_UNKNOWN, "", "500"},
        {"", true, SIM_SMTP_NONE, "", "500"},
        {"HELO h\xe9", true, SIM_SMTP_UNKNOWN, "", "500"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sim_smtp_cmd cmd;
        sim_smtp_parse_command(cases[i].line, strlen(cases[i].line), cases[i].esmtp, &cmd);
        if (cmd.verb != cases[i].verb || strncmp(cmd.error, cases[i].error_prefix, 3) != 0 ||
            (cases[i].error_prefix[0] == '\0' && cmd.error[0]) ||
            (!cmd.error[0] && strcmp(cmd.path, cases[i].path) != 0))
            fail_msg("case %zu \"%s\": verb %d path \"%s\" error \"%s\"", i, cases[i].line,
                     cmd.verb, cmd.path, cmd.error);
    }
    struct sim_smtp_cmd cmd;
    sim_smtp_parse_command("MAIL FROM:<a@b.test> BODY=8BITMIME SIZE=1234", 44, true, &cmd);
    assert_true(cmd.body_8bitmime);
    assert_int_equal(cmd.size, 1234);
    enum sim_smtp_stage stage;
    assert_true(sim_smtp_stage_parse("dot", &stage));
    assert_int_equal(stage, SIM_STAGE_DOT);
    assert_false(sim_smtp_stage_parse("DOT", &stage));
}

static void test_smtp_starttls_and_auth(void **state)
{
    (void)state;
    struct sim_smtp_session s;
    enum sim_smtp_status st;
    sim_smtp_session_init(&s, &auth_hooks, "smtp.test");
    s.offer_starttls = true;
    assert_int_equal(sim_smtp_start(&s), SIM_SMTP_CONTINUE);
    const char *r = say(&s, "EHLO c.test\r\n", NULL);
    assert_non_null(strstr(r, "250-STARTTLS\r\n"));
    assert_null(strstr(r, "AUTH"));
    /* AUTH in the clear: 538 (RFC 4954 with encryption required) */
    assert_string_equal(say(&s, "AUTH PLAIN AHNqb2VyZABnZWhlaW0=\r\n", NULL),
                        "538 5.7.11 Encryption required for requested authentication mechanism\r\n");
    assert_string_equal(say(&s, "STARTTLS\r\n", &st), "220 2.0.0 Ready to start TLS\r\n");
    assert_int_equal(st, SIM_SMTP_TLS);
    buf_reset(&s.out);
    assert_int_equal(sim_smtp_tls_started(&s), SIM_SMTP_CONTINUE);
    /* the session starts over: EHLO again */
    assert_string_equal(say(&s, "MAIL FROM:<a@b.test>\r\n", NULL),
                        "503 5.5.1 Error: send HELO/EHLO first\r\n");
    r = say(&s, "EHLO c.test\r\n", NULL);
    assert_null(strstr(r, "STARTTLS"));
    assert_non_null(strstr(r, "250-AUTH PLAIN LOGIN\r\n"));
    assert_string_equal(say(&s, "STARTTLS\r\n", NULL), "503 5.5.1 Error: TLS already active\r\n");
    assert_string_equal(say(&s, "AUTH CRAM-MD5\r\n", NULL),
                        "504 5.5.4 Unrecognized authentication type\r\n");
    /* PLAIN with a wrong password, then LOGIN step by step */
    assert_string_equal(say(&s, "AUTH PLAIN\r\n", NULL), "334 \r\n");
    assert_string_equal(say(&s, "AHNqb2VyZABmb3V0\r\n", NULL),
                        "535 5.7.8 Error: authentication failed\r\n");
    assert_string_equal(say(&s, "AUTH LOGIN\r\n", NULL), "334 VXNlcm5hbWU6\r\n");
    assert_string_equal(say(&s, "c2pvZXJk\r\n", NULL), "334 UGFzc3dvcmQ6\r\n");
    assert_string_equal(say(&s, "Z2VoZWlt\r\n", NULL), "235 2.7.0 Authentication successful\r\n");
    assert_true(s.authed);
    assert_string_equal(s.auth_user, "sjoerd");
    assert_string_equal(say(&s, "AUTH PLAIN AHNqb2VyZABnZWhlaW0=\r\n", NULL),
                        "503 5.5.1 Error: already authenticated\r\n");
    sim_smtp_session_free(&s);

    /* PLAIN with an initial response; cancel; bad base64 */
    sim_smtp_session_init(&s, &auth_hooks, "smtp.test");
    s.tls = true;
    sim_smtp_start(&s);
    say(&s, "EHLO c.test\r\n", NULL);
    assert_string_equal(say(&s, "AUTH LOGIN\r\n", NULL), "334 VXNlcm5hbWU6\r\n");
    assert_string_equal(say(&s, "*\r\n", NULL), "501 5.7.0 Authentication cancelled\r\n");
    assert_string_equal(say(&s, "AUTH PLAIN !!!!\r\n", NULL), "501 5.5.2 Cannot decode response\r\n");
    assert_string_equal(say(&s, "AUTH PLAIN AHNqb2VyZABnZWhlaW0=\r\n", NULL),
                        "235 2.7.0 Authentication successful\r\n");
    sim_smtp_session_free(&s);

    /* no STARTTLS offered, no AUTH hook */
    sim_smtp_session_init(&s, &hooks, "mx.test");
    sim_smtp_start(&s);
    r = say(&s, "EHLO c.test\r\n", NULL);
    assert_null(strstr(r, "STARTTLS"));
    assert_string_equal(say(&s, "STARTTLS\r\n", NULL), "502 5.5.1 Error: command not implemented\r\n");
    assert_string_equal(say(&s, "AUTH PLAIN x\r\n", NULL), "502 5.5.1 Error: command not implemented\r\n");
    sim_smtp_session_free(&s);
}

static struct buf brief_lines;

static void brief_transcript(void *ctx, char dir, const char *line, size_t len)
{
    (void)ctx;
    buf_printf(&brief_lines, "%c:%.*s|", dir, (int)len, line);
}

static void test_smtp_brief_data(void **state)
{
    (void)state;
    static const struct sim_smtp_hooks h = {.ctx = &fk, .message = fake_message,
                                            .transcript = brief_transcript};
    struct sim_smtp_session s;
    buf_init(&brief_lines, 0);
    sim_smtp_session_init(&s, &h, "mx.test");
    s.brief_data = true;
    sim_smtp_start(&s);
    say(&s, "HELO c\r\n", NULL);
    say(&s, "MAIL FROM:<a@b>\r\n", NULL);
    say(&s, "RCPT TO:<c@d>\r\n", NULL);
    say(&s, "DATA\r\n", NULL);
    assert_string_equal(say(&s, "one\r\n..two\r\n.\r\n", NULL), "250 2.0.0 Ok: queued as X1\r\n");
    assert_non_null(strstr(brief_lines.data, "|c:DATA|s:354 End data with <CR><LF>.<CR><LF>|"
                                             "c:(message: 2 lines, 11 bytes)|s:250 2.0.0 Ok"));
    assert_null(strstr(brief_lines.data, "two"));
    sim_smtp_session_free(&s);
    buf_free(&brief_lines);
}

static void test_smtp_b64(void **state)
{
    (void)state;
    char out[16];
    size_t n;
    assert_int_equal(sim_b64_decode("c2pvZXJk", 8, out, sizeof out, &n), 0);
    assert_int_equal(n, 6);
    assert_string_equal(out, "sjoerd");
    assert_int_equal(sim_b64_decode("YQ==", 4, out, sizeof out, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(sim_b64_decode("YWI=", 4, out, sizeof out, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(sim_b64_decode("", 0, out, sizeof out, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(sim_b64_decode("YQ=", 3, out, sizeof out, &n), -1);
    assert_int_equal(sim_b64_decode("Y===", 4, out, sizeof out, &n), -1);
    assert_int_equal(sim_b64_decode("YQ==YQ==", 8, out, sizeof out, &n), -1);
    assert_int_equal(sim_b64_decode("Y=Q=", 4, out, sizeof out, &n), -1);
    assert_int_equal(sim_b64_decode("c2pv ZXJk", 9, out, sizeof out, &n), -1);
    assert_int_equal(sim_b64_decode("YWFhYWFhYWFhYWFhYWFhYWFh", 24, out, sizeof out, &n), -1);
    char enc[16];
    sim_b64_encode("sjoerd", 6, enc, sizeof enc);
    assert_string_equal(enc, "c2pvZXJk");
    sim_b64_encode("ab", 2, enc, sizeof enc);
    assert_string_equal(enc, "YWI=");
    sim_b64_encode("a", 1, enc, sizeof enc);
    assert_string_equal(enc, "YQ==");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_smtp_happy_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_byte_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_strict_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_overlong_unterminated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_scripts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_rcpt_after_refused_mail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_parse_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_starttls_and_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_b64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_brief_data, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
