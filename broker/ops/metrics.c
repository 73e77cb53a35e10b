/*
 * metrics.c — the counters, the snapshot and its Prometheus text (metrics.h).
 */
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bridge.h"
#include "client.h"
#include "conn.h"
#include "loop.h"

struct metrics metrics_g;

static const double metrics_bounds[METRICS_COMMIT_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};

void metrics_commit(double seconds, int ok)
{
    size_t i = 0;

    while (i < METRICS_COMMIT_BUCKETS && seconds > metrics_bounds[i])
        i++;
    metrics_g.commit_hist[i]++;
    metrics_g.commit_seconds += seconds;
    metrics_g.commits++;
    if (!ok)
        metrics_g.commit_failures++;
}

/* ---- the snapshot ------------------------------------------------------------------------- */

static int metrics_session(void *ctx, struct session *s)
{
    struct metrics_snapshot *m = ctx;

    if (s->owner)
        m->sessions_online++;
    else
        m->sessions_offline++;
    m->queued_msgs += s->q_count;
    m->queued_bytes += s->q_bytes;
    m->inflight += s->inflight.n;
    return 0;
}

/* The files of the store directory (LevelDB keeps no subdirectories). */
static uint64_t metrics_dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    uint64_t sum = 0;

    if (!d)
        return 0;
    while ((e = readdir(d))) {
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
            sum += (uint64_t)st.st_size;
    }
    closedir(d);
    return sum;
}

void metrics_collect(struct broker *b, struct metrics_snapshot *s)
{
    const struct conn_stats *cs = conn_stats();

    memset(s, 0, sizeof(*s));
    s->c = metrics_g;
    s->uptime_s = (loop_now_ms(b->loop) - b->start_ms) / 1000u;
    s->conn_open = cs->connections_open;
    s->conn_accepted = cs->connections_accepted;
    s->conn_refused = cs->connections_refused;
    s->net_bytes_in = cs->bytes_received;
    s->net_bytes_out = cs->bytes_sent;
    s->packets_in = cs->packets_received;
    session_table_each(b->sessions, metrics_session, s);
    s->subscriptions = route_count(&b->route);
    s->retained = retain_count(&b->retain);
    s->store_bytes = b->store ? metrics_dir_bytes(persist_path(b->store)) : 0;
    s->n_bridges = bridge_set_count(b->bridges);
    if (s->n_bridges && !(s->bridges = calloc(s->n_bridges, sizeof(*s->bridges))))
        s->n_bridges = 0; /* out of memory: the bridges' figures are left out this time */
    for (size_t i = 0; i < s->n_bridges; i++)
        bridge_set_stats(b->bridges, i, &s->bridges[i]);
}

void metrics_snapshot_cleanup(struct metrics_snapshot *s)
{
    free(s->bridges);
    s->bridges = NULL;
    s->n_bridges = 0;
}

/* ---- Prometheus text ---------------------------------------------------------------------- */

struct metrics_out {
    char *buf;
    size_t len;
    size_t cap;
    int err;
};

static void metrics_printf(struct metrics_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void metrics_printf(struct metrics_out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->err)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->err = -EINVAL;
            return;
        }
        if ((size_t)n < o->cap - o->len)
            break;
        char *b = realloc(o->buf, o->cap * 2 + (size_t)n);
        if (!b) {
            o->err = -ENOMEM;
            return;
        }
        o->buf = b;
        o->cap = o->cap * 2 + (size_t)n;
    }
    o->len += (size_t)n;
}

/* A family without labels: HELP, TYPE and its one sample. */
static void metrics_one(struct metrics_out *o, const char *name, const char *type, const char *help,
                        unsigned long long v)
{
    metrics_printf(o, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, v);
}

static void metrics_head(struct metrics_out *o, const char *name, const char *type,
                         const char *help)
{
    metrics_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_by_qos(struct metrics_out *o, const char *name, const char *help,
                           const uint64_t v[3])
{
    metrics_head(o, name, "counter", help);
    for (int q = 0; q < 3; q++)
        metrics_printf(o, "%s{qos=\"%d\"} %llu\n", name, q, (unsigned long long)v[q]);
}

static void metrics_histogram(struct metrics_out *o, const struct metrics *c)
{
    const char *n = "cairn_store_commit_duration_seconds";
    uint64_t cum = 0;

    metrics_head(o, n, "histogram", "Time to write one batch to the store (fsync included).");
    for (int i = 0; i < METRICS_COMMIT_BUCKETS; i++) {
        cum += c->commit_hist[i];
        metrics_printf(o, "%s_bucket{le=\"%g\"} %llu\n", n, metrics_bounds[i],
                       (unsigned long long)cum);
    }
    cum += c->commit_hist[METRICS_COMMIT_BUCKETS];
    metrics_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9f\n%s_count %llu\n", n,
                   (unsigned long long)cum, n, c->commit_seconds, n, (unsigned long long)cum);
}

/* A label value as the text format wants it: backslash, quote and newline escaped. */
static void metrics_label(struct metrics_out *o, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            metrics_printf(o, "\\%c", *v);
        else if (*v == '\n')
            metrics_printf(o, "\\n");
        else
            metrics_printf(o, "%c", *v);
    }
}

/* One sample per bridge of a family, v picking the figure. */
static void metrics_bridges(struct metrics_out *o, const struct metrics_snapshot *s,
                            const char *name, const char *type, const char *help,
                            uint64_t (*v)(const struct bridge_stats *))
{
    metrics_head(o, name, type, help);
    for (size_t i = 0; i < s->n_bridges; i++) {
        metrics_printf(o, "%s{bridge=\"", name);
        metrics_label(o, s->bridges[i].name);
        metrics_printf(o, "\"} %llu\n", (unsigned long long)v(&s->bridges[i]));
    }
}

static uint64_t mb_up(const struct bridge_stats *b)
{
    return strcmp(b->state, "connected") == 0;
}
static uint64_t mb_queued(const struct bridge_stats *b)
{
    return b->queued;
}
static uint64_t mb_queued_bytes(const struct bridge_stats *b)
{
    return b->queued_bytes;
}
static uint64_t mb_inflight(const struct bridge_stats *b)
{
    return b->inflight;
}
static uint64_t mb_dropped(const struct bridge_stats *b)
{
    return b->dropped;
}
static uint64_t mb_connects(const struct bridge_stats *b)
{
    return b->connects;
}
static uint64_t mb_sent(const struct bridge_stats *b)
{
    return b->sent;
}
static uint64_t mb_received(const struct bridge_stats *b)
{
    return b->received;
}

static void metrics_render_bridges(struct metrics_out *o, const struct metrics_snapshot *s)
{
    if (s->n_bridges == 0)
        return;
    metrics_head(o, "cairn_bridge_info", "gauge",
                 "Each bridge: its state, the remote in use and its last error.");
    for (size_t i = 0; i < s->n_bridges; i++) {
        const struct bridge_stats *b = &s->bridges[i];
        metrics_printf(o, "cairn_bridge_info{bridge=\"");
        metrics_label(o, b->name);
        metrics_printf(o, "\",state=\"%s\",remote=\"", b->state);
        metrics_label(o, b->remote);
        metrics_printf(o, "\",last_error=\"");
        metrics_label(o, b->last_error);
        metrics_printf(o, "\"} 1\n");
    }
    metrics_bridges(o, s, "cairn_bridge_up", "gauge", "1 while the bridge's link is up.", mb_up);
    metrics_bridges(o, s, "cairn_bridge_queued_messages", "gauge",
                    "Messages waiting for the bridge's remote (memory and store).", mb_queued);
    metrics_bridges(o, s, "cairn_bridge_queued_bytes", "gauge",
                    "Payload bytes of the messages waiting for the remote.", mb_queued_bytes);
    metrics_bridges(o, s, "cairn_bridge_inflight_messages", "gauge",
                    "Messages sent to the remote and not yet acknowledged.", mb_inflight);
    metrics_bridges(o, s, "cairn_bridge_dropped_messages_total", "counter",
                    "Messages not forwarded (queue limits, bridge_max_packet_size).", mb_dropped);
    metrics_bridges(o, s, "cairn_bridge_connects_total", "counter", "Links the remote accepted.",
                    mb_connects);
    metrics_bridges(o, s, "cairn_bridge_messages_sent_total", "counter",
                    "PUBLISH packets sent to the remote (resends included).", mb_sent);
    metrics_bridges(o, s, "cairn_bridge_messages_received_total", "counter",
                    "PUBLISH packets received from the remote.", mb_received);
}

int metrics_render(const struct metrics_snapshot *s, char **out, size_t *len)
{
    static const char *const reasons[METRICS_DROP_N] = {
        "queue_full", "slow_subscriber", "offline_qos0", "too_large", "denied", "sys_topic"};
    const struct metrics *c = &s->c;
    struct metrics_out o = {.cap = 8192};
    typedef unsigned long long ull;

    o.buf = malloc(o.cap);
    if (!o.buf)
        return -ENOMEM;
    metrics_printf(&o,
                   "# HELP cairn_build_info Cairn's version.\n# TYPE cairn_build_info gauge\n"
                   "cairn_build_info{version=\"%s\"} 1\n",
                   CAIRN_VERSION);
    metrics_one(&o, "cairn_uptime_seconds", "gauge", "Seconds since the broker started.",
                s->uptime_s);
    metrics_one(&o, "cairn_connections_open", "gauge", "MQTT connections open now.", s->conn_open);
    metrics_one(&o, "cairn_connections_accepted_total", "counter",
                "MQTT connections accepted (WebSocket ones once upgraded).", s->conn_accepted);
    metrics_one(&o, "cairn_connections_refused_total", "counter",
                "Connections turned away (max_connections, descriptors, memory).", s->conn_refused);
    metrics_one(&o, "cairn_network_received_bytes_total", "counter",
                "MQTT bytes read from clients (TLS and WebSocket framing excluded).",
                s->net_bytes_in);
    metrics_one(&o, "cairn_network_sent_bytes_total", "counter",
                "MQTT bytes written to clients (TLS and WebSocket framing excluded).",
                s->net_bytes_out);
    metrics_one(&o, "cairn_packets_received_total", "counter", "MQTT packets received.",
                s->packets_in);
    metrics_by_qos(&o, "cairn_messages_received_total", "PUBLISH packets received, by QoS.",
                   c->msgs_in);
    metrics_by_qos(&o, "cairn_messages_received_bytes_total",
                   "Payload bytes of PUBLISH packets received, by QoS.", c->bytes_in);
    metrics_by_qos(&o, "cairn_messages_sent_total", "PUBLISH packets sent, by QoS.", c->msgs_out);
    metrics_by_qos(&o, "cairn_messages_sent_bytes_total",
                   "Payload bytes of PUBLISH packets sent, by QoS.", c->bytes_out);
    metrics_head(&o, "cairn_messages_dropped_total", "counter",
                 "Messages not delivered to a subscriber (or anyone), by reason.");
    for (int i = 0; i < METRICS_DROP_N; i++)
        metrics_printf(&o, "cairn_messages_dropped_total{reason=\"%s\"} %llu\n", reasons[i],
                       (ull)c->dropped[i]);
    metrics_one(&o, "cairn_retained_messages", "gauge", "Retained messages.", s->retained);
    metrics_one(&o, "cairn_subscriptions", "gauge", "Subscriptions of every session.",
                s->subscriptions);
    metrics_head(&o, "cairn_sessions", "gauge", "Sessions, online (client connected) or offline.");
    metrics_printf(
        &o, "cairn_sessions{state=\"online\"} %llu\ncairn_sessions{state=\"offline\"} %llu\n",
        (ull)s->sessions_online, (ull)s->sessions_offline);
    metrics_one(&o, "cairn_queued_messages", "gauge",
                "Messages queued for sessions (memory and store), not yet in flight.",
                s->queued_msgs);
    metrics_one(&o, "cairn_queued_bytes", "gauge", "Payload bytes of the queued messages.",
                s->queued_bytes);
    metrics_one(&o, "cairn_inflight_messages", "gauge", "Messages sent and not yet acknowledged.",
                s->inflight);
    metrics_one(&o, "cairn_store_commits_total", "counter", "Batches written to the store.",
                c->commits);
    metrics_one(&o, "cairn_store_commit_failures_total", "counter",
                "Batches the store failed to write (nothing they held was acknowledged).",
                c->commit_failures);
    metrics_histogram(&o, c);
    metrics_one(&o, "cairn_store_size_bytes", "gauge", "Size of the store's files.",
                s->store_bytes);
    metrics_one(&o, "cairn_tls_handshakes_total", "counter", "TLS handshakes completed.",
                c->tls_handshakes);
    metrics_one(&o, "cairn_tls_handshake_failures_total", "counter",
                "TLS handshakes that failed (or that the peer abandoned).", c->tls_failures);
    metrics_one(&o, "cairn_websocket_upgrades_total", "counter", "WebSocket connections opened.",
                c->ws_upgrades);
    metrics_one(&o, "cairn_websocket_upgrade_failures_total", "counter",
                "WebSocket upgrade requests refused (HTTP 400, 426).", c->ws_refused);
    metrics_one(&o, "cairn_http_requests_total", "counter",
                "Plain HTTP requests answered (static files, /metrics).", c->http_requests);
    metrics_render_bridges(&o, s);
    if (o.err) {
        free(o.buf);
        return o.err;
    }
    *out = o.buf;
    *len = o.len;
    return 0;
}

int metrics_render_broker(void *broker, char **out, size_t *len)
{
    struct metrics_snapshot s;

    int rc;

    metrics_collect(broker, &s);
    rc = metrics_render(&s, out, len);
    metrics_snapshot_cleanup(&s);
    return rc;
}
