/*
 * harness_async.c — a Paho MQTTAsync publisher for the tests that send thousands of messages:
 * ap_publish() queues without waiting, Paho's threads run the flows, and success/failure
 * callbacks count completions under a mutex that ap_wait() waits on with a deadline.
 *
 * Ownership: ap_connect() returns a publisher the caller frees with ap_close(), which
 * disconnects, destroys the client (no callback runs after that) and frees the counters.
 */
#include "harness.h"

#include <MQTTAsync.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ap {
    MQTTAsync c;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long ok, failed;
    int connected; /* 0 pending, 1 connected, -1 failed */
    bool disconnected;
};

static void ap_signal(struct ap *a, long *counter, int *state, int value)
{
    pthread_mutex_lock(&a->mu);
    if (counter)
        (*counter)++;
    if (state)
        *state = value;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void ap_on_connect(void *ctx, MQTTAsync_successData *d)
{
    struct ap *a = ctx;

    ap_signal(a, NULL, &a->connected, 1);
}

static void ap_on_connect_fail(void *ctx, MQTTAsync_failureData *d)
{
    struct ap *a = ctx;

    ap_signal(a, NULL, &a->connected, -1);
}

static void ap_on_sent(void *ctx, MQTTAsync_successData *d)
{
    struct ap *a = ctx;

    ap_signal(a, &a->ok, NULL, 0);
}

static void ap_on_send_fail(void *ctx, MQTTAsync_failureData *d)
{
    struct ap *a = ctx;

    ap_signal(a, &a->failed, NULL, 0);
}

static void ap_on_disconnect(void *ctx, MQTTAsync_successData *d)
{
    struct ap *a = ctx;

    pthread_mutex_lock(&a->mu);
    a->disconnected = true;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void ap_deadline(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

struct ap *ap_connect(const struct broker *b, const char *id, bool persistent)
{
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    struct ap *a = calloc(1, sizeof(*a));
    struct timespec until;
    bool ok = false;

    if (!a)
        goto out;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    if (MQTTAsync_create(&a->c, broker_uri(b), id, MQTTCLIENT_PERSISTENCE_NONE, NULL) !=
        MQTTASYNC_SUCCESS) {
        a->c = NULL;
        goto out;
    }
    co.keepAliveInterval = 60;
    co.cleansession = !persistent;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.onSuccess = ap_on_connect;
    co.onFailure = ap_on_connect_fail;
    co.context = a;
    co.connectTimeout = 10;
    if (MQTTAsync_connect(a->c, &co) != MQTTASYNC_SUCCESS)
        goto out;
    ap_deadline(&until, 10000);
    pthread_mutex_lock(&a->mu);
    while (a->connected == 0)
        if (pthread_cond_timedwait(&a->cv, &a->mu, &until) == ETIMEDOUT)
            break;
    ok = a->connected == 1;
    pthread_mutex_unlock(&a->mu);
out:
    if (!ok) {
        ap_close(a);
        a = NULL;
    }
    return a;
}

int ap_publish(struct ap *a, const char *topic, const void *payload, int len, int qos)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    MQTTAsync_message m = MQTTAsync_message_initializer;

    m.payload = (void *)payload;
    m.payloadlen = len;
    m.qos = qos;
    ro.onSuccess = ap_on_sent;
    ro.onFailure = ap_on_send_fail;
    ro.context = a;
    return MQTTAsync_sendMessage(a->c, topic, &m, &ro) == MQTTASYNC_SUCCESS ? 0 : -1;
}

long ap_wait(struct ap *a, long n, int timeout_ms)
{
    struct timespec until;
    long done;

    ap_deadline(&until, timeout_ms);
    pthread_mutex_lock(&a->mu);
    while (a->ok + a->failed < n)
        if (pthread_cond_timedwait(&a->cv, &a->mu, &until) == ETIMEDOUT)
            break;
    done = a->ok;
    pthread_mutex_unlock(&a->mu);
    return done;
}

long ap_failed(struct ap *a)
{
    long f;

    pthread_mutex_lock(&a->mu);
    f = a->failed;
    pthread_mutex_unlock(&a->mu);
    return f;
}

void ap_close(struct ap *a)
{
    if (!a)
        return;
    if (a->c) {
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
        struct timespec until;

        d.onSuccess = ap_on_disconnect;
        d.context = a;
        d.timeout = 1000;
        if (MQTTAsync_isConnected(a->c) && MQTTAsync_disconnect(a->c, &d) == MQTTASYNC_SUCCESS) {
            ap_deadline(&until, 2000);
            pthread_mutex_lock(&a->mu);
            while (!a->disconnected)
                if (pthread_cond_timedwait(&a->cv, &a->mu, &until) == ETIMEDOUT)
                    break;
            pthread_mutex_unlock(&a->mu);
        }
        MQTTAsync_destroy(&a->c);
    }
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
