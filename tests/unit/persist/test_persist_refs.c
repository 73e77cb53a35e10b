/*
 * test_persist_refs.c — the message reference table against a plain model: random adds and
 * removes (backward-shift deletion must keep every probe run whole), growth, id 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "persist_refs.h"

static void test_basic(void **state)
{
    struct persist_refs t = {0};
    assert_null(persist_refs_find(&t, 5));
    assert_int_equal(persist_refs_size(&t), 0);
    struct persist_ref *r = persist_refs_get(&t, 5);
    assert_non_null(r);
    r->count = 2;
    r->len = 100;
    assert_ptr_equal(persist_refs_find(&t, 5), r);
    assert_ptr_equal(persist_refs_get(&t, 5), r);
    assert_int_equal(persist_refs_size(&t), 1);

    /* id 0 lives beside the table */
    r = persist_refs_get(&t, 0);
    assert_non_null(r);
    assert_null(persist_refs_find(&t, 0)); /* count 0: not referenced yet */
    r->count = 1;
    assert_non_null(persist_refs_find(&t, 0));
    assert_int_equal(persist_refs_size(&t), 2);
    persist_refs_remove(&t, 0);
    assert_null(persist_refs_find(&t, 0));
    persist_refs_remove(&t, 5);
    persist_refs_remove(&t, 77); /* absent: nothing happens */
    assert_int_equal(persist_refs_size(&t), 0);
    persist_refs_cleanup(&t);
    persist_refs_cleanup(&t);
}

/* Deterministic pseudo-random numbers (xorshift). */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_against_model(void **state)
{
    enum { RANGE = 50000, OPS = 400000 };
    uint32_t *model = calloc(RANGE, sizeof *model);
    struct persist_refs t = {0};
    uint64_t seed = 88172645463325252ull;
    size_t live = 0;
    assert_non_null(model);
    for (int op = 0; op < OPS; op++) {
        /* ids from a counter-like range with a far-away block, as after a long-lived queue */
        uint64_t id = rnd(&seed) % RANGE;
        uint64_t key = id < RANGE / 2 ? id + 1 : id + (1ull << 40);
        if (rnd(&seed) % 3) {
            struct persist_ref *r = persist_refs_get(&t, key);
            assert_non_null(r);
            if (r->count == 0) {
                r->len = (uint32_t)id;
                live++;
            }
            r->count++;
            model[id]++;
        } else if (model[id]) {
            struct persist_ref *r = persist_refs_find(&t, key);
            assert_non_null(r);
            assert_int_equal(r->count, model[id]);
            if (--r->count == 0) {
                persist_refs_remove(&t, key);
                live--;
            }
            model[id]--;
        }
        if (op % 50000 == 0) {
            for (uint64_t i = 0; i < RANGE; i++) {
                uint64_t k = i < RANGE / 2 ? i + 1 : i + (1ull << 40);
                struct persist_ref *r = persist_refs_find(&t, k);
                if (model[i]) {
                    assert_non_null(r);
                    assert_int_equal(r->count, model[i]);
                    assert_int_equal(r->len, (uint32_t)i);
                } else {
                    assert_null(r);
                }
            }
            assert_int_equal(persist_refs_size(&t), live);
        }
    }
    /* drain everything: the table ends empty */
    for (uint64_t i = 0; i < RANGE; i++) {
        uint64_t k = i < RANGE / 2 ? i + 1 : i + (1ull << 40);
        if (model[i])
            persist_refs_remove(&t, k);
    }
    assert_int_equal(persist_refs_size(&t), 0);
    for (size_t i = 0; i < t.cap; i++)
        assert_true(t.slots[i].id == 0);
    persist_refs_cleanup(&t);
    free(model);
}

static void test_growth_keeps_entries(void **state)
{
    struct persist_refs t = {0};
    for (uint64_t i = 1; i <= 100000; i++) {
        struct persist_ref *r = persist_refs_get(&t, i * 7919);
        assert_non_null(r);
        r->count = (uint32_t)i;
    }
    assert_true(t.used * 5 <= t.cap * 4);
    for (uint64_t i = 1; i <= 100000; i++) {
        struct persist_ref *r = persist_refs_find(&t, i * 7919);
        assert_non_null(r);
        assert_int_equal(r->count, (uint32_t)i);
    }
    persist_refs_cleanup(&t);
}

static void test_sort_merge(void **state)
{
    struct persist_ref a[6] = {{9, 1, 90}, {1ull << 40, 2, 1}, {9, 3, 90},
                               {0, 1, 5},  {2, 1, 20},         {9, 1, 90}};
    struct persist_ref tmp[6];
    size_t n = 0;
    assert_int_equal(persist_refs_sort_merge(a, tmp, 6, &n), 0);
    assert_int_equal(n, 4);
    assert_true(a[0].id == 0 && a[0].count == 1);
    assert_true(a[1].id == 2 && a[1].count == 1 && a[1].len == 20);
    assert_true(a[2].id == 9 && a[2].count == 5 && a[2].len == 90);
    assert_true(a[3].id == 1ull << 40 && a[3].count == 2);
    assert_int_equal(persist_refs_sort_merge(a, tmp, 0, &n), 0);
    assert_int_equal(n, 0);
}

/* A table filled by persist_refs_build() behaves like one filled entry by entry. */
static void test_build(void **state)
{
    static const size_t sizes[] = {0, 1, 5, 767, 768, 1000, 100000};
    uint64_t seed = 0x2545F4914F6CDD1Dull;
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        size_t n = sizes[z];
        struct persist_ref *a = calloc(n + 2, sizeof *a), *tmp = calloc(n + 2, sizeof *tmp);
        struct persist_ref *want = calloc(n + 2, sizeof *want);
        struct persist_refs t = {0};
        size_t m = 0;
        assert_non_null(a);
        for (size_t i = 0; i < n; i++)
            a[i] =
                (struct persist_ref){rnd(&seed) % (n * 4 + 1), (uint32_t)(i % 7) + 1, (uint32_t)i};
        assert_int_equal(persist_refs_sort_merge(a, tmp, n, &m), 0);
        memcpy(want, a, m * sizeof *a);
        assert_int_equal(persist_refs_build(&t, a, m), 0);
        assert_int_equal(persist_refs_size(&t), m);
        assert_true(t.used * 5 <= t.cap * 4);
        for (size_t i = 0; i < m; i++) {
            struct persist_ref *r = persist_refs_find(&t, want[i].id);
            assert_non_null(r);
            assert_int_equal(r->count, want[i].count);
            assert_int_equal(r->len, want[i].len);
        }
        /* and it keeps working: add, then remove everything in another order */
        struct persist_ref *r = persist_refs_get(&t, 1ull << 50);
        assert_non_null(r);
        r->count = 1;
        persist_refs_remove(&t, 1ull << 50);
        for (size_t i = m; i-- > 0;) {
            persist_refs_remove(&t, want[i].id);
            if (i % 3 == 0 && i > 0)
                assert_non_null(persist_refs_find(&t, want[i - 1].id));
        }
        assert_int_equal(persist_refs_size(&t), 0);
        persist_refs_cleanup(&t);
        free(a);
        free(tmp);
        free(want);
    }
}

/* Ids whose slots crowd the end of a 1024-slot table: the bulk load has to wrap around. */
static void test_build_wraps(void **state)
{
    struct persist_refs probe = {0}, t = {0};
    struct persist_ref a[40], tmp[40];
    size_t n = 0, m = 0;
    for (uint64_t id = 1; n < 12; id++) {
        struct persist_ref *r = persist_refs_get(&probe, id); /* empty table: its home slot */
        assert_non_null(r);
        size_t slot = (size_t)(r - probe.slots);
        persist_refs_remove(&probe, id);
        if (slot >= probe.cap - 4)
            a[n++] = (struct persist_ref){id, 1, (uint32_t)slot};
    }
    assert_int_equal(probe.cap, 1024);
    for (uint64_t id = 1u << 20; n < 40; id++)
        a[n++] = (struct persist_ref){id, 2, 0};
    assert_int_equal(persist_refs_sort_merge(a, tmp, n, &m), 0);
    assert_int_equal(m, 40);
    assert_int_equal(persist_refs_build(&t, a, m), 0);
    assert_int_equal(t.cap, 1024);
    assert_int_equal(persist_refs_size(&t), 40);
    assert_true(t.slots[0].id != 0 || t.slots[1].id != 0); /* something wrapped */
    for (size_t i = 0; i < m; i++) {
        struct persist_ref *r = persist_refs_find(&t, a[i].id);
        assert_non_null(r);
        assert_int_equal(r->count, a[i].count);
    }
    for (size_t i = 0; i < m; i++)
        persist_refs_remove(&t, a[i].id);
    assert_int_equal(persist_refs_size(&t), 0);
    persist_refs_cleanup(&t);
    persist_refs_cleanup(&probe);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_against_model),
        cmocka_unit_test(test_growth_keeps_entries),
        cmocka_unit_test(test_sort_merge),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_build_wraps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
