/*
 * 24_crashloop — the promise itself: publishers at QoS 1 and QoS 2 and persistent subscribers
 * (the crash model, harness_crash.h) run while the broker is killed with kill -9 at random
 * moments and restarted each time on the same store. The subscribers are away about half the
 * time, so in-flight windows go to disk and come back both on reconnects and on restarts.
 *
 *   crashloop_nosync / crashloop_sync: kill -9 with persistence_sync false / true. Every
 *     message whose PUBACK / PUBCOMP a publisher got reaches every subscriber: zero lost; at
 *     QoS 2 zero duplicates; first deliveries in publish order. QoS 1 duplicates happen only as
 *     the protocol allows: a resend with DUP, or the publisher's own resend routed again.
 *   powercut_sync: the same under the power-cut layer (tests/powercut): every write the broker
 *     did not fsync is lost at each kill. With persistence_sync true nothing acknowledged is.
 *   powercut_nosync: the same with persistence_sync false must lose acknowledged messages (or
 *     whole sessions): it shows that the simulation bites.
 *
 * CAIRN_CRASH_KILLS sets the number of kills per case (CI: a short run); tools/soak.sh runs the
 * long version of each and prints the table. The kill moment is chosen by counting events
 * (acks and deliveries) from a seeded PRNG, never by time; rerun a failure with
 * CAIRN_TEST_SEED.
 */
#include "harness.h"
#include "harness_crash.h"

#include <stdio.h>
#include <stdlib.h>

#define KILLS                25 /* per case, unless CAIRN_CRASH_KILLS says otherwise */
#define MAX_EVENTS_PER_ROUND 1000

static int crash_kills(void)
{
    const char *env = getenv("CAIRN_CRASH_KILLS");
    int n = env && *env ? atoi(env) : KILLS;

    return n > 0 ? n : KILLS;
}

static void crashloop(bool sync, bool powercut)
{
    struct broker_opts bo = {.config = "max_queued_messages 0",
                             .cairn_config = sync ? "persistence_sync true" : NULL,
                             .powercut = powercut};
    bool lossy = powercut && !sync;
    struct crash *c = NULL;
    struct crash_tally t = {0};
    struct broker *b = NULL;
    uint64_t t0 = t_now_ms();
    int kills = 0, want = crash_kills();
    char label[96];

    if (harness_cairn_only("Mosquitto loses acknowledged messages on kill -9 by design"))
        goto out;
    b = broker_start(&bo);
    T_ASSERT(b);
    c = crash_new(b, t_seed(), lossy, true);
    T_ASSERT(c);
    T_ASSERT(crash_connect_all(c, true) == 0);
    while (kills < want) {
        long at = crash_events(c) + 1 + (long)(crash_rand(c) % MAX_EVENTS_PER_ROUND);

        T_ASSERTF(crash_pump(c, at, true) == 0, "round %d failed (%d errors)", kills,
                  crash_errors(c));
        T_EQ(broker_kill9(b), 0);
        kills++;
        crash_close_all(c);
        T_ASSERTF(broker_restart(b) == 0, "restart %d failed", kills);
        T_ASSERTF(crash_connect_all(c, false) == 0, "reconnect after kill %d failed", kills);
    }
    /* No new messages: everyone comes back, every flow finishes and every queue drains. */
    T_ASSERT(crash_drain(c, 30000) == 0);
    crash_tally(c, &t);
    snprintf(label, sizeof(label), "%s, persistence_sync %s: %d kills in %llu ms",
             powercut ? "power cut" : "kill -9", sync ? "true" : "false", kills,
             (unsigned long long)(t_now_ms() - t0));
    crash_report(c, label, &t);
    T_EQ(crash_errors(c), 0);
    T_EQ(crash_inflight(c), 0);
    if (lossy) {
        T_ASSERTF(t.lost[1] + t.lost[2] > 0,
                  "a power cut without fsync lost nothing acknowledged: the simulation does "
                  "not bite");
    } else {
        T_EQ(t.lost[1] + t.lost[2], 0);
        T_EQ(t.dup[2], 0);
        T_EQ(t.dup_unexplained[1], 0);
        T_EQ(t.reordered[1] + t.reordered[2], 0);
    }
    crash_close_all(c);
    T_EQ(broker_stop_term(b, 10000), 0);
out:
    crash_free(c);
    broker_free(b);
}

static void test_crashloop_nosync(void)
{
    crashloop(false, false);
}

static void test_crashloop_sync(void)
{
    crashloop(true, false);
}

static void test_powercut_sync(void)
{
    crashloop(true, true);
}

static void test_powercut_nosync(void)
{
    crashloop(false, true);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"crashloop_nosync", test_crashloop_nosync},
        {"crashloop_sync", test_crashloop_sync},
        {"powercut_sync", test_powercut_sync},
        {"powercut_nosync", test_powercut_nosync},
    };
    return T_MAIN(cases);
}
