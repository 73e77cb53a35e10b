/*
 * bench_tls_load — TLS at fleet scale (issue 15), Cairn against Mosquitto in one run:
 *
 *   - storm: N TLS clients connect at once (full handshakes: a restart leaves no session a
 *     ticket could resume) while a publisher and a subscriber that connected before exchange a
 *     QoS 1 message every 2 ms. Reported: the storm's total time (first connect to last
 *     CONNACK), the broker's CPU per handshake, and the pair's latency (publish -> delivery)
 *     before and during the storm, p50 / p99 / max.
 *   - idle: memory per idle TLS connection (CONNECT done, then nothing), KiB of broker RSS;
 *   - fan-in: 100 devices each publishing to one topic, one message per TLS record, one
 *     subscriber; fan-out: one publisher, 50 subscribers (the broker packs many packets into
 *     each outgoing record). QoS 0 and 1, 64-byte payloads, a closed loop (a window of messages
 *     outstanding per subscriber), deliveries per second; the median of -r runs (3), the
 *     brokers interleaved run by run.
 *
 * The brokers run on CPU 0 (Cairn's handshake threads with its loop), the load tool on CPU 1;
 * the tool's clients are OpenSSL (tlsload.h) so that they are not the bottleneck, and the table
 * gives the tool's CPU beside the broker's. Server certificate: ECDSA P-256 (-k rsa: RSA 2048).
 * TLS 1.2 for both brokers (Cairn's version). Mosquitto: its TLS listener with
 * set_tcp_nodelay, no limits (loadbroker.c).
 *
 * Usage: bench_tls_load CAIRN_BIN [MOSQUITTO_BIN] [-n STORM_CLIENTS] [-i IDLE] [-r RUNS] [-d
 * SECONDS] [-s TEXT]
 *        [-b cairn,mosquitto] [-k ec|rsa]
 * Figures go in the issue note and the README, never into a pass/fail.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "benchnet.h"
#include "loadbroker.h"
#include "tlsload.h"

#define PAIR_PERIOD_MS 2
#define PAYLOAD        64
#define MAX_LAT        (1 << 20)
#define MAX_RUNS       9

static struct {
    int storm_n;
    int idle_n;
    int runs;
    double secs;
    const char *only;
    const char *brokers;
    const char *key;
    char dir[64];
} opt = {.storm_n = 8000,
         .idle_n = 2000,
         .runs = 3,
         .secs = 3,
         .brokers = "mosquitto,cairn",
         .key = "ec"};

/* ---- latencies ---------------------------------------------------------------------------- */

struct lat {
    double *v;
    size_t n;
};

static void lat_add(struct lat *l, double s)
{
    if (l->n < MAX_LAT)
        l->v[l->n++] = s;
}

static int lat_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* "p50 / p99 / max" in ms */
static void lat_str(struct lat *l, char *out, size_t len)
{
    if (l->n == 0) {
        snprintf(out, len, "—");
        return;
    }
    qsort(l->v, l->n, sizeof(double), lat_cmp);
    snprintf(out, len, "%.2f / %.2f / %.1f", l->v[l->n / 2] * 1e3,
             l->v[(size_t)((double)l->n * 0.99)] * 1e3, l->v[l->n - 1] * 1e3);
}

/* ---- the storm ----------------------------------------------------------------------------- */

struct pair {
    int port;
    volatile int phase; /* 0 baseline, 1 storm, 2 stop */
    volatile int ready;
    struct lat before, during;
    long lost;
    long sent, got;
};

static void pair_publish(struct tl_conn *c, const uint8_t *p, size_t len, int qos)
{
    struct pair *pr = c->arg;
    double t;

    (void)qos;
    if (len < sizeof(t))
        return;
    memcpy(&t, p, sizeof(t));
    pr->got++;
    if (pr->phase == 0)
        lat_add(&pr->before, bench_now() - t);
    else if (pr->phase == 1)
        lat_add(&pr->during, bench_now() - t);
}

static void *pair_thread(void *arg)
{
    struct pair *pr = arg;
    struct tl_handlers h = {.publish = pair_publish};
    struct tl_engine *e = tl_engine_new(pr->port, &h);
    struct tl_conn *sub, *pub;
    double next;

    if (!e)
        return NULL;
    sub = tl_connect(e, "pair-sub", "storm/pair", 1, 0, pr);
    pub = tl_connect(e, "pair-pub", NULL, 0, 1, pr);
    while (sub && pub && (sub->state != TL_READY || pub->state != TL_READY) &&
           sub->state != TL_DEAD && pub->state != TL_DEAD)
        tl_engine_run(e, 10);
    pr->ready = sub && pub && sub->state == TL_READY && pub->state == TL_READY ? 1 : -1;
    next = bench_now();
    while (pr->ready > 0 && pr->phase < 2) {
        double now = bench_now();
        int wait;

        if (now >= next) {
            uint8_t m[PAYLOAD] = {0};

            memcpy(m, &now, sizeof(now));
            tl_publish(pub, "storm/pair", 1, m, sizeof(m));
            pr->sent++;
            next += PAIR_PERIOD_MS / 1e3;
            if (next < now)
                next = now; /* behind (the tool was held up): no burst to catch up */
            tl_engine_flush(e);
        }
        wait = (int)((next - bench_now()) * 1e3);
        tl_engine_run(e, wait > 0 ? wait : 0);
    }
    tl_engine_free(e);
    return NULL;
}

static void storm_count(struct tl_conn *c)
{
    (*(long *)c->arg)++;
}

static void run_storm(struct load_broker *b, char *row, size_t rowlen)
{
    struct pair pr = {.port = b->port};
    struct tl_handlers h = {.ready = storm_count, .dead = storm_count};
    struct tl_engine *e = tl_engine_new(b->port, &h);
    struct load_cpu c0, c1;
    struct load_usage u;
    pthread_t th;
    char before[64], during[64];
    long finished = 0;
    double t0, deadline;
    size_t ok;

    pr.before.v = calloc(MAX_LAT, sizeof(double));
    pr.during.v = calloc(MAX_LAT, sizeof(double));
    if (!e || !pr.before.v || !pr.during.v || pthread_create(&th, NULL, pair_thread, &pr)) {
        snprintf(row, rowlen, "set-up failed");
        return;
    }
    /* the storm's clients yield to the pair at once (SCHED_IDLE: preempted by any wakeup of
     * the pair's thread on this CPU), so its latency is the broker's, not the tool's */
    {
        struct sched_param sp = {0};

        pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    }
    while (!pr.ready)
        usleep(1000);
    usleep(1000000); /* the baseline */
    load_cpu_snap(b->pid, &c0);
    pr.phase = 1;
    t0 = bench_now();
    for (int i = 0; i < opt.storm_n; i++) {
        char id[32];

        snprintf(id, sizeof(id), "storm-%d", i);
        if (!tl_connect(e, id, NULL, 0, i, &finished))
            finished++; /* out of sockets: counted as failed */
    }
    deadline = t0 + 300;
    while (finished < opt.storm_n && bench_now() < deadline)
        tl_engine_run(e, 5);
    load_cpu_snap(b->pid, &c1);
    pr.phase = 2;
    pthread_join(th, NULL);
    load_cpu_delta(&c0, &c1, &u);
    ok = tl_engine_count(e, TL_READY);
    lat_str(&pr.before, before, sizeof(before));
    lat_str(&pr.during, during, sizeof(during));
    snprintf(row, rowlen, "%.2f s | %zu of %d | %.2f ms | %s | %s | %.2f / %.2f | %ld of %ld",
             c1.wall - t0, ok, opt.storm_n, ok ? (c1.broker - c0.broker) * 1e3 / (double)ok : 0.0,
             before, during, u.broker, u.self, pr.got, pr.sent);
    tl_engine_free(e);
    {
        struct sched_param sp = {0};

        pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
    }
    free(pr.before.v);
    free(pr.during.v);
}

/* ---- throughput ---------------------------------------------------------------------------- */

struct tp {
    int pubs, subs, qos;
    long sent, delivered, acked;
    int ready;
};

static void tp_ready(struct tl_conn *c)
{
    ((struct tp *)c->arg)->ready++;
}

static void tp_publish(struct tl_conn *c, const uint8_t *p, size_t len, int qos)
{
    (void)p;
    (void)len;
    (void)qos;
    ((struct tp *)c->arg)->delivered++;
}

static void tp_puback(struct tl_conn *c)
{
    ((struct tp *)c->arg)->acked++;
}

/* deliveries per second, or a negative number on failure */
static double run_tp(struct load_broker *b, int pubs, int subs, int qos, struct load_usage *u)
{
    struct tp t = {.pubs = pubs, .subs = subs, .qos = qos};
    struct tl_handlers h = {.ready = tp_ready, .publish = tp_publish, .puback = tp_puback};
    struct tl_engine *e = tl_engine_new(b->port, &h);
    struct tl_conn **pv = calloc((size_t)pubs, sizeof(*pv));
    long window = subs > 1 ? 200 : 2000, d0 = 0;
    struct load_cpu c0 = {0}, c1;
    double start, t_end, rate = -1;
    uint8_t m[PAYLOAD];
    bool measuring = false;
    int k = 0;

    memset(m, 'x', sizeof(m));
    if (!e || !pv)
        goto out;
    for (int i = 0; i < subs; i++) {
        char id[32];

        snprintf(id, sizeof(id), "tp-sub-%d", i);
        tl_connect(e, id, "tp/t", qos, i, &t);
    }
    for (int i = 0; i < pubs; i++) {
        char id[32];

        snprintf(id, sizeof(id), "tp-pub-%d", i);
        pv[i] = tl_connect(e, id, NULL, 0, i, &t);
    }
    for (double end = bench_now() + 20; t.ready < pubs + subs && bench_now() < end;)
        tl_engine_run(e, 10);
    if (t.ready < pubs + subs)
        goto out;
    start = bench_now();
    t_end = start + 0.5 + opt.secs;
    while (bench_now() < t_end) {
        /* a few records per publisher per round, each message its own record (one send()
         * carries them: a send per message would make the tool the bottleneck) */
        for (int n = 0; n < 16 && t.sent - t.delivered / subs < window; n++) {
            struct tl_conn *c = pv[k];

            k = (k + 1) % pubs;
            if (qos && t.sent - t.acked >= 50L * pubs)
                break;
            for (int r = 0; r < 8; r++)
                if (tl_publish(c, "tp/t", qos, m, sizeof(m)) == 0)
                    t.sent++;
        }
        /* block when the window is full, so the tool's CPU is its work, not a spin */
        tl_engine_run(e, t.sent - t.delivered / subs >= window ||
                                 (qos && t.sent - t.acked >= 50L * pubs)
                             ? 1
                             : 0);
        if (!measuring && bench_now() >= start + 0.5) {
            measuring = true;
            load_cpu_snap(b->pid, &c0);
            d0 = t.delivered;
        }
    }
    load_cpu_snap(b->pid, &c1);
    load_cpu_delta(&c0, &c1, u);
    rate = (double)(t.delivered - d0) / (c1.wall - c0.wall);
out:
    tl_engine_free(e);
    free(pv);
    return rate;
}

/* ---- idle connections --------------------------------------------------------------------- */

static void idle_ready(struct tl_conn *c)
{
    (*(long *)c->arg)++;
}

/* KiB of broker RSS per idle TLS connection (CONNECT done, then nothing), or -1. */
static double run_idle(struct load_broker *b, int n, int *got)
{
    long done = 0, before, after;
    struct tl_handlers h = {.ready = idle_ready, .dead = idle_ready};
    struct tl_engine *e = tl_engine_new(b->port, &h);
    double rate = -1;

    *got = 0;
    if (!e)
        return -1;
    usleep(300000);
    before = bench_proc_kb(b->pid, "VmRSS");
    for (int i = 0; i < n; i++) {
        char id[32];

        snprintf(id, sizeof(id), "idle-%d", i);
        if (!tl_connect(e, id, NULL, 0, i, &done))
            done++;
        if (i % 64 == 63) /* a few at a time: the figure is memory, not a storm */
            while (done < i - 128)
                tl_engine_run(e, 5);
    }
    for (double end = bench_now() + 60; done < n && bench_now() < end;)
        tl_engine_run(e, 5);
    for (double end = bench_now() + 0.5; bench_now() < end;)
        tl_engine_run(e, 50);
    after = bench_proc_kb(b->pid, "VmRSS");
    *got = (int)tl_engine_count(e, TL_READY);
    if (*got > 0 && before > 0 && after > 0)
        rate = (double)(after - before) / *got;
    tl_engine_free(e);
    return rate;
}

/* The run whose rate for broker i is the median of runs. */
static int median_run(double r[][2], int runs, int i)
{
    for (int k = 0; k < runs; k++) {
        int below = 0, above = 0;

        for (int j = 0; j < runs; j++) {
            below += r[j][i] < r[k][i];
            above += r[j][i] > r[k][i];
        }
        if (below <= runs / 2 && above <= runs / 2)
            return k;
    }
    return 0;
}

/* ---- main ---------------------------------------------------------------------------------- */

static int make_certs(void)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout ca.key -out ca.crt -days 30 -subj /CN=bench-ca 2>/dev/null && "
             "(if [ %s = rsa ]; then openssl genrsa -out server.key 2048 2>/dev/null; else "
             "openssl ecparam -name prime256v1 -genkey -noout -out server.key; fi) && "
             "openssl req -new -key server.key -subj /CN=localhost -out s.csr && "
             "openssl x509 -req -in s.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 "
             "-out server.crt 2>/dev/null && chmod 755 . && chmod 644 server.key",
             opt.dir, strcmp(opt.key, "rsa") == 0 ? "rsa" : "ec");
    return system(cmd) == 0 ? 0 : -1;
}

static bool want(const char *scenario)
{
    return !opt.only || strstr(scenario, opt.only);
}

static int start(struct load_broker *b, enum load_kind kind, const char *bin)
{
    char err[512];

    *b = (struct load_broker){.kind = kind, .bin = bin, .tls_dir = opt.dir};
    /* a storm's last handshakes may wait longer than Cairn's default 10 s CONNECT timeout */
    b->extra = kind == LOAD_CAIRN
                   ? (getenv("CAIRN_EXTRA") ? getenv("CAIRN_EXTRA") : "connect_timeout 120")
                   : NULL;
    if (load_broker_start(b, LOAD_BROKER_CPU, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *bins[2] = {NULL, "/usr/sbin/mosquitto"};
    const enum load_kind kinds[2] = {LOAD_CAIRN, LOAD_MOSQUITTO};
    const char *names[2] = {"cairn", "mosquitto"};
    static const struct {
        const char *name;
        int pubs, subs, qos;
    } tps[] = {{"fan-in 100→1, QoS 0", 100, 1, 0},
               {"fan-in 100→1, QoS 1", 100, 1, 1},
               {"fan-out 1→50, QoS 0", 1, 50, 0},
               {"fan-out 1→50, QoS 1", 1, 50, 1}};
    double rate[4][2] = {{0}};
    struct load_usage use[4][2] = {{{0}}};
    int npos = 0, c;

    while ((c = getopt(argc, argv, "n:i:r:d:s:b:k:")) != -1) {
        if (c == 'n')
            opt.storm_n = atoi(optarg);
        else if (c == 'i')
            opt.idle_n = atoi(optarg);
        else if (c == 'r')
            opt.runs = atoi(optarg) < 1 ? 1 : atoi(optarg) > MAX_RUNS ? MAX_RUNS : atoi(optarg);
        else if (c == 'd')
            opt.secs = atof(optarg);
        else if (c == 's')
            opt.only = optarg;
        else if (c == 'b')
            opt.brokers = optarg;
        else if (c == 'k')
            opt.key = optarg;
        else
            return 2;
    }
    for (; optind < argc && npos < 2; optind++)
        bins[npos++] = argv[optind];
    if (!bins[0]) {
        fprintf(
            stderr,
            "usage: bench_tls_load CAIRN_BIN [MOSQUITTO_BIN] [-n N] [-i N] [-r N] [-d S] [-s TEXT] "
            "[-b cairn,mosquitto] [-k ec|rsa]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    load_pin(0, LOAD_TOOL_CPU);
    strcpy(opt.dir, "/tmp/cairn-tlsload-XXXXXX");
    if (!mkdtemp(opt.dir) || make_certs() != 0) {
        fprintf(stderr, "cannot make certificates in %s\n", opt.dir);
        return 1;
    }
    if (want("storm")) {
        printf("| broker | storm of %d: total | connected | broker CPU per handshake | pair "
               "p50 / p99 / max ms before | during the storm | broker / tool CPU (cores) | "
               "pair messages |\n|---|---|---|---|---|---|---|---|\n",
               opt.storm_n);
        for (int i = 1; i >= 0; i--) {
            struct load_broker b;
            char row[512];

            if (!strstr(opt.brokers, names[i]) || start(&b, kinds[i], bins[i]) != 0)
                continue;
            fprintf(stderr, "storm: %s\n", names[i]);
            run_storm(&b, row, sizeof(row));
            load_broker_stop(&b);
            printf("| %s | %s |\n", names[i], row);
            fflush(stdout);
        }
        printf("\n");
    }
    if (want("idle")) {
        double kb[2] = {-1, -1};
        int got[2] = {0, 0};

        for (int i = 1; i >= 0; i--) {
            struct load_broker b;

            if (!strstr(opt.brokers, names[i]) || start(&b, kinds[i], bins[i]) != 0)
                continue;
            fprintf(stderr, "idle: %s\n", names[i]);
            kb[i] = run_idle(&b, opt.idle_n, &got[i]);
            load_broker_stop(&b);
        }
        printf("| idle TLS connections | Mosquitto | Cairn |\n|---|---|---|\n");
        printf("| KiB of broker RSS each | %.2f (%d) | %.2f (%d) |\n\n", kb[1], got[1], kb[0],
               got[0]);
    }
    for (int s = 0; s < 4; s++) {
        if (!want(tps[s].name))
            continue;
        double r[MAX_RUNS][2] = {{0}};
        struct load_usage u[MAX_RUNS][2];

        /* the brokers interleaved run by run, so a busy spell hits both; the median is kept */
        for (int k = 0; k < opt.runs; k++) {
            for (int i = 1; i >= 0; i--) {
                struct load_broker b;

                if (!strstr(opt.brokers, names[i]) || start(&b, kinds[i], bins[i]) != 0)
                    continue;
                fprintf(stderr, "%s: %s, run %d\n", tps[s].name, names[i], k + 1);
                r[k][i] = run_tp(&b, tps[s].pubs, tps[s].subs, tps[s].qos, &u[k][i]);
                load_broker_stop(&b);
            }
        }
        for (int i = 0; i < 2; i++) {
            int m = median_run(r, opt.runs, i);

            rate[s][i] = r[m][i];
            use[s][i] = u[m][i];
        }
    }
    if (!want("fan-"))
        goto out;
    printf("| scenario (64 B, TLS 1.2, %s key) | Mosquitto msg/s | Cairn msg/s | Cairn / "
           "Mosquitto | broker CPU M / C | tool CPU M / C | others on broker's, tool's CPU M; C "
           "|\n|---|---|---|---|---|---|---|\n",
           opt.key);
    for (int s = 0; s < 4; s++) {
        if (!want(tps[s].name))
            continue;
        printf("| %s | %.0f | %.0f | %.2f | %.2f / %.2f | %.2f / %.2f | %.2f, %.2f; %.2f, %.2f |\n",
               tps[s].name, rate[s][1], rate[s][0], rate[s][1] > 0 ? rate[s][0] / rate[s][1] : 0.0,
               use[s][1].broker, use[s][0].broker, use[s][1].self, use[s][0].self,
               use[s][1].other_on_broker, use[s][1].other_on_tool, use[s][0].other_on_broker,
               use[s][0].other_on_tool);
    }
out : {
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", opt.dir);
    return system(cmd) == 0 ? 0 : 1;
}
}
