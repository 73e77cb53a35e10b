/*
 * 05_dup_resend — a persistent subscriber that received QoS 1/2 messages but did not
 * acknowledge them gets them again on reconnect, with DUP=1 and their original packet ids, and
 * a PUBREL (not the PUBLISH) for the one it had answered with PUBREC [MQTT-4.4.0-1]. Raw
 * socket client: it must withhold acks and see the exact flags.
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

static void test_dup_on_reconnect(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts so = {.id = "dup-sub", .persistent = true, .keepalive = 60};
    struct raw_conn_opts po = {.id = "dup-pub", .keepalive = 60};
    struct raw_pkt p = {0};
    int sub = -1, pub = -1, rc = -1, sp = -1;
    int pid1 = -1, pid2 = -1, pid3 = -1;
    bool seen1 = false, seen2 = false, seen_rel = false;

    T_ASSERT(b);
    sub = raw_mqtt_connect(b, &so, &rc, &sp);
    T_ASSERT(sub >= 0);
    T_EQ(raw_subscribe(sub, 1, "dup/#", 2), 2);
    pub = raw_mqtt_connect(b, &po, &rc, NULL);
    T_ASSERT(pub >= 0);
    T_EQ(raw_publish_flow(pub, "dup/1", "m1", 1, false, 1), 0);
    T_EQ(raw_publish_flow(pub, "dup/2", "m2", 2, false, 2), 0);
    T_EQ(raw_publish_flow(pub, "dup/3", "m3", 2, false, 3), 0);

    /* m1 and m2 are read and not acknowledged; m3 gets PUBREC, its PUBREL no PUBCOMP. */
    T_EQ(raw_recv_publish(sub, &p, WAIT_MS, false), 1);
    T_ASSERT(payload_is(&p, "m1") && p.qos == 1 && p.dup == 0);
    pid1 = p.pid;
    raw_pkt_free(&p);
    T_EQ(raw_recv_publish(sub, &p, WAIT_MS, false), 1);
    T_ASSERT(payload_is(&p, "m2") && p.qos == 2 && p.dup == 0);
    pid2 = p.pid;
    raw_pkt_free(&p);
    T_EQ(raw_recv_publish(sub, &p, WAIT_MS, false), 1);
    T_ASSERT(payload_is(&p, "m3") && p.qos == 2);
    pid3 = p.pid;
    raw_pkt_free(&p);
    T_EQ(raw_send_ack(sub, RAW_PUBREC, pid3), 0);
    T_EQ(raw_expect(sub, RAW_PUBREL, &p, WAIT_MS), 1);
    T_EQ(p.pid, pid3);
    raw_pkt_free(&p);
    T_ASSERT(pid1 > 0 && pid2 > 0 && pid3 > 0 && pid1 != pid2 && pid2 != pid3 && pid1 != pid3);
    close(sub); /* abrupt: no DISCONNECT */

    sub = raw_mqtt_connect(b, &so, &rc, &sp);
    T_ASSERT(sub >= 0);
    T_EQ(rc, 0);
    T_EQ(sp, 1);
    while (!(seen1 && seen2 && seen_rel)) {
        int type;

        T_EQ(raw_read_packet(sub, &p, WAIT_MS), 1);
        type = p.first >> 4;
        if (type == RAW_PUBREL) {
            T_ASSERTF(p.pid == pid3 && !seen_rel, "PUBREL pid %d (want %d)", p.pid, pid3);
            T_EQ(p.first, RAW_PUBREL << 4 | 2);
            seen_rel = true;
        } else {
            T_EQ(type, RAW_PUBLISH);
            T_ASSERTF(p.dup == 1, "resent %.*s without DUP", (int)p.payload_len, p.payload);
            if (payload_is(&p, "m1")) {
                T_ASSERT(!seen1 && !seen2); /* in the original order */
                T_EQ(p.pid, pid1);
                T_EQ(p.qos, 1);
                seen1 = true;
            } else {
                T_ASSERTF(payload_is(&p, "m2"), "unexpected resend '%.*s'", (int)p.payload_len,
                          p.payload);
                T_ASSERT(!seen2);
                T_EQ(p.pid, pid2);
                T_EQ(p.qos, 2);
                seen2 = true;
            }
        }
        raw_pkt_free(&p);
    }
    /* Complete every flow now; a third connection gets nothing again. */
    T_EQ(raw_send_ack(sub, RAW_PUBACK, pid1), 0);
    T_EQ(raw_send_ack(sub, RAW_PUBREC, pid2), 0);
    T_EQ(raw_expect(sub, RAW_PUBREL, &p, WAIT_MS), 1);
    T_EQ(p.pid, pid2);
    raw_pkt_free(&p);
    T_EQ(raw_send_ack(sub, RAW_PUBCOMP, pid2), 0);
    T_EQ(raw_send_ack(sub, RAW_PUBCOMP, pid3), 0);
    T_EQ(raw_send_disconnect(sub), 0);
    T_EQ(raw_expect_close(sub, WAIT_MS), 0);
    close(sub);
    sub = raw_mqtt_connect(b, &so, &rc, &sp);
    T_ASSERT(sub >= 0);
    T_EQ(sp, 1);
    T_EQ(raw_publish_flow(pub, "dup/4", "marker", 1, false, 4), 0);
    T_EQ(raw_recv_publish(sub, &p, WAIT_MS, true), 1);
    T_ASSERTF(payload_is(&p, "marker") && p.dup == 0, "got '%.*s' dup %d before the marker",
              (int)p.payload_len, p.payload, p.dup);
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
        {"dup_on_reconnect", test_dup_on_reconnect},
    };
    return T_MAIN(cases);
}
