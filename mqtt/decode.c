/*
 * decode.c — one MQTT control packet from (buf, len), as views into buf.
 *
 * Order of checks: the first byte (type, reserved flags, PUBLISH QoS) is judged as soon as it
 * arrives; the remaining length as soon as its bytes arrive (over four bytes, or over the
 * caller's maximum, even before the body); then, once the whole packet is in buf, the body.
 * So a hostile peer cannot make the caller buffer a body that will be refused anyway.
 */
#include "internal.h"

/*
 * Required fixed-header flags per packet type [MQTT-2.2.2-1] [MQTT-2.2.2-2]: 0 everywhere but
 * PUBREL [MQTT-3.6.1-1], SUBSCRIBE [MQTT-3.8.1-1] and UNSUBSCRIBE [MQTT-3.10.1-1], which carry
 * 0b0010. PUBLISH (-1) carries DUP, QoS and RETAIN. Types 0 and 15 are reserved (-2).
 */
static const int8_t required_flags[16] = {
    -2, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, -2,
};

static int check_first_byte(uint8_t b0)
{
    int want = required_flags[b0 >> 4];
    unsigned flags = b0 & 0x0f;

    if (want == -2)
        return -MQTT_ETYPE; /* reserved type [MQTT-2.2.1] */
    if (want == -1) {
        if ((flags & 0x06) == 0x06)
            return -MQTT_EQOS; /* [MQTT-3.3.1-4] */
        return 0;
    }
    if (flags != (unsigned)want)
        return -MQTT_EFLAGS; /* [MQTT-2.2.2-1] [MQTT-2.2.2-2] */
    return 0;
}

/*
 * The remaining length at buf[1..]. Returns the fixed header's length; or -MQTT_EPARTIAL with
 * *rem set to the value read so far (a lower bound of the final value); or -MQTT_EREMLEN.
 */
static inline int fixed_header(const uint8_t *buf, size_t len, size_t *rem)
{
    size_t v = 0;

    for (size_t i = 1; i < MQTT_MAX_FIXED_HEADER; i++) {
        if (i >= len) {
            *rem = v;
            return -MQTT_EPARTIAL;
        }
        v |= (size_t)(buf[i] & 0x7f) << (7 * (i - 1));
        if (!(buf[i] & 0x80)) {
            *rem = v;
            return (int)i + 1;
        }
    }
    return -MQTT_EREMLEN; /* at most four bytes [MQTT-2.2.3] */
}

int mqtt_decode_fixed_header(const uint8_t *buf, size_t len, uint8_t *type, uint8_t *flags,
                             size_t *remaining)
{
    size_t rem = 0;
    int hl;

    if (len == 0)
        return -MQTT_EPARTIAL;
    hl = fixed_header(buf, len, &rem);
    if (hl < 0)
        return hl;
    *type = buf[0] >> 4;
    *flags = buf[0] & 0x0f;
    *remaining = rem;
    return hl;
}

/* A cursor over the body. Every read checks against end: nothing runs past the packet. */
struct rd {
    const uint8_t *p;
    const uint8_t *end;
};

static inline size_t rd_left(const struct rd *r)
{
    return (size_t)(r->end - r->p);
}

/* A two-byte length and that many bytes [MQTT-1.5.3]; a length past the end is malformed. */
static inline int rd_str(struct rd *r, struct mqtt_str *s)
{
    size_t n;

    if (rd_left(r) < 2)
        return -MQTT_ESHORT;
    n = mqtt__get16(r->p);
    if (rd_left(r) - 2 < n)
        return -MQTT_ESHORT;
    s->p = r->p + 2;
    s->len = n;
    r->p += 2 + n;
    return 0;
}

static bool str_is(struct mqtt_str s, const char *lit, size_t n)
{
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

/*
 * CONNECT [MQTT-3.1]. -MQTT_EPROTO_LEVEL leaves the protocol name and level filled (the rest
 * zero: a newer protocol's body cannot be read as 3.1.1) so the server can answer CONNACK 1.
 */
static int decode_connect(const uint8_t *p, size_t n, struct mqtt_packet *out)
{
    struct mqtt_connect *c = &out->u.connect;
    struct rd r = {p, p + n};
    uint8_t f;
    int rc;

    memset(c, 0, sizeof *c);
    rc = rd_str(&r, &c->protocol_name);
    if (rc < 0)
        goto out;
    if (rd_left(&r) < 1) {
        rc = -MQTT_ESHORT;
        goto out;
    }
    c->protocol_level = *r.p++;
    /* Not in the standard: a bridge between brokers sets the level's top bit (Mosquitto's
     * try_private). A server that does not know it answers CONNACK 1, and the bridge retries
     * without it. */
    if (c->protocol_level == 0x84 || c->protocol_level == 0x83) {
        c->bridge = true;
        c->protocol_level &= 0x7f;
    }
    /* MQTT 3.1.1 is "MQTT" level 4; MQTT 3.1 is "MQIsdp" level 3 */
    if (str_is(c->protocol_name, "MQTT", 4)) {
        if (c->protocol_level != 4)
            rc = -MQTT_EPROTO_LEVEL; /* answer CONNACK 1 [MQTT-3.1.2-2] */
    } else if (str_is(c->protocol_name, "MQIsdp", 6)) {
        if (c->protocol_level != 3)
            rc = -MQTT_EPROTO_LEVEL; /* answer CONNACK 1 [MQTT-3.1.2-2] */
    } else {
        rc = -MQTT_EPROTO_NAME; /* [MQTT-3.1.2-1] */
    }
    if (rc < 0)
        goto out;

    if (rd_left(&r) < 3) {
        rc = -MQTT_ESHORT;
        goto out;
    }
    f = *r.p++;
    c->keepalive = mqtt__get16(r.p);
    r.p += 2;
    c->clean_session = f & 0x02;
    c->will_flag = f & 0x04;
    c->will_qos = (f >> 3) & 0x03;
    c->will_retain = f & 0x20;
    c->has_password = f & 0x40;
    c->has_username = f & 0x80;
    if (f & 0x01) {
        rc = -MQTT_ECONNECT_RESERVED; /* [MQTT-3.1.2-3] */
        goto out;
    }
    if (!c->will_flag && (c->will_qos || c->will_retain)) {
        rc = -MQTT_EWILL_FLAGS; /* [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15] */
        goto out;
    }
    if (c->will_qos == 3) {
        rc = -MQTT_EWILL_QOS; /* [MQTT-3.1.2-14] */
        goto out;
    }
    if (c->has_password && !c->has_username) {
        rc = -MQTT_EPASSWORD; /* [MQTT-3.1.2-22] */
        goto out;
    }

    /* The payload fields, in this order [MQTT-3.1.3-1] */
    rc = rd_str(&r, &c->client_id);
    if (rc < 0)
        goto out;
    rc = mqtt_utf8_validate(c->client_id.p, c->client_id.len); /* [MQTT-3.1.3-4] */
    if (rc < 0)
        goto out;
    if (c->will_flag) {
        rc = rd_str(&r, &c->will_topic);
        if (rc < 0)
            goto out;
        /* [MQTT-3.1.3-10]; it is published to, so it is a topic name [MQTT-3.3.2-2] */
        rc = mqtt_topic_name_validate(c->will_topic.p, c->will_topic.len);
        if (rc < 0)
            goto out;
        rc = rd_str(&r, &c->will_payload); /* binary [MQTT-3.1.3.3] */
        if (rc < 0)
            goto out;
    }
    if (c->has_username) {
        rc = rd_str(&r, &c->username);
        if (rc < 0)
            goto out;
        rc = mqtt_utf8_validate(c->username.p, c->username.len); /* [MQTT-3.1.3-11] */
        if (rc < 0)
            goto out;
    }
    if (c->has_password) {
        rc = rd_str(&r, &c->password); /* binary [MQTT-3.1.3.5] */
        if (rc < 0)
            goto out;
    }
    if (rd_left(&r) != 0)
        rc = -MQTT_ELONG;
    /*
     * The client id's length is left to the server, which answers CONNACK 2 itself: empty with
     * clean session 0 [MQTT-3.1.3-8], or an MQTT 3.1 id outside 1..23 bytes.
     */
out:
    return rc;
}

static int decode_connack(const uint8_t *p, size_t n, struct mqtt_packet *out)
{
    if (n < 2)
        return -MQTT_ESHORT;
    if (n > 2)
        return -MQTT_ELONG;
    if (p[0] & 0xfe)
        return -MQTT_ECONNACK_RESERVED; /* [MQTT-3.2.2-1] */
    out->u.connack.session_present = p[0] & 0x01;
    out->u.connack.return_code = p[1];
    return 0;
}

/* The hot path: keep it short. */
static int decode_publish(const uint8_t *p, size_t n, struct mqtt_packet *out)
{
    struct mqtt_publish *pub = &out->u.publish;
    uint8_t f = out->flags;
    size_t tlen, off;
    int rc;

    pub->qos = (f >> 1) & 0x03; /* 3 was refused with the first byte */
    pub->dup = f & 0x08;
    pub->retain = f & 0x01;
    if (n < 2)
        return -MQTT_ESHORT;
    tlen = mqtt__get16(p);
    off = 2 + tlen + (pub->qos ? 2 : 0);
    if (off > n)
        return -MQTT_ESHORT;
    pub->topic.p = p + 2;
    pub->topic.len = tlen;
    rc = mqtt_topic_name_validate(p + 2, tlen); /* [MQTT-3.3.2-1] [MQTT-3.3.2-2] */
    if (rc < 0)
        return rc;
    pub->packet_id = 0;
    if (pub->qos) {
        pub->packet_id = mqtt__get16(p + 2 + tlen);
        if (pub->packet_id == 0)
            return -MQTT_EPACKET_ID; /* [MQTT-2.3.1-1] */
    }
    pub->payload.p = p + off;
    pub->payload.len = n - off;
    return 0;
}

int mqtt_decode_publish_head(const uint8_t *buf, size_t len, struct mqtt_publish *out,
                             size_t *total)
{
    struct mqtt_packet pkt;
    size_t rem = 0, head, tlen, have;
    uint8_t type, flags;
    int hl = mqtt_decode_fixed_header(buf, len, &type, &flags, &rem);
    int rc;

    if (hl < 0) {
        rc = hl;
        goto out;
    }
    if (type != MQTT_PUBLISH) {
        rc = -MQTT_ETYPE;
        goto out;
    }
    if (((flags >> 1) & 0x03) == 3) {
        rc = -MQTT_EQOS; /* [MQTT-3.3.1-4] */
        goto out;
    }
    if (len < (size_t)hl + 2) {
        rc = -MQTT_EPARTIAL;
        goto out;
    }
    tlen = mqtt__get16(buf + hl);
    head = 2 + tlen + (((flags >> 1) & 0x03) ? 2 : 0);
    if (head > rem) {
        rc = -MQTT_ESHORT;
        goto out;
    }
    if (len < (size_t)hl + head) {
        rc = -MQTT_EPARTIAL;
        goto out;
    }
    /* the head alone, as if it were the whole packet: the same checks as a full decode */
    have = head;
    pkt.flags = flags;
    rc = decode_publish(buf + hl, have, &pkt);
    if (rc < 0)
        goto out;
    *out = pkt.u.publish;
    out->payload.p = NULL;
    out->payload.len = rem - head;
    *total = (size_t)hl + rem;
    rc = hl + (int)head;
out:
    return rc;
}

/*
 * PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK: a packet identifier and nothing else. It echoes
 * the identifier of a packet that needed a non-zero one [MQTT-2.3.1-1] [MQTT-2.3.1-6], so 0
 * is refused here too.
 */
static int decode_ack(const uint8_t *p, size_t n, struct mqtt_packet *out)
{
    if (n < 2)
        return -MQTT_ESHORT;
    if (n > 2)
        return -MQTT_ELONG;
    out->u.ack.packet_id = mqtt__get16(p);
    if (out->u.ack.packet_id == 0)
        return -MQTT_EPACKET_ID; /* [MQTT-2.3.1-1] */
    return 0;
}

/*
 * SUBSCRIBE and UNSUBSCRIBE: the whole payload is validated here so that mqtt_topics_next()
 * cannot fail later.
 */
static int decode_topics(const uint8_t *p, size_t n, struct mqtt_packet *out, bool with_qos)
{
    struct mqtt_topics *t = &out->u.topics;
    struct rd r = {p, p + n};
    struct mqtt_str filter;

    t->with_qos = with_qos;
    t->count = 0;
    if (n < 2)
        return -MQTT_ESHORT;
    t->packet_id = mqtt__get16(p);
    if (t->packet_id == 0)
        return -MQTT_EPACKET_ID; /* [MQTT-2.3.1-1] */
    r.p += 2;
    t->payload.p = r.p;
    t->payload.len = n - 2;
    if (rd_left(&r) == 0) /* [MQTT-3.8.3-3] [MQTT-3.10.3-2] */
        return -MQTT_EEMPTY_SUB;
    while (rd_left(&r) > 0) {
        int rc = rd_str(&r, &filter);
        if (rc < 0)
            return rc;
        /* [MQTT-3.8.3-1] [MQTT-3.10.3-1] [MQTT-4.7.1-2] [MQTT-4.7.1-3] */
        rc = mqtt_topic_filter_validate(filter.p, filter.len);
        if (rc < 0)
            return rc;
        if (with_qos) {
            if (rd_left(&r) < 1)
                return -MQTT_ESHORT;
            uint8_t q = *r.p++;
            if ((q & 0xfc) || q == 3)
                return -MQTT_ESUB_QOS; /* [MQTT-3.8.3-4] */
        }
        t->count++;
    }
    return 0;
}

static int decode_suback(const uint8_t *p, size_t n, struct mqtt_packet *out)
{
    struct mqtt_suback *s = &out->u.suback;

    if (n < 3) /* a packet identifier and at least one code [MQTT-3.9.3-1] */
        return -MQTT_ESHORT;
    s->packet_id = mqtt__get16(p);
    if (s->packet_id == 0)
        return -MQTT_EPACKET_ID; /* [MQTT-2.3.1-1] [MQTT-2.3.1-7] */
    s->codes.p = p + 2;
    s->codes.len = n - 2;
    for (size_t i = 0; i < s->codes.len; i++) {
        uint8_t c = s->codes.p[i];
        if (c > 2 && c != MQTT_SUBACK_FAILURE)
            return -MQTT_ESUBACK_CODE; /* [MQTT-3.9.3-2] */
    }
    return 0;
}

int mqtt_decode(const uint8_t *buf, size_t len, size_t max_packet, struct mqtt_packet *out)
{
    size_t rem = 0;
    const uint8_t *body;
    int hl, rc;

    if (len == 0)
        return -MQTT_EPARTIAL;
    rc = check_first_byte(buf[0]);
    if (rc < 0)
        return rc;
    if (max_packet == 0 || max_packet > MQTT_MAX_REMAINING)
        max_packet = MQTT_MAX_REMAINING;
    hl = fixed_header(buf, len, &rem);
    if (rem > max_packet)
        return -MQTT_ETOOLARGE; /* refused before the body arrives */
    if (hl < 0)
        return hl;
    if (len - (size_t)hl < rem)
        return -MQTT_EPARTIAL;

    out->type = (enum mqtt_type)(buf[0] >> 4);
    out->flags = buf[0] & 0x0f;
    out->remaining_length = rem;
    body = buf + hl;
    switch (out->type) {
    case MQTT_PUBLISH:
        rc = decode_publish(body, rem, out);
        break;
    case MQTT_CONNECT:
        rc = decode_connect(body, rem, out);
        break;
    case MQTT_CONNACK:
        rc = decode_connack(body, rem, out);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
    case MQTT_UNSUBACK:
        rc = decode_ack(body, rem, out);
        break;
    case MQTT_SUBSCRIBE:
        rc = decode_topics(body, rem, out, true);
        break;
    case MQTT_UNSUBSCRIBE:
        rc = decode_topics(body, rem, out, false);
        break;
    case MQTT_SUBACK:
        rc = decode_suback(body, rem, out);
        break;
    case MQTT_PINGREQ:
    case MQTT_PINGRESP:
    case MQTT_DISCONNECT:
        rc = rem == 0 ? 0 : -MQTT_ELONG; /* no variable header, no payload */
        break;
    default:
        rc = -MQTT_ETYPE; /* unreachable: check_first_byte() refused it */
        break;
    }
    if (rc < 0)
        return rc;
    return hl + (int)rem;
}

void mqtt_topics_iter_init(struct mqtt_topics_iter *it, const struct mqtt_topics *t)
{
    it->p = t->payload.p;
    it->end = t->payload.len ? t->payload.p + t->payload.len : t->payload.p;
    it->with_qos = t->with_qos;
}

bool mqtt_topics_next(struct mqtt_topics_iter *it, struct mqtt_str *filter, uint8_t *qos)
{
    size_t n;

    if (it->end - it->p < 2)
        return false;
    n = mqtt__get16(it->p);
    if ((size_t)(it->end - it->p) - 2 < n)
        return false; /* only on a payload mqtt_decode() did not accept */
    filter->p = it->p + 2;
    filter->len = n;
    it->p += 2 + n;
    *qos = 0;
    if (it->with_qos) {
        if (it->p >= it->end)
            return false;
        *qos = *it->p++;
    }
    return true;
}
