/*
 * route.c — the subscription tree (see route.h for the shape).
 */
#include "route.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tree.h"

struct route_node {
    struct tree_node t; /* first: literal children, parent, level */
    struct route_node *plus;
    struct route_node *hash;
    struct route_hit *subs;
    size_t nsubs;
    size_t capsubs;
};

static struct route_node *route__node_new(struct route_node *parent, struct mqtt_str level)
{
    return tree_node_new(sizeof(struct route_node), parent ? &parent->t : NULL, level);
}

static void route__node_free(struct route_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->t.nkids; i++)
        route__node_free((struct route_node *)n->t.kids[i]);
    route__node_free(n->plus);
    route__node_free(n->hash);
    free(n->subs);
    tree_node_free(&n->t);
}

static struct route_node *route__child(struct route_node *n, struct mqtt_str level, bool create)
{
    struct route_node *kid = NULL, **slot = NULL;

    if (level.len == 1 && level.p[0] == '+')
        slot = &n->plus;
    else if (level.len == 1 && level.p[0] == '#')
        slot = &n->hash;
    if (slot) {
        if (!*slot && create)
            *slot = route__node_new(n, level);
        kid = *slot;
        goto out;
    }
    kid = (struct route_node *)tree_find(&n->t, level);
    if (kid || !create)
        goto out;
    kid = route__node_new(n, level);
    if (kid && tree_insert(&n->t, &kid->t) < 0) {
        route__node_free(kid);
        kid = NULL;
    }
out:
    return kid;
}

static bool route__node_empty(const struct route_node *n)
{
    return n->nsubs == 0 && n->t.nkids == 0 && !n->plus && !n->hash;
}

/* Free n and its now-empty ancestors (never the root). */
static void route__prune(struct route *r, struct route_node *n)
{
    while (n != r->root && route__node_empty(n)) {
        struct route_node *p = (struct route_node *)n->t.parent;
        if (p->plus == n)
            p->plus = NULL;
        else if (p->hash == n)
            p->hash = NULL;
        else
            tree_remove(&n->t);
        route__node_free(n);
        n = p;
    }
}

int route_init(struct route *r)
{
    struct mqtt_str none = {NULL, 0};

    r->count = 0;
    r->root = route__node_new(NULL, none);
    return r->root ? 0 : -ENOMEM;
}

void route_cleanup(struct route *r)
{
    route__node_free(r->root);
    r->root = NULL;
    r->count = 0;
}

static struct route_node *route__walk(struct route *r, struct mqtt_str filter, bool create)
{
    struct route_node *n = r->root;
    struct mqtt_level_iter c;
    struct mqtt_str level;

    mqtt_level_iter_init(&c, filter);
    while (n && mqtt_level_next(&c, &level)) {
        struct route_node *kid = route__child(n, level, create);
        if (!kid && create)
            route__prune(r, n);
        n = kid;
    }
    return n;
}

int route_subscribe(struct route *r, struct mqtt_str filter, void *sub, uint8_t qos)
{
    struct route_node *n = route__walk(r, filter, true);
    int rc = -ENOMEM;

    if (!n)
        goto out;
    for (size_t i = 0; i < n->nsubs; i++) {
        if (n->subs[i].sub == sub) {
            n->subs[i].qos = qos;
            rc = 1;
            goto out;
        }
    }
    if (n->nsubs == n->capsubs) {
        size_t cap = n->capsubs ? n->capsubs * 2 : 2;
        struct route_hit *s = realloc(n->subs, cap * sizeof(*s));
        if (!s) {
            route__prune(r, n);
            goto out;
        }
        n->subs = s;
        n->capsubs = cap;
    }
    n->subs[n->nsubs].sub = sub;
    n->subs[n->nsubs].qos = qos;
    n->nsubs++;
    r->count++;
    rc = 0;
out:
    return rc;
}

int route_unsubscribe(struct route *r, struct mqtt_str filter, void *sub)
{
    struct route_node *n = route__walk(r, filter, false);
    int rc = -ENOENT;

    if (!n)
        goto out;
    for (size_t i = 0; i < n->nsubs; i++) {
        if (n->subs[i].sub == sub) {
            n->subs[i] = n->subs[n->nsubs - 1];
            n->nsubs--;
            r->count--;
            rc = 0;
            break;
        }
    }
    if (rc == 0)
        route__prune(r, n);
out:
    return rc;
}

static int route__add_subs(struct route_hits *h, const struct route_node *n)
{
    int rc = 0;

    if (n->nsubs == 0)
        goto out;
    if (h->n + n->nsubs > h->cap) {
        size_t cap = h->cap ? h->cap : 16;
        struct route_hit *v;
        while (cap < h->n + n->nsubs)
            cap *= 2;
        v = realloc(h->v, cap * sizeof(*v));
        if (!v) {
            rc = -ENOMEM;
            goto out;
        }
        h->v = v;
        h->cap = cap;
    }
    memcpy(&h->v[h->n], n->subs, n->nsubs * sizeof(*n->subs));
    h->n += n->nsubs;
    h->nodes++;
out:
    return rc;
}

/* Collect matches below n for the levels left in c. first: n is the root. */
static int route__match(const struct route_node *n, struct mqtt_level_iter c, bool dollar,
                        struct route_hits *h)
{
    struct mqtt_str level;
    bool first = n->t.parent == NULL;
    bool wild_ok = !(first && dollar);
    int rc = 0;

    if (n->hash && wild_ok && (rc = route__add_subs(h, n->hash)) < 0)
        goto out;
    if (!mqtt_level_next(&c, &level)) {
        rc = route__add_subs(h, n);
        goto out;
    }
    if (n->t.nkids) {
        const struct route_node *kid = (const struct route_node *)tree_find(&n->t, level);
        if (kid && (rc = route__match(kid, c, dollar, h)) < 0)
            goto out;
    }
    if (n->plus && wild_ok)
        rc = route__match(n->plus, c, dollar, h);
out:
    return rc;
}

/*
 * Once per subscriber, at the highest QoS of its matching filters. Duplicates need two nodes'
 * lists (one subscription per filter and subscriber): a match that took hits from one node —
 * the fan-out case, many subscribers of one filter — has none, and costs nothing here. Else a
 * hash set over the hits, linear in their number (it was a sort, per message).
 */
static int route__dedupe(struct route_hits *h)
{
    size_t need = 16, w = 0;
    int rc = 0;

    while (need < 2 * h->n)
        need *= 2;
    if (need > h->nseen) {
        uint32_t *s = realloc(h->seen, need * sizeof(*s));
        if (!s) {
            rc = -ENOMEM;
            goto out;
        }
        h->seen = s;
        h->nseen = need;
    }
    memset(h->seen, 0, need * sizeof(*h->seen));
    for (size_t i = 0; i < h->n; i++) {
        uintptr_t k = (uintptr_t)h->v[i].sub;
        size_t slot = (size_t)((k >> 4) * 0x9E3779B97F4A7C15ULL >> 20) & (need - 1);
        for (;; slot = (slot + 1) & (need - 1)) {
            uint32_t at = h->seen[slot];
            if (at == 0) { /* first time: keep it */
                h->v[w] = h->v[i];
                h->seen[slot] = (uint32_t)++w;
                break;
            }
            if (h->v[at - 1].sub == h->v[i].sub) {
                if (h->v[i].qos > h->v[at - 1].qos)
                    h->v[at - 1].qos = h->v[i].qos;
                break;
            }
        }
    }
    h->n = w;
out:
    return rc;
}

int route_match(const struct route *r, struct mqtt_str topic, struct route_hits *hits)
{
    struct mqtt_level_iter c;
    int rc;

    hits->n = 0;
    hits->nodes = 0;
    mqtt_level_iter_init(&c, topic);
    rc = route__match(r->root, c, topic.len > 0 && topic.p[0] == '$', hits);
    if (rc == 0 && hits->nodes > 1 && hits->n > 1)
        rc = route__dedupe(hits);
    return rc;
}

void route_hits_cleanup(struct route_hits *h)
{
    free(h->v);
    free(h->seen);
    h->v = NULL;
    h->seen = NULL;
    h->nseen = 0;
    h->n = h->cap = 0;
}
