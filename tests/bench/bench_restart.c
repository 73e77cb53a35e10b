/*
 * bench_restart.c — issue 4's second figure: restart time and broker memory with N 100-byte
 * QoS 1 messages queued for offline persistent sessions.
 *
 *   bench_restart [CAIRN_BIN [MOSQUITTO_BIN]] [-n MESSAGES] [-s SESSIONS]
 *
 * For each broker (Cairn, then Mosquitto when its binary exists): start it with persistence
 * true on a free loopback port and a fresh temp dir, create S persistent sessions (clean
 * session 0, one QoS 1 subscription each on rt/S, then DISCONNECT), publish N messages at QoS 1
 * from one raw-socket publisher that pipelines up to bench_window PUBLISHes and counts PUBACKs.
 * Message i goes to session i % S only, so N messages wait in total (no fan-out). Then read
 * VmRSS/VmHWM, kill -9, exec the broker again on the same dir and time exec -> CONNACK for
 * session 0 ("serving again"; Cairn must answer session present = 1), read RSS again, and
 * drain every session (acking each PUBLISH), checking count and order per session.
 * Mosquitto runs with its default autosave, so kill -9 loses what it had not saved; its
 * "delivered" column shows what survived (a session the restart lost answers session present 0
 * and is not waited on). A third row stops Mosquitto with SIGTERM instead, so it saves everything
 * and its restart time covers loading the whole queue. Both run with max_queued_messages 0
 * (unlimited).
 *
 * Design: raw MQTT 3.1.1 packets built by hand (fixed header, remaining length, body), one
 * buffered reader per socket (bench_rd). The payload's first 8 bytes carry the per-session
 * sequence number; a per-session bitmap tells duplicates from reordering. Figures go in the
 * issue note, never into a test's pass/fail. Temp dirs are removed at the end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchnet.h"

#define BENCH_PAYLOAD 100
#define bench_window  2000

struct bench_rd {
    int fd;
    size_t off;
    size_t len;
    uint8_t buf[1 << 17];
};

struct bench_broker {
    const char *bin;
    bool mosquitto;
    pid_t pid;
    int port;
    char dir[64];
    char conf[96];
};

struct bench_result {
    double pub_rate;
    long rss_kb, hwm_kb;
    double restart_s;
    int session_present;
    long rss_restart_kb;
    long delivered, lost, dups, reordered;
    double drain_rate;
    long drain_hwm_kb;
    bool ok;
};

/* Fixed header with remaining length rl at buf; returns its size. */
static size_t bench_hdr(uint8_t *buf, uint8_t first, size_t rl)
{
    size_t n = 0;

    buf[n++] = first;
    do {
        uint8_t b = rl % 128;
        rl /= 128;
        buf[n++] = (uint8_t)(b | (rl ? 0x80 : 0));
    } while (rl);
    return n;
}

static size_t bench_str(uint8_t *buf, const char *s)
{
    size_t l = strlen(s);

    buf[0] = (uint8_t)(l >> 8);
    buf[1] = (uint8_t)l;
    memcpy(buf + 2, s, l);
    return l + 2;
}

static size_t bench_enc_connect(uint8_t *buf, const char *id, bool clean)
{
    uint8_t body[128];
    size_t n = bench_str(body, "MQTT");
    size_t h;

    body[n++] = 4;
    body[n++] = clean ? 0x02 : 0x00;
    body[n++] = 0;
    body[n++] = 0; /* keepalive 0 */
    n += bench_str(body + n, id);
    h = bench_hdr(buf, 0x10, n);
    memcpy(buf + h, body, n);
    return h + n;
}

static size_t bench_enc_publish(uint8_t *buf, const char *topic, uint16_t pid, uint64_t seq)
{
    size_t tl = strlen(topic);
    size_t n = bench_hdr(buf, 0x32, 2 + tl + 2 + BENCH_PAYLOAD);

    n += bench_str(buf + n, topic);
    buf[n++] = (uint8_t)(pid >> 8);
    buf[n++] = (uint8_t)pid;
    memcpy(buf + n, &seq, sizeof(seq));
    memset(buf + n + sizeof(seq), 'x', BENCH_PAYLOAD - sizeof(seq));
    return n + BENCH_PAYLOAD;
}

static void bench_rd_init(struct bench_rd *r, int fd)
{
    r->fd = fd;
    r->off = 0;
    r->len = 0;
}

/*
 * Next whole packet: 1 with *type (first byte), *body and *blen pointing into r->buf (valid
 * until the next call), 0 on timeout_ms without one, -1 on EOF or error.
 */
static int bench_rd_packet(struct bench_rd *r, uint8_t *type, const uint8_t **body, size_t *blen,
                           int timeout_ms)
{
    int rc = -1;

    for (;;) {
        size_t avail = r->len - r->off;
        const uint8_t *p = r->buf + r->off;
        size_t rl = 0, i = 1, mul = 1;
        bool have_len = false;
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        ssize_t n;

        while (i < avail && i < 5) {
            rl += (size_t)(p[i] & 0x7f) * mul;
            mul *= 128;
            if (!(p[i++] & 0x80)) {
                have_len = true;
                break;
            }
        }
        if (have_len && avail >= i + rl) {
            *type = p[0];
            *body = p + i;
            *blen = rl;
            r->off += i + rl;
            rc = 1;
            break;
        }
        if (r->off > 0) {
            memmove(r->buf, p, avail);
            r->off = 0;
            r->len = avail;
        }
        if (r->len == sizeof(r->buf))
            break;
        if (poll(&pfd, 1, timeout_ms) == 0) {
            rc = 0;
            break;
        }
        n = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        r->len += (size_t)n;
    }
    return rc;
}

/* CONNECT and wait for CONNACK 0: the session-present flag (0/1), or -1. */
static int bench_mqtt_connect(struct bench_rd *r, const char *id, bool clean, int timeout_ms)
{
    uint8_t buf[160];
    uint8_t type = 0;
    const uint8_t *b = NULL;
    size_t bl = 0;
    int rc = -1;

    if (bench_write_all(r->fd, buf, bench_enc_connect(buf, id, clean)) < 0)
        goto out;
    if (bench_rd_packet(r, &type, &b, &bl, timeout_ms) != 1)
        goto out;
    if (type == 0x20 && bl == 2 && b[1] == 0)
        rc = b[0] & 1;
out:
    return rc;
}

static int bench_write_conf(struct bench_broker *b)
{
    FILE *f;
    int rc = -1;

    strcpy(b->dir, "/tmp/cairn-brestart-XXXXXX");
    if (!mkdtemp(b->dir))
        goto out;
    b->port = bench_free_port();
    snprintf(b->conf, sizeof(b->conf), "%s/data", b->dir);
    /* Mosquitto neither creates it nor, started as root, writes as root (it drops to user
     * mosquitto): make the dir, and let that user reach and write it. */
    if (b->mosquitto &&
        (mkdir(b->conf, 0700) < 0 || chmod(b->conf, 0777) < 0 || chmod(b->dir, 0711) < 0))
        goto out;
    snprintf(b->conf, sizeof(b->conf), "%s/b.conf", b->dir);
    f = fopen(b->conf, "w");
    if (!f)
        goto out;
    fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n", b->port);
    fprintf(f, "max_inflight_messages 1000\npersistence true\npersistence_location %s/data%s\n",
            b->dir, b->mosquitto ? "/" : "");
    /* Cairn run by root stays root here: the temp dir is root's (Mosquitto's data dir is
     * made for its dropped user above) */
    fprintf(f, b->mosquitto ? "log_dest none\n"
                            : "log_dest none\nconnection_messages false\nuser root\n");
    fclose(f);
    rc = 0;
out:
    return rc;
}

static int bench_exec(struct bench_broker *b)
{
    b->pid = fork();
    if (b->pid == 0) {
        int null = open("/dev/null", O_WRONLY);

        if (null >= 0)
            dup2(null, STDOUT_FILENO);
        if (null >= 0)
            dup2(null, STDERR_FILENO);
        execl(b->bin, b->bin, "-c", b->conf, (char *)NULL);
        _exit(127);
    }
    return b->pid < 0 ? -1 : 0;
}

/*
 * Poll until the broker accepts a TCP connection and answers CONNECT for id (clean session
 * 0) with a CONNACK; returns the session-present flag or -1 after limit_s. The session is then
 * left with DISCONNECT (anything sent to it meanwhile is redelivered at the drain).
 */
static int bench_wait_serving(struct bench_broker *b, const char *id, double limit_s)
{
    double end = bench_now() + limit_s;
    static struct bench_rd r;
    uint8_t disc[2] = {0xe0, 0};
    int sp = -1;

    while (sp < 0 && bench_now() < end) {
        int fd = bench_connect_tcp(b->port);

        if (fd < 0) {
            usleep(1000);
            continue;
        }
        bench_rd_init(&r, fd);
        sp = bench_mqtt_connect(&r, id, false, (int)(limit_s * 1000));
        if (sp >= 0)
            bench_write_all(fd, disc, sizeof(disc));
        close(fd);
    }
    return sp;
}

static int bench_make_sessions(struct bench_broker *b, int sessions)
{
    static struct bench_rd r;
    int rc = 0;

    for (int s = 0; s < sessions && rc == 0; s++) {
        char id[32], topic[32];
        uint8_t buf[128], body[64];
        uint8_t type = 0;
        const uint8_t *pb = NULL;
        size_t bl = 0, n, h;
        int fd = bench_connect_tcp(b->port);

        rc = -1;
        if (fd < 0)
            break;
        snprintf(id, sizeof(id), "rs%d", s);
        snprintf(topic, sizeof(topic), "rt/%d", s);
        bench_rd_init(&r, fd);
        if (bench_mqtt_connect(&r, id, false, 5000) >= 0) {
            body[0] = 0;
            body[1] = 1;
            n = 2 + bench_str(body + 2, topic);
            body[n++] = 1;
            h = bench_hdr(buf, 0x82, n);
            memcpy(buf + h, body, n);
            if (bench_write_all(fd, buf, h + n) == 0 &&
                bench_rd_packet(&r, &type, &pb, &bl, 5000) == 1 && type == 0x90 && bl == 3 &&
                pb[2] == 1) {
                buf[0] = 0xe0;
                buf[1] = 0;
                rc = bench_write_all(fd, buf, 2);
            }
        }
        close(fd);
    }
    return rc;
}

/* Publish n messages, message i to rt/(i % sessions); acknowledged msg/s or -1. */
static double bench_publish(struct bench_broker *b, long n, int sessions)
{
    static struct bench_rd r;
    static uint8_t out[1 << 16];
    double rate = -1, t0;
    long sent = 0, acked = 0;
    size_t olen = 0;
    int fd = bench_connect_tcp(b->port);

    if (fd < 0)
        goto out;
    bench_rd_init(&r, fd);
    if (bench_mqtt_connect(&r, "rpub", true, 5000) < 0)
        goto out;
    t0 = bench_now();
    while (acked < n) {
        uint8_t type = 0;
        const uint8_t *pb = NULL;
        size_t bl = 0;
        int got;

        while (sent < n && sent - acked < bench_window) {
            char topic[32];

            snprintf(topic, sizeof(topic), "rt/%ld", sent % sessions);
            olen += bench_enc_publish(out + olen, topic, (uint16_t)(sent % 65535 + 1),
                                      (uint64_t)(sent / sessions));
            sent++;
            if (olen > sizeof(out) - 256) {
                if (bench_write_all(fd, out, olen) < 0)
                    goto out;
                olen = 0;
            }
        }
        if (olen > 0 && bench_write_all(fd, out, olen) < 0)
            goto out;
        olen = 0;
        do {
            got = bench_rd_packet(&r, &type, &pb, &bl, acked < sent ? 30000 : 0);
            if (got == 1 && type == 0x40)
                acked++;
        } while (got == 1 && r.off < r.len);
        if (got < 0 || (got == 0 && acked < sent)) {
            fprintf(stderr, "publisher: %ld of %ld acknowledged, then %s\n", acked, sent,
                    got < 0 ? "EOF" : "30 s without PUBACK");
            goto out;
        }
    }
    rate = (double)n / (bench_now() - t0);
out:
    if (fd >= 0)
        close(fd);
    return rate;
}

/* Receive everything queued for session s (acking each); adds to res. expected: count. */
static int bench_drain_session(struct bench_broker *b, int s, long expected,
                               struct bench_result *res)
{
    static struct bench_rd r;
    static uint8_t out[1 << 15];
    uint8_t *seen = calloc((size_t)expected / 8 + 1, 1);
    char id[32];
    long distinct = 0, maxseq = -1;
    size_t olen = 0;
    int rc = -1, got = 1, sp, fd = bench_connect_tcp(b->port);

    snprintf(id, sizeof(id), "rs%d", s);
    if (fd < 0 || !seen)
        goto out;
    bench_rd_init(&r, fd);
    sp = bench_mqtt_connect(&r, id, false, 10000);
    if (sp < 0)
        goto out;
    while (sp == 1 && distinct < expected && got == 1) {
        uint8_t type = 0;
        const uint8_t *pb = NULL;
        size_t bl = 0, tl;
        uint64_t seq;

        got = bench_rd_packet(&r, &type, &pb, &bl, olen ? 0 : 2000);
        if (got == 0 && olen) {
            got = bench_write_all(fd, out, olen) == 0 ? 1 : -1;
            olen = 0;
            continue;
        }
        if (got != 1 || (type & 0xf0) != 0x30 || bl < 2)
            continue;
        tl = (size_t)pb[0] << 8 | pb[1];
        if ((type & 0x06) == 0 || bl < 2 + tl + 2 + sizeof(seq))
            continue;
        out[olen++] = 0x40;
        out[olen++] = 2;
        out[olen++] = pb[2 + tl];
        out[olen++] = pb[2 + tl + 1];
        if (olen > sizeof(out) - 8) {
            if (bench_write_all(fd, out, olen) < 0)
                got = -1;
            olen = 0;
        }
        memcpy(&seq, pb + 2 + tl + 2, sizeof(seq));
        res->delivered++;
        if (seq >= (uint64_t)expected) {
            res->dups++;
            continue;
        }
        if (seen[seq / 8] & (1u << (seq % 8))) {
            res->dups++;
            continue;
        }
        seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
        distinct++;
        if ((long)seq < maxseq)
            res->reordered++;
        else
            maxseq = (long)seq;
    }
    if (olen)
        bench_write_all(fd, out, olen);
    res->lost += expected - distinct;
    rc = 0;
out:
    if (fd >= 0) {
        uint8_t disc[2] = {0xe0, 0};

        bench_write_all(fd, disc, sizeof(disc));
        close(fd);
    }
    free(seen);
    return rc;
}

static void bench_kill(struct bench_broker *b, int sig)
{
    int status;

    if (b->pid > 0) {
        kill(b->pid, sig);
        waitpid(b->pid, &status, 0);
        b->pid = -1;
    }
}

static void bench_cleanup(struct bench_broker *b)
{
    char cmd[128];

    bench_kill(b, SIGTERM);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b->dir);
    if (b->dir[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", b->dir);
}

static void bench_run(struct bench_broker *b, long n, int sessions, int stop_sig,
                      struct bench_result *res)
{
    double t0;
    long drained = 0;

    memset(res, 0, sizeof(*res));
    res->session_present = -1;
    if (bench_write_conf(b) < 0 || bench_exec(b) < 0 || bench_wait_serving(b, "rprobe", 10) < 0 ||
        bench_make_sessions(b, sessions) < 0) {
        fprintf(stderr, "%s: could not start or create sessions\n", b->bin);
        goto out;
    }
    res->pub_rate = bench_publish(b, n, sessions);
    if (res->pub_rate < 0)
        goto out;
    res->rss_kb = bench_proc_kb(b->pid, "VmRSS");
    res->hwm_kb = bench_proc_kb(b->pid, "VmHWM");
    bench_kill(b, stop_sig);
    t0 = bench_now();
    if (bench_exec(b) < 0)
        goto out;
    res->session_present = bench_wait_serving(b, "rs0", 120);
    res->restart_s = bench_now() - t0;
    if (res->session_present < 0)
        goto out;
    res->rss_restart_kb = bench_proc_kb(b->pid, "VmRSS");
    t0 = bench_now();
    for (int s = 0; s < sessions; s++) {
        long expected = n / sessions + (s < n % sessions ? 1 : 0);
        long before = res->delivered;

        if (bench_drain_session(b, s, expected, res) < 0)
            goto out;
        drained += res->delivered - before;
    }
    res->drain_rate = (double)drained / (bench_now() - t0);
    res->drain_hwm_kb = bench_proc_kb(b->pid, "VmHWM");
    res->ok = true;
out:
    bench_cleanup(b);
}

static void bench_print(const char *name, long n, const struct bench_result *r)
{
    if (!r->ok && r->pub_rate <= 0) {
        printf("%-10s  failed (see stderr)\n", name);
        return;
    }
    printf("%-10s %9.0f %8.1f %8.1f %9.3f %3d %8.1f %9ld/%-9ld %6ld %5ld %6ld %9.0f %8.1f\n", name,
           r->pub_rate, r->rss_kb / 1024.0, r->hwm_kb / 1024.0, r->restart_s, r->session_present,
           r->rss_restart_kb / 1024.0, r->delivered, n, r->lost, r->dups, r->reordered,
           r->drain_rate, r->drain_hwm_kb / 1024.0);
}

int main(int argc, char **argv)
{
    const char *bins[2] = {"./cairn", "/usr/sbin/mosquitto"};
    struct bench_result res[3];
    long n = 1000000;
    int sessions = 10, nb = 0, opt;
    double load[3] = {0, 0, 0};

    signal(SIGPIPE, SIG_IGN);
    while ((opt = getopt(argc, argv, "n:s:")) != -1) {
        if (opt == 'n')
            n = atol(optarg);
        else if (opt == 's')
            sessions = atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [CAIRN_BIN [MOSQUITTO_BIN]] [-n N] [-s S]\n", argv[0]);
            return 2;
        }
    }
    for (int i = optind; i < argc && nb < 2; i++)
        bins[nb++] = argv[i];
    if (n < 1 || sessions < 1)
        return 2;
    for (int i = 0; i < 3; i++) {
        const char *bin = bins[i ? 1 : 0];
        struct bench_broker b = {.bin = bin, .mosquitto = i > 0, .pid = -1};

        memset(&res[i], 0, sizeof(res[i]));
        if (access(bin, X_OK) != 0) {
            fprintf(stderr, "%s: not executable, skipped\n", bin);
            continue;
        }
        bench_run(&b, n, sessions, i == 2 ? SIGTERM : SIGKILL, &res[i]);
    }
    getloadavg(load, 3);
    printf("%ld QoS 1 messages of %d bytes, each to one of %d offline persistent sessions "
           "(topic per session, no fan-out): %ld queued in total\n",
           n, BENCH_PAYLOAD, sessions, n);
    printf("restart = exec after kill -9 -> CONNACK for session rs0 (sp = session present); "
           "RSS/HWM in MB; load average %.2f %.2f %.2f\n",
           load[0], load[1], load[2]);
    printf("%-10s %9s %8s %8s %9s %3s %8s %19s %6s %5s %6s %9s %8s\n", "broker", "pub msg/s", "RSS",
           "HWM", "restart s", "sp", "RSS rst", "delivered/queued", "lost", "dups", "reord",
           "drain m/s", "HWM drn");
    bench_print("cairn", n, &res[0]);
    bench_print("mosquitto", n, &res[1]);
    bench_print("mosq TERM", n, &res[2]);
    printf("mosq TERM: Mosquitto stopped with SIGTERM instead of kill -9 (it saves its db on "
           "exit), for its restart time with everything to load\n");
    return 0;
}
