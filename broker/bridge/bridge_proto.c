/*
 * bridge_proto.c — the MQTT a bridge speaks to its remote (bridge.h): the CONNECT (the bridge
 * bit with try_private, the notification "0" as its will), the CONNACK, SUBSCRIBE and
 * UNSUBSCRIBE, what the remote publishes (mapped to the local topic, routed, acknowledged once
 * durable), and the topic mapping both ways as Mosquitto's bridge_topic.c and send_publish.c
 * do it: a topic of a mapped "in" topic loses the remote prefix and gains the local one, and the
 * reverse going out; the first matching topic line wins.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "bridge_internal.h"
#include "client.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"

static struct broker *bp_broker(const struct bridge *br)
{
    return br->set->b;
}

/* A packet the encoder sized, written on the link at once. */
static int bp_write(struct bridge *br, const uint8_t *pkt, size_t n)
{
    return n ? conn_write(br->conn, pkt, n) : -EINVAL;
}

int bridge__send_connect(struct bridge *br)
{
    const struct config_bridge *c = br->cfg;
    char nbuf[512];
    const char *nt = config_bridge_notification_topic(c, nbuf, sizeof(nbuf));
    struct mqtt_connect m = {
        .protocol_level = c->protocol_version,
        .bridge = c->try_private && br->try_private,
        .clean_session = c->cleansession,
        .keepalive = c->keepalive,
        .client_id = {(const uint8_t *)c->remote_clientid, strlen(c->remote_clientid)},
    };
    uint8_t *buf = NULL;
    size_t n;
    int rc = -ENOMEM;

    if (c->protocol_version == 3)
        m.protocol_name = (struct mqtt_str){(const uint8_t *)"MQIsdp", 6};
    if (c->remote_username) {
        m.has_username = true;
        m.username =
            (struct mqtt_str){(const uint8_t *)c->remote_username, strlen(c->remote_username)};
    }
    if (c->remote_username && c->remote_password) {
        m.has_password = true;
        m.password =
            (struct mqtt_str){(const uint8_t *)c->remote_password, strlen(c->remote_password)};
    }
    if (c->notifications && !c->notifications_local_only) {
        /* the remote publishes "0" when the link drops: its side learns of it too */
        m.will_flag = true;
        m.will_qos = 1;
        m.will_retain = true;
        m.will_topic = (struct mqtt_str){(const uint8_t *)nt, strlen(nt)};
        m.will_payload = (struct mqtt_str){(const uint8_t *)"0", 1};
    }
    n = mqtt_encode_connect(NULL, 0, &m);
    if (n && (buf = malloc(n)) && mqtt_encode_connect(buf, n, &m) == n)
        rc = bp_write(br, buf, n);
    free(buf);
    return rc;
}

/* ---- topic mapping -------------------------------------------------------------------------- */

/* out[0..len) into br->map (NUL-terminated). false on ENOMEM. */
static bool bp_map_put(struct bridge *br, const char *a, size_t la, const char *b, size_t lb)
{
    if (la + lb + 1 > br->map_cap) {
        size_t cap = la + lb + 64;
        char *m = realloc(br->map, cap);
        if (!m)
            return false;
        br->map = m;
        br->map_cap = cap;
    }
    memmove(br->map + la, b, lb); /* b may point into br->map */
    memcpy(br->map, a, la);
    br->map[la + lb] = '\0';
    return true;
}

/*
 * topic through the first topic line of direction dir (CONFIG_BRIDGE_OUT: local to remote, IN:
 * remote to local) that has a prefix and whose filter on the from-side matches it: the from
 * prefix off (when topic starts with it), the to prefix on. true with *out in br->map; false
 * when no line maps it (the topic goes as it is) or on ENOMEM (*enomem).
 */
static bool bp_map(struct bridge *br, unsigned dir, struct mqtt_str topic, struct mqtt_str *out,
                   bool *enomem)
{
    const struct config_bridge *c = br->cfg;

    *enomem = false;
    for (size_t i = 0; i < c->n_topics; i++) {
        const struct config_bridge_topic *t = &c->topics[i];
        const char *from = dir == CONFIG_BRIDGE_OUT ? t->local : t->remote;
        const char *fp = dir == CONFIG_BRIDGE_OUT ? t->local_prefix : t->remote_prefix;
        const char *tp = dir == CONFIG_BRIDGE_OUT ? t->remote_prefix : t->local_prefix;
        size_t fl = fp ? strlen(fp) : 0;
        struct mqtt_str rest = topic;

        if (!(t->dir & dir) || (!fp && !tp) ||
            !mqtt_topic_match((const uint8_t *)from, strlen(from), topic.p, topic.len))
            continue;
        if (fl && topic.len >= fl && memcmp(topic.p, fp, fl) == 0) {
            rest.p += fl;
            rest.len -= fl;
        }
        if (!bp_map_put(br, tp ? tp : "", tp ? strlen(tp) : 0, (const char *)rest.p, rest.len)) {
            *enomem = true;
            return false;
        }
        out->p = (const uint8_t *)br->map;
        out->len = strlen(br->map);
        return true;
    }
    return false;
}

bool bridge_map_out(struct bridge *br, const struct msg *m, struct mqtt_str *topic, bool *retain)
{
    bool enomem, mapped = bp_map(br, CONFIG_BRIDGE_OUT, msg_topic(m), topic, &enomem);

    br->sent++;
    br->activity_ms = loop_now_ms(br->set->loop);
    *retain = m->retain && br->cfg->outgoing_retain;
    if (!mapped)
        *topic = msg_topic(m);
    return mapped || *retain != m->retain;
}

bool bridge_route_ok(struct bridge *br, const struct msg *m)
{
    uint32_t max = br->cfg->max_packet_size;
    struct mqtt_str t = msg_topic(m);
    bool enomem;
    size_t rem;

    if (max) {
        bp_map(br, CONFIG_BRIDGE_OUT, msg_topic(m), &t, &enomem);
        rem = 2 + t.len + 2 + m->payload_len; /* a packet id counted: QoS 1 or 2 */
        if (1 + mqtt_remaining_length_size(rem) + rem > max) {
            if (br->too_large++ % 1000 == 0)
                log_write(CAIRN_LOG_WARNING,
                          "bridge %s: message on %s (%zu bytes) over bridge_max_packet_size %u: "
                          "not forwarded (%llu so far)",
                          br->cfg->name, m->topic, 1 + mqtt_remaining_length_size(rem) + rem, max,
                          (unsigned long long)br->too_large);
            bp_broker(br)->stats.messages_dropped++;
            return false;
        }
    }
    if (br->s && br->s->q_count + 1 >= br->cfg->threshold)
        bridge__lazy_kick(br);
    return true;
}

/* ---- from the remote ------------------------------------------------------------------------ */

static const char *bp_connack_text(uint8_t rc)
{
    static const char *const t[] = {
        "accepted",           "unacceptable protocol version", "identifier rejected",
        "server unavailable", "bad user name or password",     "not authorised"};
    return rc < sizeof(t) / sizeof(t[0]) ? t[rc] : "unknown code";
}

static int bp_connack(struct bridge *br, const struct mqtt_connack *a)
{
    bool bit = br->cfg->try_private && br->try_private;
    int rc = -ECONNREFUSED;

    if (br->state != BRIDGE_CONNECTING) {
        bridge__error(br, "a second CONNACK from %s: protocol violation", br->remote);
        rc = -EPROTO;
    } else if (a->return_code == MQTT_CONNACK_BAD_PROTOCOL && bit) {
        /* a remote that does not know the bridge bit: again without it, as Mosquitto */
        br->try_private = false;
        br->retry_now = true;
        bridge__error(br,
                      "%s refused protocol level 0x%x (try_private): connecting again without "
                      "the bridge bit",
                      br->remote, 0x80 | br->cfg->protocol_version);
    } else if (a->return_code != MQTT_CONNACK_ACCEPTED) {
        bridge__error(br, "%s refused the CONNECT: CONNACK %u (%s)", br->remote, a->return_code,
                      bp_connack_text(a->return_code));
    } else {
        bridge__up(br);
        rc = br->state == BRIDGE_UP ? bridge__on_up(br, a->session_present) : 0;
        goto out;
    }
    br->reason_set = true; /* what the link's close says: this, not "CONNECT refused" */
out:
    return rc;
}

/* What the remote publishes: mapped, routed here, acknowledged once durable (held acks). */
static int bp_publish(struct bridge *br, struct client *cl, const struct mqtt_publish *p)
{
    struct broker *b = bp_broker(br);
    struct session *s = cl->session;
    struct mqtt_str t = p->topic;
    char *copy = NULL;
    bool enomem;
    int rc = 0;

    br->received++;
    br->activity_ms = loop_now_ms(br->set->loop);
    b->stats.messages_received++;
    metrics_msg_in(p->qos, p->payload.len);
    if (p->qos == 2 && session_inbound_has(s, p->packet_id))
        goto ack; /* [MQTT-4.3.3-2] the remote's resend of what is routed already */
    if (bp_map(br, CONFIG_BRIDGE_IN, p->topic, &t, &enomem)) {
        if (!(copy = strndup((const char *)t.p, t.len))) {
            rc = -ENOMEM;
            goto out;
        }
        t.p = (const uint8_t *)copy;
        if (mqtt_topic_name_validate(t.p, t.len) < 0) {
            log_write(CAIRN_LOG_WARNING,
                      "bridge %s: %.*s mapped to a topic over 65535 bytes: "
                      "dropped",
                      br->cfg->name, (int)p->topic.len, (const char *)p->topic.p);
            goto ack;
        }
    } else if (enomem) {
        rc = -ENOMEM;
        goto out;
    }
    rc = broker__publish_origin(b, t, p->payload, p->qos, p->retain, true, cl, s);
    if (rc < 0)
        goto out;
ack:
    if (p->qos == 1) {
        rc = client_hold_ack(cl, MQTT_PUBACK, p->packet_id);
    } else if (p->qos == 2) {
        if ((rc = session_inbound_add(s, p->packet_id)) == 0)
            rc = client_hold_ack(cl, MQTT_PUBREC, p->packet_id);
    }
out:
    free(copy);
    return rc;
}

static int bp_suback(struct bridge *br, const struct mqtt_suback *a)
{
    for (size_t i = 0; i < a->codes.len; i++)
        if (a->codes.p[i] == MQTT_SUBACK_FAILURE)
            log_write(CAIRN_LOG_WARNING,
                      "bridge %s: %s refused subscription %zu of the bridge's in topics",
                      br->cfg->name, br->remote, i + 1);
    return 0;
}

int bridge_on_packet(struct bridge *br, struct client *cl, const struct mqtt_packet *pkt)
{
    int rc = -EPROTO;

    if (pkt->type == MQTT_CONNACK) {
        rc = bp_connack(br, &pkt->u.connack);
        goto out;
    }
    if (br->state != BRIDGE_UP) {
        bridge__error(br, "%s sent %s before its CONNACK", br->remote, mqtt_type_name(pkt->type));
        br->reason_set = true;
        goto out;
    }
    switch (pkt->type) {
    case MQTT_PUBLISH:
        rc = bp_publish(br, cl, &pkt->u.publish);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        rc = handle_ack(bp_broker(br), cl, pkt->type, pkt->u.ack.packet_id);
        break;
    case MQTT_SUBACK:
        rc = bp_suback(br, &pkt->u.suback);
        break;
    case MQTT_UNSUBACK:
    case MQTT_PINGRESP:
        rc = 0;
        break;
    default: /* a client's packet from a server */
        bridge__error(br, "%s sent %s: protocol violation", br->remote, mqtt_type_name(pkt->type));
        br->reason_set = true;
        break;
    }
out:
    return rc;
}

/* ---- once up -------------------------------------------------------------------------------- */

static uint16_t bp_pid(struct bridge *br)
{
    do
        br->next_pid = (uint16_t)(br->next_pid + 1);
    while (br->next_pid == 0 || (br->s && session_pid_in_use(br->s, br->next_pid)));
    return br->next_pid;
}

/* SUBSCRIBE the in topics' remote filters, UNSUBSCRIBE the others' (attempt_unsubscribe). */
static int bp_subscribe(struct bridge *br)
{
    const struct config_bridge *c = br->cfg;
    struct mqtt_sub *sub = calloc(c->n_topics + 1, sizeof(*sub));
    struct mqtt_sub *uns = calloc(c->n_topics + 1, sizeof(*uns));
    size_t ns = 0, nu = 0, n;
    uint8_t *buf = NULL;
    int rc = -ENOMEM;

    if (!sub || !uns)
        goto out;
    for (size_t i = 0; i < c->n_topics; i++) {
        const struct config_bridge_topic *t = &c->topics[i];
        struct mqtt_sub x = {{(const uint8_t *)t->remote, strlen(t->remote)}, t->qos};
        if (t->dir & CONFIG_BRIDGE_IN)
            sub[ns++] = x;
        else if (c->attempt_unsubscribe)
            uns[nu++] = x; /* we may have subscribed once, with another config */
    }
    rc = 0;
    if (ns) {
        uint16_t pid = bp_pid(br);
        n = mqtt_encode_subscribe(NULL, 0, pid, sub, ns);
        rc = n && (buf = malloc(n)) ? bp_write(br, buf, mqtt_encode_subscribe(buf, n, pid, sub, ns))
                                    : -ENOMEM;
        free(buf);
        buf = NULL;
    }
    if (rc == 0 && nu) {
        uint16_t pid = bp_pid(br);
        n = mqtt_encode_unsubscribe(NULL, 0, pid, uns, nu);
        rc = n && (buf = malloc(n))
                 ? bp_write(br, buf, mqtt_encode_unsubscribe(buf, n, pid, uns, nu))
                 : -ENOMEM;
        free(buf);
    }
out:
    free(sub);
    free(uns);
    return rc;
}

struct bp_retained {
    struct bridge *br;
    uint8_t qos;
    size_t n;
};

/* One local retained message for the remote, unless it came in over this very bridge. */
static int bp_retained_one(void *ctx, struct msg *m)
{
    struct bp_retained *r = ctx;
    struct bridge *br = r->br;
    struct broker *b = bp_broker(br);
    const struct retain_src *src = retain_source(&b->retain, msg_topic(m));

    if (src && src->listener == AUTH_LISTENER_BRIDGE && br->s && strcmp(src->id, br->s->id) == 0)
        return 0;
    if (!bridge_route_ok(br, m) || !broker__retain_allowed(b, m))
        return 0;
    if (session_enqueue(br->s, m, broker__delivery_qos(b, m->qos, r->qos)) == SESSION_QUEUED)
        r->n++;
    return 0;
}

/*
 * Mosquitto's bridge__on_connect: the local retained messages of the out topics, queued — here
 * on the first link of the bridge as configured (a start, a restart, a changed block) or when
 * the remote kept no session for it (a remote that lost its state, cleansession true). Between
 * those, with the remote's session there and the local queue durable, nothing was missed, and a
 * link that drops often would otherwise fill the queue with copies.
 */
static void bp_retained(struct bridge *br)
{
    struct broker *b = bp_broker(br);
    const struct config_bridge *c = br->cfg;
    struct bp_retained r = {.br = br};

    for (size_t i = 0; br->s && i < c->n_topics; i++) {
        const struct config_bridge_topic *t = &c->topics[i];
        struct mqtt_str f = {(const uint8_t *)t->local, strlen(t->local)};
        if (!(t->dir & CONFIG_BRIDGE_OUT))
            continue;
        r.qos = t->qos;
        retain_match(&b->retain, f, bp_retained_one, &r);
    }
    if (r.n)
        broker__session_dirty(b, br->s);
}

int bridge__on_up(struct bridge *br, bool session_present)
{
    const struct config_bridge *c = br->cfg;
    char nbuf[512];
    const char *nt = config_bridge_notification_topic(c, nbuf, sizeof(nbuf));
    int rc = 0;

    if (c->notifications && !c->notifications_local_only) {
        struct mqtt_publish p = {.qos = 0, /* no packet id the session could reuse */
                                 .retain = c->outgoing_retain,
                                 .topic = {(const uint8_t *)nt, strlen(nt)},
                                 .payload = {(const uint8_t *)"1", 1}};
        uint8_t buf[600];
        size_t n = mqtt_encode_publish(buf, sizeof(buf), &p);
        rc = n <= sizeof(buf) ? bp_write(br, buf, n) : -EINVAL;
    }
    if (rc == 0)
        rc = bp_subscribe(br);
    if (rc == 0 && (!session_present || br->connects == 1))
        bp_retained(br);
    return rc;
}
