/*
 * Unit tests for reference/proto/rules: the language (every condition and action, quoting,
 * first match wins), errors with FILE:LINE for bad files, and evaluation fed whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "rules.h"
#include "vacation.h"

static const char list_msg[] =
    "From: Jan <jan@paprika.example>\r\nTo: zolder-users@lists.example\r\n"
    "List-Id: Zolder users\r\n <zolder-users.lists.example>\r\nSubject: [zolder] release 0.2\r\n"
    "Precedence: list\r\n\r\nNew release.\r\nTo unsubscribe, write to ...\r\n";

static const char plain_msg[] =
    "From: oma@familie.example\r\nSubject: Verjaardag\r\n\r\nKom je ook?\r\n";

static struct rules *parse_ok(const char *text)
{
    struct rules *r = NULL;
    struct cfg_error err;
    if (rules_parse(&r, "rules", text, strlen(text), &err) < 0)
        fail_msg("refused: %s", err.text);
    return r;
}

static void test_actions(void **state)
{
    (void)state;
    const char *text =
        "# sort the lists\n"
        "if header List-Id contains zolder-users then folder lists\n"
        "if header Subject matches \"^\\[spam\\]\" then discard\n"
        "if header From contains \"oma@\" and body contains \"verjaardag\" then forward sjoerd@zolder.thuis\n"
        "if header From contains \"oma@\" then folder familie\n"
        "if size > 100000 then folder groot\n";
    struct rules *r = parse_ok(text);
    assert_int_equal(rules_count(r), 5);
    struct rules_action a;
    rules_eval(r, list_msg, strlen(list_msg), &a);
    assert_int_equal(a.kind, RULES_FOLDER);
    assert_string_equal(a.arg, "lists");
    assert_int_equal(a.lineno, 2);

    rules_eval(r, plain_msg, strlen(plain_msg), &a);
    assert_int_equal(a.kind, RULES_FOLDER); /* "Kom je ook?" has no verjaardag in the body */
    assert_string_equal(a.arg, "familie");

    const char *birthday = "From: oma@familie.example\r\nSubject: x\r\n\r\nFijne VERJAARDAG!\r\n";
    rules_eval(r, birthday, strlen(birthday), &a);
    assert_int_equal(a.kind, RULES_FORWARD);
    assert_string_equal(a.arg, "sjoerd@zolder.thuis");

    const char *spam = "Subject: [SPAM] cheap\r\n\r\nx\r\n";
    rules_eval(r, spam, strlen(spam), &a);
    assert_int_equal(a.kind, RULES_DISCARD);

    const char *other = "Subject: hallo\r\n\r\nx\r\n";
    rules_eval(r, other, strlen(other), &a);
    assert_int_equal(a.kind, RULES_INBOX);
    assert_int_equal(a.lineno, 0);
    rules_free(r);
}

static void test_conditions(void **state)
{
    (void)state;
    struct rules *r = parse_ok("if not header X-Spam exists and size < 50 then folder small\n"
                               "if header precedence matches \"^(bulk|list|junk)$\" then folder bulk\n"
                               "if body matches \"unsub+scribe\" then folder unsub\n"
                               "if always then inbox\n");
    struct rules_action a;
    const char *tiny = "Subject: a\r\n\r\nb\r\n";
    rules_eval(r, tiny, strlen(tiny), &a);
    assert_string_equal(a.arg, "small");
    const char *tiny_spam = "X-Spam: yes\r\n\r\nb\r\n";
    rules_eval(r, tiny_spam, strlen(tiny_spam), &a);
    assert_int_equal(a.kind, RULES_INBOX);
    assert_int_equal(a.lineno, 4);
    rules_eval(r, list_msg, strlen(list_msg), &a);
    assert_string_equal(a.arg, "bulk");
    const char *body = "Subject: a long enough subject to pass the size test\r\n\r\nclick to unsubscribe\r\n";
    rules_eval(r, body, strlen(body), &a);
    assert_string_equal(a.arg, "unsub");
    rules_free(r);

    /* folded header values are unfolded; header names any case */
    r = parse_ok("if header list-id contains \"Zolder users <zolder\" then folder lists\n");
    rules_eval(r, list_msg, strlen(list_msg), &a);
    assert_int_equal(a.kind, RULES_FOLDER);
    rules_free(r);

    /* a quoted string with escapes */
    r = parse_ok("if header Subject contains \"say \\\"hi\\\"\" then discard\n");
    const char *q = "Subject: they say \"hi\" to you\r\n\r\n";
    rules_eval(r, q, strlen(q), &a);
    assert_int_equal(a.kind, RULES_DISCARD);
    rules_free(r);

    /* empty file: INBOX */
    r = parse_ok("# nothing\n\n");
    rules_eval(r, q, strlen(q), &a);
    assert_int_equal(a.kind, RULES_INBOX);
    rules_free(r);
    rules_eval(NULL, q, strlen(q), &a);
    assert_int_equal(a.kind, RULES_INBOX);
}

struct bad_case {
    const char *text;
    const char *error;
};

static void test_errors(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"folder lists\n", "rules:1: a rule starts with \"if\""},
        {"# c\nif header List-Id contains x then folder\n", "rules:2: folder NAME"},
        {"if header List-Id contains x then folder ../etc\n", "rules:1: folder NAME"},
        {"if header List-Id contains x then folder Rules\n", "rules:1: folder NAME"},
        {"if header List-Id contains x then folder lists.lock\n", "rules:1: folder NAME"},
        {"if header List-Id contains x then folder .hidden\n", "rules:1: folder NAME"},
        {"if header List-Id contains x then pipe /bin/sh\n", "rules:1: piping to programs is not supported"},
        {"if header List-Id contains x then |/bin/sh\n", "rules:1: piping"},
        {"if header Subject matches \"([\" then discard\n", "rules:1: bad regular expression"},
        {"if header Subject matches \"a{200}{200}\" then discard\n", "rules:1: regular expression too long"},
        {"if header Subject matches \"(a{80}){80}\" then discard\n", "rules:1: regular expression too long"},
        {"if header Subject matches \"a+++++++++++++\" then discard\n", "rules:1: regular expression too long"},
        {"if header Subject contains \"open then discard\n", "rules:1: unterminated quoted string"},
        {"if size >= 5 then discard\n", "rules:1: expected size > N"},
        {"if header then discard\n", "rules:1: expected contains"},
        {"if body exists then discard\n", "rules:1: expected contains or matches"},
        {"if always discard\n", "rules:1: expected \"and\" or \"then\""},
        {"if always then forward not-an-address\n", "rules:1: forward ADDRESS"},
        {"if always then forward <a@b>\n", "rules:1: forward ADDRESS"},
        {"if always then discard now\n", "rules:1: text after the action"},
        {"if sometimes then discard\n", "rules:1: unknown condition"},
        {"if always then explode\n", "rules:1: unknown action"},
        {"if always and always and always and always and always and always and always and always "
         "and always then discard\n", "rules:1: too many conditions"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rules *r = (struct rules *)1;
        struct cfg_error err;
        if (rules_parse(&r, "rules", cases[i].text, strlen(cases[i].text), &err) == 0)
            fail_msg("case %zu accepted: %s", i, cases[i].text);
        assert_null(r);
        if (!strstr(err.text, cases[i].error))
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err.text, cases[i].error);
    }
}

static void test_limits(void **state)
{
    (void)state;
    char *text = malloc((RULES_MAX + 1) * 40);
    size_t n = 0;
    for (int i = 0; i <= RULES_MAX; i++)
        n += (size_t)sprintf(text + n, "if size > %d then discard\n", i);
    struct rules *r;
    struct cfg_error err;
    assert_int_equal(rules_parse(&r, "rules", text, n, &err), -1);
    assert_non_null(strstr(err.text, "more than 200 rules"));
    free(text);
    assert_true(rules_folder_name_ok("lists"));
    assert_true(rules_folder_name_ok("a.b-c_d"));
    assert_false(rules_folder_name_ok(""));
    assert_false(rules_folder_name_ok("a/b"));
    assert_false(rules_folder_name_ok(".."));
}

static void test_vacation_rule(void **state)
{
    (void)state;
    struct rules *r = parse_ok("if header To contains bouke then vacation 7 \"Op vakantie.\\nTot ziens!\"\n"
                               "if header List-Id exists then folder lists\n");
    struct rules_action a;
    rules_eval(r, list_msg, strlen(list_msg), &a);
    assert_null(a.vacation_text); /* To: is the list */
    assert_int_equal(a.kind, RULES_FOLDER);
    const char *personal = "To: Bouke <bouke@zolder.thuis>\r\nSubject: hoi\r\n\r\nx\r\n";
    rules_eval(r, personal, strlen(personal), &a);
    assert_string_equal(a.vacation_text, "Op vakantie.\nTot ziens!");
    assert_int_equal(a.vacation_days, 7);
    assert_int_equal(a.vacation_lineno, 1);
    assert_int_equal(a.kind, RULES_INBOX); /* vacation is not final */
    rules_free(r);
    struct cfg_error err;
    const char *bad[] = {"if always then vacation 0 \"x\"\n", "if always then vacation 400 \"x\"\n",
                         "if always then vacation 7\n", "if always then vacation x \"y\"\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct rules *rr;
        assert_int_equal(rules_parse(&rr, "rules", bad[i], strlen(bad[i]), &err), -1);
        assert_non_null(strstr(err.text, "vacation DAYS TEXT"));
    }
}

struct vac_case {
    const char *sender;
    const char *msg;
    time_t last;
    const char *refusal;   /* substring, or NULL for "reply" */
};

static void test_vacation_decisions(void **state)
{
    (void)state;
    const time_t now = 1000000000;
    static const struct vac_case cases[] = {
        {"jan@paprika.example", "To: bouke@zolder.thuis\r\nSubject: hoi\r\n\r\nx", 0, NULL},
        {"jan@paprika.example", "To: \"Bouke\" <Bouke@Zolder.Thuis>\r\n\r\nx", 0, NULL},
        {"jan@paprika.example", "To: a@b\r\nCc: bouke@zolder.thuis, c@d\r\n\r\nx", 0, NULL},
        {"", "To: bouke@zolder.thuis\r\n\r\nx", 0, "null sender"},
        {"MAILER-DAEMON@paprika.example", "To: bouke@zolder.thuis\r\n\r\nx", 0, "program"},
        {"owner-lijst@paprika.example", "To: bouke@zolder.thuis\r\n\r\nx", 0, "program"},
        {"lijst-request@paprika.example", "To: bouke@zolder.thuis\r\n\r\nx", 0, "program"},
        {"no-reply@shop.example", "To: bouke@zolder.thuis\r\n\r\nx", 0, "program"},
        {"jan@paprika.example", "To: bouke@zolder.thuis\r\nAuto-Submitted: auto-replied\r\n\r\nx", 0, "Auto-Submitted"},
        {"jan@paprika.example", "To: bouke@zolder.thuis\r\nAuto-Submitted: no\r\n\r\nx", 0, NULL},
        {"jan@paprika.example", "To: bouke@zolder.thuis\r\nPrecedence: bulk\r\n\r\nx", 0, "Precedence"},
        {"jan@paprika.example", "To: bouke@zolder.thuis\r\nList-Id: <l.example>\r\n\r\nx", 0, "list"},
        {"jan@paprika.example", "To: bouke@zolder.thuis\r\nList-Unsubscribe: <mailto:x>\r\n\r\nx", 0, "list"},
        {"jan@paprika.example", "To: someone@else.example\r\n\r\nx", 0, "not in To or Cc"},
        {"jan@paprika.example", "To: notbouke@zolder.thuis\r\n\r\nx", 0, "not in To or Cc"},
        {"jan@paprika.example", "To: bouke@zolder.thuis\r\n\r\nx", now - 86400, "answered recently"},
        {"jan@paprika.example", "To: bouke@zolder.thuis\r\n\r\nx", now - 8 * 86400, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct vac_case *c = &cases[i];
        const char *why = vacation_refusal(c->sender, "bouke@zolder.thuis", c->msg, strlen(c->msg), c->last, now, 7);
        if (!c->refusal && why)
            fail_msg("case %zu: refused (%s)", i, why);
        if (c->refusal && (!why || !strstr(why, c->refusal)))
            fail_msg("case %zu: got %s, want %s", i, why ? why : "reply", c->refusal);
    }
}

static void test_vacation_reply_and_state(void **state)
{
    (void)state;
    const char *msg = "From: jan@paprika.example\r\nTo: bouke@zolder.thuis\r\nSubject: Etentje\r\n"
                      "Message-ID: <123@paprika.example>\r\n\r\nx\r\n";
    struct buf out;
    buf_init(&out, 0);
    vacation_render("bouke@zolder.thuis", "jan@paprika.example", msg, strlen(msg), "Weg.\nTot maandag.",
                    "Sat, 16 Nov 2002 23:07:13 +0100", "<V1@zolder.thuis>", &out);
    static const char *const want[] = {
        "From: <bouke@zolder.thuis>\r\n", "To: <jan@paprika.example>\r\n", "Subject: Auto: Etentje\r\n",
        "In-Reply-To: <123@paprika.example>\r\n", "References: <123@paprika.example>\r\n",
        "Auto-Submitted: auto-replied\r\n", "\r\n\r\nWeg.\r\nTot maandag.\r\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(out.data, want[i]))
            fail_msg("reply lacks %s in:\n%s", want[i], out.data);
    buf_free(&out);
    const char *st = "100 jan@paprika.example\n200 piet@paprika.example\n300 JAN@paprika.example\nbad line\n";
    assert_int_equal(vacation_last(st, strlen(st), "jan@paprika.example"), 300);
    assert_int_equal(vacation_last(st, strlen(st), "piet@paprika.example"), 200);
    assert_int_equal(vacation_last(st, strlen(st), "truus@komkommer.example"), 0);
    assert_int_equal(vacation_last("", 0, "x"), 0);
}

/* One prune: its output and what it says went. */
static char *prune(const char *st, time_t now, unsigned days, size_t max_bytes, struct vacation_prune_stats *stats)
{
    struct buf out;
    buf_init(&out, 0);
    vacation_prune(st, strlen(st), now, days, max_bytes, &out, stats);
    char *r = strndup(out.data ? out.data : "", out.len);
    buf_free(&out);
    return r;
}

static void test_vacation_prune_table(void **state)
{
    (void)state;
    const time_t now = 1000000;
    static const struct {
        const char *in;
        unsigned days;
        size_t max_bytes;
        const char *want;
        size_t stale, capped;
    } cases[] = {
        {"", 7, 4096, "", 0, 0},
        /* exactly DAYS old goes (vacation_refusal would answer again), one second younger stays */
        {"913600 old@x\n913601 young@x\n", 1, 4096, "913601 young@x\n", 1, 0},
        /* the newest line per sender, case-insensitively, whatever the order in the file */
        {"999000 jan@x\n999500 JAN@x\n999200 jan@x\n", 7, 4096, "999500 JAN@x\n", 2, 0},
        /* same epoch twice: the later line stays */
        {"999000 jan@x\n999000 Jan@x\n", 7, 4096, "999000 Jan@x\n", 1, 0},
        /* unreadable lines go */
        {"x y\n123\n123456789012 a@x\n a@x\n1 \n999999 a\rb\n\n999999 ok@x\n", 7, 4096,
         "999999 ok@x\n", 7, 0},
        /* oldest first in the output; an epoch in the future is kept; a last line without \n */
        {"2000000 future@x\n999990 b@x\n999980 a@x", 7, 4096, "999980 a@x\n999990 b@x\n2000000 future@x\n", 0, 0},
        /* leading zeros are read as numbers and written plainly */
        {"0999990 b@x\n", 7, 4096, "999990 b@x\n", 0, 0},
        /* the cap: only the newest lines that fit (each "999990 b@x\n" is 11 bytes) */
        {"999970 a@x\n999990 c@x\n999980 b@x\n", 7, 22, "999980 b@x\n999990 c@x\n", 0, 1},
        {"999970 a@x\n999990 c@x\n999980 b@x\n", 7, 21, "999990 c@x\n", 0, 2},
        {"999970 a@x\n", 7, 0, "", 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct vacation_prune_stats st;
        char *got = prune(cases[i].in, now, cases[i].days, cases[i].max_bytes, &st);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, got, cases[i].want);
        if (st.stale != cases[i].stale || st.capped != cases[i].capped)
            fail_msg("case %zu: stale %zu capped %zu, want %zu %zu", i, st.stale, st.capped, cases[i].stale,
                     cases[i].capped);
        assert_int_equal(st.kept_bytes, strlen(got));
        free(got);
    }
    /* without out: the same stats */
    struct vacation_prune_stats st;
    const char *in = "1 a@x\n999999 b@x\n";
    vacation_prune(in, strlen(in), now, 7, 4096, NULL, &st);
    assert_int_equal(st.lines, 2);
    assert_int_equal(st.stale, 1);
}

/* Pruning never changes a decision (for senders within the cap), and a pruned state stays. */
static void test_vacation_prune_keeps_decisions(void **state)
{
    (void)state;
    const time_t now = 1700000000;
    struct buf in;
    buf_init(&in, 0);
    char sender[64];
    /* 300 replies to 40 senders over 20 days, not in time order (a clock set back) */
    for (unsigned i = 0; i < 300; i++)
        buf_printf(&in, "%lld %s%u@paprika.example\n", (long long)(now - (long long)((i * 7919u) % (20u * 86400u))),
                   (i & 1) ? "Jan" : "jan", i % 40);
    for (unsigned days = 1; days <= 21; days += 5) {
        struct vacation_prune_stats st;
        char *out = prune(in.data, now, days, VACATION_STATE_BYTES_MAX, &st);
        assert_int_equal(st.capped, 0);
        assert_true(st.stale > 0);
        for (unsigned s = 0; s < 41; s++) {
            snprintf(sender, sizeof sender, "jan%u@paprika.example", s);
            time_t before = vacation_last(in.data, in.len, sender);
            time_t after = vacation_last(out, strlen(out), sender);
            const char *m = "To: jan@x\r\n\r\n";
            const char *w1 = vacation_refusal(sender, "jan@x", m, strlen(m), before, now, days);
            const char *w2 = vacation_refusal(sender, "jan@x", m, strlen(m), after, now, days);
            if ((w1 == NULL) != (w2 == NULL))
                fail_msg("days %u sender %s: %s before the prune, %s after", days, sender, w1 ? w1 : "reply",
                         w2 ? w2 : "reply");
        }
        /* a second prune finds nothing more to drop */
        struct vacation_prune_stats again;
        char *out2 = prune(out, now, days, VACATION_STATE_BYTES_MAX, &again);
        assert_string_equal(out, out2);
        assert_int_equal(again.stale, 0);
        free(out);
        free(out2);
    }
    buf_free(&in);
}

static void test_vacation_prune_due_and_cap(void **state)
{
    (void)state;
    struct vacation_prune_stats st = {.lines = 100, .stale = VACATION_PRUNE_MIN - 1};
    assert_false(vacation_prune_due(&st, 1000, 30));
    st.stale = VACATION_PRUNE_MIN;
    assert_true(vacation_prune_due(&st, 1000, 30));
    st.stale = 0;
    assert_false(vacation_prune_due(&st, VACATION_STATE_BYTES_MAX - 30, 30));
    assert_true(vacation_prune_due(&st, VACATION_STATE_BYTES_MAX - 29, 30));
    /* many distinct recent senders: the cap holds, the newest stay */
    const time_t now = 1700000000;
    struct buf in;
    buf_init(&in, 0);
    for (unsigned i = 0; i < 60000; i++)
        buf_printf(&in, "%lld sender%05u@many.example\n", (long long)(now - 60000 + i), i);
    assert_true(in.len > VACATION_STATE_BYTES_MAX);
    struct vacation_prune_stats cap;
    struct buf out;
    buf_init(&out, 0);
    vacation_prune(in.data, in.len, now, 7, VACATION_STATE_BYTES_MAX, &out, &cap);
    assert_true(out.len <= VACATION_STATE_BYTES_MAX);
    assert_true(out.len > VACATION_STATE_BYTES_MAX - 64);
    assert_true(cap.capped > 0);
    assert_int_equal(cap.stale, 0);
    assert_int_equal(vacation_last(out.data, out.len, "sender59999@many.example"), now - 1);
    assert_int_equal(vacation_last(out.data, out.len, "sender00000@many.example"), 0);
    buf_free(&out);
    buf_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_vacation_rule),
        cmocka_unit_test(test_vacation_decisions),
        cmocka_unit_test(test_vacation_reply_and_state),
        cmocka_unit_test(test_vacation_prune_table),
        cmocka_unit_test(test_vacation_prune_keeps_decisions),
        cmocka_unit_test(test_vacation_prune_due_and_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
