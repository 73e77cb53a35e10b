/*
 * test_retain.c — retained messages: set, replace, delete by empty payload, lookup by filter
 * with wildcards and the '$' rule, counts and references.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "retain.h"

static struct mqtt_str S(const char *s) {
    struct mqtt_str v = {(const uint8_t *)s, strlen(s)};
    return v;
}

static void
put(struct retain *r, const char *topic, const char *payload)
{
    struct msg *m = msg_new(1, (const uint8_t *)topic, strlen(topic), (const uint8_t *)payload,
                            strlen(payload), 1, true);
    assert_non_null(m);
    assert_int_equal(retain_set(r, m), 0);
    msg_unref(m);
}

struct seen {
    char topics[64][64];
    int n;
};

static int collect(void *ctx, struct msg *m)
{
    struct seen *s = ctx;
    snprintf(s->topics[s->n++], 64, "%s", m->topic);
    return 0;
}

static int count(struct retain *r, const char *filter)
{
    struct seen s = {0};
    assert_int_equal(retain_match(r, S(filter), collect, &s), 0);
    return s.n;
}

static void test_set_replace_delete(void **state)
{
    struct retain r;
    size_t live = msg_live_count();

    assert_int_equal(retain_init(&r), 0);
    put(&r, "a/b", "1");
    assert_int_equal(retain_count(&r), 1);
    put(&r, "a/b", "2");
    assert_int_equal(retain_count(&r), 1);
    assert_memory_equal(retain_get(&r, S("a/b"))->payload, "2", 1);
    assert_int_equal(msg_live_count(), live + 1); /* the replaced one was released */
    put(&r, "a/b", "");
    assert_int_equal(retain_count(&r), 0);
    assert_null(retain_get(&r, S("a/b")));
    assert_int_equal(msg_live_count(), live);
    put(&r, "never/set", ""); /* deleting nothing is fine */
    assert_int_equal(retain_count(&r), 0);
    retain_cleanup(&r);
}

static void test_match_wildcards(void **state)
{
    struct retain r;

    assert_int_equal(retain_init(&r), 0);
    put(&r, "a", "x");
    put(&r, "a/b", "x");
    put(&r, "a/c", "x");
    put(&r, "a/b/c", "x");
    put(&r, "b/b", "x");
    put(&r, "/lead", "x");
    put(&r, "$SYS/broker/uptime", "x");
    assert_int_equal(count(&r, "a"), 1);
    assert_int_equal(count(&r, "a/b"), 1);
    assert_int_equal(count(&r, "a/+"), 2);
    assert_int_equal(count(&r, "+/b"), 2);
    assert_int_equal(count(&r, "a/#"), 4); /* a, a/b, a/c, a/b/c */
    assert_int_equal(count(&r, "#"), 6);   /* not $SYS */
    assert_int_equal(count(&r, "+/+/+"), 1);
    assert_int_equal(count(&r, "+"), 1);
    assert_int_equal(count(&r, "+/lead"), 1);
    assert_int_equal(count(&r, "$SYS/#"), 1);
    assert_int_equal(count(&r, "+/broker/uptime"), 0);
    assert_int_equal(count(&r, "$SYS/+/uptime"), 1);
    assert_int_equal(count(&r, "c"), 0);
    assert_int_equal(count(&r, "a/b/c/d"), 0);
    retain_cleanup(&r);
}

static int stop_at_two(void *ctx, struct msg *m)
{
    int *n = ctx;
    return ++*n == 2 ? 7 : 0;
}

static void test_match_stops(void **state)
{
    struct retain r;
    int n = 0;

    assert_int_equal(retain_init(&r), 0);
    for (int i = 0; i < 10; i++) {
        char t[16];
        snprintf(t, sizeof(t), "s/%d", i);
        put(&r, t, "v");
    }
    assert_int_equal(retain_count(&r), 10);
    assert_int_equal(retain_match(&r, S("s/#"), stop_at_two, &n), 7);
    assert_int_equal(n, 2);
    for (int i = 0; i < 10; i++) {
        char t[16];
        snprintf(t, sizeof(t), "s/%d", i);
        put(&r, t, "");
    }
    assert_int_equal(retain_count(&r), 0);
    assert_int_equal(count(&r, "#"), 0);
    retain_cleanup(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_replace_delete),
        cmocka_unit_test(test_match_wildcards),
        cmocka_unit_test(test_match_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
