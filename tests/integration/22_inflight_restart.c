/*
 * 22_inflight_restart — in-flight state survives kill -9: a subscriber that received QoS 1/2
 * messages without acknowledging them gets them again with DUP=1 and their packet ids (and a
 * PUBREL for the one past PUBREC); a QoS 2 publisher that got PUBREC resends with DUP after the
 * restart and the message is delivered once. Cairn only (Mosquitto loses this on kill -9).
 */
#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 5000

static bool payload_is(const struct raw_pkt *p, const char *s)
{
    return p->payload_len == strlen(s) && memcmp(p->payload, s, p->payload_len) == 0;
}

static void test_subscriber_inflight(void)
{
    struct broker *b = NULL;
    struct raw_conn_opts so = {.id = "ifr-sub", .persistent = true, .keepalive = 60};
    struct raw_conn_opts po = {.id = "ifr-pub", .keepalive = 60};
    struct raw_pkt p = {0};
    int sub = -1, pub = -1, rc = -1, sp = -1, pid1 = -1, pid2 = -1, pid3 = -1;
    bool seen1 = false, seen2 = false, seen_rel = false;

    if (harness_cairn_only("needs in-flight state to survive kill -9"))
        goto out;
    b = broker_start(NULL);
    T_ASSERT(b);
    sub = raw_mqtt_connect(b, &so, &rc, &sp);
    T_ASSERT(sub >= 0);
    T_EQ(raw_subscribe(sub, 1, "ifr/#", 2), 2);
    pub = raw_mqtt_connect(b, &po, &rc, NULL);
    T_ASSERT(pub >= 0);
    T_EQ(raw_publish_flow(pub, "ifr/1", "m1", 1, false, 1), 0);
    T_EQ(raw_publish_flow(pub, "ifr/2", "m2", 2, false, 2), 0);
    T_EQ(raw_publish_flow(pub, "ifr/3", "m3", 2, false, 3), 0);
    T_EQ(raw_recv_publish(sub, &p, WAIT_MS, false), 1);
    T_ASSERT(payload_is(&p, "m1"));
    pid1 = p.pid;
    raw_pkt_free(&p);
    T_EQ(raw_recv_publish(sub, &p, WAIT_MS, false), 1);
    T_ASSERT(payload_is(&p, "m2"));
    pid2 = p.pid;
    raw_pkt_free(&p);
    T_EQ(raw_recv_publish(sub, &p, WAIT_MS, false), 1);
    T_ASSERT(payload_is(&p, "m3"));
    pid3 = p.pid;
    raw_pkt_free(&p);
    T_EQ(raw_send_ack(sub, RAW_PUBREC, pid3), 0);
    /* The PUBREL shows the broker recorded the PUBREC (it is sent after the state is durable). */
    T_EQ(raw_expect(sub, RAW_PUBREL, &p, WAIT_MS), 1);
    T_EQ(p.pid, pid3);
    raw_pkt_free(&p);

    T_EQ(broker_kill9(b), 0);
    close(sub);
    close(pub);
    sub = pub = -1;
    T_EQ(broker_restart(b), 0);

    sub = raw_mqtt_connect(b, &so, &rc, &sp);
    T_ASSERT(sub >= 0);
    T_EQ(sp, 1);
    while (!(seen1 && seen2 && seen_rel)) {
        int type;

        T_ASSERTF(raw_read_packet(sub, &p, WAIT_MS) == 1, "resent: m1 %d, m2 %d, PUBREL %d", seen1,
                  seen2, seen_rel);
        type = p.first >> 4;
        if (type == RAW_PUBREL) {
            T_ASSERT(p.pid == pid3 && !seen_rel);
            seen_rel = true;
        } else {
            T_EQ(type, RAW_PUBLISH);
            T_ASSERTF(p.dup == 1, "resent '%.*s' without DUP", (int)p.payload_len, p.payload);
            if (payload_is(&p, "m1")) {
                T_ASSERT(!seen1 && !seen2 && p.pid == pid1 && p.qos == 1);
                seen1 = true;
            } else {
                T_ASSERTF(payload_is(&p, "m2") && !seen2, "unexpected '%.*s'", (int)p.payload_len,
                          p.payload);
                T_ASSERT(p.pid == pid2 && p.qos == 2);
                seen2 = true;
            }
        }
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

static void test_publisher_qos2_resend(void)
{
    struct broker *b = NULL;
    struct raw_conn_opts so = {.id = "ifp-sub", .persistent = true, .keepalive = 60};
    struct raw_conn_opts po = {.id = "ifp-pub", .persistent = true, .keepalive = 60};
    struct raw_pkt p = {0};
    int sub = -1, pub = -1, rc = -1, sp = -1;

    if (harness_cairn_only("needs inbound QoS 2 state to survive kill -9"))
        goto out;
    b = broker_start(NULL);
    T_ASSERT(b);
    sub = raw_mqtt_connect(b, &so, &rc, &sp);
    T_ASSERT(sub >= 0);
    T_EQ(raw_subscribe(sub, 1, "ifp/#", 2), 2);
    T_EQ(raw_send_disconnect(sub), 0);
    T_EQ(raw_expect_close(sub, WAIT_MS), 0);
    close(sub);
    sub = -1;

    pub = raw_mqtt_connect(b, &po, &rc, &sp);
    T_ASSERT(pub >= 0);
    T_EQ(raw_publish(pub, "ifp/t", "once", 2, false, false, 77), 0);
    T_EQ(raw_expect(pub, RAW_PUBREC, &p, WAIT_MS), 1);
    T_EQ(p.pid, 77);
    raw_pkt_free(&p);

    T_EQ(broker_kill9(b), 0);
    close(pub);
    pub = -1;
    T_EQ(broker_restart(b), 0);

    pub = raw_mqtt_connect(b, &po, &rc, &sp);
    T_ASSERT(pub >= 0);
    T_EQ(sp, 1);
    T_EQ(raw_publish(pub, "ifp/t", "once", 2, false, true, 77), 0);
    T_EQ(raw_expect(pub, RAW_PUBREC, &p, WAIT_MS), 1);
    T_EQ(p.pid, 77);
    raw_pkt_free(&p);
    T_EQ(raw_send_ack(pub, RAW_PUBREL, 77), 0);
    T_EQ(raw_expect(pub, RAW_PUBCOMP, &p, WAIT_MS), 1);
    T_EQ(p.pid, 77);
    raw_pkt_free(&p);
    T_EQ(raw_publish_flow(pub, "ifp/t", "marker", 2, false, 78), 0);

    sub = raw_mqtt_connect(b, &so, &rc, &sp);
    T_ASSERT(sub >= 0);
    T_EQ(sp, 1);
    T_EQ(raw_recv_publish(sub, &p, WAIT_MS, true), 1);
    T_ASSERT(payload_is(&p, "once"));
    raw_pkt_free(&p);
    T_EQ(raw_recv_publish(sub, &p, WAIT_MS, true), 1);
    T_ASSERTF(payload_is(&p, "marker"), "'%.*s' delivered twice", (int)p.payload_len, p.payload);
out:
    raw_pkt_free(&p);
    if (sub >= 0)
        close(sub);
    if (pub >= 0)
        close(pub);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"subscriber_inflight", test_subscriber_inflight},
        {"publisher_qos2_resend", test_publisher_qos2_resend},
    };
    return T_MAIN(cases);
}
