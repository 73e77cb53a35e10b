/* loadreport.c — see loadreport.h. Tables are Markdown, ready for the README and the issue. */
#define _GNU_SOURCE
#include "loadreport.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

const char *loadreport_name(const struct load_bench *b, size_t s)
{
    static char buf[96];

    if (b->scn[s].kind == LOAD_SCN_LAT)
        snprintf(buf, sizeof(buf), "QoS %d at %gk msg/s%s", b->scn[s].qos, b->opt.rate / 1000,
                 b->scn[s].name);
    else
        snprintf(buf, sizeof(buf), "%s", b->scn[s].name);
    return buf;
}

bool loadreport_selected(const struct load_bench *b, size_t s)
{
    if (b->scn[s].kind == LOAD_SCN_IDLE && b->opt.idle <= 0)
        return false;
    for (int i = 0; i < b->opt.nonly; i++)
        if (strstr(loadreport_name(b, s), b->opt.only[i]))
            return true;
    return b->opt.nonly == 0;
}

/* Does column c run scenario s? Cairn persist only where subscribers are persistent. */
bool loadreport_applies(const struct load_bench *b, size_t s, int c)
{
    if (!b->col[c].on)
        return false;
    if (c == LOAD_COL_PERSIST)
        return b->scn[s].persistent;
    return true;
}

/* How much of the two pinned CPUs other processes took in a run (a fraction of one core). */
double loadreport_noise(const struct load_result *r)
{
    return r->cpu.other_on_broker > r->cpu.other_on_tool ? r->cpu.other_on_broker
                                                         : r->cpu.other_on_tool;
}

/* "1.49M", "687k", "41.2k", "950": the style. */
static void loadreport_fmt_rate(char *out, size_t len, double v)
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

static void loadreport_fmt_ratio(char *out, size_t len, double a, double b)
{
    if (a <= 0 || b <= 0)
        snprintf(out, len, "—");
    else
        snprintf(out, len, a / b >= 10 ? "%.1f" : "%.2f", a / b);
}

/* A markdown cell padded to width characters (not bytes: the names hold → and µ). */
static void loadreport_cell(const char *s, int width)
{
    int chars = 0;

    for (const char *p = s; *p; p++)
        chars += ((unsigned char)*p & 0xc0) != 0x80;
    printf("| %s%*s ", s, width > chars ? width - chars : 0, "");
}

static int loadreport_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The median of one figure over a cell's runs (offset of a double inside load_result). */
static double loadreport_median(const struct load_cell *cell, size_t offset)
{
    double v[LOAD_MAX_RUNS];

    if (cell->nruns == 0)
        return -1;
    for (int i = 0; i < cell->nruns; i++)
        v[i] = *(const double *)((const char *)&cell->run[i] + offset);
    qsort(v, (size_t)cell->nruns, sizeof(v[0]), loadreport_cmp_double);
    return v[cell->nruns / 2];
}

/* The run whose throughput is the median: its CPU figures go with the median. */
static const struct load_result *loadreport_median_run(const struct load_cell *cell)
{
    double m = loadreport_median(cell, offsetof(struct load_result, msgs));

    for (int i = 0; i < cell->nruns; i++)
        if (cell->run[i].msgs == m)
            return &cell->run[i];
    return NULL;
}

static void loadreport_fmt_cell(const struct load_bench *b, char *out, size_t len, size_t s, int c)
{
    const struct load_cell *cell = &b->cell[s][c];
    const struct load_result *m = loadreport_median_run(cell);

    if (!loadreport_applies(b, s, c) ||
        (c == LOAD_COL_PERSIST && b->scn[s].kind == LOAD_SCN_IDLE)) {
        snprintf(out, len, "—");
    } else if (b->scn[s].kind == LOAD_SCN_IDLE) {
        if (!cell->idle_done)
            snprintf(out, len, "error");
        else if (cell->idle.reached < b->opt.idle)
            snprintf(out, len, "%.2f (%d)", cell->idle.kib_each, cell->idle.reached);
        else
            snprintf(out, len, "%.2f", cell->idle.kib_each);
    } else if (!m) {
        snprintf(out, len, "error");
    } else if (b->scn[s].kind == LOAD_SCN_LAT) {
        snprintf(out, len, "%.0f / %.0f",
                 loadreport_median(cell, offsetof(struct load_result, p50_us)),
                 loadreport_median(cell, offsetof(struct load_result, p99_us)));
    } else {
        loadreport_fmt_rate(out, len, m->msgs);
        if (m->cpu.self > LOAD_TOOL_LIMIT)
            strncat(out, "*", len - strlen(out) - 1);
        if (loadreport_noise(m) > LOAD_QUIET)
            strncat(out, "~", len - strlen(out) - 1);
    }
}

static double loadreport_rate_of(const struct load_bench *b, size_t s, int c)
{
    const struct load_result *m = loadreport_median_run(&b->cell[s][c]);

    return b->scn[s].kind == LOAD_SCN_FLOW && m && loadreport_applies(b, s, c) ? m->msgs : -1;
}

void loadreport_header(const struct load_bench *b)
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
           LOAD_BROKER_CPU, LOAD_TOOL_CPU, b->opt.window, b->opt.runs, b->opt.seconds,
           b->opt.warmup);
    printf("# publishers write in batches (1/16 of the window, at most 64); no broker limits "
           "in-flight or queued\n# messages per client (loadbroker.c has the configs); a run "
           "with others on a pinned CPU > %.0f%% is made\n# again, up to %d attempts\n",
           LOAD_QUIET * 100, b->opt.attempts);
    for (int c = 0; c < LOAD_NCOL; c++)
        if (b->col[c].on)
            printf("# %-13s %s (%s)%s\n", b->col[c].title, b->col[c].b.bin, b->col[c].version,
                   c == LOAD_COL_FLASH     ? ", thread_count 1"
                   : c == LOAD_COL_CAIRN   ? ", persistence false"
                   : c == LOAD_COL_PERSIST ? ", persistence true, persistence_sync false"
                                           : ", persistence false");
    fflush(stdout);
}

static void loadreport_main_table(const struct load_bench *b)
{
    const bool fl = b->col[LOAD_COL_FLASH].on;
    const bool pe = b->col[LOAD_COL_PERSIST].on;
    char a[64];

    printf("\n");
    loadreport_cell("scenario", 48);
    loadreport_cell("Mosquitto", 9);
    if (fl)
        loadreport_cell("FlashMQ", 9);
    loadreport_cell("Cairn", 9);
    loadreport_cell("Cairn / Mosquitto", 0);
    if (fl)
        loadreport_cell("Cairn / FlashMQ", 0);
    if (pe) {
        loadreport_cell("Cairn persist", 0);
        loadreport_cell("persist / Cairn", 0);
    }
    printf("|\n|---|---|%s---|---|%s%s\n", fl ? "---|" : "", fl ? "---|" : "",
           pe ? "---|---|" : "");
    for (size_t s = 0; s < b->nscn; s++) {
        if (!loadreport_selected(b, s))
            continue;
        loadreport_cell(loadreport_name(b, s), 48);
        for (int c = LOAD_COL_MOSQ; c <= LOAD_COL_CAIRN; c++) {
            if (c == LOAD_COL_FLASH && !fl)
                continue;
            loadreport_fmt_cell(b, a, sizeof(a), s, c);
            loadreport_cell(a, 9);
        }
        loadreport_fmt_ratio(a, sizeof(a), loadreport_rate_of(b, s, LOAD_COL_CAIRN),
                             loadreport_rate_of(b, s, LOAD_COL_MOSQ));
        loadreport_cell(a, 17);
        if (fl) {
            loadreport_fmt_ratio(a, sizeof(a), loadreport_rate_of(b, s, LOAD_COL_CAIRN),
                                 loadreport_rate_of(b, s, LOAD_COL_FLASH));
            loadreport_cell(a, 15);
        }
        if (pe) {
            loadreport_fmt_cell(b, a, sizeof(a), s, LOAD_COL_PERSIST);
            loadreport_cell(a, 13);
            loadreport_fmt_ratio(a, sizeof(a), loadreport_rate_of(b, s, LOAD_COL_PERSIST),
                                 loadreport_rate_of(b, s, LOAD_COL_CAIRN));
            loadreport_cell(a, 15);
        }
        printf("|\n");
    }
}

/* "1.41M–1.52M" over a cell's runs; for latency the p99s' range. */
static void loadreport_spread(char *out, size_t len, const struct load_cell *cell)
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
        loadreport_fmt_rate(a, sizeof(a), lo);
        loadreport_fmt_rate(b, sizeof(b), hi);
        snprintf(out, len, "%s–%s", a, b);
    }
}

/* Sums over the measured windows of every run, for the closing line about the machine. */
struct loadreport_noise_sum {
    int n;
    double other, other_max, on_broker, on_broker_max, on_tool;
};

static void loadreport_noise_add(struct loadreport_noise_sum *ns, const struct load_usage *u)
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
static void loadreport_details(const struct load_bench *b, struct loadreport_noise_sum *ns)
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
    for (size_t s = 0; s < b->nscn; s++)
        for (int c = 0; c < LOAD_NCOL; c++) {
            const struct load_cell *cell = &b->cell[s][c];
            const struct load_result *m = loadreport_median_run(cell);
            unsigned long long t[5] = {0, 0, 0, 0, 0};
            double gap = 0;
            char med[32];
            char spread[48];

            if (!loadreport_selected(b, s) || !loadreport_applies(b, s, c) ||
                b->scn[s].kind == LOAD_SCN_IDLE)
                continue;
            if (!m) {
                printf("| %s | %s | error: %s |||||||||||\n", loadreport_name(b, s),
                       b->col[c].title, cell->err);
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
                loadreport_noise_add(ns, &r->cpu);
            }
            loadreport_fmt_cell(b, med, sizeof(med), s, c);
            loadreport_spread(spread, sizeof(spread), cell);
            printf("| %s | %s | %s | %s | %.0f%% | %.0f%% | %.0f%% / %.0f%% | %.0f ms | %llu | "
                   "%llu | %llu | %llu | %llu | %d |\n",
                   loadreport_name(b, s), b->col[c].title, med, spread, m->cpu.broker * 100,
                   m->cpu.self * 100, m->cpu.other_on_broker * 100, m->cpu.other_on_tool * 100,
                   gap * 1e3, t[0], t[1], t[2], t[3], t[4], cell->retried);
        }
}

static const char *loadreport_fd_note(const struct load_bench *b)
{
    static char note[160];

    if (b->opt.idle < b->idle_asked)
        snprintf(note, sizeof(note),
                 ", not %d: RLIMIT_NOFILE is %lld here, for the brokers too, and only "
                 "CAP_SYS_RESOURCE raises it",
                 b->idle_asked, b->fd_limit);
    return note;
}

static void loadreport_idle_table(const struct load_bench *b)
{
    bool any = false;

    for (size_t s = 0; s < b->nscn; s++) {
        if (!loadreport_selected(b, s) || b->scn[s].kind != LOAD_SCN_IDLE)
            continue;
        for (int c = 0; c < LOAD_NCOL; c++) {
            const struct load_cell *cell = &b->cell[s][c];
            if (!loadreport_applies(b, s, c) || c == LOAD_COL_PERSIST)
                continue;
            if (!any)
                printf("\nIdle connections (clean session, keepalive 0; one run, a fresh broker "
                       "each; %d asked for%s):\n\n| broker | reached | KiB each | RSS before | "
                       "RSS with | connections/s | note |\n|---|---|---|---|---|---|---|\n",
                       b->opt.idle, loadreport_fd_note(b));
            any = true;
            if (!cell->idle_done)
                printf("| %s | error: %s ||||||\n", b->col[c].title, cell->err);
            else
                printf("| %s | %d | %.2f | %ld KiB | %ld KiB | %.0f | %s |\n", b->col[c].title,
                       cell->idle.reached, cell->idle.kib_each, cell->idle.rss_before,
                       cell->idle.rss_with, cell->idle.conn_per_s, cell->idle.err);
        }
    }
}

void loadreport_print(const struct load_bench *b)
{
    struct loadreport_noise_sum ns = {0};
    double la[3] = {0, 0, 0};

    loadreport_main_table(b);
    loadreport_details(b, &ns);
    loadreport_idle_table(b);
    getloadavg(la, 3);
    printf("\n* the load tool used more than %.0f%% of its CPU in the median run: the figure is "
           "what the load tool\n  reached; the broker may have more in it.\n",
           LOAD_TOOL_LIMIT * 100);
    printf("~ other processes took more than %.0f%% of the broker's or the load tool's CPU in the "
           "median run (after\n  %d attempts): the figure is low by about that much.\n",
           LOAD_QUIET * 100, b->opt.attempts);
    printf("Loss: a broker may drop QoS 0 messages for a subscriber that falls behind (MQTT "
           "allows it), so QoS 0\nloss under overload is normal; a QoS 0 window with no "
           "delivery for 0.25 s is written off (a stall).\nAt QoS 1 and 2 there are no "
           "reconnects and no limits: any loss, duplicate or reordering is the broker's.\n");
    if (ns.n)
        printf("Machine: besides broker and load tool, the machine (other processes) "
               "was busy on average\n%.0f%% of one core (at most %.0f%%) of %ld%% during the "
               "measured windows; on the broker's CPU %.0f%%\n(at most %.0f%%), on the load "
               "tool's %.0f%%. Load average at the end %.2f %.2f %.2f.\n",
               ns.other / ns.n * 100, ns.other_max * 100, sysconf(_SC_NPROCESSORS_ONLN) * 100,
               ns.on_broker / ns.n * 100, ns.on_broker_max * 100, ns.on_tool / ns.n * 100, la[0],
               la[1], la[2]);
}
