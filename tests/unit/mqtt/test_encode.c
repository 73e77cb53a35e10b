/*
 * test_encode.c — mqtt/encode.c: every packet type round-trips encode -> decode, the
 * snprintf-style contract (size returned, nothing written when it does not fit), refusals
 * of unencodable values, and the build-once PUBLISH header.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mqtt.h"

#define S(lit) ((struct mqtt_str){(const uint8_t *)(lit), sizeof(lit) - 1})

static void assert_str_eq(struct mqtt_str a, struct mqtt_str b)
{
    assert_int_equal(a.len, b.len);
    if (a.len)
        assert_memory_equal(a.p, b.p, a.len);
}

/*
 * Decode buf[0..n) as exactly one packet of the expected type, re-encode it with
 * mqtt_encode_packet() and check the bytes are the same.
 */
static void decode_one(const uint8_t *buf, size_t n, enum mqtt_type type, struct mqtt_packet *pkt)
{
    uint8_t *again = malloc(n);

    assert_non_null(again);
    assert_true(n > 0);
    assert_int_equal(mqtt_decode(buf, n, 0, pkt), (int)n);
    assert_int_equal(pkt->type, type);
    assert_int_equal(mqtt_encode_packet(again, n, pkt), n);
    assert_memory_equal(again, buf, n);
    free(again);
}

static void roundtrip_connect(void **state)
{
    const struct mqtt_connect cases[] = {
        {.clean_session = true, .keepalive = 60, .client_id = S("c1")},
        {.keepalive = 0, .client_id = S("")},
        {.protocol_name = S("MQIsdp"), .protocol_level = 3, .client_id = S("old-device")},
        {.clean_session = true,
         .will_flag = true,
         .will_qos = 2,
         .will_retain = true,
         .keepalive = 65535,
         .client_id = S("sensor-7"),
         .will_topic = S("status/sensor-7"),
         .will_payload = S("offline\0with nul"),
         .has_username = true,
         .username = S("user"),
         .has_password = true,
         .password = S("\x00\xff secret")},
        {.has_username = true, .username = S(""), .client_id = S("x")},
        /* a bridge's CONNECT (try_private): level 0x84, and 0x83 for MQTT 3.1 */
        {.bridge = true, .client_id = S("host.edge")},
        {.protocol_name = S("MQIsdp"), .protocol_level = 3, .bridge = true, .client_id = S("b")},
    };
    uint8_t buf[512];
    struct mqtt_packet pkt;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct mqtt_connect *c = &cases[i];
        const struct mqtt_connect *d = &pkt.u.connect;
        size_t n = mqtt_encode_connect(buf, sizeof buf, c);
        decode_one(buf, n, MQTT_CONNECT, &pkt);
        if (c->protocol_name.len)
            assert_str_eq(d->protocol_name, c->protocol_name);
        else
            assert_str_eq(d->protocol_name, S("MQTT"));
        assert_int_equal(d->protocol_level, c->protocol_level ? c->protocol_level : 4);
        assert_int_equal(d->bridge, c->bridge);
        assert_int_equal(buf[2 + 2 + d->protocol_name.len] & 0x80, c->bridge ? 0x80 : 0);
        assert_int_equal(d->clean_session, c->clean_session);
        assert_int_equal(d->will_flag, c->will_flag);
        assert_int_equal(d->will_qos, c->will_qos);
        assert_int_equal(d->will_retain, c->will_retain);
        assert_int_equal(d->has_username, c->has_username);
        assert_int_equal(d->has_password, c->has_password);
        assert_int_equal(d->keepalive, c->keepalive);
        assert_str_eq(d->client_id, c->client_id);
        assert_str_eq(d->will_topic, c->will_topic);
        assert_str_eq(d->will_payload, c->will_payload);
        assert_str_eq(d->username, c->username);
        assert_str_eq(d->password, c->password);
    }
}

static void roundtrip_connack(void **state)
{
    uint8_t buf[8];
    struct mqtt_packet pkt;

    (void)state;
    for (int sp = 0; sp < 2; sp++) {
        for (uint8_t rc = 0; rc <= 5; rc++) {
            size_t n = mqtt_encode_connack(buf, sizeof buf, sp, rc);
            assert_int_equal(n, 4);
            decode_one(buf, n, MQTT_CONNACK, &pkt);
            assert_int_equal(pkt.u.connack.session_present, sp);
            assert_int_equal(pkt.u.connack.return_code, rc);
        }
    }
}

static void roundtrip_publish(void **state)
{
    static uint8_t payload[70000];
    struct mqtt_publish p = {.topic = S("sensors/building-1/floor-2/t")};
    /* payload sizes across each remaining-length size boundary */
    const size_t sizes[] = {0, 1, 90, 93, 94, 200, 16340, 16341, 16400, 65535, 70000};
    uint8_t *buf = malloc(80000);
    struct mqtt_packet pkt;

    (void)state;
    assert_non_null(buf);
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 31 + 7);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (uint8_t qos = 0; qos <= 2; qos++) {
            p.qos = qos;
            p.packet_id = qos ? (uint16_t)(1000 + i) : 0;
            p.dup = qos && (i & 1);
            p.retain = i & 2;
            p.payload.p = payload;
            p.payload.len = sizes[i];
            size_t n = mqtt_encode_publish(buf, 80000, &p);
            size_t rem = 2 + p.topic.len + (qos ? 2 : 0) + sizes[i];
            assert_int_equal(n, 1 + mqtt_remaining_length_size(rem) + rem);
            decode_one(buf, n, MQTT_PUBLISH, &pkt);
            assert_int_equal(pkt.u.publish.qos, qos);
            assert_int_equal(pkt.u.publish.dup, p.dup);
            assert_int_equal(pkt.u.publish.retain, p.retain);
            assert_int_equal(pkt.u.publish.packet_id, p.packet_id);
            assert_str_eq(pkt.u.publish.topic, p.topic);
            assert_str_eq(pkt.u.publish.payload, p.payload);
        }
    }
    free(buf);
}

static void roundtrip_acks(void **state)
{
    const enum mqtt_type types[] = {MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP,
                                    MQTT_UNSUBACK};
    const uint16_t ids[] = {1, 2, 255, 256, 0x1234, 65535};
    uint8_t buf[8];
    struct mqtt_packet pkt;

    (void)state;
    for (size_t t = 0; t < 5; t++) {
        for (size_t i = 0; i < 6; i++) {
            size_t n = mqtt_encode_ack(buf, sizeof buf, types[t], ids[i]);
            assert_int_equal(n, 4);
            decode_one(buf, n, types[t], &pkt);
            assert_int_equal(pkt.u.ack.packet_id, ids[i]);
            assert_int_equal(pkt.flags, types[t] == MQTT_PUBREL ? 2 : 0);
        }
    }
}

static void roundtrip_topics(void **state, bool with_qos)
{
    const struct mqtt_sub subs[] = {
        {S("a/b"), 0}, {S("+/x/#"), 1}, {S("#"), 2}, {S("$SYS/broker/+"), 1}, {S("caf\xc3\xa9"), 0},
    };
    uint8_t buf[256];
    struct mqtt_packet pkt;

    for (size_t n = 1; n <= 5; n++) {
        size_t len = with_qos ? mqtt_encode_subscribe(buf, sizeof buf, 42, subs, n)
                              : mqtt_encode_unsubscribe(buf, sizeof buf, 42, subs, n);
        struct mqtt_topics_iter it;
        struct mqtt_str f;
        uint8_t q;
        size_t k = 0;

        decode_one(buf, len, with_qos ? MQTT_SUBSCRIBE : MQTT_UNSUBSCRIBE, &pkt);
        assert_int_equal(pkt.flags, 2);
        assert_int_equal(pkt.u.topics.packet_id, 42);
        assert_int_equal(pkt.u.topics.count, n);
        assert_int_equal(pkt.u.topics.with_qos, with_qos);
        mqtt_topics_iter_init(&it, &pkt.u.topics);
        while (mqtt_topics_next(&it, &f, &q)) {
            assert_true(k < n);
            assert_str_eq(f, subs[k].filter);
            assert_int_equal(q, with_qos ? subs[k].qos : 0);
            k++;
        }
        assert_int_equal(k, n);
    }
}

static void roundtrip_subscribe(void **state)
{
    roundtrip_topics(state, true);
}

static void roundtrip_unsubscribe(void **state)
{
    roundtrip_topics(state, false);
}

static void roundtrip_suback(void **state)
{
    const uint8_t codes[] = {0, 1, 2, 0x80, 1};
    uint8_t buf[32];
    struct mqtt_packet pkt;

    (void)state;
    for (size_t n = 1; n <= 5; n++) {
        size_t len = mqtt_encode_suback(buf, sizeof buf, 9, codes, n);
        assert_int_equal(len, 4 + n);
        decode_one(buf, len, MQTT_SUBACK, &pkt);
        assert_int_equal(pkt.u.suback.packet_id, 9);
        assert_int_equal(pkt.u.suback.codes.len, n);
        assert_memory_equal(pkt.u.suback.codes.p, codes, n);
    }
}

static void roundtrip_empty(void **state)
{
    const enum mqtt_type types[] = {MQTT_PINGREQ, MQTT_PINGRESP, MQTT_DISCONNECT};
    uint8_t buf[2];
    struct mqtt_packet pkt;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(mqtt_encode_empty(buf, sizeof buf, types[i]), 2);
        decode_one(buf, 2, types[i], &pkt);
        assert_int_equal(pkt.remaining_length, 0);
    }
}

/* snprintf-style: the size comes back either way; nothing is written unless it all fits */
static void too_small_buffer_untouched(void **state)
{
    const struct mqtt_connect c = {.client_id = S("abc"), .clean_session = true};
    const struct mqtt_publish p = {.qos = 1, .packet_id = 1, .topic = S("t"), .payload = S("x")};
    const struct mqtt_sub s = {S("a"), 1};
    const uint8_t code = 0;
    uint8_t buf[64];
    size_t need;

    (void)state;
    memset(buf, 0xee, sizeof buf);
    need = mqtt_encode_connect(buf, 0, &c);
    assert_int_equal(need, 17);
    assert_int_equal(mqtt_encode_connect(buf, need - 1, &c), need);
    assert_int_equal(mqtt_encode_publish(buf, 7, &p), 8);
    assert_int_equal(mqtt_encode_connack(buf, 3, false, 0), 4);
    assert_int_equal(mqtt_encode_ack(buf, 3, MQTT_PUBACK, 1), 4);
    assert_int_equal(mqtt_encode_subscribe(buf, 7, 1, &s, 1), 8);
    assert_int_equal(mqtt_encode_unsubscribe(buf, 6, 1, &s, 1), 7);
    assert_int_equal(mqtt_encode_suback(buf, 4, 1, &code, 1), 5);
    assert_int_equal(mqtt_encode_empty(buf, 1, MQTT_PINGREQ), 2);
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 0xee);
    assert_int_equal(mqtt_encode_connect(buf, need, &c), need);
    assert_int_equal(buf[need], 0xee);
}

/* 0: the values cannot form a valid packet */
static void unencodable_values(void **state)
{
    static uint8_t big[65536];
    struct mqtt_connect c = {.client_id = {big, 65536}};
    struct mqtt_publish p = {.topic = {big, 65536}};
    struct mqtt_sub s = {S("a"), 3};
    const uint8_t bad_code = 3;
    uint8_t buf[16];

    (void)state;
    assert_int_equal(mqtt_encode_connect(buf, sizeof buf, &c), 0);
    c.client_id = S("x");
    c.has_password = true; /* without user name [MQTT-3.1.2-22] */
    assert_int_equal(mqtt_encode_connect(buf, sizeof buf, &c), 0);
    c.has_password = false;
    c.will_flag = true;
    c.will_qos = 3; /* [MQTT-3.1.2-14] */
    c.will_topic = S("w");
    assert_int_equal(mqtt_encode_connect(buf, sizeof buf, &c), 0);
    assert_int_equal(mqtt_encode_publish(buf, sizeof buf, &p), 0);
    p.topic = S("t");
    p.qos = 3;
    p.packet_id = 1;
    assert_int_equal(mqtt_encode_publish(buf, sizeof buf, &p), 0);
    p.qos = 1;
    p.packet_id = 0; /* [MQTT-2.3.1-1] */
    assert_int_equal(mqtt_encode_publish(buf, sizeof buf, &p), 0);
    p.qos = 0;
    p.payload.p = big;
    p.payload.len = MQTT_MAX_REMAINING; /* with the topic, over the maximum */
    assert_int_equal(mqtt_encode_publish(buf, sizeof buf, &p), 0);
    assert_int_equal(mqtt_encode_ack(buf, sizeof buf, MQTT_PUBACK, 0), 0);
    assert_int_equal(mqtt_encode_ack(buf, sizeof buf, MQTT_PUBLISH, 1), 0);
    assert_int_equal(mqtt_encode_subscribe(buf, sizeof buf, 1, &s, 1), 0); /* QoS 3 */
    s.qos = 1;
    assert_int_equal(mqtt_encode_subscribe(buf, sizeof buf, 1, &s, 0), 0);
    assert_int_equal(mqtt_encode_subscribe(buf, sizeof buf, 0, &s, 1), 0);
    assert_int_equal(mqtt_encode_unsubscribe(buf, sizeof buf, 1, &s, 0), 0);
    assert_int_equal(mqtt_encode_suback(buf, sizeof buf, 1, &bad_code, 1), 0);
    assert_int_equal(mqtt_encode_suback(buf, sizeof buf, 1, &bad_code, 0), 0);
    assert_int_equal(mqtt_encode_empty(buf, sizeof buf, MQTT_CONNECT), 0);
}

static void remaining_length_sizes(void **state)
{
    (void)state;
    assert_int_equal(mqtt_remaining_length_size(0), 1);
    assert_int_equal(mqtt_remaining_length_size(127), 1);
    assert_int_equal(mqtt_remaining_length_size(128), 2);
    assert_int_equal(mqtt_remaining_length_size(16383), 2);
    assert_int_equal(mqtt_remaining_length_size(16384), 3);
    assert_int_equal(mqtt_remaining_length_size(2097151), 3);
    assert_int_equal(mqtt_remaining_length_size(2097152), 4);
    assert_int_equal(mqtt_remaining_length_size(MQTT_MAX_REMAINING), 4);
    assert_int_equal(mqtt_remaining_length_size(MQTT_MAX_REMAINING + 1), 0);
}

/* the build-once header plus the shared payload equals a whole PUBLISH, once patched */
static void publish_header_patch(void **state)
{
    const struct mqtt_str topic = S("room/1/temperature");
    const struct mqtt_str payload = S("21.5 degrees");
    uint8_t hdr[64], whole[128], joined[128];
    size_t off, hlen, n;

    (void)state;
    for (uint8_t qos = 0; qos <= 2; qos++) {
        struct mqtt_publish p = {.qos = qos,
                                 .retain = true,
                                 .packet_id = qos ? 0xbeef : 0,
                                 .topic = topic,
                                 .payload = payload};
        hlen = mqtt_encode_publish_header(hdr, sizeof hdr, topic, qos, true, payload.len, &off);
        assert_int_equal(hlen, 2 + 2 + topic.len + (qos ? 2 : 0));
        assert_int_equal(off, qos ? hlen - 2 : 0);
        memcpy(joined, hdr, hlen);
        memcpy(joined + hlen, payload.p, payload.len);
        if (qos) {
            joined[off] = 0xbe;
            joined[off + 1] = 0xef;
        }
        n = mqtt_encode_publish(whole, sizeof whole, &p);
        assert_int_equal(n, hlen + payload.len);
        assert_memory_equal(joined, whole, n);
        /* the DUP bit patched in byte 0 */
        joined[0] |= 0x08;
        if (qos) {
            struct mqtt_packet pkt;
            assert_int_equal(mqtt_decode(joined, n, 0, &pkt), (int)n);
            assert_true(pkt.u.publish.dup);
        }
    }
    assert_int_equal(mqtt_encode_publish_header(hdr, 3, topic, 1, false, 10, &off), 24);
    assert_int_equal(off, 22);
    assert_int_equal(mqtt_encode_publish_header(hdr, sizeof hdr, topic, 3, false, 10, &off), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_connect),          cmocka_unit_test(roundtrip_connack),
        cmocka_unit_test(roundtrip_publish),          cmocka_unit_test(roundtrip_acks),
        cmocka_unit_test(roundtrip_subscribe),        cmocka_unit_test(roundtrip_unsubscribe),
        cmocka_unit_test(roundtrip_suback),           cmocka_unit_test(roundtrip_empty),
        cmocka_unit_test(too_small_buffer_untouched), cmocka_unit_test(unencodable_values),
        cmocka_unit_test(remaining_length_sizes),     cmocka_unit_test(publish_header_patch),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
