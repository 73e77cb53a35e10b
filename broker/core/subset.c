/*
 * subset.c — a session's subscriptions as a hash set (subset.h).
 *
 * Linear probing over entry pointers, at most half full; removal shifts the rest of the probe
 * run back (no tombstones), so a set that churns never fills with dead slots. The slots shrink
 * when a set falls to an eighth of its capacity, so a client that subscribed to 100,000
 * filters and unsubscribed does not keep their slots.
 */
#include "subset.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define SUBSET_MIN_CAP 8u

void subset_init(struct subset *set)
{
    memset(set, 0, sizeof(*set));
}

void subset_cleanup(struct subset *set)
{
    for (size_t i = 0; i < set->cap; i++)
        free(set->slots[i]);
    free(set->slots);
    subset_init(set);
}

static bool subset__eq(const struct subset_entry *e, uint64_t h, struct mqtt_str f)
{
    return e->hash == h && e->len == f.len && (f.len == 0 || memcmp(e->filter, f.p, f.len) == 0);
}

/* The slot holding filter (hash h), or the empty slot that ends its probe run. cap > 0. */
static size_t subset__slot(const struct subset *set, uint64_t h, struct mqtt_str f)
{
    size_t mask = set->cap - 1;
    size_t i = (size_t)h & mask;

    while (set->slots[i] && !subset__eq(set->slots[i], h, f))
        i = (i + 1) & mask;
    return i;
}

/* Rehash every entry into cap slots: 0 or -ENOMEM (the set unchanged). */
static int subset__resize(struct subset *set, size_t cap)
{
    struct subset_entry **v = calloc(cap, sizeof(*v));
    int rc = -ENOMEM;

    if (!v)
        goto out;
    for (size_t i = 0; i < set->cap; i++) {
        struct subset_entry *e = set->slots[i];
        size_t j;
        if (!e)
            continue;
        for (j = (size_t)e->hash & (cap - 1); v[j]; j = (j + 1) & (cap - 1))
            ;
        v[j] = e;
    }
    free(set->slots);
    set->slots = v;
    set->cap = cap;
    rc = 0;
out:
    return rc;
}

struct subset_entry *subset_get(const struct subset *set, struct mqtt_str filter)
{
    if (set->n == 0)
        return NULL;
    return set->slots[subset__slot(set, hash_bytes(filter.p, filter.len), filter)];
}

int subset_put(struct subset *set, struct mqtt_str filter, uint8_t qos)
{
    uint64_t h = hash_bytes(filter.p, filter.len);
    struct subset_entry *e;
    size_t i;
    int rc = 1;

    if (set->n > 0 && (e = set->slots[subset__slot(set, h, filter)])) {
        e->qos = qos; /* a replacement never fails */
        goto out;
    }
    rc = -ENOMEM;
    if ((set->n + 1) * 2 > set->cap &&
        subset__resize(set, set->cap ? set->cap * 2 : SUBSET_MIN_CAP) < 0)
        goto out;
    i = subset__slot(set, h, filter);
    e = malloc(sizeof(*e) + filter.len + 1);
    if (!e)
        goto out;
    e->hash = h;
    e->len = filter.len;
    e->qos = qos;
    if (filter.len)
        memcpy(e->filter, filter.p, filter.len);
    e->filter[filter.len] = '\0';
    set->slots[i] = e;
    set->n++;
    rc = 0;
out:
    return rc;
}

int subset_del(struct subset *set, struct mqtt_str filter)
{
    size_t mask = set->cap - 1;
    size_t i, j;
    int rc = -ENOENT;

    if (set->n == 0)
        goto out;
    i = subset__slot(set, hash_bytes(filter.p, filter.len), filter);
    if (!set->slots[i])
        goto out;
    free(set->slots[i]);
    /* shift back what probed past i and may now sit closer to its home */
    for (j = (i + 1) & mask; set->slots[j]; j = (j + 1) & mask) {
        size_t home = (size_t)set->slots[j]->hash & mask;
        if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
            set->slots[i] = set->slots[j];
            i = j;
        }
    }
    set->slots[i] = NULL;
    set->n--;
    rc = 0;
    if (set->n == 0)
        subset_cleanup(set);
    else if (set->cap > SUBSET_MIN_CAP && set->n * 8 < set->cap)
        subset__resize(set, set->cap / 2); /* on failure the set just stays larger */
out:
    return rc;
}

struct subset_entry *subset_next(const struct subset *set, size_t *cursor)
{
    while (*cursor < set->cap) {
        struct subset_entry *e = set->slots[(*cursor)++];
        if (e)
            return e;
    }
    return NULL;
}
