/*
 * retain.c — the retained-message tree (see retain.h).
 */
#include "retain.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct retain_node {
    struct retain_node *parent;
    struct retain_node **kids; /* sorted by (len, bytes) */
    size_t nkids;
    size_t capkids;
    struct msg *msg; /* one reference, or NULL */
    size_t len;
    uint8_t level[];
};

/* Split s at '/' one level at a time; more: a (maybe empty) level starts at p. */
struct retain_cursor {
    const uint8_t *p;
    const uint8_t *end;
    bool more;
};

static void retain__cursor_init(struct retain_cursor *c, struct mqtt_str s)
{
    c->p = s.p;
    c->end = s.p + s.len;
    c->more = true;
}

static bool retain__next_level(struct retain_cursor *c, struct mqtt_str *level)
{
    const uint8_t *slash;

    if (!c->more)
        return false;
    slash = memchr(c->p, '/', (size_t)(c->end - c->p));
    level->p = c->p;
    if (slash) {
        level->len = (size_t)(slash - c->p);
        c->p = slash + 1;
    } else {
        level->len = (size_t)(c->end - c->p);
        c->p = c->end;
        c->more = false;
    }
    return true;
}

static struct retain_node *retain__node_new(struct retain_node *parent, struct mqtt_str level)
{
    struct retain_node *n = calloc(1, sizeof(*n) + level.len);

    if (!n)
        return NULL;
    n->parent = parent;
    n->len = level.len;
    if (level.len)
        memcpy(n->level, level.p, level.len);
    return n;
}

static void retain__node_free(struct retain_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        retain__node_free(n->kids[i]);
    msg_unref(n->msg);
    free(n->kids);
    free(n);
}

static int retain__cmp(const struct retain_node *n, struct mqtt_str level)
{
    if (n->len != level.len)
        return n->len < level.len ? -1 : 1;
    return level.len ? memcmp(n->level, level.p, level.len) : 0;
}

static size_t retain__find(const struct retain_node *n, struct mqtt_str level, bool *found)
{
    size_t lo = 0, hi = n->nkids;

    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = retain__cmp(n->kids[mid], level);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct retain_node *retain__child(struct retain_node *n, struct mqtt_str level, bool create)
{
    struct retain_node *kid = NULL;
    bool found;
    size_t i = retain__find(n, level, &found);

    if (found) {
        kid = n->kids[i];
        goto out;
    }
    if (!create)
        goto out;
    if (n->nkids == n->capkids) {
        size_t cap = n->capkids ? n->capkids * 2 : 4;
        struct retain_node **k = realloc(n->kids, cap * sizeof(*k));
        if (!k)
            goto out;
        n->kids = k;
        n->capkids = cap;
    }
    kid = retain__node_new(n, level);
    if (!kid)
        goto out;
    memmove(&n->kids[i + 1], &n->kids[i], (n->nkids - i) * sizeof(*n->kids));
    n->kids[i] = kid;
    n->nkids++;
out:
    return kid;
}

static void retain__prune(struct retain *r, struct retain_node *n)
{
    while (n != r->root && !n->msg && n->nkids == 0) {
        struct retain_node *p = n->parent;
        struct mqtt_str level = {n->level, n->len};
        bool found;
        size_t i = retain__find(p, level, &found);
        if (found) {
            memmove(&p->kids[i], &p->kids[i + 1], (p->nkids - i - 1) * sizeof(*p->kids));
            p->nkids--;
        }
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
    struct retain_cursor c;
    struct mqtt_str level;

    retain__cursor_init(&c, topic);
    while (n && retain__next_level(&c, &level)) {
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
    for (size_t i = 0; i < n->nkids; i++) {
        const struct retain_node *k = n->kids[i];
        if (skip_dollar && k->len > 0 && k->level[0] == '$')
            continue;
        if ((rc = retain__subtree(k, false, cb, ctx)) != 0)
            goto out;
    }
out:
    return rc;
}

static int retain__match(const struct retain_node *n, struct retain_cursor c,
                         int (*cb)(void *ctx, struct msg *m), void *ctx)
{
    struct mqtt_str level;
    bool first = n->parent == NULL;
    int rc = 0;

    if (!retain__next_level(&c, &level)) {
        if (n->msg)
            rc = cb(ctx, n->msg);
        goto out;
    }
    if (level.len == 1 && level.p[0] == '#') {
        /* '#' matches the parent level too, but the root holds no topic */
        if (first) {
            for (size_t i = 0; i < n->nkids && rc == 0; i++) {
                const struct retain_node *k = n->kids[i];
                if (k->len > 0 && k->level[0] == '$')
                    continue;
                rc = retain__subtree(k, false, cb, ctx);
            }
        } else {
            rc = retain__subtree(n, false, cb, ctx);
        }
        goto out;
    }
    if (level.len == 1 && level.p[0] == '+') {
        for (size_t i = 0; i < n->nkids && rc == 0; i++) {
            const struct retain_node *k = n->kids[i];
            if (first && k->len > 0 && k->level[0] == '$')
                continue;
            rc = retain__match(k, c, cb, ctx);
        }
        goto out;
    }
    {
        bool found;
        size_t i = retain__find(n, level, &found);
        if (found)
            rc = retain__match(n->kids[i], c, cb, ctx);
    }
out:
    return rc;
}

int retain_match(const struct retain *r, struct mqtt_str filter,
                 int (*cb)(void *ctx, struct msg *m), void *ctx)
{
    struct retain_cursor c;

    retain__cursor_init(&c, filter);
    return retain__match(r->root, c, cb, ctx);
}
