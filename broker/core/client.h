/*
 * client.h — one connected client (conn_data of its conn), and the broker internals that the
 * packet handlers (handle_*.c) share.
 *
 * A client exists from broker_on_open to broker_on_close. Before its CONNECT is accepted it
 * has no session; after a takeover it has none again (the new connection took it) and its
 * close then changes nothing.
 *
 * Held output (ack after durable): every packet whose meaning depends on state recorded in
 * this iteration's batch — CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK and
 * PUBLISHes to the client — is appended to the client's held list instead of the conn.
 * broker_on_iteration_end writes the lists after the commit (client_flush_held) or drops them
 * (client_drop_held). Raw packets are copied into one byte buffer; a PUBLISH is held as a
 * message reference with its QoS, packet id and DUP flag. Written at once, when nothing is
 * held before them (order is kept): refusing CONNACKs, PINGRESP, QoS 0 PUBLISHes and QoS 1
 * PUBLISHes of entries queued in an earlier iteration (already durable; their new in-flight
 * state need not be: a QoS 1 resend after a crash is allowed). A QoS 2 PUBLISH is always held:
 * its packet id must be durable before the client can see it.
 *
 * Ownership: the client owns its will message, username copy, held list (with one message
 * reference per held PUBLISH) and job (a SUBSCRIBE/UNSUBSCRIBE in progress, with its own copy
 * of the filters); it borrows its conn and session.
 */
#ifndef CAIRN_CLIENT_H
#define CAIRN_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "deliver.h"
#include "msg.h"
#include "mqtt.h"
#include "persist.h"
#include "retain.h"
#include "route.h"
#include "session.h"

struct auth;
struct bridge;
struct bridge_set;
struct subscribe_job;
struct timer;

struct client_held {
    struct msg *m; /* NULL: raw bytes [off, off + len) of the raw buffer */
    uint32_t off;
    uint32_t len;
    uint16_t pid;
    uint8_t qos;
    bool dup;
};

/*
 * 120 bytes on x86-64, one allocation per connection (with the conn's, the transport's and the
 * session's, an idle connection's memory). The held arrays exist only while something is held
 * (client__shrink); their counts are 32-bit, as a held packet's offset is.
 */
struct client {
    struct broker *b;
    struct conn *conn;
    struct session *session; /* NULL before CONNECT and after a takeover */
    struct msg *will;        /* one reference, or NULL */
    char *username;          /* as auth settled it, or NULL */
    /* The bridge whose link to its remote this connection is (bridge.h: CONNACK, SUBACK and
     * what the remote publishes go to it; the pump sends its queue), or NULL. Borrowed. */
    struct bridge *bridge;

    struct client_held *held;
    uint8_t *raw;
    size_t held_bytes; /* bytes the held packets will take on the wire */
    struct client *dirty_next;

    /* A SUBSCRIBE/UNSUBSCRIBE served in slices (handle_subscribe.c), or NULL; owned. */
    struct subscribe_job *job;
    struct client *job_next; /* the broker's list of clients with a job */

    uint32_t n_held;
    uint32_t cap_held;
    uint32_t raw_len;
    uint32_t raw_cap;
    int listener; /* AUTH_LISTENER_BRIDGE for a bridge's link */
    uint16_t keepalive;
    uint8_t protocol_level;
    bool user_checked : 1;  /* a password file or certificate vouched for username */
    bool connected : 1;     /* CONNECT accepted */
    bool disconnecting : 1; /* DISCONNECT received: no will */
    bool dirty : 1;         /* on the broker's list of clients with held output */
};

struct broker {
    const struct config *cfg;
    struct loop *loop;
    struct persist *store; /* NULL: persistence false */
    struct auth *auth;
    struct msg_table *msgs;
    struct session_table *sessions;
    struct route route;
    struct retain retain;
    struct route_hits hits;
    uint64_t last_msg_id;
    uint64_t next_auto_id;

    struct client *dirty_clients;
    struct session *dirty_sessions;
    struct timer *kick;
    struct timer *commit_timer;
    struct session *detached;     /* discarded, route entries still going (dirty_next list) */
    struct timer *detached_timer; /* takes them out a slice per loop pass */
    bool commit_due;
    bool sent_in_batch;          /* a PUBLISH left whose in-flight state is in the open batch */
    uint64_t commit_fail_streak; /* commits failed in a row */
    struct timer *sys_timer;
    struct client *jobs;     /* clients whose SUBSCRIBE/UNSUBSCRIBE is being served */
    struct timer *job_timer; /* 0 ms while jobs remain: the next slice of each */
    uint64_t start_ms;
    struct bridge_set *bridges; /* borrowed from the server (bridge.h), for $SYS; NULL: none */
    bool shutting_down;
    struct broker_stats stats;
    uint64_t memory_refusals; /* PUBLISHes refused by memory_limit */
};

/* ---- client.c ----------------------------------------------------------------------------- */
struct client *client_new(struct broker *b, struct conn *c);
void client_free(struct client *cl);
/* Hold a raw packet (copied). 0 or -ENOMEM. */
int client_hold_raw(struct client *cl, const uint8_t *p, size_t len);
/*
 * A raw packet that depends on nothing stored (PINGRESP, the ack of a dropped PUBLISH): written
 * at once, unless something is held — then held behind it, so packets leave in the order they
 * were produced. 0 or -ENOMEM.
 */
int client_send_raw(struct client *cl, const uint8_t *p, size_t len);
/* Hold an ack packet (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK) for pid. */
int client_hold_ack(struct client *cl, enum mqtt_type type, uint16_t pid);
/* Hold a PUBLISH of m at qos with pid (takes a new reference to m). */
int client_hold_publish(struct client *cl, struct msg *m, uint8_t qos, uint16_t pid, bool dup);
/* Write the held packets to the conn, in order. */
void client_flush_held(struct client *cl);
/* Forget the held packets. */
void client_drop_held(struct client *cl);
/* Write a PUBLISH now: shared header and payload by reference, the packet id copied. */
int client_send_publish(struct client *cl, struct msg *m, uint8_t qos, uint16_t pid, bool dup);
/* "ADDR ID" for logs. */
const char *client_peer(const struct client *cl);
const char *client_id(const struct client *cl);
/* The config of the client's listener (borrowed from b->cfg). */
const struct config_listener *client_listener(const struct client *cl);
/*
 * mount_point (config.h), as Mosquitto: a client of a listener with one has it prefixed to every
 * topic it publishes (its will too) and every filter it subscribes to or unsubscribes from, so
 * ACLs, routing and the store see the long form; and removed from every topic sent to it
 * (client_send_publish). Filters beginning with "$SYS" are left alone, so such clients still
 * read the broker's statistics (Mosquitto 2.0 prefixes them too, hiding $SYS from them).
 * *out: in itself, or the prefixed copy in *buf (malloc'd, the caller frees; NULL when none
 * was needed). 0, -ENOMEM, or -EINVAL when the result would be over 65535 bytes.
 */
int client_mount(const struct client *cl, struct mqtt_str in, bool filter, struct mqtt_str *out,
                 uint8_t **buf);

/* ---- handlers (one file per packet type) -------------------------------------------------- */
int handle_connect(struct broker *b, struct client *cl, const struct mqtt_connect *p);
int handle_publish(struct broker *b, struct client *cl, const struct mqtt_publish *p);
/* A PUBLISH over message_size_limit, its head only: dropped, acknowledged, logged, counted. */
int handle_publish_oversize(struct broker *b, struct client *cl, const struct mqtt_publish *head,
                            size_t payload_len);
int handle_subscribe(struct broker *b, struct client *cl, const struct mqtt_topics *t);
int handle_unsubscribe(struct broker *b, struct client *cl, const struct mqtt_topics *t);
/* Forget cl's SUBSCRIBE/UNSUBSCRIBE in progress, if any (client_free; no ack is sent). */
void handle_subscribe_cancel(struct client *cl);
int handle_ack(struct broker *b, struct client *cl, enum mqtt_type type, uint16_t pid);
int handle_pingreq(struct broker *b, struct client *cl);
int handle_disconnect(struct broker *b, struct client *cl);

#endif
