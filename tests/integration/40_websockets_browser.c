/*
 * 40_websockets_browser — a real browser: headless Chromium (Debian's chromium) loads
 * tests/integration/browser/index.html from the broker's own http_dir and speaks MQTT over a
 * WebSocket to it with a few lines of JavaScript (bytes by hand). A Paho client on plain TCP
 * gets the page's QoS 1 PUBLISH, sends one back at QoS 1, and reads the page's answer. Skipped
 * when chromium is not installed (tools/deps.sh installs it).
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 30000

static const char *chromium_bin(void)
{
    static const char *const bins[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser"};

    for (size_t i = 0; i < sizeof(bins) / sizeof(bins[0]); i++)
        if (access(bins[i], X_OK) == 0)
            return bins[i];
    return NULL;
}

static void test_browser(void)
{
    struct broker_opts o = {0};
    struct broker *b = NULL;
    struct proc p = {0};
    struct pc_opts co = {.id = "c-side"};
    MQTTClient c = NULL;
    struct pc_msg m = {0};
    char conf[512], url[64], profile[] = "/tmp/cairn-chromium-XXXXXX";
    const char *bin = chromium_bin();
    int port = harness_free_port();
    bool started = false, made = false;

    if (!bin) {
        t_skip("chromium is not installed");
        return;
    }
    T_ASSERT(port > 0);
    T_ASSERT(mkdtemp(profile));
    made = true;
    snprintf(conf, sizeof(conf),
             "listener %d 127.0.0.1\nprotocol websockets\nhttp_dir %s/browser\n", port,
             CAIRN_ITEST_SRC);
    o.config = conf;
    o.no_persistence = true;
    b = broker_start(&o);
    T_ASSERT(b);
    c = pc_connect(b, &co, NULL, NULL);
    T_ASSERT(c);
    T_EQ(pc_subscribe(c, "browser/#", 1), 1);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    {
        char dir_arg[64];
        char *argv[] = {(char *)bin,
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--no-first-run",
                        "--disable-dev-shm-usage",
                        dir_arg,
                        url,
                        NULL};
        snprintf(dir_arg, sizeof(dir_arg), "--user-data-dir=%s", profile);
        T_EQ(proc_start(&p, argv), 0);
        started = true;
    }
    T_EQ(pc_recv(c, &m, WAIT_MS), 1);
    T_ASSERTF(strcmp(m.topic, "browser/hello") == 0 && m.qos == 1, "%s %d", m.topic, m.qos);
    T_ASSERTF(strcmp(m.payload, "from chromium true") == 0, "%s", m.payload);
    pc_msg_free(&m);
    T_EQ(pc_publish_str(c, "browser/in", "ping from C", 1, false), 0);
    /* our own message on browser/in comes back to us first (we subscribed to browser/#) */
    for (int i = 0; i < 3; i++) {
        T_EQ(pc_recv(c, &m, WAIT_MS), 1);
        if (strcmp(m.topic, "browser/result") == 0)
            break;
        pc_msg_free(&m);
    }
    T_ASSERTF(strcmp(m.topic, "browser/result") == 0 && strcmp(m.payload, "got:ping from C") == 0,
              "%s %s", m.topic, m.payload);
    T_EQ(broker_wait_log(b, "chromium-page connected", 1000), 0);
out:
    if (started) {
        if (t_case_failed())
            t_note("chromium output: %.2000s", p.out ? p.out : "");
        proc_cleanup(&p);
    }
    pc_msg_free(&m);
    pc_close(&c);
    broker_free(b);
    if (made) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", profile);
        if (system(cmd) != 0)
            t_note("could not remove %s", profile);
    }
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"browser", test_browser},
    };
    return T_MAIN(cases);
}
