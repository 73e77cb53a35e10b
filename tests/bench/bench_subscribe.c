/*
 * bench_subscribe.c — issue 9's third figure: one SUBSCRIBE packet with N filters, and what it
 * does to the other clients of the broker meanwhile.
 *
 *   bench_subscribe [CAIRN_BIN [MOSQUITTO_BIN]] [-n N,N,...] [-t TIMEOUT_S]
 *
 * For each broker (Cairn, then Mosquitto when its binary exists), each session kind (clean
 * session 1; clean session 0 with persistence true, where Cairn stores every subscription
 * before the SUBACK) and each N (default 50000, 100000, 200000): start the broker on a free
 * loopback port with a fresh temp dir, connect a probe client and the subscriber (raw
 * sockets), send one SUBSCRIBE of N distinct filters "bench/fNNNNNNN/+" (siblings under one
 * level: the widest node a subscription tree gets), and, until the SUBACK is whole, keep one
 * PINGREQ outstanding on the probe: each PINGRESP's round trip is a probe latency. Printed:
 * the time from the last byte of the SUBSCRIBE written to the SUBACK read, how many pings
 * were answered meanwhile and the worst round trip (a broker that serves the SUBSCRIBE in one
 * go answers none until it is done), the broker's RSS after, and for persistent sessions the
 * restart: SIGTERM, exec again, time until CONNACK with session present for the subscriber.
 *
 * Design: raw MQTT 3.1.1 packets built by hand, one buffered reader per socket (bench_rd).
 * Figures go in the issue note, never into a test's pass/fail. Temp dirs are removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchnet.h"

#define BENCH_MAX_SIZES 8

struct bench_rd {
    int fd;
    size_t off;
    size_t len;
    size_t cap;
    uint8_t *buf;
};

struct bench_broker {
    const char *bin;
    bool mosquitto;
    bool persistent;
    pid_t pid;
    int port;
    char dir[64];
    char conf[96];
};

struct bench_result {
    bool ok;
    double suback_s;
    long pings;
    double worst_ping_ms;
    long rss_kb;
    double restart_s; /* persistent only; < 0 failed */
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

static void bench_filter(char *buf, size_t len, long i)
{
    snprintf(buf, len, "bench/f%07ld/+", i);
}

/* One SUBSCRIBE (packet id 1) of n filters at QoS 1; malloc'd, its size in *len. */
static uint8_t *bench_enc_subscribe(long n, size_t *len)
{
    char f[32];
    size_t rl = 2, h;
    uint8_t *buf, *p;

    for (long i = 0; i < n; i++) {
        bench_filter(f, sizeof(f), i);
        rl += 2 + strlen(f) + 1;
    }
    buf = malloc(rl + 5);
    if (!buf)
        return NULL;
    h = bench_hdr(buf, 0x82, rl);
    p = buf + h;
    *p++ = 0;
    *p++ = 1;
    for (long i = 0; i < n; i++) {
        bench_filter(f, sizeof(f), i);
        p += bench_str(p, f);
        *p++ = 1;
    }
    *len = h + rl;
    return buf;
}

static int bench_rd_init(struct bench_rd *r, int fd)
{
    r->fd = fd;
    r->off = r->len = 0;
    if (!r->buf) {
        r->cap = 1 << 16;
        r->buf = malloc(r->cap);
    }
    return r->buf ? 0 : -1;
}

static void bench_rd_free(struct bench_rd *r)
{
    free(r->buf);
    r->buf = NULL;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

/*
 * Read what the socket has (after poll said so) and return the next whole packet if one is
 * there: 1 with *type, *body, *blen (valid until the next call), 0 none yet, -1 EOF or error.
 */
static int bench_rd_step(struct bench_rd *r, bool do_read, uint8_t *type, const uint8_t **body,
                         size_t *blen)
{
    for (;;) {
        size_t avail = r->len - r->off;
        const uint8_t *p = r->buf + r->off;
        size_t rl = 0, i = 1, mul = 1;
        bool have_len = false;
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
            return 1;
        }
        if (!do_read)
            return 0;
        if (r->off > 0) {
            memmove(r->buf, p, avail);
            r->off = 0;
            r->len = avail;
        }
        if (have_len && i + rl > r->cap) {
            uint8_t *b = realloc(r->buf, i + rl);
            if (!b)
                return -1;
            r->buf = b;
            r->cap = i + rl;
        }
        n = read(r->fd, r->buf + r->len, r->cap - r->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0)
            return -1;
        r->len += (size_t)n;
        do_read = false; /* one read per poll */
    }
}

/* Blocking: the next whole packet within timeout_ms. 1, 0 timeout, -1. */
static int bench_rd_packet(struct bench_rd *r, uint8_t *type, const uint8_t **body, size_t *blen,
                           int timeout_ms)
{
    double end = bench_now() + timeout_ms / 1000.0;
    int rc = bench_rd_step(r, false, type, body, blen);

    while (rc == 0) {
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        int left = (int)((end - bench_now()) * 1000);
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            break;
        rc = bench_rd_step(r, true, type, body, blen);
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

    strcpy(b->dir, "/tmp/cairn-bsub-XXXXXX");
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
    fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\n", b->port);
    if (b->persistent)
        fprintf(f, "persistence true\npersistence_location %s/data%s\n", b->dir,
                b->mosquitto ? "/" : "");
    else
        fprintf(f, "persistence false\n");
    /* run by root, Cairn stays root: the temp dir is root's */
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

/* A connected client id (clean as asked) on r: the session-present flag, or -1 after limit_s. */
static int bench_connect_client(struct bench_broker *b, struct bench_rd *r, const char *id,
                                bool clean, double limit_s)
{
    double end = bench_now() + limit_s;
    int sp = -1;

    while (sp < 0 && bench_now() < end) {
        int fd = bench_connect_tcp(b->port);

        if (fd < 0) {
            usleep(1000);
            continue;
        }
        if (bench_rd_init(r, fd) < 0) {
            close(fd);
            break;
        }
        sp = bench_mqtt_connect(r, id, clean, (int)(limit_s * 1000));
        if (sp < 0) {
            close(fd);
            r->fd = -1;
        }
    }
    return sp;
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

    bench_kill(b, SIGKILL);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b->dir);
    if (b->dir[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", b->dir);
}

/*
 * Send the SUBSCRIBE on sub, ping on probe until the SUBACK is whole: fills the timing
 * figures. 0, or -1 (timeout, bad SUBACK, closed).
 */
static int bench_measure(struct bench_rd *sub, struct bench_rd *probe, long n, double limit_s,
                         struct bench_result *res)
{
    static const uint8_t ping[2] = {0xc0, 0};
    size_t len = 0;
    uint8_t *pkt = bench_enc_subscribe(n, &len);
    double t0, end, ping_at = 0;
    bool ping_out = false;
    int rc = -1;

    if (!pkt)
        goto out;
    if (bench_write_all(sub->fd, pkt, len) < 0)
        goto out;
    t0 = bench_now();
    end = t0 + limit_s;
    while (bench_now() < end) {
        struct pollfd pfd[2] = {{.fd = sub->fd, .events = POLLIN},
                                {.fd = probe->fd, .events = POLLIN}};
        uint8_t type;
        const uint8_t *body;
        size_t bl;
        int got;

        if (!ping_out) {
            if (bench_write_all(probe->fd, ping, sizeof(ping)) < 0)
                goto out;
            ping_at = bench_now();
            ping_out = true;
        }
        if (poll(pfd, 2, 100) < 0 && errno != EINTR)
            goto out;
        if (pfd[1].revents) {
            bool rd = true; /* one read per poll: the socket blocks */
            while ((got = bench_rd_step(probe, rd, &type, &body, &bl)) == 1) {
                rd = false;
                double ms = (bench_now() - ping_at) * 1000;
                if (type != 0xd0)
                    goto out;
                ping_out = false;
                res->pings++;
                if (getenv("BENCH_VERBOSE") && ms > 2)
                    fprintf(stderr, "ping at %.1f ms: %.1f ms\n", (ping_at - t0) * 1000, ms);
                if (ms > res->worst_ping_ms)
                    res->worst_ping_ms = ms;
            }
            if (got < 0)
                goto out;
        }
        if (!pfd[0].revents)
            continue;
        got = bench_rd_step(sub, true, &type, &body, &bl);
        if (got < 0)
            goto out;
        if (got == 0)
            continue;
        res->suback_s = bench_now() - t0;
        if (type != 0x90 || bl != (size_t)n + 2) {
            fprintf(stderr, "unexpected packet 0x%02x (%zu bytes) instead of the SUBACK\n", type,
                    bl);
            goto out;
        }
        for (long i = 0; i < n; i++) {
            if (body[2 + i] != 1) {
                fprintf(stderr, "SUBACK code %u for filter %ld\n", body[2 + i], i);
                goto out;
            }
        }
        rc = 0;
        break;
    }
    if (rc == 0 && ping_out) {
        /* the ping the SUBACK overtook: its round trip is the longest the probe waited */
        uint8_t type;
        const uint8_t *body;
        size_t bl;
        if (bench_rd_packet(probe, &type, &body, &bl, (int)(limit_s * 1000)) != 1 || type != 0xd0)
            rc = -1;
        else if ((bench_now() - ping_at) * 1000 > res->worst_ping_ms)
            res->worst_ping_ms = (bench_now() - ping_at) * 1000;
    }
    if (rc < 0 && bench_now() >= end)
        fprintf(stderr, "no SUBACK within %.0f s\n", limit_s);
out:
    free(pkt);
    return rc;
}

static void bench_run(struct bench_broker *b, long n, double limit_s, struct bench_result *res)
{
    struct bench_rd sub = {.fd = -1}, probe = {.fd = -1};
    static const uint8_t disc[2] = {0xe0, 0};
    double t0;

    memset(res, 0, sizeof(*res));
    res->restart_s = -1;
    if (bench_write_conf(b) < 0 || bench_exec(b) < 0 ||
        bench_connect_client(b, &probe, "bprobe", true, 10) < 0 ||
        bench_connect_client(b, &sub, "bsub", !b->persistent, 10) < 0) {
        fprintf(stderr, "%s: could not start or connect\n", b->bin);
        goto out;
    }
    if (bench_measure(&sub, &probe, n, limit_s, res) < 0)
        goto out;
    res->rss_kb = bench_proc_kb(b->pid, "VmRSS");
    res->ok = true;
    if (!b->persistent)
        goto out;
    bench_write_all(sub.fd, disc, sizeof(disc));
    bench_rd_free(&sub);
    bench_rd_free(&probe);
    bench_kill(b, SIGTERM);
    t0 = bench_now();
    if (bench_exec(b) < 0)
        goto out;
    if (bench_connect_client(b, &sub, "bsub", false, limit_s) == 1)
        res->restart_s = bench_now() - t0;
out:
    bench_rd_free(&sub);
    bench_rd_free(&probe);
    bench_cleanup(b);
}

static void bench_print(const struct bench_broker *b, long n, const struct bench_result *r)
{
    char restart[32] = "-";

    printf("%-10s %-10s %8ld ", b->mosquitto ? "mosquitto" : "cairn",
           b->persistent ? "persistent" : "clean", n);
    if (!r->ok) {
        printf("failed (see stderr)\n");
        return;
    }
    if (b->persistent && r->restart_s >= 0)
        snprintf(restart, sizeof(restart), "%.3f", r->restart_s);
    else if (b->persistent)
        snprintf(restart, sizeof(restart), "failed");
    printf("%9.3f %7ld %10.1f %8.1f %9s\n", r->suback_s, r->pings, r->worst_ping_ms,
           r->rss_kb / 1024.0, restart);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *bins[2] = {"./cairn", "/usr/sbin/mosquitto"};
    long sizes[BENCH_MAX_SIZES] = {50000, 100000, 200000};
    int nsizes = 3, nb = 0, opt;
    double limit_s = 300, load[3] = {0, 0, 0};

    signal(SIGPIPE, SIG_IGN);
    while ((opt = getopt(argc, argv, "n:t:")) != -1) {
        if (opt == 'n') {
            char *p = optarg;
            nsizes = 0;
            while (*p && nsizes < BENCH_MAX_SIZES) {
                sizes[nsizes++] = strtol(p, &p, 10);
                if (*p == ',')
                    p++;
            }
        } else if (opt == 't') {
            limit_s = atof(optarg);
        } else {
            fprintf(stderr, "usage: %s [CAIRN_BIN [MOSQUITTO_BIN]] [-n N,N,...] [-t S]\n", argv[0]);
            return 2;
        }
    }
    for (int i = optind; i < argc && nb < 2; i++)
        bins[nb++] = argv[i];
    getloadavg(load, 3);
    printf("one SUBSCRIBE of N filters \"bench/fNNNNNNN/+\" at QoS 1; a probe client keeps one "
           "PINGREQ outstanding until the SUBACK\n");
    printf("SUBACK s = last SUBSCRIBE byte written -> whole SUBACK read; pings = PINGRESPs "
           "before it; worst = worst ping round trip (also of the ping the SUBACK overtook); RSS "
           "in MB after; restart = SIGTERM, exec -> "
           "CONNACK session present (persistent); load average %.2f %.2f %.2f\n",
           load[0], load[1], load[2]);
    printf("%-10s %-10s %8s %9s %7s %10s %8s %9s\n", "broker", "session", "filters", "SUBACK s",
           "pings", "worst ms", "RSS", "restart s");
    for (int i = 0; i < 4; i++) {
        struct bench_broker b = {.bin = bins[i / 2], .mosquitto = i >= 2, .persistent = i % 2};

        if (access(b.bin, X_OK) != 0) {
            fprintf(stderr, "%s: not executable, skipped\n", b.bin);
            continue;
        }
        for (int k = 0; k < nsizes; k++) {
            struct bench_result r;
            b.pid = -1;
            bench_run(&b, sizes[k], limit_s, &r);
            bench_print(&b, sizes[k], &r);
        }
    }
    return 0;
}
