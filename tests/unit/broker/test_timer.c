/*
 * test_timer.c — the timer heap: order, ties, cancel anywhere, re-arming callbacks, and the heap
 * property under a long random sequence of adds, cancels and runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "timer.h"

static int fired[1000];
static size_t nfired;

static void record(void *arg)
{
    fired[nfired++] = (int)(intptr_t)arg;
}

static void test_order_and_ties(void **state)
{
    struct timer_heap h;
    static const uint64_t deadlines[] = {50, 10, 30, 10, 20, 50, 0};

    (void)state;
    timer_heap_init(&h);
    nfired = 0;
    for (int i = 0; i < 7; i++)
        assert_non_null(timer_heap_add(&h, deadlines[i], record, (void *)(intptr_t)i));
    assert_int_equal(timer_heap_next(&h), 0);
    assert_int_equal(timer_heap_run(&h, 10), 3);
    assert_int_equal(fired[0], 6);
    assert_int_equal(fired[1], 1); /* equal deadlines fire in insertion order */
    assert_int_equal(fired[2], 3);
    assert_int_equal(timer_heap_next(&h), 20);
    assert_int_equal(timer_heap_run(&h, 100), 4);
    assert_int_equal(fired[3], 4);
    assert_int_equal(fired[4], 2);
    assert_int_equal(fired[5], 0);
    assert_int_equal(fired[6], 5);
    assert_int_equal(timer_heap_next(&h), UINT64_MAX);
    timer_heap_cleanup(&h);
}

static void test_cancel(void **state)
{
    struct timer_heap h;
    struct timer *t[8];

    (void)state;
    timer_heap_init(&h);
    nfired = 0;
    for (int i = 0; i < 8; i++)
        t[i] = timer_heap_add(&h, (uint64_t)(i * 10), record, (void *)(intptr_t)i);
    timer_heap_cancel(&h, t[0]); /* the head */
    timer_heap_cancel(&h, t[7]); /* the last */
    timer_heap_cancel(&h, t[3]); /* the middle */
    timer_heap_cancel(&h, NULL); /* nothing */
    assert_int_equal(h.n, 5);
    assert_int_equal(timer_heap_next(&h), 10);
    assert_int_equal(timer_heap_run(&h, 1000), 5);
    assert_int_equal(fired[0], 1);
    assert_int_equal(fired[1], 2);
    assert_int_equal(fired[2], 4);
    assert_int_equal(fired[3], 5);
    assert_int_equal(fired[4], 6);
    timer_heap_cleanup(&h);
}

struct rearm {
    struct timer_heap *h;
    int count;
};

static void rearm_cb(void *arg)
{
    struct rearm *r = arg;

    r->count++;
    assert_non_null(timer_heap_add(r->h, 0, rearm_cb, r)); /* due at once, again */
}

/* A callback that re-arms itself with a past deadline runs once per call, not forever. */
static void test_rearm_does_not_starve(void **state)
{
    struct timer_heap h;
    struct rearm r = {&h, 0};

    (void)state;
    timer_heap_init(&h);
    assert_non_null(timer_heap_add(&h, 0, rearm_cb, &r));
    assert_int_equal(timer_heap_run(&h, 5), 1);
    assert_int_equal(r.count, 1);
    assert_int_equal(timer_heap_run(&h, 5), 1);
    assert_int_equal(r.count, 2);
    timer_heap_cleanup(&h); /* frees the pending one */
}

static void nop(void *arg)
{
    (void)arg;
}

static void check_heap(const struct timer_heap *h)
{
    assert_true(timer__heap_valid(h));
}

static void test_random(void **state)
{
    struct timer_heap h;
    struct timer *live[512];
    size_t nlive = 0;
    uint64_t seed = 0x9e3779b97f4a7c15u;
    uint64_t now = 0;

    (void)state;
    timer_heap_init(&h);
    for (int step = 0; step < 20000; step++) {
        uint64_t r;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        r = seed;
        if (r % 3 != 0 && nlive < 512) {
            live[nlive] = timer_heap_add(&h, now + r % 1000, nop, NULL);
            assert_non_null(live[nlive]);
            nlive++;
        } else if (nlive > 0) {
            size_t i = (size_t)(r >> 20) % nlive;
            timer_heap_cancel(&h, live[i]);
            live[i] = live[--nlive];
        }
        assert_int_equal(h.n, nlive);
        check_heap(&h);
    }
    /* drain in order: each run's deadlines never go backwards */
    {
        uint64_t prev = 0;
        while (h.n) {
            uint64_t next = timer_heap_next(&h);
            assert_true(next >= prev);
            prev = next;
            assert_int_equal(timer_heap_run(&h, next) >= 1, 1);
        }
    }
    timer_heap_cleanup(&h);
}

static void test_clock(void **state)
{
    uint64_t a = timer_clock_ms();
    uint64_t b = timer_clock_ms();

    (void)state;
    assert_true(b >= a);
    assert_true(a > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_ties),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_rearm_does_not_starve),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
