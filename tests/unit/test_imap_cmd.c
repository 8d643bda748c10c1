/*
 * Unit tests for reference/proto/imap_cmd: framing (whole, byte by byte, random splits,
 * continuation requests, limits) and the command grammar (every command, fetch items,
 * sections, partials, sequence sets, STORE, SEARCH trees, errors; RFC 7162 CONDSTORE and
 * QRESYNC parameters, framed whole and byte by byte).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_cmd.h"

/* ---- framing ------------------------------------------------------------------------------- */

struct frame_log {
    char out[8192];
    size_t len;
    unsigned continues, commands, errors, fatals;
};

/* Feeds data in pieces of the given sizes (0 ends the list: the rest at once). */
static void frame(const char *data, size_t len, const size_t *splits, size_t literal_max, struct frame_log *log)
{
    struct imap_reader r;
    imap_reader_init(&r, literal_max);
    memset(log, 0, sizeof *log);
    size_t pos = 0, k = 0;
    while (pos < len) {
        size_t piece = splits && splits[k] ? splits[k++] : len - pos;
        if (piece > len - pos)
            piece = len - pos;
        size_t off = 0;
        while (off < piece) {
            size_t used = 0;
            enum imap_read_result res = imap_reader_feed(&r, data + pos + off, piece - off, &used);
            assert_true(used <= piece - off);
            off += used;
            switch (res) {
            case IMAP_READ_MORE:
                assert_int_equal(off, piece);
                break;
            case IMAP_READ_CONTINUE:
                log->continues++;
                log->len += (size_t)snprintf(log->out + log->len, sizeof log->out - log->len, "[+]");
                break;
            case IMAP_READ_COMMAND:
                log->commands++;
                assert_int_equal(strlen(r.cmd) <= r.cmd_len, 1);
                memcpy(log->out + log->len, r.cmd, r.cmd_len);
                log->len += r.cmd_len;
                log->len += (size_t)snprintf(log->out + log->len, sizeof log->out - log->len, "|");
                break;
            case IMAP_READ_ERROR:
                log->errors++;
                log->len += (size_t)snprintf(log->out + log->len, sizeof log->out - log->len, "[E %s %s]",
                                             r.error_tag, r.error);
                break;
            case IMAP_READ_FATAL:
                log->fatals++;
                log->len += (size_t)snprintf(log->out + log->len, sizeof log->out - log->len, "[F %s]", r.error);
                imap_reader_free(&r);
                return;
            }
        }
        pos += piece;
    }
    imap_reader_free(&r);
}

static const char stream[] = "a1 NOOP\r\n"
                             "a2 LOGIN {5}\r\nb\0uk {3+}\r\nx y\r\n"
                             "a3 SEARCH SUBJECT {0}\r\n\r\n"
                             "a4 FETCH 1 BODY[]\n";
static const char stream_expected[] = "a1 NOOP|"
                                      "[+]a2 LOGIN {5}b\0uk {3+}x y|"
                                      "[+]a3 SEARCH SUBJECT {0}|"
                                      "a4 FETCH 1 BODY[]|";

static void check_stream(const struct frame_log *log)
{
    assert_int_equal(log->len, sizeof stream_expected - 1);
    assert_memory_equal(log->out, stream_expected, log->len);
    assert_int_equal(log->commands, 4);
    assert_int_equal(log->continues, 2);
}

static void test_frame_whole(void **state)
{
    (void)state;
    struct frame_log log;
    frame(stream, sizeof stream - 1, NULL, 0, &log);
    check_stream(&log);
}

static void test_frame_bytewise(void **state)
{
    (void)state;
    size_t ones[sizeof stream];
    for (size_t i = 0; i < sizeof stream; i++)
        ones[i] = 1;
    struct frame_log log;
    frame(stream, sizeof stream - 1, ones, 0, &log);
    check_stream(&log);
}

static void test_frame_random(void **state)
{
    (void)state;
    srand(7);
    for (int round = 0; round < 500; round++) {
        size_t splits[sizeof stream];
        for (size_t i = 0; i < sizeof stream; i++)
            splits[i] = 1 + (size_t)(rand() % 12);
        struct frame_log log;
        frame(stream, sizeof stream - 1, splits, 0, &log);
        check_stream(&log);
    }
}

static void test_frame_limits(void **state)
{
    (void)state;
    struct frame_log log;
    /* a synchronizing literal over the limit: refused before its bytes, the stream goes on */
    const char big[] = "x1 APPEND INBOX {100}\r\nx2 NOOP\r\n";
    frame(big, sizeof big - 1, NULL, 10, &log);
    assert_string_equal(log.out, "[E x1 Literal too large.]x2 NOOP|");
    /* a LITERAL+ over the limit: fatal */
    const char bigplus[] = "x1 APPEND INBOX {100+}\r\n0123456789";
    frame(bigplus, sizeof bigplus - 1, NULL, 10, &log);
    assert_int_equal(log.fatals, 1);
    /* an absurd announcement */
    const char absurd[] = "x1 LOGIN {99999999999999999999}\r\nx2 NOOP\r\n";
    frame(absurd, sizeof absurd - 1, NULL, 0, &log);
    assert_int_equal(log.commands, 2); /* not a literal (too many digits): a plain line */
    /* a line too long: one error, the rest of it dropped, the next command read */
    size_t n = IMAP_LINE_MAX + 100;
    char *longline = malloc(n + 32);
    memset(longline, 'A', n);
    memcpy(longline, "t9 ", 3);
    memcpy(longline + n, "\r\nt10 NOOP\r\n", 12);
    size_t splits[] = {1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 0};
    frame(longline, n + 12, splits, 0, &log);
    assert_string_equal(log.out, "[E t9 Command line too long.]t10 NOOP|");
    free(longline);
}

/* ---- the grammar --------------------------------------------------------------------------- */

static bool parse(const char *line, struct imap_cmd *cmd, const char **error)
{
    *error = NULL;
    return imap_cmd_parse(line, strlen(line), cmd, error);
}

static void test_simple_commands(void **state)
{
    (void)state;
    struct imap_cmd cmd;
    const char *error;
    static const struct {
        const char *line;
        enum imap_verb verb;
    } ok[] = {
        {"a CAPABILITY", IMAP_VERB_CAPABILITY}, {"a noop", IMAP_VERB_NOOP},
        {"A1.2 LOGOUT", IMAP_VERB_LOGOUT},      {"a STARTTLS", IMAP_VERB_STARTTLS},
        {"a CHECK", IMAP_VERB_CHECK},           {"a CLOSE", IMAP_VERB_CLOSE},
        {"a UNSELECT", IMAP_VERB_UNSELECT},     {"a EXPUNGE", IMAP_VERB_EXPUNGE},
        {"a IDLE", IMAP_VERB_IDLE},             {"a NAMESPACE", IMAP_VERB_NAMESPACE},
        {"a ID NIL", IMAP_VERB_ID},             {"a ID (\"name\" \"mutt\" \"version\" NIL)", IMAP_VERB_ID},
        {"a SELECT INBOX", IMAP_VERB_SELECT},   {"a EXAMINE \"inbox\"", IMAP_VERB_EXAMINE},
        {"a CREATE Archief", IMAP_VERB_CREATE}, {"a DELETE Archief", IMAP_VERB_DELETE},
        {"a SUBSCRIBE x", IMAP_VERB_SUBSCRIBE}, {"a UNSUBSCRIBE x", IMAP_VERB_UNSUBSCRIBE},
        {"a ENABLE UTF8=ACCEPT CONDSTORE", IMAP_VERB_ENABLE},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (!parse(ok[i].line, &cmd, &error))
            fail_msg("\"%s\": %s", ok[i].line, error);
        assert_int_equal(cmd.verb, ok[i].verb);
        imap_cmd_free(&cmd);
    }
    static const char *const bad[] = {
        "",           "a",          "a ",          " a NOOP",     "a NOOP x",   "a FOO",
        "a+ NOOP",    "a UID NOOP", "a UID",       "a SELECT",    "a ID (",      "a ID foo",
        "a NOOP  ",   "a\tNOOP",    "a ENABLE",    "a SELECT a b", "(a NOOP",    "a{1} NOOP",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i], &cmd, &error))
            fail_msg("\"%s\" parsed", bad[i]);
        assert_non_null(error);
        imap_cmd_free(&cmd);
    }
    /* the tag survives an error, for the tagged BAD */
    assert_false(parse("t77 FROB", &cmd, &error));
    assert_string_equal(cmd.tag, "t77");
    imap_cmd_free(&cmd);
}

static void test_login_strings(void **state)
{
    (void)state;
    struct imap_cmd cmd;
    const char *error;
    assert_true(parse("a LOGIN bouke \"geheim \\\"wacht\\\\woord\"", &cmd, &error));
    assert_string_equal(cmd.arg1, "bouke");
    assert_string_equal(cmd.arg2, "geheim \"wacht\\woord");
    imap_cmd_free(&cmd);
    const char lit[] = "a LOGIN {5+}b\0uke {3}x y";
    assert_true(imap_cmd_parse(lit, sizeof lit - 1, &cmd, &error));
    assert_int_equal(cmd.arg1_len, 5);
    assert_memory_equal(cmd.arg1, "b\0uke", 5);
    assert_string_equal(cmd.arg2, "x y");
    imap_cmd_free(&cmd);
    assert_false(parse("a LOGIN {10}abc", &cmd, &error));
    assert_string_equal(error, "Literal shorter than announced.");
    imap_cmd_free(&cmd);
    assert_false(parse("a LOGIN \"unterminated", &cmd, &error));
    imap_cmd_free(&cmd);
    assert_false(parse("a LOGIN \"bad\\x\" y", &cmd, &error));
    imap_cmd_free(&cmd);
    assert_true(parse("a AUTHENTICATE PLAIN AGJvdWtlAGdlaGVpbQ==", &cmd, &error));
    assert_string_equal(cmd.arg1, "PLAIN");
    assert_true(cmd.has_arg2);
    assert_string_equal(cmd.arg2, "AGJvdWtlAGdlaGVpbQ==");
    imap_cmd_free(&cmd);
    assert_true(parse("a AUTHENTICATE PLAIN", &cmd, &error));
    assert_false(cmd.has_arg2);
    imap_cmd_free(&cmd);
    assert_true(parse("a LIST \"\" *", &cmd, &error));
    assert_string_equal(cmd.arg1, "");
    assert_string_equal(cmd.arg2, "*");
    imap_cmd_free(&cmd);
    assert_true(parse("a LSUB \"\" IN%", &cmd, &error));
    assert_string_equal(cmd.arg2, "IN%");
    imap_cmd_free(&cmd);
    /* RFC 5258 extended LIST */
    assert_true(parse("a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"*\" RETURN (CHILDREN special-use)", &cmd, &error));
    assert_true(cmd.list_extended);
    assert_int_equal(cmd.list_select, IMAP_LIST_SEL_SUBSCRIBED | IMAP_LIST_SEL_RECURSIVEMATCH);
    assert_int_equal(cmd.list_return, IMAP_LIST_RET_CHILDREN | IMAP_LIST_RET_SPECIAL_USE);
    assert_string_equal(cmd.arg2, "*");
    imap_cmd_free(&cmd);
    assert_true(parse("a LIST () \"\" (INBOX \"Sent\" %/%) RETURN ()", &cmd, &error));
    assert_int_equal(cmd.list_select, 0);
    assert_string_equal(cmd.arg2, "INBOX");
    assert_int_equal(cmd.nitems, 2);
    assert_string_equal(cmd.items[0], "Sent");
    assert_string_equal(cmd.items[1], "%/%");
    imap_cmd_free(&cmd);
    assert_true(parse("a LIST (SPECIAL-USE) \"\" *", &cmd, &error));
    assert_int_equal(cmd.list_select, IMAP_LIST_SEL_SPECIAL_USE);
    imap_cmd_free(&cmd);
    assert_true(parse("a LIST \"\" \"%\" RETURN (SUBSCRIBED)", &cmd, &error));
    assert_int_equal(cmd.list_return, IMAP_LIST_RET_SUBSCRIBED);
    imap_cmd_free(&cmd);
    assert_false(parse("a LIST (RECURSIVEMATCH) \"\" *", &cmd, &error));
    assert_string_equal(error, "RECURSIVEMATCH needs another selection option.");
    imap_cmd_free(&cmd);
    assert_false(parse("a LIST (FOO) \"\" *", &cmd, &error));
    assert_string_equal(error, "Unsupported LIST option.");
    imap_cmd_free(&cmd);
    assert_false(parse("a LIST \"\" * RETURN (STATUS (MESSAGES))", &cmd, &error));
    assert_string_equal(error, "Unsupported LIST option.");
    imap_cmd_free(&cmd);
    assert_false(parse("a LIST \"\" * EXTRA", &cmd, &error));
    imap_cmd_free(&cmd);
    assert_false(parse("a LIST \"\" ()", &cmd, &error));
    imap_cmd_free(&cmd);
    assert_true(parse("a LIST \"\" *", &cmd, &error));
    assert_false(cmd.list_extended);
    imap_cmd_free(&cmd);
    assert_true(parse("a STATUS INBOX (MESSAGES uidnext UNSEEN)", &cmd, &error));
    assert_int_equal(cmd.nitems, 3);
    assert_string_equal(cmd.items[1], "UIDNEXT");
    imap_cmd_free(&cmd);
    assert_true(parse("a RENAME a b", &cmd, &error));
    assert_string_equal(cmd.arg2, "b");
    imap_cmd_free(&cmd);
    assert_true(parse("a APPEND INBOX (\\Seen) \"01-Jan-2026 10:00:00 +0000\" {3}abc", &cmd, &error));
    assert_int_equal(cmd.nflags, 1);
    assert_string_equal(cmd.arg2, "abc");
    imap_cmd_free(&cmd);
}

static void test_seqset(void **state)
{
    (void)state;
    struct imap_cmd cmd;
    const char *error;
    assert_true(parse("a FETCH 1,3:5,7:*,*:2,* FLAGS", &cmd, &error));
    assert_int_equal(cmd.set.n, 5);
    assert_int_equal(cmd.set.ranges[0].lo, 1);
    assert_int_equal(cmd.set.ranges[1].hi, 5);
    assert_int_equal(cmd.set.ranges[2].hi, IMAP_SEQ_STAR);
    assert_int_equal(cmd.set.ranges[3].lo, IMAP_SEQ_STAR);
    assert_int_equal(cmd.set.ranges[3].hi, 2);
    imap_cmd_free(&cmd);
    assert_true(parse("a UID FETCH 4294967295 UID", &cmd, &error));
    assert_true(cmd.uid);
    assert_int_equal(cmd.set.ranges[0].lo, 4294967295u);
    imap_cmd_free(&cmd);
    static const char *const bad[] = {
        "a FETCH 0 FLAGS",          "a FETCH 4294967296 FLAGS", "a FETCH 1: FLAGS", "a FETCH ,1 FLAGS",
        "a FETCH 1,,2 FLAGS",       "a FETCH 99999999999999999999999999 FLAGS",      "a FETCH x FLAGS",
        "a FETCH 1:2:3 FLAGS",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i], &cmd, &error))
            fail_msg("\"%s\" parsed", bad[i]);
        imap_cmd_free(&cmd);
    }
    /* too many ranges */
    char *many = malloc(IMAP_SEQ_RANGES_MAX * 4 + 64);
    size_t n = (size_t)sprintf(many, "a FETCH 1");
    for (int i = 0; i < IMAP_SEQ_RANGES_MAX + 1; i++)
        n += (size_t)sprintf(many + n, ",1");
    strcpy(many + n, " FLAGS");
    assert_false(parse(many, &cmd, &error));
    assert_string_equal(error, "Sequence set has too many ranges.");
    imap_cmd_free(&cmd);
    free(many);
    assert_true(parse("a UID EXPUNGE 3:5", &cmd, &error));
    assert_true(cmd.uid && cmd.verb == IMAP_VERB_EXPUNGE && cmd.set.n == 1);
    imap_cmd_free(&cmd);
}

static void test_fetch(void **state)
{
    (void)state;
    struct imap_cmd cmd;
    const char *error;
    assert_true(parse("a FETCH 1 ALL", &cmd, &error));
    assert_int_equal(cmd.natts, 4);
    assert_int_equal(cmd.atts[3].kind, IMAP_FETCH_ENVELOPE);
    imap_cmd_free(&cmd);
    assert_true(parse("a FETCH 1 full", &cmd, &error));
    assert_int_equal(cmd.natts, 5);
    assert_int_equal(cmd.atts[4].kind, IMAP_FETCH_BODY);
    imap_cmd_free(&cmd);
    assert_false(parse("a FETCH 1 (ALL)", &cmd, &error));
    imap_cmd_free(&cmd);
    assert_true(parse("a FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE BODYSTRUCTURE RFC822 RFC822.HEADER "
                      "RFC822.TEXT BODY ENVELOPE)",
                      &cmd, &error));
    assert_int_equal(cmd.natts, 10);
    assert_int_equal(cmd.atts[0].kind, IMAP_FETCH_UID);
    assert_int_equal(cmd.atts[7].kind, IMAP_FETCH_RFC822_TEXT);
    imap_cmd_free(&cmd);
    assert_true(parse("a FETCH 2 (BODY.PEEK[HEADER.FIELDS (From \"Subject\" Date)] BODY[]<10.20> "
                      "BODY[1.2.MIME] BODY[3.TEXT] BODY.PEEK[2] BODY[HEADER.FIELDS.NOT (Received)] BODY[TEXT]<0.1>)",
                      &cmd, &error));
    assert_int_equal(cmd.natts, 7);
    struct imap_fetch_att *a = cmd.atts;
    assert_true(a[0].peek);
    assert_int_equal(a[0].text, IMAP_SECTION_HEADER_FIELDS);
    assert_int_equal(a[0].nfields, 3);
    assert_string_equal(a[0].fields[1], "Subject");
    assert_false(a[1].peek);
    assert_int_equal(a[1].text, IMAP_SECTION_ALL);
    assert_true(a[1].partial);
    assert_int_equal(a[1].partial_offset, 10);
    assert_int_equal(a[1].partial_length, 20);
    assert_int_equal(a[2].nparts, 2);
    assert_int_equal(a[2].part[1], 2);
    assert_int_equal(a[2].text, IMAP_SECTION_MIME);
    assert_int_equal(a[3].nparts, 1);
    assert_int_equal(a[3].text, IMAP_SECTION_TEXT);
    assert_int_equal(a[4].nparts, 1);
    assert_int_equal(a[4].text, IMAP_SECTION_ALL);
    assert_int_equal(a[5].text, IMAP_SECTION_HEADER_FIELDS_NOT);
    assert_int_equal(a[6].partial_length, 1);
    imap_cmd_free(&cmd);
    static const char *const bad[] = {
        "a FETCH 1 BODY[MIME]",     "a FETCH 1 BODY[1.]",        "a FETCH 1 BODY[0]",
        "a FETCH 1 BODY[1",         "a FETCH 1 BODY[]<1>",       "a FETCH 1 BODY[]<1.0>",
        "a FETCH 1 BODY.PEEK",      "a FETCH 1 BODY[HEADER.FIELDS ()]", "a FETCH 1 BODY[HEADER.FIELDS]",
        "a FETCH 1 FOO",            "a FETCH 1 (FLAGS",          "a FETCH 1 (FLAGS  UID)",
        "a FETCH 1",                "a FETCH 1 BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17]",
        "a FETCH 1 BODY[HEADER.FIELDS (a:b)]", "a FETCH 1 BODY[1x]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i], &cmd, &error))
            fail_msg("\"%s\" parsed", bad[i]);
        imap_cmd_free(&cmd);
    }
}

static void test_store(void **state)
{
    (void)state;
    struct imap_cmd cmd;
    const char *error;
    assert_true(parse("a STORE 1:3 +FLAGS.SILENT (\\Seen \\Deleted $Label1)", &cmd, &error));
    assert_int_equal(cmd.store_mode, IMAP_STORE_ADD);
    assert_true(cmd.silent);
    assert_int_equal(cmd.nflags, 3);
    assert_string_equal(cmd.flags[2], "$Label1");
    imap_cmd_free(&cmd);
    assert_true(parse("a UID STORE 7 -FLAGS \\Flagged", &cmd, &error));
    assert_int_equal(cmd.store_mode, IMAP_STORE_REMOVE);
    assert_int_equal(cmd.nflags, 1);
    imap_cmd_free(&cmd);
    assert_true(parse("a STORE 1 FLAGS ()", &cmd, &error));
    assert_int_equal(cmd.store_mode, IMAP_STORE_REPLACE);
    assert_int_equal(cmd.nflags, 0);
    imap_cmd_free(&cmd);
    static const char *const bad[] = {
        "a STORE 1 FLAGS (\\Bogus)", "a STORE 1 *FLAGS (\\Seen)", "a STORE 1 FLAGS", "a STORE 1 LABELS (x)",
        "a STORE 1 FLAGS (\\Seen", "a STORE 1 FLAGS (\\*)",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i], &cmd, &error))
            fail_msg("\"%s\" parsed", bad[i]);
        imap_cmd_free(&cmd);
    }
}

/* RFC 7162 CONDSTORE: SELECT parameter, FETCH MODSEQ and CHANGEDSINCE, STORE UNCHANGEDSINCE,
 * SEARCH MODSEQ (with and without an entry name). */
static void test_condstore(void **state)
{
    (void)state;
    struct imap_cmd cmd;
    const char *error;
    assert_true(parse("a SELECT INBOX (CONDSTORE)", &cmd, &error));
    assert_true(cmd.condstore);
    assert_string_equal(cmd.arg1, "INBOX");
    imap_cmd_free(&cmd);
    assert_true(parse("a EXAMINE INBOX", &cmd, &error));
    assert_false(cmd.condstore);
    imap_cmd_free(&cmd);
    assert_true(parse("a FETCH 1:* (FLAGS MODSEQ) (CHANGEDSINCE 12345)", &cmd, &error));
    assert_int_equal(cmd.natts, 2);
    assert_int_equal(cmd.atts[1].kind, IMAP_FETCH_MODSEQ);
    assert_int_equal(cmd.changedsince, 12345);
    imap_cmd_free(&cmd);
    assert_true(parse("a UID FETCH 1:* FLAGS (changedsince 9223372036854775807)", &cmd, &error));
    assert_int_equal(cmd.changedsince, 9223372036854775807ULL);
    imap_cmd_free(&cmd);
    assert_true(parse("a STORE 1:3 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)", &cmd, &error));
    assert_true(cmd.has_unchangedsince);
    assert_int_equal(cmd.unchangedsince, 320162338);
    assert_int_equal(cmd.store_mode, IMAP_STORE_ADD);
    assert_true(cmd.silent);
    assert_int_equal(cmd.nflags, 1);
    imap_cmd_free(&cmd);
    assert_true(parse("a STORE 1 (UNCHANGEDSINCE 0) FLAGS ()", &cmd, &error));
    assert_true(cmd.has_unchangedsince);
    assert_int_equal(cmd.unchangedsince, 0);
    imap_cmd_free(&cmd);
    assert_true(parse("a SEARCH MODSEQ 620162338", &cmd, &error));
    assert_int_equal(cmd.keys[1].type, IMAP_SK_MODSEQ);
    assert_int_equal(cmd.keys[1].modseq, 620162338);
    imap_cmd_free(&cmd);
    assert_true(parse("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338 UNSEEN", &cmd, &error));
    assert_int_equal(cmd.keys[1].type, IMAP_SK_MODSEQ);
    assert_int_equal(cmd.keys[1].modseq, 620162338);
    assert_int_equal(cmd.keys[2].type, IMAP_SK_UNFLAG);
    imap_cmd_free(&cmd);
    static const char *const bad[] = {
        "a SELECT INBOX (QRESYNC)", "a SELECT INBOX (CONDSTORE", "a SELECT INBOX CONDSTORE",
        "a FETCH 1 FLAGS (CHANGEDSINCE 0)", "a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)",
        "a FETCH 1 FLAGS (VANISHED)", "a FETCH 1 FLAGS (CHANGEDSINCE 5", "a FETCH 1 FLAGS CHANGEDSINCE 5",
        "a STORE 1 (UNCHANGEDSINCE) FLAGS ()", "a STORE 1 (UNCHANGEDSINCE 5 FLAGS ()", "a STORE 1 (FOO 5) FLAGS ()",
        "a STORE 1 (UNCHANGEDSINCE 5)FLAGS ()", "a SEARCH MODSEQ", "a SEARCH MODSEQ \"/flags/x\" bogus 5",
        "a SEARCH MODSEQ \"/flags/x\" all",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i], &cmd, &error))
            fail_msg("\"%s\" parsed", bad[i]);
        imap_cmd_free(&cmd);
    }
}

/* RFC 7162 QRESYNC: SELECT/EXAMINE (QRESYNC ...) and UID FETCH (CHANGEDSINCE n VANISHED). */
static void test_qresync(void **state)
{
    (void)state;
    struct imap_cmd cmd;
    const char *error;
    /* RFC 7162 3.2.5's first example */
    assert_true(parse("A03 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))", &cmd, &error));
    assert_true(cmd.qresync);
    assert_false(cmd.condstore);
    assert_int_equal(cmd.qresync_uidvalidity, 67890007);
    assert_int_equal(cmd.qresync_modseq, 20050715194045000ULL);
    assert_int_equal(cmd.qresync_known_uids.n, 3);
    assert_int_equal(cmd.qresync_known_uids.ranges[1].lo, 43);
    assert_int_equal(cmd.qresync_known_uids.ranges[1].hi, 211);
    assert_int_equal(cmd.qresync_match_seqs.n, 0);
    imap_cmd_free(&cmd);
    /* and the one with sequence match data (13 numbers, 13 UIDs) */
    assert_true(parse("B04 EXAMINE INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 "
                      "15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))",
                      &cmd, &error));
    assert_int_equal(cmd.verb, IMAP_VERB_EXAMINE);
    assert_int_equal(cmd.qresync_known_uids.n, 1);
    assert_int_equal(cmd.qresync_known_uids.ranges[0].hi, 29997);
    assert_int_equal(cmd.qresync_match_seqs.n, 4);
    assert_int_equal(cmd.qresync_match_uids.n, 13);
    assert_int_equal(cmd.qresync_match_seqs.ranges[3].lo, 9990);
    assert_int_equal(cmd.qresync_match_seqs.ranges[3].hi, 9999);
    imap_cmd_free(&cmd);
    /* without known-uids, with match data; a reversed range is made ascending */
    assert_true(parse("a SELECT INBOX (QRESYNC (1 5 (2:1 10:11)))", &cmd, &error));
    assert_int_equal(cmd.qresync_known_uids.n, 0);
    assert_int_equal(cmd.qresync_match_seqs.ranges[0].lo, 1);
    assert_int_equal(cmd.qresync_match_seqs.ranges[0].hi, 2);
    imap_cmd_free(&cmd);
    /* MODSEQ 0 (a client that never saw one) and the widest set: kept as one range */
    assert_true(parse("a select inbox (condstore qresync (4294967295 0 1:4294967295))", &cmd, &error));
    assert_true(cmd.condstore);
    assert_true(cmd.qresync);
    assert_int_equal(cmd.qresync_uidvalidity, 4294967295U);
    assert_int_equal(cmd.qresync_modseq, 0);
    assert_int_equal(cmd.qresync_known_uids.n, 1);
    assert_int_equal(cmd.qresync_known_uids.ranges[0].hi, 4294967295U);
    imap_cmd_free(&cmd);
    assert_true(parse("a SELECT INBOX (QRESYNC (7 9223372036854775807) CONDSTORE)", &cmd, &error));
    assert_int_equal(cmd.qresync_modseq, 9223372036854775807ULL);
    assert_true(cmd.condstore);
    imap_cmd_free(&cmd);
    /* RFC 7162 3.2.6's example, and the modifiers the other way round */
    assert_true(parse("s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)", &cmd, &error));
    assert_true(cmd.uid);
    assert_true(cmd.vanished);
    assert_int_equal(cmd.changedsince, 12345);
    imap_cmd_free(&cmd);
    assert_true(parse("a UID FETCH 1:* FLAGS (vanished changedsince 1)", &cmd, &error));
    assert_true(cmd.vanished);
    assert_int_equal(cmd.changedsince, 1);
    imap_cmd_free(&cmd);
    assert_true(parse("a UID FETCH 1:* FLAGS (CHANGEDSINCE 1)", &cmd, &error));
    assert_false(cmd.vanished);
    imap_cmd_free(&cmd);
    static const char *const bad[] = {
        "a SELECT INBOX (QRESYNC)",
        "a SELECT INBOX (QRESYNC ())",
        "a SELECT INBOX (QRESYNC (0 5))",
        "a SELECT INBOX (QRESYNC (4294967296 5))",
        "a SELECT INBOX (QRESYNC (1))",
        "a SELECT INBOX (QRESYNC (1 x))",
        "a SELECT INBOX (QRESYNC (1 9223372036854775808))",
        "a SELECT INBOX (QRESYNC (1 5 ))",
        "a SELECT INBOX (QRESYNC  (1 5))",
        "a SELECT INBOX (QRESYNC (1 5 1:*))",
        "a SELECT INBOX (QRESYNC (1 5 *))",
        "a SELECT INBOX (QRESYNC (1 5 0))",
        "a SELECT INBOX (QRESYNC (1 5 1,,2))",
        "a SELECT INBOX (QRESYNC (1 5 1,2 (1,2 3)))",
        "a SELECT INBOX (QRESYNC (1 5 (1:* 1:2)))",
        "a SELECT INBOX (QRESYNC (1 5 (3,1 5,6)))",
        "a SELECT INBOX (QRESYNC (1 5 (1,2 6,5)))",
        "a SELECT INBOX (QRESYNC (1 5 (1:3,3 4:7)))",
        "a SELECT INBOX (QRESYNC (1 5 (1 2))",
        "a SELECT INBOX (QRESYNC (1 5 (1 2)(3 4)))",
        "a SELECT INBOX (QRESYNC (1 5 (1 2) (3 4)))",
        "a SELECT INBOX (QRESYNC (1 5 1,2 (1 2) x))",
        "a SELECT INBOX (QRESYNC (1 5 (1)))",
        "a SELECT INBOX (QRESYNC (1 5) QRESYNC (1 5))",
        "a SELECT INBOX (CONDSTORE CONDSTORE)",
        "a SELECT INBOX (CONDSTORE QRESYNC)",
        "a SELECT INBOX (QRESYNC (1 5)",
        "a SELECT INBOX (QRESYNC (1 5)) x",
        "a SELECT INBOX ()",
        "a FETCH 1 FLAGS (CHANGEDSINCE 5 VANISHED)",
        "a UID FETCH 1 FLAGS (VANISHED)",
        "a UID FETCH 1 FLAGS (CHANGEDSINCE 5 VANISHED VANISHED)",
        "a UID FETCH 1 FLAGS (CHANGEDSINCE 5 CHANGEDSINCE 6)",
        "a UID FETCH 1 FLAGS (CHANGEDSINCE 5 )",
        "a UID FETCH 1 FLAGS (CHANGEDSINCE 5  VANISHED)",
        "a UID FETCH 1 FLAGS ()",
        "a UID FETCH 1 FLAGS (VANISHED CHANGEDSINCE 0)",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i], &cmd, &error))
            fail_msg("\"%s\" parsed", bad[i]);
        assert_non_null(error);
        assert_string_equal(cmd.tag, "a");
        imap_cmd_free(&cmd);
    }
    /* more ranges than IMAP_SEQ_RANGES_MAX in known-uids: refused, not grown */
    size_t cap = 64 + (IMAP_SEQ_RANGES_MAX + 1) * 12;
    char *line = malloc(cap);
    size_t len = (size_t)snprintf(line, cap, "a SELECT INBOX (QRESYNC (1 5 ");
    for (unsigned i = 0; i <= IMAP_SEQ_RANGES_MAX; i++)
        len += (size_t)snprintf(line + len, cap - len, "%s%u", i ? "," : "", 2 * i + 1);
    snprintf(line + len, cap - len, "))");
    assert_false(parse(line, &cmd, &error));
    assert_string_equal(error, "Sequence set has too many ranges.");
    imap_cmd_free(&cmd);
    free(line);
}

/* QRESYNC commands framed whole and byte by byte parse the same. */
static void test_qresync_framed(void **state)
{
    (void)state;
    static const char qstream[] = "q1 ENABLE QRESYNC\r\n"
                                  "q2 SELECT {5}\r\nINBOX (QRESYNC (3 42 1:9,12 (2,4 2,5)))\r\n"
                                  "q3 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 40 VANISHED)\r\n";
    static const char expected[] = "q1 ENABLE QRESYNC|"
                                   "[+]q2 SELECT {5}INBOX (QRESYNC (3 42 1:9,12 (2,4 2,5)))|"
                                   "q3 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 40 VANISHED)|";
    size_t ones[sizeof qstream];
    for (size_t i = 0; i < sizeof qstream; i++)
        ones[i] = 1;
    for (int pass = 0; pass < 2; pass++) {
        struct frame_log log;
        frame(qstream, sizeof qstream - 1, pass ? ones : NULL, 0, &log);
        assert_int_equal(log.commands, 3);
        assert_int_equal(log.len, sizeof expected - 1);
        assert_memory_equal(log.out, expected, log.len);
    }
    /* the framed SELECT (the literal's bytes follow its announcement) parses */
    struct imap_cmd cmd;
    const char *error;
    static const char framed[] = "q2 SELECT {5}INBOX (QRESYNC (3 42 1:9,12 (2,4 2,5)))";
    assert_true(imap_cmd_parse(framed, sizeof framed - 1, &cmd, &error));
    assert_true(cmd.qresync);
    assert_string_equal(cmd.arg1, "INBOX");
    assert_int_equal(cmd.qresync_uidvalidity, 3);
    assert_int_equal(cmd.qresync_modseq, 42);
    assert_int_equal(cmd.qresync_known_uids.n, 2);
    assert_int_equal(cmd.qresync_match_uids.ranges[1].lo, 5);
    imap_cmd_free(&cmd);
}

static void test_search(void **state)
{
    (void)state;
    struct imap_cmd cmd;
    const char *error;
    assert_true(parse("a SEARCH CHARSET UTF-8 OR (FROM sjoerd SEEN) NOT UID 3:* 1:5 SINCE 1-Feb-2026 "
                      "HEADER X-Spam yes LARGER 100 KEYWORD $Junk",
                      &cmd, &error));
    /* AND[5]: OR AND[2] FROM SEEN NOT UID ; SEQSET ; SINCE ; HEADER ; LARGER ; KEYWORD */
    assert_int_equal(cmd.keys[0].type, IMAP_SK_AND);
    assert_int_equal(cmd.keys[0].nchildren, 6);
    assert_int_equal(cmd.keys[1].type, IMAP_SK_OR);
    assert_int_equal(cmd.keys[2].type, IMAP_SK_AND);
    assert_int_equal(cmd.keys[2].nchildren, 2);
    assert_int_equal(cmd.keys[3].type, IMAP_SK_HEADER);
    assert_string_equal(cmd.keys[3].str, "From");
    assert_string_equal(cmd.keys[3].str2, "sjoerd");
    assert_int_equal(cmd.keys[4].type, IMAP_SK_FLAG);
    assert_string_equal(cmd.keys[4].str, "\\Seen");
    assert_int_equal(cmd.keys[5].type, IMAP_SK_NOT);
    assert_int_equal(cmd.keys[6].type, IMAP_SK_UID);
    assert_int_equal(cmd.keys[6].set.ranges[0].hi, IMAP_SEQ_STAR);
    assert_int_equal(cmd.keys[7].type, IMAP_SK_SEQSET);
    assert_int_equal(cmd.keys[8].type, IMAP_SK_SINCE);
    assert_int_equal((long long)cmd.keys[8].date, 1769904000LL); /* 2026-02-01 00:00 UTC */
    assert_string_equal(cmd.keys[9].str, "X-Spam");
    assert_string_equal(cmd.keys[9].str2, "yes");
    assert_int_equal(cmd.keys[10].number, 100);
    assert_string_equal(cmd.keys[11].str, "$Junk");
    assert_int_equal(cmd.nkeys, 12);
    imap_cmd_free(&cmd);
    assert_true(parse("a UID SEARCH UNSEEN", &cmd, &error));
    assert_int_equal(cmd.keys[1].type, IMAP_SK_UNFLAG);
    imap_cmd_free(&cmd);
    assert_true(parse("a SEARCH ON \"5-Mar-2026\" BEFORE 15-mar-2026 TEXT \"hallo wereld\" BODY x", &cmd, &error));
    imap_cmd_free(&cmd);
    static const char *const bad[] = {
        "a SEARCH",          "a SEARCH FOO",        "a SEARCH OR SEEN",    "a SEARCH NOT",
        "a SEARCH SINCE 32-Jan-2026", "a SEARCH SINCE 1-Foo-2026", "a SEARCH (SEEN", "a SEARCH ()",
        "a SEARCH CHARSET KOI8-R SEEN", "a SEARCH LARGER x", "a SEARCH FROM", "a SEARCH SEEN  ",
        "a SEARCH (((((((((((((((((((SEEN)))))))))))))))))))",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i], &cmd, &error))
            fail_msg("\"%s\" parsed", bad[i]);
        imap_cmd_free(&cmd);
    }
    assert_false(parse("a SEARCH CHARSET KOI8-R SEEN", &cmd, &error));
    assert_string_equal(error, "[BADCHARSET (US-ASCII UTF-8)] Unsupported charset.");
    imap_cmd_free(&cmd);
}

static void test_date(void **state)
{
    (void)state;
    time_t t;
    assert_true(imap_parse_date("1-Jan-1970", 10, &t));
    assert_int_equal((long long)t, 0);
    assert_true(imap_parse_date("29-Feb-2028", 11, &t));
    assert_false(imap_parse_date("1-Jan-70", 8, &t));
    assert_false(imap_parse_date("0-Jan-2026", 10, &t));
    assert_false(imap_parse_date("001-Jan-2026", 12, &t));
    assert_true(imap_parse_datetime("28-Nov-2026 10:00:00 +0100", 26, &t));
    assert_int_equal((long long)t, 1795856400LL); /* 09:00 UTC */
    assert_true(imap_parse_datetime(" 5-Jan-2026 01:02:03 -0030", 26, &t));
    assert_int_equal((long long)t, 1767576723LL);
    assert_false(imap_parse_datetime("28-Nov-2026 24:00:00 +0100", 26, &t));
    assert_false(imap_parse_datetime("28-Nov-2026 10:00:00 0100", 25, &t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_whole),   cmocka_unit_test(test_frame_bytewise),
        cmocka_unit_test(test_frame_random),  cmocka_unit_test(test_frame_limits),
        cmocka_unit_test(test_simple_commands), cmocka_unit_test(test_login_strings),
        cmocka_unit_test(test_seqset),        cmocka_unit_test(test_fetch),
        cmocka_unit_test(test_store),         cmocka_unit_test(test_search),
        cmocka_unit_test(test_date),          cmocka_unit_test(test_condstore),
        cmocka_unit_test(test_qresync),       cmocka_unit_test(test_qresync_framed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
