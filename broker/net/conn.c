/*
 * conn.c — connections and the pool that owns them; the input side (reading, decoding) is
 * conn_input.c, and what the two share conn_internal.h.
 *
 * Memory per idle connection is kept small: input is read into one scratch buffer shared by the
 * pool, and only the bytes of an incomplete packet are copied into the connection's own buffer
 * (which grows as those bytes arrive, never to a size a peer merely announces). Output chunks
 * exist only while output is pending.
 *
 * Lifetimes: a conn is on the pool's list from conn_pool_add() to conn_destroy(). conn_close()
 * puts it on the close list; conn_pool_reap() (a safe point: no dispatch of its events is on
 * the stack) calls on_close, then either destroys it or lets it linger, write-only, until its
 * queue is written or CONN_LINGER_MS passes.
 */
#include "conn.h"
#include "conn_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "transport.h"

#define CONN_IOV_MAX      128 /* iovecs per writev */
#define CONN_WRITE_ROUNDS 8   /* writevs per flush of one conn */
#define CONN_NAME_MAX     256
#define CONN_REAP_ROUNDS  8

struct conn_stats conn__counters;

const struct conn_stats *conn_stats(void)
{
    return &conn__counters;
}

void conn_stats_refused(void)
{
    conn__counters.connections_refused++;
}

/* ---- small accessors ------------------------------------------------------------------- */

void conn_set_data(struct conn *c, void *data)
{
    c->data = data;
}

void *conn_data(const struct conn *c)
{
    return c->data;
}

const char *conn_peer(const struct conn *c)
{
    return c->peer;
}

const char *conn_name(const struct conn *c)
{
    return c->name ? c->name : "";
}

const char *conn_identity(const struct conn *c)
{
    return c->t->ops->identity(c->t);
}

int conn_listener_index(const struct conn *c)
{
    return c->listener;
}

bool conn_closing(const struct conn *c)
{
    return c->closing;
}

size_t conn_out_bytes(const struct conn *c)
{
    return c->out.bytes;
}

void conn_set_name(struct conn *c, const char *client_id)
{
    size_t len = strnlen(client_id, CONN_NAME_MAX);
    char *s = malloc(len + 1);

    if (!s)
        return; /* logs keep the old name */
    memcpy(s, client_id, len);
    s[len] = '\0';
    free(c->name);
    c->name = s;
}

/* ---- interest and flushing --------------------------------------------------------------- */

/* Register what the conn needs now: read unless closing, paused (conn_pause_input) or held back
 * (CONN_OUT_READ_PAUSE), write while output is pending. */
void conn__update_events(struct conn *c)
{
    int want = 0;
    int events;

    if (!c->closing && !c->paused && c->out.bytes < CONN_OUT_READ_PAUSE)
        want |= CAIRN_EV_READ;
    if (c->out.bytes > 0)
        want |= CAIRN_EV_WRITE;
    events = c->t->ops->want_events(c->t, want);
    if (events != c->events && loop_mod_fd(c->pool->loop, c->fd, events) == 0)
        c->events = events;
}

static void conn_mark_dirty(struct conn *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->dirty_next = c->pool->dirty;
    c->pool->dirty = c;
}

void conn__queue_close(struct conn *c, int reason, bool mqtt)
{
    if (c->closing)
        return;
    c->closing = true;
    c->reason = reason;
    c->reason_mqtt = mqtt;
    conn__account(c);
    c->close_next = c->pool->closing;
    c->pool->closing = c;
}

void conn_close(struct conn *c, int reason)
{
    conn__queue_close(c, reason, false);
}

static void conn_destroy(struct conn *c);

/*
 * Write the queue: writev after writev (CONN_IOV_MAX iovecs each) while the socket takes all it
 * is offered, at most CONN_WRITE_ROUNDS times, so one busy conn cannot hold the loop. A write
 * error closes the conn (or, when lingering, ends it). Crossing below the low-water mark tells
 * the handler. Returns false when the conn was destroyed (lingering and done).
 */
static bool conn_write_out(struct conn *c)
{
    struct iovec iov[CONN_IOV_MAX];
    size_t before = c->out.bytes;
    bool alive = true;

    for (int round = 0; round < CONN_WRITE_ROUNDS && c->out.bytes > 0 && !c->handshaking; round++) {
        size_t offered = 0;
        int cnt = outq_iov(&c->out, iov, CONN_IOV_MAX);
        ssize_t n;

        for (int i = 0; i < cnt; i++)
            offered += iov[i].iov_len;
        n = c->t->ops->writev(c->t, iov, cnt);
        if (n == -EAGAIN)
            break;
        if (n < 0) {
            outq_cleanup(&c->out);
            if (!c->lingering)
                conn_close(c, (int)n);
            break;
        }
        outq_consume(&c->out, (size_t)n);
        conn__counters.bytes_sent += (uint64_t)n;
        if ((size_t)n < offered)
            break; /* the socket is full */
    }
    if (c->lingering && c->out.bytes == 0) {
        conn_destroy(c);
        alive = false;
        goto out;
    }
    if (!c->closing && before >= CONN_OUT_LOW_WATER && c->out.bytes < CONN_OUT_LOW_WATER &&
        c->pool->h.on_writable)
        c->pool->h.on_writable(c->pool->h.arg, c);
    conn__update_events(c);
out:
    return alive;
}

int conn_write2(struct conn *c, const void *a, size_t alen, const void *b, size_t blen)
{
    int rc = -EPIPE;

    if (c->closing)
        goto out;
    rc = outq_copy2(&c->out, a, alen, b, blen);
    if (rc == 0)
        conn_mark_dirty(c);
out:
    return rc;
}

int conn_write(struct conn *c, const void *buf, size_t len)
{
    return conn_write2(c, buf, len, NULL, 0);
}

int conn_write_ref(struct conn *c, const void *buf, size_t len, void (*release)(void *obj),
                   void *obj)
{
    int rc = -EPIPE;

    if (c->closing) {
        if (release)
            release(obj);
        goto out;
    }
    rc = outq_ref(&c->out, buf, len, release, obj);
    if (rc == 0)
        conn_mark_dirty(c);
out:
    return rc;
}

/* ---- timers ---------------------------------------------------------------------------- */

static void conn_connect_timeout(void *arg)
{
    struct conn *c = arg;

    c->timer = NULL;
    if (!c->connected && !c->closing)
        conn_close(c, -ETIMEDOUT);
}

/* Fires at most every 1.5 x keepalive; re-arms for what is left since the last packet. */
static void conn_keepalive_check(void *arg)
{
    struct conn *c = arg;
    uint64_t now = loop_now_ms(c->pool->loop);
    uint64_t idle = now - c->last_rx;

    c->timer = NULL;
    if (c->closing || c->keepalive_ms == 0)
        return;
    if (c->out.bytes >= CONN_OUT_READ_PAUSE || c->paused) {
        idle = 0; /* we are not reading: its PINGREQs may be waiting in the socket */
        c->last_rx = now;
    }
    if (idle >= c->keepalive_ms) {
        conn_close(c, -ETIMEDOUT);
        return;
    }
    c->timer = loop_timer_add(c->pool->loop, c->keepalive_ms - idle, conn_keepalive_check, c);
}

void conn_set_keepalive(struct conn *c, uint16_t seconds)
{
    c->connected = true;
    conn__account(c);
    loop_timer_cancel(c->pool->loop, c->timer); /* the CONNECT timeout, or an earlier keepalive */
    c->timer = NULL;
    c->keepalive_ms = (uint32_t)seconds * 1500u;
    c->last_rx = loop_now_ms(c->pool->loop);
    if (c->keepalive_ms)
        c->timer = loop_timer_add(c->pool->loop, c->keepalive_ms, conn_keepalive_check, c);
}

static void conn_linger_timeout(void *arg)
{
    struct conn *c = arg;

    c->timer = NULL;
    conn_destroy(c);
}

static void conn_on_event(struct loop *l, int fd, int events, void *arg)
{
    struct conn *c = arg;
    bool alive = true;
    int rc;

    (void)l;
    (void)fd;
    if (c->lingering) {
        alive = conn_write_out(c); /* may end it */
        goto out;
    }
    if (c->handshaking) {
        rc = c->t->ops->handshake(c->t);
        if (rc == -EAGAIN)
            goto out;
        if (rc < 0) {
            conn_close(c, rc);
            goto out;
        }
        c->handshaking = false;
        events |= CAIRN_EV_READ; /* TLS may hold application data already */
    }
    if ((events & CAIRN_EV_READ) && !c->closing && !c->paused)
        conn__read(c);
    if ((events & CAIRN_EV_WRITE) && c->out.bytes > 0) {
        conn_write_out(c); /* not lingering: stays alive */
    } else if ((events & CAIRN_EV_WRITE) && c->t->ops->flush && !c->closing) {
        rc = c->t->ops->flush(c->t); /* a WebSocket Pong with nothing else to send */
        if (rc < 0 && rc != -EAGAIN)
            conn_close(c, rc);
    }
out:
    if (alive)
        conn__update_events(c);
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static void conn_unlink_dirty(struct conn_pool *p, struct conn *c)
{
    for (struct conn **pp = &p->dirty; *pp; pp = &(*pp)->dirty_next) {
        if (*pp == c) {
            *pp = c->dirty_next;
            break;
        }
    }
}

static void conn_unlink_resumed(struct conn_pool *p, struct conn *c)
{
    for (struct conn **pp = &p->resumed; *pp; pp = &(*pp)->resume_next) {
        if (*pp == c) {
            *pp = c->resume_next;
            break;
        }
    }
}

/* Free everything: the transport (closes the socket), the queue (releases references). */
static void conn_destroy(struct conn *c)
{
    struct conn_pool *p = c->pool;

    loop_del_fd(p->loop, c->fd);
    loop_timer_cancel(p->loop, c->timer);
    if (c->dirty)
        conn_unlink_dirty(p, c);
    if (c->resume_queued)
        conn_unlink_resumed(p, c);
    p->preconnect_bytes -= c->accounted;
    if (c->lingering) {
        p->nlinger--;
    } else {
        p->count--;
        if ((size_t)c->listener < p->n_per_listener)
            p->per_listener[c->listener]--;
        conn__counters.connections_open--;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        p->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->t->ops->close(c->t);
    outq_cleanup(&c->out);
    free(c->in);
    free(c->name);
    free(c);
}

/*
 * Why a conn closed, for its one log line. Codes the broker passes (broker.c, handle_*.c) get
 * words for what they mean there: 0 is a DISCONNECT (or shutdown), -ECONNRESET from the broker a
 * takeover by a new connection with the same client id, -ECONNREFUSED a CONNACK refusal, -EIO a
 * failed store commit.
 */
const char *conn_close_reason(const struct conn *c, char *buf, size_t len)
{
    uint32_t limit = c->pool->cfg->message_size_limit;
    int e = -c->reason;

    if (c->shutdown) {
        snprintf(buf, len, "broker shutting down");
    } else if (c->reason == 0) {
        snprintf(buf, len, "disconnected");
    } else if (c->reason == -EPROTO && c->over == CONN_NOT_CONNECT) {
        snprintf(buf, len, "protocol error: first packet is not CONNECT (type %u)", c->over_size);
    } else if (c->reason == -ENOBUFS && c->over == CONN_OVER_PRECONNECT) {
        snprintf(buf, len, "input before CONNECT over connect_memory_limit %llu",
                 (unsigned long long)c->pool->cfg->connect_memory_limit);
    } else if (c->reason == -MQTT_ETOOLARGE && c->over == CONN_OVER_CONNECT) {
        snprintf(buf, len, "CONNECT announcing %u bytes, more than the %zu a CONNECT may have",
                 c->over_size, conn__decode_max(limit, MQTT_CONNECT << 4));
    } else if (c->reason == -MQTT_ETOOLARGE && c->over == CONN_OVER_PACKET && c->over_size) {
        snprintf(buf, len, "packet of %u bytes over max_packet_size %u", c->over_size,
                 c->pool->cfg->max_packet_size);
    } else if (c->reason == -MQTT_ETOOLARGE && c->over == CONN_OVER_PACKET) {
        snprintf(buf, len, "packet over max_packet_size %u", c->pool->cfg->max_packet_size);
    } else if (c->reason == -MQTT_ETOOLARGE && c->over == CONN_OVER_HEADER && c->over_size) {
        snprintf(buf, len, "packet announcing %u bytes, more than message_size_limit %u allows",
                 c->over_size, limit);
    } else if (c->reason == -MQTT_ETOOLARGE && c->over == CONN_OVER_HEADER) {
        /* refused on the first bytes of its remaining length */
        snprintf(buf, len, "packet announcing more than message_size_limit %u allows", limit);
    } else if (c->reason == -MQTT_ETOOLARGE && c->over != CONN_OVER_NONE) {
        snprintf(buf, len, "%s of %u bytes over message_size_limit %u",
                 c->over == CONN_OVER_WILL ? "will payload" : "PUBLISH payload", c->over_size,
                 limit);
    } else if (c->reason_mqtt) {
        snprintf(buf, len, "protocol error: %s", mqtt_strerror(c->reason));
    } else if (c->outgoing && c->handshaking && c->reason != -ETIMEDOUT) {
        /* a bridge's TLS: the mbedTLS detail is in the log line of the failure */
        snprintf(buf, len, "TLS handshake failed: %s",
                 c->reason == -EACCES ? "the remote's certificate did not verify"
                                      : strerror(-c->reason));
    } else if (c->reason == -ETIMEDOUT && c->outgoing) {
        snprintf(buf, len, "%s", c->connected ? "no answer to PINGREQ" : "no CONNACK in time");
    } else if (c->reason == -ETIMEDOUT) {
        snprintf(buf, len, "%s", c->connected ? "keepalive timeout" : "no CONNECT in time");
    } else if (c->reason == -ECONNRESET) {
        snprintf(buf, len, "%s",
                 c->by_peer ? "connection closed by peer"
                            : "taken over by a new connection with the same client id");
    } else if (c->reason == -ECONNREFUSED) {
        snprintf(buf, len, "CONNECT refused");
    } else if (c->reason == -EIO) {
        snprintf(buf, len, "store write failed");
    } else if (mqtt_error_class(c->reason) >= MQTT_CLASS_MALFORMED && e != ENOMEM && e != EPIPE &&
               e != EACCES && e != EPERM && e != EPROTO) {
        snprintf(buf, len, "%s", mqtt_strerror(c->reason));
    } else {
        snprintf(buf, len, "%s", strerror(e));
    }
    return buf;
}

/* A closed conn leaves: log, on_close, then linger if bytes are still queued. */
static void conn_finish(struct conn *c)
{
    struct conn_pool *p = c->pool;
    char why[160];

    if (p->cfg->connection_messages && !c->outgoing)
        log_write(CAIRN_LOG_NOTICE, "client %s %s closed: %s", c->peer,
                  c->name && *c->name ? c->name : "-", conn_close_reason(c, why, sizeof(why)));
    if (c->opened && p->h.on_close)
        p->h.on_close(p->h.arg, c, c->reason);
    c->opened = false;
    c->data = NULL;
    loop_timer_cancel(p->loop, c->timer); /* the CONNECT timeout or keepalive */
    c->timer = NULL;
    if (c->out.bytes == 0) {
        conn_destroy(c);
        return;
    }
    /* linger: count it apart, keep writing what is queued */
    p->count--;
    if ((size_t)c->listener < p->n_per_listener)
        p->per_listener[c->listener]--;
    conn__counters.connections_open--;
    c->lingering = true;
    p->nlinger++;
    c->timer = loop_timer_add(p->loop, CONN_LINGER_MS, conn_linger_timeout, c);
    conn_write_out(c); /* may destroy c */
}

void conn_pool_reap(struct conn_pool *p)
{
    for (int round = 0; round < CONN_REAP_ROUNDS && p->closing; round++) {
        struct conn *list = p->closing;
        p->closing = NULL;
        while (list) {
            struct conn *c = list;
            list = c->close_next;
            conn_finish(c);
        }
    }
}

void conn_pool_flush(struct conn_pool *p)
{
    for (int round = 0; round < CONN_REAP_ROUNDS && p->dirty; round++) {
        struct conn *list = p->dirty;
        p->dirty = NULL;
        while (list) {
            struct conn *c = list;
            list = c->dirty_next;
            c->dirty = false;
            conn_write_out(c); /* may destroy a lingering c */
        }
    }
}

bool conn_pool_pending(const struct conn_pool *p)
{
    return p->closing != NULL || p->dirty != NULL;
}

/* A zeroed conn with room for peer (copied, cut at CONN_PEER_MAX - 1 bytes); NULL on ENOMEM. */
static struct conn *conn_alloc(const char *peer)
{
    size_t len = strnlen(peer, CONN_PEER_MAX - 1);
    struct conn *c = calloc(1, offsetof(struct conn, peer) + len + 1);

    if (c)
        memcpy(c->peer, peer, len); /* calloc wrote the NUL */
    return c;
}

/* Register c (filled but for the loop and the pool's lists) and open it. 0 or negative. */
static int conn_pool_open(struct conn_pool *p, struct conn *c, struct transport *t)
{
    uint32_t timeout = p->cfg->connect_timeout;
    int rc;

    c->pool = p;
    c->t = t;
    c->fd = t->fd;
    c->handshaking = true;
    outq_init(&c->out);
    c->events = t->ops->want_events(t, CAIRN_EV_READ);
    rc = loop_add_fd(p->loop, c->fd, c->events, conn_on_event, c);
    if (rc < 0) {
        t->ops->close(t);
        free(c);
        conn__counters.connections_refused++;
        goto out;
    }
    c->next = p->all;
    if (p->all)
        p->all->prev = c;
    p->all = c;
    p->count++;
    if (c->listener >= 0) {
        p->per_listener[c->listener]++;
        conn__counters.connections_accepted++;
    }
    conn__counters.connections_open++;
    if (timeout)
        c->timer = loop_timer_add(p->loop, (uint64_t)timeout * 1000u, conn_connect_timeout, c);
    if (p->cfg->connection_messages && !c->outgoing)
        log_write(CAIRN_LOG_NOTICE, "client %s new connection on listener %d", c->peer,
                  c->listener);
    rc = p->h.on_open ? p->h.on_open(p->h.arg, c) : 0;
    if (rc < 0) {
        conn_close(c, rc); /* on_close is not due: on_open failed */
        goto out;
    }
    c->opened = true;
    rc = 0;
out:
    return rc;
}

int conn_pool_add(struct conn_pool *p, struct transport *t, int listener_index, const char *peer)
{
    struct conn *c = conn_alloc(peer);
    int rc = -ENOMEM;

    if (!c) {
        t->ops->close(t);
        conn__counters.connections_refused++;
        goto out;
    }
    if (p->cfg->connect_memory_limit && p->preconnect_bytes >= p->cfg->connect_memory_limit) {
        /* the unauthenticated already hold all they may: no room for one more */
        conn__preconnect_log(p, peer, "refused");
        t->ops->close(t);
        free(c);
        conn__counters.connections_refused++;
        rc = -ENOBUFS;
        goto out;
    }
    if ((size_t)listener_index >= p->n_per_listener) {
        size_t n = (size_t)listener_index + 1;
        size_t *v = realloc(p->per_listener, n * sizeof(*v));
        if (!v) {
            t->ops->close(t);
            free(c);
            conn__counters.connections_refused++;
            goto out;
        }
        memset(v + p->n_per_listener, 0, (n - p->n_per_listener) * sizeof(*v));
        p->per_listener = v;
        p->n_per_listener = n;
    }
    c->listener = listener_index;
    rc = conn_pool_open(p, c, t);
out:
    return rc;
}

int conn_pool_add_outgoing(struct conn_pool *p, struct transport *t, const char *peer,
                           struct conn **out)
{
    struct conn *c = conn_alloc(peer);
    int rc = -ENOMEM;

    *out = NULL;
    if (!c) {
        t->ops->close(t);
        goto out;
    }
    c->listener = -1;
    c->outgoing = true;
    rc = conn_pool_open(p, c, t);
    if (rc == 0)
        *out = c;
out:
    return rc;
}

/* ---- the pool -------------------------------------------------------------------------- */

struct conn_pool *conn_pool_new(struct loop *l, const struct config *cfg,
                                const struct conn_handler *h)
{
    struct conn_pool *p = calloc(1, sizeof(*p));

    if (!p)
        goto out;
    p->loop = l;
    p->cfg = cfg;
    p->h = *h;
out:
    return p;
}

void conn_pool_set_config(struct conn_pool *p, const struct config *cfg)
{
    p->cfg = cfg;
}

size_t conn_pool_count(const struct conn_pool *p)
{
    return p->count;
}

size_t conn_pool_count_listener(const struct conn_pool *p, int listener_index)
{
    if (listener_index < 0 || (size_t)listener_index >= p->n_per_listener)
        return 0;
    return p->per_listener[listener_index];
}

size_t conn_pool_lingering(const struct conn_pool *p)
{
    return p->nlinger;
}

void conn_pool_close_all(struct conn_pool *p, int reason)
{
    for (struct conn *c = p->all; c; c = c->next)
        if (!c->lingering) {
            c->shutdown = !c->closing;
            conn_close(c, reason);
        }
}

void conn_pool_free(struct conn_pool *p)
{
    if (!p)
        return;
    loop_timer_cancel(p->loop, p->resume_timer);
    p->closing = NULL;
    while (p->all)
        conn_destroy(p->all);
    free(p->per_listener);
    free(p);
    outq_spare_release();
}
