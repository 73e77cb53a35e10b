/*
 * msg.h — one application message, shared by every queue that holds it.
 *
 * A message is ONE allocation: the struct, then the topic (NUL-terminated), then the payload.
 * It carries a plain integer reference count (the loop is single-threaded): every queue entry,
 * in-flight record, held send and the retained store holds one reference. msg_unref() of the
 * last reference frees it (and its cached headers) and removes it from its table.
 *
 * Build once, send to many (after FlashMQ's publish copy factory): the PUBLISH header for a
 * given delivery QoS — fixed header, topic, and for QoS > 0 room for the packet id — is built
 * on first use and cached in the message. A sender writes that shared header (up to the packet
 * id) and the shared payload by reference, and only the two packet-id bytes per subscriber;
 * the payload is never copied per subscriber. A resend with DUP=1 copies the small header.
 *
 * retain: the RETAIN flag this message is SENT with. A retained PUBLISH makes two messages:
 * one held by the retained store (retain true, sent to new subscriptions) and one routed to
 * current subscribers (retain false) [MQTT-3.3.1-9]. This keeps the flag right for queue
 * entries restored from the store, which record only the message.
 *
 * struct msg_table indexes live messages by id, so that queue windows refilled from the store
 * share one copy of a message among many sessions. A message in a table leaves it when freed.
 */
#ifndef CAIRN_MSG_H
#define CAIRN_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt.h"

struct msg_table;

struct msg {
    uint32_t refcnt;
    uint8_t qos; /* QoS as published */
    bool retain; /* RETAIN flag to send with (see above) */
    uint16_t topic_len;
    uint32_t payload_len;
    uint64_t id;             /* store id, 0 for messages never stored (QoS 0 to clean sessions) */
    struct msg_table *table; /* NULL when not indexed */
    struct msg *hnext;       /* chain in table */
    uint8_t *hdr[3];         /* cached PUBLISH header per delivery QoS, or NULL */
    uint32_t hdr_len[3];     /* header length including the packet id for QoS > 0 */
    const uint8_t *payload;  /* points into this allocation */
    char topic[];            /* topic_len bytes + NUL, then the payload */
};

/* A new message with one reference (the caller's). NULL on ENOMEM or a topic over 65535. */
struct msg *msg_new(uint64_t id, const uint8_t *topic, size_t topic_len, const uint8_t *payload,
                    size_t payload_len, uint8_t qos, bool retain);
struct msg *msg_ref(struct msg *m);
/* Drops one reference; asserts one was held. NULL does nothing. */
void msg_unref(struct msg *m);
/* For conn_write_ref's release callback: msg_unref(obj). */
void msg_release(void *obj);

static inline struct mqtt_str msg_topic(const struct msg *m)
{
    struct mqtt_str s = {(const uint8_t *)m->topic, m->topic_len};
    return s;
}
static inline struct mqtt_str msg_payload(const struct msg *m)
{
    struct mqtt_str s = {m->payload, m->payload_len};
    return s;
}

/*
 * The cached PUBLISH header for delivery at qos (DUP=0, RETAIN = m->retain): *len gets its
 * length; for qos > 0 the last two bytes are the packet-id slot (left zero, never written by
 * senders: they send the header minus two bytes, then their own id). Borrowed: valid while
 * the caller holds a reference to m. NULL on ENOMEM.
 */
const uint8_t *msg_header(struct msg *m, uint8_t qos, size_t *len);

/* Bytes this message costs a queue (payload), as max_queued_bytes counts. */
static inline size_t msg_bytes(const struct msg *m)
{
    return m->payload_len;
}

/* ---- the id index ------------------------------------------------------------------------ */
struct msg_table *msg_table_new(void);
/* The table must be empty of live messages, or they are detached (not freed). NULL: nothing. */
void msg_table_free(struct msg_table *t);
/* A new reference to the live message with this id, or NULL. */
struct msg *msg_table_get(struct msg_table *t, uint64_t id);
/* Index m (id != 0, not already indexed). 0 or -ENOMEM. The table holds no reference. */
int msg_table_add(struct msg_table *t, struct msg *m);
size_t msg_table_count(const struct msg_table *t);

/* Number of messages alive in the process (for tests and $SYS-like checks). */
size_t msg_live_count(void);
/* Their bytes: struct, topic, payload and cached headers, once per message however many
 * queues hold it. What memory_limit counts, with the queue entries (session.h). */
size_t msg_live_bytes(void);

#endif
