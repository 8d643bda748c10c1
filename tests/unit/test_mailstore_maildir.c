/*
 * Unit tests for reference/mailstore's Maildir back-end: scan of new/ and cur/, UIDs kept
 * across rescans, sessions and mutt-style renames, flags from the ":2," info, STORE renames,
 * expunge unlinks, append into cur/ with flags and mtime, SELECT moving new/ to cur/, a file
 * vanishing before it is read, a lost index (new UIDVALIDITY), RFC822.SIZE in CRLF; keywords
 * as Dovecot's letters (dovecot-keywords), more keywords than letters, an older index's
 * keywords moved into the names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "mailstore/mailstore.h"
#include "mbox_flags.h"
#include "mbox_read.h"

#define A "Subject: one\n\nbody one\nFrom the start\n>From quoted\n"
#define B "Subject: two\n\nbody two\n"
#define C "Subject: three\n\nno final newline"

struct fixture {
    char dir[64];
    char md[128];
};

static void write_at(const struct fixture *f, const char *sub, const char *name, const char *text, time_t mtime)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s", f->md, sub, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, text, strlen(text)), 0);
    if (mtime) {
        struct timespec t[2] = {{.tv_sec = mtime}, {.tv_sec = mtime}};
        assert_int_equal(futimens(fd, t), 0);
    }
    close(fd);
}

static void move(const struct fixture *f, const char *from, const char *to)
{
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/%s", f->md, from);
    snprintf(b, sizeof b, "%s/%s", f->md, to);
    assert_int_equal(rename(a, b), 0);
}

static bool exists(const struct fixture *f, const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", f->md, rel);
    return access(p, F_OK) == 0;
}

/* The number of entries (not dot files) in sub. */
static size_t count_in(const struct fixture *f, const char *sub)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", f->md, sub);
    DIR *d = opendir(p);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_maildir.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->md, sizeof f->md, "%s/maildir/sjoerd", f->dir);
    char p[200];
    static const char *subs[] = {"tmp", "new", "cur"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", f->md, subs[i]);
        assert_int_equal(fs_mkdir_p(p, 0700), 0);
    }
    mailstore_cache_clear();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    mailstore_cache_clear();
    free(f);
    return 0;
}

static void open_ok(struct fixture *f, struct mailstore *ms, size_t n)
{
    const char *error = NULL;
    assert_int_equal(mailstore_open_inbox(ms, f->dir, "sjoerd", true, &error), MAILSTORE_OK);
    assert_true(ms->maildir);
    assert_int_equal(ms->nmsgs, n);
}

static char *wire_of(struct mailstore *ms, size_t i, enum mailstore_result *r)
{
    struct buf raw, wire;
    const char *error = NULL;
    buf_init(&raw, 0);
    buf_init(&wire, 0);
    *r = mailstore_read(ms, i, &raw, &error);
    if (*r == MAILSTORE_OK)
        mbox_export(raw.data ? raw.data : "", raw.len, 0, -1, &wire);
    buf_append_char(&wire, '\0');
    buf_free(&raw);
    return buf_steal(&wire);
}

static void test_scan_sizes_and_read(void **state)
{
    struct fixture *f = *state;
    write_at(f, "new", "1000.Q1_0.host", A, 1000);
    write_at(f, "cur", "999.Q0_0.host:2,S", B, 999);
    write_at(f, "cur", ".hidden", B, 0);
    write_at(f, "tmp", "1001.Q2_0.host", C, 0); /* tmp/ is not mail */
    struct mailstore ms;
    open_ok(f, &ms, 2);
    /* new files get UIDs in delivery order (mtime): cur's B is older */
    assert_int_equal(ms.msgs[0].uid, 1);
    assert_int_equal(ms.msgs[1].uid, 2);
    assert_int_equal(ms.msgs[0].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_SEEN);
    assert_int_equal(ms.msgs[1].flags & MBOX_FLAGS_IMAP, 0);
    assert_int_equal(ms.msgs[1].internaldate, 1000);
    enum mailstore_result r;
    char *w = wire_of(&ms, 1, &r);
    assert_int_equal(r, MAILSTORE_OK);
    /* the file's bytes, CRLF, "From " lines untouched both ways */
    assert_string_equal(w, "Subject: one\r\n\r\nbody one\r\nFrom the start\r\n>From quoted\r\n");
    assert_int_equal(ms.msgs[1].size, strlen(w));
    free(w);
    w = wire_of(&ms, 0, &r);
    assert_int_equal(ms.msgs[0].size, strlen(w));
    free(w);
    assert_true(exists(f, "new/1000.Q1_0.host")); /* opening (EXAMINE, POP3) moves nothing */
    mailstore_close(&ms);
}

static void test_uids_kept_across_sessions_and_renames(void **state)
{
    struct fixture *f = *state;
    write_at(f, "new", "1.Q1_0.h", A, 1);
    write_at(f, "new", "2.Q2_0.h", B, 2);
    struct mailstore ms;
    open_ok(f, &ms, 2);
    uint32_t validity = ms.uidvalidity;
    mailstore_close(&ms);
    mailstore_cache_clear(); /* a new process */
    /* mutt reads the first and flags the second: new/ -> cur/ with info */
    move(f, "new/1.Q1_0.h", "cur/1.Q1_0.h:2,S");
    move(f, "new/2.Q2_0.h", "cur/2.Q2_0.h:2,FS");
    write_at(f, "new", "3.Q3_0.h", C, 3);
    open_ok(f, &ms, 3);
    assert_int_equal(ms.uidvalidity, validity);
    assert_int_equal(ms.msgs[0].uid, 1);
    assert_int_equal(ms.msgs[1].uid, 2);
    assert_int_equal(ms.msgs[2].uid, 3);
    assert_int_equal(ms.msgs[0].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_SEEN);
    assert_int_equal(ms.msgs[1].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_SEEN | MBOX_FLAG_FLAGGED);
    unsigned long long hms = ms.highestmodseq;
    /* a rename while the session is open: noticed at the next refresh, with a new MODSEQ */
    move(f, "cur/1.Q1_0.h:2,S", "cur/1.Q1_0.h:2,RS");
    assert_true(mailstore_changed(&ms));
    const char *error = NULL;
    assert_int_equal(mailstore_refresh(&ms, &error), MAILSTORE_OK);
    assert_int_equal(ms.msgs[0].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_SEEN | MBOX_FLAG_ANSWERED);
    assert_true(ms.msgs[0].modseq > hms);
    assert_true(ms.highestmodseq > hms);
    mailstore_close(&ms);
}

static void test_store_renames(void **state)
{
    struct fixture *f = *state;
    write_at(f, "cur", "1.Q1_0.h:2,P", A, 1);
    write_at(f, "new", "2.Q2_0.h", B, 2);
    struct mailstore ms;
    open_ok(f, &ms, 2);
    const char *error = NULL;
    uint32_t uids[] = {1, 2};
    const char *kw[] = {"$Label1"};
    assert_int_equal(mailstore_store(&ms, uids, 2, MAILSTORE_ADD, MBOX_FLAG_SEEN | MBOX_FLAG_DELETED, kw, 1, &error),
                     MAILSTORE_OK);
    /* P (passed) kept; the new/ one moved into cur/; $Label1 got letter a (dovecot-keywords) */
    assert_true(exists(f, "cur/1.Q1_0.h:2,PSTa"));
    assert_true(exists(f, "cur/2.Q2_0.h:2,STa"));
    assert_int_equal(count_in(f, "new"), 0);
    assert_int_equal(ms.msgs[0].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_SEEN | MBOX_FLAG_DELETED);
    int k = mailstore_keyword_index(&ms, "$Label1");
    assert_true(k >= 0);
    assert_true(ms.msgs[1].keywords & (1u << k));
    uint32_t one = 1;
    assert_int_equal(mailstore_store(&ms, &one, 1, MAILSTORE_REMOVE, MBOX_FLAG_DELETED, NULL, 0, &error), MAILSTORE_OK);
    assert_true(exists(f, "cur/1.Q1_0.h:2,PSa"));
    mailstore_close(&ms);
    mailstore_cache_clear();
    /* keywords and flags in the names (and the index) */
    open_ok(f, &ms, 2);
    k = mailstore_keyword_index(&ms, "$Label1");
    assert_true(k >= 0);
    assert_true(ms.msgs[0].keywords & (1u << k));
    assert_int_equal(ms.msgs[0].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_SEEN);
    /* UNCHANGEDSINCE: a message changed since is left alone and reported */
    uint32_t *modified = NULL;
    size_t nmod = 0;
    assert_int_equal(mailstore_store_if(&ms, uids, 2, MAILSTORE_ADD, MBOX_FLAG_FLAGGED, NULL, 0, 1, &modified, &nmod,
                                        &error),
                     MAILSTORE_OK);
    assert_int_equal(nmod, 2);
    free(modified);
    assert_true(exists(f, "cur/1.Q1_0.h:2,PSa"));
    mailstore_close(&ms);
}

static char *read_text(const char *path)
{
    char *data = NULL;
    size_t len = 0;
    if (fs_read_file(path, 1 << 20, &data, &len) < 0)
        return NULL;
    return data;
}

static uint32_t kw_bits(const struct mailstore *ms, const char *const *names, size_t n)
{
    uint32_t bits = 0;
    for (size_t i = 0; i < n; i++) {
        int b = mailstore_keyword_index(ms, names[i]);
        assert_true(b >= 0);
        bits |= 1u << b;
    }
    return bits;
}

/* Dovecot's keyword letters: read from names through dovecot-keywords, written the same way. */
static void test_keyword_letters(void **state)
{
    struct fixture *f = *state;
    char path[512];
    snprintf(path, sizeof path, "%s/dovecot-keywords", f->md);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("0 Junk\n1 $Forwarded\n", fp);
    fclose(fp);
    write_at(f, "cur", "1.Q1_0.h:2,Sa", A, 1);
    write_at(f, "cur", "2.Q2_0.h:2,b", B, 2);
    write_at(f, "cur", "3.Q3_0.h:2,c", C, 3); /* c: a letter dovecot-keywords does not name */
    struct mailstore ms;
    open_ok(f, &ms, 3);
    const char *junk[] = {"Junk"}, *fwd[] = {"$Forwarded"}, *work[] = {"Work"};
    assert_int_equal(ms.msgs[0].keywords, kw_bits(&ms, junk, 1));
    assert_int_equal(ms.msgs[0].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_SEEN);
    assert_int_equal(ms.msgs[1].keywords, kw_bits(&ms, fwd, 1));
    assert_int_equal(ms.msgs[2].keywords, 0);
    /* a new keyword: the lowest letter neither named nor found in a name (not c) */
    const char *error = NULL;
    uint32_t three = 3, one = 1;
    assert_int_equal(mailstore_store(&ms, &three, 1, MAILSTORE_ADD, MBOX_FLAG_FLAGGED, work, 1, &error), MAILSTORE_OK);
    assert_true(exists(f, "cur/3.Q3_0.h:2,Fcd")); /* c kept as it was */
    char *text = read_text(path);
    assert_string_equal(text, "0 Junk\n1 $Forwarded\n3 Work\n");
    free(text);
    /* keyword removal and a system flag: one rename */
    assert_int_equal(mailstore_store(&ms, &one, 1, MAILSTORE_SET, MBOX_FLAG_ANSWERED, fwd, 1, &error), MAILSTORE_OK);
    assert_true(exists(f, "cur/1.Q1_0.h:2,Rb"));
    /* Dovecot (another program) takes $Forwarded off and sets Junk: seen at the next refresh */
    unsigned long long hms = ms.highestmodseq;
    move(f, "cur/1.Q1_0.h:2,Rb", "cur/1.Q1_0.h:2,Ra");
    assert_int_equal(mailstore_refresh(&ms, &error), MAILSTORE_OK);
    assert_int_equal(ms.msgs[0].keywords, kw_bits(&ms, junk, 1));
    assert_true(ms.msgs[0].modseq > hms);
    mailstore_close(&ms);
    /* a lost index: keywords come back from the names */
    snprintf(path, sizeof path, "%s/index/sjoerd/INBOX", f->dir);
    assert_int_equal(unlink(path), 0);
    char jpath[600];
    snprintf(jpath, sizeof jpath, "%s.journal", path);
    (void)unlink(jpath);
    mailstore_cache_clear();
    open_ok(f, &ms, 3);
    assert_int_equal(ms.msgs[0].keywords, kw_bits(&ms, junk, 1));
    assert_int_equal(ms.msgs[2].keywords, kw_bits(&ms, work, 1));
    mailstore_close(&ms);
}

/* More keywords than letters: the first 26 in names, the rest in the index alone. */
static void test_keyword_letters_run_out(void **state)
{
    struct fixture *f = *state;
    write_at(f, "cur", "1.Q1_0.h:2,", A, 1);
    struct mailstore ms;
    open_ok(f, &ms, 1);
    char names[30][16];
    const char *kw[30];
    for (int i = 0; i < 30; i++) {
        snprintf(names[i], sizeof names[i], "kw%02d", i);
        kw[i] = names[i];
    }
    const char *error = NULL;
    uint32_t one = 1;
    assert_int_equal(mailstore_store(&ms, &one, 1, MAILSTORE_ADD, 0, kw, 30, &error), MAILSTORE_OK);
    assert_true(exists(f, "cur/1.Q1_0.h:2,abcdefghijklmnopqrstuvwxyz"));
    uint32_t all = ms.msgs[0].keywords;
    assert_int_equal(all, kw_bits(&ms, kw, 30));
    mailstore_close(&ms);
    mailstore_cache_clear();
    open_ok(f, &ms, 1);
    assert_int_equal(ms.msgs[0].keywords, kw_bits(&ms, kw, 30));
    /* taking one with a letter and one without off: the letter goes, the journal has the other */
    const char *off[] = {"kw00", "kw29"};
    assert_int_equal(mailstore_store(&ms, &one, 1, MAILSTORE_REMOVE, 0, off, 2, &error), MAILSTORE_OK);
    assert_true(exists(f, "cur/1.Q1_0.h:2,bcdefghijklmnopqrstuvwxyz"));
    mailstore_close(&ms);
    mailstore_cache_clear();
    open_ok(f, &ms, 1);
    assert_int_equal(ms.msgs[0].keywords, kw_bits(&ms, kw + 1, 28));
    mailstore_close(&ms);
}

/* An index of format 1 (keywords only there): read, and the keywords move into the names. */
static void test_keywords_from_an_older_index(void **state)
{
    struct fixture *f = *state;
    write_at(f, "cur", "1.Q1_0.h:2,S", A, 1);
    write_at(f, "cur", "2.Q2_0.h:2,", B, 2);
    char path[512];
    snprintf(path, sizeof path, "%s/index/sjoerd", f->dir);
    assert_int_equal(fs_mkdir_p(path, 0700), 0);
    snprintf(path, sizeof path, "%s/index/sjoerd/INBOX", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "zolder-maildir-index 1 1234 3 7\nkeywords Oud Klus\n"
                "1 5 8 1 %zu 99 4 1 1.Q1_0.h\n2 6 0 3 %zu 98 3 2 2.Q2_0.h\n",
            strlen(A), strlen(B));
    fclose(fp);
    struct mailstore ms;
    open_ok(f, &ms, 2);
    assert_int_equal(ms.uidvalidity, 1234);
    assert_int_equal(ms.msgs[0].size, 99); /* as the index has it: not measured again */
    const char *oud[] = {"Oud"}, *both[] = {"Oud", "Klus"};
    assert_int_equal(ms.msgs[0].keywords, kw_bits(&ms, oud, 1));
    assert_int_equal(ms.msgs[1].keywords, kw_bits(&ms, both, 2));
    assert_true(exists(f, "cur/1.Q1_0.h:2,Sa"));
    assert_true(exists(f, "cur/2.Q2_0.h:2,ab"));
    mailstore_close(&ms);
    mailstore_cache_clear();
    open_ok(f, &ms, 2);
    assert_int_equal(ms.msgs[1].keywords, kw_bits(&ms, both, 2));
    mailstore_close(&ms);
}

static void test_expunge_and_vanished(void **state)
{
    struct fixture *f = *state;
    write_at(f, "cur", "1.Q1_0.h:2,S", A, 1);
    write_at(f, "cur", "2.Q2_0.h:2,", B, 2);
    write_at(f, "cur", "3.Q3_0.h:2,", C, 3);
    struct mailstore ms;
    open_ok(f, &ms, 3);
    const char *error = NULL;
    size_t removed = 0;
    uint32_t two = 2;
    assert_int_equal(mailstore_expunge(&ms, &two, 1, &removed, &error), MAILSTORE_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(ms.nmsgs, 2);
    assert_false(exists(f, "cur/2.Q2_0.h:2,"));
    /* another program removes 3 behind our back: reading it says GONE, 1 still reads */
    struct mailstore_msg m3 = ms.msgs[1];
    char path[512];
    snprintf(path, sizeof path, "%s/cur/3.Q3_0.h:2,", f->md);
    assert_int_equal(unlink(path), 0);
    struct buf raw;
    buf_init(&raw, 0);
    assert_int_equal(mailstore_read_msg(&ms, &m3, &raw, &error), MAILSTORE_GONE);
    /* mutt renamed 1 since our scan: the read follows it */
    move(f, "cur/1.Q1_0.h:2,S", "cur/1.Q1_0.h:2,RS");
    assert_int_equal(mailstore_read(&ms, 0, &raw, &error), MAILSTORE_OK);
    assert_true(raw.len > 0);
    buf_free(&raw);
    assert_int_equal(mailstore_refresh(&ms, &error), MAILSTORE_OK);
    assert_int_equal(ms.nmsgs, 1);
    assert_int_equal(ms.msgs[0].uid, 1);
    mailstore_close(&ms);
    /* the next message gets a fresh UID, never 2 or 3 again */
    write_at(f, "new", "4.Q4_0.h", A, 4);
    mailstore_cache_clear();
    open_ok(f, &ms, 2);
    assert_int_equal(ms.msgs[1].uid, 4);
    mailstore_close(&ms);
}

static void test_append_and_settle(void **state)
{
    struct fixture *f = *state;
    write_at(f, "new", "1.Q1_0.h", A, 1);
    struct mailstore ms;
    open_ok(f, &ms, 1);
    const char *error = NULL;
    uint32_t uid = 0;
    const char *kw[] = {"Work"};
    const char *msg = "Subject: appended\r\n\r\nline\r\nFrom me\r\n";
    assert_int_equal(mailstore_append(&ms, msg, strlen(msg), 1234567890, MBOX_FLAG_SEEN | MBOX_FLAG_DRAFT, kw, 1, &uid,
                                      &error),
                     MAILSTORE_OK);
    assert_int_equal(uid, 2);
    assert_int_equal(ms.nmsgs, 2);
    assert_int_equal(ms.msgs[1].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_SEEN | MBOX_FLAG_DRAFT);
    assert_int_equal(ms.msgs[1].internaldate, 1234567890);
    assert_int_equal(ms.msgs[1].size, strlen(msg));
    assert_int_equal(count_in(f, "tmp"), 0);
    assert_int_equal(count_in(f, "cur"), 1);
    enum mailstore_result r;
    char *w = wire_of(&ms, 1, &r);
    assert_string_equal(w, msg);
    free(w);
    /* SELECT moves new/ into cur/, same UIDs */
    assert_int_equal(mailstore_settle(&ms, &error), MAILSTORE_OK);
    assert_int_equal(count_in(f, "new"), 0);
    assert_int_equal(count_in(f, "cur"), 2);
    assert_true(exists(f, "cur/1.Q1_0.h:2,"));
    assert_int_equal(ms.nmsgs, 2);
    assert_int_equal(ms.msgs[0].uid, 1);
    w = wire_of(&ms, 0, &r);
    assert_int_equal(r, MAILSTORE_OK);
    free(w);
    mailstore_close(&ms);
}

static void test_lost_index(void **state)
{
    struct fixture *f = *state;
    write_at(f, "cur", "1.Q1_0.h:2,S", A, 1);
    struct mailstore ms;
    open_ok(f, &ms, 1);
    uint32_t validity = ms.uidvalidity;
    mailstore_close(&ms);
    char path[512];
    snprintf(path, sizeof path, "%s/index/sjoerd/INBOX", f->dir);
    assert_int_equal(unlink(path), 0);
    mailstore_cache_clear();
    sleep(1); /* UIDVALIDITY is a time */
    open_ok(f, &ms, 1);
    assert_int_not_equal(ms.uidvalidity, validity);
    assert_int_equal(ms.msgs[0].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_SEEN); /* from the name */
    mailstore_close(&ms);
    /* a corrupt index too */
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("zolder-maildir-index 1 garbage\n", fp);
    fclose(fp);
    mailstore_cache_clear();
    open_ok(f, &ms, 1);
    assert_int_equal(ms.msgs[0].uid, 1);
    mailstore_close(&ms);
}

/* Renames behind our back with cur/'s mtime put back: the stamps say "unchanged" (as when
 * mutt renames within the clock tick of our last change); STORE and EXPUNGE must still find
 * the file by key (same UID), not act on the old name. */
static void rename_unstamped(const struct fixture *f, const char *from, const char *to)
{
    char cur[512];
    snprintf(cur, sizeof cur, "%s/cur", f->md);
    struct stat st;
    assert_int_equal(stat(cur, &st), 0);
    move(f, from, to);
    struct timespec t[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, cur, t, 0), 0);
}

static void test_stale_cache_store_and_expunge(void **state)
{
    struct fixture *f = *state;
    write_at(f, "cur", "1.Q1_0.h:2,", A, 1);
    write_at(f, "cur", "2.Q2_0.h:2,", B, 2);
    struct mailstore ms;
    open_ok(f, &ms, 2);
    rename_unstamped(f, "cur/1.Q1_0.h:2,", "cur/1.Q1_0.h:2,R");
    assert_false(mailstore_changed(&ms)); /* the stamps cannot tell */
    const char *error = NULL;
    uint32_t one = 1, two = 2;
    assert_int_equal(mailstore_store(&ms, &one, 1, MAILSTORE_ADD, MBOX_FLAG_FLAGGED, NULL, 0, &error), MAILSTORE_OK);
    assert_true(exists(f, "cur/1.Q1_0.h:2,FR"));
    assert_int_equal(count_in(f, "cur"), 2);
    assert_int_equal(ms.msgs[0].uid, 1);
    assert_int_equal(ms.msgs[0].flags & MBOX_FLAGS_IMAP, MBOX_FLAG_FLAGGED | MBOX_FLAG_ANSWERED);
    rename_unstamped(f, "cur/2.Q2_0.h:2,", "cur/2.Q2_0.h:2,S");
    size_t removed = 0;
    assert_int_equal(mailstore_expunge(&ms, &two, 1, &removed, &error), MAILSTORE_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(count_in(f, "cur"), 1);
    assert_int_equal(ms.nmsgs, 1);
    assert_int_equal(ms.msgs[0].uid, 1);
    mailstore_close(&ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scan_sizes_and_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uids_kept_across_sessions_and_renames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_renames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expunge_and_vanished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_and_settle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_cache_store_and_expunge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyword_letters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyword_letters_run_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keywords_from_an_older_index, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
