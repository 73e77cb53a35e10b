/* loadbroker.c — see loadbroker.h. */
#define _GNU_SOURCE
#include "loadbroker.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchnet.h"

/*
 * The limits every broker gets, as equal as their options allow: no limit on messages in
 * flight or queued per client (the closed loop of the load tool bounds them), TCP_NODELAY
 * (Cairn always sets it), no $SYS, no logging. FlashMQ has no in-flight option for MQTT 3
 * clients beyond max_qos_msg_pending_per_client (at most 65535) and drops a PUBLISH that does
 * not fit a client's write buffer, so that buffer is made large enough for the window.
 */
static int load_broker_conf(const struct load_broker *b, const char *path)
{
    FILE *f = fopen(path, "w");
    int rc = -1;

    if (!f)
        goto out;
    switch (b->kind) {
    case LOAD_CAIRN:
        fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\n", b->port);
        if (b->tls_dir)
            fprintf(f, "certfile %s/server.crt\nkeyfile %s/server.key\n", b->tls_dir, b->tls_dir);
        fprintf(f, "max_inflight_messages 0\nmax_queued_messages 0\nsys_interval 0\n");
        /* run by root, Cairn stays root: the temp dir is root's */
        fprintf(f, "log_dest none\nconnection_messages false\nuser root\n");
        if (b->persistence)
            fprintf(f, "persistence true\npersistence_location %s/data\n", b->dir);
        else
            fprintf(f, "persistence false\n");
        break;
    case LOAD_MOSQUITTO:
        fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\n", b->port);
        if (b->tls_dir) /* user root: the key stays readable after the privilege drop */
            fprintf(f, "certfile %s/server.crt\nkeyfile %s/server.key\nuser root\n", b->tls_dir,
                    b->tls_dir);
        fprintf(f, "max_inflight_messages 0\nmax_queued_messages 0\nsys_interval 0\n");
        fprintf(f, "set_tcp_nodelay true\nlog_dest none\npersistence false\n");
        break;
    case LOAD_FLASHMQ:
        fprintf(f, "thread_count 1\nallow_anonymous true\nlog_level error\n");
        fprintf(f, "max_qos_msg_pending_per_client 65535\n");
        fprintf(f, "max_qos_bytes_pending_per_client 1073741824\n");
        fprintf(f, "client_max_write_buffer_size 16777216\n");
        fprintf(f, "listen {\n    protocol mqtt\n    port %d\n    inet_protocol ip4\n", b->port);
        fprintf(f, "    inet4_bind_address 127.0.0.1\n    tcp_nodelay true\n}\n");
        break;
    }
    if (b->extra && b->kind != LOAD_FLASHMQ)
        fprintf(f, "%s\n", b->extra);
    rc = fclose(f) == 0 ? 0 : -1;
out:
    return rc;
}

/* The last lines of the broker's log, for an error message. */
static void load_broker_log_tail(const struct load_broker *b, char *out, size_t outlen)
{
    char path[96];
    char buf[512];
    FILE *f;
    size_t n;
    long size;

    snprintf(path, sizeof(path), "%s/broker.log", b->dir);
    f = fopen(path, "r");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0, SEEK_SET);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = ' ';
    snprintf(out + strlen(out), outlen - strlen(out), ": %s", buf);
}

int load_pin(pid_t pid, int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(pid, sizeof(set), &set) == 0 ? 0 : -errno;
}

int load_broker_start(struct load_broker *b, int cpu, char *err, size_t errlen)
{
    char conf[96];
    char log[96];
    double end;
    int rc = -1;
    int status;

    b->pid = 0;
    strcpy(b->dir, "/tmp/cairn-load-XXXXXX");
    if (!mkdtemp(b->dir)) {
        snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
        goto out;
    }
    /* Mosquitto started as root drops to its own user: it must be able to enter the dir */
    chmod(b->dir, 0755);
    b->port = bench_free_port();
    snprintf(conf, sizeof(conf), "%s/broker.conf", b->dir);
    snprintf(log, sizeof(log), "%s/broker.log", b->dir);
    if (b->port < 0 || load_broker_conf(b, conf) < 0) {
        snprintf(err, errlen, "cannot write %s", conf);
        goto out;
    }
    b->pid = fork();
    if (b->pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        b->pid = 0;
        goto out;
    }
    if (b->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (cpu >= 0)
            load_pin(0, cpu);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl(b->bin, b->bin, "-c", conf, (char *)NULL);
        _exit(127);
    }
    for (end = bench_now() + 10; bench_now() < end;) {
        int fd = bench_connect_tcp(b->port);
        if (fd >= 0) {
            close(fd);
            rc = 0;
            goto out;
        }
        if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
            snprintf(err, errlen, "%s exited (status %d)", b->bin, status);
            load_broker_log_tail(b, err, errlen);
            b->pid = 0;
            goto out;
        }
        usleep(10000);
    }
    snprintf(err, errlen, "%s: port %d not accepting after 10 s", b->bin, b->port);
    load_broker_log_tail(b, err, errlen);
    load_broker_stop(b);
out:
    return rc;
}

static int load_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void load_broker_stop(struct load_broker *b)
{
    int status;

    if (b->pid > 0) {
        kill(b->pid, SIGTERM);
        waitpid(b->pid, &status, 0);
        b->pid = 0;
    }
    if (b->dir[0])
        nftw(b->dir, load_rm, 16, FTW_DEPTH | FTW_PHYS);
    b->dir[0] = 0;
}

void load_broker_version(const struct load_broker *b, char *out, size_t outlen)
{
    static const char *const flag[] = {"-V", "-h", "--version"};
    char cmd[512];
    FILE *p;

    out[0] = 0;
    snprintf(cmd, sizeof(cmd), "'%s' %s 2>&1", b->bin, flag[b->kind]);
    p = popen(cmd, "r");
    if (!p)
        return;
    while (fgets(out, (int)outlen, p))
        if (strchr(out, '.') && strpbrk(out, "0123456789")) /* the first line with a version */
            break;
    while (fgetc(p) != EOF)
        ;
    pclose(p);
    out[strcspn(out, "\r\n")] = 0;
}

static double load_proc_cpu(pid_t pid)
{
    char path[64];
    char buf[1024];
    unsigned long ut = 0;
    unsigned long st = 0;
    double sec = 0;
    FILE *f;
    char *p;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        goto out;
    if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) != NULL &&
        /* after "pid (comm)": state, then 10 fields, then utime and stime */
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
        sec = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    fclose(f);
out:
    return sec;
}

/*
 * Busy seconds from /proc/stat: of all CPUs, and of the two pinned ones. A line reads "cpuN user
 * nice system idle iowait irq softirq steal ...". Busy leaves out idle, iowait and softirq: on
 * loopback most softirq time is the benchmark's own TCP traffic, which the kernel charges to
 * no process, so counting it would call the benchmark's own work someone else's.
 */
static void load_machine_cpu(struct load_cpu *s)
{
    char line[512];
    FILE *f = fopen("/proc/stat", "r");
    double tick = (double)sysconf(_SC_CLK_TCK);

    s->machine = s->on_broker_cpu = s->on_tool_cpu = 0;
    while (f && fgets(line, sizeof(line), f) && strncmp(line, "cpu", 3) == 0) {
        unsigned long long v[8] = {0};
        int cpu = -1;
        double busy;
        char *p = line + 3;

        if (*p != ' ')
            cpu = (int)strtol(p, &p, 10);
        if (sscanf(p, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6], &v[7]) != 8)
            continue;
        busy = (double)(v[0] + v[1] + v[2] + v[5] + v[7]) / tick;
        if (cpu < 0)
            s->machine = busy;
        else if (cpu == LOAD_BROKER_CPU)
            s->on_broker_cpu = busy;
        else if (cpu == LOAD_TOOL_CPU)
            s->on_tool_cpu = busy;
    }
    if (f)
        fclose(f);
}

void load_cpu_snap(pid_t broker, struct load_cpu *s)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    s->wall = bench_now();
    s->broker = broker > 0 ? load_proc_cpu(broker) : 0;
    s->self = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
              (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    load_machine_cpu(s);
}

/* /proc/stat and /proc/PID/stat tick at 100 Hz: a little below zero is rounding. */
static double load_nonneg(double v)
{
    return v > 0 ? v : 0;
}

void load_cpu_delta(const struct load_cpu *a, const struct load_cpu *b, struct load_usage *u)
{
    double wall = b->wall - a->wall > 0 ? b->wall - a->wall : 1e-9;

    u->broker = (b->broker - a->broker) / wall;
    u->self = (b->self - a->self) / wall;
    u->other = load_nonneg((b->machine - a->machine) / wall - u->broker - u->self);
    u->other_on_broker = load_nonneg((b->on_broker_cpu - a->on_broker_cpu) / wall - u->broker);
    u->other_on_tool = load_nonneg((b->on_tool_cpu - a->on_tool_cpu) / wall - u->self);
}
