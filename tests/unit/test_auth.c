/* Unit tests for reference/auth: verdicts come back on the loop, cancel, overload, delay, and
 * the cache of successful checks (hits skip the hash; failures, other passwords, a changed
 * hash, an expired or evicted entry do not hit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <crypt.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/auth.h"
#include "users.h"

/* "geheim" at a low cost, so the tests stay fast under valgrind */
#define HASH_6                                                                                 \
    "$6$rounds=1000$se57oQXD2eB.LfTN$XADHabMEkRR45iEf6Ptj1lO/Kiv7Vab7AC7dU6nPXJh5v3gKlyUukvPzQ" \
    "EmkSUYDUhX11BNQ8fiAaI1jObytY."

struct outcome {
    int calls;
    enum users_auth result;
    struct event_base *base;
    int *pending;
    struct timeval at;
};

static void on_done(enum users_auth result, void *arg)
{
    struct outcome *o = arg;
    o->calls++;
    o->result = result;
    gettimeofday(&o->at, NULL);
    if (--*o->pending == 0)
        event_base_loopbreak(o->base);
}

static struct users *load_users(void)
{
    static const char text[] = "bouke:" HASH_6 "\nbackup:*\n";
    struct users *u = NULL;
    struct cfg_error err = {{0}};
    assert_int_equal(users_load(&u, "users", text, strlen(text), &err), 0);
    return u;
}

static void run_until_done(struct event_base *base)
{
    struct timeval limit = {10, 0};
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
}

static void test_verdicts_arrive_on_the_loop(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    const char *error = NULL;
    struct auth_service *svc = auth_service_new(base, 0, &error);
    assert_non_null(svc);
    struct users *u = load_users();
    struct users_check good, bad, locked, unknown;
    users_check_prepare(u, "bouke", &good);
    users_check_prepare(u, "bouke", &bad);
    users_check_prepare(u, "backup", &locked);
    users_check_prepare(u, "nobody", &unknown);
    users_free(u); /* a reload: the checks carry their own copies */
    int pending = 5;
    struct outcome o[5];
    memset(o, 0, sizeof o);
    for (int i = 0; i < 5; i++) {
        o[i].base = base;
        o[i].pending = &pending;
    }
    auth_submit(svc, &good, "geheim", on_done, &o[0]);
    auth_submit(svc, &bad, "fout", on_done, &o[1]);
    auth_submit(svc, &locked, "", on_done, &o[2]);
    auth_submit(svc, &unknown, "geheim", on_done, &o[3]);
    struct auth_request *gone = auth_submit(svc, &good, "geheim", on_done, &o[4]);
    auth_cancel(gone);
    pending = 4;
    /* nothing is answered from inside auth_submit */
    for (int i = 0; i < 5; i++)
        assert_int_equal(o[i].calls, 0);
    run_until_done(base);
    assert_int_equal(pending, 0);
    assert_int_equal(o[0].calls, 1);
    assert_int_equal(o[0].result, USERS_AUTH_OK);
    assert_int_equal(o[1].result, USERS_AUTH_BAD_PASSWORD);
    assert_int_equal(o[2].result, USERS_AUTH_LOCKED);
    assert_int_equal(o[3].result, USERS_AUTH_UNKNOWN_USER);
    assert_int_equal(o[4].calls, 0);
    auth_service_free(svc);
    event_base_free(base);
}

static void test_failure_waits_success_does_not(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    const char *error = NULL;
    struct auth_service *svc = auth_service_new(base, 300, &error);
    assert_non_null(svc);
    struct users *u = load_users();
    struct users_check chk;
    users_check_prepare(u, "bouke", &chk);
    users_free(u);
    int pending = 2;
    struct outcome ok = {.base = base, .pending = &pending};
    struct outcome fail = {.base = base, .pending = &pending};
    struct timeval t0;
    gettimeofday(&t0, NULL);
    auth_submit(svc, &chk, "fout", on_done, &fail);
    auth_submit(svc, &chk, "geheim", on_done, &ok);
    run_until_done(base);
    assert_int_equal(fail.result, USERS_AUTH_BAD_PASSWORD);
    assert_int_equal(ok.result, USERS_AUTH_OK);
    /* the success, submitted second, is answered before the delayed failure */
    assert_true(timercmp(&ok.at, &fail.at, <));
    long waited_ms = (fail.at.tv_sec - t0.tv_sec) * 1000 + (fail.at.tv_usec - t0.tv_usec) / 1000;
    assert_true(waited_ms >= 290);
    auth_service_free(svc);
    event_base_free(base);
}

static void test_overload_and_overlong_are_refused(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    const char *error = NULL;
    struct auth_service *svc = auth_service_new(base, 0, &error);
    assert_non_null(svc);
    struct users *u = load_users();
    struct users_check chk;
    users_check_prepare(u, "bouke", &chk); /* the cheap hash: hundreds of checks */
    users_free(u);
    enum { N = AUTH_QUEUE_MAX + 8 };
    static struct outcome o[N + 1];
    int pending = N + 1;
    for (int i = 0; i <= N; i++)
        o[i] = (struct outcome){.base = base, .pending = &pending};
    for (int i = 0; i < N; i++)
        auth_submit(svc, &chk, "pw", on_done, &o[i]);
    static char overlong[USERS_PASSWORD_MAX + 100];
    memset(overlong, 'x', sizeof overlong - 1);
    auth_submit(svc, &chk, overlong, on_done, &o[N]);
    run_until_done(base);
    assert_int_equal(pending, 0);
    int errors = 0, bad = 0;
    for (int i = 0; i <= N; i++) {
        assert_int_equal(o[i].calls, 1);
        errors += o[i].result == USERS_AUTH_ERROR;
        bad += o[i].result == USERS_AUTH_BAD_PASSWORD;
    }
    assert_true(errors >= 9); /* the 8 beyond the queue's bound and the overlong one */
    assert_int_equal(errors + bad, N + 1);
    auth_service_free(svc);
    event_base_free(base);
}

static void test_free_with_requests_open(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    const char *error = NULL;
    struct auth_service *svc = auth_service_new(base, 1000, &error);
    assert_non_null(svc);
    struct users *u = load_users();
    struct users_check chk;
    users_check_prepare(u, "bouke", &chk);
    users_free(u);
    int pending = 100;
    struct outcome o = {.base = base, .pending = &pending};
    for (int i = 0; i < 20; i++)
        auth_submit(svc, &chk, "pw", on_done, &o);
    auth_service_free(svc); /* dropped without callbacks, nothing leaks (valgrind) */
    assert_int_equal(o.calls, 0);
    event_base_free(base);
}

/* One check, run to its verdict. */
static enum users_auth check_once(struct event_base *base, struct auth_service *svc, const struct users_check *chk,
                                  const char *password)
{
    int pending = 1;
    struct outcome o = {.base = base, .pending = &pending};
    auth_submit(svc, chk, password, on_done, &o);
    assert_int_equal(o.calls, 0); /* a hit too is answered on the loop, not inside submit */
    run_until_done(base);
    assert_int_equal(o.calls, 1);
    return o.result;
}

static void test_cache_of_successes(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    const char *error = NULL;
    struct auth_service *svc = auth_service_new(base, 0, &error);
    assert_non_null(svc);
    struct users *u = load_users();
    struct users_check chk, locked;
    users_check_prepare(u, "bouke", &chk);
    users_check_prepare(u, "backup", &locked);
    users_free(u);
    /* off by default: every check hashes */
    assert_int_equal(check_once(base, svc, &chk, "geheim"), USERS_AUTH_OK);
    assert_int_equal(check_once(base, svc, &chk, "geheim"), USERS_AUTH_OK);
    assert_int_equal(auth_service_hashed(svc), 2);
    auth_service_set_cache(svc, 2, 3600);
    assert_int_equal(check_once(base, svc, &chk, "geheim"), USERS_AUTH_OK);
    assert_int_equal(auth_service_hashed(svc), 3);
    assert_int_equal(check_once(base, svc, &chk, "geheim"), USERS_AUTH_OK); /* a hit */
    assert_int_equal(auth_service_hashed(svc), 3);
    /* another password, failures (twice), a locked user: hashed each time */
    assert_int_equal(check_once(base, svc, &chk, "geheim2"), USERS_AUTH_BAD_PASSWORD);
    assert_int_equal(check_once(base, svc, &chk, "geheim2"), USERS_AUTH_BAD_PASSWORD);
    assert_int_equal(check_once(base, svc, &locked, "geheim"), USERS_AUTH_LOCKED);
    assert_int_equal(auth_service_hashed(svc), 6);
    /* the users file gives the user a new hash (same password, other salt): no hit */
    struct users_check renewed = chk;
    const char *h = crypt("geheim", "$6$rounds=1000$anderzout");
    assert_non_null(h);
    assert_true(strlen(h) < sizeof renewed.hash);
    strcpy(renewed.hash, h);
    assert_int_equal(check_once(base, svc, &renewed, "geheim"), USERS_AUTH_OK);
    assert_int_equal(auth_service_hashed(svc), 7);
    /* and a password changed to another: the old one fails against the new hash */
    const char *h2 = crypt("nieuw", "$6$rounds=1000$nieuwzout");
    assert_non_null(h2);
    strcpy(renewed.hash, h2);
    assert_int_equal(check_once(base, svc, &renewed, "geheim"), USERS_AUTH_BAD_PASSWORD);
    /* size 2: the first entry was replaced by the third success */
    assert_int_equal(check_once(base, svc, &renewed, "nieuw"), USERS_AUTH_OK);
    unsigned long long before = auth_service_hashed(svc);
    assert_int_equal(check_once(base, svc, &chk, "geheim"), USERS_AUTH_OK);
    assert_int_equal(auth_service_hashed(svc), before + 1);
    /* set_cache empties it (a reload) */
    auth_service_set_cache(svc, 10, 1);
    before = auth_service_hashed(svc);
    assert_int_equal(check_once(base, svc, &chk, "geheim"), USERS_AUTH_OK);
    assert_int_equal(check_once(base, svc, &chk, "geheim"), USERS_AUTH_OK);
    assert_int_equal(auth_service_hashed(svc), before + 1);
    /* the TTL: 1 s */
    sleep(2);
    assert_int_equal(check_once(base, svc, &chk, "geheim"), USERS_AUTH_OK);
    assert_int_equal(auth_service_hashed(svc), before + 2);
    auth_service_free(svc);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts_arrive_on_the_loop),
        cmocka_unit_test(test_failure_waits_success_does_not),
        cmocka_unit_test(test_overload_and_overlong_are_refused),
        cmocka_unit_test(test_free_with_requests_open),
        cmocka_unit_test(test_cache_of_successes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
