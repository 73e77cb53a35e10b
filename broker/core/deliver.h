/*
 * deliver.h — what the packet handlers (handle_*.c), the bridge and broker.c's entry points
 * share, below all of them (deliver.c): the dirty lists that the iteration end works through,
 * session discard and expiry, routing and the pump, publishing, the read check. The handlers
 * and the bridge call these; broker.c calls these and the handlers; nothing here calls up.
 *
 * Ownership: as client.h — the broker owns sessions and clients; callers keep their references
 * to messages.
 */
#ifndef CAIRN_DELIVER_H
#define CAIRN_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt.h"

struct broker;
struct client;
struct msg;
struct session;

/* Put cl on the list of clients whose held output is written at iteration end. */
void broker__client_dirty(struct broker *b, struct client *cl);
/* Put s on the list of sessions pumped at iteration end (if it has a client). */
void broker__session_dirty(struct broker *b, struct session *s);
/* Make sure another loop iteration (and so an iteration end) follows soon. */
void broker__kick(struct broker *b);
/* Remove a session and its subscriptions from the route tree and the store. */
void broker__session_discard(struct broker *b, struct session *s);
/* Arm (or re-arm) the expiry timer of an offline persistent session. */
void broker__session_expiry_arm(struct broker *b, struct session *s);
void broker__session_expiry_cancel(struct broker *b, struct session *s);
/*
 * Route m to every matching session (the caller keeps its reference). origin: the session of
 * its publisher, or NULL; pub_retain: it was published with RETAIN set. Both matter to bridges
 * (session.h, no_local): m does not go back to origin, and goes retained.
 */
int broker__route(struct broker *b, struct msg *m, const struct session *origin, bool pub_retain);
/* A new message id. */
uint64_t broker__msg_id(struct broker *b);
/* Unix seconds now. */
int64_t broker__now(void);
/* Publish cl's will, if it has one, and forget it. */
void broker__publish_will(struct broker *b, struct client *cl);
/* May the session's client receive topic (ACL)? */
bool broker__can_read(struct broker *b, struct session *s, struct mqtt_str topic);

/* broker_publish() on behalf of a client: a retained message keeps it as its source
 * (check_retain_source, retain.h). from NULL: the broker's own. */
int broker__publish_from(struct broker *b, struct mqtt_str topic, struct mqtt_str payload,
                         uint8_t qos, bool retain, bool store_retained, const struct client *from);
/* The same with the publisher's session given apart (broker__route's origin): a bridge's own
 * notification comes from its session, with or without a link. */
int broker__publish_origin(struct broker *b, struct mqtt_str topic, struct mqtt_str payload,
                           uint8_t qos, bool retain, bool store_retained, const struct client *from,
                           const struct session *origin);
/* May the publisher of the retained message m still write its topic (check_retain_source)? */
bool broker__retain_allowed(struct broker *b, const struct msg *m);
/* The QoS a message published at qos goes to a subscription of sub_qos with. */
uint8_t broker__delivery_qos(const struct broker *b, uint8_t qos, uint8_t sub_qos);
/* Take cl / s off the dirty lists (a conn closing, a session discarded). */
void broker__client_undirty(struct broker *b, struct client *cl);
void broker__session_undirty(struct broker *b, struct session *s);
/* Move what the window allows from s's queue into its client's output (held or written): the
 * iteration end and routing call it. Returns how many entries were read back from the store. */
size_t broker__pump(struct broker *b, struct session *s);

#endif
