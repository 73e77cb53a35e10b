/*
 * subset.h — a session's subscriptions: a hash set of topic filters, each with its QoS.
 *
 * Finding, adding, replacing and removing a filter cost O(1) on average (open addressing
 * under hash.h's keyed hash, so a client cannot choose filters that collide), where the array
 * it replaces was scanned per filter: a SUBSCRIBE of 100,000 filters, and restoring them from
 * the store at start-up, were O(n^2) (issue 9).
 *
 * Iteration (subset_next) visits every entry once in an unspecified order; the set must not
 * change during it.
 *
 * Ownership: the set owns its entries (each one allocation holding the filter copy); entry
 * pointers stay valid until that filter is removed or the set cleaned up.
 */
#ifndef CAIRN_SUBSET_H
#define CAIRN_SUBSET_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt.h"

struct subset_entry {
    uint64_t hash;
    size_t len;
    uint8_t qos;
    char filter[]; /* len bytes, then NUL */
};

struct subset {
    struct subset_entry **slots; /* NULL: empty slot */
    size_t cap;                  /* 0, or a power of two at least twice n */
    size_t n;
};

/* A zeroed struct is an empty set; init just zeroes it. */
void subset_init(struct subset *set);
/* Free every entry and the slots; the set is empty (and usable) again. */
void subset_cleanup(struct subset *set);

/* The entry of filter, or NULL. */
struct subset_entry *subset_get(const struct subset *set, struct mqtt_str filter);
/* Add filter at qos, or replace its QoS: 0 added, 1 replaced, -ENOMEM (set unchanged). */
int subset_put(struct subset *set, struct mqtt_str filter, uint8_t qos)
    __attribute__((warn_unused_result));
/* Remove filter: 0, or -ENOENT. */
int subset_del(struct subset *set, struct mqtt_str filter);

static inline size_t subset_count(const struct subset *set)
{
    return set->n;
}

/* Iterate: start with *cursor = 0; the next entry, or NULL at the end. */
struct subset_entry *subset_next(const struct subset *set, size_t *cursor);

#endif
