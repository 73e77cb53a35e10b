/*
 * handle_subscribe.c — SUBSCRIBE and UNSUBSCRIBE.
 *
 * SUBSCRIBE: per filter, the granted QoS (the requested one; 0x80 when the ACL refuses it or
 * memory runs out) [MQTT-3.9.3]; a filter already subscribed has its QoS replaced
 * [MQTT-3.8.4-3]; then every retained message matching a granted filter is queued with
 * RETAIN=1 at min(its QoS, granted) — after the SUBACK, which is held first [MQTT-3.3.1-6].
 * UNSUBSCRIBE removes exactly the filters given (no wildcard matching) and always answers
 * UNSUBACK [MQTT-3.10.4-4/5].
 *
 * Mosquitto's listener options: the granted QoS is at most max_qos; the filters (both packets)
 * get the mount_point (client.h). Retained messages go at broker__delivery_qos()
 * (upgrade_outgoing_qos), and only those whose publisher may still write their topic
 * (check_retain_source).
 */
#include <errno.h>
#include <stdlib.h>

#include "auth.h"
#include "client.h"
#include "config.h"
#include "log.h"

struct subscribe__retained {
    struct broker *b;
    struct session *s;
    uint8_t qos;
};

static int subscribe__retained_cb(void *ctx, struct msg *m)
{
    struct subscribe__retained *r = ctx;
    uint8_t qos = broker__delivery_qos(r->b, m->qos, r->qos);

    if (!broker__can_read(r->b, r->s, msg_topic(m)) || !broker__retain_allowed(r->b, m))
        return 0;
    if (session_enqueue(r->s, m, qos) == SESSION_QUEUED)
        broker__session_dirty(r->b, r->s);
    return 0;
}

int handle_subscribe(struct broker *b, struct client *cl, const struct mqtt_topics *t)
{
    uint8_t max_qos = client_listener(cl)->max_qos;
    struct session *s = cl->session;
    struct mqtt_topics_iter it;
    struct mqtt_str f;
    uint8_t qos, *codes = NULL, *pkt = NULL, *mounted = NULL;
    size_t i = 0, n;
    int rc = 0;

    if (!s)
        goto out;
    codes = malloc(t->count ? t->count : 1);
    if (!codes) {
        rc = -ENOMEM;
        goto out;
    }
    mqtt_topics_iter_init(&it, t);
    while (i < t->count && mqtt_topics_next(&it, &f, &qos)) {
        uint8_t code = qos = qos < max_qos ? qos : max_qos;
        free(mounted);
        if (client_mount(cl, f, true, &f, &mounted) < 0) {
            code = MQTT_SUBACK_FAILURE;
        } else if (!auth_can_subscribe(b->auth, cl->listener, s->id, cl->username,
                                       (const char *)f.p, f.len)) {
            code = MQTT_SUBACK_FAILURE;
        } else if (route_subscribe(&b->route, f, s, qos) < 0) {
            code = MQTT_SUBACK_FAILURE;
        } else if (session_sub_set(s, f, qos) < 0) {
            route_unsubscribe(&b->route, f, s);
            code = MQTT_SUBACK_FAILURE;
        }
        codes[i++] = code;
        log_write(CAIRN_LOG_DEBUG, "client %s %s: subscribe %.*s qos %u -> %u", client_peer(cl),
                  s->id, (int)f.len, (const char *)f.p, qos, code);
    }
    n = mqtt_encode_suback(NULL, 0, t->packet_id, codes, i);
    pkt = malloc(n);
    if (!pkt) {
        rc = -ENOMEM;
        goto out;
    }
    mqtt_encode_suback(pkt, n, t->packet_id, codes, i);
    if ((rc = client_hold_raw(cl, pkt, n)) < 0)
        goto out;
    /* retained messages, behind the SUBACK */
    mqtt_topics_iter_init(&it, t);
    for (size_t k = 0; k < i && mqtt_topics_next(&it, &f, &qos); k++) {
        struct subscribe__retained r = {b, s, codes[k]};
        if (codes[k] == MQTT_SUBACK_FAILURE)
            continue;
        free(mounted);
        if (client_mount(cl, f, true, &f, &mounted) == 0)
            retain_match(&b->retain, f, subscribe__retained_cb, &r);
    }
out:
    free(mounted);
    free(pkt);
    free(codes);
    return rc;
}

int handle_unsubscribe(struct broker *b, struct client *cl, const struct mqtt_topics *t)
{
    struct session *s = cl->session;
    struct mqtt_topics_iter it;
    struct mqtt_str f;
    uint8_t qos, *mounted = NULL;
    int rc = 0;

    if (!s)
        goto out;
    mqtt_topics_iter_init(&it, t);
    while (mqtt_topics_next(&it, &f, &qos)) {
        free(mounted);
        if (client_mount(cl, f, true, &f, &mounted) == 0 && route_unsubscribe(&b->route, f, s) == 0)
            session_sub_del(s, f);
    }
    rc = client_hold_ack(cl, MQTT_UNSUBACK, t->packet_id);
out:
    free(mounted);
    return rc;
}
