/*
 * error.c — error classes, messages and packet type names.
 */
#include "internal.h"

static int magnitude(int err)
{
    return err < 0 ? -err : err;
}

enum mqtt_err_class mqtt_error_class(int err)
{
    int e = magnitude(err);

    if (e == MQTT_OK)
        return MQTT_CLASS_OK;
    if (e == MQTT_EPARTIAL)
        return MQTT_CLASS_PARTIAL;
    if (e >= MQTT_EREMLEN && e < MQTT_EFLAGS)
        return MQTT_CLASS_MALFORMED;
    if (e >= MQTT_EFLAGS && e < MQTT_ETOOLARGE)
        return MQTT_CLASS_PROTOCOL;
    if (e >= MQTT_ETOOLARGE && e < MQTT_EINVAL)
        return MQTT_CLASS_TOO_LARGE;
    return MQTT_CLASS_INVALID;
}

const char *mqtt_strerror(int err)
{
    switch (magnitude(err)) {
    case MQTT_OK:
        return "success";
    case MQTT_EPARTIAL:
        return "incomplete packet: more bytes needed";
    case MQTT_EREMLEN:
        return "malformed remaining length: over four bytes [MQTT-2.2.3]";
    case MQTT_ESHORT:
        return "malformed packet: a field runs past the remaining length";
    case MQTT_ELONG:
        return "malformed packet: bytes left over after the last field";
    case MQTT_EUTF8:
        return "malformed UTF-8 string [MQTT-1.5.3-1]";
    case MQTT_EUTF8_NUL:
        return "U+0000 in a UTF-8 string [MQTT-1.5.3-2]";
    case MQTT_ETYPE:
        return "reserved packet type 0 or 15";
    case MQTT_EFLAGS:
        return "reserved fixed-header flags wrong [MQTT-2.2.2-1] [MQTT-2.2.2-2]";
    case MQTT_EQOS:
        return "PUBLISH with QoS 3 [MQTT-3.3.1-4]";
    case MQTT_EPROTO_NAME:
        return "protocol name is not MQTT or MQIsdp [MQTT-3.1.2-1]";
    case MQTT_EPROTO_LEVEL:
        return "unsupported protocol level [MQTT-3.1.2-2]";
    case MQTT_ECONNECT_RESERVED:
        return "CONNECT reserved flag set [MQTT-3.1.2-3]";
    case MQTT_EWILL_FLAGS:
        return "will QoS or retain without the will flag [MQTT-3.1.2-11]";
    case MQTT_EWILL_QOS:
        return "will QoS 3 [MQTT-3.1.2-14]";
    case MQTT_EPASSWORD:
        return "password without user name [MQTT-3.1.2-22]";
    case MQTT_EPACKET_ID:
        return "packet identifier 0 [MQTT-2.3.1-1]";
    case MQTT_EEMPTY_SUB:
        return "SUBSCRIBE or UNSUBSCRIBE without a topic filter [MQTT-3.8.3-3] [MQTT-3.10.3-2]";
    case MQTT_ESUB_QOS:
        return "SUBSCRIBE requested QoS invalid [MQTT-3.8.3-4]";
    case MQTT_ETOPIC_EMPTY:
        return "empty topic name or filter [MQTT-4.7.3-1]";
    case MQTT_ETOPIC_WILDCARD:
        return "wildcard in a topic name [MQTT-3.3.2-2]";
    case MQTT_EFILTER:
        return "wildcard misplaced in a topic filter [MQTT-4.7.1-2] [MQTT-4.7.1-3]";
    case MQTT_ECONNACK_RESERVED:
        return "CONNACK reserved flags set [MQTT-3.2.2-1]";
    case MQTT_ECLIENT_ID:
        return "client identifier rejected";
    case MQTT_ESUBACK_CODE:
        return "SUBACK return code reserved [MQTT-3.9.3-2]";
    case MQTT_ETOOLARGE:
        return "packet larger than the maximum accepted";
    case MQTT_EINVAL:
        return "values cannot be encoded";
    }
    return "unknown error";
}

int mqtt_error_connack(int err)
{
    switch (magnitude(err)) {
    case MQTT_EPROTO_LEVEL:
        return MQTT_CONNACK_BAD_PROTOCOL; /* [MQTT-3.1.2-2] */
    case MQTT_ECLIENT_ID:
        return MQTT_CONNACK_ID_REJECTED; /* [MQTT-3.1.3-9] */
    }
    return -1;
}

const char *mqtt_type_name(int type)
{
    static const char *const names[16] = {
        NULL,      "CONNECT",  "CONNACK",    "PUBLISH", "PUBACK",      "PUBREC",
        "PUBREL",  "PUBCOMP",  "SUBSCRIBE",  "SUBACK",  "UNSUBSCRIBE", "UNSUBACK",
        "PINGREQ", "PINGRESP", "DISCONNECT", NULL,
    };

    if (type < 0 || type > 15 || !names[type])
        return "RESERVED";
    return names[type];
}
