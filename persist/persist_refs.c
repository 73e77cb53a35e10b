/*
 * persist_refs.c — the message reference table (see persist_refs.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "persist_refs.h"

#define MIN_CAP   1024
#define HUGE_PAGE (2u << 20)
/* grow when used would pass 80% of the slots */
#define FULL(used, cap) ((used)*5 > (cap)*4)

/*
 * Message ids are a counter, so they need mixing: without it one long-lived queue's ids and the
 * current ids would fall on the same slots and merge into one long probe run.
 */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Map a 64-bit hash onto [0, cap) with a multiply instead of a division. */
static size_t home(uint64_t id, size_t cap)
{
    return (size_t)(((unsigned __int128)mix(id) * cap) >> 64);
}

struct persist_ref *persist_refs_find(const struct persist_refs *t, uint64_t id)
{
    if (id == 0)
        return t->zero.count ? (struct persist_ref *)&t->zero : NULL;
    if (!t->slots)
        return NULL;
    for (size_t i = home(id, t->cap);;) {
        if (t->slots[i].id == id)
            return &t->slots[i];
        if (t->slots[i].id == 0)
            return NULL;
        if (++i == t->cap)
            i = 0;
    }
}

/*
 * Every lookup lands on a random slot, so on a big table nearly every one is a TLB miss too;
 * huge pages take most of those away (restore does two lookups per queued message).
 */
static struct persist_ref *slots_alloc(size_t cap)
{
    size_t bytes = cap * sizeof(struct persist_ref);
    void *s = NULL;
    if (bytes < HUGE_PAGE)
        return calloc(cap, sizeof(struct persist_ref));
    if (posix_memalign(&s, HUGE_PAGE, bytes))
        return NULL;
#ifdef MADV_HUGEPAGE
    madvise(s, bytes, MADV_HUGEPAGE);
#endif
    memset(s, 0, bytes);
    return s;
}

static bool grow(struct persist_refs *t)
{
    size_t cap = t->cap ? t->cap + t->cap / 2 : MIN_CAP;
    struct persist_ref *s = slots_alloc(cap);
    if (!s)
        return false;
    for (size_t i = 0; t->slots && i < t->cap; i++) {
        if (t->slots[i].id == 0)
            continue;
        size_t j = home(t->slots[i].id, cap);
        while (s[j].id)
            if (++j == cap)
                j = 0;
        s[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = s;
    t->cap = cap;
    return true;
}

struct persist_ref *persist_refs_get(struct persist_refs *t, uint64_t id)
{
    if (id == 0)
        return &t->zero;
    if ((!t->slots || FULL(t->used + 1, t->cap)) && !grow(t))
        return NULL;
    /* one probe run: the id, or the empty slot that ends its run */
    size_t i = home(id, t->cap);
    while (t->slots[i].id != id) {
        if (t->slots[i].id == 0) {
            t->slots[i] = (struct persist_ref){id, 0, 0};
            t->used++;
            break;
        }
        if (++i == t->cap)
            i = 0;
    }
    return &t->slots[i];
}

void persist_refs_remove(struct persist_refs *t, uint64_t id)
{
    if (id == 0) {
        t->zero.count = 0;
        return;
    }
    struct persist_ref *r = persist_refs_find(t, id);
    if (!r)
        return;
    size_t hole = (size_t)(r - t->slots);
    /* move later members of the run back into the hole when their home allows it */
    for (size_t j = hole + 1;; j++) {
        if (j == t->cap)
            j = 0;
        if (t->slots[j].id == 0)
            break;
        size_t h = home(t->slots[j].id, t->cap);
        /* j stays when its home lies cyclically in (hole, j] */
        bool stays = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j);
        if (!stays) {
            t->slots[hole] = t->slots[j];
            hole = j;
        }
    }
    t->slots[hole].id = 0;
    t->used--;
}

/* ---- bulk loading --------------------------------------------------------------------- */
#define DIGIT_BITS 16
#define DIGITS     (1u << DIGIT_BITS)

/* Below this many entries a plain insertion sort beats clearing the radix counters. */
#define SMALL_SORT 64

static void insertion_sort(struct persist_ref *a, size_t n, size_t cap,
                           uint64_t (*key)(const struct persist_ref *, size_t))
{
    for (size_t i = 1; i < n; i++) {
        struct persist_ref x = a[i];
        uint64_t k = key(&x, cap);
        size_t j = i;
        for (; j > 0 && key(&a[j - 1], cap) > k; j--)
            a[j] = a[j - 1];
        a[j] = x;
    }
}

/* LSD radix sort of a by key(entry) over its low bits; the result ends in a. */
static int radix_sort(struct persist_ref *a, struct persist_ref *tmp, size_t n, unsigned bits,
                      size_t cap, uint64_t (*key)(const struct persist_ref *, size_t))
{
    struct persist_ref *from = a, *to = tmp;
    size_t *count;
    if (bits == 0 || n < 2)
        return 0;
    if (n < SMALL_SORT) {
        insertion_sort(a, n, cap, key);
        return 0;
    }
    if (!(count = malloc(DIGITS * sizeof *count)))
        return -ENOMEM;
    for (unsigned shift = 0; shift < bits; shift += DIGIT_BITS) {
        memset(count, 0, DIGITS * sizeof *count);
        for (size_t i = 0; i < n; i++)
            count[(key(&from[i], cap) >> shift) & (DIGITS - 1)]++;
        size_t sum = 0;
        for (size_t d = 0; d < DIGITS; d++) {
            size_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            to[count[(key(&from[i], cap) >> shift) & (DIGITS - 1)]++] = from[i];
        struct persist_ref *x = from;
        from = to;
        to = x;
    }
    if (from != a)
        memcpy(a, from, n * sizeof *a);
    free(count);
    return 0;
}

static uint64_t key_id(const struct persist_ref *r, size_t cap)
{
    (void)cap;
    return r->id;
}

static uint64_t key_home(const struct persist_ref *r, size_t cap)
{
    return home(r->id, cap);
}

static unsigned bits_of(uint64_t v)
{
    unsigned b = 0;
    while (v) {
        b++;
        v >>= 1;
    }
    return b;
}

int persist_refs_sort_merge(struct persist_ref *a, struct persist_ref *tmp, size_t n, size_t *out_n)
{
    uint64_t max = 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (a[i].id > max)
            max = a[i].id;
    if (radix_sort(a, tmp, n, bits_of(max), 0, key_id) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (m && a[m - 1].id == a[i].id)
            a[m - 1].count += a[i].count;
        else
            a[m++] = a[i];
    }
    *out_n = m;
    return 0;
}

int persist_refs_build(struct persist_refs *t, struct persist_ref *a, size_t n)
{
    size_t cap = MIN_CAP, next = 0, i;
    struct persist_ref *tmp = n > 1 ? malloc(n * sizeof *tmp) : NULL;
    int rc;
    persist_refs_cleanup(t);
    while (FULL(n, cap))
        cap += cap / 2;
    /* sort before the table exists: the sort buffer and the table are never both held */
    rc = n > 1 && !tmp ? -ENOMEM : radix_sort(a, tmp, n, bits_of(cap - 1), cap, key_home);
    free(tmp);
    if (rc < 0)
        return rc;
    if (!(t->slots = slots_alloc(cap)))
        return -ENOMEM;
    t->cap = cap;
    /* in home order each entry takes the first free slot from its home on: one forward sweep */
    for (i = 0; i < n; i++) {
        if (a[i].id == 0) {
            t->zero = a[i];
            continue;
        }
        size_t h = home(a[i].id, cap);
        size_t at = h > next ? h : next;
        if (at >= cap)
            break; /* the last run wraps around to the start: the ordinary way below */
        t->slots[at] = a[i];
        t->used++;
        next = at + 1;
    }
    for (; i < n; i++) {
        if (a[i].id == 0) {
            t->zero = a[i];
            continue;
        }
        struct persist_ref *r = persist_refs_get(t, a[i].id); /* no growth: n fits */
        if (!r) {
            persist_refs_cleanup(t);
            return -ENOMEM;
        }
        *r = a[i];
    }
    return 0;
}

size_t persist_refs_size(const struct persist_refs *t)
{
    return t->used + (t->zero.count ? 1 : 0);
}

void persist_refs_cleanup(struct persist_refs *t)
{
    free(t->slots);
    memset(t, 0, sizeof *t);
}
