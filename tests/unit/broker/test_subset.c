/*
 * test_subset.c — a session's subscription set: add, replace, find, remove (the empty filter
 * and filters that differ in one byte or in length), iteration visiting each entry once, and
 * 100,000 filters added, half removed in a scattered order, re-added and all removed, with
 * every lookup right at each stage and the slots given back.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "subset.h"

static struct mqtt_str S(const char *s) {
    struct mqtt_str v = {(const uint8_t *)s, strlen(s)};
    return v;
}

static void
basics(void **state)
{
    struct subset set;
    struct subset_entry *e;
    size_t cur = 0, seen = 0;

    (void)state;
    subset_init(&set);
    assert_null(subset_get(&set, S("a")));
    assert_int_equal(subset_del(&set, S("a")), -ENOENT);
    assert_null(subset_next(&set, &cur));
    assert_int_equal(subset_put(&set, S("a/#"), 1), 0);
    assert_int_equal(subset_put(&set, S("a/#"), 2), 1);
    assert_int_equal(subset_put(&set, S("a/+"), 0), 0);
    assert_int_equal(subset_put(&set, S("a/"), 1), 0);
    assert_int_equal(subset_put(&set, S(""), 0), 0);
    assert_int_equal(subset_count(&set), 4);
    e = subset_get(&set, S("a/#"));
    assert_non_null(e);
    assert_int_equal(e->qos, 2);
    assert_int_equal(e->len, 3);
    assert_string_equal(e->filter, "a/#");
    assert_non_null(subset_get(&set, S("")));
    assert_null(subset_get(&set, S("a")));
    assert_null(subset_get(&set, S("a/#/")));
    while ((e = subset_next(&set, &cur)))
        seen++;
    assert_int_equal(seen, 4);
    assert_int_equal(subset_del(&set, S("a/+")), 0);
    assert_int_equal(subset_del(&set, S("a/+")), -ENOENT);
    assert_non_null(subset_get(&set, S("a/")));
    assert_int_equal(subset_count(&set), 3);
    subset_cleanup(&set);
    assert_int_equal(subset_count(&set), 0);
    assert_null(subset_get(&set, S("a/#")));
    subset_cleanup(&set); /* twice is fine */
}

static void many(void **state)
{
    enum { N = 100000 };
    struct subset set;
    char f[48];
    size_t cur = 0, seen = 0;
    struct subset_entry *e;

    (void)state;
    subset_init(&set);
    for (size_t i = 0; i < N; i++) {
        snprintf(f, sizeof(f), "site/%zu/dev/+/temp", i);
        assert_int_equal(subset_put(&set, S(f), (uint8_t)(i % 3)), 0);
    }
    assert_int_equal(subset_count(&set), N);
    while ((e = subset_next(&set, &cur)))
        seen++;
    assert_int_equal(seen, N);
    /* remove every i with i * 7919 % N < N / 2: scattered over the table */
    for (size_t i = 0; i < N; i++) {
        snprintf(f, sizeof(f), "site/%zu/dev/+/temp", i);
        if (i * 7919 % N < N / 2)
            assert_int_equal(subset_del(&set, S(f)), 0);
    }
    assert_int_equal(subset_count(&set), N / 2);
    for (size_t i = 0; i < N; i++) {
        snprintf(f, sizeof(f), "site/%zu/dev/+/temp", i);
        e = subset_get(&set, S(f));
        if (i * 7919 % N < N / 2) {
            assert_null(e);
            assert_int_equal(subset_put(&set, S(f), 2), 0);
        } else {
            assert_non_null(e);
            assert_int_equal(e->qos, i % 3);
        }
    }
    assert_int_equal(subset_count(&set), N);
    for (size_t i = 0; i < N; i++) {
        snprintf(f, sizeof(f), "site/%zu/dev/+/temp", N - 1 - i);
        assert_int_equal(subset_del(&set, S(f)), 0);
        if (i % 9973 == 0) {
            snprintf(f, sizeof(f), "site/%d/dev/+/temp", N / 3);
            assert_true((subset_get(&set, S(f)) != NULL) == (N - 1 - i > N / 3));
        }
        /* never more than 16 slots per entry: the table shrinks as it empties */
        assert_true(set.cap <= 16 * (set.n + 1));
    }
    assert_int_equal(subset_count(&set), 0);
    assert_int_equal(set.cap, 0);
    subset_cleanup(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(basics),
        cmocka_unit_test(many),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
