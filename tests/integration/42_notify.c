/*
 * 42_notify — systemd's Type=notify readiness, as the service manager sees it: a datagram socket
 * named by $NOTIFY_SOCKET (a path, or an abstract name after '@') gets "READY=1" once the broker
 * has restored its store and bound its listeners, and "STOPPING=1" when SIGTERM stops it. A
 * $NOTIFY_SOCKET nobody listens on is logged and changes nothing else.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define WAIT_MS 10000

/* A datagram socket bound at name ("/path" or "@abstract"). The fd or -1. */
static int notify_listen(const char *name)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || n >= sizeof(sa.sun_path))
        goto fail;
    memcpy(sa.sun_path, name, n);
    if (name[0] == '@') {
        sa.sun_path[0] = '\0';
        len--; /* an abstract address is exactly its bytes */
    }
    if (bind(fd, (struct sockaddr *)&sa, len) != 0)
        goto fail;
    return fd;
fail:
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Wait for one datagram into buf (NUL-terminated). 1 got it, 0 timeout, -1 error. */
static int notify_recv(int fd, char *buf, size_t cap, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ssize_t n;
    int rc = poll(&p, 1, timeout_ms);

    if (rc <= 0)
        return rc;
    n = recv(fd, buf, cap - 1, 0);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 1;
}

/*
 * Start a broker holding a persistent session (so there is a store to restore), then restart it
 * with NOTIFY_SOCKET=name: READY=1 comes, by which time the log says the store was restored and
 * the listener bound; SIGTERM sends STOPPING=1 before the exit.
 */
static void run_ready(const char *name, const char *path_to_unlink)
{
    struct broker *b = NULL;
    struct raw_conn_opts so = {.id = "notify-sub", .persistent = true, .keepalive = 60};
    char buf[256];
    char *log = NULL, *run2 = NULL;
    int fd = -1, sub = -1, rc = -1;

    if (harness_cairn_only("sd_notify readiness is Cairn's"))
        return;
    fd = notify_listen(name);
    T_ASSERTF(fd >= 0, "bind %s: %s", name, strerror(errno));
    b = broker_start(NULL);
    T_ASSERT(b);
    sub = raw_mqtt_connect(b, &so, &rc, NULL);
    T_ASSERT(sub >= 0 && rc == 0);
    T_EQ(raw_subscribe(sub, 1, "notify/#", 1), 1);
    T_EQ(raw_send_disconnect(sub), 0);
    T_EQ(broker_stop_term(b, WAIT_MS), 0);
    /* no NOTIFY_SOCKET in that first run: nothing was sent */
    T_EQ(notify_recv(fd, buf, sizeof(buf), 0), 0);

    T_EQ(broker_setenv(b, "NOTIFY_SOCKET", name), 0);
    T_EQ(broker_restart(b), 0);
    T_EQ(notify_recv(fd, buf, sizeof(buf), WAIT_MS), 1);
    T_ASSERTF(strncmp(buf, "READY=1\n", 8) == 0 || strcmp(buf, "READY=1") == 0, "got '%s'", buf);
    log = broker_log(b);
    T_ASSERT(log && (run2 = strstr(log, "starting")));
    run2 = strstr(run2 + 1, "starting"); /* the second run's lines */
    T_ASSERT(run2);
    T_ASSERTF(strstr(run2, "restored 1 sessions"), "READY before the store was restored");
    T_ASSERTF(strstr(run2, "listening on"), "READY before the listener was bound");
    T_EQ(notify_recv(fd, buf, sizeof(buf), 0), 0); /* once */

    T_EQ(broker_stop_term(b, WAIT_MS), 0);
    T_EQ(notify_recv(fd, buf, sizeof(buf), WAIT_MS), 1);
    T_ASSERTF(strcmp(buf, "STOPPING=1") == 0, "got '%s'", buf);
out:
    free(log);
    if (sub >= 0)
        close(sub);
    if (fd >= 0)
        close(fd);
    if (path_to_unlink)
        unlink(path_to_unlink);
    broker_free(b);
}

static void test_ready_path(void)
{
    char dir[] = "/tmp/cairn-itest-notify-XXXXXX";
    char path[80];

    if (!mkdtemp(dir)) {
        t_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
        return;
    }
    snprintf(path, sizeof(path), "%s/notify", dir);
    run_ready(path, path);
    rmdir(dir);
}

static void test_ready_abstract(void)
{
    char name[64];

    snprintf(name, sizeof(name), "@cairn-itest-notify-%ld", (long)getpid());
    run_ready(name, NULL);
}

/* Nobody listens at NOTIFY_SOCKET: the broker says so and serves as usual. */
static void test_unreachable_socket(void)
{
    struct broker *b = NULL;
    struct raw_conn_opts o = {.id = "notify-pub", .keepalive = 60};
    int fd = -1, rc = -1;

    if (harness_cairn_only("sd_notify readiness is Cairn's"))
        return;
    b = broker_start(NULL);
    T_ASSERT(b);
    T_EQ(broker_stop_term(b, WAIT_MS), 0);
    T_EQ(broker_setenv(b, "NOTIFY_SOCKET", "/nonexistent/cairn-notify"), 0);
    T_EQ(broker_restart(b), 0);
    T_EQ(broker_wait_log(b, "NOTIFY_SOCKET: cannot tell the service manager", WAIT_MS), 0);
    fd = raw_mqtt_connect(b, &o, &rc, NULL);
    T_ASSERT(fd >= 0 && rc == 0);
    T_EQ(raw_publish_flow(fd, "notify/t", "x", 1, false, 1), 0);
    T_EQ(broker_stop_term(b, WAIT_MS), 0);
out:
    if (fd >= 0)
        close(fd);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"ready_path", test_ready_path},
        {"ready_abstract", test_ready_abstract},
        {"unreachable_socket", test_unreachable_socket},
    };
    return T_MAIN(cases);
}
