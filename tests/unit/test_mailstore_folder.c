/*
 * Unit tests for reference/mailstore's mailstore_open_at: a folder (an mbox anywhere, with its
 * index anywhere) opens, appends, expunges and locks like INBOX, with the dotlock and the
 * rewrite's temporary file beside its own mbox; bad locations are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "mailstore/mailstore.h"
#include "mbox_flags.h"

#define M1 "From a@b Sat Nov 16 23:07:13 2002\nSubject: one\n\nbody one\n\n"
#define M2 "From a@b Sat Nov 16 23:07:14 2002\nSubject: two\n\nbody two\n\n"

struct fixture {
    char dir[64];
    char mbox[160];
    char index[160];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_mailstore_folder.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char folder[120];
    snprintf(folder, sizeof folder, "%s/Mail/Projects", f->dir);
    assert_int_equal(fs_mkdir_p(folder, 0700), 0);
    snprintf(f->mbox, sizeof f->mbox, "%s/Plans", folder);
    snprintf(f->index, sizeof f->index, "%s/index/sjoerd/folder-Projects%%2FPlans", f->dir);
    int fd = open(f->mbox, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, M1 M2, strlen(M1 M2)), 0);
    close(fd);
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

static void test_folder_opens_appends_expunges(void **state)
{
    struct fixture *f = *state;
    struct mailstore_location loc = {.mbox_path = f->mbox, .index_path = f->index, .user = "sjoerd"};
    struct mailstore ms;
    const char *error = NULL;
    assert_int_equal(mailstore_open_at(&ms, &loc, &error), MAILSTORE_OK);
    assert_int_equal(ms.nmsgs, 2);
    assert_int_equal(ms.msgs[0].uid, 1);
    assert_int_equal(ms.msgs[1].uid, 2);
    char want[200];
    snprintf(want, sizeof want, "%s.lock", f->mbox);
    assert_string_equal(ms.lock_path, want);
    snprintf(want, sizeof want, "%s/Mail/Projects/.Plans.new", f->dir);
    assert_string_equal(ms.tmp_path, want);
    snprintf(want, sizeof want, "%s/Mail/Projects", f->dir);
    assert_string_equal(ms.spool_dir, want);
    assert_int_equal(access(f->index, F_OK), 0);   /* its index, where it was told */
    uint32_t validity = ms.uidvalidity, uid = 0;
    const char *kw[] = {"$Label1"};
    assert_int_equal(mailstore_append(&ms, "Subject: three\r\n\r\nbody\r\n", 25, 1037487000, MBOX_FLAG_FLAGGED, kw, 1,
                                      &uid, &error),
                     MAILSTORE_OK);
    assert_int_equal(uid, 3);
    uint32_t gone = 1;
    size_t removed = 0;
    assert_int_equal(mailstore_expunge(&ms, &gone, 1, &removed, &error), MAILSTORE_OK);
    assert_int_equal(removed, 1);
    mailstore_close(&ms);
    assert_int_equal(access(want, F_OK), 0);
    snprintf(want, sizeof want, "%s/Mail/Projects/.Plans.new", f->dir);
    assert_int_not_equal(access(want, F_OK), 0);   /* the rewrite's file is gone */
    /* opened again: same UIDVALIDITY, UIDs 2 and 3, the flags kept */
    assert_int_equal(mailstore_open_at(&ms, &loc, &error), MAILSTORE_OK);
    assert_int_equal(ms.uidvalidity, validity);
    assert_int_equal(ms.nmsgs, 2);
    assert_int_equal(ms.msgs[0].uid, 2);
    assert_int_equal(ms.msgs[1].uid, 3);
    assert_true(ms.msgs[1].flags & MBOX_FLAG_FLAGGED);
    assert_int_equal(ms.msgs[1].internaldate, 1037487000);
    mailstore_close(&ms);
}

static void test_folder_lock_and_bad_locations(void **state)
{
    struct fixture *f = *state;
    struct mailstore_location loc = {.mbox_path = f->mbox, .index_path = f->index, .user = "sjoerd"};
    struct mailstore ms;
    const char *error = NULL;
    char lock[200];
    snprintf(lock, sizeof lock, "%s.lock", f->mbox);
    int fd = open(lock, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    char pid[32];
    snprintf(pid, sizeof pid, "%ld\n", (long)getppid()); /* alive, not us */
    assert_int_equal(fs_write_all(fd, pid, strlen(pid)), 0);
    close(fd);
    assert_int_equal(mailstore_open_at(&ms, &loc, &error), MAILSTORE_BUSY);
    mailstore_close(&ms);
    unlink(lock);
    /* a missing mbox is an empty mailbox, not an error */
    char missing[200];
    snprintf(missing, sizeof missing, "%s/Mail/Nothing", f->dir);
    struct mailstore_location empty = {.mbox_path = missing, .index_path = f->index, .user = "sjoerd"};
    assert_int_equal(mailstore_open_at(&ms, &empty, &error), MAILSTORE_OK);
    assert_int_equal(ms.nmsgs, 0);
    mailstore_close(&ms);
    static const char *const bad[][2] = {{"relative", "/x/i"}, {"/x/", "/x/i"}, {"/x/.hidden", "/x/i"}, {"/x/m", "/x/"},
                                         {"/x/m", "rel"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct mailstore_location l = {.mbox_path = bad[i][0], .index_path = bad[i][1], .user = "sjoerd"};
        assert_int_equal(mailstore_open_at(&ms, &l, &error), MAILSTORE_ERROR);
        assert_string_equal(error, "invalid mailbox location");
        mailstore_close(&ms);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_folder_opens_appends_expunges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folder_lock_and_bad_locations, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
