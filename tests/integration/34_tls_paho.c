/*
 * 34_tls_paho — Paho C with its SSL options against the TLS listener: a subscriber and a
 * publisher over TLS at QoS 0, 1 and 2, and client certificates (keyStore / privateKey) on a
 * require_certificate listener, refused without one.
 *
 * The harness links Paho's TLS-capable libraries (paho-mqtt3cs, paho-mqtt3as), which speak
 * tcp:// and ssl:// alike, so these cases run in every build, the sanitizer one included.
 */
#include "harness_tls.h"

#include <stdio.h>
#include <string.h>

#define WAIT_MS 5000

/* Connect over TLS (cert: client certificate name or NULL). The client, or NULL with *rc. */
static MQTTClient ssl_connect(const struct tls_env *e, const char *id, const char *cert, int *rc)
{
    MQTTClient c = NULL;
    MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
    MQTTClient_SSLOptions so = MQTTClient_SSLOptions_initializer;
    char uri[64], ca[256], crt[256], key[256];

    snprintf(uri, sizeof(uri), "ssl://localhost:%d", e->tls_port);
    snprintf(ca, sizeof(ca), "%s/ca.crt", e->dir);
    so.trustStore = ca;
    if (cert) {
        snprintf(crt, sizeof(crt), "%s/%s.crt", e->dir, cert);
        snprintf(key, sizeof(key), "%s/%s.key", e->dir, cert);
        so.keyStore = crt;
        so.privateKey = key;
    }
    co.ssl = &so;
    co.cleansession = 1;
    co.keepAliveInterval = 60;
    *rc = MQTTClient_create(&c, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL);
    if (*rc != MQTTCLIENT_SUCCESS)
        return NULL;
    *rc = MQTTClient_connect(c, &co);
    if (*rc != MQTTCLIENT_SUCCESS) {
        MQTTClient_destroy(&c);
        return NULL;
    }
    return c;
}

static void ssl_close(MQTTClient *c)
{
    if (!*c)
        return;
    MQTTClient_disconnect(*c, 1000);
    MQTTClient_destroy(c);
    *c = NULL;
}

static const char tls_listener[] = "listener @P 127.0.0.1\n"
                                   "certfile @D/server-rsa.crt\n"
                                   "keyfile @D/server-rsa.key\n";

static void test_qos_levels(void)
{
    struct tls_env e = {0};
    MQTTClient sub = NULL, pub = NULL;
    int rc = -1;

    T_EQ(tls_env_start(&e, tls_listener, NULL), 0);
    sub = ssl_connect(&e, "paho-ssl-sub", NULL, &rc);
    T_ASSERTF(sub, "subscriber connect: %d", rc);
    pub = ssl_connect(&e, "paho-ssl-pub", NULL, &rc);
    T_ASSERTF(pub, "publisher connect: %d", rc);
    T_EQ(MQTTClient_subscribe(sub, "paho/tls/#", 2), MQTTCLIENT_SUCCESS);
    for (int qos = 0; qos <= 2; qos++) {
        char topic[32], payload[32], *got_topic = NULL;
        int tlen = 0;
        MQTTClient_deliveryToken tok = 0;
        MQTTClient_message *m = NULL;

        snprintf(topic, sizeof(topic), "paho/tls/q%d", qos);
        snprintf(payload, sizeof(payload), "over tls at qos %d", qos);
        T_EQ(MQTTClient_publish(pub, topic, (int)strlen(payload), payload, qos, 0, &tok),
             MQTTCLIENT_SUCCESS);
        if (qos)
            T_EQ(MQTTClient_waitForCompletion(pub, tok, WAIT_MS), MQTTCLIENT_SUCCESS);
        T_EQ(MQTTClient_receive(sub, &got_topic, &tlen, &m, WAIT_MS), MQTTCLIENT_SUCCESS);
        T_ASSERTF(m && got_topic, "no message at QoS %d", qos);
        T_ASSERT(strcmp(got_topic, topic) == 0);
        T_EQ(m->qos, qos);
        T_ASSERT(m->payloadlen == (int)strlen(payload) &&
                 memcmp(m->payload, payload, strlen(payload)) == 0);
        MQTTClient_freeMessage(&m);
        MQTTClient_free(got_topic);
    }
out:
    ssl_close(&sub);
    ssl_close(&pub);
    tls_env_stop(&e);
}

static void test_client_certificate(void)
{
    struct tls_env e = {0};
    MQTTClient c = NULL;
    int rc = -1;

    T_EQ(tls_env_start(&e, tls_env_cert_listener, NULL), 0);
    c = ssl_connect(&e, "paho-cert", "client", &rc);
    T_ASSERTF(c, "connect with a valid certificate: %d", rc);
    ssl_close(&c);
    c = ssl_connect(&e, "paho-nocert", NULL, &rc);
    T_ASSERTF(!c, "connected without a certificate");
    c = ssl_connect(&e, "paho-revoked", "revoked", &rc);
    T_ASSERTF(!c, "connected with a revoked certificate");
    T_EQ(tls_env_still_serving(&e), 0);
out:
    ssl_close(&c);
    tls_env_stop(&e);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"qos_levels", test_qos_levels},
        {"client_certificate", test_client_certificate},
    };

    return T_MAIN(cases);
}
