/*
 * sys.c — $SYS publication (sys.h).
 */
#include "sys.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "config.h"
#include "conn.h"
#include "loop.h"

bool sys_topic(struct mqtt_str topic)
{
    return topic.len >= 4 && memcmp(topic.p, "$SYS", 4) == 0 &&
           (topic.len == 4 || topic.p[4] == '/');
}

static void sys__put(struct broker *b, const char *topic, unsigned long long v, const char *unit)
{
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "%llu%s", v, unit);
    struct mqtt_str t = {(const uint8_t *)topic, strlen(topic)};
    struct mqtt_str p = {(const uint8_t *)buf, n > 0 ? (size_t)n : 0};

    broker_publish(b, t, p, 0, true, false);
}

void sys_publish(struct broker *b)
{
    const struct conn_stats *cs = conn_stats();
    uint64_t up = (loop_now_ms(b->loop) - b->start_ms) / 1000u;
    struct mqtt_str vt = {(const uint8_t *)"$SYS/broker/version", 19};
    const char *ver = "cairn version " CAIRN_VERSION;
    struct mqtt_str vp = {(const uint8_t *)ver, strlen(ver)};

    broker_publish(b, vt, vp, 0, true, false);
    sys__put(b, "$SYS/broker/uptime", (unsigned long long)up, " seconds");
    sys__put(b, "$SYS/broker/clients/connected", (unsigned long long)b->stats.clients_connected,
             "");
    sys__put(b, "$SYS/broker/clients/total", (unsigned long long)session_table_count(b->sessions),
             "");
    sys__put(b, "$SYS/broker/messages/received", (unsigned long long)b->stats.messages_received,
             "");
    sys__put(b, "$SYS/broker/messages/sent", (unsigned long long)b->stats.messages_sent, "");
    sys__put(b, "$SYS/broker/messages/dropped", (unsigned long long)b->stats.messages_dropped, "");
    sys__put(b, "$SYS/broker/messages/dropped/oversize",
             (unsigned long long)b->stats.messages_oversize, "");
    sys__put(b, "$SYS/broker/subscriptions/count", (unsigned long long)route_count(&b->route), "");
    sys__put(b, "$SYS/broker/retained messages/count", (unsigned long long)retain_count(&b->retain),
             "");
    sys__put(b, "$SYS/broker/load/bytes/received",
             (unsigned long long)(cs ? cs->bytes_received : 0), "");
    sys__put(b, "$SYS/broker/load/bytes/sent", (unsigned long long)(cs ? cs->bytes_sent : 0), "");
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
