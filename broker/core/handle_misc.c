/*
 * handle_misc.c — PINGREQ and DISCONNECT.
 *
 * PINGRESP depends on nothing stored, but packets leave a connection in the order they were
 * produced: behind anything held for the commit (a CONNACK read in the same buffer, say) it is
 * held too, else written at once [MQTT-3.2.0-1]. DISCONNECT discards the will [MQTT-3.14.4-3]
 * and closes with reason 0 after what is queued has left.
 */
#include "client.h"
#include "conn.h"

int handle_pingreq(struct broker *b, struct client *cl)
{
    uint8_t buf[2];
    size_t n = mqtt_encode_empty(buf, sizeof(buf), MQTT_PINGRESP);

    return client_send_raw(cl, buf, n);
}

int handle_disconnect(struct broker *b, struct client *cl)
{
    cl->disconnecting = true;
    msg_unref(cl->will);
    cl->will = NULL;
    conn_close(cl->conn, 0);
    return 0;
}
