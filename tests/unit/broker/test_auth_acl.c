/*
 * test_auth_acl.c — ACL files as tables: for each client and topic, read / write / subscribe.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_acl.h"

static const char *acl_text = "# anonymous clients\n"
                              "topic read public/#\n"
                              "topic write anon/in\n"
                              "\n"
                              "user alice\n"
                              "topic readwrite a/#\n"
                              "topic deny a/secret\n"
                              "topic read r/+/x\n"
                              "topic write w/#\n"
                              "topic $SYS/broker/#\n"
                              "  # an indented comment\n"
                              "user bob\r\n"
                              "topic b/only\r\n"
                              "user alice\n"
                              "topic read alice/again\n"
                              "pattern readwrite p/%u/data\n"
                              "pattern read c/%c/#\n"
                              "pattern deny c/%c/private\n"
                              "pattern write mix/%u/%c\n"
                              "pattern read lit/a%u\n";

struct row {
    const char *cid;
    const char *user;
    const char *topic;
    bool read, write, sub;
};

static struct auth_acl *parse(const char *text)
{
    char err[256] = "";
    struct auth_acl *a = auth_acl_parse("acl", text, strlen(text), err, sizeof(err));

    if (!a)
        fail_msg("parse failed: %s", err);
    return a;
}

static void run_rows(const struct auth_acl *a, const struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct row *r = &rows[i];
        size_t len = strlen(r->topic);
        bool has_wild = strpbrk(r->topic, "+#") != NULL;
        bool rd = !has_wild && auth_acl_check(a, r->cid, r->user, r->topic, len, AUTH_ACL_READ);
        bool wr = !has_wild && auth_acl_check(a, r->cid, r->user, r->topic, len, AUTH_ACL_WRITE);
        bool sb = auth_acl_check_subscribe(a, r->cid, r->user, r->topic, len);

        if (rd != r->read || wr != r->write || sb != r->sub)
            fail_msg("row %zu (%s/%s %s): got r%d w%d s%d want r%d w%d s%d", i, r->cid,
                     r->user ? r->user : "(anon)", r->topic, rd, wr, sb, r->read, r->write, r->sub);
    }
}

static void test_table(void **state)
{
    /* clang-format off */
    static const struct row rows[] = {
        /* anonymous: the rules before the first user line, and patterns without %u */
        {"c1", NULL, "public/news", true, false, true},
        {"c1", NULL, "public", true, false, true},
        {"c1", NULL, "public/#", false, false, true},
        {"c1", NULL, "public/+/x", false, false, true},
        {"c1", NULL, "#", false, false, false},
        {"c1", NULL, "anon/in", false, true, false},
        {"c1", NULL, "a/x", false, false, false},
        {"c1", NULL, "p/alice/data", false, false, false},
        {"c1", NULL, "c/c1/t", true, false, true},
        {"c1", NULL, "c/c1/#", false, false, true},
        {"c1", NULL, "c/c2/t", false, false, false},
        /* alice: her blocks merged; deny wins; read vs write vs readwrite */
        {"c1", "alice", "a/x", true, true, true},
        {"c1", "alice", "a", true, true, true},
        {"c1", "alice", "a/#", false, false, true},
        {"c1", "alice", "a/+", false, false, true},
        {"c1", "alice", "a/secret", false, false, false},
        {"c1", "alice", "a/secret/x", true, true, true},
        {"c1", "alice", "r/1/x", true, false, true},
        {"c1", "alice", "r/+/x", false, false, true},
        {"c1", "alice", "r/#", false, false, false},
        {"c1", "alice", "r/1/y", false, false, false},
        {"c1", "alice", "w/1", false, true, false},
        {"c1", "alice", "w/#", false, false, false},
        {"c1", "alice", "alice/again", true, false, true},
        {"c1", "alice", "public/news", false, false, false},
        {"c1", "alice", "b/only", false, false, false},
        {"c1", "alice", "#", false, false, false},
        {"c1", "alice", "+/x", false, false, false},
        {"c1", "alice", "$SYS/broker/load", true, true, true},
        {"c1", "alice", "$SYS/#", false, false, false},
        /* bob: CRLF lines, access word optional */
        {"c2", "bob", "b/only", true, true, true},
        {"c2", "bob", "a/x", false, false, false},
        /* patterns: %u and %c per level, for every user */
        {"c1", "alice", "p/alice/data", true, true, true},
        {"c1", "alice", "p/bob/data", false, false, false},
        {"c1", "alice", "p/+/data", false, false, false},
        {"c2", "bob", "p/bob/data", true, true, true},
        {"c2", "carol", "p/carol/data", true, true, true},
        {"c2", "carol", "a/x", false, false, false},
        {"c2", "bob", "c/c2/x/y", true, false, true},
        {"c2", "bob", "c/c2/#", false, false, true},
        {"c2", "bob", "c/c2/private", false, false, false},
        {"c2", "bob", "c/c1/x", false, false, false},
        {"c2", "bob", "mix/bob/c2", false, true, false},
        {"c2", "bob", "mix/c2/bob", false, false, false},
        /* %u inside a level is literal */
        {"c2", "bob", "lit/abob", false, false, false},
        {"c2", "bob", "lit/a%u", true, false, true},
        /* ids that would widen a pattern match nothing */
        {"+", "bob", "c/+/x", false, false, false},
        {"#", "bob", "c/#", false, false, false},
        {"a/b", "bob", "c/a/b/x", false, false, false},
        {"c2", "+", "p/+/data", false, false, false},
        {"c2", "x/y", "p/x/y/data", false, false, false},
    };
    /* clang-format on */
    struct auth_acl *a = parse(acl_text);

    run_rows(a, rows, sizeof(rows) / sizeof(rows[0]));
    auth_acl_free(a);
}

static void test_deny_order_and_dollar(void **state)
{
    /* clang-format off */
    static const struct row rows[] = {
        /* deny before or after the grant: deny wins either way */
        {"c", "u", "x/y", false, false, false},
        {"c", "u", "x/z", true, true, true},
        {"c", "u", "x/#", false, false, true},
        {"c", "u", "y/1", false, false, false},
        /* "#" grants everything except $ topics [MQTT-4.7.2-1] */
        {"c", "v", "any/thing", true, true, true},
        {"c", "v", "#", false, false, true},
        {"c", "v", "$SYS/x", false, false, false},
        {"c", "v", "$SYS/#", false, false, false},
        {"c", "v", "+/x", false, false, true},
        /* a pattern deny reaches users with their own grants */
        {"c", "v", "d/v", false, false, false},
        /* a user without a block gets only patterns */
        {"c", "nobody", "any/thing", false, false, false},
        {"c", "nobody", "d/nobody", false, false, false},
    };
    /* clang-format on */
    struct auth_acl *a = parse("user u\n"
                               "topic deny x/y\n"
                               "topic x/#\n"
                               "topic y/#\n"
                               "topic deny y/#\n"
                               "user v\n"
                               "topic #\n"
                               "pattern deny d/%u\n");

    run_rows(a, rows, sizeof(rows) / sizeof(rows[0]));
    auth_acl_free(a);
}

static void test_empty_file_denies(void **state)
{
    struct auth_acl *a = parse("# nothing granted\n");

    assert_false(auth_acl_check(a, "c", NULL, "t", 1, AUTH_ACL_READ));
    assert_false(auth_acl_check(a, "c", "u", "t", 1, AUTH_ACL_WRITE));
    assert_false(auth_acl_check_subscribe(a, "c", "u", "#", 1));
    auth_acl_free(a);
    auth_acl_free(NULL);
}

static void test_long_substitution(void **state)
{
    char id[600], topic[700];
    struct auth_acl *a = parse("pattern read long/%c/x\n");

    memset(id, 'i', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    snprintf(topic, sizeof(topic), "long/%s/x", id);
    assert_true(auth_acl_check(a, id, NULL, topic, strlen(topic), AUTH_ACL_READ));
    topic[strlen(topic) - 1] = 'y';
    assert_false(auth_acl_check(a, id, NULL, topic, strlen(topic), AUTH_ACL_READ));
    assert_false(auth_acl_check_subscribe(a, id, NULL, topic, strlen(topic) - 2));
    topic[strlen(topic) - 1] = 'x';
    assert_true(auth_acl_check_subscribe(a, id, NULL, topic, strlen(topic)));
    auth_acl_free(a);
}

static void expect_error(const char *text, const char *want)
{
    char err[256] = "";
    struct auth_acl *a = auth_acl_parse("acl", text, strlen(text), err, sizeof(err));

    assert_null(a);
    if (strcmp(err, want) != 0)
        fail_msg("error \"%s\", expected \"%s\"", err, want);
}

static void test_malformed(void **state)
{
    expect_error("topic a\ntopci b\n", "acl:2: unknown keyword (topic, pattern or user)");
    expect_error("topic\n", "acl:1: missing topic filter");
    expect_error("# c\n\ntopic read\n", "acl:3: missing topic filter");
    expect_error("topic reed a/b\n", "acl:1: unknown access type (read, write, readwrite or deny)");
    expect_error("user x\ntopic a/#/b\n", "acl:2: invalid topic filter");
    expect_error("pattern read a/b#\n", "acl:1: invalid topic filter");
    expect_error("topic a\nuser\n", "acl:2: user line without a name");
    expect_error("user a\r\ntopic a\r\nuser   \r\n", "acl:3: user line without a name");
}

static void test_load_missing(void **state)
{
    char err[256];

    assert_null(auth_acl_load("/nonexistent/acl", err, sizeof(err)));
    assert_string_equal(err, "/nonexistent/acl: No such file or directory");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_deny_order_and_dollar),
        cmocka_unit_test(test_empty_file_denies),
        cmocka_unit_test(test_long_substitution),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_load_missing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
