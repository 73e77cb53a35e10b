/*
 * retain.h — retained messages by topic.
 *
 * A tree by topic level, like the subscription tree but keyed by topic NAMES: each node holds
 * at most one retained message (the last one published with RETAIN=1 on that topic). Setting
 * a message replaces the previous one; an empty payload deletes it [MQTT-3.3.1-10/11]. A new
 * subscription walks its FILTER down the tree: a literal level follows one child, '+' every
 * child, '#' the whole subtree (and the node itself: "a/#" matches "a"); the '$' rule applies
 * at the first level [MQTT-4.7.2-1].
 *
 * retain_available false (config) is the broker's business: for MQTT 3.1.1 it simply does not
 * store (Mosquitto closes the connection on a retained PUBLISH only for MQTT 5, where the
 * client was told retain is unavailable; a 3.1.1 client cannot be told, so Cairn forwards the
 * message and keeps nothing).
 *
 * Ownership: the store holds one reference to each retained message (msg.h); messages passed
 * to callbacks are borrowed for the call (take msg_ref() to keep one).
 */
#ifndef CAIRN_RETAIN_H
#define CAIRN_RETAIN_H

#include <stddef.h>

#include "msg.h"

struct retain_node;

struct retain {
    struct retain_node *root;
    size_t count;
};

int retain_init(struct retain *r) __attribute__((warn_unused_result));
void retain_cleanup(struct retain *r);

/*
 * Retain m on its topic (takes a new reference), replacing the previous message; with an
 * empty payload, delete the topic's message instead. 0, or -ENOMEM (nothing changed).
 */
int retain_set(struct retain *r, struct msg *m) __attribute__((warn_unused_result));
/* The message retained on topic (borrowed), or NULL. */
struct msg *retain_get(const struct retain *r, struct mqtt_str topic);

/* Call cb for every retained message whose topic matches filter; stops at a non-zero return,
 * which it returns. */
int retain_match(const struct retain *r, struct mqtt_str filter,
                 int (*cb)(void *ctx, struct msg *m), void *ctx);

static inline size_t retain_count(const struct retain *r)
{
    return r->count;
}

#endif
