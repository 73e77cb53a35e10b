/*
 * sys.c — $SYS publication (sys.h).
 */
#include "sys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "client.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"

bool sys_topic(struct mqtt_str topic)
{
    return topic.len >= 4 && memcmp(topic.p, "$SYS", 4) == 0 &&
           (topic.len == 4 || topic.p[4] == '/');
}

bool sys_bridge_state(struct mqtt_str t)
{
    static const char pre[] = "$SYS/broker/connection/", post[] = "/state";
    size_t np = sizeof(pre) - 1, ns = sizeof(post) - 1;

    return t.len > np + ns && memcmp(t.p, pre, np) == 0 &&
           memcmp(t.p + t.len - ns, post, ns) == 0 && !memchr(t.p + np, '/', t.len - np - ns);
}

#define SYS_LOG_MAX 512 /* log lines waiting to be published; more are dropped (counted) */

struct sys_log_line {
    int level;
    size_t len;
    char *text;
};

/* One broker per process, as the log itself. */
static struct {
    struct broker *b;
    struct sys_log_line v[SYS_LOG_MAX];
    size_t n;
    uint64_t dropped;
} sys_log;

static void sys__put(struct broker *b, const char *topic, unsigned long long v, const char *unit)
{
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "%llu%s", v, unit);
    struct mqtt_str t = {(const uint8_t *)topic, strlen(topic)};
    struct mqtt_str p = {(const uint8_t *)buf, n > 0 ? (size_t)n : 0};

    broker_publish(b, t, p, 0, true, false);
}

static void sys__put_str(struct broker *b, const char *topic, const char *v)
{
    struct mqtt_str t = {(const uint8_t *)topic, strlen(topic)};
    struct mqtt_str p = {(const uint8_t *)v, strlen(v)};

    broker_publish(b, t, p, 0, true, false);
}

/* $SYS/broker/bridge/NAME/...: what sys.h lists, per bridge. */
static void sys__bridges(struct broker *b, const struct metrics_snapshot *m)
{
    for (size_t i = 0; i < m->n_bridges; i++) {
        const struct bridge_stats *s = &m->bridges[i];
        char t[600];
        int n = snprintf(t, sizeof(t), "$SYS/broker/bridge/%s/", s->name);

        if (n < 0 || (size_t)n + 16 >= sizeof(t))
            continue;
        strcpy(t + n, "state");
        sys__put_str(b, t, s->state);
        strcpy(t + n, "last_error");
        sys__put_str(b, t, s->last_error);
        strcpy(t + n, "queued");
        sys__put(b, t, (unsigned long long)s->queued, "");
        strcpy(t + n, "inflight");
        sys__put(b, t, (unsigned long long)s->inflight, "");
        strcpy(t + n, "dropped");
        sys__put(b, t, (unsigned long long)s->dropped, "");
        strcpy(t + n, "connects");
        sys__put(b, t, (unsigned long long)s->connects, "");
    }
}

/* Every figure comes from the same snapshot /metrics renders (metrics.h). */
void sys_publish(struct broker *b)
{
    struct metrics_snapshot m;
    struct mqtt_str vt = {(const uint8_t *)"$SYS/broker/version", 19};
    const char *ver = "cairn version " CAIRN_VERSION;
    struct mqtt_str vp = {(const uint8_t *)ver, strlen(ver)};
    const struct metrics *c = &m.c;
    typedef unsigned long long ull;

    metrics_collect(b, &m);
    broker_publish(b, vt, vp, 0, true, false);
    sys__put(b, "$SYS/broker/uptime", (ull)m.uptime_s, " seconds");
    sys__put(b, "$SYS/broker/clients/connected", (ull)m.sessions_online, "");
    sys__put(b, "$SYS/broker/clients/disconnected", (ull)m.sessions_offline, "");
    sys__put(b, "$SYS/broker/clients/total", (ull)(m.sessions_online + m.sessions_offline), "");
    sys__put(b, "$SYS/broker/messages/received",
             (ull)(c->msgs_in[0] + c->msgs_in[1] + c->msgs_in[2]), "");
    sys__put(b, "$SYS/broker/messages/sent",
             (ull)(c->msgs_out[0] + c->msgs_out[1] + c->msgs_out[2]), "");
    {
        uint64_t dropped = 0;
        for (int i = 0; i < METRICS_DROP_N; i++)
            dropped += c->dropped[i];
        sys__put(b, "$SYS/broker/messages/dropped", (ull)dropped, "");
        sys__put(b, "$SYS/broker/messages/dropped/oversize",
                 (ull)c->dropped[METRICS_DROP_TOO_LARGE], "");
    }
    sys__put(b, "$SYS/broker/publish/bytes/received",
             (ull)(c->bytes_in[0] + c->bytes_in[1] + c->bytes_in[2]), "");
    sys__put(b, "$SYS/broker/publish/bytes/sent",
             (ull)(c->bytes_out[0] + c->bytes_out[1] + c->bytes_out[2]), "");
    sys__put(b, "$SYS/broker/store/messages/count", (ull)m.queued_msgs, "");
    sys__put(b, "$SYS/broker/store/messages/bytes", (ull)m.queued_bytes, "");
    sys__put(b, "$SYS/broker/subscriptions/count", (ull)m.subscriptions, "");
    sys__put(b, "$SYS/broker/retained messages/count", (ull)m.retained, "");
    sys__put(b, "$SYS/broker/load/bytes/received", (ull)m.net_bytes_in, "");
    sys__put(b, "$SYS/broker/load/bytes/sent", (ull)m.net_bytes_out, "");
    sys__bridges(b, &m);
    metrics_snapshot_cleanup(&m);
}

static void sys__tick(void *arg)
{
    struct broker *b = arg;

    b->sys_timer = NULL;
    sys_publish(b);
    if (b->cfg->sys_interval)
        b->sys_timer =
            loop_timer_add(b->loop, (uint64_t)b->cfg->sys_interval * 1000u, sys__tick, b);
}

int sys_start(struct broker *b)
{
    int rc = 0;

    if (!b->cfg->sys_interval || b->sys_timer)
        goto out;
    b->sys_timer = loop_timer_add(b->loop, 0, sys__tick, b);
    if (!b->sys_timer)
        rc = -ENOMEM;
out:
    return rc;
}

void sys_stop(struct broker *b)
{
    if (b->sys_timer) {
        loop_timer_cancel(b->loop, b->sys_timer);
        b->sys_timer = NULL;
    }
}

/* ---- log_dest topic ------------------------------------------------------------------------ */

/* The log's sink: keep a copy (nothing here may log). */
static void sys__log_sink(void *arg, int level, const char *line, size_t len)
{
    struct sys_log_line *l = &sys_log.v[sys_log.n];

    if (sys_log.n == SYS_LOG_MAX || !(l->text = malloc(len))) {
        sys_log.dropped++;
        return;
    }
    memcpy(l->text, line, len);
    l->len = len;
    l->level = level;
    sys_log.n++;
    broker__kick(arg);
}

static void sys__log_clear(void)
{
    for (size_t i = 0; i < sys_log.n; i++)
        free(sys_log.v[i].text);
    sys_log.n = 0;
}

void sys_log_start(struct broker *b)
{
    sys_log.b = b;
    log_set_sink(sys__log_sink, b);
}

void sys_log_stop(struct broker *b)
{
    if (sys_log.b != b)
        return;
    log_set_sink(NULL, NULL);
    sys__log_clear();
    sys_log.b = NULL;
}

void sys_log_flush(struct broker *b)
{
    static const char *const topics[] = {"$SYS/broker/log/E", "$SYS/broker/log/W",
                                         "$SYS/broker/log/N", "$SYS/broker/log/I"};
    struct sys_log_line v[SYS_LOG_MAX];
    size_t n = sys_log.n;

    if (n == 0)
        return;
    /* lines logged while these are published wait for the next flush */
    memcpy(v, sys_log.v, n * sizeof(v[0]));
    sys_log.n = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t = topics[v[i].level < 4 ? v[i].level : 0];
        struct mqtt_str topic = {(const uint8_t *)t, strlen(t)};
        struct mqtt_str payload = {(const uint8_t *)v[i].text, v[i].len};

        if (broker_publish(b, topic, payload, 2, false, false) < 0)
            sys_log.dropped++;
        free(v[i].text);
    }
}
