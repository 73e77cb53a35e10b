/*
 * harness_bridge.h — for the bridge tests (49_bridge, 50_bridge_outage): two brokers, the remote
 * started first (Cairn or Mosquitto, broker_opts.kind) and the local one configured with a
 * bridge block naming the remote's port; waiting for a bridge to be up by its broker's log, and
 * for a bridged topic to be forwarded end to end (the remote side's subscription in place).
 *
 * Templates: "@R" stands for the remote's port (hb_expand).
 */
#ifndef CAIRN_HARNESS_BRIDGE_H
#define CAIRN_HARNESS_BRIDGE_H

#include "harness.h"

#define HB_WAIT_MS 20000

/* tmpl with every "@R" replaced by port, into out (cap bytes, always terminated). */
void hb_expand(char *out, size_t cap, const char *tmpl, int port);
/*
 * Start a broker of kind with the extra config lines tmpl ("@R": remote_port), persistence on
 * (in its temp dir), on port (0: a free one). NULL with a failure recorded.
 */
struct broker *hb_start(enum broker_kind kind, const char *tmpl, int remote_port, int port);
/* How many times needle is in b's log so far. */
int hb_log_count(const struct broker *b, const char *needle);
/* Wait until needle is in b's log at least n times. 0, or -1 (noted) on timeout. */
int hb_wait_log_count(const struct broker *b, const char *needle, int n, int timeout_ms);
/*
 * Publish on pub to topic (QoS 1) every 100 ms until sub receives a message on want (the topic
 * the bridge maps it to), then a last one and wait for it: every probe that arrives does so
 * before that, so sub is clean after. 0, or -1 (noted) when nothing arrives in timeout_ms.
 */
int hb_until_forwarded(MQTTClient pub, const char *topic, MQTTClient sub, const char *want,
                       int timeout_ms);
/* The next message on c, which must be on topic with payload (and qos when qos >= 0):
 * 0, or -1 with a note saying what came instead. */
int hb_expect(MQTTClient c, const char *topic, const char *payload, int qos, int timeout_ms);

#endif
