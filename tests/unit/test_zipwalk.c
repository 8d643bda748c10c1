/*
 * Unit tests for reference/proto/zipwalk (zip entries within limits: nested archives, a zip
 * bomb refused before it is expanded, too many entries, damage) and reference/proto/sigscan
 * (the signature file format and matching, EICAR built in).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "sigscan.h"
#include "zipwalk.h"

struct zfile {
    const char *name;
    const char *data;   /* NULL: size bytes of zeros */
    size_t size;
};

enum afmt { AF_ZIP, AF_TAR, AF_TGZ, AF_7Z, AF_GZ_RAW };

/* Builds an archive in memory: zip (deflated entries), tar, tar.gz, 7z or one gzip'd file. */
static char *make_archive(enum afmt fmt, const struct zfile *files, size_t n, size_t *len_r)
{
    size_t cap = 1024 * 1024;
    char *out = malloc(cap);
    assert_non_null(out);
    struct archive *a = archive_write_new();
    switch (fmt) {
    case AF_ZIP:
        assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
        archive_write_set_options(a, "zip:compression=deflate");
        break;
    case AF_TAR: assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK); break;
    case AF_TGZ:
        assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
        break;
    case AF_7Z: assert_int_equal(archive_write_set_format_7zip(a), ARCHIVE_OK); break;
    case AF_GZ_RAW:
        assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
        break;
    }
    size_t used = 0;
    assert_int_equal(archive_write_open_memory(a, out, cap, &used), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, files[i].name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)files[i].size);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (files[i].data) {
            archive_write_data(a, files[i].data, files[i].size);
        } else {
            static char zeros[65536];
            for (size_t left = files[i].size; left > 0;) {
                size_t k = left < sizeof zeros ? left : sizeof zeros;
                archive_write_data(a, zeros, k);
                left -= k;
            }
        }
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    *len_r = used;
    return out;
}

static char *make_zip(const struct zfile *files, size_t n, size_t *len_r)
{
    return make_archive(AF_ZIP, files, n, len_r);
}

/* tar, tar.gz and 7z: names and bytes like a zip's; nested (a zip in a tar.gz) too. */
static void test_other_formats(void **state)
{
    (void)state;
    struct zfile files[] = {{"readme.txt", "hello", 5}, {"bin/setup.exe", "MZ....", 6}};
    struct zipwalk_limits limits;
    zipwalk_limits_default(&limits);
    static const enum afmt fmts[] = {AF_TAR, AF_TGZ, AF_7Z};
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        size_t len;
        char *arc = make_archive(fmts[f], files, 2, &len);
        assert_false(zipwalk_is_zip(arc, len));
        assert_true(zipwalk_is_archive(arc, len));
        struct zipwalk walk;
        zipwalk_run(arc, len, &limits, &walk);
        assert_null(walk.refused);
        assert_int_equal(walk.nentries, 2);
        assert_string_equal(walk.entries[1].name, "bin/setup.exe");
        assert_int_equal(walk.entries[0].data.len, 5);
        assert_memory_equal(walk.entries[0].data.data, "hello", 5);
        zipwalk_free(&walk);
        free(arc);
    }
    size_t zlen;
    char *zip = make_zip(files, 2, &zlen);
    struct zfile outer[] = {{"bundle.zip", zip, zlen}};
    size_t len;
    char *tgz = make_archive(AF_TGZ, outer, 1, &len);
    struct zipwalk walk;
    zipwalk_run(tgz, len, &limits, &walk);
    assert_null(walk.refused);
    assert_int_equal(walk.nentries, 3);
    assert_string_equal(walk.entries[2].name, "bin/setup.exe");
    assert_int_equal(walk.entries[2].depth, 2);
    zipwalk_free(&walk);
    free(tgz);
    free(zip);
    /* one gzip'd file: its entry is "data"; a gzip bomb is refused within the budget */
    size_t biglen = (size_t)3 * 1024 * 1024;
    char *letters = malloc(biglen);
    assert_non_null(letters);
    memset(letters, 'A', biglen); /* not zeros: those would read as an empty tar */
    struct zfile big[] = {{"letters", letters, biglen}};
    char *gz = make_archive(AF_GZ_RAW, big, 1, &len);
    free(letters);
    assert_true(zipwalk_is_archive(gz, len));
    limits.max_expanded = 1024 * 1024;
    zipwalk_run(gz, len, &limits, &walk);
    assert_non_null(walk.refused);
    size_t expanded = 0;
    for (size_t i = 0; i < walk.nentries; i++)
        expanded += walk.entries[i].data.len;
    assert_true(expanded <= limits.max_expanded);
    zipwalk_free(&walk);
    free(gz);
    struct zfile small[] = {{"x", "EICAR-ish bytes", 15}};
    gz = make_archive(AF_GZ_RAW, small, 1, &len);
    zipwalk_limits_default(&limits);
    zipwalk_run(gz, len, &limits, &walk);
    assert_null(walk.refused);
    assert_int_equal(walk.nentries, 1);
    assert_string_equal(walk.entries[0].name, "data");
    assert_memory_equal(walk.entries[0].data.data, "EICAR-ish bytes", 15);
    zipwalk_free(&walk);
    free(gz);
    /* text that only looks a little like an archive is not one */
    assert_false(zipwalk_is_archive("BZh9 is a fine name", 19));
    assert_false(zipwalk_is_archive("\x1f\x8b", 2));
}

static void test_zip_names(void **state)
{
    (void)state;
    struct zfile files[] = {{"readme.txt", "hello", 5}, {"docs/invoice.pdf.exe", "MZ....", 6}};
    size_t len;
    char *zip = make_zip(files, 2, &len);
    assert_true(zipwalk_is_zip(zip, len));
    struct zipwalk_limits limits;
    zipwalk_limits_default(&limits);
    struct zipwalk walk;
    zipwalk_run(zip, len, &limits, &walk);
    assert_null(walk.refused);
    assert_int_equal(walk.nentries, 2);
    assert_string_equal(walk.entries[1].name, "docs/invoice.pdf.exe");
    assert_int_equal(walk.entries[0].data.len, 5);
    assert_memory_equal(walk.entries[0].data.data, "hello", 5);
    zipwalk_free(&walk);
    free(zip);
}

static void test_zip_nested(void **state)
{
    (void)state;
    struct zfile inner_files[] = {{"deep.scr", "x", 1}};
    size_t ilen;
    char *inner = make_zip(inner_files, 1, &ilen);
    struct zfile outer_files[] = {{"inner.zip", inner, ilen}};
    size_t olen;
    char *outer = make_zip(outer_files, 1, &olen);
    struct zipwalk_limits limits;
    zipwalk_limits_default(&limits);
    struct zipwalk walk;
    zipwalk_run(outer, olen, &limits, &walk);
    assert_null(walk.refused);
    assert_int_equal(walk.nentries, 2);
    assert_string_equal(walk.entries[1].name, "deep.scr");
    assert_int_equal(walk.entries[1].depth, 2);
    zipwalk_free(&walk);
    limits.max_depth = 1;
    zipwalk_run(outer, olen, &limits, &walk);
    assert_non_null(walk.refused);
    zipwalk_free(&walk);
    free(inner);
    free(outer);
}

static void test_zip_bomb(void **state)
{
    (void)state;
    /* 8 MiB of zeros compress to a few KiB; with a 1 MiB budget it is refused. */
    struct zfile files[] = {{"zeros.bin", NULL, 8 * 1024 * 1024}};
    size_t len;
    char *zip = make_zip(files, 1, &len);
    assert_true(len < 64 * 1024);
    struct zipwalk_limits limits;
    zipwalk_limits_default(&limits);
    limits.max_expanded = 1024 * 1024;
    struct zipwalk walk;
    zipwalk_run(zip, len, &limits, &walk);
    assert_non_null(walk.refused);
    assert_non_null(strstr(walk.refused, "zip bomb"));
    /* never more than the budget was produced */
    size_t total = 0;
    for (size_t i = 0; i < walk.nentries; i++)
        total += walk.entries[i].data.len;
    assert_true(total <= limits.max_expanded);
    zipwalk_free(&walk);
    /* the same archive within a larger budget is fine */
    limits.max_expanded = 16 * 1024 * 1024;
    zipwalk_run(zip, len, &limits, &walk);
    assert_null(walk.refused);
    zipwalk_free(&walk);
    free(zip);
}

static void test_zip_limits_and_damage(void **state)
{
    (void)state;
    struct zfile files[12];
    char names[12][32];
    for (int i = 0; i < 12; i++) {
        snprintf(names[i], sizeof names[i], "f%d.txt", i);
        files[i] = (struct zfile){names[i], "x", 1};
    }
    size_t len;
    char *zip = make_zip(files, 12, &len);
    struct zipwalk_limits limits;
    zipwalk_limits_default(&limits);
    limits.max_entries = 10;
    struct zipwalk walk;
    zipwalk_run(zip, len, &limits, &walk);
    assert_non_null(walk.refused);
    zipwalk_free(&walk);
    /* every truncation: never a crash */
    zipwalk_limits_default(&limits);
    for (size_t n = 0; n < len; n += 7) {
        zipwalk_run(zip, n, &limits, &walk);
        zipwalk_free(&walk);
    }
    /* damage in the middle is noticed */
    zip[len / 2] ^= 0x55;
    zip[len / 2 + 1] ^= 0x55;
    zipwalk_run(zip, len / 2 + 10, &limits, &walk);
    assert_non_null(walk.refused);
    zipwalk_free(&walk);
    free(zip);
    assert_false(zipwalk_is_zip("PK", 2));
    assert_false(zipwalk_is_zip("MZ\x90\x00", 4));
}

static void test_sigscan(void **state)
{
    (void)state;
    struct sigscan_db db;
    sigscan_db_init(&db);
    char eicar[80];
    snprintf(eicar, sizeof eicar, "%s%s", "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-",
             "ANTIVIRUS-TEST-FILE!$H+H*");
    char text[200];
    snprintf(text, sizeof text, "some text %s more", eicar);
    assert_string_equal(sigscan_match(&db, text, strlen(text)), "Eicar-Test-Signature");
    assert_null(sigscan_match(&db, "clean", 5));
    const char *file = "# local signatures\n"
                       "Sober.K@mm hex 4d 5a 90 00 de ad be ef\n"
                       "Test.Text text this is a virus\n"
                       /* sha256("abc") */
                       "Test.Hash sha256 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n";
    struct cfg_error err;
    assert_true(sigscan_db_parse(&db, "sigs", file, strlen(file), &err));
    assert_int_equal(db.n, 4);
    assert_string_equal(sigscan_match(&db, "xx\x4d\x5a\x90\x00\xde\xad\xbe\xefyy", 12), "Sober.K@mm");
    assert_string_equal(sigscan_match(&db, "so this is a virus!", 19), "Test.Text");
    assert_string_equal(sigscan_match(&db, "abc", 3), "Test.Hash");
    assert_null(sigscan_match(&db, "abcd", 4));
    assert_null(sigscan_match(&db, "\x4d\x5a\x90\x00\xde\xad\xbe", 7));
    sigscan_db_free(&db);

    static const char *const bad[] = {
        "NoKind\n", "Bad/Name hex 00112233\n", "X hex 0011\n", "X hex 00112g33\n",
        "X text abc\n", "X sha256 00\n", "X md5 00112233\n", "X hex 0011223\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sigscan_db_init(&db);
        if (sigscan_db_parse(&db, "sigs", bad[i], strlen(bad[i]), &err))
            fail_msg("accepted: %s", bad[i]);
        assert_non_null(strstr(err.text, "sigs:1:"));
        sigscan_db_free(&db);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zip_names),
        cmocka_unit_test(test_other_formats),
        cmocka_unit_test(test_zip_nested),
        cmocka_unit_test(test_zip_bomb),
        cmocka_unit_test(test_zip_limits_and_damage),
        cmocka_unit_test(test_sigscan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
