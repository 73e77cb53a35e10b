/*
 * bridge_link.c — one bridge's life (bridge.h): its local session and subscriptions, dialling
 * the remote, the link handed to the pool, the waits between attempts, the timers while the
 * link is up (PINGREQ, lazy idle_timeout, the first address probed), and the local half of the
 * notifications.
 */
#define _GNU_SOURCE /* vsnprintf into last_error */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "auth.h"
#include "bridge_internal.h"
#include "client.h"
#include "config.h"
#include "conn.h"
#include "dial.h"
#include "log.h"
#include "loop.h"
#include "sys.h"
#include "tls.h"
#include "tls_client.h"
#include "transport.h"

#define BRIDGE_PRIMARY_MS 5000u  /* round_robin false: how often the first address is tried */
#define BRIDGE_DIAL_MS    30000u /* lookup and connect, when connect_timeout is 0 */

static struct broker *bl_broker(const struct bridge *br)
{
    return br->set->b;
}

static struct loop *bl_loop(const struct bridge *br)
{
    return br->set->loop;
}

void bridge__error(struct bridge *br, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(br->last_error, sizeof(br->last_error), fmt, ap);
    va_end(ap);
    log_write(CAIRN_LOG_NOTICE, "bridge %s: %s", br->cfg->name, br->last_error);
}

struct bridge *bridge__new(struct bridge_set *set, const struct config_bridge *cfg,
                           struct tls_ctx *tls)
{
    struct bridge *br = calloc(1, sizeof(*br));

    if (!br) {
        tls_ctx_unref(tls);
        return NULL;
    }
    br->set = set;
    br->cfg = cfg;
    br->tls = tls;
    br->try_private = true;
    br->backoff = cfg->backoff_base;
    br->state = BRIDGE_WAITING;
    return br;
}

/* ---- the session ---------------------------------------------------------------------------- */

/* A connection that holds the session (an earlier link still closing, or a client that took the
 * id before a reload made it a bridge's) lets go of it: the session goes offline. */
static void bl_take_session(struct broker *b, struct session *s)
{
    struct client *old = s->owner;

    if (!old)
        return;
    old->session = NULL;
    conn_close(old->conn, -ECONNRESET);
    session_offline(s);
    if (b->stats.clients_connected)
        b->stats.clients_connected--;
}

static bool bl_is_out_filter(const struct config_bridge *c, const char *f, size_t len)
{
    for (size_t i = 0; i < c->n_topics; i++)
        if ((c->topics[i].dir & CONFIG_BRIDGE_OUT) && strlen(c->topics[i].local) == len &&
            memcmp(c->topics[i].local, f, len) == 0)
            return true;
    return false;
}

/* The session's subscriptions are the out topics' local filters, nothing else. */
static int bl_subscribe(struct bridge *br, struct session *s)
{
    struct broker *b = bl_broker(br);
    const struct config_bridge *c = br->cfg;
    struct subset_entry *e;
    char **stale = NULL;
    size_t n = 0, cursor = 0;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < c->n_topics; i++) {
        const struct config_bridge_topic *t = &c->topics[i];
        struct mqtt_str f = {(const uint8_t *)t->local, strlen(t->local)};
        if (!(t->dir & CONFIG_BRIDGE_OUT))
            continue;
        if (session_sub_set(s, f, t->qos) < 0 || route_subscribe(&b->route, f, s, t->qos) < 0)
            rc = -ENOMEM;
    }
    if (rc == 0 && !(stale = calloc(session_sub_count(s) + 1, sizeof(*stale))))
        rc = -ENOMEM;
    while (rc == 0 && (e = session_sub_next(s, &cursor)))
        if (!bl_is_out_filter(c, e->filter, e->len) && !(stale[n++] = strdup(e->filter)))
            rc = -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct mqtt_str f = {(const uint8_t *)stale[i], stale[i] ? strlen(stale[i]) : 0};
        if (stale[i] && rc == 0) {
            route_unsubscribe(&b->route, f, s);
            session_sub_del(s, f);
        }
        free(stale[i]);
    }
    free(stale);
    return rc;
}

/*
 * The bridge's session: found (a restart, a reload) or made, taken from whoever holds it,
 * marked a bridge's (no client takes it, it never expires, its own limits), subscribed.
 */
static int bl_attach(struct bridge *br)
{
    struct broker *b = bl_broker(br);
    const struct config_bridge *c = br->cfg;
    struct mqtt_str id = {(const uint8_t *)c->local_clientid, strlen(c->local_clientid)};
    struct session *s = session_find(b->sessions, id);
    bool made = false;
    int rc = -ENOMEM;

    if (s) {
        bl_take_session(b, s);
    } else if ((s = session_new(b->sessions, id, c->local_cleansession, broker__now()))) {
        made = true;
    } else {
        goto out;
    }
    if (!session_ext(s)) {
        log_write(CAIRN_LOG_ERR, "bridge %s: marking its session: out of memory", c->name);
        if (made)
            broker__session_discard(b, s);
        goto out;
    }
    s->clean = c->local_cleansession; /* clean: discarded when the link drops */
    s->ext->bridge = br;
    s->no_local = true;
    br->s = s;
    bridge__limits(br);
    broker__session_expiry_cancel(b, s);
    rc = bl_subscribe(br, s);
    if (rc < 0) {
        log_write(CAIRN_LOG_ERR, "bridge %s: subscribing its session: out of memory", c->name);
        if (made) {
            br->s = NULL;
            broker__session_discard(b, s);
        }
    }
out:
    return rc;
}

void bridge__limits(struct bridge *br)
{
    const struct config_bridge *c = br->cfg;
    struct session *s = br->s;

    if (!s)
        return;
    br->limits = *session_table_limits(s->table);
    if (c->max_queued_messages >= 0)
        br->limits.max_queued = (uint32_t)c->max_queued_messages;
    if (c->max_queued_bytes >= 0)
        br->limits.max_queued_bytes = (uint64_t)c->max_queued_bytes;
    s->ext->limits = /* bl_attach made s's ext */
        c->max_queued_messages >= 0 || c->max_queued_bytes >= 0 ? &br->limits : NULL;
}

void bridge__notify_local(struct bridge *br, bool up)
{
    const struct config_bridge *c = br->cfg;
    char buf[512];
    const char *t;
    struct mqtt_str topic, payload = {(const uint8_t *)(up ? "1" : "0"), 1};

    if (!c->notifications)
        return;
    t = config_bridge_notification_topic(c, buf, sizeof(buf));
    topic.p = (const uint8_t *)t;
    topic.len = strlen(t);
    /* from the bridge's own session: not sent back over it (no local); $SYS is not stored */
    if (broker__publish_origin(bl_broker(br), topic, payload, 1, true, !sys_topic(topic), NULL,
                               br->s) < 0)
        log_write(CAIRN_LOG_ERR, "bridge %s: notification dropped: out of memory", c->name);
}

/* ---- attempts ------------------------------------------------------------------------------- */

static void bl_attempt(void *arg);

static void bl_wait(struct bridge *br, uint64_t ms)
{
    loop_timer_cancel(bl_loop(br), br->retry);
    br->state = BRIDGE_WAITING;
    br->retry = loop_timer_add(bl_loop(br), ms, bl_attempt, br);
    if (!br->retry)
        log_write(CAIRN_LOG_ERR, "bridge %s: no timer for the next attempt: out of memory",
                  br->cfg->name);
}

/*
 * The wait before the next attempt, in ms: restart_timeout, or Mosquitto's "decorrelated
 * jitter" (bridge__backoff_step): the one after is drawn between the base and three times
 * this one, at most the cap; a link the remote accepted starts again from the base.
 */
static uint64_t bl_delay(struct bridge *br)
{
    const struct config_bridge *c = br->cfg;
    uint32_t d = br->backoff, hi, r = 0;

    if (!c->backoff_cap)
        return (uint64_t)c->restart_timeout * 1000u;
    hi = d * 3;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = (uint32_t)rand();
    br->backoff =
        hi > c->backoff_base ? c->backoff_base + r % (hi - c->backoff_base) : c->backoff_base;
    if (br->backoff > c->backoff_cap)
        br->backoff = c->backoff_cap;
    return (uint64_t)d * 1000u;
}

static bool bl_lazy_waits(const struct bridge *br)
{
    return br->cfg->start_type == CONFIG_BRIDGE_LAZY && !br->lazy_due;
}

/* An attempt failed, or a link closed: the next address, after the wait (or none: once). */
static void bl_again(struct bridge *br, bool next_address, bool now)
{
    const struct config_bridge *c = br->cfg;
    uint64_t ms;

    if (br->set->stopping) {
        br->state = BRIDGE_STOPPED;
        return;
    }
    if (c->start_type == CONFIG_BRIDGE_ONCE) {
        br->state = BRIDGE_STOPPED;
        log_write(CAIRN_LOG_NOTICE, "bridge %s: not started again (start_type once)", c->name);
        return;
    }
    if (next_address)
        br->cur = (br->cur + 1) % c->n_addresses;
    if (br->s && c->start_type == CONFIG_BRIDGE_LAZY)
        br->lazy_due = br->s->q_count >= c->threshold;
    if (bl_lazy_waits(br)) {
        br->state = BRIDGE_WAITING;
        return; /* for the threshold (bridge__lazy_kick) */
    }
    ms = now ? 0 : bl_delay(br);
    if (ms)
        log_write(CAIRN_LOG_INFO, "bridge %s: next attempt in %llu s", c->name,
                  (unsigned long long)(ms / 1000u));
    bl_wait(br, ms);
}

static void bl_dialed(void *arg, int fd, const char *peer, const char *why)
{
    struct bridge *br = arg;
    const struct config_bridge_address *a = &br->cfg->addresses[br->cur];
    struct transport *t;
    struct conn *c = NULL;
    struct client *cl;

    br->dial = NULL;
    if (fd < 0) {
        bridge__error(br, "%s", why);
        bl_again(br, true, false);
        return;
    }
    t = br->tls ? tls_client_transport_new(br->tls, fd, a->host, br->cfg->insecure)
                : transport_tcp_new(fd);
    if (!t || conn_pool_add_outgoing(br->set->pool, t, peer, &c) < 0 || !(cl = conn_data(c))) {
        if (c)
            conn_close(c, -ENOMEM);
        bridge__error(br, "connection to %s: out of memory", peer);
        bl_again(br, false, false);
        return;
    }
    cl->bridge = br;
    cl->listener = AUTH_LISTENER_BRIDGE;
    br->cl = cl;
    br->conn = c;
    br->state = BRIDGE_CONNECTING;
    conn_set_name(c, br->cfg->remote_clientid);
    if (bridge__send_connect(br) < 0)
        conn_close(c, -ENOMEM);
}

static void bl_attempt(void *arg)
{
    struct bridge *br = arg;
    const struct config_bridge *c = br->cfg;
    const struct config_bridge_address *a = &c->addresses[br->cur];
    uint32_t timeout = br->set->cfg->connect_timeout;

    br->retry = NULL;
    if (br->set->stopping || br->state == BRIDGE_STOPPED)
        return;
    if (!br->s && bl_attach(br) < 0) {
        bl_again(br, false, false);
        return;
    }
    snprintf(br->remote, sizeof(br->remote), strchr(a->host, ':') ? "[%s]:%u" : "%s:%u", a->host,
             a->port);
    br->state = BRIDGE_DIALING;
    log_write(CAIRN_LOG_NOTICE, "bridge %s: connecting to %s", c->name, br->remote);
    br->dial = dial_start(bl_loop(br), a->host, a->port, c->bind_address,
                          timeout ? timeout * 1000u : BRIDGE_DIAL_MS, bl_dialed, br);
    if (!br->dial) {
        bridge__error(br, "connecting to %s: out of memory", br->remote);
        bl_again(br, false, false);
    }
}

void bridge__lazy_kick(struct bridge *br)
{
    if (br->cfg->start_type != CONFIG_BRIDGE_LAZY || br->lazy_due || br->state != BRIDGE_WAITING ||
        br->retry || br->set->stopping)
        return;
    br->lazy_due = true;
    log_write(CAIRN_LOG_INFO, "bridge %s: %u messages queued (threshold): starting", br->cfg->name,
              br->cfg->threshold);
    bl_wait(br, 0);
}

int bridge__start(struct bridge *br)
{
    int rc = bl_attach(br);

    if (rc < 0)
        goto out;
    bridge__notify_local(br, false); /* Mosquitto's first notification: not connected yet */
    if (br->cfg->start_type == CONFIG_BRIDGE_LAZY) {
        br->lazy_due = br->s->q_count >= br->cfg->threshold;
        if (bl_lazy_waits(br))
            goto out;
    }
    bl_wait(br, 0);
out:
    return rc;
}

/* ---- while up ------------------------------------------------------------------------------- */

static void bl_ping(void *arg)
{
    struct bridge *br = arg;
    uint8_t buf[2];

    br->ping = NULL;
    if (br->state != BRIDGE_UP)
        return;
    mqtt_encode_empty(buf, sizeof(buf), MQTT_PINGREQ);
    if (client_send_raw(br->cl, buf, 2) < 0)
        conn_close(br->conn, -ENOMEM);
    br->ping = loop_timer_add(bl_loop(br), (uint64_t)br->cfg->keepalive * 1000u, bl_ping, br);
}

/* lazy: no PUBLISH either way for idle_timeout closes the link until the threshold again. */
static void bl_idle(void *arg)
{
    struct bridge *br = arg;
    uint64_t now = loop_now_ms(bl_loop(br)), limit = (uint64_t)br->cfg->idle_timeout * 1000u;

    br->idle = NULL;
    if (br->state != BRIDGE_UP)
        return;
    if (now - br->activity_ms >= limit) {
        log_write(CAIRN_LOG_NOTICE, "bridge %s: idle for %u s (start_type lazy): closing",
                  br->cfg->name, br->cfg->idle_timeout);
        br->lazy_due = false;
        conn_close(br->conn, 0);
        return;
    }
    br->idle = loop_timer_add(bl_loop(br), limit - (now - br->activity_ms), bl_idle, br);
}

static void bl_probe_done(void *arg, int fd, const char *peer, const char *why)
{
    struct bridge *br = arg;

    br->probe = NULL;
    if (fd < 0 || br->state != BRIDGE_UP) {
        if (fd >= 0)
            close(fd);
        return; /* the timer tries again */
    }
    close(fd);
    log_write(CAIRN_LOG_NOTICE, "bridge %s: the first address %s answers again: moving back",
              br->cfg->name, peer);
    br->cur = 0;
    br->retry_now = true;
    conn_close(br->conn, 0);
}

/* round_robin false, up on another address: is the first one back? */
static void bl_primary(void *arg)
{
    struct bridge *br = arg;
    const struct config_bridge_address *a = &br->cfg->addresses[0];

    br->primary = NULL;
    if (br->state != BRIDGE_UP || br->cur == 0)
        return;
    if (!br->probe)
        br->probe = dial_start(bl_loop(br), a->host, a->port, br->cfg->bind_address,
                               BRIDGE_PRIMARY_MS, bl_probe_done, br);
    br->primary = loop_timer_add(bl_loop(br), BRIDGE_PRIMARY_MS, bl_primary, br);
}

void bridge__up(struct bridge *br)
{
    struct broker *b = bl_broker(br);
    const struct config_bridge *c = br->cfg;
    struct client *cl = br->cl;
    struct loop *l = bl_loop(br);

    if (!br->s && bl_attach(br) < 0) {
        conn_close(br->conn, -ENOMEM);
        return;
    }
    bl_take_session(b, br->s);
    br->state = BRIDGE_UP;
    br->connects++;
    br->backoff = c->backoff_base;
    br->activity_ms = loop_now_ms(l);
    conn_set_keepalive(br->conn, c->keepalive);
    cl->connected = true;
    cl->keepalive = c->keepalive;
    cl->protocol_level = c->protocol_version;
    cl->session = br->s;
    session_online(br->s, cl);
    session_touch(br->s, broker__now());
    b->stats.clients_connected++;
    broker__session_dirty(b, br->s); /* resends with DUP, then the queue */
    broker__kick(b);
    br->ping = loop_timer_add(l, (uint64_t)c->keepalive * 1000u, bl_ping, br);
    if (c->start_type == CONFIG_BRIDGE_LAZY)
        br->idle = loop_timer_add(l, (uint64_t)c->idle_timeout * 1000u, bl_idle, br);
    if (!c->round_robin && br->cur != 0)
        br->primary = loop_timer_add(l, BRIDGE_PRIMARY_MS, bl_primary, br);
    log_write(CAIRN_LOG_NOTICE, "bridge %s: connected to %s as %s (%llu queued)", c->name,
              br->remote, c->remote_clientid, (unsigned long long)br->s->q_count);
    bridge__notify_local(br, true);
}

static void bl_timers_cancel(struct bridge *br)
{
    struct loop *l = bl_loop(br);

    loop_timer_cancel(l, br->ping);
    loop_timer_cancel(l, br->idle);
    loop_timer_cancel(l, br->primary);
    br->ping = br->idle = br->primary = NULL;
    dial_cancel(br->probe);
    br->probe = NULL;
}

void bridge_on_close(struct bridge *br, struct client *cl, struct conn *c)
{
    bool was_up = br->state == BRIDGE_UP, now = br->retry_now;
    char why[160];

    bl_timers_cancel(br);
    if (cl->connected && br->cfg->local_cleansession)
        br->s = NULL; /* a clean session: the broker discarded it with the link */
    br->cl = NULL;
    br->conn = NULL;
    if (!br->reason_set)
        bridge__error(br, "link to %s closed: %s", br->remote,
                      conn_close_reason(c, why, sizeof(why)));
    br->reason_set = br->retry_now = false;
    if (was_up)
        bridge__notify_local(br, false);
    if (br->state != BRIDGE_STOPPED)
        bl_again(br, !now, now);
}

/* ---- stopping ------------------------------------------------------------------------------- */

void bridge__stop(struct bridge *br, bool forget)
{
    struct broker *b = bl_broker(br);
    struct session *s = br->s;

    bl_timers_cancel(br);
    loop_timer_cancel(bl_loop(br), br->retry);
    br->retry = NULL;
    dial_cancel(br->dial);
    br->dial = NULL;
    if (br->cl) {
        br->cl->bridge = NULL; /* its close is the broker's alone now */
        conn_close(br->conn, 0);
        br->cl = NULL;
        br->conn = NULL;
    }
    br->state = BRIDGE_STOPPED;
    if (s && s->ext) {
        s->ext->bridge = NULL; /* a changed bridge's successor takes it again at once */
        s->ext->limits = NULL;
    }
    if (s && forget) {
        s->no_local = false;
        if (!s->owner)
            broker__session_expiry_arm(b, s);
        if (s->q_count)
            log_write(CAIRN_LOG_NOTICE,
                      "bridge %s removed: its %llu queued messages stay in session %s",
                      br->cfg->name, (unsigned long long)s->q_count, s->id);
    }
    br->s = NULL;
}

void bridge__free(struct bridge *br)
{
    if (!br)
        return;
    tls_ctx_unref(br->tls);
    free(br->map);
    free(br);
}
