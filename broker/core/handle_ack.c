/*
 * handle_ack.c — PUBACK, PUBREC, PUBREL, PUBCOMP from the client.
 *
 * For messages the broker sent (session in-flight window, [MQTT-4.3.2/4.3.3] sender side):
 * PUBACK finishes a QoS 1 entry; PUBREC moves a QoS 2 entry to WAIT_PUBCOMP and is answered
 * with PUBREL (held: the state must be durable first, or a restart would resend the PUBLISH
 * after the client released the id); PUBCOMP finishes it. Each frees a window slot, so the
 * session is pumped again at iteration end. As Mosquitto 2.0: an acknowledgement of the wrong
 * kind for an id in flight (PUBREC or PUBCOMP for QoS 1, PUBACK for QoS 2, PUBCOMP before
 * PUBREC) is a protocol violation that closes the connection; one for an id not in flight is
 * logged and ignored, except PUBREC, which still gets its PUBREL so the client can finish.
 *
 * For messages the client published at QoS 2 (receiver side, method B): PUBREL deletes the
 * stored packet id and is always answered with PUBCOMP [MQTT-4.3.3-2], even for an id not
 * stored (a resend after the broker already completed it).
 */
#include <errno.h>

#include "client.h"
#include "log.h"

int handle_ack(struct broker *b, struct client *cl, enum mqtt_type type, uint16_t pid)
{
    struct session *s = cl->session;
    int rc = 0;

    if (!s)
        goto out;
    switch (type) {
    case MQTT_PUBREL:
        session_inbound_del(s, pid);
        rc = client_hold_ack(cl, MQTT_PUBCOMP, pid);
        break;
    case MQTT_PUBREC:
        rc = session_ack(s, MQTT_PUBREC, pid);
        if (rc == -ENOENT)
            log_write(CAIRN_LOG_DEBUG, "client %s %s: PUBREC for unknown id %u", client_peer(cl),
                      s->id, pid);
        if (rc == 0 || rc == -ENOENT)
            rc = client_hold_ack(cl, MQTT_PUBREL, pid);
        break;
    default: /* PUBACK, PUBCOMP */
        rc = session_ack(s, type, pid);
        if (rc == 0) {
            broker__session_dirty(b, s);
        } else if (rc == -ENOENT) {
            log_write(CAIRN_LOG_DEBUG, "client %s %s: %s for unknown id %u", client_peer(cl), s->id,
                      mqtt_type_name(type), pid);
            rc = 0;
        }
        break;
    }
    if (rc == -EPROTO)
        log_write(CAIRN_LOG_NOTICE,
                  "client %s %s: %s for id %u, which is in flight at another "
                  "stage: protocol violation",
                  client_peer(cl), s->id, mqtt_type_name(type), pid);
out:
    return rc;
}
