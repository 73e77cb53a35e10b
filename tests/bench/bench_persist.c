/*
 * bench_persist.c — figures for persist/ on LevelDB (not a test: it prints, it never fails).
 *
 *   bench_persist [-n MESSAGES] [-s SESSIONS] [-t SECONDS] [DIR]
 *
 * Payloads are pseudo-random bytes (they do not compress).
 *
 * 1. Group commit: batches of 1, 64 and 1024 enqueued 100-byte QoS 1 messages, each batch one
 *    persist_commit(), with persistence_sync false and true: commits/s and messages/s. Each
 *    case runs for about SECONDS (default 2).
 * 2. Restart: a store with MESSAGES (default 1,000,000) 100-byte QoS 1 messages queued over
 *    SESSIONS (default 100) offline sessions; a fresh process (this program re-executed) opens
 *    and restores it: open time, restore time, one window read, peak resident memory.
 *
 * DIR (default: a new directory under $TMPDIR or /tmp) is removed afterwards.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "persist.h"

#define PAYLOAD 100

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A line of /proc/self/status in kB ("VmHWM", "RssAnon", "RssFile"), -1 if absent. */
static long status_kb(const char *field)
{
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Payload bytes that do not compress, like real sensor data after encryption or packing. */
static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static long du_kb(const char *dir)
{
    char cmd[600];
    long kb = -1;
    snprintf(cmd, sizeof cmd, "du -sk '%s' 2>/dev/null", dir);
    FILE *p = popen(cmd, "r");
    if (p) {
        if (fscanf(p, "%ld", &kb) != 1)
            kb = -1;
        pclose(p);
    }
    return kb;
}

static struct persist *open_store(const char *dir, bool sync)
{
    struct persist_options o = {.dir = dir, .sync = sync};
    struct persist *p = NULL;
    char err[512];
    uint64_t max_id;
    if (persist_open(&o, &p, err, sizeof err) ||
        persist_restore(p, NULL, NULL, &max_id, err, sizeof err)) {
        fprintf(stderr, "bench_persist: %s\n", err);
        exit(1);
    }
    return p;
}

static void commit(struct persist *p)
{
    char err[512];
    if (persist_commit(p, err, sizeof err)) {
        fprintf(stderr, "bench_persist: %s\n", err);
        exit(1);
    }
}

static struct mqtt_str cid_of(char *buf, size_t cap, unsigned i)
{
    int n = snprintf(buf, cap, "sensor-%05u", i);
    return (struct mqtt_str){(const uint8_t *)buf, (size_t)n};
}

static void group_commit(const char *base, double seconds)
{
    static const size_t batches[] = {1, 64, 1024};
    uint8_t payload[PAYLOAD];
    char dir[512], cbuf[32];

    printf("\n1. group commit: enqueue 100-byte QoS 1 messages, one commit per batch\n");
    printf("%-22s %8s %14s %14s\n", "persistence_sync", "batch", "commits/s", "messages/s");
    for (int sync = 0; sync <= 1; sync++) {
        for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
            snprintf(dir, sizeof dir, "%s/gc-%d-%zu", base, sync, batches[b]);
            struct persist *p = open_store(dir, sync);
            struct mqtt_str cid = cid_of(cbuf, sizeof cbuf, 0);
            struct persist_session s = {0};
            persist_session_put(p, cid, &s);
            commit(p);
            uint64_t id = 0, commits = 0;
            double t0 = now(), t;
            do {
                for (size_t i = 0; i < batches[b]; i++) {
                    id++;
                    fill_random(payload, sizeof payload, id);
                    struct persist_msg m = {id,
                                            {(const uint8_t *)"bench/t", 7},
                                            {payload, sizeof payload},
                                            1,
                                            false,
                                            {NULL, 0}};
                    struct persist_qentry e = {id, id, 0, 1, PERSIST_Q_QUEUED};
                    persist_enqueue(p, cid, &e, &m);
                }
                commit(p);
                commits++;
                t = now() - t0;
            } while (t < seconds);
            printf("%-22s %8zu %14.0f %14.0f\n", sync ? "true (fsync)" : "false", batches[b],
                   (double)commits / t, (double)id / t);
            fflush(stdout);
            persist_close(p);
            rm_rf(dir);
        }
    }
}

/* The child: open and restore DIR in a fresh process, print the figures. */
struct count {
    uint64_t sessions, queued, bytes;
};

static int on_session(void *ctx, struct mqtt_str cid, const struct persist_session *s,
                      const struct persist_queue_info *q)
{
    struct count *c = ctx;
    c->sessions++;
    c->queued += q->count;
    c->bytes += q->bytes;
    return 0;
}

static int on_entry(void *ctx, const struct persist_qentry *e, const struct persist_msg *m)
{
    (*(size_t *)ctx) += m->payload.len;
    return 0;
}

static int restore_child(const char *dir)
{
    struct persist_options o = {.dir = dir};
    struct persist_restore_ops ops = {.session = on_session};
    struct persist *p = NULL;
    struct count c = {0};
    char err[512], cbuf[32];
    uint64_t max_id;
    long rss0 = status_kb("VmHWM");
    double c0 = cpu_seconds();
    double t0 = now();
    if (persist_open(&o, &p, err, sizeof err)) {
        fprintf(stderr, "bench_persist: %s\n", err);
        return 1;
    }
    double t1 = now();
    if (persist_restore(p, &ops, &c, &max_id, err, sizeof err)) {
        fprintf(stderr, "bench_persist: %s\n", err);
        return 1;
    }
    double t2 = now();
    double c2 = cpu_seconds();
    long anon = status_kb("RssAnon"), file = status_kb("RssFile");
    size_t got = 0;
    int n = persist_queue_read(p, cid_of(cbuf, sizeof cbuf, 0), 0, 1000, on_entry, &got);
    double t3 = now();
    printf("%-34s %10.3f s\n", "open (LevelDB recovery)", t1 - t0);
    printf("%-34s %10.3f s   (%llu sessions, %llu messages, %llu payload bytes)\n",
           "restore (one scan)", t2 - t1, (unsigned long long)c.sessions,
           (unsigned long long)c.queued, (unsigned long long)c.bytes);
    printf("%-34s %10.3f s   (CPU time %.3f s; the rest is waiting for a CPU or the disk)\n",
           "open + restore: serving again after", t2 - t0, c2 - c0);
    printf("%-34s %10.3f ms  (%d entries)\n", "first window read", (t3 - t2) * 1e3, n);
    printf("%-34s %10.1f MB  (before open: %.1f MB)\n", "peak resident memory (VmHWM)",
           (double)status_kb("VmHWM") / 1024, (double)rss0 / 1024);
    printf("%-34s %10.1f MB  anonymous + %.1f MB file pages (LevelDB maps its tables)\n",
           "resident after restore", (double)anon / 1024, (double)file / 1024);
    persist_close(p);
    return 0;
}

static void restart(const char *self, const char *base, unsigned long msgs, unsigned sessions)
{
    uint8_t payload[PAYLOAD];
    char dir[512], cbuf[32];
    snprintf(dir, sizeof dir, "%s/restart", base);

    printf("\n2. restart with %lu queued 100-byte QoS 1 messages over %u offline sessions\n", msgs,
           sessions);
    double t0 = now();
    struct persist *p = open_store(dir, false);
    for (unsigned i = 0; i < sessions; i++) {
        struct persist_session s = {.last_seen = 1700000000};
        persist_session_put(p, cid_of(cbuf, sizeof cbuf, i), &s);
    }
    commit(p);
    for (unsigned long id = 1; id <= msgs; id++) {
        struct mqtt_str cid = cid_of(cbuf, sizeof cbuf, (unsigned)(id % sessions));
        fill_random(payload, sizeof payload, id);
        struct persist_msg m = {
            id, {(const uint8_t *)"bench/t", 7}, {payload, sizeof payload}, 1, false, {NULL, 0}};
        struct persist_qentry e = {id, id, 0, 1, PERSIST_Q_QUEUED};
        persist_enqueue(p, cid, &e, &m);
        if (id % 1024 == 0)
            commit(p);
    }
    commit(p);
    persist_close(p);
    printf("%-34s %10.3f s   (store %.1f MB on disk)\n", "fill (batches of 1024, no fsync)",
           now() - t0, (double)du_kb(dir) / 1024);
    fflush(stdout);

    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, "--restore-child", dir, (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status))
        fprintf(stderr, "bench_persist: restore child failed\n");
    rm_rf(dir);
}

int main(int argc, char **argv)
{
    unsigned long msgs = 1000000;
    unsigned sessions = 100;
    double seconds = 2;
    char base[512] = "";
    bool own = false;
    int opt;

    if (argc == 3 && strcmp(argv[1], "--restore-child") == 0)
        return restore_child(argv[2]);
    while ((opt = getopt(argc, argv, "n:s:t:h")) != -1) {
        switch (opt) {
        case 'n':
            msgs = strtoul(optarg, NULL, 10);
            break;
        case 's':
            sessions = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 't':
            seconds = atof(optarg);
            break;
        default:
            fprintf(stderr, "usage: %s [-n MESSAGES] [-s SESSIONS] [-t SECONDS] [DIR]\n", argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (sessions == 0)
        sessions = 1;
    if (optind < argc) {
        snprintf(base, sizeof base, "%s", argv[optind]);
        if (mkdir(base, 0700) < 0 && errno != EEXIST) {
            perror(base);
            return 1;
        }
    } else {
        const char *t = getenv("TMPDIR");
        snprintf(base, sizeof base, "%s/bench-persist-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(base)) {
            perror("mkdtemp");
            return 1;
        }
        own = true;
    }
    printf("bench_persist: persist/ on LevelDB, store under %s\n", base);
    group_commit(base, seconds);
    restart("/proc/self/exe", base, msgs, sessions);
    if (own)
        rm_rf(base);
    return 0;
}
