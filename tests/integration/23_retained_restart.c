/*
 * 23_retained_restart — retained messages (set, replaced, cleared) and persistent sessions'
 * subscriptions survive a restart: after SIGTERM (both brokers) and after kill -9 (Cairn).
 */
#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 5000

static bool is(const struct raw_pkt *p, const char *topic, const char *payload, int retain)
{
    bool ok = p->topic && strcmp(p->topic, topic) == 0 && p->payload_len == strlen(payload) &&
              memcmp(p->payload, payload, p->payload_len) == 0 && p->retain == retain;

    if (!ok)
        t_note("got '%s' = '%.*s' retain %d; want '%s' = '%s' retain %d", p->topic ? p->topic : "?",
               (int)p->payload_len, p->payload ? (const char *)p->payload : "", p->retain, topic,
               payload, retain);
    return ok;
}

static void run(bool kill9)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts so = {.id = "rr-sub", .persistent = true, .keepalive = 60};
    struct raw_conn_opts po = {.id = "rr-pub", .keepalive = 60};
    struct raw_conn_opts no = {.id = "rr-new", .keepalive = 60};
    struct raw_pkt p = {0};
    int sub = -1, pub = -1, fresh = -1, rc = -1, sp = -1;
    bool got1 = false, got2 = false;

    T_ASSERT(b);
    sub = raw_mqtt_connect(b, &so, &rc, &sp);
    T_ASSERT(sub >= 0);
    T_EQ(raw_subscribe(sub, 1, "rrsub/+/x", 1), 1);
    T_EQ(raw_subscribe(sub, 2, "rrsub/q2", 2), 2);
    T_EQ(raw_send_disconnect(sub), 0);
    T_EQ(raw_expect_close(sub, WAIT_MS), 0);
    close(sub);
    sub = -1;
    pub = raw_mqtt_connect(b, &po, &rc, NULL);
    T_ASSERT(pub >= 0);
    T_EQ(raw_publish_flow(pub, "rr/1", "first", 1, true, 1), 0);
    T_EQ(raw_publish_flow(pub, "rr/1", "one", 1, true, 2), 0);
    T_EQ(raw_publish_flow(pub, "rr/2", "two", 2, true, 3), 0);
    T_EQ(raw_publish_flow(pub, "rr/3", "three", 0, true, 0), 0);
    T_EQ(raw_publish_flow(pub, "rr/3", "", 1, true, 4), 0);
    /* The QoS 0 retained set above must have been handled before the kill: a QoS 1 after it. */
    close(pub);
    pub = -1;

    if (kill9)
        T_EQ(broker_kill9(b), 0);
    else
        T_EQ(broker_stop_term(b, 10000), 0);
    T_EQ(broker_restart(b), 0);

    fresh = raw_mqtt_connect(b, &no, &rc, NULL);
    T_ASSERT(fresh >= 0);
    T_EQ(raw_subscribe(fresh, 1, "rr/#", 2), 2);
    for (int i = 0; i < 2; i++) {
        T_EQ(raw_recv_publish(fresh, &p, WAIT_MS, true), 1);
        if (p.topic && strcmp(p.topic, "rr/1") == 0) {
            T_ASSERT(!got1 && is(&p, "rr/1", "one", 1));
            got1 = true;
        } else {
            T_ASSERT(!got2 && is(&p, "rr/2", "two", 1));
            T_EQ(p.qos, 2);
            got2 = true;
        }
        raw_pkt_free(&p);
    }
    /* rr/3 was cleared: the next message is a marker. */
    pub = raw_mqtt_connect(b, &po, &rc, NULL);
    T_ASSERT(pub >= 0);
    T_EQ(raw_publish_flow(pub, "rr/marker", "m", 1, false, 1), 0);
    T_EQ(raw_recv_publish(fresh, &p, WAIT_MS, true), 1);
    T_ASSERT(is(&p, "rr/marker", "m", 0));
    raw_pkt_free(&p);

    /* The persistent session and both subscriptions survived. */
    sub = raw_mqtt_connect(b, &so, &rc, &sp);
    T_ASSERT(sub >= 0);
    T_EQ(sp, 1);
    T_EQ(raw_publish_flow(pub, "rrsub/a/x", "via plus", 1, false, 2), 0);
    T_EQ(raw_publish_flow(pub, "rrsub/q2", "via q2", 2, false, 3), 0);
    T_EQ(raw_recv_publish(sub, &p, WAIT_MS, true), 1);
    T_ASSERT(is(&p, "rrsub/a/x", "via plus", 0));
    raw_pkt_free(&p);
    T_EQ(raw_recv_publish(sub, &p, WAIT_MS, true), 1);
    T_ASSERT(is(&p, "rrsub/q2", "via q2", 0));
    T_EQ(p.qos, 2);
out:
    raw_pkt_free(&p);
    if (sub >= 0)
        close(sub);
    if (pub >= 0)
        close(pub);
    if (fresh >= 0)
        close(fresh);
    broker_free(b);
}

static void test_after_sigterm(void)
{
    run(false);
}

static void test_after_kill9(void)
{
    if (harness_cairn_only("Mosquitto keeps retained changes in memory until its autosave"))
        return;
    run(true);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"after_sigterm", test_after_sigterm},
        {"after_kill9", test_after_kill9},
    };
    return T_MAIN(cases);
}
