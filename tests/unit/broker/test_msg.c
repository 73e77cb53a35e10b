/*
 * test_msg.c — one allocation per message, reference counting, the cached PUBLISH header
 * (decodes back to the message with the packet id patched), and the id table.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "msg.h"

static struct msg *mk(uint64_t id, const char *topic, const char *payload, uint8_t qos, bool retain)
{
    return msg_new(id, (const uint8_t *)topic, strlen(topic), (const uint8_t *)payload,
                   strlen(payload), qos, retain);
}

static void test_refcount(void **state)
{
    size_t live = msg_live_count();
    struct msg *m = mk(1, "a/b", "payload", 1, false);

    assert_non_null(m);
    assert_int_equal(msg_live_count(), live + 1);
    assert_int_equal(m->refcnt, 1);
    assert_string_equal(m->topic, "a/b");
    assert_memory_equal(m->payload, "payload", 7);
    assert_ptr_equal(msg_ref(m), m);
    assert_int_equal(m->refcnt, 2);
    msg_unref(m);
    assert_int_equal(msg_live_count(), live + 1);
    msg_release(m); /* the conn_write_ref release hook */
    assert_int_equal(msg_live_count(), live);
    msg_unref(NULL);
}

static void test_header_round_trip(void **state)
{
    struct msg *m = mk(7, "sensors/t", "21.5", 2, true);
    uint8_t pkt[256];
    struct mqtt_packet p;
    size_t hlen, hlen0;
    const uint8_t *h = msg_header(m, 1, &hlen);
    const uint8_t *h0 = msg_header(m, 0, &hlen0);

    assert_non_null(h);
    assert_ptr_equal(msg_header(m, 1, &hlen), h); /* built once */
    /* QoS 1: header minus the id slot, the id, the payload */
    memcpy(pkt, h, hlen - 2);
    pkt[hlen - 2] = 0x12;
    pkt[hlen - 1] = 0x34;
    memcpy(pkt + hlen, m->payload, m->payload_len);
    assert_int_equal(mqtt_decode(pkt, hlen + m->payload_len, 0, &p), (int)(hlen + 4));
    assert_int_equal(p.type, MQTT_PUBLISH);
    assert_int_equal(p.u.publish.qos, 1);
    assert_true(p.u.publish.retain);
    assert_false(p.u.publish.dup);
    assert_int_equal(p.u.publish.packet_id, 0x1234);
    assert_int_equal(p.u.publish.topic.len, 9);
    assert_memory_equal(p.u.publish.topic.p, "sensors/t", 9);
    assert_memory_equal(p.u.publish.payload.p, "21.5", 4);
    /* QoS 0: no id */
    assert_non_null(h0);
    assert_int_equal(hlen0, hlen - 2);
    memcpy(pkt, h0, hlen0);
    memcpy(pkt + hlen0, m->payload, m->payload_len);
    assert_int_equal(mqtt_decode(pkt, hlen0 + 4, 0, &p), (int)(hlen0 + 4));
    assert_int_equal(p.u.publish.qos, 0);
    msg_unref(m);
}

static void test_empty_payload_and_big(void **state)
{
    static uint8_t big[200000];
    struct msg *m = msg_new(3, (const uint8_t *)"t", 1, big, sizeof(big), 0, false);
    struct msg *e = mk(4, "t", "", 0, false);
    size_t hlen;

    assert_non_null(m);
    assert_non_null(msg_header(m, 2, &hlen));
    assert_int_equal(hlen, 1 + 3 + 2 + 1 + 2); /* 3-byte remaining length */
    assert_non_null(e);
    assert_int_equal(e->payload_len, 0);
    assert_int_equal(msg_bytes(e), 0);
    msg_unref(m);
    msg_unref(e);
}

static void test_table(void **state)
{
    struct msg_table *t = msg_table_new();
    struct msg *v[300];

    assert_non_null(t);
    for (int i = 0; i < 300; i++) {
        v[i] = mk((uint64_t)i + 1, "x", "y", 1, false);
        assert_int_equal(msg_table_add(t, v[i]), 0);
    }
    assert_int_equal(msg_table_count(t), 300);
    for (int i = 0; i < 300; i++) {
        struct msg *g = msg_table_get(t, (uint64_t)i + 1);
        assert_ptr_equal(g, v[i]);
        msg_unref(g);
    }
    assert_null(msg_table_get(t, 1000));
    /* the last reference removes it from the table */
    for (int i = 0; i < 300; i += 2)
        msg_unref(v[i]);
    assert_int_equal(msg_table_count(t), 150);
    assert_null(msg_table_get(t, 1));
    for (int i = 1; i < 300; i += 2)
        msg_unref(v[i]);
    assert_int_equal(msg_table_count(t), 0);
    msg_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_header_round_trip),
        cmocka_unit_test(test_empty_payload_and_big),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
