/*
 * handle_misc.c — PINGREQ and DISCONNECT.
 *
 * PINGRESP depends on nothing stored, so it is written at once. DISCONNECT discards the will
 * [MQTT-3.14.4-3] and closes with reason 0 after what is queued has left.
 */
#include "client.h"
#include "conn.h"

int handle_pingreq(struct broker *b, struct client *cl)
{
    uint8_t buf[2];
    size_t n = mqtt_encode_empty(buf, sizeof(buf), MQTT_PINGRESP);

    return conn_write(cl->conn, buf, n);
}

int handle_disconnect(struct broker *b, struct client *cl)
{
    cl->disconnecting = true;
    msg_unref(cl->will);
    cl->will = NULL;
    conn_close(cl->conn, 0);
    return 0;
}
