/*
 * tree.c — the sorted-children index of a topic-level tree (see tree.h).
 */
#include "tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
out:
    return n;
}

void tree_node_free(struct tree_node *n)
{
    if (!n)
        return;
    free(n->kids);
    free(n);
}

int tree_insert(struct tree_node *n, size_t i, struct tree_node *kid)
{
    int rc = -ENOMEM;

    if (n->nkids == n->capkids) {
        size_t cap = n->capkids ? n->capkids * 2 : 4;
        struct tree_node **k = realloc(n->kids, cap * sizeof(*k));
        if (!k)
            goto out;
        n->kids = k;
        n->capkids = cap;
    }
    memmove(&n->kids[i + 1], &n->kids[i], (n->nkids - i) * sizeof(*n->kids));
    n->kids[i] = kid;
    n->nkids++;
    rc = 0;
out:
    return rc;
}

void tree_remove(struct tree_node *kid)
{
    struct tree_node *p = kid->parent;
    struct mqtt_str level = {kid->level, kid->len};
    bool found;
    size_t i = tree_find(p, level, &found);

    if (found && p->kids[i] == kid) {
        memmove(&p->kids[i], &p->kids[i + 1], (p->nkids - i - 1) * sizeof(*p->kids));
        p->nkids--;
    }
}
