/*
 * 39_websockets_js — MQTT.js (npm "mqtt", tests/js, installed by tools/deps.sh or here with
 * "npm ci") over ws:// against the broker: tests/js/mqttjs_ws.js subscribes and publishes at
 * QoS 0, 1 and 2 and gets its own messages back; a Paho client on plain TCP gets them too, and
 * what it publishes reaches MQTT.js.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 20000

/* tests/js/node_modules/mqtt, installing it (npm ci) when missing. 0 or -1. */
static int js_ready(void)
{
    char path[512];
    char *argv[] = {"sh", "-c", "cd " CAIRN_ITEST_SRC "/../js && npm ci --no-audit --no-fund",
                    NULL};
    char *out = NULL;
    int rc = 0;

    snprintf(path, sizeof(path), "%s/../js/node_modules/mqtt/package.json", CAIRN_ITEST_SRC);
    if (access(path, R_OK) == 0)
        return 0;
    if (proc_run(argv, 300000, &out) != 0 || access(path, R_OK) != 0) {
        t_note("npm ci in tests/js failed: %s", out ? out : "");
        rc = -1;
    }
    free(out);
    return rc;
}

static void test_mqttjs(void)
{
    struct broker_opts o = {0};
    struct broker *b = NULL;
    struct proc p = {0};
    struct pc_opts co = {.id = "c-side"};
    MQTTClient c = NULL;
    struct pc_msg m[3] = {{0}};
    char conf[128], url[64], script[512];
    int port = harness_free_port();
    bool started = false;

    T_ASSERT(port > 0);
    T_EQ(js_ready(), 0);
    snprintf(conf, sizeof(conf), "listener %d 127.0.0.1\nprotocol websockets\n", port);
    o.config = conf;
    o.no_persistence = true;
    b = broker_start(&o);
    T_ASSERT(b);
    c = pc_connect(b, &co, NULL, NULL);
    T_ASSERT(c);
    T_EQ(pc_subscribe(c, "js/#", 2), 2);
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/mqtt", port);
    snprintf(script, sizeof(script), "%s/../js/mqttjs_ws.js", CAIRN_ITEST_SRC);
    {
        char *argv[] = {"node", script, url, NULL};
        T_EQ(proc_start(&p, argv), 0);
        started = true;
    }
    T_EQ(proc_wait_output(&p, "ready", WAIT_MS), 0);
    T_ASSERT(strstr(p.out, "got js/q0 0 from mqtt.js 0"));
    T_ASSERT(strstr(p.out, "got js/q1 1 from mqtt.js 1"));
    T_ASSERT(strstr(p.out, "got js/q2 2 from mqtt.js 2"));
    /* the TCP side got them too, at their QoS */
    T_EQ(pc_collect(c, m, 3, WAIT_MS), 3);
    for (int i = 0; i < 3; i++) {
        char want[32];
        snprintf(want, sizeof(want), "from mqtt.js %d", m[i].qos);
        T_ASSERTF(strcmp(m[i].payload, want) == 0, "%s %d", m[i].payload, m[i].qos);
    }
    T_EQ(pc_publish_str(c, "js/fromc", "hello mqtt.js", 1, false), 0);
    T_EQ(proc_wait(&p, WAIT_MS), 0);
    T_ASSERTF(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0, "node: %s", p.out);
    T_ASSERT(strstr(p.out, "got js/fromc 1 hello mqtt.js"));
out:
    if (started && t_case_failed())
        t_note("node output: %s", p.out ? p.out : "");
    if (started)
        proc_cleanup(&p);
    pc_msgs_free(m, 3);
    pc_close(&c);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"mqttjs", test_mqttjs},
    };
    return T_MAIN(cases);
}
