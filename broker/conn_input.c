/*
 * conn_input.c — the input side of a connection (conn.h): reading into the shared scratch
 * buffer or the conn's own, the decode loop, message_size_limit.
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
 * packet is then judged by its payload. PUBLISH: topic (2 + 65535) and packet id (2). CONNECT:
 * variable header (MQIsdp's 12), client id, will topic, username, password (2 + 65535 each) and
 * the will payload's length (2). Every other packet type gets the PUBLISH bound.
 */
#define CONN_PUBLISH_OVERHEAD (2u + 65535u + 2u)
#define CONN_CONNECT_OVERHEAD (12u + 4u * (2u + 65535u) + 2u)

/* ---- input ----------------------------------------------------------------------------- */

/* The largest remaining length the decoder accepts for the packet starting with byte first. */
static size_t conn_decode_max(uint32_t limit, uint8_t first)
{
    size_t max = 0; /* the protocol maximum */

    if (limit)
        max = (size_t)limit +
              ((first >> 4) == MQTT_CONNECT ? CONN_CONNECT_OVERHEAD : CONN_PUBLISH_OVERHEAD);
    return max;
}

/* The decoded packet carries a payload over message_size_limit: note it for the log. */
static bool conn_over_limit(struct conn *c, uint32_t limit, const struct mqtt_packet *pkt)
{
    const struct mqtt_connect *k = &pkt->u.connect;

    if (limit == 0)
        return false;
    if (pkt->type == MQTT_PUBLISH && pkt->u.publish.payload.len > limit) {
        c->over = CONN_OVER_PAYLOAD;
        c->over_size = pkt->u.publish.payload.len;
    } else if (pkt->type == MQTT_CONNECT && k->will_flag && k->will_payload.len > limit) {
        c->over = CONN_OVER_WILL;
        c->over_size = k->will_payload.len;
    }
    return c->over != CONN_OVER_NONE;
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

    while (!c->closing && used < len) {
        struct mqtt_packet pkt;
        int n = mqtt_decode(buf + used, len - used, conn_decode_max(limit, buf[used]), &pkt);
        int rc;

        if (n == -MQTT_EPARTIAL)
            break;
        if (n == -MQTT_ETOOLARGE) {
            uint8_t type, flags;

            c->over = CONN_OVER_HEADER;
            if (mqtt_decode_fixed_header(buf + used, len - used, &type, &flags, &c->over_size) < 0)
                c->over_size = 0;
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
        if (conn_over_limit(c, limit, &pkt)) {
            conn__queue_close(c, -MQTT_ETOOLARGE, true);
            break;
        }
        c->last_rx = loop_now_ms(c->pool->loop);
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
        uint8_t *b = realloc(c->in, len);
        if (!b) {
            rc = -ENOMEM;
            goto out;
        }
        c->in = b;
        c->in_cap = len;
    }
    memcpy(c->in, p, len);
    c->in_len = len;
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
        want = total < cap ? total : cap;
        if (want <= c->in_len)
            want = c->in_len + 1; /* never a zero-length read (it would look like EOF) */
    }
    if (want > c->in_cap) {
        uint8_t *b = realloc(c->in, want);
        if (!b) {
            rc = -ENOMEM;
            goto out;
        }
        c->in = b;
        c->in_cap = want;
    }
out:
    return rc;
}

/*
 * One read, then decode. With no partial packet pending the read goes to the pool's scratch
 * buffer and only a leftover tail is copied; otherwise into the conn's buffer.
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
            c->in_len += (size_t)n;
            len = c->in_len;
        } else {
            len = (size_t)n;
        }
        used = conn_decode(c, buf, len);
        if (c->closing)
            break;
        if (buf == c->in) {
            memmove(c->in, c->in + used, len - used);
            c->in_len = len - used;
            if (c->in_len == 0) {
                free(c->in); /* the next read goes to the scratch buffer again */
                c->in = NULL;
                c->in_cap = 0;
            }
        } else if (used < len) {
            c->in_len = 0;
            rc = conn_keep(c, buf + used, len - used);
            if (rc < 0)
                break;
        }
    } while (c->t->ops->pending(c->t) > 0 && !c->closing);
    if (rc < 0)
        conn_close(c, rc);
}
