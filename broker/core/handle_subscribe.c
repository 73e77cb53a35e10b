/*
 * handle_subscribe.c — SUBSCRIBE and UNSUBSCRIBE.
 *
 * SUBSCRIBE: per filter, the granted QoS (the requested one; 0x80 when the ACL refuses it,
 * max_subscriptions is reached or memory runs out) [MQTT-3.9.3]; a filter already subscribed
 * has its QoS replaced [MQTT-3.8.4-3]; then every retained message matching a granted filter
 * is queued with RETAIN=1 at min(its QoS, granted) — after the SUBACK, which is held first
 * [MQTT-3.3.1-6]. UNSUBSCRIBE removes exactly the filters given (no wildcard matching) and
 * always answers UNSUBACK [MQTT-3.10.4-4/5].
 *
 * Slices (issue 9: one SUBSCRIBE of 100,000 filters held the loop, and every client, for
 * seconds). A packet with at most SUBSCRIBE_SLICE filters is served at once, as it arrives.
 * A larger one becomes a job: its filters are copied, the connection's input is paused (so
 * nothing the client sent after it is handled before its ack, and packet order holds), and
 * the job serves SUBSCRIBE_SLICE units of work per loop iteration, from a 0 ms timer, while
 * the loop answers everyone else in between. Phases: serve the filters; hold the SUBACK (or
 * UNSUBACK); queue the retained messages of the granted filters (a unit is a filter or a
 * message queued); then resume the input.
 *
 * Durability: for a persistent session every slice puts its subscription records into that
 * iteration's batch and marks the client dirty, so the batch is committed at that iteration's
 * end and a failed commit closes the client (broker.c) — the SUBACK, held after the last
 * slice, leaves only after the commit holding that slice, and never after a failed one.
 * While the input is paused, messages published by others to a filter already served may
 * reach the client before the SUBACK (MQTT allows it [MQTT-3.8.4]), and, for a sliced
 * SUBSCRIBE only, before a retained message of the same topic not yet queued.
 *
 * Mosquitto's listener options: the granted QoS is at most max_qos; the filters (both packets)
 * get the mount_point (client.h). Retained messages go at broker__delivery_qos()
 * (upgrade_outgoing_qos), and only those whose publisher may still write their topic
 * (check_retain_source).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "client.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "loop.h"

/*
 * Units of work per slice: filters served, or retained messages queued. About a millisecond
 * for a persistent session on the benchmark machine (bench_subscribe), so another client's
 * packet waits at most that long per job in progress.
 */
#define SUBSCRIBE_SLICE 1000u

struct subscribe_job {
    bool unsubscribe;
    bool acked; /* SUBACK / UNSUBACK held */
    uint16_t packet_id;
    size_t count;                /* filters */
    size_t served;               /* filters subscribed / unsubscribed */
    size_t retained;             /* filters whose retained messages are queued */
    size_t refused;              /* over max_subscriptions */
    size_t work;                 /* units spent in the current slice */
    struct mqtt_topics_iter it;  /* the next filter to serve */
    struct mqtt_topics_iter rit; /* the next filter for the retained phase */
    uint8_t *codes;              /* SUBSCRIBE: one per filter */
    uint8_t *payload;            /* the packet's filters, copied for a sliced job; else NULL */
};

struct subscribe__retained {
    struct broker *b;
    struct session *s;
    struct subscribe_job *j;
    uint8_t qos;
};

static int subscribe__retained_cb(void *ctx, struct msg *m)
{
    struct subscribe__retained *r = ctx;
    uint8_t qos = broker__delivery_qos(r->b, m->qos, r->qos);

    if (!broker__can_read(r->b, r->s, msg_topic(m)) || !broker__retain_allowed(r->b, m))
        return 0;
    r->j->work++;
    if (session_enqueue(r->s, m, qos) == SESSION_QUEUED)
        broker__session_dirty(r->b, r->s);
    return 0;
}

static void subscribe__job_free(struct subscribe_job *j)
{
    if (!j)
        return;
    free(j->codes);
    free(j->payload);
    free(j);
}

/* The SUBACK code of one filter; subscribes it when granted. */
static uint8_t subscribe__one(struct broker *b, struct client *cl, struct subscribe_job *j,
                              struct mqtt_str f, uint8_t qos)
{
    struct session *s = cl->session;
    uint32_t max = b->cfg->max_subscriptions;
    uint8_t max_qos = client_listener(cl)->max_qos, code, *mounted = NULL;
    int rc;

    code = qos = qos < max_qos ? qos : max_qos;
    if (client_mount(cl, f, true, &f, &mounted) < 0) {
        code = MQTT_SUBACK_FAILURE;
    } else if (!auth_can_subscribe(b->auth, cl->listener, s->id, cl->username, (const char *)f.p,
                                   f.len)) {
        code = MQTT_SUBACK_FAILURE;
    } else if (max && session_sub_count(s) >= max && !session_sub_has(s, f)) {
        code = MQTT_SUBACK_FAILURE;
        j->refused++;
    } else if ((rc = route_subscribe(&b->route, f, s, qos)) < 0) {
        code = MQTT_SUBACK_FAILURE;
    } else if (session_sub_set(s, f, qos) < 0) {
        if (rc == 0) /* new in the tree: take it out again */
            route_unsubscribe(&b->route, f, s);
        code = MQTT_SUBACK_FAILURE;
    }
    log_write(CAIRN_LOG_DEBUG, "client %s %s: subscribe %.*s qos %u -> %u", client_peer(cl), s->id,
              (int)f.len, (const char *)f.p, qos, code);
    free(mounted);
    return code;
}

/* Serve filters until the slice's budget is spent. */
static void subscribe__serve(struct broker *b, struct client *cl, struct subscribe_job *j,
                             size_t budget)
{
    struct session *s = cl->session;
    struct mqtt_str f;
    uint8_t qos, *mounted = NULL;

    for (; j->served < j->count && j->work < budget; j->served++, j->work++) {
        if (!mqtt_topics_next(&j->it, &f, &qos)) {
            /* cannot happen (the decoder counted them); the rest is refused, not waited for */
            if (!j->unsubscribe)
                memset(j->codes + j->served, MQTT_SUBACK_FAILURE, j->count - j->served);
            j->served = j->count;
            break;
        }
        if (!j->unsubscribe) {
            j->codes[j->served] = subscribe__one(b, cl, j, f, qos);
            continue;
        }
        free(mounted);
        if (client_mount(cl, f, true, &f, &mounted) == 0 && route_unsubscribe(&b->route, f, s) == 0)
            session_sub_del(s, f);
    }
    free(mounted);
}

/* Hold the SUBACK or UNSUBACK. 0 or -ENOMEM. */
static int subscribe__ack(struct broker *b, struct client *cl, struct subscribe_job *j)
{
    uint8_t *pkt = NULL;
    size_t n;
    int rc;

    j->acked = true;
    if (j->refused)
        log_write(CAIRN_LOG_WARNING,
                  "client %s %s: %zu of %zu filters refused (0x80): max_subscriptions %u reached",
                  client_peer(cl), cl->session->id, j->refused, j->count,
                  b->cfg->max_subscriptions);
    if (j->unsubscribe) {
        rc = client_hold_ack(cl, MQTT_UNSUBACK, j->packet_id);
        goto out;
    }
    n = mqtt_encode_suback(NULL, 0, j->packet_id, j->codes, j->count);
    pkt = malloc(n ? n : 1);
    if (!pkt) {
        rc = -ENOMEM;
        goto out;
    }
    mqtt_encode_suback(pkt, n, j->packet_id, j->codes, j->count);
    rc = client_hold_raw(cl, pkt, n);
out:
    free(pkt);
    return rc;
}

/* Queue the retained messages of granted filters until the budget is spent. */
static void subscribe__retain(struct broker *b, struct client *cl, struct subscribe_job *j,
                              size_t budget)
{
    struct mqtt_str f;
    uint8_t qos, *mounted = NULL;

    for (; j->retained < j->count && j->work < budget; j->retained++, j->work++) {
        struct subscribe__retained r = {b, cl->session, j, j->codes[j->retained]};
        if (!mqtt_topics_next(&j->rit, &f, &qos)) {
            j->retained = j->count; /* cannot happen, as above */
            break;
        }
        free(mounted);
        if (r.qos != MQTT_SUBACK_FAILURE && client_mount(cl, f, true, &f, &mounted) == 0)
            retain_match(&b->retain, f, subscribe__retained_cb, &r);
    }
    free(mounted);
}

/* One slice of at most budget units: 1 when the job is done, 0 when more is left, < 0 error. */
static int subscribe__step(struct broker *b, struct client *cl, struct subscribe_job *j,
                           size_t budget)
{
    int rc = 0;

    j->work = 0;
    subscribe__serve(b, cl, j, budget);
    if (cl->session->durable)
        broker__client_dirty(b, cl); /* commit this slice now; close on a failed commit */
    if (j->served < j->count)
        goto out;
    if (!j->acked && (rc = subscribe__ack(b, cl, j)) < 0)
        goto out;
    if (!j->unsubscribe)
        subscribe__retain(b, cl, j, budget);
    rc = j->unsubscribe || j->retained == j->count;
out:
    return rc;
}

static void subscribe__unlink(struct broker *b, struct client *cl)
{
    for (struct client **pp = &b->jobs; *pp; pp = &(*pp)->job_next) {
        if (*pp == cl) {
            *pp = cl->job_next;
            break;
        }
    }
    cl->job_next = NULL;
}

void handle_subscribe_cancel(struct client *cl)
{
    struct broker *b = cl->b;

    if (!cl->job)
        return;
    subscribe__unlink(b, cl);
    subscribe__job_free(cl->job);
    cl->job = NULL;
    if (!b->jobs && b->job_timer) {
        loop_timer_cancel(b->loop, b->job_timer);
        b->job_timer = NULL;
    }
}

/* The next slice of every job; re-armed while jobs remain. */
static void subscribe__jobs_cb(void *arg)
{
    struct broker *b = arg;
    struct client *cl, *next;

    b->job_timer = NULL;
    for (cl = b->jobs; cl; cl = next) {
        int rc = 0;
        next = cl->job_next;
        if (cl->session && !conn_closing(cl->conn))
            rc = subscribe__step(b, cl, cl->job, SUBSCRIBE_SLICE);
        else
            rc = -ECONNRESET; /* taken over or closing: nobody waits for the ack */
        if (rc == 0)
            continue;
        handle_subscribe_cancel(cl);
        if (rc > 0)
            conn_resume_input(cl->conn);
        else if (rc != -ECONNRESET)
            conn_close(cl->conn, rc);
    }
    if (b->jobs && !b->job_timer)
        b->job_timer = loop_timer_add(b->loop, 0, subscribe__jobs_cb, b);
}

/*
 * Serve t: at once when small, else as a job (the packet's filters copied, the input paused,
 * the first slice now).
 */
static int subscribe__start(struct broker *b, struct client *cl, const struct mqtt_topics *t,
                            bool unsubscribe)
{
    struct subscribe_job *j = calloc(1, sizeof(*j));
    struct mqtt_topics copy = *t;
    bool sliced = t->count > SUBSCRIBE_SLICE;
    int rc = -ENOMEM;

    if (!j)
        goto out;
    j->unsubscribe = unsubscribe;
    j->packet_id = t->packet_id;
    j->count = t->count;
    if (!unsubscribe && !(j->codes = malloc(t->count ? t->count : 1)))
        goto out;
    if (sliced) {
        if (!(j->payload = malloc(t->payload.len ? t->payload.len : 1)))
            goto out;
        memcpy(j->payload, t->payload.p, t->payload.len);
        copy.payload.p = j->payload;
    }
    mqtt_topics_iter_init(&j->it, &copy);
    mqtt_topics_iter_init(&j->rit, &copy);
    rc = subscribe__step(b, cl, j, sliced ? SUBSCRIBE_SLICE : SIZE_MAX);
    if (rc != 0)
        goto out; /* done (or failed) at once */
    cl->job = j;
    j = NULL;
    cl->job_next = b->jobs;
    b->jobs = cl;
    conn_pause_input(cl->conn);
    if (!b->job_timer && !(b->job_timer = loop_timer_add(b->loop, 0, subscribe__jobs_cb, b))) {
        handle_subscribe_cancel(cl);
        rc = -ENOMEM;
        goto out;
    }
    log_write(CAIRN_LOG_DEBUG, "client %s %s: %s of %zu filters served in slices", client_peer(cl),
              cl->session->id, unsubscribe ? "UNSUBSCRIBE" : "SUBSCRIBE", t->count);
out:
    subscribe__job_free(j);
    return rc < 0 ? rc : 0;
}

int handle_subscribe(struct broker *b, struct client *cl, const struct mqtt_topics *t)
{
    return cl->session ? subscribe__start(b, cl, t, false) : 0;
}

int handle_unsubscribe(struct broker *b, struct client *cl, const struct mqtt_topics *t)
{
    return cl->session ? subscribe__start(b, cl, t, true) : 0;
}
