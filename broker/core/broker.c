/*
 * broker.c — the broker_* entry points the server calls (they dispatch to the handlers), the
 * iteration end (pump, commit, send), restore, reload and shutdown. What the handlers share
 * with it is below both, in deliver.c.
 */
#include "broker.h"

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "bridge.h"
#include "client.h"
#include "config.h"
#include "conn.h"
#include "deliver.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "sys.h"

/* Queued entries a durable online session keeps in memory (the rest waits on disk). */
#define BROKER_WINDOW 500u
/*
 * With persistence_sync true, a batch that nothing sent waits for (only dequeues after
 * PUBACK/PUBCOMP, session records, messages queued that nobody acknowledged) may wait this long
 * for company, so that one fsync covers many subscriber acknowledgements. Losing such records in
 * a crash only means resends with DUP, never a lost or doubled message. With persistence_sync
 * false nothing waits: a write costs no fsync, and every record then reaches the kernel before
 * the packets of its iteration reach a socket.
 */
#define BROKER_COMMIT_DELAY_MS 10u
/* Iterations in a row a session may ask to read a queue part the store does not show yet. */
#define BROKER_REFILL_TRIES 100u

static bool broker__commit(struct broker *b);

static void broker__limits(const struct config *cfg, struct session_limits *l)
{
    memset(l, 0, sizeof(*l));
    l->max_inflight = cfg->max_inflight_messages;
    l->max_queued = cfg->max_queued_messages;
    l->max_queued_bytes = cfg->max_queued_bytes;
    l->queue_qos0 = cfg->queue_qos0_messages;
    l->window = BROKER_WINDOW;
    l->max_inflight_bytes = cfg->max_inflight_bytes;
}

/* ---- restore ------------------------------------------------------------------------------ */

static int broker__restore_session(void *ctx, struct mqtt_str cid, const struct persist_session *s,
                                   const struct persist_queue_info *q)
{
    struct broker *b = ctx;

    return session_restore(b->sessions, cid, s, q) ? 0 : -ENOMEM;
}

static int broker__restore_sub(void *ctx, struct mqtt_str cid, struct mqtt_str filter, uint8_t qos)
{
    struct broker *b = ctx;
    struct session *s = session_find(b->sessions, cid);
    int rc = 0;

    if (!s) /* a subscription without its session: ignore it */
        goto out;
    if ((rc = session_sub_set(s, filter, qos)) < 0)
        goto out;
    rc = route_subscribe(&b->route, filter, s, qos);
    rc = rc < 0 ? rc : 0;
out:
    return rc;
}

static int broker__restore_inbound(void *ctx, struct mqtt_str cid, uint16_t pid)
{
    struct broker *b = ctx;
    struct session *s = session_find(b->sessions, cid);

    return s ? session_inbound_add(s, pid) : 0;
}

static int broker__restore_retain(void *ctx, const struct persist_msg *pm)
{
    struct broker *b = ctx;
    struct msg *m =
        msg_new(pm->id, pm->topic.p, pm->topic.len, pm->payload.p, pm->payload.len, pm->qos, true);
    struct retain_src *src = NULL;
    int rc = -ENOMEM;

    if (!m)
        goto out;
    if (pm->src.len && !(src = retain_src_decode(pm->src.p, pm->src.len))) {
        /* not ours to misread: the check then fails closed (broker__retain_allowed) */
        src = retain_src_new(-1, "", 0, NULL);
        if (!src)
            goto out;
    }
    if (pm->id > b->last_msg_id)
        b->last_msg_id = pm->id;
    rc = retain_set_src(&b->retain, m, src);
out:
    retain_src_free(src);
    msg_unref(m);
    return rc;
}

struct broker__msgs {
    struct msg **v;
    size_t n, cap;
};

static int broker__collect(void *ctx, struct msg *m)
{
    struct broker__msgs *l = ctx;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct msg **v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = msg_ref(m);
    return 0;
}

/*
 * A retained message under $SYS in the store can only have come from a client, before Cairn
 * refused client writes to $SYS (the broker's own $SYS messages are never stored): forget it,
 * in memory and in the store, rather than let subscribers believe it. A bridge's state
 * ($SYS/broker/connection/+/state) is the one kind clients may write, and stays.
 */
static int broker__restore_drop_sys(struct broker *b)
{
    static const struct mqtt_str all = {(const uint8_t *)"$SYS/#", 6};
    struct broker__msgs l = {0};
    int rc = retain_match(&b->retain, all, broker__collect, &l);

    for (size_t i = 0; i < l.n && rc == 0; i++) {
        struct msg *m = l.v[i];
        struct msg *none;

        if (sys_bridge_state(msg_topic(m)))
            continue; /* a bridge's state, which clients may write (sys.h) */
        none = msg_new(0, (const uint8_t *)m->topic, m->topic_len, NULL, 0, 0, true);
        rc = none ? retain_set(&b->retain, none) : -ENOMEM; /* an empty payload deletes */
        msg_unref(none);
        if (rc == 0) {
            persist_retain_del(b->store, msg_topic(m));
            log_write(CAIRN_LOG_NOTICE,
                      "retained message on %s removed from the store: clients may not publish "
                      "to $SYS",
                      m->topic);
        }
    }
    for (size_t i = 0; i < l.n; i++)
        msg_unref(l.v[i]);
    free(l.v);
    return rc;
}

static int broker__expiry_each(void *ctx, struct session *s)
{
    broker__session_expiry_arm(ctx, s);
    return 0;
}

static int broker__restore(struct broker *b, char *err, size_t errlen)
{
    static const struct persist_restore_ops ops = {
        .session = broker__restore_session,
        .sub = broker__restore_sub,
        .inbound = broker__restore_inbound,
        .retain = broker__restore_retain,
    };
    uint64_t max_id = 0;
    int rc;

    session_table_set_loading(b->sessions, true);
    rc = persist_restore(b->store, &ops, b, &max_id, err, errlen);
    session_table_set_loading(b->sessions, false);
    if (rc != 0) {
        if (err[0] == '\0')
            snprintf(err, errlen, "%s: restore failed (%d)", b->cfg->persistence_location, rc);
        rc = rc < 0 ? rc : -EIO;
        goto out;
    }
    if (max_id > b->last_msg_id)
        b->last_msg_id = max_id;
    if ((rc = broker__restore_drop_sys(b)) < 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    session_table_each(b->sessions, broker__expiry_each, b);
    log_write(CAIRN_LOG_NOTICE, "restored %zu sessions, %zu subscriptions, %zu retained from %s",
              session_table_count(b->sessions), route_count(&b->route), retain_count(&b->retain),
              b->cfg->persistence_location);
out:
    return rc;
}

/* ---- life cycle --------------------------------------------------------------------------- */

struct broker *broker_new(const struct config *cfg, struct loop *loop, char *err, size_t errlen)
{
    struct broker *b = calloc(1, sizeof(*b));
    struct session_limits lim;

    if (errlen)
        err[0] = '\0';
    if (!b) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    b->cfg = cfg;
    b->loop = loop;
    b->start_ms = loop_now_ms(loop);
    if (route_init(&b->route) < 0 || retain_init(&b->retain) < 0 || !(b->msgs = msg_table_new())) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    b->auth = auth_new(cfg, err, errlen);
    if (!b->auth)
        goto fail;
    if (cfg->persistence) {
        struct persist_options po = {
            .dir = cfg->persistence_location ? cfg->persistence_location : "./cairn-data",
            .sync = cfg->persistence_sync,
        };
        if (persist_open(&po, &b->store, err, errlen) < 0)
            goto fail;
        if (persist_repair_note(b->store)[0])
            log_write(CAIRN_LOG_WARNING,
                      "store %s: its log ended in a write cut short (never acknowledged); "
                      "LevelDB's recovery dropped it: %s",
                      po.dir, persist_repair_note(b->store));
    }
    broker__limits(cfg, &lim);
    b->sessions = session_table_new(b->store, b->msgs, &lim);
    if (!b->sessions) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (b->store && broker__restore(b, err, errlen) < 0)
        goto fail;
    if (sys_start(b) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    sys_log_start(b);
    return b;
fail:
    broker_free(b);
    return NULL;
}

static int broker__cancel_expiry(void *ctx, struct session *s)
{
    broker__session_expiry_cancel(ctx, s);
    return 0;
}

void broker_free(struct broker *b)
{
    if (!b)
        return;
    sys_log_stop(b);
    sys_stop(b);
    if (b->kick)
        loop_timer_cancel(b->loop, b->kick);
    if (b->store)
        session_table_flush(b->sessions);
    if (b->store && !persist_batch_empty(b->store))
        broker__commit(b); /* records no ack waited for (see BROKER_COMMIT_DELAY_MS) */
    if (b->store) {
        /* a clean stop leaves the store synced in both modes: a power cut right after it
         * loses nothing (persist_close would sync too, but could not say it failed) */
        char err[256] = "";
        if (persist_sync(b->store, err, sizeof(err)) < 0)
            log_write(CAIRN_LOG_ERR, "store sync at shutdown failed: %s", err);
    }
    if (b->commit_timer)
        loop_timer_cancel(b->loop, b->commit_timer);
    if (b->sessions) {
        session_table_each(b->sessions, broker__cancel_expiry, b);
        session_table_free(b->sessions);
    }
    if (b->detached_timer)
        loop_timer_cancel(b->loop, b->detached_timer);
    route_cleanup(&b->route);
    while (b->detached) { /* the tree that pointed at them is gone */
        struct session *s = b->detached;
        b->detached = s->dirty_next;
        session_free_detached(s);
    }
    route_hits_cleanup(&b->hits);
    retain_cleanup(&b->retain);
    msg_table_free(b->msgs);
    persist_close(b->store);
    auth_free(b->auth);
    free(b);
}

/* ---- the server's calls ------------------------------------------------------------------- */

int broker_on_open(struct broker *b, struct conn *c)
{
    struct client *cl = client_new(b, c);

    if (cl)
        conn_set_data(c, cl);
    return cl ? 0 : -ENOMEM;
}

int broker_on_oversize(struct broker *b, struct conn *c, const struct mqtt_publish *head,
                       size_t payload_len)
{
    struct client *cl = conn_data(c);

    return cl && cl->connected ? handle_publish_oversize(b, cl, head, payload_len) : -EPROTO;
}

int broker_on_bad_connect(struct broker *b, struct conn *c, int err)
{
    uint8_t buf[4];
    size_t n = mqtt_encode_connack(buf, sizeof(buf), false, MQTT_CONNACK_BAD_PROTOCOL);

    if (err == -MQTT_EPROTO_LEVEL) {
        conn_write(c, buf, n);
        log_write(CAIRN_LOG_NOTICE, "client %s: unacceptable protocol level, CONNACK 1",
                  conn_peer(c));
    }
    conn_close(c, err);
    return 0;
}

int broker_on_packet(struct broker *b, struct conn *c, const struct mqtt_packet *pkt)
{
    struct client *cl = conn_data(c);
    int rc = -EPROTO;

    if (!cl)
        goto out;
    if (cl->bridge) {
        rc = bridge_on_packet(cl->bridge, cl, pkt); /* the remote broker speaking */
        goto out;
    }
    if (!cl->connected && pkt->type != MQTT_CONNECT) {
        /* [MQTT-3.1.0-1] the first packet must be CONNECT */
        goto out;
    }
    switch (pkt->type) {
    case MQTT_CONNECT:
        rc = cl->connected ? -EPROTO /* [MQTT-3.1.0-2] */ : handle_connect(b, cl, &pkt->u.connect);
        break;
    case MQTT_PUBLISH:
        rc = handle_publish(b, cl, &pkt->u.publish);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        rc = handle_ack(b, cl, pkt->type, pkt->u.ack.packet_id);
        break;
    case MQTT_SUBSCRIBE:
        rc = handle_subscribe(b, cl, &pkt->u.topics);
        break;
    case MQTT_UNSUBSCRIBE:
        rc = handle_unsubscribe(b, cl, &pkt->u.topics);
        break;
    case MQTT_PINGREQ:
        rc = handle_pingreq(b, cl);
        break;
    case MQTT_DISCONNECT:
        rc = handle_disconnect(b, cl);
        break;
    default: /* a server-to-client packet from a client */
        rc = -EPROTO;
        break;
    }
out:
    return rc;
}

void broker_on_close(struct broker *b, struct conn *c, int reason)
{
    struct client *cl = conn_data(c);
    struct session *s;

    if (!cl)
        return;
    conn_set_data(c, NULL);
    broker__client_undirty(b, cl);
    s = cl->session;
    if (cl->connected && s && s->owner == cl) {
        if (reason != 0 && !cl->disconnecting)
            broker__publish_will(b, cl);
        broker__session_undirty(b, s);
        if (s->clean) {
            broker__session_discard(b, s);
        } else {
            session_offline(s);
            session_touch(s, broker__now());
            broker__session_expiry_arm(b, s);
        }
        if (b->stats.clients_connected)
            b->stats.clients_connected--;
    }
    cl->session = NULL;
    if (cl->bridge)
        bridge_on_close(cl->bridge, cl, c);
    client_free(cl);
    broker__kick(b);
}

void broker_on_writable(struct broker *b, struct conn *c)
{
    struct client *cl = conn_data(c);

    if (cl && cl->session && cl->session->owner == cl) {
        broker__session_dirty(b, cl->session);
        broker__kick(b);
    }
}

/* ---- the iteration end: pump, commit, send ------------------------------------------------ */

/* After a failed commit: nothing held may leave. */
static void broker__commit_failed(struct broker *b)
{
    session_table_commit_failed(b->sessions);
    for (struct client *cl = b->dirty_clients; cl; cl = cl->dirty_next) {
        client_drop_held(cl);
        conn_close(cl->conn, -EIO);
    }
}

static void broker__commit_timer_cb(void *arg)
{
    struct broker *b = arg;

    b->commit_timer = NULL;
    b->commit_due = true; /* this iteration's end commits */
}

/* Write the batch. false on failure (logged). */
static bool broker__commit(struct broker *b)
{
    struct timespec t0, t1;
    char err[256] = "";
    bool ok = true;

    if (b->commit_timer) {
        loop_timer_cancel(b->loop, b->commit_timer);
        b->commit_timer = NULL;
    }
    b->commit_due = false;
    b->stats.commits++;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ok = persist_commit(b->store, err, sizeof(err)) == 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    metrics_commit((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, ok);
    if (!ok) {
        b->stats.commit_failures++;
        /* a full disk fails every commit until space returns: say so once in a while */
        if (b->commit_fail_streak++ % 1000 == 0)
            log_write(CAIRN_LOG_ERR,
                      "store write failed, acknowledgements withheld (%llu in a row): %s",
                      (unsigned long long)b->commit_fail_streak, err);
    } else if (b->commit_fail_streak) {
        const char *note = persist_repair_note(b->store);
        log_write(CAIRN_LOG_NOTICE, "store writable again after %llu failed writes%s%s",
                  (unsigned long long)b->commit_fail_streak, note[0] ? "; dropped " : "", note);
        b->commit_fail_streak = 0;
    }
    return ok;
}

void broker_on_iteration_end(struct broker *b)
{
    struct session *s, *again = NULL;
    struct client *cl;
    bool ok = true, durable = true; /* durable: nothing recorded is left uncommitted */

    sys_log_flush(b); /* log_dest topic: its deliveries join this batch */
    while ((s = b->dirty_sessions)) {
        b->dirty_sessions = s->dirty_next;
        s->dirty = false;
        if (broker__pump(b, s) > 0 && s->ext)
            s->ext->refill_tries = 0;
        /*
         * Nothing left in memory but more on disk that could not be read yet: it is in a batch
         * not committed (this one, or a deferred one). Commit now and read it next iteration
         * (bounded: a count left by a failed commit is settled by session_refill).
         */
        if (s->owner && session_wants_refill(s) && s->queue.n == 0 && /* on disk: s has ext */
            s->ext->refill_tries < BROKER_REFILL_TRIES) {
            s->ext->refill_tries++;
            s->dirty_next = again;
            again = s;
        }
    }
    if (b->store)
        session_table_flush(b->sessions); /* the records of what was queued: before the commit */
    if (b->store && !persist_batch_empty(b->store)) {
        if (!b->cfg->persistence_sync || b->dirty_clients || b->sent_in_batch || again ||
            b->commit_due || b->shutting_down) {
            ok = broker__commit(b);
        } else {
            durable = false; /* deferred: what was queued this time is not durable yet */
            if (!b->commit_timer)
                b->commit_timer =
                    loop_timer_add(b->loop, BROKER_COMMIT_DELAY_MS, broker__commit_timer_cb, b);
            if (!b->commit_timer)
                durable = ok = broker__commit(b);
        }
    }
    b->sent_in_batch = false;
    if (!ok)
        broker__commit_failed(b);
    else if (durable)
        session_table_committed(b->sessions);
    while ((cl = b->dirty_clients)) {
        b->dirty_clients = cl->dirty_next;
        cl->dirty = false;
        if (ok)
            client_flush_held(cl);
    }
    while ((s = again)) {
        again = s->dirty_next;
        broker__session_dirty(b, s);
        broker__kick(b);
    }
}

/* ---- reload, shutdown, stats -------------------------------------------------------------- */

int broker_reload(struct broker *b, const struct config *cfg)
{
    struct session_limits lim;
    char err[256];

    b->cfg = cfg;
    broker__limits(cfg, &lim);
    session_table_set_limits(b->sessions, &lim);
    if (auth_reload(&b->auth, cfg, err, sizeof(err)) < 0)
        log_write(CAIRN_LOG_WARNING, "reload: keeping the previous auth rules: %s", err);
    sys_stop(b);
    sys_start(b);
    session_table_each(b->sessions, broker__expiry_each, b);
    return 0;
}

void broker_shutdown(struct broker *b)
{
    b->shutting_down = true;
    broker_on_iteration_end(b);
    sys_stop(b);
}

const struct broker_stats *broker_stats(const struct broker *b)
{
    return &b->stats;
}

size_t broker_session_count(const struct broker *b)
{
    return session_table_count(b->sessions);
}

size_t broker_subscription_count(const struct broker *b)
{
    return route_count(&b->route);
}

size_t broker_retained_count(const struct broker *b)
{
    return retain_count(&b->retain);
}

const char *broker_store_dir(const struct broker *b)
{
    return b->store ? persist_path(b->store) : NULL;
}
