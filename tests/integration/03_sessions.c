/*
 * 03_sessions — clean and persistent sessions across a disconnect, and CONNACK's
 * session-present flag.
 *
 * "Nothing else arrived" is shown with a marker: a message published after the one that must
 * not arrive, on a topic the client does receive; the marker must be the next thing delivered.
 */
#include "harness.h"

#include <stdio.h>
#include <string.h>

#define WAIT_MS 5000

static void test_clean_session_discarded(void)
{
    struct broker *b = broker_start(NULL);
    struct pc_opts so = {.id = "sess-clean"}, po = {.id = "sess-clean-pub"};
    MQTTClient s = NULL, p = NULL;
    struct pc_msg m = {0};
    int rc = -1, sp = -1;

    T_ASSERT(b);
    s = pc_connect(b, &so, &rc, &sp);
    T_ASSERT(s);
    T_EQ(sp, 0);
    T_EQ(pc_subscribe(s, "clean/old", 1), 1);
    pc_close(&s);
    p = pc_connect(b, &po, NULL, NULL);
    T_ASSERT(p);
    s = pc_connect(b, &so, &rc, &sp);
    T_ASSERT(s);
    T_EQ(sp, 0);
    T_EQ(pc_subscribe(s, "clean/marker", 1), 1);
    T_EQ(pc_publish_str(p, "clean/old", "must not arrive", 1, false), 0);
    T_EQ(pc_publish_str(p, "clean/marker", "marker", 1, false), 0);
    T_EQ(pc_recv(s, &m, WAIT_MS), 1);
    T_ASSERTF(strcmp(m.topic, "clean/marker") == 0, "got '%s' on %s", m.payload, m.topic);
out:
    pc_msg_free(&m);
    pc_close(&s);
    pc_close(&p);
    broker_free(b);
}

/*
 * A persistent session keeps its subscription while offline, queues QoS 1 and 2 messages (not
 * QoS 0: queue_qos0_messages is off by default) and delivers them in order on reconnect.
 */
static void test_persistent_queued(void)
{
    struct broker *b = broker_start(NULL);
    struct pc_opts so = {.id = "sess-persist", .persistent = true}, po = {.id = "sess-pub"};
    MQTTClient s = NULL, p = NULL;
    struct pc_msg m[4] = {{0}};
    int rc = -1, sp = -1, got = 0;

    T_ASSERT(b);
    s = pc_connect(b, &so, &rc, &sp);
    T_ASSERT(s);
    T_EQ(sp, 0);
    T_EQ(pc_subscribe(s, "persist/#", 2), 2);
    pc_close(&s);
    p = pc_connect(b, &po, NULL, NULL);
    T_ASSERT(p);
    T_EQ(pc_publish_str(p, "persist/a", "one", 1, false), 0);
    T_EQ(pc_publish_str(p, "persist/a", "qos0 dropped", 0, false), 0);
    T_EQ(pc_publish_str(p, "persist/a", "two", 2, false), 0);
    T_EQ(pc_publish_str(p, "persist/a", "three", 1, false), 0);
    s = pc_connect(b, &so, &rc, &sp);
    T_ASSERT(s);
    T_EQ(sp, 1);
    got = pc_collect(s, m, 3, WAIT_MS);
    T_EQ(got, 3);
    /*
     * Paho hands a QoS 2 message to the application only after PUBREL, so across QoS levels
     * the order seen here is the client's; within one QoS it is the broker's.
     */
    {
        const char *q1[2] = {NULL, NULL}, *q2 = NULL;
        int n1 = 0;

        for (int i = 0; i < 3; i++) {
            if (m[i].qos == 1 && n1 < 2)
                q1[n1++] = m[i].payload;
            else if (m[i].qos == 2)
                q2 = m[i].payload;
        }
        T_EQ(n1, 2);
        T_ASSERT(q2 && strcmp(q2, "two") == 0);
        T_ASSERT(strcmp(q1[0], "one") == 0 && strcmp(q1[1], "three") == 0);
    }
    /* The subscription is still there for new messages. */
    T_EQ(pc_publish_str(p, "persist/b", "live", 1, false), 0);
    T_EQ(pc_recv(s, &m[3], WAIT_MS), 1);
    got = 4;
    T_ASSERT(strcmp(m[3].payload, "live") == 0);
out:
    pc_msgs_free(m, got);
    pc_close(&s);
    pc_close(&p);
    broker_free(b);
}

/* Connecting with clean session 1 ends a persistent session: the next one starts empty. */
static void test_clean_ends_persistent(void)
{
    struct broker *b = broker_start(NULL);
    struct pc_opts sp_o = {.id = "sess-end", .persistent = true};
    struct pc_opts sc_o = {.id = "sess-end"};
    struct pc_opts po = {.id = "sess-end-pub"};
    MQTTClient s = NULL, p = NULL;
    struct pc_msg m = {0};
    int rc = -1, sp = -1;

    T_ASSERT(b);
    s = pc_connect(b, &sp_o, &rc, &sp);
    T_ASSERT(s);
    T_EQ(pc_subscribe(s, "end/x", 1), 1);
    pc_close(&s);
    p = pc_connect(b, &po, NULL, NULL);
    T_ASSERT(p);
    T_EQ(pc_publish_str(p, "end/x", "queued then discarded", 1, false), 0);
    s = pc_connect(b, &sc_o, &rc, &sp);
    T_ASSERT(s);
    T_EQ(sp, 0);
    pc_close(&s);
    s = pc_connect(b, &sp_o, &rc, &sp);
    T_ASSERT(s);
    T_EQ(sp, 0);
    T_EQ(pc_subscribe(s, "end/marker", 1), 1);
    T_EQ(pc_publish_str(p, "end/x", "no subscription now", 1, false), 0);
    T_EQ(pc_publish_str(p, "end/marker", "marker", 1, false), 0);
    T_EQ(pc_recv(s, &m, WAIT_MS), 1);
    T_ASSERTF(strcmp(m.topic, "end/marker") == 0, "got '%s' on %s", m.payload, m.topic);
out:
    pc_msg_free(&m);
    pc_close(&s);
    pc_close(&p);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"clean_session_discarded", test_clean_session_discarded},
        {"persistent_queued", test_persistent_queued},
        {"clean_ends_persistent", test_clean_ends_persistent},
    };
    return T_MAIN(cases);
}
