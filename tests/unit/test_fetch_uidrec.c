/* Unit tests for reference/fetch/uidrec: durable append, reload, torn lines, pruning, UIDVALIDITY. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fetch/uidrec.h"

static char dir[] = "/tmp/zolder-uidrec-XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static void test_add_sync_reload(void **state)
{
    (void)state;
    char account[200];
    uidrec_account_name("pop3.demon.nl", "sjoerd", account, sizeof account);
    assert_non_null(strstr(account, "sjoerd@pop3.demon.nl-"));
    char other[200];
    uidrec_account_name("pop3.demon.nl", "sjo/erd", other, sizeof other);
    assert_null(strchr(other, '/'));
    struct uidrec r;
    assert_int_equal(uidrec_open(&r, dir, account), 0);
    assert_false(uidrec_has(&r, "000001"));
    for (int i = 0; i < 300; i++) {
        char uid[16];
        snprintf(uid, sizeof uid, "%06d", i);
        assert_int_equal(uidrec_add(&r, uid), 0);
    }
    assert_int_equal(uidrec_add(&r, "bad uid"), -1);
    assert_int_equal(uidrec_add(&r, ""), -1);
    assert_int_equal(uidrec_sync(&r), 0);
    uidrec_close(&r);
    /* a torn last line (crash mid-append) is ignored */
    char path[512];
    snprintf(path, sizeof path, "%s/fetch/%s.uids", dir, account);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "U torn", 6), 6);
    close(fd);
    assert_int_equal(uidrec_open(&r, dir, account), 0);
    assert_int_equal(r.count, 300);
    assert_true(uidrec_has(&r, "000000"));
    assert_true(uidrec_has(&r, "000299"));
    assert_false(uidrec_has(&r, "torn"));
    /* pruning keeps what is listed and recorded */
    char *keep[] = {"000005", "000007", "999999"};
    assert_int_equal(uidrec_rewrite(&r, keep, 3), 0);
    assert_int_equal(r.count, 2);
    uidrec_close(&r);
    assert_int_equal(uidrec_open(&r, dir, account), 0);
    assert_int_equal(r.count, 2);
    assert_true(uidrec_has(&r, "000005"));
    assert_false(uidrec_has(&r, "000006"));
    assert_false(uidrec_has(&r, "999999"));
    /* forgetting drops only the named ones */
    char *gone[] = {"000005", "nothere"};
    assert_int_equal(uidrec_forget(&r, gone, 2), 0);
    uidrec_close(&r);
    assert_int_equal(uidrec_open(&r, dir, account), 0);
    assert_int_equal(r.count, 1);
    assert_true(uidrec_has(&r, "000007"));
    uidrec_close(&r);
}

static void test_uidvalidity(void **state)
{
    (void)state;
    struct uidrec r;
    assert_int_equal(uidrec_open(&r, dir, "imap"), 0);
    assert_int_equal(uidrec_set_validity(&r, 7), 0);
    assert_int_equal(uidrec_add(&r, "12"), 0);
    assert_int_equal(uidrec_sync(&r), 0);
    uidrec_close(&r);
    assert_int_equal(uidrec_open(&r, dir, "imap"), 0);
    assert_int_equal(r.validity, 7);
    assert_true(uidrec_has(&r, "12"));
    assert_int_equal(uidrec_set_validity(&r, 7), 0);
    assert_true(uidrec_has(&r, "12"));
    assert_int_equal(uidrec_set_validity(&r, 8), 0); /* a new mailbox: every UID forgotten */
    assert_false(uidrec_has(&r, "12"));
    uidrec_close(&r);
    assert_int_equal(uidrec_open(&r, dir, "imap"), 0);
    assert_int_equal(r.validity, 8);
    assert_int_equal(r.count, 0);
    uidrec_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_sync_reload),
        cmocka_unit_test(test_uidvalidity),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
