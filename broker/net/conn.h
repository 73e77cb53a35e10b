/*
 * conn.h — one client connection: its transport, input buffer and decode loop, output queue,
 * CONNECT timeout and keepalive; and the pool that owns every connection.
 *
 * A connection that has not had its CONNECT accepted (conn_set_keepalive) within connect_timeout
 * seconds of the accept is closed with -ETIMEDOUT.
 *
 * Input: the socket is read into a per-connection buffer that grows as bytes arrive.
 * mqtt_decode() runs over it in a loop and every whole packet goes to the handler's on_packet
 * with views valid during that call only; a partial packet waits for more bytes. A decode error
 * closes the connection with the negative code as reason, except -MQTT_EPROTO_LEVEL on the
 * first packet, which goes to on_bad_connect so the broker can answer CONNACK 1 first.
 *
 * message_size_limit (0: none) is Mosquitto's: the largest PUBLISH payload, and CONNECT will
 * payload, accepted. A larger PUBLISH is dropped as Mosquitto drops it — its head goes to the
 * handler's on_oversize (which acknowledges QoS 1/2 and logs), the connection stays, and its
 * payload is discarded as it arrives, never buffered whole (closing would make a client with a
 * persistent session resend it forever). A will over the limit is the broker's to refuse at
 * CONNECT.
 *
 * Before its CONNECT is accepted a connection holds little (issue 9): a first packet that is
 * not a CONNECT is refused from its first byte (-EPROTO), a CONNECT's remaining length may be
 * at most 64 KiB plus the will payload allowed (message_size_limit, at most 65535), and
 * connect_memory_limit bounds the input buffered by all such connections together: a
 * connection that would grow past it is closed (-ENOBUFS), and while it is reached new
 * connections are refused at once; both logged.
 *
 * Logging: with connection_messages, one line when a connection arrives and one when it closes
 * ("client PEER ID closed: REASON"); the reason names what happened (DISCONNECT, peer gone,
 * keepalive, takeover, the sizes over message_size_limit, the protocol error, shutdown).
 *
 * Output: conn_write() copies small packets into coalescing chunks; conn_write_ref() queues a
 * reference to a shared immutable buffer (a build-once PUBLISH body). The queue leaves in one
 * writev per writable event and at the end of each loop iteration; the connection asks the loop
 * for write readiness only while output is pending.
 *
 * Flow control: conn_out_bytes() is what waits in the queue. A sender stops when it reaches
 * CONN_OUT_HIGH_WATER (or any threshold it likes at or above CONN_OUT_LOW_WATER); the handler's
 * on_writable runs when a flush takes the queue from >= CONN_OUT_LOW_WATER to below it.
 *
 * Closing: conn_close() only marks the connection; the pool closes it at a safe point (the end
 * of the loop iteration, never while its own events are dispatched): on_close runs (after which
 * the broker must not touch the conn), what is still queued gets a short linger to leave, then
 * the transport is closed and every conn_write_ref() reference released.
 *
 * Outgoing connections (a bridge's, bridge.h) live in the same pool with the same input,
 * output, handshake and close machinery; what differs: no listener (index -1), the first packet
 * expected is the CONNACK (no CONNECT check), max_packet_size and connect_memory_limit are
 * limits on clients and do not apply, the CONNECT timeout becomes the wait for the CONNACK, and
 * the bridge logs their opening and closing itself (conn_close_reason).
 *
 * Ownership: the pool owns every conn; broker code borrows conn pointers from on_open until
 * on_close returns. Strings returned by conn_peer/conn_name/conn_identity stay valid as long as
 * the conn.
 */
#ifndef CAIRN_CONN_H
#define CAIRN_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt.h"

struct conn;
struct conn_pool;
struct loop;
struct config;
struct transport;

#define CONN_OUT_HIGH_WATER (256u * 1024u)
#define CONN_OUT_LOW_WATER  (64u * 1024u)
/* Input is not read while this much output waits: a client that publishes but never reads its
 * acks cannot grow its queue without bound. Keepalive does not expire while reading is paused. */
#define CONN_OUT_READ_PAUSE (8u * 1024u * 1024u)
#define CONN_LINGER_MS      2000u /* how long a closed conn may take to flush its queue */

/* ---- what the broker calls ----------------------------------------------------------- */

/* Queue a copy of buf. 0, -ENOMEM, or -EPIPE when the conn is closing (nothing queued). */
int conn_write(struct conn *c, const void *buf, size_t len);
/* The same for a then b, queued as one piece (outq_copy2). */
int conn_write2(struct conn *c, const void *a, size_t alen, const void *b, size_t blen);
/*
 * Queue a reference to buf (immutable until released). release(obj) runs exactly once: when the
 * bytes are written, when the conn dies, or at once on failure (-ENOMEM, -EPIPE when closing).
 * release may be NULL.
 */
int conn_write_ref(struct conn *c, const void *buf, size_t len, void (*release)(void *obj),
                   void *obj);
/* Bytes queued and not yet written. */
size_t conn_out_bytes(const struct conn *c);
/* Close after flushing what is queued; deferred to a safe point. The first reason sticks.
 * reason: 0 (DISCONNECT, shutdown), -errno, -MQTT_E..., -ETIMEDOUT. */
void conn_close(struct conn *c, int reason);
/* Is the conn closing (conn_close was called, or the peer went away)? */
bool conn_closing(const struct conn *c);

void conn_set_data(struct conn *c, void *data);
void *conn_data(const struct conn *c);
/* "addr:port" ("[v6addr]:port" for IPv6). */
const char *conn_peer(const struct conn *c);
/* Client id for logs ("" until conn_set_name). */
const char *conn_name(const struct conn *c);
/* TLS certificate CN / PSK identity, or NULL (always NULL for plain TCP). */
const char *conn_identity(const struct conn *c);
/* Index into config listeners. */
int conn_listener_index(const struct conn *c);
/* CONNECT accepted: ends the CONNECT timeout and arms keepalive (no packet for 1.5 x seconds
 * closes with -ETIMEDOUT); 0 disables keepalive. */
void conn_set_keepalive(struct conn *c, uint16_t seconds);
/* Client id for logs (copied; truncated past 256 bytes). */
void conn_set_name(struct conn *c, const char *client_id);
/*
 * Stop handling c's input after the packet being handled (on_packet may call it): the bytes
 * that follow wait in c's buffer and the socket is not read, so a packet the broker serves over
 * several loop iterations (a SUBSCRIBE with many filters) is finished before the next one is
 * looked at. Keepalive does not expire meanwhile.
 */
void conn_pause_input(struct conn *c);
/* Handle c's input again: what waited is decoded at the loop's next timer run (not within the
 * call). Nothing when c is not paused. */
void conn_resume_input(struct conn *c);

/* Process-wide counters for $SYS. Read-only for the broker. */
struct conn_stats {
    uint64_t bytes_received;
    uint64_t bytes_sent;
    uint64_t packets_received;
    uint64_t connections_accepted; /* since start */
    uint64_t connections_refused;  /* max_connections, EMFILE, out of memory */
    uint64_t connections_open;
};
const struct conn_stats *conn_stats(void);
/* A connection turned away before it became a conn (listener.c). */
void conn_stats_refused(void);

/* ---- what the server wires -------------------------------------------------------- */

/*
 * The upper layer (server.c passes the broker_* functions). Return codes as broker.h: a
 * negative return from on_open/on_packet/on_bad_connect closes the conn with that reason.
 */
struct conn_handler {
    void *arg; /* the struct broker */
    int (*on_open)(void *arg, struct conn *c);
    int (*on_packet)(void *arg, struct conn *c, const struct mqtt_packet *pkt);
    int (*on_bad_connect)(void *arg, struct conn *c, int err);
    /*
     * A PUBLISH whose payload (payload_len bytes) is over message_size_limit: its head (topic,
     * QoS, packet id; payload.p NULL) for the broker to answer and log; the connection stays
     * and the payload is discarded, never buffered whole. Negative: close the connection.
     */
    int (*on_oversize)(void *arg, struct conn *c, const struct mqtt_publish *head,
                       size_t payload_len);
    void (*on_close)(void *arg, struct conn *c, int reason);
    void (*on_writable)(void *arg, struct conn *c);
};

/* A pool on loop l. cfg is borrowed and must outlive the pool or be replaced by
 * conn_pool_set_config(). NULL on ENOMEM. */
struct conn_pool *conn_pool_new(struct loop *l, const struct config *cfg,
                                const struct conn_handler *h);
/* Closes every conn at once (no on_close: call conn_pool_close_all + conn_pool_flush first). */
void conn_pool_free(struct conn_pool *p);
void conn_pool_set_config(struct conn_pool *p, const struct config *cfg);

/*
 * Adopt an accepted connection: takes ownership of t (closed on failure). peer is copied.
 * Calls on_open. 0 or a negative code (the connection is gone then).
 */
int conn_pool_add(struct conn_pool *p, struct transport *t, int listener_index, const char *peer);
/*
 * Adopt an outgoing connection (a bridge's, connected): as conn_pool_add, with no listener. Its
 * conn in *out (borrowed, as any) once on_open has run. 0 or a negative code (gone then).
 */
int conn_pool_add_outgoing(struct conn_pool *p, struct transport *t, const char *peer,
                           struct conn **out);
/* Why c closed, in words (what connection_messages logs), into buf. Returns buf. */
const char *conn_close_reason(const struct conn *c, char *buf, size_t len);
/* Open connections (all, or of one listener). */
size_t conn_pool_count(const struct conn_pool *p);
size_t conn_pool_count_listener(const struct conn_pool *p, int listener_index);
/*
 * The safe points, at iteration end (server.c):
 *     for (a few rounds) { conn_pool_reap; broker_on_iteration_end; conn_pool_flush;
 *                          if (!conn_pool_pending) break; }
 * reap runs on_close for conns closed since the last call (their will and session changes land
 * in the batch the broker commits next) and starts their linger; flush writes every conn with
 * pending output (one writev each) and asks for write readiness where bytes remain.
 */
void conn_pool_reap(struct conn_pool *p);
void conn_pool_flush(struct conn_pool *p);
/* Closes or writes requested since the last reap/flush (another round is due). */
bool conn_pool_pending(const struct conn_pool *p);
/* conn_close(c, reason) on every conn (shutdown); conn_pool_reap() completes it. */
void conn_pool_close_all(struct conn_pool *p, int reason);
/* Connections still lingering (closed, flushing). Shutdown waits for 0 or a deadline. */
size_t conn_pool_lingering(const struct conn_pool *p);

#endif
