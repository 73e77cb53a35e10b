/*
 * deliver.c — what the packet handlers, the bridge and broker.c's entry points share, below
 * all of them (deliver.h): the lists of dirty clients and sessions, discarding and expiring
 * sessions, routing a message to its subscribers and pumping a session's queue into its
 * client's output, publishing (retained messages, wills), the read check.
 */
#include "deliver.h"

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

/*
 * A connected subscriber whose output (written or held, not yet read by it) reaches this many
 * bytes gets no more QoS 0 messages until it catches up; QoS 1/2 wait in its queue
 * (max_queued_messages) — so a client that stops reading costs at most this much output plus
 * its bounded queue. QoS 1/2 pumping stops earlier, at CONN_OUT_HIGH_WATER, and resumes
 * on_writable. The room absorbs bursts from fast publishers without dropping.
 */
#define BROKER_QOS0_DROP_BYTES (4u * 1024u * 1024u)
/* Subscriptions a discarded session takes out of the route tree per loop pass. */
#define BROKER_DISCARD_SLICE 2000u

int64_t broker__now(void)
{
    return (int64_t)time(NULL);
}

uint64_t broker__msg_id(struct broker *b)
{
    return ++b->last_msg_id;
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

void broker__client_undirty(struct broker *b, struct client *cl)
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

void broker__session_undirty(struct broker *b, struct session *s)
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
    bool done = s->ext == NULL; /* no ext: no subscriptions */

    for (size_t i = 0; i < max && !done; i++) {
        e = session_sub_next(s, &s->ext->detach_cursor);
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
    if (session_sub_count(s) <= BROKER_DISCARD_SLICE) {
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
    struct broker *b = s->ext->expiry_ctx;

    s->ext->expiry = NULL;
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
    struct session_ext *x;

    broker__session_expiry_cancel(b, s);
    if (exp == 0 || s->owner || session_bridge(s))
        return;
    if (!(x = session_ext(s)))
        return; /* out of memory: as when the timer cannot be made, it does not expire */
    delay = idle >= (int64_t)exp ? 0 : (exp - (uint64_t)(idle > 0 ? idle : 0)) * 1000u;
    x->expiry_ctx = b;
    x->expiry = loop_timer_add(b->loop, delay, broker__expiry_cb, s);
}

void broker__session_expiry_cancel(struct broker *b, struct session *s)
{
    if (s->ext && s->ext->expiry) {
        loop_timer_cancel(b->loop, s->ext->expiry);
        s->ext->expiry = NULL;
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

size_t broker__pump(struct broker *b, struct session *s);

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
    return session_bridge(s) && !bridge_route_ok(session_bridge(s), em) ? NULL : em;
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
            struct session_ext *x = session_ext(s); /* out of memory: not counted */
            if (x && (++x->dropped_qos0 == 1 || x->dropped_qos0 % 10000 == 0))
                log_write(CAIRN_LOG_DEBUG, "client %s: slow reader, %llu QoS 0 messages dropped",
                          s->id, (unsigned long long)x->dropped_qos0);
            continue;
        }
        q = session_enqueue(s, em, qos);
        if (q == SESSION_DROPPED_QOS0)
            metrics_drop(METRICS_DROP_OFFLINE_QOS0);
        if (q == SESSION_DROPPED_LIMIT) {
            b->stats.messages_dropped++;
            metrics_drop(METRICS_DROP_QUEUE_FULL);
            if (session_dropped(s) == 1 || session_dropped(s) % 1000 == 0)
                log_write(CAIRN_LOG_WARNING,
                          "client %s: queue full (%llu messages, %llu bytes): message on %s "
                          "dropped (%llu so far)",
                          s->id, (unsigned long long)s->q_count, (unsigned long long)s->q_bytes,
                          m->topic, (unsigned long long)session_dropped(s));
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

/* ---- the pump --------------------------------------------------------------------------- */

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
size_t broker__pump(struct broker *b, struct session *s)
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
