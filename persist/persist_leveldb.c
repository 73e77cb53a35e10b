/*
 * persist_leveldb.c — persist.h on LevelDB. The only file that includes <leveldb/c.h>.
 *
 * Changes go into one leveldb_writebatch; persist_commit() writes it with one leveldb_write().
 * Message bodies are counted in memory (msg id -> references, payload length), so a verb never
 * has to read the store to know whether a body must be written or deleted. Two logs live as long
 * as the open batch:
 *  - the undo log: the reference count of each id before the batch changed it, so a failed
 *    commit puts the counts back exactly as the store still has them;
 *  - the pending log: keys of per-client records put (and queue entries removed) in the batch,
 *    because persist_session_del() scans the committed store and must also see what the batch
 *    already added or removed for that client.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <leveldb/c.h>

#include "persist.h"
#include "persist_internal.h"
#include "persist_record.h"
#include "persist_refs.h"

#define CACHE_BYTES        (16u << 20) /* LRU block cache */
#define WRITE_BUFFER_BYTES (8u << 20)  /* memtable: fewer, larger level-0 files under load */
#define MAX_OPEN_FILES     500
#define BLOOM_BITS         10
#define KEY_MAX            (1 + 2 + PERSIST_CID_MAX + 65535 + 8) /* sub key: cid + filter */
#define SMALL_REC          32                                    /* every fixed-size record */
#define TRIM_EVERY         (64u << 10) /* records scanned between two trims in a restore */

struct buf {
    uint8_t *p;
    size_t len;
    size_t cap;
};

struct undo {
    uint64_t id;
    uint32_t count; /* before the change */
    uint32_t len;
};

enum pend_op { PEND_PUT, PEND_DEL, PEND_KILL };

struct pend {
    size_t off; /* key bytes in pendkeys */
    uint32_t klen;
    uint8_t op;
    uint64_t msg_id; /* queue entries */
};

struct persist {
    leveldb_t *db;
    leveldb_options_t *opts;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *filter;
    leveldb_readoptions_t *ropts;     /* point reads and window reads */
    leveldb_readoptions_t *scan_opts; /* full scans: do not flush the cache */
    leveldb_writeoptions_t *wopts;
    leveldb_writebatch_t *batch;
    size_t batch_ops;
    int batch_err; /* sticky until the next commit, which reports it */
    char batch_errmsg[200];
    unsigned fail_commits;
    bool read_only;
    bool restored;
    bool checked;     /* a commit failed: look entries up before dequeue and update */
    uint64_t ignored; /* dequeues and updates of entries the store does not hold */
    char *snap_dir;
    char *real_dir; /* absolute path LevelDB's table mappings show in /proc/self/maps */

    struct persist_refs refs;
    struct undo *undo;
    size_t nundo, capundo;
    struct pend *pend;
    size_t npend, cappend;
    struct buf pendkeys;
    uint8_t *kbuf; /* KEY_MAX bytes: every key fits */
    struct buf vbuf;
    struct persist_stats stats;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    /* one line: LevelDB's text may hold a newline */
    for (char *c = err; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
}

static bool buf_reserve(struct buf *b, size_t n)
{
    if (n <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < n)
        cap *= 2;
    uint8_t *q = realloc(b->p, cap);
    if (!q)
        return false;
    b->p = q;
    b->cap = cap;
    return true;
}

static uint64_t be64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}

static bool has_prefix(const uint8_t *k, size_t kl, const uint8_t *pre, size_t pl)
{
    return kl >= pl && memcmp(k, pre, pl) == 0;
}

/* ---- the open batch -------------------------------------------------------------------- */
static void batch_fail(struct persist *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void batch_fail(struct persist *p, int code, const char *fmt, ...)
{
    va_list ap;
    if (p->batch_err)
        return; /* the first reason is the one worth reporting */
    p->batch_err = code;
    va_start(ap, fmt);
    vsnprintf(p->batch_errmsg, sizeof p->batch_errmsg, fmt, ap);
    va_end(ap);
}

static bool change_ok(struct persist *p)
{
    if (p->batch_err)
        return false;
    if (p->read_only)
        batch_fail(p, -EROFS, "store opened read-only");
    else if (!p->restored)
        batch_fail(p, -EINVAL, "change before persist_restore() rebuilt the reference counts");
    return !p->batch_err;
}

static void batch_put(struct persist *p, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    leveldb_writebatch_put(p->batch, (const char *)k, kl, (const char *)v, vl);
    p->batch_ops++;
}

static void batch_del(struct persist *p, const uint8_t *k, size_t kl)
{
    leveldb_writebatch_delete(p->batch, (const char *)k, kl);
    p->batch_ops++;
}

static void pend_push(struct persist *p, const uint8_t *k, size_t kl, uint8_t op, uint64_t msg_id)
{
    if (!persist__grow((void **)&p->pend, &p->cappend, p->npend + 1, sizeof *p->pend) ||
        !buf_reserve(&p->pendkeys, p->pendkeys.len + kl)) {
        batch_fail(p, -ENOMEM, "out of memory");
        return;
    }
    memcpy(p->pendkeys.p + p->pendkeys.len, k, kl);
    p->pend[p->npend++] = (struct pend){p->pendkeys.len, (uint32_t)kl, op, msg_id};
    p->pendkeys.len += kl;
}

static bool undo_push(struct persist *p, const struct persist_ref *r, uint64_t id)
{
    if (!persist__grow((void **)&p->undo, &p->capundo, p->nundo + 1, sizeof *p->undo))
        return false;
    p->undo[p->nundo++] = (struct undo){id, r->count, r->len};
    return true;
}

/* Put the reference counts back as they were when the batch opened. */
static void undo_all(struct persist *p)
{
    while (p->nundo) {
        struct undo *u = &p->undo[--p->nundo];
        if (u->count == 0) {
            persist_refs_remove(&p->refs, u->id);
            continue;
        }
        /* cannot fail: the table never shrinks, so the slot count that held it still does */
        struct persist_ref *r = persist_refs_get(&p->refs, u->id);
        if (r) {
            r->count = u->count;
            r->len = u->len;
        }
    }
}

static void batch_discard(struct persist *p)
{
    leveldb_writebatch_clear(p->batch);
    p->batch_ops = 0;
    p->batch_err = 0;
    p->batch_errmsg[0] = '\0';
    p->nundo = 0;
    p->npend = 0;
    p->pendkeys.len = 0;
}

/* One more reference to id; returns the new count, 0 when out of memory. */
static uint32_t msg_ref(struct persist *p, uint64_t id, uint32_t len)
{
    struct persist_ref *r = persist_refs_get(&p->refs, id);
    if (!r || !undo_push(p, r, id)) {
        if (r && r->count == 0)
            persist_refs_remove(&p->refs, id);
        batch_fail(p, -ENOMEM, "out of memory");
        return 0;
    }
    if (r->count == 0)
        r->len = len;
    return ++r->count;
}

/* One reference fewer; the body goes with the last one. */
static void msg_unref(struct persist *p, uint64_t id)
{
    uint8_t k[16];
    struct persist_ref *r = persist_refs_find(&p->refs, id);
    if (!r)
        return; /* nothing counted: the caller's bookkeeping is off; never underflow */
    if (!undo_push(p, r, id)) {
        batch_fail(p, -ENOMEM, "out of memory");
        return;
    }
    if (--r->count == 0) {
        persist_refs_remove(&p->refs, id);
        batch_del(p, k, persist_rec_key_msg(k, sizeof k, id));
    }
}

/*
 * After a failed commit the broker may still hold queue entries the store never got (their
 * batch was discarded). Removing such an entry must not drop a reference another session's
 * entry holds, and updating it must not create an entry without a reference. So from the first
 * failure on, an entry is looked up (the open batch first, then the store) before it is
 * touched. Returns 1 (it exists; *msg_id from its record), 0 (it does not) or -1 (read error).
 */
static int entry_lookup(struct persist *p, const uint8_t *k, size_t kl, uint64_t *msg_id)
{
    char *e = NULL;
    size_t vl;
    struct persist_qentry q;
    uint32_t plen;
    int rc;

    for (size_t i = p->npend; i-- > 0;) {
        const struct pend *d = &p->pend[i];
        const uint8_t *pk = p->pendkeys.p + d->off;
        bool hit = d->op == PEND_KILL ? has_prefix(k, kl, pk, d->klen)
                                      : d->klen == kl && memcmp(pk, k, kl) == 0;
        if (!hit)
            continue;
        *msg_id = d->msg_id;
        return d->op == PEND_PUT;
    }
    char *v = leveldb_get(p->db, p->ropts, (const char *)k, kl, &vl, &e);
    if (e) {
        batch_fail(p, -EIO, "queue entry lookup failed: %s", e);
        leveldb_free(e);
        return -1;
    }
    if (!v)
        return 0;
    rc = persist_rec_qentry_decode((const uint8_t *)v, vl, &q, &plen);
    leveldb_free(v);
    if (rc < 0) {
        batch_fail(p, -EBADMSG, "damaged queue entry");
        return -1;
    }
    *msg_id = q.msg_id;
    return 1;
}

/* ---- changes --------------------------------------------------------------------------- */
void persist_session_put(struct persist *p, struct mqtt_str cid, const struct persist_session *s)
{
    uint8_t v[SMALL_REC];
    if (!change_ok(p))
        return;
    size_t kl = persist_rec_key_session(p->kbuf, KEY_MAX, cid);
    size_t vl = persist_rec_session(v, sizeof v, s);
    if (!kl || !vl) {
        batch_fail(p, -EINVAL, "session: client id too long");
        return;
    }
    batch_put(p, p->kbuf, kl, v, vl);
    pend_push(p, p->kbuf, kl, PEND_PUT, 0);
}

void persist_sub_put(struct persist *p, struct mqtt_str cid, struct mqtt_str filter, uint8_t qos)
{
    uint8_t v[SMALL_REC];
    if (!change_ok(p))
        return;
    size_t kl = persist_rec_key_sub(p->kbuf, KEY_MAX, cid, filter);
    size_t vl = persist_rec_sub(v, sizeof v, qos);
    if (!kl || !vl) {
        batch_fail(p, -EINVAL, "subscription: bad client id, filter or QoS");
        return;
    }
    batch_put(p, p->kbuf, kl, v, vl);
    pend_push(p, p->kbuf, kl, PEND_PUT, 0);
}

void persist_sub_del(struct persist *p, struct mqtt_str cid, struct mqtt_str filter)
{
    if (!change_ok(p))
        return;
    size_t kl = persist_rec_key_sub(p->kbuf, KEY_MAX, cid, filter);
    if (!kl) {
        batch_fail(p, -EINVAL, "subscription: bad client id or filter");
        return;
    }
    batch_del(p, p->kbuf, kl);
}

void persist_enqueue(struct persist *p, struct mqtt_str cid, const struct persist_qentry *e,
                     const struct persist_msg *m)
{
    uint8_t v[SMALL_REC];
    if (!change_ok(p))
        return;
    if (m && m->id != e->msg_id) {
        batch_fail(p, -EINVAL, "enqueue: entry msg id %llu but message %llu",
                   (unsigned long long)e->msg_id, (unsigned long long)m->id);
        return;
    }
    /* the body is written with its first reference; later ones may pass m NULL */
    const struct persist_ref *known = persist_refs_find(&p->refs, e->msg_id);
    uint32_t len;
    if (known) {
        len = known->len;
    } else if (m && m->payload.len <= UINT32_MAX) {
        len = (uint32_t)m->payload.len;
    } else {
        batch_fail(p, -EINVAL, "enqueue: message %llu is not stored and no usable body was given",
                   (unsigned long long)e->msg_id);
        return;
    }
    size_t kl = persist_rec_key_queue(p->kbuf, KEY_MAX, cid, e->seq);
    size_t vl = persist_rec_qentry(v, sizeof v, e, len);
    if (!kl || !vl) {
        batch_fail(p, -EINVAL, "enqueue: bad client id, QoS or state");
        return;
    }
    uint32_t count = msg_ref(p, e->msg_id, len);
    if (count == 0)
        return;
    if (count == 1 && m) {
        uint8_t mk[16];
        size_t ml = persist_rec_msg(NULL, 0, m);
        if (!ml || !buf_reserve(&p->vbuf, ml)) {
            batch_fail(p, ml ? -ENOMEM : -EINVAL, "enqueue: cannot encode message %llu",
                       (unsigned long long)m->id);
            return;
        }
        persist_rec_msg(p->vbuf.p, p->vbuf.cap, m);
        batch_put(p, mk, persist_rec_key_msg(mk, sizeof mk, m->id), p->vbuf.p, ml);
    }
    batch_put(p, p->kbuf, kl, v, vl);
    pend_push(p, p->kbuf, kl, PEND_PUT, e->msg_id);
}

void persist_queue_update(struct persist *p, struct mqtt_str cid, const struct persist_qentry *e)
{
    uint8_t v[SMALL_REC];
    if (!change_ok(p))
        return;
    const struct persist_ref *r = persist_refs_find(&p->refs, e->msg_id);
    uint64_t id;
    if (!r) {
        p->ignored++; /* its message is not stored, so neither is the entry */
        return;
    }
    size_t kl = persist_rec_key_queue(p->kbuf, KEY_MAX, cid, e->seq);
    size_t vl = persist_rec_qentry(v, sizeof v, e, r->len);
    if (!kl || !vl) {
        batch_fail(p, -EINVAL, "queue update: bad client id, QoS or state");
        return;
    }
    if (p->checked) {
        int found = entry_lookup(p, p->kbuf, kl, &id);
        if (found < 0)
            return;
        if (!found || id != e->msg_id) {
            p->ignored++;
            return;
        }
    }
    batch_put(p, p->kbuf, kl, v, vl);
    pend_push(p, p->kbuf, kl, PEND_PUT, e->msg_id);
}

void persist_dequeue(struct persist *p, struct mqtt_str cid, uint64_t seq, uint64_t msg_id)
{
    if (!change_ok(p))
        return;
    size_t kl = persist_rec_key_queue(p->kbuf, KEY_MAX, cid, seq);
    if (!kl) {
        batch_fail(p, -EINVAL, "dequeue: client id too long");
        return;
    }
    if (p->checked) {
        int found = entry_lookup(p, p->kbuf, kl, &msg_id); /* the store's msg id decides */
        if (found < 0)
            return;
        if (!found) {
            p->ignored++;
            return;
        }
    }
    batch_del(p, p->kbuf, kl);
    pend_push(p, p->kbuf, kl, PEND_DEL, msg_id);
    msg_unref(p, msg_id);
}

void persist_inbound_put(struct persist *p, struct mqtt_str cid, uint16_t packet_id)
{
    uint8_t v[SMALL_REC];
    if (!change_ok(p))
        return;
    size_t kl = persist_rec_key_inbound(p->kbuf, KEY_MAX, cid, packet_id);
    size_t vl = persist_rec_inbound(v, sizeof v);
    if (!kl) {
        batch_fail(p, -EINVAL, "inbound: client id too long");
        return;
    }
    batch_put(p, p->kbuf, kl, v, vl);
    pend_push(p, p->kbuf, kl, PEND_PUT, 0);
}

void persist_inbound_del(struct persist *p, struct mqtt_str cid, uint16_t packet_id)
{
    if (!change_ok(p))
        return;
    size_t kl = persist_rec_key_inbound(p->kbuf, KEY_MAX, cid, packet_id);
    if (!kl) {
        batch_fail(p, -EINVAL, "inbound: client id too long");
        return;
    }
    batch_del(p, p->kbuf, kl);
}

void persist_retain_put(struct persist *p, const struct persist_msg *m)
{
    if (!change_ok(p))
        return;
    size_t kl = persist_rec_key_retain(p->kbuf, KEY_MAX, m->topic);
    size_t vl = persist_rec_retain(NULL, 0, m);
    if (!kl || !vl || m->topic.len > KEY_MAX - 1) {
        batch_fail(p, -EINVAL, "retain: bad topic or QoS");
        return;
    }
    if (!buf_reserve(&p->vbuf, vl)) {
        batch_fail(p, -ENOMEM, "out of memory");
        return;
    }
    persist_rec_retain(p->vbuf.p, p->vbuf.cap, m);
    batch_put(p, p->kbuf, kl, p->vbuf.p, vl);
}

void persist_retain_del(struct persist *p, struct mqtt_str topic)
{
    if (!change_ok(p))
        return;
    size_t kl = persist_rec_key_retain(p->kbuf, KEY_MAX, topic);
    if (!kl || topic.len > KEY_MAX - 1) {
        batch_fail(p, -EINVAL, "retain: bad topic");
        return;
    }
    batch_del(p, p->kbuf, kl);
}

/* ---- session delete -------------------------------------------------------------------- */
struct qop {
    uint64_t seq;
    size_t order;
    uint64_t msg_id;
    uint8_t op;
    size_t pend; /* index into p->pend, for the key bytes */
};

static int qop_cmp(const void *a, const void *b)
{
    const struct qop *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static bool bsearch_seq(const struct qop *ops, size_t n, uint64_t seq)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ops[mid].seq == seq)
            return true;
        if (ops[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* Delete every committed key that starts with pre. Returns false on a read error. */
static bool del_committed_prefix(struct persist *p, const uint8_t *pre, size_t pl)
{
    leveldb_iterator_t *it = leveldb_create_iterator(p->db, p->ropts);
    char *e = NULL;
    for (leveldb_iter_seek(it, (const char *)pre, pl); leveldb_iter_valid(it);
         leveldb_iter_next(it)) {
        size_t kl;
        const uint8_t *k = (const uint8_t *)leveldb_iter_key(it, &kl);
        if (!has_prefix(k, kl, pre, pl))
            break;
        batch_del(p, k, kl);
    }
    leveldb_iter_get_error(it, &e);
    leveldb_iter_destroy(it);
    if (e) {
        batch_fail(p, -EIO, "session delete: read failed: %s", e);
        leveldb_free(e);
        return false;
    }
    return true;
}

/*
 * The session's queue: the committed entries plus what the open batch did to them. The last
 * batch operation on a seq decides (an entry put in the batch holds its reference; one removed
 * in the batch already dropped it); a committed entry the batch did not touch drops its
 * reference here. A KILL marker records an earlier delete of this session in the same batch:
 * the committed entries were handled then.
 */
static void del_queue(struct persist *p, const uint8_t *pre, size_t pl)
{
    struct qop *ops = NULL;
    size_t n = 0, cap = 0;
    bool killed = false;
    leveldb_iterator_t *it = NULL;
    char *e = NULL;

    for (size_t i = 0; i < p->npend; i++) {
        const struct pend *d = &p->pend[i];
        const uint8_t *k = p->pendkeys.p + d->off;
        if (d->op == PEND_KILL && d->klen == pl && memcmp(k, pre, pl) == 0) {
            killed = true;
            n = 0; /* everything before was settled by that delete */
            continue;
        }
        if (d->op == PEND_KILL || d->klen != pl + 8 || memcmp(k, pre, pl) != 0)
            continue;
        if (!persist__grow((void **)&ops, &cap, n + 1, sizeof *ops)) {
            batch_fail(p, -ENOMEM, "out of memory");
            goto out;
        }
        ops[n] = (struct qop){be64(k + pl), i, d->msg_id, d->op, i};
        n++;
    }
    if (n)
        qsort(ops, n, sizeof *ops, qop_cmp);
    /* keep the last operation per seq */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && ops[m - 1].seq == ops[i].seq)
            ops[m - 1] = ops[i];
        else
            ops[m++] = ops[i];
    }
    n = m;

    if (!killed) {
        it = leveldb_create_iterator(p->db, p->ropts);
        for (leveldb_iter_seek(it, (const char *)pre, pl); leveldb_iter_valid(it);
             leveldb_iter_next(it)) {
            size_t kl, vl;
            const uint8_t *k = (const uint8_t *)leveldb_iter_key(it, &kl);
            const uint8_t *v = (const uint8_t *)leveldb_iter_value(it, &vl);
            struct persist_qentry q;
            uint32_t plen;
            if (!has_prefix(k, kl, pre, pl))
                break;
            if (kl != pl + 8 || persist_rec_qentry_decode(v, vl, &q, &plen) < 0) {
                batch_fail(p, -EBADMSG, "session delete: damaged queue entry");
                goto out;
            }
            if (bsearch_seq(ops, n, be64(k + pl)))
                continue;
            batch_del(p, k, kl);
            msg_unref(p, q.msg_id);
        }
        leveldb_iter_get_error(it, &e);
        if (e) {
            batch_fail(p, -EIO, "session delete: read failed: %s", e);
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (ops[i].op != PEND_PUT)
            continue;
        const struct pend *d = &p->pend[ops[i].pend];
        batch_del(p, p->pendkeys.p + d->off, d->klen);
        msg_unref(p, ops[i].msg_id);
    }
    pend_push(p, pre, pl, PEND_KILL, 0);
out:
    if (e)
        leveldb_free(e);
    if (it)
        leveldb_iter_destroy(it);
    free(ops);
}

void persist_session_del(struct persist *p, struct mqtt_str cid)
{
    static const uint8_t kinds[] = {PERSIST_K_SUB, PERSIST_K_INBOUND};
    if (!change_ok(p))
        return;
    size_t kl = persist_rec_key_session(p->kbuf, KEY_MAX, cid);
    if (!kl) {
        batch_fail(p, -EINVAL, "session delete: client id too long");
        return;
    }
    batch_del(p, p->kbuf, kl);
    for (size_t i = 0; i < sizeof kinds; i++) {
        size_t pl = persist_rec_key_prefix(p->kbuf, KEY_MAX, kinds[i], cid);
        if (!del_committed_prefix(p, p->kbuf, pl))
            return;
        /* what the batch itself put for this client */
        for (size_t j = 0; j < p->npend; j++) {
            const struct pend *d = &p->pend[j];
            if (d->op == PEND_PUT && has_prefix(p->pendkeys.p + d->off, d->klen, p->kbuf, pl))
                batch_del(p, p->pendkeys.p + d->off, d->klen);
        }
    }
    size_t pl = persist_rec_key_prefix(p->kbuf, KEY_MAX, PERSIST_K_QUEUE, cid);
    del_queue(p, p->kbuf, pl);
}

/* ---- commit ---------------------------------------------------------------------------- */
bool persist_batch_empty(const struct persist *p)
{
    return p->batch_ops == 0 && p->batch_err == 0;
}

int persist_commit(struct persist *p, char *err, size_t errlen)
{
    int rc = 0;
    char *e = NULL;

    if (p->batch_err) {
        rc = p->batch_err;
        seterr(err, errlen, "persist: batch refused: %s", p->batch_errmsg);
        goto fail;
    }
    if (p->batch_ops == 0)
        return 0;
    if (p->fail_commits) {
        p->fail_commits--;
        rc = -EIO;
        seterr(err, errlen, "persist: write failed: injected fault");
        goto fail;
    }
    leveldb_write(p->db, p->wopts, p->batch, &e);
    if (e) {
        rc = -EIO;
        seterr(err, errlen, "persist: write failed: %s", e);
        leveldb_free(e);
        goto fail;
    }
    batch_discard(p);
    return 0;
fail:
    undo_all(p);
    batch_discard(p);
    p->checked = true;
    return rc;
}

/* ---- resident memory ------------------------------------------------------------------- */
/*
 * LevelDB reads its table files through read-only shared mappings, so every page a scan reads
 * stays in this process's resident set: restoring a store of 150 MB would add 150 MB of RSS
 * that is only page cache. Dropping those pages from our page tables (MADV_DONTNEED; the data
 * stays in the page cache and the file) keeps the broker's RSS to what it really holds.
 */
static void trim_table_pages(const struct persist *p)
{
#ifdef __linux__
    char line[4608];
    size_t dl = p->real_dir ? strlen(p->real_dir) : 0;
    FILE *f;
    if (!dl || !(f = fopen("/proc/self/maps", "re")))
        return;
    while (fgets(line, sizeof line, f)) {
        unsigned long start, end;
        int path_at = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &start, &end, &path_at) < 2 || !path_at)
            continue;
        char *path = line + path_at;
        size_t pl = strcspn(path, "\n");
        path[pl] = '\0';
        if (pl > dl + 5 && strncmp(path, p->real_dir, dl) == 0 && path[dl] == '/' &&
            (strcmp(path + pl - 4, ".ldb") == 0 || strcmp(path + pl - 4, ".sst") == 0))
            madvise((void *)start, end - start, MADV_DONTNEED);
    }
    fclose(f);
#else
    (void)p;
#endif
}

void persist_trim(struct persist *p)
{
    trim_table_pages(p);
}

/* ---- restore --------------------------------------------------------------------------- */
/*
 * One pass over the whole store in key order; persist_restore.c makes sense of each record.
 * Records it finds unreferenced (bodies) or without a session are deleted in one batch at the
 * end, and only when the scan got through everything.
 */
int persist_restore(struct persist *p, const struct persist_restore_ops *ops, void *ctx,
                    uint64_t *max_msg_id, char *err, size_t errlen)
{
    struct persist_scan scan;
    leveldb_writebatch_t *cleanup = NULL;
    leveldb_iterator_t *it = NULL;
    size_t ncleanup = 0, scanned = 0;
    char *e = NULL;
    int rc = 0;

    persist__scan_init(&scan, ops, ctx, &p->refs, &p->stats);
    if (!persist_batch_empty(p)) {
        seterr(err, errlen, "persist: restore with changes pending");
        rc = -EINVAL;
        goto out;
    }
    p->restored = false;
    persist_refs_cleanup(&p->refs);
    memset(&p->stats, 0, sizeof p->stats);
    cleanup = leveldb_writebatch_create();
    it = leveldb_create_iterator(p->db, p->scan_opts);
    for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t kl, vl;
        bool drop = false;
        const uint8_t *k = (const uint8_t *)leveldb_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)leveldb_iter_value(it, &vl);
        if (++scanned % TRIM_EVERY == 0)
            trim_table_pages(p);
        rc = persist__scan_record(&scan, k, kl, v, vl, &drop, err, errlen);
        if (rc)
            goto out;
        if (drop && !p->read_only) {
            leveldb_writebatch_delete(cleanup, (const char *)k, kl);
            ncleanup++;
        }
    }
    leveldb_iter_get_error(it, &e);
    if (e) {
        seterr(err, errlen, "persist: reading the store failed: %s", e);
        rc = -EIO;
        goto out;
    }
    rc = persist__scan_finish(&scan, err, errlen);
    if (rc)
        goto out;
    if (p->stats.missing && !p->read_only) {
        seterr(err, errlen,
               "persist: damaged store: %llu message bodies referenced by queue entries are "
               "missing (inspect it with cairn-db)",
               (unsigned long long)p->stats.missing);
        rc = -EBADMSG;
        goto out;
    }
    if (ncleanup) {
        leveldb_write(p->db, p->wopts, cleanup, &e);
        if (e) {
            seterr(err, errlen, "persist: removing unreferenced records failed: %s", e);
            rc = -EIO;
            goto out;
        }
    }
    p->restored = true;
out:
    trim_table_pages(p);
#ifdef __GLIBC__
    /* the scan's sort buffers (tens of MB at a million entries) go back to the system */
    malloc_trim(0);
#endif
    if (max_msg_id)
        *max_msg_id = scan.max_id;
    if (e)
        leveldb_free(e);
    if (it)
        leveldb_iter_destroy(it);
    if (cleanup)
        leveldb_writebatch_destroy(cleanup);
    persist__scan_cleanup(&scan);
    return rc;
}

void persist_restore_stats(const struct persist *p, struct persist_stats *out)
{
    *out = p->stats;
}

/* ---- window reads ---------------------------------------------------------------------- */
int persist_queue_read(struct persist *p, struct mqtt_str cid, uint64_t from_seq, size_t max,
                       persist_queue_cb cb, void *ctx)
{
    leveldb_iterator_t *it = NULL;
    char *e = NULL;
    char *body = NULL;
    int rc = 0;
    size_t n = 0;
    size_t pl = persist_rec_key_prefix(p->kbuf, KEY_MAX, PERSIST_K_QUEUE, cid);
    size_t kl = persist_rec_key_queue(p->kbuf, KEY_MAX, cid, from_seq);

    if (!pl || !kl)
        return -EINVAL;
    if (max == 0)
        return 0;
    if (max > INT_MAX)
        max = INT_MAX; /* the count is returned as an int */
    it = leveldb_create_iterator(p->db, p->ropts);
    for (leveldb_iter_seek(it, (const char *)p->kbuf, kl); leveldb_iter_valid(it) && n < max;
         leveldb_iter_next(it)) {
        size_t ql, vl, bl;
        const uint8_t *k = (const uint8_t *)leveldb_iter_key(it, &ql);
        const uint8_t *v = (const uint8_t *)leveldb_iter_value(it, &vl);
        struct persist_rec_key key;
        struct persist_qentry q;
        struct persist_msg m;
        uint32_t plen;
        uint8_t mk[16];

        if (!has_prefix(k, ql, p->kbuf, pl))
            break;
        if (persist_rec_key_decode(k, ql, &key) < 0 ||
            persist_rec_qentry_decode(v, vl, &q, &plen) < 0) {
            rc = -EBADMSG;
            goto out;
        }
        q.seq = key.seq;
        body = leveldb_get(p->db, p->ropts, (const char *)mk,
                           persist_rec_key_msg(mk, sizeof mk, q.msg_id), &bl, &e);
        if (e) {
            rc = -EIO;
            goto out;
        }
        if (!body || persist_rec_msg_decode((const uint8_t *)body, bl, &m) < 0) {
            rc = -EBADMSG; /* missing or damaged body */
            goto out;
        }
        m.id = q.msg_id;
        n++;
        int c = cb(ctx, &q, &m);
        leveldb_free(body);
        body = NULL;
        if (c < 0) {
            rc = c;
            goto out;
        }
        if (c > 0)
            break;
    }
    leveldb_iter_get_error(it, &e);
    if (e)
        rc = -EIO;
out:
    if (body)
        leveldb_free(body);
    if (e)
        leveldb_free(e);
    if (it)
        leveldb_iter_destroy(it);
    return rc ? rc : (int)n;
}

/* ---- open and close -------------------------------------------------------------------- */
/* Does dir look like a LevelDB store that lost its CURRENT file? LevelDB would start afresh. */
static int dir_check(const char *dir, bool *exists, bool *has_current, bool *has_tables)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    *exists = *has_current = *has_tables = false;
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    *exists = true;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        size_t l = strlen(n);
        if (strcmp(n, "CURRENT") == 0)
            *has_current = true;
        else if (strncmp(n, "MANIFEST-", 9) == 0 ||
                 (l > 4 && (strcmp(n + l - 4, ".ldb") == 0 || strcmp(n + l - 4, ".sst") == 0 ||
                            strcmp(n + l - 4, ".log") == 0)))
            *has_tables = true;
    }
    closedir(d);
    return 0;
}

/* The format key: present and right, or absent on an empty store (then written). */
static int check_format(struct persist *p, const char *dir, char *err, size_t errlen)
{
    uint8_t k[16], v[SMALL_REC];
    size_t kl = persist_rec_key_meta(k, sizeof k), vl;
    char *e = NULL;
    int rc = 0;
    char *val = leveldb_get(p->db, p->ropts, (const char *)k, kl, &vl, &e);
    uint32_t format;

    if (e) {
        seterr(err, errlen, "cannot read store %s: %s", dir, e);
        rc = -EIO;
        goto out;
    }
    if (val) {
        if (persist_rec_meta_decode((const uint8_t *)val, vl, &format) < 0) {
            seterr(err, errlen, "store %s is damaged: unreadable format record", dir);
            rc = -EBADMSG;
        } else if (format != PERSIST_FORMAT) {
            seterr(err, errlen, "store %s has format version %u; this cairn reads version %u", dir,
                   format, PERSIST_FORMAT);
            rc = -EPROTO;
        }
        /* a store with data: counts are rebuilt by persist_restore() */
        goto out;
    }
    leveldb_iterator_t *it = leveldb_create_iterator(p->db, p->ropts);
    leveldb_iter_seek_to_first(it);
    bool empty = !leveldb_iter_valid(it);
    leveldb_iter_get_error(it, &e);
    leveldb_iter_destroy(it);
    if (e) {
        seterr(err, errlen, "cannot read store %s: %s", dir, e);
        rc = -EIO;
        goto out;
    }
    if (!empty) {
        seterr(err, errlen, "%s holds a LevelDB database that is not a Cairn store (no format key)",
               dir);
        rc = -EPROTO;
        goto out;
    }
    p->restored = true; /* nothing to count */
    if (p->read_only)
        goto out;
    vl = persist_rec_meta(v, sizeof v, PERSIST_FORMAT);
    leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(wo, 1);
    leveldb_put(p->db, wo, (const char *)k, kl, (const char *)v, vl, &e);
    leveldb_writeoptions_destroy(wo);
    if (e) {
        seterr(err, errlen, "cannot initialise store %s: %s", dir, e);
        rc = -EIO;
    }
out:
    if (val)
        leveldb_free(val);
    if (e)
        leveldb_free(e);
    return rc;
}

int persist_open(const struct persist_options *opt, struct persist **out, char *err, size_t errlen)
{
    struct persist *p = NULL;
    char *e = NULL;
    const char *path;
    bool exists, has_current, has_tables;
    int rc;

    *out = NULL;
    if (!opt || !opt->dir || !*opt->dir) {
        seterr(err, errlen, "persist: no store directory given");
        return -EINVAL;
    }
    rc = dir_check(opt->dir, &exists, &has_current, &has_tables);
    if (rc < 0) {
        seterr(err, errlen, "cannot open store %s: %s", opt->dir, strerror(-rc));
        return rc;
    }
    if (exists && !has_current && has_tables) {
        seterr(err, errlen, "store %s is damaged: its CURRENT file is missing", opt->dir);
        return -EBADMSG;
    }
    if (opt->read_only && !has_current) {
        seterr(err, errlen, "no Cairn store in %s", opt->dir);
        return -ENOENT;
    }
    p = calloc(1, sizeof *p);
    if (!p || !(p->kbuf = malloc(KEY_MAX))) {
        seterr(err, errlen, "persist: out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    p->read_only = opt->read_only;
    path = opt->dir;
    if (p->read_only) {
        int lock_fd;
        rc = persist__snapshot(opt->dir, &p->snap_dir, &lock_fd, err, errlen);
        if (rc < 0)
            goto fail;
        persist__snapshot_remove(NULL, lock_fd); /* the copy is consistent: let go of the lock */
        path = p->snap_dir;
    }
    p->opts = leveldb_options_create();
    p->cache = leveldb_cache_create_lru(CACHE_BYTES);
    p->filter = leveldb_filterpolicy_create_bloom(BLOOM_BITS);
    leveldb_options_set_create_if_missing(p->opts, !p->read_only);
    leveldb_options_set_paranoid_checks(p->opts, 1);
    leveldb_options_set_cache(p->opts, p->cache);
    leveldb_options_set_filter_policy(p->opts, p->filter);
    leveldb_options_set_write_buffer_size(p->opts, WRITE_BUFFER_BYTES);
    leveldb_options_set_max_open_files(p->opts, MAX_OPEN_FILES);
    p->ropts = leveldb_readoptions_create();
    leveldb_readoptions_set_verify_checksums(p->ropts, 1);
    p->scan_opts = leveldb_readoptions_create();
    leveldb_readoptions_set_verify_checksums(p->scan_opts, 1);
    leveldb_readoptions_set_fill_cache(p->scan_opts, 0);
    p->wopts = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(p->wopts, opt->sync);
    p->batch = leveldb_writebatch_create();

    p->db = leveldb_open(p->opts, path, &e);
    if (!e)
        p->real_dir = realpath(path, NULL);
    if (e) {
        if (strstr(e, "lock")) {
            char who[64];
            if (strstr(e, "already held"))
                snprintf(who, sizeof who, "this process");
            else
                persist__lock_holder(opt->dir, who, sizeof who);
            seterr(err, errlen, "store %s is locked by %s: is another cairn running on it? (%s)",
                   opt->dir, who, e);
            rc = -EBUSY;
        } else if (strstr(e, "Corruption")) {
            seterr(err, errlen, "store %s is corrupt: %s", opt->dir, e);
            rc = -EBADMSG;
        } else {
            seterr(err, errlen, "cannot open store %s: %s", opt->dir, e);
            rc = -EIO;
        }
        goto fail;
    }
    rc = check_format(p, opt->dir, err, errlen);
    if (rc < 0)
        goto fail;
    *out = p;
    return 0;
fail:
    if (e)
        leveldb_free(e);
    persist_close(p);
    return rc;
}

void persist_close(struct persist *p)
{
    if (!p)
        return;
    if (p->batch) {
        undo_all(p);
        batch_discard(p);
        leveldb_writebatch_destroy(p->batch);
    }
    if (p->db)
        leveldb_close(p->db);
    if (p->opts)
        leveldb_options_destroy(p->opts);
    if (p->cache)
        leveldb_cache_destroy(p->cache);
    if (p->filter)
        leveldb_filterpolicy_destroy(p->filter);
    if (p->ropts)
        leveldb_readoptions_destroy(p->ropts);
    if (p->scan_opts)
        leveldb_readoptions_destroy(p->scan_opts);
    if (p->wopts)
        leveldb_writeoptions_destroy(p->wopts);
    if (p->snap_dir)
        persist__snapshot_remove(p->snap_dir, -1);
    persist_refs_cleanup(&p->refs);
    free(p->real_dir);
    free(p->undo);
    free(p->pend);
    free(p->pendkeys.p);
    free(p->kbuf);
    free(p->vbuf.p);
    free(p);
}

/* ---- internal hooks -------------------------------------------------------------------- */
uint32_t persist__refcount(const struct persist *p, uint64_t msg_id)
{
    const struct persist_ref *r = persist_refs_find(&p->refs, msg_id);
    return r ? r->count : 0;
}

size_t persist__refcount_size(const struct persist *p)
{
    return persist_refs_size(&p->refs);
}

uint64_t persist__ignored(const struct persist *p)
{
    return p->ignored;
}

void persist__fail_commits(struct persist *p, unsigned n)
{
    p->fail_commits = n;
}

int persist__put_raw(struct persist *p, const void *k, size_t kl, const void *v, size_t vl)
{
    char *e = NULL;
    leveldb_put(p->db, p->wopts, k, kl, v, vl, &e);
    if (!e)
        return 0;
    leveldb_free(e);
    return -EIO;
}

int persist__del_raw(struct persist *p, const void *k, size_t kl)
{
    char *e = NULL;
    leveldb_delete(p->db, p->wopts, k, kl, &e);
    if (!e)
        return 0;
    leveldb_free(e);
    return -EIO;
}
