/*
 * 30_auth — password files with the real broker: a file written by Debian's mosquitto_passwd
 * ($7$ and $6$ lines) works unchanged; one written by cairn-passwd works with Cairn and with
 * Mosquitto; a wrong password gets CONNACK 4, an anonymous client 5; SIGHUP reloads the file
 * while a connected client stays connected, and a file that no longer parses keeps the old one;
 * a missing or malformed file stops start-up with file and line.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 5000

/* A temp dir for the files a case writes (the broker's own dir does not exist before start). */
static char *mk_dir(void)
{
    char *d = strdup("/tmp/cairn-itest-auth-XXXXXX");

    if (d && !mkdtemp(d)) {
        free(d);
        d = NULL;
    }
    return d;
}

static void rm_dir(char *d)
{
    char *argv[] = {"rm", "-rf", d, NULL};

    if (d && !t_case_failed())
        proc_run(argv, WAIT_MS, NULL);
    free(d);
}

/* build/tools/cairn-passwd beside build/broker/cairn. */
static const char *cairn_passwd_bin(void)
{
    static char path[4096];
    char bin[4096];

    snprintf(bin, sizeof(bin), "%s", harness_cairn_bin());
    snprintf(path, sizeof(path), "%s/../tools/cairn-passwd", dirname(bin));
    return path;
}

/* Run a tool: 0 when it exits 0. */
static int run(const char *tool, const char *a1, const char *a2, const char *a3, const char *a4,
               const char *a5)
{
    char *argv[] = {(char *)tool, (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5, NULL};

    return proc_run(argv, WAIT_MS, NULL) == 0 ? 0 : -1;
}

static int connack(const struct broker *b, const char *user, const char *pass)
{
    struct raw_conn_opts o = {.id = "auth-probe", .keepalive = 60, .user = user, .pass = pass};
    int fd, rc = -1;

    fd = raw_mqtt_connect(b, &o, &rc, NULL);
    if (fd < 0)
        return -1;
    close(fd);
    return rc;
}

/* Mosquitto 2.0.11 answers 5 where MQTT 3.1.1 (and Cairn) answer 4. */
static int bad_credentials(void)
{
    return harness_is_mosquitto() ? 5 : 4;
}

static void test_mosquitto_passwd_file(void)
{
    char *d = mk_dir(), pw[256], conf[512];
    struct broker_opts bo = {.no_anonymous = true, .config = conf};
    struct broker *b = NULL;

    T_ASSERT(d);
    snprintf(pw, sizeof(pw), "%s/pw", d);
    T_EQ(run("mosquitto_passwd", "-c", "-b", pw, "alice", "alice pass"), 0);
    T_EQ(run("mosquitto_passwd", "-b", pw, "bob", "bob-pass", NULL), 0);
    {
        char *argv[] = {"mosquitto_passwd", "-H", "sha512", "-b", pw, "old", "old-pass", NULL};

        T_EQ(proc_run(argv, WAIT_MS, NULL), 0);
    }
    snprintf(conf, sizeof(conf), "allow_anonymous false\npassword_file %s", pw);
    b = broker_start(&bo);
    T_ASSERT(b);
    T_EQ(connack(b, "alice", "alice pass"), 0);
    T_EQ(connack(b, "bob", "bob-pass"), 0);
    T_EQ(connack(b, "old", "old-pass"), 0); /* the $6$ line */
    T_EQ(connack(b, "alice", "alice-pass"), bad_credentials());
    T_EQ(connack(b, "alice", NULL), bad_credentials());
    T_EQ(connack(b, "mallory", "alice pass"), bad_credentials());
    T_EQ(connack(b, NULL, NULL), 5);
out:
    broker_free(b);
    rm_dir(d);
}

/* Wait until 127.0.0.1:port accepts a TCP connection. */
static int wait_port(int port, int timeout_ms)
{
    uint64_t end = t_now_ms() + (uint64_t)timeout_ms;

    while (t_now_ms() < end) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return 0;
        t_nap_ms(20);
    }
    return -1;
}

/*
 * A file made by cairn-passwd: the broker under test accepts it, and so does a real Mosquitto
 * started here (when installed), with mosquitto_pub as the client.
 */
static void test_cairn_passwd_file(void)
{
    char *d = mk_dir(), pw[256], conf[512], mconf[256], port_s[16];
    struct broker_opts bo = {.no_anonymous = true, .config = conf};
    struct broker *b = NULL;
    struct proc mosq = {.pid = 0};
    bool mosq_started = false;
    FILE *f = NULL;
    int port;

    T_ASSERT(d);
    snprintf(pw, sizeof(pw), "%s/pw", d);
    T_EQ(run(cairn_passwd_bin(), "-c", "-b", pw, "carol", "c4rol!"), 0);
    T_EQ(run(cairn_passwd_bin(), "-b", pw, "dave", "dave pass", NULL), 0);
    T_EQ(run(cairn_passwd_bin(), "-D", pw, "dave", NULL, NULL), 0);
    snprintf(conf, sizeof(conf), "allow_anonymous false\npassword_file %s", pw);
    b = broker_start(&bo);
    T_ASSERT(b);
    T_EQ(connack(b, "carol", "c4rol!"), 0);
    T_EQ(connack(b, "carol", "carol"), bad_credentials());
    T_EQ(connack(b, "dave", "dave pass"), bad_credentials());

    if (access("/usr/sbin/mosquitto", X_OK) != 0 || harness_is_mosquitto())
        goto out; /* mosquitto mode has just checked it above */
    port = harness_free_port();
    T_ASSERT(port > 0);
    snprintf(mconf, sizeof(mconf), "%s/mosquitto.conf", d);
    f = fopen(mconf, "w");
    T_ASSERT(f);
    fprintf(f, "listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\nuser root\n", port,
            pw);
    fclose(f);
    {
        char *argv[] = {"/usr/sbin/mosquitto", "-c", mconf, NULL};

        T_EQ(proc_start(&mosq, argv), 0);
        mosq_started = true;
    }
    T_EQ(wait_port(port, WAIT_MS), 0);
    snprintf(port_s, sizeof(port_s), "%d", port);
    {
        char *ok[] = {"mosquitto_pub", "-p", port_s, "-u", "carol", "-P",
                      "c4rol!",        "-t", "t",    "-m", "x",     NULL};
        char *bad[] = {"mosquitto_pub", "-p", port_s, "-u", "carol", "-P",
                       "wrong",         "-t", "t",    "-m", "x",     NULL};

        T_EQ(proc_run(ok, WAIT_MS, NULL), 0);
        T_ASSERT(proc_run(bad, WAIT_MS, NULL) != 0);
    }
out:
    if (mosq_started)
        proc_cleanup(&mosq);
    broker_free(b);
    rm_dir(d);
}

/* Wait until user/pass gets CONNACK want (the reload has happened). */
static int wait_connack(const struct broker *b, const char *user, const char *pass, int want)
{
    uint64_t end = t_now_ms() + WAIT_MS;

    while (t_now_ms() < end) {
        if (connack(b, user, pass) == want)
            return 0;
        t_nap_ms(20);
    }
    return -1;
}

static void test_reload(void)
{
    char *d = mk_dir(), pw[256], conf[512];
    struct broker_opts bo = {.no_anonymous = true, .config = conf};
    struct broker *b = NULL;
    struct pc_opts po = {.id = "stays", .user = "erin", .pass = "first"};
    MQTTClient c = NULL;
    struct pc_msg m = {0};
    FILE *f;

    if (harness_cairn_only("Mosquitto 2.0 disconnects a client whose password changed on reload"))
        goto out;
    T_ASSERT(d);
    snprintf(pw, sizeof(pw), "%s/pw", d);
    T_EQ(run(cairn_passwd_bin(), "-c", "-b", pw, "erin", "first"), 0);
    snprintf(conf, sizeof(conf), "allow_anonymous false\npassword_file %s", pw);
    b = broker_start(&bo);
    T_ASSERT(b);
    c = pc_connect(b, &po, NULL, NULL);
    T_ASSERT(c);
    T_EQ(pc_subscribe(c, "reload/#", 1), 1);

    /* A new password: applied on SIGHUP, the connected client carries on. */
    T_EQ(run(cairn_passwd_bin(), "-b", pw, "erin", "second", NULL), 0);
    T_EQ(broker_signal(b, SIGHUP), 0);
    T_EQ(wait_connack(b, "erin", "second", 0), 0);
    T_EQ(connack(b, "erin", "first"), bad_credentials());
    T_EQ(pc_publish_str(c, "reload/a", "still here", 1, false), 0);
    T_EQ(pc_recv(c, &m, WAIT_MS), 1);
    T_ASSERT(strcmp(m.payload, "still here") == 0);
    pc_msg_free(&m);

    /* A file that no longer parses: the old passwords stay, and the log says why. */
    f = fopen(pw, "a");
    T_ASSERT(f);
    fputs("frank:plaintext\n", f);
    fclose(f);
    T_EQ(broker_signal(b, SIGHUP), 0);
    if (!harness_is_mosquitto())
        T_EQ(broker_wait_log(b, "pw:2: not a hashed password", WAIT_MS), 0);
    T_EQ(connack(b, "erin", "second"), 0);
    T_EQ(pc_publish_str(c, "reload/b", "and here", 1, false), 0);
    T_EQ(pc_recv(c, &m, WAIT_MS), 1);
    T_ASSERT(strcmp(m.payload, "and here") == 0);
out:
    pc_msg_free(&m);
    pc_close(&c);
    broker_free(b);
    rm_dir(d);
}

static void test_bad_file_refuses_start(void)
{
    char *d = mk_dir(), text[512], needle[300];
    FILE *f;

    if (harness_cairn_only("Mosquitto starts without a readable password file"))
        goto out;
    T_ASSERT(d);
    snprintf(text, sizeof(text), "password_file %s/missing", d);
    snprintf(needle, sizeof(needle), "%s/missing: No such file", d);
    T_EQ(harness_expect_refused(d, text, needle), 0); /* cairn -c: exit non-zero, naming it */

    snprintf(text, sizeof(text), "%s/pw", d);
    f = fopen(text, "w");
    T_ASSERT(f);
    fputs("# users\nok:$7$101$AAAAAAAAAAAAAAAA$AAAA\n", f);
    fclose(f);
    snprintf(needle, sizeof(needle), "%s/pw:2: malformed salt or hash", d);
    snprintf(text, sizeof(text), "password_file %s/pw", d);
    T_EQ(harness_expect_refused(d, text, needle), 0);
out:
    rm_dir(d);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"mosquitto_passwd_file", test_mosquitto_passwd_file},
        {"cairn_passwd_file", test_cairn_passwd_file},
        {"reload", test_reload},
        {"bad_file_refuses_start", test_bad_file_refuses_start},
    };

    return T_MAIN(cases);
}
