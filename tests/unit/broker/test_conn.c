/*
 * test_conn.c — connections over a socketpair with a recording handler in place of the broker:
 * the decode loop (whole, split, byte by byte, large), every way a conn closes (codec error,
 * bad protocol level, handler refusal, peer EOF, CONNECT timeout, keepalive), gathered output,
 * shared references and their release, the high/low-water mark, deferred close and linger.
 *
 * The test plays the peer on the other end of the socketpair from the same thread: it writes,
 * then runs loop iterations until the event it expects happens or a deadline passes.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "loop.h"
#include "timer.h"
#include "transport.h"

#define MAXPKT 64

struct fixture {
    struct loop *loop;
    struct config cfg;
    struct conn_pool *pool;
    struct conn *conn; /* the last opened */
    int peer;          /* our end of the socketpair */
    /* what the handler saw */
    int opens;
    int closes;
    int close_reason;
    int bad_connects;
    int writables;
    int npkt;
    enum mqtt_type types[MAXPKT];
    size_t payload_len[MAXPKT];
    uint8_t first_payload_byte[MAXPKT];
    /* how the handler behaves */
    int packet_rc;           /* returned from on_packet */
    bool close_on_packet;    /* conn_close(c, 0) in on_packet */
    size_t flood_on_connect; /* bytes to queue when CONNECT arrives */
    bool close_after_flood;
    bool pause_on_packet; /* conn_pause_input on the next packet (then cleared) */
    int release_count;
    /* on_oversize: PUBLISHes over message_size_limit, from their heads */
    int oversize;
    size_t oversize_len;
    uint16_t oversize_pid;
    char oversize_topic[32];
};

/* ---- the handler ------------------------------------------------------------------------ */

static void release_cb(void *obj)
{
    struct fixture *f = obj;
    f->release_count++;
}

static int h_open(void *arg, struct conn *c)
{
    struct fixture *f = arg;

    f->opens++;
    f->conn = c;
    conn_set_data(c, f);
    return 0;
}

static int h_packet(void *arg, struct conn *c, const struct mqtt_packet *pkt)
{
    struct fixture *f = arg;

    assert_ptr_equal(conn_data(c), f);
    if (f->npkt < MAXPKT) {
        f->types[f->npkt] = pkt->type;
        if (pkt->type == MQTT_PUBLISH) {
            f->payload_len[f->npkt] = pkt->u.publish.payload.len;
            f->first_payload_byte[f->npkt] =
                pkt->u.publish.payload.len ? pkt->u.publish.payload.p[0] : 0;
        }
        f->npkt++;
    }
    if (pkt->type == MQTT_CONNECT) {
        uint8_t ack[4];
        mqtt_encode_connack(ack, sizeof(ack), false, 0);
        assert_int_equal(conn_write(c, ack, sizeof(ack)), 0);
        conn_set_keepalive(c, pkt->u.connect.keepalive);
        for (size_t sent = 0; sent < f->flood_on_connect;) {
            static uint8_t chunk[8192];
            size_t n = f->flood_on_connect - sent < sizeof(chunk) ? f->flood_on_connect - sent
                                                                  : sizeof(chunk);
            memset(chunk, 'f', n);
            assert_int_equal(conn_write(c, chunk, n), 0);
            sent += n;
        }
        if (f->close_after_flood)
            conn_close(c, 0);
    }
    if (f->close_on_packet)
        conn_close(c, 0);
    if (f->pause_on_packet) {
        f->pause_on_packet = false;
        conn_pause_input(c);
    }
    return f->packet_rc;
}

static int h_oversize(void *arg, struct conn *c, const struct mqtt_publish *head,
                      size_t payload_len)
{
    struct fixture *f = arg;

    assert_null(head->payload.p); /* the head only: the payload is never handed over */
    f->oversize++;
    f->oversize_len = payload_len;
    f->oversize_pid = head->packet_id;
    snprintf(f->oversize_topic, sizeof(f->oversize_topic), "%.*s", (int)head->topic.len,
             (const char *)head->topic.p);
    return 0;
}

static int h_bad_connect(void *arg, struct conn *c, int err)
{
    struct fixture *f = arg;
    uint8_t ack[4];

    f->bad_connects++;
    assert_int_equal(err, -MQTT_EPROTO_LEVEL);
    mqtt_encode_connack(ack, sizeof(ack), false, MQTT_CONNACK_BAD_PROTOCOL);
    return conn_write(c, ack, sizeof(ack));
}

static void h_close(void *arg, struct conn *c, int reason)
{
    struct fixture *f = arg;

    (void)c;
    f->closes++;
    f->close_reason = reason;
    f->conn = NULL;
}

static void h_writable(void *arg, struct conn *c)
{
    struct fixture *f = arg;

    (void)c;
    f->writables++;
}

static void iteration_end(void *arg)
{
    struct fixture *f = arg;

    for (int i = 0; i < 4; i++) {
        conn_pool_reap(f->pool);
        conn_pool_flush(f->pool);
        if (!conn_pool_pending(f->pool))
            break;
    }
}

/* ---- fixture ---------------------------------------------------------------------------- */

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct conn_handler h = {.on_open = h_open,
                             .on_packet = h_packet,
                             .on_bad_connect = h_bad_connect,
                             .on_oversize = h_oversize,
                             .on_close = h_close,
                             .on_writable = h_writable};
    char err[128];

    config_defaults(&f->cfg);
    if (config_add_default_listener(&f->cfg) < 0)
        return -1;
    f->cfg.connection_messages = false;
    f->loop = loop_new(err, sizeof(err));
    h.arg = f;
    f->pool = conn_pool_new(f->loop, &f->cfg, &h);
    loop_set_iteration_end(f->loop, iteration_end, f);
    f->peer = -1;
    *state = f;
    return f->loop && f->pool ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    conn_pool_free(f->pool);
    loop_free(f->loop);
    config_cleanup(&f->cfg);
    if (f->peer >= 0)
        close(f->peer);
    free(f);
    return 0;
}

/* A conn on one end of a socketpair; the test keeps the other (non-blocking). */
static void connect_pair(struct fixture *f)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    f->peer = sv[1];
    assert_int_equal(conn_pool_add(f->pool, transport_tcp_new(sv[0]), 0, "test:1"), 0);
    assert_int_equal(f->opens, 1);
}

/* Run iterations until *value >= want or ms pass; returns *value. */
static int pump_until(struct fixture *f, const int *value, int want, unsigned ms)
{
    uint64_t end = timer_clock_ms() + ms;

    while (*value < want && timer_clock_ms() < end)
        loop_run_once(f->loop, 20);
    return *value;
}

static void pump_for(struct fixture *f, unsigned ms)
{
    uint64_t end = timer_clock_ms() + ms;

    while (timer_clock_ms() < end)
        loop_run_once(f->loop, 10);
}

static void peer_send(struct fixture *f, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = write(f->peer, p, len);
        if (n < 0 && errno == EAGAIN) {
            loop_run_once(f->loop, 10);
            continue;
        }
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Read exactly len bytes (running the loop meanwhile); returns how many arrived in 3 s. */
static size_t peer_recv(struct fixture *f, void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t got = 0;
    uint64_t end = timer_clock_ms() + 3000;

    while (got < len && timer_clock_ms() < end) {
        ssize_t n = read(f->peer, p + got, len - got);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0)
            break;
        else
            loop_run_once(f->loop, 10);
    }
    return got;
}

/* The peer sees EOF within 3 s. */
static bool peer_eof(struct fixture *f)
{
    uint64_t end = timer_clock_ms() + 3000;
    uint8_t b[4096];

    while (timer_clock_ms() < end) {
        ssize_t n = read(f->peer, b, sizeof(b));
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n < 0)
            loop_run_once(f->loop, 10);
    }
    return false;
}

static size_t enc_connect(uint8_t *buf, size_t cap, uint16_t keepalive)
{
    struct mqtt_connect c = {0};

    c.protocol_name.p = (const uint8_t *)"MQTT";
    c.protocol_name.len = 4;
    c.protocol_level = 4;
    c.clean_session = true;
    c.keepalive = keepalive;
    c.client_id.p = (const uint8_t *)"dev-1";
    c.client_id.len = 5;
    return mqtt_encode_connect(buf, cap, &c);
}

static size_t enc_publish(uint8_t *buf, size_t cap, size_t payload_len, uint8_t fill)
{
    struct mqtt_publish p = {0};
    uint8_t *payload = malloc(payload_len + 1);
    size_t n;

    memset(payload, fill, payload_len);
    p.topic.p = (const uint8_t *)"a/b";
    p.topic.len = 3;
    p.payload.p = payload;
    p.payload.len = payload_len;
    n = mqtt_encode_publish(buf, cap, &p);
    free(payload);
    return n;
}

/*
 * connect_pair, then a CONNECT handled and its CONNACK read: a conn past CONNECT, where any
 * packet may come (before it, only a CONNECT may). npkt starts from 0 again.
 */
static void connect_mqtt(struct fixture *f)
{
    uint8_t buf[64];
    uint8_t ack[4];
    size_t n;

    connect_pair(f);
    n = enc_connect(buf, sizeof(buf), 0);
    peer_send(f, buf, n);
    assert_int_equal(pump_until(f, &f->npkt, 1, 2000), 1);
    assert_int_equal(peer_recv(f, ack, 4), 4);
    assert_int_equal(ack[0], 0x20);
    f->npkt = 0;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_whole_and_split_packets(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[256];
    uint8_t ack[4];
    size_t n;

    connect_pair(f);
    n = enc_connect(buf, sizeof(buf), 0);
    buf[n] = 0xc0; /* PINGREQ in the same write */
    buf[n + 1] = 0x00;
    peer_send(f, buf, n + 2);
    assert_int_equal(pump_until(f, &f->npkt, 2, 2000), 2);
    assert_int_equal(f->types[0], MQTT_CONNECT);
    assert_int_equal(f->types[1], MQTT_PINGREQ);
    assert_int_equal(peer_recv(f, ack, 4), 4);
    assert_int_equal(ack[0], 0x20);
    /* byte by byte: nothing until the last byte */
    n = enc_publish(buf, sizeof(buf), 100, 'x');
    for (size_t i = 0; i < n; i++) {
        peer_send(f, buf + i, 1);
        loop_run_once(f->loop, 5);
        if (i + 1 < n)
            assert_int_equal(f->npkt, 2);
    }
    assert_int_equal(pump_until(f, &f->npkt, 3, 2000), 3);
    assert_int_equal(f->types[2], MQTT_PUBLISH);
    assert_int_equal(f->payload_len[2], 100);
    assert_int_equal(f->first_payload_byte[2], 'x');
    assert_int_equal(f->closes, 0);
    assert_string_equal(conn_peer(f->conn), "test:1");
    assert_int_equal(conn_listener_index(f->conn), 0);
    assert_null(conn_identity(f->conn));
    conn_set_name(f->conn, "dev-1");
    assert_string_equal(conn_name(f->conn), "dev-1");
    assert_int_equal(conn_pool_count(f->pool), 1);
    assert_int_equal(conn_pool_count_listener(f->pool, 0), 1);
    assert_int_equal(conn_pool_count_listener(f->pool, 3), 0);
}

/* A packet far larger than one read, in pieces, and a second one right behind it. */
static void test_large_packet(void **state)
{
    struct fixture *f = *state;
    size_t cap = 700 * 1024;
    uint8_t *buf = malloc(cap);
    size_t n1;
    size_t n2;
    uint64_t before = conn_stats()->bytes_received;

    connect_mqtt(f);
    n1 = enc_publish(buf, cap, 300 * 1024, 'L');
    n2 = enc_publish(buf + n1, cap - n1, 10, 's');
    peer_send(f, buf, n1 + n2);
    assert_int_equal(pump_until(f, &f->npkt, 2, 3000), 2);
    assert_int_equal(f->payload_len[0], 300 * 1024);
    assert_int_equal(f->first_payload_byte[0], 'L');
    assert_int_equal(f->payload_len[1], 10);
    assert_int_equal(f->first_payload_byte[1], 's');
    assert_true(conn_stats()->bytes_received - before >= n1 + n2);
    free(buf);
}

/* Log lines go to a temp file from _start to _end, which returns the text (caller frees). */
static char *log_capture_start(char *path, size_t len)
{
    int fd;

    snprintf(path, len, "/tmp/test_conn_log.XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(log_open(CAIRN_LOG_DEST_FILE, path, CAIRN_LOG_MASK_ALL), 0);
    return path;
}

static char *log_capture_end(const char *path)
{
    FILE *fp;
    char *text = calloc(1, 65536);
    size_t n;

    log_close();
    assert_non_null(text);
    fp = fopen(path, "r");
    assert_non_null(fp);
    n = fread(text, 1, 65535, fp);
    text[n] = '\0';
    fclose(fp);
    unlink(path);
    return text;
}

/* message_size_limit is the largest payload: a payload of exactly the limit is accepted. */
static void test_size_limit_payload_equal(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[512];
    size_t n;

    f->cfg.message_size_limit = 100;
    connect_mqtt(f);
    n = enc_publish(buf, sizeof(buf), 100, 'x');
    assert_true(n > 100 + 5); /* remaining length over the limit: the header is not the payload */
    peer_send(f, buf, n);
    assert_int_equal(pump_until(f, &f->npkt, 1, 2000), 1);
    assert_int_equal(f->payload_len[0], 100);
    assert_int_equal(f->closes, 0);
    /* the largest topic beside a payload of the limit is still accepted */
    {
        struct mqtt_publish p = {.qos = 1, .packet_id = 7};
        size_t cap = 70000;
        uint8_t *big = malloc(cap);
        char *topic = malloc(65535);
        uint8_t payload[100];

        assert_non_null(big);
        assert_non_null(topic);
        memset(topic, 't', 65535);
        memset(payload, 'p', sizeof(payload));
        p.topic.p = (const uint8_t *)topic;
        p.topic.len = 65535;
        p.payload.p = payload;
        p.payload.len = sizeof(payload);
        n = mqtt_encode_publish(big, cap, &p);
        assert_true(n > 0 && n <= cap);
        peer_send(f, big, n);
        assert_int_equal(pump_until(f, &f->npkt, 2, 3000), 2);
        assert_int_equal(f->payload_len[1], 100);
        assert_int_equal(f->closes, 0);
        free(big);
        free(topic);
    }
}

/*
 * One byte over: the whole packet arrives, is measured, and goes to on_oversize (the broker
 * acknowledges and drops it); the connection stays and the next packet is decoded.
 */
static void test_size_limit_payload_over(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[512];
    size_t n;

    f->cfg.message_size_limit = 100;
    connect_mqtt(f);
    n = enc_publish(buf, sizeof(buf), 101, 'x');
    n += enc_publish(buf + n, sizeof(buf) - n, 5, 'y');
    peer_send(f, buf, n);
    assert_int_equal(pump_until(f, &f->npkt, 1, 2000), 1);
    assert_int_equal(f->oversize, 1);
    assert_int_equal(f->oversize_len, 101);
    assert_string_equal(f->oversize_topic, "a/b");
    assert_int_equal(f->payload_len[0], 5); /* the one after it */
    assert_int_equal(f->closes, 0);
    assert_int_equal(conn_pool_count(f->pool), 1);
}

/*
 * A header announcing far more than the limit: answered from its head, then 2 MB of payload
 * skipped as it streams in, never buffered (the conn's buffer stays at the head's size); the
 * connection stays, and the next packet is decoded.
 */
static void test_size_limit_streamed_skip(void **state)
{
    struct fixture *f = *state;
    /* QoS 1, remaining length 2,000,000 (varint 0x80 0x89 0x7a), topic "a/b", packet id 9 */
    static const uint8_t head[] = {0x32, 0x80, 0x89, 0x7a, 0, 3, 'a', '/', 'b', 0, 9};
    static uint8_t chunk[65536];
    size_t body = 2000000 - (2 + 3 + 2);
    uint8_t next[64];
    size_t n;

    f->cfg.message_size_limit = 100;
    connect_mqtt(f);
    peer_send(f, head, 3); /* the header alone: nothing yet */
    assert_int_equal(pump_until(f, &f->oversize, 1, 200), 0);
    peer_send(f, head + 3, sizeof(head) - 3);
    assert_int_equal(pump_until(f, &f->oversize, 1, 2000), 1);
    assert_int_equal(f->oversize_len, body);
    assert_int_equal(f->oversize_pid, 9);
    memset(chunk, 'z', sizeof(chunk));
    for (size_t sent = 0; sent < body;) {
        size_t k = body - sent < sizeof(chunk) ? body - sent : sizeof(chunk);
        peer_send(f, chunk, k);
        sent += k;
        pump_until(f, &f->closes, 1, 0);
    }
    n = enc_publish(next, sizeof(next), 7, 'n');
    peer_send(f, next, n);
    assert_int_equal(pump_until(f, &f->npkt, 1, 3000), 1);
    assert_int_equal(f->payload_len[0], 7);
    assert_int_equal(f->first_payload_byte[0], 'n');
    assert_int_equal(f->closes, 0);
}

/* A remaining length whose first bytes already say too much: the head is still waited for. */
static void test_size_limit_partial_header_waits(void **state)
{
    struct fixture *f = *state;
    /* QoS 0, remaining length 268435455 (0xff 0xff 0xff 0x7f), topic "t" */
    static const uint8_t hdr[] = {0x30, 0xff, 0xff, 0xff, 0x7f, 0, 1, 't'};

    f->cfg.message_size_limit = 100;
    connect_mqtt(f);
    peer_send(f, hdr, 4);
    assert_int_equal(pump_until(f, &f->oversize, 1, 200), 0);
    assert_int_equal(f->closes, 0);
    peer_send(f, hdr + 4, sizeof(hdr) - 4);
    assert_int_equal(pump_until(f, &f->oversize, 1, 2000), 1);
    assert_int_equal(f->oversize_len, 268435455u - 3);
    assert_int_equal(f->closes, 0);
}

/* A malformed head of an oversize PUBLISH (QoS 1 without its packet id room) closes. */
static void test_size_limit_bad_head_closes(void **state)
{
    struct fixture *f = *state;
    /* QoS 1, remaining length 2,000,000, topic length 0xffff: a topic it cannot all hold yet;
     * then an invalid topic (a wildcard) */
    static const uint8_t hdr[] = {0x32, 0x80, 0x89, 0x7a, 0, 3, 'a', '/', '#', 0, 1};

    f->cfg.message_size_limit = 100;
    connect_mqtt(f);
    peer_send(f, hdr, sizeof(hdr));
    assert_int_equal(pump_until(f, &f->closes, 1, 2000), 1);
    assert_int_equal(f->oversize, 0);
    assert_true(peer_eof(f));
}

/* A CONNECT whose will payload is over the limit goes to the handler all the same: the broker
 * refuses it with CONNACK 5, as Mosquitto does (the CONNECT's size is bounded anyway). */
static void test_size_limit_will(void **state)
{
    struct fixture *f = *state;
    struct mqtt_connect c = {0};
    uint8_t will[101];
    uint8_t buf[512];
    size_t n;

    f->cfg.message_size_limit = 100;
    connect_pair(f);
    memset(will, 'w', sizeof(will));
    c.protocol_name.p = (const uint8_t *)"MQTT";
    c.protocol_name.len = 4;
    c.protocol_level = 4;
    c.clean_session = true;
    c.client_id.p = (const uint8_t *)"w";
    c.client_id.len = 1;
    c.will_flag = true;
    c.will_topic.p = (const uint8_t *)"w/t";
    c.will_topic.len = 3;
    c.will_payload.p = will;
    c.will_payload.len = 100; /* the limit: accepted */
    n = mqtt_encode_connect(buf, sizeof(buf), &c);
    assert_true(n > 0 && n <= sizeof(buf));
    peer_send(f, buf, n);
    assert_int_equal(pump_until(f, &f->npkt, 1, 2000), 1);
    assert_int_equal(f->types[0], MQTT_CONNECT);
    c.will_payload.len = 101; /* one over */
    n = mqtt_encode_connect(buf, sizeof(buf), &c);
    peer_send(f, buf, n);
    assert_int_equal(pump_until(f, &f->npkt, 2, 2000), 2);
    assert_int_equal(f->types[1], MQTT_CONNECT);
    assert_int_equal(f->closes, 0);
}

static void test_malformed_closes(void **state)
{
    struct fixture *f = *state;
    static const uint8_t junk[] = {0x00, 0x00}; /* packet type 0 */

    connect_mqtt(f);
    peer_send(f, junk, sizeof(junk));
    assert_int_equal(pump_until(f, &f->closes, 1, 2000), 1);
    assert_true(f->close_reason < 0);
    assert_int_equal(mqtt_error_class(f->close_reason), MQTT_CLASS_MALFORMED);
    assert_true(peer_eof(f));
}

/* CONNECT with protocol level 5: the broker answers CONNACK 1, then the conn closes. */
static void test_bad_protocol_level(void **state)
{
    struct fixture *f = *state;
    static const uint8_t connect5[] = {0x10, 0x0d, 0x00, 0x04, 'M',  'Q',  'T', 'T',
                                       0x05, 0x02, 0x00, 0x3c, 0x00, 0x01, 'a'};
    uint8_t ack[4];

    connect_pair(f);
    peer_send(f, connect5, sizeof(connect5));
    assert_int_equal(pump_until(f, &f->closes, 1, 2000), 1);
    assert_int_equal(f->bad_connects, 1);
    assert_int_equal(f->close_reason, -MQTT_EPROTO_LEVEL);
    assert_int_equal(peer_recv(f, ack, 4), 4);
    assert_memory_equal(ack, "\x20\x02\x00\x01", 4);
    assert_true(peer_eof(f));
}

static void test_handler_refusal_closes(void **state)
{
    struct fixture *f = *state;
    static const uint8_t ping[] = {0xc0, 0x00, 0xc0, 0x00};

    connect_mqtt(f);
    f->packet_rc = -EPROTO;
    peer_send(f, ping, sizeof(ping));
    assert_int_equal(pump_until(f, &f->closes, 1, 2000), 1);
    assert_int_equal(f->close_reason, -EPROTO);
    assert_int_equal(f->npkt, 1); /* the second packet is not handed over */
    assert_true(peer_eof(f));
}

static void test_peer_eof(void **state)
{
    struct fixture *f = *state;

    connect_pair(f);
    close(f->peer);
    f->peer = -1;
    assert_int_equal(pump_until(f, &f->closes, 1, 2000), 1);
    assert_int_equal(f->close_reason, -ECONNRESET);
    assert_int_equal(conn_pool_count(f->pool), 0);
}

/* conn_close inside on_packet: on_close waits for the safe point, once, with the reason. */
static void test_deferred_close(void **state)
{
    struct fixture *f = *state;
    static const uint8_t disconnect[] = {0xe0, 0x00, 0xc0, 0x00};

    connect_mqtt(f);
    f->close_on_packet = true;
    peer_send(f, disconnect, sizeof(disconnect));
    assert_int_equal(pump_until(f, &f->closes, 1, 2000), 1);
    assert_int_equal(f->close_reason, 0);
    assert_int_equal(f->npkt, 1); /* bytes after the close are ignored */
    pump_for(f, 30);
    assert_int_equal(f->closes, 1);
    assert_true(peer_eof(f));
}

static void test_connect_timeout(void **state)
{
    struct fixture *f = *state;
    uint64_t start = timer_clock_ms();

    f->cfg.connect_timeout = 1;
    connect_pair(f);
    pump_for(f, 500);
    assert_int_equal(f->closes, 0);
    assert_int_equal(pump_until(f, &f->closes, 1, 3000), 1);
    assert_int_equal(f->close_reason, -ETIMEDOUT);
    assert_true(timer_clock_ms() - start >= 1000);
}

/* keepalive 1 s: a PINGREQ at 1 s keeps it open past 1.5 s; silence after it closes it. */
static void test_keepalive(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[64];
    uint8_t ack[4];
    static const uint8_t ping[] = {0xc0, 0x00};
    uint64_t ping_at;

    f->cfg.connect_timeout = 1; /* must not fire after CONNECT */
    connect_pair(f);
    peer_send(f, buf, enc_connect(buf, sizeof(buf), 1));
    assert_int_equal(peer_recv(f, ack, 4), 4);
    pump_for(f, 1000);
    assert_int_equal(f->closes, 0);
    peer_send(f, ping, sizeof(ping));
    ping_at = timer_clock_ms();
    pump_for(f, 1000); /* 2 s after CONNECT, 1 s after the ping */
    assert_int_equal(f->closes, 0);
    assert_int_equal(pump_until(f, &f->closes, 1, 3000), 1);
    assert_int_equal(f->close_reason, -ETIMEDOUT);
    assert_true(timer_clock_ms() - ping_at >= 1500);
}

/* Many small writes in one iteration leave together, in order; stats count them. */
static void test_gathered_output(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[64];
    uint8_t got[4 + 3000];
    uint64_t before = conn_stats()->bytes_sent;

    connect_pair(f);
    peer_send(f, buf, enc_connect(buf, sizeof(buf), 0));
    assert_int_equal(pump_until(f, &f->npkt, 1, 2000), 1);
    for (int i = 0; i < 1000; i++) {
        uint8_t three[3] = {(uint8_t)(i >> 8), (uint8_t)i, 0xee};
        assert_int_equal(conn_write(f->conn, three, 3), 0);
    }
    assert_int_equal(conn_out_bytes(f->conn), 3000);
    assert_int_equal(peer_recv(f, got, sizeof(got)), sizeof(got));
    assert_int_equal(got[0], 0x20);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(got[4 + 3 * i], (uint8_t)(i >> 8));
        assert_int_equal(got[4 + 3 * i + 1], (uint8_t)i);
        assert_int_equal(got[4 + 3 * i + 2], 0xee);
    }
    assert_int_equal(conn_out_bytes(f->conn), 0);
    assert_true(conn_stats()->bytes_sent - before >= sizeof(got));
}

static void test_write_ref(void **state)
{
    struct fixture *f = *state;
    static const uint8_t shared[] = "shared-body";
    uint8_t buf[64];
    uint8_t got[4 + 3 * 11];

    connect_pair(f);
    peer_send(f, buf, enc_connect(buf, sizeof(buf), 0));
    assert_int_equal(pump_until(f, &f->npkt, 1, 2000), 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(conn_write_ref(f->conn, shared, 11, release_cb, f), 0);
    assert_int_equal(f->release_count, 0);
    assert_int_equal(peer_recv(f, got, sizeof(got)), sizeof(got));
    assert_memory_equal(got + 4, "shared-bodyshared-bodyshared-body", 33);
    assert_int_equal(pump_until(f, &f->release_count, 3, 1000), 3);
    /* a closing conn refuses and releases at once */
    conn_close(f->conn, 0);
    assert_int_equal(conn_write_ref(f->conn, shared, 11, release_cb, f), -EPIPE);
    assert_int_equal(f->release_count, 4);
    assert_int_equal(conn_write(f->conn, "x", 1), -EPIPE);
    assert_true(conn_closing(f->conn));
}

/* References still queued when the conn dies are released exactly once. */
static void test_write_ref_released_on_death(void **state)
{
    struct fixture *f = *state;
    static uint8_t big[256 * 1024];
    uint8_t buf[64];

    connect_pair(f);
    peer_send(f, buf, enc_connect(buf, sizeof(buf), 0));
    assert_int_equal(pump_until(f, &f->npkt, 1, 2000), 1);
    for (int i = 0; i < 16; i++)
        assert_int_equal(conn_write_ref(f->conn, big, sizeof(big), release_cb, f), 0);
    pump_for(f, 50); /* the peer reads nothing: most stays queued */
    assert_true(f->release_count < 16);
    close(f->peer); /* the write fails: the conn dies with references queued */
    f->peer = -1;
    assert_int_equal(pump_until(f, &f->closes, 1, 2000), 1);
    assert_int_equal(pump_until(f, &f->release_count, 16, 3000), 16);
    pump_for(f, 20);
    assert_int_equal(f->release_count, 16);
}

/* Past the high-water mark the queue grows only as the sender decides; draining it below the
 * low-water mark calls on_writable. */
static void test_water_marks(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[64];
    static uint8_t sink[64 * 1024];
    size_t total = 2 * 1024 * 1024;
    size_t got = 0;
    uint64_t end;

    f->flood_on_connect = total;
    connect_pair(f);
    peer_send(f, buf, enc_connect(buf, sizeof(buf), 0));
    assert_int_equal(pump_until(f, &f->npkt, 1, 2000), 1);
    pump_for(f, 50);
    assert_true(conn_out_bytes(f->conn) >= CONN_OUT_HIGH_WATER); /* the peer is not reading */
    assert_int_equal(f->writables, 0);
    end = timer_clock_ms() + 5000;
    while (got < total + 4 && timer_clock_ms() < end) {
        ssize_t n = read(f->peer, sink, sizeof(sink));
        if (n > 0)
            got += (size_t)n;
        loop_run_once(f->loop, 5);
    }
    assert_int_equal(got, total + 4);
    assert_int_equal(f->writables, 1);
    assert_int_equal(conn_out_bytes(f->conn), 0);
}

/* A conn closed with bytes queued: on_close at once, the bytes still reach the peer, then EOF. */
static void test_linger(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[64];
    static uint8_t sink[64 * 1024];
    size_t total = 1024 * 1024;
    size_t got = 0;
    uint64_t end;
    bool eof = false;

    f->flood_on_connect = total;
    f->close_after_flood = true;
    connect_pair(f);
    peer_send(f, buf, enc_connect(buf, sizeof(buf), 0));
    assert_int_equal(pump_until(f, &f->closes, 1, 2000), 1);
    assert_int_equal(f->close_reason, 0);
    assert_int_equal(conn_pool_count(f->pool), 0);
    assert_int_equal(conn_pool_lingering(f->pool), 1);
    end = timer_clock_ms() + 5000;
    while (!eof && timer_clock_ms() < end) {
        ssize_t n = read(f->peer, sink, sizeof(sink));
        if (n > 0)
            got += (size_t)n;
        else if (n == 0)
            eof = true;
        else
            loop_run_once(f->loop, 5);
    }
    assert_true(eof);
    assert_int_equal(got, total + 4);
    assert_int_equal(conn_pool_lingering(f->pool), 0);
}

/* With CONN_OUT_READ_PAUSE bytes waiting, input is left unread until the peer catches up. */
static void test_read_pause(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[64];
    static uint8_t sink[256 * 1024];
    static const uint8_t ping[] = {0xc0, 0x00};
    size_t total = CONN_OUT_READ_PAUSE + 1024 * 1024;
    size_t got = 0;
    uint64_t end;

    f->flood_on_connect = total;
    connect_pair(f);
    peer_send(f, buf, enc_connect(buf, sizeof(buf), 0));
    assert_int_equal(pump_until(f, &f->npkt, 1, 2000), 1);
    pump_for(f, 50);
    assert_true(conn_out_bytes(f->conn) >= CONN_OUT_READ_PAUSE);
    peer_send(f, ping, sizeof(ping));
    pump_for(f, 100);
    assert_int_equal(f->npkt, 1); /* not read while so much output waits */
    end = timer_clock_ms() + 10000;
    while (f->npkt < 2 && timer_clock_ms() < end) {
        ssize_t n = read(f->peer, sink, sizeof(sink));
        if (n > 0)
            got += (size_t)n;
        loop_run_once(f->loop, 5);
    }
    assert_int_equal(f->npkt, 2); /* read once the queue fell below the mark */
    assert_int_equal(f->types[1], MQTT_PINGREQ);
    assert_true(got + conn_out_bytes(f->conn) + CONN_OUT_READ_PAUSE >= total);
    assert_int_equal(f->closes, 0);
}

/*
 * conn_pause_input in on_packet: the packets behind it wait (also those read later), keepalive
 * does not expire, and conn_resume_input hands them over in order, at the next timer run.
 */
static void test_pause_resume(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[64];
    static const uint8_t pings[] = {0xc0, 0x00, 0xc0, 0x00, 0xc0, 0x00};
    size_t n;

    connect_pair(f);
    n = enc_connect(buf, sizeof(buf), 1); /* keepalive 1 s: 1.5 s without a packet closes */
    peer_send(f, buf, n);
    assert_int_equal(pump_until(f, &f->npkt, 1, 2000), 1);
    f->pause_on_packet = true;
    peer_send(f, pings, sizeof(pings));
    assert_int_equal(pump_until(f, &f->npkt, 2, 2000), 2);
    peer_send(f, buf, enc_publish(buf, sizeof(buf), 5, 'p'));
    pump_for(f, 1700);
    assert_int_equal(f->npkt, 2);
    assert_int_equal(f->closes, 0);
    conn_resume_input(f->conn);
    assert_int_equal(f->npkt, 2); /* not within the call */
    assert_int_equal(pump_until(f, &f->npkt, 5, 2000), 5);
    assert_int_equal(f->types[2], MQTT_PINGREQ);
    assert_int_equal(f->types[3], MQTT_PINGREQ);
    assert_int_equal(f->types[4], MQTT_PUBLISH);
    assert_int_equal(f->first_payload_byte[4], 'p');
    conn_resume_input(f->conn); /* not paused: nothing */
    pump_for(f, 20);
    assert_int_equal(f->npkt, 5);
    assert_int_equal(f->closes, 0);
}

/* Before CONNECT: any other first byte closes at once, whatever the packet announces. */
static void test_first_packet_not_connect(void **state)
{
    struct fixture *f = *state;
    static const uint8_t publish[] = {0x30}; /* its remaining length not even sent */
    char path[64];
    char *log;

    f->cfg.connection_messages = true;
    log_capture_start(path, sizeof(path));
    connect_pair(f);
    peer_send(f, publish, sizeof(publish));
    assert_int_equal(pump_until(f, &f->closes, 1, 2000), 1);
    assert_int_equal(f->close_reason, -EPROTO);
    assert_int_equal(f->npkt, 0);
    assert_true(peer_eof(f));
    log = log_capture_end(path);
    assert_non_null(strstr(
        log, "client test:1 - closed: protocol error: first packet is not CONNECT (type 3)"));
    free(log);
}

/* A CONNECT announcing more than 64 KiB + the will payload allowed closes from its header. */
static void test_connect_too_large(void **state)
{
    struct fixture *f = *state;
    static const uint8_t big[] = {0x10, 0xff, 0xff, 0xff, 0x7f}; /* 268,435,455 bytes */
    static const uint8_t just_over[] = {0x10, 0x80, 0x80, 0x08}; /* 131,072 */
    char path[64];
    char *log;

    f->cfg.connection_messages = true;
    log_capture_start(path, sizeof(path));
    connect_pair(f);
    peer_send(f, big, sizeof(big));
    assert_int_equal(pump_until(f, &f->closes, 1, 2000), 1);
    assert_int_equal(f->close_reason, -MQTT_ETOOLARGE);
    assert_true(peer_eof(f));
    close(f->peer);
    f->peer = -1;
    f->opens = 0;
    connect_pair(f);
    peer_send(f, just_over, sizeof(just_over));
    assert_int_equal(pump_until(f, &f->closes, 2, 2000), 2);
    assert_int_equal(f->close_reason, -MQTT_ETOOLARGE);
    log = log_capture_end(path);
    assert_non_null(strstr(log, "closed: CONNECT announcing 268435455 bytes, more than the 131071 "
                                "a CONNECT may have"));
    assert_non_null(strstr(log, "closed: CONNECT announcing 131072 bytes"));
    free(log);
}

/* A partial CONNECT of connect_memory_limit bytes: a new connection is refused; one byte more
 * and the holder is closed; once it is gone connections are accepted again. */
static void test_connect_memory_limit(void **state)
{
    struct fixture *f = *state;
    enum { LIMIT = 20000 };
    uint8_t *buf = calloc(1, LIMIT + 16);
    int sv[2];
    char path[64];
    char *log;

    assert_non_null(buf);
    f->cfg.connect_memory_limit = LIMIT;
    log_capture_start(path, sizeof(path));
    connect_pair(f);
    /* CONNECT announcing 30,000 bytes (3-byte remaining length), LIMIT bytes of it sent */
    buf[0] = 0x10;
    buf[1] = 0x80 | (30000 & 0x7f);
    buf[2] = 0x80 | ((30000 >> 7) & 0x7f);
    buf[3] = (uint8_t)(30000 >> 14);
    peer_send(f, buf, LIMIT);
    pump_for(f, 50);
    assert_int_equal(f->closes, 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(conn_pool_add(f->pool, transport_tcp_new(sv[0]), 0, "test:2"), -ENOBUFS);
    assert_int_equal(f->opens, 1);
    close(sv[1]);
    peer_send(f, buf + 4, 1); /* one byte more */
    assert_int_equal(pump_until(f, &f->closes, 1, 2000), 1);
    assert_int_equal(f->close_reason, -ENOBUFS);
    assert_true(peer_eof(f));
    assert_int_equal(conn_pool_count(f->pool), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(conn_pool_add(f->pool, transport_tcp_new(sv[0]), 0, "test:3"), 0);
    close(sv[1]);
    log = log_capture_end(path);
    assert_non_null(strstr(log, "client test:2 refused: connections without CONNECT hold 20000 "
                                "bytes of input, connect_memory_limit 20000"));
    free(log);
    free(buf);
}

static void test_close_all(void **state)
{
    struct fixture *f = *state;
    int sv[2];

    connect_pair(f);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(conn_pool_add(f->pool, transport_tcp_new(sv[0]), 1, "test:2"), 0);
    assert_int_equal(conn_pool_count(f->pool), 2);
    assert_int_equal(conn_pool_count_listener(f->pool, 1), 1);
    conn_pool_close_all(f->pool, 0);
    assert_true(conn_pool_pending(f->pool));
    conn_pool_reap(f->pool);
    assert_int_equal(f->closes, 2);
    assert_int_equal(f->close_reason, 0);
    assert_int_equal(conn_pool_count(f->pool), 0);
    close(sv[1]);
}

/* One close line per conn; its reason says who ended it: the peer, or the broker shutting down. */
static void test_close_log_lines(void **state)
{
    struct fixture *f = *state;
    int sv[2][2];
    char path[64];
    char *log;

    f->cfg.connection_messages = true;
    log_capture_start(path, sizeof(path));
    connect_pair(f);
    conn_set_name(f->conn, "eof-1");
    close(f->peer);
    f->peer = -1;
    assert_int_equal(pump_until(f, &f->closes, 1, 2000), 1);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv[i]), 0);
        assert_int_equal(conn_pool_add(f->pool, transport_tcp_new(sv[i][0]), 0, "test:9"), 0);
        conn_set_name(f->conn, i ? "down-1" : "old-1");
    }
    conn_pool_close_all(f->pool, 0);
    pump_until(f, &f->closes, 3, 2000);
    assert_int_equal(f->closes, 3);
    close(sv[0][1]);
    close(sv[1][1]);
    log = log_capture_end(path);
    assert_non_null(strstr(log, "client test:1 eof-1 closed: connection closed by peer\n"));
    assert_non_null(strstr(log, "client test:9 down-1 closed: broker shutting down\n"));
    assert_non_null(strstr(log, "client test:9 old-1 closed: broker shutting down\n"));
    {
        int lines = 0;

        for (const char *at = log; (at = strstr(at, " closed: ")) != NULL; at++)
            lines++;
        assert_int_equal(lines, 3);
    }
    free(log);
}

/* -ECONNRESET from the broker (a takeover) is not the peer going away. */
static void test_close_log_takeover(void **state)
{
    struct fixture *f = *state;
    char path[64];
    char *log;

    f->cfg.connection_messages = true;
    log_capture_start(path, sizeof(path));
    connect_pair(f);
    conn_set_name(f->conn, "dev-7");
    conn_close(f->conn, -ECONNRESET);
    assert_int_equal(pump_until(f, &f->closes, 1, 2000), 1);
    log = log_capture_end(path);
    assert_non_null(strstr(
        log, "client test:1 dev-7 closed: taken over by a new connection with the same client id"));
    assert_null(strstr(log, "closed by peer"));
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_whole_and_split_packets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_packet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit_payload_equal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit_payload_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit_streamed_skip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit_partial_header_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit_bad_head_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit_will, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_protocol_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_refusal_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gathered_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_ref, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_ref_released_on_death, setup, teardown),
        cmocka_unit_test_setup_teardown(test_water_marks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_pause, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_packet_not_connect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_memory_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_log_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_log_takeover, setup, teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    log_open(0, NULL, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
