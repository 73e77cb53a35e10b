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
 * every subscriber.
 */
#ifndef CAIRN_SYS_H
#define CAIRN_SYS_H

#include <stdbool.h>

#include "mqtt.h"

struct broker;

/* Is topic "$SYS" or under "$SYS/"? */
bool sys_topic(struct mqtt_str topic);

/* Publish once now and arm the timer (nothing when sys_interval is 0). 0 or -ENOMEM. */
int sys_start(struct broker *b);
/* Cancel the timer. */
void sys_stop(struct broker *b);
/* Publish every $SYS topic now. */
void sys_publish(struct broker *b);

#endif
