/* Unit tests for reference/proto/smtp_cmd: every verb, MAIL/RCPT parameters, every error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "smtp_cmd.h"

struct cmd_case {
    const char *line;
    size_t len;            /* 0: strlen(line) */
    bool ok;
    enum smtp_verb verb;
    const char *arg;       /* NULL: not checked */
    const char *local;     /* MAIL/RCPT: NULL not checked */
    const char *domain;
    unsigned addr_flags;
    const char *params;    /* "KEY=VALUE KEY2" as parsed, NULL not checked */
    unsigned long long bdat_size;
    bool bdat_last;
    int code;              /* errors */
    const char *enhanced;
    const char *detail;    /* NULL: must be NULL */
};

static const struct cmd_case cmd_cases[] = {
    /* greetings */
    {.line = "HELO zolder.thuis", .ok = true, .verb = SMTP_VERB_HELO, .arg = "zolder.thuis"},
    {.line = "ehlo [192.168.1.5]", .ok = true, .verb = SMTP_VERB_EHLO, .arg = "[192.168.1.5]"},
    {.line = "EHLO   spaced.example  ", .ok = true, .verb = SMTP_VERB_EHLO,
     .arg = "spaced.example"},
    {.line = "HELO", .ok = false, .verb = SMTP_VERB_HELO, .code = 501, .enhanced = "5.5.4"},
    {.line = "EHLO ", .ok = false, .verb = SMTP_VERB_EHLO, .code = 501, .enhanced = "5.5.4"},
    {.line = "EHLO\t", .ok = false, .verb = SMTP_VERB_EHLO, .code = 501, .enhanced = "5.5.4"},
    /* MAIL */
    {.line = "MAIL FROM:<sjoerd@ecs.thuis>", .ok = true, .verb = SMTP_VERB_MAIL,
     .local = "sjoerd", .domain = "ecs.thuis", .params = ""},
    {.line = "mail from:<>", .ok = true, .verb = SMTP_VERB_MAIL, .local = "", .domain = "",
     .addr_flags = ADDR_F_NULL, .params = ""},
    {.line = "MAIL FROM: <a@b>", .ok = true, .verb = SMTP_VERB_MAIL, .local = "a",
     .domain = "b", .params = ""},
    {.line = "MAIL FROM:<a@b> SIZE=1000 BODY=8BITMIME", .ok = true, .verb = SMTP_VERB_MAIL,
     .local = "a", .domain = "b", .params = "SIZE=1000 BODY=8BITMIME"},
    {.line = "MAIL FROM:<a@b>  size=10   ret=HDRS envid=QQ+2Bx smtputf8", .ok = true,
     .verb = SMTP_VERB_MAIL, .params = "SIZE=10 RET=HDRS ENVID=QQ+2Bx SMTPUTF8"},
    {.line = "MAIL FROM:<@relay:u%v@Dom> AUTH=<>", .ok = true, .verb = SMTP_VERB_MAIL,
     .local = "u%v", .domain = "dom", .addr_flags = ADDR_F_SOURCE_ROUTE | ADDR_F_ROUTING_CHARS,
     .params = "AUTH=<>"},
    {.line = "MAIL FROM:<a@b> X-1=y", .ok = true, .verb = SMTP_VERB_MAIL, .params = "X-1=y"},
    {.line = "MAIL FROM:<a@b>\t", .ok = true, .verb = SMTP_VERB_MAIL, .params = ""},
    {.line = "MAIL FROM:<a@b> SIZE=1 SIZE=2", .ok = false, .verb = SMTP_VERB_MAIL, .code = 555,
     .enhanced = "5.5.4", .detail = "duplicate parameter"},
    {.line = "MAIL FROM:<a@b> size=1 SIZE", .ok = false, .verb = SMTP_VERB_MAIL, .code = 555,
     .enhanced = "5.5.4", .detail = "duplicate parameter"},
    {.line = "MAIL FROM:<a@b> SIZE=", .ok = false, .verb = SMTP_VERB_MAIL, .code = 555,
     .enhanced = "5.5.4", .detail = "bad parameter value"},
    {.line = "MAIL FROM:<a@b> SIZE=a=b", .ok = false, .verb = SMTP_VERB_MAIL, .code = 555,
     .enhanced = "5.5.4", .detail = "bad parameter value"},
    {.line = "MAIL FROM:<a@b> SIZE=\x80", .ok = false, .verb = SMTP_VERB_MAIL, .code = 555,
     .enhanced = "5.5.4", .detail = "bad parameter value"},
    {.line = "MAIL FROM:<a@b> =1", .ok = false, .verb = SMTP_VERB_MAIL, .code = 555,
     .enhanced = "5.5.4", .detail = "bad parameter keyword"},
    {.line = "MAIL FROM:<a@b> -X=1", .ok = false, .verb = SMTP_VERB_MAIL, .code = 555,
     .enhanced = "5.5.4", .detail = "bad parameter keyword"},
    {.line = "MAIL FROM:<a@b> A_B=1", .ok = false, .verb = SMTP_VERB_MAIL, .code = 555,
     .enhanced = "5.5.4", .detail = "bad parameter keyword"},
    {.line = "MAIL FROM:<a@b> ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456=1", .ok = false,
     .verb = SMTP_VERB_MAIL, .code = 555, .enhanced = "5.5.4",
     .detail = "bad parameter keyword"},
    {.line = "MAIL FROM:<a@b> ABCDEFGHIJKLMNOPQRSTUVWXYZ012345=1", .ok = true,
     .verb = SMTP_VERB_MAIL, .params = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345=1"},
    {.line = "MAIL FROM:<a@b>SIZE=1", .ok = false, .verb = SMTP_VERB_MAIL, .code = 555,
     .enhanced = "5.5.4", .detail = "no space after the address"},
    {.line = "MAIL FROM:<a@b>\tSIZE=1", .ok = false, .verb = SMTP_VERB_MAIL, .code = 555,
     .enhanced = "5.5.4", .detail = "no space after the address"},
    {.line = "MAIL FROM:<a@b> A=1 B=1 C=1 D=1 E=1 F=1 G=1 H=1 I=1 J=1 K=1 L=1 M=1 N=1 O=1 P=1",
     .ok = true, .verb = SMTP_VERB_MAIL,
     .params = "A=1 B=1 C=1 D=1 E=1 F=1 G=1 H=1 I=1 J=1 K=1 L=1 M=1 N=1 O=1 P=1"},
    {.line = "MAIL FROM:<a@b> A=1 B=1 C=1 D=1 E=1 F=1 G=1 H=1 I=1 J=1 K=1 L=1 M=1 N=1 O=1 P=1 "
             "Q=1",
     .ok = false, .verb = SMTP_VERB_MAIL, .code = 555, .enhanced = "5.5.4",
     .detail = "too many parameters"},
    {.line = "MAIL FROM:a@b", .ok = false, .verb = SMTP_VERB_MAIL, .code = 501,
     .enhanced = "5.1.7", .detail = "missing <"},
    {.line = "MAIL FROM:", .ok = false, .verb = SMTP_VERB_MAIL, .code = 501, .enhanced = "5.1.7",
     .detail = "missing <"},
    {.line = "MAIL FROM:  <a@b>", .ok = false, .verb = SMTP_VERB_MAIL, .code = 501,
     .enhanced = "5.1.7", .detail = "missing <"},
    {.line = "MAIL FROM:<a@b", .ok = false, .verb = SMTP_VERB_MAIL, .code = 501,
     .enhanced = "5.1.7", .detail = "missing >"},
    {.line = "MAIL FROM:<a b@c>", .ok = false, .verb = SMTP_VERB_MAIL, .code = 501,
     .enhanced = "5.1.7", .detail = "whitespace in address"},
    {.line = "MAIL FROM:<j\xc3\xb6rg@dom>", .ok = false, .verb = SMTP_VERB_MAIL, .code = 501,
     .enhanced = "5.1.7", .detail = "8-bit character in address"},
    {.line = "MAIL TO:<a@b>", .ok = false, .verb = SMTP_VERB_MAIL, .code = 501,
     .enhanced = "5.5.4"},
    {.line = "MAIL", .ok = false, .verb = SMTP_VERB_MAIL, .code = 501, .enhanced = "5.5.4"},
    {.line = "MAIL  FROM:<a@b>", .ok = false, .verb = SMTP_VERB_MAIL, .code = 501,
     .enhanced = "5.5.4"},
    {.line = "MAIL\tFROM:<a@b>", .ok = false, .verb = SMTP_VERB_MAIL, .code = 501,
     .enhanced = "5.5.4"},
    {.line = "MAIL FROM <a@b>", .ok = false, .verb = SMTP_VERB_MAIL, .code = 501,
     .enhanced = "5.5.4"},
    /* RCPT */
    {.line = "RCPT TO:<sjoerd@zolder.thuis>", .ok = true, .verb = SMTP_VERB_RCPT,
     .local = "sjoerd", .domain = "zolder.thuis", .params = ""},
    {.line = "rcpt to: <Postmaster>", .ok = true, .verb = SMTP_VERB_RCPT, .local = "Postmaster",
     .domain = "", .addr_flags = ADDR_F_UNQUALIFIED, .params = ""},
    {.line = "RCPT TO:<a@b> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+40b", .ok = true,
     .verb = SMTP_VERB_RCPT, .params = "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+40b"},
    {.line = "RCPT TO:<\"user@other\"@zolder.thuis>", .ok = true, .verb = SMTP_VERB_RCPT,
     .local = "user@other", .domain = "zolder.thuis",
     .addr_flags = ADDR_F_QUOTED | ADDR_F_ROUTING_CHARS, .params = ""},
    {.line = "RCPT TO:<>", .ok = false, .verb = SMTP_VERB_RCPT, .code = 501, .enhanced = "5.1.3",
     .detail = "null recipient"},
    {.line = "RCPT TO:<a@@b>", .ok = false, .verb = SMTP_VERB_RCPT, .code = 501,
     .enhanced = "5.1.3", .detail = "invalid character in domain"},
    {.line = "RCPT TO:", .ok = false, .verb = SMTP_VERB_RCPT, .code = 501, .enhanced = "5.1.3",
     .detail = "missing <"},
    {.line = "RCPT FROM:<a@b>", .ok = false, .verb = SMTP_VERB_RCPT, .code = 501,
     .enhanced = "5.5.4"},
    {.line = "RCPT TO:<a@b> X=1 X=2", .ok = false, .verb = SMTP_VERB_RCPT, .code = 555,
     .enhanced = "5.5.4", .detail = "duplicate parameter"},
    /* no-argument verbs */
    {.line = "DATA", .ok = true, .verb = SMTP_VERB_DATA, .arg = ""},
    {.line = "data  ", .ok = true, .verb = SMTP_VERB_DATA},
    {.line = "DATA x", .ok = false, .verb = SMTP_VERB_DATA, .code = 501, .enhanced = "5.5.4"},
    {.line = "RSET", .ok = true, .verb = SMTP_VERB_RSET},
    {.line = "RSET now", .ok = false, .verb = SMTP_VERB_RSET, .code = 501, .enhanced = "5.5.4"},
    {.line = "QUIT", .ok = true, .verb = SMTP_VERB_QUIT},
    {.line = "QUIT bye", .ok = false, .verb = SMTP_VERB_QUIT, .code = 501, .enhanced = "5.5.4"},
    {.line = "STARTTLS", .ok = true, .verb = SMTP_VERB_STARTTLS},
    {.line = "StartTLS please", .ok = false, .verb = SMTP_VERB_STARTTLS, .code = 501,
     .enhanced = "5.5.4"},
    /* optional-argument verbs */
    {.line = "NOOP", .ok = true, .verb = SMTP_VERB_NOOP, .arg = ""},
    {.line = "NOOP hello there", .ok = true, .verb = SMTP_VERB_NOOP, .arg = "hello there"},
    {.line = "HELP", .ok = true, .verb = SMTP_VERB_HELP, .arg = ""},
    {.line = "HELP MAIL", .ok = true, .verb = SMTP_VERB_HELP, .arg = "MAIL"},
    {.line = "VERB", .ok = true, .verb = SMTP_VERB_VERB, .arg = ""},
    /* required-argument verbs */
    {.line = "VRFY sjoerd", .ok = true, .verb = SMTP_VERB_VRFY, .arg = "sjoerd"},
    {.line = "VRFY", .ok = false, .verb = SMTP_VERB_VRFY, .code = 501, .enhanced = "5.5.4"},
    {.line = "EXPN staff", .ok = true, .verb = SMTP_VERB_EXPN, .arg = "staff"},
    {.line = "EXPN", .ok = false, .verb = SMTP_VERB_EXPN, .code = 501, .enhanced = "5.5.4"},
    {.line = "ETRN @zolder.thuis", .ok = true, .verb = SMTP_VERB_ETRN, .arg = "@zolder.thuis"},
    {.line = "ETRN", .ok = false, .verb = SMTP_VERB_ETRN, .code = 501, .enhanced = "5.5.4"},
    {.line = "AUTH PLAIN AHVzZXIAcGFzcw==", .ok = true, .verb = SMTP_VERB_AUTH,
     .arg = "PLAIN AHVzZXIAcGFzcw=="},
    {.line = "AUTH", .ok = false, .verb = SMTP_VERB_AUTH, .code = 501, .enhanced = "5.5.4"},
    /* BDAT */
    {.line = "BDAT 1000", .ok = true, .verb = SMTP_VERB_BDAT, .bdat_size = 1000},
    {.line = "BDAT 0 LAST", .ok = true, .verb = SMTP_VERB_BDAT, .bdat_size = 0,
     .bdat_last = true},
    {.line = "bdat 42 last", .ok = true, .verb = SMTP_VERB_BDAT, .bdat_size = 42,
     .bdat_last = true},
    {.line = "BDAT 9223372036854775808 LAST", .ok = true, .verb = SMTP_VERB_BDAT,
     .bdat_size = 9223372036854775808ULL, .bdat_last = true},
    {.line = "BDAT 9223372036854775809", .ok = false, .verb = SMTP_VERB_BDAT, .code = 501,
     .enhanced = "5.5.4", .detail = "chunk size too large"},
    {.line = "BDAT 99999999999999999999999", .ok = false, .verb = SMTP_VERB_BDAT, .code = 501,
     .enhanced = "5.5.4", .detail = "chunk size too large"},
    {.line = "BDAT", .ok = false, .verb = SMTP_VERB_BDAT, .code = 501, .enhanced = "5.5.4",
     .detail = "missing chunk size"},
    {.line = "BDAT -1", .ok = false, .verb = SMTP_VERB_BDAT, .code = 501, .enhanced = "5.5.4",
     .detail = "missing chunk size"},
    {.line = "BDAT +1", .ok = false, .verb = SMTP_VERB_BDAT, .code = 501, .enhanced = "5.5.4",
     .detail = "missing chunk size"},
    {.line = "BDAT 10LAST", .ok = false, .verb = SMTP_VERB_BDAT, .code = 501,
     .enhanced = "5.5.4"},
    {.line = "BDAT 10 FIRST", .ok = false, .verb = SMTP_VERB_BDAT, .code = 501,
     .enhanced = "5.5.4"},
    {.line = "BDAT 10 LAST x", .ok = false, .verb = SMTP_VERB_BDAT, .code = 501,
     .enhanced = "5.5.4"},
    {.line = "BDAT 0x10", .ok = false, .verb = SMTP_VERB_BDAT, .code = 501, .enhanced = "5.5.4"},
    /* unknown verbs and bad bytes */
    {.line = "XYZZY", .ok = false, .verb = SMTP_VERB_UNKNOWN, .code = 500, .enhanced = "5.5.2"},
    {.line = "", .ok = false, .verb = SMTP_VERB_UNKNOWN, .code = 500, .enhanced = "5.5.2"},
    {.line = " QUIT", .ok = false, .verb = SMTP_VERB_UNKNOWN, .code = 500, .enhanced = "5.5.2"},
    {.line = "HELOx host", .ok = false, .verb = SMTP_VERB_UNKNOWN, .code = 500,
     .enhanced = "5.5.2"},
    {.line = "MAIL:FROM:<a@b>", .ok = false, .verb = SMTP_VERB_UNKNOWN, .code = 500,
     .enhanced = "5.5.2"},
    {.line = "QU\0IT", .len = 5, .ok = false, .verb = SMTP_VERB_UNKNOWN, .code = 500,
     .enhanced = "5.5.2"},
    {.line = "QUIT\0", .len = 5, .ok = false, .verb = SMTP_VERB_UNKNOWN, .code = 500,
     .enhanced = "5.5.2"},
    {.line = "HELO a\rb", .ok = false, .verb = SMTP_VERB_UNKNOWN, .code = 500,
     .enhanced = "5.5.2"},
    {.line = "HELO a\nRSET", .ok = false, .verb = SMTP_VERB_UNKNOWN, .code = 500,
     .enhanced = "5.5.2"},
    {.line = "HELO a\x7f", .ok = false, .verb = SMTP_VERB_UNKNOWN, .code = 500,
     .enhanced = "5.5.2"},
    {.line = "HELO a\x1b[0m", .ok = false, .verb = SMTP_VERB_UNKNOWN, .code = 500,
     .enhanced = "5.5.2"},
    {.line = "HELO\ttabbed", .ok = true, .verb = SMTP_VERB_HELO, .arg = "tabbed"},
};

static void params_string(const struct smtp_cmd *cmd, struct buf *out)
{
    for (int i = 0; i < cmd->nparams; i++) {
        if (i)
            buf_append_char(out, ' ');
        buf_append_str(out, cmd->params[i].key);
        if (cmd->params[i].has_value)
            buf_printf(out, "=%s", cmd->params[i].value);
        else
            assert_string_equal(cmd->params[i].value, "");
    }
}

static void test_smtp_cmd_table(void **state)
{
    (void)state;
    struct smtp_cmd *cmd = malloc(sizeof *cmd);
    assert_non_null(cmd);
    for (size_t i = 0; i < sizeof cmd_cases / sizeof cmd_cases[0]; i++) {
        const struct cmd_case *c = &cmd_cases[i];
        struct smtp_reply_err err = {0};
        size_t len = c->len ? c->len : strlen(c->line);
        bool ok = smtp_cmd_parse(c->line, len, cmd, &err);
        if (ok != c->ok)
            fail_msg("case %zu \"%s\": ok=%d (%d %s %s)", i, c->line, ok, err.code,
                     err.text ? err.text : "-", err.detail ? err.detail : "-");
        if (cmd->verb != c->verb)
            fail_msg("case %zu \"%s\": verb %s", i, c->line, smtp_verb_name(cmd->verb));
        if (!ok) {
            assert_int_equal(err.code, c->code);
            assert_string_equal(err.enhanced, c->enhanced);
            assert_non_null(err.text);
            if (c->detail == NULL)
                assert_null(err.detail);
            else if (err.detail == NULL || strcmp(err.detail, c->detail) != 0)
                fail_msg("case %zu \"%s\": detail %s, want %s", i, c->line,
                         err.detail ? err.detail : "NULL", c->detail);
            continue;
        }
        if (c->arg)
            assert_string_equal(cmd->arg, c->arg);
        if (c->local) {
            assert_string_equal(cmd->addr.local, c->local);
            assert_string_equal(cmd->addr.domain, c->domain);
            assert_int_equal(cmd->addr.flags, c->addr_flags);
        }
        if (c->params) {
            struct buf b;
            buf_init(&b, 0);
            buf_append_str(&b, "");
            params_string(cmd, &b);
            assert_string_equal(b.data, c->params);
            buf_free(&b);
        }
        assert_true(cmd->bdat_size == c->bdat_size);
        assert_int_equal(cmd->bdat_last, c->bdat_last);
    }
    free(cmd);
}

static void test_smtp_cmd_limits(void **state)
{
    (void)state;
    struct smtp_cmd *cmd = malloc(sizeof *cmd);
    struct smtp_reply_err err;
    char line[SMTP_LINE_MAX + 8];
    /* 998 bytes is the longest line without CRLF */
    memset(line, 'x', sizeof line);
    memcpy(line, "NOOP ", 5);
    assert_true(smtp_cmd_parse(line, SMTP_LINE_MAX - 2, cmd, &err));
    assert_int_equal(strlen(cmd->arg), SMTP_LINE_MAX - 2 - 5);
    assert_false(smtp_cmd_parse(line, SMTP_LINE_MAX - 1, cmd, &err));
    assert_int_equal(err.code, 500);
    assert_string_equal(err.enhanced, "5.5.2");
    assert_string_equal(err.text, "Line too long");

    /* a 512-byte value fits, 513 does not */
    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b, "MAIL FROM:<a@b> ENVID=");
    for (int i = 0; i < SMTP_PARAM_VALUE_MAX; i++)
        buf_append_char(&b, 'v');
    assert_true(smtp_cmd_parse(b.data, b.len, cmd, &err));
    assert_int_equal(strlen(smtp_cmd_param(cmd, "envid")->value), SMTP_PARAM_VALUE_MAX);
    buf_append_char(&b, 'v');
    assert_false(smtp_cmd_parse(b.data, b.len, cmd, &err));
    assert_int_equal(err.code, 555);
    assert_string_equal(err.detail, "bad parameter value");
    buf_free(&b);
    free(cmd);
}

static void test_smtp_cmd_param_lookup(void **state)
{
    (void)state;
    struct smtp_cmd *cmd = malloc(sizeof *cmd);
    struct smtp_reply_err err;
    const char *line = "MAIL FROM:<a@b> Size=12 smtputf8 body=8BITMIME";
    assert_true(smtp_cmd_parse(line, strlen(line), cmd, &err));
    assert_int_equal(cmd->nparams, 3);
    const struct smtp_param *p = smtp_cmd_param(cmd, "SIZE");
    assert_non_null(p);
    assert_string_equal(p->value, "12");
    assert_true(p->has_value);
    p = smtp_cmd_param(cmd, "SmtpUtf8");
    assert_non_null(p);
    assert_false(p->has_value);
    assert_string_equal(smtp_cmd_param(cmd, "body")->value, "8BITMIME");
    assert_null(smtp_cmd_param(cmd, "RET"));
    assert_null(smtp_cmd_param(cmd, "SIZ"));
    free(cmd);
}

static void test_smtp_verb_names(void **state)
{
    (void)state;
    static const struct {
        enum smtp_verb verb;
        const char *name;
    } names[] = {
        {SMTP_VERB_UNKNOWN, "UNKNOWN"}, {SMTP_VERB_HELO, "HELO"}, {SMTP_VERB_EHLO, "EHLO"},
        {SMTP_VERB_MAIL, "MAIL"},       {SMTP_VERB_RCPT, "RCPT"}, {SMTP_VERB_DATA, "DATA"},
        {SMTP_VERB_BDAT, "BDAT"},       {SMTP_VERB_RSET, "RSET"}, {SMTP_VERB_NOOP, "NOOP"},
        {SMTP_VERB_QUIT, "QUIT"},       {SMTP_VERB_HELP, "HELP"}, {SMTP_VERB_VRFY, "VRFY"},
        {SMTP_VERB_EXPN, "EXPN"},       {SMTP_VERB_ETRN, "ETRN"},
        {SMTP_VERB_STARTTLS, "STARTTLS"}, {SMTP_VERB_AUTH, "AUTH"}, {SMTP_VERB_VERB, "VERB"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_string_equal(smtp_verb_name(names[i].verb), names[i].name);
    assert_string_equal(smtp_verb_name((enum smtp_verb)99), "UNKNOWN");
}

struct xtext_case {
    const char *in;
    bool ok;
    const char *out;
    size_t outsize;  /* 0: 64 */
};

static void test_smtp_xtext(void **state)
{
    (void)state;
    static const struct xtext_case cases[] = {
        {.in = "", .ok = true, .out = ""},
        {.in = "plain", .ok = true, .out = "plain"},
        {.in = "a+2Bb+3Dc", .ok = true, .out = "a+b=c"},
        {.in = "rfc822;a+20b@c", .ok = true, .out = "rfc822;a b@c"},
        {.in = "+41", .ok = true, .out = "A"},
        {.in = "+e9", .ok = false},
        {.in = "+2", .ok = false},
        {.in = "+", .ok = false},
        {.in = "+GG", .ok = false},
        {.in = "+00", .ok = false},
        {.in = "a=b", .ok = false},
        {.in = "a b", .ok = false},
        {.in = "a\x80", .ok = false},
        {.in = "abcd", .ok = true, .out = "abcd", .outsize = 5},
        {.in = "abcde", .ok = false, .outsize = 5},
        {.in = "abc+41", .ok = true, .out = "abcA", .outsize = 5},
        {.in = "abcd+41", .ok = false, .outsize = 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        size_t size = cases[i].outsize ? cases[i].outsize : sizeof out;
        bool ok = smtp_xtext_decode(cases[i].in, out, size);
        if (ok != cases[i].ok)
            fail_msg("xtext case %zu \"%s\": ok=%d", i, cases[i].in, ok);
        if (ok)
            assert_string_equal(out, cases[i].out);
    }
    char out[8];
    assert_false(smtp_xtext_decode("a", out, 0));

    /* encode: every non-xchar escaped, and decode(encode(x)) == x for all bytes 1..255 */
    struct buf b;
    buf_init(&b, 0);
    smtp_xtext_encode("a+b=c d\x01\xff~!", &b);
    assert_string_equal(b.data, "a+2Bb+3Dc+20d+01+FF~!");
    buf_reset(&b);
    char all[256];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = '\0';
    smtp_xtext_encode(all, &b);
    char back[512];
    assert_true(smtp_xtext_decode(b.data, back, sizeof back));
    assert_string_equal(back, all);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smtp_cmd_table),
        cmocka_unit_test(test_smtp_cmd_limits),
        cmocka_unit_test(test_smtp_cmd_param_lookup),
        cmocka_unit_test(test_smtp_verb_names),
        cmocka_unit_test(test_smtp_xtext),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
