/*
 * harness_ws.c — raw WebSocket clients (harness_ws.h). SHA-1 and base64 for checking
 * Sec-WebSocket-Accept are written out here (FIPS 180-4, RFC 4648) rather than taken from the
 * library the broker uses, so a mistake there cannot hide itself.
 */
#include "harness_ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WS_WAIT_MS 5000

/* ---- SHA-1 and base64 ------------------------------------------------------------------- */

static uint32_t ws_rol(uint32_t x, int n)
{
    return x << n | x >> (32 - n);
}

static void ws_sha1(const uint8_t *msg, size_t len, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t total = ((len + 8) / 64 + 1) * 64;
    uint8_t *m = calloc(1, total);

    if (!m)
        abort();
    memcpy(m, msg, len);
    m[len] = 0x80;
    for (int i = 0; i < 8; i++)
        m[total - 1 - i] = (uint8_t)((uint64_t)len * 8 >> (8 * i));
    for (size_t off = 0; off < total; off += 64) {
        uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)m[off + 4 * i] << 24 | (uint32_t)m[off + 4 * i + 1] << 16 |
                   (uint32_t)m[off + 4 * i + 2] << 8 | m[off + 4 * i + 3];
        for (int i = 16; i < 80; i++)
            w[i] = ws_rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        for (int i = 0; i < 80; i++) {
            uint32_t f, k, t;
            if (i < 20)
                f = (b & c) | (~b & d), k = 0x5A827999;
            else if (i < 40)
                f = b ^ c ^ d, k = 0x6ED9EBA1;
            else if (i < 60)
                f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
            else
                f = b ^ c ^ d, k = 0xCA62C1D6;
            t = ws_rol(a, 5) + f + e + k + w[i];
            e = d, d = c, c = ws_rol(b, 30), b = a, a = t;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
    }
    free(m);
    for (int i = 0; i < 20; i++)
        out[i] = (uint8_t)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void ws_base64(const uint8_t *in, size_t len, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < len ? in[i + 2] : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < len ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

/* ---- HTTP --------------------------------------------------------------------------------- */

int ws_tcp_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int ws_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read exactly len bytes before the deadline. 1, 0 timeout, -1 closed. */
static int ws_read_exact(int fd, uint8_t *buf, size_t len, uint64_t deadline)
{
    size_t got = 0;

    while (got < len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        uint64_t now = t_now_ms();
        ssize_t n;

        if (now >= deadline)
            return 0;
        if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
            continue;
        n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 1;
}

int ws_http(int port, const char *req, size_t len, char **resp, int timeout_ms)
{
    uint64_t deadline = t_now_ms() + (uint64_t)timeout_ms;
    size_t cap = 65536, got = 0;
    char *buf = malloc(cap + 1);
    int fd = ws_tcp_connect(port), status = 0;

    if (!buf || fd < 0)
        goto out;
    if (ws_write_all(fd, req, len) < 0)
        t_note("ws_http: the server closed before the whole request was sent");
    while (got < cap && t_now_ms() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;
        if (poll(&pfd, 1, (int)(deadline - t_now_ms())) <= 0)
            continue;
        n = read(fd, buf + got, cap - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        status = 0;
out:
    if (fd >= 0)
        close(fd);
    if (resp && buf)
        *resp = buf;
    else
        free(buf);
    return status;
}

int ws_open(int port, const char *proto)
{
    static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
    char req[512], head[2048], want[64], acc[64], line[128];
    uint8_t sha[20];
    size_t got = 0;
    uint64_t deadline = t_now_ms() + WS_WAIT_MS;
    int fd = ws_tcp_connect(port), n;

    if (fd < 0)
        return -1;
    n = snprintf(req, sizeof(req),
                 "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                 "%s%s%s\r\n",
                 port, key, proto ? "Sec-WebSocket-Protocol: " : "", proto ? proto : "",
                 proto ? "\r\n" : "");
    if (ws_write_all(fd, req, (size_t)n) < 0)
        goto fail;
    /* byte by byte up to the blank line: frames may follow at once and must stay unread */
    while (got + 1 < sizeof(head)) {
        if (ws_read_exact(fd, (uint8_t *)head + got, 1, deadline) != 1)
            goto fail;
        got++;
        head[got] = '\0';
        if (got >= 4 && memcmp(head + got - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    snprintf(acc, sizeof(acc), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    ws_sha1((const uint8_t *)acc, strlen(acc), sha);
    ws_base64(sha, sizeof(sha), want);
    snprintf(line, sizeof(line), "Sec-WebSocket-Accept: %s\r\n", want);
    if (strncmp(head, "HTTP/1.1 101 ", 13) != 0 || !strstr(head, line)) {
        t_note("ws_open: unexpected answer: %.200s", head);
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

/* ---- frames ------------------------------------------------------------------------------- */

int ws_send_frame(int fd, uint8_t b0, const void *payload, size_t len, bool mask)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t *f = malloc(len + 14);
    size_t n = 0;
    int rc;

    if (!f)
        return -1;
    f[n++] = b0;
    if (len < 126) {
        f[n++] = (uint8_t)((mask ? 0x80 : 0) | len);
    } else if (len <= 0xffff) {
        f[n++] = (uint8_t)((mask ? 0x80 : 0) | 126);
        f[n++] = (uint8_t)(len >> 8);
        f[n++] = (uint8_t)len;
    } else {
        f[n++] = (uint8_t)((mask ? 0x80 : 0) | 127);
        for (int i = 7; i >= 0; i--)
            f[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    if (mask) {
        memcpy(f + n, key, 4);
        n += 4;
    }
    for (size_t i = 0; i < len; i++)
        f[n + i] = ((const uint8_t *)payload)[i] ^ (mask ? key[i & 3] : 0);
    rc = ws_write_all(fd, f, n + len);
    free(f);
    return rc;
}

int ws_send_binary(int fd, const void *payload, size_t len)
{
    return ws_send_frame(fd, 0x82, payload, len, true);
}

int ws_read_frame(int fd, uint8_t *b0, uint8_t **payload, size_t *len, int timeout_ms)
{
    uint64_t deadline = t_now_ms() + (uint64_t)timeout_ms;
    uint8_t h[8];
    uint64_t n;
    int r;

    *payload = NULL;
    r = ws_read_exact(fd, h, 2, deadline);
    if (r != 1)
        return r;
    if (h[1] & 0x80)
        return -1; /* a server must not mask [RFC 6455 5.1] */
    *b0 = h[0];
    n = h[1] & 0x7f;
    if (n == 126) {
        if (ws_read_exact(fd, h, 2, deadline) != 1)
            return -1;
        n = (uint64_t)h[0] << 8 | h[1];
    } else if (n == 127) {
        if (ws_read_exact(fd, h, 8, deadline) != 1)
            return -1;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | h[i];
    }
    if (n > 64u * 1024 * 1024)
        return -1;
    *payload = malloc(n + 1);
    if (!*payload)
        return -1;
    if (n && ws_read_exact(fd, *payload, n, deadline) != 1) {
        free(*payload);
        *payload = NULL;
        return -1;
    }
    *len = (size_t)n;
    return 1;
}

int ws_expect_close(int fd, int timeout_ms)
{
    uint64_t deadline = t_now_ms() + (uint64_t)timeout_ms;
    int status = -1;

    while (t_now_ms() < deadline) {
        uint8_t b0, *p = NULL, c;
        size_t len = 0;
        int r = ws_read_frame(fd, &b0, &p, &len, (int)(deadline - t_now_ms()));

        if (r != 1) {
            free(p);
            return -1;
        }
        if ((b0 & 0x0f) == 0x8) {
            status = len >= 2 ? p[0] << 8 | p[1] : 1005;
            free(p);
            /* then the TCP close */
            if (ws_read_exact(fd, &c, 1, deadline) == -1)
                return status;
            return -1;
        }
        free(p);
    }
    return -1;
}

/* ---- the relay ---------------------------------------------------------------------------- */

struct ws_relay {
    int ws;    /* the WebSocket */
    int local; /* our end of the socketpair */
    int user;  /* the tests' end */
    int stop[2];
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    long frames;
    int close_status;
};

static void *ws_relay_run(void *arg)
{
    struct ws_relay *r = arg;
    uint8_t buf[65536];

    for (;;) {
        struct pollfd p[3] = {{r->ws, POLLIN, 0}, {r->local, POLLIN, 0}, {r->stop[0], POLLIN, 0}};
        if (poll(p, 3, -1) < 0 && errno != EINTR)
            break;
        if (p[2].revents)
            break;
        if (p[1].revents) {
            ssize_t n = read(r->local, buf, sizeof(buf));
            if (n <= 0) {
                uint8_t st[2] = {0x03, 0xe8};
                ws_send_frame(r->ws, 0x88, st, 2, true);
                break;
            }
            if (ws_send_binary(r->ws, buf, (size_t)n) < 0)
                break;
        }
        if (p[0].revents) {
            uint8_t b0, *pl = NULL;
            size_t len = 0;
            if (ws_read_frame(r->ws, &b0, &pl, &len, WS_WAIT_MS) != 1) {
                free(pl);
                break;
            }
            pthread_mutex_lock(&r->mu);
            if ((b0 & 0x0f) == 0x8)
                r->close_status = len >= 2 ? pl[0] << 8 | pl[1] : 1005;
            else if ((b0 & 0x0f) == 0x2 || (b0 & 0x0f) == 0x0)
                r->frames++;
            pthread_mutex_unlock(&r->mu);
            if ((b0 & 0x0f) == 0x8 || (((b0 & 0x0f) <= 2) && ws_write_all(r->local, pl, len) < 0)) {
                free(pl);
                break;
            }
            free(pl);
        }
    }
    shutdown(r->local, SHUT_RDWR);
    return NULL;
}

int ws_relay_open(int port, struct ws_relay **out)
{
    struct ws_relay *r = calloc(1, sizeof(*r));
    int sv[2];

    *out = NULL;
    if (!r)
        return -1;
    r->ws = r->local = r->user = r->stop[0] = r->stop[1] = -1;
    pthread_mutex_init(&r->mu, NULL);
    r->ws = ws_open(port, "mqtt");
    if (r->ws < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
        pipe(r->stop) != 0)
        goto fail;
    r->local = sv[0];
    r->user = sv[1];
    if (pthread_create(&r->thread, NULL, ws_relay_run, r) != 0)
        goto fail;
    r->started = true;
    *out = r;
    return r->user;
fail:
    ws_relay_free(r);
    return -1;
}

long ws_relay_frames(struct ws_relay *r)
{
    long n;

    pthread_mutex_lock(&r->mu);
    n = r->frames;
    pthread_mutex_unlock(&r->mu);
    return n;
}

int ws_relay_close_status(struct ws_relay *r)
{
    int n;

    pthread_mutex_lock(&r->mu);
    n = r->close_status;
    pthread_mutex_unlock(&r->mu);
    return n;
}

void ws_relay_free(struct ws_relay *r)
{
    if (!r)
        return;
    if (r->user >= 0)
        shutdown(r->user, SHUT_WR); /* the relay sends a Close and stops */
    if (r->started) {
        if (r->stop[1] >= 0)
            (void)!write(r->stop[1], "x", 1);
        pthread_join(r->thread, NULL);
    }
    if (r->ws >= 0)
        close(r->ws);
    if (r->local >= 0)
        close(r->local);
    if (r->user >= 0)
        close(r->user);
    if (r->stop[0] >= 0)
        close(r->stop[0]);
    if (r->stop[1] >= 0)
        close(r->stop[1]);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
