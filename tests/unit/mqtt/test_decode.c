/*
 * test_decode.c — mqtt/decode.c: every validation rule fed a violating packet (each test named
 * after its rule, checking the exact error), whole packets, and byte streams fed one byte at a
 * time and in random splits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "mqtt.h"

/* A byte-array literal and its length, as two arguments. */
#define B(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

static int dec(const uint8_t *b, size_t n)
{
    struct mqtt_packet pkt;

    return mqtt_decode(b, n, 0, &pkt);
}

/* ---- a small builder for hand-made packets ---------------------------------------------- */

struct bld {
    uint8_t b[1024];
    size_t n;
};

static void put8(struct bld *b, uint8_t v)
{
    assert_true(b->n < sizeof b->b);
    b->b[b->n++] = v;
}

static void put16(struct bld *b, uint16_t v)
{
    put8(b, (uint8_t)(v >> 8));
    put8(b, (uint8_t)v);
}

static void putraw(struct bld *b, const void *p, size_t n)
{
    assert_true(b->n + n <= sizeof b->b);
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void putstr(struct bld *b, const char *s)
{
    put16(b, (uint16_t)strlen(s));
    putraw(b, s, strlen(s));
}

/* Fixed header (first byte, remaining length) in front of body; returns the packet length. */
static size_t frame(uint8_t *out, uint8_t first, const struct bld *body)
{
    size_t n = 0, rem = body->n;

    out[n++] = first;
    do {
        uint8_t d = rem & 0x7f;
        rem >>= 7;
        out[n++] = rem ? (uint8_t)(d | 0x80) : d;
    } while (rem);
    memcpy(out + n, body->b, body->n);
    return n + body->n;
}

/* CONNECT with the given name, level, flags and payload strings (NULL ends the list). */
static int connect_raw(struct mqtt_packet *pkt, const char *name, uint8_t level, unsigned flags,
                       ...)
{
    struct bld body = {.n = 0};
    uint8_t out[1100];
    const char *s;
    va_list ap;

    putstr(&body, name);
    put8(&body, level);
    put8(&body, (uint8_t)flags);
    put16(&body, 60);
    va_start(ap, flags);
    while ((s = va_arg(ap, const char *)) != NULL)
        putstr(&body, s);
    va_end(ap);
    return mqtt_decode(out, frame(out, 0x10, &body), 0, pkt);
}

static int connect_simple(const char *name, uint8_t level, uint8_t flags, const char *id)
{
    struct mqtt_packet pkt;

    return connect_raw(&pkt, name, level, flags, id, NULL);
}

/* PUBLISH QoS 0 with a topic given as raw bytes. */
static int publish_topic(const void *topic, size_t tlen)
{
    struct bld body = {.n = 0};
    uint8_t out[1100];

    put16(&body, (uint16_t)tlen);
    putraw(&body, topic, tlen);
    putraw(&body, "pay", 3);
    return dec(out, frame(out, 0x30, &body));
}

/* SUBSCRIBE with one filter (raw bytes) and one QoS byte. */
static int subscribe_one(const void *filter, size_t flen, uint8_t qos)
{
    struct bld body = {.n = 0};
    uint8_t out[1100];

    put16(&body, 7);
    put16(&body, (uint16_t)flen);
    putraw(&body, filter, flen);
    put8(&body, qos);
    return dec(out, frame(out, 0x82, &body));
}

static int unsubscribe_one(const void *filter, size_t flen)
{
    struct bld body = {.n = 0};
    uint8_t out[1100];

    put16(&body, 7);
    put16(&body, (uint16_t)flen);
    putraw(&body, filter, flen);
    return dec(out, frame(out, 0xa2, &body));
}

/* ---- fixed header ------------------------------------------------------------------------ */

static void fixed_header_lengths(void **state)
{
    uint8_t type, flags;
    size_t rem;

    (void)state;
    assert_int_equal(mqtt_decode_fixed_header(B(0x30, 0x00), &type, &flags, &rem), 2);
    assert_int_equal(type, 3);
    assert_int_equal(rem, 0);
    assert_int_equal(mqtt_decode_fixed_header(B(0x32, 0x7f), &type, &flags, &rem), 2);
    assert_int_equal(flags, 2);
    assert_int_equal(rem, 127);
    assert_int_equal(mqtt_decode_fixed_header(B(0x30, 0x80, 0x01), &type, &flags, &rem), 3);
    assert_int_equal(rem, 128);
    assert_int_equal(mqtt_decode_fixed_header(B(0x30, 0xff, 0x7f), &type, &flags, &rem), 3);
    assert_int_equal(rem, 16383);
    assert_int_equal(mqtt_decode_fixed_header(B(0x30, 0x80, 0x80, 0x01), &type, &flags, &rem), 4);
    assert_int_equal(rem, 16384);
    assert_int_equal(mqtt_decode_fixed_header(B(0x30, 0xff, 0xff, 0xff, 0x7f), &type, &flags, &rem),
                     5);
    assert_int_equal(rem, MQTT_MAX_REMAINING);
    assert_int_equal(mqtt_decode_fixed_header(NULL, 0, &type, &flags, &rem), -MQTT_EPARTIAL);
    assert_int_equal(mqtt_decode_fixed_header(B(0x30), &type, &flags, &rem), -MQTT_EPARTIAL);
    assert_int_equal(mqtt_decode_fixed_header(B(0x30, 0x80), &type, &flags, &rem), -MQTT_EPARTIAL);
    assert_int_equal(mqtt_decode_fixed_header(B(0x30, 0xff, 0xff, 0xff), &type, &flags, &rem),
                     -MQTT_EPARTIAL);
}

/* [MQTT-2.2.3] the remaining length takes at most four bytes */
static void MQTT_2_2_3_remaining_length_over_four_bytes(void **state)
{
    uint8_t type, flags;
    size_t rem;

    (void)state;
    assert_int_equal(
        mqtt_decode_fixed_header(B(0x30, 0xff, 0xff, 0xff, 0xff, 0x01), &type, &flags, &rem),
        -MQTT_EREMLEN);
    assert_int_equal(dec(B(0x30, 0xff, 0xff, 0xff, 0xff, 0x01)), -MQTT_EREMLEN);
    /* the fifth byte need not even arrive */
    assert_int_equal(dec(B(0xc0, 0x80, 0x80, 0x80, 0x80)), -MQTT_EREMLEN);
}

/* the remaining length promises more than the buffer holds: wait for it */
static void remaining_length_longer_than_data_is_partial(void **state)
{
    (void)state;
    assert_int_equal(dec(B(0x30, 0x0a, 0x00, 0x03, 'a', '/', 'b')), -MQTT_EPARTIAL);
    assert_int_equal(dec(B(0x40, 0x02, 0x00)), -MQTT_EPARTIAL);
    assert_int_equal(dec(NULL, 0), -MQTT_EPARTIAL);
    assert_int_equal(dec(B(0x30)), -MQTT_EPARTIAL);
}

/* [MQTT-1.5.3] a string's length prefix must fit inside the remaining length */
static void MQTT_1_5_3_length_prefix_past_remaining_length(void **state)
{
    struct bld body = {.n = 0};
    uint8_t out[64];

    (void)state;
    assert_int_equal(dec(B(0x30, 0x03, 0x00, 0x05, 'a')), -MQTT_ESHORT);
    assert_int_equal(dec(B(0x30, 0x01, 0x00)), -MQTT_ESHORT);
    assert_int_equal(dec(B(0x32, 0x04, 0x00, 0x02, 'a', 'b')), -MQTT_ESHORT); /* no packet id */
    /* CONNECT whose client id length runs past the end */
    putstr(&body, "MQTT");
    put8(&body, 4);
    put8(&body, 0x02);
    put16(&body, 60);
    put16(&body, 10);
    putraw(&body, "abc", 3);
    assert_int_equal(dec(out, frame(out, 0x10, &body)), -MQTT_ESHORT);
    /* SUBSCRIBE filter without its QoS byte */
    assert_int_equal(dec(B(0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 'a')), -MQTT_ESHORT);
    assert_int_equal(dec(B(0x82, 0x06, 0x00, 0x01, 0x00, 0x05, 'a', 'b')), -MQTT_ESHORT);
    /* SUBACK without a code */
    assert_int_equal(dec(B(0x90, 0x02, 0x00, 0x01)), -MQTT_ESHORT);
}

static void fixed_size_packets_wrong_length(void **state)
{
    (void)state;
    assert_int_equal(dec(B(0x40, 0x01, 0x01)), -MQTT_ESHORT);
    assert_int_equal(dec(B(0x40, 0x03, 0x00, 0x01, 0x00)), -MQTT_ELONG);
    assert_int_equal(dec(B(0x20, 0x01, 0x00)), -MQTT_ESHORT);
    assert_int_equal(dec(B(0x20, 0x03, 0x00, 0x00, 0x00)), -MQTT_ELONG);
    assert_int_equal(dec(B(0xc0, 0x01, 0x00)), -MQTT_ELONG);
    assert_int_equal(dec(B(0xd0, 0x01, 0x00)), -MQTT_ELONG);
    assert_int_equal(dec(B(0xe0, 0x01, 0x00)), -MQTT_ELONG);
    assert_int_equal(dec(B(0xb0, 0x03, 0x00, 0x01, 0x00)), -MQTT_ELONG);
}

/* [MQTT-2.2.1] packet types 0 and 15 are reserved */
static void MQTT_2_2_1_reserved_packet_type(void **state)
{
    (void)state;
    assert_int_equal(dec(B(0x00, 0x00)), -MQTT_ETYPE);
    assert_int_equal(dec(B(0xf0, 0x00)), -MQTT_ETYPE);
    assert_int_equal(dec(B(0x00)), -MQTT_ETYPE); /* judged on the first byte */
}

/* [MQTT-2.2.2-1] [MQTT-2.2.2-2] every reserved flag combination but the one allowed */
static void MQTT_2_2_2_1_reserved_flags(void **state)
{
    static const uint8_t allowed[16] = {[6] = 2, [8] = 2, [10] = 2};

    (void)state;
    for (unsigned type = 1; type <= 14; type++) {
        if (type == MQTT_PUBLISH)
            continue;
        for (unsigned f = 0; f < 16; f++) {
            uint8_t b[2] = {(uint8_t)(type << 4 | f), 0};
            int rc = dec(b, 2);
            if (f == allowed[type])
                assert_int_not_equal(rc, -MQTT_EFLAGS);
            else
                assert_int_equal(rc, -MQTT_EFLAGS);
        }
    }
}

/* [MQTT-3.6.1-1] PUBREL flags must be 0010 */
static void MQTT_3_6_1_1_pubrel_flags(void **state)
{
    (void)state;
    assert_int_equal(dec(B(0x60, 0x02, 0x00, 0x01)), -MQTT_EFLAGS);
    assert_int_equal(dec(B(0x62, 0x02, 0x00, 0x01)), 4);
}

/* [MQTT-3.8.1-1] SUBSCRIBE flags must be 0010 */
static void MQTT_3_8_1_1_subscribe_flags(void **state)
{
    (void)state;
    assert_int_equal(dec(B(0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00)), -MQTT_EFLAGS);
    assert_int_equal(dec(B(0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00)), 8);
}

/* [MQTT-3.10.1-1] UNSUBSCRIBE flags must be 0010 */
static void MQTT_3_10_1_1_unsubscribe_flags(void **state)
{
    (void)state;
    assert_int_equal(dec(B(0xa0, 0x05, 0x00, 0x01, 0x00, 0x01, 'a')), -MQTT_EFLAGS);
    assert_int_equal(dec(B(0xa2, 0x05, 0x00, 0x01, 0x00, 0x01, 'a')), 7);
}

/* [MQTT-3.3.1-4] a PUBLISH must not have both QoS bits set */
static void MQTT_3_3_1_4_publish_qos3(void **state)
{
    (void)state;
    assert_int_equal(dec(B(0x36, 0x05, 0x00, 0x01, 'a', 0x00, 0x01)), -MQTT_EQOS);
    assert_int_equal(dec(B(0x3f, 0x05, 0x00, 0x01, 'a', 0x00, 0x01)), -MQTT_EQOS);
    assert_int_equal(dec(B(0x36)), -MQTT_EQOS); /* judged on the first byte */
}

/* [MQTT-3.1.2-1] the protocol name must be MQTT (or MQIsdp for 3.1) */
static void MQTT_3_1_2_1_protocol_name(void **state)
{
    (void)state;
    assert_int_equal(connect_simple("MQTX", 4, 0x02, "c"), -MQTT_EPROTO_NAME);
    assert_int_equal(connect_simple("mqtt", 4, 0x02, "c"), -MQTT_EPROTO_NAME);
    assert_int_equal(connect_simple("", 4, 0x02, "c"), -MQTT_EPROTO_NAME);
    assert_int_equal(connect_simple("MQIsd", 3, 0x02, "c"), -MQTT_EPROTO_NAME);
    assert_int_equal(mqtt_error_connack(-MQTT_EPROTO_NAME), -1);
}

/*
 * [MQTT-3.1.2-2] an unsupported level with a valid name: a distinct error, and the connect
 * struct filled enough for the server to answer CONNACK 1.
 */
static void MQTT_3_1_2_2_protocol_level(void **state)
{
    struct mqtt_packet pkt;
    int rc;

    (void)state;
    memset(&pkt, 0xa5, sizeof pkt);
    /* an MQTT 5 CONNECT: properties after the keepalive, unreadable as 3.1.1 */
    rc = mqtt_decode(B(0x10, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3c, 0x00,
                       0x00, 0x03, 'a', 'b', 'c'),
                     0, &pkt);
    assert_int_equal(rc, -MQTT_EPROTO_LEVEL);
    assert_int_equal(pkt.type, MQTT_CONNECT);
    assert_int_equal(pkt.u.connect.protocol_level, 5);
    assert_int_equal(pkt.u.connect.protocol_name.len, 4);
    assert_memory_equal(pkt.u.connect.protocol_name.p, "MQTT", 4);
    assert_int_equal(pkt.u.connect.client_id.len, 0);
    assert_int_equal(mqtt_error_connack(rc), MQTT_CONNACK_BAD_PROTOCOL);

    assert_int_equal(connect_simple("MQTT", 3, 0x02, "c"), -MQTT_EPROTO_LEVEL);
    assert_int_equal(connect_simple("MQTT", 0, 0x02, "c"), -MQTT_EPROTO_LEVEL);
    assert_int_equal(connect_simple("MQIsdp", 4, 0x02, "c"), -MQTT_EPROTO_LEVEL);
    assert_int_equal(connect_simple("MQTT", 4, 0x02, "c"), 15);
    assert_int_equal(connect_simple("MQIsdp", 3, 0x02, "c"), 17);
    /* a bridge's level (try_private): the top bit on the level its name allows, nothing else */
    assert_int_equal(connect_simple("MQTT", 0x84, 0x02, "c"), 15);
    assert_int_equal(connect_simple("MQIsdp", 0x83, 0x02, "c"), 17);
    assert_int_equal(connect_simple("MQTT", 0x83, 0x02, "c"), -MQTT_EPROTO_LEVEL);
    assert_int_equal(connect_simple("MQTT", 0x85, 0x02, "c"), -MQTT_EPROTO_LEVEL);
    assert_int_equal(connect_simple("MQIsdp", 0x84, 0x02, "c"), -MQTT_EPROTO_LEVEL);
}

/* The bridge bit is reported apart from the level. */
static void connect_bridge_bit(void **state)
{
    struct mqtt_packet pkt;

    (void)state;
    assert_int_equal(connect_raw(&pkt, "MQTT", 0x84, 0x02, "edge", NULL), 18);
    assert_true(pkt.u.connect.bridge);
    assert_int_equal(pkt.u.connect.protocol_level, 4);
    assert_int_equal(connect_raw(&pkt, "MQTT", 4, 0x02, "edge", NULL), 18);
    assert_false(pkt.u.connect.bridge);
}

/* [MQTT-3.1.2-3] the CONNECT reserved flag must be 0 */
static void MQTT_3_1_2_3_connect_reserved_flag(void **state)
{
    (void)state;
    assert_int_equal(connect_simple("MQTT", 4, 0x03, "c"), -MQTT_ECONNECT_RESERVED);
    assert_int_equal(connect_simple("MQTT", 4, 0x01, "c"), -MQTT_ECONNECT_RESERVED);
}

/* [MQTT-3.1.2-11] will flag 0: will QoS and will retain must be 0 */
static void MQTT_3_1_2_11_will_fields_without_will_flag(void **state)
{
    (void)state;
    assert_int_equal(connect_simple("MQTT", 4, 0x02 | 0x08 | 0x20, "c"), -MQTT_EWILL_FLAGS);
}

/* [MQTT-3.1.2-13] will flag 0: will QoS must be 0 */
static void MQTT_3_1_2_13_will_qos_without_will_flag(void **state)
{
    (void)state;
    assert_int_equal(connect_simple("MQTT", 4, 0x02 | 0x08, "c"), -MQTT_EWILL_FLAGS);
    assert_int_equal(connect_simple("MQTT", 4, 0x02 | 0x10, "c"), -MQTT_EWILL_FLAGS);
    assert_int_equal(connect_simple("MQTT", 4, 0x02 | 0x18, "c"), -MQTT_EWILL_FLAGS);
}

/* [MQTT-3.1.2-15] will flag 0: will retain must be 0 */
static void MQTT_3_1_2_15_will_retain_without_will_flag(void **state)
{
    (void)state;
    assert_int_equal(connect_simple("MQTT", 4, 0x02 | 0x20, "c"), -MQTT_EWILL_FLAGS);
}

/* [MQTT-3.1.2-14] will QoS must not be 3 */
static void MQTT_3_1_2_14_will_qos3(void **state)
{
    struct mqtt_packet pkt;

    (void)state;
    assert_int_equal(connect_raw(&pkt, "MQTT", 4, 0x02 | 0x04 | 0x18, "c", "t", "m", NULL),
                     -MQTT_EWILL_QOS);
    assert_int_equal(connect_raw(&pkt, "MQTT", 4, 0x02 | 0x04 | 0x10, "c", "t", "m", NULL), 21);
    assert_int_equal(pkt.u.connect.will_qos, 2);
}

/* [MQTT-3.1.2-22] a password needs a user name */
static void MQTT_3_1_2_22_password_without_username(void **state)
{
    struct mqtt_packet pkt;

    (void)state;
    assert_int_equal(connect_raw(&pkt, "MQTT", 4, 0x02 | 0x40, "c", "pw", NULL), -MQTT_EPASSWORD);
    assert_int_equal(connect_raw(&pkt, "MQTT", 4, 0x02 | 0xc0, "c", "u", "pw", NULL), 22);
}

/* [MQTT-3.1.3-4] the client id is a UTF-8 string */
static void MQTT_3_1_3_4_client_id_utf8(void **state)
{
    (void)state;
    assert_int_equal(connect_simple("MQTT", 4, 0x02, "a\xc0\xafz"), -MQTT_EUTF8);
    assert_int_equal(connect_simple("MQTT", 4, 0x02, "\xed\xa0\x80"), -MQTT_EUTF8);
    assert_int_equal(connect_simple("MQTT", 4, 0x02, "caf\xc3\xa9"), 19);
    assert_int_equal(connect_simple("MQTT", 4, 0x02, ""), 14); /* empty id: the server decides */
}

/* [MQTT-3.1.3-10] the will topic is a UTF-8 topic name: no wildcards [MQTT-3.3.2-2] */
static void MQTT_3_1_3_10_will_topic(void **state)
{
    struct mqtt_packet pkt;

    (void)state;
    assert_int_equal(connect_raw(&pkt, "MQTT", 4, 0x06, "c", "a/#", "m", NULL),
                     -MQTT_ETOPIC_WILDCARD);
    assert_int_equal(connect_raw(&pkt, "MQTT", 4, 0x06, "c", "", "m", NULL), -MQTT_ETOPIC_EMPTY);
    assert_int_equal(connect_raw(&pkt, "MQTT", 4, 0x06, "c", "a\xff", "m", NULL), -MQTT_EUTF8);
    assert_int_equal(connect_raw(&pkt, "MQTT", 4, 0x06, "c", "a/b", "m", NULL), 23);
}

/* [MQTT-3.1.3-11] the user name is a UTF-8 string */
static void MQTT_3_1_3_11_username_utf8(void **state)
{
    struct mqtt_packet pkt;

    (void)state;
    assert_int_equal(connect_raw(&pkt, "MQTT", 4, 0x82, "c", "u\xf8", NULL), -MQTT_EUTF8);
    /* the password is binary: anything goes */
    assert_int_equal(connect_raw(&pkt, "MQTT", 4, 0xc2, "c", "u", "\xff\xfe", NULL), 22);
}

/* client id lengths are the server's to judge (CONNACK 2): the decode accepts them */
static void client_id_length_left_to_server(void **state)
{
    struct mqtt_packet pkt;

    (void)state;
    assert_int_equal(connect_raw(&pkt, "MQIsdp", 3, 0x02, "abcdefghijklmnopqrstuvwx", NULL), 40);
    assert_int_equal(pkt.u.connect.client_id.len, 24);
    assert_int_equal(connect_simple("MQIsdp", 3, 0x02, ""), 16);
    assert_int_equal(connect_raw(&pkt, "MQTT", 4, 0x00, "", NULL), 14);
    assert_false(pkt.u.connect.clean_session);
    assert_int_equal(pkt.u.connect.client_id.len, 0);
    assert_int_equal(connect_simple("MQTT", 4, 0x02, "abcdefghijklmnopqrstuvwxyz0123456789"), 50);
}

static void connect_trailing_bytes(void **state)
{
    struct mqtt_packet pkt;

    (void)state;
    /* a user name present without its flag is a field left over */
    assert_int_equal(connect_raw(&pkt, "MQTT", 4, 0x02, "c", "extra", NULL), -MQTT_ELONG);
    /* flags promise a will the payload lacks */
    assert_int_equal(connect_raw(&pkt, "MQTT", 4, 0x06, "c", NULL), -MQTT_ESHORT);
    assert_int_equal(dec(B(0x10, 0x08, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02)), -MQTT_ESHORT);
    assert_int_equal(dec(B(0x10, 0x06, 0x00, 0x04, 'M', 'Q', 'T', 'T')), -MQTT_ESHORT);
}

/* [MQTT-3.2.2-1] CONNACK acknowledge flags bits 7-1 are reserved */
static void MQTT_3_2_2_1_connack_reserved(void **state)
{
    struct mqtt_packet pkt;

    (void)state;
    assert_int_equal(dec(B(0x20, 0x02, 0x02, 0x00)), -MQTT_ECONNACK_RESERVED);
    assert_int_equal(dec(B(0x20, 0x02, 0x80, 0x00)), -MQTT_ECONNACK_RESERVED);
    assert_int_equal(mqtt_decode(B(0x20, 0x02, 0x01, 0x05), 0, &pkt), 4);
    assert_true(pkt.u.connack.session_present);
    assert_int_equal(pkt.u.connack.return_code, 5);
}

/* [MQTT-2.3.1-1] a non-zero packet identifier where one is required */
static void MQTT_2_3_1_1_packet_id_zero(void **state)
{
    (void)state;
    assert_int_equal(dec(B(0x32, 0x05, 0x00, 0x01, 'a', 0x00, 0x00)), -MQTT_EPACKET_ID);
    assert_int_equal(dec(B(0x34, 0x05, 0x00, 0x01, 'a', 0x00, 0x00)), -MQTT_EPACKET_ID);
    assert_int_equal(dec(B(0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 'a', 0x00)), -MQTT_EPACKET_ID);
    assert_int_equal(dec(B(0xa2, 0x05, 0x00, 0x00, 0x00, 0x01, 'a')), -MQTT_EPACKET_ID);
    /* acknowledgements echo such an identifier, so 0 is refused there too [MQTT-2.3.1-6] */
    assert_int_equal(dec(B(0x40, 0x02, 0x00, 0x00)), -MQTT_EPACKET_ID);
    assert_int_equal(dec(B(0x50, 0x02, 0x00, 0x00)), -MQTT_EPACKET_ID);
    assert_int_equal(dec(B(0x62, 0x02, 0x00, 0x00)), -MQTT_EPACKET_ID);
    assert_int_equal(dec(B(0x70, 0x02, 0x00, 0x00)), -MQTT_EPACKET_ID);
    assert_int_equal(dec(B(0xb0, 0x02, 0x00, 0x00)), -MQTT_EPACKET_ID);
    assert_int_equal(dec(B(0x90, 0x03, 0x00, 0x00, 0x01)), -MQTT_EPACKET_ID);
    /* QoS 0 carries none: the bytes after the topic are payload */
    assert_int_equal(dec(B(0x30, 0x05, 0x00, 0x01, 'a', 0x00, 0x00)), 7);
}

/* [MQTT-3.8.3-3] a SUBSCRIBE must carry at least one filter */
static void MQTT_3_8_3_3_empty_subscribe(void **state)
{
    (void)state;
    assert_int_equal(dec(B(0x82, 0x02, 0x00, 0x01)), -MQTT_EEMPTY_SUB);
}

/* [MQTT-3.10.3-2] an UNSUBSCRIBE must carry at least one filter */
static void MQTT_3_10_3_2_empty_unsubscribe(void **state)
{
    (void)state;
    assert_int_equal(dec(B(0xa2, 0x02, 0x00, 0x01)), -MQTT_EEMPTY_SUB);
}

/* [MQTT-3.8.3-4] requested QoS: upper six bits reserved, and not 3 */
static void MQTT_3_8_3_4_subscribe_qos_byte(void **state)
{
    (void)state;
    assert_int_equal(subscribe_one("a", 1, 0x03), -MQTT_ESUB_QOS);
    assert_int_equal(subscribe_one("a", 1, 0x04), -MQTT_ESUB_QOS);
    assert_int_equal(subscribe_one("a", 1, 0x80), -MQTT_ESUB_QOS);
    assert_int_equal(subscribe_one("a", 1, 0x41), -MQTT_ESUB_QOS);
    assert_int_equal(subscribe_one("a", 1, 0x02), 8);
    /* the second of two filters is bad */
    assert_int_equal(dec(B(0x82, 0x0a, 0x00, 0x01, 0x00, 0x01, 'a', 0x01, 0x00, 0x01, 'b', 0x07)),
                     -MQTT_ESUB_QOS);
}

/* [MQTT-3.8.3-1] [MQTT-3.10.3-1] SUBSCRIBE/UNSUBSCRIBE filters are UTF-8 strings */
static void MQTT_3_8_3_1_filter_utf8(void **state)
{
    (void)state;
    assert_int_equal(subscribe_one("a/\xe0\x80\x80", 5, 0), -MQTT_EUTF8);
    assert_int_equal(subscribe_one("a\0b", 3, 0), -MQTT_EUTF8_NUL);
    assert_int_equal(unsubscribe_one("\xed\xbf\xbf", 3), -MQTT_EUTF8);
    assert_int_equal(subscribe_one("caf\xc3\xa9/+", 7, 1), 14);
}

/* [MQTT-3.3.2-1] the PUBLISH topic is a UTF-8 string [MQTT-1.5.3-1] */
static void MQTT_3_3_2_1_publish_topic_utf8(void **state)
{
    (void)state;
    assert_int_equal(publish_topic("a/\xc3", 3), -MQTT_EUTF8);           /* truncated */
    assert_int_equal(publish_topic("a/\xc1\xbf", 4), -MQTT_EUTF8);       /* overlong */
    assert_int_equal(publish_topic("\xed\xa0\x80/a", 5), -MQTT_EUTF8);   /* surrogate */
    assert_int_equal(publish_topic("\xf4\x90\x80\x80", 4), -MQTT_EUTF8); /* > U+10FFFF */
    assert_int_equal(publish_topic("\x80", 1), -MQTT_EUTF8);             /* lone continuation */
    assert_int_equal(publish_topic("aaaaaaaaaaaaaaaa\xfe", 17), -MQTT_EUTF8); /* past fast path */
    assert_int_equal(publish_topic("\xf0\x9f\x98\x80/\xe2\x82\xac", 8), 15);
}

/* [MQTT-1.5.3-2] no U+0000 in a string */
static void MQTT_1_5_3_2_nul_in_topic(void **state)
{
    (void)state;
    assert_int_equal(publish_topic("a\0b", 3), -MQTT_EUTF8_NUL);
    assert_int_equal(publish_topic("abcdefghijklmnopqrstu\0", 22), -MQTT_EUTF8_NUL);
    assert_int_equal(publish_topic("\xc0\x80", 2), -MQTT_EUTF8); /* the overlong form neither */
}

/* [MQTT-4.7.3-1] topic names and filters are at least one character */
static void MQTT_4_7_3_1_empty_topic(void **state)
{
    (void)state;
    assert_int_equal(publish_topic("", 0), -MQTT_ETOPIC_EMPTY);
    assert_int_equal(subscribe_one("", 0, 0), -MQTT_ETOPIC_EMPTY);
    assert_int_equal(unsubscribe_one("", 0), -MQTT_ETOPIC_EMPTY);
}

/* [MQTT-3.3.2-2] no wildcards in a PUBLISH topic name */
static void MQTT_3_3_2_2_wildcard_in_topic_name(void **state)
{
    (void)state;
    assert_int_equal(publish_topic("a/+", 3), -MQTT_ETOPIC_WILDCARD);
    assert_int_equal(publish_topic("#", 1), -MQTT_ETOPIC_WILDCARD);
    assert_int_equal(publish_topic("sport/tennis/player1/#", 22), -MQTT_ETOPIC_WILDCARD);
    assert_int_equal(publish_topic("abcdefgh+", 9), -MQTT_ETOPIC_WILDCARD);
}

/* [MQTT-4.7.1-2] '#' alone in the last level of a filter */
static void MQTT_4_7_1_2_multi_level_wildcard(void **state)
{
    (void)state;
    assert_int_equal(subscribe_one("a/#/b", 5, 0), -MQTT_EFILTER);
    assert_int_equal(subscribe_one("a#", 2, 0), -MQTT_EFILTER);
    assert_int_equal(unsubscribe_one("#/", 2), -MQTT_EFILTER);
    assert_int_equal(subscribe_one("a/#", 3, 0), 10);
}

/* [MQTT-4.7.1-3] '+' alone in its level */
static void MQTT_4_7_1_3_single_level_wildcard(void **state)
{
    (void)state;
    assert_int_equal(subscribe_one("a+", 2, 0), -MQTT_EFILTER);
    assert_int_equal(subscribe_one("a/+b", 4, 0), -MQTT_EFILTER);
    assert_int_equal(unsubscribe_one("++", 2), -MQTT_EFILTER);
    assert_int_equal(subscribe_one("+/+/", 4, 0), 11);
}

/* [MQTT-3.9.3-2] SUBACK codes other than 0, 1, 2 and 0x80 are reserved */
static void MQTT_3_9_3_2_suback_code(void **state)
{
    (void)state;
    assert_int_equal(dec(B(0x90, 0x03, 0x00, 0x01, 0x03)), -MQTT_ESUBACK_CODE);
    assert_int_equal(dec(B(0x90, 0x04, 0x00, 0x01, 0x00, 0x81)), -MQTT_ESUBACK_CODE);
    assert_int_equal(dec(B(0x90, 0x05, 0x00, 0x01, 0x00, 0x02, 0x80)), 7);
}

/* the caller's maximum is enforced from the fixed header alone, before the body arrives */
static void max_packet_from_fixed_header(void **state)
{
    struct mqtt_packet pkt;

    (void)state;
    /* remaining length 1000, nothing of the body yet */
    assert_int_equal(mqtt_decode(B(0x30, 0xe8, 0x07), 100, &pkt), -MQTT_ETOOLARGE);
    /* remaining length still incomplete, yet already over */
    assert_int_equal(mqtt_decode(B(0x30, 0xff), 100, &pkt), -MQTT_ETOOLARGE);
    assert_int_equal(mqtt_decode(B(0x30, 0xe8, 0x07), 1000, &pkt), -MQTT_EPARTIAL);
    assert_int_equal(mqtt_decode(B(0x30, 0xe8, 0x07), 999, &pkt), -MQTT_ETOOLARGE);
    assert_int_equal(mqtt_decode(B(0x30, 0x05, 0x00, 0x01, 'a', 'b', 'c'), 5, &pkt), 7);
    assert_int_equal(mqtt_decode(B(0x30, 0x05, 0x00, 0x01, 'a', 'b', 'c'), 4, &pkt),
                     -MQTT_ETOOLARGE);
    /* 0: the protocol's maximum */
    assert_int_equal(mqtt_decode(B(0x30, 0xff, 0xff, 0xff, 0x7f), 0, &pkt), -MQTT_EPARTIAL);
    assert_int_equal(mqtt_error_class(-MQTT_ETOOLARGE), MQTT_CLASS_TOO_LARGE);
}

/* ---- valid packets ----------------------------------------------------------------------- */

static void publish_views(void **state)
{
    struct mqtt_packet pkt;
    const uint8_t b[] = {0x3b, 0x0a, 0x00, 0x03, 'a', '/', 'b', 0x12, 0x34, 'x', 'y', 'z'};

    (void)state;
    assert_int_equal(mqtt_decode(b, sizeof b, 0, &pkt), (int)sizeof b);
    assert_int_equal(pkt.type, MQTT_PUBLISH);
    assert_int_equal(pkt.remaining_length, 10);
    assert_int_equal(pkt.u.publish.qos, 1);
    assert_true(pkt.u.publish.dup);
    assert_true(pkt.u.publish.retain);
    assert_int_equal(pkt.u.publish.packet_id, 0x1234);
    assert_ptr_equal(pkt.u.publish.topic.p, b + 4);
    assert_int_equal(pkt.u.publish.topic.len, 3);
    assert_ptr_equal(pkt.u.publish.payload.p, b + 9);
    assert_int_equal(pkt.u.publish.payload.len, 3);
    /* empty payload */
    assert_int_equal(mqtt_decode(B(0x30, 0x03, 0x00, 0x01, 'a'), 0, &pkt), 5);
    assert_int_equal(pkt.u.publish.payload.len, 0);
}

static void connect_fields(void **state)
{
    struct mqtt_packet pkt;
    const struct mqtt_connect *c = &pkt.u.connect;

    (void)state;
    assert_int_equal(connect_raw(&pkt, "MQTT", 4, 0xf6, "id", "w/t", "bye", "user", "pass", NULL),
                     38);
    assert_int_equal(c->protocol_level, 4);
    assert_true(c->clean_session && c->will_flag && c->will_retain);
    assert_true(c->has_username && c->has_password);
    assert_int_equal(c->will_qos, 2);
    assert_int_equal(c->keepalive, 60);
    assert_memory_equal(c->client_id.p, "id", 2);
    assert_memory_equal(c->will_topic.p, "w/t", 3);
    assert_memory_equal(c->will_payload.p, "bye", 3);
    assert_memory_equal(c->username.p, "user", 4);
    assert_memory_equal(c->password.p, "pass", 4);
}

static void topics_iterate(void **state)
{
    struct mqtt_packet pkt;
    struct mqtt_topics_iter it;
    struct mqtt_str f;
    uint8_t q;

    (void)state;
    assert_int_equal(mqtt_decode(B(0x82, 0x0c, 0x00, 0x09, 0x00, 0x03, 'a', '/', '#', 0x01, 0x00,
                                   0x01, '+', 0x02),
                                 0, &pkt),
                     14);
    assert_int_equal(pkt.u.topics.packet_id, 9);
    assert_int_equal(pkt.u.topics.count, 2);
    mqtt_topics_iter_init(&it, &pkt.u.topics);
    assert_true(mqtt_topics_next(&it, &f, &q));
    assert_int_equal(f.len, 3);
    assert_memory_equal(f.p, "a/#", 3);
    assert_int_equal(q, 1);
    assert_true(mqtt_topics_next(&it, &f, &q));
    assert_int_equal(f.len, 1);
    assert_int_equal(q, 2);
    assert_false(mqtt_topics_next(&it, &f, &q));

    assert_int_equal(mqtt_decode(B(0xa2, 0x05, 0x00, 0x02, 0x00, 0x01, 'x'), 0, &pkt), 7);
    assert_int_equal(pkt.u.topics.count, 1);
    mqtt_topics_iter_init(&it, &pkt.u.topics);
    assert_true(mqtt_topics_next(&it, &f, &q));
    assert_int_equal(q, 0);
    assert_memory_equal(f.p, "x", 1);
    assert_false(mqtt_topics_next(&it, &f, &q));
}

/* ---- streams ----------------------------------------------------------------------------- */

/* A stream holding every packet type, some twice, built by the encoders. */
static size_t build_stream(uint8_t *s, size_t cap, size_t *ends, size_t *npkt)
{
    static const uint8_t payload[300] = {1, 2, 3};
    const struct mqtt_connect c = {
        .clean_session = true,
        .will_flag = true,
        .will_qos = 1,
        .keepalive = 30,
        .client_id = {(const uint8_t *)"client-1", 8},
        .will_topic = {(const uint8_t *)"will/t", 6},
        .will_payload = {(const uint8_t *)"gone", 4},
        .has_username = true,
        .username = {(const uint8_t *)"u", 1},
    };
    const struct mqtt_publish p0 = {.topic = {(const uint8_t *)"a/b/c", 5},
                                    .payload = {payload, 10}};
    const struct mqtt_publish p2 = {.qos = 2,
                                    .retain = true,
                                    .packet_id = 77,
                                    .topic = {(const uint8_t *)"sensors/room-1/temp", 19},
                                    .payload = {payload, sizeof payload}};
    const struct mqtt_sub subs[] = {{{(const uint8_t *)"a/+", 3}, 1},
                                    {{(const uint8_t *)"#", 1}, 2}};
    const uint8_t codes[] = {0, 1, 0x80};
    size_t n = 0, k = 0;

#define ADD(expr)                                                                                  \
    do {                                                                                           \
        size_t len_ = (expr);                                                                      \
        assert_true(len_ > 0 && n + len_ <= cap);                                                  \
        n += len_;                                                                                 \
        ends[k++] = n;                                                                             \
    } while (0)
    ADD(mqtt_encode_connect(s + n, cap - n, &c));
    ADD(mqtt_encode_connack(s + n, cap - n, true, 0));
    ADD(mqtt_encode_publish(s + n, cap - n, &p0));
    ADD(mqtt_encode_publish(s + n, cap - n, &p2));
    ADD(mqtt_encode_ack(s + n, cap - n, MQTT_PUBACK, 1));
    ADD(mqtt_encode_ack(s + n, cap - n, MQTT_PUBREC, 2));
    ADD(mqtt_encode_ack(s + n, cap - n, MQTT_PUBREL, 3));
    ADD(mqtt_encode_ack(s + n, cap - n, MQTT_PUBCOMP, 4));
    ADD(mqtt_encode_subscribe(s + n, cap - n, 5, subs, 2));
    ADD(mqtt_encode_suback(s + n, cap - n, 5, codes, 3));
    ADD(mqtt_encode_unsubscribe(s + n, cap - n, 6, subs, 2));
    ADD(mqtt_encode_ack(s + n, cap - n, MQTT_UNSUBACK, 6));
    ADD(mqtt_encode_empty(s + n, cap - n, MQTT_PINGREQ));
    ADD(mqtt_encode_publish(s + n, cap - n, &p2));
    ADD(mqtt_encode_empty(s + n, cap - n, MQTT_PINGRESP));
    ADD(mqtt_encode_publish(s + n, cap - n, &p0));
    ADD(mqtt_encode_empty(s + n, cap - n, MQTT_DISCONNECT));
#undef ADD
    *npkt = k;
    return n;
}

/*
 * Feed the stream in chunks whose sizes come from next_chunk(); decode like a server does
 * (append, decode as many as whole, keep the partial rest) and check every packet ends where
 * the encoder put it.
 */
struct chunker {
    uint64_t rng; /* 0: one byte at a time */
};

static size_t next_chunk(struct chunker *ch, size_t left)
{
    uint64_t x;
    size_t n;

    if (ch->rng == 0)
        return 1;
    x = ch->rng; /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    ch->rng = x;
    n = 1 + (size_t)(x % 40);
    if (x % 7 == 0)
        n = 1 + (size_t)(x % 600); /* now and then a large read */
    return n < left ? n : left;
}

static void feed_stream(struct chunker *ch)
{
    uint8_t stream[2048], inbuf[2048];
    size_t ends[32], npkt, len, fed = 0, have = 0, got = 0, consumed = 0;

    len = build_stream(stream, sizeof stream, ends, &npkt);
    while (fed < len) {
        size_t n = next_chunk(ch, len - fed);
        memcpy(inbuf + have, stream + fed, n);
        have += n;
        fed += n;
        for (;;) {
            struct mqtt_packet pkt;
            int rc = mqtt_decode(inbuf, have, 0, &pkt);
            if (rc == -MQTT_EPARTIAL)
                break;
            assert_true(rc > 0);
            assert_true(got < npkt);
            consumed += (size_t)rc;
            assert_int_equal(consumed, ends[got]);
            assert_memory_equal(inbuf, stream + consumed - (size_t)rc, (size_t)rc);
            got++;
            memmove(inbuf, inbuf + rc, have - (size_t)rc);
            have -= (size_t)rc;
        }
    }
    assert_int_equal(got, npkt);
    assert_int_equal(have, 0);
}

static void stream_one_byte_at_a_time(void **state)
{
    struct chunker ch = {0};

    (void)state;
    feed_stream(&ch);
}

static void stream_random_splits(void **state)
{
    const char *env = getenv("CAIRN_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);

    (void)state;
    if (seed == 0)
        seed = 1;
    printf("stream_random_splits: seed %llu (set CAIRN_TEST_SEED to repeat)\n",
           (unsigned long long)seed);
    for (int i = 0; i < 500; i++) {
        struct chunker ch = {seed + (uint64_t)i * 0x9e3779b97f4a7c15ull};
        if (ch.rng == 0)
            ch.rng = 1;
        feed_stream(&ch);
    }
}

/* the whole stream in one buffer decodes in a loop */
static void stream_whole_buffer(void **state)
{
    uint8_t stream[2048];
    size_t ends[32], npkt, len, off = 0, k = 0;
    struct mqtt_packet pkt;

    (void)state;
    len = build_stream(stream, sizeof stream, ends, &npkt);
    while (off < len) {
        int rc = mqtt_decode(stream + off, len - off, 0, &pkt);
        assert_true(rc > 0);
        off += (size_t)rc;
        assert_int_equal(off, ends[k]);
        k++;
    }
    assert_int_equal(k, npkt);
    assert_int_equal(k, 17);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fixed_header_lengths),
        cmocka_unit_test(MQTT_2_2_3_remaining_length_over_four_bytes),
        cmocka_unit_test(remaining_length_longer_than_data_is_partial),
        cmocka_unit_test(MQTT_1_5_3_length_prefix_past_remaining_length),
        cmocka_unit_test(fixed_size_packets_wrong_length),
        cmocka_unit_test(MQTT_2_2_1_reserved_packet_type),
        cmocka_unit_test(MQTT_2_2_2_1_reserved_flags),
        cmocka_unit_test(MQTT_3_6_1_1_pubrel_flags),
        cmocka_unit_test(MQTT_3_8_1_1_subscribe_flags),
        cmocka_unit_test(MQTT_3_10_1_1_unsubscribe_flags),
        cmocka_unit_test(MQTT_3_3_1_4_publish_qos3),
        cmocka_unit_test(MQTT_3_1_2_1_protocol_name),
        cmocka_unit_test(MQTT_3_1_2_2_protocol_level),
        cmocka_unit_test(connect_bridge_bit),
        cmocka_unit_test(MQTT_3_1_2_3_connect_reserved_flag),
        cmocka_unit_test(MQTT_3_1_2_11_will_fields_without_will_flag),
        cmocka_unit_test(MQTT_3_1_2_13_will_qos_without_will_flag),
        cmocka_unit_test(MQTT_3_1_2_15_will_retain_without_will_flag),
        cmocka_unit_test(MQTT_3_1_2_14_will_qos3),
        cmocka_unit_test(MQTT_3_1_2_22_password_without_username),
        cmocka_unit_test(MQTT_3_1_3_4_client_id_utf8),
        cmocka_unit_test(MQTT_3_1_3_10_will_topic),
        cmocka_unit_test(MQTT_3_1_3_11_username_utf8),
        cmocka_unit_test(client_id_length_left_to_server),
        cmocka_unit_test(connect_trailing_bytes),
        cmocka_unit_test(MQTT_3_2_2_1_connack_reserved),
        cmocka_unit_test(MQTT_2_3_1_1_packet_id_zero),
        cmocka_unit_test(MQTT_3_8_3_3_empty_subscribe),
        cmocka_unit_test(MQTT_3_10_3_2_empty_unsubscribe),
        cmocka_unit_test(MQTT_3_8_3_4_subscribe_qos_byte),
        cmocka_unit_test(MQTT_3_8_3_1_filter_utf8),
        cmocka_unit_test(MQTT_3_3_2_1_publish_topic_utf8),
        cmocka_unit_test(MQTT_1_5_3_2_nul_in_topic),
        cmocka_unit_test(MQTT_4_7_3_1_empty_topic),
        cmocka_unit_test(MQTT_3_3_2_2_wildcard_in_topic_name),
        cmocka_unit_test(MQTT_4_7_1_2_multi_level_wildcard),
        cmocka_unit_test(MQTT_4_7_1_3_single_level_wildcard),
        cmocka_unit_test(MQTT_3_9_3_2_suback_code),
        cmocka_unit_test(max_packet_from_fixed_header),
        cmocka_unit_test(publish_views),
        cmocka_unit_test(connect_fields),
        cmocka_unit_test(topics_iterate),
        cmocka_unit_test(stream_one_byte_at_a_time),
        cmocka_unit_test(stream_random_splits),
        cmocka_unit_test(stream_whole_buffer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
