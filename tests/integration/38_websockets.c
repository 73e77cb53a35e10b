/*
 * 38_websockets — MQTT over WebSockets ("listener PORT" + "protocol websockets"): Paho C with
 * ws:// and wss:// URIs at QoS 0, 1 and 2 (and across to plain TCP), a persistent session over
 * WebSockets that gets its queue after a restart, takeover, auth and message_size_limit over
 * WebSockets; raw sockets for exact frames: a packet split over fragments with a Ping between
 * them, several packets in one frame, the close handshake, output gathered into few frames;
 * bad upgrades (400, 426, 431) and bad frames (Close 1002, 1003, 1009), each closing only that
 * connection; a handshake that stalls (connect_timeout); http_dir as Mosquitto serves it.
 *
 * MQTT.js is 39_websockets_js, a browser 40_websockets_browser, /metrics 41_metrics.
 */
#include "harness_tls.h"
#include "harness_ws.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAIT_MS 5000

struct ws_env {
    int port; /* the websockets listener */
    char uri[64];
    char conf[1200];
    struct broker *b;
};

/* The harness waits for the first listener; Mosquitto opens its websockets one later. */
static int ws_env_wait(const struct ws_env *e)
{
    for (uint64_t end = t_now_ms() + WAIT_MS; t_now_ms() < end; t_nap_ms(10)) {
        int fd = ws_tcp_connect(e->port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
    }
    return -1;
}

/* A broker with a websockets listener on a free port (extra: more lines for it). 0 or -1. */
static int ws_env_start(struct ws_env *e, const char *extra, bool persistent)
{
    struct broker_opts o = {0};

    e->port = harness_free_port();
    if (e->port < 0)
        return -1;
    snprintf(e->uri, sizeof(e->uri), "ws://127.0.0.1:%d/mqtt", e->port);
    snprintf(e->conf, sizeof(e->conf), "listener %d 127.0.0.1\nprotocol websockets\n%s", e->port,
             extra ? extra : "");
    o.config = e->conf;
    o.no_persistence = !persistent;
    e->b = broker_start(&o);
    return e->b ? ws_env_wait(e) : -1;
}

/* A Paho client over ws:// (NULL on failure, *rc the reason). */
static MQTTClient ws_client(const struct ws_env *e, const char *id, bool persistent, int *rc,
                            int *sp)
{
    struct pc_opts o = {.id = id, .persistent = persistent};

    return pc_connect_uri(e->uri, &o, NULL, rc, sp);
}

/* Round-trip one message through the broker on a new plain TCP client. 0 or -1. */
static int still_serving(const struct broker *b)
{
    struct pc_opts o = {.id = "still-serving"};
    MQTTClient c = pc_connect(b, &o, NULL, NULL);
    struct pc_msg m = {0};
    int rc = -1;

    if (c && pc_subscribe(c, "alive", 1) == 1 && pc_publish_str(c, "alive", "yes", 1, false) == 0 &&
        pc_recv(c, &m, WAIT_MS) == 1)
        rc = 0;
    pc_msg_free(&m);
    pc_close(&c);
    return rc;
}

static void test_paho_qos(void)
{
    struct ws_env e = {0};
    struct pc_opts to = {.id = "tcp-side"};
    MQTTClient sub = NULL, pub = NULL, tcp = NULL;
    struct pc_msg m = {0};
    char *big = NULL;
    int rc = 0;

    T_EQ(ws_env_start(&e, NULL, false), 0);
    sub = ws_client(&e, "ws-sub", false, &rc, NULL);
    T_ASSERTF(sub, "ws connect: %d", rc);
    pub = ws_client(&e, "ws-pub", false, &rc, NULL);
    T_ASSERT(pub);
    tcp = pc_connect(e.b, &to, NULL, NULL);
    T_ASSERT(tcp);
    T_EQ(pc_subscribe(sub, "ws/#", 2), 2);
    T_EQ(pc_subscribe(tcp, "ws/#", 2), 2);
    for (int q = 0; q < 3; q++) {
        char topic[16], payload[32];

        snprintf(topic, sizeof(topic), "ws/q%d", q);
        snprintf(payload, sizeof(payload), "over websockets %d", q);
        T_EQ(pc_publish_str(pub, topic, payload, q, false), 0);
        T_EQ(pc_recv(sub, &m, WAIT_MS), 1);
        T_ASSERT(strcmp(m.topic, topic) == 0 && strcmp(m.payload, payload) == 0 && m.qos == q);
        pc_msg_free(&m);
        T_EQ(pc_recv(tcp, &m, WAIT_MS), 1); /* and across transports */
        T_ASSERT(strcmp(m.payload, payload) == 0 && m.qos == q);
        pc_msg_free(&m);
    }
    /* TCP -> WebSocket, and a payload that spans many frames and TCP segments */
    big = malloc(300000);
    T_ASSERT(big);
    for (int i = 0; i < 300000; i++)
        big[i] = (char)('a' + i % 26);
    T_EQ(pc_publish(tcp, "ws/big", big, 300000, 1, false), 0);
    T_EQ(pc_recv(sub, &m, WAIT_MS), 1);
    T_ASSERT(m.len == 300000 && memcmp(m.payload, big, 300000) == 0);
    pc_msg_free(&m);
    T_EQ(pc_recv(tcp, &m, WAIT_MS), 1);
    pc_msg_free(&m);
    T_EQ(pc_publish(pub, "ws/big2", big, 300000, 2, false), 0);
    T_EQ(pc_recv(tcp, &m, WAIT_MS), 1);
    T_ASSERT(m.len == 300000 && memcmp(m.payload, big, 300000) == 0);
out:
    free(big);
    pc_msg_free(&m);
    pc_close(&sub);
    pc_close(&pub);
    pc_close(&tcp);
    broker_free(e.b);
}

static const char wss_listener[] = "listener @P 127.0.0.1\n"
                                   "protocol websockets\n"
                                   "certfile @D/server-ec.crt\n"
                                   "keyfile @D/server-ec.key\n";

static void test_paho_wss(void)
{
    struct tls_env e = {0};
    MQTTClient_SSLOptions so = MQTTClient_SSLOptions_initializer;
    struct pc_opts so_sub = {.id = "wss-sub"}, so_pub = {.id = "wss-pub"};
    MQTTClient sub = NULL, pub = NULL;
    struct pc_msg m = {0};
    char uri[64], ca[256];
    int rc = 0;

    T_EQ(tls_env_start(&e, wss_listener, NULL), 0);
    snprintf(uri, sizeof(uri), "wss://localhost:%d/mqtt", e.tls_port);
    snprintf(ca, sizeof(ca), "%s/ca.crt", e.dir);
    so.trustStore = ca;
    sub = pc_connect_uri(uri, &so_sub, &so, &rc, NULL);
    T_ASSERTF(sub, "wss connect: %d", rc);
    pub = pc_connect_uri(uri, &so_pub, &so, &rc, NULL);
    T_ASSERT(pub);
    T_EQ(pc_subscribe(sub, "wss/#", 2), 2);
    for (int q = 0; q < 3; q++) {
        char topic[16];

        snprintf(topic, sizeof(topic), "wss/q%d", q);
        T_EQ(pc_publish_str(pub, topic, "secure", q, false), 0);
        T_EQ(pc_recv(sub, &m, WAIT_MS), 1);
        T_ASSERT(strcmp(m.topic, topic) == 0 && m.qos == q);
        pc_msg_free(&m);
    }
    /* a plain ws:// client on the wss:// port gets nowhere */
    {
        char plain[64];
        struct pc_opts po = {.id = "not-tls"};
        MQTTClient c;

        snprintf(plain, sizeof(plain), "ws://127.0.0.1:%d/mqtt", e.tls_port);
        c = pc_connect_uri(plain, &po, NULL, &rc, NULL);
        T_ASSERT(!c);
    }
    T_EQ(tls_env_still_serving(&e), 0);
out:
    pc_msg_free(&m);
    pc_close(&sub);
    pc_close(&pub);
    tls_env_stop(&e);
}

static void test_wss_half_config_refused(void)
{
    struct tls_env e = {0};
    char text[512];

    if (harness_cairn_only("Mosquitto 2.0.11 serves plaintext on some of these"))
        return;
    T_EQ(tls_env_certs(&e), 0);
    tls_env_expand(text, sizeof(text),
                   "listener @P 127.0.0.1\nprotocol websockets\ncertfile @D/server-ec.crt\n", &e);
    harness_expect_refused(e.dir, text, "cairn.conf:5: certfile without keyfile");
    harness_expect_refused(e.dir, "listener 0 127.0.0.1\nprotocol websocket\n",
                           "cairn.conf:4: protocol: unknown protocol 'websocket'");
    harness_expect_refused(e.dir,
                           "listener 0 127.0.0.1\nprotocol websockets\nhttp_dir /nonexistent/x\n",
                           "http_dir /nonexistent/x");
out:
    tls_env_stop(&e);
}

/* A persistent session over WebSockets gets what was queued for it across a restart. */
static void test_persistent_restart(void)
{
    struct ws_env e = {0};
    struct pc_opts to = {.id = "tcp-pub"};
    MQTTClient sub = NULL, pub = NULL;
    struct pc_msg m[5] = {{0}};
    int sp = -1, rc = 0;

    T_EQ(ws_env_start(&e, NULL, true), 0);
    sub = ws_client(&e, "ws-persist", true, &rc, &sp);
    T_ASSERT(sub);
    T_EQ(pc_subscribe(sub, "p/#", 1), 1);
    pc_close(&sub);
    pub = pc_connect(e.b, &to, NULL, NULL);
    T_ASSERT(pub);
    for (int i = 0; i < 5; i++) {
        char payload[16];
        snprintf(payload, sizeof(payload), "queued %d", i);
        T_EQ(pc_publish_str(pub, "p/x", payload, 1, false), 0);
    }
    pc_close(&pub);
    T_EQ(broker_restart(e.b), 0);
    T_EQ(ws_env_wait(&e), 0);
    sub = ws_client(&e, "ws-persist", true, &rc, &sp);
    T_ASSERTF(sub, "reconnect: %d", rc);
    T_EQ(sp, 1);
    T_EQ(pc_collect(sub, m, 5, WAIT_MS), 5);
    for (int i = 0; i < 5; i++) {
        char want[16];
        snprintf(want, sizeof(want), "queued %d", i);
        T_ASSERTF(strcmp(m[i].payload, want) == 0, "message %d: %s", i, m[i].payload);
    }
out:
    pc_msgs_free(m, 5);
    pc_close(&sub);
    pc_close(&pub);
    broker_free(e.b);
}

/* Takeover, passwords, ACL and message_size_limit work the same over WebSockets. */
static void test_unchanged_rules(void)
{
    struct ws_env e = {0};
    char extra[800], pw[200], acl[200];
    struct pc_opts a = {.id = "same", .user = "alice", .pass = "secret"};
    struct pc_opts anon = {.id = "anon"};
    MQTTClient c1 = NULL, c2 = NULL;
    struct pc_msg m = {0};
    FILE *f;
    int rc = 0;

    snprintf(pw, sizeof(pw), "/tmp/cairn-ws-pw-%d", (int)getpid());
    snprintf(acl, sizeof(acl), "/tmp/cairn-ws-acl-%d", (int)getpid());
    {
        char *argv[] = {"mosquitto_passwd", "-c", "-b", pw, "alice", "secret", NULL};
        T_EQ(proc_run(argv, WAIT_MS, NULL), 0);
    }
    f = fopen(acl, "w");
    T_ASSERT(f);
    fprintf(f, "user alice\ntopic readwrite mine/#\n");
    fclose(f);
    snprintf(extra, sizeof(extra),
             "password_file %s\nacl_file %s\nallow_anonymous false\nmessage_size_limit 1000\n", pw,
             acl);
    T_EQ(ws_env_start(&e, extra, false), 0);
    c1 = pc_connect_uri(e.uri, &anon, NULL, &rc, NULL);
    T_ASSERT(!c1);
    T_EQ(rc, 5); /* not authorised */
    a.pass = "wrong";
    c1 = pc_connect_uri(e.uri, &a, NULL, &rc, NULL);
    T_ASSERT(!c1);
    T_EQ(rc, 4);
    a.pass = "secret";
    c1 = pc_connect_uri(e.uri, &a, NULL, &rc, NULL);
    T_ASSERT(c1);
    T_EQ(pc_subscribe(c1, "mine/#", 1), 1);
    T_EQ(pc_subscribe(c1, "theirs/#", 1), 0x80);
    T_EQ(pc_publish_str(c1, "mine/a", "ok", 1, false), 0);
    T_EQ(pc_recv(c1, &m, WAIT_MS), 1);
    pc_msg_free(&m);
    /* a second connection with the same id takes over: the first is closed */
    c2 = pc_connect_uri(e.uri, &a, NULL, &rc, NULL);
    T_ASSERT(c2);
    {
        uint64_t end = t_now_ms() + WAIT_MS;
        while (MQTTClient_isConnected(c1) && t_now_ms() < end)
            pc_expect_none(c1, 50);
        T_ASSERT(!MQTTClient_isConnected(c1));
    }
    /* a PUBLISH over message_size_limit is acknowledged and dropped; the connection stays */
    {
        char big[2000];
        memset(big, 'x', sizeof(big));
        T_EQ(pc_subscribe(c2, "mine/#", 1), 1);
        T_EQ(pc_publish(c2, "mine/big", big, sizeof(big), 1, false), 0);
        T_EQ(pc_publish_str(c2, "mine/after", "small", 1, false), 0);
        T_EQ(pc_recv(c2, &m, WAIT_MS), 1);
        T_ASSERTF(strcmp(m.topic, "mine/after") == 0, "got %s, not the message after", m.topic);
    }
out:
    pc_msg_free(&m);
    pc_close(&c1);
    pc_close(&c2);
    broker_free(e.b);
    unlink(pw);
    unlink(acl);
}

/* ---- raw frames --------------------------------------------------------------------------- */

/* A CONNECT (clean, id) into buf: its length. */
static size_t connect_bytes(uint8_t *buf, size_t cap, const char *id)
{
    struct raw_conn_opts o = {.id = id};

    return raw_build_connect(buf, cap, &o);
}

/* Read binary frames until their payloads make up len bytes; compare with want. 0 or -1. */
static int expect_stream(int fd, const uint8_t *want, size_t len)
{
    uint8_t got[512];
    size_t n = 0;

    while (n < len) {
        uint8_t b0, *p = NULL;
        size_t pl = 0;
        if (ws_read_frame(fd, &b0, &p, &pl, WAIT_MS) != 1)
            return -1;
        if ((b0 & 0x0f) != 0x2 || n + pl > sizeof(got)) {
            t_note("frame 0x%02x of %zu bytes", b0, pl);
            free(p);
            return -1;
        }
        memcpy(got + n, p, pl);
        n += pl;
        free(p);
    }
    if (n != len || memcmp(got, want, len) != 0) {
        t_note("stream of %zu bytes differs", n);
        return -1;
    }
    return 0;
}

/* A packet split over three fragments with a Ping between them; packets sharing a frame;
 * the close handshake. */
static void test_frames(void)
{
    static const uint8_t connack[] = {0x20, 0x02, 0x00, 0x00};
    static const uint8_t sub[] = {0x82, 0x08, 0x00, 0x01, 0x00, 0x03, 't', '/', 'a', 0x00};
    static const uint8_t ping[] = {0xc0, 0x00};
    static const uint8_t pub[] = {0x30, 0x06, 0x00, 0x03, 't', '/', 'a', 'x'};
    static const uint8_t answers[] = {0x90, 0x03, 0x00, 0x01, 0x00, 0xd0, 0x00, 0x30,
                                      0x06, 0x00, 0x03, 't',  '/',  'a',  'x'};
    struct ws_env e = {0};
    uint8_t c[128], both[64], b0, *p = NULL;
    size_t n, pl = 0;
    int fd = -1;

    T_EQ(ws_env_start(&e, NULL, false), 0);
    fd = ws_open(e.port, "mqtt");
    T_ASSERT(fd >= 0);
    n = connect_bytes(c, sizeof(c), "frames");
    T_EQ(ws_send_frame(fd, 0x02, c, 3, true), 0);         /* binary, FIN clear */
    T_EQ(ws_send_frame(fd, 0x89, "hello", 5, true), 0);   /* a Ping between fragments */
    T_EQ(ws_send_frame(fd, 0x00, c + 3, 5, true), 0);     /* continuation */
    T_EQ(ws_send_frame(fd, 0x80, c + 8, n - 8, true), 0); /* last continuation */
    T_EQ(ws_read_frame(fd, &b0, &p, &pl, WAIT_MS), 1);
    T_ASSERTF(b0 == 0x8a && pl == 5 && memcmp(p, "hello", 5) == 0, "pong 0x%02x %zu", b0, pl);
    free(p);
    p = NULL;
    T_EQ(expect_stream(fd, connack, sizeof(connack)), 0);
    /* SUBSCRIBE, PINGREQ and a PUBLISH to itself in one frame */
    memcpy(both, sub, sizeof(sub));
    memcpy(both + sizeof(sub), ping, sizeof(ping));
    memcpy(both + sizeof(sub) + sizeof(ping), pub, sizeof(pub));
    T_EQ(ws_send_binary(fd, both, sizeof(sub) + sizeof(ping) + sizeof(pub)), 0);
    T_EQ(expect_stream(fd, answers, sizeof(answers)), 0);
    /* an empty binary frame changes nothing; an unsolicited Pong is ignored */
    T_EQ(ws_send_binary(fd, "", 0), 0);
    T_EQ(ws_send_frame(fd, 0x8a, "x", 1, true), 0);
    T_EQ(ws_send_binary(fd, ping, sizeof(ping)), 0);
    T_EQ(expect_stream(fd, ping + 0, 0), 0);
    {
        static const uint8_t pingresp[] = {0xd0, 0x00};
        T_EQ(expect_stream(fd, pingresp, 2), 0);
    }
    /* the close handshake: our Close 1000 comes back, then the TCP close */
    {
        uint8_t st[2] = {0x03, 0xe8};
        T_EQ(ws_send_frame(fd, 0x88, st, 2, true), 0);
        T_EQ(ws_expect_close(fd, WAIT_MS), 1000);
    }
    T_EQ(still_serving(e.b), 0);
out:
    free(p);
    if (fd >= 0)
        close(fd);
    broker_free(e.b);
}

/* Open a WebSocket, CONNECT on it, and send one bad frame: the Close status that comes back. */
static int bad_frame(int port, const uint8_t *frame, size_t len)
{
    uint8_t c[128];
    size_t n = connect_bytes(c, sizeof(c), "bad-frames");
    int fd = ws_open(port, "mqtt"), st = -1;
    uint8_t b0, *p = NULL;
    size_t pl;

    if (fd < 0)
        return -1;
    if (ws_send_binary(fd, c, n) < 0 || ws_read_frame(fd, &b0, &p, &pl, WAIT_MS) != 1)
        goto out;
    free(p);
    if (raw_send(fd, frame, len) < 0)
        goto out;
    st = ws_expect_close(fd, WAIT_MS);
out:
    close(fd);
    return st;
}

static void test_bad_frames(void)
{
    static const uint8_t unmasked[] = {0x82, 0x02, 0xc0, 0x00};
    static const uint8_t text[] = {0x81, 0x82, 1, 2, 3, 4, 0xc1, 0x02};
    static const uint8_t huge[] = {0x82, 0xff, 0, 0, 0x01, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    static const uint8_t cont[] = {0x80, 0x80, 1, 2, 3, 4};
    static const uint8_t rsv[] = {0xc2, 0x80, 1, 2, 3, 4};
    static const uint8_t long_ping[] = {0x89, 0xfe, 0x00, 0x7e, 1, 2, 3, 4};
    static const uint8_t close1[] = {0x88, 0x81, 1, 2, 3, 4, 0x55};
    static const uint8_t opcode3[] = {0x83, 0x80, 1, 2, 3, 4};
    static const uint8_t nonminimal[] = {0x82, 0xfe, 0x00, 0x05, 1, 2, 3, 4, 0, 0, 0, 0, 0};
    struct ws_env e = {0};
    MQTTClient keep = NULL;
    struct pc_msg m = {0};
    int rc = 0;

    if (harness_cairn_only("close status codes are Cairn's (libwebsockets differs)"))
        return;
    T_EQ(ws_env_start(&e, NULL, false), 0);
    keep = ws_client(&e, "bystander", false, &rc, NULL);
    T_ASSERT(keep);
    T_EQ(pc_subscribe(keep, "still/#", 1), 1);
    T_EQ(bad_frame(e.port, unmasked, sizeof(unmasked)), 1002);
    T_EQ(bad_frame(e.port, text, sizeof(text)), 1003);
    T_EQ(bad_frame(e.port, huge, sizeof(huge)), 1009);
    T_EQ(bad_frame(e.port, cont, sizeof(cont)), 1002);
    T_EQ(bad_frame(e.port, rsv, sizeof(rsv)), 1002);
    T_EQ(bad_frame(e.port, long_ping, sizeof(long_ping)), 1002);
    T_EQ(bad_frame(e.port, close1, sizeof(close1)), 1002);
    T_EQ(bad_frame(e.port, opcode3, sizeof(opcode3)), 1002);
    T_EQ(bad_frame(e.port, nonminimal, sizeof(nonminimal)), 1002);
    T_EQ(broker_wait_log(e.b, "unmasked frame from a client; closing with status 1002", WAIT_MS),
         0);
    /* the bystander never noticed */
    T_EQ(pc_publish_str(keep, "still/here", "yes", 1, false), 0);
    T_EQ(pc_recv(keep, &m, WAIT_MS), 1);
out:
    pc_msg_free(&m);
    pc_close(&keep);
    broker_free(e.b);
}

/* Bad upgrade requests: an HTTP error and a close; the broker serves on. */
static void test_bad_upgrades(void)
{
#define HDRS "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
#define KEY  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"GET /mqtt HTTP/1.1\r\n" HDRS "Sec-WebSocket-Protocol: mqtt\r\n\r\n", 400}, /* no key */
        {"GET /mqtt HTTP/1.1\r\n" HDRS "Sec-WebSocket-Key: c2hvcnQ=\r\n\r\n", 400},  /* 5 bytes */
        {"POST /mqtt HTTP/1.1\r\n" HDRS KEY "\r\n", 400},
        {"GET /mqtt HTTP/1.1\r\n" HDRS KEY "Sec-WebSocket-Protocol: chat, superchat\r\n\r\n", 400},
        {"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 8\r\n" KEY "\r\n",
         426},
        {"GET /mqtt HTTP/1.1\nHost: x\nUpgrade: websocket\n\n", 400},  /* bare LF */
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400}, /* TLS to a ws port */
        {"GET /mqtt HTTP/1.1\r\n" HDRS " Folded: no\r\n\r\n", 400},
        {"GET mqtt HTTP/1.1\r\n" HDRS "\r\n", 400},
        {"GET /mqtt HTTP/1.1\r\n" KEY "Upgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\n\r\n",
         400}, /* no Host */
    };
#undef HDRS
#undef KEY
    struct ws_env e = {0};
    char req[2048], *resp = NULL, big[1500];

    if (harness_cairn_only("libwebsockets answers some of these differently"))
        return;
    T_EQ(ws_env_start(&e, NULL, false), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t t0 = t_now_ms();
        int st = ws_http(e.port, cases[i].req, strlen(cases[i].req), &resp, WAIT_MS);

        T_ASSERTF(st == cases[i].status, "case %zu: %d: %.120s", i, st, resp ? resp : "");
        T_ASSERTF(t_now_ms() - t0 < WAIT_MS - 500, "case %zu: not closed", i);
        if (st == 426)
            T_ASSERT(strstr(resp, "Sec-WebSocket-Version: 13\r\n"));
        free(resp);
        resp = NULL;
    }
    /* a head over websockets_headers_size (1024 by default): 431 */
    memset(big, 'a', sizeof(big));
    big[sizeof(big) - 1] = '\0';
    snprintf(req, sizeof(req), "GET /mqtt HTTP/1.1\r\nCookie: %s\r\n\r\n", big);
    T_EQ(ws_http(e.port, req, strlen(req), NULL, WAIT_MS), 431);
    T_EQ(still_serving(e.b), 0);
out:
    free(resp);
    broker_free(e.b);
}

/* websockets_headers_size raises the limit; a handshake that stalls is closed at
 * connect_timeout. */
static void test_limits(void)
{
    struct ws_env e = {0};
    char req[4096], big[3000];
    int fd = -1;

    if (harness_cairn_only("connect_timeout is Cairn's own"))
        return;
    T_EQ(ws_env_start(&e, "websockets_headers_size 4096\nconnect_timeout 1\n", false), 0);
    memset(big, 'a', sizeof(big));
    big[sizeof(big) - 1] = '\0';
    snprintf(req, sizeof(req),
             "GET /mqtt HTTP/1.1\r\nHost: x\r\nCookie: %s\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
             big);
    T_EQ(ws_http(e.port, req, strlen(req), NULL, WAIT_MS), 400); /* read whole: no key */
    fd = ws_tcp_connect(e.port);
    T_ASSERT(fd >= 0);
    T_EQ(raw_send(fd, "GET /mqtt HTTP/1.1\r\nHost: x\r\n", 29), 0);
    T_EQ(raw_expect_close(fd, 4000), 0);
    close(fd);
    fd = -1;
    T_EQ(broker_wait_log(e.b, "no HTTP request in time", WAIT_MS), 0);
    /* upgraded but silent: the CONNECT timeout of an MQTT connection applies */
    fd = ws_open(e.port, "mqtt");
    T_ASSERT(fd >= 0);
    T_EQ(ws_expect_close(fd, 4000), 1000);
    T_EQ(still_serving(e.b), 0);
out:
    if (fd >= 0)
        close(fd);
    broker_free(e.b);
}

/*
 * A burst of 1000 PUBLISH packets arrives whole, one frame per packet (Paho C needs frames
 * aligned with packets; ws_transport.c); that the frames of one flush leave in one gathered
 * write is checked by unit/broker/test_ws_transport.
 */
static void test_burst_frames(void)
{
    struct ws_env e = {0};
    struct ws_relay *r = NULL;
    uint8_t *burst = NULL;
    size_t len = 0;
    int fd = -1, pubfd = -1, rc, sp;
    long frames;
    struct raw_conn_opts o = {.id = "gather-sub"}, po = {.id = "gather-pub"};

    T_EQ(ws_env_start(&e, NULL, false), 0);
    fd = ws_relay_open(e.port, &r);
    T_ASSERT(fd >= 0);
    T_EQ(raw_mqtt_handshake(fd, &o, &rc, &sp), 0);
    T_EQ(rc, 0);
    T_EQ(raw_subscribe(fd, 1, "g/#", 0), 0);
    pubfd = raw_mqtt_connect(e.b, &po, &rc, &sp);
    T_ASSERT(pubfd >= 0);
    burst = malloc(1000 * 32);
    T_ASSERT(burst);
    for (int i = 0; i < 1000; i++)
        len += raw_build_publish(burst + len, 32, "g/x", "0123456789", 10, 0, false, false, 0);
    frames = ws_relay_frames(r);
    T_EQ(raw_send(pubfd, burst, len), 0);
    for (int i = 0; i < 1000; i++) {
        struct raw_pkt p;
        T_EQ(raw_recv_publish(fd, &p, WAIT_MS, false), 1);
        raw_pkt_free(&p);
    }
    frames = ws_relay_frames(r) - frames;
    T_ASSERTF(frames == 1000, "%ld frames for 1000 packets", frames);
out:
    free(burst);
    if (pubfd >= 0)
        close(pubfd);
    ws_relay_free(r);
    broker_free(e.b);
}

/* http_dir: files as Mosquitto serves them, nothing outside the directory. */
static void test_http_dir(void)
{
    struct ws_env e = {0};
    char dir[256], path[400], extra[400], *resp = NULL;
    char req[512];
    FILE *f;

    snprintf(dir, sizeof(dir), "/tmp/cairn-ws-www-%d", (int)getpid());
    snprintf(path, sizeof(path), "%s/www", dir);
    T_ASSERT(mkdir(dir, 0755) == 0 || errno == EEXIST);
    T_ASSERT(mkdir(path, 0755) == 0 || errno == EEXIST);
    snprintf(path, sizeof(path), "%s/www/index.html", dir);
    f = fopen(path, "w");
    T_ASSERT(f);
    fputs("<html>cairn</html>\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/secret.txt", dir);
    f = fopen(path, "w");
    T_ASSERT(f);
    fputs("secret\n", f);
    fclose(f);
    snprintf(extra, sizeof(extra), "%s/www/link.txt", dir);
    unlink(extra);
    T_EQ(symlink(path, extra), 0);
    snprintf(extra, sizeof(extra), "http_dir %s/www\n", dir);
    T_EQ(ws_env_start(&e, extra, false), 0);

    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", "/");
    T_EQ(ws_http(e.port, req, strlen(req), &resp, WAIT_MS), 200);
    T_ASSERT(strstr(resp, "<html>cairn</html>"));
    free(resp);
    resp = NULL;
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", "/index.html?x=1");
    T_EQ(ws_http(e.port, req, strlen(req), NULL, WAIT_MS), 200);
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", "/nothing.html");
    T_EQ(ws_http(e.port, req, strlen(req), NULL, WAIT_MS), 404);
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", "/link.txt");
    T_EQ(ws_http(e.port, req, strlen(req), &resp, WAIT_MS), 403);
    T_ASSERT(!strstr(resp, "secret"));
    free(resp);
    resp = NULL;
    snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    T_EQ(ws_http(e.port, req, strlen(req), NULL, WAIT_MS), 405);
    if (!harness_is_mosquitto()) { /* libwebsockets rewrites these paths before Mosquitto looks */
        const char *escapes[] = {"/../secret.txt", "/%2e%2e/secret.txt", "/a/../../secret.txt",
                                 "/..%2fsecret.txt"};
        for (size_t i = 0; i < sizeof(escapes) / sizeof(escapes[0]); i++) {
            snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", escapes[i]);
            T_EQ(ws_http(e.port, req, strlen(req), &resp, WAIT_MS), 403);
            T_ASSERT(!strstr(resp, "secret"));
            free(resp);
            resp = NULL;
        }
    }
out:
    free(resp);
    broker_free(e.b);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    if (!t_case_failed() && system(path) != 0)
        t_note("could not remove %s", dir);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"paho_qos", test_paho_qos},
        {"paho_wss", test_paho_wss},
        {"wss_half_config_refused", test_wss_half_config_refused},
        {"persistent_restart", test_persistent_restart},
        {"unchanged_rules", test_unchanged_rules},
        {"frames", test_frames},
        {"bad_frames", test_bad_frames},
        {"bad_upgrades", test_bad_upgrades},
        {"limits", test_limits},
        {"burst_frames", test_burst_frames},
        {"http_dir", test_http_dir},
    };
    return T_MAIN(cases);
}
