/*
 * test_topic.c — mqtt/topic.c: topic name and filter validation, and a table of
 * (filter, topic, expected) match cases, plus a cross-check against a level-splitting
 * reference matcher on random inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "mqtt.h"

static int name_v(const char *s)
{
    return mqtt_topic_name_validate((const uint8_t *)s, strlen(s));
}

static int filter_v(const char *s)
{
    return mqtt_topic_filter_validate((const uint8_t *)s, strlen(s));
}

static bool match(const char *f, const char *t)
{
    return mqtt_topic_match((const uint8_t *)f, strlen(f), (const uint8_t *)t, strlen(t));
}

static const struct {
    const char *filter;
    const char *topic;
    bool expected;
} match_cases[] = {
    /* plain */
    {"a/b/c", "a/b/c", true},
    {"a/b/c", "a/b", false},
    {"a/b", "a/b/c", false},
    {"a/b/c", "a/b/d", false},
    {"A/b", "a/b", false}, /* case-sensitive */
    {"a/b ", "a/b", false},
    {"a/b/c/d", "a/b/c/d", true},
    {"a/b", "a/b/", false},
    {"a/b/", "a/b", false},
    {"caf\xc3\xa9/+", "caf\xc3\xa9/x", true},
    {"caf\xc3\xa9/+", "cafe/x", false},
    /* '#' */
    {"#", "a", true},
    {"#", "a/b/c", true},
    {"#", "/", true},
    {"#", "/a", true},
    {"#", "a$", true},
    {"sport/tennis/player1/#", "sport/tennis/player1", true}, /* the parent level */
    {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
    {"sport/#", "sport", true},
    {"sport/#", "sports", false},
    {"sport/#", "sport/", true},
    {"a/#", "a", true},
    {"a/#", "b", false},
    {"a/b/#", "a", false},
    {"a/b/c/#", "a/b/c", true},
    {"a/b/c/#", "a/b", false},
    {"/#", "/", true},
    {"/#", "a", false},
    {"/#", "/a/b", true},
    {"a/b/c/d/e/f/g/h/i/j/#", "a/b/c/d/e/f/g/h/i/j/k/l", true},
    /* '+' */
    {"sport/tennis/+", "sport/tennis/player1", true},
    {"sport/tennis/+", "sport/tennis/player2", true},
    {"sport/tennis/+", "sport/tennis/player1/ranking", false},
    {"sport/+", "sport", false},
    {"sport/+", "sport/", true}, /* '+' matches an empty level */
    {"+/+", "/finance", true},
    {"/+", "/finance", true},
    {"+", "/finance", false},
    {"+", "a", true},
    {"+", "/", false},
    {"+/+", "/", true},
    {"a/+/b", "a//b", true},
    {"a/+/+", "a//", true},
    {"a/+", "a/b/", false},
    {"a/+/", "a/b/", true},
    {"+/b/+/d", "a/b/c/d", true},
    {"+/b/+/d", "a/x/c/d", false},
    {"a/+/c", "a/b/c/d", false},
    {"+/#", "a", true},
    {"+/#", "a/b/c", true},
    {"+/#", "/", true},
    {"a/+/#", "a/b", true},
    {"a/+/#", "a", false},
    /* empty levels */
    {"a//b", "a//b", true},
    {"a//b", "a/b", false},
    {"a/b", "a//b", false},
    {"/", "/", true},
    {"//", "//", true},
    {"//", "/", false},
    /* '$' topics [MQTT-4.7.2-1] */
    {"#", "$SYS", false},
    {"#", "$SYS/broker/load", false},
    {"+", "$SYS", false},
    {"+/broker/load", "$SYS/broker/load", false},
    {"+/+/+", "$SYS/broker/load", false},
    {"+/#", "$SYS/broker", false},
    {"+/a", "$/a", false},
    {"$SYS/#", "$SYS/broker/load", true},
    {"$SYS/#", "$SYS", true},
    {"$SYS/#", "$SYS/", true},
    {"$SYS/+/load", "$SYS/broker/load", true},
    {"$SYS/broker/load", "$SYS/broker/load", true},
    {"$SYS", "$SYS/broker", false},
    {"$SYS/#", "$SYSX/a", false},
    {"$share/x", "$share/x", true},
    {"+/$x", "a/$x", true}, /* '$' only matters first */
    {"x/#", "x/$SYS", true},
};

static void match_table(void **state)
{
    size_t n = sizeof match_cases / sizeof match_cases[0];

    (void)state;
    assert_true(n >= 60);
    for (size_t i = 0; i < n; i++) {
        const char *f = match_cases[i].filter, *t = match_cases[i].topic;
        assert_int_equal(filter_v(f), 0);
        assert_int_equal(name_v(t), 0);
        if (match(f, t) != match_cases[i].expected) {
            print_error("case %zu: filter \"%s\" topic \"%s\": expected %d\n", i, f, t,
                        match_cases[i].expected);
            fail();
        }
    }
}

/* [MQTT-4.7.2-1] the '$' rule, spelled out */
static void MQTT_4_7_2_1_dollar_topics(void **state)
{
    (void)state;
    assert_false(match("#", "$SYS/uptime"));
    assert_false(match("+/uptime", "$SYS/uptime"));
    assert_true(match("$SYS/uptime", "$SYS/uptime"));
    assert_true(match("$SYS/+", "$SYS/uptime"));
}

static void name_validation(void **state)
{
    (void)state;
    assert_int_equal(name_v("a"), 0);
    assert_int_equal(name_v("/"), 0);
    assert_int_equal(name_v("a//b"), 0);
    assert_int_equal(name_v("$SYS/broker"), 0);
    assert_int_equal(name_v(" "), 0);
    assert_int_equal(name_v("sensors/building-1/floor-2/temp"), 0);
    assert_int_equal(name_v("\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80"), 0);
    /* [MQTT-4.7.3-1] */
    assert_int_equal(name_v(""), -MQTT_ETOPIC_EMPTY);
    /* [MQTT-3.3.2-2] [MQTT-4.7.1-1], at every offset across the eight-byte chunks */
    for (size_t len = 1; len <= 24; len++) {
        for (size_t at = 0; at < len; at++) {
            char buf[32];
            memset(buf, 'x', len);
            buf[len] = 0;
            buf[at] = (at & 1) ? '+' : '#';
            assert_int_equal(name_v(buf), -MQTT_ETOPIC_WILDCARD);
            buf[at] = '\xff';
            assert_int_equal(name_v(buf), -MQTT_EUTF8);
            buf[at] = 0;
            assert_int_equal(mqtt_topic_name_validate((const uint8_t *)buf, len), -MQTT_EUTF8_NUL);
            buf[at] = 'y';
            assert_int_equal(name_v(buf), 0);
        }
    }
    assert_int_equal(name_v("aaaaaaaaaaaaaaa\xc3\xa9"), 0); /* a multi-byte char in the tail */
    assert_int_equal(name_v("aaaaaaaaaaaaaaa\xc3"), -MQTT_EUTF8);
}

static void filter_validation(void **state)
{
    static const char *const ok[] = {
        "#",  "+",     "a",     "a/b",         "a/#",        "a/+",     "+/+",    "/+",
        "+/", "/",     "//",    "a//b",        "+/#",        "a/+/b/#", "$SYS/#", "sport/+/player1",
        "/#", "+/+/+", "a/ /b", "caf\xc3\xa9", "$share/g/t",
    };
    static const char *const bad[] = {
        "a#",     "#a", "a/#/b", "#/", "##",   "a/b#", "a+",   "+a", "a/+b",
        "a/b+/c", "++", "+#",    "#+", "a/#/", "/#/",  "a/##", "$+",
    };

    (void)state;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (filter_v(ok[i]) != 0) {
            print_error("\"%s\" should be valid\n", ok[i]);
            fail();
        }
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (filter_v(bad[i]) != -MQTT_EFILTER) {
            print_error("\"%s\" should be refused with EFILTER\n", bad[i]);
            fail();
        }
    }
    assert_int_equal(filter_v(""), -MQTT_ETOPIC_EMPTY);
    assert_int_equal(filter_v("a/\xc0\x80"), -MQTT_EUTF8);
    assert_int_equal(mqtt_topic_filter_validate((const uint8_t *)"a\0", 2), -MQTT_EUTF8_NUL);
}

/* ---- cross-check against a reference matcher -------------------------------------------- */

/* Split s at '/' into levels (pointers into a copy); returns the number of levels. */
static size_t split(char *s, char **lv)
{
    size_t n = 0;

    lv[n++] = s;
    for (char *p = s; *p; p++) {
        if (*p == '/') {
            *p = 0;
            lv[n++] = p + 1;
        }
    }
    return n;
}

static bool ref_match(const char *filter, const char *topic)
{
    char f[64], t[64], *fl[64], *tl[64];
    size_t nf, nt, i;

    if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
        return false;
    strcpy(f, filter);
    strcpy(t, topic);
    nf = split(f, fl);
    nt = split(t, tl);
    for (i = 0; i < nf; i++) {
        if (strcmp(fl[i], "#") == 0)
            return true; /* also matches the parent: i == nt */
        if (i >= nt)
            return false;
        if (strcmp(fl[i], "+") != 0 && strcmp(fl[i], tl[i]) != 0)
            return false;
    }
    return nf == nt;
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void random_string(uint64_t *rng, char *out, const char *alphabet)
{
    size_t len = 1 + xorshift(rng) % 8, na = strlen(alphabet);

    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[xorshift(rng) % na];
    out[len] = 0;
}

static void match_cross_check(void **state)
{
    const char *env = getenv("CAIRN_TEST_SEED");
    uint64_t rng = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
    size_t checked = 0;

    (void)state;
    if (rng == 0)
        rng = 1;
    printf("match_cross_check: seed %llu (set CAIRN_TEST_SEED to repeat)\n",
           (unsigned long long)rng);
    while (checked < 200000) {
        char f[16], t[16];
        random_string(&rng, f, "ab/+#$");
        random_string(&rng, t, "ab/$");
        if (filter_v(f) != 0)
            continue;
        if (mqtt_topic_match((const uint8_t *)f, strlen(f), (const uint8_t *)t, strlen(t)) !=
            ref_match(f, t)) {
            print_error("filter \"%s\" topic \"%s\": reference says %d\n", f, t, ref_match(f, t));
            fail();
        }
        checked++;
    }
}

/* Split s with mqtt_level_iter and join the levels with '|' into out. */
static void levels(const char *s, char *out, size_t cap)
{
    struct mqtt_level_iter it;
    struct mqtt_str in = {(const uint8_t *)s, strlen(s)}, level;
    size_t n = 0;

    mqtt_level_iter_init(&it, in);
    out[0] = 0;
    while (mqtt_level_next(&it, &level)) {
        n += (size_t)snprintf(out + n, cap - n, "%s[%.*s]", n ? "|" : "", (int)level.len,
                              (const char *)level.p);
        assert_true(n < cap);
    }
    assert_false(mqtt_level_next(&it, &level)); /* stays at the end */
}

static void level_iter(void **state)
{
    static const char *const cases[][2] = {
        {"a", "[a]"},
        {"a/b/c", "[a]|[b]|[c]"},
        {"", "[]"},
        {"/", "[]|[]"},
        {"/a", "[]|[a]"},
        {"a/", "[a]|[]"},
        {"a//b", "[a]|[]|[b]"},
        {"//", "[]|[]|[]"},
        {"+/#", "[+]|[#]"},
        {"$SYS/x", "[$SYS]|[x]"},
    };
    char out[128];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        levels(cases[i][0], out, sizeof out);
        assert_string_equal(out, cases[i][1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(match_table),       cmocka_unit_test(MQTT_4_7_2_1_dollar_topics),
        cmocka_unit_test(name_validation),   cmocka_unit_test(filter_validation),
        cmocka_unit_test(match_cross_check), cmocka_unit_test(level_iter),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
