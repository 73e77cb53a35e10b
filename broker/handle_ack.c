/*
 * handle_ack.c — PUBACK, PUBREC, PUBREL, PUBCOMP from the client.
 *
 * For messages the broker sent (session in-flight window, [MQTT-4.3.2/4.3.3] sender side):
 * PUBACK finishes a QoS 1 entry; PUBREC moves a QoS 2 entry to WAIT_PUBCOMP and is answered
 * with PUBREL (held: the state must be durable first, or a restart would resend the PUBLISH
 * after the client released the id); PUBCOMP finishes it. Each frees a window slot, so the
 * session is pumped again at iteration end.
 *
 * For messages the client published at QoS 2 (receiver side, method B): PUBREL deletes the
 * stored packet id and is always answered with PUBCOMP [MQTT-4.3.3-2], even for an id not
 * stored (a resend after the broker already completed it).
 */
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
        if (session_ack(s, MQTT_PUBREC, pid) == 0)
            rc = client_hold_ack(cl, MQTT_PUBREL, pid);
        else
            log_write(CAIRN_LOG_DEBUG, "client %s %s: PUBREC for unknown id %u", client_peer(cl),
                      s->id, pid);
        break;
    default: /* PUBACK, PUBCOMP */
        if (session_ack(s, type, pid) == 0)
            broker__session_dirty(b, s);
        else
            log_write(CAIRN_LOG_DEBUG, "client %s %s: %s for unknown id %u", client_peer(cl), s->id,
                      mqtt_type_name(type), pid);
        break;
    }
out:
    return rc;
}
