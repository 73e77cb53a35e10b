/*
 * handle_connect.c — CONNECT: identifier and keepalive checks, authentication, the will,
 * session lookup / ownership / takeover / clean start, and the CONNACK (held until the batch
 * holding the session record is durable).
 *
 * Mosquitto's options, with its answers (checked against its handle_connect.c, 2.0.11): an
 * empty client id gets auto_id_prefix and a random rest unless allow_zero_length_clientid is
 * false (CONNACK 2); a client id not starting with clientid_prefixes gets CONNACK 5; with
 * use_username_as_clientid the username is the client id (no username: CONNACK 5); a will above
 * the listener's max_qos closes the connection without a CONNACK; a will topic gets the
 * listener's mount_point.
 *
 * Bridges: a CONNECT with the bridge bit (try_private, protocol level 0x84) marks its session
 * no_local (session.h): a remote broker's bridge gets nothing back that it published here; a
 * client id that is one of Cairn's own bridges' local session is refused (CONNACK 2).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "auth.h"
#include "client.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "sys.h"

/* Refuse with CONNACK rc: written at once (it depends on nothing stored), then closed. */
static int connect__refuse_at(struct client *cl, int level, uint8_t rc, const char *why)
{
    uint8_t buf[4];
    size_t n = mqtt_encode_connack(buf, sizeof(buf), false, rc);

    log_write(level, "client %s: CONNECT refused (CONNACK %u): %s", client_peer(cl), rc, why);
    conn_write(cl->conn, buf, n);
    conn_close(cl->conn, -ECONNREFUSED);
    return 0;
}

static int connect__refuse(struct client *cl, uint8_t rc, const char *why)
{
    return connect__refuse_at(cl, CAIRN_LOG_NOTICE, rc, why);
}

/* "user 'NAME'", "unchecked user 'NAME'", "anonymous" or "an unknown owner", for logs. */
static const char *connect__who(char *buf, size_t len, uint8_t kind, const char *user)
{
    if (kind == PERSIST_OWNER_USER || kind == PERSIST_OWNER_CLAIMED)
        snprintf(buf, len, "%suser '%s'", kind == PERSIST_OWNER_CLAIMED ? "unchecked " : "", user);
    else
        snprintf(buf, len, "%s", kind == PERSIST_OWNER_ANONYMOUS ? "anonymous" : "unknown owner");
    return buf;
}

/*
 * A session belongs to the identity that created it (DESIGN.md): a CONNECT with its client id
 * by another identity may not take it over, inherit it or discard it — online or offline,
 * whatever its clean session flag — unless allow_session_takeover_across_users. true when cl
 * may have s; false when cl was refused (CONNACK 5, logged with both identities).
 *
 * A session restored from a record written before owners were stored has no known owner. It is
 * given to the first identity that connects with its client id (and recorded): refusing
 * everyone would lock its rightful owner out of an upgraded broker for good, and before the
 * upgrade any identity could take it anyway, so nothing is given away that was not open.
 */
static bool connect__may_have(struct broker *b, struct client *cl, struct session *s)
{
    char was[320], now[320], why[800];
    bool ok = true;

    if (session_user_is(s, cl->username, cl->user_checked))
        goto out;
    connect__who(was, sizeof(was), s->user_kind, s->user);
    connect__who(now, sizeof(now),
                 !cl->username      ? PERSIST_OWNER_ANONYMOUS
                 : cl->user_checked ? PERSIST_OWNER_USER
                                    : PERSIST_OWNER_CLAIMED,
                 cl->username);
    if (s->user_kind == PERSIST_OWNER_UNKNOWN) {
        log_write(CAIRN_LOG_NOTICE,
                  "client %s %s: session stored without an owner (older store) now belongs to %s",
                  client_peer(cl), s->id, now);
    } else if (b->cfg->allow_session_takeover_across_users) {
        log_write(CAIRN_LOG_NOTICE,
                  "client %s %s: session of %s taken over by %s "
                  "(allow_session_takeover_across_users)",
                  client_peer(cl), s->id, was, now);
    } else {
        snprintf(why, sizeof(why), "client id %s belongs to a session of %s, not %s", s->id, was,
                 now);
        connect__refuse_at(cl, CAIRN_LOG_WARNING, MQTT_CONNACK_NOT_AUTHORIZED, why);
        ok = false;
    }
out:
    return ok;
}

static char *connect__strdup(struct mqtt_str s)
{
    char *p = malloc(s.len + 1);

    if (p) {
        if (s.len)
            memcpy(p, s.p, s.len);
        p[s.len] = '\0';
    }
    return p;
}

/*
 * auto_id_prefix ("auto-") and 32 hex digits: 64 random bits, so ids do not repeat across
 * restarts, and a counter, so they never repeat within one run.
 */
static void connect__gen_id(struct broker *b, const char *prefix, char *out, size_t len)
{
    uint64_t r = 0;

    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = ((uint64_t)rand() << 32) ^ (uint64_t)rand() ^ (uint64_t)broker__now();
    snprintf(out, len, "%s%016" PRIx64 "%016" PRIx64, prefix ? prefix : "auto-", r,
             ++b->next_auto_id);
}

/*
 * A connection with this id is online: it loses the session. Its will is published when either
 * side has clean session 1, as Mosquitto 2.0 does; when both have 0 the session simply goes on
 * (a device's quick reconnect) and an "offline" will would be false, so it is dropped.
 */
static void connect__takeover(struct broker *b, struct session *s, bool new_clean)
{
    struct client *old = s->owner;

    log_write(CAIRN_LOG_NOTICE, "client %s %s: already connected, closing old connection",
              client_peer(old), s->id);
    old->session = NULL;
    s->owner = NULL;
    conn_close(old->conn, -ECONNRESET);
    if (s->clean || new_clean) {
        broker__publish_will(b, old);
    } else {
        msg_unref(old->will);
        old->will = NULL;
    }
    if (b->stats.clients_connected)
        b->stats.clients_connected--;
}

int handle_connect(struct broker *b, struct client *cl, const struct mqtt_connect *p)
{
    const struct config *cfg = b->cfg;
    const struct config_listener *l = client_listener(cl);
    char gen[1100], *user = NULL;
    const char *user_out = NULL;
    struct mqtt_str id = p->client_id, will_topic = p->will_topic;
    uint8_t *mounted = NULL;
    struct session *s;
    bool present = false, checked = false;
    uint8_t buf[4];
    int code, rc = 0;

    cl->protocol_level = p->protocol_level;
    if (id.len == 0) {
        /* [MQTT-3.1.3-7/8]; MQTT 3.1 has no empty ids */
        if (!p->clean_session || p->protocol_level == 3 || !l->sec.allow_zero_length_clientid) {
            rc = connect__refuse(cl, MQTT_CONNACK_ID_REJECTED,
                                 l->sec.allow_zero_length_clientid
                                     ? "empty client id"
                                     : "empty client id (allow_zero_length_clientid false)");
            goto out;
        }
        connect__gen_id(b, l->sec.auto_id_prefix, gen, sizeof(gen));
        id.p = (const uint8_t *)gen;
        id.len = strlen(gen);
    } else if (p->protocol_level == 3 && id.len > 23) {
        rc = connect__refuse(cl, MQTT_CONNACK_ID_REJECTED, "MQTT 3.1 client id over 23 bytes");
        goto out;
    }
    if (cfg->clientid_prefixes &&
        (id.len < strlen(cfg->clientid_prefixes) ||
         memcmp(id.p, cfg->clientid_prefixes, strlen(cfg->clientid_prefixes)) != 0)) {
        rc = connect__refuse(cl, MQTT_CONNACK_NOT_AUTHORIZED,
                             "client id does not start with clientid_prefixes");
        goto out;
    }
    if (p->will_flag && p->will_qos > l->max_qos) {
        /* Mosquitto closes without a CONNACK: a 3.1.1 client cannot be told why */
        log_write(CAIRN_LOG_NOTICE, "client %s: will at QoS %u over its listener's max_qos %u",
                  client_peer(cl), p->will_qos, l->max_qos);
        rc = -EPROTO;
        goto out;
    }
    /*
     * max_keepalive: MQTT 5 clients are told the server's value; a 3.1.1 client cannot be, and
     * Mosquitto 2.0.11 (checked against the Debian binary: max_keepalive 100, CONNECT k101 ->
     * CONNACK 0, "k101" in its log) accepts it unchanged. Cairn does the same.
     */
    if (p->has_username && !(user = connect__strdup(p->username))) {
        rc = -ENOMEM;
        goto out;
    }
    code = auth_check_connect(b->auth, cl->listener, conn_identity(cl->conn), user,
                              p->has_password ? p->password.p : NULL,
                              p->has_password ? p->password.len : 0, &user_out, &checked);
    cl->user_checked = checked;
    if (code != 0) {
        rc = connect__refuse(cl, (uint8_t)code,
                             code == MQTT_CONNACK_BAD_CREDENTIALS ? "bad username or password"
                                                                  : "not authorised");
        goto out;
    }
    if (user_out && !(cl->username = strdup(user_out))) {
        rc = -ENOMEM;
        goto out;
    }
    if (l->use_username_as_clientid) {
        if (!cl->username) {
            rc = connect__refuse(cl, MQTT_CONNACK_NOT_AUTHORIZED,
                                 "no username, and use_username_as_clientid is true");
            goto out;
        }
        id.p = (const uint8_t *)cl->username;
        id.len = strlen(cl->username);
    }
    if (p->will_flag && cfg->message_size_limit && p->will_payload.len > cfg->message_size_limit) {
        /* as Mosquitto 2.0 refuses it (CONNACK 5 for MQTT 3.1.1) */
        char why[96];
        snprintf(why, sizeof(why), "will payload %zu bytes over message_size_limit %u",
                 p->will_payload.len, cfg->message_size_limit);
        rc = connect__refuse(cl, MQTT_CONNACK_NOT_AUTHORIZED, why);
        goto out;
    }
    if (p->will_flag && sys_topic(p->will_topic) && !sys_bridge_state(p->will_topic)) {
        /* As Mosquitto 2.0: the CONNECT is accepted and the will never published. */
        log_write(CAIRN_LOG_NOTICE,
                  "client %s: will on %.*s dropped: clients may not publish to $SYS",
                  client_peer(cl), (int)p->will_topic.len, (const char *)p->will_topic.p);
    } else if (p->will_flag) {
        char *cid = connect__strdup(id);
        bool ok = cid && client_mount(cl, p->will_topic, false, &will_topic, &mounted) == 0 &&
                  auth_can_write(b->auth, cl->listener, cid, cl->username,
                                 (const char *)will_topic.p, will_topic.len);
        free(cid);
        if (!ok) {
            rc = connect__refuse(cl, MQTT_CONNACK_NOT_AUTHORIZED, "will topic not allowed");
            goto out;
        }
        cl->will = msg_new(0, will_topic.p, will_topic.len, p->will_payload.p, p->will_payload.len,
                           p->will_qos, p->will_retain);
        if (!cl->will) {
            rc = -ENOMEM;
            goto out;
        }
    }

    s = session_find(b->sessions, id);
    if (s && session_bridge(s)) {
        /* a bridge's queue (local_clientid): taking it over would steal what it forwards */
        rc = connect__refuse(cl, MQTT_CONNACK_ID_REJECTED, "client id is a bridge's own");
        goto out;
    }
    if (s && !connect__may_have(b, cl, s))
        goto out; /* refused before anything of s changed */
    if (s && s->owner)
        connect__takeover(b, s, p->clean_session);
    if (s && (p->clean_session || s->clean)) {
        broker__session_discard(b, s);
        s = NULL;
    }
    if (s) {
        present = true;
        broker__session_expiry_cancel(b, s);
        session_touch(s, broker__now());
    } else {
        s = session_new(b->sessions, id, p->clean_session, broker__now());
        if (!s) {
            rc = -ENOMEM;
            goto out;
        }
    }
    if (!session_user_is(s, cl->username, cl->user_checked) &&
        (rc = session_set_user(s, cl->username, cl->user_checked)) < 0) {
        if (!present)
            broker__session_discard(b, s);
        goto out;
    }
    session_online(s, cl);
    s->no_local = p->bridge; /* a remote broker's bridge (try_private): not its own back */
    cl->session = s;
    cl->connected = true;
    cl->keepalive = p->keepalive;
    b->stats.clients_connected++;
    /* MQTT 3.1 has no session-present flag: its CONNACK's first byte is 0 */
    mqtt_encode_connack(buf, sizeof(buf), present && p->protocol_level >= 4, MQTT_CONNACK_ACCEPTED);
    if ((rc = client_hold_raw(cl, buf, 4)) < 0)
        goto out;
    conn_set_name(cl->conn, s->id);
    conn_set_keepalive(cl->conn, p->keepalive);
    broker__session_dirty(b, s); /* resend in-flight, then the queue */
    if (cfg->connection_messages)
        log_write(CAIRN_LOG_NOTICE, "client %s %s connected (p%u, c%d, k%u%s%s%s%s)",
                  client_peer(cl), s->id, p->protocol_level, p->clean_session ? 1 : 0, p->keepalive,
                  cl->username ? ", u'" : "", cl->username ? cl->username : "",
                  cl->username ? "'" : "", p->bridge ? ", bridge" : "");
out:
    free(mounted);
    free(user);
    return rc;
}
