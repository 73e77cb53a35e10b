/*
 * 21_kill9 — messages queued for an offline persistent subscriber survive kill -9 and restart:
 * every message the broker acknowledged is delivered, in order, QoS 2 exactly once (see
 * durable.h). Cairn only: Mosquitto saves its state only now and then.
 */
#include "durable.h"

static void test_kill9_restart(void)
{
    if (harness_cairn_only("Mosquitto keeps acknowledged messages in memory until its autosave"))
        return;
    durable_run(true);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"kill9_restart", test_kill9_restart},
    };
    return T_MAIN(cases);
}
