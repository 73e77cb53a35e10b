/*
 * broker.h — the MQTT logic of Cairn: what happens to packets once the server (conn.h) has
 * decoded them. The server calls the broker_* functions below; the broker answers through
 * conn_write / conn_write_ref / conn_close.
 *
 * Data structures (one broker per process, single thread):
 *   sessions   session.h  hash by client id; each with its queue, in-flight window, inbound
 *                         QoS 2 ids and subscription list
 *   route      route.h    the subscription tree: filter levels -> (session, QoS)
 *   retain     retain.h   the retained-message tree: topic levels -> message
 *   msgs       msg.h      live messages by id (queue windows read back from the store share
 *                         one copy)
 *   clients    client.h   one per connection (conn_data): the CONNECT state, the will, and
 *                         the HELD output — packets that may leave only after this
 *                         iteration's batch is durable
 *   store      persist.h  the LevelDB store (NULL with persistence false)
 *
 * The flow of one QoS 1 message:
 *   1. broker_on_packet(PUBLISH) -> handle_publish: one struct msg (topic + payload, one
 *      allocation, a new 64-bit id); retained: a second msg kept by the retain tree;
 *   2. route_match() gives each subscribed session once at its highest QoS; session_enqueue()
 *      appends an entry (a reference, not a copy) and, for durable sessions, persist_enqueue()
 *      into the open batch; the session is marked dirty;
 *   3. the PUBACK is not written: it is HELD in the publisher's client;
 *   4. broker_on_iteration_end(): (a) every dirty session with a connected client is pumped:
 *      entries move from its queue into its in-flight window (packet id and state recorded in
 *      the batch) and the PUBLISH sends are HELD in that client behind its earlier held acks;
 *      (b) persist_commit() writes the batch once; (c) only if it succeeded are the held
 *      packets written (PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, CONNACK, and the PUBLISHes —
 *      so a QoS 2 PUBLISH never leaves before its packet id is durable; client.h says which
 *      PUBLISHes of already durable entries may leave at once). On failure the held
 *      packets are dropped, the failure logged, and those clients disconnected: publishers
 *      resend, subscribers get their in-flight messages again on reconnect.
 *   5. a PUBLISH goes out as the message's cached header (msg_header) and its payload, both by
 *      reference, plus two packet-id bytes per subscriber;
 *   6. PUBACK/PUBREC/PUBCOMP from the subscriber update its in-flight window (and the batch);
 *      the last reference to a message frees it (persist drops the stored body itself).
 * With persistence off step (b) is skipped and held packets leave at iteration end.
 *
 * Restart: broker_new() opens the store and persist_restore() rebuilds sessions (offline,
 * queues left on disk), subscriptions, inbound QoS 2 ids and retained messages; message ids
 * continue after the highest stored. A reconnecting client's queue window is read back as
 * it drains (session.h).
 *
 * Ownership: the broker borrows cfg (until broker_reload gives another) and loop; it owns
 * everything above. Conns are borrowed from broker_on_open until broker_on_close returns.
 */
#ifndef CAIRN_BROKER_H
#define CAIRN_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt.h"

struct broker;
struct config;
struct conn;
struct loop;

/* NULL with a reason in err on failure (a store that cannot be opened or restored, ENOMEM). */
struct broker *broker_new(const struct config *cfg, struct loop *loop, char *err, size_t errlen);
/* Frees everything (after broker_shutdown; conns must be gone). NULL does nothing. */
void broker_free(struct broker *b);

/* A connection was accepted. 0, or negative to refuse it. */
int broker_on_open(struct broker *b, struct conn *c);
/* One decoded packet (views valid during the call). Negative: close the connection. */
int broker_on_packet(struct broker *b, struct conn *c, const struct mqtt_packet *pkt);
/* A PUBLISH over message_size_limit (head only, see conn.h): dropped, acknowledged, logged.
 * Negative: close the connection. */
int broker_on_oversize(struct broker *b, struct conn *c, const struct mqtt_publish *head,
                       size_t payload_len);
/* A CONNECT that failed to decode with err (-MQTT_EPROTO_LEVEL: answered with CONNACK 1). */
int broker_on_bad_connect(struct broker *b, struct conn *c, int err);
/* The connection is gone; c is invalid after return. */
void broker_on_close(struct broker *b, struct conn *c, int reason);
/* The output queue of c drained below the low-water mark. */
void broker_on_writable(struct broker *b, struct conn *c);
/* Once per loop iteration after all events: commit, then send what was held. */
void broker_on_iteration_end(struct broker *b);
/* SIGHUP: apply the limits, $SYS interval, auth files... of cfg (borrowed from now on). */
int broker_reload(struct broker *b, const struct config *cfg);
/* SIGTERM: final commit and send; the server then closes every connection (reason 0). */
void broker_shutdown(struct broker *b);

/* Counters for $SYS and tests. */
struct broker_stats {
    uint64_t clients_connected;
    uint64_t messages_received; /* PUBLISH packets in */
    uint64_t messages_sent;     /* PUBLISH packets out */
    uint64_t messages_dropped;  /* queue limits, slow subscribers, oversize */
    uint64_t commits;
    uint64_t commit_failures;
};
const struct broker_stats *broker_stats(const struct broker *b);
size_t broker_session_count(const struct broker *b);
size_t broker_subscription_count(const struct broker *b);
size_t broker_retained_count(const struct broker *b);
/* The store's own directory (persist.h), NULL with persistence false. Borrowed. */
const char *broker_store_dir(const struct broker *b);

/*
 * Publish a message from the broker itself ($SYS, wills): routed like a client's PUBLISH.
 * store_retained: record a retained message in the store (false for $SYS). 0 or -ENOMEM.
 */
int broker_publish(struct broker *b, struct mqtt_str topic, struct mqtt_str payload, uint8_t qos,
                   bool retain, bool store_retained);

#endif
