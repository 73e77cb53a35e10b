/*
 * timer.h — one-shot timers in a binary min-heap, keyed by a deadline in milliseconds of
 * CLOCK_MONOTONIC. The loop owns one heap; every timeout in the broker (CONNECT timeout,
 * keepalive, $SYS interval, session expiry) is a node in it, so the loop wakes exactly for the
 * next deadline instead of scanning clients.
 *
 * Lifetime: a struct timer is owned by the heap from timer_heap_add() until it fires (it is
 * freed as its callback starts) or is cancelled (freed by the cancel). The handle must not
 * be used after either. Periodic work re-arms from its own callback. A callback may add and
 * cancel other timers; timers added during timer_heap_run() with delay 0 run on the next call,
 * so a callback that re-arms itself at 0 cannot starve the loop.
 *
 * The broker-facing calls (loop_timer_add, loop_timer_cancel, loop_now_ms) are in loop.h.
 */
#ifndef CAIRN_TIMER_H
#define CAIRN_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"

struct timer_heap {
    struct timer **v; /* v[0] holds the earliest deadline */
    size_t n;
    size_t cap;
    uint64_t seq; /* insertion counter: equal deadlines fire in the order they were added */
};

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t timer_clock_ms(void);

void timer_heap_init(struct timer_heap *h);
/* Frees every pending timer without running it. */
void timer_heap_cleanup(struct timer_heap *h);

/* A timer firing at deadline (absolute ms). NULL on ENOMEM. */
struct timer *timer_heap_add(struct timer_heap *h, uint64_t deadline, void (*cb)(void *arg),
                             void *arg) __attribute__((warn_unused_result));
/* Remove and free a pending timer. NULL does nothing. */
void timer_heap_cancel(struct timer_heap *h, struct timer *t);
/* Earliest deadline, or UINT64_MAX when no timer is pending. */
uint64_t timer_heap_next(const struct timer_heap *h);
/* Run (and free) every timer whose deadline is <= now. Returns how many ran. */
size_t timer_heap_run(struct timer_heap *h, uint64_t now);

/* Tests: does every node keep the heap order, and know its own index? */
bool timer__heap_valid(const struct timer_heap *h);

#endif
