/*
 * 04_qos — the QoS 0/1/2 flows both ways on exact bytes, delivered QoS = min(published,
 * granted), and QoS 2 exactly once when the publisher resends with DUP.
 */
#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 5000

static int raw_client(const struct broker *b, const char *id)
{
    struct raw_conn_opts o = {.id = id, .keepalive = 60};
    int rc = -1, fd = raw_mqtt_connect(b, &o, &rc, NULL);

    if (fd >= 0 && rc != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Every (granted, published) pair: the subscriber receives min of the two. */
static void test_delivered_qos_is_min(void)
{
    struct broker *b = broker_start(NULL);
    struct pc_opts so = {.id = "qos-min-sub"};
    MQTTClient s = NULL;
    struct pc_msg m[9] = {{0}};
    int pub = -1, got = 0, pid = 1;
    char topic[32], payload[32];

    T_ASSERT(b);
    s = pc_connect(b, &so, NULL, NULL);
    T_ASSERT(s);
    for (int g = 0; g <= 2; g++) {
        snprintf(topic, sizeof(topic), "qos/granted%d", g);
        T_EQ(pc_subscribe(s, topic, g), g);
    }
    pub = raw_client(b, "qos-min-pub");
    T_ASSERT(pub >= 0);
    for (int g = 0; g <= 2; g++) {
        for (int q = 0; q <= 2; q++) {
            snprintf(topic, sizeof(topic), "qos/granted%d", g);
            snprintf(payload, sizeof(payload), "%d %d", g, q);
            T_EQ(raw_publish_flow(pub, topic, payload, q, false, pid++), 0);
        }
    }
    got = pc_collect(s, m, 9, WAIT_MS);
    T_EQ(got, 9);
    for (int i = 0; i < got; i++) {
        int g = -1, q = -1;

        T_EQ(sscanf(m[i].payload, "%d %d", &g, &q), 2);
        T_ASSERTF(m[i].qos == (g < q ? g : q), "granted %d, published %d: delivered at %d", g, q,
                  m[i].qos);
    }
out:
    pc_msgs_free(m, got);
    if (pub >= 0)
        close(pub);
    pc_close(&s);
    broker_free(b);
}

/* Inbound flows: PUBACK for QoS 1, PUBREC-PUBREL-PUBCOMP for QoS 2, with the sender's ids. */
static void test_inbound_flows(void)
{
    struct broker *b = broker_start(NULL);
    int fd = -1;

    T_ASSERT(b);
    fd = raw_client(b, "inbound");
    T_ASSERT(fd >= 0);
    T_EQ(raw_publish_flow(fd, "in/q0", "zero", 0, false, 0), 0);
    T_EQ(raw_publish_flow(fd, "in/q1", "one", 1, false, 1), 0);
    T_EQ(raw_publish_flow(fd, "in/q2", "two", 2, false, 2), 0);
    T_EQ(raw_publish_flow(fd, "in/q1", "max id", 1, false, 65535), 0);
    T_EQ(raw_publish_flow(fd, "in/q2", "max id", 2, false, 65535), 0);
    T_ASSERT(broker_alive(b));
out:
    if (fd >= 0)
        close(fd);
    broker_free(b);
}

/* Outbound flows to a raw subscriber granted QoS 2: it sees each QoS as published. */
static void test_outbound_flows(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_pkt p = {0};
    int sub = -1, pub = -1;

    T_ASSERT(b);
    sub = raw_client(b, "outbound-sub");
    T_ASSERT(sub >= 0);
    T_EQ(raw_subscribe(sub, 1, "out/#", 2), 2);
    pub = raw_client(b, "outbound-pub");
    T_ASSERT(pub >= 0);
    for (int q = 0; q <= 2; q++) {
        char payload[8];

        snprintf(payload, sizeof(payload), "q%d", q);
        T_EQ(raw_publish_flow(pub, "out/t", payload, q, false, 100 + q), 0);
        T_EQ(raw_recv_publish(sub, &p, WAIT_MS, true), 1);
        T_EQ(p.qos, q);
        T_EQ(p.dup, 0);
        T_EQ(p.retain, 0);
        T_ASSERT(strcmp(p.topic, "out/t") == 0);
        T_ASSERT(p.payload_len == 2 && memcmp(p.payload, payload, 2) == 0);
        if (q > 0)
            T_ASSERTF(p.pid > 0, "packet id %d", p.pid);
        raw_pkt_free(&p);
    }
out:
    raw_pkt_free(&p);
    if (sub >= 0)
        close(sub);
    if (pub >= 0)
        close(pub);
    broker_free(b);
}

/*
 * [MQTT-4.3.3]: a QoS 2 publisher that resends the PUBLISH with DUP (same packet id, before
 * PUBREL) must not cause a second delivery. The marker published after it must be the very
 * next message the subscriber sees.
 */
static void test_qos2_dup_exactly_once(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_pkt p = {0};
    int sub = -1, pub = -1;

    T_ASSERT(b);
    sub = raw_client(b, "once-sub");
    T_ASSERT(sub >= 0);
    T_EQ(raw_subscribe(sub, 1, "once/#", 2), 2);
    pub = raw_client(b, "once-pub");
    T_ASSERT(pub >= 0);
    T_EQ(raw_publish(pub, "once/t", "exactly once", 2, false, false, 42), 0);
    T_EQ(raw_expect(pub, RAW_PUBREC, &p, WAIT_MS), 1);
    T_EQ(p.pid, 42);
    raw_pkt_free(&p);
    /* Mosquitto 2.0.11 closes the connection on a second DUP resend (its bug): once there. */
    for (int i = 0; i < (harness_is_mosquitto() ? 1 : 2); i++) {
        T_EQ(raw_publish(pub, "once/t", "exactly once", 2, false, true, 42), 0);
        T_EQ(raw_expect(pub, RAW_PUBREC, &p, WAIT_MS), 1);
        T_EQ(p.pid, 42);
        raw_pkt_free(&p);
    }
    T_EQ(raw_send_ack(pub, RAW_PUBREL, 42), 0);
    T_EQ(raw_expect(pub, RAW_PUBCOMP, &p, WAIT_MS), 1);
    T_EQ(p.pid, 42);
    raw_pkt_free(&p);
    /* (A second copy arriving during this flow fails it too: PUBLISH where PUBREL belongs.) */
    T_EQ(raw_recv_publish(sub, &p, WAIT_MS, true), 1);
    T_ASSERT(p.payload_len == 12 && memcmp(p.payload, "exactly once", 12) == 0);
    raw_pkt_free(&p);
    T_EQ(raw_publish_flow(pub, "once/t", "marker", 2, false, 43), 0);
    T_EQ(raw_recv_publish(sub, &p, WAIT_MS, true), 1);
    T_ASSERTF(p.payload_len == 6 && memcmp(p.payload, "marker", 6) == 0,
              "a second copy arrived before the marker");
out:
    raw_pkt_free(&p);
    if (sub >= 0)
        close(sub);
    if (pub >= 0)
        close(pub);
    broker_free(b);
}

/* Paho both ways at every QoS: the common client round-trips. */
static void test_paho_round_trip(void)
{
    struct broker *b = broker_start(NULL);
    struct pc_opts o = {.id = "paho-rt"};
    MQTTClient c = NULL;
    struct pc_msg m = {0};

    T_ASSERT(b);
    c = pc_connect(b, &o, NULL, NULL);
    T_ASSERT(c);
    T_EQ(pc_subscribe(c, "rt/t", 2), 2);
    for (int q = 0; q <= 2; q++) {
        char payload[8];

        snprintf(payload, sizeof(payload), "rt%d", q);
        T_EQ(pc_publish_str(c, "rt/t", payload, q, false), 0);
        T_EQ(pc_recv(c, &m, WAIT_MS), 1);
        T_ASSERT(strcmp(m.payload, payload) == 0);
        T_EQ(m.qos, q);
        pc_msg_free(&m);
    }
out:
    pc_msg_free(&m);
    pc_close(&c);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"delivered_qos_is_min", test_delivered_qos_is_min},
        {"inbound_flows", test_inbound_flows},
        {"outbound_flows", test_outbound_flows},
        {"qos2_dup_exactly_once", test_qos2_dup_exactly_once},
        {"paho_round_trip", test_paho_round_trip},
    };
    return T_MAIN(cases);
}
