/*
 * 02_takeover — a new connection with a client id already connected takes the session over:
 * the old connection is closed, the new one works, and a persistent session's subscriptions
 * carry over (session present = 1).
 */
#include "harness.h"

#include <string.h>
#include <unistd.h>

#define WAIT_MS 5000

static void test_takeover_closes_old(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts o = {.id = "same-id", .keepalive = 60};
    struct raw_pkt p = {0};
    int fd1 = -1, fd2 = -1, rc = -1;

    T_ASSERT(b);
    fd1 = raw_mqtt_connect(b, &o, &rc, NULL);
    T_ASSERT(fd1 >= 0);
    T_EQ(rc, 0);
    fd2 = raw_mqtt_connect(b, &o, &rc, NULL);
    T_ASSERT(fd2 >= 0);
    T_EQ(rc, 0);
    T_EQ(raw_expect_close(fd1, WAIT_MS), 0);
    /* The new connection is fully usable. */
    T_EQ(raw_subscribe(fd2, 1, "take/t", 1), 1);
    T_EQ(raw_publish(fd2, "take/t", "after", 0, false, false, 0), 0);
    T_EQ(raw_expect(fd2, RAW_PUBLISH, &p, WAIT_MS), 1);
    T_ASSERT(strcmp(p.topic, "take/t") == 0);
    T_ASSERT(broker_alive(b));
out:
    raw_pkt_free(&p);
    if (fd1 >= 0)
        close(fd1);
    if (fd2 >= 0)
        close(fd2);
    broker_free(b);
}

/* A persistent session taken over keeps its subscriptions; CONNACK says session present. */
static void test_takeover_persistent(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts o = {.id = "same-persistent", .persistent = true, .keepalive = 60};
    struct raw_pkt p = {0};
    int fd1 = -1, fd2 = -1, rc = -1, sp = -1;

    T_ASSERT(b);
    fd1 = raw_mqtt_connect(b, &o, &rc, &sp);
    T_ASSERT(fd1 >= 0);
    T_EQ(rc, 0);
    T_EQ(sp, 0);
    T_EQ(raw_subscribe(fd1, 1, "takep/#", 1), 1);
    fd2 = raw_mqtt_connect(b, &o, &rc, &sp);
    T_ASSERT(fd2 >= 0);
    T_EQ(rc, 0);
    T_EQ(sp, 1);
    T_EQ(raw_expect_close(fd1, WAIT_MS), 0);
    /* The subscription made on the old connection delivers on the new one. */
    T_EQ(raw_publish(fd2, "takep/x", "carried", 1, false, false, 5), 0);
    for (int seen_ack = 0, seen_pub = 0; !(seen_ack && seen_pub);) {
        T_EQ(raw_read_packet(fd2, &p, WAIT_MS), 1);
        if (p.first >> 4 == RAW_PUBACK) {
            T_EQ(p.pid, 5);
            seen_ack = 1;
        } else {
            T_EQ(p.first >> 4, RAW_PUBLISH);
            T_ASSERT(strcmp(p.topic, "takep/x") == 0);
            T_EQ(p.qos, 1);
            T_EQ(raw_send_ack(fd2, RAW_PUBACK, p.pid), 0);
            seen_pub = 1;
        }
        raw_pkt_free(&p);
    }
out:
    raw_pkt_free(&p);
    if (fd1 >= 0)
        close(fd1);
    if (fd2 >= 0)
        close(fd2);
    broker_free(b);
}

/* Taking over with clean session 1 discards the old persistent session. */
static void test_takeover_clean_discards(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts op = {.id = "take-clean", .persistent = true, .keepalive = 60};
    struct raw_conn_opts oc = {.id = "take-clean", .keepalive = 60};
    int fd1 = -1, fd2 = -1, fd3 = -1, rc = -1, sp = -1;

    T_ASSERT(b);
    fd1 = raw_mqtt_connect(b, &op, &rc, &sp);
    T_ASSERT(fd1 >= 0);
    T_EQ(raw_subscribe(fd1, 1, "takec/#", 1), 1);
    fd2 = raw_mqtt_connect(b, &oc, &rc, &sp);
    T_ASSERT(fd2 >= 0);
    T_EQ(rc, 0);
    T_EQ(sp, 0);
    T_EQ(raw_expect_close(fd1, WAIT_MS), 0);
    T_EQ(raw_send_disconnect(fd2), 0);
    T_EQ(raw_expect_close(fd2, WAIT_MS), 0);
    fd3 = raw_mqtt_connect(b, &op, &rc, &sp);
    T_ASSERT(fd3 >= 0);
    T_EQ(rc, 0);
    T_EQ(sp, 0);
out:
    if (fd1 >= 0)
        close(fd1);
    if (fd2 >= 0)
        close(fd2);
    if (fd3 >= 0)
        close(fd3);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"takeover_closes_old", test_takeover_closes_old},
        {"takeover_persistent", test_takeover_persistent},
        {"takeover_clean_discards", test_takeover_clean_discards},
    };
    return T_MAIN(cases);
}
