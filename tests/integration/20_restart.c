/*
 * 20_restart — messages queued for an offline persistent subscriber survive a SIGTERM stop and
 * restart: all delivered, in order, QoS 2 exactly once (see durable.h).
 */
#include "durable.h"

static void test_sigterm_restart(void)
{
    durable_run(false);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"sigterm_restart", test_sigterm_restart},
    };
    return T_MAIN(cases);
}
