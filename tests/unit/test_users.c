/* Unit tests for reference/proto/users: syntax, errors, lookups, crypt verification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "users.h"

/* All hashes of "geheim", made with libxcrypt at low cost so tests stay fast under valgrind. */
#define HASH_Y "$y$j75$LXmOwMWJIzAd9Ahzg24hT1$Z.nwjI38vnatGNodP8geSosdjOnUqMpeQpf191bjR25"
#define HASH_6                                                                                 \
    "$6$rounds=1000$se57oQXD2eB.LfTN$XADHabMEkRR45iEf6Ptj1lO/Kiv7Vab7AC7dU6nPXJh5v3gKlyUukvPzQ" \
    "EmkSUYDUhX11BNQ8fiAaI1jObytY."
#define HASH_2B "$2b$04$4XrIPgQUmr0s4Qy9LnDeJOZ5BgjzJxTZiYDxxc03usEmKoc5VmlJS"
#define HASH_1 "$1$6lDCn9pI$HEW8zIC8FCK45emEW7WS8."
#define HASH_DES "0gdsPU7tL1O7I"

static const char *const users_text = "# zolder users\n"
                                      "sjoerd:" HASH_Y ":/home/sjoerd\n"
                                      "bouke:" HASH_6 "   # sha512\n"
                                      "lars:" HASH_2B "\n"
                                      "old.md5:" HASH_1 "\n"
                                      "old_des:" HASH_DES "\n"
                                      "backup:*\n"
                                      "gone:!" HASH_6 ":/home/gone\n"
                                      "v-1:" HASH_Y ":/\n";

static struct users *load_ok(const char *text)
{
    struct users *u = NULL;
    struct cfg_error err = {{0}};
    if (users_load(&u, "users", text, strlen(text), &err) != 0)
        fail_msg("unexpected error: %s", err.text);
    assert_non_null(u);
    return u;
}

static void test_users_lookup(void **state)
{
    (void)state;
    struct users *u = load_ok(users_text);
    assert_int_equal(users_count(u), 8);
    const struct users_entry *e = users_lookup(u, "sjoerd");
    assert_non_null(e);
    assert_string_equal(e->name, "sjoerd");
    assert_string_equal(e->hash, HASH_Y);
    assert_string_equal(e->home, "/home/sjoerd");
    assert_int_equal(e->lineno, 2);
    assert_true(e->can_login);
    assert_false(e->weak_hash);
    e = users_lookup(u, "bouke");
    assert_non_null(e);
    assert_null(e->home);
    /* Case-sensitive, as on Unix. */
    assert_null(users_lookup(u, "Sjoerd"));
    assert_null(users_lookup(u, "nobody"));
    assert_false(users_lookup(u, "backup")->can_login);
    assert_false(users_lookup(u, "gone")->can_login);
    assert_true(users_lookup(u, "old.md5")->weak_hash);
    assert_true(users_lookup(u, "old_des")->weak_hash);
    assert_false(users_lookup(u, "lars")->weak_hash);
    assert_string_equal(users_lookup(u, "v-1")->home, "/");
    users_free(u);

    u = load_ok("# nobody yet\n\f\n\r\r\n");
    assert_int_equal(users_count(u), 0);
    assert_null(users_lookup(u, "x"));
    users_free(u);
}

/* A check prepared before a reload freed the table still gives the table's verdict. */
static void test_users_check_outlives_table(void **state)
{
    (void)state;
    struct users *u = load_ok(users_text);
    struct users_check ok, bad, unknown, locked;
    users_check_prepare(u, "sjoerd", &ok);
    users_check_prepare(u, "sjoerd", &bad);
    users_check_prepare(u, "nobody", &unknown);
    users_check_prepare(u, "backup", &locked);
    users_free(u);
    assert_int_equal(users_check_run(&ok, "geheim"), USERS_AUTH_OK);
    assert_int_equal(users_check_run(&bad, "fout"), USERS_AUTH_BAD_PASSWORD);
    assert_int_equal(users_check_run(&unknown, "geheim"), USERS_AUTH_UNKNOWN_USER);
    assert_int_equal(users_check_run(&locked, ""), USERS_AUTH_LOCKED);
    users_check_prepare(NULL, "sjoerd", &ok);
    assert_int_equal(users_check_run(&ok, "geheim"), USERS_AUTH_UNKNOWN_USER);
}

static void test_users_verify(void **state)
{
    (void)state;
    struct users *u = load_ok(users_text);
    static const struct {
        const char *name;
        const char *password;
        enum users_auth want;
    } cases[] = {
        {"sjoerd", "geheim", USERS_AUTH_OK},
        {"sjoerd", "Geheim", USERS_AUTH_BAD_PASSWORD},
        {"sjoerd", "", USERS_AUTH_BAD_PASSWORD},
        {"bouke", "geheim", USERS_AUTH_OK},
        {"bouke", "geheim ", USERS_AUTH_BAD_PASSWORD},
        {"lars", "geheim", USERS_AUTH_OK},
        {"old.md5", "geheim", USERS_AUTH_OK},
        {"old_des", "geheim", USERS_AUTH_OK},
        {"old_des", "nope", USERS_AUTH_BAD_PASSWORD},
        {"backup", "", USERS_AUTH_LOCKED},
        {"gone", "geheim", USERS_AUTH_LOCKED},
        {"Sjoerd", "geheim", USERS_AUTH_UNKNOWN_USER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum users_auth got = users_verify(u, cases[i].name, cases[i].password);
        if (got != cases[i].want)
            fail_msg("case %zu (%s): got %s, want %s", i, cases[i].name, users_auth_name(got),
                     users_auth_name(cases[i].want));
    }
    char *long_pw = malloc(USERS_PASSWORD_MAX + 2);
    assert_non_null(long_pw);
    memset(long_pw, 'x', USERS_PASSWORD_MAX + 1);
    long_pw[USERS_PASSWORD_MAX + 1] = '\0';
    assert_int_equal(users_verify(u, "sjoerd", long_pw), USERS_AUTH_ERROR);
    free(long_pw);
    assert_string_equal(users_auth_name(USERS_AUTH_OK), "ok");
    assert_string_equal(users_auth_name(USERS_AUTH_ERROR), "error");
    users_free(u);
}

static const struct {
    const char *text;
    const char *error;
} users_bad[] = {
    {"sjoerd\n", "users:1: expected name:hash[:home]"},
    {"# x\nsjoerd:*:/home/sjoerd:extra\n", "users:2: expected name:hash[:home], got more fields"},
    {"Sjoerd:*\n",
     "users:1: expected a user name of 1-32 characters from a-z 0-9 . _ - (not starting with . or "
     "-), got \"Sjoerd\""},
    {"-x:*\n",
     "users:1: expected a user name of 1-32 characters from a-z 0-9 . _ - (not starting with . or "
     "-), got \"-x\""},
    {":*\n",
     "users:1: expected a user name of 1-32 characters from a-z 0-9 . _ - (not starting with . or "
     "-), got \"\""},
    {"sjoerd:\n", "users:1: empty password hash (use * for a user that cannot log in)"},
    {"sjoerd:geheim\n",
     "users:1: expected a crypt(3) hash such as $y$... or $6$..., or * for no login (is this a "
     "plain-text password?)"},
    {"sjoerd:$6$abc\n",
     "users:1: expected a crypt(3) hash such as $y$... or $6$..., or * for no login (is this a "
     "plain-text password?)"},
    {"sjoerd:$9$abc$def\n",
     "users:1: expected a crypt(3) hash such as $y$... or $6$..., or * for no login (is this a "
     "plain-text password?)"},
    {"sjoerd:geheim wachtwoord\n",
     "users:1: invalid character in password hash (expected a crypt(3) hash)"},
    {"sjoerd:*:home/sjoerd\n",
     "users:1: expected an absolute home directory without \"..\", got \"home/sjoerd\""},
    {"sjoerd:*:/home/../etc\n",
     "users:1: expected an absolute home directory without \"..\", got \"/home/../etc\""},
    {"sjoerd:*:/home/..\n",
     "users:1: expected an absolute home directory without \"..\", got \"/home/..\""},
    {"sjoerd:*:\n", "users:1: expected an absolute home directory without \"..\", got \"\""},
    {"a:*\nb:*\na:!\nb:*\n", "users:3: duplicate user \"a\" (first defined on line 1)"},
};

static void test_users_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof users_bad / sizeof users_bad[0]; i++) {
        struct users *u = (struct users *)1;
        struct cfg_error err = {{0}};
        const char *text = users_bad[i].text;
        assert_int_equal(users_load(&u, "users", text, strlen(text), &err), -1);
        assert_null(u);
        if (strcmp(err.text, users_bad[i].error) != 0)
            fail_msg("case %zu: got '%s' want '%s'", i, err.text, users_bad[i].error);
        /* The hash field never shows up in an error. */
        assert_null(strstr(err.text, "geheim"));
    }
    /* "..." and "..x" are ordinary names in a home path. */
    struct users *u = load_ok("a:*:/srv/..x/.../y\n");
    users_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_users_lookup),
        cmocka_unit_test(test_users_verify),
        cmocka_unit_test(test_users_check_outlives_table),
        cmocka_unit_test(test_users_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
