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
 * check_retain_source (config.h): a retained message a client published keeps its source —
 * the client id, username and listener it came from — so that before it is sent to a new
 * subscriber the broker can ask whether that publisher may still write the topic (Mosquitto's
 * rule). Messages the broker made ($SYS) have none. The source is stored with the retained
 * record (retain_src_encode), so a restart keeps the check.
 *
 * Ownership: the store holds one reference to each retained message (msg.h) and its own copy of
 * each source; messages passed to callbacks are borrowed for the call (take msg_ref() to keep
 * one), sources returned by retain_source() until the topic's message changes.
 */
#ifndef CAIRN_RETAIN_H
#define CAIRN_RETAIN_H

#include <stddef.h>

#include "msg.h"

struct retain_node;

/* Who published a retained message. One allocation (retain_src_new); id and username point
 * into it; username NULL when the client had none. */
struct retain_src {
    int listener;
    char *id;
    char *username;
};

/* A new source (copies); NULL on ENOMEM. retain_src_free(NULL) does nothing. */
struct retain_src *retain_src_new(int listener, const char *id, size_t id_len,
                                  const char *username);
void retain_src_free(struct retain_src *s);
/* Bytes of src for the store (persist_msg.src): the size needed; out written when cap allows. */
size_t retain_src_encode(const struct retain_src *src, uint8_t *out, size_t cap);
/* Back from those bytes: a new source, or NULL (ENOMEM, or not a valid encoding). */
struct retain_src *retain_src_decode(const uint8_t *p, size_t len);

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
/* The same, recording src as its source (copied; NULL: none). */
int retain_set_src(struct retain *r, struct msg *m, const struct retain_src *src)
    __attribute__((warn_unused_result));
/* The source of the message retained on topic, or NULL (none, or no message). Borrowed. */
const struct retain_src *retain_source(const struct retain *r, struct mqtt_str topic);
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
