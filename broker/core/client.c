/*
 * client.c — per-connection state and the held output (client.h).
 */
#include "client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "config.h"
#include "conn.h"
#include "metrics.h"

struct client *client_new(struct broker *b, struct conn *c)
{
    struct client *cl = calloc(1, sizeof(*cl));

    if (cl) {
        cl->b = b;
        cl->conn = c;
        cl->listener = conn_listener_index(c);
    }
    return cl;
}

void client_free(struct client *cl)
{
    if (!cl)
        return;
    handle_subscribe_cancel(cl);
    client_drop_held(cl);
    free(cl->held);
    free(cl->raw);
    msg_unref(cl->will);
    free(cl->username);
    free(cl);
}

const char *client_peer(const struct client *cl)
{
    return conn_peer(cl->conn);
}

const char *client_id(const struct client *cl)
{
    return cl->session ? cl->session->id : conn_name(cl->conn);
}

const struct config_listener *client_listener(const struct client *cl)
{
    /* a bridge's link has no listener: no mount point, every QoS */
    static const struct config_listener none = {.max_qos = 2};

    return cl->listener >= 0 ? &cl->b->cfg->listeners[cl->listener] : &none;
}

int client_mount(const struct client *cl, struct mqtt_str in, bool filter, struct mqtt_str *out,
                 uint8_t **buf)
{
    const char *mp = client_listener(cl)->mount_point;
    size_t ml = mp ? strlen(mp) : 0;
    int rc = 0;

    *out = in;
    *buf = NULL;
    if (!mp || (filter && in.len >= 4 && memcmp(in.p, "$SYS", 4) == 0))
        goto out;
    if (ml + in.len > 65535) {
        rc = -EINVAL;
        goto out;
    }
    *buf = malloc(ml + in.len + 1);
    if (!*buf) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(*buf, mp, ml);
    if (in.len)
        memcpy(*buf + ml, in.p, in.len);
    out->p = *buf;
    out->len = ml + in.len;
out:
    return rc;
}

/*
 * A PUBLISH of m under another topic or RETAIN flag than its shared header's — the topic without
 * the listener's mount point, or a bridge's mapping (bridge.h) — so the header is built for this
 * client; the payload is shared.
 */
static int client__send_as(struct client *cl, struct msg *m, struct mqtt_str t, bool retain,
                           uint8_t qos, uint16_t pid, bool dup)
{
    uint8_t small[256], *hdr = small;
    size_t off = 0,
           need = mqtt_encode_publish_header(NULL, 0, t, qos, retain, m->payload_len, &off);
    int rc = -ENOMEM;

    if (need == 0 || (need > sizeof(small) && !(hdr = malloc(need))))
        goto out;
    mqtt_encode_publish_header(hdr, need, t, qos, retain, m->payload_len, &off);
    if (dup)
        hdr[0] |= 0x08;
    if (qos > 0) {
        hdr[off] = (uint8_t)(pid >> 8);
        hdr[off + 1] = (uint8_t)pid;
    }
    rc = conn_write(cl->conn, hdr, need);
    if (rc == 0 && m->payload_len)
        rc = conn_write_ref(cl->conn, m->payload, m->payload_len, msg_release, msg_ref(m));
out:
    if (hdr != small)
        free(hdr);
    return rc;
}

static int client__held_slot(struct client *cl, struct client_held **out)
{
    int rc = 0;

    if (cl->n_held == cl->cap_held) {
        size_t cap = cl->cap_held ? (size_t)cl->cap_held * 2 : 8;
        struct client_held *v = cap <= UINT32_MAX ? realloc(cl->held, cap * sizeof(*v)) : NULL;
        if (!v) {
            rc = -ENOMEM;
            goto out;
        }
        cl->held = v;
        cl->cap_held = (uint32_t)cap;
    }
    *out = &cl->held[cl->n_held];
    memset(*out, 0, sizeof(**out));
out:
    return rc;
}

int client_hold_raw(struct client *cl, const uint8_t *p, size_t len)
{
    struct client_held *h;
    int rc;

    if ((rc = client__held_slot(cl, &h)) < 0)
        goto out;
    if (cl->raw_len + len > cl->raw_cap) {
        size_t cap = cl->raw_cap ? cl->raw_cap : 256;
        uint8_t *v;
        while (cap < cl->raw_len + len)
            cap *= 2;
        v = cap <= UINT32_MAX ? realloc(cl->raw, cap) : NULL; /* offsets are 32-bit */
        if (!v) {
            rc = -ENOMEM;
            goto out;
        }
        cl->raw = v;
        cl->raw_cap = (uint32_t)cap;
    }
    memcpy(cl->raw + cl->raw_len, p, len);
    h->off = cl->raw_len;
    h->len = (uint32_t)len;
    cl->raw_len += (uint32_t)len;
    cl->held_bytes += len;
    cl->n_held++;
    broker__client_dirty(cl->b, cl);
out:
    return rc;
}

int client_send_raw(struct client *cl, const uint8_t *p, size_t len)
{
    return cl->n_held ? client_hold_raw(cl, p, len) : conn_write(cl->conn, p, len);
}

int client_hold_ack(struct client *cl, enum mqtt_type type, uint16_t pid)
{
    uint8_t buf[4];
    size_t n = mqtt_encode_ack(buf, sizeof(buf), type, pid);

    return n == 4 ? client_hold_raw(cl, buf, n) : -EINVAL;
}

int client_hold_publish(struct client *cl, struct msg *m, uint8_t qos, uint16_t pid, bool dup)
{
    struct client_held *h;
    int rc;

    if ((rc = client__held_slot(cl, &h)) < 0)
        goto out;
    h->m = msg_ref(m);
    h->qos = qos;
    h->pid = pid;
    h->dup = dup;
    cl->held_bytes += m->payload_len + m->topic_len + 7u;
    cl->n_held++;
    broker__client_dirty(cl->b, cl);
out:
    return rc;
}

/*
 * A PUBLISH up to this size is copied whole into the output queue's coalescing chunk — one
 * memcpy — rather than queued as references to the shared header and payload: each reference
 * costs an allocation, a message reference and an iovec, more than copying a small packet
 * (issue 11's profile: allocation and iovec walking were a third of fan-out). A larger one has
 * its header copied and only its payload referenced: one reference, not three.
 */
#define CLIENT_COPY_MAX 1100u

/*
 * A larger PUBLISH: its header copied (patched with DUP and the packet id: a few bytes into the
 * coalescing chunk) and its payload referenced (never copied per subscriber).
 */
static int client__send_publish_ref(struct client *cl, struct msg *m, const uint8_t *hdr,
                                    size_t hlen, uint8_t qos, uint16_t pid, bool dup)
{
    uint8_t small[64], *h = hlen <= sizeof(small) ? small : malloc(hlen);
    int rc = -ENOMEM;

    if (!h)
        goto out;
    memcpy(h, hdr, hlen);
    if (dup)
        h[0] |= 0x08;
    if (qos > 0) {
        h[hlen - 2] = (uint8_t)(pid >> 8);
        h[hlen - 1] = (uint8_t)pid;
    }
    rc = conn_write(cl->conn, h, hlen);
    if (rc == 0 && m->payload_len)
        rc = conn_write_ref(cl->conn, m->payload, m->payload_len, msg_release, msg_ref(m));
out:
    if (h != small)
        free(h);
    return rc;
}

int client_send_publish(struct client *cl, struct msg *m, uint8_t qos, uint16_t pid, bool dup)
{
    const char *mp = client_listener(cl)->mount_point;
    size_t hlen, ml = mp ? strlen(mp) : 0;
    const uint8_t *hdr = NULL;
    struct mqtt_str t;
    bool retain;
    int rc = -ENOMEM;

    if (cl->bridge && bridge_map_out(cl->bridge, m, &t, &retain)) {
        rc = client__send_as(cl, m, t, retain, qos, pid, dup);
    } else if (ml && m->topic_len > ml && memcmp(m->topic, mp, ml) == 0) {
        /* a topic under the mount point loses it; others ($SYS) go as they are */
        t.p = (const uint8_t *)m->topic + ml;
        t.len = m->topic_len - ml;
        rc = client__send_as(cl, m, t, m->retain, qos, pid, dup);
    } else if (!(hdr = msg_header(m, qos, &hlen)))
        goto out;
    else if (hlen + m->payload_len <= CLIENT_COPY_MAX) {
        uint8_t h[CLIENT_COPY_MAX]; /* the header, patched; the payload goes straight in */
        memcpy(h, hdr, hlen);
        if (dup)
            h[0] |= 0x08;
        if (qos > 0) {
            h[hlen - 2] = (uint8_t)(pid >> 8);
            h[hlen - 1] = (uint8_t)pid;
        }
        rc = conn_write2(cl->conn, h, hlen, m->payload, m->payload_len);
    } else {
        rc = client__send_publish_ref(cl, m, hdr, hlen, qos, pid, dup);
    }
    if (rc == 0) {
        cl->b->stats.messages_sent++;
        metrics_msg_out(qos, m->payload_len);
    }
out:
    return rc;
}

/* The held output was written or dropped. */
static void client__shrink(struct client *cl)
{
    /*
     * Emptied: give the arrays back. Most clients are idle most of the time, and kept they were
     * a third of an idle connection's memory (a CONNACK left 8 slots and 256 bytes behind);
     * a busy client allocates them again once per loop pass, not per packet.
     */
    free(cl->held);
    cl->held = NULL;
    cl->cap_held = 0;
    free(cl->raw);
    cl->raw = NULL;
    cl->raw_cap = 0;
}

void client_flush_held(struct client *cl)
{
    int rc = 0;

    for (uint32_t i = 0; i < cl->n_held; i++) {
        struct client_held *h = &cl->held[i];
        if (rc == 0) {
            if (h->m)
                rc = client_send_publish(cl, h->m, h->qos, h->pid, h->dup);
            else
                rc = conn_write(cl->conn, cl->raw + h->off, h->len);
        }
        msg_unref(h->m);
        h->m = NULL;
    }
    /* a failed write means the conn is closing; what it missed is resent on reconnect */
    cl->n_held = 0;
    cl->raw_len = 0;
    cl->held_bytes = 0;
    client__shrink(cl);
}

void client_drop_held(struct client *cl)
{
    for (uint32_t i = 0; i < cl->n_held; i++)
        msg_unref(cl->held[i].m);
    cl->n_held = 0;
    cl->raw_len = 0;
    cl->held_bytes = 0;
    client__shrink(cl);
}
