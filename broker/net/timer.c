/*
 * timer.c — a binary min-heap of one-shot timers.
 *
 * Each timer remembers its index in the heap array, so cancel is O(log n) without a search.
 * Ties on the deadline are broken by an insertion sequence number, which keeps firing order
 * deterministic (tests rely on it, and so does fairness between equal keepalives).
 */
#include "timer.h"

#include <stdlib.h>
#include <time.h>

struct timer {
    uint64_t deadline;
    uint64_t seq;
    size_t index; /* position in h->v */
    void (*cb)(void *arg);
    void *arg;
};

uint64_t timer_clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void timer_heap_init(struct timer_heap *h)
{
    h->v = NULL;
    h->n = 0;
    h->cap = 0;
    h->seq = 0;
}

void timer_heap_cleanup(struct timer_heap *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->v[i]);
    free(h->v);
    timer_heap_init(h);
}

static int timer_less(const struct timer *a, const struct timer *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return a->seq < b->seq;
}

static void timer_place(struct timer_heap *h, size_t i, struct timer *t)
{
    h->v[i] = t;
    t->index = i;
}

static void timer_sift_up(struct timer_heap *h, size_t i)
{
    struct timer *t = h->v[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_less(t, h->v[parent]))
            break;
        timer_place(h, i, h->v[parent]);
        i = parent;
    }
    timer_place(h, i, t);
}

static void timer_sift_down(struct timer_heap *h, size_t i)
{
    struct timer *t = h->v[i];

    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && timer_less(h->v[child + 1], h->v[child]))
            child++;
        if (!timer_less(h->v[child], t))
            break;
        timer_place(h, i, h->v[child]);
        i = child;
    }
    timer_place(h, i, t);
}

struct timer *timer_heap_add(struct timer_heap *h, uint64_t deadline, void (*cb)(void *arg),
                             void *arg)
{
    struct timer *t = NULL;

    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct timer **v = realloc(h->v, cap * sizeof(*v));
        if (!v)
            goto out;
        h->v = v;
        h->cap = cap;
    }
    t = malloc(sizeof(*t));
    if (!t)
        goto out;
    t->deadline = deadline;
    t->seq = h->seq++;
    t->cb = cb;
    t->arg = arg;
    h->v[h->n] = t;
    t->index = h->n++;
    timer_sift_up(h, t->index);
out:
    return t;
}

/* Take t out of the heap (not freed): the last node fills its slot and moves up or down. */
static void timer_remove(struct timer_heap *h, struct timer *t)
{
    size_t i = t->index;
    struct timer *last = h->v[--h->n];

    if (last == t)
        return;
    timer_place(h, i, last);
    if (i > 0 && timer_less(last, h->v[(i - 1) / 2]))
        timer_sift_up(h, i);
    else
        timer_sift_down(h, i);
}

void timer_heap_cancel(struct timer_heap *h, struct timer *t)
{
    if (!t)
        return;
    timer_remove(h, t);
    free(t);
}

uint64_t timer_heap_next(const struct timer_heap *h)
{
    return h->n ? h->v[0]->deadline : UINT64_MAX;
}

/*
 * Timers added by a callback get a sequence number past the one sampled here, so a timer that
 * re-arms itself with deadline <= now waits for the next call instead of looping forever.
 */
size_t timer_heap_run(struct timer_heap *h, uint64_t now)
{
    uint64_t seq_limit = h->seq;
    size_t ran = 0;

    while (h->n && h->v[0]->deadline <= now && h->v[0]->seq < seq_limit) {
        struct timer *t = h->v[0];
        void (*cb)(void *arg) = t->cb;
        void *arg = t->arg;
        timer_remove(h, t);
        free(t); /* before the callback: the handle is dead once its callback starts */
        cb(arg);
        ran++;
    }
    return ran;
}

bool timer__heap_valid(const struct timer_heap *h)
{
    for (size_t i = 0; i < h->n; i++) {
        if (h->v[i]->index != i)
            return false;
        if (i > 0 && timer_less(h->v[i], h->v[(i - 1) / 2]))
            return false;
    }
    return true;
}
