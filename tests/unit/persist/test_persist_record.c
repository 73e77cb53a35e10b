/*
 * test_persist_record.c — keys and records of persist_record.c: round trips, order, and
 * damaged input (every truncation, trailing bytes, bad versions and fields) as errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "persist_record.h"

#define S(lit) ((struct mqtt_str){(const uint8_t *)(lit), sizeof(lit) - 1})

static bool str_eq(struct mqtt_str a, struct mqtt_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Compare keys the way LevelDB does: bytewise, shorter first on a common prefix. */
static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = memcmp(a, b, n);
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

/* Decode, compare with want, re-encode, compare bytes; then every truncation must fail. */
static void check_key(const uint8_t *k, size_t kl, const struct persist_rec_key *want)
{
    struct persist_rec_key got;
    uint8_t again[256];
    assert_int_equal(persist_rec_key_decode(k, kl, &got), 0);
    assert_int_equal(got.kind, want->kind);
    assert_true(str_eq(got.cid, want->cid));
    assert_true(str_eq(got.name, want->name));
    assert_true(got.seq == want->seq);
    assert_true(got.msg_id == want->msg_id);
    assert_int_equal(got.packet_id, want->packet_id);
    assert_int_equal(persist_rec_key_encode(again, sizeof again, &got), kl);
    assert_memory_equal(again, k, kl);
}

static void test_keys_round_trip(void **state)
{
    uint8_t k[256];
    size_t n;
    struct persist_rec_key want;

    n = persist_rec_key_meta(k, sizeof k);
    want = (struct persist_rec_key){.kind = PERSIST_K_META, .name = S("format")};
    check_key(k, n, &want);

    n = persist_rec_key_session(k, sizeof k, S("client-1"));
    want = (struct persist_rec_key){.kind = PERSIST_K_SESSION, .cid = S("client-1")};
    check_key(k, n, &want);

    n = persist_rec_key_queue(k, sizeof k, S("c"), 0x0102030405060708ull);
    want = (struct persist_rec_key){
        .kind = PERSIST_K_QUEUE, .cid = S("c"), .seq = 0x0102030405060708ull};
    check_key(k, n, &want);
    assert_int_equal(n, 1 + 2 + 1 + 8);

    n = persist_rec_key_msg(k, sizeof k, UINT64_MAX);
    want = (struct persist_rec_key){.kind = PERSIST_K_MSG, .msg_id = UINT64_MAX};
    check_key(k, n, &want);

    n = persist_rec_key_sub(k, sizeof k, S("c"), S("a/+/#"));
    want = (struct persist_rec_key){.kind = PERSIST_K_SUB, .cid = S("c"), .name = S("a/+/#")};
    check_key(k, n, &want);

    n = persist_rec_key_inbound(k, sizeof k, S(""), 65535);
    want = (struct persist_rec_key){.kind = PERSIST_K_INBOUND, .cid = S(""), .packet_id = 65535};
    check_key(k, n, &want);

    n = persist_rec_key_retain(k, sizeof k, S("a/b"));
    want = (struct persist_rec_key){.kind = PERSIST_K_RETAIN, .name = S("a/b")};
    check_key(k, n, &want);
}

static void test_key_errors(void **state)
{
    uint8_t k[64] = {0};
    struct persist_rec_key got;
    size_t n;

    assert_int_equal(persist_rec_key_decode(k, 0, &got), -PERSIST_REC_ESHORT);
    k[0] = 0x99;
    assert_int_equal(persist_rec_key_decode(k, 1, &got), -PERSIST_REC_EKIND);

    n = persist_rec_key_queue(k, sizeof k, S("abc"), 7);
    for (size_t i = 1; i < n; i++)
        assert_int_equal(persist_rec_key_decode(k, i, &got), -PERSIST_REC_ESHORT);
    assert_int_equal(persist_rec_key_decode(k, n + 1, &got), -PERSIST_REC_ELONG);

    n = persist_rec_key_inbound(k, sizeof k, S("abc"), 7);
    for (size_t i = 1; i < n; i++)
        assert_true(persist_rec_key_decode(k, i, &got) < 0);
    assert_int_equal(persist_rec_key_decode(k, n + 1, &got), -PERSIST_REC_ELONG);

    /* a client id length running past the key */
    n = persist_rec_key_session(k, sizeof k, S("abc"));
    k[2] = 200;
    assert_int_equal(persist_rec_key_decode(k, n, &got), -PERSIST_REC_ESHORT);

    /* empty filter / topic */
    n = persist_rec_key_prefix(k, sizeof k, PERSIST_K_SUB, S("abc"));
    assert_int_equal(persist_rec_key_decode(k, n, &got), -PERSIST_REC_EFIELD);
    k[0] = PERSIST_K_RETAIN;
    assert_int_equal(persist_rec_key_decode(k, 1, &got), -PERSIST_REC_EFIELD);
}

static void test_encoder_limits(void **state)
{
    static uint8_t big[PERSIST_CID_MAX + 1];
    struct mqtt_str cid = {big, sizeof big};
    struct persist_qentry e = {.seq = 1, .msg_id = 1, .qos = 3};
    struct persist_msg m = {.id = 1, .topic = S("t"), .qos = 3};
    uint8_t k[64];

    assert_int_equal(persist_rec_key_session(NULL, 0, cid), 0);
    assert_int_equal(persist_rec_key_queue(NULL, 0, cid, 1), 0);
    assert_int_equal(persist_rec_key_sub(NULL, 0, S("c"), S("")), 0);
    assert_int_equal(persist_rec_key_retain(NULL, 0, S("")), 0);
    assert_int_equal(persist_rec_qentry(k, sizeof k, &e, 0), 0);
    e.qos = 1;
    e.state = 4;
    assert_int_equal(persist_rec_qentry(k, sizeof k, &e, 0), 0);
    assert_int_equal(persist_rec_msg(k, sizeof k, &m), 0);
    assert_int_equal(persist_rec_retain(k, sizeof k, &m), 0);
    assert_int_equal(persist_rec_sub(k, sizeof k, 3), 0);

    /* the longest client id still fits */
    cid.len = PERSIST_CID_MAX;
    assert_int_equal(persist_rec_key_session(NULL, 0, cid), 1 + 2 + PERSIST_CID_MAX);
}

static void test_size_query_and_short_buffer(void **state)
{
    struct persist_msg m = {.id = 9, .topic = S("a/b"), .payload = S("hello"), .qos = 1};
    uint8_t out[64];
    size_t need = persist_rec_msg(NULL, 0, &m);
    assert_int_equal(need, 1 + 1 + 2 + 3 + 4 + 5);
    /* a short buffer is never written past its end */
    memset(out, 0xAA, sizeof out);
    assert_int_equal(persist_rec_msg(out, 6, &m), need);
    for (size_t i = 6; i < sizeof out; i++)
        assert_int_equal(out[i], 0xAA);
}

static void test_key_order(void **state)
{
    uint8_t a[64], b[64];
    size_t al, bl;
    const uint64_t seqs[] = {0, 1, 255, 256, 65536, 1ull << 40, UINT64_MAX};

    /* one client's queue sorts by seq */
    for (size_t i = 0; i + 1 < sizeof seqs / sizeof seqs[0]; i++) {
        al = persist_rec_key_queue(a, sizeof a, S("dev"), seqs[i]);
        bl = persist_rec_key_queue(b, sizeof b, S("dev"), seqs[i + 1]);
        assert_true(key_cmp(a, al, b, bl) < 0);
    }
    /* the prefix of client "a" does not cover client "ab" */
    size_t pl = persist_rec_key_prefix(a, sizeof a, PERSIST_K_QUEUE, S("a"));
    bl = persist_rec_key_queue(b, sizeof b, S("ab"), 1);
    assert_false(bl >= pl && memcmp(a, b, pl) == 0);
    bl = persist_rec_key_queue(b, sizeof b, S("a"), 1);
    assert_true(bl >= pl && memcmp(a, b, pl) == 0);

    /* kinds: meta, sessions, queues, bodies, then subs, inbound ids, retained */
    uint8_t kinds[7][64];
    size_t kl[7];
    kl[0] = persist_rec_key_meta(kinds[0], 64);
    kl[1] = persist_rec_key_session(kinds[1], 64, S("zzz"));
    kl[2] = persist_rec_key_queue(kinds[2], 64, S(""), 0);
    kl[3] = persist_rec_key_msg(kinds[3], 64, UINT64_MAX);
    kl[4] = persist_rec_key_sub(kinds[4], 64, S(""), S("a"));
    kl[5] = persist_rec_key_inbound(kinds[5], 64, S(""), 0);
    kl[6] = persist_rec_key_retain(kinds[6], 64, S("\x01"));
    for (int i = 0; i + 1 < 7; i++)
        assert_true(key_cmp(kinds[i], kl[i], kinds[i + 1], kl[i + 1]) < 0);

    /* sessions and subs of different clients sort the same way (the restore merge join) */
    al = persist_rec_key_session(a, sizeof a, S("b"));
    bl = persist_rec_key_session(b, sizeof b, S("aa"));
    assert_true(key_cmp(a, al, b, bl) < 0); /* shorter id first */
    al = persist_rec_key_sub(a, sizeof a, S("b"), S("zzzz"));
    bl = persist_rec_key_sub(b, sizeof b, S("aa"), S("a"));
    assert_true(key_cmp(a, al, b, bl) < 0);
}

/* Every prefix of a valid record fails; one byte more fails; the record itself decodes. */
typedef int (*decode_fn)(const uint8_t *b, size_t n);

static void check_damage(const uint8_t *rec, size_t n, decode_fn dec)
{
    uint8_t buf[256];
    assert_true(n < sizeof buf);
    memcpy(buf, rec, n);
    assert_int_equal(dec(buf, n), 0);
    for (size_t i = 0; i < n; i++)
        assert_true(dec(buf, i) < 0);
    buf[n] = 0;
    assert_int_equal(dec(buf, n + 1), -PERSIST_REC_ELONG);
    buf[0] = PERSIST_REC_SESSION_OWNER + 1; /* no kind knows it */
    assert_int_equal(dec(buf, n), -PERSIST_REC_EVERSION);
}

static int dec_meta(const uint8_t *b, size_t n)
{
    uint32_t f;
    return persist_rec_meta_decode(b, n, &f);
}
static int dec_session(const uint8_t *b, size_t n)
{
    struct persist_session s;
    return persist_rec_session_decode(b, n, &s);
}
static int dec_qentry(const uint8_t *b, size_t n)
{
    struct persist_qentry e;
    uint32_t l;
    return persist_rec_qentry_decode(b, n, &e, &l);
}
static int dec_msg(const uint8_t *b, size_t n)
{
    struct persist_msg m;
    return persist_rec_msg_decode(b, n, &m);
}
static int dec_sub(const uint8_t *b, size_t n)
{
    uint8_t q;
    return persist_rec_sub_decode(b, n, &q);
}
static int dec_retain(const uint8_t *b, size_t n)
{
    struct persist_msg m;
    return persist_rec_retain_decode(b, n, &m);
}

static void test_records_round_trip(void **state)
{
    uint8_t r[128], again[128];
    size_t n;

    uint32_t format = 0;
    n = persist_rec_meta(r, sizeof r, PERSIST_FORMAT);
    assert_int_equal(persist_rec_meta_decode(r, n, &format), 0);
    assert_int_equal(format, PERSIST_FORMAT);
    check_damage(r, n, dec_meta);

    struct persist_session s = {.last_seen = -5}, s2;
    n = persist_rec_session(r, sizeof r, &s);
    assert_int_equal(persist_rec_session_decode(r, n, &s2), 0);
    assert_true(s2.last_seen == -5);
    check_damage(r, n, dec_session);

    struct persist_qentry e = {.seq = 3,
                               .msg_id = 1ull << 50,
                               .packet_id = 513,
                               .qos = 2,
                               .state = PERSIST_Q_WAIT_PUBCOMP};
    struct persist_qentry e2 = {0};
    uint32_t plen = 0;
    n = persist_rec_qentry(r, sizeof r, &e, 123456);
    assert_int_equal(persist_rec_qentry_decode(r, n, &e2, &plen), 0);
    assert_true(e2.msg_id == e.msg_id);
    assert_int_equal(e2.packet_id, 513);
    assert_int_equal(e2.qos, 2);
    assert_int_equal(e2.state, PERSIST_Q_WAIT_PUBCOMP);
    assert_int_equal(plen, 123456);
    e2.seq = e.seq;
    assert_int_equal(persist_rec_qentry(again, sizeof again, &e2, plen), n);
    assert_memory_equal(again, r, n);
    check_damage(r, n, dec_qentry);
    r[11] = 3; /* qos */
    assert_int_equal(dec_qentry(r, n), -PERSIST_REC_EFIELD);
    r[11] = 1;
    r[12] = 4; /* state */
    assert_int_equal(dec_qentry(r, n), -PERSIST_REC_EFIELD);

    struct persist_msg m = {
        .id = 77, .topic = S("a/b"), .payload = S("\0x\0"), .qos = 1, .retain = true};
    struct persist_msg m2 = {0};
    n = persist_rec_msg(r, sizeof r, &m);
    assert_int_equal(persist_rec_msg_decode(r, n, &m2), 0);
    assert_true(str_eq(m2.topic, m.topic));
    assert_true(str_eq(m2.payload, m.payload));
    assert_int_equal(m2.qos, 1);
    assert_true(m2.retain);
    m2.id = m.id;
    assert_int_equal(persist_rec_msg(again, sizeof again, &m2), n);
    assert_memory_equal(again, r, n);
    check_damage(r, n, dec_msg);
    r[1] = 0x08; /* reserved flag bit */
    assert_int_equal(dec_msg(r, n), -PERSIST_REC_EFIELD);
    r[1] = 0x03; /* QoS 3 */
    assert_int_equal(dec_msg(r, n), -PERSIST_REC_EFIELD);

    /* an empty payload and an empty topic are representable in a body */
    struct persist_msg empty = {.id = 1};
    n = persist_rec_msg(r, sizeof r, &empty);
    assert_int_equal(persist_rec_msg_decode(r, n, &m2), 0);
    assert_int_equal(m2.payload.len, 0);

    uint8_t qos = 9;
    n = persist_rec_sub(r, sizeof r, 2);
    assert_int_equal(persist_rec_sub_decode(r, n, &qos), 0);
    assert_int_equal(qos, 2);
    check_damage(r, n, dec_sub);
    r[1] = 3;
    assert_int_equal(dec_sub(r, n), -PERSIST_REC_EFIELD);

    n = persist_rec_inbound(r, sizeof r);
    assert_int_equal(n, 1);
    check_damage(r, n, persist_rec_inbound_decode);

    struct persist_msg rm = {
        .id = 5, .topic = S("x"), .payload = S("retained"), .qos = 2, .retain = true};
    n = persist_rec_retain(r, sizeof r, &rm);
    assert_int_equal(persist_rec_retain_decode(r, n, &m2), 0);
    assert_true(m2.id == 5);
    assert_true(str_eq(m2.payload, rm.payload));
    assert_int_equal(m2.qos, 2);
    m2.topic = rm.topic;
    assert_int_equal(persist_rec_retain(again, sizeof again, &m2), n);
    assert_memory_equal(again, r, n);
    check_damage(r, n, dec_retain);

    /* with its publisher (check_retain_source): version 2, the source after the payload */
    rm.src = S("\x00\x01\x00\x02id\x00");
    n = persist_rec_retain(r, sizeof r, &rm);
    assert_int_equal(r[0], PERSIST_REC_RETAIN_SRC);
    assert_int_equal(persist_rec_retain_decode(r, n, &m2), 0);
    assert_true(str_eq(m2.src, rm.src));
    assert_true(str_eq(m2.payload, rm.payload));
    m2.topic = rm.topic;
    assert_int_equal(persist_rec_retain(again, sizeof again, &m2), n);
    assert_memory_equal(again, r, n);
    check_damage(r, n, dec_retain);
    /* one encoding: version 2 with an empty source is refused */
    r[n - 9] = 0;
    r[n - 8] = 0;
    assert_int_equal(persist_rec_retain_decode(r, n - 7, &m2), -PERSIST_REC_EFIELD);
    /* and version 1 has no source: decoded with none */
    rm.src.len = 0;
    n = persist_rec_retain(r, sizeof r, &rm);
    assert_int_equal(r[0], PERSIST_REC_VERSION);
    assert_int_equal(persist_rec_retain_decode(r, n, &m2), 0);
    assert_int_equal(m2.src.len, 0);
}

/*
 * Session records: version 1 (owner unknown: what Cairn wrote before it stored owners, and
 * still writes for a session whose owner is unknown), version 2 with the owner.
 */
static void test_session_owner(void **state)
{
    /* written by a Cairn from before owners: last_seen 42, nothing else */
    static const uint8_t old[] = {1, 0, 0, 0, 0, 0, 0, 0, 42};
    uint8_t r[128], again[128];
    struct persist_session s = {.last_seen = 1700000000}, s2;
    size_t n;

    (void)state;
    assert_int_equal(persist_rec_session_decode(old, sizeof old, &s2), 0);
    assert_true(s2.last_seen == 42);
    assert_int_equal(s2.owner, PERSIST_OWNER_UNKNOWN);
    assert_int_equal(s2.user.len, 0);
    assert_int_equal(persist_rec_session(again, sizeof again, &s2), sizeof old);
    assert_memory_equal(again, old, sizeof old);

    s.owner = PERSIST_OWNER_ANONYMOUS;
    n = persist_rec_session(r, sizeof r, &s);
    assert_int_equal(n, 10);
    assert_int_equal(r[0], PERSIST_REC_SESSION_OWNER);
    assert_int_equal(persist_rec_session_decode(r, n, &s2), 0);
    assert_int_equal(s2.owner, PERSIST_OWNER_ANONYMOUS);
    assert_true(s2.last_seen == 1700000000);
    assert_int_equal(s2.user.len, 0);
    assert_int_equal(persist_rec_session(again, sizeof again, &s2), n);
    assert_memory_equal(again, r, n);
    check_damage(r, n, dec_session); /* a version 2 record cut to version 1's length too */

    s.owner = PERSIST_OWNER_USER;
    s.user = S("alice");
    n = persist_rec_session(r, sizeof r, &s);
    assert_int_equal(n, 10 + 2 + 5);
    assert_int_equal(persist_rec_session_decode(r, n, &s2), 0);
    assert_int_equal(s2.owner, PERSIST_OWNER_USER);
    assert_true(str_eq(s2.user, S("alice")));
    assert_true(s2.user.p >= r && s2.user.p + s2.user.len <= r + n); /* a view into r */
    assert_int_equal(persist_rec_session(again, sizeof again, &s2), n);
    assert_memory_equal(again, r, n);
    check_damage(r, n, dec_session);
    r[9] = 0; /* owner byte: none of anonymous, user, claimed user */
    assert_int_equal(dec_session(r, n), -PERSIST_REC_EFIELD);
    r[9] = 4;
    assert_int_equal(dec_session(r, n), -PERSIST_REC_EFIELD);
    r[9] = PERSIST_OWNER_CLAIMED; /* the same name, claimed: its own identity */
    assert_int_equal(persist_rec_session_decode(r, n, &s2), 0);
    assert_int_equal(s2.owner, PERSIST_OWNER_CLAIMED);
    assert_true(str_eq(s2.user, S("alice")));
    assert_int_equal(persist_rec_session(again, sizeof again, &s2), n);
    assert_memory_equal(again, r, n);
    r[9] = PERSIST_OWNER_ANONYMOUS; /* then the name is trailing bytes */
    assert_int_equal(dec_session(r, n), -PERSIST_REC_ELONG);
    r[0] = PERSIST_REC_VERSION; /* version 1 ends after last_seen */
    r[9] = PERSIST_OWNER_USER;
    assert_int_equal(dec_session(r, n), -PERSIST_REC_ELONG);

    /* an empty username is a username, not anonymous */
    s.user = S("");
    n = persist_rec_session(r, sizeof r, &s);
    assert_int_equal(n, 12);
    assert_int_equal(persist_rec_session_decode(r, n, &s2), 0);
    assert_int_equal(s2.owner, PERSIST_OWNER_USER);
    assert_int_equal(s2.user.len, 0);
    check_damage(r, n, dec_session);

    /* what cannot be encoded */
    s.owner = 4;
    assert_int_equal(persist_rec_session(r, sizeof r, &s), 0);
    s.owner = PERSIST_OWNER_ANONYMOUS;
    s.user = S("x"); /* a name without a user */
    assert_int_equal(persist_rec_session(r, sizeof r, &s), 0);
    s.owner = PERSIST_OWNER_USER;
    s.user.len = 65536;
    assert_int_equal(persist_rec_session(NULL, 0, &s), 0);
    s.user.len = 65535;
    assert_int_equal(persist_rec_session(NULL, 0, &s), 12 + 65535);
}

static void test_payload_length_lies(void **state)
{
    struct persist_msg m = {.id = 1, .topic = S("t"), .payload = S("abc")};
    uint8_t r[64];
    size_t n = persist_rec_msg(r, sizeof r, &m);
    /* payload length field says more than there is */
    r[n - 4] = 0xFF;
    assert_int_equal(dec_msg(r, n), -PERSIST_REC_ESHORT);
    /* topic length runs past the end */
    n = persist_rec_msg(r, sizeof r, &m);
    r[2] = 0xFF;
    assert_int_equal(dec_msg(r, n), -PERSIST_REC_ESHORT);
}

static void test_names(void **state)
{
    assert_string_equal(persist_rec_kind_name(PERSIST_K_QUEUE), "queue");
    assert_string_equal(persist_rec_kind_name(0x7f), "unknown");
    assert_string_equal(persist_rec_strerror(-PERSIST_REC_ESHORT), "record truncated");
    assert_non_null(persist_rec_strerror(-1000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_round_trip), cmocka_unit_test(test_key_errors),
        cmocka_unit_test(test_encoder_limits),  cmocka_unit_test(test_size_query_and_short_buffer),
        cmocka_unit_test(test_key_order),       cmocka_unit_test(test_records_round_trip),
        cmocka_unit_test(test_session_owner),   cmocka_unit_test(test_payload_length_lies),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
