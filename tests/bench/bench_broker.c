/*
 * bench_broker.c — publish -> deliver throughput through a real broker process, driven by Paho
 * MQTTAsync clients: N publishers and M subscribers on one topic tree, 100-byte payloads, QoS 0
 * and QoS 1. In one run it starts, each on a free loopback port with a fresh temp dir:
 *
 *   Cairn  persistence false
 *   Cairn  persistence true, persistence_sync false   (acks after the batch reaches the kernel)
 *   Cairn  persistence true, persistence_sync true    (acks after fsync)
 *   Mosquitto 2.0  persistence true                    (acks before anything is stored)
 *
 * and prints a table of delivered messages per second (all subscribers together) and the
 * ratio of each Cairn row to Mosquitto. Figures go in the issue note, never into pass/fail.
 *
 *   bench_broker [CAIRN_BIN] [-p PUBLISHERS] [-s SUBSCRIBERS] [-n MESSAGES_PER_PUBLISHER]
 */
#define _GNU_SOURCE
#include <MQTTAsync.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchnet.h"

#define BENCH_PAYLOAD     100
#define BENCH_WINDOW      500 /* unacknowledged messages per publisher */
#define BENCH_MAX_CLIENTS 64

/* ---- shared counters (Paho threads write, the main thread waits) ---- */

static pthread_mutex_t bench_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bench_cv = PTHREAD_COND_INITIALIZER;

struct bench_client {
    MQTTAsync c;
    long sent_done; /* publisher: flows completed (QoS 0: written) */
    long received;  /* subscriber */
    int ready;      /* 1 connected (and subscribed), -1 failed */
};

static void bench_until(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void bench_set_ready(struct bench_client *bc, int v)
{
    pthread_mutex_lock(&bench_mu);
    bc->ready = v;
    pthread_cond_broadcast(&bench_cv);
    pthread_mutex_unlock(&bench_mu);
}

static void bench_on_ok(void *ctx, MQTTAsync_successData *d)
{
    bench_set_ready(ctx, 1);
}

static void bench_on_fail(void *ctx, MQTTAsync_failureData *d)
{
    bench_set_ready(ctx, -1);
}

static void bench_on_sent(void *ctx, MQTTAsync_successData *d)
{
    struct bench_client *bc = ctx;

    pthread_mutex_lock(&bench_mu);
    bc->sent_done++;
    pthread_cond_broadcast(&bench_cv);
    pthread_mutex_unlock(&bench_mu);
}

static int bench_on_message(void *ctx, char *topic, int tlen, MQTTAsync_message *m)
{
    struct bench_client *bc = ctx;

    pthread_mutex_lock(&bench_mu);
    bc->received++;
    pthread_cond_broadcast(&bench_cv);
    pthread_mutex_unlock(&bench_mu);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

/* Wait until *flag != 0; true when it became 1. */
static bool bench_wait_ready(struct bench_client *bc)
{
    struct timespec until;
    bool ok;

    bench_until(&until, 10000);
    pthread_mutex_lock(&bench_mu);
    while (bc->ready == 0)
        if (pthread_cond_timedwait(&bench_cv, &bench_mu, &until) == ETIMEDOUT)
            break;
    ok = bc->ready == 1;
    bc->ready = 0;
    pthread_mutex_unlock(&bench_mu);
    return ok;
}

static int bench_client_open(struct bench_client *bc, int port, const char *id, bool sub)
{
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    char uri[64];
    int rc = -1;

    memset(bc, 0, sizeof(*bc));
    snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", port);
    if (MQTTAsync_create(&bc->c, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL) != MQTTASYNC_SUCCESS) {
        bc->c = NULL;
        goto out;
    }
    if (sub && MQTTAsync_setCallbacks(bc->c, bc, NULL, bench_on_message, NULL) != MQTTASYNC_SUCCESS)
        goto out;
    co.keepAliveInterval = 60;
    co.cleansession = 1;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.onSuccess = bench_on_ok;
    co.onFailure = bench_on_fail;
    co.context = bc;
    /*
     * The caller waits with bench_wait_ready(): Paho takes ~2 s per connect made one after
     * another while other clients exist, so all connects are issued first.
     */
    if (MQTTAsync_connect(bc->c, &co) == MQTTASYNC_SUCCESS)
        rc = 0;
out:
    return rc;
}

static int bench_subscribe(struct bench_client *bc, int qos)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;

    ro.onSuccess = bench_on_ok;
    ro.onFailure = bench_on_fail;
    ro.context = bc;
    return MQTTAsync_subscribe(bc->c, "bench/#", qos, &ro) == MQTTASYNC_SUCCESS &&
                   bench_wait_ready(bc)
               ? 0
               : -1;
}

static void bench_client_close(struct bench_client *bc)
{
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;

    if (!bc->c)
        return;
    d.timeout = 1000;
    d.onSuccess = bench_on_ok;
    d.onFailure = bench_on_fail;
    d.context = bc;
    if (MQTTAsync_disconnect(bc->c, &d) == MQTTASYNC_SUCCESS)
        bench_wait_ready(bc);
    MQTTAsync_destroy(&bc->c);
}

/* ---- broker processes ---- */

struct bench_broker {
    const char *name;
    const char *bin;
    const char *extra; /* config lines */
    bool mosquitto;
    pid_t pid;
    int port;
    char dir[128];
};

static bool bench_port_accepts(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

    if (fd >= 0)
        close(fd);
    return ok;
}

static int bench_broker_start(struct bench_broker *bb)
{
    char conf[256], log[256];
    FILE *f;
    double deadline;
    int st, rc = -1;

    snprintf(bb->dir, sizeof(bb->dir), "/tmp/cairn-bench-XXXXXX");
    if (!mkdtemp(bb->dir)) {
        bb->dir[0] = '\0';
        goto out;
    }
    snprintf(conf, sizeof(conf), "%s/broker.conf", bb->dir);
    snprintf(log, sizeof(log), "%s/broker.log", bb->dir);
    bb->port = bench_free_port();
    f = fopen(conf, "w");
    if (!f)
        goto out;
    fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\n",
            bb->port);
    fprintf(f, "persistence_location %s/%s\n%s\n", bb->dir, bb->mosquitto ? "" : "data", bb->extra);
    if (bb->mosquitto)
        fprintf(f, "user root\nlog_type error\n");
    else /* run by root, Cairn would become mosquitto, which cannot reach the temp dir */
        fprintf(f, "user root\n");
    fclose(f);
    bb->pid = fork();
    if (bb->pid < 0)
        goto out;
    if (bb->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(bb->bin, bb->bin, "-c", conf, (char *)NULL);
        _exit(127);
    }
    for (deadline = bench_now() + 20; bench_now() < deadline && rc != 0;) {
        struct timespec nap = {0, 5000000};

        if (bench_port_accepts(bb->port)) {
            rc = 0;
        } else if (waitpid(bb->pid, &st, WNOHANG) == bb->pid) {
            bb->pid = 0;
            break;
        } else {
            nanosleep(&nap, NULL);
        }
    }
    if (rc != 0)
        fprintf(stderr, "bench_broker: %s did not start (see %s)\n", bb->name, log);
out:
    return rc;
}

static int bench_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void bench_broker_stop(struct bench_broker *bb)
{
    if (bb->pid > 0) {
        kill(bb->pid, SIGTERM);
        waitpid(bb->pid, NULL, 0);
    }
    bb->pid = 0;
    if (bb->dir[0])
        nftw(bb->dir, bench_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- one measurement ---- */

struct bench_cfg {
    int pubs, subs;
    long per_pub;
};

/*
 * Publish per_pub messages from each publisher (at most BENCH_WINDOW unfinished each), and
 * wait for every subscriber to receive pubs * per_pub, or for 10 s without progress. Returns
 * delivered messages per second, *delivered the count.
 */
static double bench_run(const struct bench_broker *bb, const struct bench_cfg *cfg, int qos,
                        long *delivered)
{
    struct bench_client pub[BENCH_MAX_CLIENTS], sub[BENCH_MAX_CLIENTS];
    char payload[BENCH_PAYLOAD], id[64];
    long want = (long)cfg->pubs * cfg->per_pub * cfg->subs, got = 0, last = -1;
    double t0 = 0, t1 = 0, last_change;
    int np = 0, ns = 0;

    memset(payload, 'x', sizeof(payload));
    *delivered = 0;
    for (ns = 0; ns < cfg->subs; ns++) {
        snprintf(id, sizeof(id), "bench-sub-%d", ns);
        if (bench_client_open(&sub[ns], bb->port, id, true) != 0)
            goto out;
    }
    for (np = 0; np < cfg->pubs; np++) {
        snprintf(id, sizeof(id), "bench-pub-%d", np);
        if (bench_client_open(&pub[np], bb->port, id, false) != 0)
            goto out;
    }
    for (int i = 0; i < ns + np; i++)
        if (!bench_wait_ready(i < ns ? &sub[i] : &pub[i - ns]))
            goto out;
    for (int s = 0; s < ns; s++)
        if (bench_subscribe(&sub[s], qos) != 0)
            goto out;
    t0 = bench_now();
    for (long i = 0; i < cfg->per_pub; i++) {
        for (int p = 0; p < np; p++) {
            MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
            MQTTAsync_message m = MQTTAsync_message_initializer;
            struct timespec until;

            /* Keep the window: wait for completions before queueing more. */
            bench_until(&until, 10000);
            pthread_mutex_lock(&bench_mu);
            while (i - pub[p].sent_done >= BENCH_WINDOW)
                if (pthread_cond_timedwait(&bench_cv, &bench_mu, &until) == ETIMEDOUT)
                    break;
            pthread_mutex_unlock(&bench_mu);
            m.payload = payload;
            m.payloadlen = sizeof(payload);
            m.qos = qos;
            ro.onSuccess = bench_on_sent;
            ro.context = &pub[p];
            if (MQTTAsync_sendMessage(pub[p].c, "bench/t", &m, &ro) != MQTTASYNC_SUCCESS)
                goto out;
        }
    }
    last_change = bench_now();
    for (;;) {
        struct timespec until;

        bench_until(&until, 200);
        pthread_mutex_lock(&bench_mu);
        pthread_cond_timedwait(&bench_cv, &bench_mu, &until);
        got = 0;
        for (int s = 0; s < ns; s++)
            got += sub[s].received;
        pthread_mutex_unlock(&bench_mu);
        if (got != last) {
            last = got;
            last_change = bench_now();
            t1 = last_change;
        }
        if (got >= want || bench_now() - last_change > 10)
            break;
    }
    *delivered = got;
out:
    for (int p = 0; p < np; p++)
        bench_client_close(&pub[p]);
    for (int s = 0; s < ns; s++)
        bench_client_close(&sub[s]);
    return t1 > t0 ? (double)got / (t1 - t0) : 0;
}

int main(int argc, char **argv)
{
    struct bench_cfg cfg = {.pubs = 4, .subs = 4, .per_pub = 25000};
    const char *cairn = "broker/cairn";
    struct bench_broker brokers[] = {
        {"Cairn persistence false", NULL, "persistence false", false, 0, 0, ""},
        {"Cairn persistence_sync false", NULL, "persistence true\npersistence_sync false", false, 0,
         0, ""},
        {"Cairn persistence_sync true", NULL, "persistence true\npersistence_sync true", false, 0,
         0, ""},
        {"Mosquitto 2.0 persistence true", "/usr/sbin/mosquitto", "persistence true", true, 0, 0,
         ""},
    };
    enum { NB = sizeof(brokers) / sizeof(brokers[0]) };
    double rate[NB][2] = {{0}};
    long count[NB][2] = {{0}};
    int opt;

    if (argc > 1 && argv[1][0] != '-') {
        cairn = argv[1];
        optind = 2;
    }
    while ((opt = getopt(argc, argv, "p:s:n:")) != -1) {
        if (opt == 'p')
            cfg.pubs = atoi(optarg);
        else if (opt == 's')
            cfg.subs = atoi(optarg);
        else if (opt == 'n')
            cfg.per_pub = atol(optarg);
        else
            return 2;
    }
    if (cfg.pubs < 1 || cfg.pubs > BENCH_MAX_CLIENTS || cfg.subs < 1 ||
        cfg.subs > BENCH_MAX_CLIENTS || cfg.per_pub < 1)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < NB; i++) {
        if (!brokers[i].bin)
            brokers[i].bin = cairn;
        if (bench_broker_start(&brokers[i]) != 0) {
            bench_broker_stop(&brokers[i]);
            continue;
        }
        for (int q = 0; q <= 1; q++)
            rate[i][q] = bench_run(&brokers[i], &cfg, q, &count[i][q]);
        bench_broker_stop(&brokers[i]);
    }
    printf("publish -> deliver, %d publishers x %ld messages, %d subscribers, %d-byte payloads\n",
           cfg.pubs, cfg.per_pub, cfg.subs, BENCH_PAYLOAD);
    printf("(messages delivered per second, all subscribers together; expected %ld each)\n\n",
           (long)cfg.pubs * cfg.per_pub * cfg.subs);
    printf("%-32s %12s %10s %12s %10s %9s %9s\n", "broker", "QoS 0 msg/s", "delivered",
           "QoS 1 msg/s", "delivered", "Q0/mosq", "Q1/mosq");
    for (int i = 0; i < NB; i++) {
        double m0 = rate[NB - 1][0], m1 = rate[NB - 1][1];

        printf("%-32s %12.0f %10ld %12.0f %10ld %9.2f %9.2f\n", brokers[i].name, rate[i][0],
               count[i][0], rate[i][1], count[i][1], m0 > 0 ? rate[i][0] / m0 : 0,
               m1 > 0 ? rate[i][1] / m1 : 0);
    }
    return 0;
}
