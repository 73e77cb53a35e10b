/*
 * conn_internal.h — what conn.c (connections, output, the pool) and conn_input.c (reading,
 * decoding, the limits on input) share. Nothing outside those two files includes it.
 */
#ifndef CAIRN_CONN_INTERNAL_H
#define CAIRN_CONN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "outq.h"

#define CONN_SCRATCH (64u * 1024u) /* shared read buffer */

/* What a refusal measured (for the log line). */
enum conn_over {
    CONN_OVER_NONE,
    CONN_OVER_HEADER,     /* -MQTT_ETOOLARGE from the fixed header */
    CONN_OVER_PAYLOAD,    /* PUBLISH payload over message_size_limit */
    CONN_OVER_WILL,       /* will payload over message_size_limit */
    CONN_OVER_CONNECT,    /* a CONNECT announcing more than conn_decode_max allows */
    CONN_NOT_CONNECT,     /* -EPROTO: the first packet's first byte is not CONNECT's */
    CONN_OVER_PRECONNECT, /* -ENOBUFS: input before CONNECT over connect_memory_limit */
    CONN_OVER_PACKET,     /* max_packet_size: the whole packet (over_size: its bytes, 0 unknown) */
};

struct conn {
    struct conn_pool *pool;
    struct transport *t;
    int fd;
    int listener;
    int events;        /* interest registered with the loop */
    struct conn *prev; /* pool->all */
    struct conn *next;
    struct conn *dirty_next; /* pool->dirty: output to flush at iteration end */
    struct conn *close_next; /* pool->closing */
    bool dirty;
    bool handshaking;
    bool outgoing;   /* a bridge's connection to its remote: we are the client (conn.h) */
    bool opened;     /* on_open succeeded: on_close is due */
    bool connected;  /* CONNECT accepted */
    bool got_packet; /* a first packet arrived */
    bool closing;
    bool lingering;     /* on_close done; only writing what is left */
    bool reason_mqtt;   /* reason is a codec code (the decoder failed) */
    bool by_peer;       /* the read failed or saw EOF: the peer went away */
    bool shutdown;      /* closed by conn_pool_close_all */
    bool paused;        /* conn_pause_input: no decoding, no reading */
    bool resume_queued; /* on pool->resumed */
    int reason;
    enum conn_over over; /* with -MQTT_ETOOLARGE: what was over message_size_limit */
    size_t over_size;    /* its size: remaining length or payload bytes */
    size_t skip;         /* bytes of an oversize PUBLISH still to discard as they arrive */
    uint8_t *in;         /* bytes of an incomplete packet (or waiting while paused) */
    size_t in_len;
    size_t in_cap;
    size_t accounted; /* in_cap as counted in pool->preconnect_bytes (0 once connected) */
    struct conn *resume_next;
    struct outq out;
    struct timer *connect_timer;
    struct timer *keepalive_timer;
    struct timer *linger_timer;
    uint64_t keepalive_ms; /* 1.5 x keepalive, 0: none */
    uint64_t last_rx;
    void *data;
    char *name;
    char peer[64];
};

struct conn_pool {
    struct loop *loop;
    const struct config *cfg;
    struct conn_handler h;
    struct conn *all;
    struct conn *dirty;
    struct conn *closing;
    size_t count; /* open (not lingering) */
    size_t nlinger;
    size_t *per_listener;
    size_t n_per_listener;
    size_t preconnect_bytes; /* input buffers of conns without an accepted CONNECT */
    uint64_t preconnect_refused;
    struct conn *resumed; /* conn_resume_input: decode what waited, at the next timer run */
    struct timer *resume_timer;
    uint8_t scratch[CONN_SCRATCH];
};

/* Process-wide counters (conn_stats()). */
extern struct conn_stats conn__counters;

/* Mark c closing (first reason sticks) and put it on the pool's close list. mqtt: reason is a
 * codec code. */
void conn__queue_close(struct conn *c, int reason, bool mqtt);
/* conn_input.c: read what the transport has and hand every whole packet over. */
void conn__read(struct conn *c);
/* Register with the loop what c needs now (read, write). */
void conn__update_events(struct conn *c);
/* conn_input.c: the largest remaining length accepted for a packet whose first byte is first. */
size_t conn__decode_max(uint32_t limit, uint8_t first);
/* conn_input.c: count c's input buffer in pool->preconnect_bytes while it has no CONNECT. */
void conn__account(struct conn *c);
/* conn_input.c: log a connect_memory_limit refusal (rate-limited); what: "closed", "refused". */
void conn__preconnect_log(struct conn_pool *p, const char *peer, const char *what);

#endif
