/*
 * persist_record.c — encoding and defensive decoding of Cairn's keys and records.
 * The layout is described in persist_record.h.
 */
#include <string.h>

#include "persist_record.h"

#define FLAG_QOS_MASK 0x03u
#define FLAG_RETAIN   0x04u

/* ---- writing: count every byte, store only what fits ---------------------------------- */
struct wr {
    uint8_t *out;
    size_t cap;
    size_t len;
};

static void wr_bytes(struct wr *w, const void *p, size_t n)
{
    if (n && w->out && w->len + n <= w->cap)
        memcpy(w->out + w->len, p, n);
    w->len += n;
}

static void wr_u8(struct wr *w, uint8_t v)
{
    wr_bytes(w, &v, 1);
}

static void wr_be(struct wr *w, uint64_t v, unsigned width)
{
    uint8_t b[8];
    for (unsigned i = 0; i < width; i++)
        b[i] = (uint8_t)(v >> (8 * (width - 1 - i)));
    wr_bytes(w, b, width);
}

static size_t wr_done(struct wr *w)
{
    return w->len;
}

static void wr_cid(struct wr *w, struct mqtt_str cid)
{
    wr_be(w, cid.len, 2);
    wr_bytes(w, cid.p, cid.len);
}

/* ---- reading: never past n ------------------------------------------------------------- */
struct rd {
    const uint8_t *p;
    size_t n;
    size_t off;
    int err;
};

static bool rd_need(struct rd *r, size_t k)
{
    if (r->err)
        return false;
    if (r->n - r->off < k) {
        r->err = -PERSIST_REC_ESHORT;
        return false;
    }
    return true;
}

static uint64_t rd_be(struct rd *r, unsigned width)
{
    uint64_t v = 0;
    if (!rd_need(r, width))
        return 0;
    for (unsigned i = 0; i < width; i++)
        v = (v << 8) | r->p[r->off + i];
    r->off += width;
    return v;
}

static struct mqtt_str rd_bytes(struct rd *r, size_t k)
{
    struct mqtt_str s = {NULL, 0};
    if (!rd_need(r, k))
        return s;
    s.p = r->p + r->off;
    s.len = k;
    r->off += k;
    return s;
}

static struct mqtt_str rd_rest(struct rd *r)
{
    return rd_bytes(r, r->err ? 0 : r->n - r->off);
}

static int rd_end(struct rd *r)
{
    if (!r->err && r->off != r->n)
        r->err = -PERSIST_REC_ELONG;
    return r->err;
}

static void rd_version(struct rd *r)
{
    if (rd_be(r, 1) != PERSIST_REC_VERSION && !r->err)
        r->err = -PERSIST_REC_EVERSION;
}

static void rd_field_ok(struct rd *r, bool ok)
{
    if (!ok && !r->err)
        r->err = -PERSIST_REC_EFIELD;
}

/* ---- names ----------------------------------------------------------------------------- */
const char *persist_rec_strerror(int code)
{
    switch (code < 0 ? -code : code) {
    case 0:
        return "ok";
    case PERSIST_REC_ESHORT:
        return "record truncated";
    case PERSIST_REC_ELONG:
        return "trailing bytes after record";
    case PERSIST_REC_EKIND:
        return "unknown key kind";
    case PERSIST_REC_EVERSION:
        return "unknown record version";
    case PERSIST_REC_EFIELD:
        return "record field out of range";
    default:
        return "unknown record error";
    }
}

const char *persist_rec_kind_name(int kind)
{
    switch (kind) {
    case PERSIST_K_META:
        return "meta";
    case PERSIST_K_SESSION:
        return "session";
    case PERSIST_K_QUEUE:
        return "queue";
    case PERSIST_K_MSG:
        return "msg";
    case PERSIST_K_SUB:
        return "sub";
    case PERSIST_K_INBOUND:
        return "inbound";
    case PERSIST_K_RETAIN:
        return "retain";
    default:
        return "unknown";
    }
}

/* ---- keys ------------------------------------------------------------------------------ */
static const char meta_format_name[] = "format";

size_t persist_rec_key_meta(uint8_t *out, size_t cap)
{
    struct wr w = {out, cap, 0};
    wr_u8(&w, PERSIST_K_META);
    wr_bytes(&w, meta_format_name, sizeof meta_format_name - 1);
    return wr_done(&w);
}

size_t persist_rec_key_prefix(uint8_t *out, size_t cap, uint8_t kind, struct mqtt_str cid)
{
    struct wr w = {out, cap, 0};
    if (cid.len > PERSIST_CID_MAX)
        return 0;
    wr_u8(&w, kind);
    wr_cid(&w, cid);
    return wr_done(&w);
}

size_t persist_rec_key_session(uint8_t *out, size_t cap, struct mqtt_str cid)
{
    return persist_rec_key_prefix(out, cap, PERSIST_K_SESSION, cid);
}

size_t persist_rec_key_queue(uint8_t *out, size_t cap, struct mqtt_str cid, uint64_t seq)
{
    struct wr w = {out, cap, 0};
    if (cid.len > PERSIST_CID_MAX)
        return 0;
    wr_u8(&w, PERSIST_K_QUEUE);
    wr_cid(&w, cid);
    wr_be(&w, seq, 8);
    return wr_done(&w);
}

size_t persist_rec_key_msg(uint8_t *out, size_t cap, uint64_t msg_id)
{
    struct wr w = {out, cap, 0};
    wr_u8(&w, PERSIST_K_MSG);
    wr_be(&w, msg_id, 8);
    return wr_done(&w);
}

size_t persist_rec_key_sub(uint8_t *out, size_t cap, struct mqtt_str cid, struct mqtt_str filter)
{
    struct wr w = {out, cap, 0};
    if (cid.len > PERSIST_CID_MAX || filter.len == 0)
        return 0;
    wr_u8(&w, PERSIST_K_SUB);
    wr_cid(&w, cid);
    wr_bytes(&w, filter.p, filter.len);
    return wr_done(&w);
}

size_t persist_rec_key_inbound(uint8_t *out, size_t cap, struct mqtt_str cid, uint16_t packet_id)
{
    struct wr w = {out, cap, 0};
    if (cid.len > PERSIST_CID_MAX)
        return 0;
    wr_u8(&w, PERSIST_K_INBOUND);
    wr_cid(&w, cid);
    wr_be(&w, packet_id, 2);
    return wr_done(&w);
}

size_t persist_rec_key_retain(uint8_t *out, size_t cap, struct mqtt_str topic)
{
    struct wr w = {out, cap, 0};
    if (topic.len == 0)
        return 0;
    wr_u8(&w, PERSIST_K_RETAIN);
    wr_bytes(&w, topic.p, topic.len);
    return wr_done(&w);
}

size_t persist_rec_key_encode(uint8_t *out, size_t cap, const struct persist_rec_key *k)
{
    switch (k->kind) {
    case PERSIST_K_META: {
        struct wr w = {out, cap, 0};
        wr_u8(&w, PERSIST_K_META);
        wr_bytes(&w, k->name.p, k->name.len);
        return wr_done(&w);
    }
    case PERSIST_K_SESSION:
        return persist_rec_key_session(out, cap, k->cid);
    case PERSIST_K_QUEUE:
        return persist_rec_key_queue(out, cap, k->cid, k->seq);
    case PERSIST_K_MSG:
        return persist_rec_key_msg(out, cap, k->msg_id);
    case PERSIST_K_SUB:
        return persist_rec_key_sub(out, cap, k->cid, k->name);
    case PERSIST_K_INBOUND:
        return persist_rec_key_inbound(out, cap, k->cid, k->packet_id);
    case PERSIST_K_RETAIN:
        return persist_rec_key_retain(out, cap, k->name);
    default:
        return 0;
    }
}

int persist_rec_key_decode(const uint8_t *b, size_t n, struct persist_rec_key *out)
{
    struct rd r = {b, n, 0, 0};
    memset(out, 0, sizeof *out);
    out->kind = (uint8_t)rd_be(&r, 1);
    if (r.err)
        return r.err;
    switch (out->kind) {
    case PERSIST_K_META:
        out->name = rd_rest(&r);
        break;
    case PERSIST_K_SESSION:
        out->cid = rd_bytes(&r, rd_be(&r, 2));
        break;
    case PERSIST_K_QUEUE:
        out->cid = rd_bytes(&r, rd_be(&r, 2));
        out->seq = rd_be(&r, 8);
        break;
    case PERSIST_K_MSG:
        out->msg_id = rd_be(&r, 8);
        break;
    case PERSIST_K_SUB:
        out->cid = rd_bytes(&r, rd_be(&r, 2));
        out->name = rd_rest(&r);
        rd_field_ok(&r, out->name.len > 0);
        break;
    case PERSIST_K_INBOUND:
        out->cid = rd_bytes(&r, rd_be(&r, 2));
        out->packet_id = (uint16_t)rd_be(&r, 2);
        break;
    case PERSIST_K_RETAIN:
        out->name = rd_rest(&r);
        rd_field_ok(&r, out->name.len > 0);
        break;
    default:
        return -PERSIST_REC_EKIND;
    }
    return rd_end(&r);
}

/* ---- records --------------------------------------------------------------------------- */
static bool flags_encode(uint8_t qos, bool retain, uint8_t *flags)
{
    if (qos > 2)
        return false;
    *flags = (uint8_t)(qos | (retain ? FLAG_RETAIN : 0));
    return true;
}

static void flags_decode(struct rd *r, uint8_t *qos, bool *retain)
{
    uint8_t f = (uint8_t)rd_be(r, 1);
    rd_field_ok(r, (f & ~(FLAG_QOS_MASK | FLAG_RETAIN)) == 0 && (f & FLAG_QOS_MASK) != 3);
    *qos = f & FLAG_QOS_MASK;
    *retain = (f & FLAG_RETAIN) != 0;
}

size_t persist_rec_meta(uint8_t *out, size_t cap, uint32_t format)
{
    struct wr w = {out, cap, 0};
    wr_u8(&w, PERSIST_REC_VERSION);
    wr_be(&w, format, 4);
    return wr_done(&w);
}

int persist_rec_meta_decode(const uint8_t *b, size_t n, uint32_t *format)
{
    struct rd r = {b, n, 0, 0};
    rd_version(&r);
    *format = (uint32_t)rd_be(&r, 4);
    return rd_end(&r);
}

size_t persist_rec_session(uint8_t *out, size_t cap, const struct persist_session *s)
{
    struct wr w = {out, cap, 0};
    bool named = s->owner == PERSIST_OWNER_USER || s->owner == PERSIST_OWNER_CLAIMED;
    if (s->owner > PERSIST_OWNER_CLAIMED || s->user.len > 65535 || (!named && s->user.len))
        return 0;
    wr_u8(&w, s->owner == PERSIST_OWNER_UNKNOWN ? PERSIST_REC_VERSION : PERSIST_REC_SESSION_OWNER);
    wr_be(&w, (uint64_t)s->last_seen, 8);
    if (s->owner != PERSIST_OWNER_UNKNOWN)
        wr_u8(&w, s->owner);
    if (named) {
        wr_be(&w, s->user.len, 2);
        wr_bytes(&w, s->user.p, s->user.len);
    }
    return wr_done(&w);
}

int persist_rec_session_decode(const uint8_t *b, size_t n, struct persist_session *out)
{
    struct rd r = {b, n, 0, 0};
    uint64_t version = rd_be(&r, 1);
    if (!r.err && version != PERSIST_REC_VERSION && version != PERSIST_REC_SESSION_OWNER)
        r.err = -PERSIST_REC_EVERSION;
    out->last_seen = (int64_t)rd_be(&r, 8);
    out->owner = PERSIST_OWNER_UNKNOWN;
    out->user.p = NULL;
    out->user.len = 0;
    if (version == PERSIST_REC_SESSION_OWNER) {
        out->owner = (uint8_t)rd_be(&r, 1);
        rd_field_ok(&r, out->owner == PERSIST_OWNER_ANONYMOUS || out->owner == PERSIST_OWNER_USER ||
                            out->owner == PERSIST_OWNER_CLAIMED);
        if (out->owner == PERSIST_OWNER_USER || out->owner == PERSIST_OWNER_CLAIMED)
            out->user = rd_bytes(&r, rd_be(&r, 2));
    }
    return rd_end(&r);
}

size_t persist_rec_qentry(uint8_t *out, size_t cap, const struct persist_qentry *e,
                          uint32_t payload_len)
{
    struct wr w = {out, cap, 0};
    if (e->qos > 2 || e->state > PERSIST_Q_WAIT_PUBCOMP)
        return 0;
    wr_u8(&w, PERSIST_REC_VERSION);
    wr_be(&w, e->msg_id, 8);
    wr_be(&w, e->packet_id, 2);
    wr_u8(&w, e->qos);
    wr_u8(&w, e->state);
    wr_be(&w, payload_len, 4);
    return wr_done(&w);
}

int persist_rec_qentry_decode(const uint8_t *b, size_t n, struct persist_qentry *out,
                              uint32_t *payload_len)
{
    struct rd r = {b, n, 0, 0};
    rd_version(&r);
    out->msg_id = rd_be(&r, 8);
    out->packet_id = (uint16_t)rd_be(&r, 2);
    out->qos = (uint8_t)rd_be(&r, 1);
    out->state = (uint8_t)rd_be(&r, 1);
    *payload_len = (uint32_t)rd_be(&r, 4);
    rd_field_ok(&r, out->qos <= 2 && out->state <= PERSIST_Q_WAIT_PUBCOMP);
    return rd_end(&r);
}

size_t persist_rec_msg(uint8_t *out, size_t cap, const struct persist_msg *m)
{
    struct wr w = {out, cap, 0};
    uint8_t flags;
    if (!flags_encode(m->qos, m->retain, &flags) || m->topic.len > 65535 ||
        m->payload.len > UINT32_MAX)
        return 0;
    wr_u8(&w, PERSIST_REC_VERSION);
    wr_u8(&w, flags);
    wr_be(&w, m->topic.len, 2);
    wr_bytes(&w, m->topic.p, m->topic.len);
    wr_be(&w, m->payload.len, 4);
    wr_bytes(&w, m->payload.p, m->payload.len);
    return wr_done(&w);
}

int persist_rec_msg_decode(const uint8_t *b, size_t n, struct persist_msg *out)
{
    struct rd r = {b, n, 0, 0};
    rd_version(&r);
    flags_decode(&r, &out->qos, &out->retain);
    out->topic = rd_bytes(&r, rd_be(&r, 2));
    out->payload = rd_bytes(&r, rd_be(&r, 4));
    return rd_end(&r);
}

size_t persist_rec_sub(uint8_t *out, size_t cap, uint8_t qos)
{
    struct wr w = {out, cap, 0};
    if (qos > 2)
        return 0;
    wr_u8(&w, PERSIST_REC_VERSION);
    wr_u8(&w, qos);
    return wr_done(&w);
}

int persist_rec_sub_decode(const uint8_t *b, size_t n, uint8_t *qos)
{
    struct rd r = {b, n, 0, 0};
    rd_version(&r);
    *qos = (uint8_t)rd_be(&r, 1);
    rd_field_ok(&r, *qos <= 2);
    return rd_end(&r);
}

size_t persist_rec_inbound(uint8_t *out, size_t cap)
{
    struct wr w = {out, cap, 0};
    wr_u8(&w, PERSIST_REC_VERSION);
    return wr_done(&w);
}

int persist_rec_inbound_decode(const uint8_t *b, size_t n)
{
    struct rd r = {b, n, 0, 0};
    rd_version(&r);
    return rd_end(&r);
}

size_t persist_rec_retain(uint8_t *out, size_t cap, const struct persist_msg *m)
{
    struct wr w = {out, cap, 0};
    uint8_t flags;
    if (!flags_encode(m->qos, m->retain, &flags) || m->payload.len > UINT32_MAX ||
        m->src.len > 65535)
        return 0;
    wr_u8(&w, m->src.len ? PERSIST_REC_RETAIN_SRC : PERSIST_REC_VERSION);
    wr_be(&w, m->id, 8);
    wr_u8(&w, flags);
    wr_be(&w, m->payload.len, 4);
    wr_bytes(&w, m->payload.p, m->payload.len);
    if (m->src.len) {
        wr_be(&w, m->src.len, 2);
        wr_bytes(&w, m->src.p, m->src.len);
    }
    return wr_done(&w);
}

int persist_rec_retain_decode(const uint8_t *b, size_t n, struct persist_msg *out)
{
    struct rd r = {b, n, 0, 0};
    bool src = n > 0 && b[0] == PERSIST_REC_RETAIN_SRC;

    if (src)
        r.off = 1; /* the version byte of a retained message with a source */
    else
        rd_version(&r);
    out->id = rd_be(&r, 8);
    flags_decode(&r, &out->qos, &out->retain);
    out->payload = rd_bytes(&r, rd_be(&r, 4));
    out->src.p = NULL;
    out->src.len = 0;
    if (src) {
        out->src = rd_bytes(&r, rd_be(&r, 2));
        rd_field_ok(&r, out->src.len > 0); /* one encoding: no source is version 1 */
    }
    return rd_end(&r);
}
