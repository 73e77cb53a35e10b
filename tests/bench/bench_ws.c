/*
 * bench_ws.c — MQTT over WebSockets against plain TCP, Cairn and Mosquitto in the same run:
 * publish -> subscribe throughput at QoS 0 and QoS 1 (one publisher, one subscriber, 64-byte
 * payloads, the publisher pipelining up to 1000 unacknowledged), each broker with a plain
 * listener and a "protocol websockets" one, persistence false.
 *
 *   bench_ws CAIRN_BIN [MOSQUITTO_BIN] [-m MESSAGES]
 *
 * The clients speak WebSockets themselves (upgrade, masked binary frames, one frame per batch
 * written; frames from the server decoded as a stream). Figures go in the issue note, never
 * into a test's pass/fail.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchnet.h"

#include "mqtt.h"

struct bb {
    pid_t pid;
    int port;
    int ws_port;
    char dir[64];
};

/* A client connection, plain or WebSocket. */
struct bc {
    int fd;
    bool ws;
    uint8_t raw[1 << 20]; /* frames not yet decoded (WebSocket) */
    size_t raw_len;
};

static int bc_send(struct bc *c, const uint8_t *p, size_t len)
{
    static uint8_t f[(64 * 1024) + 14];
    size_t h = 0;

    if (!c->ws)
        return bench_write_all(c->fd, p, len);
    if (len > 64 * 1024)
        return -1;
    f[h++] = 0x82;
    if (len < 126) {
        f[h++] = (uint8_t)(0x80 | len);
    } else {
        f[h++] = 0x80 | 126;
        f[h++] = (uint8_t)(len >> 8);
        f[h++] = (uint8_t)len;
    }
    /* a zero mask key: masking is then a copy (the broker still unmasks every byte) */
    memset(f + h, 0, 4);
    h += 4;
    memcpy(f + h, p, len);
    return bench_write_all(c->fd, f, h + len);
}

/* Read what is there; the MQTT bytes into out (cap). Returns their count (may be 0), -1. */
static ssize_t bc_read(struct bc *c, uint8_t *out, size_t cap)
{
    ssize_t r;
    size_t pos = 0, o = 0;

    if (!c->ws)
        return read(c->fd, out, cap);
    r = read(c->fd, c->raw + c->raw_len, sizeof(c->raw) - c->raw_len);
    if (r <= 0)
        return -1;
    c->raw_len += (size_t)r;
    for (;;) {
        uint64_t n;
        size_t h = 2;

        if (c->raw_len - pos < 2)
            break;
        n = c->raw[pos + 1] & 0x7f;
        if (n == 126) {
            if (c->raw_len - pos < 4)
                break;
            n = (uint64_t)c->raw[pos + 2] << 8 | c->raw[pos + 3];
            h = 4;
        } else if (n == 127) {
            if (c->raw_len - pos < 10)
                break;
            n = 0;
            for (int i = 0; i < 8; i++)
                n = n << 8 | c->raw[pos + 2 + i];
            h = 10;
        }
        if (c->raw_len - pos < h + n || o + n > cap)
            break;
        if ((c->raw[pos] & 0x0f) <= 2)
            memcpy(out + o, c->raw + pos + h, n), o += n;
        pos += h + (size_t)n;
    }
    memmove(c->raw, c->raw + pos, c->raw_len - pos);
    c->raw_len -= pos;
    return (ssize_t)o;
}

static int bc_open(struct bc *c, int port, bool ws)
{
    static const char req[] =
        "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";
    char head[1024];
    size_t got = 0;

    memset(c, 0, sizeof(*c));
    c->ws = ws;
    c->fd = bench_connect_tcp(port);
    if (c->fd < 0)
        return -1;
    if (!ws)
        return 0;
    if (bench_write_all(c->fd, (const uint8_t *)req, sizeof(req) - 1) < 0)
        return -1;
    while (got + 1 < sizeof(head)) { /* byte by byte: frames may follow the head */
        if (read(c->fd, head + got, 1) != 1)
            return -1;
        got++;
        if (got >= 4 && memcmp(head + got - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    head[got] = '\0';
    return strncmp(head, "HTTP/1.1 101", 12) == 0 ? 0 : -1;
}

/* CONNECT and wait for CONNACK 0. */
static int bc_connect(struct bc *c, const char *id)
{
    struct mqtt_connect k = {0};
    uint8_t buf[256], in[64];
    size_t got = 0;

    k.protocol_name = (struct mqtt_str){(const uint8_t *)"MQTT", 4};
    k.protocol_level = 4;
    k.clean_session = true;
    k.client_id = (struct mqtt_str){(const uint8_t *)id, strlen(id)};
    if (bc_send(c, buf, mqtt_encode_connect(buf, sizeof(buf), &k)) < 0)
        return -1;
    while (got < 4) {
        ssize_t r = bc_read(c, in + got, sizeof(in) - got);
        if (r < 0)
            return -1;
        got += (size_t)r;
    }
    return in[0] == 0x20 && in[3] == 0 ? 0 : -1;
}

static int bb_start(struct bb *b, const char *bin, bool mosquitto)
{
    char conf[128];
    FILE *f;

    strcpy(b->dir, "/tmp/cairn-bench-XXXXXX");
    if (!mkdtemp(b->dir))
        return -1;
    b->port = bench_free_port();
    b->ws_port = bench_free_port();
    snprintf(conf, sizeof(conf), "%s/b.conf", b->dir);
    f = fopen(conf, "w");
    if (!f)
        return -1;
    fprintf(f, "listener %d 127.0.0.1\nlistener %d 127.0.0.1\nprotocol websockets\n", b->port,
            b->ws_port);
    fprintf(f, "allow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 1000\n");
    fprintf(f, "persistence false\n%s",
            mosquitto ? "log_dest none\n"
                      : "log_dest none\nconnection_messages false\nuser root\n");
    fclose(f);
    b->pid = fork();
    if (b->pid < 0)
        return -1;
    if (b->pid == 0) {
        execl(bin, bin, "-c", conf, (char *)NULL);
        _exit(127);
    }
    for (double end = bench_now() + 5; bench_now() < end; usleep(10000)) {
        struct bc *c = malloc(sizeof(*c));
        bool ok = c && bc_open(c, b->ws_port, true) == 0;
        if (c && c->fd >= 0)
            close(c->fd);
        free(c);
        if (ok)
            return 0;
    }
    return -1;
}

static void bb_stop(struct bb *b)
{
    char cmd[128];
    int status;

    kill(b->pid, SIGTERM);
    waitpid(b->pid, &status, 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", b->dir);
}

/* Messages per second, one publisher -> one subscriber, both over ws or both over TCP. */
static double bb_throughput(const struct bb *b, bool ws, int m, int qos)
{
    static struct bc sub, pub;
    static uint8_t in[1 << 20], pin[1 << 16], batch[60 * 1024], acks[1 << 16];
    size_t in_len = 0, pin_len = 0;
    int port = ws ? b->ws_port : b->port, sent = 0, acked = 0, received = 0, window = 1000;
    struct mqtt_sub s = {.filter = {(const uint8_t *)"bench/t", 7}, .qos = (uint8_t)qos};
    uint8_t payload[64], pkt[64];
    struct mqtt_publish p = {.qos = (uint8_t)qos,
                             .topic = {(const uint8_t *)"bench/t", 7},
                             .payload = {payload, sizeof(payload)}};
    double t0, t = -1;

    memset(payload, 'p', sizeof(payload));
    if (bc_open(&sub, port, ws) < 0 || bc_open(&pub, port, ws) < 0 ||
        bc_connect(&sub, "bench-sub") < 0 || bc_connect(&pub, "bench-pub") < 0)
        goto out;
    bc_send(&sub, pkt, mqtt_encode_subscribe(pkt, sizeof(pkt), 1, &s, 1));
    for (size_t got = 0; got < 5;) { /* SUBACK */
        ssize_t r = bc_read(&sub, in + got, sizeof(in) - got);
        if (r < 0)
            goto out;
        got += (size_t)r;
    }
    t0 = bench_now();
    while (received < m && bench_now() - t0 < 60) {
        struct pollfd pf[2] = {{sub.fd, POLLIN, 0}, {pub.fd, POLLIN, 0}};
        int ahead = qos ? sent - acked : sent - received;

        if (sent < m && ahead < window) {
            size_t bl = 0;
            while (sent < m && bl + 128 < sizeof(batch) && ahead < window) {
                p.packet_id = qos ? (uint16_t)(sent % 65535 + 1) : 0;
                bl += mqtt_encode_publish(batch + bl, sizeof(batch) - bl, &p);
                sent++;
                ahead++;
            }
            bc_send(&pub, batch, bl);
        }
        if (poll(pf, 2, 100) <= 0)
            continue;
        if (pf[0].revents & POLLIN) {
            ssize_t r = bc_read(&sub, in + in_len, sizeof(in) - in_len);
            size_t off = 0, al = 0;
            if (r < 0)
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
                bc_send(&sub, acks, al);
        }
        if (pf[1].revents & POLLIN) {
            ssize_t r = bc_read(&pub, pin + pin_len, sizeof(pin) - pin_len);
            size_t off = 0;
            if (r < 0)
                goto out;
            pin_len += (size_t)r;
            for (;;) {
                struct mqtt_packet k;
                int n = mqtt_decode(pin + off, pin_len - off, 0, &k);
                if (n <= 0)
                    break;
                off += (size_t)n;
                acked += k.type == MQTT_PUBACK;
            }
            memmove(pin, pin + off, pin_len - off);
            pin_len -= off;
        }
    }
    if (received == m)
        t = bench_now() - t0;
    else
        fprintf(stderr, "bench_ws: %d of %d arrived (qos %d, %s)\n", received, m, qos,
                ws ? "ws" : "tcp");
out:
    if (sub.fd > 0)
        close(sub.fd);
    if (pub.fd > 0)
        close(pub.fd);
    return t > 0 ? m / t : -1;
}

int main(int argc, char **argv)
{
    const char *bins[2] = {NULL, NULL}, *names[2] = {"cairn", "mosquitto"};
    double r[2][2][2] = {{{0}}}; /* broker, ws, qos */
    int nmsgs = 200000, nb = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-m") == 0 && i + 1 < argc)
            nmsgs = atoi(argv[++i]);
        else if (nb < 2)
            bins[nb++] = argv[i];
    }
    if (nb == 0) {
        fprintf(stderr, "usage: bench_ws CAIRN_BIN [MOSQUITTO_BIN] [-m MSGS]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    for (int k = 0; k < nb; k++) {
        struct bb b;
        if (bb_start(&b, bins[k], k == 1) < 0) {
            fprintf(stderr, "%s: failed to start\n", names[k]);
            continue;
        }
        for (int ws = 0; ws < 2; ws++)
            for (int q = 0; q < 2; q++)
                r[k][ws][q] = bb_throughput(&b, ws, nmsgs, q);
        bb_stop(&b);
    }
    printf("%-22s %12s %12s   %s\n", "broker / transport", "QoS0 msg/s", "QoS1 msg/s",
           "ws/tcp (QoS0, QoS1); cairn/mosquitto");
    for (int k = 0; k < nb; k++) {
        for (int ws = 0; ws < 2; ws++) {
            printf("%-22s %12.0f %12.0f",
                   ws ? (k ? "mosquitto websockets" : "cairn websockets")
                      : (k ? "mosquitto tcp" : "cairn tcp"),
                   r[k][ws][0], r[k][ws][1]);
            if (ws && r[k][0][0] > 0 && r[k][0][1] > 0)
                printf("   %.2f, %.2f", r[k][1][0] / r[k][0][0], r[k][1][1] / r[k][0][1]);
            if (k == 0 && nb == 2 && r[1][ws][0] > 0 && r[1][ws][1] > 0)
                printf("%s%.2f, %.2f vs mosquitto", ws ? "; " : "   ", r[0][ws][0] / r[1][ws][0],
                       r[0][ws][1] / r[1][ws][1]);
            printf("\n");
        }
    }
    printf("(%d messages of 64 bytes, one publisher -> one subscriber on the same transport, the\n"
           " publisher pipelining up to 1000 unacknowledged; persistence false for both)\n",
           nmsgs);
    return 0;
}
