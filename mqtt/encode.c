/*
 * encode.c — every packet type into a caller's buffer, snprintf-style.
 *
 * Each encoder first computes the packet's size; it writes only when the whole packet fits in
 * cap, and returns the size either way, so a caller may ask with cap 0 and allocate. 0 means
 * the values cannot form a valid packet: a string over 65535 bytes, a packet over the
 * protocol's maximum, QoS 3, a packet identifier of 0 where one is required, an empty
 * SUBSCRIBE/UNSUBSCRIBE. Strings are not validated (topic syntax, UTF-8): that is the
 * caller's side of the contract, checked by mqtt_topic_*_validate() where it matters.
 */
#include "internal.h"

size_t mqtt_remaining_length_size(size_t remaining)
{
    if (remaining < 128u)
        return 1;
    if (remaining < 16384u)
        return 2;
    if (remaining < 2097152u)
        return 3;
    if (remaining <= MQTT_MAX_REMAINING)
        return 4;
    return 0;
}

/* The whole packet's size for this remaining length, or 0 when over the maximum. */
static size_t packet_size(size_t rem)
{
    size_t h = mqtt_remaining_length_size(rem);

    return h ? 1 + h + rem : 0;
}

static uint8_t *put_header(uint8_t *p, uint8_t first, size_t rem)
{
    *p++ = first;
    return mqtt__put_remaining(p, rem);
}

static const struct mqtt_str name_mqtt = {(const uint8_t *)"MQTT", 4};

size_t mqtt_encode_connect(uint8_t *buf, size_t cap, const struct mqtt_connect *c)
{
    struct mqtt_str name = c->protocol_name.len ? c->protocol_name : name_mqtt;
    uint8_t level = c->protocol_level;
    uint8_t flags = 0;
    size_t rem, total;
    uint8_t *p;

    if (level == 0)
        level = name.len == 6 && memcmp(name.p, "MQIsdp", 6) == 0 ? 3 : 4;
    if (name.len > MQTT__MAX_STRING || c->client_id.len > MQTT__MAX_STRING)
        return 0;
    if (c->has_password && !c->has_username)
        return 0; /* [MQTT-3.1.2-22] */
    rem = 2 + name.len + 1 + 1 + 2 + 2 + c->client_id.len;
    if (c->clean_session)
        flags |= 0x02;
    if (c->will_flag) {
        if (c->will_qos > 2) /* [MQTT-3.1.2-14] */
            return 0;
        if (c->will_topic.len > MQTT__MAX_STRING || c->will_payload.len > MQTT__MAX_STRING)
            return 0;
        flags |= (uint8_t)(0x04 | c->will_qos << 3 | (c->will_retain ? 0x20 : 0));
        rem += 2 + c->will_topic.len + 2 + c->will_payload.len;
    }
    if (c->has_username) {
        if (c->username.len > MQTT__MAX_STRING)
            return 0;
        flags |= 0x80;
        rem += 2 + c->username.len;
    }
    if (c->has_password) {
        if (c->password.len > MQTT__MAX_STRING)
            return 0;
        flags |= 0x40;
        rem += 2 + c->password.len;
    }
    total = packet_size(rem);
    if (total == 0 || total > cap)
        return total;
    p = put_header(buf, MQTT_CONNECT << 4, rem);
    p = mqtt__put_str(p, name);
    *p++ = c->bridge ? (uint8_t)(level | 0x80) : level;
    *p++ = flags;
    p = mqtt__put16(p, c->keepalive);
    p = mqtt__put_str(p, c->client_id);
    if (c->will_flag) {
        p = mqtt__put_str(p, c->will_topic);
        p = mqtt__put_str(p, c->will_payload);
    }
    if (c->has_username)
        p = mqtt__put_str(p, c->username);
    if (c->has_password)
        p = mqtt__put_str(p, c->password);
    return (size_t)(p - buf); /* == total */
}

size_t mqtt_encode_connack(uint8_t *buf, size_t cap, bool session_present, uint8_t rc)
{
    if (cap >= 4) {
        buf[0] = MQTT_CONNACK << 4;
        buf[1] = 2;
        buf[2] = session_present ? 1 : 0;
        buf[3] = rc;
    }
    return 4;
}

/* PUBLISH remaining length, or 0 for values no valid PUBLISH carries. */
static size_t publish_rem(size_t topic_len, uint8_t qos, size_t payload_len)
{
    if (qos > 2 || topic_len > MQTT__MAX_STRING || payload_len > MQTT_MAX_REMAINING)
        return 0;
    return 2 + topic_len + (qos ? 2 : 0) + payload_len;
}

size_t mqtt_encode_publish(uint8_t *buf, size_t cap, const struct mqtt_publish *pub)
{
    size_t rem = publish_rem(pub->topic.len, pub->qos, pub->payload.len);
    size_t total = packet_size(rem);
    uint8_t first;
    uint8_t *p;

    if (rem == 0 || (pub->qos && pub->packet_id == 0)) /* [MQTT-2.3.1-1] */
        return 0;
    if (total == 0 || total > cap)
        return total;
    first = (uint8_t)(MQTT_PUBLISH << 4 | (pub->dup ? 0x08 : 0) | pub->qos << 1 |
                      (pub->retain ? 0x01 : 0));
    p = put_header(buf, first, rem);
    p = mqtt__put_str(p, pub->topic);
    if (pub->qos)
        p = mqtt__put16(p, pub->packet_id);
    if (pub->payload.len)
        memcpy(p, pub->payload.p, pub->payload.len);
    return total;
}

size_t mqtt_encode_publish_header(uint8_t *buf, size_t cap, struct mqtt_str topic, uint8_t qos,
                                  bool retain, size_t payload_len, size_t *pid_offset)
{
    size_t rem = publish_rem(topic.len, qos, payload_len);
    size_t total = packet_size(rem);
    size_t hlen;
    uint8_t *p;

    *pid_offset = 0;
    if (rem == 0 || total == 0)
        return 0;
    hlen = total - payload_len;
    if (qos)
        *pid_offset = hlen - 2;
    if (hlen > cap)
        return hlen;
    p = put_header(buf, (uint8_t)(MQTT_PUBLISH << 4 | qos << 1 | (retain ? 0x01 : 0)), rem);
    p = mqtt__put_str(p, topic);
    if (qos)
        mqtt__put16(p, 0); /* patched per subscriber */
    return hlen;
}

size_t mqtt_encode_ack(uint8_t *buf, size_t cap, enum mqtt_type type, uint16_t packet_id)
{
    uint8_t flags = 0;

    switch (type) {
    case MQTT_PUBREL:
        flags = 0x02; /* [MQTT-3.6.1-1] */
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBCOMP:
    case MQTT_UNSUBACK:
        break;
    default:
        return 0;
    }
    if (packet_id == 0)
        return 0; /* [MQTT-2.3.1-1] */
    if (cap >= 4) {
        buf[0] = (uint8_t)(type << 4 | flags);
        buf[1] = 2;
        mqtt__put16(buf + 2, packet_id);
    }
    return 4;
}

/* SUBSCRIBE (with_qos) or UNSUBSCRIBE from a list of filters. */
static size_t encode_topics(uint8_t *buf, size_t cap, enum mqtt_type type, uint16_t packet_id,
                            const struct mqtt_sub *subs, size_t n, bool with_qos)
{
    size_t rem = 2, total;
    uint8_t *p;

    if (n == 0) /* [MQTT-3.8.3-3] [MQTT-3.10.3-2] */
        return 0;
    if (packet_id == 0) /* [MQTT-2.3.1-1] */
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (subs[i].filter.len > MQTT__MAX_STRING || (with_qos && subs[i].qos > 2))
            return 0;
        rem += 2 + subs[i].filter.len + (with_qos ? 1 : 0);
        if (rem > MQTT_MAX_REMAINING)
            return 0;
    }
    total = packet_size(rem);
    if (total > cap)
        return total;
    p = put_header(buf, (uint8_t)(type << 4 | 0x02), rem); /* [MQTT-3.8.1-1] [MQTT-3.10.1-1] */
    p = mqtt__put16(p, packet_id);
    for (size_t i = 0; i < n; i++) {
        p = mqtt__put_str(p, subs[i].filter);
        if (with_qos)
            *p++ = subs[i].qos;
    }
    return total;
}

size_t mqtt_encode_subscribe(uint8_t *buf, size_t cap, uint16_t packet_id,
                             const struct mqtt_sub *subs, size_t n)
{
    return encode_topics(buf, cap, MQTT_SUBSCRIBE, packet_id, subs, n, true);
}

size_t mqtt_encode_unsubscribe(uint8_t *buf, size_t cap, uint16_t packet_id,
                               const struct mqtt_sub *subs, size_t n)
{
    return encode_topics(buf, cap, MQTT_UNSUBSCRIBE, packet_id, subs, n, false);
}

size_t mqtt_encode_suback(uint8_t *buf, size_t cap, uint16_t packet_id, const uint8_t *codes,
                          size_t n)
{
    size_t rem = 2 + n, total;
    uint8_t *p;

    if (n == 0 || packet_id == 0 || n > MQTT_MAX_REMAINING - 2)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (codes[i] > 2 && codes[i] != MQTT_SUBACK_FAILURE)
            return 0; /* [MQTT-3.9.3-2] */
    }
    total = packet_size(rem);
    if (total > cap)
        return total;
    p = put_header(buf, MQTT_SUBACK << 4, rem);
    p = mqtt__put16(p, packet_id);
    memcpy(p, codes, n);
    return total;
}

size_t mqtt_encode_empty(uint8_t *buf, size_t cap, enum mqtt_type type)
{
    if (type != MQTT_PINGREQ && type != MQTT_PINGRESP && type != MQTT_DISCONNECT)
        return 0;
    if (cap >= 2) {
        buf[0] = (uint8_t)(type << 4);
        buf[1] = 0;
    }
    return 2;
}

/* SUBSCRIBE/UNSUBSCRIBE from a decoded packet: the raw payload goes back unchanged. */
static size_t encode_raw_topics(uint8_t *buf, size_t cap, const struct mqtt_packet *pkt)
{
    const struct mqtt_topics *t = &pkt->u.topics;
    size_t rem, total;
    uint8_t *p;

    if (t->payload.len == 0 || t->packet_id == 0 || t->payload.len > MQTT_MAX_REMAINING - 2)
        return 0;
    rem = 2 + t->payload.len;
    total = packet_size(rem);
    if (total > cap)
        return total;
    p = put_header(buf, (uint8_t)(pkt->type << 4 | 0x02), rem);
    p = mqtt__put16(p, t->packet_id);
    memcpy(p, t->payload.p, t->payload.len);
    return total;
}

size_t mqtt_encode_packet(uint8_t *buf, size_t cap, const struct mqtt_packet *pkt)
{
    switch (pkt->type) {
    case MQTT_CONNECT:
        return mqtt_encode_connect(buf, cap, &pkt->u.connect);
    case MQTT_CONNACK:
        return mqtt_encode_connack(buf, cap, pkt->u.connack.session_present,
                                   pkt->u.connack.return_code);
    case MQTT_PUBLISH:
        return mqtt_encode_publish(buf, cap, &pkt->u.publish);
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
    case MQTT_UNSUBACK:
        return mqtt_encode_ack(buf, cap, pkt->type, pkt->u.ack.packet_id);
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        return encode_raw_topics(buf, cap, pkt);
    case MQTT_SUBACK:
        return mqtt_encode_suback(buf, cap, pkt->u.suback.packet_id, pkt->u.suback.codes.p,
                                  pkt->u.suback.codes.len);
    case MQTT_PINGREQ:
    case MQTT_PINGRESP:
    case MQTT_DISCONNECT:
        return mqtt_encode_empty(buf, cap, pkt->type);
    }
    return 0;
}
