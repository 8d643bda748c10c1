/* Unit tests for reference/proto/addr: RFC 5321 paths, the relay-trick table, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "buf.h"

struct addr_case {
    const char *in;
    size_t len;           /* 0: strlen(in) */
    unsigned opts;
    bool ok;
    const char *local;
    const char *domain;
    unsigned flags;
    size_t consumed;      /* 0: the whole input */
    const char *error;
};

static const struct addr_case addr_path_cases[] = {
    /* plain */
    {.in = "<user@zolder.thuis>", .ok = true, .local = "user", .domain = "zolder.thuis"},
    {.in = "<User.Name+tag@Zolder.THUIS>", .ok = true, .local = "User.Name+tag",
     .domain = "zolder.thuis"},
    {.in = "<a@b>", .ok = true, .local = "a", .domain = "b"},
    {.in = "<a-b@x-1.example>", .ok = true, .local = "a-b", .domain = "x-1.example"},
    {.in = "<u@1.2.3.4>", .ok = true, .local = "u", .domain = "1.2.3.4"},
    {.in = "<a@b> SIZE=10", .ok = true, .local = "a", .domain = "b", .consumed = 5},
    {.in = "<>", .ok = true, .local = "", .domain = "", .flags = ADDR_F_NULL},
    {.in = "<> BODY=8BITMIME", .ok = true, .flags = ADDR_F_NULL, .local = "", .domain = "",
     .consumed = 2},
    /* the relay-trick table */
    {.in = "<user%other.example@zolder.thuis>", .ok = true, .local = "user%other.example",
     .domain = "zolder.thuis", .flags = ADDR_F_ROUTING_CHARS},
    {.in = "<@zolder.thuis:user@other.example>", .ok = true, .local = "user",
     .domain = "other.example", .flags = ADDR_F_SOURCE_ROUTE},
    {.in = "<@a,@b:u@c>", .ok = true, .local = "u", .domain = "c",
     .flags = ADDR_F_SOURCE_ROUTE},
    {.in = "<@a.example,@B.Example,@c:u@D.example>", .ok = true, .local = "u",
     .domain = "d.example", .flags = ADDR_F_SOURCE_ROUTE},
    {.in = "<other.example!user@zolder.thuis>", .ok = true, .local = "other.example!user",
     .domain = "zolder.thuis", .flags = ADDR_F_ROUTING_CHARS},
    {.in = "<\"user@other.example\"@zolder.thuis>", .ok = true, .local = "user@other.example",
     .domain = "zolder.thuis", .flags = ADDR_F_QUOTED | ADDR_F_ROUTING_CHARS},
    {.in = "<user@other.example.>", .ok = true, .local = "user", .domain = "other.example",
     .flags = ADDR_F_TRAILING_DOT},
    {.in = "<user@[1.2.3.4]>", .ok = true, .local = "user", .domain = "[1.2.3.4]",
     .flags = ADDR_F_LITERAL},
    {.in = "<u@[IPv6:::1]>", .ok = true, .local = "u", .domain = "[IPv6:::1]",
     .flags = ADDR_F_LITERAL},
    {.in = "<u@[ipv6:FE80::A]>", .ok = true, .local = "u", .domain = "[IPv6:fe80::a]",
     .flags = ADDR_F_LITERAL},
    {.in = "<user>", .ok = true, .local = "user", .domain = "", .flags = ADDR_F_UNQUALIFIED},
    {.in = "<Postmaster>", .ok = true, .local = "Postmaster", .domain = "",
     .flags = ADDR_F_UNQUALIFIED},
    {.in = "<\"a b\"@dom>", .ok = true, .local = "a b", .domain = "dom", .flags = ADDR_F_QUOTED},
    {.in = "<\"a\\\"b\\\\c\"@dom>", .ok = true, .local = "a\"b\\c", .domain = "dom",
     .flags = ADDR_F_QUOTED},
    {.in = "<\"plain\"@dom>", .ok = true, .local = "plain", .domain = "dom",
     .flags = ADDR_F_QUOTED},
    /* combinations */
    {.in = "<@relay.example:user%other@[10.0.0.1]>", .ok = true, .local = "user%other",
     .domain = "[10.0.0.1]", .flags = ADDR_F_SOURCE_ROUTE | ADDR_F_ROUTING_CHARS | ADDR_F_LITERAL},
    {.in = "<@a:\"x!y\"@host.>", .ok = true, .local = "x!y", .domain = "host",
     .flags = ADDR_F_SOURCE_ROUTE | ADDR_F_QUOTED | ADDR_F_ROUTING_CHARS | ADDR_F_TRAILING_DOT},
    {.in = "<bang!path>", .ok = true, .local = "bang!path", .domain = "",
     .flags = ADDR_F_ROUTING_CHARS | ADDR_F_UNQUALIFIED},
    {.in = "<\"q u\">", .ok = true, .local = "q u", .domain = "",
     .flags = ADDR_F_QUOTED | ADDR_F_UNQUALIFIED},
    /* 8-bit: refused by default, UTF-8 local parts with the option */
    {.in = "<j\xc3\xb6rg@dom>", .ok = false, .error = "8-bit character in address"},
    {.in = "<j\xc3\xb6rg@dom>", .opts = ADDR_OPT_ALLOW_8BIT, .ok = true, .local = "j\xc3\xb6rg",
     .domain = "dom", .flags = ADDR_F_8BIT},
    {.in = "<\"j\xc3\xb6 rg\"@dom>", .opts = ADDR_OPT_ALLOW_8BIT, .ok = true,
     .local = "j\xc3\xb6 rg", .domain = "dom", .flags = ADDR_F_8BIT | ADDR_F_QUOTED},
    {.in = "<j\xc3rg@dom>", .opts = ADDR_OPT_ALLOW_8BIT, .ok = false,
     .error = "invalid UTF-8 in address"},
    {.in = "<j\xc0\xafrg@dom>", .opts = ADDR_OPT_ALLOW_8BIT, .ok = false,
     .error = "invalid UTF-8 in address"},
    {.in = "<u@d\xc3\xb6m>", .opts = ADDR_OPT_ALLOW_8BIT, .ok = false,
     .error = "8-bit character in domain"},
    {.in = "<u@\xc3\xb6m>", .opts = ADDR_OPT_ALLOW_8BIT, .ok = false,
     .error = "8-bit character in domain"},
    {.in = "<u@\xc3\xb6m>", .ok = false, .error = "8-bit character in domain"},
    {.in = "<u@[\xc3\xb6]>", .ok = false, .error = "8-bit character in address"},
    /* brackets */
    {.in = "user@dom", .ok = false, .error = "missing <"},
    {.in = "", .ok = false, .error = "missing <"},
    {.in = "<user@dom", .ok = false, .error = "missing >"},
    {.in = "<user", .ok = false, .error = "missing >"},
    {.in = "<", .ok = false, .error = "empty local part"},
    {.in = "<@a:u@b", .ok = false, .error = "missing >"},
    {.in = "<@a,@b", .ok = false, .error = "missing >"},
    /* quotes */
    {.in = "<\"user@dom>", .ok = false, .error = "unbalanced quote"},
    {.in = "<\"user\\\"@dom>", .ok = false, .error = "unbalanced quote"},
    {.in = "<\"\"@dom>", .ok = false, .error = "empty local part"},
    {.in = "<\"a\"b@dom>", .ok = false, .error = "text after quoted local part"},
    {.in = "<\"a\tb\"@dom>", .ok = false, .error = "control character in address"},
    /* local part */
    {.in = "<@dom>", .ok = false, .error = "bad source route"},
    {.in = "<@a:@b>", .ok = false, .error = "empty local part"},
    {.in = "<.user@dom>", .ok = false, .error = "misplaced dot in local part"},
    {.in = "<user.@dom>", .ok = false, .error = "misplaced dot in local part"},
    {.in = "<us..er@dom>", .ok = false, .error = "misplaced dot in local part"},
    {.in = "<us(er@dom>", .ok = false, .error = "invalid character in local part"},
    {.in = "<a@b@c>", .ok = false, .error = "more than one @ (quote the local part)"},
    {.in = "<u ser@dom>", .ok = false, .error = "whitespace in address"},
    {.in = "<user @dom>", .ok = false, .error = "whitespace in address"},
    {.in = "<user@ dom>", .ok = false, .error = "whitespace in address"},
    {.in = "<user@dom >", .ok = false, .error = "whitespace in address"},
    {.in = "< user@dom>", .ok = false, .error = "whitespace in address"},
    {.in = "<us\ter@dom>", .ok = false, .error = "whitespace in address"},
    {.in = "<us\x01er@dom>", .ok = false, .error = "control character in address"},
    {.in = "<user@do\x7fm>", .ok = false, .error = "control character in address"},
    {.in = "<us\0er@dom>", .len = 12, .ok = false, .error = "control character in address"},
    {.in = "<user@dom\r\n>", .ok = false, .error = "control character in address"},
    /* domain */
    {.in = "<user@>", .ok = false, .error = "missing domain"},
    {.in = "<user@.dom>", .ok = false, .error = "empty domain label"},
    {.in = "<user@a..b>", .ok = false, .error = "empty domain label"},
    {.in = "<user@dom..>", .ok = false, .error = "empty domain label"},
    {.in = "<user@->", .ok = false, .error = "domain label starts or ends with a hyphen"},
    {.in = "<user@-a.b>", .ok = false, .error = "domain label starts or ends with a hyphen"},
    {.in = "<user@a-.b>", .ok = false, .error = "domain label starts or ends with a hyphen"},
    {.in = "<user@a_b.c>", .ok = false, .error = "invalid character in domain"},
    {.in = "<user@a.b:c>", .ok = false, .error = "invalid character in domain"},
    {.in = "<user@[1.2.3.4>", .ok = false, .error = "unterminated address literal"},
    {.in = "<user@[1.2.3]>", .ok = false, .error = "bad IPv4 address literal"},
    {.in = "<user@[1.2.3.256]>", .ok = false, .error = "bad IPv4 address literal"},
    {.in = "<user@[IPv6:1.2.3.4]>", .ok = false, .error = "bad IPv6 address literal"},
    {.in = "<user@[IPv6:]>", .ok = false, .error = "bad IPv6 address literal"},
    {.in = "<user@[x400:foo]>", .ok = false, .error = "unsupported address literal"},
    {.in = "<user@[1.2.3. 4]>", .ok = false, .error = "whitespace in address"},
    {.in = "<user@[1.2.3.4]x>", .ok = false, .error = "invalid character in domain"},
    /* source routes */
    {.in = "<@a:user>", .ok = false, .error = "source route to an unqualified name"},
    {.in = "<@a;u@b>", .ok = false, .error = "bad source route"},
    {.in = "<@a,b:u@c>", .ok = false, .error = "bad source route"},
    {.in = "<@a.:u@c>", .ok = false, .error = "invalid character in domain"},
    {.in = "<@[1.2.3.4]:u@c>", .ok = false, .error = "invalid character in domain"},
};

static void check_case(const struct addr_case *c, size_t i)
{
    struct mailaddr a;
    size_t consumed = 12345;
    const char *error = NULL;
    size_t len = c->len ? c->len : strlen(c->in);
    bool ok = addr_parse_path_opts(c->in, len, c->opts, &a, &consumed, &error);
    if (ok != c->ok)
        fail_msg("case %zu <%s>: ok=%d error=%s", i, c->in, ok, error ? error : "-");
    if (!ok) {
        assert_non_null(error);
        if (strcmp(error, c->error) != 0)
            fail_msg("case %zu <%s>: error \"%s\", want \"%s\"", i, c->in, error, c->error);
        assert_string_equal(a.local, "");
        return;
    }
    assert_string_equal(a.local, c->local);
    assert_string_equal(a.domain, c->domain);
    if (a.flags != c->flags)
        fail_msg("case %zu <%s>: flags %#x, want %#x", i, c->in, a.flags, c->flags);
    assert_int_equal(consumed, c->consumed ? c->consumed : len);
}

static void test_addr_path_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof addr_path_cases / sizeof addr_path_cases[0]; i++)
        check_case(&addr_path_cases[i], i);
}

/* Without options, addr_parse_path must behave as opts == 0 in every row. */
static void test_addr_path_default_opts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof addr_path_cases / sizeof addr_path_cases[0]; i++) {
        const struct addr_case *c = &addr_path_cases[i];
        if (c->opts != 0)
            continue;
        struct mailaddr a;
        size_t consumed;
        const char *error;
        assert_int_equal(addr_parse_path(c->in, c->len ? c->len : strlen(c->in), &a, &consumed,
                                         &error),
                         c->ok);
    }
}

static void fill(char *dst, char c, size_t n)
{
    memset(dst, c, n);
    dst[n] = '\0';
}

static void test_addr_limits(void **state)
{
    (void)state;
    char in[600], part[300];
    struct mailaddr a;
    size_t consumed;
    const char *error;

    fill(part, 'l', 64);
    snprintf(in, sizeof in, "<%s@dom>", part);
    assert_true(addr_parse_path(in, strlen(in), &a, &consumed, &error));
    fill(part, 'l', 65);
    snprintf(in, sizeof in, "<%s@dom>", part);
    assert_false(addr_parse_path(in, strlen(in), &a, &consumed, &error));
    assert_string_equal(error, "local part too long");
    /* 62 bytes between the quotes is 64 on the wire */
    fill(part, 'q', 62);
    snprintf(in, sizeof in, "<\"%s\"@dom>", part);
    assert_true(addr_parse_path(in, strlen(in), &a, &consumed, &error));
    fill(part, 'q', 63);
    snprintf(in, sizeof in, "<\"%s\"@dom>", part);
    assert_false(addr_parse_path(in, strlen(in), &a, &consumed, &error));
    assert_string_equal(error, "local part too long");

    fill(part, 'd', 63);
    snprintf(in, sizeof in, "<u@%s.example>", part);
    assert_true(addr_parse_path(in, strlen(in), &a, &consumed, &error));
    fill(part, 'd', 64);
    snprintf(in, sizeof in, "<u@%s.example>", part);
    assert_false(addr_parse_path(in, strlen(in), &a, &consumed, &error));
    assert_string_equal(error, "domain label too long");

    /* 4 labels of 63 + 3 dots = 255: the domain limit; the path is then too long */
    char dom[300];
    snprintf(dom, sizeof dom, "%.63s.%.63s.%.63s.%.63s", part, part, part, part);
    assert_int_equal(strlen(dom), 255);
    assert_true(addr_parse_mailbox_opts("x", 0, &a, &error));
    snprintf(in, sizeof in, "<@%s:u@d>", dom);
    assert_true(addr_parse_path(in, strlen(in), &a, &consumed, &error) == false);
    assert_string_equal(error, "path too long");
    snprintf(in, sizeof in, "<u@%s>", dom);
    assert_false(addr_parse_path(in, strlen(in), &a, &consumed, &error));
    assert_string_equal(error, "path too long");
    snprintf(in, sizeof in, "<u@%sx>", dom);
    dom[251] = '\0'; /* "<u@" + 251 + ">" = 255 bytes: fits */
    snprintf(in, sizeof in, "<u@%s>", dom);
    assert_true(addr_parse_path(in, strlen(in), &a, &consumed, &error));
    assert_int_equal(consumed, 255);
    snprintf(in, sizeof in, "<uu@%s>", dom);
    assert_true(addr_parse_path(in, strlen(in), &a, &consumed, &error));
    assert_int_equal(consumed, 256);
    snprintf(in, sizeof in, "<uuu@%s>", dom);
    assert_false(addr_parse_path(in, strlen(in), &a, &consumed, &error));
    assert_string_equal(error, "path too long");
    /* a 256-byte domain fails on its own limit first */
    snprintf(in, sizeof in, "<u@%.63s.%.63s.%.63s.%.63sx>", part, part, part, part);
    assert_false(addr_parse_path(in, strlen(in), &a, &consumed, &error));
    assert_string_equal(error, "domain label too long");

    /* literals have a bound of their own */
    fill(part, '1', 70);
    snprintf(in, sizeof in, "<u@[%s]>", part);
    assert_false(addr_parse_path(in, strlen(in), &a, &consumed, &error));
    assert_string_equal(error, "address literal too long");
}

struct mailbox_case {
    const char *in;
    bool ok;
    const char *local;
    const char *domain;
    unsigned flags;
    const char *error;
};

static void test_addr_mailbox(void **state)
{
    (void)state;
    static const struct mailbox_case cases[] = {
        {.in = "sjoerd@Ecs.Thuis", .ok = true, .local = "sjoerd", .domain = "ecs.thuis"},
        {.in = "sjoerd", .ok = true, .local = "sjoerd", .domain = "",
         .flags = ADDR_F_UNQUALIFIED},
        {.in = "\"a b\"@c", .ok = true, .local = "a b", .domain = "c", .flags = ADDR_F_QUOTED},
        {.in = "u@[127.0.0.1]", .ok = true, .local = "u", .domain = "[127.0.0.1]",
         .flags = ADDR_F_LITERAL},
        {.in = "u@dom.", .ok = true, .local = "u", .domain = "dom", .flags = ADDR_F_TRAILING_DOT},
        {.in = "", .ok = false, .error = "empty local part"},
        {.in = "<u@dom>", .ok = false, .error = "invalid character in local part"},
        {.in = "u@dom>", .ok = false, .error = "invalid character in domain"},
        {.in = "@a:u@dom", .ok = false, .error = "empty local part"},
        {.in = "u@dom x", .ok = false, .error = "whitespace in address"},
        {.in = "\"u@dom", .ok = false, .error = "unbalanced quote"},
        {.in = "u@", .ok = false, .error = "missing domain"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct mailbox_case *c = &cases[i];
        struct mailaddr a;
        const char *error = NULL;
        bool ok = addr_parse_mailbox(c->in, &a, &error);
        if (ok != c->ok)
            fail_msg("mailbox %zu \"%s\": ok=%d error=%s", i, c->in, ok, error ? error : "-");
        if (ok) {
            assert_string_equal(a.local, c->local);
            assert_string_equal(a.domain, c->domain);
            assert_int_equal(a.flags, c->flags);
        } else {
            assert_string_equal(error, c->error);
        }
    }
}

struct format_case {
    const char *in;
    unsigned opts;
    const char *out;
};

static void test_addr_format(void **state)
{
    (void)state;
    static const struct format_case cases[] = {
        {.in = "<User@Dom.Example>", .out = "User@dom.example"},
        {.in = "<>", .out = ""},
        {.in = "<user>", .out = "user"},
        {.in = "<\"plain\"@d>", .out = "plain@d"},
        {.in = "<\"a b\"@d>", .out = "\"a b\"@d"},
        {.in = "<\"user@other\"@d>", .out = "\"user@other\"@d"},
        {.in = "<\"a..b\"@d>", .out = "\"a..b\"@d"},
        {.in = "<\".a\"@d>", .out = "\".a\"@d"},
        {.in = "<\"a.\"@d>", .out = "\"a.\"@d"},
        {.in = "<\"a\\\"b\\\\c\"@d>", .out = "\"a\\\"b\\\\c\"@d"},
        {.in = "<\"\\a\"@d>", .out = "a@d"},
        {.in = "<\"a(b)\"@d>", .out = "\"a(b)\"@d"},
        {.in = "<@r1,@r2:u@d.>", .out = "u@d"},
        {.in = "<u%v@[IPv6:::1]>", .out = "u%v@[IPv6:::1]"},
        {.in = "<\"j\xc3\xb6 rg\"@d>", .opts = ADDR_OPT_ALLOW_8BIT, .out = "\"j\xc3\xb6 rg\"@d"},
        {.in = "<\"j\xc3\xb6rg\"@d>", .opts = ADDR_OPT_ALLOW_8BIT, .out = "j\xc3\xb6rg@d"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct format_case *c = &cases[i];
        struct mailaddr a, b;
        size_t consumed;
        const char *error = NULL;
        assert_true(addr_parse_path_opts(c->in, strlen(c->in), c->opts, &a, &consumed, &error));
        struct buf out;
        buf_init(&out, 0);
        buf_append_char(&out, '<');
        addr_format(&a, &out);
        buf_append_char(&out, '>');
        out.data[out.len - 1] = '\0';
        assert_string_equal(out.data + 1, c->out);
        out.data[out.len - 1] = '>';
        /* the formatted form re-parses to the same mailbox */
        assert_true(addr_parse_path_opts(out.data, out.len, c->opts, &b, &consumed, &error));
        assert_string_equal(a.local, b.local);
        assert_string_equal(a.domain, b.domain);
        unsigned keep = ~(unsigned)(ADDR_F_QUOTED | ADDR_F_SOURCE_ROUTE | ADDR_F_TRAILING_DOT);
        assert_int_equal(a.flags & keep, b.flags & keep);
        buf_free(&out);
    }
}

static void test_addr_domain_is(void **state)
{
    (void)state;
    struct mailaddr a;
    const char *error;
    assert_true(addr_parse_mailbox("u@Zolder.Thuis.", &a, &error));
    assert_true(addr_domain_is(&a, "zolder.thuis"));
    assert_true(addr_domain_is(&a, "ZOLDER.thuis"));
    assert_false(addr_domain_is(&a, "zolder.thuis."));
    assert_false(addr_domain_is(&a, "thuis"));
    assert_true(addr_parse_mailbox("u", &a, &error));
    assert_true(addr_domain_is(&a, ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_path_table),
        cmocka_unit_test(test_addr_path_default_opts),
        cmocka_unit_test(test_addr_limits),
        cmocka_unit_test(test_addr_mailbox),
        cmocka_unit_test(test_addr_format),
        cmocka_unit_test(test_addr_domain_is),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
