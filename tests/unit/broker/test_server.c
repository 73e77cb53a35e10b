/*
 * test_server.c — the process around the broker, run in a child with server_run(): listening
 * on an ephemeral port (and logging it), the pid file, SIGHUP reloads (a good file applied, a
 * bad file or changed listeners refused with the running config kept), SIGTERM with clients
 * connected ending in exit 0, max_connections, and `cairn -t`'s check.
 *
 * The child logs to a file; the test waits for the line it expects (polling the file with a
 * deadline), never for a fixed time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "server.h"
#include "timer.h"

struct child {
    char dir[64];
    char conf[128];
    char log[128];
    char pid[128];
    pid_t child;
    int port;
};

static void write_conf(struct child *c, const char *extra)
{
    FILE *f = fopen(c->conf, "w");

    assert_non_null(f);
    fprintf(f,
            "listener 0 127.0.0.1\nallow_anonymous true\nlog_dest file %s\nlog_type all\n"
            "pid_file %s\n"
            "persistence_location %s/data\nuser root\n%s",
            c->log, c->pid, c->dir, extra ? extra : "");
    fclose(f);
}

static char *read_log(const struct child *c)
{
    static char buf[65536];
    FILE *f = fopen(c->log, "r");
    size_t n = 0;

    if (f) {
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    return buf;
}

/* Wait up to 5 s for the log to contain needle (count-th occurrence). */
static const char *wait_log(const struct child *c, const char *needle, int count)
{
    uint64_t end = timer_clock_ms() + 5000;

    do {
        const char *p = read_log(c);
        for (int i = 0; p && i < count; i++) {
            p = strstr(p, needle);
            if (p && i + 1 < count)
                p++;
        }
        if (p)
            return p;
        usleep(10000); /* polling a file: the event is the line appearing */
    } while (timer_clock_ms() < end);
    return NULL;
}

/* RLIMIT_NOFILE for the child (0: unchanged). */
static rlim_t child_nofile;

static void start(struct child *c, const char *extra)
{
    const char *line;

    memset(c, 0, sizeof(*c));
    strcpy(c->dir, "/tmp/cairn-test-server-XXXXXX");
    assert_non_null(mkdtemp(c->dir));
    snprintf(c->conf, sizeof(c->conf), "%s/cairn.conf", c->dir);
    snprintf(c->log, sizeof(c->log), "%s/cairn.log", c->dir);
    snprintf(c->pid, sizeof(c->pid), "%s/cairn.pid", c->dir);
    write_conf(c, extra);
    c->child = fork();
    assert_true(c->child >= 0);
    if (c->child == 0) {
        if (child_nofile) {
            struct rlimit rl = {child_nofile, child_nofile};
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        _exit(server_run(c->conf));
    }
    line = wait_log(c, "listening on 127.0.0.1:", 1);
    assert_non_null(line);
    c->port = atoi(line + strlen("listening on 127.0.0.1:"));
    assert_true(c->port > 0);
}

/* SIGTERM and the exit status (-1 if it did not exit within 5 s). */
static int stop(struct child *c)
{
    uint64_t end = timer_clock_ms() + 5000;
    int status = 0;
    int rc = -1;

    kill(c->child, SIGTERM);
    while (timer_clock_ms() < end) {
        pid_t p = waitpid(c->child, &status, WNOHANG);
        if (p == c->child) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        usleep(10000);
    }
    if (rc < 0) {
        kill(c->child, SIGKILL);
        waitpid(c->child, &status, 0);
    }
    return rc;
}

static void cleanup(struct child *c)
{
    char cmd[200];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
    assert_int_equal(system(cmd), 0);
}

static int tcp_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* CONNECT with client id "t" and read the 4-byte CONNACK; returns its return code or -1. */
static int mqtt_hello(int fd)
{
    static const uint8_t connect[] = {0x10, 0x0d, 0x00, 0x04, 'M',  'Q',  'T', 'T',
                                      0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 't'};
    uint8_t ack[4];
    size_t got = 0;
    struct timeval tv = {5, 0};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (write(fd, connect, sizeof(connect)) != (ssize_t)sizeof(connect))
        return -1;
    while (got < 4) {
        ssize_t n = read(fd, ack + got, 4 - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return ack[0] == 0x20 ? ack[3] : -1;
}

static void test_pid_file_and_clean_stop(void **state)
{
    struct child c;
    FILE *f;
    long pid = 0;
    int fd;

    (void)state;
    start(&c, NULL);
    f = fopen(c.pid, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    assert_int_equal(pid, (long)c.child);
    fd = tcp_connect(c.port);
    assert_int_equal(mqtt_hello(fd), 0);
    assert_int_equal(stop(&c), 0);
    {
        uint8_t b;
        assert_int_equal(read(fd, &b, 1), 0); /* the server closed the connection */
    }
    close(fd);
    assert_int_equal(access(c.pid, F_OK), -1); /* removed */
    assert_non_null(wait_log(&c, "SIGTERM: shutting down", 1));
    assert_non_null(wait_log(&c, "stopped", 1));
    cleanup(&c);
}

static void test_reload(void **state)
{
    struct child c;
    int fd;

    (void)state;
    start(&c, NULL);
    /* a bad file: refused, the broker carries on */
    write_conf(&c, "max_keepalive 30\nno_such_option 1\n");
    kill(c.child, SIGHUP);
    assert_non_null(wait_log(&c, "reload failed, keeping the running config: ", 1));
    assert_non_null(wait_log(&c, "cairn.conf:9: unknown option 'no_such_option'", 1));
    fd = tcp_connect(c.port);
    assert_int_equal(mqtt_hello(fd), 0);
    /* a good file: applied, the connected client stays */
    write_conf(&c, "max_keepalive 30\n");
    kill(c.child, SIGHUP);
    assert_non_null(wait_log(&c, "NOTICE reloaded ", 1));
    /* changed listeners: refused */
    write_conf(&c, "listener 1884 127.0.0.1\n");
    kill(c.child, SIGHUP);
    assert_non_null(wait_log(&c, "listeners cannot change without a restart", 1));
    {
        static const uint8_t ping[] = {0xc0, 0x00};
        uint8_t resp[2];
        assert_int_equal(write(fd, ping, 2), 2);
        assert_int_equal(read(fd, resp, 2), 2);
        assert_int_equal(resp[0], 0xd0);
    }
    close(fd);
    assert_int_equal(stop(&c), 0);
    cleanup(&c);
}

static void test_max_connections(void **state)
{
    struct child c;
    int a;
    int b;
    uint8_t byte;

    (void)state;
    start(&c, "max_connections 1\n");
    a = tcp_connect(c.port);
    assert_int_equal(mqtt_hello(a), 0);
    b = tcp_connect(c.port); /* refused: closed at once */
    {
        struct timeval tv = {5, 0};
        setsockopt(b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    assert_true(read(b, &byte, 1) <= 0);
    assert_non_null(wait_log(&c, "refused: max_connections reached", 1));
    close(b);
    close(a);
    assert_int_equal(stop(&c), 0);
    cleanup(&c);
}

/* A client that never sends CONNECT is closed after connect_timeout. */
static void test_connect_timeout(void **state)
{
    struct child c;
    int fd;
    uint8_t byte;
    struct timeval tv = {5, 0};

    (void)state;
    start(&c, "connect_timeout 1\n");
    fd = tcp_connect(c.port);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(read(fd, &byte, 1), 0);
    assert_non_null(wait_log(&c, "closed: no CONNECT in time", 1));
    close(fd);
    assert_int_equal(stop(&c), 0);
    cleanup(&c);
}

/* Several listeners, IPv6 among them: each logs its port and serves. */
static void test_ipv6_listener(void **state)
{
    struct child c;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    const char *line;
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    int fd;

    (void)state;
    a.sin6_addr = in6addr_loopback;
    if (probe < 0 || bind(probe, (struct sockaddr *)&a, sizeof(a)) < 0) {
        if (probe >= 0)
            close(probe);
        skip(); /* no IPv6 loopback here */
    }
    close(probe);
    start(&c, "listener 0 ::1\n");
    line = wait_log(&c, "listening on [::1]:", 1);
    assert_non_null(line);
    a.sin6_port = htons((uint16_t)atoi(line + strlen("listening on [::1]:")));
    fd = socket(AF_INET6, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(mqtt_hello(fd), 0);
    assert_non_null(wait_log(&c, "client [::1]:", 1));
    close(fd);
    fd = tcp_connect(c.port); /* the IPv4 one too */
    assert_int_equal(mqtt_hello(fd), 0);
    close(fd);
    assert_int_equal(stop(&c), 0);
    cleanup(&c);
}

/* CPU seconds (user + system) the child has used, in clock ticks. */
static long child_cpu_ticks(pid_t pid)
{
    char path[64];
    char buf[1024];
    FILE *f;
    long ut = 0;
    long st = 0;
    char *p;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    p = fgets(buf, sizeof(buf), f);
    fclose(f);
    if (!p || !(p = strrchr(buf, ')')))
        return -1;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
     * stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st) != 2)
        return -1;
    return ut + st;
}

/*
 * Out of descriptors: connections past the limit are shed (closed) rather than left to spin
 * the loop, and once clients leave, new ones are served again.
 */
static void test_emfile(void **state)
{
    struct child c;
    int fds[100];
    int n = 0;
    long t0;
    long t1;
    int ok;

    (void)state;
    child_nofile = 40;
    start(&c, "persistence false\n");
    child_nofile = 0;
    for (n = 0; n < 100; n++) {
        fds[n] = tcp_connect(c.port);
        assert_true(fds[n] >= 0);
    }
    assert_non_null(wait_log(&c, "refusing connections", 1));
    t0 = child_cpu_ticks(c.child);
    usleep(500000); /* measuring CPU use over an interval, not waiting for an event */
    t1 = child_cpu_ticks(c.child);
    assert_true(t0 >= 0 && t1 >= 0);
    assert_true(t1 - t0 < sysconf(_SC_CLK_TCK) / 5); /* under 20% of a CPU: no busy loop */
    for (int i = 0; i < n; i++)
        close(fds[i]);
    /* served again once descriptors are free */
    ok = -1;
    for (int attempt = 0; attempt < 50 && ok != 0; attempt++) {
        int fd = tcp_connect(c.port);
        ok = mqtt_hello(fd);
        close(fd);
        if (ok != 0)
            usleep(50000); /* the broker is closing the old sockets meanwhile */
    }
    assert_int_equal(ok, 0);
    assert_int_equal(stop(&c), 0);
    cleanup(&c);
}

static void test_bad_config_start(void **state)
{
    char path[] = "/tmp/cairn-test-badconf-XXXXXX";
    int fd = mkstemp(path);
    pid_t p;
    int status;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "listener 1883\nlog_type loud\n", 28), 28);
    close(fd);
    p = fork();
    if (p == 0) {
        int devnull = open("/dev/null", 1);
        dup2(devnull, 2);
        _exit(server_run(path));
    }
    assert_int_equal(waitpid(p, &status, 0), p);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    p = fork();
    if (p == 0) {
        int devnull = open("/dev/null", 1);
        dup2(devnull, 1);
        dup2(devnull, 2);
        _exit(server_check_config(path));
    }
    assert_int_equal(waitpid(p, &status, 0), p);
    assert_int_equal(WEXITSTATUS(status), 1);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pid_file_and_clean_stop), cmocka_unit_test(test_reload),
        cmocka_unit_test(test_max_connections),         cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_ipv6_listener),           cmocka_unit_test(test_emfile),
        cmocka_unit_test(test_bad_config_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
