/*
 * 36_sys_write — $SYS is the broker's (issue 9): a client's PUBLISH to "$SYS" or under "$SYS/",
 * at QoS 0, 1 and 2, retained or not, is acknowledged with the exact QoS flow and dropped (no
 * ACL file here: everything else may be written); a will on $SYS is accepted at CONNECT and
 * never published. A subscriber to "$SYS/#" and "$SYS" sees none of them, live or retained, and
 * none is retained after a restart.
 *
 * Every forged payload starts with "forged"; the broker's own $SYS messages may arrive among
 * them. "None arrived" is shown with a marker message that follows the forged ones and must
 * come with no forged one before it.
 */
#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 5000

/* Receive on c until a message on marker arrives; count those with a forged payload. 0 when
 * the marker came, -1 when it did not. */
static int until_marker(MQTTClient c, const char *marker, int *forged)
{
    uint64_t deadline = t_now_ms() + WAIT_MS;
    int rc = -1;

    *forged = 0;
    while (t_now_ms() < deadline) {
        struct pc_msg m = {0};
        bool done;

        if (pc_recv(c, &m, WAIT_MS) != 1)
            break;
        if (strncmp(m.payload, "forged", 6) == 0) {
            t_note("a subscriber got %s \"%s\" (retained %d)", m.topic, m.payload, m.retained);
            (*forged)++;
        }
        done = strcmp(m.topic, marker) == 0;
        pc_msg_free(&m);
        if (done) {
            rc = 0;
            break;
        }
    }
    return rc;
}

/* A new subscriber to $SYS/# and $SYS gets no forged retained message before the retained
 * marker it subscribes to last. 0 or -1. */
static int check_retained(const struct broker *b, const char *id)
{
    struct pc_opts o = {.id = id};
    MQTTClient c = pc_connect(b, &o, NULL, NULL);
    int forged = 0, rc = -1;

    if (!c)
        goto out;
    if (pc_subscribe(c, "$SYS/#", 2) != 2 || pc_subscribe(c, "$SYS", 2) != 2 ||
        pc_subscribe(c, "marker/retained", 2) != 2)
        goto out;
    if (until_marker(c, "marker/retained", &forged) != 0 || forged != 0)
        goto out;
    rc = 0;
out:
    pc_close(&c);
    return rc;
}

static void test_publish_dropped(void)
{
    static const char *const topics[] = {"$SYS/broker/version", "$SYS/broker/forged", "$SYS",
                                         "$SYS/forged/deep/topic"};
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts po = {.id = "sys-pub", .keepalive = 60};
    struct pc_opts so = {.id = "sys-sub"};
    MQTTClient sub = NULL;
    int pub = -1, rc = -1, pid = 1, forged = 0;
    char payload[64];

    T_ASSERT(b);
    sub = pc_connect(b, &so, NULL, NULL);
    T_ASSERT(sub);
    T_EQ(pc_subscribe(sub, "$SYS/#", 2), 2);
    T_EQ(pc_subscribe(sub, "$SYS", 2), 2);
    T_EQ(pc_subscribe(sub, "marker/#", 2), 2);
    pub = raw_mqtt_connect(b, &po, &rc, NULL);
    T_ASSERT(pub >= 0);
    T_EQ(rc, 0);
    T_EQ(raw_publish_flow(pub, "marker/retained", "marker", 1, true, pid++), 0);
    for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++) {
        for (int qos = 0; qos <= 2; qos++) {
            for (int retain = 0; retain <= 1; retain++) {
                snprintf(payload, sizeof(payload), "forged q%d r%d", qos, retain);
                /* acknowledged as the QoS asks: PUBACK, or PUBREC then PUBCOMP */
                T_ASSERTF(raw_publish_flow(pub, topics[t], payload, qos, retain, pid++) == 0,
                          "%s at QoS %d retain %d: flow not completed", topics[t], qos, retain);
            }
        }
    }
    T_EQ(raw_publish_flow(pub, "marker/live", "marker", 2, false, pid++), 0);
    T_EQ(until_marker(sub, "marker/live", &forged), 0);
    T_EQ(forged, 0);
    T_EQ(check_retained(b, "sys-check-1"), 0);

    close(pub);
    pub = -1;
    pc_close(&sub);
    T_EQ(broker_stop_term(b, WAIT_MS), 0);
    T_EQ(broker_restart(b), 0);
    T_EQ(check_retained(b, "sys-check-2"), 0);
out:
    if (pub >= 0)
        close(pub);
    pc_close(&sub);
    broker_free(b);
}

/* A will on $SYS: the CONNECT is accepted (as Mosquitto does), the will never published. */
static void test_will_dropped(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts wo = {.id = "sys-will",
                               .keepalive = 60,
                               .will_topic = "$SYS/broker/forged-will",
                               .will_payload = "forged will",
                               .will_qos = 1,
                               .will_retain = true};
    struct raw_conn_opts again = {.id = "sys-will", .keepalive = 60};
    struct pc_opts so = {.id = "sys-sub"};
    MQTTClient sub = NULL;
    int w = -1, rc = -1, forged = 0;

    T_ASSERT(b);
    sub = pc_connect(b, &so, NULL, NULL);
    T_ASSERT(sub);
    T_EQ(pc_subscribe(sub, "$SYS/#", 2), 2);
    T_EQ(pc_subscribe(sub, "marker/#", 2), 2);
    w = raw_mqtt_connect(b, &wo, &rc, NULL);
    T_ASSERT(w >= 0);
    T_EQ(rc, 0);
    if (!harness_is_mosquitto())
        T_EQ(broker_wait_log(b, "will on $SYS/broker/forged-will dropped", WAIT_MS), 0);
    close(w); /* abrupt: a will would be published now */
    /*
     * The same id again: whether the broker saw the close first or takes the old connection over
     * now, a will it published would be routed before this CONNACK, so before the marker.
     */
    w = raw_mqtt_connect(b, &again, &rc, NULL);
    T_ASSERT(w >= 0);
    T_EQ(rc, 0);
    T_EQ(raw_publish_flow(w, "marker/retained", "marker", 1, true, 1), 0);
    T_EQ(until_marker(sub, "marker/retained", &forged), 0);
    T_EQ(forged, 0);
    T_EQ(check_retained(b, "sys-check-1"), 0);
out:
    if (w >= 0)
        close(w);
    pc_close(&sub);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"publish_dropped", test_publish_dropped},
        {"will_dropped", test_will_dropped},
    };

    return T_MAIN(cases);
}
