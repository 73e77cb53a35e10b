/*
 * loadreport.h — what one bench_load invocation measures (scenarios x broker columns, several
 * runs each) and how it is printed: the table of medians and ratios, then the details
 * (spread, CPU of broker, load tool and everyone else, loss, duplicates, reordering), the idle
 * connections, and a closing line on how busy the machine was.
 */
#ifndef CAIRN_LOADREPORT_H
#define CAIRN_LOADREPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "loadbroker.h"
#include "loadgen.h"

#define LOAD_MAX_RUNS   15
#define LOAD_TOOL_LIMIT 0.90 /* the load tool's CPU above which a figure is the tool's limit */
#define LOAD_QUIET      0.10 /* others' share of a pinned CPU above which a run is noisy */

enum load_scn_kind {
    LOAD_SCN_FLOW, /* closed loop: delivered msg/s */
    LOAD_SCN_LAT,  /* paced: latency percentiles */
    LOAD_SCN_IDLE, /* idle connections: KiB of broker RSS each */
};

struct load_scn {
    const char *name; /* LOAD_SCN_LAT: what follows "QoS n at RATE msg/s" */
    enum load_scn_kind kind;
    int npub, nsub, qos;
    size_t payload;
    bool persistent; /* persistent subscribers: the "Cairn persist" column runs it too */
};

enum load_col_id { LOAD_COL_MOSQ, LOAD_COL_FLASH, LOAD_COL_CAIRN, LOAD_COL_PERSIST, LOAD_NCOL };

struct load_col {
    const char *title;
    struct load_broker b;
    bool skip; /* left out with -b */
    bool on;   /* has a binary and is not skipped */
    char version[96];
};

struct load_cell {
    int nruns;
    int retried; /* runs made again because the machine was busy */
    struct load_result run[LOAD_MAX_RUNS];
    struct load_idle_result idle;
    bool idle_done;
    char err[160]; /* the last failure */
};

struct load_opts {
    int runs;     /* per scenario and column; the median is reported */
    int attempts; /* at most, per run, while the machine is busy */
    double seconds, warmup;
    int window; /* closed loop: messages outstanding per subscriber */
    int idle;   /* idle connections (after the fd limit had its say) */
    double rate;
    const char *only[16]; /* -s */
    int nonly;
};

struct load_bench {
    const struct load_scn *scn;
    size_t nscn;
    struct load_col col[LOAD_NCOL];
    struct load_cell (*cell)[LOAD_NCOL]; /* [nscn][LOAD_NCOL] */
    struct load_opts opt;
    int idle_asked;     /* -i as given */
    long long fd_limit; /* RLIMIT_NOFILE, when it lowered the idle connections */
};

/* "QoS 1 at 5k msg/s, p50 / p99 µs": a scenario's name. Valid until the next call. */
const char *loadreport_name(const struct load_bench *b, size_t s);
/* Is scenario s selected by -s (and not the idle row with -i 0)? */
bool loadreport_selected(const struct load_bench *b, size_t s);
/* Does column c run scenario s? Cairn persist only where subscribers are persistent. */
bool loadreport_applies(const struct load_bench *b, size_t s, int c);
/* How much of the two pinned CPUs other processes took in a run (a fraction of one core). */
double loadreport_noise(const struct load_result *r);
/* The lines above the table: date, machine, method, brokers. */
void loadreport_header(const struct load_bench *b);
/* Everything measured. */
void loadreport_print(const struct load_bench *b);

#endif
