/*
 * mqtt.h — the MQTT 3.1.1 (and 3.1) codec: decode, encode, validate, match.
 *
 * Pure code: no I/O, no globals, no socket headers, no allocation. Decoding follows
 * picohttpparser: (buf, len) in; the packet comes back as views into the caller's buffer,
 * valid for as long as the caller keeps those bytes unchanged; "partial" is an answer.
 *
 * Errors are negative codes (-MQTT_E...), each naming one rule; mqtt_error_class() groups them
 * into malformed / protocol violation / too large, and mqtt_strerror() describes them.
 */
#ifndef CAIRN_MQTT_H
#define CAIRN_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mqtt_type {
    MQTT_CONNECT = 1,
    MQTT_CONNACK = 2,
    MQTT_PUBLISH = 3,
    MQTT_PUBACK = 4,
    MQTT_PUBREC = 5,
    MQTT_PUBREL = 6,
    MQTT_PUBCOMP = 7,
    MQTT_SUBSCRIBE = 8,
    MQTT_SUBACK = 9,
    MQTT_UNSUBSCRIBE = 10,
    MQTT_UNSUBACK = 11,
    MQTT_PINGREQ = 12,
    MQTT_PINGRESP = 13,
    MQTT_DISCONNECT = 14,
};

/* CONNACK return codes [MQTT-3.2.2.3] */
enum mqtt_connack_rc {
    MQTT_CONNACK_ACCEPTED = 0,
    MQTT_CONNACK_BAD_PROTOCOL = 1,
    MQTT_CONNACK_ID_REJECTED = 2,
    MQTT_CONNACK_UNAVAILABLE = 3,
    MQTT_CONNACK_BAD_CREDENTIALS = 4,
    MQTT_CONNACK_NOT_AUTHORIZED = 5,
};

#define MQTT_SUBACK_FAILURE   0x80
#define MQTT_MAX_REMAINING    268435455u /* four bytes of remaining length */
#define MQTT_MAX_FIXED_HEADER 5u

/*
 * Error codes, returned negated. Grouped by class; see mqtt_error_class().
 * The list is open: add a code when a rule needs a distinct answer, never reuse one.
 */
enum mqtt_err {
    MQTT_OK = 0,
    MQTT_EPARTIAL = 1, /* not an error: more bytes are needed */
    /* malformed: the bytes do not form a packet */
    MQTT_EREMLEN = 10, /* remaining length over four bytes [MQTT-2.2.3] */
    MQTT_ESHORT,       /* a field runs past the remaining length */
    MQTT_ELONG,        /* bytes left over after the last field */
    MQTT_EUTF8,        /* ill-formed UTF-8 [MQTT-1.5.3-1] */
    MQTT_EUTF8_NUL,    /* U+0000 in a string [MQTT-1.5.3-2] */
    MQTT_ETYPE,        /* packet type 0 or 15 */
    /* protocol violation: well-formed bytes that break a rule */
    MQTT_EFLAGS = 30,       /* reserved fixed-header flag bits wrong [MQTT-2.2.2-1/2] */
    MQTT_EQOS,              /* QoS 3 [MQTT-3.3.1-4] */
    MQTT_EPROTO_NAME,       /* protocol name not MQTT/MQIsdp [MQTT-3.1.2-1] */
    MQTT_EPROTO_LEVEL,      /* protocol level not 4 (or 3 for MQIsdp) [MQTT-3.1.2-2] */
    MQTT_ECONNECT_RESERVED, /* CONNECT reserved flag set [MQTT-3.1.2-3] */
    MQTT_EWILL_FLAGS,       /* will QoS/retain without will flag [MQTT-3.1.2-11/13/15] */
    MQTT_EWILL_QOS,         /* will QoS 3 [MQTT-3.1.2-14] */
    MQTT_EPASSWORD,         /* password without username [MQTT-3.1.2-22] */
    MQTT_EPACKET_ID,        /* packet identifier 0 where one is required [MQTT-2.3.1-1] */
    MQTT_EEMPTY_SUB,        /* SUBSCRIBE/UNSUBSCRIBE without a topic [MQTT-3.8.3-3, 3.10.3-2] */
    MQTT_ESUB_QOS,          /* SUBSCRIBE requested QoS reserved bits or 3 [MQTT-3.8.3-4] */
    MQTT_ETOPIC_EMPTY,      /* zero-length topic name/filter [MQTT-4.7.3-1] */
    MQTT_ETOPIC_WILDCARD,   /* wildcard in a topic name [MQTT-3.3.2-2] */
    MQTT_EFILTER,           /* '#' not last and alone, '+' not alone [MQTT-4.7.1-2/3] */
    MQTT_ECONNACK_RESERVED, /* CONNACK reserved bits set [MQTT-3.2.2-1] */
    MQTT_ECLIENT_ID,        /* client id refused (for a server's own checks; not from decode) */
    MQTT_ESUBACK_CODE,      /* SUBACK return code not 0, 1, 2 or 0x80 [MQTT-3.9.3-2] */
    /* too large */
    MQTT_ETOOLARGE = 60, /* remaining length over the caller's maximum */
    /* encoding */
    MQTT_EINVAL = 70, /* encoder given values it cannot represent */
};

enum mqtt_err_class {
    MQTT_CLASS_OK,
    MQTT_CLASS_PARTIAL,
    MQTT_CLASS_MALFORMED,
    MQTT_CLASS_PROTOCOL,
    MQTT_CLASS_TOO_LARGE,
    MQTT_CLASS_INVALID,
};

/* A view of bytes inside a caller's buffer. Borrowed: valid while that buffer is. */
struct mqtt_str {
    const uint8_t *p;
    size_t len;
};

struct mqtt_connect {
    struct mqtt_str protocol_name; /* "MQTT" or "MQIsdp" */
    uint8_t protocol_level;        /* 4 (3.1.1) or 3 (3.1) */
    /* The level had its top bit set (0x84, 0x83): a broker's bridge that asks not to get back
     * what it publishes (Mosquitto's try_private); protocol_level is the level without it. */
    bool bridge;
    bool clean_session;
    bool will_flag;
    uint8_t will_qos;
    bool will_retain;
    bool has_username;
    bool has_password;
    uint16_t keepalive; /* seconds */
    struct mqtt_str client_id;
    struct mqtt_str will_topic;
    struct mqtt_str will_payload;
    struct mqtt_str username;
    struct mqtt_str password;
};

struct mqtt_connack {
    bool session_present;
    uint8_t return_code;
};

struct mqtt_publish {
    uint8_t qos;
    bool dup;
    bool retain;
    uint16_t packet_id; /* 0 when qos == 0 */
    struct mqtt_str topic;
    struct mqtt_str payload;
};

/* PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK */
struct mqtt_ack {
    uint16_t packet_id;
};

/*
 * SUBSCRIBE and UNSUBSCRIBE: the payload is validated whole by mqtt_decode(), then walked
 * with mqtt_topics_next(), which cannot fail on a decoded packet.
 */
struct mqtt_topics {
    uint16_t packet_id;
    size_t count;            /* number of filters */
    struct mqtt_str payload; /* raw payload */
    bool with_qos;           /* SUBSCRIBE: each filter is followed by a QoS byte */
};

struct mqtt_suback {
    uint16_t packet_id;
    struct mqtt_str codes; /* one byte per filter: 0, 1, 2 or 0x80 */
};

struct mqtt_packet {
    enum mqtt_type type;
    uint8_t flags; /* low four bits of the first byte */
    size_t remaining_length;
    union {
        struct mqtt_connect connect;
        struct mqtt_connack connack;
        struct mqtt_publish publish;
        struct mqtt_ack ack;
        struct mqtt_topics topics; /* SUBSCRIBE, UNSUBSCRIBE */
        struct mqtt_suback suback;
    } u;
};

/* Iterator over the filters of a decoded SUBSCRIBE/UNSUBSCRIBE. */
struct mqtt_topics_iter {
    const uint8_t *p;
    const uint8_t *end;
    bool with_qos;
};

/* One (filter, QoS) pair, for encoding SUBSCRIBE/UNSUBSCRIBE. */
struct mqtt_sub {
    struct mqtt_str filter;
    uint8_t qos;
};

/* ---- decode ---------------------------------------------------------------------------- */

/*
 * Decode the fixed header only. Returns the header's length (2..5) and sets *type, *flags
 * and *remaining; -MQTT_EPARTIAL when more bytes are needed; -MQTT_EREMLEN when the
 * remaining length runs over four bytes.
 */
int mqtt_decode_fixed_header(const uint8_t *buf, size_t len, uint8_t *type, uint8_t *flags,
                             size_t *remaining);

/*
 * The head of a PUBLISH whose body has not all arrived: the fixed header, the topic and the
 * packet id, checked as mqtt_decode checks them. For a PUBLISH too large to keep, which the
 * server answers from its head and then skips (message_size_limit). Returns the head's length
 * (> 0) with out filled (payload.p NULL, payload.len: the payload bytes the packet announces)
 * and *total the whole packet's length; -MQTT_EPARTIAL while the head is incomplete; another
 * negative code when it is malformed.
 */
int mqtt_decode_publish_head(const uint8_t *buf, size_t len, struct mqtt_publish *out,
                             size_t *total);

/*
 * Decode one whole packet from the start of buf. On success returns the number of bytes the
 * packet used (> 0) and fills *out with views into buf. Otherwise returns -MQTT_EPARTIAL
 * (wait for more bytes) or another negative code (close the connection).
 *
 * max_packet: the largest remaining length accepted (0: the protocol's maximum). Enforced as
 * soon as the fixed header is complete, before the body has arrived.
 *
 * Both client-to-server and server-to-client packets decode (a test client needs CONNACK).
 *
 * One CONNECT refusal calls for a CONNACK (return code 1) before closing: -MQTT_EPROTO_LEVEL, a
 * known protocol name with another level [MQTT-3.1.2-2]. It leaves out->type == MQTT_CONNECT
 * and out->u.connect's protocol name and level filled, the rest zeroed (a newer protocol's body
 * cannot be read as 3.1.1); it is returned once the whole packet is in buf.
 * The client id's length is not judged here: the server answers CONNACK 2 itself for an empty
 * id with clean session 0 [MQTT-3.1.3-8] or an MQTT 3.1 id outside 1..23 bytes.
 */
int mqtt_decode(const uint8_t *buf, size_t len, size_t max_packet, struct mqtt_packet *out);

void mqtt_topics_iter_init(struct mqtt_topics_iter *it, const struct mqtt_topics *t);
/* Next filter (and its QoS for SUBSCRIBE, else 0); false at the end. */
bool mqtt_topics_next(struct mqtt_topics_iter *it, struct mqtt_str *filter, uint8_t *qos);

/* ---- encode ---------------------------------------------------------------------------- */
/*
 * Every encoder writes into buf when the whole packet fits in cap bytes and returns the size
 * the packet needs either way (snprintf-style). A return of 0 means the values cannot be
 * encoded (a string over 65535 bytes, a packet over the protocol's maximum) or form no valid
 * packet (QoS 3, packet identifier 0 where one is required, no filter in a SUBSCRIBE or
 * UNSUBSCRIBE, no code or a reserved one in a SUBACK, a password without a user name).
 * Strings are not validated here (UTF-8, topic syntax): use mqtt_topic_*_validate().
 */
size_t mqtt_encode_connect(uint8_t *buf, size_t cap, const struct mqtt_connect *c);
size_t mqtt_encode_connack(uint8_t *buf, size_t cap, bool session_present, uint8_t rc);
size_t mqtt_encode_publish(uint8_t *buf, size_t cap, const struct mqtt_publish *p);
/* PUBACK, PUBREC, PUBREL (flags 0x2 set for it), PUBCOMP, UNSUBACK */
size_t mqtt_encode_ack(uint8_t *buf, size_t cap, enum mqtt_type type, uint16_t packet_id);
size_t mqtt_encode_subscribe(uint8_t *buf, size_t cap, uint16_t packet_id,
                             const struct mqtt_sub *subs, size_t n);
size_t mqtt_encode_unsubscribe(uint8_t *buf, size_t cap, uint16_t packet_id,
                               const struct mqtt_sub *subs, size_t n);
size_t mqtt_encode_suback(uint8_t *buf, size_t cap, uint16_t packet_id, const uint8_t *codes,
                          size_t n);
/* PINGREQ, PINGRESP, DISCONNECT */
size_t mqtt_encode_empty(uint8_t *buf, size_t cap, enum mqtt_type type);
/* Any decoded packet back into bytes (SUBSCRIBE/UNSUBSCRIBE from their raw payload). */
size_t mqtt_encode_packet(uint8_t *buf, size_t cap, const struct mqtt_packet *pkt);

/*
 * Build-once PUBLISH for many subscribers: the header of a PUBLISH for (topic, qos, retain,
 * payload length) and the offset of its packet identifier within it, so a sender can patch
 * the identifier (and the DUP bit in byte 0) per subscriber and send header + shared payload.
 * Returns the header length needed (fixed header + topic + packet id), 0 if unencodable.
 * *pid_offset is set to the identifier's offset (0 for QoS 0); the identifier is written as 0.
 */
size_t mqtt_encode_publish_header(uint8_t *buf, size_t cap, struct mqtt_str topic, uint8_t qos,
                                  bool retain, size_t payload_len, size_t *pid_offset);

/* Number of bytes the remaining-length field takes for this value (1..4), 0 if too large. */
size_t mqtt_remaining_length_size(size_t remaining);

/* ---- validate and match ---------------------------------------------------------------- */

/* UTF-8 as [MQTT-1.5.3]: well-formed, no surrogates, no U+0000. 0 or -MQTT_EUTF8[_NUL]. */
int mqtt_utf8_validate(const uint8_t *p, size_t len);
/* Topic name for PUBLISH: non-empty, valid UTF-8, no '+' or '#'. 0 or a negative code. */
int mqtt_topic_name_validate(const uint8_t *p, size_t len);
/* Topic filter for SUBSCRIBE/UNSUBSCRIBE: non-empty, UTF-8, wildcard placement. */
int mqtt_topic_filter_validate(const uint8_t *p, size_t len);
/*
 * Does topic name match topic filter? Both assumed valid. Applies the '$' rule: a filter
 * starting with a wildcard does not match a topic starting with '$' [MQTT-4.7.2-1].
 */
bool mqtt_topic_match(const uint8_t *filter, size_t flen, const uint8_t *topic, size_t tlen);

/*
 * Split a topic name or filter at '/', one level at a time: "a//b/" gives "a", "", "b", "".
 * Levels are views into s (borrowed; valid while s is). An empty s gives one empty level.
 */
struct mqtt_level_iter {
    const uint8_t *p;
    const uint8_t *end;
    bool more; /* a level (maybe empty) starts at p */
};

void mqtt_level_iter_init(struct mqtt_level_iter *it, struct mqtt_str s);
/* The next level into *level; false when there is none left. */
bool mqtt_level_next(struct mqtt_level_iter *it, struct mqtt_str *level);

/* ---- errors ---------------------------------------------------------------------------- */

/* Accepts a code with either sign. */
enum mqtt_err_class mqtt_error_class(int err);
const char *mqtt_strerror(int err);
/*
 * The CONNACK return code a server sends before closing when decoding a CONNECT failed with
 * err (either sign): MQTT_CONNACK_BAD_PROTOCOL for MQTT_EPROTO_LEVEL [MQTT-3.1.2-2],
 * MQTT_CONNACK_ID_REJECTED for MQTT_ECLIENT_ID; -1 when the connection closes without one.
 */
int mqtt_error_connack(int err);
const char *mqtt_type_name(int type);

#endif
