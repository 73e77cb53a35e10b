/*
 * test_session.c — sessions: packet ids (never reused while in flight, wrapping past 65535
 * and skipping 0), the in-flight window, queue limits (messages, bytes, QoS 0 offline), the
 * QoS 1/2 sender states, inbound QoS 2 ids, subscriptions; and with a real store: an offline
 * queue kept on disk, read back in order through a bounded window, and restored after a
 * reopen with its in-flight entries marked for resend.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "session.h"

static struct mqtt_str S(const char *s) {
    struct mqtt_str v = {(const uint8_t *)s, strlen(s)};
    return v;
}

static uint64_t next_id = 1;

static struct msg *mk(const char *payload, uint8_t qos)
{
    return msg_new(next_id++, (const uint8_t *)"t/x", 3, (const uint8_t *)payload, strlen(payload),
                   qos, false);
}

static int dummy_owner;

static struct session_limits lim(uint32_t inflight, uint32_t queued, uint64_t bytes, bool q0)
{
    struct session_limits l = {inflight, queued, bytes, q0, 50, 0};
    return l;
}

static void enqueue_n(struct session *s, int n, uint8_t qos)
{
    for (int i = 0; i < n; i++) {
        char p[32];
        struct msg *m;
        snprintf(p, sizeof(p), "%d", i);
        m = mk(p, qos);
        assert_int_equal(session_enqueue(s, m, qos), SESSION_QUEUED);
        msg_unref(m);
    }
}

static void test_pids_unique_and_wrapping(void **state)
{
    struct session_limits l = lim(5, 0, 0, false);
    struct session_table *t = session_table_new(NULL, NULL, &l);
    struct session *s = session_new(t, S("c1"), true, 0);
    struct sentry *e;

    session_online(s, &dummy_owner);
    s->last_pid = 65533;
    enqueue_n(s, 8, 1);
    assert_int_equal(session_pop(s)->pid, 65534);
    assert_int_equal(session_pop(s)->pid, 65535);
    assert_int_equal(session_pop(s)->pid, 1); /* 0 is never used [MQTT-2.3.1-1] */
    assert_int_equal(session_pop(s)->pid, 2);
    assert_int_equal(session_pop(s)->pid, 3);
    assert_null(session_pop(s)); /* window of 5 full */
    assert_int_equal(session_ack(s, MQTT_PUBACK, 2), 0);
    assert_int_equal(session_ack(s, MQTT_PUBACK, 2), -ENOENT);
    /* wrap again with 65535, 1 and 3 still in flight */
    s->last_pid = 65534;
    e = session_pop(s);
    assert_non_null(e);
    assert_int_equal(e->pid, 2); /* 65535 and 1 in use, 2 was freed */
    assert_false(session_can_pop(s));
    for (uint32_t p = 1; p <= 65535; p++)
        if (session_pid_in_use(s, (uint16_t)p))
            assert_true(p == 65534 || p == 65535 || p == 1 || p == 2 || p == 3);
    session_del(s);
    session_table_free(t);
}

static void test_pid_not_reused_long_run(void **state)
{
    struct session_limits l = lim(20, 0, 0, false);
    struct session_table *t = session_table_new(NULL, NULL, &l);
    struct session *s = session_new(t, S("c1"), true, 0);
    uint16_t oldest = 0;

    session_online(s, &dummy_owner);
    /* one entry stays in flight for 200,000 allocations: its id is never handed out again */
    enqueue_n(s, 1, 1);
    oldest = session_pop(s)->pid;
    for (int i = 0; i < 200000; i++) {
        struct sentry *e;
        enqueue_n(s, 1, 1);
        e = session_pop(s);
        assert_non_null(e);
        assert_int_not_equal(e->pid, oldest);
        assert_int_not_equal(e->pid, 0);
        assert_int_equal(session_ack(s, MQTT_PUBACK, e->pid), 0);
    }
    assert_int_equal(session_inflight(s), 1);
    session_table_free(t);
}

static void test_pids_full_window(void **state)
{
    struct session_limits l = lim(0, 0, 0, false); /* unlimited: up to 65535 in flight */
    struct session_table *t = session_table_new(NULL, NULL, &l);
    struct session *s = session_new(t, S("big"), true, 0);
    static uint8_t seen[65536];
    struct sentry *e;

    memset(seen, 0, sizeof(seen));
    session_online(s, &dummy_owner);
    enqueue_n(s, 65540, 1);
    for (int i = 0; i < 65535; i++) {
        e = session_pop(s);
        assert_non_null(e);
        assert_int_not_equal(e->pid, 0);
        assert_int_equal(seen[e->pid], 0);
        seen[e->pid] = 1;
    }
    assert_null(session_pop(s)); /* every id in use: the rest waits */
    assert_int_equal(session_ack(s, MQTT_PUBACK, 40000), 0);
    assert_int_equal(session_ack(s, MQTT_PUBACK, 7), 0);
    assert_false(session_pid_in_use(s, 7));
    assert_true(session_pid_in_use(s, 8));
    e = session_pop(s);
    assert_non_null(e);
    assert_true(e->pid == 7 || e->pid == 40000);
    e = session_pop(s);
    assert_non_null(e);
    assert_true(e->pid == 7 || e->pid == 40000);
    assert_null(session_pop(s));
    session_table_free(t);
}

static void test_window_and_qos0(void **state)
{
    struct session_limits l = lim(2, 0, 0, false);
    struct session_table *t = session_table_new(NULL, NULL, &l);
    struct session *s = session_new(t, S("c1"), true, 0);
    struct sentry *e;

    session_online(s, &dummy_owner);
    enqueue_n(s, 2, 1);
    enqueue_n(s, 1, 0);
    enqueue_n(s, 1, 2);
    assert_non_null(session_pop(s));
    assert_non_null(session_pop(s));
    e = session_pop(s); /* QoS 0 needs no window slot */
    assert_non_null(e);
    assert_int_equal(e->qos, 0);
    assert_int_equal(e->pid, 0);
    sentry_free(e);
    assert_null(session_pop(s)); /* QoS 2 waits */
    assert_int_equal(s->q_count, 1);
    assert_int_equal(session_ack(s, MQTT_PUBACK, 1), 0);
    e = session_pop(s);
    assert_non_null(e);
    assert_int_equal(e->state, PERSIST_Q_WAIT_PUBREC);
    /* QoS 2 sender states: an ack of the wrong kind for an id in flight is a violation */
    assert_int_equal(session_ack(s, MQTT_PUBACK, e->pid), -EPROTO);
    assert_int_equal(session_ack(s, MQTT_PUBCOMP, e->pid), -EPROTO);
    assert_int_equal(session_ack(s, MQTT_PUBACK, 999), -ENOENT);
    assert_int_equal(session_ack(s, MQTT_PUBREC, e->pid), 0);
    assert_int_equal(e->state, PERSIST_Q_WAIT_PUBCOMP);
    assert_int_equal(session_ack(s, MQTT_PUBREC, e->pid), 0); /* repeated: PUBREL again */
    assert_int_equal(session_ack(s, MQTT_PUBCOMP, 3), 0);
    assert_int_equal(session_inflight(s), 1);
    session_table_free(t);
}

/* max_inflight_bytes: entries enter the window while the bytes in flight are under the limit;
 * one bigger than it still goes when nothing is in flight (Mosquitto's rule). */
static void test_inflight_bytes(void **state)
{
    struct session_limits l = lim(10, 0, 0, false);
    struct session_table *t;
    struct session *s;
    struct msg *m;
    struct sentry *a, *b;

    (void)state;
    l.max_inflight_bytes = 10;
    t = session_table_new(NULL, NULL, &l);
    s = session_new(t, S("c1"), true, 0);
    session_online(s, &dummy_owner);
    m = mk("123456", 1); /* 6 bytes */
    assert_int_equal(session_enqueue(s, m, 1), SESSION_QUEUED);
    assert_int_equal(session_enqueue(s, m, 1), SESSION_QUEUED);
    assert_int_equal(session_enqueue(s, m, 1), SESSION_QUEUED);
    msg_unref(m);
    m = mk("a longer payload than ten", 1);
    assert_int_equal(session_enqueue(s, m, 1), SESSION_QUEUED);
    msg_unref(m);
    enqueue_n(s, 1, 0); /* QoS 0 never waits for the window */
    a = session_pop(s);
    b = session_pop(s); /* 6 < 10: a second one may go */
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(s->inflight.bytes, 12);
    assert_null(session_pop(s)); /* 12 >= 10 */
    assert_int_equal(session_ack(s, MQTT_PUBACK, a->pid), 0);
    assert_int_equal(s->inflight.bytes, 6);
    a = session_pop(s);
    assert_non_null(a);
    assert_null(session_pop(s));
    assert_int_equal(session_ack(s, MQTT_PUBACK, a->pid), 0);
    assert_int_equal(session_ack(s, MQTT_PUBACK, b->pid), 0);
    assert_int_equal(s->inflight.bytes, 0);
    a = session_pop(s); /* 25 bytes: over the limit, but alone */
    assert_non_null(a);
    assert_int_equal(s->inflight.bytes, 25);
    b = session_pop(s); /* the QoS 0 entry is not held back */
    assert_non_null(b);
    assert_int_equal(b->qos, 0);
    sentry_free(b);
    assert_int_equal(session_ack(s, MQTT_PUBACK, a->pid), 0);
    assert_int_equal(s->inflight.bytes, 0);
    assert_int_equal(s->queue.bytes, 0);
    session_table_free(t);
}

static void test_queue_limits(void **state)
{
    struct session_limits l = lim(1, 3, 0, false);
    struct session_table *t = session_table_new(NULL, NULL, &l);
    struct session *s = session_new(t, S("c1"), false, 0);
    struct msg *m = mk("0123456789", 1);

    /* offline, persistent, no store: QoS 1 queued, QoS 0 dropped without queue_qos0 */
    assert_int_equal(session_enqueue(s, m, 0), SESSION_DROPPED_QOS0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(session_enqueue(s, m, 1), SESSION_QUEUED);
    assert_int_equal(session_enqueue(s, m, 1), SESSION_DROPPED_LIMIT);
    assert_int_equal(session_dropped(s), 1);
    assert_int_equal(s->q_count, 3);
    assert_int_equal(s->q_bytes, 30);
    /* in flight does not count against max_queued */
    session_online(s, &dummy_owner);
    assert_non_null(session_pop(s));
    assert_int_equal(session_enqueue(s, m, 1), SESSION_QUEUED);
    assert_int_equal(session_enqueue(s, m, 1), SESSION_DROPPED_LIMIT);
    /* bytes */
    l = lim(1, 0, 45, true);
    session_table_set_limits(t, &l);
    assert_int_equal(s->q_bytes, 30);
    assert_int_equal(session_enqueue(s, m, 1), SESSION_QUEUED); /* 40 */
    assert_int_equal(session_enqueue(s, m, 1), SESSION_DROPPED_LIMIT);
    /* queue_qos0 while offline */
    session_offline(s);
    l = lim(1, 0, 0, true);
    session_table_set_limits(t, &l);
    assert_int_equal(session_enqueue(s, m, 0), SESSION_QUEUED);
    msg_unref(m);
    session_table_free(t);
}

static void test_inbound_and_subs(void **state)
{
    struct session_limits l = lim(1, 0, 0, false);
    struct session_table *t = session_table_new(NULL, NULL, &l);
    struct session *s = session_new(t, S("c1"), false, 0);

    assert_ptr_equal(session_find(t, S("c1")), s);
    assert_null(session_find(t, S("c2")));
    for (int i = 100; i > 0; i--)
        assert_int_equal(session_inbound_add(s, (uint16_t)(i * 7)), 0);
    assert_int_equal(session_inbound_add(s, 7), 0);
    assert_int_equal(s->ext->n_inbound, 100);
    assert_true(session_inbound_has(s, 700));
    assert_false(session_inbound_has(s, 701));
    assert_int_equal(session_inbound_del(s, 700), 0);
    assert_int_equal(session_inbound_del(s, 700), -ENOENT);
    assert_false(session_inbound_has(s, 700));
    assert_int_equal(session_sub_set(s, S("a/#"), 1), 0);
    assert_int_equal(session_sub_set(s, S("a/#"), 2), 1);
    assert_int_equal(session_sub_set(s, S("b"), 0), 0);
    assert_int_equal(session_sub_count(s), 2);
    assert_true(session_sub_has(s, S("b")));
    assert_false(session_sub_has(s, S("a/+")));
    assert_int_equal(session_sub_del(s, S("a/+")), -ENOENT);
    assert_int_equal(session_sub_del(s, S("a/#")), 0);
    assert_int_equal(session_sub_count(s), 1);
    /* many sessions: the table grows */
    for (int i = 0; i < 2000; i++) {
        char id[16];
        snprintf(id, sizeof(id), "id%d", i);
        assert_non_null(session_new(t, S(id), true, 0));
    }
    assert_int_equal(session_table_count(t), 2001);
    assert_non_null(session_find(t, S("id1234")));
    session_del(session_find(t, S("id1234")));
    assert_null(session_find(t, S("id1234")));
    session_table_free(t);
}

/* ---- with a store ------------------------------------------------------------------------ */

static char dir[64];

static struct persist *open_store(void)
{
    struct persist_options o = {.dir = dir, .sync = false};
    struct persist *p = NULL;
    char err[256];

    assert_int_equal(persist_open(&o, &p, err, sizeof(err)), 0);
    return p;
}

/* As the broker does: the deferred records into the batch, commit it, then tell the table
 * (its entries are durable now). */
static void commit(struct persist *p, struct session_table *t)
{
    char err[256];
    session_table_flush(t);
    assert_int_equal(persist_commit(p, err, sizeof(err)), 0);
    session_table_committed(t);
}

static int restore_session(void *ctx, struct mqtt_str cid, const struct persist_session *ps,
                           const struct persist_queue_info *q)
{
    return session_restore(ctx, cid, ps, q) ? 0 : -ENOMEM;
}

static void test_durable_queue_window_and_restore(void **state)
{
    struct session_limits l = lim(3, 0, 0, false);
    struct msg_table *msgs = msg_table_new();
    struct persist *p;
    struct session_table *t;
    struct session *s;
    int expect = 0;
    uint64_t max_id = 0;
    char err[256];
    struct persist_restore_ops ops = {.session = restore_session};

    snprintf(dir, sizeof(dir), "/tmp/cairn-test-session-XXXXXX");
    assert_non_null(mkdtemp(dir));
    p = open_store();
    t = session_table_new(p, msgs, &l);
    s = session_new(t, S("dur"), false, 100);
    assert_true(s->durable);
    /* offline: nothing stays in memory */
    enqueue_n(s, 200, 1);
    assert_int_equal(s->queue.n, 0);
    assert_int_equal(s->ext->disk_count, 200);
    assert_int_equal(s->q_count, 200);
    commit(p, t);
    /* online: read back a window (50) at a time, in order */
    session_online(s, &dummy_owner);
    for (int round = 0; round < 100 && expect < 200; round++) {
        struct sentry *e;
        if (session_wants_refill(s))
            assert_true(session_refill(s) > 0);
        assert_true(s->queue.n <= 50);
        while ((e = session_pop(s))) {
            char want[16];
            snprintf(want, sizeof(want), "%d", expect++);
            assert_int_equal(e->m->payload_len, strlen(want));
            assert_memory_equal(e->m->payload, want, strlen(want));
            /* the first two stay in flight, the rest are acknowledged */
            if (expect > 2)
                assert_int_equal(session_ack(s, MQTT_PUBACK, e->pid), 0);
        }
        commit(p, t);
    }
    assert_int_equal(expect, 200);
    assert_int_equal(session_inflight(s), 2);
    /* one more, then the in-flight QoS 1 entry with id 1 goes to WAIT... via a QoS 2 entry */
    enqueue_n(s, 1, 2);
    {
        struct sentry *e = session_pop(s);
        assert_non_null(e);
        assert_int_equal(session_ack(s, MQTT_PUBREC, e->pid), 0);
    }
    enqueue_n(s, 5, 1); /* queued behind a full window */
    assert_int_equal(session_inbound_add(s, 42), 0);
    commit(p, t);
    session_table_free(t);
    persist_close(p);

    /* reopen: the session comes back offline with its whole queue on disk */
    p = open_store();
    t = session_table_new(p, msgs, &l);
    session_table_set_loading(t, true);
    assert_int_equal(persist_restore(p, &ops, t, &max_id, err, sizeof(err)), 0);
    session_table_set_loading(t, false);
    assert_true(max_id >= 206);
    s = session_find(t, S("dur"));
    assert_non_null(s);
    assert_int_equal(s->q_count, 8);
    assert_int_equal(s->ext->disk_count, 8);
    session_online(s, &dummy_owner);
    assert_int_equal(session_refill(s), 8);
    assert_int_equal(session_inflight(s), 3);
    assert_int_equal(s->q_count, 5);
    {
        struct sentry *e = s->inflight.head;
        assert_int_equal(e->state, PERSIST_Q_WAIT_PUBACK);
        assert_true(e->resend);
        assert_memory_equal(e->m->payload, "0", 1);
        e = e->next;
        assert_memory_equal(e->m->payload, "1", 1);
        e = e->next;
        assert_int_equal(e->state, PERSIST_Q_WAIT_PUBCOMP);
        assert_int_equal(session_ack(s, MQTT_PUBCOMP, e->pid), 0);
    }
    /* a new id never collides with one restored in flight */
    {
        struct sentry *e = session_pop(s);
        assert_non_null(e);
        assert_int_equal(session_inflight(s), 3);
        for (struct sentry *o = s->inflight.head; o != e; o = o->next)
            assert_int_not_equal(o->pid, e->pid);
    }
    commit(p, t);
    session_del(s);
    commit(p, t);
    session_table_free(t);
    persist_close(p);
    msg_table_free(msgs);
    {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
    }
}

/*
 * A queue far deeper than the window, filled while online (a full in-flight window pushes it to
 * disk), drains completely and in order when the subscriber acknowledges in batches and more
 * arrives between commits; entries still in the open batch are never asked for (the refill
 * waits for the commit), and memory stays within the window.
 */
static void test_durable_deep_queue_batched_acks(void **state)
{
    struct session_limits l = lim(100, 0, 0, false);
    struct msg_table *msgs = msg_table_new();
    struct persist *p;
    struct session_table *t;
    struct session *s;
    uint16_t pending[100];
    int n_pending = 0, expect = 0, queued = 0, total = 4800;

    snprintf(dir, sizeof(dir), "/tmp/cairn-test-session-XXXXXX");
    assert_non_null(mkdtemp(dir));
    p = open_store();
    t = session_table_new(p, msgs, &l);
    s = session_new(t, S("deep"), false, 100);
    session_online(s, &dummy_owner);
    for (int round = 0; expect < total; round++) {
        struct sentry *e;
        assert_true(round < 10000);
        if (queued < total) { /* a publisher's batch, into the open batch */
            enqueue_n(s, 300, 1);
            queued += 300;
        }
        /* uncommitted disk entries are not read: a refill now finds only committed ones */
        if (session_can_refill(s))
            assert_true(session_refill(s) > 0);
        assert_true(s->queue.n <= 50);
        while ((e = session_pop(s))) {
            char want[16];
            snprintf(want, sizeof(want), "%d", expect % 300);
            expect++;
            assert_int_equal(e->m->payload_len, strlen(want));
            assert_memory_equal(e->m->payload, want, strlen(want));
            pending[n_pending++] = e->pid;
            if (session_can_refill(s))
                assert_true(session_refill(s) > 0);
        }
        commit(p, t);
        /* the subscriber acknowledges all it read, in one batch */
        for (int i = 0; i < n_pending; i++)
            assert_int_equal(session_ack(s, MQTT_PUBACK, pending[i]), 0);
        n_pending = 0;
        assert_int_equal(session_inflight(s), 0);
    }
    assert_int_equal(expect, total);
    assert_int_equal(s->ext->disk_count, 0);
    assert_int_equal(s->q_count, 0);
    commit(p, t);
    session_del(s);
    commit(p, t);
    session_table_free(t);
    persist_close(p);
    msg_table_free(msgs);
    {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
    }
}

static void rm_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Reopen the store and restore its sessions into a new table, as broker_new() does. */
static struct session_table *reopen(struct persist **p, struct msg_table *msgs,
                                    const struct session_limits *l)
{
    struct persist_restore_ops ops = {.session = restore_session};
    struct session_table *t;
    uint64_t max_id = 0;
    char err[256];

    *p = open_store();
    t = session_table_new(*p, msgs, l);
    session_table_set_loading(t, true);
    assert_int_equal(persist_restore(*p, &ops, t, &max_id, err, sizeof(err)), 0);
    session_table_set_loading(t, false);
    if (max_id >= next_id)
        next_id = max_id + 1;
    return t;
}

/* The payload of e as an int (enqueue_n numbers them). */
static int payload_num(const struct sentry *e)
{
    char buf[16];
    size_t n = e->m->payload_len < sizeof(buf) - 1 ? e->m->payload_len : sizeof(buf) - 1;
    memcpy(buf, e->m->payload, n);
    buf[n] = '\0';
    return atoi(buf);
}

/*
 * Issue 16's reading of the QoS 2 duplicate: an in-flight entry read back after a restart must
 * keep the packet id the client saw, whatever else is in flight, and no new id may collide with
 * it. Here the in-flight ids straddle the wrap past 65535, QoS 1 and QoS 2 entries in all three
 * states are mixed, there are more in flight (120) than the memory window (50) holds, and
 * queued entries wait behind them. The session is read back as the broker does (refill, resend,
 * pop, refill...) and every entry must come out exactly once: the in-flight ones with their old
 * ids marked for resend, the queued ones with ids no in-flight entry holds.
 */
static void test_restore_keeps_inflight_ids(void **state)
{
    struct session_limits l = lim(200, 0, 0, false);
    struct msg_table *msgs = msg_table_new();
    struct persist *p;
    struct session_table *t;
    struct session *s;
    uint16_t pid_of[200] = {0};
    uint8_t state_of[200] = {0};
    int seen[200] = {0}, n_inflight = 120, total = 180, resent = 0;

    snprintf(dir, sizeof(dir), "/tmp/cairn-test-session-XXXXXX");
    assert_non_null(mkdtemp(dir));
    p = open_store();
    t = session_table_new(p, msgs, &l);
    s = session_new(t, S("wrap"), false, 100);
    session_online(s, &dummy_owner);
    s->last_pid = 65535 - 60; /* the ids of this run wrap past 65535 */
    for (int i = 0; i < n_inflight; i++) {
        char pl[16];
        uint8_t qos = (uint8_t)(i % 3 == 0 ? 1 : 2);
        struct msg *m;
        struct sentry *e;
        snprintf(pl, sizeof(pl), "%d", i);
        m = mk(pl, qos);
        assert_int_equal(session_enqueue(s, m, qos), SESSION_QUEUED);
        msg_unref(m);
        e = session_pop(s);
        assert_non_null(e);
        assert_int_equal(payload_num(e), i);
        if (i % 3 == 2) /* some QoS 2 entries got their PUBREC: PUBREL sent */
            assert_int_equal(session_ack(s, MQTT_PUBREC, e->pid), 0);
        pid_of[i] = e->pid;
        state_of[i] = e->state;
    }
    assert_true(pid_of[0] > 65000 && pid_of[n_inflight - 1] < 100);
    for (int i = n_inflight; i < total; i++) { /* behind a window the client keeps full */
        char pl[16];
        struct msg *m;
        snprintf(pl, sizeof(pl), "%d", i);
        m = mk(pl, 2);
        assert_int_equal(session_enqueue(s, m, 2), SESSION_QUEUED);
        msg_unref(m);
    }
    commit(p, t);
    session_table_free(t); /* kill -9: memory gone, the store stays */
    persist_close(p);

    t = reopen(&p, msgs, &l);
    s = session_find(t, S("wrap"));
    assert_non_null(s);
    session_online(s, &dummy_owner);
    for (int round = 0; round < 1000; round++) {
        struct sentry *e;
        bool progress = false;
        if (session_can_refill(s))
            progress = session_refill(s) > 0;
        /* the resends: every in-flight entry read back, with its old id */
        for (e = s->inflight.head; e; e = e->next) {
            int i = payload_num(e);
            if (!e->resend)
                continue;
            e->resend = false;
            assert_true(i < n_inflight);
            assert_int_equal(e->pid, pid_of[i]);
            assert_int_equal(e->state, state_of[i]);
            seen[i]++;
            resent++;
            progress = true;
        }
        /* new sends: ids no in-flight entry holds, and none before every resend is back */
        while ((e = session_pop(s))) {
            int i = payload_num(e);
            assert_int_equal(resent, n_inflight);
            assert_true(i >= n_inflight);
            for (struct sentry *o = s->inflight.head; o; o = o->next)
                assert_true(o == e || o->pid != e->pid);
            seen[i]++;
            progress = true;
        }
        /* the client finishes what is in flight */
        while ((e = s->inflight.head)) {
            if (e->state == PERSIST_Q_WAIT_PUBACK) {
                assert_int_equal(session_ack(s, MQTT_PUBACK, e->pid), 0);
            } else {
                if (e->state == PERSIST_Q_WAIT_PUBREC)
                    assert_int_equal(session_ack(s, MQTT_PUBREC, e->pid), 0);
                assert_int_equal(session_ack(s, MQTT_PUBCOMP, e->pid), 0);
            }
        }
        commit(p, t);
        if (!progress && s->ext->disk_count == 0 && s->queue.n == 0)
            break;
    }
    for (int i = 0; i < total; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(s->ext->pid_clashes, 0);
    assert_int_equal(s->q_count, 0);
    session_table_free(t);
    persist_close(p);
    msg_table_free(msgs);
    rm_dir();
}

/*
 * A reconnect without a restart: entries popped in this iteration (their WAIT states still in
 * the open batch) go back to disk when the client leaves; a client that returns before the
 * commit must not read their older committed records (QUEUED, no id) and send them under new
 * ids: the refill waits for the commit, then gives them back with the ids they were sent under.
 */
static void test_reconnect_before_commit_keeps_ids(void **state)
{
    struct session_limits l = lim(20, 0, 0, false);
    struct msg_table *msgs = msg_table_new();
    struct persist *p;
    struct session_table *t;
    struct session *s;
    uint16_t pids[10];

    snprintf(dir, sizeof(dir), "/tmp/cairn-test-session-XXXXXX");
    assert_non_null(mkdtemp(dir));
    p = open_store();
    t = session_table_new(p, msgs, &l);
    s = session_new(t, S("back"), false, 100);
    enqueue_n(s, 10, 2); /* offline: to disk */
    commit(p, t);
    session_online(s, &dummy_owner);
    assert_int_equal(session_refill(s), 10);
    for (int i = 0; i < 10; i++) {
        struct sentry *e = session_pop(s);
        assert_non_null(e);
        pids[i] = e->pid;
    }
    commit(p, t); /* their ids are durable: the client has them */
    for (int i = 0; i < 5; i++)
        assert_int_equal(session_ack(s, MQTT_PUBREC, pids[i]), 0); /* in the open batch */
    session_offline(s);
    session_online(s, &dummy_owner);
    assert_false(session_can_refill(s)); /* not before the PUBRECs are committed */
    commit(p, t);
    assert_true(session_can_refill(s));
    assert_int_equal(session_refill(s), 10);
    {
        int i = 0;
        for (struct sentry *e = s->inflight.head; e; e = e->next, i++) {
            assert_int_equal(e->pid, pids[i]);
            assert_true(e->resend);
            assert_int_equal(e->state, i < 5 ? PERSIST_Q_WAIT_PUBCOMP : PERSIST_Q_WAIT_PUBREC);
        }
        assert_int_equal(i, 10);
    }
    assert_null(session_pop(s));
    assert_int_equal(s->ext->pid_clashes, 0);
    session_table_free(t);
    persist_close(p);
    msg_table_free(msgs);
    rm_dir();
}

struct read_back {
    int n;
    int payload[8];
    uint8_t state[8];
    uint16_t pid[8];
};

static int read_back_cb(void *ctx, const struct persist_qentry *q, const struct persist_msg *m)
{
    struct read_back *r = ctx;
    char buf[16];
    size_t n = m->payload.len < sizeof(buf) - 1 ? m->payload.len : sizeof(buf) - 1;

    assert_true(r->n < 8);
    memcpy(buf, m->payload.p, n);
    buf[n] = '\0';
    r->payload[r->n] = atoi(buf);
    r->state[r->n] = q->state;
    r->pid[r->n] = q->packet_id;
    r->n++;
    return 0;
}

/*
 * Deferred records (session.c): an entry queued for an online client is written once, at the
 * flush, in the state it has then; one that leaves before it is never written; a session
 * going offline writes its entries first, one going away drops them; after a restart the
 * store has no unreferenced or missing bodies.
 */
static void test_deferred_records(void **state)
{
    struct session_limits l = lim(10, 0, 0, false);
    struct msg_table *msgs = msg_table_new();
    struct persist *p;
    struct persist_stats st;
    struct session_table *t;
    struct session *s, *off, *gone;
    struct sentry *e;
    struct read_back r = {0};

    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/cairn-test-session-XXXXXX");
    assert_non_null(mkdtemp(dir));
    p = open_store();
    t = session_table_new(p, msgs, &l);
    s = session_new(t, S("on"), false, 100);
    off = session_new(t, S("off"), false, 100);
    gone = session_new(t, S("gone"), false, 100);
    session_online(s, &dummy_owner);
    session_online(off, &dummy_owner);
    session_online(gone, &dummy_owner);
    commit(p, t);

    enqueue_n(s, 4, 1); /* payloads 0..3 */
    e = session_pop(s); /* 0: in flight */
    assert_int_equal(payload_num(e), 0);
    e = session_pop(s); /* 1: in flight, acked before the flush: never written */
    assert_int_equal(session_ack(s, MQTT_PUBACK, e->pid), 0);
    assert_int_equal(s->ext->n_unwritten, 3);
    enqueue_n(off, 2, 1);
    assert_non_null(session_pop(off));
    session_offline(off); /* written now, the in-flight one with its state */
    assert_int_equal(off->ext->n_unwritten, 0);
    enqueue_n(gone, 2, 1);
    session_del(gone); /* nothing of it written */
    commit(p, t);
    assert_int_equal(s->ext->n_unwritten, 0);

    assert_int_equal(persist_queue_read(p, S("on"), 0, 8, read_back_cb, &r), 3);
    assert_int_equal(r.payload[0], 0);
    assert_int_equal(r.state[0], PERSIST_Q_WAIT_PUBACK);
    assert_int_equal(r.pid[0], s->inflight.head->pid);
    assert_int_equal(r.payload[1], 2);
    assert_int_equal(r.state[1], PERSIST_Q_QUEUED);
    assert_int_equal(r.payload[2], 3);
    memset(&r, 0, sizeof(r));
    assert_int_equal(persist_queue_read(p, S("off"), 0, 8, read_back_cb, &r), 2);
    assert_int_equal(r.state[0], PERSIST_Q_WAIT_PUBACK);
    assert_int_equal(r.state[1], PERSIST_Q_QUEUED);
    memset(&r, 0, sizeof(r));
    assert_int_equal(persist_queue_read(p, S("gone"), 0, 8, read_back_cb, &r), 0);

    session_table_free(t); /* kill -9 */
    persist_close(p);
    t = reopen(&p, msgs, &l);
    persist_restore_stats(p, &st);
    assert_int_equal(st.sessions, 2);
    assert_int_equal(st.queued, 5);
    assert_int_equal(st.inflight, 2);
    assert_int_equal(st.bodies, 5);
    assert_int_equal(st.garbage, 0);
    assert_int_equal(st.missing, 0);
    session_table_free(t);
    persist_close(p);
    msg_table_free(msgs);
    rm_dir();
}

/*
 * Freed entries wait on the spare list for the next enqueue; session_entry_bytes() counts the
 * live ones only (memory_limit), and the list is bounded and releasable.
 */
static void test_spare_entries(void **state)
{
    struct session_limits l = lim(0, 0, 0, false);
    struct session_table *t = session_table_new(NULL, NULL, &l);
    struct session *s = session_new(t, S("spare"), true, 100);
    struct sentry *e;
    size_t live0 = session_entry_bytes();

    (void)state;
    session_spare_release();
    session_online(s, &dummy_owner);
    enqueue_n(s, 100, 1);
    assert_int_equal(session_entry_bytes() - live0, 100 * sizeof(struct sentry));
    while ((e = session_pop(s)))
        assert_int_equal(session_ack(s, MQTT_PUBACK, e->pid), 0);
    assert_int_equal(session_entry_bytes(), live0);
    enqueue_n(s, 40, 1); /* taken from the spare list */
    assert_int_equal(session_entry_bytes() - live0, 40 * sizeof(struct sentry));
    assert_int_equal(s->queue.n, 40);
    session_table_free(t); /* frees the 40, then releases the spare list */
    assert_int_equal(session_entry_bytes(), live0);
    assert_int_equal(session_spare_release(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pids_unique_and_wrapping),
        cmocka_unit_test(test_pid_not_reused_long_run),
        cmocka_unit_test(test_pids_full_window),
        cmocka_unit_test(test_window_and_qos0),
        cmocka_unit_test(test_inflight_bytes),
        cmocka_unit_test(test_queue_limits),
        cmocka_unit_test(test_inbound_and_subs),
        cmocka_unit_test(test_durable_queue_window_and_restore),
        cmocka_unit_test(test_durable_deep_queue_batched_acks),
        cmocka_unit_test(test_restore_keeps_inflight_ids),
        cmocka_unit_test(test_reconnect_before_commit_keeps_ids),
        cmocka_unit_test(test_deferred_records),
        cmocka_unit_test(test_spare_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
