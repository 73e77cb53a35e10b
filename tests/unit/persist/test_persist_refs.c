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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_against_model),
        cmocka_unit_test(test_growth_keeps_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
