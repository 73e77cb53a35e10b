/*
 * persist_restore.c — what persist_restore() makes of each record, in key order. Pure code: the
 * backend iterates and deletes; this file decodes, checks, counts and calls back.
 *
 * The kinds arrive in the order persist_record.h gives them: sessions, queues, bodies, then
 * subscriptions, inbound ids and retained messages. So when the first record past the bodies
 * (or the end) arrives, every session's queue summary is complete and the sessions are reported;
 * and when a body arrives, every reference to it has been counted.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "persist_internal.h"
#include "persist_record.h"

static void scan_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void scan_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void persist__scan_init(struct persist_scan *s, const struct persist_restore_ops *ops, void *ctx,
                        struct persist_refs *refs, struct persist_stats *stats)
{
    static const struct persist_restore_ops none;
    memset(s, 0, sizeof *s);
    s->ops = ops ? ops : &none;
    s->ctx = ctx;
    s->refs = refs;
    s->stats = stats;
}

void persist__scan_cleanup(struct persist_scan *s)
{
    free(s->sess);
    free(s->arena);
    free(s->ents);
    s->sess = NULL;
    s->arena = NULL;
    s->ents = NULL;
}

/* Sort and merge the references counted so far (all of them, in a store's key order). */
static int sort_refs(struct persist_scan *s)
{
    size_t n = s->nents;
    struct persist_ref *tmp = n > 1 ? malloc(n * sizeof *tmp) : NULL;
    if (n > 1 && !tmp)
        return -ENOMEM;
    int rc = persist_refs_sort_merge(s->ents, tmp, n, &n);
    free(tmp);
    if (rc == 0)
        s->nents = s->nsorted = n;
    return rc;
}

/* Is msg id referenced? Bodies come in id order, so the cursor only moves forward. */
static bool referenced(struct persist_scan *s, uint64_t id)
{
    if (s->mcur > 0 && s->mcur <= s->nsorted && s->ents[s->mcur - 1].id >= id)
        s->mcur = 0; /* out of order (never in a store): start again */
    while (s->mcur < s->nsorted && s->ents[s->mcur].id < id)
        s->mcur++;
    if (s->mcur < s->nsorted && s->ents[s->mcur].id == id) {
        s->mcur++;
        return true;
    }
    return false;
}

/* A kept session's client id (the arena is not allocated while every id is empty). */
static struct mqtt_str cid_of(const struct persist_scan *s, const struct persist_scan_session *x)
{
    struct mqtt_str c = {(const uint8_t *)"", 0};
    if (x->len) {
        c.p = s->arena + x->off;
        c.len = x->len;
    }
    return c;
}

static int cid_cmp(struct mqtt_str a, struct mqtt_str b)
{
    if (a.len != b.len)
        return a.len < b.len ? -1 : 1;
    return a.len ? memcmp(a.p, b.p, a.len) : 0;
}

/*
 * Sessions and every per-client kind sort by (length, client id), so one cursor that only moves
 * forward finds each record's session: a merge join, no hash of client ids.
 */
static struct persist_scan_session *session_of(struct persist_scan *s, uint8_t kind,
                                               struct mqtt_str cid)
{
    if (kind != s->curkind) {
        s->curkind = kind;
        s->cur = 0;
    }
    while (s->cur < s->nsess) {
        struct persist_scan_session *x = &s->sess[s->cur];
        int c = cid_cmp(cid_of(s, x), cid);
        if (c == 0)
            return x;
        if (c > 0)
            return NULL;
        s->cur++;
    }
    return NULL;
}

static int emit_sessions(struct persist_scan *s)
{
    s->emitted = true;
    for (size_t i = 0; s->ops->session && i < s->nsess; i++) {
        struct persist_scan_session *x = &s->sess[i];
        x->s.user.p = x->s.user.len ? s->arena + x->user_off : (const uint8_t *)"";
        int rc = s->ops->session(s->ctx, cid_of(s, x), &x->s, &x->q);
        if (rc)
            return rc;
    }
    return 0;
}

static int add_session(struct persist_scan *s, struct mqtt_str cid, const uint8_t *v, size_t vl)
{
    struct persist_scan_session *x;
    struct persist_session ps;
    int rc = persist_rec_session_decode(v, vl, &ps);
    if (rc < 0)
        return rc;
    /* the owner's name is a view into v, gone with the iterator: keep a copy beside the id */
    if (!persist__grow((void **)&s->sess, &s->capsess, s->nsess + 1, sizeof *s->sess) ||
        !persist__grow((void **)&s->arena, &s->arena_cap, s->arena_len + cid.len + ps.user.len, 1))
        return -ENOMEM;
    x = &s->sess[s->nsess];
    memset(x, 0, sizeof *x);
    x->s = ps;
    x->s.user.p = NULL;
    x->off = s->arena_len;
    x->len = cid.len;
    if (cid.len)
        memcpy(s->arena + s->arena_len, cid.p, cid.len);
    s->arena_len += cid.len;
    x->user_off = s->arena_len;
    if (ps.user.len)
        memcpy(s->arena + s->arena_len, ps.user.p, ps.user.len);
    s->arena_len += ps.user.len;
    s->nsess++;
    s->stats->sessions++;
    return 0;
}

static int add_entry(struct persist_scan *s, const struct persist_rec_key *key, const uint8_t *v,
                     size_t vl, bool *drop)
{
    struct persist_qentry e;
    uint32_t plen;
    int rc = persist_rec_qentry_decode(v, vl, &e, &plen);
    if (rc < 0)
        return rc;
    struct persist_scan_session *x = session_of(s, key->kind, key->cid);
    if (!x) {
        s->stats->orphans++;
        *drop = true;
        return 0;
    }
    if (!persist__grow((void **)&s->ents, &s->capents, s->nents + 1, sizeof *s->ents))
        return -ENOMEM;
    s->ents[s->nents++] = (struct persist_ref){e.msg_id, 1, plen};
    /* keys come in seq order; min/max keep the summary sane even if they did not */
    if (x->q.count == 0 || key->seq < x->q.first_seq)
        x->q.first_seq = key->seq;
    if (x->q.count == 0 || key->seq > x->q.last_seq)
        x->q.last_seq = key->seq;
    x->q.count++;
    x->q.bytes += plen;
    s->stats->queued++;
    s->stats->queued_bytes += plen;
    if (e.state != PERSIST_Q_QUEUED) {
        x->q.inflight++;
        s->stats->inflight++;
    }
    if (e.msg_id > s->max_id)
        s->max_id = e.msg_id;
    return 0;
}

int persist__scan_record(struct persist_scan *s, const uint8_t *k, size_t kl, const uint8_t *v,
                         size_t vl, bool *drop, char *err, size_t errlen)
{
    struct persist_rec_key key;
    struct persist_msg m;
    uint32_t format;
    uint8_t qos;
    int rc = persist_rec_key_decode(k, kl, &key);

    *drop = false;
    if (rc < 0) {
        scan_err(err, errlen, "persist: damaged key (kind 0x%02x, %zu bytes): %s", kl ? k[0] : 0,
                 kl, persist_rec_strerror(rc));
        return -EBADMSG;
    }
    /* every queue entry is in: sort the references so the bodies can be matched */
    if (key.kind >= PERSIST_K_MSG && s->nsorted != s->nents) {
        rc = sort_refs(s);
        if (rc < 0) {
            scan_err(err, errlen, "persist: out of memory");
            return rc;
        }
    }
    /* sessions, queues and bodies are in: the summaries are complete */
    if (!s->emitted && key.kind > PERSIST_K_MSG) {
        rc = emit_sessions(s);
        if (rc)
            return rc;
    }
    switch (key.kind) {
    case PERSIST_K_META:
        if (key.name.len != 6 || memcmp(key.name.p, "format", 6) != 0)
            break; /* a later format's note: the format number decides */
        rc = persist_rec_meta_decode(v, vl, &format);
        if (rc == 0 && format != PERSIST_FORMAT) {
            scan_err(err, errlen, "persist: store format %u, this cairn reads format %u", format,
                     PERSIST_FORMAT);
            return -EPROTO;
        }
        break;
    case PERSIST_K_SESSION:
        rc = add_session(s, key.cid, v, vl);
        break;
    case PERSIST_K_QUEUE:
        rc = add_entry(s, &key, v, vl, drop);
        break;
    case PERSIST_K_MSG:
        rc = persist_rec_msg_decode(v, vl, &m);
        if (rc < 0)
            break;
        if (key.msg_id > s->max_id)
            s->max_id = key.msg_id;
        if (referenced(s, key.msg_id)) {
            s->found++;
            s->stats->bodies++;
            s->stats->body_bytes += m.payload.len;
        } else {
            s->stats->garbage++;
            *drop = true;
        }
        break;
    case PERSIST_K_SUB:
        rc = persist_rec_sub_decode(v, vl, &qos);
        if (rc < 0)
            break;
        if (!session_of(s, key.kind, key.cid)) {
            s->stats->orphans++;
            *drop = true;
            break;
        }
        s->stats->subs++;
        if (s->ops->sub)
            return s->ops->sub(s->ctx, key.cid, key.name, qos);
        break;
    case PERSIST_K_INBOUND:
        rc = persist_rec_inbound_decode(v, vl);
        if (rc < 0)
            break;
        if (!session_of(s, key.kind, key.cid)) {
            s->stats->orphans++;
            *drop = true;
            break;
        }
        s->stats->inbound++;
        if (s->ops->inbound)
            return s->ops->inbound(s->ctx, key.cid, key.packet_id);
        break;
    case PERSIST_K_RETAIN:
        rc = persist_rec_retain_decode(v, vl, &m);
        if (rc < 0)
            break;
        m.topic = key.name;
        if (m.id > s->max_id)
            s->max_id = m.id;
        s->stats->retained++;
        if (s->ops->retain)
            return s->ops->retain(s->ctx, &m);
        break;
    }
    if (rc == -ENOMEM) {
        scan_err(err, errlen, "persist: out of memory");
        return rc;
    }
    if (rc < 0) {
        scan_err(err, errlen, "persist: damaged %s record (%zu bytes): %s",
                 persist_rec_kind_name(key.kind), vl, persist_rec_strerror(rc));
        return -EBADMSG;
    }
    return 0;
}

int persist__scan_finish(struct persist_scan *s, char *err, size_t errlen)
{
    int rc = 0;
    if (s->nsorted != s->nents)
        rc = sort_refs(s);
    if (rc == 0)
        rc = persist_refs_build(s->refs, s->ents, s->nents);
    free(s->ents);
    s->ents = NULL;
    s->nents = s->nsorted = s->capents = 0;
    if (rc < 0) {
        scan_err(err, errlen, "persist: out of memory");
        return rc;
    }
    size_t referenced = persist_refs_size(s->refs);
    s->stats->missing = referenced > s->found ? referenced - s->found : 0;
    return s->emitted ? 0 : emit_sessions(s);
}
