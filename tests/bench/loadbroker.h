/*
 * loadbroker.h — the brokers bench_load compares, started and stopped by the benchmark itself:
 * Cairn, Mosquitto 2.0 and FlashMQ, each with a config of equal limits (no in-flight limit, no
 * queue limit, TCP_NODELAY, no $SYS, no logging) on a free loopback port in a fresh temporary
 * directory, pinned to one CPU. Also the CPU accounting that says how busy the broker, the
 * load tool and the rest of the machine (in all, and on the two pinned CPUs) were over a
 * measured window.
 */
#ifndef CAIRN_LOADBROKER_H
#define CAIRN_LOADBROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum load_kind {
    LOAD_CAIRN,
    LOAD_MOSQUITTO,
    LOAD_FLASHMQ,
};

struct load_broker {
    enum load_kind kind;
    const char *bin;     /* borrowed: the executable */
    bool persistence;    /* Cairn only: persistence true (persistence_sync false) */
    const char *tls_dir; /* Cairn and Mosquitto: TLS with DIR/server.crt and DIR/server.key */
    const char *extra;   /* Cairn and Mosquitto: more config lines, or NULL */
    pid_t pid;           /* 0 when not running */
    int port;
    char dir[64]; /* the temporary directory: config, log, data */
};

/*
 * Write b's config, start it pinned to cpu (-1: not pinned) and wait until its port accepts
 * connections. 0, or -1 with the reason (and the end of the broker's log) in err.
 */
int load_broker_start(struct load_broker *b, int cpu, char *err, size_t errlen);
/* SIGTERM, wait, remove the temporary directory. Does nothing when b is not running. */
void load_broker_stop(struct load_broker *b);
/* The first line of the broker's version output ("mosquitto version 2.0.11"), or "". */
void load_broker_version(const struct load_broker *b, char *out, size_t outlen);
/* Pin a process (0: this one) to one CPU: 0, or -errno. */
int load_pin(pid_t pid, int cpu);

/* Where bench_load pins the brokers and itself. */
#define LOAD_BROKER_CPU 0
#define LOAD_TOOL_CPU   1

/* A point in time for CPU accounting, in seconds. */
struct load_cpu {
    double wall;    /* CLOCK_MONOTONIC */
    double broker;  /* utime + stime of the broker, all its threads (/proc/PID/stat) */
    double self;    /* this process (getrusage) */
    double machine; /* every CPU's busy time (/proc/stat) but softirq: all processes */
    double on_broker_cpu, on_tool_cpu; /* busy time of LOAD_BROKER_CPU and LOAD_TOOL_CPU */
};

/* Between two snapshots, in fractions of one core. */
struct load_usage {
    double broker;          /* the broker process */
    double self;            /* the load tool */
    double other;           /* everything else on the machine: other processes (and hardirqs) */
    double other_on_broker; /* of that, on the broker's CPU: time the broker could not have */
    double other_on_tool;   /* on the load tool's CPU */
};

void load_cpu_snap(pid_t broker, struct load_cpu *s);
void load_cpu_delta(const struct load_cpu *a, const struct load_cpu *b, struct load_usage *u);

#endif
