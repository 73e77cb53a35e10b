/*
 * 41_metrics — "protocol http_metrics": GET /metrics answers Prometheus text that Debian's
 * python3-prometheus-client parses (tests/integration/metrics_check.py, strict: HELP and TYPE
 * on every family, counters in _total, no repeated sample), and its figures match the traffic
 * this test sent: messages and payload bytes in and out per QoS, drops by reason, retained,
 * subscriptions, sessions online and offline, queued messages and bytes, store commits and
 * their histogram, store size, TLS handshakes, WebSocket upgrades; $SYS says the same (one
 * source). Other paths 404, other methods 405. Cairn only (Mosquitto has no such listener).
 */
#include "harness_tls.h"
#include "harness_ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 5000

/* The value of sample key ("name{labels}") in the checker's output, or -1. */
static double sample(const char *out, const char *key)
{
    size_t kl = strlen(key);

    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
            return atof(p + kl + 1);
    }
    return -1;
}

/* GET /metrics, check it with the Python parser; its sorted samples (malloc'd), or NULL. */
static char *scrape(int port, const char *dir)
{
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    char *resp = NULL, *body, *out = NULL, file[300], cmd[700];
    FILE *f;
    int st = ws_http(port, req, sizeof(req) - 1, &resp, WAIT_MS);

    if (st != 200 || !(body = strstr(resp, "\r\n\r\n"))) {
        t_note("GET /metrics: %d", st);
        goto out;
    }
    if (!strstr(resp, "Content-Type: text/plain; version=0.0.4")) {
        t_note("no Prometheus content type");
        goto out;
    }
    snprintf(file, sizeof(file), "%s/metrics.txt", dir);
    f = fopen(file, "w");
    if (!f)
        goto out;
    fputs(body + 4, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s/metrics_check.py < %s", CAIRN_ITEST_SRC, file);
    {
        char *argv[] = {"sh", "-c", cmd, NULL};
        if (proc_run(argv, 20000, &out) != 0) {
            t_note("metrics_check.py: %s", out ? out : "(nothing)");
            free(out);
            out = NULL;
        }
    }
out:
    free(resp);
    return out;
}

#define T_SAMPLE(out, key, want)                                                                   \
    do {                                                                                           \
        double v_ = sample(out, key);                                                              \
        T_ASSERTF(v_ == (double)(want), "%s = %g, want %g", key, v_, (double)(want));              \
    } while (0)

static void test_metrics(void)
{
    struct tls_env e = {0};
    char extra[400], uri[64], *out = NULL, *resp = NULL;
    int mport = harness_free_port(), wport = harness_free_port(), rc;
    struct pc_opts so = {.id = "m-sub", .persistent = true}, po = {.id = "m-pub"};
    struct pc_opts offo = {.id = "m-off", .persistent = true}, wo = {.id = "m-ws"};
    MQTTClient sub = NULL, pub = NULL, off = NULL, ws = NULL, sys = NULL;
    struct pc_msg m[8] = {{0}}, sm = {0};
    double retained0;

    if (harness_cairn_only("http_metrics is Cairn's own"))
        return;
    T_ASSERT(mport > 0 && wport > 0);
    snprintf(extra, sizeof(extra),
             "listener %d 127.0.0.1\nprotocol http_metrics\nlistener %d 127.0.0.1\n"
             "protocol websockets\nsys_interval 1\n",
             mport, wport);
    T_EQ(tls_env_start(&e,
                       "listener @P 127.0.0.1\ncertfile @D/server-ec.crt\n"
                       "keyfile @D/server-ec.key\n",
                       extra),
         0);
    out = scrape(mport, e.dir); /* before: the broker's own retained $SYS topics */
    T_ASSERT(out);
    retained0 = sample(out, "cairn_retained_messages{}");
    T_ASSERT(retained0 >= 0);
    free(out);
    out = NULL;
    sub = pc_connect(e.b, &so, NULL, NULL);
    pub = pc_connect(e.b, &po, NULL, NULL);
    off = pc_connect(e.b, &offo, NULL, NULL);
    T_ASSERT(sub && pub && off);
    T_EQ(pc_subscribe(sub, "m/#", 2), 2);
    T_EQ(pc_subscribe(off, "q/#", 1), 1);
    pc_close(&off);
    for (int i = 0; i < 3; i++)
        T_EQ(pc_publish_str(pub, "m/x", "0123456789", 0, false), 0);
    for (int i = 0; i < 2; i++)
        T_EQ(pc_publish_str(pub, "m/x", "01234567890123456789", 1, false), 0);
    T_EQ(pc_publish_str(pub, "m/x", "012345678901234567890123456789", 2, false), 0);
    T_EQ(pc_collect(sub, m, 6, WAIT_MS), 6);
    T_EQ(pc_publish_str(pub, "r/1", "kept!", 0, true), 0);  /* retained, nobody subscribed */
    T_EQ(pc_publish_str(pub, "$SYS/x", "no", 0, false), 0); /* dropped: $SYS is the broker's */
    T_EQ(pc_publish_str(pub, "q/y", "queued1", 1, false), 0);
    T_EQ(pc_publish_str(pub, "q/y", "queued2", 1, false), 0);
    T_EQ(pc_publish_str(pub, "q/y", "qos0 offline", 0, false), 0); /* dropped: offline QoS 0 */
    T_EQ(tls_env_pub(&e, NULL, "tls/x", "hi", "1"), 0);            /* a TLS handshake */
    snprintf(uri, sizeof(uri), "ws://127.0.0.1:%d/mqtt", wport);
    ws = pc_connect_uri(uri, &wo, NULL, &rc, NULL); /* a WebSocket upgrade */
    T_ASSERT(ws);
    /* a ping round trip makes sure the broker has handled everything before the scrape */
    T_EQ(pc_publish_str(pub, "m/x", "sync", 1, false), 0);
    T_EQ(pc_collect(sub, m + 6, 1, WAIT_MS), 1);

    out = scrape(mport, e.dir);
    T_ASSERT(out);
    T_SAMPLE(out, "cairn_messages_received_total{qos=0}", 3 + 2 + 1);
    T_SAMPLE(out, "cairn_messages_received_total{qos=1}", 2 + 2 + 1 + 1); /* tls/x, sync */
    T_SAMPLE(out, "cairn_messages_received_total{qos=2}", 1);
    T_SAMPLE(out, "cairn_messages_received_bytes_total{qos=0}", 30 + 5 + 2 + 12);
    T_SAMPLE(out, "cairn_messages_received_bytes_total{qos=2}", 30);
    T_SAMPLE(out, "cairn_messages_sent_total{qos=0}", 3);
    T_SAMPLE(out, "cairn_messages_sent_total{qos=1}", 3);
    T_SAMPLE(out, "cairn_messages_sent_total{qos=2}", 1);
    T_SAMPLE(out, "cairn_messages_sent_bytes_total{qos=1}", 40 + 4);
    T_SAMPLE(out, "cairn_messages_dropped_total{reason=sys_topic}", 1);
    T_SAMPLE(out, "cairn_messages_dropped_total{reason=offline_qos0}", 1);
    T_SAMPLE(out, "cairn_messages_dropped_total{reason=queue_full}", 0);
    T_SAMPLE(out, "cairn_retained_messages{}", retained0 + 1);
    T_SAMPLE(out, "cairn_subscriptions{}", 2);
    T_SAMPLE(out, "cairn_sessions{state=online}", 3); /* m-sub, m-pub, m-ws */
    T_SAMPLE(out, "cairn_sessions{state=offline}", 1);
    T_SAMPLE(out, "cairn_queued_messages{}", 2);
    T_SAMPLE(out, "cairn_queued_bytes{}", 14);
    T_SAMPLE(out, "cairn_connections_open{}", 3);
    T_SAMPLE(out, "cairn_connections_refused_total{}", 0);
    T_SAMPLE(out, "cairn_websocket_upgrades_total{}", 1);
    T_ASSERT(sample(out, "cairn_tls_handshakes_total{}") >= 1);
    T_ASSERT(sample(out, "cairn_tls_handshake_failures_total{}") >= 1); /* tls_env_served */
    T_ASSERT(sample(out, "cairn_store_commits_total{}") >= 1);
    T_ASSERT(sample(out, "cairn_store_commit_duration_seconds_count{}") ==
             sample(out, "cairn_store_commits_total{}"));
    T_ASSERT(sample(out, "cairn_store_commit_duration_seconds_bucket{le=+Inf}") ==
             sample(out, "cairn_store_commits_total{}"));
    T_ASSERT(sample(out, "cairn_store_size_bytes{}") > 0);
    T_ASSERT(sample(out, "cairn_uptime_seconds{}") >= 0);
    /* $SYS reads the same snapshot */
    sys = pc_connect(e.b, &(struct pc_opts){.id = "m-sys"}, NULL, NULL);
    T_ASSERT(sys);
    T_EQ(pc_subscribe(sys, "$SYS/broker/store/messages/count", 0), 0);
    T_EQ(pc_recv(sys, &sm, WAIT_MS), 1);
    T_ASSERTF(strcmp(sm.payload, "2") == 0, "$SYS store/messages/count %s", sm.payload);
    /* other paths and methods */
    {
        static const char r404[] = "GET /other HTTP/1.1\r\nHost: x\r\n\r\n";
        static const char r405[] = "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        T_EQ(ws_http(mport, r404, sizeof(r404) - 1, NULL, WAIT_MS), 404);
        T_EQ(ws_http(mport, r405, sizeof(r405) - 1, &resp, WAIT_MS), 405);
        T_ASSERT(strstr(resp, "Allow: GET"));
    }
out:
    free(out);
    free(resp);
    pc_msg_free(&sm);
    pc_msgs_free(m, 8);
    pc_close(&sub);
    pc_close(&pub);
    pc_close(&off);
    pc_close(&ws);
    pc_close(&sys);
    tls_env_stop(&e);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"metrics", test_metrics},
    };
    return T_MAIN(cases);
}
