/*
 * persist_record.h — the byte layout of Cairn's store: keys and records, pure code.
 *
 * No LevelDB, no I/O, no globals. Encoders write into a caller's buffer; decoders return views
 * into the caller's bytes and never read past them: a damaged key or record is a negative
 * PERSIST_REC_E... code, never a crash.
 *
 * Keys: one kind byte, then the kind's fields. Integers are big-endian so that LevelDB's
 * bytewise order is numeric order; a client id is preceded by its 16-bit length, so the prefix
 * kind|len|cid of one client never matches another client's keys.
 *
 *   kind          key                               value
 *   0x01 meta     01 | name                         format version (name "format")
 *   0x10 session  10 | cidlen:2 | cid               session record
 *   0x20 queue    20 | cidlen:2 | cid | seq:8       queue entry: one client's queue in order
 *   0x30 msg      30 | msg id:8                     message body, stored once
 *   0x40 sub      40 | cidlen:2 | cid | filter      subscription
 *   0x50 inbound  50 | cidlen:2 | cid | pid:2       inbound QoS 2 id awaiting PUBREL
 *   0x60 retain   60 | topic                        retained message
 *
 * The kinds sort in the order persist_restore() needs them: sessions, then their queues (the
 * summary is ready when the scan reaches the bodies), then bodies (their reference counts are
 * known by then, so unreferenced bodies can be collected), then the rest.
 *
 * Records (values) start with a record version byte (PERSIST_REC_VERSION); the rest is:
 *   meta     format:4
 *   session  last_seen:8 (signed)                  (version 1: owner unknown)
 *            last_seen:8 | owner:1 [| userlen:2 | user]  (version 2, see below)
 *   queue    msg id:8 | packet id:2 | qos:1 | state:1 | payload length:4
 *   msg      flags:1 | topiclen:2 | topic | payloadlen:4 | payload
 *   sub      qos:1
 *   inbound  (nothing)
 *   retain   msg id:8 | flags:1 | payloadlen:4 | payload
 *            version 2 (a retained message with a source): the same, then srclen:2 | src
 * flags: bits 0-1 QoS, bit 2 retain, other bits zero. Every record has exactly one encoding, so
 * decode followed by encode gives back the same bytes.
 *
 * Session records with an owner (enum persist_owner) have their own record version,
 * PERSIST_REC_SESSION_OWNER, and go on after last_seen with the owner byte: 1 (anonymous) or
 * 2 (a user, whose name follows). Those written before owners were stored (version 1, ending
 * after last_seen) still load, as PERSIST_OWNER_UNKNOWN, which is encoded that way too: one
 * encoding per record, no store format change, and a Cairn from before refuses the new records
 * as "unknown record version" rather than misreading them. Retain records do the same with
 * their publisher (check_retain_source): version 1 without, PERSIST_REC_RETAIN_SRC with it.
 */
#ifndef CAIRN_PERSIST_RECORD_H
#define CAIRN_PERSIST_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt.h"
#include "persist.h"

#define PERSIST_FORMAT            1u /* layout of the whole store; stored under the meta key */
#define PERSIST_REC_VERSION       1u /* first byte of every record */
#define PERSIST_REC_SESSION_OWNER 2u /* ... but a session record's with an owner */
#define PERSIST_REC_RETAIN_SRC    2u /* ... and a retain record's with its publisher */
#define PERSIST_CID_MAX           65535u

enum persist_rec_kind {
    PERSIST_K_META = 0x01,
    PERSIST_K_SESSION = 0x10,
    PERSIST_K_QUEUE = 0x20,
    PERSIST_K_MSG = 0x30,
    PERSIST_K_SUB = 0x40,
    PERSIST_K_INBOUND = 0x50,
    PERSIST_K_RETAIN = 0x60,
};

/* Decoding errors, returned negated. */
enum persist_rec_err {
    PERSIST_REC_ESHORT = 1, /* bytes end inside a field */
    PERSIST_REC_ELONG,      /* bytes left over after the last field */
    PERSIST_REC_EKIND,      /* unknown key kind */
    PERSIST_REC_EVERSION,   /* unknown record version */
    PERSIST_REC_EFIELD,     /* a field out of range (QoS 3, state 4, reserved bits, empty name) */
};

const char *persist_rec_strerror(int code);
/* The kind's name ("session", "queue", ...) or "unknown". */
const char *persist_rec_kind_name(int kind);

/* A decoded key. Views point into the key bytes. Fields a kind lacks are zero. */
struct persist_rec_key {
    uint8_t kind;
    struct mqtt_str cid;  /* session, queue, sub, inbound */
    struct mqtt_str name; /* sub: filter; retain: topic; meta: name */
    uint64_t seq;         /* queue */
    uint64_t msg_id;      /* msg */
    uint16_t packet_id;   /* inbound */
};

/*
 * Encoders. Each returns the length the encoding needs; the bytes are complete in out only when
 * that length is <= cap (so enc(NULL, 0, ...) asks for the size; out is never written past cap).
 * 0 means the values cannot be encoded (a
 * client id over 65535 bytes, an empty topic or filter, QoS 3, a state over 3, a payload over
 * 4 GiB).
 */
size_t persist_rec_key_meta(uint8_t *out, size_t cap);
size_t persist_rec_key_session(uint8_t *out, size_t cap, struct mqtt_str cid);
size_t persist_rec_key_queue(uint8_t *out, size_t cap, struct mqtt_str cid, uint64_t seq);
size_t persist_rec_key_msg(uint8_t *out, size_t cap, uint64_t msg_id);
size_t persist_rec_key_sub(uint8_t *out, size_t cap, struct mqtt_str cid, struct mqtt_str filter);
size_t persist_rec_key_inbound(uint8_t *out, size_t cap, struct mqtt_str cid, uint16_t packet_id);
size_t persist_rec_key_retain(uint8_t *out, size_t cap, struct mqtt_str topic);
/* kind | cidlen | cid: the prefix every key of one client of that kind starts with. */
size_t persist_rec_key_prefix(uint8_t *out, size_t cap, uint8_t kind, struct mqtt_str cid);
/* Re-encode a decoded key (any kind). */
size_t persist_rec_key_encode(uint8_t *out, size_t cap, const struct persist_rec_key *k);

size_t persist_rec_meta(uint8_t *out, size_t cap, uint32_t format);
size_t persist_rec_session(uint8_t *out, size_t cap, const struct persist_session *s);
size_t persist_rec_qentry(uint8_t *out, size_t cap, const struct persist_qentry *e,
                          uint32_t payload_len);
size_t persist_rec_msg(uint8_t *out, size_t cap, const struct persist_msg *m);
size_t persist_rec_sub(uint8_t *out, size_t cap, uint8_t qos);
size_t persist_rec_inbound(uint8_t *out, size_t cap);
/* m->topic is not stored (it is the key). */
size_t persist_rec_retain(uint8_t *out, size_t cap, const struct persist_msg *m);

/*
 * Decoders: 0 or -PERSIST_REC_E...; on error *out is unspecified. Views point into (b, n).
 * Fields that live in the key (queue seq, msg id, retain topic) are left untouched.
 */
int persist_rec_key_decode(const uint8_t *b, size_t n, struct persist_rec_key *out);
int persist_rec_meta_decode(const uint8_t *b, size_t n, uint32_t *format);
int persist_rec_session_decode(const uint8_t *b, size_t n, struct persist_session *out);
int persist_rec_qentry_decode(const uint8_t *b, size_t n, struct persist_qentry *out,
                              uint32_t *payload_len);
int persist_rec_msg_decode(const uint8_t *b, size_t n, struct persist_msg *out);
int persist_rec_sub_decode(const uint8_t *b, size_t n, uint8_t *qos);
int persist_rec_inbound_decode(const uint8_t *b, size_t n);
int persist_rec_retain_decode(const uint8_t *b, size_t n, struct persist_msg *out);

#endif
