/*
 * harness_paho.c — thin helpers over Paho's synchronous MQTTClient: connect with options, a
 * subscribe that reports the granted QoS, a publish that waits for its flow to complete, and a
 * receive with a timeout that copies the message out (so callers free one struct, not three
 * Paho allocations).
 *
 * Clients use MQTTCLIENT_PERSISTENCE_NONE: the tests are about the broker's durability, and
 * the client's in-memory state is enough for the resends the spec asks of a client.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PC_TIMEOUT_MS 10000

MQTTClient pc_connect(const struct broker *b, const struct pc_opts *o, int *rc,
                      int *session_present)
{
    return pc_connect_uri(broker_uri(b), o, NULL, rc, session_present);
}

MQTTClient pc_connect_uri(const char *uri, const struct pc_opts *o, MQTTClient_SSLOptions *ssl,
                          int *rc, int *session_present)
{
    MQTTClient c = NULL;
    MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
    MQTTClient_willOptions wo = MQTTClient_willOptions_initializer;
    int r;

    r = MQTTClient_create(&c, uri, o->id ? o->id : "", MQTTCLIENT_PERSISTENCE_NONE, NULL);
    if (r != MQTTCLIENT_SUCCESS) {
        c = NULL;
        goto out;
    }
    co.keepAliveInterval = o->keepalive ? o->keepalive : 60;
    co.cleansession = !o->persistent;
    co.MQTTVersion = o->version ? o->version : MQTTVERSION_3_1_1;
    co.username = o->user;
    co.password = o->pass;
    co.connectTimeout = 10;
    co.ssl = ssl;
    if (o->will_topic) {
        wo.topicName = o->will_topic;
        wo.message = o->will_payload ? o->will_payload : "";
        wo.qos = o->will_qos;
        wo.retained = o->will_retain;
        co.will = &wo;
    }
    r = MQTTClient_connect(c, &co);
    if (session_present)
        *session_present = r == MQTTCLIENT_SUCCESS ? co.returned.sessionPresent : -1;
    if (r != MQTTCLIENT_SUCCESS)
        MQTTClient_destroy(&c);
out:
    if (rc)
        *rc = r;
    return c;
}

void pc_close(MQTTClient *c)
{
    if (!c || !*c)
        return;
    if (MQTTClient_isConnected(*c))
        MQTTClient_disconnect(*c, 1000);
    MQTTClient_destroy(c);
    *c = NULL;
}

int pc_subscribe(MQTTClient c, const char *filter, int qos)
{
    char *filters[1] = {(char *)filter};
    int qoss[1] = {qos};
    int r = MQTTClient_subscribeMany(c, 1, filters, qoss);

    if (r != MQTTCLIENT_SUCCESS && qoss[0] != 0x80)
        return -1;
    return qoss[0];
}

int pc_unsubscribe(MQTTClient c, const char *filter)
{
    return MQTTClient_unsubscribe(c, filter) == MQTTCLIENT_SUCCESS ? 0 : -1;
}

int pc_publish(MQTTClient c, const char *topic, const void *payload, int len, int qos, bool retain)
{
    MQTTClient_deliveryToken tok = 0;
    int r = MQTTClient_publish(c, topic, len, payload, qos, retain, &tok);

    if (r == MQTTCLIENT_SUCCESS && qos > 0)
        r = MQTTClient_waitForCompletion(c, tok, PC_TIMEOUT_MS);
    return r == MQTTCLIENT_SUCCESS ? 0 : (r < 0 ? r : -r);
}

int pc_publish_str(MQTTClient c, const char *topic, const char *payload, int qos, bool retain)
{
    return pc_publish(c, topic, payload, (int)strlen(payload), qos, retain);
}

int pc_recv(MQTTClient c, struct pc_msg *m, int timeout_ms)
{
    char *topic = NULL;
    int tlen = 0, ret = -1;
    MQTTClient_message *msg = NULL;
    int r = MQTTClient_receive(c, &topic, &tlen, &msg, (unsigned long)timeout_ms);

    memset(m, 0, sizeof(*m));
    if (r != MQTTCLIENT_SUCCESS && r != MQTTCLIENT_TOPICNAME_TRUNCATED)
        goto out;
    ret = 0;
    if (!msg)
        goto out;
    m->topic = strdup(topic ? topic : "");
    m->payload = malloc((size_t)msg->payloadlen + 1);
    if (!m->topic || !m->payload) {
        ret = -1;
        goto out;
    }
    memcpy(m->payload, msg->payload, (size_t)msg->payloadlen);
    m->payload[msg->payloadlen] = '\0';
    m->len = msg->payloadlen;
    m->qos = msg->qos;
    m->retained = msg->retained;
    m->dup = msg->dup;
    ret = 1;
out:
    if (msg)
        MQTTClient_freeMessage(&msg);
    if (topic)
        MQTTClient_free(topic);
    return ret;
}

void pc_msg_free(struct pc_msg *m)
{
    free(m->topic);
    free(m->payload);
    memset(m, 0, sizeof(*m));
}

int pc_collect(MQTTClient c, struct pc_msg *out, int n, int timeout_ms)
{
    uint64_t deadline = t_now_ms() + (uint64_t)timeout_ms;
    int got = 0;

    while (got < n) {
        uint64_t now = t_now_ms();
        int r;

        if (now >= deadline)
            break;
        r = pc_recv(c, &out[got], (int)(deadline - now));
        if (r < 0)
            break;
        if (r == 1)
            got++;
    }
    return got;
}

void pc_msgs_free(struct pc_msg *m, int n)
{
    for (int i = 0; i < n; i++)
        pc_msg_free(&m[i]);
}

int pc_expect_none(MQTTClient c, int timeout_ms)
{
    struct pc_msg m;
    int r = pc_recv(c, &m, timeout_ms);

    if (r == 1) {
        t_note("unexpected message on '%s': '%s' (qos %d, retain %d)", m.topic, m.payload, m.qos,
               m.retained);
        pc_msg_free(&m);
    }
    return r == 1 ? 1 : 0;
}
