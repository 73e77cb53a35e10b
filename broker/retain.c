/*
 * retain.c — the retained-message tree (see retain.h).
 */
#include "retain.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tree.h"

struct retain_node {
    struct tree_node t; /* first: children, parent, level */
    struct msg *msg;    /* one reference, or NULL */
};

static inline struct retain_node *retain__kid(const struct retain_node *n, size_t i)
{
    return (struct retain_node *)n->t.kids[i];
}

static struct retain_node *retain__node_new(struct retain_node *parent, struct mqtt_str level)
{
    return tree_node_new(sizeof(struct retain_node), parent ? &parent->t : NULL, level);
}

static void retain__node_free(struct retain_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->t.nkids; i++)
        retain__node_free(retain__kid(n, i));
    msg_unref(n->msg);
    tree_node_free(&n->t);
}

static struct retain_node *retain__child(struct retain_node *n, struct mqtt_str level, bool create)
{
    struct retain_node *kid = (struct retain_node *)tree_find(&n->t, level);

    if (kid || !create)
        goto out;
    kid = retain__node_new(n, level);
    if (kid && tree_insert(&n->t, &kid->t) < 0) {
        retain__node_free(kid);
        kid = NULL;
    }
out:
    return kid;
}

static void retain__prune(struct retain *r, struct retain_node *n)
{
    while (n != r->root && !n->msg && n->t.nkids == 0) {
        struct retain_node *p = (struct retain_node *)n->t.parent;
        tree_remove(&n->t);
        retain__node_free(n);
        n = p;
    }
}

int retain_init(struct retain *r)
{
    struct mqtt_str none = {NULL, 0};

    r->count = 0;
    r->root = retain__node_new(NULL, none);
    return r->root ? 0 : -ENOMEM;
}

void retain_cleanup(struct retain *r)
{
    retain__node_free(r->root);
    r->root = NULL;
    r->count = 0;
}

static struct retain_node *retain__walk(struct retain *r, struct mqtt_str topic, bool create)
{
    struct retain_node *n = r->root;
    struct mqtt_level_iter c;
    struct mqtt_str level;

    mqtt_level_iter_init(&c, topic);
    while (n && mqtt_level_next(&c, &level)) {
        struct retain_node *kid = retain__child(n, level, create);
        if (!kid && create)
            retain__prune(r, n);
        n = kid;
    }
    return n;
}

int retain_set(struct retain *r, struct msg *m)
{
    bool del = m->payload_len == 0;
    struct retain_node *n = retain__walk(r, msg_topic(m), !del);
    int rc = 0;

    if (!n) {
        rc = del ? 0 : -ENOMEM;
        goto out;
    }
    if (n->msg) {
        msg_unref(n->msg);
        n->msg = NULL;
        r->count--;
    }
    if (del) {
        retain__prune(r, n);
        goto out;
    }
    n->msg = msg_ref(m);
    r->count++;
out:
    return rc;
}

struct msg *retain_get(const struct retain *r, struct mqtt_str topic)
{
    struct retain_node *n = retain__walk((struct retain *)r, topic, false);

    return n ? n->msg : NULL;
}

static int retain__subtree(const struct retain_node *n, bool skip_dollar,
                           int (*cb)(void *ctx, struct msg *m), void *ctx)
{
    int rc = 0;

    if (n->msg && (rc = cb(ctx, n->msg)) != 0)
        goto out;
    for (size_t i = 0; i < n->t.nkids; i++) {
        const struct retain_node *k = retain__kid(n, i);
        if (skip_dollar && k->t.len > 0 && k->t.level[0] == '$')
            continue;
        if ((rc = retain__subtree(k, false, cb, ctx)) != 0)
            goto out;
    }
out:
    return rc;
}

static int retain__match(const struct retain_node *n, struct mqtt_level_iter c,
                         int (*cb)(void *ctx, struct msg *m), void *ctx)
{
    struct mqtt_str level;
    bool first = n->t.parent == NULL;
    int rc = 0;

    if (!mqtt_level_next(&c, &level)) {
        if (n->msg)
            rc = cb(ctx, n->msg);
        goto out;
    }
    if (level.len == 1 && level.p[0] == '#') {
        /* '#' matches the parent level too, but the root holds no topic */
        if (first) {
            for (size_t i = 0; i < n->t.nkids && rc == 0; i++) {
                const struct retain_node *k = retain__kid(n, i);
                if (k->t.len > 0 && k->t.level[0] == '$')
                    continue;
                rc = retain__subtree(k, false, cb, ctx);
            }
        } else {
            rc = retain__subtree(n, false, cb, ctx);
        }
        goto out;
    }
    if (level.len == 1 && level.p[0] == '+') {
        for (size_t i = 0; i < n->t.nkids && rc == 0; i++) {
            const struct retain_node *k = retain__kid(n, i);
            if (first && k->t.len > 0 && k->t.level[0] == '$')
                continue;
            rc = retain__match(k, c, cb, ctx);
        }
        goto out;
    }
    {
        const struct retain_node *kid = (const struct retain_node *)tree_find(&n->t, level);
        if (kid)
            rc = retain__match(kid, c, cb, ctx);
    }
out:
    return rc;
}

int retain_match(const struct retain *r, struct mqtt_str filter,
                 int (*cb)(void *ctx, struct msg *m), void *ctx)
{
    struct mqtt_level_iter c;

    mqtt_level_iter_init(&c, filter);
    return retain__match(r->root, c, cb, ctx);
}
