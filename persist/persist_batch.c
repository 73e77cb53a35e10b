/*
 * persist_batch.c — the changes of one loop iteration: what each verb appends to the open
 * batch, and the bookkeeping that lets a verb decide without reading the store.
 *
 * Message bodies are counted in memory (msg id -> references, payload length), so enqueue and
 * dequeue know at once whether a body must be written or deleted. Two logs live as long as the
 * open batch:
 *  - the undo log: the reference count of each id before the batch changed it, so a failed
 *    commit puts the counts back exactly as the store still has them;
 *  - the pending log: keys of per-client records put (and queue entries removed) in the batch,
 *    because persist_session_del() scans the committed store and must also see what the batch
 *    already added or removed for that client.
 * The store itself is reached through persist__ldb_* (persist_leveldb.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist.h"
#include "persist_internal.h"
#include "persist_record.h"
#include "persist_refs.h"

bool persist__buf_reserve(struct persist_buf *b, size_t n)
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
    persist__ldb_put(p, k, kl, v, vl);
    p->batch_ops++;
}

static void batch_del(struct persist *p, const uint8_t *k, size_t kl)
{
    persist__ldb_del(p, k, kl);
    p->batch_ops++;
}

static void pend_push(struct persist *p, const uint8_t *k, size_t kl, uint8_t op, uint64_t msg_id)
{
    if (!persist__grow((void **)&p->pend, &p->cappend, p->npend + 1, sizeof *p->pend) ||
        !persist__buf_reserve(&p->pendkeys, p->pendkeys.len + kl)) {
        batch_fail(p, -ENOMEM, "out of memory");
        return;
    }
    memcpy(p->pendkeys.p + p->pendkeys.len, k, kl);
    p->pend[p->npend++] = (struct persist_pend){p->pendkeys.len, (uint32_t)kl, op, msg_id};
    p->pendkeys.len += kl;
}

static bool undo_push(struct persist *p, const struct persist_ref *r, uint64_t id)
{
    if (!persist__grow((void **)&p->undo, &p->capundo, p->nundo + 1, sizeof *p->undo))
        return false;
    p->undo[p->nundo++] = (struct persist_undo){id, r->count, r->len};
    return true;
}

void persist__batch_rollback(struct persist *p)
{
    while (p->nundo) {
        struct persist_undo *u = &p->undo[--p->nundo];
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

void persist__batch_reset(struct persist *p)
{
    persist__ldb_clear(p);
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
    char err[160], *v = NULL;
    size_t vl;
    struct persist_qentry q;
    uint32_t plen;
    int rc;

    for (size_t i = p->npend; i-- > 0;) {
        const struct persist_pend *d = &p->pend[i];
        const uint8_t *pk = p->pendkeys.p + d->off;
        bool hit = d->op == PERSIST_PEND_KILL ? has_prefix(k, kl, pk, d->klen)
                                              : d->klen == kl && memcmp(pk, k, kl) == 0;
        if (!hit)
            continue;
        *msg_id = d->msg_id;
        return d->op == PERSIST_PEND_PUT;
    }
    rc = persist__ldb_get(p, k, kl, &v, &vl, err, sizeof err);
    if (rc < 0) {
        batch_fail(p, rc, "queue entry lookup failed: %s", err);
        return -1;
    }
    if (rc == 0)
        return 0;
    rc = persist_rec_qentry_decode((const uint8_t *)v, vl, &q, &plen);
    persist__ldb_free(v);
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
    if (!change_ok(p))
        return;
    size_t kl = persist_rec_key_session(p->kbuf, PERSIST_KEY_MAX, cid);
    size_t vl = persist_rec_session(NULL, 0, s); /* the owner's name makes it variable */
    if (!kl || !vl) {
        batch_fail(p, -EINVAL, "session: client id or owner too long");
        return;
    }
    if (!persist__buf_reserve(&p->vbuf, vl)) {
        batch_fail(p, -ENOMEM, "out of memory");
        return;
    }
    persist_rec_session(p->vbuf.p, p->vbuf.cap, s);
    batch_put(p, p->kbuf, kl, p->vbuf.p, vl);
    pend_push(p, p->kbuf, kl, PERSIST_PEND_PUT, 0);
}

void persist_sub_put(struct persist *p, struct mqtt_str cid, struct mqtt_str filter, uint8_t qos)
{
    uint8_t v[PERSIST_SMALL_REC];
    if (!change_ok(p))
        return;
    size_t kl = persist_rec_key_sub(p->kbuf, PERSIST_KEY_MAX, cid, filter);
    size_t vl = persist_rec_sub(v, sizeof v, qos);
    if (!kl || !vl) {
        batch_fail(p, -EINVAL, "subscription: bad client id, filter or QoS");
        return;
    }
    batch_put(p, p->kbuf, kl, v, vl);
    pend_push(p, p->kbuf, kl, PERSIST_PEND_PUT, 0);
}

void persist_sub_del(struct persist *p, struct mqtt_str cid, struct mqtt_str filter)
{
    if (!change_ok(p))
        return;
    size_t kl = persist_rec_key_sub(p->kbuf, PERSIST_KEY_MAX, cid, filter);
    if (!kl) {
        batch_fail(p, -EINVAL, "subscription: bad client id or filter");
        return;
    }
    batch_del(p, p->kbuf, kl);
}

void persist_enqueue(struct persist *p, struct mqtt_str cid, const struct persist_qentry *e,
                     const struct persist_msg *m)
{
    uint8_t v[PERSIST_SMALL_REC];
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
    size_t kl = persist_rec_key_queue(p->kbuf, PERSIST_KEY_MAX, cid, e->seq);
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
        if (!ml || !persist__buf_reserve(&p->vbuf, ml)) {
            batch_fail(p, ml ? -ENOMEM : -EINVAL, "enqueue: cannot encode message %llu",
                       (unsigned long long)m->id);
            return;
        }
        persist_rec_msg(p->vbuf.p, p->vbuf.cap, m);
        batch_put(p, mk, persist_rec_key_msg(mk, sizeof mk, m->id), p->vbuf.p, ml);
    }
    batch_put(p, p->kbuf, kl, v, vl);
    pend_push(p, p->kbuf, kl, PERSIST_PEND_PUT, e->msg_id);
}

void persist_queue_update(struct persist *p, struct mqtt_str cid, const struct persist_qentry *e)
{
    uint8_t v[PERSIST_SMALL_REC];
    if (!change_ok(p))
        return;
    const struct persist_ref *r = persist_refs_find(&p->refs, e->msg_id);
    uint64_t id;
    if (!r) {
        p->ignored++; /* its message is not stored, so neither is the entry */
        return;
    }
    size_t kl = persist_rec_key_queue(p->kbuf, PERSIST_KEY_MAX, cid, e->seq);
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
    pend_push(p, p->kbuf, kl, PERSIST_PEND_PUT, e->msg_id);
}

void persist_dequeue(struct persist *p, struct mqtt_str cid, uint64_t seq, uint64_t msg_id)
{
    if (!change_ok(p))
        return;
    size_t kl = persist_rec_key_queue(p->kbuf, PERSIST_KEY_MAX, cid, seq);
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
    pend_push(p, p->kbuf, kl, PERSIST_PEND_DEL, msg_id);
    msg_unref(p, msg_id);
}

void persist_inbound_put(struct persist *p, struct mqtt_str cid, uint16_t packet_id)
{
    uint8_t v[PERSIST_SMALL_REC];
    if (!change_ok(p))
        return;
    size_t kl = persist_rec_key_inbound(p->kbuf, PERSIST_KEY_MAX, cid, packet_id);
    size_t vl = persist_rec_inbound(v, sizeof v);
    if (!kl) {
        batch_fail(p, -EINVAL, "inbound: client id too long");
        return;
    }
    batch_put(p, p->kbuf, kl, v, vl);
    pend_push(p, p->kbuf, kl, PERSIST_PEND_PUT, 0);
}

void persist_inbound_del(struct persist *p, struct mqtt_str cid, uint16_t packet_id)
{
    if (!change_ok(p))
        return;
    size_t kl = persist_rec_key_inbound(p->kbuf, PERSIST_KEY_MAX, cid, packet_id);
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
    size_t kl = persist_rec_key_retain(p->kbuf, PERSIST_KEY_MAX, m->topic);
    size_t vl = persist_rec_retain(NULL, 0, m);
    if (!kl || !vl || m->topic.len > PERSIST_KEY_MAX - 1) {
        batch_fail(p, -EINVAL, "retain: bad topic or QoS");
        return;
    }
    if (!persist__buf_reserve(&p->vbuf, vl)) {
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
    size_t kl = persist_rec_key_retain(p->kbuf, PERSIST_KEY_MAX, topic);
    if (!kl || topic.len > PERSIST_KEY_MAX - 1) {
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

static int del_one(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    batch_del(ctx, k, kl);
    return 0;
}

/* Delete every committed key that starts with pre. Returns false on a read error. */
static bool del_committed_prefix(struct persist *p, const uint8_t *pre, size_t pl)
{
    char err[160];
    if (persist__ldb_scan(p, pre, pl, del_one, p, err, sizeof err) < 0) {
        batch_fail(p, -EIO, "session delete: read failed: %s", err);
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
struct del_queue_ctx {
    struct persist *p;
    size_t pl;
    const struct qop *ops; /* the batch's last operation per seq, sorted */
    size_t n;
};

/* A committed entry of the deleted queue: unless the batch already decided its fate. */
static int del_committed_entry(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    struct del_queue_ctx *c = ctx;
    struct persist_qentry q;
    uint32_t plen;
    if (kl != c->pl + 8 || persist_rec_qentry_decode(v, vl, &q, &plen) < 0)
        return -EBADMSG;
    if (bsearch_seq(c->ops, c->n, be64(k + c->pl)))
        return 0;
    batch_del(c->p, k, kl);
    msg_unref(c->p, q.msg_id);
    return 0;
}

static void del_queue(struct persist *p, const uint8_t *pre, size_t pl)
{
    struct qop *ops = NULL;
    size_t n = 0, cap = 0;
    bool killed = false;
    char err[160];

    for (size_t i = 0; i < p->npend; i++) {
        const struct persist_pend *d = &p->pend[i];
        const uint8_t *k = p->pendkeys.p + d->off;
        if (d->op == PERSIST_PEND_KILL && d->klen == pl && memcmp(k, pre, pl) == 0) {
            killed = true;
            n = 0; /* everything before was settled by that delete */
            continue;
        }
        if (d->op == PERSIST_PEND_KILL || d->klen != pl + 8 || memcmp(k, pre, pl) != 0)
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
        struct del_queue_ctx c = {p, pl, ops, n};
        int rc = persist__ldb_scan(p, pre, pl, del_committed_entry, &c, err, sizeof err);
        if (rc == -EBADMSG) {
            batch_fail(p, rc, "session delete: damaged queue entry");
            goto out;
        }
        if (rc < 0) {
            batch_fail(p, rc, "session delete: read failed: %s", err);
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (ops[i].op != PERSIST_PEND_PUT)
            continue;
        const struct persist_pend *d = &p->pend[ops[i].pend];
        batch_del(p, p->pendkeys.p + d->off, d->klen);
        msg_unref(p, ops[i].msg_id);
    }
    pend_push(p, pre, pl, PERSIST_PEND_KILL, 0);
out:
    free(ops);
}

void persist_session_del(struct persist *p, struct mqtt_str cid)
{
    static const uint8_t kinds[] = {PERSIST_K_SUB, PERSIST_K_INBOUND};
    if (!change_ok(p))
        return;
    size_t kl = persist_rec_key_session(p->kbuf, PERSIST_KEY_MAX, cid);
    if (!kl) {
        batch_fail(p, -EINVAL, "session delete: client id too long");
        return;
    }
    batch_del(p, p->kbuf, kl);
    for (size_t i = 0; i < sizeof kinds; i++) {
        size_t pl = persist_rec_key_prefix(p->kbuf, PERSIST_KEY_MAX, kinds[i], cid);
        if (!del_committed_prefix(p, p->kbuf, pl))
            return;
        /* what the batch itself put for this client */
        for (size_t j = 0; j < p->npend; j++) {
            const struct persist_pend *d = &p->pend[j];
            if (d->op == PERSIST_PEND_PUT &&
                has_prefix(p->pendkeys.p + d->off, d->klen, p->kbuf, pl))
                batch_del(p, p->pendkeys.p + d->off, d->klen);
        }
    }
    size_t pl = persist_rec_key_prefix(p->kbuf, PERSIST_KEY_MAX, PERSIST_K_QUEUE, cid);
    del_queue(p, p->kbuf, pl);
}

bool persist_batch_empty(const struct persist *p)
{
    return p->batch_ops == 0 && p->batch_err == 0;
}
