/* Unit tests for simulator/sim_imap.c: the IMAP command parser and engine, with no sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_imap.h"

/* ---- the parser --------------------------------------------------------------------------- */

static void parse(const char *text, struct sim_imap_cmd *c)
{
    sim_imap_parse(text, strlen(text), c);
}

static void test_imap_parse(void **state)
{
    (void)state;
    struct sim_imap_cmd c;
    parse("a1 login sjoerd \"ge \\\"heim\\\\\"", &c);
    assert_string_equal(c.error, "");
    assert_string_equal(c.tag, "a1");
    assert_string_equal(c.name, "LOGIN");
    assert_false(c.uid);
    assert_int_equal(c.ntoks, 2);
    assert_string_equal(c.toks[0].s, "sjoerd");
    assert_int_equal(c.toks[1].type, SIM_IMAP_STRING);
    assert_string_equal(c.toks[1].s, "ge \"heim\\");
    sim_imap_cmd_free(&c);

    parse("x UID fetch 1:* (UID FLAGS BODY.PEEK[HEADER] BODY[]<0.100>)", &c);
    assert_string_equal(c.error, "");
    assert_true(c.uid);
    assert_string_equal(c.name, "FETCH");
    assert_int_equal(c.ntoks, 7);
    assert_string_equal(c.toks[0].s, "1:*");
    assert_int_equal(c.toks[1].type, SIM_IMAP_LPAREN);
    assert_string_equal(c.toks[4].s, "BODY.PEEK[HEADER]");
    assert_string_equal(c.toks[5].s, "BODY[]<0.100>");
    assert_int_equal(c.toks[6].type, SIM_IMAP_RPAREN);
    sim_imap_cmd_free(&c);

    /* a literal, synchronizing or not, and the section with blanks */
    parse("t LOGIN {6}\r\nsjoerd {7+}\r\ngeh eim", &c);
    assert_string_equal(c.error, "");
    assert_int_equal(c.ntoks, 2);
    assert_string_equal(c.toks[0].s, "sjoerd");
    assert_string_equal(c.toks[1].s, "geh eim");
    assert_int_equal(c.toks[1].len, 7);
    sim_imap_cmd_free(&c);
    parse("t FETCH 1 (BODY[HEADER.FIELDS (FROM TO)])", &c);
    assert_string_equal(c.error, "");
    assert_string_equal(c.toks[2].s, "BODY[HEADER.FIELDS (FROM TO)]");
    sim_imap_cmd_free(&c);
    parse("t STORE 1 +FLAGS (\\Seen \\Deleted)", &c);
    assert_string_equal(c.error, "");
    assert_string_equal(c.toks[3].s, "\\Seen");
    sim_imap_cmd_free(&c);
    parse("t LIST \"\" *", &c);
    assert_string_equal(c.error, "");
    assert_int_equal(c.toks[0].len, 0);
    assert_string_equal(c.toks[1].s, "*");
    sim_imap_cmd_free(&c);

    static const char *const bad[] = {
        "", "NOOP", " a NOOP", "a", "a ", "a NOOP ", "a NO-OP", "a SELECT  INBOX",
        "a SELECT (INBOX", "a SELECT INBOX)", "a LOGIN \"unterminated", "a LOGIN \"bad\\x\"",
        "a LOGIN {5}\r\nabc", "a LOGIN {x}\r\n", "a LOGIN {3}abc", "a FETCH 1 BODY[HEADER",
        "a UID", "+ NOOP", "a LOGIN x\"y\"", "a LOGIN {99999999}\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        parse(bad[i], &c);
        if (!c.error[0])
            fail_msg("parsed \"%s\"", bad[i]);
        sim_imap_cmd_free(&c);
    }
    parse("a LOGIN {3}\r\na\0b", &c);
    sim_imap_cmd_free(&c);
}

static void test_imap_sets(void **state)
{
    (void)state;
    assert_true(sim_imap_set_valid("1"));
    assert_true(sim_imap_set_valid("1:*,5,7:9"));
    assert_true(sim_imap_set_valid("*"));
    assert_false(sim_imap_set_valid(""));
    assert_false(sim_imap_set_valid("0"));
    assert_false(sim_imap_set_valid("1,"));
    assert_false(sim_imap_set_valid("1::2"));
    assert_false(sim_imap_set_valid("a"));
    assert_false(sim_imap_set_valid("99999999999"));
    assert_true(sim_imap_set_has("2:4", 3, 10));
    assert_false(sim_imap_set_has("2:4", 5, 10));
    assert_true(sim_imap_set_has("4:2", 2, 10));
    assert_true(sim_imap_set_has("1,5:*", 10, 10));
    assert_true(sim_imap_set_has("20:*", 10, 10)); /* n:* holds * even when n > * */
    assert_false(sim_imap_set_has("20:*", 9, 10));
    assert_false(sim_imap_set_has("*", 1, 0));
}

/* ---- the engine ------------------------------------------------------------------------------- */

struct fake {
    struct sim_imap_msg msgs[8];
    int n;
    unsigned next;
    struct buf violations;
    struct buf expunged;
    int syncs; /* expunged hook calls: one per command that removed something */
};
static struct fake fk;

static const char *const fake_text[] = {
    "From: a@b\r\nSubject: one\r\n\r\nfirst body\r\n",
    "From: a@b\r\nSubject: two\r\n\r\nsecond\r\n",
    "Subject: three\r\n\r\nx\r\n",
};

static int fake_login(void *ctx, const char *user, const char *pass)
{
    (void)ctx;
    return strcmp(user, "sjoerd") == 0 && strcmp(pass, "ge heim") == 0 ? 0 : -1;
}

static void fake_snapshot(void *ctx, struct sim_imap_msg **m, int *n, unsigned *v, unsigned *next)
{
    (void)ctx;
    *m = calloc((size_t)fk.n + 1, sizeof **m);
    memcpy(*m, fk.msgs, (size_t)fk.n * sizeof **m);
    *n = fk.n;
    *v = 7;
    *next = fk.next;
}

static int fake_read(void *ctx, unsigned uid, char **data, size_t *len)
{
    (void)ctx;
    if (uid < 1 || uid > 3)
        return -1;
    *data = strdup(fake_text[uid - 1]);
    *len = strlen(*data);
    return 0;
}

static void fake_set_flags(void *ctx, unsigned uid, unsigned flags)
{
    (void)ctx;
    for (int i = 0; i < fk.n; i++)
        if (fk.msgs[i].uid == uid)
            fk.msgs[i].flags = flags;
}

static void fake_expunged(void *ctx)
{
    (void)ctx;
    fk.syncs++;
}

static void fake_expunge(void *ctx, unsigned uid)
{
    (void)ctx;
    buf_printf(&fk.expunged, "%u;", uid);
    for (int i = 0; i < fk.n; i++)
        if (fk.msgs[i].uid == uid) {
            memmove(&fk.msgs[i], &fk.msgs[i + 1], (size_t)(fk.n - i - 1) * sizeof fk.msgs[0]);
            fk.n--;
            return;
        }
}

static void fake_violation(void *ctx, const char *kind, const char *detail)
{
    (void)ctx;
    (void)detail;
    buf_printf(&fk.violations, "%s;", kind);
}

static const struct sim_imap_hooks hooks = {
    .login = fake_login, .snapshot = fake_snapshot, .read = fake_read,
    .set_flags = fake_set_flags, .expunge = fake_expunge, .expunged = fake_expunged,
    .violation = fake_violation};

static int setup(void **state)
{
    (void)state;
    memset(&fk, 0, sizeof fk);
    for (int i = 0; i < 3; i++) {
        fk.msgs[i].uid = (unsigned)i + 1;
        fk.msgs[i].size = strlen(fake_text[i]);
    }
    fk.n = 3;
    fk.next = 4;
    buf_init(&fk.violations, 0);
    buf_init(&fk.expunged, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    buf_free(&fk.violations);
    buf_free(&fk.expunged);
    return 0;
}

static const char *say(struct sim_imap_session *s, const char *text, bool *open)
{
    buf_reset(&s->out);
    bool o = sim_imap_feed(s, text, strlen(text));
    if (open)
        *open = o;
    buf_append(&s->out, "", 1);  /* NUL for the string compares */
    s->out.len--;
    return s->out.data ? s->out.data : "";
}

static void login_select(struct sim_imap_session *s)
{
    sim_imap_init(s, &hooks, "imap.test", false, false);
    assert_non_null(strstr(s->out.data, "* OK [CAPABILITY IMAP4rev1 "));
    assert_non_null(strstr(say(s, "a LOGIN sjoerd \"ge heim\"\r\n", NULL), "a OK [CAPABILITY"));
    const char *r = say(s, "b SELECT inbox\r\n", NULL);
    assert_non_null(strstr(r, "* 3 EXISTS\r\n"));
    assert_non_null(strstr(r, "* OK [UNSEEN 1]"));
    assert_non_null(strstr(r, "* OK [UIDVALIDITY 7]"));
    assert_non_null(strstr(r, "* OK [UIDNEXT 4]"));
    assert_non_null(strstr(r, "b OK [READ-WRITE] SELECT completed\r\n"));
}

static void test_imap_fetch_store_expunge(void **state)
{
    (void)state;
    struct sim_imap_session s;
    login_select(&s);
    assert_string_equal(say(&s, "c UID SEARCH UNSEEN\r\n", NULL),
                        "* SEARCH 1 2 3\r\nc OK UID SEARCH completed\r\n");
    assert_string_equal(say(&s, "d UID FETCH 2 (FLAGS RFC822.SIZE BODY.PEEK[HEADER])\r\n", NULL),
                        "* 2 FETCH (UID 2 FLAGS () RFC822.SIZE 35 BODY[HEADER] {27}\r\n"
                        "From: a@b\r\nSubject: two\r\n\r\n)\r\nd OK UID FETCH completed\r\n");
    /* BODY[] sets \Seen and says so */
    assert_string_equal(say(&s, "e FETCH 1 BODY[TEXT]\r\n", NULL),
                        "* 1 FETCH (FLAGS (\\Seen) BODY[TEXT] {12}\r\nfirst body\r\n)\r\n"
                        "e OK FETCH completed\r\n");
    assert_int_equal(fk.msgs[0].flags, SIM_IMAP_SEEN);
    assert_string_equal(say(&s, "f FETCH 3 BODY.PEEK[]<2.5>\r\n", NULL),
                        "* 3 FETCH (BODY[]<2> {5}\r\nbject)\r\nf OK FETCH completed\r\n");
    assert_string_equal(say(&s, "g SEARCH SEEN\r\n", NULL), "* SEARCH 1\r\ng OK SEARCH completed\r\n");
    assert_string_equal(say(&s, "g2 SEARCH NOT SEEN UID 3:*\r\n", NULL),
                        "* SEARCH 3\r\ng2 OK SEARCH completed\r\n");
    assert_string_equal(say(&s, "h STORE 2:3 +FLAGS (\\Deleted)\r\n", NULL),
                        "* 2 FETCH (FLAGS (\\Deleted))\r\n* 3 FETCH (FLAGS (\\Deleted))\r\n"
                        "h OK STORE completed\r\n");
    assert_string_equal(say(&s, "i UID STORE 2 -FLAGS.SILENT \\Deleted\r\n", NULL),
                        "i OK UID STORE completed\r\n");
    /* UID EXPUNGE takes only the set's deleted messages */
    assert_string_equal(say(&s, "j UID EXPUNGE 1:2\r\n", NULL), "j OK UID EXPUNGE completed\r\n");
    assert_int_equal(fk.syncs, 0); /* nothing removed: nothing to sync */
    assert_string_equal(say(&s, "k UID EXPUNGE 3\r\n", NULL),
                        "* 3 EXPUNGE\r\nk OK UID EXPUNGE completed\r\n");
    assert_string_equal(fk.expunged.data, "3;");
    assert_int_equal(fk.syncs, 1);
    assert_string_equal(say(&s, "l STORE 1:* FLAGS (\\Deleted \\Seen)\r\n", NULL),
                        "* 1 FETCH (FLAGS (\\Deleted \\Seen))\r\n* 2 FETCH (FLAGS (\\Deleted \\Seen))\r\n"
                        "l OK STORE completed\r\n");
    assert_string_equal(say(&s, "m EXPUNGE\r\n", NULL),
                        "* 1 EXPUNGE\r\n* 1 EXPUNGE\r\nm OK EXPUNGE completed\r\n");
    assert_int_equal(fk.syncs, 2); /* two removals, one sync */
    assert_string_equal(say(&s, "n SEARCH ALL\r\n", NULL), "* SEARCH\r\nn OK SEARCH completed\r\n");
    bool open;
    assert_string_equal(say(&s, "o LOGOUT\r\n", &open), "* BYE ispsim logging out\r\no OK LOGOUT completed\r\n");
    assert_false(open);
    assert_int_equal(fk.violations.len, 0);
    sim_imap_free(&s);
}

static void test_imap_examine_idle_literal(void **state)
{
    (void)state;
    struct sim_imap_session s;
    sim_imap_init(&s, &hooks, "imap.test", true, false);
    assert_non_null(strstr(s.out.data, " STARTTLS] imap.test"));
    /* a synchronizing literal gets its "+" */
    assert_string_equal(say(&s, "a LOGIN {6}\r\n", NULL), "+ Ready for literal data\r\n");
    assert_string_equal(say(&s, "sjoerd {7}\r\n", NULL), "+ Ready for literal data\r\n");
    assert_non_null(strstr(say(&s, "ge heim\r\n", NULL), "a OK [CAPABILITY"));
    assert_non_null(strstr(say(&s, "b EXAMINE INBOX\r\n", NULL), "b OK [READ-ONLY] EXAMINE completed"));
    assert_string_equal(say(&s, "c FETCH 1 (BODY[])\r\n", NULL),
                        "* 1 FETCH (BODY[] {39}\r\nFrom: a@b\r\nSubject: one\r\n\r\nfirst body\r\n)\r\n"
                        "c OK FETCH completed\r\n");
    assert_int_equal(fk.msgs[0].flags, 0); /* read-only: no \Seen */
    assert_non_null(strstr(say(&s, "d STORE 1 +FLAGS \\Seen\r\n", NULL), "d NO "));
    /* IDLE: new mail shows; DONE ends it */
    assert_string_equal(say(&s, "e IDLE\r\n", NULL), "+ idling\r\n");
    fk.msgs[3] = (struct sim_imap_msg){.uid = 9, .size = 10};
    fk.n = 4;
    fk.next = 10;
    buf_reset(&s.out);
    sim_imap_check(&s);
    assert_string_equal(s.out.data, "* 4 EXISTS\r\n* 1 RECENT\r\n");
    assert_string_equal(say(&s, "DONE\r\n", NULL), "e OK IDLE terminated\r\n");
    assert_string_equal(say(&s, "f STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)\r\n", NULL),
                        "* STATUS INBOX (MESSAGES 4 UNSEEN 4 UIDNEXT 10 UIDVALIDITY 7)\r\n"
                        "f OK STATUS completed\r\n");
    assert_string_equal(say(&s, "g LIST \"\" *\r\n", NULL),
                        "* LIST (\\HasNoChildren) \"/\" INBOX\r\ng OK LIST completed\r\n");
    assert_string_equal(say(&s, "h CLOSE\r\n", NULL), "h OK CLOSE completed\r\n");
    assert_non_null(strstr(say(&s, "i FETCH 1 FLAGS\r\n", NULL), "i BAD FETCH not allowed now"));
    sim_imap_eof(&s);
    assert_string_equal(fk.violations.data, "sequence;no-logout;");
    sim_imap_free(&s);
}

static void test_imap_auth_tls_errors(void **state)
{
    (void)state;
    struct sim_imap_session s;
    sim_imap_init(&s, &hooks, "imap.test", true, false);
    assert_string_equal(say(&s, "a CAPABILITY\r\n", NULL),
                        "* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR IDLE UIDPLUS UNSELECT LITERAL+ "
                        "STARTTLS\r\na OK CAPABILITY completed\r\n");
    assert_string_equal(say(&s, "b STARTTLS\r\nc NOOP\r\n", NULL), "b OK Begin TLS negotiation now\r\n");
    assert_true(s.starttls_now);
    assert_true(sim_imap_tls_started(&s));
    assert_null(strstr(say(&s, "a CAPABILITY\r\n", NULL), "STARTTLS"));
    assert_non_null(strstr(say(&s, "b STARTTLS\r\n", NULL), "b BAD"));
    assert_non_null(strstr(say(&s, "c SELECT INBOX\r\n", NULL), "c BAD SELECT not allowed now"));
    /* AUTHENTICATE PLAIN: wrong, cancelled, then right with a continuation */
    assert_non_null(strstr(say(&s, "d AUTHENTICATE PLAIN AHNqb2VyZABmb3V0\r\n", NULL),
                           "d NO [AUTHENTICATIONFAILED]"));
    assert_string_equal(say(&s, "e AUTHENTICATE PLAIN\r\n", NULL), "+ \r\n");
    assert_string_equal(say(&s, "*\r\n", NULL), "e BAD AUTHENTICATE cancelled\r\n");
    assert_string_equal(say(&s, "f AUTHENTICATE PLAIN\r\n", NULL), "+ \r\n");
    assert_non_null(strstr(say(&s, "AHNqb2VyZABnZSBoZWlt\r\n", NULL), "f OK [CAPABILITY"));
    assert_int_equal(s.state, SIM_IMAP_AUTH);
    /* strictness */
    assert_string_equal(say(&s, "g NOOP\n", NULL), "* BAD lines end in CRLF\r\n");
    assert_string_equal(say(&s, "h FROB\r\n", NULL), "h BAD unknown command\r\n");
    assert_string_equal(say(&s, "i UID COPY 1 x\r\n", NULL), "i BAD UID FETCH, SEARCH, STORE or EXPUNGE\r\n");
    char big[SIM_IMAP_LINE_MAX + 100];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_string_equal(say(&s, big, NULL), "* BAD line too long\r\n");
    assert_string_equal(say(&s, "rest\r\nj NOOP\r\n", NULL), "j OK NOOP completed\r\n");
    assert_string_equal(say(&s, "k LOGIN {999999}\r\n", NULL), "* BAD literal too big\r\n");
    assert_string_equal(fk.violations.data,
                        "syntax;sequence;bare-lf;syntax;syntax;line-too-long;syntax;");
    sim_imap_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_imap_parse),
        cmocka_unit_test(test_imap_sets),
        cmocka_unit_test_setup_teardown(test_imap_fetch_store_expunge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_examine_idle_literal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_auth_tls_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
