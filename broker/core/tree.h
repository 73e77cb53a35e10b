/*
 * tree.h — the children index shared by the topic-level trees (route.c, retain.c).
 *
 * A tree node embeds struct tree_node as its FIRST member, so a struct tree_node * converts
 * back to the embedding node. A node's literal children are kept in a dense array (kids, in
 * no particular order: insertion order until a removal moves the last one into the gap), which
 * the trees walk for '+' and '#'. Up to TREE_INDEX_AT children are found by a scan of that
 * array; past it the node builds a hash index (open addressing over kid positions, keyed by
 * hash.h's keyed hash), so finding, adding and removing a child cost O(1) however wide the
 * node grows: one client's SUBSCRIBE of 100,000 sibling filters no longer moves the whole
 * array for each one (issue 9; the sorted array it replaces made that O(n^2)).
 *
 * Ownership: tree_node_new() returns one allocation (the embedding struct, then the level
 * bytes) that the caller owns and frees with tree_node_free() after freeing its children.
 * The kids array and index belong to the node; the children are the embedder's to free.
 */
#ifndef CAIRN_TREE_H
#define CAIRN_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mqtt.h"

/* Children found by a scan up to this many; a hash index past it. */
#define TREE_INDEX_AT 8u

struct tree_node {
    struct tree_node *parent;
    struct tree_node **kids; /* dense; kids[i]->pos == i */
    uint64_t *index;         /* NULL, or capindex slots (tree.c), 0 empty */
    size_t nkids;
    size_t capkids;
    size_t capindex;      /* a power of two, at least twice nkids */
    size_t pos;           /* this node's position in its parent's kids */
    uint64_t hash;        /* of level (hash_bytes) */
    size_t len;           /* level length */
    const uint8_t *level; /* points into this node's allocation */
};

/* A zeroed node of size bytes (>= sizeof(struct tree_node)) with a copy of level; NULL. */
void *tree_node_new(size_t size, struct tree_node *parent, struct mqtt_str level);
/* Frees n's kids array, index and n itself (not the children). NULL does nothing. */
void tree_node_free(struct tree_node *n);

static inline bool tree__eq(const struct tree_node *k, struct mqtt_str level)
{
    return k->len == level.len && (level.len == 0 || memcmp(k->level, level.p, level.len) == 0);
}

struct tree_node *tree__find_indexed(const struct tree_node *n, struct mqtt_str level);

/* The child of n equal to level, or NULL. Inline: it runs at every level of a route match. */
static inline struct tree_node *tree_find(const struct tree_node *n, struct mqtt_str level)
{
    if (n->index)
        return tree__find_indexed(n, level);
    for (size_t i = 0; i < n->nkids; i++)
        if (tree__eq(n->kids[i], level))
            return n->kids[i];
    return NULL;
}

/* Add kid (borrowed pointer, owned by the embedder; no child of n has its level): 0 or -ENOMEM
 * (n unchanged). */
int tree_insert(struct tree_node *n, struct tree_node *kid) __attribute__((warn_unused_result));
/* Take kid out of its parent's children (kid itself is not freed). */
void tree_remove(struct tree_node *kid);

#endif
