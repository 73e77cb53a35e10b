/*
 * 51_tls_storm — a reconnect storm over TLS, served correctly: STORM_N clients open TLS
 * connections at once (the handshakes run on Cairn's handshake threads), each CONNECTs and
 * publishes one QoS 1 message on its own topic and waits for its PUBACK, while a subscriber that
 * connected before gets every message exactly once; then the same clients reconnect at once
 * resuming their sessions with the tickets they were given. Correctness only: no timing is
 * checked (bench_tls_load measures the storm).
 *
 * The clients are mbedTLS in this process, non-blocking, all driven by one poll loop.
 */
#include "harness_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#define STORM_N 200
#define WAIT_MS 10000

static const char storm_listener[] = "listener @P 127.0.0.1\n"
                                     "certfile @D/server-ec.crt\n"
                                     "keyfile @D/server-ec.key\n";

enum st { ST_HANDSHAKE, ST_CONNACK, ST_PUBACK, ST_DONE, ST_FAILED };

struct sc {
    int fd;
    enum st st;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_session sess; /* kept from the first round, offered in the second */
    bool have_sess, resumed;
    size_t raw; /* bytes read during the handshake: a resumed one has no certificate */
    unsigned char in[256];
    size_t in_len;
};

static int sc_send(void *arg, const unsigned char *buf, size_t len)
{
    ssize_t n = send(((struct sc *)arg)->fd, buf, len, MSG_NOSIGNAL);

    if (n >= 0)
        return (int)n;
    return errno == EAGAIN ? MBEDTLS_ERR_SSL_WANT_WRITE : MBEDTLS_ERR_NET_SEND_FAILED;
}

static int sc_recv(void *arg, unsigned char *buf, size_t len)
{
    struct sc *c = arg;
    ssize_t n = recv(c->fd, buf, len, 0);

    if (n >= 0) {
        c->raw += (size_t)n;
        return (int)n;
    }
    return errno == EAGAIN ? MBEDTLS_ERR_SSL_WANT_READ : MBEDTLS_ERR_NET_RECV_FAILED;
}

static int sc_open(struct sc *c, mbedtls_ssl_config *conf, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->in_len = 0;
    c->raw = 0;
    c->st = ST_HANDSHAKE;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS)
        return -1;
    mbedtls_ssl_init(&c->ssl);
    if (mbedtls_ssl_setup(&c->ssl, conf) != 0)
        return -1;
    if (c->have_sess && mbedtls_ssl_set_session(&c->ssl, &c->sess) != 0)
        return -1;
    mbedtls_ssl_set_bio(&c->ssl, c, sc_send, sc_recv, NULL);
    return 0;
}

static void sc_close(struct sc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    mbedtls_ssl_free(&c->ssl);
}

static int sc_write(struct sc *c, const unsigned char *p, size_t len)
{
    while (len > 0) { /* small: mbedTLS takes it whole or asks again with the same */
        int n = mbedtls_ssl_write(&c->ssl, p, len);

        if (n == MBEDTLS_ERR_SSL_WANT_WRITE || n == MBEDTLS_ERR_SSL_WANT_READ) {
            struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};

            poll(&pfd, 1, 100);
            continue;
        }
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* CONNECT (clean session, id storm-i), then PUBLISH QoS 1 "storm/i" with payload "i". */
static int sc_connect(struct sc *c, int i)
{
    unsigned char b[64];
    int idl = snprintf((char *)b + 14, sizeof(b) - 14, "storm-%d", i);

    memcpy(b, "\x10\x00\x00\x04MQTT\x04\x02\x00\x3c\x00\x00", 14);
    b[1] = (unsigned char)(12 + idl);
    b[13] = (unsigned char)idl;
    return sc_write(c, b, (size_t)(14 + idl));
}

static int sc_publish(struct sc *c, int i)
{
    unsigned char b[64];
    char topic[32], payload[16];
    int tl = snprintf(topic, sizeof(topic), "storm/%d", i);
    int pl = snprintf(payload, sizeof(payload), "%d", i);
    size_t n = 0;

    b[n++] = 0x32;
    b[n++] = (unsigned char)(2 + tl + 2 + pl);
    b[n++] = 0;
    b[n++] = (unsigned char)tl;
    memcpy(b + n, topic, (size_t)tl);
    n += (size_t)tl;
    b[n++] = 0;
    b[n++] = 1;
    memcpy(b + n, payload, (size_t)pl);
    return sc_write(c, b, n + (size_t)pl);
}

/* Step one client as far as its socket allows. */
static void sc_step(struct sc *c, int i)
{
    int r;

    if (c->st == ST_HANDSHAKE) {
        r = mbedtls_ssl_handshake(&c->ssl);
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
            return;
        if (r != 0 || sc_connect(c, i) != 0) {
            c->st = ST_FAILED;
            return;
        }
        c->resumed = c->have_sess && c->raw < 400; /* a full one carries ~1 KB here */
        c->st = ST_CONNACK;
    }
    while (c->st == ST_CONNACK || c->st == ST_PUBACK) {
        r = mbedtls_ssl_read(&c->ssl, c->in + c->in_len, sizeof(c->in) - c->in_len);
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
            return;
        if (r <= 0) {
            c->st = ST_FAILED;
            return;
        }
        c->in_len += (size_t)r;
        if (c->in_len < 4)
            continue;
        if (c->st == ST_CONNACK) {
            if (c->in[0] != 0x20 || c->in[3] != 0 || sc_publish(c, i) != 0) {
                c->st = ST_FAILED;
                return;
            }
            memmove(c->in, c->in + 4, c->in_len - 4);
            c->in_len -= 4;
            c->st = ST_PUBACK;
        }
        if (c->st == ST_PUBACK && c->in_len >= 4)
            c->st = c->in[0] == 0x40 && c->in[3] == 1 ? ST_DONE : ST_FAILED;
    }
}

/* Open every client at once and drive them all; how many got their PUBACK. */
static int storm_round(struct sc *v, mbedtls_ssl_config *conf, int port)
{
    struct pollfd *pfd = calloc(STORM_N, sizeof(*pfd));
    uint64_t end = t_now_ms() + 60000;
    int done = 0;

    if (!pfd)
        return -1;
    for (int i = 0; i < STORM_N; i++)
        if (sc_open(&v[i], conf, port) != 0)
            v[i].st = ST_FAILED;
    while (t_now_ms() < end) {
        int open = 0;

        done = 0;
        for (int i = 0; i < STORM_N; i++) {
            pfd[i].fd = v[i].st < ST_DONE ? v[i].fd : -1;
            pfd[i].events = POLLIN | POLLOUT;
            open += v[i].st < ST_DONE;
            done += v[i].st == ST_DONE;
        }
        if (open == 0)
            break;
        if (poll(pfd, STORM_N, 100) < 0)
            break;
        for (int i = 0; i < STORM_N; i++)
            if (pfd[i].fd >= 0 && pfd[i].revents)
                sc_step(&v[i], i);
    }
    for (int i = 0; i < STORM_N; i++) {
        if (v[i].st == ST_DONE && !v[i].have_sess)
            v[i].have_sess = mbedtls_ssl_get_session(&v[i].ssl, &v[i].sess) == 0;
        sc_close(&v[i]);
    }
    free(pfd);
    return done;
}

/* Every storm-N message arrived once. */
static int expect_all(MQTTClient sub)
{
    bool *seen = calloc(STORM_N, sizeof(*seen));
    int got = 0, rc = -1;

    if (!seen)
        return -1;
    while (got < STORM_N) {
        struct pc_msg m;
        int i;

        if (pc_recv(sub, &m, WAIT_MS) != 1)
            break;
        i = atoi(m.payload);
        if (i >= 0 && i < STORM_N && !seen[i] && m.qos == 1) {
            seen[i] = true;
            got++;
        } else {
            t_note("unexpected or repeated message %s: %s", m.topic, m.payload);
        }
        pc_msg_free(&m);
    }
    if (got == STORM_N && pc_expect_none(sub, 200) == 0)
        rc = 0;
    else
        t_note("%d of %d messages", got, STORM_N);
    free(seen);
    return rc;
}

static void test_storm(void)
{
    struct tls_env e = {0};
    struct pc_opts o = {.id = "storm-sub"};
    struct sc *v = calloc(STORM_N, sizeof(*v));
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config conf;
    MQTTClient sub = NULL;
    int resumed = 0;

    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_ssl_config_init(&conf);
    T_ASSERT(v);
    T_EQ(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0), 0);
    T_EQ(mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                     MBEDTLS_SSL_PRESET_DEFAULT),
         0);
    mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
    mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_NONE);
    mbedtls_ssl_conf_max_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    for (int i = 0; i < STORM_N; i++)
        v[i].fd = -1;
    T_EQ(tls_env_start(&e, storm_listener, NULL), 0);
    sub = pc_connect(e.b, &o, NULL, NULL);
    T_ASSERT(sub);
    T_EQ(pc_subscribe(sub, "storm/#", 1), 1);
    T_EQ(storm_round(v, &conf, e.tls_port), STORM_N);
    T_EQ(expect_all(sub), 0);
    /* the same devices again, each with the ticket it was given */
    T_EQ(storm_round(v, &conf, e.tls_port), STORM_N);
    T_EQ(expect_all(sub), 0);
    for (int i = 0; i < STORM_N; i++)
        resumed += v[i].resumed;
    T_EQ(resumed, STORM_N);
    T_EQ(tls_env_still_serving(&e), 0);
out:
    pc_close(&sub);
    for (int i = 0; v && i < STORM_N; i++)
        mbedtls_ssl_session_free(&v[i].sess);
    free(v);
    mbedtls_ssl_config_free(&conf);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    tls_env_stop(&e);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"storm", test_storm},
    };

    return T_MAIN(cases);
}
