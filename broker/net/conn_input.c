/*
 * conn_input.c — the input side of a connection (conn.h): reading into the shared scratch
 * buffer or the conn's own, the decode loop, message_size_limit, pausing the input, and the bounds
 * on a connection that has not completed CONNECT.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conn_internal.h"
#include "log.h"
#include "loop.h"
#include "transport.h"

#define CONN_MIN_GROW (16u * 1024u)

/*
 * message_size_limit is Mosquitto's: the largest PUBLISH payload (and CONNECT will payload).
 * The decoder is given the limit plus the most a packet can carry around such a payload, so a
 * peer that announces more is refused from the fixed header, before its body arrives; a whole
 * packet is then judged by its payload. PUBLISH: topic (2 + 65535) and packet id (2). Every
 * packet type but CONNECT gets the PUBLISH bound.
 */
#define CONN_PUBLISH_OVERHEAD (2u + 65535u + 2u)
/*
 * A CONNECT is bounded whatever message_size_limit says, so that a peer that has not
 * authenticated holds kilobytes, not what it announces (issue 9: 256 MB each): its remaining
 * length may be at most CONN_CONNECT_FIELDS for everything but the will payload (protocol
 * name and level, flags, keepalive, client id, will topic, username, password, with their
 * length prefixes: ample for long tokens as passwords) plus the will payload allowed, which
 * is message_size_limit when set below the protocol's 65535 for that field, else 65535.
 * With the defaults a CONNECT may have up to 128 KiB.
 */
#define CONN_CONNECT_FIELDS (64u * 1024u)
#define CONN_WILL_MAX       65535u
/* Log a connect_memory_limit refusal once, then once per this many. */
#define CONN_PRECONNECT_LOG_EVERY 1000u

/* ---- memory before CONNECT ------------------------------------------------------------- */

/*
 * Keep pool->preconnect_bytes equal to the input buffers of conns not yet CONNECTed. A closing
 * conn counts no more: its input no longer matters, and its buffer goes at this iteration's
 * reap; counting it until then would make every conn that grows in the same iteration fail
 * too, the room it leaves unseen. (So for that moment the buffers may add up to twice the
 * limit: the closing ones' were within it.)
 */
void conn__account(struct conn *c)
{
    uint32_t now = c->connected || c->closing || c->outgoing ? 0 : c->in_cap;

    c->pool->preconnect_bytes = c->pool->preconnect_bytes - c->accounted + now;
    c->accounted = now;
}

void conn__preconnect_log(struct conn_pool *p, const char *peer, const char *what)
{
    if (++p->preconnect_refused % CONN_PRECONNECT_LOG_EVERY == 1)
        log_write(CAIRN_LOG_WARNING,
                  "client %s %s: connections without CONNECT hold %zu bytes of input, "
                  "connect_memory_limit %llu (%llu refused so far)",
                  peer, what, p->preconnect_bytes, (unsigned long long)p->cfg->connect_memory_limit,
                  (unsigned long long)p->preconnect_refused);
}

/*
 * May c, not yet CONNECTed, grow its input buffer to want bytes? Past connect_memory_limit it
 * may not: -ENOBUFS (logged; the caller closes it). Connected conns always may.
 */
static int conn_preconnect_grow(struct conn *c, size_t want)
{
    struct conn_pool *p = c->pool;
    uint64_t limit = p->cfg->connect_memory_limit;
    int rc = 0;

    if (c->connected || c->outgoing || limit == 0 || want <= c->accounted)
        goto out;
    if (p->preconnect_bytes - c->accounted + want > limit) {
        c->over = CONN_OVER_PRECONNECT;
        conn__preconnect_log(p, c->peer, "closed");
        rc = -ENOBUFS;
    }
out:
    return rc;
}

/* ---- input ----------------------------------------------------------------------------- */

/* The largest remaining length the decoder accepts for the packet starting with byte first. */
size_t conn__decode_max(uint32_t limit, uint8_t first)
{
    size_t max = 0; /* the protocol maximum */

    if ((first >> 4) == MQTT_CONNECT)
        max = CONN_CONNECT_FIELDS + (limit && limit < CONN_WILL_MAX ? limit : CONN_WILL_MAX);
    else if (limit)
        max = (size_t)limit + CONN_PUBLISH_OVERHEAD;
    return max;
}

/*
 * max_packet_size (Mosquitto's, 0: none): the largest packet from a client, fixed header
 * included; a larger one closes the connection — it is a limit on what a client may send, not
 * the message_size_limit drop. The decoder gets the remaining length that leaves room for the
 * smallest fixed header (two bytes), so a peer announcing more is refused from the header; a
 * packet that fits it but whose longer length field takes it over is refused once decoded.
 * Mosquitto 2.0.11 compares remaining length + 1, letting a packet be up to three bytes longer.
 */
static size_t conn_packet_max(const struct conn *c, size_t max, bool *by_packet)
{
    uint32_t pm = c->outgoing ? 0 : c->pool->cfg->max_packet_size;

    *by_packet = pm && (max == 0 || pm - 2 < max);
    return *by_packet ? pm - 2 : max;
}

/* A PUBLISH over message_size_limit: the handler answers it; false when c is to close. */
static bool conn_oversize(struct conn *c, const struct mqtt_publish *head, size_t payload_len)
{
    const struct conn_handler *h = &c->pool->h;
    int rc = h->on_oversize ? h->on_oversize(h->arg, c, head, payload_len) : -MQTT_ETOOLARGE;

    if (rc < 0) {
        c->over = CONN_OVER_PAYLOAD;
        c->over_size = (uint32_t)payload_len; /* a packet's: at most 256 MB */
        conn__queue_close(c, rc, rc == -MQTT_ETOOLARGE);
    }
    return rc >= 0;
}

/*
 * A PUBLISH whose fixed header announces more than message_size_limit allows: answered from
 * its head (as soon as that has arrived), then skipped as it arrives. Returns the bytes of buf
 * used (0: the head is not all there yet), or -1 when c is closing.
 */
static int conn_skip_publish(struct conn *c, const uint8_t *buf, size_t len)
{
    struct mqtt_publish head;
    size_t total = 0, now;
    int hl = mqtt_decode_publish_head(buf, len, &head, &total);

    if (hl == -MQTT_EPARTIAL)
        return 0;
    if (hl < 0) {
        conn__queue_close(c, hl, true);
        return -1;
    }
    conn__counters.packets_received++;
    if (!conn_oversize(c, &head, head.payload.len))
        return -1;
    now = len < total ? len : total;
    c->skip = (uint32_t)(total - now);
    return (int)now;
}

/*
 * Decode and hand over every whole packet in buf. Returns the bytes consumed; stops early when
 * the conn starts closing (the rest of the input no longer matters).
 */
static size_t conn_decode(struct conn *c, const uint8_t *buf, size_t len)
{
    const struct conn_handler *h = &c->pool->h;
    uint32_t limit = c->pool->cfg->message_size_limit;
    size_t used = 0;

    while (!c->closing && !c->paused && used < len) {
        struct mqtt_packet pkt;
        bool by_packet = false;
        int n;
        int rc;

        if (c->skip) { /* the rest of an oversize PUBLISH */
            size_t d = c->skip < len - used ? c->skip : len - used;
            c->skip -= (uint32_t)d;
            used += d;
            continue;
        }
        if (!c->connected && !c->outgoing && (buf[used] >> 4) != MQTT_CONNECT) {
            /* [MQTT-3.1.0-1]: refused from its first byte, before a body it may announce
             * (hundreds of megabytes) is buffered */
            c->over = CONN_NOT_CONNECT;
            c->over_size = buf[used] >> 4;
            conn__queue_close(c, -EPROTO, false);
            break;
        }
        n = mqtt_decode(buf + used, len - used,
                        conn_packet_max(c, conn__decode_max(limit, buf[used]), &by_packet), &pkt);
        if (n == -MQTT_EPARTIAL)
            break;
        if (n == -MQTT_ETOOLARGE && limit && !by_packet && c->connected &&
            (buf[used] >> 4) == MQTT_PUBLISH) {
            int s = conn_skip_publish(c, buf + used, len - used);
            if (s <= 0)
                break;
            c->got_packet = true;
            used += (size_t)s;
            continue;
        }
        if (n == -MQTT_ETOOLARGE) {
            uint8_t type, flags;
            size_t size;

            if (by_packet)
                c->over = CONN_OVER_PACKET;
            else
                c->over = (buf[used] >> 4) == MQTT_CONNECT ? CONN_OVER_CONNECT : CONN_OVER_HEADER;
            if (mqtt_decode_fixed_header(buf + used, len - used, &type, &flags, &size) < 0)
                size = 0;
            else if (by_packet)
                size += 1 + mqtt_remaining_length_size(size);
            c->over_size = (uint32_t)size; /* a remaining length: at most 256 MB */
        }
        if (n < 0) {
            if (n == -MQTT_EPROTO_LEVEL && !c->got_packet && h->on_bad_connect) {
                rc = h->on_bad_connect(h->arg, c, n);
                (void)rc;
            }
            c->got_packet = true;
            conn__queue_close(c, n, true);
            break;
        }
        c->got_packet = true;
        used += (size_t)n;
        conn__counters.packets_received++;
        if (c->pool->cfg->max_packet_size && !c->outgoing &&
            (size_t)n > c->pool->cfg->max_packet_size) {
            c->over = CONN_OVER_PACKET;
            c->over_size = (uint32_t)n;
            conn__queue_close(c, -MQTT_ETOOLARGE, true);
            break;
        }
        c->last_rx = loop_now_ms(c->pool->loop);
        if (limit && pkt.type == MQTT_PUBLISH && pkt.u.publish.payload.len > limit) {
            struct mqtt_publish head = pkt.u.publish;
            head.payload.p = NULL; /* the head only, as when the payload is skipped */
            if (!conn_oversize(c, &head, head.payload.len))
                break;
            continue;
        }
        rc = h->on_packet(h->arg, c, &pkt);
        if (rc < 0)
            conn_close(c, rc);
    }
    return used;
}

/* Keep the start of an incomplete packet (read into the scratch buffer) in the conn's own. */
static int conn_keep(struct conn *c, const uint8_t *p, size_t len)
{
    int rc = 0;

    if (len > c->in_cap) {
        uint8_t *b;
        if ((rc = conn_preconnect_grow(c, len)) < 0)
            goto out;
        b = realloc(c->in, len);
        if (!b) {
            rc = -ENOMEM;
            goto out;
        }
        c->in = b;
        c->in_cap = (uint32_t)len; /* less than the scratch buffer */
        conn__account(c);
    }
    memcpy(c->in, p, len);
    c->in_len = (uint32_t)len;
out:
    return rc;
}

/*
 * How much room to read into the conn's own buffer while a packet is incomplete: up to what
 * the packet still needs (its header says), at most doubling what has arrived, so a peer that
 * announces 256 MB and sends little costs little.
 */
static int conn_reserve(struct conn *c)
{
    uint8_t type;
    uint8_t flags;
    size_t remaining;
    size_t want = c->in_len + CONN_MIN_GROW;
    int hl = mqtt_decode_fixed_header(c->in, c->in_len, &type, &flags, &remaining);
    int rc = 0;

    if (hl > 0) {
        size_t total = (size_t)hl + remaining;
        size_t cap = c->in_len * 2 > want ? c->in_len * 2 : want;
        uint32_t limit = c->pool->cfg->message_size_limit;
        /* a PUBLISH over the limit is kept only up to its head (then skipped) */
        if (type == MQTT_PUBLISH && limit && remaining > conn__decode_max(limit, c->in[0]))
            total = (size_t)hl + 2 + 65535 + 2;
        want = total < cap ? total : cap;
        if (want <= c->in_len)
            want = c->in_len + 1; /* never a zero-length read (it would look like EOF) */
    }
    if (want > c->in_cap) {
        uint8_t *b;
        if ((rc = conn_preconnect_grow(c, want)) < 0)
            goto out;
        b = realloc(c->in, want);
        if (!b) {
            rc = -ENOMEM;
            goto out;
        }
        c->in = b;
        c->in_cap = (uint32_t)want; /* at most a whole packet: 256 MB and its header */
        conn__account(c);
    }
out:
    return rc;
}

/* Drop the first used bytes of the conn's own buffer; free it once empty. */
static void conn_consume_in(struct conn *c, size_t used)
{
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= (uint32_t)used;
    if (c->in_len == 0) {
        free(c->in); /* the next read goes to the scratch buffer again */
        c->in = NULL;
        c->in_cap = 0;
        conn__account(c);
    }
}

/*
 * One read, then decode. With no partial packet pending the read goes to the pool's scratch
 * buffer and only a leftover tail is copied; otherwise into the conn's buffer. Stops when the
 * handler pauses the input (the rest waits in the conn's buffer).
 */
void conn__read(struct conn *c)
{
    uint8_t *buf;
    size_t cap;
    size_t len;
    size_t used;
    ssize_t n;
    int rc = 0;

    do {
        if (c->in_len == 0) {
            buf = c->pool->scratch;
            cap = sizeof(c->pool->scratch);
        } else {
            rc = conn_reserve(c);
            if (rc < 0)
                break;
            buf = c->in;
            cap = c->in_cap - c->in_len;
        }
        n = c->t->ops->read(c->t, buf + (buf == c->in ? c->in_len : 0), cap);
        if (n == -EAGAIN)
            break;
        if (n <= 0) {
            c->by_peer = true;
            rc = n == 0 ? -ECONNRESET : (int)n;
            break;
        }
        conn__counters.bytes_received += (uint64_t)n;
        if (buf == c->in) {
            c->in_len += (uint32_t)n;
            len = c->in_len;
        } else {
            len = (size_t)n;
        }
        used = conn_decode(c, buf, len);
        if (c->closing)
            break;
        if (buf == c->in) {
            conn_consume_in(c, used);
        } else if (used < len) {
            c->in_len = 0;
            rc = conn_keep(c, buf + used, len - used);
            if (rc < 0)
                break;
        }
    } while (c->t->ops->pending(c->t) > 0 && !c->closing && !c->paused);
    if (rc < 0)
        conn_close(c, rc);
}

/* ---- pausing the input ------------------------------------------------------------------- */

void conn_pause_input(struct conn *c)
{
    c->paused = true;
    conn__update_events(c);
}

/* Decode what waited while c was paused, then read on if the transport holds more. */
static void conn_resume_one(struct conn *c)
{
    if (c->closing || c->paused)
        return;
    if (c->in_len > 0) {
        size_t used = conn_decode(c, c->in, c->in_len);
        if (c->closing)
            return;
        if (used > 0)
            conn_consume_in(c, used);
    }
    /* TLS may hold decrypted bytes the socket no longer signals */
    if (!c->paused && c->t->ops->pending(c->t) > 0)
        conn__read(c);
    conn__update_events(c);
}

static void conn_resume_cb(void *arg)
{
    struct conn_pool *p = arg;
    struct conn *list = p->resumed;

    p->resume_timer = NULL;
    p->resumed = NULL;
    while (list) {
        struct conn *c = list;
        list = c->resume_next;
        c->resume_next = NULL;
        c->resume_queued = false;
        conn_resume_one(c);
    }
}

void conn_resume_input(struct conn *c)
{
    struct conn_pool *p = c->pool;

    if (!c->paused)
        return;
    c->paused = false;
    if (c->closing || c->resume_queued)
        return;
    /* not here: the caller may be the handler of a packet of another conn, or the iteration end */
    c->resume_queued = true;
    c->resume_next = p->resumed;
    p->resumed = c;
    if (!p->resume_timer)
        p->resume_timer = loop_timer_add(p->loop, 0, conn_resume_cb, p);
}
