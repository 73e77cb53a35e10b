/*
 * route.h — the subscription tree: which subscribers want a topic.
 *
 * One node per topic level of the subscribed filters. A node has its literal children in a
 * tree.h index (a scan when few, a hash index when many: O(1) per level), plus at most one
 * '+' child and one '#' child, and the subscriptions whose filter ends at it. Matching a topic
 * walks the tree once: literal child, then '+', at each level; a '#' child matches the rest (and
 * its parent level: "a/#" matches "a" [MQTT-4.7.1-2]). The '$' rule [MQTT-4.7.2-1]: a topic
 * starting with '$' is not matched by a first-level '+' or '#'.
 *
 * A subscriber is an opaque pointer (the broker passes its struct session *); the tree never
 * dereferences it. One subscription per (filter, subscriber): subscribing again replaces the
 * QoS. A match collects each subscriber ONCE, at the highest QoS among its matching filters,
 * so overlapping subscriptions deliver once per client.
 *
 * Filters and topics are assumed valid (the codec checked them). Ownership: the tree owns its
 * nodes and copies of the level strings; subscribers are borrowed — the caller unsubscribes a
 * subscriber from every filter before freeing it.
 */
#ifndef CAIRN_ROUTE_H
#define CAIRN_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt.h"

struct route_node;

struct route {
    struct route_node *root;
    size_t count; /* subscriptions */
};

struct route_hit {
    void *sub;
    uint8_t qos;
};

/* The result of a match: a growable array the caller reuses across matches. */
struct route_hits {
    struct route_hit *v;
    size_t n;
    size_t cap;
    size_t nodes;   /* tree nodes that added hits in this match */
    uint32_t *seen; /* dedupe scratch: open addressing over indexes into v (+1), nseen slots */
    size_t nseen;
};

int route_init(struct route *r) __attribute__((warn_unused_result));
void route_cleanup(struct route *r);

/* Subscribe sub to filter at qos: 0 new subscription, 1 QoS replaced, -ENOMEM. */
int route_subscribe(struct route *r, struct mqtt_str filter, void *sub, uint8_t qos)
    __attribute__((warn_unused_result));
/* Remove exactly (filter, sub): 0, or -ENOENT when there was no such subscription. */
int route_unsubscribe(struct route *r, struct mqtt_str filter, void *sub);
/*
 * Every subscriber whose filters match topic, each once at its highest matching QoS, into
 * hits (emptied first; order unspecified). 0 or -ENOMEM.
 */
int route_match(const struct route *r, struct mqtt_str topic, struct route_hits *hits)
    __attribute__((warn_unused_result));
static inline size_t route_count(const struct route *r)
{
    return r->count;
}

void route_hits_cleanup(struct route_hits *h);

#endif
