/*
 * tree.c — the children index of a topic-level tree (see tree.h).
 *
 * The index is linear probing over 64-bit slots, at most half full: a kid's position + 1 in
 * the low half (0: empty), the low 32 bits of its level's hash in the high half, so a probe
 * compares hashes and finds a slot's home without loading the kid (a cache miss per probe
 * otherwise: most of a wide node's lookup time). Removal shifts later entries of the probe
 * run back (no tombstones), then moves the last kid into the freed position and repoints its
 * slot, so the array stays dense and every operation touches O(1) slots on average.
 */
#include "tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define TREE_INDEX_MIN 32u

static inline uint64_t tree__slot(uint64_t hash, size_t pos)
{
    return (hash << 32) | (uint64_t)(pos + 1);
}

static inline size_t tree__slot_pos(uint64_t slot)
{
    return (size_t)(uint32_t)slot - 1;
}

/* Where a slot's probe run starts. capindex <= 2^32, so the stored hash bits suffice. */
static inline size_t tree__slot_home(uint64_t slot, size_t mask)
{
    return (size_t)(slot >> 32) & mask;
}

void *tree_node_new(size_t size, struct tree_node *parent, struct mqtt_str level)
{
    struct tree_node *n = calloc(1, size + level.len);
    uint8_t *bytes;

    if (!n)
        goto out;
    bytes = (uint8_t *)n + size;
    n->parent = parent;
    n->len = level.len;
    n->level = bytes;
    if (level.len)
        memcpy(bytes, level.p, level.len);
    n->hash = hash_bytes(bytes, level.len);
out:
    return n;
}

void tree_node_free(struct tree_node *n)
{
    if (!n)
        return;
    free(n->kids);
    free(n->index);
    free(n);
}

struct tree_node *tree__find_indexed(const struct tree_node *n, struct mqtt_str level)
{
    uint64_t h = hash_bytes(level.p, level.len);
    uint32_t tag = (uint32_t)h;
    size_t mask = n->capindex - 1;

    for (size_t i = (size_t)h & mask; n->index[i]; i = (i + 1) & mask) {
        struct tree_node *k;
        if ((uint32_t)(n->index[i] >> 32) != tag)
            continue;
        k = n->kids[tree__slot_pos(n->index[i])];
        if (k->hash == h && tree__eq(k, level))
            return k;
    }
    return NULL;
}

/* The slot holding position pos (whose kid hashes to h). The index must hold it. */
static size_t tree__slot_of(const struct tree_node *n, uint64_t h, size_t pos)
{
    size_t mask = n->capindex - 1;
    size_t i = (size_t)h & mask;

    while (n->index[i] != tree__slot(h, pos))
        i = (i + 1) & mask;
    return i;
}

static void tree__slot_put(struct tree_node *n, size_t pos)
{
    size_t mask = n->capindex - 1;
    uint64_t h = n->kids[pos]->hash;
    size_t i = (size_t)h & mask;

    while (n->index[i])
        i = (i + 1) & mask;
    n->index[i] = tree__slot(h, pos);
}

/* Empty slot i and shift the rest of its probe run back so every entry stays reachable. */
static void tree__slot_del(struct tree_node *n, size_t i)
{
    size_t mask = n->capindex - 1;
    size_t j = i;

    for (;;) {
        size_t home;
        j = (j + 1) & mask;
        if (!n->index[j])
            break;
        home = tree__slot_home(n->index[j], mask);
        /* the entry at j may move to i when its home is not in (i, j] (cyclically) */
        if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
            n->index[i] = n->index[j];
            i = j;
        }
    }
    n->index[i] = 0;
}

/* An index of cap slots over the current kids (replacing any): 0 or -ENOMEM (old one kept). */
static int tree__reindex(struct tree_node *n, size_t cap)
{
    uint64_t *v = calloc(cap, sizeof(*v));
    int rc = -ENOMEM;

    if (!v)
        goto out;
    free(n->index);
    n->index = v;
    n->capindex = cap;
    for (size_t p = 0; p < n->nkids; p++)
        tree__slot_put(n, p);
    rc = 0;
out:
    return rc;
}

int tree_insert(struct tree_node *n, struct tree_node *kid)
{
    size_t want = n->nkids + 1;
    int rc = -ENOMEM;

    if (want >= UINT32_MAX / 4) /* capindex stays within the 32 hash bits a slot keeps */
        goto out;
    if (want > n->capkids) {
        size_t cap = n->capkids ? n->capkids * 2 : 4;
        struct tree_node **k = realloc(n->kids, cap * sizeof(*k));
        if (!k)
            goto out;
        n->kids = k;
        n->capkids = cap;
    }
    if (want > TREE_INDEX_AT && want * 2 > n->capindex) {
        size_t cap = n->capindex ? n->capindex * 2 : TREE_INDEX_MIN;
        while (cap < want * 2)
            cap *= 2;
        if (tree__reindex(n, cap) < 0)
            goto out;
    }
    kid->pos = n->nkids;
    n->kids[n->nkids++] = kid;
    if (n->index)
        tree__slot_put(n, kid->pos);
    rc = 0;
out:
    return rc;
}

void tree_remove(struct tree_node *kid)
{
    struct tree_node *p = kid->parent;
    size_t pos = kid->pos, last = p->nkids - 1;

    if (pos >= p->nkids || p->kids[pos] != kid)
        return;
    if (p->index)
        tree__slot_del(p, tree__slot_of(p, kid->hash, pos));
    if (pos != last) {
        struct tree_node *moved = p->kids[last];
        if (p->index)
            p->index[tree__slot_of(p, moved->hash, last)] = tree__slot(moved->hash, pos);
        p->kids[pos] = moved;
        moved->pos = pos;
    }
    p->nkids--;
    if (p->index && p->nkids <= TREE_INDEX_AT / 2) {
        /* narrow again: a scan is as quick, and the slots go back */
        free(p->index);
        p->index = NULL;
        p->capindex = 0;
    }
}
