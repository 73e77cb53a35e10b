/*
 * durable.h — the scenario 20_restart and 21_kill9 share: a persistent Paho subscriber goes
 * offline, QoS 1 and QoS 2 messages are published for it, the broker is stopped (SIGTERM or
 * kill -9) and restarted on the same data directory, and the subscriber reconnects to receive
 * every message, in order per QoS, each exactly once. Header-only: each test executable that
 * includes it gets its own static copy.
 */
#ifndef CAIRN_ITEST_DURABLE_H
#define CAIRN_ITEST_DURABLE_H

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DURABLE_N 300 /* per QoS */

/* Publish n messages "i" at qos from a raw client, each flow completed. 0 or -1. */
static int durable_publish(int fd, const char *topic, int qos, int n, int *pid)
{
    char buf[16];

    for (int i = 0; i < n; i++) {
        snprintf(buf, sizeof(buf), "%d", i);
        if (raw_publish_flow(fd, topic, buf, qos, false, (*pid)++ % 65535 + 1) != 0)
            return -1;
    }
    return 0;
}

static void durable_run(bool kill9)
{
    struct broker *b = broker_start(NULL);
    struct pc_opts so = {.id = "durable-sub", .persistent = true};
    struct raw_conn_opts po = {.id = "durable-pub", .keepalive = 60};
    MQTTClient sub = NULL;
    struct pc_msg m = {0};
    int pub = -1, rc = -1, sp = -1, pid = 1, next[3] = {0, 0, 0};

    T_ASSERT(b);
    sub = pc_connect(b, &so, &rc, &sp);
    T_ASSERTF(sub, "connect %d", rc);
    T_EQ(pc_subscribe(sub, "durable/#", 2), 2);
    pc_close(&sub);
    pub = raw_mqtt_connect(b, &po, &rc, NULL);
    T_ASSERT(pub >= 0);
    T_EQ(durable_publish(pub, "durable/q1", 1, DURABLE_N, &pid), 0);
    T_EQ(durable_publish(pub, "durable/q2", 2, DURABLE_N, &pid), 0);
    close(pub);
    pub = -1;

    if (kill9)
        T_EQ(broker_kill9(b), 0);
    else
        T_EQ(broker_stop_term(b, 10000), 0);
    T_EQ(broker_restart(b), 0);

    sub = pc_connect(b, &so, &rc, &sp);
    T_ASSERTF(sub, "reconnect %d", rc);
    T_EQ(sp, 1);
    for (int i = 0; i < 2 * DURABLE_N; i++) {
        int q, v;

        T_ASSERTF(pc_recv(sub, &m, 10000) == 1, "only %d of %d messages after the restart", i,
                  2 * DURABLE_N);
        q = strcmp(m.topic, "durable/q1") == 0 ? 1 : 2;
        v = atoi(m.payload);
        T_ASSERTF(m.qos == q, "'%s' on %s at QoS %d", m.payload, m.topic, m.qos);
        T_ASSERTF(v == next[q], "QoS %d: got %d, want %d (lost, duplicated or out of order)", q, v,
                  next[q]);
        next[q]++;
        pc_msg_free(&m);
    }
    /* Nothing more: a marker published now is the next message. */
    pub = raw_mqtt_connect(b, &po, &rc, NULL);
    T_ASSERT(pub >= 0);
    T_EQ(raw_publish_flow(pub, "durable/marker", "marker", 1, false, 1), 0);
    T_EQ(pc_recv(sub, &m, 10000), 1);
    T_ASSERTF(strcmp(m.topic, "durable/marker") == 0, "extra message '%s' on %s", m.payload,
              m.topic);
    t_note("%d QoS 1 and %d QoS 2 messages delivered after %s", next[1], next[2],
           kill9 ? "kill -9" : "SIGTERM");
out:
    pc_msg_free(&m);
    pc_close(&sub);
    if (pub >= 0)
        close(pub);
    broker_free(b);
}

#endif
