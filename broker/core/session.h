/*
 * session.h — MQTT sessions: what a client id owns across connections.
 *
 * A session lives in the table (hash by client id) from its CONNECT until it is discarded: at
 * disconnect for clean session 1, at a clean-session-1 CONNECT that replaces it, or when it
 * expires (persistent_client_expiration). A session with clean session 0 keeps, while its
 * client is offline, its subscriptions, its queue and its in-flight window.
 *
 * Queue / in-flight model. Every message routed to a session becomes an entry (struct sentry)
 * with a sequence number, increasing per session, that fixes its order:
 *
 *       enqueue --> [ queue: QUEUED entries, in seq order ] --pop--> [ in-flight window ]
 *                                                                      WAIT_PUBACK   (QoS 1)
 *                                                                      WAIT_PUBREC   (QoS 2)
 *                                                                      WAIT_PUBCOMP  (PUBREL sent)
 *
 * - The in-flight window holds at most max_inflight entries (QoS 1/2 sent, not yet finished),
 *   in the order they were sent; each has a packet id unique among them. With
 *   max_inflight_bytes, no more enter once their payload bytes reach it (one always may). Ids are
 * allocated per session, increasing, wrapping past 65535 and skipping 0 and ids still in flight.
 * - Packet ids across a restart or a reconnect: an in-flight entry keeps its id for life, and
 *   is resent under it (DUP=1, or PUBREL) — under a new id the client would take it for a second
 *   message. Pop takes the queue's head, so in-flight entries precede every queued entry in seq
 *   order; a refill therefore brings every in-flight entry back before any queued one can be
 *   popped, and a new id never collides with an id still on disk. last_pid continues from the
 *   newest in-flight entry read back.
 * - QoS 0 entries never enter the window: pop hands them to the sender and they are gone.
 * - max_queued_messages / max_queued_bytes bound the queue (in-flight not counted, like
 *   Mosquitto); a message over the limit is dropped and counted (the caller logs it).
 * - QoS 0 is queued for an offline session only with queue_qos0_messages.
 *
 * Durable sessions (clean session 0 with a store): every change is appended to the store's
 * open batch as it is made (persist.h) — session record, subscriptions, each stored entry
 * (enqueue, state/packet-id update, dequeue) and inbound QoS 2 ids. The queue lives on disk;
 * memory holds only a WINDOW of it: while the client is offline nothing (entries go straight
 * to the store), while online at most limits.window entries. An entry that arrives while part
 * of the queue is on disk only goes to disk too, so order holds; session_refill() reads the
 * next part (persist_queue_read) as the window drains. disk_count (in session_ext, which a
 * durable session always has) counts entries on disk that are not in memory; refill_seq is
 * where the next read starts. After a restart every entry is
 * on disk; the first refill puts WAIT_* entries back in the in-flight window (to be resent
 * with DUP=1, or PUBREL) and QUEUED ones in the queue. A refill sees only committed records:
 * an entry still in the open batch is read by a later refill. disk_gen / disk_gen_seq mark
 * where the uncommitted part of the disk queue starts (entries go to disk in seq order, and
 * session_table_committed() advances the generation), so a refill is attempted only when
 * committed entries wait, and asks for no more than the committed part.
 *
 * QoS 0 entries for an online client are kept in memory only (not stored) unless part of the
 * queue is on disk (then they are stored, to keep their place).
 *
 * Inbound QoS 2 (method B of [MQTT-4.3.3]): the packet ids the client published that got a
 * PUBREC and await PUBREL, a sorted set (stored for durable sessions).
 *
 * Ownership: the table owns its sessions; a session owns its entries, each holding one message
 * reference, and its ext (struct session_ext); its subscriptions are copies. owner is the client's
 * pointer while online (borrowed; the broker clears it). The store, message table and limits are
 * borrowed from the broker for the table's lifetime.
 */
#ifndef CAIRN_SESSION_H
#define CAIRN_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "mqtt.h"
#include "persist.h"
#include "pidx.h"
#include "subset.h"

struct bridge;
struct timer;

struct session_limits {
    uint32_t max_inflight;       /* 0: unlimited (65535) */
    uint32_t max_queued;         /* 0: unlimited */
    uint64_t max_queued_bytes;   /* 0: unlimited */
    bool queue_qos0;             /* queue QoS 0 for offline sessions */
    uint32_t window;             /* queued entries in memory for a durable online session */
    uint64_t max_inflight_bytes; /* 0: unlimited; payload bytes in flight (QoS 1/2) */
};

struct sentry {
    struct sentry *next;
    struct sentry *prev; /* in-flight entries leave from the middle (any id may be acked) */
    struct msg *m;       /* one reference */
    uint64_t seq;
    uint16_t pid;   /* 0 while queued */
    uint8_t qos;    /* delivery QoS: min(published, granted) */
    uint8_t state;  /* enum persist_qstate */
    bool stored;    /* has a record in the store (or will have: unwritten) */
    bool unwritten; /* its record waits for session_table_flush() (session.c, "Deferred") */
    bool resend;    /* back in the window from the store or a reconnect: resend (DUP / PUBREL) */
    uint64_t gen;   /* session_table_gen() when queued: older entries are already durable */
};

struct sentry_list {
    struct sentry *head;
    struct sentry *tail;
    size_t n;
    uint64_t bytes; /* msg_bytes() of the entries */
};

struct session_table;

/*
 * What most sessions never use, behind one pointer (session.ext): an idle client's session has
 * none of it. Made on first use — a subscription, an inbound QoS 2 id, a large in-flight window,
 * a drop, a bridge, an expiry timer — and with the session when it is durable (the part of its
 * queue on disk); freed with the session. session_ext() makes it; readers take a NULL ext as
 * all zero (no subscriptions, nothing on disk, no bridge).
 */
struct session_ext {
    /* durable sessions: the part of the queue on disk (above) */
    uint64_t disk_count;   /* queued entries on disk only */
    uint64_t refill_seq;   /* first seq on disk not in memory */
    uint64_t disk_gen;     /* table gen when an entry last went to disk (0: all committed) */
    uint64_t disk_gen_seq; /* first seq that went to disk in disk_gen: not committed before */

    struct pidx pidx; /* id -> in-flight entry, once the window is large (session.c) */

    uint16_t *inbound;     /* sorted */
    uint64_t *inbound_gen; /* commit generation each id was added in */
    uint32_t n_inbound;
    uint32_t cap_inbound;

    struct subset subs; /* filter -> QoS (subset.h) */

    uint64_t dropped;      /* messages dropped by the queue limits */
    uint64_t dropped_qos0; /* QoS 0 dropped for a slow reader (the broker counts them) */

    /*
     * Bridges (bridge.h). bridge: the bridge of Cairn's whose outbound queue this is (no client
     * may take it over, it never expires); limits: its own max_queued / max_queued_bytes
     * (bridge_max_queued_*), NULL for the table's; both borrowed from the bridge. no_local
     * (session): what this session's client publishes is not routed back to it, and it gets a
     * message published retained with RETAIN set, as Mosquitto's bridges subscribe — a remote
     * broker's bridge that connected with try_private, or one of Cairn's own.
     */
    struct bridge *bridge;
    const struct session_limits *limits;

    /* for the broker */
    size_t detach_cursor; /* broker.c: how far through subs the unsubscribing got */
    struct timer *expiry;
    void *expiry_ctx;
    uint32_t refill_tries; /* broker.c: reads of the store that found nothing, in a row */
    uint32_t pid_clashes;  /* entries read back whose id was in use: never (tests check) */
    uint32_t n_unwritten;  /* entries with unwritten set (session.c, "Deferred") */
};

/*
 * One allocation per session, its client id at the end: 152 bytes and the id on x86-64 (an
 * idle connection's session was most of its memory). The rest is in ext.
 */
struct session {
    struct session_table *table;
    struct session *hnext;
    void *owner; /* the client while online, NULL offline */
    /* The identity the session belongs to (session_set_user), recorded with it. */
    char *user; /* PERSIST_OWNER_USER: the username, NUL-terminated; else NULL */

    struct sentry_list inflight;
    struct sentry_list queue; /* the in-memory part of the queue */
    uint64_t q_count;         /* queued entries, memory + disk (in-flight not counted) */
    uint64_t q_bytes;
    uint64_t next_seq;
    int64_t last_seen; /* unix seconds */

    struct session *dirty_next; /* for the broker */
    struct session_ext *ext;    /* owned; NULL until first used */

    uint32_t id_len;
    uint16_t last_pid;
    uint8_t user_kind;       /* enum persist_owner */
    bool clean : 1;          /* clean session flag of the last CONNECT */
    bool durable : 1;        /* recorded in the store */
    bool detached : 1;       /* session_detach: gone but for its route entries */
    bool dirty : 1;          /* broker.c: on the dirty list */
    bool resend_pending : 1; /* some in-flight entry has resend set */
    bool no_local : 1;       /* bridges, see session_ext */
    char id[];               /* NUL-terminated */
};

/* ---- the table ---------------------------------------------------------------------------- */
/* store may be NULL (no durability); msgs indexes messages read back from the store. */
struct session_table *session_table_new(struct persist *store, struct msg_table *msgs,
                                        const struct session_limits *limits);
/* Frees every session (memory only: the store keeps them). NULL does nothing. */
void session_table_free(struct session_table *t);
void session_table_set_limits(struct session_table *t, const struct session_limits *limits);
const struct session_limits *session_table_limits(const struct session_table *t);
size_t session_table_count(const struct session_table *t);
/*
 * Commit generations: the broker calls session_table_committed() after each successful commit
 * of its batch; an entry whose gen is below session_table_gen() was queued before it, so its
 * records (and its message's) are durable.
 */
void session_table_committed(struct session_table *t);
/*
 * Put the records of the entries queued since the last call into the batch, each with the
 * state it has now (session.c, "Deferred"). The broker calls it at the end of every
 * iteration, before it commits; nothing queued waits past it.
 */
void session_table_flush(struct session_table *t);
uint64_t session_table_gen(const struct session_table *t);
/*
 * The batch failed: forget the inbound QoS 2 ids added since the last successful commit, so
 * the publisher's resend (it got no PUBREC) is routed and stored again — a possible
 * duplicate for subscribers that already had it, never an acknowledged message left unstored.
 */
void session_table_commit_failed(struct session_table *t);
/* While loading (persist_restore), changes are not written back to the store. */
void session_table_set_loading(struct session_table *t, bool loading);
/* Visit every session; cb may not add or remove sessions. Stops at non-zero, returned. */
int session_table_each(struct session_table *t, int (*cb)(void *ctx, struct session *s), void *ctx);

struct session *session_find(struct session_table *t, struct mqtt_str id);
/*
 * A new session for id (none must exist). durable: clean session 0 and the table has a store;
 * then its record (last_seen) goes into the batch. NULL on ENOMEM.
 */
struct session *session_new(struct session_table *t, struct mqtt_str id, bool clean, int64_t now);
/*
 * A durable session found by persist_restore: offline, its whole queue on disk (q holds the
 * summary). NULL on ENOMEM.
 */
struct session *session_restore(struct session_table *t, struct mqtt_str id,
                                const struct persist_session *ps,
                                const struct persist_queue_info *q);
/* Discard: remove from the table and the store (with queue, subscriptions, inbound ids), free.
 * The caller removes its subscriptions from the route tree first. */
void session_del(struct session *s);
/*
 * session_del in two steps, for a session whose subscriptions are too many to take out of the
 * route tree in one loop pass: detach removes it from the table and the store at once (its id
 * is free for a new session; s->detached is set and nothing more is written), and the struct
 * stays until session_free_detached(), once the caller has unsubscribed it everywhere.
 */
void session_detach(struct session *s);
void session_free_detached(struct session *s);

static inline struct mqtt_str session_id(const struct session *s)
{
    struct mqtt_str v = {(const uint8_t *)s->id, s->id_len};
    return v;
}

/* Record that the client was seen now (session record rewritten when durable). */
void session_touch(struct session *s, int64_t now);
/*
 * The identity that owns s from now on: user (a username, or the TLS identity used as one), or
 * NULL for a client without a username; checked: a password file or certificate vouched for
 * the name (else it is only claimed, and a claimed name is a different identity from the
 * checked one: a listener that lets anybody in must not hand out another listener's users'
 * sessions). A new session's owner is PERSIST_OWNER_UNKNOWN until set; so is one restored from
 * a record written before owners were stored. The session record is rewritten when durable.
 * 0, or -ENOMEM with nothing changed.
 */
int session_set_user(struct session *s, const char *user, bool checked);
/* Is s owned by that identity? false while its owner is unknown. */
bool session_user_is(const struct session *s, const char *user, bool checked);
/*
 * The client went offline: a durable session drops its stored entries from memory (they are
 * on disk; the next connect reads them back), and in-memory QoS 0 entries unless queue_qos0.
 */
void session_offline(struct session *s);
/* The client came (back): every in-flight entry is to be resent (sentry.resend). */
void session_online(struct session *s, void *owner);

/* ---- queue and in-flight ------------------------------------------------------------------ */
enum {
    SESSION_QUEUED = 0,
    SESSION_DROPPED_LIMIT = 1, /* max_queued_messages / max_queued_bytes */
    SESSION_DROPPED_QOS0 = 2,  /* QoS 0 for an offline session without queue_qos0 */
};
/* Queue m for delivery at qos (already min(published, granted)). SESSION_QUEUED, a
 * SESSION_DROPPED_* reason, or -ENOMEM. m must have a non-zero id when s is durable. */
int session_enqueue(struct session *s, struct msg *m, uint8_t qos);

/* Is there something pop could hand out now? */
bool session_can_pop(const struct session *s);
/*
 * The next entry to send, taken off the queue: QoS 0 entries are the caller's (send, then
 * sentry_free); QoS 1/2 entries enter the in-flight window with a packet id and state
 * WAIT_PUBACK / WAIT_PUBREC (borrowed: the window keeps them). NULL when the queue is empty or
 * the next entry needs a window slot and none is free.
 */
struct sentry *session_pop(struct session *s);
/* Drops e's message reference; e goes to a spare list for the next entry (session.c). */
void sentry_free(struct sentry *e);
/* Free the spare entries (at exit, and for leak checkers); returns how many there were. */
size_t session_spare_release(void);
/* Bytes of the entries in memory in every session of the process (memory_limit). */
size_t session_entry_bytes(void);

/* Read the next part of the on-disk queue into memory when the window runs low. Returns the
 * number of entries read, or a negative code. */
int session_refill(struct session *s);
/* The window is low and part of the queue is on disk. */
bool session_wants_refill(const struct session *s);
/*
 * session_wants_refill() and some of that part is committed, so a read would find it. The
 * broker asks this before each read: a read that finds nothing still costs a store iterator
 * (and LevelDB skips every deletion past the queue's end), so reading for entries still in the
 * open or a deferred batch, once per pop, made a deep queue drain in O(n^2).
 */
bool session_can_refill(const struct session *s);

/*
 * An acknowledgement from the client for packet id pid:
 *   MQTT_PUBACK  WAIT_PUBACK  -> finished (removed)
 *   MQTT_PUBREC  WAIT_PUBREC  -> WAIT_PUBCOMP (the caller sends PUBREL; also for a repeated
 *                                PUBREC of an entry already in WAIT_PUBCOMP)
 *   MQTT_PUBCOMP WAIT_PUBCOMP -> finished
 * 0; -ENOENT when no entry of that id is in flight; -EPROTO when one is, but the
 * acknowledgement is of the wrong kind for it (PUBREC or PUBCOMP for QoS 1, PUBACK for QoS 2,
 * PUBCOMP before PUBREC): a protocol violation, as Mosquitto treats it.
 */
int session_ack(struct session *s, int type, uint16_t pid);
/* Number of entries in flight. */
static inline size_t session_inflight(const struct session *s)
{
    return s->inflight.n;
}
/* Is pid in use by an in-flight entry? */
bool session_pid_in_use(const struct session *s, uint16_t pid);

/* ---- inbound QoS 2 ------------------------------------------------------------------------ */
bool session_inbound_has(const struct session *s, uint16_t pid);
/* 0 or -ENOMEM; adding an id already present is a no-op. */
int session_inbound_add(struct session *s, uint16_t pid);
/* 0, or -ENOENT when absent. */
int session_inbound_del(struct session *s, uint16_t pid);

/* ---- subscriptions (the session's own record; the route tree is the broker's) ------------- */
/* O(1) each (a hash set). 0 new, 1 QoS replaced, -ENOMEM. */
int session_sub_set(struct session *s, struct mqtt_str filter, uint8_t qos);
/* 0, or -ENOENT. */
int session_sub_del(struct session *s, struct mqtt_str filter);
/* Is filter subscribed? */
bool session_sub_has(const struct session *s, struct mqtt_str filter);
static inline size_t session_sub_count(const struct session *s)
{
    return s->ext ? subset_count(&s->ext->subs) : 0;
}
/* Iterate s's subscriptions: start with *cursor = 0; the next entry, or NULL at the end. */
struct subset_entry *session_sub_next(const struct session *s, size_t *cursor);

/* ---- the rarely used part ----------------------------------------------------------------- */
/* s's ext, made (zeroed) on first use; NULL on ENOMEM. Owned by s. */
struct session_ext *session_ext(struct session *s);
/* The bridge whose queue s is (session_ext), or NULL. */
static inline struct bridge *session_bridge(const struct session *s)
{
    return s->ext ? s->ext->bridge : NULL;
}
/* Messages dropped by the queue limits (session_ext). */
static inline uint64_t session_dropped(const struct session *s)
{
    return s->ext ? s->ext->dropped : 0;
}

#endif
