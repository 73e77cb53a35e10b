/*
 * loadconn.c — one connection of the load generator: its MQTT client (CONNECT, SUBSCRIBE, the
 * QoS 1 and 2 flows on both sides), the publisher's encoding from a template, and what a
 * subscriber counts of each publisher's sequence numbers. See loadgen.h.
 */
#define _GNU_SOURCE
#include "loadgen_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mqtt.h"

uint64_t load__ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void load__fail(struct load_ctx *x, const char *fmt, ...)
{
    va_list ap;

    if (x->res->err[0])
        return;
    va_start(ap, fmt);
    vsnprintf(x->res->err, sizeof(x->res->err), fmt, ap);
    va_end(ap);
}

static void load_want_out(struct load_ctx *x, struct load_conn *c, bool want)
{
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};

    if (c->pollout != want && epoll_ctl(x->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->pollout = want;
}

int load__flush(struct load_ctx *x, struct load_conn *c)
{
    int rc = 0;

    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            load__fail(x, "%s: write: %s", c->id, strerror(errno));
            rc = -1;
            goto out;
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    load_want_out(x, c, c->out_len > 0);
out:
    return rc;
}

/* Room for n more bytes at the end of c->out (compacting, then growing). */
static uint8_t *load_out_room(struct load_conn *c, size_t n)
{
    if (c->out_off > 0 && c->out_len + n > c->out_cap) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap * 2 > c->out_len + n ? c->out_cap * 2 : c->out_len + n;
        uint8_t *p = realloc(c->out, cap);
        if (!p)
            return NULL;
        c->out = p;
        c->out_cap = cap;
    }
    return c->out + c->out_len;
}

static void load_put_ack(struct load_conn *c, enum mqtt_type type, uint16_t id)
{
    uint8_t *p = load_out_room(c, 4);

    if (p)
        c->out_len += mqtt_encode_ack(p, 4, type, id);
}

/* Clean session unless a persistent subscriber. */
void load__connected(struct load_ctx *x, struct load_conn *c)
{
    struct mqtt_connect m = {.protocol_name = {(const uint8_t *)"MQTT", 4}, .protocol_level = 4};
    int err = 0;
    socklen_t len = sizeof(err);
    uint8_t *p;

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
        load__fail(x, "%s: connect: %s", c->id, strerror(err ? err : errno));
        return;
    }
    m.clean_session = !(c->sub && x->spec->persistent);
    m.client_id.p = (const uint8_t *)c->id;
    m.client_id.len = strlen(c->id);
    p = load_out_room(c, 128);
    if (p)
        c->out_len += mqtt_encode_connect(p, 128, &m);
    c->state = LOAD_CONNACK;
    load__flush(x, c);
}

/* Record one sequence number a subscriber received from a publisher. */
static void load_track_seen(struct load_conn *c, struct load_track *t, uint32_t s)
{
    uint64_t bit = 1ull << (s % 64);
    uint64_t *w = &t->seen[(s % LOAD_TRACK) / 64];

    if (s >= t->hi) {
        if (s - t->hi >= LOAD_TRACK)
            memset(t->seen, 0, sizeof(t->seen));
        else
            for (uint32_t q = t->hi; q != s; q++) /* a gap: those slots now mean unseen */
                t->seen[(q % LOAD_TRACK) / 64] &= ~(1ull << (q % 64));
        *w |= bit;
        t->hi = s + 1;
        t->distinct++;
    } else if (t->hi - s > LOAD_TRACK) {
        c->reordered++; /* too late to tell from a duplicate; cannot happen in a closed loop */
        t->distinct++;
    } else if (*w & bit) {
        c->dup++;
    } else {
        *w |= bit;
        c->reordered++;
        t->distinct++;
    }
}

static void load_publish_in(struct load_ctx *x, struct load_conn *c, uint8_t b0, const uint8_t *b,
                            size_t rem, uint64_t now)
{
    int qos = (b0 >> 1) & 3;
    size_t pos;
    uint16_t id = 0;
    uint32_t pi;
    uint32_t seq;
    uint64_t ts;

    pos = 2 + (rem >= 2 ? (size_t)(b[0] << 8 | b[1]) : rem);
    if (qos) {
        id = pos + 2 <= rem ? (uint16_t)(b[pos] << 8 | b[pos + 1]) : 0;
        pos += 2;
    }
    if (!c->sub || pos + LOAD_MIN_PAYLOAD > rem) {
        load__fail(x, "%s: a PUBLISH the load tool did not send", c->id);
        return;
    }
    memcpy(&pi, b + pos, 4);
    memcpy(&seq, b + pos + 4, 4);
    memcpy(&ts, b + pos + 8, 8);
    if (pi >= (uint32_t)x->spec->npub) {
        load__fail(x, "%s: a PUBLISH from publisher %u of %d", c->id, pi, x->spec->npub);
        return;
    }
    load_track_seen(c, &c->track[pi], seq);
    x->delivered++;
    x->progress = true;
    if (x->measuring && x->lat) {
        if (x->nlat == x->lat_cap) {
            uint32_t *p = realloc(x->lat, (x->lat_cap * 2) * sizeof(*p));
            if (p) {
                x->lat = p;
                x->lat_cap *= 2;
            }
        }
        if (x->nlat < x->lat_cap)
            x->lat[x->nlat++] = now - ts > UINT32_MAX ? UINT32_MAX : (uint32_t)(now - ts);
    }
    if (qos == 1)
        load_put_ack(c, MQTT_PUBACK, id);
    else if (qos == 2)
        load_put_ack(c, MQTT_PUBREC, id);
}

static void load_acked(struct load_conn *c, uint16_t id, uint8_t want)
{
    if (!c->sub && c->id_state && c->id_state[id] == want) {
        c->id_state[id] = 0;
        c->inflight--;
    }
}

/* One whole packet: b0 its first byte, b its body of rem bytes. */
static void load_packet(struct load_ctx *x, struct load_conn *c, uint8_t b0, const uint8_t *b,
                        size_t rem, uint64_t now)
{
    uint16_t id = rem >= 2 ? (uint16_t)(b[0] << 8 | b[1]) : 0;

    switch (b0 >> 4) {
    case MQTT_PUBLISH:
        load_publish_in(x, c, b0, b, rem, now);
        break;
    case MQTT_PUBACK:
        load_acked(c, id, 1);
        break;
    case MQTT_PUBREC:
        if (!c->sub && c->id_state && c->id_state[id] == 1) {
            c->id_state[id] = 2;
            load_put_ack(c, MQTT_PUBREL, id);
        }
        break;
    case MQTT_PUBREL:
        load_put_ack(c, MQTT_PUBCOMP, id);
        break;
    case MQTT_PUBCOMP:
        load_acked(c, id, 2);
        break;
    case MQTT_CONNACK:
        if (c->state != LOAD_CONNACK || rem != 2 || b[1] != 0) {
            load__fail(x, "%s: CONNACK %d", c->id, rem == 2 ? b[1] : -1);
        } else if (c->sub) {
            struct mqtt_sub s = {{(const uint8_t *)x->topic, strlen(x->topic)},
                                 (uint8_t)x->spec->qos};
            uint8_t *p = load_out_room(c, 128);
            if (p)
                c->out_len += mqtt_encode_subscribe(p, 128, 1, &s, 1);
            c->state = LOAD_SUBACK;
        } else {
            c->state = LOAD_READY;
        }
        break;
    case MQTT_SUBACK:
        if (c->state != LOAD_SUBACK || rem != 3 || b[2] != x->spec->qos)
            load__fail(x, "%s: SUBACK code %d for QoS %d", c->id, rem == 3 ? b[2] : -1,
                       x->spec->qos);
        c->state = LOAD_READY;
        break;
    default:
        break;
    }
}

/*
 * Read once and handle every whole packet. PUBLISHes are parsed here rather than by
 * mqtt_decode(): the load tool must outrun the broker, and it only needs the payload's header.
 */
void load__read(struct load_ctx *x, struct load_conn *c)
{
    ssize_t n = read(c->fd, c->in + c->in_len, LOAD_IN_CAP - c->in_len);
    uint64_t now = x->lat ? load__ns() : 0;
    size_t off = 0;

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        load__fail(x, "%s: the broker closed the connection%s%s", c->id, n ? ": " : "",
                   n ? strerror(errno) : "");
        return;
    }
    c->in_len += (size_t)n;
    while (c->in_len - off >= 2) {
        const uint8_t *p = c->in + off;
        size_t avail = c->in_len - off;
        size_t rem = 0;
        size_t hl = 1;
        uint8_t v;

        do {
            if (hl >= avail)
                goto partial;
            v = p[hl];
            rem |= (size_t)(v & 127) << (7 * (hl - 1));
            hl++;
        } while ((v & 128) && hl < 5);
        if (v & 128) {
            load__fail(x, "%s: remaining length over four bytes", c->id);
            return;
        }
        if (hl + rem > LOAD_IN_CAP) {
            load__fail(x, "%s: a packet of %zu bytes", c->id, hl + rem);
            return;
        }
        if (hl + rem > avail)
            break;
        load_packet(x, c, p[0], p + hl, rem, now);
        off += hl + rem;
    }
partial:
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (c->out_len > c->out_off)
        load__flush(x, c);
}

long load__publish(struct load_ctx *x, struct load_conn *c, long n, uint64_t ts)
{
    long i = 0;
    uint32_t pi = (uint32_t)c->index;
    size_t room;

    if (c->state != LOAD_READY || c->out_len - c->out_off >= LOAD_OUT_SOFT)
        return 0;
    if (!load_out_room(c, x->tmpl_len))
        return 0;
    room = (c->out_cap - c->out_len) / x->tmpl_len;
    for (; i < n && (size_t)i < room; i++) {
        uint8_t *p = c->out + c->out_len;
        uint64_t t = ts ? ts : load__ns();

        memcpy(p, x->tmpl, x->tmpl_len);
        if (x->spec->qos) {
            if (c->inflight >= LOAD_PUB_FLIGHT)
                break;
            while (c->next_id == 0 || c->id_state[c->next_id])
                c->next_id++;
            c->id_state[c->next_id] = 1;
            c->inflight++;
            p[x->pid_off] = (uint8_t)(c->next_id >> 8);
            p[x->pid_off + 1] = (uint8_t)c->next_id;
            c->next_id++;
        }
        memcpy(p + x->pay_off, &pi, 4);
        memcpy(p + x->pay_off + 4, &c->seq, 4);
        memcpy(p + x->pay_off + 8, &t, 8);
        c->out_len += x->tmpl_len;
        c->seq++;
    }
    load__flush(x, c);
    return i;
}
