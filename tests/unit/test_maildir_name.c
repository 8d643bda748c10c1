/* Unit tests for reference/proto/maildir_name: Maildir keys and ":2," flag info (system flags,
 * Dovecot's keyword letters a..z, other letters kept). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "maildir_name.h"
#include "mbox_flags.h"

static struct maildir_name parse_ok(const char *s)
{
    struct maildir_name n;
    if (!maildir_name_parse(s, strlen(s), &n))
        fail_msg("refused: %s", s);
    return n;
}

static void test_parse_flags(void **state)
{
    (void)state;
    struct maildir_name n = parse_ok("1700000000.Q1_0.host:2,DFPRST");
    assert_int_equal(n.key_len, strlen("1700000000.Q1_0.host"));
    assert_true(n.has_info);
    assert_int_equal(n.flags, MBOX_FLAG_DRAFT | MBOX_FLAG_FLAGGED | MBOX_FLAG_ANSWERED | MBOX_FLAG_SEEN |
                                  MBOX_FLAG_DELETED);
    assert_string_equal(n.other, "P");
    n = parse_ok("k:2,");
    assert_true(n.has_info);
    assert_int_equal(n.flags, 0);
    assert_string_equal(n.other, "");
    assert_int_equal(n.letters, 0);
    n = parse_ok("k:2,SbaS"); /* unsorted and repeated, as a careless writer might */
    assert_int_equal(n.flags, MBOX_FLAG_SEEN);
    assert_int_equal(n.letters, 3u);
    assert_string_equal(n.other, "");
}

static void test_parse_keyword_letters(void **state)
{
    (void)state;
    /* as Dovecot writes them: system flags, then keyword letters (dovecot-keywords line N) */
    struct maildir_name n = parse_ok("1700000000.M1P2.host,S=10,W=12:2,FSacz");
    assert_int_equal(n.flags, MBOX_FLAG_FLAGGED | MBOX_FLAG_SEEN);
    assert_int_equal(n.letters, (1u << 0) | (1u << 2) | (1u << 25));
    assert_string_equal(n.other, "");
    assert_int_equal(n.size, 10);
    /* every letter; uppercase others kept apart; digits and punctuation dropped */
    n = parse_ok("k:2,abcdefghijklmnopqrstuvwxyzPQ9.");
    assert_int_equal(n.letters, (1u << 26) - 1);
    assert_string_equal(n.other, "PQ");
    n = parse_ok("k:1,abc"); /* not flag info: no letters either */
    assert_int_equal(n.letters, 0);
}

static void test_parse_no_info(void **state)
{
    (void)state;
    struct maildir_name n = parse_ok("1700000000.Q1_0.host");
    assert_false(n.has_info);
    assert_int_equal(n.key_len, strlen("1700000000.Q1_0.host"));
    assert_int_equal(n.flags, 0);
    n = parse_ok("key:1,S"); /* experimental info: not flags */
    assert_false(n.has_info);
    assert_int_equal(n.key_len, 3);
    assert_int_equal(n.flags, 0);
}

static void test_parse_sizes(void **state)
{
    (void)state;
    struct maildir_name n = parse_ok("1.M2P3.host,S=1234,W=1260:2,S");
    assert_int_equal(n.size, 1234);
    assert_int_equal(n.vsize, 1260);
    n = parse_ok("1.M2P3.host,S=12x:2,S");
    assert_int_equal(n.size, -1);
    assert_int_equal(n.vsize, -1);
    n = parse_ok("1.host:2,S=5"); /* after the colon: info, not the key */
    assert_int_equal(n.size, -1);
}

static void test_parse_refused(void **state)
{
    (void)state;
    struct maildir_name n;
    assert_false(maildir_name_parse("", 0, &n));
    assert_false(maildir_name_parse(".hidden", 7, &n));
    assert_false(maildir_name_parse(":2,S", 4, &n));
    assert_false(maildir_name_parse("a/b", 3, &n));
    assert_false(maildir_name_parse("a\nb", 3, &n));
    assert_false(maildir_name_parse("a\0b", 3, &n));
    char longname[MAILDIR_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname);
    assert_false(maildir_name_parse(longname, sizeof longname, &n));
    assert_true(maildir_name_parse(longname, MAILDIR_NAME_MAX, &n));
}

static void test_make(void **state)
{
    (void)state;
    char out[MAILDIR_NAME_MAX + 1];
    size_t len =
        maildir_name_make("key", 3, MBOX_FLAG_SEEN | MBOX_FLAG_DRAFT | MBOX_FLAG_DELETED, 0, "P", out, sizeof out);
    assert_string_equal(out, "key:2,DPST");
    assert_int_equal(len, strlen(out));
    len = maildir_name_make("key", 3, 0, 0, NULL, out, sizeof out);
    assert_string_equal(out, "key:2,");
    /* as mutt: flag letters and the rest merged in ASCII order */
    maildir_name_make("k", 1, MBOX_FLAG_FLAGGED | MBOX_FLAG_ANSWERED, 0, "Pa", out, sizeof out);
    assert_string_equal(out, "k:2,FPRa");
    /* keyword letters after the uppercase ones, as Dovecot writes them */
    maildir_name_make("k", 1, MBOX_FLAG_SEEN, (1u << 1) | (1u << 25) | (1u << 0), "P", out, sizeof out);
    assert_string_equal(out, "k:2,PSabz");
    maildir_name_make("k", 1, MBOX_FLAGS_IMAP, (1u << 26) - 1, NULL, out, sizeof out);
    assert_string_equal(out, "k:2,DFRSTabcdefghijklmnopqrstuvwxyz");
    assert_int_equal(maildir_name_make("key", 3, 0, 0, NULL, out, 6), 0);
    char longkey[MAILDIR_NAME_MAX];
    memset(longkey, 'x', sizeof longkey);
    assert_int_equal(maildir_name_make(longkey, sizeof longkey, 0, 0, NULL, out, sizeof out), 0);
    /* a key that fits without letters but not with them */
    assert_int_equal(maildir_name_make(longkey, MAILDIR_NAME_MAX - 4, 0, 0, NULL, out, sizeof out),
                     MAILDIR_NAME_MAX - 1);
    assert_int_equal(maildir_name_make(longkey, MAILDIR_NAME_MAX - 4, 0, 3u, NULL, out, sizeof out), 0);
}

static void test_roundtrip(void **state)
{
    (void)state;
    const char *names[] = {"1.Q_0.h:2,S", "a,S=1:2,FPRSTab", "plain", "x:2,T", "y:2,Qzya"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct maildir_name a = parse_ok(names[i]), b;
        char out[MAILDIR_NAME_MAX + 1];
        size_t len = maildir_name_make(names[i], a.key_len, a.flags, a.letters, a.other, out, sizeof out);
        assert_true(len > 0);
        assert_true(maildir_name_parse(out, len, &b));
        assert_int_equal(b.flags, a.flags);
        assert_int_equal(b.letters, a.letters);
        assert_string_equal(b.other, a.other);
        assert_int_equal(b.key_len, a.key_len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_flags),   cmocka_unit_test(test_parse_keyword_letters),
        cmocka_unit_test(test_parse_no_info), cmocka_unit_test(test_parse_sizes),
        cmocka_unit_test(test_parse_refused), cmocka_unit_test(test_make), cmocka_unit_test(test_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
