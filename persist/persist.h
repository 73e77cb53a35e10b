/*
 * persist.h — Cairn's durable state, behind one opaque handle.
 *
 * The only door to LevelDB: persist_open.c, persist_leveldb.c and persist_backup.c are the only
 * files that include <leveldb/c.h> (through persist_ldb.h). Record and key encoding is pure code in
 * persist_record.[ch], unit-tested and fuzzed.
 *
 * Model (see DESIGN.md, "What is durable"; the byte layout is in persist_record.h):
 *   session  client id -> last seen, owner                    (clean session = 0 only)
 *   sub      (client id, filter) -> QoS
 *   queue    (client id, seq) -> msg id, QoS, state, packet id (seq orders one queue)
 *   msg      msg id -> topic, payload, QoS, retain             (stored once, refcounted here)
 *   inbound  (client id, packet id)                            (PUBREC sent, awaiting PUBREL)
 *   retain   topic -> msg id, payload, QoS                     (inline, one per topic)
 *
 * Flow: the broker calls the put/del verbs while it handles one loop iteration; they only
 * append to the open batch. At the end of the iteration it calls persist_commit() once; only
 * when that returns 0 may it send the acks those changes stand for (ack after durable).
 *
 * Message bodies: persist_enqueue() writes the body the first time a msg id is referenced by a
 * queue entry and counts references in memory (rebuilt by persist_restore); persist_dequeue()
 * deletes the body with its last reference. The broker never writes or deletes bodies itself.
 *
 * A change the store cannot represent (QoS 3, a client id over 65535 bytes, an enqueue of an
 * unknown msg id without its body...) or that runs out of memory is not dropped: it marks the
 * batch failed, and the next persist_commit() discards the whole batch and says why.
 *
 * What a delivery costs, and the next format. A queue entry of a client that keeps up is one
 * record put (the broker writes it once, already in flight: session.c, "Deferred") and one
 * delete at its PUBACK/PUBCOMP; a message body one put and one delete. LevelDB then spends the
 * broker's CPU on skip-list inserts, the log and compaction (whose thread shares the broker's
 * CPU): with 50 persistent subscribers a delivery costs ten times what it costs in memory.
 * The way to half of the in-memory rate is a batch, not a delivery, as the unit:
 *   segment  (client id, last seq) -> the entries one batch queued for that client (seq, msg id,
 *            QoS, and the packet id and state when it left at once) — one put per client per batch;
 *   acks     client id -> floor (every entry below it done) and the done entries above it (acks
 *            out of order in the window) — rewritten once per client per batch;
 *   state    today's queue record, only for an entry whose state changed after its segment
 *            was written (popped later, PUBREC), deleted with the entry;
 * segments below the floor deleted by one range seek per client per commit; restore and
 * persist_queue_read() read segments, skip what the ack record says is done, apply the state
 * records. A failed commit must then also put each client's floor and done set back. Not built
 * yet: it is a new store format (with a migration of format 1) and deserves the crash soak.
 *
 * Ownership: all pointers passed in are borrowed for the call only (the batch copies bytes).
 * Pointers handed to restore/read callbacks are valid during the callback only.
 * Single-threaded: one handle is used by one thread (a backup's copy thread is the handle's own,
 * and reads the store beside it).
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
    /* Retained records only: who published it, as the broker encodes that (check_retain_source);
     * opaque here, at most 65535 bytes; empty: nobody (the broker's own, or an older store). */
    struct mqtt_str src;
};

struct persist_qentry {
    uint64_t seq; /* position in the session's queue, increasing */
    uint64_t msg_id;
    uint16_t packet_id; /* 0 while QUEUED */
    uint8_t qos;        /* delivery QoS (min of published and granted) */
    uint8_t state;      /* enum persist_qstate */
};

/*
 * Who owns a session: the identity that created it (DESIGN.md, "One client is never stronger
 * than the broker"). UNKNOWN is what a record written before owners were stored decodes to.
 */
enum persist_owner {
    PERSIST_OWNER_UNKNOWN = 0,
    PERSIST_OWNER_ANONYMOUS = 1, /* connected without a username */
    PERSIST_OWNER_USER = 2,      /* user: its username (or TLS identity used as one), checked
                                    against the password file or a certificate/PSK */
    PERSIST_OWNER_CLAIMED = 3,   /* user: a username nothing checked (a listener without a
                                    password file that lets anybody in): never the same
                                    identity as the checked user of that name */
};

struct persist_session {
    int64_t last_seen;    /* unix seconds */
    uint8_t owner;        /* enum persist_owner */
    struct mqtt_str user; /* PERSIST_OWNER_USER/CLAIMED: the username (may be empty) */
};

/* What restore found for one session's queue, so the broker can size its window. */
struct persist_queue_info {
    uint64_t count;
    uint64_t bytes;     /* payload bytes */
    uint64_t first_seq; /* 0 when empty */
    uint64_t last_seq;  /* 0 when empty */
    uint64_t inflight;  /* entries whose state is not PERSIST_Q_QUEUED */
};

/* The store's own directory inside persistence_location (persist_open.c says why). */
#define PERSIST_STORE_NAME "cairn.db"

struct persist_options {
    const char *dir; /* persistence_location: the store is DIR/cairn.db, or DIR itself when an
                        earlier Cairn put it there; created if missing */
    bool sync;       /* fsync each commit (persistence_sync true) */
    bool read_only;  /* inspect only (cairn-db): the store must exist and is not changed — it is
                        opened from a private copy; restore reports garbage instead of deleting
                        it; commit fails */
};

/*
 * Open (or create) the store. Fails — never silently empty — when the directory is locked by
 * another process, corrupt, unreadable, not a Cairn store or of an unknown format version; err
 * gets a one-line reason and a negative code is returned. *out is owned by the caller and freed
 * with persist_close(). Call persist_restore() next: until it has run on a store that already
 * holds data, changes are refused (commit fails), because the body reference counts are not
 * known yet.
 */
int persist_open(const struct persist_options *opt, struct persist **out, char *err, size_t errlen);
/* The store's directory (DIR/cairn.db, or DIR for a store made there by an earlier Cairn). */
const char *persist_path(const struct persist *p);
/*
 * What the last open (or reopen after a failed write) had LevelDB's recovery drop from a torn
 * log, for the log: "" when nothing. Only a record whose write failed, and which therefore was
 * never acknowledged, can be torn. Valid until the next commit.
 */
const char *persist_repair_note(const struct persist *p);
/*
 * Discards an uncommitted batch; makes what was committed durable against power loss first
 * (persist_sync), so a store closed cleanly is synced whatever opt.sync said.
 * persist_close(NULL) does nothing.
 */
void persist_close(struct persist *p);

/* ---- changes: appended to the open batch ---------------------------------------------- */
void persist_session_put(struct persist *p, struct mqtt_str cid, const struct persist_session *s);
/* Removes the session with its subscriptions, queue (dropping message references) and
 * inbound ids. */
void persist_session_del(struct persist *p, struct mqtt_str cid);
void persist_sub_put(struct persist *p, struct mqtt_str cid, struct mqtt_str filter, uint8_t qos);
void persist_sub_del(struct persist *p, struct mqtt_str cid, struct mqtt_str filter);
/* Add a queue entry (seq not yet used in cid's queue); writes m's body if this is its first
 * reference. m may be NULL when msg id e->msg_id is already stored. */
void persist_enqueue(struct persist *p, struct mqtt_str cid, const struct persist_qentry *e,
                     const struct persist_msg *m);
/*
 * Rewrite an existing entry (state / packet id changed). An entry the store does not hold (its
 * enqueue was in a batch whose commit failed) is left alone, here and in persist_dequeue().
 */
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
 * must not send the acks the batch stood for. After a failed write (a full disk) the store is
 * closed and opened again by the next commit before it writes anything (persist_open.c says
 * why); until that succeeds every commit fails.
 */
int persist_commit(struct persist *p, char *err, size_t errlen) __attribute__((warn_unused_result));
/*
 * Make every committed batch durable against power loss (an fsync of LevelDB's log, by way of
 * an empty synced write). Does nothing when nothing was committed unsynced since the last
 * sync (always the case with opt.sync). 0, or a negative code with err set.
 */
int persist_sync(struct persist *p, char *err, size_t errlen) __attribute__((warn_unused_result));

/* ---- restore and read ----------------------------------------------------------------- */
struct persist_restore_ops {
    int (*session)(void *ctx, struct mqtt_str cid, const struct persist_session *s,
                   const struct persist_queue_info *q);
    int (*sub)(void *ctx, struct mqtt_str cid, struct mqtt_str filter, uint8_t qos);
    int (*inbound)(void *ctx, struct mqtt_str cid, uint16_t packet_id);
    int (*retain)(void *ctx, const struct persist_msg *m);
};
/*
 * Scan the whole store once: every session (with its queue summary) first, then all
 * subscriptions, inbound ids and retained messages, each kind in client-id order. Any callback
 * may be NULL. A callback returning non-zero stops the scan and is returned. Also rebuilds the
 * message reference counts and reports the highest msg id seen in *max_msg_id so the broker
 * continues after it. A damaged record, or a queue entry whose body is missing, is an error
 * (negative, with err). Message bodies no queue entry refers to, and queue entries,
 * subscriptions and inbound ids of a client without a session record, are deleted (counted in
 * persist_restore_stats()). Call it once, right after persist_open(), with an empty batch.
 */
int persist_restore(struct persist *p, const struct persist_restore_ops *ops, void *ctx,
                    uint64_t *max_msg_id, char *err, size_t errlen);

/*
 * Read up to max queue entries of cid with seq >= from_seq, in order, each with its message
 * (m->id == e->msg_id). Returns the number read or a negative code. Used to refill a session's
 * in-memory window. Reads what is committed: changes still in the open batch are not seen.
 * The callback returns 0 to go on; a negative value stops the read and is returned; a positive
 * one stops it and the number of entries delivered so far (this one included) is returned.
 */
typedef int (*persist_queue_cb)(void *ctx, const struct persist_qentry *e,
                                const struct persist_msg *m);
int persist_queue_read(struct persist *p, struct mqtt_str cid, uint64_t from_seq, size_t max,
                       persist_queue_cb cb, void *ctx);

/*
 * LevelDB reads table files through shared mappings, so pages a read touched count in this
 * process's resident memory although they are only page cache. This drops them from the
 * process (the data stays cached). persist_restore() does it as it goes; the broker may call it
 * now and then (say with $SYS) so that draining big queues does not grow its RSS. Costs one
 * read of /proc/self/maps; does nothing outside Linux.
 */
void persist_trim(struct persist *p);

/* ---- backup ---------------------------------------------------------------------------- */
/* The default backup directory inside persistence_location (persist_backup_start, dir NULL). */
#define PERSIST_BACKUP_NAME "backup"

struct persist_backup_stats {
    uint64_t records; /* LevelDB records copied */
    uint64_t bytes;   /* their key and value bytes */
};

/*
 * Start a consistent copy of the store as committed now: everything written by the commits
 * that returned before this call, nothing after (persist_backup.c says how). A thread of its own
 * writes it, so this returns at once. The copy is DIR/cairn.db, so DIR serves as a
 * persistence_location unchanged; dir NULL means persistence_location/backup. DIR must not exist
 * (-EEXIST: a backup never replaces another); it appears, complete and synced, only when the
 * copy succeeded (it is written as DIR.partial, which a failed or cancelled copy removes, and
 * which is removed first when an earlier copy left it). One backup at a time (-EBUSY); changes
 * and commits go on meanwhile. 0, or a negative code with err set.
 */
int persist_backup_start(struct persist *p, const char *dir, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The running backup's DIR, NULL when none (valid until persist_backup_finish). */
const char *persist_backup_dir(const struct persist *p);
/*
 * A descriptor that becomes readable when the running backup has ended (watch it in the loop,
 * then call persist_backup_finish); -1 when none was started. Owned by the handle.
 */
int persist_backup_fd(const struct persist *p);
/* Ask the running backup to stop; persist_backup_finish() then reports -ECANCELED. */
void persist_backup_cancel(struct persist *p);
/*
 * Wait for the backup to end (no wait once its fd is readable) and forget it: 0 with *st filled
 * (st may be NULL) when DIR holds the copy, or a negative code with err set (-ECANCELED after
 * persist_backup_cancel, or when a reopen after a failed write or persist_close stopped it;
 * -ENOENT when none was started). Then another may start.
 */
int persist_backup_finish(struct persist *p, struct persist_backup_stats *st, char *err,
                          size_t errlen);

/* What the last persist_restore() found. Totals over the whole store. */
struct persist_stats {
    uint64_t sessions;
    uint64_t subs;
    uint64_t inbound;
    uint64_t retained;
    uint64_t queued;       /* queue entries, in-flight ones included */
    uint64_t inflight;     /* queue entries not in state PERSIST_Q_QUEUED */
    uint64_t queued_bytes; /* payload bytes of the queue entries */
    uint64_t bodies;       /* message bodies stored (each once) */
    uint64_t body_bytes;   /* their payload bytes */
    uint64_t garbage;      /* bodies without a reference (deleted unless read_only) */
    uint64_t orphans;      /* queue/sub/inbound records without a session (same) */
    uint64_t missing;      /* referenced bodies not found (an error unless read_only) */
};
void persist_restore_stats(const struct persist *p, struct persist_stats *out);

#endif
