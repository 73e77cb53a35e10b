/*
 * 14_signals — SIGTERM and SIGINT with clients connected (raw, Paho, a persistent session with
 * a subscription and an in-flight message): the broker stops accepting, closes the clients and
 * exits with status 0, promptly.
 */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS   5000
#define PROMPT_MS 3000

static void run_stop(int sig)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts ro = {.id = "sig-raw", .keepalive = 60};
    struct raw_conn_opts so = {.id = "sig-persist", .persistent = true, .keepalive = 60};
    struct pc_opts po = {.id = "sig-paho"};
    struct raw_pkt p = {0};
    MQTTClient paho = NULL;
    int raw = -1, per = -1, rc = -1, st = 0;
    uint64_t t0, took;

    T_ASSERT(b);
    raw = raw_mqtt_connect(b, &ro, &rc, NULL);
    per = raw_mqtt_connect(b, &so, &rc, NULL);
    T_ASSERT(raw >= 0 && per >= 0);
    T_EQ(raw_subscribe(per, 1, "sig/#", 1), 1);
    paho = pc_connect(b, &po, &rc, NULL);
    T_ASSERTF(paho, "paho connect %d", rc);
    /* Leave one QoS 1 message unacknowledged in flight to the persistent session. */
    T_EQ(raw_publish_flow(raw, "sig/t", "in flight", 1, false, 1), 0);
    T_EQ(raw_recv_publish(per, &p, WAIT_MS, false), 1);

    t0 = t_now_ms();
    T_EQ(broker_signal(b, sig), 0);
    T_ASSERTF(broker_wait_exit(b, PROMPT_MS, &st) == 0, "still running %d ms after signal %d",
              PROMPT_MS, sig);
    took = t_now_ms() - t0;
    t_note("signal %d: exited in %llu ms, status 0x%x", sig, (unsigned long long)took, st);
    T_ASSERTF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status 0x%x", st);
    T_EQ(raw_expect_close(raw, WAIT_MS), 0);
    T_EQ(raw_expect_close(per, WAIT_MS), 0);
out:
    raw_pkt_free(&p);
    pc_close(&paho);
    if (raw >= 0)
        close(raw);
    if (per >= 0)
        close(per);
    broker_free(b);
}

static void test_sigterm(void)
{
    run_stop(SIGTERM);
}

static void test_sigint(void)
{
    run_stop(SIGINT);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"sigterm", test_sigterm},
        {"sigint", test_sigint},
    };
    return T_MAIN(cases);
}
