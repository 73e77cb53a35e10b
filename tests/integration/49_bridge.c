/*
 * 49_bridge — bridges (broker/bridge/bridge.h) between real brokers on loopback:
 *
 *   cairn_to_mosquitto: out, in and both topics with prefixes mapped as Mosquitto maps them, at
 *     QoS 0, 1 and 2 (each delivered at the lower of the publish's and the topic line's), a
 *     "both" topic crossing each way exactly once (no echo: Mosquitto knows try_private);
 *   mosquitto_to_cairn: Mosquitto's own bridge into Cairn: Cairn takes its CONNECT with the
 *     bridge bit (0x84), sends nothing back it published, lets it write its state under
 *     $SYS/broker/connection/; and without try_private a "both" topic still does not loop;
 *   cairn_to_cairn: a bridge both ways between two Cairns, retained messages forwarded retained
 *     each way, bridge_outgoing_retain false, the local retained ones of out topics sent on
 *     connect; loops stopped without try_private as well (one echo, no more);
 *   notifications: the retained "1"/"0" on both sides, the remote's through the link's will
 *     when the local broker is killed;
 *   tls_client_cert: TLS to a remote that requires a client certificate (Mosquitto), by address
 *     and by name; a wrong CA and a missing certificate fail the handshake, which the bridge's
 *     $SYS last_error and its /metrics say;
 *   reload: SIGHUP restarts the bridge whose block changed and keeps the other's connection;
 *   lazy_once: start_type lazy connects at its threshold and closes after idle_timeout; once
 *     gives up after its attempt;
 *   bridge_client_id: a client may not take a bridge's local session;
 *   config_refused: a bridge that cannot work stops start-up, naming FILE:LINE;
 *   fake_remote: the CONNECT a remote gets (the bridge bit, the will, credentials), CONNACK 1
 *     to the bit answered by a plain CONNECT at once, the state and the SUBSCRIBE first, and a
 *     PINGREQ nobody answers closing the link;
 *   failover: round_robin false moves back to the first address once it answers.
 *
 * Cairn only: the local broker of each case is Cairn whatever CAIRN_TEST_BROKER says (the remote
 * kinds are chosen per case); run in Mosquitto mode the cases are skipped.
 */
#define _GNU_SOURCE /* accept4 */
#include "harness_bridge.h"
#include "harness_tls.h"
#include "harness_ws.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 10000

static const char bridge_up[] = "bridge edge: connected to";

/* The local Cairn of most cases: a bridge "edge" to @R with the topics of tmpl. */
static struct broker *local_start(const char *topics, int remote_port)
{
    char conf[4096];

    snprintf(conf, sizeof(conf),
             "connection edge\naddress 127.0.0.1:@R\nrestart_timeout 1\nremote_clientid edge-1\n"
             "%s",
             topics);
    return hb_start(BROKER_CAIRN, conf, remote_port, 0);
}

static MQTTClient sub_on(const struct broker *b, const char *id, const char *const *filters)
{
    struct pc_opts o = {.id = id};
    MQTTClient c = pc_connect(b, &o, NULL, NULL);

    for (size_t i = 0; c && filters[i]; i++)
        if (pc_subscribe(c, filters[i], 2) != 2)
            pc_close(&c);
    return c;
}

static void test_cairn_to_mosquitto(void)
{
    struct broker *r = NULL, *l = NULL;
    MQTTClient rs = NULL, ls = NULL, rp = NULL, lp = NULL;
    struct pc_opts po = {.id = "l-pub"}, ro = {.id = "r-pub"};
    char topic[64], want[64], payload[16];

    if (harness_cairn_only("the local broker is Cairn"))
        goto out;
    r = hb_start(BROKER_MOSQUITTO, "max_queued_messages 0", 0, 0);
    T_ASSERT(r);
    l = local_start("topic up/# out 2 local/ remote/\ntopic down/# in 2 here/ there/\n"
                    "topic sync/# both 2\ntopic low/# out 1\n",
                    broker_port(r));
    T_ASSERT(l);
    rs = sub_on(r, "r-sub", (const char *const[]){"remote/#", "sync/#", "low/#", NULL});
    ls = sub_on(l, "l-sub", (const char *const[]){"here/#", "sync/#", NULL});
    lp = pc_connect(l, &po, NULL, NULL);
    rp = pc_connect(r, &ro, NULL, NULL);
    T_ASSERT(rs && ls && lp && rp);
    T_EQ(hb_wait_log_count(l, bridge_up, 1, HB_WAIT_MS), 0);
    T_EQ(hb_until_forwarded(lp, "local/up/probe", rs, "remote/up/probe", HB_WAIT_MS), 0);
    T_EQ(hb_until_forwarded(rp, "there/down/probe", ls, "here/down/probe", HB_WAIT_MS), 0);
    for (int q = 0; q <= 2; q++) {
        snprintf(payload, sizeof(payload), "q%d", q);
        snprintf(topic, sizeof(topic), "local/up/%d", q);
        snprintf(want, sizeof(want), "remote/up/%d", q);
        T_EQ(pc_publish_str(lp, topic, payload, q, false), 0);
        T_EQ(hb_expect(rs, want, payload, q, WAIT_MS), 0);
        snprintf(topic, sizeof(topic), "there/down/%d", q);
        snprintf(want, sizeof(want), "here/down/%d", q);
        T_EQ(pc_publish_str(rp, topic, payload, q, false), 0);
        T_EQ(hb_expect(ls, want, payload, q, WAIT_MS), 0);
        /* the topic line's QoS caps the delivery: low/# is QoS 1 */
        snprintf(topic, sizeof(topic), "low/%d", q);
        T_EQ(pc_publish_str(lp, topic, payload, q, false), 0);
        T_EQ(hb_expect(rs, topic, payload, q < 1 ? q : 1, WAIT_MS), 0);
    }
    /* both: each way once, not back again (a second copy would come before the marker) */
    T_EQ(pc_publish_str(lp, "sync/a", "from-local", 1, false), 0);
    T_EQ(hb_expect(ls, "sync/a", "from-local", 1, WAIT_MS), 0);
    T_EQ(hb_expect(rs, "sync/a", "from-local", 1, WAIT_MS), 0);
    T_EQ(pc_publish_str(rp, "sync/b", "from-remote", 1, false), 0);
    T_EQ(hb_expect(rs, "sync/b", "from-remote", 1, WAIT_MS), 0);
    T_EQ(hb_expect(ls, "sync/b", "from-remote", 1, WAIT_MS), 0);
    T_EQ(pc_publish_str(lp, "sync/marker", "m1", 1, false), 0);
    T_EQ(hb_expect(ls, "sync/marker", "m1", 1, WAIT_MS), 0);
    T_EQ(hb_expect(rs, "sync/marker", "m1", 1, WAIT_MS), 0);
    T_EQ(pc_publish_str(rp, "sync/marker", "m2", 1, false), 0);
    T_EQ(hb_expect(rs, "sync/marker", "m2", 1, WAIT_MS), 0);
    T_EQ(hb_expect(ls, "sync/marker", "m2", 1, WAIT_MS), 0);
out:
    pc_close(&rs);
    pc_close(&ls);
    pc_close(&rp);
    pc_close(&lp);
    broker_free(l);
    broker_free(r);
}

/* Read c until a message on topic (what came before it is skipped). 0 or -1. */
static int fence(MQTTClient c, const char *topic)
{
    struct pc_msg m = {0};
    int rc = -1;

    while (pc_recv(c, &m, WAIT_MS) == 1) {
        bool end = strcmp(m.topic, topic) == 0;
        pc_msg_free(&m);
        if (end) {
            rc = 0;
            break;
        }
    }
    return rc;
}

/* Mosquitto's bridge into Cairn, with (0x84) and without the bridge bit. */
static void mosquitto_into_cairn(bool try_private)
{
    struct broker *r = NULL, *l = NULL;
    MQTTClient rs = NULL, ls = NULL, rp = NULL, lp = NULL;
    struct pc_opts po = {.id = "m-pub"}, ro = {.id = "c-pub"};
    char conf[512];
    int echoes = 0;

    if (harness_cairn_only("the remote broker is Cairn"))
        goto out;
    r = hb_start(BROKER_CAIRN, "", 0, 0); /* the remote: Cairn */
    T_ASSERT(r);
    snprintf(conf, sizeof(conf),
             "connection tocairn\naddress 127.0.0.1:@R\nremote_clientid mosq-edge\n"
             "topic a/# both 1\nrestart_timeout 1\ntry_private %s\n",
             try_private ? "true" : "false");
    l = hb_start(BROKER_MOSQUITTO, conf, broker_port(r), 0);
    T_ASSERT(l);
    rs = sub_on(r, "c-sub", (const char *const[]){"a/#", "$SYS/broker/connection/#", NULL});
    ls = sub_on(l, "m-sub", (const char *const[]){"a/#", NULL});
    lp = pc_connect(l, &po, NULL, NULL);
    rp = pc_connect(r, &ro, NULL, NULL);
    T_ASSERT(rs && ls && lp && rp);
    T_EQ(hb_wait_log_count(r,
                           try_private ? "mosq-edge connected (p4, c0, k60, bridge)"
                                       : "mosq-edge connected (p4, c0, k60)",
                           1, HB_WAIT_MS),
         0);
    /* Mosquitto's state notification: a client's write under $SYS Cairn accepts */
    T_EQ(hb_expect(rs, "$SYS/broker/connection/mosq-edge/state", "1", -1, WAIT_MS), 0);
    T_EQ(hb_until_forwarded(lp, "a/probe", rs, "a/probe", HB_WAIT_MS), 0);
    T_EQ(hb_until_forwarded(rp, "a/probe2", ls, "a/probe2", HB_WAIT_MS), 0);
    /* the probes Cairn's subscriber got directly, and any still crossing: all before a fence */
    T_EQ(pc_publish_str(rp, "a/fence", "f", 1, false), 0);
    T_EQ(fence(rs, "a/fence"), 0);
    T_EQ(fence(ls, "a/fence"), 0);
    /*
     * a/1 from Mosquitto's side, a/2 from Cairn's, then a marker from Cairn's: what each side's
     * subscriber gets before the marker. Without the bit Cairn treats Mosquitto's bridge as any
     * subscriber and sends a/1 back once; Mosquitto routes it to its own subscribers again but
     * never out over the bridge it came in by, so it stops there.
     */
    T_EQ(pc_publish_str(lp, "a/1", "from-mosquitto", 1, false), 0);
    T_EQ(hb_expect(rs, "a/1", "from-mosquitto", 1, WAIT_MS), 0);
    T_EQ(pc_publish_str(rp, "a/2", "from-cairn", 1, false), 0);
    T_EQ(hb_expect(rs, "a/2", "from-cairn", 1, WAIT_MS), 0);
    T_EQ(pc_publish_str(rp, "a/end", "marker", 1, false), 0);
    T_EQ(hb_expect(rs, "a/end", "marker", 1, WAIT_MS), 0);
    T_EQ(hb_expect(ls, "a/1", "from-mosquitto", 1, WAIT_MS), 0);
    if (!try_private) {
        T_EQ(hb_expect(ls, "a/1", "from-mosquitto", 1, WAIT_MS), 0);
        echoes++;
    }
    T_EQ(hb_expect(ls, "a/2", "from-cairn", 1, WAIT_MS), 0);
    T_EQ(hb_expect(ls, "a/end", "marker", 1, WAIT_MS), 0);
    t_note("try_private %s: %d echo back to Mosquitto", try_private ? "true" : "false", echoes);
out:
    pc_close(&rs);
    pc_close(&ls);
    pc_close(&rp);
    pc_close(&lp);
    broker_free(l);
    broker_free(r);
}

static void test_mosquitto_to_cairn(void)
{
    mosquitto_into_cairn(true);
}

static void test_mosquitto_to_cairn_plain(void)
{
    mosquitto_into_cairn(false);
}

/* ---- Cairn to Cairn ------------------------------------------------------------------------ */

static void cairn_pair(bool try_private)
{
    struct broker *r = NULL, *l = NULL;
    MQTTClient rs = NULL, ls = NULL, rp = NULL, lp = NULL, late = NULL;
    struct pc_opts po = {.id = "l-pub"}, ro = {.id = "r-pub"}, lo = {.id = "late"};
    struct pc_msg m = {0};
    char conf[2048];
    int rport = harness_free_port();

    if (harness_cairn_only("both brokers are Cairn"))
        goto out;
    /* the local one first: its bridge waits for a remote that is not there yet */
    snprintf(conf, sizeof(conf),
             "topic keep/# out 1\ntopic get/# in 1 mine/ theirs/\ntopic both/# both 2\n"
             "try_private %s\n"
             "connection noret\naddress 127.0.0.1:@R\nrestart_timeout 1\nremote_clientid noret-1\n"
             "topic noret/# out 1\nbridge_outgoing_retain false\n",
             try_private ? "true" : "false");
    l = local_start(conf, rport);
    T_ASSERT(l);
    lp = pc_connect(l, &po, NULL, NULL);
    T_ASSERT(lp);
    /* acknowledged while the remote is away: queued in the bridge's session, retained */
    T_EQ(pc_publish_str(lp, "keep/early", "e", 1, true), 0);
    r = hb_start(BROKER_CAIRN, "", 0, rport);
    T_ASSERT(r);
    T_EQ(hb_wait_log_count(l, bridge_up, 1, HB_WAIT_MS), 0);
    rs = sub_on(r, "r-sub", (const char *const[]){"keep/#", "both/#", "noret/#", "fence", NULL});
    ls = sub_on(l, "l-sub", (const char *const[]){"mine/#", "both/#", NULL});
    rp = pc_connect(r, &ro, NULL, NULL);
    T_ASSERT(rs && ls && rp);
    T_EQ(hb_until_forwarded(lp, "keep/probe", rs, "keep/probe", HB_WAIT_MS), 0);
    T_EQ(hb_until_forwarded(rp, "theirs/get/probe", ls, "mine/get/probe", HB_WAIT_MS), 0);
    T_EQ(pc_publish_str(rp, "fence", "f", 1, false), 0);
    T_EQ(fence(rs, "fence"), 0);
    /* retained, each way; noret's remote gets no retained copy */
    T_EQ(pc_publish_str(lp, "keep/late", "l", 1, true), 0);
    T_EQ(pc_publish_str(lp, "noret/x", "n", 1, true), 0);
    T_EQ(pc_publish_str(rp, "theirs/get/y", "y", 1, true), 0);
    T_EQ(hb_expect(rs, "keep/late", "l", 1, WAIT_MS), 0);
    T_EQ(pc_recv(rs, &m, WAIT_MS), 1);
    T_ASSERTF(strcmp(m.topic, "noret/x") == 0 && m.retained == 0, "%s retained %d", m.topic,
              m.retained);
    pc_msg_free(&m);
    T_EQ(hb_expect(ls, "mine/get/y", "y", 1, WAIT_MS), 0);
    late = pc_connect(r, &lo, NULL, NULL);
    T_ASSERT(late);
    T_EQ(pc_subscribe(late, "keep/#", 1), 1);
    for (int i = 0; i < 2; i++) { /* early (queued while away) and late, both retained */
        T_EQ(pc_recv(late, &m, WAIT_MS), 1);
        T_ASSERTF(m.retained &&
                      (strcmp(m.topic, "keep/early") == 0 || strcmp(m.topic, "keep/late") == 0),
                  "%s retained %d", m.topic, m.retained);
        pc_msg_free(&m);
    }
    T_EQ(pc_subscribe(late, "noret/#", 1), 1);
    /* not retained over there: a retained one would come before this marker */
    T_EQ(pc_subscribe(late, "late-marker", 1), 1);
    T_EQ(pc_publish_str(rp, "late-marker", "m", 1, false), 0);
    T_EQ(hb_expect(late, "late-marker", "m", 1, WAIT_MS), 0);
    pc_close(&late);
    /*
     * Coming in, the RETAIN flag is the remote's to send: with the bit a Cairn remote sends it
     * as published (as Mosquitto does to a bridge); without it the remote treats the bridge as
     * any subscriber, which gets RETAIN 0 on a live message [MQTT-3.3.1-9], so nothing is
     * retained here (Mosquitto's bridges too).
     */
    late = pc_connect(l, &lo, NULL, NULL);
    T_ASSERT(late);
    T_EQ(pc_subscribe(late, "mine/get/y", 1), 1);
    if (try_private) {
        T_EQ(pc_recv(late, &m, WAIT_MS), 1);
        T_ASSERTF(m.retained && strcmp(m.payload, "y") == 0, "%s retained %d", m.topic, m.retained);
        pc_msg_free(&m);
    } else {
        T_EQ(pc_subscribe(late, "late-marker", 1), 1);
        T_EQ(pc_publish_str(lp, "late-marker", "m", 1, false), 0);
        T_EQ(hb_expect(late, "late-marker", "m", 1, WAIT_MS), 0);
    }
    /* both: no loop; without the bit Cairn's remote sends it back once, and no more */
    T_EQ(pc_publish_str(lp, "both/1", "b", 2, false), 0);
    T_EQ(hb_expect(rs, "both/1", "b", 2, WAIT_MS), 0);
    T_EQ(hb_expect(ls, "both/1", "b", 2, WAIT_MS), 0);
    if (!try_private)
        T_EQ(hb_expect(ls, "both/1", "b", 2, WAIT_MS), 0);
    T_EQ(pc_publish_str(rp, "both/end", "e", 2, false), 0);
    T_EQ(hb_expect(rs, "both/end", "e", 2, WAIT_MS), 0);
    T_EQ(hb_expect(ls, "both/end", "e", 2, WAIT_MS), 0);
out:
    pc_msg_free(&m);
    pc_close(&late);
    pc_close(&rs);
    pc_close(&ls);
    pc_close(&rp);
    pc_close(&lp);
    broker_free(l);
    broker_free(r);
}

static void test_cairn_to_cairn(void)
{
    cairn_pair(true);
}

static void test_cairn_to_cairn_plain(void)
{
    cairn_pair(false);
}

/* ---- notifications -------------------------------------------------------------------------- */

/* Read c until topic carries payload. 0 or -1. */
static int until_payload(MQTTClient c, const char *topic, const char *payload)
{
    struct pc_msg m = {0};
    int rc = -1;

    while (pc_recv(c, &m, HB_WAIT_MS) == 1) {
        bool hit = strcmp(m.topic, topic) == 0 && strcmp(m.payload, payload) == 0;
        pc_msg_free(&m);
        if (hit) {
            rc = 0;
            break;
        }
    }
    if (rc)
        t_note("no '%s' on %s", payload, topic);
    return rc;
}

static void test_notifications(void)
{
    static const char state[] = "$SYS/broker/connection/edge-1/state";
    struct broker *r = NULL, *l = NULL;
    MQTTClient rs = NULL, ls = NULL;
    int rport = harness_free_port();

    if (harness_cairn_only("both brokers are Cairn"))
        goto out;
    r = hb_start(BROKER_CAIRN, "", 0, rport);
    T_ASSERT(r);
    l = local_start("topic n/# out 1\nnotification_topic bridges/edge/state\n", rport);
    T_ASSERT(l);
    rs = sub_on(r, "r-sub", (const char *const[]){"bridges/#", NULL});
    ls = sub_on(l, "l-sub", (const char *const[]){"bridges/#", NULL});
    T_ASSERT(rs && ls);
    T_EQ(until_payload(rs, "bridges/edge/state", "1"), 0);
    T_EQ(until_payload(ls, "bridges/edge/state", "1"), 0);
    /* the remote goes: "0" here */
    T_EQ(broker_kill9(r), 0);
    T_EQ(until_payload(ls, "bridges/edge/state", "0"), 0);
    pc_close(&rs);
    T_EQ(broker_restart(r), 0);
    T_EQ(until_payload(ls, "bridges/edge/state", "1"), 0);
    rs = sub_on(r, "r-sub2", (const char *const[]){"bridges/#", NULL});
    T_ASSERT(rs);
    T_EQ(until_payload(rs, "bridges/edge/state", "1"), 0); /* retained, over a restart too */
    /* the local broker dies: its will says so over there */
    T_EQ(broker_kill9(l), 0);
    T_EQ(until_payload(rs, "bridges/edge/state", "0"), 0);
    pc_close(&ls);
    /* the default topic: $SYS/broker/connection/REMOTE_CLIENTID/state */
    broker_free(l);
    l = local_start("topic n/# out 1\n", rport);
    T_ASSERT(l);
    pc_close(&rs);
    rs = sub_on(r, "r-sub3", (const char *const[]){"$SYS/broker/connection/#", NULL});
    T_ASSERT(rs);
    T_EQ(until_payload(rs, state, "1"), 0);
out:
    pc_close(&rs);
    pc_close(&ls);
    broker_free(l);
    broker_free(r);
}

/* ---- TLS ------------------------------------------------------------------------------------ */

/* The value retained on topic of b (sys_interval 1 keeps it fresh), into out. 0 or -1. */
static int sys_value(const struct broker *b, const char *topic, char *out, size_t cap)
{
    struct pc_opts o = {.id = "sys-reader"};
    MQTTClient c = pc_connect(b, &o, NULL, NULL);
    struct pc_msg m = {0};
    int rc = -1;

    if (!c || pc_subscribe(c, topic, 0) != 0 || pc_recv(c, &m, WAIT_MS) != 1)
        goto out;
    snprintf(out, cap, "%s", m.payload);
    rc = 0;
out:
    pc_msg_free(&m);
    pc_close(&c);
    return rc;
}

static void test_tls_client_cert(void)
{
    static const char bridges[] =
        "connection edge\naddress 127.0.0.1:@P\nrestart_timeout 1\nremote_clientid edge-ip\n"
        "bridge_cafile @D/ca.crt\nbridge_certfile @D/client.crt\nbridge_keyfile @D/client.key\n"
        "topic t/# out 1\n"
        "connection byname\naddress localhost:@P\nrestart_timeout 1\nremote_clientid edge-name\n"
        "bridge_cafile @D/ca.crt\nbridge_certfile @D/client.crt\nbridge_keyfile @D/client.key\n"
        "topic n/# out 1\n"
        "connection nocert\naddress 127.0.0.1:@P\nrestart_timeout 1\nbridge_cafile @D/ca.crt\n"
        "topic x/# out 1\n"
        "connection wrongca\naddress 127.0.0.1:@P\nrestart_timeout 1\n"
        "bridge_cafile @D/other-ca.crt\nbridge_certfile @D/client.crt\n"
        "bridge_keyfile @D/client.key\ntopic y/# out 1\n"
        "sys_interval 1\nlistener @M 127.0.0.1\nprotocol http_metrics\n";
    struct tls_env e = {0};
    struct broker *l = NULL;
    MQTTClient rs = NULL, lp = NULL;
    struct pc_opts po = {.id = "l-pub"};
    char conf[4096], tmpl[4096], v[300], req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                                         *resp = NULL;
    int mport = harness_free_port();

    if (harness_cairn_only("the local broker is Cairn"))
        goto out;
    T_EQ(tls_env_certs(&e), 0);
    tls_env_expand(conf, sizeof(conf), tls_env_cert_listener, &e);
    e.b = hb_start(BROKER_MOSQUITTO, conf, 0, 0); /* Mosquitto's OpenSSL on the far side */
    T_ASSERT(e.b);
    snprintf(tmpl, sizeof(tmpl), "%s", bridges);
    {
        char *mp = strstr(tmpl, "@M");
        char rest[4096];
        snprintf(rest, sizeof(rest), "%d%s", mport, mp + 2);
        strcpy(mp, rest);
    }
    tls_env_expand(conf, sizeof(conf), tmpl, &e);
    l = hb_start(BROKER_CAIRN, conf, 0, 0);
    T_ASSERT(l);
    rs = sub_on(e.b, "r-sub", (const char *const[]){"t/#", "n/#", NULL});
    lp = pc_connect(l, &po, NULL, NULL);
    T_ASSERT(rs && lp);
    T_EQ(hb_wait_log_count(l, "bridge edge: connected to", 1, HB_WAIT_MS), 0);
    T_EQ(hb_wait_log_count(l, "bridge byname: connected to", 1, HB_WAIT_MS), 0);
    T_EQ(hb_until_forwarded(lp, "t/probe", rs, "t/probe", HB_WAIT_MS), 0);
    T_EQ(hb_until_forwarded(lp, "n/probe", rs, "n/probe", HB_WAIT_MS), 0);
    T_EQ(pc_publish_str(lp, "t/1", "over TLS", 2, false), 0);
    T_EQ(hb_expect(rs, "t/1", "over TLS", 1, WAIT_MS), 0);
    /* the two that cannot: the remote wants a certificate; ours does not trust the remote's */
    T_EQ(hb_wait_log_count(l, "bridge nocert: link to", 1, HB_WAIT_MS), 0);
    T_EQ(hb_wait_log_count(l, "bridge wrongca: link to", 1, HB_WAIT_MS), 0);
    T_EQ(hb_wait_log_count(l, "the remote's certificate did not verify", 1, HB_WAIT_MS), 0);
    T_EQ(sys_value(l, "$SYS/broker/bridge/wrongca/last_error", v, sizeof(v)), 0);
    T_ASSERTF(strstr(v, "TLS handshake failed: the remote's certificate did not verify"), "%s", v);
    T_EQ(sys_value(l, "$SYS/broker/bridge/nocert/last_error", v, sizeof(v)), 0);
    T_ASSERTF(strstr(v, "TLS handshake failed") || strstr(v, "closed by peer"), "%s", v);
    T_EQ(sys_value(l, "$SYS/broker/bridge/edge/state", v, sizeof(v)), 0);
    T_ASSERTF(strcmp(v, "connected") == 0, "%s", v);
    T_EQ(ws_http(mport, req, strlen(req), &resp, WAIT_MS), 200);
    T_ASSERTF(strstr(resp, "cairn_bridge_up{bridge=\"edge\"} 1") &&
                  strstr(resp, "cairn_bridge_up{bridge=\"wrongca\"} 0") &&
                  strstr(resp, "cairn_bridge_info{bridge=\"wrongca\",state=\""),
              "%s", resp);
    T_EQ(broker_stop_term(l, 10000), 0); /* with TLS links up and failing (ASan: no leak) */
out:
    free(resp);
    pc_close(&rs);
    pc_close(&lp);
    broker_free(l);
    tls_env_stop(&e);
}

/* ---- reload --------------------------------------------------------------------------------- */

static int rewrite(const struct broker *b, const char *from, const char *to)
{
    char *text = NULL, *at;
    FILE *f = fopen(broker_conf_path(b), "r");
    long n;
    int rc = -1;

    if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
        goto out;
    text = calloc(1, (size_t)n + strlen(to) + 1);
    if (!text || fread(text, 1, (size_t)n, f) != (size_t)n || !(at = strstr(text, from)))
        goto out;
    fclose(f);
    f = fopen(broker_conf_path(b), "w");
    if (!f)
        goto out;
    fprintf(f, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    rc = 0;
out:
    if (f)
        fclose(f);
    free(text);
    return rc;
}

static void test_reload(void)
{
    struct broker *r = NULL, *l = NULL;
    MQTTClient rs = NULL, lp = NULL;
    struct pc_opts po = {.id = "l-pub"};

    if (harness_cairn_only("both brokers are Cairn"))
        goto out;
    r = hb_start(BROKER_CAIRN, "", 0, 0);
    T_ASSERT(r);
    l = hb_start(BROKER_CAIRN,
                 "connection keep\naddress 127.0.0.1:@R\nremote_clientid keep-1\ntopic k/# out 1\n"
                 "connection change\naddresses 127.0.0.1:@R\nremote_clientid change-1\n"
                 "topic c/# out 1\n",
                 broker_port(r), 0);
    T_ASSERT(l);
    rs = sub_on(r, "r-sub", (const char *const[]){"k/#", "c/#", "c2/#", NULL});
    lp = pc_connect(l, &po, NULL, NULL);
    T_ASSERT(rs && lp);
    T_EQ(hb_wait_log_count(r, "keep-1 connected", 1, HB_WAIT_MS), 0);
    T_EQ(hb_wait_log_count(r, "change-1 connected", 1, HB_WAIT_MS), 0);
    T_EQ(hb_until_forwarded(lp, "c/probe", rs, "c/probe", HB_WAIT_MS), 0);
    /* retained before the bridge forwards its topic: sent when its changed block links */
    T_EQ(pc_publish_str(lp, "c2/pre", "p", 1, true), 0);
    T_EQ(rewrite(l, "topic c/# out 1", "topic c2/# out 1"), 0);
    T_EQ(broker_signal(l, SIGHUP), 0);
    T_EQ(hb_wait_log_count(l, "reload: bridge change changed: restarting", 1, HB_WAIT_MS), 0);
    T_EQ(hb_wait_log_count(r, "change-1 connected", 2, HB_WAIT_MS), 0);
    T_EQ(hb_expect(rs, "c2/pre", "p", 1, WAIT_MS), 0);
    T_EQ(hb_until_forwarded(lp, "c2/probe", rs, "c2/probe", HB_WAIT_MS), 0);
    T_EQ(hb_until_forwarded(lp, "k/probe", rs, "k/probe", HB_WAIT_MS), 0);
    T_EQ(hb_log_count(r, "keep-1 connected"), 1); /* kept its connection throughout */
    T_EQ(hb_log_count(r, "keep-1 closed"), 0);
    /* c/# is not bridged any more: the next on the remote is the marker */
    T_EQ(pc_publish_str(lp, "c/old", "x", 1, false), 0);
    T_EQ(pc_publish_str(lp, "k/marker", "m", 1, false), 0);
    T_EQ(hb_expect(rs, "k/marker", "m", 1, WAIT_MS), 0);
    /* removed: stopped, its session stays */
    T_EQ(rewrite(l, "connection change", "#"), 0);
    T_EQ(rewrite(l, "addresses", "#"), 0);
    T_EQ(rewrite(l, "remote_clientid change-1", "#"), 0);
    T_EQ(rewrite(l, "topic c2/# out 1", "#"), 0);
    T_EQ(broker_signal(l, SIGHUP), 0);
    T_EQ(hb_wait_log_count(l, "reload: bridge change removed: stopping", 1, HB_WAIT_MS), 0);
    T_EQ(hb_wait_log_count(r, "change-1 closed", 2, HB_WAIT_MS), 0);
    T_EQ(hb_log_count(r, "keep-1 closed"), 0);
    T_EQ(broker_stop_term(l, 10000), 0); /* a clean stop with a bridge up (ASan: no leak) */
out:
    pc_close(&rs);
    pc_close(&lp);
    broker_free(l);
    broker_free(r);
}

/* ---- start types, the local session --------------------------------------------------------- */

static void test_lazy_once(void)
{
    struct broker *r = NULL, *l = NULL;
    MQTTClient rs = NULL, lp = NULL;
    struct pc_opts po = {.id = "l-pub"};
    char conf[1024];

    if (harness_cairn_only("both brokers are Cairn"))
        goto out;
    r = hb_start(BROKER_CAIRN, "", 0, 0);
    T_ASSERT(r);
    rs = sub_on(r, "r-sub", (const char *const[]){"z/#", NULL});
    T_ASSERT(rs);
    snprintf(conf, sizeof(conf),
             "connection lazy\naddress 127.0.0.1:@R\nremote_clientid lazy-1\ntopic z/# out 1\n"
             "start_type lazy\nthreshold 3\nidle_timeout 1\n"
             "connection once\naddress 127.0.0.1:%d\nstart_type once\ntopic o/# out 1\n",
             harness_free_port());
    l = hb_start(BROKER_CAIRN, conf, broker_port(r), 0);
    T_ASSERT(l);
    lp = pc_connect(l, &po, NULL, NULL);
    T_ASSERT(lp);
    T_EQ(hb_wait_log_count(l, "bridge once: not started again (start_type once)", 1, HB_WAIT_MS),
         0);
    T_EQ(pc_publish_str(lp, "z/1", "1", 1, false), 0);
    T_EQ(pc_publish_str(lp, "z/2", "2", 1, false), 0);
    /* one more loop pass (an acknowledged message elsewhere): a start would have begun */
    T_EQ(pc_publish_str(lp, "elsewhere", "x", 1, false), 0);
    T_EQ(hb_log_count(l, "bridge lazy: connecting"), 0);
    T_EQ(pc_publish_str(lp, "z/3", "3", 1, false), 0);
    T_EQ(hb_wait_log_count(l, "bridge lazy: connected to", 1, HB_WAIT_MS), 0);
    for (int i = 1; i <= 3; i++) {
        char t[8], p[8];
        snprintf(t, sizeof(t), "z/%d", i);
        snprintf(p, sizeof(p), "%d", i);
        T_EQ(hb_expect(rs, t, p, 1, WAIT_MS), 0);
    }
    T_EQ(
        hb_wait_log_count(l, "bridge lazy: idle for 1 s (start_type lazy): closing", 1, HB_WAIT_MS),
        0);
    T_EQ(hb_log_count(l, "bridge once: connecting"), 1);
    T_EQ(broker_stop_term(l, 10000), 0);
out:
    pc_close(&rs);
    pc_close(&lp);
    broker_free(l);
    broker_free(r);
}

static void test_bridge_client_id(void)
{
    struct broker *l = NULL;
    struct raw_conn_opts o = {.id = "$bridge/edge", .persistent = true};
    int fd = -1, rc = -1;

    if (harness_cairn_only("Cairn's own local session id"))
        goto out;
    l = local_start("topic a/# out 1\n", harness_free_port());
    T_ASSERT(l);
    fd = raw_mqtt_connect(l, &o, &rc, NULL);
    T_ASSERT(fd >= 0);
    T_EQ(rc, 2);
out:
    if (fd >= 0)
        close(fd);
    broker_free(l);
}

/* ---- a remote the test plays itself -------------------------------------------------------- */

/* A listening loopback socket; its port in *port. -1 on failure. */
static int fake_listen(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int fake_accept(int lfd, int timeout_ms)
{
    struct pollfd pf = {.fd = lfd, .events = POLLIN};

    return poll(&pf, 1, timeout_ms) == 1 ? accept4(lfd, NULL, NULL, SOCK_CLOEXEC) : -1;
}

/* A CONNECT's fields, as the bridge sent them. */
struct fake_connect {
    int level, flags, keepalive;
    char id[64], will_topic[64], will_payload[8], user[32], pass[32];
};

static int fake_str(const uint8_t **p, const uint8_t *end, char *out, size_t cap)
{
    size_t n;

    if (end - *p < 2 || (n = (size_t)((*p)[0] << 8 | (*p)[1])) > (size_t)(end - *p - 2) || n >= cap)
        return -1;
    memcpy(out, *p + 2, n);
    out[n] = '\0';
    *p += 2 + n;
    return 0;
}

static int fake_read_connect(int fd, struct fake_connect *c)
{
    struct raw_pkt k = {0};
    const uint8_t *p, *end;
    char name[8];
    int rc = -1;

    memset(c, 0, sizeof(*c));
    if (raw_read_packet(fd, &k, WAIT_MS) != 1 || k.first != 0x10)
        goto out;
    p = k.body;
    end = k.body + k.len;
    if (fake_str(&p, end, name, sizeof(name)) || end - p < 4)
        goto out;
    c->level = p[0];
    c->flags = p[1];
    c->keepalive = p[2] << 8 | p[3];
    p += 4;
    if (fake_str(&p, end, c->id, sizeof(c->id)))
        goto out;
    if ((c->flags & 0x04) && (fake_str(&p, end, c->will_topic, sizeof(c->will_topic)) ||
                              fake_str(&p, end, c->will_payload, sizeof(c->will_payload))))
        goto out;
    if ((c->flags & 0x80) && fake_str(&p, end, c->user, sizeof(c->user)))
        goto out;
    if ((c->flags & 0x40) && fake_str(&p, end, c->pass, sizeof(c->pass)))
        goto out;
    rc = 0;
out:
    raw_pkt_free(&k);
    return rc;
}

/*
 * The bridge's CONNECT as a remote sees it; a remote that refuses the bridge bit (CONNACK 1)
 * gets the plain level at once; the will, the "1", the SUBSCRIBE; and a PINGREQ nobody answers
 * closes the link in 1.5 keepalive intervals.
 */
static void test_fake_remote(void)
{
    struct broker *l = NULL;
    struct fake_connect c;
    struct raw_pkt k = {0};
    int lfd = -1, fd = -1, port = 0;
    char conf[1024];
    static const uint8_t connack_refused[] = {0x20, 2, 0, 1}, connack_ok[] = {0x20, 2, 0, 0};
    uint64_t t0;

    if (harness_cairn_only("the local broker is Cairn"))
        goto out;
    lfd = fake_listen(&port);
    T_ASSERT(lfd >= 0);
    snprintf(conf, sizeof(conf),
             "connection edge\naddress 127.0.0.1:%d\nrestart_timeout 30\nremote_clientid e-1\n"
             "remote_username u\nremote_password p\nkeepalive_interval 5\n"
             "notification_topic n/state\ntopic t/# in 1 here/ there/\ntopic o/# out 1\n"
             "bridge_attempt_unsubscribe false\n",
             port);
    l = hb_start(BROKER_CAIRN, conf, 0, 0);
    T_ASSERT(l);
    T_ASSERT((fd = fake_accept(lfd, WAIT_MS)) >= 0);
    T_EQ(fake_read_connect(fd, &c), 0);
    T_EQ(c.level, 0x84);                             /* try_private */
    T_EQ(c.flags, 0x80 | 0x40 | 0x20 | 0x08 | 0x04); /* user, password, will retained QoS 1;
                                                         clean session 0 */
    T_EQ(c.keepalive, 5);
    T_ASSERT(strcmp(c.id, "e-1") == 0 && strcmp(c.user, "u") == 0 && strcmp(c.pass, "p") == 0);
    T_ASSERT(strcmp(c.will_topic, "n/state") == 0 && strcmp(c.will_payload, "0") == 0);
    /* a remote that does not know the bridge bit: the next attempt at once, without it (the
     * restart_timeout of 30 s would fail this wait) */
    T_EQ(raw_send(fd, connack_refused, sizeof(connack_refused)), 0);
    T_EQ(raw_expect_close(fd, WAIT_MS), 0);
    close(fd);
    T_ASSERT((fd = fake_accept(lfd, WAIT_MS)) >= 0);
    T_EQ(fake_read_connect(fd, &c), 0);
    T_EQ(c.level, 4);
    T_EQ(raw_send(fd, connack_ok, sizeof(connack_ok)), 0);
    T_EQ(raw_read_packet(fd, &k, WAIT_MS), 1); /* the state, before anything else */
    T_ASSERTF(k.first == 0x31 && k.topic && strcmp(k.topic, "n/state") == 0 && k.payload_len == 1 &&
                  k.payload[0] == '1',
              "first 0x%02x", k.first);
    raw_pkt_free(&k);
    T_EQ(raw_read_packet(fd, &k, WAIT_MS), 1);
    T_ASSERTF(k.first == 0x82 && k.len == 2 + 2 + 9 + 1 &&
                  memcmp(k.body + 4, "there/t/#", 9) == 0 && k.body[k.len - 1] == 1,
              "first 0x%02x len %zu", k.first, k.len);
    raw_pkt_free(&k);
    /* keepalive: a PINGREQ within the interval, then the link goes when nothing answers */
    t0 = t_now_ms();
    T_EQ(raw_read_packet(fd, &k, 8000), 1);
    T_EQ(k.first, 0xc0);
    raw_pkt_free(&k);
    T_EQ(raw_expect_close(fd, 8000), 0);
    T_ASSERTF(t_now_ms() - t0 >= 5000, "closed after %llu ms",
              (unsigned long long)(t_now_ms() - t0));
    T_EQ(hb_wait_log_count(l, "closed: no answer to PINGREQ", 1, WAIT_MS), 0);
out:
    raw_pkt_free(&k);
    if (fd >= 0)
        close(fd);
    if (lfd >= 0)
        close(lfd);
    broker_free(l);
}

/* round_robin false: on the second address while the first is down, back to the first. */
static void test_failover(void)
{
    struct broker *a = NULL, *b = NULL, *l = NULL;
    int aport = harness_free_port();
    char conf[512];

    if (harness_cairn_only("all three are Cairn"))
        goto out;
    b = hb_start(BROKER_CAIRN, "", 0, 0);
    T_ASSERT(b);
    snprintf(conf, sizeof(conf),
             "connection edge\naddresses 127.0.0.1:%d 127.0.0.1:@R\nrestart_timeout 1\n"
             "remote_clientid edge-1\ntopic x/# out 1\n",
             aport);
    l = hb_start(BROKER_CAIRN, conf, broker_port(b), 0);
    T_ASSERT(l);
    T_EQ(hb_wait_log_count(b, "edge-1 connected", 1, HB_WAIT_MS), 0);
    a = hb_start(BROKER_CAIRN, "", 0, aport);
    T_ASSERT(a);
    /* probed every 5 s: the link moves to the first address */
    T_EQ(hb_wait_log_count(l, "the first address", 1, HB_WAIT_MS), 0);
    T_EQ(hb_wait_log_count(a, "edge-1 connected", 1, HB_WAIT_MS), 0);
    T_EQ(hb_wait_log_count(b, "edge-1 closed", 1, HB_WAIT_MS), 0);
out:
    broker_free(l);
    broker_free(a);
    broker_free(b);
}

/* Start-up refuses a bridge that cannot work, naming FILE:LINE, before it serves anything. */
static void test_config_refused(void)
{
    char dir[] = "/tmp/cairn-itest-bridgeconf-XXXXXX", want[200];
    bool made = false;

    if (harness_cairn_only("Cairn's own start-up checks"))
        goto out;
    T_ASSERT(mkdtemp(dir));
    made = true;
    snprintf(want, sizeof(want), "%s/cairn.conf:6: bridge b: cannot load bridge_cafile", dir);
    T_EQ(harness_expect_refused(dir,
                                "connection b\naddress 127.0.0.1:1\ntopic x\n"
                                "bridge_cafile /nonexistent/ca.crt\n",
                                want),
         0);
    snprintf(want, sizeof(want), "%s/cairn.conf:3: bridge 'b' has no topic", dir);
    T_EQ(harness_expect_refused(dir, "connection b\naddress 127.0.0.1:1\n", want), 0);
out:
    if (made) {
        char p[128];
        snprintf(p, sizeof(p), "%s/cairn.conf", dir);
        unlink(p);
        rmdir(dir);
    }
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"cairn_to_mosquitto", test_cairn_to_mosquitto},
        {"mosquitto_to_cairn", test_mosquitto_to_cairn},
        {"mosquitto_to_cairn_plain", test_mosquitto_to_cairn_plain},
        {"cairn_to_cairn", test_cairn_to_cairn},
        {"cairn_to_cairn_plain", test_cairn_to_cairn_plain},
        {"notifications", test_notifications},
        {"tls_client_cert", test_tls_client_cert},
        {"reload", test_reload},
        {"lazy_once", test_lazy_once},
        {"bridge_client_id", test_bridge_client_id},
        {"config_refused", test_config_refused},
        {"fake_remote", test_fake_remote},
        {"failover", test_failover},
    };

    return T_MAIN(cases);
}
