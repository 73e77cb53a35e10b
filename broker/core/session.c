/*
 * session.c — sessions, their queues, in-flight windows and inbound QoS 2 ids (session.h).
 */
#include "session.h"

#include "hash.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct session_table {
    struct session **b;
    size_t nb; /* power of two */
    size_t n;
    struct persist *store;
    struct msg_table *msgs;
    struct session_limits limits;
    bool loading; /* restoring: records come from the store, do not write them back */
    uint64_t gen;
    /* sessions with entries whose records wait for session_table_flush() ("Deferred") */
    struct session **unw;
    size_t n_unw, cap_unw;
};

/* The store to record s's changes in, or NULL. */
static struct persist *session__store(const struct session *s)
{
    return s->durable && !s->table->loading ? s->table->store : NULL;
}

/* ---- entries ------------------------------------------------------------------------------ */

static void sentry__push(struct sentry_list *l, struct sentry *e)
{
    e->next = NULL;
    e->prev = l->tail;
    if (l->tail)
        l->tail->next = e;
    else
        l->head = e;
    l->tail = e;
    l->n++;
    l->bytes += msg_bytes(e->m);
}

static void sentry__unlink(struct sentry_list *l, struct sentry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    e->next = e->prev = NULL;
    l->n--;
    l->bytes -= msg_bytes(e->m);
}

static struct sentry *sentry__shift(struct sentry_list *l)
{
    struct sentry *e = l->head;

    if (e)
        sentry__unlink(l, e);
    return e;
}

static size_t sentry_live; /* entries in memory, for memory_limit (session_entry_bytes) */

/*
 * Freed entries wait on a spare list (linked through next, at most SENTRY_SPARE) for the next
 * delivery: each delivery of a fan-out is an entry, and a malloc and free per delivery were a
 * tenth of the broker's CPU in fan-out of 1 KiB messages. The loop thread's: not thread-safe.
 */
#define SENTRY_SPARE 4096u /* 4096 * 64 bytes: 256 KiB at most */
static struct sentry *sentry_spare;
static size_t sentry_nspare;

static struct sentry *sentry__new(void)
{
    struct sentry *e = sentry_spare;

    if (e) {
        sentry_spare = e->next;
        sentry_nspare--;
        memset(e, 0, sizeof(*e));
    } else {
        e = calloc(1, sizeof(*e));
    }
    if (e)
        sentry_live++;
    return e;
}

void sentry_free(struct sentry *e)
{
    if (!e)
        return;
    msg_unref(e->m);
    sentry_live--;
    if (sentry_nspare < SENTRY_SPARE) {
        e->next = sentry_spare;
        sentry_spare = e;
        sentry_nspare++;
    } else {
        free(e);
    }
}

size_t session_spare_release(void)
{
    size_t n = sentry_nspare;

    while (sentry_spare) {
        struct sentry *e = sentry_spare;
        sentry_spare = e->next;
        free(e);
    }
    sentry_nspare = 0;
    return n;
}

size_t session_entry_bytes(void)
{
    return sentry_live * sizeof(struct sentry);
}

static void sentry__list_free(struct sentry_list *l)
{
    struct sentry *e;

    while ((e = sentry__shift(l)))
        sentry_free(e);
}

static struct persist_qentry session__qentry(const struct sentry *e)
{
    struct persist_qentry q = {
        .seq = e->seq,
        .msg_id = e->m->id,
        .packet_id = e->pid,
        .qos = e->qos,
        .state = e->state,
    };
    return q;
}

static struct persist_msg session__pmsg(const struct msg *m)
{
    struct persist_msg p = {
        .id = m->id,
        .topic = msg_topic(m),
        .payload = msg_payload(m),
        .qos = m->qos,
        .retain = m->retain,
    };
    return p;
}

/* ---- deferred records -------------------------------------------------------------------- */

/*
 * Deferred. An entry queued in memory for a client that is online usually leaves in the same
 * iteration (session_pop), and its record would be written twice in one batch: queued, then
 * in flight with its packet id. So its record waits (unwritten) until the iteration ends —
 * session_table_flush(), before the commit — and is written once, in the state it has then.
 * Nothing about it is sent before that commit (deliveries wait for it: ack after durable), so
 * the store never holds less than a client may have seen. An entry that leaves before the
 * flush (a QoS 0 pop, an ack naming its id before it was even sent) is never written; one whose
 * session goes offline or away is written (session_offline) or dropped with the session's
 * records (session_detach) first. The table keeps the sessions with unwritten entries; their
 * entries are the newest, at the tails of queue and in-flight list, found from there. Only a
 * durable session's entries have records, and a durable session has its ext (n_unwritten).
 */

/* Write e's record now, in its present state. */
static void session__write(struct session *s, struct sentry *e)
{
    struct persist_qentry q = session__qentry(e);
    struct persist_msg pm = session__pmsg(e->m);

    persist_enqueue(s->table->store, session_id(s), &q, &pm);
    e->unwritten = false;
    s->ext->n_unwritten--;
}

/* e leaves before its record was written: it never will be. */
static void session__unwritten_gone(struct session *s, struct sentry *e)
{
    e->unwritten = false;
    e->stored = false;
    s->ext->n_unwritten--;
}

/* Write (or with write false, forget) every unwritten entry of s, newest first. */
static void session__unwritten_settle(struct session *s, bool write)
{
    struct sentry_list *lists[2] = {&s->inflight, &s->queue};

    for (int i = 0; i < 2 && s->ext->n_unwritten > 0; i++) {
        for (struct sentry *e = lists[i]->tail; e && s->ext->n_unwritten > 0; e = e->prev) {
            if (!e->unwritten)
                continue;
            if (write)
                session__write(s, e);
            else
                session__unwritten_gone(s, e);
        }
    }
    s->ext->n_unwritten = 0; /* every unwritten entry is on one of the two lists */
}

/* s no longer has unwritten entries to flush: off the table's list. */
static void session__unw_remove(struct session *s)
{
    struct session_table *t = s->table;

    for (size_t i = 0; i < t->n_unw; i++) {
        if (t->unw[i] == s) {
            t->unw[i] = t->unw[--t->n_unw];
            break;
        }
    }
}

/* Defer e's record: false when the table cannot remember s (write it now then). */
static bool session__defer(struct session *s, struct sentry *e)
{
    struct session_table *t = s->table;

    if (s->ext->n_unwritten == 0) {
        if (t->n_unw == t->cap_unw) {
            size_t cap = t->cap_unw ? t->cap_unw * 2 : 64;
            struct session **v = realloc(t->unw, cap * sizeof(*v));
            if (!v)
                return false;
            t->unw = v;
            t->cap_unw = cap;
        }
        t->unw[t->n_unw++] = s;
    }
    e->unwritten = true;
    s->ext->n_unwritten++;
    return true;
}

void session_table_flush(struct session_table *t)
{
    for (size_t i = 0; i < t->n_unw; i++)
        session__unwritten_settle(t->unw[i], true);
    t->n_unw = 0;
}

/* ---- the table ---------------------------------------------------------------------------- */

/* Keyed (hash.h): client ids are the client's choice, and must not all fall in one chain. */
static size_t session__hash(const struct session_table *t, struct mqtt_str id)
{
    return (size_t)(hash_bytes(id.p, id.len) & (t->nb - 1));
}

static uint32_t session__max_inflight(const struct session_table *t)
{
    uint32_t m = t->limits.max_inflight;
    return (m == 0 || m > 65535) ? 65535 : m;
}

struct session_table *session_table_new(struct persist *store, struct msg_table *msgs,
                                        const struct session_limits *limits)
{
    struct session_table *t = calloc(1, sizeof(*t));

    if (!t)
        goto out;
    t->nb = 256;
    t->b = calloc(t->nb, sizeof(*t->b));
    if (!t->b) {
        free(t);
        t = NULL;
        goto out;
    }
    t->store = store;
    t->msgs = msgs;
    t->limits = *limits;
    t->gen = 1; /* 0: restored from the store */
out:
    return t;
}

static void session__free(struct session *s)
{
    sentry__list_free(&s->inflight);
    sentry__list_free(&s->queue);
    if (s->ext) {
        subset_cleanup(&s->ext->subs);
        free(s->ext->inbound);
        free(s->ext->inbound_gen);
        pidx_cleanup(&s->ext->pidx);
        free(s->ext);
    }
    free(s->user);
    free(s);
}

struct session_ext *session_ext(struct session *s)
{
    if (!s->ext)
        s->ext = calloc(1, sizeof(*s->ext));
    return s->ext;
}

/* Queued entries on disk only (none without an ext). */
static uint64_t session__on_disk(const struct session *s)
{
    return s->ext ? s->ext->disk_count : 0;
}

void session_table_free(struct session_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nb; i++) {
        struct session *s = t->b[i];
        while (s) {
            struct session *next = s->hnext;
            session__free(s);
            s = next;
        }
    }
    free(t->b);
    free(t->unw);
    free(t);
    session_spare_release();
}

void session_table_set_limits(struct session_table *t, const struct session_limits *limits)
{
    t->limits = *limits;
}

const struct session_limits *session_table_limits(const struct session_table *t)
{
    return &t->limits;
}

void session_table_committed(struct session_table *t)
{
    t->gen++;
}

uint64_t session_table_gen(const struct session_table *t)
{
    return t->gen;
}

void session_table_set_loading(struct session_table *t, bool loading)
{
    t->loading = loading;
}

size_t session_table_count(const struct session_table *t)
{
    return t->n;
}

int session_table_each(struct session_table *t, int (*cb)(void *ctx, struct session *s), void *ctx)
{
    int rc = 0;

    for (size_t i = 0; i < t->nb && rc == 0; i++)
        for (struct session *s = t->b[i]; s && rc == 0; s = s->hnext)
            rc = cb(ctx, s);
    return rc;
}

static void session__grow(struct session_table *t)
{
    size_t nb = t->nb * 2;
    struct session **b = calloc(nb, sizeof(*b));
    struct session **old = t->b;
    size_t onb = t->nb;

    if (!b)
        return; /* chains just get longer */
    t->b = b;
    t->nb = nb;
    for (size_t i = 0; i < onb; i++) {
        struct session *s = old[i];
        while (s) {
            struct session *next = s->hnext;
            size_t h = session__hash(t, session_id(s));
            s->hnext = b[h];
            b[h] = s;
            s = next;
        }
    }
    free(old);
}

struct session *session_find(struct session_table *t, struct mqtt_str id)
{
    struct session *s;

    for (s = t->b[session__hash(t, id)]; s; s = s->hnext)
        if (s->id_len == id.len && memcmp(s->id, id.p, id.len) == 0)
            break;
    return s;
}

/* A session for id in the table; with_ext: with its ext made (the disk part of its queue). */
static struct session *session__alloc(struct session_table *t, struct mqtt_str id, bool with_ext)
{
    struct session *s = NULL;
    size_t h;

    if (id.len > UINT32_MAX || !(s = calloc(1, offsetof(struct session, id) + id.len + 1)))
        goto out;
    if (with_ext && !session_ext(s)) {
        free(s);
        s = NULL;
        goto out;
    }
    if (id.len)
        memcpy(s->id, id.p, id.len);
    s->id[id.len] = '\0';
    s->id_len = (uint32_t)id.len;
    s->table = t;
    s->next_seq = 1;
    if (t->n >= t->nb)
        session__grow(t);
    h = session__hash(t, id);
    s->hnext = t->b[h];
    t->b[h] = s;
    t->n++;
out:
    return s;
}

struct session *session_new(struct session_table *t, struct mqtt_str id, bool clean, int64_t now)
{
    bool durable = !clean && t->store;
    struct session *s = session__alloc(t, id, durable);

    if (!s)
        goto out;
    s->clean = clean;
    s->durable = durable;
    session_touch(s, now);
out:
    return s;
}

struct session *session_restore(struct session_table *t, struct mqtt_str id,
                                const struct persist_session *ps,
                                const struct persist_queue_info *q)
{
    struct session *s = session__alloc(t, id, true);

    if (!s)
        goto out;
    s->clean = false;
    s->durable = t->store != NULL;
    s->last_seen = ps->last_seen;
    s->user_kind = ps->owner;
    if (ps->owner == PERSIST_OWNER_USER || ps->owner == PERSIST_OWNER_CLAIMED) {
        s->user = malloc(ps->user.len + 1);
        if (!s->user) {
            session_del(s); /* loading: nothing is written */
            s = NULL;
            goto out;
        }
        if (ps->user.len)
            memcpy(s->user, ps->user.p, ps->user.len);
        s->user[ps->user.len] = '\0';
    }
    s->q_count = q->count;
    s->q_bytes = q->bytes;
    s->ext->disk_count = q->count;
    s->ext->refill_seq = q->count ? q->first_seq : 0;
    s->next_seq = q->count ? q->last_seq + 1 : 1;
out:
    return s;
}

void session_detach(struct session *s)
{
    struct session_table *t = s->table;
    struct session **pp = &t->b[session__hash(t, session_id(s))];

    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = s->hnext;
        t->n--;
    }
    if (s->ext && s->ext->n_unwritten > 0) { /* its records go, those not yet written with them */
        session__unwritten_settle(s, false);
        session__unw_remove(s);
    }
    if (session__store(s))
        persist_session_del(t->store, session_id(s));
    s->hnext = NULL;
    s->durable = false; /* nothing of it is written any more */
    s->detached = true;
}

void session_free_detached(struct session *s)
{
    if (s)
        session__free(s);
}

void session_del(struct session *s)
{
    session_detach(s);
    session__free(s);
}

static void session__put_record(struct session *s)
{
    struct persist_session ps = {.last_seen = s->last_seen, .owner = s->user_kind};

    if (!session__store(s))
        return;
    if (s->user) {
        ps.user.p = (const uint8_t *)s->user;
        ps.user.len = strlen(s->user);
    }
    persist_session_put(s->table->store, session_id(s), &ps);
}

void session_touch(struct session *s, int64_t now)
{
    s->last_seen = now;
    session__put_record(s);
}

/* The owner kind of a client: anonymous, a checked username, or a claimed one. */
static uint8_t session__kind(const char *user, bool checked)
{
    if (!user)
        return PERSIST_OWNER_ANONYMOUS;
    return checked ? PERSIST_OWNER_USER : PERSIST_OWNER_CLAIMED;
}

int session_set_user(struct session *s, const char *user, bool checked)
{
    char *copy = NULL;
    int rc = -ENOMEM;

    if (user && !(copy = strdup(user)))
        goto out;
    free(s->user);
    s->user = copy;
    s->user_kind = session__kind(user, checked);
    session__put_record(s);
    rc = 0;
out:
    return rc;
}

bool session_user_is(const struct session *s, const char *user, bool checked)
{
    uint8_t kind = session__kind(user, checked);

    return s->user_kind == kind &&
           (kind == PERSIST_OWNER_ANONYMOUS || (s->user && strcmp(s->user, user) == 0));
}

void session_offline(struct session *s)
{
    struct session_ext *x = s->ext; /* a durable session has one */
    struct sentry_list keep = {0};
    struct sentry *e;
    uint64_t first = 0;

    s->owner = NULL;
    if (x && x->n_unwritten > 0) { /* records first: the entries leave memory now */
        session__unwritten_settle(s, true);
        session__unw_remove(s);
    }
    /* In-flight entries of a durable session go back to disk; the next connect reads them. */
    if (s->durable) {
        pidx_cleanup(&x->pidx); /* the window empties */
        while ((e = sentry__shift(&s->inflight))) {
            if (!e->stored) { /* cannot happen: QoS > 0 entries of durable sessions are stored */
                sentry_free(e);
                continue;
            }
            if (!first || e->seq < first)
                first = e->seq;
            s->q_count++;
            s->q_bytes += msg_bytes(e->m);
            x->disk_count++;
            sentry_free(e);
        }
    }
    while ((e = sentry__shift(&s->queue))) {
        if (s->durable && e->stored) {
            if (!first || e->seq < first)
                first = e->seq;
            x->disk_count++;
            sentry_free(e);
        } else if (s->durable || (e->qos == 0 && !s->table->limits.queue_qos0)) {
            s->q_count--;
            s->q_bytes -= msg_bytes(e->m);
            sentry_free(e);
        } else {
            sentry__push(&keep, e);
        }
    }
    s->queue = keep;
    /* every entry still in memory was older than those already on disk */
    if (first) {
        x->refill_seq = first;
        /* their records may be in the open batch: read them after the next commit */
        if (x->disk_gen != s->table->gen || first < x->disk_gen_seq) {
            x->disk_gen = s->table->gen;
            x->disk_gen_seq = first;
        }
    }
}

void session_online(struct session *s, void *owner)
{
    s->owner = owner;
    for (struct sentry *e = s->inflight.head; e; e = e->next)
        e->resend = true;
    s->resend_pending = s->inflight.n > 0;
}

/* ---- queue and in-flight ------------------------------------------------------------------ */

int session_enqueue(struct session *s, struct msg *m, uint8_t qos)
{
    const struct session_limits *lim = &s->table->limits, *bound = lim;
    struct session_ext *x = s->ext; /* a durable session has one */
    uint64_t on_disk = x ? x->disk_count : 0;
    bool online = s->owner != NULL;
    struct sentry *e = NULL;
    bool to_disk;
    int rc = SESSION_QUEUED;

    if (x && x->limits)
        bound = x->limits;

    if (qos == 0 && !online && !lim->queue_qos0) {
        rc = SESSION_DROPPED_QOS0;
        goto out;
    }
    if ((bound->max_queued && s->q_count >= bound->max_queued) ||
        (bound->max_queued_bytes && s->q_bytes + msg_bytes(m) > bound->max_queued_bytes)) {
        if ((x = session_ext(s))) /* out of memory: dropped all the same, not counted */
            x->dropped++;
        rc = SESSION_DROPPED_LIMIT;
        goto out;
    }
    e = sentry__new();
    if (!e) {
        rc = -ENOMEM;
        goto out;
    }
    e->m = msg_ref(m);
    e->gen = s->table->gen;
    e->seq = s->next_seq++;
    e->qos = qos;
    e->state = PERSIST_Q_QUEUED;
    e->stored = s->durable && (qos > 0 || !online || on_disk > 0);
    to_disk = e->stored && (!online || on_disk > 0 || s->queue.n >= lim->window);
    if (e->stored && (to_disk || !session__defer(s, e))) {
        struct persist_qentry q = session__qentry(e);
        struct persist_msg pm = session__pmsg(m);
        persist_enqueue(s->table->store, session_id(s), &q, &pm);
    }
    s->q_count++;
    s->q_bytes += msg_bytes(m);
    if (to_disk) { /* stored: s is durable, x is there */
        if (x->disk_count == 0)
            x->refill_seq = e->seq;
        if (x->disk_gen != s->table->gen) {
            x->disk_gen = s->table->gen;
            x->disk_gen_seq = e->seq;
        }
        x->disk_count++;
        sentry_free(e);
    } else {
        sentry__push(&s->queue, e);
    }
out:
    return rc;
}

/*
 * Packet ids in flight: a scan of the window while it is small (the default 20), an index
 * (pidx.h) once a large max_inflight_messages lets it grow, so that neither allocating an id
 * nor finding the entry an acknowledgement names costs a walk over thousands of entries. The
 * index is made when the window reaches SESSION_PIDX_AT (a failed allocation just keeps the
 * scan) and dropped when the window empties at a disconnect.
 */
#define SESSION_PIDX_AT 32u

/* e entered the window (used) or is leaving it. */
static void session__pid_mark(struct session *s, struct sentry *e, bool used)
{
    struct session_ext *x = s->ext;
    int rc = 0;

    if (!used) {
        if (x)
            pidx_del(&x->pidx, e->pid);
        return;
    }
    if ((!x || x->pidx.cap == 0) && s->inflight.n >= SESSION_PIDX_AT) {
        if (!(x = session_ext(s)))
            return; /* scan on */
        for (struct sentry *o = s->inflight.head; o && rc != -ENOMEM; o = o->next)
            if (o != e)
                rc = pidx_put(&x->pidx, o->pid, o);
        if (rc == -ENOMEM) {
            pidx_cleanup(&x->pidx); /* scan on */
            return;
        }
    }
    if (x && x->pidx.cap && pidx_put(&x->pidx, e->pid, e) == -ENOMEM)
        pidx_cleanup(&x->pidx);
    /* -EEXIST: two entries under one id (pid_clashes, never): the index finds the first */
}

/* The in-flight entry with pid, or NULL. */
static struct sentry *session__inflight_find(const struct session *s, uint16_t pid)
{
    struct sentry *e;

    if (s->ext && s->ext->pidx.cap)
        return pidx_get(&s->ext->pidx, pid);
    for (e = s->inflight.head; e; e = e->next)
        if (e->pid == pid)
            break;
    return e;
}

bool session_pid_in_use(const struct session *s, uint16_t pid)
{
    return session__inflight_find(s, pid) != NULL;
}

static uint16_t session__next_pid(struct session *s)
{
    uint16_t pid = s->last_pid;

    do {
        pid = (uint16_t)(pid + 1);
        if (pid == 0)
            pid = 1;
    } while (session_pid_in_use(s, pid));
    s->last_pid = pid;
    return pid;
}

bool session_can_pop(const struct session *s)
{
    const struct sentry *e = s->queue.head;

    if (!e)
        return false;
    if (e->qos == 0)
        return true;
    /* max_inflight_bytes, as Mosquitto: more may leave until the bytes in flight reach the
     * limit, so one message over it still goes, alone */
    if (s->table->limits.max_inflight_bytes && s->inflight.n &&
        s->inflight.bytes >= s->table->limits.max_inflight_bytes)
        return false;
    return s->inflight.n < session__max_inflight(s->table);
}

struct sentry *session_pop(struct session *s)
{
    struct sentry *e = NULL;

    if (!session_can_pop(s))
        goto out;
    e = sentry__shift(&s->queue);
    s->q_count--;
    s->q_bytes -= msg_bytes(e->m);
    if (e->qos == 0) {
        if (e->unwritten)
            session__unwritten_gone(s, e);
        else if (e->stored)
            persist_dequeue(s->table->store, session_id(s), e->seq, e->m->id);
        goto out;
    }
    e->pid = session__next_pid(s);
    e->state = e->qos == 1 ? PERSIST_Q_WAIT_PUBACK : PERSIST_Q_WAIT_PUBREC;
    if (e->stored && !e->unwritten) {
        struct persist_qentry q = session__qentry(e);
        persist_queue_update(s->table->store, session_id(s), &q);
    }
    sentry__push(&s->inflight, e);
    session__pid_mark(s, e, true);
out:
    return e;
}

bool session_wants_refill(const struct session *s)
{
    uint32_t w = s->table->limits.window;

    return session__on_disk(s) > 0 && s->table->store && s->queue.n <= w / 2;
}

/* How many disk entries a read could find now (committed ones), at most disk_count. */
static uint64_t session__disk_readable(const struct session *s)
{
    const struct session_ext *x = s->ext;
    uint64_t n = 0;

    if (!x)
        goto out; /* nothing on disk */
    n = x->disk_count;
    if (x->disk_gen >= s->table->gen) /* part of it went to disk in this generation */
        n = x->disk_gen_seq > x->refill_seq ? x->disk_gen_seq - x->refill_seq : 0;
    if (n > x->disk_count)
        n = x->disk_count;
out:
    return n;
}

bool session_can_refill(const struct session *s)
{
    return session_wants_refill(s) && session__disk_readable(s) > 0;
}

struct session__refill_ctx {
    struct session *s;
    size_t count;
    int rc;
};

static int session__refill_cb(void *ctx, const struct persist_qentry *q,
                              const struct persist_msg *pm)
{
    struct session__refill_ctx *c = ctx;
    struct session *s = c->s;
    struct msg_table *msgs = s->table->msgs;
    struct msg *m = msgs ? msg_table_get(msgs, q->msg_id) : NULL;
    struct sentry *e = NULL;
    int rc = 0;

    if (!m) {
        m = msg_new(pm->id, pm->topic.p, pm->topic.len, pm->payload.p, pm->payload.len, pm->qos,
                    pm->retain);
        if (!m || (msgs && msg_table_add(msgs, m) < 0)) {
            rc = -ENOMEM;
            goto out;
        }
    }
    e = sentry__new();
    if (!e) {
        rc = -ENOMEM;
        goto out;
    }
    e->m = m;
    m = NULL;
    e->seq = q->seq;
    e->pid = q->packet_id;
    e->qos = q->qos;
    e->state = q->state;
    e->stored = true;
    s->ext->disk_count--; /* read from disk: s has an ext */
    s->ext->refill_seq = q->seq + 1;
    if (e->state == PERSIST_Q_QUEUED || e->qos == 0 || e->pid == 0) {
        e->state = PERSIST_Q_QUEUED;
        e->pid = 0;
        sentry__push(&s->queue, e);
    } else {
        /*
         * In flight when the session went offline (or the broker stopped): back into the
         * window with the packet id the client may have seen, to be resent with DUP (or PUBREL).
         * It keeps that id whatever happens — sent again under a new id it would be a second
         * message to the client, a QoS 2 duplicate. No new id can be in use here: in-flight
         * entries precede every queued one (pop takes the queue's head), so the reads that
         * bring them back come before any pop of this connection; the check stays as the
         * invariant's witness (session.h, "Packet ids").
         */
        if (session_pid_in_use(s, e->pid))
            s->ext->pid_clashes++;
        s->q_count--;
        s->q_bytes -= msg_bytes(e->m);
        e->resend = true;
        s->resend_pending = true;
        sentry__push(&s->inflight, e);
        session__pid_mark(s, e, true);
        s->last_pid = e->pid;
    }
    c->count++;
out:
    msg_unref(m);
    c->rc = rc;
    return rc;
}

int session_refill(struct session *s)
{
    struct session__refill_ctx c = {.s = s};
    uint32_t w = s->table->limits.window;
    size_t want;
    int rc = 0;

    if (!s->table->store || session__on_disk(s) == 0 || s->queue.n >= w)
        goto out;
    want = w - s->queue.n;
    if (want > session__disk_readable(s))
        want = (size_t)session__disk_readable(s);
    if (want == 0)
        goto out;
    rc = persist_queue_read(s->table->store, session_id(s), s->ext->refill_seq, want,
                            session__refill_cb, &c);
    if (c.rc < 0) {
        rc = c.rc;
    } else if (rc >= 0) {
        rc = (int)c.count;
        if (c.count < want && persist_batch_empty(s->table->store)) {
            /* everything stored was read: what disk_count still counts was in a batch that
             * failed to commit (session_table_commit_failed) */
            uint64_t lost = s->ext->disk_count;
            s->q_count = s->q_count > lost ? s->q_count - lost : 0;
            s->ext->disk_count = 0;
        }
    }
out:
    return rc;
}

static void session__inflight_remove(struct session *s, struct sentry *e)
{
    session__pid_mark(s, e, false);
    sentry__unlink(&s->inflight, e);
    if (e->unwritten)
        session__unwritten_gone(s, e);
    else if (e->stored)
        persist_dequeue(s->table->store, session_id(s), e->seq, e->m->id);
    sentry_free(e);
}

int session_ack(struct session *s, int type, uint16_t pid)
{
    struct sentry *e = session__inflight_find(s, pid);
    int rc = -ENOENT;

    if (!e)
        goto out;
    rc = -EPROTO; /* an acknowledgement of the wrong kind for this id */
    switch (type) {
    case MQTT_PUBACK:
        if (e->state != PERSIST_Q_WAIT_PUBACK)
            goto out;
        session__inflight_remove(s, e);
        break;
    case MQTT_PUBREC:
        if (e->state == PERSIST_Q_WAIT_PUBREC) {
            e->state = PERSIST_Q_WAIT_PUBCOMP;
            if (e->stored && !e->unwritten) {
                struct persist_qentry q = session__qentry(e);
                persist_queue_update(s->table->store, session_id(s), &q);
            }
        } else if (e->state != PERSIST_Q_WAIT_PUBCOMP) {
            goto out;
        }
        break;
    case MQTT_PUBCOMP:
        if (e->state != PERSIST_Q_WAIT_PUBCOMP)
            goto out;
        session__inflight_remove(s, e);
        break;
    default:
        goto out;
    }
    rc = 0;
out:
    return rc;
}

/* ---- inbound QoS 2 ------------------------------------------------------------------------ */

/* Where pid is (or would go) in x's sorted ids; x may be NULL (none). */
static size_t session__inbound_pos(const struct session_ext *x, uint16_t pid, bool *found)
{
    size_t lo = 0, hi = x ? x->n_inbound : 0;

    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (x->inbound[mid] == pid) {
            *found = true;
            return mid;
        }
        if (x->inbound[mid] < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool session_inbound_has(const struct session *s, uint16_t pid)
{
    bool found;

    session__inbound_pos(s->ext, pid, &found);
    return found;
}

int session_inbound_add(struct session *s, uint16_t pid)
{
    struct session_ext *x;
    bool found;
    size_t i = session__inbound_pos(s->ext, pid, &found);
    int rc = 0;

    if (found)
        goto out;
    rc = -ENOMEM;
    if (!(x = session_ext(s)))
        goto out;
    if (x->n_inbound == x->cap_inbound) {
        size_t cap = x->cap_inbound ? x->cap_inbound * 2 : 8;
        uint16_t *v = realloc(x->inbound, cap * sizeof(*v));
        uint64_t *g;
        if (!v)
            goto out;
        x->inbound = v;
        g = realloc(x->inbound_gen, cap * sizeof(*g));
        if (!g)
            goto out;
        x->inbound_gen = g;
        x->cap_inbound = (uint32_t)cap;
    }
    memmove(&x->inbound[i + 1], &x->inbound[i], (x->n_inbound - i) * sizeof(*x->inbound));
    memmove(&x->inbound_gen[i + 1], &x->inbound_gen[i],
            (x->n_inbound - i) * sizeof(*x->inbound_gen));
    x->inbound[i] = pid;
    x->inbound_gen[i] = s->table->loading ? 0 : s->table->gen;
    x->n_inbound++;
    if (session__store(s))
        persist_inbound_put(s->table->store, session_id(s), pid);
    rc = 0;
out:
    return rc;
}

int session_inbound_del(struct session *s, uint16_t pid)
{
    struct session_ext *x = s->ext;
    bool found;
    size_t i = session__inbound_pos(x, pid, &found);
    int rc = -ENOENT;

    if (!found)
        goto out;
    memmove(&x->inbound[i], &x->inbound[i + 1], (x->n_inbound - i - 1) * sizeof(*x->inbound));
    memmove(&x->inbound_gen[i], &x->inbound_gen[i + 1],
            (x->n_inbound - i - 1) * sizeof(*x->inbound_gen));
    x->n_inbound--;
    if (session__store(s))
        persist_inbound_del(s->table->store, session_id(s), pid);
    rc = 0;
out:
    return rc;
}

static int session__forget_uncommitted(void *ctx, struct session *s)
{
    struct session_ext *x = s->ext;
    uint64_t gen = s->table->gen;
    uint32_t w = 0;

    (void)ctx;
    for (uint32_t i = 0; x && i < x->n_inbound; i++) {
        if (x->inbound_gen[i] == gen)
            continue;
        x->inbound[w] = x->inbound[i];
        x->inbound_gen[w] = x->inbound_gen[i];
        w++;
    }
    if (x)
        x->n_inbound = w;
    return 0;
}

void session_table_commit_failed(struct session_table *t)
{
    session_table_each(t, session__forget_uncommitted, NULL);
}

/* ---- subscriptions ------------------------------------------------------------------------ */

int session_sub_set(struct session *s, struct mqtt_str filter, uint8_t qos)
{
    struct session_ext *x = session_ext(s);
    int rc = x ? subset_put(&x->subs, filter, qos) : -ENOMEM;

    if (rc >= 0 && session__store(s))
        persist_sub_put(s->table->store, session_id(s), filter, qos);
    return rc;
}

int session_sub_del(struct session *s, struct mqtt_str filter)
{
    int rc = s->ext ? subset_del(&s->ext->subs, filter) : -ENOENT;

    if (rc == 0 && session__store(s))
        persist_sub_del(s->table->store, session_id(s), filter);
    return rc;
}

bool session_sub_has(const struct session *s, struct mqtt_str filter)
{
    return s->ext && subset_get(&s->ext->subs, filter) != NULL;
}

struct subset_entry *session_sub_next(const struct session *s, size_t *cursor)
{
    return s->ext ? subset_next(&s->ext->subs, cursor) : NULL;
}
