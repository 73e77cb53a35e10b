/*
 * 12_mosquitto_clients — the command-line clients users reach for first: mosquitto_pub and
 * mosquitto_sub round trips at QoS 0, 1 and 2, a retained message set with -r, and $SYS
 * topics (version, uptime, clients) visible to mosquitto_sub with a short sys_interval.
 *
 * mosquitto_sub runs with -d so its "received SUBACK" line tells when it is subscribed; only
 * then does mosquitto_pub run. stdbuf -oL makes it write each line as it happens (a pipe would
 * otherwise hold its output until exit). Message lines are formatted "MSG qos retain topic
 * payload".
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define WAIT_MS 10000

static void test_round_trips(void)
{
    struct broker *b = broker_start(NULL);
    struct proc sub = {.pid = -1, .fd = -1};
    char port[16], qs[4], topic[32], want[96];
    char *out = NULL;

    T_ASSERT(b);
    snprintf(port, sizeof(port), "%d", broker_port(b));
    for (int q = 0; q <= 2; q++) {
        snprintf(qs, sizeof(qs), "%d", q);
        snprintf(topic, sizeof(topic), "cli/q%d", q);
        {
            /* clang-format off */
            char *sargv[] = {"stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", port,
                             "-t", topic, "-q", qs, "-C", "1", "-W", "10", "-d",
                             "-F", "MSG %q %r %t %p", NULL};
            /* clang-format on */
            char *pargv[] = {"mosquitto_pub",
                             "-h",
                             "127.0.0.1",
                             "-p",
                             port,
                             "-t",
                             topic,
                             "-q",
                             qs,
                             "-m",
                             "hello from mosquitto_pub",
                             NULL};

            T_EQ(proc_start(&sub, sargv), 0);
            T_ASSERTF(proc_wait_output(&sub, "SUBACK", WAIT_MS) == 0,
                      "mosquitto_sub did not subscribe: %s", sub.out);
            T_EQ(proc_run(pargv, WAIT_MS, &out), 0);
            free(out);
            out = NULL;
            T_EQ(proc_wait(&sub, WAIT_MS), 0);
            T_ASSERTF(WIFEXITED(sub.status) && WEXITSTATUS(sub.status) == 0,
                      "mosquitto_sub status 0x%x: %s", sub.status, sub.out);
            snprintf(want, sizeof(want), "MSG %d 0 %s hello from mosquitto_pub", q, topic);
            T_ASSERTF(strstr(sub.out, want), "want '%s' in: %s", want, sub.out);
            proc_cleanup(&sub);
            sub.pid = -1;
        }
    }
out:
    free(out);
    proc_cleanup(&sub);
    broker_free(b);
}

static void test_retained_r(void)
{
    struct broker *b = broker_start(NULL);
    char port[16];
    char *out = NULL;

    T_ASSERT(b);
    snprintf(port, sizeof(port), "%d", broker_port(b));
    {
        char *pargv[] = {
            "mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-t", "cli/ret", "-q", "1", "-r", "-m",
            "kept",          NULL};
        char *sargv[] = {"stdbuf", "-oL", "mosquitto_sub",   "-h", "127.0.0.1", "-p",
                         port,     "-t",  "cli/#",           "-C", "1",         "-W",
                         "10",     "-F",  "MSG %q %r %t %p", NULL};

        T_EQ(proc_run(pargv, WAIT_MS, &out), 0);
        free(out);
        out = NULL;
        T_EQ(proc_run(sargv, WAIT_MS, &out), 0);
        T_ASSERTF(out && strstr(out, "MSG 0 1 cli/ret kept"), "got: %s", out ? out : "");
    }
out:
    free(out);
    broker_free(b);
}

static void test_sys_topics(void)
{
    /* The $SYS topics issue 3 lists; Mosquitto publishes each of them too. */
    static const char *const topics[] = {"$SYS/broker/version",
                                         "$SYS/broker/uptime",
                                         "$SYS/broker/clients/connected",
                                         "$SYS/broker/clients/total",
                                         "$SYS/broker/messages/received",
                                         "$SYS/broker/messages/sent",
                                         "$SYS/broker/subscriptions/count",
                                         "$SYS/broker/retained messages/count",
                                         "$SYS/broker/load/bytes/received",
                                         "$SYS/broker/load/bytes/sent"};
    struct broker_opts bo = {.config = "sys_interval 1"};
    struct broker *b = broker_start(&bo);
    struct proc sub = {.pid = -1, .fd = -1};
    char port[16];

    T_ASSERT(b);
    snprintf(port, sizeof(port), "%d", broker_port(b));
    {
        char *sargv[] = {"stdbuf",    "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p",
                         port,        "-t",  "$SYS/#",        "-W", "10",        "-F",
                         "MSG %t %p", NULL};

        T_EQ(proc_start(&sub, sargv), 0);
        for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
            char want[80];

            /* A prefix: Mosquitto has load/bytes/received/1min where Cairn has the plain name. */
            snprintf(want, sizeof(want), "MSG %s", topics[i]);
            T_ASSERTF(proc_wait_output(&sub, want, WAIT_MS) == 0, "no %s in: %s", topics[i],
                      sub.out);
        }
        t_note("%.*s", (int)strcspn(strstr(sub.out, "MSG $SYS/broker/version"), "\n"),
               strstr(sub.out, "MSG $SYS/broker/version"));
    }
out:
    proc_cleanup(&sub);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"round_trips", test_round_trips},
        {"retained_r", test_retained_r},
        {"sys_topics", test_sys_topics},
    };
    return T_MAIN(cases);
}
