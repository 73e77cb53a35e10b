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
    struct tree_node t;     /* first: children, parent, level */
    struct msg *msg;        /* one reference, or NULL */
    struct retain_src *src; /* owned, or NULL */
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
    retain_src_free(n->src);
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

struct retain_src *retain_src_new(int listener, const char *id, size_t id_len, const char *username)
{
    size_t ul = username ? strlen(username) + 1 : 0;
    struct retain_src *s = malloc(sizeof(*s) + id_len + 1 + ul);

    if (!s)
        goto out;
    s->listener = listener;
    s->id = (char *)(s + 1);
    memcpy(s->id, id, id_len);
    s->id[id_len] = '\0';
    s->username = username ? memcpy(s->id + id_len + 1, username, ul) : NULL;
out:
    return s;
}

void retain_src_free(struct retain_src *s)
{
    free(s);
}

/* listener:2 | idlen:2 | id | has user:1 [| userlen:2 | user], big-endian. */
size_t retain_src_encode(const struct retain_src *src, uint8_t *out, size_t cap)
{
    size_t il = strlen(src->id), ul = src->username ? strlen(src->username) : 0;
    size_t need = 2 + 2 + il + 1 + (src->username ? 2 + ul : 0);

    if (il > 65535 || ul > 65535 || src->listener < 0 || src->listener > 65535)
        return 0;
    if (need <= cap) {
        out[0] = (uint8_t)(src->listener >> 8);
        out[1] = (uint8_t)src->listener;
        out[2] = (uint8_t)(il >> 8);
        out[3] = (uint8_t)il;
        memcpy(out + 4, src->id, il);
        out[4 + il] = src->username ? 1 : 0;
        if (src->username) {
            out[5 + il] = (uint8_t)(ul >> 8);
            out[6 + il] = (uint8_t)ul;
            memcpy(out + 7 + il, src->username, ul);
        }
    }
    return need;
}

struct retain_src *retain_src_decode(const uint8_t *p, size_t len)
{
    struct retain_src *s = NULL;
    char *user = NULL;
    size_t il, ul = 0;

    if (len < 5 || (il = (size_t)p[2] << 8 | p[3]) > len - 5 || p[4 + il] > 1)
        goto out;
    if (p[4 + il] == 1) {
        if (len < 7 + il || (ul = (size_t)p[5 + il] << 8 | p[6 + il]) != len - 7 - il)
            goto out;
        if (!(user = malloc(ul + 1)))
            goto out;
        memcpy(user, p + 7 + il, ul);
        user[ul] = '\0';
    } else if (len != 5 + il) {
        goto out;
    }
    s = retain_src_new((int)p[0] << 8 | p[1], (const char *)p + 4, il, user);
out:
    free(user);
    return s;
}

int retain_set_src(struct retain *r, struct msg *m, const struct retain_src *src)
{
    bool del = m->payload_len == 0;
    struct retain_node *n = retain__walk(r, msg_topic(m), !del);
    struct retain_src *copy = NULL;
    int rc = 0;

    if (!n) {
        rc = del ? 0 : -ENOMEM;
        goto out;
    }
    if (!del && src &&
        !(copy = retain_src_new(src->listener, src->id, strlen(src->id), src->username))) {
        rc = -ENOMEM;
        retain__prune(r, n);
        goto out;
    }
    if (n->msg) {
        msg_unref(n->msg);
        n->msg = NULL;
        r->count--;
    }
    retain_src_free(n->src);
    n->src = copy;
    if (del) {
        retain__prune(r, n);
        goto out;
    }
    n->msg = msg_ref(m);
    r->count++;
out:
    return rc;
}

int retain_set(struct retain *r, struct msg *m)
{
    return retain_set_src(r, m, NULL);
}

const struct retain_src *retain_source(const struct retain *r, struct mqtt_str topic)
{
    struct retain_node *n = retain__walk((struct retain *)r, topic, false);

    return n && n->msg ? n->src : NULL;
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
