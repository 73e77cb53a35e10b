/*
 * 27_ack_window — the broker dies at every exact point of its commits, and still nothing
 * acknowledged is lost and no QoS 2 message is delivered twice.
 *
 * The window between "the batch is durable" and "its acks reached the sockets" is where a
 * random kill rarely lands but a real crash can: the store has the message, its routing to the
 * subscribers and their in-flight states (the subscriber's PUBLISH with its packet id), the
 * publisher's QoS 2 packet id — and nobody was told. After the restart the publisher resends
 * (DUP) what got no PUBREC, the subscribers get the in-flight messages again with DUP: the
 * stored QoS 2 id must stop the resend from being routed a second time, or the subscriber gets
 * the message twice under two packet ids.
 *
 * The power-cut layer (tests/powercut) kills the broker right after its Nth write of LevelDB's
 * log (persistence_sync false) or its Nth fsync of it (true), for N = 1, 2, ... until a run
 * completes before the Nth; each run restarts the broker without the kill and lets the crash
 * model (harness_crash.h) finish every flow. A clean stop, last: with persistence_sync false
 * and every unsynced write lost at exit, SIGTERM still leaves everything acknowledged on disk.
 */
#include "harness.h"
#include "harness_crash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MESSAGES 40  /* per publisher, in one window */
#define MAX_N    400 /* kill points tried, at most */

/*
 * One run: subscribers connected and subscribed on a broker started plainly, then restarted
 * with the kill point at the Nth log write/sync; clients run until it dies (or finish: *done);
 * restart without it and let every flow finish.
 */
static void ack_window_run(bool sync, int n, bool *done)
{
    struct broker_opts bo = {.cairn_config = sync ? "persistence_sync true" : NULL,
                             .powercut = true};
    struct broker *b = broker_start(&bo);
    struct crash *c = NULL;
    struct crash_tally t = {0};
    char kill[32];
    int rc;

    T_ASSERT(b);
    c = crash_new(b, (uint64_t)n, false, false);
    T_ASSERT(c);
    crash_set_limit(c, MESSAGES);
    T_ASSERT(crash_connect_all(c, true) == 0); /* sessions and subscriptions exist */
    crash_close_all(c);
    T_EQ(broker_stop_term(b, 10000), 0); /* synced on the way out */
    snprintf(kill, sizeof(kill), "%s:%d", sync ? "sync" : "write", n);
    T_EQ(broker_setenv(b, "CAIRN_POWERCUT_KILL", kill), 0);
    T_EQ(broker_setenv(b, "CAIRN_POWERCUT_HOLD", "0"), 0); /* the kill point only */
    T_EQ(broker_restart(b), 0);
    /* publish everything, then let every flow finish: the broker dies somewhere on the way */
    rc = crash_connect_all(c, false);
    while (rc == 0 && !(crash_published(c) == 2 * MESSAGES && crash_inflight(c) == 0))
        rc = crash_pump(c, -1, true);
    if (rc == 0)
        rc = crash_drain(c, 10000);
    T_ASSERTF(rc >= 0, "clients failed (%d errors)", crash_errors(c));
    if (rc == 0) {
        *done = true; /* all of it happened before the Nth write: no kill point left */
    } else {
        crash_close_all(c);
        T_EQ(broker_setenv(b, "CAIRN_POWERCUT_KILL", NULL), 0);
        T_EQ(broker_restart(b), 0);
        T_EQ(crash_connect_all(c, false), 0);
        T_EQ(crash_drain(c, 10000), 0);
    }
    crash_tally(c, &t);
    if (t.lost[1] + t.lost[2] + t.dup[2] + t.dup_unexplained[1] + t.reordered[1] + t.reordered[2] +
            crash_errors(c) + crash_inflight(c) !=
        0) {
        crash_report(c, kill, &t);
        T_ASSERTF(false, "killed after %s: lost, doubled or unfinished", kill);
    }
out:
    crash_free(c);
    broker_free(b);
}

static void ack_window(bool sync)
{
    bool done = false;
    int n;

    if (harness_cairn_only("the kill points are Cairn's store writes"))
        return;
    for (n = 1; n <= MAX_N && !done && !t_case_failed(); n++)
        ack_window_run(sync, n, &done);
    T_ASSERTF(done, "the run still had log %s after %d kill points", sync ? "syncs" : "writes",
              MAX_N);
    t_note("persistence_sync %s: killed after each of the first %d log %s of the run: nothing "
           "lost, no QoS 2 duplicate",
           sync ? "true" : "false", n - 2, sync ? "syncs" : "writes");
out:
    return;
}

static void test_kill_after_write_nosync(void)
{
    ack_window(false);
}

static void test_kill_after_sync_sync(void)
{
    ack_window(true);
}

/*
 * persistence_sync false under the power-cut layer (unsynced writes die with the process):
 * QoS 1 and 2 messages acknowledged for an offline subscriber, then SIGTERM. The store was
 * synced on the way out, so a power cut right after the stop loses none of them.
 */
static void test_sigterm_leaves_synced(void)
{
    struct broker_opts bo = {.powercut = true};
    struct raw_conn_opts so = {.id = "st-sub", .persistent = true, .keepalive = 60};
    struct raw_conn_opts po = {.id = "st-pub", .persistent = true, .keepalive = 60};
    struct broker *b = NULL;
    int sub = -1, pub = -1, rc = -1, sp = -1, got = 0;
    char buf[16];

    if (harness_cairn_only("Mosquitto keeps its store in memory until it saves it"))
        goto out;
    b = broker_start(&bo);
    T_ASSERT(b);
    sub = raw_mqtt_connect(b, &so, &rc, &sp);
    T_ASSERT(sub >= 0 && rc == 0);
    T_EQ(raw_subscribe(sub, 1, "st/#", 2), 2);
    close(sub);
    sub = -1;
    pub = raw_mqtt_connect(b, &po, &rc, &sp);
    T_ASSERT(pub >= 0 && rc == 0);
    for (int i = 0; i < 20; i++) {
        snprintf(buf, sizeof(buf), "%d", i);
        T_EQ(raw_publish_flow(pub, i % 2 ? "st/q2" : "st/q1", buf, 1 + i % 2, false, i + 1), 0);
    }
    close(pub);
    pub = -1;
    T_EQ(broker_stop_term(b, 10000), 0);
    T_EQ(broker_restart(b), 0);
    sub = raw_mqtt_connect(b, &so, &rc, &sp);
    T_ASSERT(sub >= 0 && rc == 0);
    T_EQ(sp, 1);
    for (got = 0; got < 20; got++) {
        struct raw_pkt k = {0};
        int r = raw_recv_publish(sub, &k, 5000, true);
        bool right = r == 1 && k.payload_len < sizeof(buf);

        if (right) {
            memcpy(buf, k.payload, k.payload_len);
            buf[k.payload_len] = '\0';
            right = atoi(buf) == got;
        }
        raw_pkt_free(&k);
        T_ASSERTF(right, "message %d of 20 missing or out of order after SIGTERM and a power cut",
                  got);
    }
out:
    if (sub >= 0)
        close(sub);
    if (pub >= 0)
        close(pub);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"kill_after_write_nosync", test_kill_after_write_nosync},
        {"kill_after_sync_sync", test_kill_after_sync_sync},
        {"sigterm_leaves_synced", test_sigterm_leaves_synced},
    };
    return T_MAIN(cases);
}
