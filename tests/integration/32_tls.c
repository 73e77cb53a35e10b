/*
 * 32_tls — TLS listeners with the real broker and real clients: mosquitto_pub/mosquitto_sub
 * with --cafile at QoS 0, 1 and 2 (and across to a plain-TCP Paho client), a persistent session
 * over TLS that gets its queued message after a restart, plaintext MQTT to the TLS port, TLS to
 * the plain port, a handshake that stalls, garbage after the handshake (each closing only that
 * connection while the broker serves the rest), half-configured TLS listeners refused with file
 * and line, and SIGHUP loading a new certificate while a TLS subscriber stays connected.
 *
 * Certificates are made at test time by tests/tls/mkcerts.sh in a temp dir (harness_tls.c);
 * Paho C over TLS is 34_tls_paho.
 */
#include "harness_tls.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 5000

/* 0 when the peer closes fd within timeout_ms (whatever it sends before). */
static int wait_closed(int fd, int timeout_ms)
{
    uint64_t end = t_now_ms() + (uint64_t)timeout_ms;
    char buf[512];

    while (t_now_ms() < end) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&pfd, 1, (int)(end - t_now_ms())) <= 0)
            continue;
        n = read(fd, buf, sizeof(buf));
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return 0;
    }
    return -1;
}

static const char tls_listener[] = "listener @P 127.0.0.1\n"
                                   "certfile @D/server-ec.crt\n"
                                   "keyfile @D/server-ec.key\n";

static void test_qos_levels(void)
{
    static const char *qos[] = {"0", "1", "2"};
    struct tls_env e;
    struct proc p = {0};
    bool started = false;
    struct pc_opts po = {.id = "plain-side"};
    MQTTClient plain = NULL;
    struct pc_msg m = {0};

    T_EQ(tls_env_start(&e, tls_listener, NULL), 0);
    plain = pc_connect(e.b, &po, NULL, NULL);
    T_ASSERT(plain);
    T_EQ(pc_subscribe(plain, "tls/#", 2), 2);
    for (int i = 0; i < 3; i++) {
        char topic[32], want[64];
        const char *extra[] = {"-t", topic, "-q", qos[i], NULL};

        snprintf(topic, sizeof(topic), "tls/q%s", qos[i]);
        snprintf(want, sizeof(want), "%s over tls %s", topic, qos[i]);
        T_EQ(tls_env_sub_start(&p, &e, NULL, extra), 0);
        started = true;
        T_EQ(tls_env_pub(&e, NULL, topic, want + strlen(topic) + 1, qos[i]), 0);
        T_EQ(proc_wait(&p, WAIT_MS), 0);
        T_ASSERTF(strstr(p.out, want), "subscriber output: %s", p.out);
        proc_cleanup(&p);
        started = false;
        /* and across transports: the plain-TCP subscriber got it too */
        T_EQ(pc_recv(plain, &m, WAIT_MS), 1);
        T_ASSERT(strcmp(m.topic, topic) == 0);
        pc_msg_free(&m);
    }
    /* plain -> TLS */
    {
        const char *extra[] = {"-t", "tls/from-plain", "-q", "1", NULL};

        T_EQ(tls_env_sub_start(&p, &e, NULL, extra), 0);
        started = true;
        T_EQ(pc_publish_str(plain, "tls/from-plain", "hello tls", 1, false), 0);
        T_EQ(proc_wait(&p, WAIT_MS), 0);
        T_ASSERTF(strstr(p.out, "tls/from-plain hello tls"), "subscriber output: %s", p.out);
    }
out:
    if (started)
        proc_cleanup(&p);
    pc_msg_free(&m);
    pc_close(&plain);
    tls_env_stop(&e);
}

/* A persistent session over TLS gets the message queued while it was away, across a restart. */
static void test_persistent_session_restart(void)
{
    struct tls_env e;
    struct proc p = {0};
    bool started = false;
    const char *extra[] = {"-t", "tls/persist", "-q", "1", "-c", "-i", "tls-persist", NULL};

    T_EQ(tls_env_start(&e, tls_listener, NULL), 0);
    T_EQ(tls_env_sub_start(&p, &e, NULL, extra), 0);
    started = true;
    T_EQ(tls_env_pub(&e, NULL, "tls/persist", "first", "1"), 0);
    T_EQ(proc_wait(&p, WAIT_MS), 0);
    proc_cleanup(&p);
    started = false;
    T_EQ(tls_env_pub(&e, NULL, "tls/persist", "queued while away", "1"), 0);
    T_EQ(broker_stop_term(e.b, WAIT_MS), 0);
    T_EQ(broker_restart(e.b), 0);
    {
        char **argv;
        const char *rest[] = {"-v", "-C", "1",  "-W", "20",          "-t", "tls/persist",
                              "-q", "1",  "-c", "-i", "tls-persist", NULL};

        argv = tls_env_argv(&e, "mosquitto_sub", NULL, rest);
        T_EQ(proc_start(&p, argv), 0);
        started = true;
    }
    T_EQ(proc_wait(&p, 15000), 0);
    T_ASSERTF(strstr(p.out, "tls/persist queued while away"), "subscriber output: %s", p.out);
out:
    if (started)
        proc_cleanup(&p);
    tls_env_stop(&e);
}

/* Plaintext MQTT to the TLS port is closed; the broker serves TLS and plain clients after. */
static void test_plaintext_to_tls_port(void)
{
    struct tls_env e;
    struct raw_conn_opts o = {.id = "plain-to-tls", .keepalive = 60};
    uint8_t buf[128];
    size_t n;
    int fd = -1;

    T_EQ(tls_env_start(&e, tls_listener, NULL), 0);
    fd = raw_connect_addr("127.0.0.1", e.tls_port);
    T_ASSERT(fd >= 0);
    n = raw_build_connect(buf, sizeof(buf), &o);
    T_ASSERT(n > 0);
    T_EQ(raw_send(fd, buf, n), 0);
    T_EQ(wait_closed(fd, WAIT_MS), 0);
    T_EQ(tls_env_pub(&e, NULL, "tls/after", "ok", "1"), 0);
    T_EQ(tls_env_still_serving(&e), 0);
out:
    if (fd >= 0)
        close(fd);
    tls_env_stop(&e);
}

/* TLS to the plain port fails for that client only. */
static void test_tls_to_plain_port(void)
{
    struct tls_env e;
    char plain_port[16];
    char **argv;
    const char *rest[] = {"-t", "x", "-m", "y", NULL};

    T_EQ(tls_env_start(&e, tls_listener, NULL), 0);
    snprintf(plain_port, sizeof(plain_port), "%d", broker_port(e.b));
    argv = tls_env_argv(&e, "mosquitto_pub", NULL, rest);
    argv[4] = plain_port;
    T_ASSERT(proc_run(argv, 15000, NULL) != 0);
    T_EQ(tls_env_still_serving(&e), 0);
    T_EQ(tls_env_pub(&e, NULL, "tls/ok", "ok", "0"), 0);
out:
    tls_env_stop(&e);
}

/* A handshake that stops halfway is closed by the CONNECT timeout; others carry on. */
static void test_stalled_handshake(void)
{
    struct tls_env e;
    /* a TLS record header announcing a ClientHello whose body never comes */
    static const uint8_t partial[] = {0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00};
    uint64_t t0;
    int fd = -1;

    if (harness_cairn_only("connect_timeout is Cairn's own option"))
        return;
    T_EQ(tls_env_start(&e, tls_listener, "connect_timeout 1"), 0);
    fd = raw_connect_addr("127.0.0.1", e.tls_port);
    T_ASSERT(fd >= 0);
    T_EQ(raw_send(fd, partial, sizeof(partial)), 0);
    t0 = t_now_ms();
    T_EQ(tls_env_still_serving(&e), 0); /* while the stalled one waits */
    T_EQ(wait_closed(fd, WAIT_MS), 0);
    T_ASSERTF(t_now_ms() - t0 >= 500, "closed after %llu ms, before the timeout",
              (unsigned long long)(t_now_ms() - t0));
out:
    if (fd >= 0)
        close(fd);
    tls_env_stop(&e);
}

/*
 * Bytes that are not MQTT inside a good TLS session (openssl s_client sends them after the
 * handshake): the broker closes that connection, so s_client exits; the broker serves on.
 */
static void test_garbage_after_handshake(void)
{
    struct tls_env e;
    char cmd[1024];

    T_EQ(tls_env_start(&e, tls_listener, NULL), 0);
    snprintf(cmd, sizeof(cmd),
             "printf 'GET / HTTP/1.1\\r\\n\\r\\nthis is not mqtt' | openssl s_client -quiet "
             "-connect 127.0.0.1:%d -CAfile %s/ca.crt >/dev/null 2>&1; echo exited",
             e.tls_port, e.dir);
    {
        char *argv[] = {"sh", "-c", cmd, NULL}, *out = NULL;

        T_EQ(proc_run(argv, 15000, &out), 0);
        T_ASSERT(out && strstr(out, "exited"));
        free(out);
    }
    T_EQ(tls_env_still_serving(&e), 0);
    T_EQ(tls_env_pub(&e, NULL, "tls/ok", "ok", "1"), 0);
out:
    tls_env_stop(&e);
}

/* cairn -c FILE with a half-configured TLS listener (tmpl expanded): exit non-zero, naming file
 * and line; a failure is recorded and the next check still runs. */
static void expect_refused(const struct tls_env *e, const char *tmpl, const char *needle)
{
    char text[1024];

    tls_env_expand(text, sizeof(text), tmpl, e);
    harness_expect_refused(e->dir, text, needle);
}

static void test_half_config_refused(void)
{
    struct tls_env e = {0};

    if (harness_cairn_only("Mosquitto 2.0.11 serves plaintext on some of these"))
        return;
    T_EQ(tls_env_certs(&e), 0);
    expect_refused(&e, "listener @P 127.0.0.1\ncertfile @D/server-ec.crt\n",
                   "cairn.conf:4: certfile without keyfile");
    expect_refused(&e, "listener @P 127.0.0.1\nkeyfile @D/server-ec.key\n",
                   "cairn.conf:4: keyfile without certfile");
    expect_refused(&e,
                   "listener @P 127.0.0.1\ncertfile @D/server-rsa.crt\n"
                   "keyfile @D/server-ec.key\n",
                   "cairn.conf:5: keyfile does not match");
    expect_refused(&e,
                   "listener @P 127.0.0.1\ncertfile @D/nope.crt\n"
                   "keyfile @D/server-ec.key\n",
                   "cairn.conf:4: cannot load certfile");
    expect_refused(&e, "listener @P 127.0.0.1\ncafile @D/ca.crt\nrequire_certificate true\n",
                   "cairn.conf:4: TLS options without certfile and keyfile");
out:
    tls_env_stop(&e);
}

/* SIGHUP loads a new certificate for new connections; a TLS subscriber stays connected. */
static void test_reload_certificate(void)
{
    struct tls_env e;
    struct proc p = {0};
    bool started = false;
    const char *extra[] = {"-t", "tls/reload", "-q", "1", NULL};
    char *conf = NULL, *at, cmd[512], *out = NULL;
    FILE *f;

    if (harness_cairn_only("Mosquitto 2.0.11 does not reload certificates on SIGHUP"))
        return;
    T_EQ(tls_env_start(&e, tls_listener, NULL), 0);
    T_EQ(tls_env_sub_start(&p, &e, NULL, extra), 0);
    started = true;
    /* swap the EC pair for the RSA one in the running config */
    {
        char *argv[] = {"cat", (char *)broker_conf_path(e.b), NULL};

        T_EQ(proc_run(argv, WAIT_MS, &conf), 0);
    }
    f = fopen(broker_conf_path(e.b), "w");
    T_ASSERT(f);
    for (char *s = conf; *s; s = at + 9) {
        at = strstr(s, "server-ec");
        if (!at) {
            fputs(s, f);
            break;
        }
        fprintf(f, "%.*sserver-rsa", (int)(at - s), s);
    }
    fclose(f);
    T_EQ(broker_signal(e.b, SIGHUP), 0);
    T_EQ(broker_wait_log(e.b, "reloaded", WAIT_MS), 0);

    snprintf(cmd, sizeof(cmd),
             "openssl s_client -connect 127.0.0.1:%d -CAfile %s/ca.crt </dev/null 2>&1", e.tls_port,
             e.dir);
    {
        char *argv[] = {"sh", "-c", cmd, NULL};

        T_EQ(proc_run(argv, 15000, &out), 0);
    }
    T_ASSERTF(strstr(out, "2048 bit"), "new connections do not get the RSA key: %s", out);
    T_EQ(tls_env_pub(&e, NULL, "tls/reload", "after reload", "1"), 0);
    T_EQ(proc_wait(&p, WAIT_MS), 0);
    T_ASSERTF(strstr(p.out, "tls/reload after reload"), "subscriber output: %s", p.out);
out:
    if (started)
        proc_cleanup(&p);
    free(conf);
    free(out);
    tls_env_stop(&e);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"qos_levels", test_qos_levels},
        {"persistent_session_restart", test_persistent_session_restart},
        {"plaintext_to_tls_port", test_plaintext_to_tls_port},
        {"tls_to_plain_port", test_tls_to_plain_port},
        {"stalled_handshake", test_stalled_handshake},
        {"garbage_after_handshake", test_garbage_after_handshake},
        {"half_config_refused", test_half_config_refused},
        {"reload_certificate", test_reload_certificate},
    };

    return T_MAIN(cases);
}
