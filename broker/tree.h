/*
 * tree.h — the sorted-children index shared by the topic-level trees (route.c, retain.c).
 *
 * A tree node embeds struct tree_node as its FIRST member, so a struct tree_node * converts
 * back to the embedding node. A node's literal children are kept in an array sorted by
 * (level length, level bytes) and found by binary search.
 *
 * Ownership: tree_node_new() returns one allocation (the embedding struct, then the level
 * bytes) that the caller owns and frees with tree_node_free() after freeing its children.
 * The kids array belongs to the node; the children it points to are the embedder's to free.
 */
#ifndef CAIRN_TREE_H
#define CAIRN_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "mqtt.h"

struct tree_node {
    struct tree_node *parent;
    struct tree_node **kids; /* sorted by (len, bytes) */
    size_t nkids;
    size_t capkids;
    size_t len;           /* level length */
    const uint8_t *level; /* points into this node's allocation */
};

/* A zeroed node of size bytes (>= sizeof(struct tree_node)) with a copy of level; NULL. */
void *tree_node_new(size_t size, struct tree_node *parent, struct mqtt_str level);
/* Frees n's kids array and n itself (not the children). NULL does nothing. */
void tree_node_free(struct tree_node *n);
/*
 * Index of the child equal to level (*found true), or where it would be inserted. Inline: it
 * runs at every level of every route match.
 */
static inline int tree__cmp(const struct tree_node *n, struct mqtt_str level)
{
    if (n->len != level.len)
        return n->len < level.len ? -1 : 1;
    return level.len ? memcmp(n->level, level.p, level.len) : 0;
}

static inline size_t tree_find(const struct tree_node *n, struct mqtt_str level, bool *found)
{
    size_t lo = 0, hi = n->nkids;

    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = tree__cmp(n->kids[mid], level);
        if (c == 0) {
            *found = true;
            lo = mid;
            break;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Put kid (borrowed pointer, owned by the embedder) at index i from tree_find: 0 or -ENOMEM. */
int tree_insert(struct tree_node *n, size_t i, struct tree_node *kid)
    __attribute__((warn_unused_result));
/* Take kid out of its parent's kids array (kid itself is not freed). */
void tree_remove(struct tree_node *kid);

#endif
