/*
 * fuzz_record.c — the input is decoded as a key and as every kind of record (persist_record.c).
 * A decoder must never read past the input; whatever decodes must encode back to exactly the
 * input bytes (each key and record has one encoding), and the encoders' size query must agree
 * with what they write. Then the input is cut into (key, value) records and fed to the restore
 * scanner (persist_restore.c) as if read from a store: whatever the records, it must answer
 * with a code, never crash, and its counts must agree with what it reported. A broken invariant
 * aborts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "persist_internal.h"
#include "persist_record.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_record: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The re-encoding must equal the input; the size query must agree. */
static void same(const uint8_t *in, size_t n, uint8_t *out, size_t need, size_t wrote)
{
    CHECK(need == n);
    CHECK(wrote == n);
    CHECK(n == 0 || memcmp(in, out, n) == 0);
}

static void str_inside(struct mqtt_str s, const uint8_t *data, size_t size)
{
    if (s.len == 0)
        return;
    CHECK(s.p >= data && s.p + s.len <= data + size);
}

struct seen {
    uint64_t sessions, subs, inbound, retained, queued;
};

static int on_session(void *ctx, struct mqtt_str cid, const struct persist_session *s,
                      const struct persist_queue_info *q)
{
    struct seen *w = ctx;
    CHECK(s->owner <= PERSIST_OWNER_USER);
    CHECK(s->owner == PERSIST_OWNER_USER || s->user.len == 0);
    CHECK(s->user.len == 0 || s->user.p != NULL);
    CHECK(q->count == 0 || q->first_seq <= q->last_seq);
    CHECK(q->inflight <= q->count);
    w->sessions++;
    w->queued += q->count;
    return 0;
}

static int on_sub(void *ctx, struct mqtt_str cid, struct mqtt_str filter, uint8_t qos)
{
    CHECK(qos <= 2 && filter.len > 0);
    ((struct seen *)ctx)->subs++;
    return 0;
}

static int on_inbound(void *ctx, struct mqtt_str cid, uint16_t packet_id)
{
    ((struct seen *)ctx)->inbound++;
    return 0;
}

static int on_retain(void *ctx, const struct persist_msg *m)
{
    CHECK(m->qos <= 2 && m->topic.len > 0);
    ((struct seen *)ctx)->retained++;
    return 0;
}

/* Records: [key length:1][key][value length:1][value]..., fed to the scanner in that order. */
static void scan(const uint8_t *in, size_t size)
{
    static const struct persist_restore_ops ops = {on_session, on_sub, on_inbound, on_retain};
    struct persist_refs refs = {0};
    struct persist_stats st = {0};
    struct persist_scan sc;
    struct seen w = {0};
    char err[256];
    int rc = 0;
    persist__scan_init(&sc, &ops, &w, &refs, &st);
    for (size_t off = 0; off < size && rc == 0;) {
        size_t kl = in[off++];
        if (kl > size - off)
            break;
        const uint8_t *k = in + off;
        off += kl;
        size_t vl = off < size ? in[off++] : 0;
        if (vl > size - off)
            vl = size - off;
        bool drop;
        rc = persist__scan_record(&sc, k, kl, in + off, vl, &drop, err, sizeof err);
        off += vl;
    }
    if (rc == 0) {
        CHECK(persist__scan_finish(&sc, err, sizeof err) == 0);
        /* a real store is sorted; here a session or entry after the report is counted only */
        CHECK(w.sessions <= st.sessions && w.queued <= st.queued);
        CHECK(w.subs == st.subs && w.inbound == st.inbound && w.retained == st.retained);
        /* a body key may repeat here, never in a store */
        CHECK(st.bodies > persist_refs_size(&refs) ||
              st.bodies + st.missing == persist_refs_size(&refs));
    } else {
        CHECK(rc < 0 && err[0] != '\0');
    }
    persist__scan_cleanup(&sc);
    persist_refs_cleanup(&refs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes, so ASan sees any read past the end */
    uint8_t *in = malloc(size ? size : 1);
    uint8_t *out = malloc(size + 16);
    if (!in || !out)
        abort();
    if (size)
        memcpy(in, data, size);

    struct persist_rec_key k;
    if (persist_rec_key_decode(in, size, &k) == 0) {
        str_inside(k.cid, in, size);
        str_inside(k.name, in, size);
        CHECK(persist_rec_kind_name(k.kind)[0] != 'u');
        same(in, size, out, persist_rec_key_encode(NULL, 0, &k),
             persist_rec_key_encode(out, size + 16, &k));
        if (k.kind != PERSIST_K_META && k.kind != PERSIST_K_MSG && k.kind != PERSIST_K_RETAIN) {
            /* the client's prefix is where its keys start */
            size_t pl = persist_rec_key_prefix(out, size + 16, k.kind, k.cid);
            CHECK(pl <= size && memcmp(out, in, pl) == 0);
        }
    }

    uint32_t format;
    if (persist_rec_meta_decode(in, size, &format) == 0)
        same(in, size, out, persist_rec_meta(NULL, 0, format),
             persist_rec_meta(out, size + 16, format));

    struct persist_session s;
    if (persist_rec_session_decode(in, size, &s) == 0) {
        str_inside(s.user, in, size);
        same(in, size, out, persist_rec_session(NULL, 0, &s),
             persist_rec_session(out, size + 16, &s));
    }

    struct persist_qentry e = {.seq = 1};
    uint32_t plen;
    if (persist_rec_qentry_decode(in, size, &e, &plen) == 0) {
        CHECK(e.qos <= 2 && e.state <= PERSIST_Q_WAIT_PUBCOMP);
        same(in, size, out, persist_rec_qentry(NULL, 0, &e, plen),
             persist_rec_qentry(out, size + 16, &e, plen));
    }

    struct persist_msg m = {.id = 1};
    if (persist_rec_msg_decode(in, size, &m) == 0) {
        CHECK(m.qos <= 2);
        str_inside(m.topic, in, size);
        str_inside(m.payload, in, size);
        same(in, size, out, persist_rec_msg(NULL, 0, &m), persist_rec_msg(out, size + 16, &m));
    }

    uint8_t qos;
    if (persist_rec_sub_decode(in, size, &qos) == 0) {
        CHECK(qos <= 2);
        same(in, size, out, persist_rec_sub(NULL, 0, qos), persist_rec_sub(out, size + 16, qos));
    }

    if (persist_rec_inbound_decode(in, size) == 0)
        same(in, size, out, persist_rec_inbound(NULL, 0), persist_rec_inbound(out, size + 16));

    struct persist_msg r = {.topic = {(const uint8_t *)"t", 1}};
    if (persist_rec_retain_decode(in, size, &r) == 0) {
        CHECK(r.qos <= 2);
        str_inside(r.payload, in, size);
        str_inside(r.src, in, size);
        same(in, size, out, persist_rec_retain(NULL, 0, &r),
             persist_rec_retain(out, size + 16, &r));
    }

    /* a short output buffer is never written past its end */
    if (size > 1 && persist_rec_msg_decode(in, size, &m) == 0) {
        uint8_t *small = malloc(size - 1);
        if (!small)
            abort();
        CHECK(persist_rec_msg(small, size - 1, &m) == size);
        free(small);
    }

    scan(in, size);
    free(in);
    free(out);
    return 0;
}
