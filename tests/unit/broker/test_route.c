/*
 * test_route.c — the subscription tree: matching (literal, '+', '#', the '$' rule, empty
 * levels), once-per-subscriber at the highest QoS, replace, and exact unsubscribe.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route.h"

static struct mqtt_str S(const char *s) {
    struct mqtt_str v = {(const uint8_t *)s, strlen(s)};
    return v;
}

static int sub_a,
    sub_b, sub_c;

/* Does a single subscription to filter match topic? */
static bool one_match(const char *filter, const char *topic)
{
    struct route r;
    struct route_hits h = {0};
    bool hit;

    assert_int_equal(route_init(&r), 0);
    assert_int_equal(route_subscribe(&r, S(filter), &sub_a, 1), 0);
    assert_int_equal(route_match(&r, S(topic), &h), 0);
    hit = h.n == 1 && h.v[0].sub == &sub_a;
    assert_true(h.n <= 1);
    route_hits_cleanup(&h);
    route_cleanup(&r);
    return hit;
}

struct mcase {
    const char *filter;
    const char *topic;
    bool match;
};

static const struct mcase cases[] = {
    {"a", "a", true},
    {"a", "b", false},
    {"a/b", "a/b", true},
    {"a/b", "a", false},
    {"a", "a/b", false},
    {"a/b/c/d/e/f/g/h", "a/b/c/d/e/f/g/h", true},
    {"a/b/c/d/e/f/g/h", "a/b/c/d/e/f/g", false},
    {"+", "a", true},
    {"+", "a/b", false},
    {"+/b", "a/b", true},
    {"a/+", "a/b", true},
    {"a/+", "a", false},
    {"a/+", "a/", true},
    {"+/+", "/a", true},
    {"+", "/a", false},
    {"/+", "/a", true},
    {"a/+/c", "a/b/c", true},
    {"a/+/c", "a/b/d", false},
    {"a/+/+/d", "a/b/c/d", true},
    {"#", "a", true},
    {"#", "a/b/c", true},
    {"#", "/", true},
    {"a/#", "a", true},
    {"a/#", "a/b", true},
    {"a/#", "a/b/c/d", true},
    {"a/#", "b/a", false},
    {"a/#", "ab", false},
    {"a/b/#", "a/b", true},
    {"+/#", "a/b/c", true},
    {"+/b/#", "a/b/c", true},
    {"+/b/#", "a/c/b", false},
    {"a//b", "a//b", true},
    {"a/+/b", "a//b", true},
    {"/", "/", true},
    {"sport/tennis/+", "sport/tennis/player1", true},
    {"sport/tennis/+", "sport/tennis/player1/ranking", false},
    /* the $ rule [MQTT-4.7.2-1] */
    {"#", "$SYS/broker/uptime", false},
    {"+/broker/uptime", "$SYS/broker/uptime", false},
    {"+/#", "$SYS/x", false},
    {"$SYS/#", "$SYS/broker/uptime", true},
    {"$SYS/+/uptime", "$SYS/broker/uptime", true},
    {"$SYS", "$SYS", true},
    {"a/#", "a/$x", true},
    {"a/+", "a/$x", true},
    /* case and level boundaries */
    {"A", "a", false},
    {"ab/c", "a/bc", false},
};

static void test_match_table(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = one_match(cases[i].filter, cases[i].topic);
        if (got != cases[i].match)
            fail_msg("filter '%s' topic '%s': expected %d", cases[i].filter, cases[i].topic,
                     cases[i].match);
    }
}

static int find_qos(const struct route_hits *h, void *sub)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i].sub == sub)
            return h->v[i].qos;
    return -1;
}

static void test_overlap_once_highest_qos(void **state)
{
    struct route r;
    struct route_hits h = {0};

    assert_int_equal(route_init(&r), 0);
    assert_int_equal(route_subscribe(&r, S("a/b"), &sub_a, 0), 0);
    assert_int_equal(route_subscribe(&r, S("a/+"), &sub_a, 2), 0);
    assert_int_equal(route_subscribe(&r, S("#"), &sub_a, 1), 0);
    assert_int_equal(route_subscribe(&r, S("a/#"), &sub_b, 1), 0);
    assert_int_equal(route_subscribe(&r, S("+/b"), &sub_b, 0), 0);
    assert_int_equal(route_count(&r), 5);
    assert_int_equal(route_match(&r, S("a/b"), &h), 0);
    assert_int_equal(h.n, 2);
    assert_int_equal(find_qos(&h, &sub_a), 2);
    assert_int_equal(find_qos(&h, &sub_b), 1);
    assert_int_equal(route_match(&r, S("x/b"), &h), 0);
    assert_int_equal(h.n, 2);
    assert_int_equal(find_qos(&h, &sub_a), 1);
    assert_int_equal(find_qos(&h, &sub_b), 0);
    route_hits_cleanup(&h);
    route_cleanup(&r);
}

static void test_resubscribe_replaces_qos(void **state)
{
    struct route r;
    struct route_hits h = {0};

    assert_int_equal(route_init(&r), 0);
    assert_int_equal(route_subscribe(&r, S("t"), &sub_a, 2), 0);
    assert_int_equal(route_subscribe(&r, S("t"), &sub_a, 0), 1);
    assert_int_equal(route_count(&r), 1);
    assert_int_equal(route_match(&r, S("t"), &h), 0);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.v[0].qos, 0);
    route_hits_cleanup(&h);
    route_cleanup(&r);
}

static void test_unsubscribe_exact(void **state)
{
    struct route r;
    struct route_hits h = {0};

    assert_int_equal(route_init(&r), 0);
    assert_int_equal(route_subscribe(&r, S("a/+"), &sub_a, 1), 0);
    assert_int_equal(route_subscribe(&r, S("a/b"), &sub_a, 1), 0);
    assert_int_equal(route_subscribe(&r, S("a/+"), &sub_b, 1), 0);
    /* not the filter subscribed: nothing removed */
    assert_int_equal(route_unsubscribe(&r, S("a/#"), &sub_a), -ENOENT);
    assert_int_equal(route_unsubscribe(&r, S("a"), &sub_a), -ENOENT);
    assert_int_equal(route_unsubscribe(&r, S("a/b"), &sub_c), -ENOENT);
    assert_int_equal(route_count(&r), 3);
    assert_int_equal(route_unsubscribe(&r, S("a/+"), &sub_a), 0);
    assert_int_equal(route_unsubscribe(&r, S("a/+"), &sub_a), -ENOENT);
    assert_int_equal(route_match(&r, S("a/b"), &h), 0);
    assert_int_equal(h.n, 2); /* sub_a via a/b, sub_b via a/+ */
    assert_int_equal(route_match(&r, S("a/c"), &h), 0);
    assert_int_equal(h.n, 1);
    assert_ptr_equal(h.v[0].sub, &sub_b);
    assert_int_equal(route_unsubscribe(&r, S("a/b"), &sub_a), 0);
    assert_int_equal(route_unsubscribe(&r, S("a/+"), &sub_b), 0);
    assert_int_equal(route_count(&r), 0);
    assert_int_equal(route_match(&r, S("a/b"), &h), 0);
    assert_int_equal(h.n, 0);
    /* the tree is pruned and still usable */
    assert_int_equal(route_subscribe(&r, S("a/b"), &sub_c, 2), 0);
    assert_int_equal(route_match(&r, S("a/b"), &h), 0);
    assert_int_equal(h.n, 1);
    route_hits_cleanup(&h);
    route_cleanup(&r);
}

static void test_many_subscribers_and_levels(void **state)
{
    struct route r;
    struct route_hits h = {0};
    static int subs[500];
    char f[64];

    assert_int_equal(route_init(&r), 0);
    for (int i = 0; i < 500; i++) {
        snprintf(f, sizeof(f), "dev/%d/temp", i);
        assert_int_equal(route_subscribe(&r, S(f), &subs[i], 1), 0);
        assert_int_equal(route_subscribe(&r, S("dev/+/temp"), &subs[i], 0), 0);
    }
    assert_int_equal(route_match(&r, S("dev/77/temp"), &h), 0);
    assert_int_equal(h.n, 500);
    assert_int_equal(find_qos(&h, &subs[77]), 1);
    assert_int_equal(find_qos(&h, &subs[78]), 0);
    assert_int_equal(route_match(&r, S("dev/77/humidity"), &h), 0);
    assert_int_equal(h.n, 0);
    for (int i = 0; i < 500; i += 2) {
        snprintf(f, sizeof(f), "dev/%d/temp", i);
        assert_int_equal(route_unsubscribe(&r, S(f), &subs[i]), 0);
        assert_int_equal(route_unsubscribe(&r, S("dev/+/temp"), &subs[i]), 0);
    }
    assert_int_equal(route_count(&r), 500);
    assert_int_equal(route_match(&r, S("dev/77/temp"), &h), 0);
    assert_int_equal(h.n, 250);
    route_hits_cleanup(&h);
    route_cleanup(&r);
}

static void test_deep_topic(void **state)
{
    struct route r;
    struct route_hits h = {0};
    char topic[4096], filter[4096];
    size_t n = 0, m = 0;

    for (int i = 0; i < 300; i++) {
        n += (size_t)snprintf(topic + n, sizeof(topic) - n, "%sl%d", i ? "/" : "", i);
        m += (size_t)snprintf(filter + m, sizeof(filter) - m, "%s%s", i ? "/" : "",
                              i % 7 == 3 ? "+" : "x");
    }
    assert_int_equal(route_init(&r), 0);
    assert_int_equal(route_subscribe(&r, S(topic), &sub_a, 1), 0);
    assert_int_equal(route_subscribe(&r, S("l0/l1/#"), &sub_b, 2), 0);
    assert_int_equal(route_subscribe(&r, S(filter), &sub_c, 2), 0);
    assert_int_equal(route_match(&r, S(topic), &h), 0);
    assert_int_equal(h.n, 2);
    assert_int_equal(find_qos(&h, &sub_a), 1);
    assert_int_equal(find_qos(&h, &sub_b), 2);
    route_hits_cleanup(&h);
    route_cleanup(&r);
}

static void test_dollar_with_specific_subscriber(void **state)
{
    struct route r;
    struct route_hits h = {0};

    assert_int_equal(route_init(&r), 0);
    assert_int_equal(route_subscribe(&r, S("#"), &sub_a, 0), 0);
    assert_int_equal(route_subscribe(&r, S("$SYS/#"), &sub_b, 0), 0);
    assert_int_equal(route_subscribe(&r, S("+/+/uptime"), &sub_c, 0), 0);
    assert_int_equal(route_match(&r, S("$SYS/broker/uptime"), &h), 0);
    assert_int_equal(h.n, 1);
    assert_ptr_equal(h.v[0].sub, &sub_b);
    assert_int_equal(route_match(&r, S("x/broker/uptime"), &h), 0);
    assert_int_equal(h.n, 2);
    route_hits_cleanup(&h);
    route_cleanup(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_table),
        cmocka_unit_test(test_overlap_once_highest_qos),
        cmocka_unit_test(test_resubscribe_replaces_qos),
        cmocka_unit_test(test_unsubscribe_exact),
        cmocka_unit_test(test_many_subscribers_and_levels),
        cmocka_unit_test(test_deep_topic),
        cmocka_unit_test(test_dollar_with_specific_subscriber),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
