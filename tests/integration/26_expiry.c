/*
 * 26_expiry — persistent_client_expiration removes a persistent session that stayed offline
 * too long, with its subscriptions and queued messages; a session that reconnects in time is
 * kept. Cairn accepts a duration in seconds ("2s"); Mosquitto's smallest unit is an hour, so
 * this runs against Cairn only.
 *
 * The wait is for the broker's own "expiring client ID" log line, not a sleep; afterwards the
 * store is checked too: after a kill -9 and restart the session must still be gone.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 5000

static void test_idle_session_expires(void)
{
    struct broker_opts bo = {.cairn_config = "persistent_client_expiration 2s"};
    struct broker *b = NULL;
    struct raw_conn_opts so = {.id = "exp-sub", .persistent = true, .keepalive = 60};
    struct raw_conn_opts ko = {.id = "exp-kept", .persistent = true, .keepalive = 60};
    struct raw_conn_opts po = {.id = "exp-pub", .keepalive = 60};
    struct raw_pkt p = {0};
    int sub = -1, kept = -1, pub = -1, rc = -1, sp = -1;
    uint64_t t0;

    if (harness_cairn_only("Mosquitto's smallest persistent_client_expiration is one hour"))
        goto out;
    b = broker_start(&bo);
    T_ASSERT(b);
    sub = raw_mqtt_connect(b, &so, &rc, &sp);
    T_ASSERT(sub >= 0);
    T_EQ(raw_subscribe(sub, 1, "exp/#", 1), 1);
    T_EQ(raw_send_disconnect(sub), 0);
    T_EQ(raw_expect_close(sub, WAIT_MS), 0);
    close(sub);
    sub = -1;
    t0 = t_now_ms();
    /* A second session stays connected the whole time: it must not expire. */
    kept = raw_mqtt_connect(b, &ko, &rc, &sp);
    T_ASSERT(kept >= 0);
    T_EQ(raw_subscribe(kept, 1, "exp/#", 1), 1);
    pub = raw_mqtt_connect(b, &po, &rc, NULL);
    T_ASSERT(pub >= 0);
    for (int i = 0; i < 3; i++)
        T_EQ(raw_publish_flow(pub, "exp/t", "queued", 1, false, i + 1), 0);
    for (int i = 0; i < 3; i++) {
        T_EQ(raw_recv_publish(kept, &p, WAIT_MS, true), 1);
        raw_pkt_free(&p);
    }

    T_ASSERTF(broker_wait_log(b, "expiring client exp-sub", 10000) == 0,
              "exp-sub not expired within 10 s");
    t_note("exp-sub expired %llu ms after its disconnect (expiration 2 s)",
           (unsigned long long)(t_now_ms() - t0));
    T_ASSERT(t_now_ms() - t0 >= 1500);
    {
        char *log = broker_log(b);
        bool kept_expired = log && strstr(log, "expiring client exp-kept");

        free(log);
        T_ASSERTF(!kept_expired, "a connected session was expired");
    }

    /* The store no longer holds it either: kill -9, restart, and it is a new session. */
    T_EQ(broker_kill9(b), 0);
    close(kept);
    close(pub);
    kept = pub = -1;
    T_EQ(broker_restart(b), 0);
    sub = raw_mqtt_connect(b, &so, &rc, &sp);
    T_ASSERT(sub >= 0);
    T_EQ(rc, 0);
    T_EQ(sp, 0);
    T_EQ(raw_subscribe(sub, 1, "exp/marker", 1), 1);
    pub = raw_mqtt_connect(b, &po, &rc, NULL);
    T_ASSERT(pub >= 0);
    T_EQ(raw_publish_flow(pub, "exp/t", "no subscription any more", 1, false, 1), 0);
    T_EQ(raw_publish_flow(pub, "exp/marker", "marker", 1, false, 2), 0);
    T_EQ(raw_recv_publish(sub, &p, WAIT_MS, true), 1);
    T_ASSERTF(p.topic && strcmp(p.topic, "exp/marker") == 0, "got %s: queue or subscription kept",
              p.topic ? p.topic : "?");
out:
    raw_pkt_free(&p);
    if (sub >= 0)
        close(sub);
    if (kept >= 0)
        close(kept);
    if (pub >= 0)
        close(pub);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"idle_session_expires", test_idle_session_expires},
    };
    return T_MAIN(cases);
}
