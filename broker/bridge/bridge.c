/*
 * bridge.c — the set of bridges (bridge.h): built with their TLS contexts before anything runs,
 * started once the listeners serve, stopped at shutdown, reloaded bridge by bridge on SIGHUP,
 * and the figures $SYS and /metrics report.
 */
#include "bridge.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge_internal.h"
#include "client.h"
#include "config.h"
#include "log.h"
#include "tls.h"
#include "tls_client.h"

struct bridge_plan {
    const struct config *cfg;
    struct tls_ctx **tls; /* per bridge of cfg: a new context (changed or new, with TLS) */
    long *keep;           /* per bridge of cfg: the running bridge it is unchanged from, or -1 */
    struct bridge **v;    /* the set's array to be (made here: applying cannot fail) */
    size_t n;
};

struct bridge_set *bridge_set_new(const struct config *cfg, char *err, size_t errlen)
{
    struct bridge_set *set = calloc(1, sizeof(*set));
    struct tls_ctx *tls = NULL;

    if (!set || !(set->v = calloc(cfg->n_bridges + 1, sizeof(*set->v))))
        goto nomem;
    set->cfg = cfg;
    for (size_t i = 0; i < cfg->n_bridges; i++) {
        if (tls_client_ctx_new(cfg, &cfg->bridges[i], &tls, err, errlen) < 0)
            goto fail;
        set->v[i] = bridge__new(set, &cfg->bridges[i], tls);
        if (!set->v[i])
            goto nomem;
        set->n++;
    }
    return set;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    bridge_set_free(set);
    return NULL;
}

int bridge_set_start(struct bridge_set *set, struct loop *l, struct conn_pool *pool,
                     struct broker *b, char *err, size_t errlen)
{
    int rc = 0;

    set->loop = l;
    set->pool = pool;
    set->b = b;
    b->bridges = set;
    for (size_t i = 0; rc == 0 && i < set->n; i++) {
        rc = bridge__start(set->v[i]);
        if (rc < 0)
            snprintf(err, errlen, "bridge %s: out of memory", set->v[i]->cfg->name);
    }
    return rc;
}

void bridge_set_stop(struct bridge_set *set)
{
    if (!set || set->stopping)
        return;
    set->stopping = true;
    for (size_t i = 0; set->b && i < set->n; i++)
        bridge__stop(set->v[i], false);
}

void bridge_set_free(struct bridge_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++) {
        if (set->b)
            bridge__stop(set->v[i], false);
        bridge__free(set->v[i]);
    }
    if (set->b && set->b->bridges == set)
        set->b->bridges = NULL;
    free(set->v);
    free(set);
}

/* ---- reload --------------------------------------------------------------------------------- */

void bridge_plan_free(struct bridge_plan *plan)
{
    if (!plan)
        return;
    for (size_t i = 0; plan->tls && i < plan->n; i++)
        tls_ctx_unref(plan->tls[i]);
    free(plan->tls);
    free(plan->keep);
    free(plan->v);
    free(plan);
}

struct bridge_plan *bridge_set_plan(struct bridge_set *set, const struct config *cfg, char *err,
                                    size_t errlen)
{
    struct bridge_plan *plan = calloc(1, sizeof(*plan));
    size_t n = cfg->n_bridges;

    if (!plan || !(plan->tls = calloc(n + 1, sizeof(*plan->tls))) ||
        !(plan->keep = calloc(n + 1, sizeof(*plan->keep))) ||
        !(plan->v = calloc(n + 1, sizeof(*plan->v)))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    plan->cfg = cfg;
    plan->n = n;
    for (size_t j = 0; j < n; j++) {
        const struct config_bridge *nb = &cfg->bridges[j];
        plan->keep[j] = -1;
        for (size_t i = 0; i < set->n; i++)
            if (config_bridge_equal(set->v[i]->cfg, nb))
                plan->keep[j] = (long)i;
        if (plan->keep[j] < 0 && tls_client_ctx_new(cfg, nb, &plan->tls[j], err, errlen) < 0)
            goto fail;
    }
    return plan;
fail:
    bridge_plan_free(plan);
    return NULL;
}

/* Does a bridge of cfg use local_clientid id (a changed bridge keeps its queue)? */
static bool bridge_id_reused(const struct config *cfg, const char *id)
{
    for (size_t j = 0; j < cfg->n_bridges; j++)
        if (strcmp(cfg->bridges[j].local_clientid, id) == 0)
            return true;
    return false;
}

void bridge_set_apply(struct bridge_set *set, struct bridge_plan *plan)
{
    const struct config *cfg = plan->cfg;
    struct bridge **v = plan->v, *br;
    size_t n = 0;

    plan->v = NULL;
    for (size_t j = 0; j < plan->n; j++) {
        if (plan->keep[j] < 0)
            continue;
        br = set->v[plan->keep[j]];
        set->v[plan->keep[j]] = NULL;
        br->cfg = &cfg->bridges[j]; /* the same options, in the new config */
        v[j] = br;
        if (set->b)
            bridge__limits(br); /* the global limits it may follow changed perhaps */
    }
    for (size_t i = 0; i < set->n; i++) {
        if (!(br = set->v[i]))
            continue;
        log_write(CAIRN_LOG_NOTICE, "reload: bridge %s %s", br->cfg->name,
                  bridge_id_reused(cfg, br->cfg->local_clientid) ? "changed: restarting"
                                                                 : "removed: stopping");
        bridge__stop(br, !bridge_id_reused(cfg, br->cfg->local_clientid));
        bridge__free(br);
    }
    for (size_t j = 0; j < plan->n; j++) {
        if (v[j])
            continue;
        v[j] = bridge__new(set, &cfg->bridges[j], plan->tls[j]);
        plan->tls[j] = NULL;
        if (!v[j] || (set->b && !set->stopping && bridge__start(v[j]) < 0))
            log_write(CAIRN_LOG_ERR, "reload: bridge %s not started: out of memory",
                      cfg->bridges[j].name);
    }
    for (size_t j = 0; j < plan->n; j++)
        if (v[j])
            v[n++] = v[j];
    free(set->v);
    set->v = v;
    set->n = n;
    set->cfg = cfg;
    bridge_plan_free(plan);
}

/* ---- figures -------------------------------------------------------------------------------- */

size_t bridge_set_count(const struct bridge_set *set)
{
    return set ? set->n : 0;
}

void bridge_set_stats(const struct bridge_set *set, size_t i, struct bridge_stats *out)
{
    static const char *const states[] = {"waiting", "connecting", "connecting", "connected",
                                         "stopped"};
    const struct bridge *br = set->v[i];
    const struct session *s = br->s;

    memset(out, 0, sizeof(*out));
    out->name = br->cfg->name;
    out->state = states[br->state];
    snprintf(out->remote, sizeof(out->remote), "%s", br->remote);
    out->queued = s ? s->q_count : 0;
    out->queued_bytes = s ? s->q_bytes : 0;
    out->inflight = s ? s->inflight.n : 0;
    out->dropped = (s ? session_dropped(s) : 0) + br->too_large;
    out->connects = br->connects;
    out->sent = br->sent;
    out->received = br->received;
    snprintf(out->last_error, sizeof(out->last_error), "%s", br->last_error);
}
