/*
 * 29_protocol_details — what Mosquitto's clients rely on, byte for byte (raw sockets), checked
 * against Mosquitto 2.0.11 too (CAIRN_TEST_BROKER=mosquitto):
 *   - an acknowledgement of the wrong kind for a packet id in flight (PUBREC or PUBCOMP for a
 *     QoS 1 delivery, PUBACK for a QoS 2 one, PUBCOMP before PUBREC) is a protocol violation:
 *     the connection closes and its will is published; one for an id not in flight is ignored
 *     (PUBREC still gets its PUBREL);
 *   - packets leave a connection in the order they were produced: a CONNECT and a PINGREQ sent
 *     together get CONNACK, then PINGRESP [MQTT-3.2.0-1]; a client publishing QoS 2 on a topic
 *     it subscribes to gets the forwarded PUBLISH before the PUBREC of its own.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 5000

/*
 * A subscriber with a will on proto/will/ID, subscribed to proto/ID at qos; an observer of the
 * will; a publisher. The publisher sends one message at qos; the subscriber reads it and
 * answers with `wrong` (an ack type). Returns the subscriber's fd state: the broker must close
 * it and publish the will.
 */
static void wrong_ack(const char *id, int qos, int wrong, bool after_pubrec)
{
    struct broker *b = broker_start(NULL);
    char topic[64], will[64];
    struct raw_conn_opts so = {.id = id, .keepalive = 60};
    struct raw_conn_opts oo = {.id = "observer", .keepalive = 60};
    struct raw_conn_opts po = {.id = "publisher", .keepalive = 60};
    int sub = -1, obs = -1, pub = -1, rc = -1;
    struct raw_pkt k = {0};

    T_ASSERT(b);
    snprintf(topic, sizeof(topic), "proto/%s", id);
    snprintf(will, sizeof(will), "proto/will/%s", id);
    so.will_topic = will;
    so.will_payload = "gone";
    obs = raw_mqtt_connect(b, &oo, &rc, NULL);
    T_ASSERT(obs >= 0 && rc == 0);
    T_EQ(raw_subscribe(obs, 1, will, 0), 0);
    sub = raw_mqtt_connect(b, &so, &rc, NULL);
    T_ASSERT(sub >= 0 && rc == 0);
    T_EQ(raw_subscribe(sub, 1, topic, qos), qos);
    pub = raw_mqtt_connect(b, &po, &rc, NULL);
    T_ASSERT(pub >= 0 && rc == 0);
    T_EQ(raw_publish_flow(pub, topic, "x", qos, false, 7), 0);
    T_EQ(raw_expect(sub, RAW_PUBLISH, &k, WAIT_MS), 1);
    T_EQ(k.qos, qos);
    if (after_pubrec) {
        T_EQ(raw_send_ack(sub, RAW_PUBREC, k.pid), 0);
        raw_pkt_free(&k);
        T_EQ(raw_expect(sub, RAW_PUBREL, &k, WAIT_MS), 1);
    }
    T_EQ(raw_send_ack(sub, wrong, k.pid), 0);
    T_ASSERTF(raw_expect_close(sub, WAIT_MS) == 0, "%s: the connection stayed open", id);
    raw_pkt_free(&k);
    T_EQ(raw_expect(obs, RAW_PUBLISH, &k, WAIT_MS), 1);
    T_ASSERT(k.topic && strcmp(k.topic, will) == 0);
out:
    raw_pkt_free(&k);
    if (sub >= 0)
        close(sub);
    if (obs >= 0)
        close(obs);
    if (pub >= 0)
        close(pub);
    broker_free(b);
}

static void test_pubrec_for_qos1(void)
{
    wrong_ack("rec-q1", 1, RAW_PUBREC, false);
}

static void test_pubcomp_for_qos1(void)
{
    wrong_ack("comp-q1", 1, RAW_PUBCOMP, false);
}

static void test_puback_for_qos2(void)
{
    wrong_ack("ack-q2", 2, RAW_PUBACK, false);
}

static void test_pubcomp_before_pubrec(void)
{
    wrong_ack("comp-early", 2, RAW_PUBCOMP, false);
}

static void test_puback_for_qos2_past_pubrec(void)
{
    wrong_ack("ack-q2-late", 2, RAW_PUBACK, true);
}

/* Acks for ids not in flight: ignored, and PUBREC answered with PUBREL; the client stays. */
static void test_unknown_ids_ignored(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts o = {.id = "unknown-ids", .keepalive = 60};
    int fd = -1, rc = -1;
    struct raw_pkt k = {0};
    uint8_t ping[2] = {0xC0, 0x00};

    T_ASSERT(b);
    fd = raw_mqtt_connect(b, &o, &rc, NULL);
    T_ASSERT(fd >= 0 && rc == 0);
    T_EQ(raw_send_ack(fd, RAW_PUBACK, 101), 0);
    T_EQ(raw_send_ack(fd, RAW_PUBCOMP, 102), 0);
    T_EQ(raw_send_ack(fd, RAW_PUBREC, 103), 0);
    T_EQ(raw_expect(fd, RAW_PUBREL, &k, WAIT_MS), 1);
    T_EQ(k.pid, 103);
    raw_pkt_free(&k);
    T_EQ(raw_send(fd, ping, sizeof(ping)), 0);
    T_EQ(raw_expect(fd, RAW_PINGRESP, &k, WAIT_MS), 1);
out:
    raw_pkt_free(&k);
    if (fd >= 0)
        close(fd);
    broker_free(b);
}

/* CONNECT and PINGREQ in one write: CONNACK first. */
static void test_connack_before_pingresp(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts o = {.id = "ping-early", .persistent = true, .keepalive = 60};
    uint8_t buf[512];
    size_t n;
    int fd = -1;
    struct raw_pkt k = {0};

    T_ASSERT(b);
    fd = raw_connect(b);
    T_ASSERT(fd >= 0);
    n = raw_build_connect(buf, sizeof(buf) - 2, &o);
    T_ASSERT(n > 0);
    buf[n] = 0xC0;
    buf[n + 1] = 0x00;
    T_EQ(raw_send(fd, buf, n + 2), 0);
    T_EQ(raw_read_packet(fd, &k, WAIT_MS), 1);
    T_ASSERTF(k.first >> 4 == RAW_CONNACK, "first packet type %d, not CONNACK", k.first >> 4);
    raw_pkt_free(&k);
    T_EQ(raw_expect(fd, RAW_PINGRESP, &k, WAIT_MS), 1);
out:
    raw_pkt_free(&k);
    if (fd >= 0)
        close(fd);
    broker_free(b);
}

/*
 * A PUBLISH to a topic the publisher subscribes to: the forwarded delivery, then the ack of its
 * own (the ack waits for the commit; the delivery was produced first). At QoS 1 Mosquitto does
 * the same. At QoS 2 Mosquitto delivers on PUBREL (method A of [MQTT-4.3.3]), so its PUBREC
 * comes first; Cairn delivers on PUBLISH (method B) and keeps the order it produced.
 */
static void own_delivery(int qos, int ack)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts o = {.id = "self-sub", .persistent = true, .keepalive = 60};
    int fd = -1, rc = -1;
    struct raw_pkt k = {0};

    T_ASSERT(b);
    fd = raw_mqtt_connect(b, &o, &rc, NULL);
    T_ASSERT(fd >= 0 && rc == 0);
    T_EQ(raw_subscribe(fd, 1, "self/t", 2), 2);
    T_EQ(raw_publish(fd, "self/t", "me", qos, false, false, 9), 0);
    T_EQ(raw_read_packet(fd, &k, WAIT_MS), 1);
    T_ASSERTF(k.first >> 4 == RAW_PUBLISH, "first packet type %d, not the forwarded PUBLISH",
              k.first >> 4);
    raw_pkt_free(&k);
    T_EQ(raw_expect(fd, ack, &k, WAIT_MS), 1);
    T_EQ(k.pid, 9);
out:
    raw_pkt_free(&k);
    if (fd >= 0)
        close(fd);
    broker_free(b);
}

static void test_own_delivery_before_puback(void)
{
    own_delivery(1, RAW_PUBACK);
}

static void test_own_delivery_before_pubrec(void)
{
    if (!harness_cairn_only("Mosquitto delivers QoS 2 on PUBREL: its PUBREC comes first"))
        own_delivery(2, RAW_PUBREC);
}

/* MQTT 3.1 has no session-present flag: a resumed 3.1 session still gets 0 in that byte. */
static void test_mqtt31_connack_flags(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts o = {.id = "old-31", .persistent = true, .keepalive = 60, .level = 3};
    int fd = -1, rc = -1, sp = -1;

    T_ASSERT(b);
    fd = raw_mqtt_connect(b, &o, &rc, &sp);
    T_ASSERT(fd >= 0 && rc == 0);
    T_EQ(sp, 0);
    close(fd);
    fd = raw_mqtt_connect(b, &o, &rc, &sp);
    T_ASSERT(fd >= 0 && rc == 0);
    T_EQ(sp, 0);
    o.level = 4; /* the same session over 3.1.1 says it is there */
    close(fd);
    fd = raw_mqtt_connect(b, &o, &rc, &sp);
    T_ASSERT(fd >= 0 && rc == 0);
    T_EQ(sp, 1);
out:
    if (fd >= 0)
        close(fd);
    broker_free(b);
}

/*
 * A takeover: the old connection's will is published when either side has clean session 1,
 * not when both have 0 (the session goes on; "offline" would be false).
 */
static void takeover_will(bool old_persistent, bool new_persistent, bool will_expected)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts oo = {.id = "tw-observer", .keepalive = 60};
    struct raw_conn_opts d1 = {.id = "tw-dev",
                               .persistent = old_persistent,
                               .keepalive = 60,
                               .will_topic = "tw/will",
                               .will_payload = "offline"};
    struct raw_conn_opts d2 = {.id = "tw-dev", .persistent = new_persistent, .keepalive = 60};
    int obs = -1, old = -1, new = -1, rc = -1;
    struct raw_pkt k = {0};

    T_ASSERT(b);
    obs = raw_mqtt_connect(b, &oo, &rc, NULL);
    T_ASSERT(obs >= 0 && rc == 0);
    T_EQ(raw_subscribe(obs, 1, "tw/#", 0), 0);
    old = raw_mqtt_connect(b, &d1, &rc, NULL);
    T_ASSERT(old >= 0 && rc == 0);
    new = raw_mqtt_connect(b, &d2, &rc, NULL);
    T_ASSERT(new >= 0 && rc == 0);
    T_EQ(raw_expect_close(old, WAIT_MS), 0);
    T_EQ(raw_publish(new, "tw/marker", "m", 0, false, false, 0), 0);
    T_EQ(raw_expect(obs, RAW_PUBLISH, &k, WAIT_MS), 1);
    if (will_expected) {
        T_ASSERTF(strcmp(k.topic, "tw/will") == 0, "got %s, not the will", k.topic);
        raw_pkt_free(&k);
        T_EQ(raw_expect(obs, RAW_PUBLISH, &k, WAIT_MS), 1);
    }
    T_ASSERTF(strcmp(k.topic, "tw/marker") == 0, "got %s before the marker", k.topic);
out:
    raw_pkt_free(&k);
    if (obs >= 0)
        close(obs);
    if (old >= 0)
        close(old);
    if (new >= 0)
        close(new);
    broker_free(b);
}

static void test_takeover_both_persistent_keeps_will(void)
{
    takeover_will(true, true, false);
}

static void test_takeover_new_clean_publishes_will(void)
{
    takeover_will(true, false, true);
}

static void test_takeover_old_clean_publishes_will(void)
{
    takeover_will(false, true, true);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"pubrec_for_qos1", test_pubrec_for_qos1},
        {"pubcomp_for_qos1", test_pubcomp_for_qos1},
        {"puback_for_qos2", test_puback_for_qos2},
        {"pubcomp_before_pubrec", test_pubcomp_before_pubrec},
        {"puback_for_qos2_past_pubrec", test_puback_for_qos2_past_pubrec},
        {"unknown_ids_ignored", test_unknown_ids_ignored},
        {"connack_before_pingresp", test_connack_before_pingresp},
        {"own_delivery_before_puback", test_own_delivery_before_puback},
        {"own_delivery_before_pubrec", test_own_delivery_before_pubrec},
        {"mqtt31_connack_flags", test_mqtt31_connack_flags},
        {"takeover_both_persistent_keeps_will", test_takeover_both_persistent_keeps_will},
        {"takeover_new_clean_publishes_will", test_takeover_new_clean_publishes_will},
        {"takeover_old_clean_publishes_will", test_takeover_old_clean_publishes_will},
    };
    return T_MAIN(cases);
}
