/*
 * 01_connect — CONNECT handling: every CONNACK return code that applies, MQTT 3.1 clients,
 * generated client ids, and the connections the broker must close (a first packet that is not
 * CONNECT, a second CONNECT, no CONNECT at all within the timeout).
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 5000

static void test_accepted(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts o = {.id = "accepted-1", .keepalive = 60};
    int fd = -1, rc = -1, sp = -1;

    T_ASSERT(b);
    fd = raw_mqtt_connect(b, &o, &rc, &sp);
    T_ASSERT(fd >= 0);
    T_EQ(rc, 0);
    T_EQ(sp, 0);
    T_EQ(raw_send_disconnect(fd), 0);
    T_EQ(raw_expect_close(fd, WAIT_MS), 0);
out:
    if (fd >= 0)
        close(fd);
    broker_free(b);
}

/* [MQTT-3.1.2-2]: an unsupported protocol level gets CONNACK 1 and the connection closes. */
static void test_bad_protocol_level(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts o = {.id = "level-6", .keepalive = 60, .level = 6};
    int fd = -1, rc = -1;

    T_ASSERT(b);
    fd = raw_mqtt_connect(b, &o, &rc, NULL);
    T_ASSERTF(fd >= 0, "no CONNACK for protocol level 6");
    T_EQ(rc, 1);
    T_EQ(raw_expect_close(fd, WAIT_MS), 0);
out:
    if (fd >= 0)
        close(fd);
    broker_free(b);
}

/* [MQTT-3.1.3-8]: an empty client id with clean session 0 gets CONNACK 2, then close. */
static void test_empty_id_persistent(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts o = {.id = "", .persistent = true, .keepalive = 60};
    int fd = -1, rc = -1;

    T_ASSERT(b);
    fd = raw_mqtt_connect(b, &o, &rc, NULL);
    T_ASSERT(fd >= 0);
    T_EQ(rc, 2);
    T_EQ(raw_expect_close(fd, WAIT_MS), 0);
out:
    if (fd >= 0)
        close(fd);
    broker_free(b);
}

/* MQTT 3.1 limits client ids to 23 characters: a longer one is rejected with CONNACK 2. */
static void test_mqtt31_long_id(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts o = {.id = "abcdefghijklmnopqrstuvwxyz", .keepalive = 60, .level = 3};
    int fd = -1, rc = -1;

    if (harness_cairn_only("Mosquitto 2.0 accepts 3.1 client ids over 23 characters"))
        goto out;
    T_ASSERT(b);
    fd = raw_mqtt_connect(b, &o, &rc, NULL);
    T_ASSERT(fd >= 0);
    T_EQ(rc, 2);
    T_EQ(raw_expect_close(fd, WAIT_MS), 0);
out:
    if (fd >= 0)
        close(fd);
    broker_free(b);
}

static void test_not_authorised(void)
{
    struct broker_opts bo = {.no_anonymous = true, .config = "allow_anonymous false"};
    struct broker *b = broker_start(&bo);
    struct raw_conn_opts o = {.id = "anon", .keepalive = 60};
    int fd = -1, rc = -1;

    T_ASSERT(b);
    fd = raw_mqtt_connect(b, &o, &rc, NULL);
    T_ASSERT(fd >= 0);
    T_EQ(rc, 5);
    T_EQ(raw_expect_close(fd, WAIT_MS), 0);
out:
    if (fd >= 0)
        close(fd);
    broker_free(b);
}

/* MQIsdp level 3 is accepted on raw bytes, and a Paho 3.1 client round-trips a message. */
static void test_mqtt31_accepted(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts o = {.id = "mqisdp-raw", .keepalive = 60, .level = 3};
    struct pc_opts po = {.id = "mqisdp-paho", .version = MQTTVERSION_3_1};
    MQTTClient c = NULL;
    struct pc_msg m = {0};
    int fd = -1, rc = -1;

    T_ASSERT(b);
    fd = raw_mqtt_connect(b, &o, &rc, NULL);
    T_ASSERT(fd >= 0);
    T_EQ(rc, 0);
    c = pc_connect(b, &po, &rc, NULL);
    T_ASSERTF(c, "Paho MQTT 3.1 connect failed: %d", rc);
    T_EQ(pc_subscribe(c, "v31/t", 1), 1);
    T_EQ(pc_publish_str(c, "v31/t", "hello 3.1", 1, false), 0);
    T_EQ(pc_recv(c, &m, WAIT_MS), 1);
    T_ASSERT(strcmp(m.payload, "hello 3.1") == 0);
out:
    pc_msg_free(&m);
    pc_close(&c);
    if (fd >= 0)
        close(fd);
    broker_free(b);
}

/*
 * [MQTT-3.1.3-6]: an empty id with clean session 1 is accepted with a generated id. Two such
 * clients must get different ids: if they shared one, the second would take over the first.
 */
static void test_generated_id(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts o = {.id = "", .keepalive = 60};
    struct raw_pkt p = {0};
    int fd1 = -1, fd2 = -1, rc = -1;

    T_ASSERT(b);
    fd1 = raw_mqtt_connect(b, &o, &rc, NULL);
    T_ASSERT(fd1 >= 0);
    T_EQ(rc, 0);
    fd2 = raw_mqtt_connect(b, &o, &rc, NULL);
    T_ASSERT(fd2 >= 0);
    T_EQ(rc, 0);
    /* Both still work: each subscribes and gets its own publish back. */
    T_EQ(raw_subscribe(fd1, 1, "gen/1", 0), 0);
    T_EQ(raw_subscribe(fd2, 1, "gen/2", 0), 0);
    T_EQ(raw_publish(fd1, "gen/1", "one", 0, false, false, 0), 0);
    T_EQ(raw_publish(fd2, "gen/2", "two", 0, false, false, 0), 0);
    T_EQ(raw_expect(fd1, RAW_PUBLISH, &p, WAIT_MS), 1);
    T_ASSERT(strcmp(p.topic, "gen/1") == 0);
    raw_pkt_free(&p);
    T_EQ(raw_expect(fd2, RAW_PUBLISH, &p, WAIT_MS), 1);
    T_ASSERT(strcmp(p.topic, "gen/2") == 0);
out:
    raw_pkt_free(&p);
    if (fd1 >= 0)
        close(fd1);
    if (fd2 >= 0)
        close(fd2);
    broker_free(b);
}

/* [MQTT-3.1.0-1]: the first packet must be CONNECT; anything else closes the connection. */
static void test_first_packet_not_connect(void)
{
    static const uint8_t ping[] = {0xc0, 0x00};
    static const uint8_t sub[] = {0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'x', 0x00};
    struct broker *b = broker_start(NULL);
    int fd1 = -1, fd2 = -1;

    T_ASSERT(b);
    fd1 = raw_connect(b);
    T_ASSERT(fd1 >= 0);
    T_EQ(raw_send(fd1, ping, sizeof(ping)), 0);
    T_EQ(raw_expect_close(fd1, WAIT_MS), 0);
    fd2 = raw_connect(b);
    T_ASSERT(fd2 >= 0);
    T_EQ(raw_send(fd2, sub, sizeof(sub)), 0);
    T_EQ(raw_expect_close(fd2, WAIT_MS), 0);
    T_ASSERT(broker_alive(b));
out:
    if (fd1 >= 0)
        close(fd1);
    if (fd2 >= 0)
        close(fd2);
    broker_free(b);
}

/* [MQTT-3.1.0-2]: a second CONNECT is a protocol violation and closes the connection. */
static void test_second_connect(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts o = {.id = "twice", .keepalive = 60};
    uint8_t buf[256];
    size_t n = raw_build_connect(buf, sizeof(buf), &o);
    int fd = -1, rc = -1;

    T_ASSERT(b);
    fd = raw_mqtt_connect(b, &o, &rc, NULL);
    T_ASSERT(fd >= 0);
    T_EQ(rc, 0);
    T_EQ(raw_send(fd, buf, n), 0);
    T_EQ(raw_expect_close(fd, WAIT_MS), 0);
out:
    if (fd >= 0)
        close(fd);
    broker_free(b);
}

/* A connection that sends nothing is closed after connect_timeout (Cairn's own option). */
static void test_connect_timeout(void)
{
    struct broker_opts bo = {.cairn_config = "connect_timeout 1"};
    struct broker *b = NULL;
    uint64_t t0;
    int fd = -1;

    if (harness_cairn_only("Mosquitto has no option for the CONNECT timeout"))
        goto out;
    b = broker_start(&bo);
    T_ASSERT(b);
    fd = raw_connect(b);
    T_ASSERT(fd >= 0);
    t0 = t_now_ms();
    T_EQ(raw_expect_close(fd, 5000), 0);
    t_note("closed %llu ms after connecting (connect_timeout 1)",
           (unsigned long long)(t_now_ms() - t0));
    T_ASSERT(t_now_ms() - t0 >= 900);
out:
    if (fd >= 0)
        close(fd);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"accepted", test_accepted},
        {"bad_protocol_level", test_bad_protocol_level},
        {"empty_id_persistent", test_empty_id_persistent},
        {"mqtt31_long_id", test_mqtt31_long_id},
        {"not_authorised", test_not_authorised},
        {"mqtt31_accepted", test_mqtt31_accepted},
        {"generated_id", test_generated_id},
        {"first_packet_not_connect", test_first_packet_not_connect},
        {"second_connect", test_second_connect},
        {"connect_timeout", test_connect_timeout},
    };
    return T_MAIN(cases);
}
