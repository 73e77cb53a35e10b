/*
 * loadgen.h — Cairn's MQTT load generator, the engine of bench_load: one thread drives every
 * connection of a run through one epoll set (non-blocking raw sockets, its own small MQTT
 * client on the mqtt/ codec). Every payload starts with the publisher's index, a sequence
 * number and the time it was written, so each subscriber counts what it lost, got twice or got
 * out of order, and a rate-paced run measures latency.
 *
 * Payload layout (host byte order; the load tool reads what it wrote): bytes 0-3 publisher
 * index, 4-7 sequence number, 8-15 CLOCK_MONOTONIC nanoseconds; the rest is filler.
 */
#ifndef CAIRN_LOADGEN_H
#define CAIRN_LOADGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "loadbroker.h"

#define LOAD_MIN_PAYLOAD 16
#define LOAD_MAX_PAYLOAD 65536
#define LOAD_MAX_PUBS    256
#define LOAD_MAX_SUBS    4096

struct load_spec {
    int port;         /* the broker, on 127.0.0.1 */
    pid_t broker_pid; /* for its CPU time over the measured window */
    int npub;         /* publishers, all on one topic */
    int nsub;         /* subscribers to that topic */
    int qos;          /* of every PUBLISH and SUBSCRIBE */
    size_t payload;   /* bytes, LOAD_MIN_PAYLOAD.. */
    bool persistent;  /* subscribers have clean session 0 (their sessions are removed after) */
    int window;       /* closed loop: messages outstanding per subscriber */
    double rate;      /* > 0: open loop instead, this many messages/s in all, latency measured */
    double warmup;    /* seconds of load before the measured window */
    double seconds;   /* the measured window */
};

struct load_result {
    char err[160];         /* empty when the run completed */
    double msgs;           /* deliveries per second, all subscribers, over the window */
    uint64_t published;    /* messages the publishers wrote in the whole run */
    uint64_t expected;     /* deliveries they called for (published x subscribers) */
    uint64_t lost;         /* of those, never delivered (after a drain) */
    uint64_t dup;          /* delivered again */
    uint64_t reordered;    /* delivered after a later one of the same publisher */
    uint64_t stalls;       /* full window, no delivery for 0.25 s (QoS 0: written off, the
                              broker may have dropped it) */
    double max_gap;        /* s: the longest time without a delivery in the run */
    struct load_usage cpu; /* over the measured window */
    double p50_us, p99_us; /* rate mode: delivery latency */
    uint64_t samples;      /* rate mode: latencies measured */
};

/* One run of spec against a running broker. 0, or -1 with res->err set. */
int load_run(const struct load_spec *spec, struct load_result *res);

struct load_idle_result {
    char err[160];     /* why fewer than asked were reached, or empty */
    int reached;       /* connections that got CONNACK and were open at the measurement */
    long rss_before;   /* broker VmRSS, KiB */
    long rss_with;     /* broker VmRSS with them connected, KiB */
    double kib_each;   /* (rss_with - rss_before) / reached */
    double conn_per_s; /* how fast they were established */
};

/*
 * Open n idle MQTT connections (clean session, keepalive 0) to 127.0.0.1:port and measure the
 * broker's resident memory with them. Past ~28,000 connections the source address moves on to
 * 127.0.0.2, .3, ... (each has its own ephemeral port range). The caller raises RLIMIT_NOFILE
 * (and has done so before starting the broker). 0 when all n were reached, else -1.
 */
int load_idle(int port, pid_t broker_pid, int n, struct load_idle_result *res);

#endif
