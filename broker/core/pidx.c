/*
 * pidx.c — the packet-id index (pidx.h).
 */
#include "pidx.h"

#include <errno.h>
#include <stdlib.h>

/* Multiplicative hashing spreads consecutive ids (the usual case) over the table. */
static uint32_t pidx__home(const struct pidx *x, uint16_t pid)
{
    return ((uint32_t)pid * 2654435761u) & (x->cap - 1);
}

void pidx_init(struct pidx *x)
{
    x->key = NULL;
    x->val = NULL;
    x->cap = 0;
    x->n = 0;
}

void pidx_cleanup(struct pidx *x)
{
    free(x->key);
    free(x->val);
    pidx_init(x);
}

static void pidx__insert(struct pidx *x, uint16_t pid, void *v)
{
    uint32_t i = pidx__home(x, pid);

    while (x->key[i])
        i = (i + 1) & (x->cap - 1);
    x->key[i] = pid;
    x->val[i] = v;
    x->n++;
}

static int pidx__grow(struct pidx *x)
{
    struct pidx old = *x;
    uint32_t cap = x->cap ? x->cap * 2 : 64;
    int rc = 0;

    x->key = calloc(cap, sizeof(*x->key));
    x->val = calloc(cap, sizeof(*x->val));
    if (!x->key || !x->val) {
        free(x->key);
        free(x->val);
        *x = old;
        rc = -ENOMEM;
        goto out;
    }
    x->cap = cap;
    x->n = 0;
    for (uint32_t i = 0; i < old.cap; i++)
        if (old.key[i])
            pidx__insert(x, old.key[i], old.val[i]);
    free(old.key);
    free(old.val);
out:
    return rc;
}

int pidx_put(struct pidx *x, uint16_t pid, void *v)
{
    int rc = 0;

    if (pidx_get(x, pid)) {
        rc = -EEXIST;
        goto out;
    }
    if ((x->n + 1) * 2 > x->cap && (rc = pidx__grow(x)) < 0)
        goto out;
    pidx__insert(x, pid, v);
out:
    return rc;
}

void *pidx_get(const struct pidx *x, uint16_t pid)
{
    void *v = NULL;

    if (x->cap == 0 || pid == 0)
        goto out;
    for (uint32_t i = pidx__home(x, pid); x->key[i]; i = (i + 1) & (x->cap - 1)) {
        if (x->key[i] == pid) {
            v = x->val[i];
            break;
        }
    }
out:
    return v;
}

void pidx_del(struct pidx *x, uint16_t pid)
{
    uint32_t i, j, mask = x->cap - 1;

    if (x->cap == 0 || pid == 0)
        return;
    for (i = pidx__home(x, pid); x->key[i] && x->key[i] != pid; i = (i + 1) & mask) {
    }
    if (!x->key[i])
        return;
    /* backward shift: pull each later entry of the run into the hole if its home allows */
    for (j = (i + 1) & mask; x->key[j]; j = (j + 1) & mask) {
        uint32_t home = pidx__home(x, x->key[j]);
        /* move j to i when home is not cyclically within (i, j] */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            x->key[i] = x->key[j];
            x->val[i] = x->val[j];
            i = j;
        }
    }
    x->key[i] = 0;
    x->val[i] = NULL;
    x->n--;
}
