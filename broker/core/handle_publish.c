/*
 * handle_publish.c — an inbound PUBLISH, QoS 0, 1 and 2 as [MQTT-4.3]:
 *   QoS 0: route.
 *   QoS 1: route, hold PUBACK (sent once the batch is durable).
 *   QoS 2: method B — route on PUBLISH, store the packet id, hold PUBREC; a PUBLISH with an id
 *          still stored (the publisher's resend, DUP or not) is not routed again, only
 *          answered with PUBREC; PUBREL (handle_ack.c) deletes the id and answers PUBCOMP.
 * A PUBLISH the client may not write (ACL), or to $SYS, is acknowledged and dropped.
 *
 * Before any of that, as Mosquitto: a PUBLISH above its listener's max_qos closes the
 * connection; past memory_limit a new PUBLISH closes it too, unacknowledged (the publisher
 * sends it again when it reconnects); the topic gets the listener's mount_point.
 */
#include <errno.h>
#include <stdlib.h>

#include "auth.h"
#include "client.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "session.h"
#include "sys.h"

/*
 * memory_limit: what msg.h and session.h count (messages once, queue entries), and the message
 * this PUBLISH would make. Counting is two global sums, so checking costs nothing.
 */
static bool publish__over_memory(struct broker *b, struct client *cl, const struct mqtt_publish *p)
{
    uint64_t lim = b->cfg->memory_limit;
    size_t used;

    if (!lim)
        return false;
    used = msg_live_bytes() + session_entry_bytes();
    if (used + sizeof(struct msg) + p->topic.len + p->payload.len <= lim)
        return false;
    if (b->memory_refusals++ % 1000 == 0)
        log_write(CAIRN_LOG_WARNING,
                  "client %s %s: PUBLISH refused, disconnecting: memory_limit %llu reached (%zu "
                  "bytes in use; %llu refused so far)",
                  client_peer(cl), client_id(cl), (unsigned long long)lim, used,
                  (unsigned long long)b->memory_refusals);
    return true;
}

/*
 * message_size_limit, as Mosquitto applies it: a PUBLISH with a larger payload is dropped —
 * at QoS 1/2 acknowledged all the same (closing the connection would make a client with a
 * persistent session resend it forever) — logged with client id, topic and size, and counted.
 * Nothing of it is stored; a QoS 2 PUBREL for it then finds no id and gets its PUBCOMP.
 */
int handle_publish_oversize(struct broker *b, struct client *cl, const struct mqtt_publish *head,
                            size_t payload_len)
{
    uint8_t buf[4];
    int rc = 0;

    b->stats.messages_received++;
    b->stats.messages_dropped++;
    metrics_msg_in(head->qos, payload_len);
    metrics_drop(METRICS_DROP_TOO_LARGE);
    log_write(CAIRN_LOG_NOTICE,
              "client %s %s: PUBLISH to %.*s dropped: payload %zu bytes over message_size_limit "
              "%u (q%u)",
              client_peer(cl), client_id(cl), (int)head->topic.len, (const char *)head->topic.p,
              payload_len, b->cfg->message_size_limit, head->qos);
    if (head->qos > 0) {
        mqtt_encode_ack(buf, sizeof(buf), head->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC,
                        head->packet_id);
        rc = client_send_raw(cl, buf, sizeof(buf));
    }
    return rc;
}

int handle_publish(struct broker *b, struct client *cl, const struct mqtt_publish *p)
{
    const struct config_listener *l = client_listener(cl);
    struct session *s = cl->session;
    struct mqtt_str topic;
    uint8_t *mounted = NULL;
    int rc = 0;

    if (!s)
        goto out; /* taken over: the conn is closing */
    b->stats.messages_received++;
    if (p->qos > l->max_qos) {
        log_write(CAIRN_LOG_NOTICE,
                  "client %s %s: PUBLISH at QoS %u over its listener's max_qos %u: disconnecting",
                  client_peer(cl), s->id, p->qos, l->max_qos);
        rc = -EPROTO;
        goto out;
    }
    metrics_msg_in(p->qos, p->payload.len);
    if (p->qos == 2 && session_inbound_has(s, p->packet_id))
        goto ack; /* [MQTT-4.3.3-2] already delivered */
    if (publish__over_memory(b, cl, p)) {
        rc = -ENOMEM;
        goto out;
    }
    if (sys_topic(p->topic) && !sys_bridge_state(p->topic)) {
        /* $SYS is the broker's: whatever the ACL says, acknowledged and dropped (Mosquitto) */
        log_write(CAIRN_LOG_DEBUG, "client %s %s: PUBLISH to %.*s dropped: $SYS is the broker's",
                  client_peer(cl), s->id, (int)p->topic.len, (const char *)p->topic.p);
        metrics_drop(METRICS_DROP_SYS);
        goto ack;
    }
    if ((rc = client_mount(cl, p->topic, false, &topic, &mounted)) < 0)
        goto out;
    if (!auth_can_write(b->auth, cl->listener, s->id, cl->username, (const char *)topic.p,
                        topic.len)) {
        /* Mosquitto with MQTT 3.1.1 acknowledges and drops a denied PUBLISH */
        log_write(CAIRN_LOG_DEBUG, "client %s %s: PUBLISH to %.*s denied", client_peer(cl), s->id,
                  (int)topic.len, (const char *)topic.p);
        metrics_drop(METRICS_DROP_DENIED);
        goto ack;
    }
    /* retain_available false: a 3.1.1 client cannot be told, so forward and keep nothing */
    rc = broker__publish_from(b, topic, p->payload, p->qos, p->retain, true, cl);
    if (rc < 0)
        goto out;
ack:
    if (p->qos == 1) {
        rc = client_hold_ack(cl, MQTT_PUBACK, p->packet_id);
    } else if (p->qos == 2) {
        if ((rc = session_inbound_add(s, p->packet_id)) < 0)
            goto out;
        rc = client_hold_ack(cl, MQTT_PUBREC, p->packet_id);
    }
out:
    free(mounted);
    return rc;
}
