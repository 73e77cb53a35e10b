/*
 * test_broker.c — the MQTT logic driven through real conns over socketpairs, a real loop and
 * a real store in a temp directory; the test plays the clients from the same thread, running
 * loop iterations until what it expects arrives (or a deadline passes).
 *
 * Covers what only the broker decides: acks after durable (a failed commit withholds the
 * PUBACK and closes), QoS 2 exactly once for a resending publisher, first packet not CONNECT
 * and a second CONNECT, CONNACK codes, session present, overlapping subscriptions delivered
 * once, retained on subscribe, a slow subscriber bounded, a restart restoring sessions,
 * subscriptions and retained messages, and a store from before session owners.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker.h"
#include "client.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "loop.h"
#include "persist_internal.h"
#include "transport.h"

#define DEADLINE_MS 3000

struct fx {
    char dir[64];
    struct config cfg;
    struct loop *loop;
    struct broker *b;
    struct conn_pool *pool;
};

struct peer {
    int fd;
    uint8_t in[1 << 16];
    size_t len;
    bool eof;
};

static int on_open(void *arg, struct conn *c)
{
    return broker_on_open(arg, c);
}
static int on_packet(void *arg, struct conn *c, const struct mqtt_packet *p)
{
    return broker_on_packet(arg, c, p);
}
static int on_bad(void *arg, struct conn *c, int err)
{
    return broker_on_bad_connect(arg, c, err);
}
static void on_close(void *arg, struct conn *c, int reason)
{
    broker_on_close(arg, c, reason);
}
static void on_writable(void *arg, struct conn *c)
{
    broker_on_writable(arg, c);
}

static void iteration_end(void *arg)
{
    struct fx *f = arg;

    for (int round = 0; round < 4; round++) {
        conn_pool_reap(f->pool);
        broker_on_iteration_end(f->b);
        conn_pool_flush(f->pool);
        if (!conn_pool_pending(f->pool))
            break;
    }
}

static void fx_start(struct fx *f)
{
    struct conn_handler h = {0};
    char err[256];

    f->loop = loop_new(err, sizeof(err));
    assert_non_null(f->loop);
    f->b = broker_new(&f->cfg, f->loop, err, sizeof(err));
    if (!f->b)
        fail_msg("broker_new: %s", err);
    h.arg = f->b;
    h.on_open = on_open;
    h.on_packet = on_packet;
    h.on_bad_connect = on_bad;
    h.on_close = on_close;
    h.on_writable = on_writable;
    f->pool = conn_pool_new(f->loop, &f->cfg, &h);
    assert_non_null(f->pool);
    loop_set_iteration_end(f->loop, iteration_end, f);
}

static void fx_stop(struct fx *f)
{
    broker_shutdown(f->b);
    conn_pool_close_all(f->pool, 0);
    iteration_end(f);
    conn_pool_free(f->pool);
    broker_free(f->b);
    loop_free(f->loop);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-test-broker-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    config_defaults(&f->cfg);
    assert_int_equal(config_add_default_listener(&f->cfg), 0);
    free(f->cfg.persistence_location);
    f->cfg.persistence_location = strdup(f->dir);
    f->cfg.sys_interval = 0;
    f->cfg.connection_messages = false;
    fx_start(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    fx_stop(f);
    config_cleanup(&f->cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* ---- the client side ---------------------------------------------------------------------- */

static struct peer *peer_new(struct fx *f)
{
    struct peer *p = calloc(1, sizeof(*p));
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(conn_pool_add(f->pool, transport_tcp_new(sv[0]), 0, "test:1"), 0);
    p->fd = sv[1];
    return p;
}

static void peer_free(struct fx *f, struct peer *p)
{
    close(p->fd);
    for (int i = 0; i < 5; i++)
        loop_run_once(f->loop, 1);
    free(p);
}

/* Write all of buf, running the loop while the socket is full. */
static void peer_send(struct fx *f, struct peer *p, const uint8_t *buf, size_t n)
{
    size_t off = 0;

    for (int tries = 0; off < n && tries < DEADLINE_MS; tries++) {
        ssize_t w = write(p->fd, buf + off, n - off);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        assert_int_equal(errno, EAGAIN);
        loop_run_once(f->loop, 1);
    }
    assert_int_equal(off, n);
}

/* Run the loop until a whole packet is in; false on EOF or deadline. out's views live until
 * the next receive. */
static bool peer_recv(struct fx *f, struct peer *p, struct mqtt_packet *out, int ms)
{
    static uint8_t last[1 << 16];
    for (int waited = 0; waited <= ms;) {
        int n = p->len ? mqtt_decode(p->in, p->len, 0, out) : -MQTT_EPARTIAL;
        if (n > 0) {
            memcpy(last, p->in, (size_t)n);
            mqtt_decode(last, (size_t)n, 0, out);
            memmove(p->in, p->in + n, p->len - (size_t)n);
            p->len -= (size_t)n;
            return true;
        }
        assert_int_equal(n, -MQTT_EPARTIAL);
        ssize_t r = read(p->fd, p->in + p->len, sizeof(p->in) - p->len);
        if (r > 0) {
            p->len += (size_t)r;
            continue;
        }
        if (r == 0) {
            p->eof = true;
            return false;
        }
        loop_run_once(f->loop, 5);
        waited += 5;
    }
    return false;
}

/* Run the loop until the broker closes p (EOF). */
static bool peer_wait_eof(struct fx *f, struct peer *p)
{
    struct mqtt_packet pk;
    while (peer_recv(f, p, &pk, DEADLINE_MS))
        ;
    return p->eof;
}

static void peer_expect(struct fx *f, struct peer *p, enum mqtt_type type, struct mqtt_packet *out)
{
    struct mqtt_packet pk;
    if (!peer_recv(f, p, &pk, DEADLINE_MS))
        fail_msg("expected %s, got nothing (eof %d)", mqtt_type_name(type), p->eof);
    if (pk.type != type)
        fail_msg("expected %s, got %s", mqtt_type_name(type), mqtt_type_name(pk.type));
    if (out)
        *out = pk;
}

/* CONNECT as user (NULL: none; there is no password file) and return the CONNACK code. */
static int peer_connect_as(struct fx *f, struct peer *p, const char *id, bool clean,
                           const char *user, bool *present)
{
    struct mqtt_connect c = {0};
    struct mqtt_packet ack;
    uint8_t buf[256];
    size_t n;

    c.protocol_name.p = (const uint8_t *)"MQTT";
    c.protocol_name.len = 4;
    c.protocol_level = 4;
    c.clean_session = clean;
    c.keepalive = 60;
    c.client_id.p = (const uint8_t *)id;
    c.client_id.len = strlen(id);
    if (user) {
        c.has_username = true;
        c.username.p = (const uint8_t *)user;
        c.username.len = strlen(user);
    }
    n = mqtt_encode_connect(buf, sizeof(buf), &c);
    peer_send(f, p, buf, n);
    peer_expect(f, p, MQTT_CONNACK, &ack);
    if (present)
        *present = ack.u.connack.session_present;
    return ack.u.connack.return_code;
}

static int peer_connect(struct fx *f, struct peer *p, const char *id, bool clean, bool *present)
{
    return peer_connect_as(f, p, id, clean, NULL, present);
}

static void peer_publish(struct fx *f, struct peer *p, const char *topic, const char *payload,
                         uint8_t qos, bool retain, uint16_t pid, bool dup)
{
    struct mqtt_publish pb = {.qos = qos, .retain = retain, .dup = dup, .packet_id = pid};
    static uint8_t buf[8192];
    size_t n;

    pb.topic.p = (const uint8_t *)topic;
    pb.topic.len = strlen(topic);
    pb.payload.p = (const uint8_t *)payload;
    pb.payload.len = strlen(payload);
    n = mqtt_encode_publish(buf, sizeof(buf), &pb);
    assert_true(n > 0 && n <= sizeof(buf));
    peer_send(f, p, buf, n);
}

static void peer_ack(struct fx *f, struct peer *p, enum mqtt_type type, uint16_t pid)
{
    uint8_t buf[4];
    peer_send(f, p, buf, mqtt_encode_ack(buf, sizeof(buf), type, pid));
}

static uint8_t peer_subscribe(struct fx *f, struct peer *p, const char *filter, uint8_t qos,
                              uint16_t pid)
{
    struct mqtt_sub s = {{(const uint8_t *)filter, strlen(filter)}, qos};
    struct mqtt_packet ack;
    uint8_t buf[256];

    peer_send(f, p, buf, mqtt_encode_subscribe(buf, sizeof(buf), pid, &s, 1));
    peer_expect(f, p, MQTT_SUBACK, &ack);
    assert_int_equal(ack.u.suback.packet_id, pid);
    return ack.u.suback.codes.p[0];
}

/* The next packet is a PUBLISH of payload at qos: acknowledged (QoS 2 all the way). */
static void peer_expect_publish(struct fx *f, struct peer *p, const char *payload, uint8_t qos,
                                bool retain)
{
    struct mqtt_packet pk;
    uint16_t pid;

    peer_expect(f, p, MQTT_PUBLISH, &pk);
    assert_int_equal(pk.u.publish.qos, qos);
    assert_int_equal(pk.u.publish.retain, retain);
    assert_int_equal(pk.u.publish.payload.len, strlen(payload));
    assert_memory_equal(pk.u.publish.payload.p, payload, strlen(payload));
    pid = pk.u.publish.packet_id;
    if (qos == 1)
        peer_ack(f, p, MQTT_PUBACK, pid);
    if (qos == 2) {
        peer_ack(f, p, MQTT_PUBREC, pid);
        peer_expect(f, p, MQTT_PUBREL, &pk);
        assert_int_equal(pk.u.ack.packet_id, pid);
        peer_ack(f, p, MQTT_PUBCOMP, pid);
    }
}

/* Nothing more arrives while the loop runs for ms. */
static void peer_expect_nothing(struct fx *f, struct peer *p, int ms)
{
    struct mqtt_packet pk;
    if (peer_recv(f, p, &pk, ms))
        fail_msg("unexpected %s", mqtt_type_name(pk.type));
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_ack_after_durable(void **state)
{
    struct fx *f = *state;
    struct peer *p = peer_new(f);
    struct mqtt_packet pk;

    /* an offline persistent subscriber: the message must be stored before the PUBACK */
    assert_int_equal(peer_connect(f, p, "sub", false, NULL), 0);
    assert_int_equal(peer_subscribe(f, p, "t", 1, 1), 1);
    peer_free(f, p);
    p = peer_new(f);
    assert_int_equal(peer_connect(f, p, "pub", true, NULL), 0);
    persist__fail_commits(f->b->store, 1);
    peer_publish(f, p, "t", "lost?", 1, false, 7, false);
    /* the write failed: no PUBACK, the connection is closed, the broker carries on */
    assert_true(peer_wait_eof(f, p));
    assert_int_equal(broker_stats(f->b)->commit_failures, 1);
    peer_free(f, p);
    p = peer_new(f);
    assert_int_equal(peer_connect(f, p, "pub", true, NULL), 0);
    peer_publish(f, p, "t", "again", 1, false, 7, true);
    peer_expect(f, p, MQTT_PUBACK, &pk);
    assert_int_equal(pk.u.ack.packet_id, 7);
    peer_free(f, p);
}

static void test_qos2_failed_commit_then_resend(void **state)
{
    struct fx *f = *state;
    struct peer *p = peer_new(f);
    struct mqtt_packet pk;

    assert_int_equal(peer_connect(f, p, "sub", false, NULL), 0);
    assert_int_equal(peer_subscribe(f, p, "t", 2, 1), 2);
    peer_free(f, p);
    p = peer_new(f);
    assert_int_equal(peer_connect(f, p, "pub", false, NULL), 0);
    persist__fail_commits(f->b->store, 1);
    peer_publish(f, p, "t", "kept", 2, false, 5, false);
    assert_true(peer_wait_eof(f, p)); /* no PUBREC: nothing was stored */
    peer_free(f, p);
    /* the resend is routed and stored again: its PUBREC then means what it says */
    p = peer_new(f);
    assert_int_equal(peer_connect(f, p, "pub", false, NULL), 0);
    peer_publish(f, p, "t", "kept", 2, false, 5, true);
    peer_expect(f, p, MQTT_PUBREC, &pk);
    peer_ack(f, p, MQTT_PUBREL, 5);
    peer_expect(f, p, MQTT_PUBCOMP, &pk);
    peer_free(f, p);
    fx_stop(f);
    fx_start(f);
    p = peer_new(f);
    assert_int_equal(peer_connect(f, p, "sub", false, NULL), 0);
    peer_expect_publish(f, p, "kept", 2, false);
    peer_expect_nothing(f, p, 100);
    peer_free(f, p);
}

static void test_qos2_exactly_once(void **state)
{
    struct fx *f = *state;
    struct peer *sub = peer_new(f), *pub = peer_new(f);
    struct mqtt_packet pk;

    assert_int_equal(peer_connect(f, sub, "sub", false, NULL), 0);
    assert_int_equal(peer_subscribe(f, sub, "q/#", 2, 1), 2);
    assert_int_equal(peer_connect(f, pub, "pub", false, NULL), 0);
    peer_publish(f, pub, "q/2", "once", 2, false, 9, false);
    peer_expect(f, pub, MQTT_PUBREC, &pk);
    /* the publisher missed the PUBREC and resends with DUP: not delivered again */
    peer_publish(f, pub, "q/2", "once", 2, false, 9, true);
    peer_expect(f, pub, MQTT_PUBREC, &pk);
    assert_int_equal(pk.u.ack.packet_id, 9);
    peer_ack(f, pub, MQTT_PUBREL, 9);
    peer_expect(f, pub, MQTT_PUBCOMP, &pk);
    /* a repeated PUBREL still gets PUBCOMP [MQTT-4.3.3-2] */
    peer_ack(f, pub, MQTT_PUBREL, 9);
    peer_expect(f, pub, MQTT_PUBCOMP, &pk);
    peer_expect_publish(f, sub, "once", 2, false);
    peer_expect_nothing(f, sub, 100);
    peer_free(f, pub);
    peer_free(f, sub);
}

static void test_protocol_order(void **state)
{
    struct fx *f = *state;
    struct peer *p = peer_new(f);
    uint8_t ping[2] = {0xc0, 0x00};

    /* [MQTT-3.1.0-1] the first packet must be CONNECT */
    peer_send(f, p, ping, 2);
    assert_true(peer_wait_eof(f, p));
    peer_free(f, p);
    /* [MQTT-3.1.0-2] a second CONNECT is a protocol violation */
    p = peer_new(f);
    assert_int_equal(peer_connect(f, p, "twice", true, NULL), 0);
    {
        struct mqtt_connect c = {0};
        uint8_t buf[64];
        c.protocol_name.p = (const uint8_t *)"MQTT";
        c.protocol_name.len = 4;
        c.protocol_level = 4;
        c.clean_session = true;
        c.client_id.p = (const uint8_t *)"twice";
        c.client_id.len = 5;
        peer_send(f, p, buf, mqtt_encode_connect(buf, sizeof(buf), &c));
    }
    assert_true(peer_wait_eof(f, p));
    peer_free(f, p);
}

static void test_connack_codes_and_session_present(void **state)
{
    struct fx *f = *state;
    struct peer *p = peer_new(f);
    bool present = true;

    /* empty id with clean session 0: identifier rejected [MQTT-3.1.3-8] */
    assert_int_equal(peer_connect(f, p, "", false, NULL), MQTT_CONNACK_ID_REJECTED);
    assert_true(peer_wait_eof(f, p));
    peer_free(f, p);
    /* empty id with clean session 1: a generated id */
    p = peer_new(f);
    assert_int_equal(peer_connect(f, p, "", true, &present), 0);
    assert_false(present);
    peer_free(f, p);
    /* persistent session: present on the second connect, not after a clean one */
    p = peer_new(f);
    assert_int_equal(peer_connect(f, p, "keep", false, &present), 0);
    assert_false(present);
    peer_free(f, p);
    p = peer_new(f);
    assert_int_equal(peer_connect(f, p, "keep", false, &present), 0);
    assert_true(present);
    peer_free(f, p);
    p = peer_new(f);
    assert_int_equal(peer_connect(f, p, "keep", true, &present), 0);
    assert_false(present);
    peer_free(f, p);
    /* anonymous refused: not authorised */
    fx_stop(f);
    f->cfg.allow_anonymous = false;
    fx_start(f);
    p = peer_new(f);
    assert_int_equal(peer_connect(f, p, "anon", true, NULL), MQTT_CONNACK_NOT_AUTHORIZED);
    peer_free(f, p);
}

static void test_overlap_and_retained(void **state)
{
    struct fx *f = *state;
    struct peer *sub = peer_new(f), *pub = peer_new(f);
    struct mqtt_packet pk;

    assert_int_equal(peer_connect(f, pub, "pub", true, NULL), 0);
    peer_publish(f, pub, "r/a", "kept", 1, true, 1, false);
    peer_expect(f, pub, MQTT_PUBACK, &pk);
    assert_int_equal(broker_retained_count(f->b), 1);
    assert_int_equal(peer_connect(f, sub, "sub", true, NULL), 0);
    assert_int_equal(peer_subscribe(f, sub, "r/#", 0, 1), 0);
    peer_expect_publish(f, sub, "kept", 0, true); /* RETAIN=1 to a new subscription */
    assert_int_equal(peer_subscribe(f, sub, "r/+", 2, 2), 2);
    peer_expect_publish(f, sub, "kept", 1, true); /* min(published 1, granted 2) */
    /* forwarded to existing subscribers with RETAIN=0, once, at the highest QoS */
    peer_publish(f, pub, "r/a", "new", 2, true, 2, false);
    peer_expect(f, pub, MQTT_PUBREC, &pk);
    peer_ack(f, pub, MQTT_PUBREL, 2);
    peer_expect(f, pub, MQTT_PUBCOMP, &pk);
    peer_expect_publish(f, sub, "new", 2, false);
    peer_expect_nothing(f, sub, 100);
    /* an empty retained payload clears it */
    peer_publish(f, pub, "r/a", "", 0, true, 0, false);
    peer_expect_publish(f, sub, "", 0, false);
    assert_int_equal(broker_retained_count(f->b), 0);
    peer_free(f, pub);
    peer_free(f, sub);
}

static void test_slow_subscriber_bounded(void **state)
{
    struct fx *f = *state;
    struct peer *sub = peer_new(f), *pub = peer_new(f);
    static char big[4000];
    struct mqtt_packet pk;

    memset(big, 'x', sizeof(big) - 1);
    assert_int_equal(peer_connect(f, sub, "slow", false, NULL), 0);
    assert_int_equal(peer_subscribe(f, sub, "s", 1, 1), 1);
    assert_int_equal(peer_connect(f, pub, "fast", true, NULL), 0);
    /* the subscriber never reads: 20 MB of QoS 0 and 3,000 QoS 1 messages */
    for (int i = 0; i < 5000; i++) {
        peer_publish(f, pub, "s", big, 0, false, 0, false);
        if (i % 16 == 0)
            loop_run_once(f->loop, 0);
    }
    for (int i = 0; i < 3000; i++) {
        peer_publish(f, pub, "s", "q1", 1, false, (uint16_t)(i + 1), false);
        if (i % 16 == 0)
            loop_run_once(f->loop, 0);
        while (peer_recv(f, pub, &pk, 0))
            ;
    }
    for (int i = 0; i < 50; i++)
        loop_run_once(f->loop, 1);
    {
        struct session *s =
            session_find(f->b->sessions, (struct mqtt_str){(const uint8_t *)"slow", 4});
        assert_non_null(s);
        assert_true(broker_stats(f->b)->messages_dropped > 0);
        /* QoS 1 waits within max_queued_messages; its output is bounded */
        assert_true(s->q_count <= f->cfg.max_queued_messages);
        assert_true(session_inflight(s) <= f->cfg.max_inflight_messages);
        assert_true(conn_out_bytes(((struct client *)s->owner)->conn) < 16u * 1024 * 1024);
    }
    peer_free(f, pub);
    peer_free(f, sub);
}

static void test_restart_restores(void **state)
{
    struct fx *f = *state;
    struct peer *sub = peer_new(f), *pub = peer_new(f);
    struct mqtt_packet pk;
    bool present = false;

    assert_int_equal(peer_connect(f, sub, "dur", false, NULL), 0);
    assert_int_equal(peer_subscribe(f, sub, "d/#", 2, 1), 2);
    peer_free(f, sub);
    assert_int_equal(peer_connect(f, pub, "pub2", false, NULL), 0);
    peer_publish(f, pub, "d/1", "one", 1, false, 1, false);
    peer_expect(f, pub, MQTT_PUBACK, &pk);
    peer_publish(f, pub, "d/2", "two", 2, true, 2, false);
    peer_expect(f, pub, MQTT_PUBREC, &pk); /* PUBREL not sent yet: the id stays stored */
    peer_free(f, pub);

    fx_stop(f);
    fx_start(f);
    assert_int_equal(broker_session_count(f->b), 2);
    assert_int_equal(broker_subscription_count(f->b), 1);
    assert_int_equal(broker_retained_count(f->b), 1);
    /* the publisher resends after the restart: PUBREC, not delivered twice */
    pub = peer_new(f);
    assert_int_equal(peer_connect(f, pub, "pub2", false, &present), 0);
    assert_true(present);
    peer_publish(f, pub, "d/2", "two", 2, true, 2, true);
    peer_expect(f, pub, MQTT_PUBREC, &pk);
    peer_ack(f, pub, MQTT_PUBREL, 2);
    peer_expect(f, pub, MQTT_PUBCOMP, &pk);
    /* the subscriber gets its queue, in order, each once */
    sub = peer_new(f);
    assert_int_equal(peer_connect(f, sub, "dur", false, &present), 0);
    assert_true(present);
    peer_expect_publish(f, sub, "one", 1, false);
    peer_expect_publish(f, sub, "two", 2, false);
    peer_expect_nothing(f, sub, 100);
    peer_free(f, pub);
    peer_free(f, sub);
}

/*
 * A store written by a Cairn from before session owners: its session record (version 1) goes
 * to the first identity that connects with the client id, and that owner is stored (after a
 * restart another identity is refused); a retained $SYS message a client could leave in it
 * then is removed from memory and from the store at start.
 */
static void test_old_store(void **state)
{
    static const uint8_t v1[] = {1, 0, 0, 0, 0, 0x65, 0x53, 0xf1, 0}; /* last_seen only */
    struct fx *f = *state;
    struct persist_msg forged = {.id = 1,
                                 .topic = {(const uint8_t *)"$SYS/broker/version", 19},
                                 .payload = {(const uint8_t *)"forged", 6},
                                 .retain = true};
    struct persist_stats st;
    struct peer *p;
    bool present = false;
    char err[256];
    uint8_t k[64];
    size_t kl = persist_rec_key_session(k, sizeof(k), (struct mqtt_str){(const uint8_t *)"old", 3});

    assert_int_equal(persist__put_raw(f->b->store, k, kl, v1, sizeof(v1)), 0);
    persist_retain_put(f->b->store, &forged);
    assert_int_equal(persist_commit(f->b->store, err, sizeof(err)), 0);
    fx_stop(f);
    fx_start(f);
    assert_int_equal(broker_session_count(f->b), 1);
    assert_int_equal(broker_retained_count(f->b), 0);

    p = peer_new(f);
    assert_int_equal(peer_connect_as(f, p, "old", false, "bob", &present), 0);
    assert_true(present);
    peer_free(f, p);
    fx_stop(f);
    fx_start(f);
    persist_restore_stats(f->b->store, &st);
    assert_int_equal(st.retained, 0); /* deleted, not only skipped */
    p = peer_new(f);
    assert_int_equal(peer_connect_as(f, p, "old", false, NULL, NULL), MQTT_CONNACK_NOT_AUTHORIZED);
    peer_free(f, p);
    p = peer_new(f);
    assert_int_equal(peer_connect_as(f, p, "old", false, "eve", NULL), MQTT_CONNACK_NOT_AUTHORIZED);
    peer_free(f, p);
    p = peer_new(f);
    assert_int_equal(peer_connect_as(f, p, "old", true, "bob", &present), 0);
    peer_free(f, p);
}

static void test_inflight_resent_with_dup(void **state)
{
    struct fx *f = *state;
    struct peer *sub = peer_new(f), *pub = peer_new(f);
    struct mqtt_packet pk;
    uint16_t pid1, pid2;

    assert_int_equal(peer_connect(f, sub, "dup", false, NULL), 0);
    assert_int_equal(peer_subscribe(f, sub, "u", 2, 1), 2);
    assert_int_equal(peer_connect(f, pub, "pub", true, NULL), 0);
    peer_publish(f, pub, "u", "a", 1, false, 1, false);
    peer_publish(f, pub, "u", "b", 2, false, 2, false);
    peer_publish(f, pub, "u", "c", 2, false, 3, false);
    peer_expect(f, sub, MQTT_PUBLISH, &pk);
    pid1 = pk.u.publish.packet_id;
    peer_expect(f, sub, MQTT_PUBLISH, &pk);
    pid2 = pk.u.publish.packet_id;
    peer_ack(f, sub, MQTT_PUBREC, pid2);
    peer_expect(f, sub, MQTT_PUBLISH, &pk); /* "c", never acknowledged */
    peer_expect(f, sub, MQTT_PUBREL, &pk);
    peer_free(f, sub);
    /* across a restart too: in flight again with DUP=1, PUBREL for the one past PUBREC */
    fx_stop(f);
    fx_start(f);
    sub = peer_new(f);
    assert_int_equal(peer_connect(f, sub, "dup", false, NULL), 0);
    peer_expect(f, sub, MQTT_PUBLISH, &pk);
    assert_true(pk.u.publish.dup);
    assert_int_equal(pk.u.publish.packet_id, pid1);
    assert_memory_equal(pk.u.publish.payload.p, "a", 1);
    peer_ack(f, sub, MQTT_PUBACK, pid1);
    peer_expect(f, sub, MQTT_PUBREL, &pk);
    assert_int_equal(pk.u.ack.packet_id, pid2);
    peer_ack(f, sub, MQTT_PUBCOMP, pid2);
    peer_expect(f, sub, MQTT_PUBLISH, &pk);
    assert_true(pk.u.publish.dup);
    assert_memory_equal(pk.u.publish.payload.p, "c", 1);
    peer_free(f, pub);
    peer_free(f, sub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ack_after_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qos2_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qos2_failed_commit_then_resend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connack_codes_and_session_present, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlap_and_retained, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_subscriber_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_restores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inflight_resent_with_dup, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    log_open(CAIRN_LOG_DEST_STDERR, NULL, CAIRN_LOG_MASK(CAIRN_LOG_ERR));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
