/*
 * harness.c — the case runner, assertions, clocks and the seeded PRNG of the integration tests.
 *
 * State is process-wide and single-threaded (the runner runs one case at a time): whether the
 * running case failed or was skipped. The broker processes a case starts are tracked in
 * harness_broker.c, which t_main() asks to clean up after each case.
 */
#include "harness.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness_internal.h"

static bool t_failed_now;
static bool t_skipped_now;
static const char *t_case_name = "";

void t_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stdout, "#   FAILED %s:%d: [%s] ", file, line, t_case_name);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
    t_failed_now = true;
}

void t_note(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("# ", stdout);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

void t_skip(const char *why)
{
    fprintf(stdout, "#   SKIP [%s]: %s\n", t_case_name, why);
    fflush(stdout);
    t_skipped_now = true;
}

bool t_case_failed(void)
{
    return t_failed_now;
}

uint64_t t_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void t_nap_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

uint64_t t_seed(void)
{
    const char *env = getenv("CAIRN_TEST_SEED");
    uint64_t seed;

    if (env && *env)
        seed = strtoull(env, NULL, 0);
    else
        seed = (uint64_t)time(NULL) ^ ((uint64_t)t_now_ms() << 20);
    if (seed == 0)
        seed = 1;
    t_note("seed %" PRIu64 " (rerun with CAIRN_TEST_SEED=%" PRIu64 ")", seed, seed);
    return seed;
}

uint64_t t_rand(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static bool t_selected(int argc, char **argv, const char *name)
{
    bool sel = argc <= 2;

    for (int i = 2; i < argc && !sel; i++)
        sel = strcmp(argv[i], name) == 0;
    return sel;
}

/*
 * argv[1] is the Cairn binary; further arguments name the cases to run. Every case runs even
 * after another failed, so one run shows every failure.
 */
int t_main(int argc, char **argv, const struct t_case *cases, size_t n)
{
    int failed = 0, passed = 0, skipped = 0;
    uint64_t t0 = t_now_ms();

    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    harness__init(argc > 1 ? argv[1] : NULL);
    printf("# broker: %s\n", harness_is_mosquitto() ? "mosquitto (CAIRN_TEST_BROKER=mosquitto)"
                                                    : harness_cairn_bin());
    for (size_t i = 0; i < n; i++) {
        uint64_t c0;

        if (!t_selected(argc, argv, cases[i].name))
            continue;
        t_failed_now = false;
        t_skipped_now = false;
        t_case_name = cases[i].name;
        c0 = t_now_ms();
        cases[i].fn();
        harness__case_done();
        if (t_failed_now) {
            failed++;
            printf("not ok %zu - %s (%" PRIu64 " ms)\n", i + 1, cases[i].name, t_now_ms() - c0);
        } else if (t_skipped_now) {
            skipped++;
            printf("ok %zu - %s # SKIP (%" PRIu64 " ms)\n", i + 1, cases[i].name, t_now_ms() - c0);
        } else {
            passed++;
            printf("ok %zu - %s (%" PRIu64 " ms)\n", i + 1, cases[i].name, t_now_ms() - c0);
        }
    }
    printf("# %s: %d passed, %d failed, %d skipped in %" PRIu64 " ms\n", failed ? "FAIL" : "PASS",
           passed, failed, skipped, t_now_ms() - t0);
    return failed ? 1 : 0;
}
