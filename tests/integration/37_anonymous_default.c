/*
 * 37_anonymous_default — secure by default, as Mosquitto 2.0 (issue 9): with no listener in the
 * config the broker listens on 127.0.0.1:1883 and lets anonymous clients in; once the config
 * names a listener, anonymous clients (and, without a password file, clients with a bare
 * username) get CONNACK 5 unless allow_anonymous true is written, globally or, with
 * per_listener_settings true, for that listener. A listener on every address that allows them
 * is named in a start-up warning; a loopback one is not.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 5000

/* CONNECT on 127.0.0.1:port (anonymous when user is NULL): the CONNACK code, or -1. */
static int connack_on(int port, const char *id, const char *user)
{
    struct raw_conn_opts o = {.id = id, .keepalive = 60, .user = user};
    int fd = raw_connect_addr("127.0.0.1", port), rc = -1;

    if (fd < 0 || raw_mqtt_handshake(fd, &o, &rc, NULL) != 0)
        rc = -1;
    if (fd >= 0)
        close(fd);
    return rc;
}

/* The config names a loopback listener and says nothing of allow_anonymous. */
static void test_listener_refuses_anonymous(void)
{
    struct broker_opts bo = {.no_anonymous = true};
    struct broker *b = broker_start(&bo);

    T_ASSERT(b);
    T_EQ(connack_on(broker_port(b), "anon-1", NULL), 5);
    /* no password file: a username alone proves nothing, it is anonymous too */
    T_EQ(connack_on(broker_port(b), "anon-2", "somebody"), 5);
out:
    broker_free(b);
}

/* per_listener_settings true: the listener that wrote allow_anonymous true lets them in, the
 * one that did not refuses them. */
static void test_per_listener(void)
{
    struct broker_opts bo = {.no_anonymous = true};
    struct broker *b = NULL;
    char conf[256];
    int p2 = harness_free_port();

    T_ASSERT(p2 > 0);
    snprintf(conf, sizeof(conf),
             "per_listener_settings true\nallow_anonymous true\nlistener %d 127.0.0.1", p2);
    bo.config = conf;
    b = broker_start(&bo);
    T_ASSERT(b);
    T_EQ(connack_on(broker_port(b), "anon-1", NULL), 0);
    T_EQ(connack_on(p2, "anon-2", NULL), 5);
out:
    broker_free(b);
}

/* Is 127.0.0.1:1883 free to bind now? */
static bool port_1883_free(void)
{
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(1883), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    bool ok = false;

    if (fd < 0)
        return false;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/*
 * No listener in the config: 127.0.0.1:1883, anonymous allowed. That port cannot be chosen
 * free, so the case is skipped when something else holds it (before or during the start).
 */
static void test_no_listener_allows_anonymous(void)
{
    char dir[] = "/tmp/cairn-itest-anon-XXXXXX";
    char conf[256], *rm[] = {"rm", "-rf", dir, NULL};
    struct proc p = {.fd = -1};
    bool made = false, started = false;
    uint64_t deadline;
    FILE *f = NULL;

    if (!port_1883_free()) {
        t_skip("127.0.0.1:1883 is in use");
        return;
    }
    T_ASSERT(mkdtemp(dir));
    made = true;
    snprintf(conf, sizeof(conf), "%s/no-listener.conf", dir);
    f = fopen(conf, "w");
    T_ASSERT(f);
    fputs(harness_is_mosquitto() ? "user root\npersistence false\nlog_dest stderr\n"
                                 : "persistence false\nsys_interval 0\n",
          f);
    T_EQ(fclose(f), 0);
    {
        char *argv[] = {harness_is_mosquitto() ? "/usr/sbin/mosquitto"
                                               : (char *)harness_cairn_bin(),
                        "-c", conf, NULL};

        T_EQ(proc_start(&p, argv), 0);
    }
    /* ready once 1883 accepts; given up when the broker says the port is taken */
    deadline = t_now_ms() + 20000;
    while (!started && t_now_ms() < deadline) {
        int fd = raw_connect_addr("127.0.0.1", 1883);

        if (fd >= 0) {
            close(fd);
            started = true;
        } else if (proc_wait_output(&p, "in use", 5) == 0) {
            t_skip("127.0.0.1:1883 was taken meanwhile");
            goto out;
        }
    }
    T_ASSERTF(started, "no listener on 127.0.0.1:1883; output: %s", p.out);
    T_EQ(connack_on(1883, "anon-default", NULL), 0);
out:
    proc_cleanup(&p);
    if (made && !t_case_failed())
        proc_run(rm, WAIT_MS, NULL);
}

/*
 * A listener on every address with allow_anonymous true: a warning names it at start-up, the
 * loopback one is not named, and anonymous clients are let in (it is a warning, not a refusal).
 * Without allow_anonymous, no warning and no anonymous clients.
 */
static void test_open_listener_warning(void)
{
    struct broker_opts bo = {0};
    struct broker *b = NULL;
    char conf[64], needle[96], *log = NULL;
    int p2 = harness_free_port();

    if (harness_cairn_only("the start-up warning is Cairn's"))
        return;
    T_ASSERT(p2 > 0);
    snprintf(conf, sizeof(conf), "listener %d", p2);
    bo.config = conf;
    b = broker_start(&bo);
    T_ASSERT(b);
    snprintf(needle, sizeof(needle), ":%d allows anonymous clients (allow_anonymous true)", p2);
    T_EQ(broker_wait_log(b, needle, WAIT_MS), 0);
    T_EQ(broker_wait_log(b, "WARNING listener on ", WAIT_MS), 0);
    log = broker_log(b);
    T_ASSERT(log);
    snprintf(needle, sizeof(needle), "127.0.0.1:%d allows anonymous", broker_port(b));
    T_ASSERTF(!strstr(log, needle), "the loopback listener was named: %s", log);
    T_EQ(connack_on(p2, "anon-1", NULL), 0);
    free(log);
    log = NULL;
    broker_free(b);

    bo.no_anonymous = true;
    p2 = harness_free_port();
    snprintf(conf, sizeof(conf), "listener %d", p2);
    b = broker_start(&bo);
    T_ASSERT(b);
    T_EQ(connack_on(p2, "anon-2", NULL), 5);
    T_EQ(connack_on(broker_port(b), "anon-3", NULL), 5);
    log = broker_log(b);
    T_ASSERT(log);
    T_ASSERTF(!strstr(log, "allows anonymous clients"), "warned without allow_anonymous: %s", log);
out:
    free(log);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"listener_refuses_anonymous", test_listener_refuses_anonymous},
        {"per_listener", test_per_listener},
        {"no_listener_allows_anonymous", test_no_listener_allows_anonymous},
        {"open_listener_warning", test_open_listener_warning},
    };

    return T_MAIN(cases);
}
