/*
 * bench_server.c — quick figures for a broker process: resident memory with N idle connected
 * clients, and publish -> subscribe throughput at QoS 0 and QoS 1 (one publisher, one
 * subscriber, 64-byte payloads, the publisher pipelining). Cairn and Mosquitto run in the same
 * invocation with equivalent configs, and one table compares them.
 *
 *   bench_server CAIRN_BIN [MOSQUITTO_BIN] [-n CLIENTS] [-m MESSAGES]
 *
 * Cairn runs with persistence false, persistence_sync false and persistence_sync true;
 * Mosquitto with persistence false and true (it acknowledges before anything is stored
 * either way). The last QoS 1 column has a persistent (clean session 0) subscriber, the path
 * where Cairn stores each message before its PUBACK and records each subscriber PUBACK.
 * Figures go in the issue note, never into a test's pass/fail.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchnet.h"

#include "mqtt.h"

struct bench_broker {
    pid_t pid;
    int port;
    char dir[64];
};

/* CONNECT (clean session unless persistent) and wait for CONNACK 0. */
static int bench_mqtt_connect_as(int fd, const char *id, bool persistent)
{
    struct mqtt_connect c = {0};
    uint8_t buf[256];
    uint8_t ack[4];
    size_t n;
    size_t got = 0;

    c.protocol_name.p = (const uint8_t *)"MQTT";
    c.protocol_name.len = 4;
    c.protocol_level = 4;
    c.clean_session = !persistent;
    c.keepalive = 0;
    c.client_id.p = (const uint8_t *)id;
    c.client_id.len = strlen(id);
    n = mqtt_encode_connect(buf, sizeof(buf), &c);
    if (bench_write_all(fd, buf, n) < 0)
        return -1;
    while (got < 4) {
        ssize_t r = read(fd, ack + got, 4 - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return ack[0] == 0x20 && ack[3] == 0 ? 0 : -1;
}

static int bench_mqtt_connect(int fd, const char *id)
{
    return bench_mqtt_connect_as(fd, id, false);
}

static int bench_start(struct bench_broker *b, const char *bin, bool mosquitto, bool persistence,
                       bool sync)
{
    char conf[128];
    FILE *f;
    double end;

    strcpy(b->dir, "/tmp/cairn-bench-XXXXXX");
    if (!mkdtemp(b->dir))
        return -1;
    b->port = bench_free_port();
    snprintf(conf, sizeof(conf), "%s/b.conf", b->dir);
    f = fopen(conf, "w");
    if (!f)
        return -1;
    fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n", b->port);
    fprintf(f, "max_inflight_messages 1000\n");
    if (persistence)
        fprintf(f, "persistence true\npersistence_location %s/data%s\n", b->dir,
                mosquitto ? "/" : "");
    else
        fprintf(f, "persistence false\n");
    if (sync)
        fprintf(f, "persistence_sync true\n");
    /* run by root, Cairn stays root: the temp dir is root's */
    fprintf(f, mosquitto ? "log_dest none\n"
                         : "log_dest none\nconnection_messages false\nuser root\n");
    fclose(f);
    b->pid = fork();
    if (b->pid < 0)
        return -1;
    if (b->pid == 0) {
        execl(bin, bin, "-c", conf, (char *)NULL);
        _exit(127);
    }
    for (end = bench_now() + 5; bench_now() < end;) {
        int fd = bench_connect_tcp(b->port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        usleep(10000);
    }
    return -1;
}

static void bench_stop(struct bench_broker *b)
{
    char cmd[128];
    int status;

    kill(b->pid, SIGTERM);
    waitpid(b->pid, &status, 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", b->dir);
}

/* RSS before and with n idle clients connected (CONNACK received for each). */
static int bench_idle(struct bench_broker *b, int n, long *before, long *with)
{
    int *fds = calloc((size_t)n, sizeof(int));
    int rc = -1;
    int i;

    *before = bench_proc_kb(b->pid, "VmRSS");
    for (i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "idle-%d", i);
        fds[i] = bench_connect_tcp(b->port);
        if (fds[i] < 0 || bench_mqtt_connect(fds[i], id) < 0)
            break;
    }
    if (i == n) {
        usleep(200000); /* let the broker settle; not synchronisation, the CONNACKs were */
        *with = bench_proc_kb(b->pid, "VmRSS");
        rc = 0;
    }
    for (int j = 0; j < i + (i < n); j++)
        if (fds[j] >= 0)
            close(fds[j]);
    free(fds);
    return rc;
}

/*
 * One publisher, one subscriber on "bench/t" at qos; count messages until m arrive. The
 * publisher keeps at most `window` QoS 1 messages unacknowledged. persistent: the subscriber
 * has a clean session 0 session, so with persistence on every message is stored before its
 * PUBACK and every subscriber PUBACK is recorded (the durable path).
 */
static double bench_throughput(struct bench_broker *b, int m, int qos, bool persistent)
{
    int sub = bench_connect_tcp(b->port);
    int pub = bench_connect_tcp(b->port);
    uint8_t pkt[256];
    static uint8_t in[1 << 20];
    size_t in_len = 0;
    static uint8_t pin[1 << 16];
    size_t pin_len = 0;
    int sent = 0;
    int acked = 0;
    int received = 0;
    int window = 1000;
    double t0;
    double t = -1;
    struct mqtt_sub s = {.filter = {(const uint8_t *)"bench/t", 7}, .qos = (uint8_t)qos};
    uint8_t payload[64];
    struct mqtt_publish p = {.qos = (uint8_t)qos,
                             .topic = {(const uint8_t *)"bench/t", 7},
                             .payload = {payload, sizeof(payload)}};

    memset(payload, 'p', sizeof(payload));
    if (sub < 0 || pub < 0 ||
        bench_mqtt_connect_as(sub, persistent ? "bench-dsub" : "bench-sub", persistent) < 0 ||
        bench_mqtt_connect(pub, "bench-pub") < 0)
        goto out;
    bench_write_all(sub, pkt, mqtt_encode_subscribe(pkt, sizeof(pkt), 1, &s, 1));
    {
        uint8_t suback[5];
        size_t got = 0;
        while (got < 5) {
            ssize_t r = read(sub, suback + got, 5 - got);
            if (r <= 0)
                goto out;
            got += (size_t)r;
        }
    }
    t0 = bench_now();
    while (received < m && bench_now() - t0 < 60) {
        struct pollfd pf[2] = {{sub, POLLIN, 0}, {pub, POLLIN, 0}};
        /* publish a batch */
        /* QoS 0 is paced by what the subscriber got (a broker may drop QoS 0 for a subscriber
         * that falls behind, as Cairn does past its output high-water mark) */
        int ahead = qos ? sent - acked : sent - received;
        if (sent < m && ahead < window) {
            static uint8_t batch[64 * 1024];
            size_t bl = 0;
            while (sent < m && bl + 128 < sizeof(batch) && ahead < window) {
                p.packet_id = qos ? (uint16_t)(sent % 65535 + 1) : 0;
                bl += mqtt_encode_publish(batch + bl, sizeof(batch) - bl, &p);
                sent++;
                ahead++;
            }
            bench_write_all(pub, batch, bl);
        }
        if (poll(pf, 2, 100) <= 0)
            continue;
        if (pf[0].revents & POLLIN) {
            ssize_t r = read(sub, in + in_len, sizeof(in) - in_len);
            size_t off = 0;
            static uint8_t acks[1 << 16];
            size_t al = 0;
            if (r <= 0)
                goto out;
            in_len += (size_t)r;
            for (;;) {
                struct mqtt_packet k;
                int n = mqtt_decode(in + off, in_len - off, 0, &k);
                if (n <= 0)
                    break;
                off += (size_t)n;
                if (k.type == MQTT_PUBLISH) {
                    received++;
                    if (k.u.publish.qos == 1 && al + 4 < sizeof(acks))
                        al += mqtt_encode_ack(acks + al, 4, MQTT_PUBACK, k.u.publish.packet_id);
                }
            }
            memmove(in, in + off, in_len - off);
            in_len -= off;
            if (al)
                bench_write_all(sub, acks, al);
        }
        if (pf[1].revents & POLLIN) {
            ssize_t r = read(pub, pin + pin_len, sizeof(pin) - pin_len);
            size_t off = 0;
            if (r <= 0)
                goto out;
            pin_len += (size_t)r;
            for (;;) {
                struct mqtt_packet k;
                int n = mqtt_decode(pin + off, pin_len - off, 0, &k);
                if (n <= 0)
                    break;
                off += (size_t)n;
                if (k.type == MQTT_PUBACK)
                    acked++;
            }
            memmove(pin, pin + off, pin_len - off);
            pin_len -= off;
        }
    }
    if (received == m)
        t = bench_now() - t0;
    else
        fprintf(stderr, "bench_server: %d of %d messages arrived within 60 s (qos %d%s)\n",
                received, m, qos, persistent ? ", persistent subscriber" : "");
out:
    if (sub >= 0)
        close(sub);
    if (pub >= 0)
        close(pub);
    return t > 0 ? m / t : -1;
}

struct bench_variant {
    const char *name;
    bool mosquitto;
    bool persistence;
    bool sync;
};

static const struct bench_variant bench_variants[] = {
    {"cairn persistence false", false, false, false},
    {"cairn persistence_sync false", false, true, false},
    {"cairn persistence_sync true", false, true, true},
    {"mosquitto persistence false", true, false, false},
    {"mosquitto persistence true", true, true, false},
};

int main(int argc, char **argv)
{
    const char *bins[2] = {NULL, NULL};
    int nclients = 1000;
    int nmsgs = 200000;
    struct rlimit rl;
    int nb = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            nclients = atoi(argv[++i]);
        else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc)
            nmsgs = atoi(argv[++i]);
        else if (nb < 2)
            bins[nb++] = argv[i];
    }
    if (nb == 0) {
        fprintf(stderr, "usage: bench_server CAIRN_BIN [MOSQUITTO_BIN] [-n CLIENTS] [-m MSGS]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    struct bench_row {
        bool ok;
        long before, with;
        double q[3];
    } rows[sizeof(bench_variants) / sizeof(bench_variants[0])];
    const size_t nv = sizeof(bench_variants) / sizeof(bench_variants[0]);
    const struct bench_row *mosq = NULL;

    for (size_t k = 0; k < nv; k++) {
        const struct bench_variant *v = &bench_variants[k];
        const char *bin = v->mosquitto ? bins[1] : bins[0];
        struct bench_broker b;
        struct bench_row *r = &rows[k];

        memset(r, 0, sizeof(*r));
        if (!bin)
            continue;
        if (bench_start(&b, bin, v->mosquitto, v->persistence, v->sync) < 0) {
            fprintf(stderr, "%s: failed to start\n", v->name);
            continue;
        }
        bench_idle(&b, nclients, &r->before, &r->with);
        r->q[0] = bench_throughput(&b, nmsgs, 0, false);
        r->q[1] = bench_throughput(&b, nmsgs, 1, false);
        r->q[2] = bench_throughput(&b, nmsgs, 1, true);
        r->ok = true;
        if (v->mosquitto && v->persistence)
            mosq = r;
        bench_stop(&b);
    }
    printf("%-30s %9s %9s %7s %11s %11s %11s   %s\n", "broker", "RSS idle", "RSS +N", "KB/cli",
           "QoS0 msg/s", "QoS1 msg/s", "QoS1 dur/s", "ratio to mosquitto persistence true");
    for (size_t k = 0; k < nv; k++) {
        const struct bench_row *r = &rows[k];

        if (!r->ok)
            continue;
        printf("%-30s %7ldKB %7ldKB %7.1f %11.0f %11.0f %11.0f", bench_variants[k].name, r->before,
               r->with, (double)(r->with - r->before) / nclients, r->q[0], r->q[1], r->q[2]);
        if (mosq && mosq->q[0] > 0 && mosq->q[1] > 0 && mosq->q[2] > 0)
            printf("   %.2f / %.2f / %.2f", r->q[0] / mosq->q[0], r->q[1] / mosq->q[1],
                   r->q[2] / mosq->q[2]);
        printf("\n");
    }
    printf("(N = %d idle clients; %d messages of 64 bytes, one publisher -> one subscriber, the\n"
           " publisher pipelining up to 1000 unacknowledged; 'dur' = the subscriber has a\n"
           " persistent session (clean session 0), so Cairn stores every message before its "
           "PUBACK)\n",
           nclients, nmsgs);
    return 0;
}
