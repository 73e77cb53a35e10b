/*
 * loadgen_internal.h — what loadconn.c (one connection: the MQTT client, sequence tracking) and
 * loadgen.c (one run: the closed loop, pacing, measuring) share, the functions named load__verb.
 * Not for other programs.
 */
#ifndef CAIRN_LOADGEN_INTERNAL_H
#define CAIRN_LOADGEN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loadgen.h"

#define LOAD_IN_CAP     (512u * 1024u) /* one read: thousands of small PUBLISHes */
#define LOAD_OUT_SOFT   (256u * 1024u) /* a publisher encodes no more while this much is unsent */
#define LOAD_TRACK      65536u         /* sequence numbers told apart per (subscriber, publisher) */
#define LOAD_PUB_FLIGHT 30000u         /* unacknowledged QoS 1/2 publishes, of 65535 packet ids */

enum load_state { LOAD_CONNECTING, LOAD_CONNACK, LOAD_SUBACK, LOAD_READY };

/*
 * What one subscriber saw of one publisher. seen[] is a ring over the last LOAD_TRACK sequence
 * numbers below hi, enough to tell a duplicate from a late arrival: the closed loop keeps at most
 * a window (1000) in flight, so nothing legitimately arrives LOAD_TRACK late.
 */
struct load_track {
    uint32_t hi;       /* highest sequence number seen + 1 */
    uint32_t floor;    /* the closed loop counts everything below as settled (after a stall) */
    uint64_t distinct; /* sequence numbers seen at least once */
    uint64_t seen[LOAD_TRACK / 64];
};

struct load_conn {
    int fd;
    bool sub;
    int index;
    enum load_state state;
    bool pollout; /* EPOLLOUT is in the interest set */
    uint8_t *in;
    size_t in_len;
    uint8_t *out;
    size_t out_off, out_len, out_cap;
    char id[48];
    /* publisher */
    uint32_t seq;      /* messages written = the next sequence number */
    uint32_t inflight; /* QoS 1/2 not yet acknowledged (PUBACK / PUBCOMP) */
    uint16_t next_id;  /* where the search for a free packet id starts */
    uint8_t *id_state; /* per packet id: 0 free, 1 awaiting PUBACK/PUBREC, 2 awaiting PUBCOMP */
    /* subscriber */
    struct load_track *track; /* one per publisher */
    uint64_t dup, reordered;
};

struct load_ctx {
    const struct load_spec *spec;
    struct load_result *res;
    int ep;
    int tfd; /* rate mode: the pacing timer */
    struct load_conn *pubs, *subs;
    char topic[48];
    uint8_t *tmpl; /* one whole PUBLISH; copied and patched per message */
    size_t tmpl_len, pid_off, pay_off;
    uint64_t delivered;
    bool progress; /* a delivery since the loop last looked */
    double last_progress;
    double stall_at; /* when the last stall was counted */
    bool measuring;
    uint32_t *lat; /* rate mode: latencies in ns, measured window only */
    size_t nlat, lat_cap;
    unsigned rr; /* which publisher goes first in the next fill */
};

/* CLOCK_MONOTONIC in nanoseconds (the payload's time stamp). */
uint64_t load__ns(void);
/* Record the run's first failure (later ones are consequences). */
void load__fail(struct load_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write what c has pending; EPOLLOUT stays wanted while some is left. -1 on a failure. */
int load__flush(struct load_ctx *x, struct load_conn *c);
/* c's socket became writable while connecting: send CONNECT. */
void load__connected(struct load_ctx *x, struct load_conn *c);
/* c is readable: read once, handle every whole packet, write the acks they call for. */
void load__read(struct load_ctx *x, struct load_conn *c);
/*
 * Encode up to n messages for publisher c stamped ts (0: each with its own time) and write
 * them; fewer when its unsent bytes or unacknowledged packet ids run out. Returns how many.
 */
long load__publish(struct load_ctx *x, struct load_conn *c, long n, uint64_t ts);

#endif
