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

/* What a -MQTT_ETOOLARGE close measured (for the log line). */
enum conn_over { CONN_OVER_NONE, CONN_OVER_HEADER, CONN_OVER_PAYLOAD, CONN_OVER_WILL };

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
    bool opened;     /* on_open succeeded: on_close is due */
    bool connected;  /* CONNECT accepted */
    bool got_packet; /* a first packet arrived */
    bool closing;
    bool lingering;   /* on_close done; only writing what is left */
    bool reason_mqtt; /* reason is a codec code (the decoder failed) */
    bool by_peer;     /* the read failed or saw EOF: the peer went away */
    bool shutdown;    /* closed by conn_pool_close_all */
    int reason;
    enum conn_over over; /* with -MQTT_ETOOLARGE: what was over message_size_limit */
    size_t over_size;    /* its size: remaining length or payload bytes */
    uint8_t *in;         /* bytes of an incomplete packet */
    size_t in_len;
    size_t in_cap;
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
    uint8_t scratch[CONN_SCRATCH];
};

/* Process-wide counters (conn_stats()). */
extern struct conn_stats conn__counters;

/* Mark c closing (first reason sticks) and put it on the pool's close list. mqtt: reason is a
 * codec code. */
void conn__queue_close(struct conn *c, int reason, bool mqtt);
/* conn_input.c: read what the transport has and hand every whole packet over. */
void conn__read(struct conn *c);

#endif
