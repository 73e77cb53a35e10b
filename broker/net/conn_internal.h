/*
 * conn_internal.h — what conn.c (connections, output, the pool) and conn_input.c (reading,
 * decoding, the limits on input) share. Nothing outside those two files includes it.
 *
 * An idle plain-TCP connection (CONNECTed, clean session, no subscription) holds, on x86-64
 * with glibc (each allocation rounded up to 16 bytes with 8 of header, 32 at least):
 *     struct conn + peer ("127.0.0.1:40000")      160 + 16   192  (below)
 *     struct transport (transport_tcp.c)            16        32
 *     the conn's name (the client id, for logs)     id + 1    32
 *     struct client (client.h)                      120       128
 *     struct session + client id (session.h)        152 + id  176  (ext only once used)
 *     its entry in the loop's fd table (loop.c)     24
 *     its bucket in the session table (session.c)   8 to 16
 * about 600 bytes, measured 0.59 KiB of broker RSS per connection with 19,800 (bench_load's
 * idle row). Input goes to the pool's scratch buffer, output chunks and held arrays exist only
 * while bytes wait, and no timer is armed without keepalive.
 */
#ifndef CAIRN_CONN_INTERNAL_H
#define CAIRN_CONN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "outq.h"

/*
 * The shared read buffer. One read takes up to this much, so a fast publisher's messages are
 * routed in large batches and each subscriber's write of a loop pass carries more of them: 64
 * KiB -> 256 KiB took fan-out 1->50 of 1 KiB QoS 1 messages from 1.68M to 2.3M deliveries/s.
 * One per pool, its pages touched only as far as reads fill it.
 */
#define CONN_SCRATCH  (256u * 1024u)
#define CONN_PEER_MAX 64u /* a peer address kept, with its NUL */

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

/*
 * One allocation per connection, its peer address at the end: 160 bytes and "addr:port" on
 * x86-64 (with the transport's, the client's and the session's, an idle connection's memory;
 * its input goes to the pool's scratch buffer and it has no output chunk). Sizes are 32-bit:
 * the protocol bounds a packet at 256 MB.
 */
struct conn {
    struct conn_pool *pool;
    struct transport *t;
    struct conn *prev; /* pool->all */
    struct conn *next;
    struct conn *dirty_next;  /* pool->dirty: output to flush at iteration end */
    struct conn *close_next;  /* pool->closing */
    struct conn *resume_next; /* pool->resumed */
    uint8_t *in;              /* bytes of an incomplete packet (or waiting while paused) */
    /* One at a time: the CONNECT timeout (an outgoing conn's wait for the CONNACK) until
     * conn_set_keepalive, keepalive after it, the linger once closed. */
    struct timer *timer;
    void *data;
    char *name;
    struct outq out;
    uint64_t last_rx;
    int fd;
    int listener;
    int reason;
    uint32_t in_len;
    uint32_t in_cap;
    uint32_t accounted;    /* in_cap as counted in pool->preconnect_bytes (0 once connected) */
    uint32_t skip;         /* bytes of an oversize PUBLISH still to discard as they arrive */
    uint32_t over_size;    /* with over: its size, remaining length or payload bytes */
    uint32_t keepalive_ms; /* 1.5 x keepalive, 0: none */
    uint8_t events;        /* interest registered with the loop */
    uint8_t over;          /* enum conn_over: with -MQTT_ETOOLARGE, what was over the limit */
    bool dirty : 1;
    bool handshaking : 1;
    bool outgoing : 1;   /* a bridge's connection to its remote: we are the client (conn.h) */
    bool opened : 1;     /* on_open succeeded: on_close is due */
    bool connected : 1;  /* CONNECT accepted */
    bool got_packet : 1; /* a first packet arrived */
    bool closing : 1;
    bool lingering : 1;     /* on_close done; only writing what is left */
    bool reason_mqtt : 1;   /* reason is a codec code (the decoder failed) */
    bool by_peer : 1;       /* the read failed or saw EOF: the peer went away */
    bool shutdown : 1;      /* closed by conn_pool_close_all */
    bool paused : 1;        /* conn_pause_input: no decoding, no reading */
    bool resume_queued : 1; /* on pool->resumed */
    char peer[];            /* "addr:port", at most CONN_PEER_MAX - 1 bytes, NUL-terminated */
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
