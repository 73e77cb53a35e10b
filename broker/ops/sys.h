/*
 * sys.h — the $SYS topics: every sys_interval seconds (0: never) the broker publishes,
 * retained like Mosquitto, $SYS/broker/version, uptime, clients/connected, clients/disconnected,
 * clients/total, messages/received, messages/sent, publish/bytes/received, publish/bytes/sent,
 * store/messages/count, store/messages/bytes, subscriptions/count, retained messages/count,
 * load/bytes/received and load/bytes/sent — every figure from one metrics snapshot (metrics.h),
 * the one GET /metrics renders. They are routed like any message but never written to the
 * store. A timer on the loop (loop_timer_add, re-armed each time) drives it.
 *
 * $SYS belongs to the broker: no client may write there (PUBLISH or will), whatever the ACL,
 * as in Mosquitto — a retained "$SYS/broker/version" from a client would be believed by
 * every subscriber — but for a bridge's state (sys_bridge_state), as in Mosquitto.
 *
 * Bridges (bridge.h): $SYS/broker/bridge/NAME/state (connected, connecting, waiting, stopped),
 * /queued, /inflight, /dropped, /connects and /last_error, from the same snapshot.
 *
 * log_dest topic (Mosquitto's): each log line but debug ones is published, not retained, at
 * QoS 2 as Mosquitto does, on $SYS/broker/log/E, /W, /N or /I by its level, the line as the log
 * file has it. A line can be logged in the middle of routing, so lines wait in a bounded list
 * (the loop is kicked) and are published at the start of the next iteration end, where their
 * deliveries join that iteration's batch; past the bound they are counted and dropped.
 */
#ifndef CAIRN_SYS_H
#define CAIRN_SYS_H

#include <stdbool.h>

#include "mqtt.h"

struct broker;

/* Is topic "$SYS" or under "$SYS/"? */
bool sys_topic(struct mqtt_str topic);
/*
 * Is topic a bridge's state, $SYS/broker/connection/NAME/state? The one place under $SYS a client
 * may publish (its will too), as in Mosquitto: where a remote broker's bridge reports its link
 * (bridge.h notifications). The ACL still applies.
 */
bool sys_bridge_state(struct mqtt_str topic);

/* Publish once now and arm the timer (nothing when sys_interval is 0). 0 or -ENOMEM. */
int sys_start(struct broker *b);
/* Cancel the timer. */
void sys_stop(struct broker *b);
/* Publish every $SYS topic now. */
void sys_publish(struct broker *b);

/* Take log lines for log_dest topic (log_set_sink) / stop taking them and drop those waiting. */
void sys_log_start(struct broker *b);
void sys_log_stop(struct broker *b);
/* Publish the lines waiting (broker_on_iteration_end). */
void sys_log_flush(struct broker *b);

#endif
