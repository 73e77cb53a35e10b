/*
 * bench_load.c — the benchmark of issue 11: Cairn against Mosquitto and FlashMQ under the load
 * of Cairn's own generator (loadgen.h: raw non-blocking sockets, every connection of a run on
 * one epoll thread, sequence numbers in every payload). In one invocation it starts each broker
 * itself (loadbroker.h: equal limits, a free loopback port, a fresh temporary directory) pinned
 * to CPU 0, pins itself to CPU 1, runs every scenario several times per broker — interleaved, so
 * a burst of load from elsewhere on the machine hits every broker alike — and prints the median
 * table of the issue with ratios, then the details: how busy broker, load tool and the rest of
 * the machine were, and what each subscriber lost, got twice or out of order.
 *
 *   bench_load CAIRN_BIN [MOSQUITTO_BIN] [-r RUNS] [-d SECONDS] [-W WARMUP] [-w WINDOW]
 *              [-i IDLE_CONNECTIONS] [-R RATE] [-s TEXT]... [-l]
 *   FLASHMQ=/path/to/flashmq bench_load ...     adds FlashMQ (thread_count 1)
 *
 * Figures go in the issue note and the README, never into a test's pass/fail.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchnet.h"
#include "loadbroker.h"
#include "loadgen.h"

#define BENCH_MAX_RUNS   15
#define BENCH_LOAD_LIMIT 0.90 /* the load tool's CPU above which a row measures the tool */
#define BENCH_FD_ROOM    200  /* descriptors a broker or the load tool needs besides idle ones */
#define BENCH_QUIET      0.10 /* others' share of a pinned CPU above which a run is noisy */
#define LOAD_BROKER_CPU  0
#define LOAD_TOOL_CPU    1

enum bench_kind { SCN_FLOW, SCN_LAT, SCN_IDLE };

struct bench_scn {
    const char *name; /* SCN_LAT: what follows "QoS n at RATE msg/s" */
    enum bench_kind kind;
    int npub, nsub, qos;
    size_t payload;
    bool persistent; /* persistent subscribers: the "Cairn persist" column runs it too */
};

static const struct bench_scn bench_scns[] = {
    {"fan-in 8→1, QoS 0, 16 B", SCN_FLOW, 8, 1, 0, 16, false},
    {"fan-in 8→1, QoS 1, 16 B", SCN_FLOW, 8, 1, 1, 16, false},
    {"fan-in 8→1, QoS 2, 16 B", SCN_FLOW, 8, 1, 2, 16, false},
    {"fan-out 1→50, QoS 0, 16 B", SCN_FLOW, 1, 50, 0, 16, false},
    {"fan-out 1→50, QoS 1, 16 B", SCN_FLOW, 1, 50, 1, 16, false},
    {"fan-out 1→50, QoS 2, 16 B", SCN_FLOW, 1, 50, 2, 16, false},
    {"fan-in 8→1, QoS 0, 1 KiB", SCN_FLOW, 8, 1, 0, 1024, false},
    {"fan-in 8→1, QoS 1, 1 KiB", SCN_FLOW, 8, 1, 1, 1024, false},
    {"fan-out 1→50, QoS 0, 1 KiB", SCN_FLOW, 1, 50, 0, 1024, false},
    {"fan-out 1→50, QoS 1, 1 KiB", SCN_FLOW, 1, 50, 1, 1024, false},
    {"fan-in 8→1, QoS 1, 16 B, persistent sub", SCN_FLOW, 8, 1, 1, 16, true},
    {"fan-out 1→50, QoS 1, 16 B, persistent subs", SCN_FLOW, 1, 50, 1, 16, true},
    {"idle connection, KiB RSS", SCN_IDLE, 0, 0, 0, 0, false},
    {", p50 / p99 µs", SCN_LAT, 1, 1, 1, 16, false},
    {", persistent sub, p50 / p99 µs", SCN_LAT, 1, 1, 1, 16, true},
};
#define BENCH_NSCN (sizeof(bench_scns) / sizeof(bench_scns[0]))

enum { COL_MOSQ, COL_FLASH, COL_CAIRN, COL_PERSIST, BENCH_NCOL };

struct bench_col {
    const char *title;
    struct load_broker b;
    bool skip; /* left out with -b */
    bool on;
    char version[96];
};

struct bench_cell {
    int nruns;
    int retried; /* runs run again because the machine was busy */
    struct load_result run[BENCH_MAX_RUNS];
    struct load_idle_result idle;
    bool idle_done;
    char err[160]; /* the last failure */
};

struct bench_opts {
    int runs;
    int attempts;
    double seconds, warmup;
    int window;
    int idle;
    double rate;
    const char *only[16];
    int nonly;
};

static struct bench_col bench_cols[BENCH_NCOL] = {
    {"Mosquitto", {.kind = LOAD_MOSQUITTO}, false, false, ""},
    {"FlashMQ", {.kind = LOAD_FLASHMQ}, false, false, ""},
    {"Cairn", {.kind = LOAD_CAIRN}, false, false, ""},
    {"Cairn persist", {.kind = LOAD_CAIRN, .persistence = true}, false, false, ""},
};
static struct bench_cell bench_cells[BENCH_NSCN][BENCH_NCOL];
static int bench_idle_asked;     /* -i, before the fd limit had its say */
static long long bench_fd_limit; /* RLIMIT_NOFILE when it limited the idle connections */
static struct bench_opts bench_opt = {3, 3, 2.0, 0.5, 1000, 100000, 5000, {NULL}, 0};

static const char *bench_name(size_t s)
{
    static char buf[BENCH_NSCN][96];

    if (buf[s][0])
        ;
    else if (bench_scns[s].kind == SCN_LAT)
        snprintf(buf[s], sizeof(buf[s]), "QoS %d at %gk msg/s%s", bench_scns[s].qos,
                 bench_opt.rate / 1000, bench_scns[s].name);
    else
        snprintf(buf[s], sizeof(buf[s]), "%s", bench_scns[s].name);
    return buf[s];
}

static bool bench_selected(size_t s)
{
    if (bench_scns[s].kind == SCN_IDLE && bench_opt.idle <= 0)
        return false;
    for (int i = 0; i < bench_opt.nonly; i++)
        if (strstr(bench_name(s), bench_opt.only[i]))
            return true;
    return bench_opt.nonly == 0;
}

/* Does column c run scenario s? Cairn persist only where subscribers are persistent. */
static bool bench_applies(size_t s, int c)
{
    if (!bench_cols[c].on)
        return false;
    if (c == COL_PERSIST)
        return bench_scns[s].persistent;
    return true;
}

/* A broker that died is started again (and the failure stays in the cell that saw it). */
static int bench_ensure(struct bench_col *col)
{
    char err[256];
    int status;

    if (col->b.pid > 0 && waitpid(col->b.pid, &status, WNOHANG) == 0)
        return 0;
    col->b.pid = 0;
    load_broker_stop(&col->b);
    if (load_broker_start(&col->b, LOAD_BROKER_CPU, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_load: %s: %s\n", col->title, err);
        return -1;
    }
    return 0;
}

/* How much of the two pinned CPUs other processes took in a run (a fraction of one core). */
static double bench_noise(const struct load_result *r)
{
    return r->cpu.other_on_broker > r->cpu.other_on_tool ? r->cpu.other_on_broker
                                                         : r->cpu.other_on_tool;
}

static void bench_progress(const char *title, enum bench_kind kind, const struct load_result *r,
                           bool again)
{
    if (kind == SCN_LAT)
        fprintf(stderr, "  %-14s p50 %4.0f µs  p99 %5.0f µs", title, r->p50_us, r->p99_us);
    else
        fprintf(stderr, "  %-14s %10.0f msg/s", title, r->msgs);
    fprintf(stderr,
            "  broker %3.0f%%  load %3.0f%%  others on CPU %d/%d: %3.0f%%/%3.0f%%  lost %llu "
            "dup %llu reord %llu%s\n",
            r->cpu.broker * 100, r->cpu.self * 100, LOAD_BROKER_CPU, LOAD_TOOL_CPU,
            r->cpu.other_on_broker * 100, r->cpu.other_on_tool * 100, (unsigned long long)r->lost,
            (unsigned long long)r->dup, (unsigned long long)r->reordered, again ? " (again)" : "");
}

static void bench_run_cell(size_t s, int c)
{
    const struct bench_scn *scn = &bench_scns[s];
    struct bench_col *col = &bench_cols[c];
    struct bench_cell *cell = &bench_cells[s][c];
    struct load_spec spec = {
        .npub = scn->npub,
        .nsub = scn->nsub,
        .qos = scn->qos,
        .payload = scn->payload,
        .persistent = scn->persistent,
        .window = bench_opt.window,
        .rate = scn->kind == SCN_LAT ? bench_opt.rate : 0,
        .warmup = bench_opt.warmup,
        .seconds = bench_opt.seconds,
    };
    struct load_result *r = &cell->run[cell->nruns];
    struct load_result spare;

    if (bench_ensure(col) < 0) {
        snprintf(cell->err, sizeof(cell->err), "the broker does not start");
        return;
    }
    spec.port = col->b.port;
    spec.broker_pid = col->b.pid;
    /*
     * A shared machine: a run in which other processes took more than BENCH_QUIET of the
     * broker's or the load tool's CPU is run again (up to -a attempts in all), and the quietest
     * attempt is kept. The details table says how many were run again.
     */
    for (int a = 0; a < bench_opt.attempts; a++) {
        struct load_result *try = a == 0 ? r : &spare;
        if (load_run(&spec, try) < 0) {
            fprintf(stderr, "  %-14s %s\n", col->title, try->err);
            snprintf(cell->err, sizeof(cell->err), "%s", try->err);
            return;
        }
        bench_progress(col->title, scn->kind, try, a > 0);
        if (a > 0 && bench_noise(try) < bench_noise(r))
            *r = *try;
        if (bench_noise(r) <= BENCH_QUIET)
            break;
        if (a + 1 < bench_opt.attempts)
            cell->retried++;
    }
    cell->nruns++;
}

/* Each idle test gets a broker of its own, fresh: its RSS before is the baseline. */
static void bench_idle_cell(size_t s, int c)
{
    struct bench_cell *cell = &bench_cells[s][c];
    struct load_broker b = bench_cols[c].b;
    char err[256];

    b.pid = 0;
    b.dir[0] = 0;
    if (load_broker_start(&b, LOAD_BROKER_CPU, err, sizeof(err)) < 0) {
        snprintf(cell->err, sizeof(cell->err), "%.150s", err);
        return;
    }
    load_idle(b.port, b.pid, bench_opt.idle, &cell->idle);
    cell->idle_done = true;
    fprintf(stderr, "  %-14s %d connections, %.2f KiB each, %.0f connections/s%s%s\n",
            bench_cols[c].title, cell->idle.reached, cell->idle.kib_each, cell->idle.conn_per_s,
            cell->idle.err[0] ? "; " : "", cell->idle.err);
    load_broker_stop(&b);
}

/*
 * The fd limit: one per idle connection plus room, raised (hard limit too, which root may)
 * before any broker starts so that every broker inherits it. Returns the idle count possible.
 */
static int bench_raise_nofile(int want)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)want + BENCH_FD_ROOM;

    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < need) {
        struct rlimit hi = {need, need};
        if (setrlimit(RLIMIT_NOFILE, &hi) == 0) /* root, with CAP_SYS_RESOURCE */
            return want;
    }
    rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    bench_fd_limit = (long long)rl.rlim_cur;
    if (rl.rlim_cur < need) {
        int n = rl.rlim_cur > 2 * BENCH_FD_ROOM ? (int)(rl.rlim_cur - BENCH_FD_ROOM) : 0;
        fprintf(stderr,
                "bench_load: RLIMIT_NOFILE cannot go past %lld here (raising the hard limit "
                "needs CAP_SYS_RESOURCE);\n  the brokers inherit it too: idle connections "
                "lowered from %d to %d\n",
                bench_fd_limit, want, n);
        return n;
    }
    return want;
}

/* "1.49M", "687k", "41.2k", "950": the style. */
static void bench_fmt_rate(char *out, size_t len, double v)
{
    if (v >= 1e6)
        snprintf(out, len, "%.2fM", v / 1e6);
    else if (v >= 1e5)
        snprintf(out, len, "%.0fk", v / 1e3);
    else if (v >= 1e3)
        snprintf(out, len, "%.1fk", v / 1e3);
    else
        snprintf(out, len, "%.0f", v);
}

static void bench_fmt_ratio(char *out, size_t len, double a, double b)
{
    if (a <= 0 || b <= 0)
        snprintf(out, len, "—");
    else
        snprintf(out, len, a / b >= 10 ? "%.1f" : "%.2f", a / b);
}

/* A markdown cell padded to width characters (not bytes: the names hold → and µ). */
static void bench_cell(const char *s, int width)
{
    int chars = 0;

    for (const char *p = s; *p; p++)
        chars += ((unsigned char)*p & 0xc0) != 0x80;
    printf("| %s%*s ", s, width > chars ? width - chars : 0, "");
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The median of one figure over a cell's runs (offset of a double inside load_result). */
static double bench_median(const struct bench_cell *cell, size_t offset)
{
    double v[BENCH_MAX_RUNS];

    if (cell->nruns == 0)
        return -1;
    for (int i = 0; i < cell->nruns; i++)
        v[i] = *(const double *)((const char *)&cell->run[i] + offset);
    qsort(v, (size_t)cell->nruns, sizeof(v[0]), bench_cmp_double);
    return v[cell->nruns / 2];
}

/* The run whose throughput is the median: its CPU figures go with the median. */
static const struct load_result *bench_median_run(const struct bench_cell *cell)
{
    double m = bench_median(cell, offsetof(struct load_result, msgs));

    for (int i = 0; i < cell->nruns; i++)
        if (cell->run[i].msgs == m)
            return &cell->run[i];
    return NULL;
}

static void bench_fmt_cell(char *out, size_t len, size_t s, int c)
{
    const struct bench_cell *cell = &bench_cells[s][c];
    const struct load_result *m = bench_median_run(cell);

    if (!bench_applies(s, c) || (c == COL_PERSIST && bench_scns[s].kind == SCN_IDLE)) {
        snprintf(out, len, "—");
    } else if (bench_scns[s].kind == SCN_IDLE) {
        if (!cell->idle_done)
            snprintf(out, len, "error");
        else if (cell->idle.reached < bench_opt.idle)
            snprintf(out, len, "%.2f (%d)", cell->idle.kib_each, cell->idle.reached);
        else
            snprintf(out, len, "%.2f", cell->idle.kib_each);
    } else if (!m) {
        snprintf(out, len, "error");
    } else if (bench_scns[s].kind == SCN_LAT) {
        snprintf(out, len, "%.0f / %.0f", bench_median(cell, offsetof(struct load_result, p50_us)),
                 bench_median(cell, offsetof(struct load_result, p99_us)));
    } else {
        bench_fmt_rate(out, len, m->msgs);
        if (m->cpu.self > BENCH_LOAD_LIMIT)
            strncat(out, "*", len - strlen(out) - 1);
        if (bench_noise(m) > BENCH_QUIET)
            strncat(out, "~", len - strlen(out) - 1);
    }
}

static double bench_rate_of(size_t s, int c)
{
    const struct load_result *m = bench_median_run(&bench_cells[s][c]);

    return bench_scns[s].kind == SCN_FLOW && m && bench_applies(s, c) ? m->msgs : -1;
}

static void bench_header(void)
{
    char model[128] = "?";
    char line[256];
    double la[3] = {0, 0, 0};
    struct utsname u;
    time_t now = time(NULL);
    FILE *f = fopen("/proc/cpuinfo", "r");

    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
            snprintf(model, sizeof(model), "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    if (f)
        fclose(f);
    uname(&u);
    getloadavg(la, 3);
    strftime(line, sizeof(line), "%Y-%m-%d %H:%M", localtime(&now));
    printf("# bench_load, %s\n", line);
    printf("# machine: %s, %ld CPUs online, %ld MiB, %s %s %s; load average %.2f %.2f %.2f\n",
           model, sysconf(_SC_NPROCESSORS_ONLN),
           (long)(sysconf(_SC_PHYS_PAGES) / 1024 * (sysconf(_SC_PAGESIZE) / 1024)), u.sysname,
           u.release, u.machine, la[0], la[1], la[2]);
    printf("# brokers pinned to CPU %d, this load tool to CPU %d; closed loop of %d messages "
           "outstanding per subscriber;\n# median of %d runs of %.1f s each (after %.1f s of "
           "warm-up), brokers interleaved run by run\n",
           LOAD_BROKER_CPU, LOAD_TOOL_CPU, bench_opt.window, bench_opt.runs, bench_opt.seconds,
           bench_opt.warmup);
    for (int c = 0; c < BENCH_NCOL; c++)
        if (bench_cols[c].on)
            printf("# %-13s %s (%s)%s\n", bench_cols[c].title, bench_cols[c].b.bin,
                   bench_cols[c].version,
                   c == COL_FLASH     ? ", thread_count 1"
                   : c == COL_CAIRN   ? ", persistence false"
                   : c == COL_PERSIST ? ", persistence true, persistence_sync false"
                                      : ", persistence false");
    fflush(stdout);
}

static void bench_main_table(void)
{
    const bool fl = bench_cols[COL_FLASH].on;
    const bool pe = bench_cols[COL_PERSIST].on;
    char a[64];

    printf("\n");
    bench_cell("scenario", 48);
    bench_cell("Mosquitto", 9);
    if (fl)
        bench_cell("FlashMQ", 9);
    bench_cell("Cairn", 9);
    bench_cell("Cairn / Mosquitto", 0);
    if (fl)
        bench_cell("Cairn / FlashMQ", 0);
    if (pe) {
        bench_cell("Cairn persist", 0);
        bench_cell("persist / Cairn", 0);
    }
    printf("|\n|---|---|%s---|---|%s%s\n", fl ? "---|" : "", fl ? "---|" : "",
           pe ? "---|---|" : "");
    for (size_t s = 0; s < BENCH_NSCN; s++) {
        if (!bench_selected(s))
            continue;
        bench_cell(bench_name(s), 48);
        for (int c = COL_MOSQ; c <= COL_CAIRN; c++) {
            if (c == COL_FLASH && !fl)
                continue;
            bench_fmt_cell(a, sizeof(a), s, c);
            bench_cell(a, 9);
        }
        bench_fmt_ratio(a, sizeof(a), bench_rate_of(s, COL_CAIRN), bench_rate_of(s, COL_MOSQ));
        bench_cell(a, 17);
        if (fl) {
            bench_fmt_ratio(a, sizeof(a), bench_rate_of(s, COL_CAIRN), bench_rate_of(s, COL_FLASH));
            bench_cell(a, 15);
        }
        if (pe) {
            bench_fmt_cell(a, sizeof(a), s, COL_PERSIST);
            bench_cell(a, 13);
            bench_fmt_ratio(a, sizeof(a), bench_rate_of(s, COL_PERSIST),
                            bench_rate_of(s, COL_CAIRN));
            bench_cell(a, 15);
        }
        printf("|\n");
    }
}

/* "1.41M–1.52M" over a cell's runs; for latency the p99s' range. */
static void bench_spread(char *out, size_t len, const struct bench_cell *cell)
{
    bool lat = cell->run[0].samples > 0;
    double lo = lat ? cell->run[0].p99_us : cell->run[0].msgs;
    double hi = lo;
    char a[16];
    char b[16];

    for (int i = 1; i < cell->nruns; i++) {
        double v = lat ? cell->run[i].p99_us : cell->run[i].msgs;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    if (lat) {
        snprintf(out, len, "p99 %.0f–%.0f", lo, hi);
    } else {
        bench_fmt_rate(a, sizeof(a), lo);
        bench_fmt_rate(b, sizeof(b), hi);
        snprintf(out, len, "%s–%s", a, b);
    }
}

/* Sums over the measured windows of every run, for the closing line about the machine. */
struct bench_noise_sum {
    int n;
    double other, other_max, on_broker, on_broker_max, on_tool;
};

static void bench_noise_add(struct bench_noise_sum *ns, const struct load_usage *u)
{
    ns->n++;
    ns->other += u->other;
    ns->on_broker += u->other_on_broker;
    ns->on_tool += u->other_on_tool;
    ns->other_max = u->other > ns->other_max ? u->other : ns->other_max;
    ns->on_broker_max =
        u->other_on_broker > ns->on_broker_max ? u->other_on_broker : ns->on_broker_max;
}

/* Per scenario and broker: spread, CPU, and what the subscribers counted over all runs. */
static void bench_details(struct bench_noise_sum *ns)
{
    printf("\nDetails. CPU: %% of one core over the measured window of the median run: the "
           "broker (on CPU %d),\nthe load tool (CPU %d), everything else on CPU %d / on CPU %d. "
           "max gap: the longest time without a\ndelivery. lost/dup/reord/stalls: summed over "
           "all runs, of that many deliveries expected.\n\n",
           LOAD_BROKER_CPU, LOAD_TOOL_CPU, LOAD_BROKER_CPU, LOAD_TOOL_CPU);
    printf("| scenario | broker | median | range | broker CPU | load CPU | others %d / %d | "
           "max gap | lost | dup | reord | stalls | expected | run again |\n",
           LOAD_BROKER_CPU, LOAD_TOOL_CPU);
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t s = 0; s < BENCH_NSCN; s++)
        for (int c = 0; c < BENCH_NCOL; c++) {
            const struct bench_cell *cell = &bench_cells[s][c];
            const struct load_result *m = bench_median_run(cell);
            unsigned long long t[5] = {0, 0, 0, 0, 0};
            double gap = 0;
            char med[32];
            char spread[48];

            if (!bench_selected(s) || !bench_applies(s, c) || bench_scns[s].kind == SCN_IDLE)
                continue;
            if (!m) {
                printf("| %s | %s | error: %s |||||||||||\n", bench_name(s), bench_cols[c].title,
                       cell->err);
                continue;
            }
            for (int i = 0; i < cell->nruns; i++) {
                const struct load_result *r = &cell->run[i];
                t[0] += r->lost;
                t[1] += r->dup;
                t[2] += r->reordered;
                t[3] += r->stalls;
                t[4] += r->expected;
                gap = r->max_gap > gap ? r->max_gap : gap;
                bench_noise_add(ns, &r->cpu);
            }
            bench_fmt_cell(med, sizeof(med), s, c);
            bench_spread(spread, sizeof(spread), cell);
            printf("| %s | %s | %s | %s | %.0f%% | %.0f%% | %.0f%% / %.0f%% | %.0f ms | %llu | "
                   "%llu | %llu | %llu | %llu | %d |\n",
                   bench_name(s), bench_cols[c].title, med, spread, m->cpu.broker * 100,
                   m->cpu.self * 100, m->cpu.other_on_broker * 100, m->cpu.other_on_tool * 100,
                   gap * 1e3, t[0], t[1], t[2], t[3], t[4], cell->retried);
        }
}

static const char *bench_fd_note(void)
{
    static char note[160];

    if (bench_opt.idle < bench_idle_asked)
        snprintf(note, sizeof(note),
                 ", not %d: RLIMIT_NOFILE is %lld here, for the brokers too, and only "
                 "CAP_SYS_RESOURCE raises it",
                 bench_idle_asked, bench_fd_limit);
    return note;
}

static void bench_idle_table(void)
{
    bool any = false;

    for (size_t s = 0; s < BENCH_NSCN; s++) {
        if (!bench_selected(s) || bench_scns[s].kind != SCN_IDLE)
            continue;
        for (int c = 0; c < BENCH_NCOL; c++) {
            const struct bench_cell *cell = &bench_cells[s][c];
            if (!bench_applies(s, c) || c == COL_PERSIST)
                continue;
            if (!any)
                printf("\nIdle connections (clean session, keepalive 0; one run, a fresh broker "
                       "each; %d asked for%s):\n\n| broker | reached | KiB each | RSS before | "
                       "RSS with | connections/s | note |\n|---|---|---|---|---|---|---|\n",
                       bench_opt.idle, bench_fd_note());
            any = true;
            if (!cell->idle_done)
                printf("| %s | error: %s ||||||\n", bench_cols[c].title, cell->err);
            else
                printf("| %s | %d | %.2f | %ld KiB | %ld KiB | %.0f | %s |\n", bench_cols[c].title,
                       cell->idle.reached, cell->idle.kib_each, cell->idle.rss_before,
                       cell->idle.rss_with, cell->idle.conn_per_s, cell->idle.err);
        }
    }
}

static void bench_report(void)
{
    struct bench_noise_sum ns = {0};
    double la[3] = {0, 0, 0};

    bench_main_table();
    bench_details(&ns);
    bench_idle_table();
    getloadavg(la, 3);
    printf("\n* the load tool used more than %.0f%% of its CPU in the median run: the figure is "
           "what the load tool\n  reached; the broker may have more in it.\n",
           BENCH_LOAD_LIMIT * 100);
    printf("~ other processes took more than %.0f%% of the broker's or the load tool's CPU in the "
           "median run (after\n  %d attempts): the figure is low by about that much.\n",
           BENCH_QUIET * 100, bench_opt.attempts);
    printf("Loss: a broker may drop QoS 0 messages for a subscriber that falls behind (MQTT "
           "allows it), so QoS 0\nloss under overload is normal; a QoS 0 window with no "
           "delivery for 0.25 s is written off (a stall).\nAt QoS 1 and 2 there are no "
           "reconnects and no limits: any loss, duplicate or reordering is the broker's.\n");
    if (ns.n)
        printf("Machine: besides broker and load tool, the machine (other processes, interrupts) "
               "was busy on average\n%.0f%% of one core (at most %.0f%%) of %ld%% during the "
               "measured windows; on the broker's CPU %.0f%%\n(at most %.0f%%), on the load "
               "tool's %.0f%%. Load average at the end %.2f %.2f %.2f.\n",
               ns.other / ns.n * 100, ns.other_max * 100, sysconf(_SC_NPROCESSORS_ONLN) * 100,
               ns.on_broker / ns.n * 100, ns.on_broker_max * 100, ns.on_tool / ns.n * 100, la[0],
               la[1], la[2]);
}

/* Is title one of the comma-separated names in list ("cairn,mosquitto"; case ignored)? */
static bool bench_match(const char *title, const char *list)
{
    size_t tl = strlen(title);

    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (n == tl && strncasecmp(p, title, n) == 0)
            return true;
        p += n + (p[n] == ',');
    }
    return false;
}

static void bench_usage(void)
{
    fprintf(stderr,
            "usage: bench_load CAIRN_BIN [MOSQUITTO_BIN] [-r RUNS] [-d SECONDS] [-W WARMUP]\n"
            "                  [-w WINDOW] [-i IDLE_CONNECTIONS] [-R RATE] [-s TEXT]... [-l]\n"
            "                  [-b BROKER,...] [-a ATTEMPTS]\n"
            "  -r   runs per scenario and broker (median taken; default 3)\n"
            "  -d   seconds measured per run (default 2), -W seconds of warm-up (0.5)\n"
            "  -w   closed loop: messages outstanding per subscriber (1000)\n"
            "  -i   idle connections (100000; 0 leaves the row out)\n"
            "  -R   rate of the latency rows, msg/s (5000)\n"
            "  -s   only scenarios whose name contains TEXT (repeatable; -l lists them)\n"
            "  -b   only these columns: mosquitto, flashmq, cairn, \"cairn persist\"\n"
            "  -a   attempts at a run while others use > 10%% of a pinned CPU (3)\n"
            "  FLASHMQ=/path/to/flashmq in the environment adds FlashMQ (thread_count 1)\n");
}

static int bench_args(int argc, char **argv)
{
    int nbin = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-l") == 0) {
            for (size_t s = 0; s < BENCH_NSCN; s++)
                printf("%s\n", bench_name(s));
            exit(0);
        } else if (strcmp(a, "-b") == 0 && v) {
            i++;
            for (int c = 0; c < BENCH_NCOL; c++)
                bench_cols[c].skip = !bench_match(bench_cols[c].title, v);
        } else if (a[0] == '-' && a[1] && !a[2] && strchr("rdWwiRsa", a[1]) && v) {
            i++;
            if (a[1] == 'r')
                bench_opt.runs = atoi(v);
            else if (a[1] == 'a')
                bench_opt.attempts = atoi(v);
            else if (a[1] == 'd')
                bench_opt.seconds = atof(v);
            else if (a[1] == 'W')
                bench_opt.warmup = atof(v);
            else if (a[1] == 'w')
                bench_opt.window = atoi(v);
            else if (a[1] == 'i')
                bench_opt.idle = atoi(v);
            else if (a[1] == 'R')
                bench_opt.rate = atof(v);
            else if (bench_opt.nonly < 16)
                bench_opt.only[bench_opt.nonly++] = v;
        } else if (a[0] != '-' && nbin < 2) {
            bench_cols[nbin ? COL_MOSQ : COL_CAIRN].b.bin = a;
            nbin++;
        } else {
            return -1;
        }
    }
    if (nbin == 0 || bench_opt.runs < 1 || bench_opt.runs > BENCH_MAX_RUNS ||
        bench_opt.attempts < 1 || bench_opt.seconds <= 0 || bench_opt.window < 1 ||
        bench_opt.rate <= 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *flashmq = getenv("FLASHMQ");

    if (bench_args(argc, argv) < 0) {
        bench_usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    bench_cols[COL_PERSIST].b.bin = bench_cols[COL_CAIRN].b.bin;
    if (!bench_cols[COL_MOSQ].b.bin && access("/usr/sbin/mosquitto", X_OK) == 0)
        bench_cols[COL_MOSQ].b.bin = "/usr/sbin/mosquitto";
    if (flashmq && flashmq[0])
        bench_cols[COL_FLASH].b.bin = flashmq;
    for (int c = 0; c < BENCH_NCOL; c++) {
        bench_cols[c].on = bench_cols[c].b.bin != NULL && !bench_cols[c].skip;
        if (bench_cols[c].on)
            load_broker_version(&bench_cols[c].b, bench_cols[c].version,
                                sizeof(bench_cols[c].version));
    }
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || load_pin(0, LOAD_TOOL_CPU) < 0)
        fprintf(stderr, "bench_load: fewer than 2 CPUs: broker and load tool share them\n");
    bench_idle_asked = bench_opt.idle;
    bench_opt.idle = bench_opt.idle > 0 ? bench_raise_nofile(bench_opt.idle) : 0;
    bench_header();
    for (size_t s = 0; s < BENCH_NSCN; s++) {
        if (!bench_selected(s) || bench_scns[s].kind == SCN_IDLE)
            continue;
        for (int r = 0; r < bench_opt.runs; r++) {
            fprintf(stderr, "%s, run %d of %d\n", bench_name(s), r + 1, bench_opt.runs);
            for (int c = 0; c < BENCH_NCOL; c++)
                if (bench_applies(s, c))
                    bench_run_cell(s, c);
        }
    }
    for (int c = 0; c < BENCH_NCOL; c++)
        load_broker_stop(&bench_cols[c].b);
    for (size_t s = 0; s < BENCH_NSCN; s++) {
        if (!bench_selected(s) || bench_scns[s].kind != SCN_IDLE)
            continue;
        fprintf(stderr, "%s, %d connections\n", bench_name(s), bench_opt.idle);
        for (int c = 0; c < BENCH_NCOL; c++)
            if (bench_applies(s, c) && c != COL_PERSIST)
                bench_idle_cell(s, c);
    }
    bench_report();
    return 0;
}
