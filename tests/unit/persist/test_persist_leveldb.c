/*
 * test_persist_leveldb.c — persist.h against real LevelDB in a fresh temporary directory:
 * round trips through close and reopen, body reference counts and garbage collection, session
 * delete, queue windows, locking, damaged stores, format versions, failed commits, read-only
 * inspection.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "persist.h"
#include "persist_internal.h"
#include "persist_record.h"

#define S(lit) ((struct mqtt_str){(const uint8_t *)(lit), sizeof(lit) - 1})

static struct mqtt_str str(const char *s)
{
    return (struct mqtt_str){(const uint8_t *)s, strlen(s)};
}

/* ---- fixture: a temporary directory; persistence_location is DIR/store (created by
 * persist_open), the store itself DIR/store/cairn.db ---- */
struct fx {
    char root[64];
    char dir[96];
    char db[128];
    char err[512];
    struct persist *p;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    strcpy(f->root, "/tmp/cairn-persist-test-XXXXXX");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->dir, sizeof f->dir, "%s/store", f->root);
    snprintf(f->db, sizeof f->db, "%s/%s", f->dir, PERSIST_STORE_NAME);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    persist_close(f->p);
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static int open_opts(struct fx *f, bool sync, bool ro)
{
    struct persist_options o = {.dir = f->dir, .sync = sync, .read_only = ro};
    f->err[0] = '\0';
    return persist_open(&o, &f->p, f->err, sizeof f->err);
}

/* Open and restore, which every test must succeed at; records what restore reported. */
struct seen {
    int sessions, subs, inbound, retained;
    int late_session; /* a session reported after another kind: order broken */
    char cid[8][32];
    int64_t last_seen[8];
    uint8_t owner[8];
    char user[8][32];
    int owner_bad; /* sessions "many-N" whose owner is not "owner-of-many-N" */
    struct persist_queue_info q[8];
    char filter[8][32];
    char sub_cid[8][32];
    uint8_t sub_qos[8];
    uint16_t inbound_id[8];
    char retain_topic[4][32];
    char retain_payload[4][32];
    uint8_t retain_qos[4];
    uint64_t retain_id[4];
};

static void cpy(char *dst, size_t cap, struct mqtt_str s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    memcpy(dst, s.p, n);
    dst[n] = '\0';
}

static int on_session(void *ctx, struct mqtt_str cid, const struct persist_session *s,
                      const struct persist_queue_info *q)
{
    struct seen *w = ctx;
    if (w->subs || w->inbound || w->retained)
        w->late_session++;
    if (w->sessions < 8) {
        cpy(w->cid[w->sessions], 32, cid);
        w->last_seen[w->sessions] = s->last_seen;
        w->owner[w->sessions] = s->owner;
        cpy(w->user[w->sessions], 32, s->user);
        w->q[w->sessions] = *q;
    }
    if (cid.len > 5 && memcmp(cid.p, "many-", 5) == 0) {
        char want[64];
        int n = snprintf(want, sizeof want, "owner-of-%.*s", (int)cid.len, (const char *)cid.p);
        if (s->owner != PERSIST_OWNER_USER || s->user.len != (size_t)n ||
            memcmp(s->user.p, want, (size_t)n) != 0)
            w->owner_bad++;
    }
    w->sessions++;
    return 0;
}

static int on_sub(void *ctx, struct mqtt_str cid, struct mqtt_str filter, uint8_t qos)
{
    struct seen *w = ctx;
    if (w->subs < 8) {
        cpy(w->sub_cid[w->subs], 32, cid);
        cpy(w->filter[w->subs], 32, filter);
        w->sub_qos[w->subs] = qos;
    }
    w->subs++;
    return 0;
}

static int on_inbound(void *ctx, struct mqtt_str cid, uint16_t id)
{
    struct seen *w = ctx;
    if (w->inbound < 8)
        w->inbound_id[w->inbound] = id;
    w->inbound++;
    return 0;
}

static int on_retain(void *ctx, const struct persist_msg *m)
{
    struct seen *w = ctx;
    if (w->retained < 4) {
        cpy(w->retain_topic[w->retained], 32, m->topic);
        cpy(w->retain_payload[w->retained], 32, m->payload);
        w->retain_qos[w->retained] = m->qos;
        w->retain_id[w->retained] = m->id;
    }
    w->retained++;
    return 0;
}

static const struct persist_restore_ops ops = {on_session, on_sub, on_inbound, on_retain};

static uint64_t reopen(struct fx *f, struct seen *w)
{
    uint64_t max_id = 12345;
    persist_close(f->p);
    f->p = NULL;
    memset(w, 0, sizeof *w);
    int rc = open_opts(f, false, false);
    if (rc)
        fail_msg("open: %d %s", rc, f->err);
    rc = persist_restore(f->p, &ops, w, &max_id, f->err, sizeof f->err);
    if (rc)
        fail_msg("restore: %d %s", rc, f->err);
    assert_int_equal(w->late_session, 0);
    return max_id;
}

static void commit_ok(struct fx *f)
{
    int rc = persist_commit(f->p, f->err, sizeof f->err);
    if (rc)
        fail_msg("commit: %d %s", rc, f->err);
    assert_true(persist_batch_empty(f->p));
}

static struct persist_msg msg(uint64_t id, const char *topic, const char *payload, uint8_t qos)
{
    return (struct persist_msg){id, str(topic), str(payload), qos, false, {NULL, 0}};
}

static void enq(struct fx *f, const char *cid, uint64_t seq, const struct persist_msg *m,
                uint8_t state, uint16_t pid)
{
    struct persist_qentry e = {seq, m->id, pid, m->qos, state};
    persist_enqueue(f->p, str(cid), &e, m);
}

static void session(struct fx *f, const char *cid, int64_t seen)
{
    struct persist_session s = {.last_seen = seen};
    persist_session_put(f->p, str(cid), &s);
}

static struct persist_stats stats(struct fx *f)
{
    struct persist_stats st;
    persist_restore_stats(f->p, &st);
    return st;
}

/* ---- queue reads into an array ----------------------------------------------------------- */
struct rd {
    int n;
    int stop_after; /* > 0: return 1 after this many; < 0: return this code at once */
    uint64_t seq[128];
    uint64_t msg_id[128];
    uint8_t state[128];
    uint16_t pid[128];
    char payload[128][16];
};

static int on_entry(void *ctx, const struct persist_qentry *e, const struct persist_msg *m)
{
    struct rd *r = ctx;
    if (r->stop_after < 0)
        return r->stop_after;
    assert_true(m->id == e->msg_id);
    if (r->n < 128) {
        r->seq[r->n] = e->seq;
        r->msg_id[r->n] = e->msg_id;
        r->state[r->n] = e->state;
        r->pid[r->n] = e->packet_id;
        cpy(r->payload[r->n], 16, m->payload);
    }
    r->n++;
    return r->stop_after > 0 && r->n >= r->stop_after ? 1 : 0;
}

static int qread(struct fx *f, const char *cid, uint64_t from, size_t max, struct rd *r)
{
    int stop = r->stop_after;
    memset(r, 0, sizeof *r);
    r->stop_after = stop;
    return persist_queue_read(f->p, str(cid), from, max, on_entry, r);
}

/* ---- tests ------------------------------------------------------------------------------- */
static void test_new_store_and_reopen(void **state)
{
    struct fx *f = *state;
    struct seen w;
    assert_int_equal(open_opts(f, false, false), 0);
    assert_true(persist_batch_empty(f->p));
    assert_int_equal(persist_commit(f->p, f->err, sizeof f->err), 0); /* empty: no-op */
    /* a new store needs no restore before changes */
    session(f, "a", 1);
    commit_ok(f);
    assert_int_equal(reopen(f, &w), 0);
    assert_int_equal(w.sessions, 1);
    assert_int_equal(w.q[0].count, 0);
    assert_true(w.q[0].first_seq == 0 && w.q[0].last_seq == 0);
}

static void test_round_trip_all_kinds(void **state)
{
    struct fx *f = *state;
    struct seen w;
    struct rd r = {0};
    assert_int_equal(open_opts(f, false, false), 0);

    struct persist_msg m1 = msg(10, "a/x", "one", 1);
    struct persist_msg m2 = msg(11, "a/y", "two2", 2);
    struct persist_msg rm = {12, S("a/r"), S("ret"), 1, true, {NULL, 0}};
    session(f, "dev1", 1000);
    session(f, "dev2", 2000);
    persist_sub_put(f->p, S("dev1"), S("a/#"), 1);
    persist_sub_put(f->p, S("dev1"), S("b/+"), 2);
    persist_sub_put(f->p, S("dev2"), S("c"), 0);
    enq(f, "dev1", 1, &m1, PERSIST_Q_QUEUED, 0);
    enq(f, "dev1", 2, &m2, PERSIST_Q_WAIT_PUBREC, 7);
    enq(f, "dev2", 5, &m1, PERSIST_Q_WAIT_PUBACK, 3);
    persist_inbound_put(f->p, S("dev1"), 42);
    persist_retain_put(f->p, &rm);
    assert_false(persist_batch_empty(f->p));
    commit_ok(f);

    assert_true(reopen(f, &w) == 12);
    assert_int_equal(w.sessions, 2);
    assert_string_equal(w.cid[0], "dev1");
    assert_true(w.last_seen[0] == 1000);
    assert_true(w.q[0].count == 2 && w.q[0].bytes == 7);
    assert_true(w.q[0].first_seq == 1 && w.q[0].last_seq == 2 && w.q[0].inflight == 1);
    assert_string_equal(w.cid[1], "dev2");
    assert_true(w.last_seen[1] == 2000);
    assert_true(w.q[1].count == 1 && w.q[1].bytes == 3);
    assert_true(w.q[1].first_seq == 5 && w.q[1].last_seq == 5 && w.q[1].inflight == 1);
    assert_int_equal(w.subs, 3);
    assert_string_equal(w.sub_cid[0], "dev1");
    assert_string_equal(w.filter[0], "a/#");
    assert_int_equal(w.sub_qos[0], 1);
    assert_string_equal(w.filter[1], "b/+");
    assert_int_equal(w.sub_qos[1], 2);
    assert_string_equal(w.sub_cid[2], "dev2");
    assert_int_equal(w.inbound, 1);
    assert_int_equal(w.inbound_id[0], 42);
    assert_int_equal(w.retained, 1);
    assert_string_equal(w.retain_topic[0], "a/r");
    assert_string_equal(w.retain_payload[0], "ret");
    assert_true(w.retain_id[0] == 12 && w.retain_qos[0] == 1);
    assert_int_equal(persist__refcount(f->p, 10), 2);
    assert_int_equal(persist__refcount(f->p, 11), 1);
    struct persist_stats st = stats(f);
    assert_true(st.bodies == 2 && st.body_bytes == 7 && st.queued == 3 && st.inflight == 2);
    assert_true(st.garbage == 0 && st.orphans == 0 && st.missing == 0);

    persist_trim(f->p); /* drops mapped table pages; reads go on as before */
    assert_int_equal(qread(f, "dev1", 0, 10, &r), 2);
    assert_true(r.seq[0] == 1 && r.msg_id[0] == 10 && r.state[0] == PERSIST_Q_QUEUED);
    assert_string_equal(r.payload[0], "one");
    assert_true(r.seq[1] == 2 && r.state[1] == PERSIST_Q_WAIT_PUBREC && r.pid[1] == 7);
    assert_string_equal(r.payload[1], "two2");

    /* update an entry, delete a sub, an inbound id and the retained message */
    struct persist_qentry e = {1, 10, 9, 1, PERSIST_Q_WAIT_PUBACK};
    persist_queue_update(f->p, S("dev1"), &e);
    persist_sub_del(f->p, S("dev1"), S("a/#"));
    persist_inbound_del(f->p, S("dev1"), 42);
    persist_retain_del(f->p, S("a/r"));
    commit_ok(f);
    reopen(f, &w);
    assert_int_equal(w.subs, 2);
    assert_int_equal(w.inbound, 0);
    assert_int_equal(w.retained, 0);
    assert_true(w.q[0].count == 2 && w.q[0].bytes == 7 && w.q[0].inflight == 2);
    assert_int_equal(qread(f, "dev1", 0, 10, &r), 2);
    assert_true(r.state[0] == PERSIST_Q_WAIT_PUBACK && r.pid[0] == 9);
}

/*
 * Session owners survive a restart, each with its session (the names are kept beside the
 * client ids while the scan goes on: the iterator's bytes are gone by the time sessions are
 * reported); a record written before owners were stored loads with the owner unknown.
 */
static void test_session_owners(void **state)
{
    struct fx *f = *state;
    struct seen w;
    uint8_t k[64];
    static const uint8_t old[] = {1, 0, 0, 0, 0, 0, 0, 0, 77};
    assert_int_equal(open_opts(f, false, false), 0);

    struct persist_session anon = {.last_seen = 10, .owner = PERSIST_OWNER_ANONYMOUS};
    struct persist_session alice = {
        .last_seen = 20, .owner = PERSIST_OWNER_USER, .user = S("alice")};
    struct persist_session empty = {.last_seen = 30, .owner = PERSIST_OWNER_USER, .user = S("")};
    persist_session_put(f->p, S("a-anon"), &anon);
    persist_session_put(f->p, S("b-alice"), &alice);
    persist_session_put(f->p, S("c-empty"), &empty);
    for (int i = 0; i < 300; i++) { /* enough names to move the scanner's arena */
        char cid[32], user[64];
        snprintf(cid, sizeof cid, "many-%03d", i);
        snprintf(user, sizeof user, "owner-of-%s", cid);
        struct persist_session ps = {
            .last_seen = i, .owner = PERSIST_OWNER_USER, .user = str(user)};
        persist_session_put(f->p, str(cid), &ps);
    }
    commit_ok(f);
    size_t kl = persist_rec_key_session(k, sizeof k, S("d-old"));
    assert_int_equal(persist__put_raw(f->p, k, kl, old, sizeof old), 0);

    reopen(f, &w);
    assert_int_equal(w.sessions, 304);
    assert_int_equal(w.owner_bad, 0);
    /* keys sort by client id length first: d-old, a-anon, b-alice, c-empty, many-000... */
    assert_string_equal(w.cid[0], "d-old");
    assert_int_equal(w.owner[0], PERSIST_OWNER_UNKNOWN);
    assert_true(w.last_seen[0] == 77);
    assert_string_equal(w.cid[1], "a-anon");
    assert_int_equal(w.owner[1], PERSIST_OWNER_ANONYMOUS);
    assert_string_equal(w.user[1], "");
    assert_string_equal(w.cid[2], "b-alice");
    assert_int_equal(w.owner[2], PERSIST_OWNER_USER);
    assert_string_equal(w.user[2], "alice");
    assert_true(w.last_seen[2] == 20);
    assert_string_equal(w.cid[3], "c-empty");
    assert_int_equal(w.owner[3], PERSIST_OWNER_USER);
    assert_string_equal(w.user[3], "");
    /* the owner changes with the record */
    persist_session_put(f->p, S("b-alice"), &anon);
    commit_ok(f);
    reopen(f, &w);
    assert_string_equal(w.cid[2], "b-alice");
    assert_int_equal(w.owner[2], PERSIST_OWNER_ANONYMOUS);
}

static void test_refcount_and_gc(void **state)
{
    struct fx *f = *state;
    struct seen w;
    assert_int_equal(open_opts(f, false, false), 0);
    struct persist_msg m = msg(1, "t", "shared", 1);
    session(f, "a", 0);
    session(f, "b", 0);
    session(f, "c", 0);
    enq(f, "a", 1, &m, 0, 0);
    enq(f, "b", 1, &m, 0, 0);
    enq(f, "c", 1, &m, 0, 0);
    commit_ok(f);
    assert_int_equal(persist__refcount(f->p, 1), 3);
    reopen(f, &w);
    assert_int_equal(stats(f).bodies, 1);
    assert_int_equal(persist__refcount(f->p, 1), 3);

    persist_dequeue(f->p, S("a"), 1, 1);
    persist_dequeue(f->p, S("b"), 1, 1);
    commit_ok(f);
    assert_int_equal(persist__refcount(f->p, 1), 1);
    reopen(f, &w);
    assert_int_equal(stats(f).bodies, 1);
    assert_int_equal(persist__refcount(f->p, 1), 1);
    persist_dequeue(f->p, S("c"), 1, 1);
    commit_ok(f);
    reopen(f, &w);
    assert_int_equal(stats(f).bodies, 0);
    assert_int_equal(stats(f).queued, 0);
    assert_int_equal(persist__refcount_size(f->p), 0);

    /* enqueued and dequeued in the same batch: the body never stays */
    struct persist_msg x = msg(2, "t", "x", 1);
    enq(f, "a", 2, &x, 0, 0);
    enq(f, "b", 2, &x, 0, 0);
    persist_dequeue(f->p, S("a"), 2, 2);
    persist_dequeue(f->p, S("b"), 2, 2);
    assert_int_equal(persist__refcount(f->p, 2), 0);
    /* and again in the same batch: the body is written again */
    enq(f, "c", 2, &x, 0, 0);
    commit_ok(f);
    reopen(f, &w);
    assert_int_equal(stats(f).bodies, 1);
    assert_int_equal(persist__refcount(f->p, 2), 1);
    assert_int_equal(stats(f).garbage, 0);

    /* message id 0 is a valid id */
    struct persist_msg z = msg(0, "t", "zero", 0);
    enq(f, "a", 3, &z, 0, 0);
    commit_ok(f);
    assert_int_equal(persist__refcount(f->p, 0), 1);
    reopen(f, &w);
    assert_int_equal(persist__refcount(f->p, 0), 1);
    persist_dequeue(f->p, S("a"), 3, 0);
    commit_ok(f);
    assert_int_equal(persist__refcount(f->p, 0), 0);

    /* a queue entry without a session, and a body nothing refers to: collected at restore */
    struct persist_msg g = msg(3, "t", "ghost", 1);
    enq(f, "ghost", 1, &g, 0, 0);
    persist_sub_put(f->p, S("ghost"), S("x"), 1);
    persist_inbound_put(f->p, S("ghost"), 5);
    commit_ok(f);
    uint8_t k[16], v[64];
    struct persist_msg orphan = msg(99, "t", "nobody", 1);
    size_t kl = persist_rec_key_msg(k, sizeof k, 99);
    size_t vl = persist_rec_msg(v, sizeof v, &orphan);
    assert_int_equal(persist__put_raw(f->p, k, kl, v, vl), 0);
    assert_true(reopen(f, &w) == 99);
    assert_int_equal(stats(f).orphans, 3);
    assert_int_equal(stats(f).garbage, 2); /* ghost's body and 99 */
    assert_int_equal(w.subs, 0);
    assert_int_equal(w.inbound, 0);
    reopen(f, &w);
    assert_int_equal(stats(f).orphans, 0);
    assert_int_equal(stats(f).garbage, 0);
    assert_int_equal(stats(f).bodies, 1);
}

static void test_session_del(void **state)
{
    struct fx *f = *state;
    struct seen w;
    struct persist_msg m[8];
    struct rd r = {0};
    assert_int_equal(open_opts(f, false, false), 0);
    for (int i = 1; i <= 5; i++)
        m[i] = msg((uint64_t)i, "t", "body", 1);
    session(f, "s", 1);
    session(f, "s2", 1); /* a client whose id extends "s": untouched */
    session(f, "t", 1);
    persist_sub_put(f->p, S("s"), S("a"), 1);
    persist_sub_put(f->p, S("s"), S("b"), 1);
    persist_sub_put(f->p, S("s2"), S("a"), 1);
    persist_inbound_put(f->p, S("s"), 1);
    persist_inbound_put(f->p, S("s"), 2);
    for (int i = 1; i <= 5; i++)
        enq(f, "s", (uint64_t)i, &m[i], 0, 0);
    enq(f, "t", 1, &m[1], 0, 0);
    enq(f, "t", 2, &m[2], 0, 0);
    enq(f, "s2", 1, &m[3], 0, 0);
    commit_ok(f);

    /* one batch: changes to s, then s deleted */
    struct persist_msg m20 = msg(20, "t", "new", 1);
    persist_dequeue(f->p, S("s"), 1, 1);
    enq(f, "s", 6, &m20, 0, 0);
    struct persist_qentry upd = {2, 2, 5, 1, PERSIST_Q_WAIT_PUBACK};
    persist_queue_update(f->p, S("s"), &upd);
    persist_sub_put(f->p, S("s"), S("c"), 2);
    persist_inbound_put(f->p, S("s"), 3);
    persist_session_del(f->p, S("s"));
    persist_session_del(f->p, S("s")); /* twice: no reference dropped twice */
    assert_int_equal(persist__refcount(f->p, 1), 1);
    assert_int_equal(persist__refcount(f->p, 2), 1);
    assert_int_equal(persist__refcount(f->p, 3), 1);
    assert_int_equal(persist__refcount(f->p, 4), 0);
    assert_int_equal(persist__refcount(f->p, 20), 0);
    commit_ok(f);

    reopen(f, &w);
    assert_int_equal(w.sessions, 2);
    assert_string_equal(w.cid[0], "t"); /* client-id order: shorter ids first */
    assert_string_equal(w.cid[1], "s2");
    assert_int_equal(w.q[0].count, 2);
    assert_int_equal(w.q[1].count, 1);
    assert_int_equal(w.subs, 1);
    assert_string_equal(w.sub_cid[0], "s2");
    assert_int_equal(w.inbound, 0);
    struct persist_stats st = stats(f);
    assert_true(st.bodies == 3 && st.garbage == 0 && st.orphans == 0);
    assert_int_equal(qread(f, "s", 0, 10, &r), 0);

    /* a session created and deleted in one batch leaves nothing */
    session(f, "n", 1);
    enq(f, "n", 1, &m20, 0, 0);
    persist_sub_put(f->p, S("n"), S("z"), 0);
    persist_session_del(f->p, S("n"));
    commit_ok(f);
    reopen(f, &w);
    assert_int_equal(w.sessions, 2);
    assert_int_equal(stats(f).bodies, 3);
    assert_int_equal(stats(f).orphans, 0);
    assert_int_equal(stats(f).garbage, 0);
}

static void test_queue_read_windows(void **state)
{
    struct fx *f = *state;
    struct seen w;
    struct rd r = {0};
    char payload[16];
    assert_int_equal(open_opts(f, false, false), 0);
    session(f, "w", 0);
    session(f, "w2", 0);
    for (uint64_t i = 1; i <= 100; i++) {
        snprintf(payload, sizeof payload, "p%llu", (unsigned long long)i);
        struct persist_msg m = msg(i, "t", payload, 1);
        enq(f, "w", i, &m, 0, 0);
    }
    struct persist_msg o = msg(1000, "t", "other", 1);
    enq(f, "w2", 1, &o, 0, 0);
    commit_ok(f);
    reopen(f, &w);
    assert_true(w.q[0].count == 100 && w.q[0].first_seq == 1 && w.q[0].last_seq == 100);

    assert_int_equal(qread(f, "w", 1, 10, &r), 10);
    assert_true(r.seq[0] == 1 && r.seq[9] == 10);
    assert_string_equal(r.payload[9], "p10");
    assert_int_equal(qread(f, "w", 11, 10, &r), 10);
    assert_true(r.seq[0] == 11 && r.seq[9] == 20);
    assert_int_equal(qread(f, "w", 95, 10, &r), 6);
    assert_true(r.seq[5] == 100);
    assert_int_equal(qread(f, "w", 101, 10, &r), 0);
    assert_int_equal(qread(f, "w", 1, 0, &r), 0);
    assert_int_equal(qread(f, "nobody", 0, 10, &r), 0);
    assert_int_equal(qread(f, "w2", 0, 10, &r), 1);
    assert_string_equal(r.payload[0], "other");
    r.stop_after = 3;
    assert_int_equal(qread(f, "w", 1, 10, &r), 3);
    r.stop_after = -42;
    assert_int_equal(qread(f, "w", 1, 10, &r), -42);
    r.stop_after = 0;

    for (uint64_t i = 1; i <= 50; i++)
        persist_dequeue(f->p, S("w"), i, i);
    /* the open batch is not seen by reads */
    assert_int_equal(qread(f, "w", 0, 5, &r), 5);
    assert_true(r.seq[0] == 1);
    commit_ok(f);
    assert_int_equal(qread(f, "w", 0, 5, &r), 5);
    assert_true(r.seq[0] == 51 && r.seq[4] == 55);
    assert_int_equal(qread(f, "w", 0, 1000, &r), 50);
}

static void test_lock_same_process(void **state)
{
    struct fx *f = *state;
    struct persist *q = NULL;
    struct persist_options o = {.dir = f->dir};
    assert_int_equal(open_opts(f, false, false), 0);
    int rc = persist_open(&o, &q, f->err, sizeof f->err);
    assert_int_equal(rc, -EBUSY);
    assert_null(q);
    assert_non_null(strstr(f->err, "locked"));
    assert_null(strchr(f->err, '\n'));
}

static void test_lock_other_process(void **state)
{
    struct fx *f = *state;
    int up[2], down[2];
    char c;
    assert_int_equal(open_opts(f, false, false), 0);
    persist_close(f->p);
    f->p = NULL;
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct persist *p = NULL;
        struct persist_options o = {.dir = f->dir};
        char err[256];
        close(up[0]);
        close(down[1]);
        if (persist_open(&o, &p, err, sizeof err) != 0)
            _exit(1);
        if (write(up[1], "x", 1) != 1)
            _exit(2);
        if (read(down[0], &c, 1) < 0)
            _exit(3);
        persist_close(p);
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    assert_int_equal(read(up[0], &c, 1), 1);

    char want[64];
    snprintf(want, sizeof want, "process %d", (int)pid);
    assert_int_equal(open_opts(f, false, false), -EBUSY);
    assert_non_null(strstr(f->err, want));
    /* the inspector says so too, without touching the store */
    assert_int_equal(open_opts(f, false, true), -EBUSY);
    assert_non_null(strstr(f->err, want));
    assert_non_null(strstr(f->err, "in use"));

    close(down[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(up[0]);
    assert_int_equal(open_opts(f, false, false), 0);
}

/* Write a store with n queued messages, then close it. */
static void fill(struct fx *f, int n)
{
    char payload[128];
    assert_int_equal(open_opts(f, false, false), 0);
    session(f, "dev", 1);
    for (int i = 1; i <= n; i++) {
        snprintf(payload, sizeof payload, "%0100d", i);
        struct persist_msg m = msg((uint64_t)i, "t/x", payload, 1);
        enq(f, "dev", (uint64_t)i, &m, 0, 0);
        if (i % 100 == 0)
            commit_ok(f);
    }
    commit_ok(f);
    persist_close(f->p);
    f->p = NULL;
}

/* Overwrite the middle of a file with garbage. */
static void damage(const char *path)
{
    struct stat st;
    char junk[4096];
    assert_int_equal(stat(path, &st), 0);
    memset(junk, 0x5A, sizeof junk);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    off_t off = st.st_size / 3;
    size_t n = (size_t)(st.st_size / 3) < sizeof junk ? (size_t)(st.st_size / 3) : sizeof junk;
    assert_int_equal(pwrite(fd, junk, n, off), (ssize_t)n);
    close(fd);
}

/* Damage every file of the store ending in suffix; returns how many. */
static int damage_all(struct fx *f, const char *suffix)
{
    DIR *d = opendir(f->db);
    struct dirent *de;
    char path[512];
    int n = 0;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), m = strlen(suffix);
        if (l < m || strcmp(de->d_name + l - m, suffix) != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", f->db, de->d_name);
        damage(path);
        n++;
    }
    closedir(d);
    return n;
}

/* Opening or restoring a damaged store must fail with a reason, never succeed empty. */
static void expect_refused(struct fx *f)
{
    struct seen w = {0};
    uint64_t max_id;
    int rc = open_opts(f, false, false);
    if (rc == 0) {
        rc = persist_restore(f->p, &ops, &w, &max_id, f->err, sizeof f->err);
        persist_close(f->p);
        f->p = NULL;
    }
    assert_true(rc < 0);
    assert_true(strlen(f->err) > 10);
    assert_null(strchr(f->err, '\n'));
}

static void test_corrupt_current(void **state)
{
    struct fx *f = *state;
    char path[256];
    fill(f, 10);
    snprintf(path, sizeof path, "%s/CURRENT", f->db);
    FILE *fp = fopen(path, "w");
    fputs("garbage, not a manifest name", fp);
    fclose(fp);
    expect_refused(f);
    assert_non_null(strstr(f->err, "corrupt"));
}

static void test_missing_current(void **state)
{
    struct fx *f = *state;
    char path[256];
    fill(f, 10);
    snprintf(path, sizeof path, "%s/CURRENT", f->db);
    assert_int_equal(unlink(path), 0);
    expect_refused(f); /* LevelDB alone would create an empty store here */
    assert_non_null(strstr(f->err, "CURRENT"));
}

static void test_corrupt_table(void **state)
{
    struct fx *f = *state;
    struct seen w;
    fill(f, 3000);
    reopen(f, &w); /* recovery turns the log into a table file */
    assert_int_equal(stats(f).queued, 3000);
    persist_close(f->p);
    f->p = NULL;
    assert_true(damage_all(f, ".ldb") > 0);
    expect_refused(f);
}

/* Damage in the middle of a log, good records after it: not a torn write, so refused (LevelDB
 * would drop the rest of the block, which may hold acknowledged records). */
static void test_corrupt_log(void **state)
{
    struct fx *f = *state;
    fill(f, 300); /* still in the log: closing does not flush the memtable */
    assert_true(damage_all(f, ".log") > 0);
    expect_refused(f);
    assert_non_null(strstr(f->err, "not a torn tail"));
}

static void test_unusable_paths(void **state)
{
    struct fx *f = *state;
    struct persist *q = NULL;
    char path[160];
    struct persist_options o = {.dir = path};

    snprintf(path, sizeof path, "%s/file", f->root);
    FILE *fp = fopen(path, "w");
    fclose(fp);
    assert_true(persist_open(&o, &q, f->err, sizeof f->err) < 0);
    assert_null(q);
    assert_non_null(strstr(f->err, path));
    assert_non_null(strstr(f->err, "Not a directory"));

    snprintf(path, sizeof path, "%s/no/such/parent", f->root);
    assert_true(persist_open(&o, &q, f->err, sizeof f->err) < 0);
    assert_null(q);
    assert_non_null(strstr(f->err, path));
    assert_null(strchr(f->err, '\n'));

    o.dir = "";
    assert_int_equal(persist_open(&o, &q, f->err, sizeof f->err), -EINVAL);
}

/* A LevelDB database that some other program wrote is not taken for an empty Cairn store. */
static void test_foreign_database(void **state)
{
    struct fx *f = *state;
    uint8_t k[16];
    assert_int_equal(open_opts(f, false, false), 0);
    /* remove the format key by hand, leaving other data */
    assert_int_equal(persist__put_raw(f->p, "\x7f-foreign", 9, "x", 1), 0);
    size_t kl = persist_rec_key_meta(k, sizeof k);
    assert_int_equal(persist__del_raw(f->p, k, kl), 0);
    persist_close(f->p);
    f->p = NULL;
    assert_int_equal(open_opts(f, false, false), -EPROTO);
    assert_non_null(strstr(f->err, "not a Cairn store"));
}

static void test_unknown_format(void **state)
{
    struct fx *f = *state;
    uint8_t k[16], v[16];
    assert_int_equal(open_opts(f, false, false), 0);
    size_t kl = persist_rec_key_meta(k, sizeof k);
    size_t vl = persist_rec_meta(v, sizeof v, PERSIST_FORMAT + 1);
    assert_int_equal(persist__put_raw(f->p, k, kl, v, vl), 0);
    persist_close(f->p);
    f->p = NULL;
    assert_int_equal(open_opts(f, false, false), -EPROTO);
    assert_null(f->p);
    assert_non_null(strstr(f->err, "format version 2"));
}

static void test_damaged_record(void **state)
{
    struct fx *f = *state;
    uint8_t k[64];
    uint64_t max_id;
    struct seen w = {0};
    assert_int_equal(open_opts(f, false, false), 0);
    size_t kl = persist_rec_key_session(k, sizeof k, S("bad"));
    assert_int_equal(persist__put_raw(f->p, k, kl, "\x01\x02", 2), 0);
    assert_int_equal(persist_restore(f->p, &ops, &w, &max_id, f->err, sizeof f->err), -EBADMSG);
    assert_non_null(strstr(f->err, "damaged session record"));
    /* changes are refused until a restore succeeds */
    session(f, "x", 1);
    assert_int_equal(persist_commit(f->p, f->err, sizeof f->err), -EINVAL);

    /* a key of no known kind */
    assert_int_equal(persist__put_raw(f->p, k, kl, "\x01\0\0\0\0\0\0\0\0", 9), 0);
    assert_int_equal(persist__put_raw(f->p, "\x7f", 1, "", 0), 0);
    assert_int_equal(persist_restore(f->p, &ops, &w, &max_id, f->err, sizeof f->err), -EBADMSG);
    assert_non_null(strstr(f->err, "damaged key"));
}

static void test_missing_body(void **state)
{
    struct fx *f = *state;
    uint8_t k[64], v[64];
    uint64_t max_id;
    struct seen w = {0};
    assert_int_equal(open_opts(f, false, false), 0);
    session(f, "a", 1);
    commit_ok(f);
    struct persist_qentry e = {1, 77, 0, 1, 0};
    size_t kl = persist_rec_key_queue(k, sizeof k, S("a"), 1);
    size_t vl = persist_rec_qentry(v, sizeof v, &e, 5);
    assert_int_equal(persist__put_raw(f->p, k, kl, v, vl), 0);
    assert_int_equal(persist_restore(f->p, &ops, &w, &max_id, f->err, sizeof f->err), -EBADMSG);
    assert_non_null(strstr(f->err, "missing"));
}

static void test_commit_failure(void **state)
{
    struct fx *f = *state;
    struct seen w;
    struct rd r = {0};
    assert_int_equal(open_opts(f, false, false), 0);
    session(f, "a", 1);
    commit_ok(f);

    struct persist_msg m1 = msg(1, "t", "m1", 1), m2 = msg(2, "t", "m2", 1);
    struct persist_msg m3 = msg(3, "t", "m3", 1);
    persist__fail_commits(f->p, 1);
    enq(f, "a", 1, &m1, 0, 0);
    session(f, "lost", 1);
    assert_int_equal(persist_commit(f->p, f->err, sizeof f->err), -EIO);
    assert_non_null(strstr(f->err, "write failed"));
    assert_true(persist_batch_empty(f->p));
    assert_int_equal(persist__refcount(f->p, 1), 0);

    enq(f, "a", 2, &m2, 0, 0);
    commit_ok(f);
    persist__fail_commits(f->p, 1);
    persist_dequeue(f->p, S("a"), 2, 2);
    enq(f, "a", 3, &m3, 0, 0);
    persist_session_del(f->p, S("a"));
    assert_int_equal(persist_commit(f->p, f->err, sizeof f->err), -EIO);
    assert_int_equal(persist__refcount(f->p, 2), 1); /* as the store still has it */
    assert_int_equal(persist__refcount(f->p, 3), 0);

    enq(f, "a", 3, &m3, 0, 0);
    commit_ok(f);
    assert_int_equal(persist__refcount(f->p, 3), 1);

    /* an invalid change refuses the whole batch: atomic, nothing of it is written */
    struct persist_msg bad = msg(4, "t", "bad", 3);
    session(f, "also-lost", 1);
    enq(f, "a", 4, &bad, 0, 0);
    assert_false(persist_batch_empty(f->p));
    assert_int_equal(persist_commit(f->p, f->err, sizeof f->err), -EINVAL);
    assert_non_null(strstr(f->err, "refused"));
    assert_int_equal(persist__refcount(f->p, 4), 0);

    reopen(f, &w);
    assert_int_equal(w.sessions, 1);
    assert_int_equal(qread(f, "a", 0, 10, &r), 2);
    assert_true(r.seq[0] == 2 && r.seq[1] == 3);
    assert_int_equal(stats(f).bodies, 2);
}

/*
 * After a failed commit the broker may still hold entries the store never got. Removing or
 * updating them later must not touch what the store does hold: the shared body keeps its
 * reference and the store still opens.
 */
static void test_entries_of_a_failed_batch(void **state)
{
    struct fx *f = *state;
    struct seen w;
    struct rd r = {0};
    assert_int_equal(open_opts(f, false, false), 0);
    struct persist_msg x = msg(1, "t", "shared", 1), y = msg(2, "t", "lost", 1);
    session(f, "s1", 1);
    session(f, "s2", 1);
    enq(f, "s1", 1, &x, 0, 0);
    commit_ok(f);

    persist__fail_commits(f->p, 1);
    enq(f, "s2", 1, &x, 0, 0); /* a retained message delivered later, say */
    enq(f, "s2", 2, &y, 0, 0);
    assert_int_equal(persist__refcount(f->p, 1), 2);
    assert_int_equal(persist_commit(f->p, f->err, sizeof f->err), -EIO);
    assert_int_equal(persist__refcount(f->p, 1), 1);
    assert_int_equal(persist__refcount(f->p, 2), 0);

    /* the broker goes on with the entries it still has in memory */
    struct persist_qentry u1 = {1, 1, 5, 1, PERSIST_Q_WAIT_PUBACK};
    struct persist_qentry u2 = {2, 2, 6, 1, PERSIST_Q_WAIT_PUBACK};
    persist_queue_update(f->p, S("s2"), &u1);
    persist_queue_update(f->p, S("s2"), &u2);
    persist_dequeue(f->p, S("s2"), 1, 1);
    persist_dequeue(f->p, S("s2"), 2, 2);
    commit_ok(f);
    assert_int_equal(persist__ignored(f->p), 4);
    assert_int_equal(persist__refcount(f->p, 1), 1);
    assert_int_equal(qread(f, "s2", 0, 10, &r), 0);

    /* entries that do exist are still handled, with the store's msg id */
    enq(f, "s2", 3, &y, 0, 0);
    commit_ok(f);
    persist_dequeue(f->p, S("s2"), 3, 999); /* a wrong id from the caller */
    commit_ok(f);
    assert_int_equal(persist__refcount(f->p, 2), 0);
    /* and within one batch */
    enq(f, "s2", 4, &y, 0, 0);
    struct persist_qentry u4 = {4, 2, 7, 1, PERSIST_Q_WAIT_PUBACK};
    persist_queue_update(f->p, S("s2"), &u4);
    persist_dequeue(f->p, S("s2"), 4, 2);
    commit_ok(f);
    assert_int_equal(persist__refcount(f->p, 2), 0);

    reopen(f, &w); /* no missing body: the store opens */
    assert_int_equal(stats(f).bodies, 1);
    assert_int_equal(stats(f).missing, 0);
    assert_int_equal(qread(f, "s1", 0, 10, &r), 1);
    assert_string_equal(r.payload[0], "shared");
}

/*
 * A real LevelDB write failure: the file size limit makes the log write fail with EFBIG.
 * In a child process, so the limit and the signal disposition stay there.
 */
static void test_leveldb_write_failure(void **state)
{
    struct fx *f = *state;
    assert_int_equal(open_opts(f, false, false), 0);
    session(f, "a", 1);
    commit_ok(f);
    persist_close(f->p);
    f->p = NULL;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct persist *p = NULL;
        struct persist_options o = {.dir = f->dir};
        struct persist_restore_ops none = {0};
        char err[512];
        uint64_t max_id;
        static char big[512 * 1024];
        memset(big, 'b', sizeof big);
        if (persist_open(&o, &p, err, sizeof err) ||
            persist_restore(p, &none, NULL, &max_id, err, sizeof err))
            _exit(10);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl;
        getrlimit(RLIMIT_FSIZE, &rl);
        rl.rlim_cur = 256 * 1024;
        if (setrlimit(RLIMIT_FSIZE, &rl))
            _exit(11);
        struct persist_msg m = {1, S("t"), {(const uint8_t *)big, sizeof big}, 1, false, {NULL, 0}};
        struct persist_qentry e = {1, 1, 0, 1, 0};
        persist_enqueue(p, S("a"), &e, &m);
        int rc = persist_commit(p, err, sizeof err);
        if (rc != -EIO || !strstr(err, "write failed"))
            _exit(12);
        if (!persist_batch_empty(p) || persist__refcount(p, 1) != 0)
            _exit(13);
        /* the next commit reopens the store first (a fresh log with room), then writes */
        struct persist_session s2 = {.last_seen = 2};
        persist_session_put(p, S("b"), &s2);
        if (persist_commit(p, err, sizeof err) != 0)
            _exit(14);
        persist_close(p);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* the store opens: the failed write is absent, the one after it present */
    struct persist_stats st;
    struct seen w = {0};
    uint64_t max_id;
    if (open_opts(f, false, false) != 0)
        fail_msg("reopen after a failed write: %s", f->err);
    assert_int_equal(persist_restore(f->p, &ops, &w, &max_id, f->err, sizeof f->err), 0);
    st = stats(f);
    assert_int_equal(w.sessions, 2);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.bodies, 0);
}

/* The log of f's store (the only one after fill()). */
static void log_path(struct fx *f, char *out, size_t cap)
{
    DIR *d = opendir(f->db);
    struct dirent *de;
    out[0] = '\0';
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".log") == 0)
            snprintf(out, cap, "%s/%s", f->db, de->d_name);
    }
    closedir(d);
    assert_true(out[0]);
}

/*
 * A log whose last record is torn (complete in length, wrong in content: a write cut short
 * whose pages half reached the disk) opens: LevelDB's recovery drops that record, says so, and
 * everything before it is there.
 */
static void test_torn_tail_repaired(void **state)
{
    struct fx *f = *state;
    char path[512];
    uint8_t rec[7 + 40];
    struct seen w = {0};
    uint64_t max_id;
    struct stat st;
    FILE *fp;

    fill(f, 300); /* in the log: closing does not flush the memtable */
    log_path(f, path, sizeof path);
    assert_int_equal(stat(path, &st), 0);
    memset(rec, 0x77, sizeof rec);
    rec[4] = 40; /* length 40, FULL, CRC wrong */
    rec[5] = 0;
    rec[6] = 1;
    if ((size_t)(32768 - st.st_size % 32768) < sizeof rec)
        skip(); /* would straddle a block; fill() never leaves it so */
    fp = fopen(path, "ab");
    assert_non_null(fp);
    assert_int_equal(fwrite(rec, 1, sizeof rec, fp), sizeof rec);
    fclose(fp);
    if (open_opts(f, false, false) != 0)
        fail_msg("a torn tail refused: %s", f->err);
    assert_true(strlen(persist_repair_note(f->p)) > 0);
    assert_int_equal(persist_restore(f->p, &ops, &w, &max_id, f->err, sizeof f->err), 0);
    assert_int_equal(stats(f).queued, 300);
}

static void test_changes_before_restore(void **state)
{
    struct fx *f = *state;
    uint64_t max_id;
    fill(f, 5);
    assert_int_equal(open_opts(f, false, false), 0);
    persist_dequeue(f->p, S("dev"), 1, 1);
    assert_false(persist_batch_empty(f->p));
    assert_int_equal(persist_commit(f->p, f->err, sizeof f->err), -EINVAL);
    assert_non_null(strstr(f->err, "persist_restore"));
    assert_int_equal(persist_restore(f->p, NULL, NULL, &max_id, f->err, sizeof f->err), 0);
    assert_true(max_id == 5);
    persist_dequeue(f->p, S("dev"), 1, 1);
    commit_ok(f);
    assert_int_equal(persist__refcount(f->p, 1), 0);
    assert_int_equal(persist__refcount(f->p, 2), 1);
}

/* Names, sizes and modification times of the store's files. */
static void listing(const char *dir, char *out, size_t cap)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        char path[512];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && len < cap)
            len += (size_t)snprintf(out + len, cap - len, "%s:%lld:%lld.%09ld ", names[i]->d_name,
                                    (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                                    st.st_mtim.tv_nsec);
        free(names[i]);
    }
    free(names);
}

static void test_read_only(void **state)
{
    struct fx *f = *state;
    char before[4096], after[4096];
    uint64_t max_id;
    struct seen w = {0};

    assert_int_equal(open_opts(f, false, true), -ENOENT); /* nothing there yet */
    fill(f, 50);
    listing(f->db, before, sizeof before);
    assert_int_equal(open_opts(f, false, true), 0);
    assert_int_equal(persist_restore(f->p, &ops, &w, &max_id, f->err, sizeof f->err), 0);
    assert_int_equal(w.sessions, 1);
    assert_int_equal(w.q[0].count, 50);
    assert_true(max_id == 50);
    session(f, "x", 1);
    assert_int_equal(persist_commit(f->p, f->err, sizeof f->err), -EROFS);
    persist_close(f->p);
    f->p = NULL;
    listing(f->db, after, sizeof after);
    assert_string_equal(before, after);
}

/*
 * persistence_location may hold other files — Mosquitto's mosquitto.db, logs, names LevelDB
 * uses for itself — and they are left alone: the store lives in its own cairn.db directory.
 * A store an earlier Cairn made right in the directory is opened where it is.
 */
static void test_location_shared_with_other_files(void **state)
{
    struct fx *f = *state;
    static const char *const others[] = {"mosquitto.db", "broker.log",   "LOG",
                                         "LOG.old",      "000001.dbtmp", "notes.txt"};
    char path[1024];
    struct stat st;
    FILE *fp;

    assert_int_equal(mkdir(f->dir, 0700), 0);
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", f->dir, others[i]);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputs("someone else's\n", fp);
        fclose(fp);
    }
    fill(f, 5);
    assert_int_equal(open_opts(f, false, false), 0);
    assert_string_equal(persist_path(f->p), f->db);
    persist_close(f->p);
    f->p = NULL;
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        char buf[32] = "";
        snprintf(path, sizeof path, "%s/%s", f->dir, others[i]);
        fp = fopen(path, "r");
        assert_non_null(fp);
        assert_non_null(fgets(buf, sizeof buf, fp));
        fclose(fp);
        assert_string_equal(buf, "someone else's\n");
    }
    /* an earlier Cairn's store right in the directory: used in place */
    snprintf(path, sizeof path, "mv '%s' '%s.old' && mv '%s.old/%s' '%s' && rm -rf '%s.old'",
             f->dir, f->dir, f->dir, PERSIST_STORE_NAME, f->dir, f->dir);
    assert_int_equal(system(path), 0);
    assert_int_equal(open_opts(f, false, false), 0);
    assert_string_equal(persist_path(f->p), f->dir);
    assert_int_not_equal(stat(f->db, &st), 0);
}

static void test_sync_mode(void **state)
{
    struct fx *f = *state;
    struct seen w;
    assert_int_equal(open_opts(f, true, false), 0);
    session(f, "s", 1);
    for (uint64_t i = 1; i <= 10; i++) {
        struct persist_msg m = msg(i, "t", "sync", 1);
        enq(f, "s", i, &m, 0, 0);
        commit_ok(f);
    }
    reopen(f, &w);
    assert_int_equal(w.q[0].count, 10);
}

static int stop_session(void *ctx, struct mqtt_str cid, const struct persist_session *s,
                        const struct persist_queue_info *q)
{
    return 7;
}

static void test_restore_stops_on_callback(void **state)
{
    struct fx *f = *state;
    uint64_t max_id;
    struct persist_restore_ops stop = {.session = stop_session};
    fill(f, 3);
    assert_int_equal(open_opts(f, false, false), 0);
    assert_int_equal(persist_restore(f->p, &stop, NULL, &max_id, f->err, sizeof f->err), 7);
    /* a restore cut short leaves the counts unknown: changes refused */
    session(f, "x", 1);
    assert_int_equal(persist_commit(f->p, f->err, sizeof f->err), -EINVAL);
    assert_int_equal(persist_restore(f->p, NULL, NULL, &max_id, f->err, sizeof f->err), 0);
    session(f, "x", 1);
    commit_ok(f);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_new_store_and_reopen),
        T(test_round_trip_all_kinds),
        T(test_session_owners),
        T(test_refcount_and_gc),
        T(test_session_del),
        T(test_queue_read_windows),
        T(test_lock_same_process),
        T(test_lock_other_process),
        T(test_corrupt_current),
        T(test_missing_current),
        T(test_corrupt_table),
        T(test_corrupt_log),
        T(test_unusable_paths),
        T(test_foreign_database),
        T(test_unknown_format),
        T(test_damaged_record),
        T(test_missing_body),
        T(test_commit_failure),
        T(test_entries_of_a_failed_batch),
        T(test_leveldb_write_failure),
        T(test_torn_tail_repaired),
        T(test_changes_before_restore),
        T(test_read_only),
        T(test_sync_mode),
        T(test_location_shared_with_other_files),
        T(test_restore_stops_on_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
