/*
 * metrics.h — the broker's figures, in one place: counters bumped where things happen, and a
 * snapshot that adds the gauges read from the broker's state. $SYS (sys.c) and the Prometheus
 * endpoint (a "protocol http_metrics" listener, httpd.c) both read a snapshot, so they can
 * never disagree.
 *
 * Counters are process-wide and written on the loop thread only (as conn_stats); they count
 * from the start of the process. Bytes of messages are payload bytes; bytes on the network
 * are conn_stats' (every byte read or written by MQTT connections, frames and TLS excluded).
 *
 * The Prometheus text (format 0.0.4): every family has HELP and TYPE; counters end in _total,
 * units are base units (seconds, bytes); labels: qos, reason, state, le, and bridge (with
 * remote and last_error on cairn_bridge_info) for the bridges' families.
 */
#ifndef CAIRN_METRICS_H
#define CAIRN_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct bridge_stats;
struct broker;

/* Why a message did not reach a subscriber (or anyone). */
enum metrics_drop {
    METRICS_DROP_QUEUE_FULL,      /* max_queued_messages / max_queued_bytes */
    METRICS_DROP_SLOW_SUBSCRIBER, /* QoS 0 to a client not reading its output */
    METRICS_DROP_OFFLINE_QOS0,    /* QoS 0 to an offline session (queue_qos0_messages false) */
    METRICS_DROP_TOO_LARGE,       /* PUBLISH over message_size_limit (acknowledged, dropped) */
    METRICS_DROP_DENIED,          /* PUBLISH the ACL does not allow (acknowledged) */
    METRICS_DROP_SYS,             /* client PUBLISH to $SYS (acknowledged) */
    METRICS_DROP_N
};

/* Upper bounds (seconds) of the store commit latency histogram; +Inf follows. */
#define METRICS_COMMIT_BUCKETS 12

struct metrics {
    uint64_t msgs_in[3]; /* PUBLISH packets received, by QoS */
    uint64_t bytes_in[3];
    uint64_t msgs_out[3]; /* PUBLISH packets sent, by QoS (resends included) */
    uint64_t bytes_out[3];
    uint64_t dropped[METRICS_DROP_N];
    uint64_t commits;
    uint64_t commit_failures;
    uint64_t commit_hist[METRICS_COMMIT_BUCKETS + 1]; /* per bucket, not cumulative */
    double commit_seconds;                            /* sum */
    uint64_t tls_handshakes;                          /* completed */
    uint64_t tls_failures;                            /* failed, peer gone mid-handshake included */
    uint64_t ws_upgrades;                             /* WebSocket connections opened */
    uint64_t ws_refused;                              /* upgrade requests answered with an error */
    uint64_t http_requests; /* other HTTP requests (static files, /metrics) */
};

/* The counters (the loop thread writes them through the helpers below). */
extern struct metrics metrics_g;

static inline void metrics_msg_in(uint8_t qos, size_t payload)
{
    metrics_g.msgs_in[qos > 2 ? 2 : qos]++;
    metrics_g.bytes_in[qos > 2 ? 2 : qos] += payload;
}

static inline void metrics_msg_out(uint8_t qos, size_t payload)
{
    metrics_g.msgs_out[qos > 2 ? 2 : qos]++;
    metrics_g.bytes_out[qos > 2 ? 2 : qos] += payload;
}

static inline void metrics_drop(enum metrics_drop why)
{
    metrics_g.dropped[why]++;
}

/* One store commit that took seconds; ok false when it failed. */
void metrics_commit(double seconds, int ok);

/* Everything at one moment: the counters, conn_stats, and gauges from the broker. */
struct metrics_snapshot {
    struct metrics c;
    uint64_t uptime_s;
    uint64_t conn_open;
    uint64_t conn_accepted;
    uint64_t conn_refused;
    uint64_t net_bytes_in;
    uint64_t net_bytes_out;
    uint64_t packets_in;
    uint64_t sessions_online;  /* sessions with a connected client */
    uint64_t sessions_offline; /* persistent sessions waiting for their client */
    uint64_t subscriptions;
    uint64_t retained;
    uint64_t queued_msgs; /* in every session's queue, in memory and on disk (not in flight) */
    uint64_t queued_bytes;
    uint64_t inflight;            /* sent and not yet acknowledged */
    uint64_t store_bytes;         /* files of the store; 0 with persistence false */
    struct bridge_stats *bridges; /* one per bridge (bridge.h), owned; NULL when none */
    size_t n_bridges;
};

/* Fill s (walks the sessions once; stats the store's files; copies each bridge's figures).
 * metrics_snapshot_cleanup frees what it holds. */
void metrics_collect(struct broker *b, struct metrics_snapshot *s);
void metrics_snapshot_cleanup(struct metrics_snapshot *s);

/* The Prometheus text of s into a malloc'd buffer (caller frees) with its length. 0 or
 * -ENOMEM. */
int metrics_render(const struct metrics_snapshot *s, char **out, size_t *len);

/* collect + render for the broker arg (a struct broker *): httpd_set_metrics's callback. */
int metrics_render_broker(void *broker, char **out, size_t *len);

#endif
