/*
 * bridge.h — bridges: Cairn as an MQTT client of other brokers (another Cairn, Mosquitto, an
 * EMQX or VerneMQ cluster), inside the same loop, configured by "connection" blocks with
 * Mosquitto's options (config.h, config_bridge.c).
 *
 * One bridge is:
 *   - a local session, the bridge's queue (session.h; id local_clientid, "$bridge/NAME" by
 *     default), subscribed through the route tree to the local side of every "out" and "both"
 *     topic. Its queue is a persistent session's like any other: stored in LevelDB, in order,
 *     bounded in memory (a window, the rest on disk), limited by max_queued_messages/_bytes
 *     (or the bridge's own bridge_max_queued_*); an entry leaves it only when the remote
 *     acknowledged it (PUBACK, PUBCOMP) and is resent with DUP after a reconnect or a restart.
 *     So what Cairn acknowledged to a local publisher reaches the remote, whatever dies between.
 *     With local_cleansession (default: cleansession) the queue is in memory only and goes
 *     with the link.
 *   - a link: a struct conn in the server's pool (conn.h, outgoing) whose struct client has
 *     that session once the remote's CONNACK accepted it — so the broker's own pump, held
 *     output and session_ack send and complete the PUBLISHes (client.h), and the bridge adds
 *     only what a client does: CONNECT (the will is the notification "0"), SUBSCRIBE to the
 *     remote side of "in" and "both" topics (UNSUBSCRIBE of the others with
 *     bridge_attempt_unsubscribe), keepalive (PINGREQ every keepalive_interval; no answer for
 *     1.5 times that closes the link), topic mapping both ways, and the inbound side: what the
 *     remote publishes is routed here and acknowledged only once durable (held acks; inbound
 *     QoS 2 ids live in the bridge's session).
 *   - its life: the name is looked up and the address connected without holding the loop
 *     (dial.h), TLS with mbedTLS as a client (tls_client.h), addresses in turn on failure
 *     (round_robin false: back to the first whenever it answers, probed every 5 s), waits
 *     between attempts as Mosquitto (restart_timeout: constant, or decorrelated jitter from
 *     BASE to CAP), start_type automatic, lazy (connect when threshold messages wait; close
 *     after idle_timeout without a PUBLISH) or once (never restarted). The broker serves its
 *     own clients all the while.
 *
 * Loops: a message does not go back out over the bridge it came in by (the bridge session is
 * no_local: broker__route skips the session of the message's publisher), with or without
 * try_private; with try_private (protocol level 0x84) a remote that knows the bit does the same
 * on its side, and Cairn, as a remote, does it for bridges that connect to it with the bit.
 * Bridges forward the RETAIN flag as published (bridge_outgoing_retain false clears it) and, on
 * the first link of a bridge as configured or when the remote has no session for it, the local
 * retained messages of their "out" topics, as Mosquitto does on every connect (but not those
 * that came in over the same bridge).
 *
 * Notifications (notifications true): a retained "1" on the notification topic
 * ($SYS/broker/connection/REMOTE_CLIENTID/state unless notification_topic) when the link is up,
 * "0" when it is not, published here and (unless notifications_local_only) on the remote, where
 * the "0" is the link's will so the far side learns of a drop. The remote's "1" goes at QoS 0:
 * it may not take a packet id the session's window might reuse.
 *
 * Reload (SIGHUP): bridges whose block changed are restarted (their queue stays), new ones
 * started, removed ones stopped (their session stays as an ordinary persistent one, with its
 * queue, until persistent_client_expiration); the others keep their connection. Figures for
 * $SYS and /metrics: bridge_set_stats.
 *
 * Ownership: the server owns the set; the set owns its bridges, their TLS contexts and timers;
 * sessions and conns are the broker's and the pool's, borrowed (the link's client points back
 * to its bridge, cleared when the bridge goes). Single-threaded, on the loop.
 */
#ifndef CAIRN_BRIDGE_H
#define CAIRN_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt.h"

struct bridge;
struct bridge_plan;
struct bridge_set;
struct broker;
struct client;
struct config;
struct conn;
struct conn_pool;
struct loop;
struct msg;

/* ---- the set (server.c) ------------------------------------------------------------------- */

/*
 * The bridges of cfg (borrowed from now on), their TLS contexts loaded (as root, before the
 * privilege drop, as the listeners'). Nothing runs yet. NULL on failure with "FILE:LINE:
 * reason" in err.
 */
struct bridge_set *bridge_set_new(const struct config *cfg, char *err, size_t errlen);
/* Start every bridge: sessions set up, links dialled. 0, or -ENOMEM with err set. */
int bridge_set_start(struct bridge_set *set, struct loop *l, struct conn_pool *pool,
                     struct broker *b, char *err, size_t errlen);
/* Shutdown: no more attempts; links close with the pool's connections. */
void bridge_set_stop(struct bridge_set *set);
/* After the pool and before the broker. NULL does nothing. */
void bridge_set_free(struct bridge_set *set);

/* SIGHUP, step one: the TLS contexts of the bridges cfg adds or changes. NULL on failure with
 * the reason in err (nothing changes). */
struct bridge_plan *bridge_set_plan(struct bridge_set *set, const struct config *cfg, char *err,
                                    size_t errlen);
/* Step two, which cannot fail: apply the plan (cfg borrowed from now on); frees it. */
void bridge_set_apply(struct bridge_set *set, struct bridge_plan *plan);
/* A plan not applied. NULL does nothing. */
void bridge_plan_free(struct bridge_plan *plan);

/* ---- what the broker calls (broker.c, client.c) ------------------------------------------- */

/* A packet from the remote on the bridge's link. Negative: close the link. */
int bridge_on_packet(struct bridge *br, struct client *cl, const struct mqtt_packet *pkt);
/* The link is gone (its session already offline); c is valid during the call only. */
void bridge_on_close(struct bridge *br, struct client *cl, struct conn *c);
/*
 * m is about to be queued for the bridge: false when it cannot go to the remote (over
 * bridge_max_packet_size: dropped, logged, counted). A lazy bridge starts at its threshold.
 */
bool bridge_route_ok(struct bridge *br, const struct msg *m);
/*
 * m is being sent over the link: true with the topic and RETAIN flag it goes with when they
 * differ from its own (a topic mapping, bridge_outgoing_retain false) — *topic valid until
 * the next call; false when m goes as it is. Counts the send.
 */
bool bridge_map_out(struct bridge *br, const struct msg *m, struct mqtt_str *topic, bool *retain);

/* ---- figures ($SYS, /metrics) ------------------------------------------------------------- */

struct bridge_stats {
    const char *name;  /* borrowed from the config */
    const char *state; /* "connected", "connecting", "waiting", "stopped" */
    char remote[280];  /* the address in use, host:port */
    uint64_t queued;   /* messages waiting for the remote (memory and store) */
    uint64_t queued_bytes;
    uint64_t inflight; /* sent, not yet acknowledged */
    uint64_t dropped;  /* queue limits, or over bridge_max_packet_size */
    uint64_t connects; /* links the remote accepted */
    uint64_t sent;     /* PUBLISH packets to the remote (resends included) */
    uint64_t received; /* PUBLISH packets from it */
    char last_error[256];
};
size_t bridge_set_count(const struct bridge_set *set);
void bridge_set_stats(const struct bridge_set *set, size_t i, struct bridge_stats *out);

#endif
