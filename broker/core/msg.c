/*
 * msg.c — reference-counted messages, their cached PUBLISH headers, and the id index.
 */
#include "msg.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct msg_table {
    struct msg **b; /* chains by id */
    size_t nb;      /* power of two */
    size_t n;
};

static size_t msg_live;
static size_t msg_live_mem; /* bytes of live messages and their cached headers (memory_limit) */

static void msg__table_remove(struct msg_table *t, struct msg *m);

struct msg *msg_new(uint64_t id, const uint8_t *topic, size_t topic_len, const uint8_t *payload,
                    size_t payload_len, uint8_t qos, bool retain)
{
    struct msg *m = NULL;

    if (topic_len > 65535 || payload_len > MQTT_MAX_REMAINING || qos > 2)
        goto out;
    m = malloc(sizeof(*m) + topic_len + 1 + payload_len);
    if (!m)
        goto out;
    memset(m, 0, sizeof(*m));
    m->refcnt = 1;
    m->qos = qos;
    m->retain = retain;
    m->id = id;
    m->topic_len = (uint16_t)topic_len;
    m->payload_len = (uint32_t)payload_len;
    if (topic_len)
        memcpy(m->topic, topic, topic_len);
    m->topic[topic_len] = '\0';
    m->payload = (const uint8_t *)m->topic + topic_len + 1;
    if (payload_len)
        memcpy((uint8_t *)m->topic + topic_len + 1, payload, payload_len);
    msg_live++;
    msg_live_mem += sizeof(*m) + topic_len + 1 + payload_len;
out:
    return m;
}

struct msg *msg_ref(struct msg *m)
{
    assert(m->refcnt > 0);
    m->refcnt++;
    return m;
}

void msg_unref(struct msg *m)
{
    if (!m)
        goto out;
    assert(m->refcnt > 0);
    if (--m->refcnt > 0)
        goto out;
    if (m->table)
        msg__table_remove(m->table, m);
    for (int q = 0; q < 3; q++) {
        free(m->hdr[q]);
        msg_live_mem -= m->hdr_len[q];
    }
    msg_live--;
    msg_live_mem -= sizeof(*m) + m->topic_len + 1 + m->payload_len;
    free(m);
out:
    return;
}

void msg_release(void *obj)
{
    msg_unref(obj);
}

const uint8_t *msg_header(struct msg *m, uint8_t qos, size_t *len)
{
    const uint8_t *h = NULL;
    size_t need, pid_off = 0;
    uint8_t *buf;

    if (qos > 2)
        goto out;
    if (!m->hdr[qos]) {
        need = mqtt_encode_publish_header(NULL, 0, msg_topic(m), qos, m->retain, m->payload_len,
                                          &pid_off);
        if (need == 0)
            goto out;
        buf = calloc(1, need);
        if (!buf)
            goto out;
        mqtt_encode_publish_header(buf, need, msg_topic(m), qos, m->retain, m->payload_len,
                                   &pid_off);
        m->hdr[qos] = buf;
        m->hdr_len[qos] = (uint32_t)need;
        msg_live_mem += need;
    }
    h = m->hdr[qos];
    *len = m->hdr_len[qos];
out:
    return h;
}

size_t msg_live_count(void)
{
    return msg_live;
}

size_t msg_live_bytes(void)
{
    return msg_live_mem;
}

/* ---- the id index ------------------------------------------------------------------------ */

static size_t msg__slot(const struct msg_table *t, uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t)(id & (t->nb - 1));
}

struct msg_table *msg_table_new(void)
{
    struct msg_table *t = calloc(1, sizeof(*t));

    if (!t)
        goto out;
    t->nb = 64;
    t->b = calloc(t->nb, sizeof(*t->b));
    if (!t->b) {
        free(t);
        t = NULL;
    }
out:
    return t;
}

void msg_table_free(struct msg_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nb; i++) {
        struct msg *m = t->b[i];
        while (m) {
            struct msg *next = m->hnext;
            m->table = NULL;
            m->hnext = NULL;
            m = next;
        }
    }
    free(t->b);
    free(t);
}

static int msg__table_grow(struct msg_table *t)
{
    size_t nb = t->nb * 2;
    struct msg **b = calloc(nb, sizeof(*b));
    struct msg **old = t->b;
    size_t onb = t->nb;
    int rc = -ENOMEM;

    if (!b)
        goto out;
    t->b = b;
    t->nb = nb;
    for (size_t i = 0; i < onb; i++) {
        struct msg *m = old[i];
        while (m) {
            struct msg *next = m->hnext;
            size_t s = msg__slot(t, m->id);
            m->hnext = b[s];
            b[s] = m;
            m = next;
        }
    }
    free(old);
    rc = 0;
out:
    return rc;
}

struct msg *msg_table_get(struct msg_table *t, uint64_t id)
{
    struct msg *m = t->b[msg__slot(t, id)];

    while (m && m->id != id)
        m = m->hnext;
    return m ? msg_ref(m) : NULL;
}

int msg_table_add(struct msg_table *t, struct msg *m)
{
    int rc = 0;
    size_t s;

    if (t->n >= t->nb && msg__table_grow(t) < 0) {
        rc = -ENOMEM;
        goto out;
    }
    s = msg__slot(t, m->id);
    m->hnext = t->b[s];
    t->b[s] = m;
    m->table = t;
    t->n++;
out:
    return rc;
}

static void msg__table_remove(struct msg_table *t, struct msg *m)
{
    struct msg **pp = &t->b[msg__slot(t, m->id)];

    while (*pp && *pp != m)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = m->hnext;
        t->n--;
    }
    m->table = NULL;
    m->hnext = NULL;
}

size_t msg_table_count(const struct msg_table *t)
{
    return t->n;
}
