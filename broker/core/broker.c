/*
 * broker.c — the broker_* entry points the server calls, the iteration end (commit, then
 * send), restore, and the helpers the handlers share (client.h).
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
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "sys.h"

/* Queued entries a durable online session keeps in memory (the rest waits on disk). */
#define BROKER_WINDOW 500u
/*
 * A connected subscriber whose output (written or held, not yet read by it) reaches this many
 * bytes gets no more QoS 0 messages until it catches up; QoS 1/2 wait in its queue
 * (max_queued_messages) — so a client that stops reading costs at most this much output plus
 * its bounded queue. QoS 1/2 pumping stops earlier, at CONN_OUT_HIGH_WATER, and resumes
 * on_writable. The room absorbs bursts from fast publishers without dropping.
 */
#define BROKER_QOS0_DROP_BYTES (4u * 1024u * 1024u)
/*
 * With persistence_sync true, a batch that nothing sent waits for (only dequeues after
 * PUBACK/PUBCOMP, session records, messages queued that nobody acknowledged) may wait this long
 * for company, so that one fsync covers many subscriber acknowledgements. Losing such records in
 * a crash only means resends with DUP, never a lost or doubled message. With persistence_sync
 * false nothing waits: a write costs no fsync, and every record then reaches the kernel before
 * the packets of its iteration reach a socket.
 */
#define BROKER_COMMIT_DELAY_MS 10u
/* Subscriptions a discarded session takes out of the route tree per loop pass. */
#define BROKER_DISCARD_SLICE 2000u
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

int64_t broker__now(void)
{
    return (int64_t)time(NULL);
}

uint64_t broker__msg_id(struct broker *b)
{
    return ++b->last_msg_id;
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

/* ---- dirty lists -------------------------------------------------------------------------- */

static void broker__kick_cb(void *arg)
{
    struct broker *b = arg;

    b->kick = NULL; /* the iteration end of this iteration does the work */
}

void broker__kick(struct broker *b)
{
    if (!b->kick)
        b->kick = loop_timer_add(b->loop, 0, broker__kick_cb, b);
}

void broker__client_dirty(struct broker *b, struct client *cl)
{
    if (cl->dirty)
        return;
    cl->dirty = true;
    cl->dirty_next = b->dirty_clients;
    b->dirty_clients = cl;
}

void broker__session_dirty(struct broker *b, struct session *s)
{
    if (s->dirty || !s->owner)
        return;
    s->dirty = true;
    s->dirty_next = b->dirty_sessions;
    b->dirty_sessions = s;
}

static void broker__client_undirty(struct broker *b, struct client *cl)
{
    struct client **pp = &b->dirty_clients;

    if (!cl->dirty)
        return;
    while (*pp && *pp != cl)
        pp = &(*pp)->dirty_next;
    if (*pp)
        *pp = cl->dirty_next;
    cl->dirty = false;
}

static void broker__session_undirty(struct broker *b, struct session *s)
{
    struct session **pp = &b->dirty_sessions;

    if (!s->dirty)
        return;
    while (*pp && *pp != s)
        pp = &(*pp)->dirty_next;
    if (*pp)
        *pp = s->dirty_next;
    s->dirty = false;
}

/* ---- sessions ----------------------------------------------------------------------------- */

/*
 * Take up to max of s's subscriptions out of the route tree, from s->detach_cursor on. true
 * when none is left.
 */
static bool broker__unsubscribe_some(struct broker *b, struct session *s, size_t max)
{
    struct subset_entry *e;
    bool done = false;

    for (size_t i = 0; i < max && !done; i++) {
        e = subset_next(&s->subs, &s->detach_cursor);
        if (e) {
            struct mqtt_str f = {(const uint8_t *)e->filter, e->len};
            route_unsubscribe(&b->route, f, s);
        }
        done = e == NULL;
    }
    return done;
}

/* Every detached session's route entries now, and its memory (out of memory for a timer). */
static void broker__detached_drain(struct broker *b)
{
    struct session *s;

    while ((s = b->detached)) {
        b->detached = s->dirty_next;
        broker__unsubscribe_some(b, s, SIZE_MAX);
        session_free_detached(s);
    }
}

/* Detached sessions' route entries, a slice per loop pass, then their memory. */
static void broker__detached_cb(void *arg)
{
    struct broker *b = arg;
    struct session *s = b->detached;

    b->detached_timer = NULL;
    if (s && broker__unsubscribe_some(b, s, BROKER_DISCARD_SLICE)) {
        b->detached = s->dirty_next;
        session_free_detached(s);
    }
    if (b->detached && !b->shutting_down)
        b->detached_timer = loop_timer_add(b->loop, 0, broker__detached_cb, b);
}

/*
 * A session with more subscriptions than one loop pass should spend on (a client's 200,000
 * filters took 0.6 s to take out of the tree) leaves the table and the store at once and its
 * route entries a slice per pass (issue 9: no client holds the loop); until then routing skips
 * it (s->detached).
 */
void broker__session_discard(struct broker *b, struct session *s)
{
    broker__session_expiry_cancel(b, s);
    broker__session_undirty(b, s);
    if (subset_count(&s->subs) <= BROKER_DISCARD_SLICE) {
        broker__unsubscribe_some(b, s, SIZE_MAX);
        session_del(s);
        return;
    }
    session_detach(s);
    s->owner = NULL;
    s->dirty_next = b->detached; /* the dirty link is free: it left the dirty list above */
    b->detached = s;
    if (!b->detached_timer)
        b->detached_timer = loop_timer_add(b->loop, 0, broker__detached_cb, b);
    if (!b->detached_timer) /* out of memory: do it all now */
        broker__detached_drain(b);
}

static void broker__expiry_cb(void *arg)
{
    struct session *s = arg;
    struct broker *b = s->expiry_ctx;

    s->expiry = NULL;
    if (s->owner)
        return;
    log_write(CAIRN_LOG_NOTICE, "expiring client %s, its session has been inactive too long",
              s->id);
    broker__session_discard(b, s);
}

void broker__session_expiry_arm(struct broker *b, struct session *s)
{
    uint64_t exp = b->cfg->persistent_client_expiration;
    int64_t idle = broker__now() - s->last_seen;
    uint64_t delay;

    broker__session_expiry_cancel(b, s);
    if (exp == 0 || s->owner || s->bridge)
        return;
    delay = idle >= (int64_t)exp ? 0 : (exp - (uint64_t)(idle > 0 ? idle : 0)) * 1000u;
    s->expiry_ctx = b;
    s->expiry = loop_timer_add(b->loop, delay, broker__expiry_cb, s);
}

void broker__session_expiry_cancel(struct broker *b, struct session *s)
{
    if (s->expiry) {
        loop_timer_cancel(b->loop, s->expiry);
        s->expiry = NULL;
    }
}

bool broker__can_read(struct broker *b, struct session *s, struct mqtt_str topic)
{
    struct client *cl = s->owner;

    if (!cl)
        return true; /* checked again when sent */
    return auth_can_read(b->auth, cl->listener, s->id, cl->username, (const char *)topic.p,
                         topic.len);
}

static size_t broker__pump(struct broker *b, struct session *s);

/* Bytes waiting for the client: in its conn's queue and held for the iteration end. */
static size_t broker__out_bytes(const struct client *cl)
{
    return conn_out_bytes(cl->conn) + cl->held_bytes;
}

/* ---- routing ------------------------------------------------------------------------------ */

/*
 * What a bridge's session (or a bridging peer's, session.h no_local) gets of m: nothing when its
 * own client published it — the loop a bridge would make — else m, or when m was published
 * retained its retained twin (made once per routing in *twin), since bridges forward the
 * RETAIN flag as published. NULL: skip this session.
 */
static struct msg *broker__no_local(struct broker *b, struct session *s, struct msg *m,
                                    const struct session *origin, bool pub_retain,
                                    struct msg **twin)
{
    struct msg *em = m;

    if (s == origin)
        return NULL;
    if (pub_retain && !*twin) {
        *twin = msg_new(broker__msg_id(b), (const uint8_t *)m->topic, m->topic_len, m->payload,
                        m->payload_len, m->qos, true);
        if (*twin && msg_table_add(b->msgs, *twin) < 0) {
            msg_unref(*twin);
            *twin = NULL;
        }
    }
    if (pub_retain && *twin)
        em = *twin;
    return s->bridge && !bridge_route_ok(s->bridge, em) ? NULL : em;
}

int broker__route(struct broker *b, struct msg *m, const struct session *origin, bool pub_retain)
{
    struct msg *twin = NULL;
    int rc = route_match(&b->route, msg_topic(m), &b->hits);

    if (rc < 0)
        goto out;
    for (size_t i = 0; i < b->hits.n; i++) {
        struct session *s = b->hits.v[i].sub;
        struct msg *em = m;
        uint8_t qos = broker__delivery_qos(b, m->qos, b->hits.v[i].qos);
        int q;
        if (s->detached || (s->owner && !broker__can_read(b, s, msg_topic(m))))
            continue;
        if (s->no_local && !(em = broker__no_local(b, s, m, origin, pub_retain, &twin)))
            continue;
        if (qos == 0 && s->owner && broker__out_bytes(s->owner) >= BROKER_QOS0_DROP_BYTES) {
            /* a subscriber that stops reading loses QoS 0, never the broker's memory */
            b->stats.messages_dropped++;
            metrics_drop(METRICS_DROP_SLOW_SUBSCRIBER);
            if (++s->dropped_qos0 == 1 || s->dropped_qos0 % 10000 == 0)
                log_write(CAIRN_LOG_DEBUG, "client %s: slow reader, %llu QoS 0 messages dropped",
                          s->id, (unsigned long long)s->dropped_qos0);
            continue;
        }
        q = session_enqueue(s, em, qos);
        if (q == SESSION_DROPPED_QOS0)
            metrics_drop(METRICS_DROP_OFFLINE_QOS0);
        if (q == SESSION_DROPPED_LIMIT) {
            b->stats.messages_dropped++;
            metrics_drop(METRICS_DROP_QUEUE_FULL);
            if (s->dropped == 1 || s->dropped % 1000 == 0)
                log_write(CAIRN_LOG_WARNING,
                          "client %s: queue full (%llu messages, %llu bytes): message on %s "
                          "dropped (%llu so far)",
                          s->id, (unsigned long long)s->q_count, (unsigned long long)s->q_bytes,
                          m->topic, (unsigned long long)s->dropped);
        } else if (q == SESSION_QUEUED && s->owner) {
            /* straight into the held output: what is held leaves after the commit anyway, and
             * the queue of a client that keeps up stays empty */
            broker__pump(b, s);
        }
    }
out:
    msg_unref(twin);
    return rc;
}

uint8_t broker__delivery_qos(const struct broker *b, uint8_t qos, uint8_t sub_qos)
{
    /* upgrade_outgoing_qos: Mosquitto's non-standard option, the subscription's QoS always */
    if (b->cfg->upgrade_outgoing_qos)
        return sub_qos;
    return sub_qos < qos ? sub_qos : qos;
}

bool broker__retain_allowed(struct broker *b, const struct msg *m)
{
    const struct retain_src *src;
    int li;

    if (!b->cfg->check_retain_source || !(src = retain_source(&b->retain, msg_topic(m))))
        return true; /* the broker's own ($SYS), or not checked */
    li = src->listener;
    if (li == AUTH_LISTENER_BRIDGE)
        return true; /* a bridge brought it: no ACL applies to bridges */
    /* a listener gone since a restart: the rules are the same for all unless per listener */
    if (li < 0 || (size_t)li >= b->cfg->n_listeners)
        li = b->cfg->per_listener_settings || li < 0 ? -1 : 0;
    return auth_can_write(b->auth, li, src->id, src->username, m->topic, m->topic_len);
}

/* The retained copy of a message: in the tree with its source, and in the store. */
static int broker__retain(struct broker *b, struct msg *rm, bool store, const struct client *from)
{
    struct mqtt_str topic = msg_topic(rm), payload = msg_payload(rm);
    struct retain_src *src = NULL;
    uint8_t *enc = NULL;
    size_t n = 0;
    int rc = -ENOMEM;

    if (from && payload.len) {
        /* a will published at a takeover has lost its session: client_id() still knows */
        src = retain_src_new(from->listener, client_id(from), strlen(client_id(from)),
                             from->username);
        n = src ? retain_src_encode(src, NULL, 0) : 0;
        if (!src || (n && !(enc = malloc(n))))
            goto out;
        if (n)
            retain_src_encode(src, enc, n);
    }
    if (retain_set_src(&b->retain, rm, src) < 0)
        goto out;
    if (b->store && store) {
        if (payload.len == 0) {
            persist_retain_del(b->store, topic);
        } else {
            struct persist_msg pm = {rm->id, topic, payload, rm->qos, true, {enc, n}};
            persist_retain_put(b->store, &pm);
        }
    }
    rc = 0;
out:
    free(enc);
    retain_src_free(src);
    return rc;
}

int broker__publish_from(struct broker *b, struct mqtt_str topic, struct mqtt_str payload,
                         uint8_t qos, bool retain, bool store_retained, const struct client *from)
{
    return broker__publish_origin(b, topic, payload, qos, retain, store_retained, from,
                                  from ? from->session : NULL);
}

int broker__publish_origin(struct broker *b, struct mqtt_str topic, struct mqtt_str payload,
                           uint8_t qos, bool retain, bool store_retained, const struct client *from,
                           const struct session *origin)
{
    struct msg *m = NULL, *rm = NULL;
    int rc = -ENOMEM;

    m = msg_new(broker__msg_id(b), topic.p, topic.len, payload.p, payload.len, qos, false);
    if (!m || msg_table_add(b->msgs, m) < 0)
        goto out;
    if (retain && b->cfg->retain_available) {
        /* the retained copy is sent with RETAIN=1 to new subscribers [MQTT-3.3.1-8] */
        rm = msg_new(broker__msg_id(b), topic.p, topic.len, payload.p, payload.len, qos, true);
        if (!rm || broker__retain(b, rm, store_retained, from) < 0)
            goto out;
    }
    rc = broker__route(b, m, origin, retain && b->cfg->retain_available);
out:
    msg_unref(rm);
    msg_unref(m);
    return rc;
}

int broker_publish(struct broker *b, struct mqtt_str topic, struct mqtt_str payload, uint8_t qos,
                   bool retain, bool store_retained)
{
    return broker__publish_from(b, topic, payload, qos, retain, store_retained, NULL);
}

void broker__publish_will(struct broker *b, struct client *cl)
{
    struct msg *w = cl->will;

    if (!w)
        return;
    cl->will = NULL;
    log_write(CAIRN_LOG_DEBUG, "client %s %s: publishing will on %s", client_peer(cl),
              client_id(cl), w->topic);
    if (broker__publish_from(b, msg_topic(w), msg_payload(w), w->qos, w->retain, true, cl) < 0)
        log_write(CAIRN_LOG_ERR, "client %s: will dropped: out of memory", client_id(cl));
    msg_unref(w);
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

static void broker__drop_entry(struct session *s, struct sentry *e);

/*
 * Hold the resends of entries that came back into the in-flight window. A PUBLISH is read
 * checked again, as the queue path checks it: rights may have gone since it was first sent (a
 * reload of the ACL, a reconnect on a listener with other rules), and one the client may no
 * longer read is finished unsent. A PUBREL carries no message: it always goes.
 */
static void broker__resend(struct broker *b, struct client *cl, struct session *s)
{
    struct sentry *next;

    if (!s->resend_pending)
        return;
    s->resend_pending = false;
    for (struct sentry *e = s->inflight.head; e; e = next) {
        next = e->next; /* e may leave the window */
        if (!e->resend)
            continue;
        e->resend = false;
        if (e->state == PERSIST_Q_WAIT_PUBCOMP)
            client_hold_ack(cl, MQTT_PUBREL, e->pid);
        else if (b->auth && !auth_can_read(b->auth, cl->listener, s->id, cl->username, e->m->topic,
                                           e->m->topic_len))
            broker__drop_entry(s, e);
        else
            client_hold_publish(cl, e->m, e->qos, e->pid, true);
    }
}

/* Finish an entry the client may not read (ACL changed since it was queued). */
static void broker__drop_entry(struct session *s, struct sentry *e)
{
    if (e->qos == 0) {
        sentry_free(e);
    } else if (e->qos == 1) {
        session_ack(s, MQTT_PUBACK, e->pid);
    } else {
        session_ack(s, MQTT_PUBREC, e->pid);
        session_ack(s, MQTT_PUBCOMP, e->pid);
    }
}

/* Move what the window allows from s's queue into its client's held output. Returns how many
 * entries were read back from the store. */
static size_t broker__pump(struct broker *b, struct session *s)
{
    struct client *cl = s->owner;
    uint64_t gen = session_table_gen(b->sessions);
    bool refill = true;
    size_t got = 0;
    int n;

    if (!cl || conn_closing(cl->conn))
        goto out;
    if (session_can_refill(s)) {
        n = session_refill(s);
        if (n < 0)
            log_write(CAIRN_LOG_ERR, "client %s: reading its queue from the store failed (%d)",
                      s->id, n);
        else
            got += (size_t)n;
    }
    broker__resend(b, cl, s);
    while (session_can_pop(s)) {
        struct sentry *e;
        size_t limit = s->queue.head->qos ? CONN_OUT_HIGH_WATER : BROKER_QOS0_DROP_BYTES;
        if (broker__out_bytes(cl) >= limit)
            break; /* the rest waits in the queue until the client reads (on_writable) */
        e = session_pop(s);
        if (b->auth && !auth_can_read(b->auth, cl->listener, s->id, cl->username, e->m->topic,
                                      e->m->topic_len)) {
            broker__drop_entry(s, e);
            continue;
        }
        if (cl->n_held == 0 && (e->qos == 0 || (e->qos == 1 && e->gen < gen))) {
            /* its in-flight state is in this batch: the batch is written before the socket
             * sees the PUBLISH (a delay could turn a crash into a redelivery without DUP) */
            b->sent_in_batch |= e->qos == 1 && e->stored;
            client_send_publish(cl, e->m, e->qos, e->pid, false);
        } else
            client_hold_publish(cl, e->m, e->qos, e->pid, false);
        if (e->qos == 0)
            sentry_free(e);
        /* read on while the store has more; once it has nothing committed, stop asking */
        if (refill && session_can_refill(s)) {
            n = session_refill(s);
            if (n > 0)
                got += (size_t)n;
            else
                refill = false;
        }
    }
out:
    return got;
}

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
        if (broker__pump(b, s) > 0)
            s->refill_tries = 0;
        /*
         * Nothing left in memory but more on disk that could not be read yet: it is in a batch
         * not committed (this one, or a deferred one). Commit now and read it next iteration
         * (bounded: a count left by a failed commit is settled by session_refill).
         */
        if (s->owner && session_wants_refill(s) && s->queue.n == 0 &&
            s->refill_tries < BROKER_REFILL_TRIES) {
            s->refill_tries++;
            s->dirty_next = again;
            again = s;
        }
    }
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
