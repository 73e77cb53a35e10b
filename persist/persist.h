/*
 * persist.h — Cairn's durable state, behind one opaque handle.
 *
 * The only door to LevelDB (persist_leveldb.c is the only file that includes <leveldb/c.h>).
 * Record and key encoding is pure code in persist_record.[ch], unit-tested and fuzzed.
 *
 * Model (see DESIGN.md, "What is durable"):
 *   session   client id -> last seen               (clean session = 0 only)
 *   sub       (client id, filter) -> QoS
 *   queue     (client id, seq) -> msg id, QoS, state, packet id   seq orders one session's queue
 *   msg       msg id -> topic, payload, QoS, retain               stored once, refcounted here
 *   inbound   (client id, packet id)                              QoS 2 PUBREC sent, awaiting PUBREL
 *   retain    topic -> payload, QoS                               inline, one per topic
 *
 * Flow: the broker calls the put/del verbs while it handles one loop iteration; they only
 * append to the open batch. At the end of the iteration it calls persist_commit() once; only
 * when that returns 0 may it send the acks those changes stand for (ack after durable).
 *
 * Message bodies: persist_enqueue() writes the body the first time a msg id is referenced by a
 * queue entry and counts references in memory (rebuilt by persist_restore); persist_dequeue()
 * deletes the body with its last reference. The broker never writes or deletes bodies itself.
 *
 * Ownership: all pointers passed in are borrowed for the call only (the batch copies bytes).
 * Pointers handed to restore/read callbacks are valid during the callback only.
 * Single-threaded: one handle is used by one thread.
 */
#ifndef CAIRN_PERSIST_H
#define CAIRN_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt.h"

struct persist; /* opaque */

/* Delivery state of a queue entry, as DESIGN.md names them. */
enum persist_qstate {
    PERSIST_Q_QUEUED = 0,      /* not yet sent (or sent at QoS 0 and gone) */
    PERSIST_Q_WAIT_PUBACK = 1, /* QoS 1 PUBLISH sent */
    PERSIST_Q_WAIT_PUBREC = 2, /* QoS 2 PUBLISH sent */
    PERSIST_Q_WAIT_PUBCOMP = 3 /* PUBREC received, PUBREL sent */
};

struct persist_msg {
    uint64_t id; /* assigned by the broker, unique for the store's lifetime */
    struct mqtt_str topic;
    struct mqtt_str payload;
    uint8_t qos;
    bool retain;
};

struct persist_qentry {
    uint64_t seq; /* position in the session's queue, increasing */
    uint64_t msg_id;
    uint16_t packet_id; /* 0 while QUEUED */
    uint8_t qos;        /* delivery QoS (min of published and granted) */
    uint8_t state;      /* enum persist_qstate */
};

struct persist_session {
    int64_t last_seen; /* unix seconds */
};

/* What restore found for one session's queue, so the broker can size its window. */
struct persist_queue_info {
    uint64_t count;
    uint64_t bytes;     /* payload bytes */
    uint64_t first_seq; /* 0 when empty */
    uint64_t last_seq;  /* 0 when empty */
};

struct persist_options {
    const char *dir; /* created if missing */
    bool sync;       /* fsync each commit (persistence_sync true) */
};

/*
 * Open (or create) the store. Fails — never silently empty — when the directory is locked by
 * another process, corrupt or unreadable; err gets a one-line reason. *out is owned by the
 * caller and freed with persist_close().
 */
int persist_open(const struct persist_options *opt, struct persist **out, char *err,
                 size_t errlen);
/* Discards an uncommitted batch. persist_close(NULL) does nothing. */
void persist_close(struct persist *p);

/* ---- changes: appended to the open batch ---------------------------------------------- */
void persist_session_put(struct persist *p, struct mqtt_str cid, const struct persist_session *s);
/* Removes the session with its subscriptions, queue (dropping message references) and
 * inbound ids. */
void persist_session_del(struct persist *p, struct mqtt_str cid);
void persist_sub_put(struct persist *p, struct mqtt_str cid, struct mqtt_str filter, uint8_t qos);
void persist_sub_del(struct persist *p, struct mqtt_str cid, struct mqtt_str filter);
/* Add a queue entry; writes m's body if this is its first reference. */
void persist_enqueue(struct persist *p, struct mqtt_str cid, const struct persist_qentry *e,
                     const struct persist_msg *m);
/* Rewrite an existing entry (state / packet id changed). */
void persist_queue_update(struct persist *p, struct mqtt_str cid, const struct persist_qentry *e);
/* Remove an entry; deletes the body with the last reference to msg_id. */
void persist_dequeue(struct persist *p, struct mqtt_str cid, uint64_t seq, uint64_t msg_id);
void persist_inbound_put(struct persist *p, struct mqtt_str cid, uint16_t packet_id);
void persist_inbound_del(struct persist *p, struct mqtt_str cid, uint16_t packet_id);
void persist_retain_put(struct persist *p, const struct persist_msg *m);
void persist_retain_del(struct persist *p, struct mqtt_str topic);

/* True when nothing waits in the batch. */
bool persist_batch_empty(const struct persist *p);
/*
 * Write the batch in one LevelDB write (synced when opt.sync). 0 on success. On failure the
 * batch is discarded, the reason logged into err, and a negative code returned: the caller
 * must not send the acks the batch stood for.
 */
int persist_commit(struct persist *p, char *err, size_t errlen) __attribute__((warn_unused_result));

/* ---- restore and read ----------------------------------------------------------------- */
struct persist_restore_ops {
    int (*session)(void *ctx, struct mqtt_str cid, const struct persist_session *s,
                   const struct persist_queue_info *q);
    int (*sub)(void *ctx, struct mqtt_str cid, struct mqtt_str filter, uint8_t qos);
    int (*inbound)(void *ctx, struct mqtt_str cid, uint16_t packet_id);
    int (*retain)(void *ctx, const struct persist_msg *m);
};
/*
 * Scan the whole store once: sessions (with their queue summary) first, then subscriptions,
 * inbound ids and retained messages. A callback returning non-zero stops the scan and is
 * returned. Also rebuilds the message reference counts and reports the highest msg id seen
 * in *max_msg_id so the broker continues after it. A damaged record is an error.
 */
int persist_restore(struct persist *p, const struct persist_restore_ops *ops, void *ctx,
                    uint64_t *max_msg_id, char *err, size_t errlen);

/*
 * Read up to max queue entries of cid with seq >= from_seq, in order, each with its message.
 * Returns the number read or a negative code. Used to refill a session's in-memory window.
 */
typedef int (*persist_queue_cb)(void *ctx, const struct persist_qentry *e,
                                const struct persist_msg *m);
int persist_queue_read(struct persist *p, struct mqtt_str cid, uint64_t from_seq, size_t max,
                       persist_queue_cb cb, void *ctx);

#endif
