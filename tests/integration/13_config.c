/*
 * 13_config — `cairn -t -c FILE` checks a config: OK exits 0; an unknown option or a bad value
 * prints "FILE:LINE: reason" and exits non-zero; the broker itself refuses to start on such a
 * file. SIGHUP reloads the config without dropping connected clients.
 */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 5000

/* Write text to DIR/name; the path in path (cap bytes). 0 or -1. */
static int write_conf(const char *dir, const char *name, const char *text, char *path, size_t cap)
{
    FILE *f;
    int rc = -1;

    snprintf(path, cap, "%s/%s", dir, name);
    f = fopen(path, "w");
    if (!f)
        goto out;
    fputs(text, f);
    rc = fclose(f) == 0 ? 0 : -1;
out:
    return rc;
}

/* Run `cairn -t -c path`: the exit code, the output in *out. */
static int check_conf(const char *path, char **out)
{
    char *argv[] = {(char *)harness_cairn_bin(), "-t", "-c", (char *)path, NULL};

    return proc_run(argv, WAIT_MS, out);
}

static void test_check_good_and_bad(void)
{
    char dir[] = "/tmp/cairn-itest-conf-XXXXXX", path[512], want[600];
    char *out = NULL;
    bool made = false;

    if (harness_cairn_only("Mosquitto has no config check mode (-t)"))
        goto out;
    T_ASSERT(mkdtemp(dir));
    made = true;
    T_EQ(write_conf(dir, "good.conf",
                    "# a good file\nlistener 1883 127.0.0.1\nmax_inflight_messages 10\n"
                    "persistence false\nsys_interval 5\n",
                    path, sizeof(path)),
         0);
    T_EQ(check_conf(path, &out), 0);
    free(out);
    out = NULL;

    T_EQ(write_conf(dir, "unknown.conf", "listener 1883 127.0.0.1\n\nno_such_option 1\n", path,
                    sizeof(path)),
         0);
    T_ASSERT(check_conf(path, &out) > 0);
    snprintf(want, sizeof(want), "%s:3: ", path);
    T_ASSERTF(out && strstr(out, want), "want '%s' in: %s", want, out ? out : "");
    T_ASSERTF(strstr(out, "no_such_option"), "the option is not named: %s", out);
    free(out);
    out = NULL;

    T_EQ(write_conf(dir, "badvalue.conf",
                    "listener 1883 127.0.0.1\nmax_inflight_messages lots\nsys_interval 5\n", path,
                    sizeof(path)),
         0);
    T_ASSERT(check_conf(path, &out) > 0);
    snprintf(want, sizeof(want), "%s:2: ", path);
    T_ASSERTF(out && strstr(out, want), "want '%s' in: %s", want, out ? out : "");
    free(out);
    out = NULL;

    T_EQ(write_conf(dir, "badport.conf", "listener 99999 127.0.0.1\n", path, sizeof(path)), 0);
    T_ASSERT(check_conf(path, &out) > 0);
    snprintf(want, sizeof(want), "%s:1: ", path);
    T_ASSERTF(out && strstr(out, want), "want '%s' in: %s", want, out ? out : "");
out:
    free(out);
    if (made) {
        char *rm[] = {"rm", "-rf", dir, NULL};

        proc_run(rm, WAIT_MS, NULL);
    }
}

/* Not only -t: the broker itself refuses to start on a bad file, saying where. */
static void test_broker_refuses_bad_config(void)
{
    char dir[] = "/tmp/cairn-itest-conf-XXXXXX", path[512], want[600];
    char *out = NULL;
    bool made = false;
    int rc;

    T_ASSERT(mkdtemp(dir));
    made = true;
    T_EQ(
        write_conf(dir, "bad.conf", "listener 0 127.0.0.1\nno_such_option 1\n", path, sizeof(path)),
        0);
    {
        char *argv[] = {harness_is_mosquitto() ? "/usr/sbin/mosquitto"
                                               : (char *)harness_cairn_bin(),
                        "-c", path, NULL};

        rc = proc_run(argv, WAIT_MS, &out);
    }
    T_ASSERTF(rc > 0, "exit %d: %s", rc, out ? out : "");
    snprintf(want, sizeof(want), "%s:2: ", path);
    if (!harness_is_mosquitto())
        T_ASSERTF(out && strstr(out, want), "want '%s' in: %s", want, out ? out : "");
out:
    free(out);
    if (made) {
        char *rm[] = {"rm", "-rf", dir, NULL};

        proc_run(rm, WAIT_MS, NULL);
    }
}

static bool round_trip(int sub, int pub, const char *payload, int pid)
{
    struct raw_pkt p = {0};
    bool ok = raw_publish_flow(pub, "hup/t", payload, 1, false, pid) == 0 &&
              raw_recv_publish(sub, &p, WAIT_MS, true) == 1 && p.payload_len == strlen(payload) &&
              memcmp(p.payload, payload, p.payload_len) == 0;

    raw_pkt_free(&p);
    return ok;
}

static void test_sighup_keeps_clients(void)
{
    struct broker_opts bo = {.config = "max_inflight_messages 20"};
    struct broker *b = broker_start(&bo);
    struct raw_conn_opts so = {.id = "hup-sub", .keepalive = 60};
    struct raw_conn_opts po = {.id = "hup-pub", .keepalive = 60};
    struct raw_conn_opts no = {.id = "hup-new", .keepalive = 60};
    const char *reloaded = harness_is_mosquitto() ? "Reloading config" : "reloaded ";
    int sub = -1, pub = -1, fresh = -1, rc = -1;
    FILE *f = NULL;

    T_ASSERT(b);
    sub = raw_mqtt_connect(b, &so, &rc, NULL);
    pub = raw_mqtt_connect(b, &po, &rc, NULL);
    T_ASSERT(sub >= 0 && pub >= 0);
    T_EQ(raw_subscribe(sub, 1, "hup/#", 1), 1);
    T_ASSERT(round_trip(sub, pub, "before", 1));
    /* Change a reloadable option, then SIGHUP. */
    f = fopen(broker_conf_path(b), "a");
    T_ASSERT(f);
    fputs("max_inflight_messages 30\n", f);
    rc = fclose(f);
    f = NULL;
    T_EQ(rc, 0);
    T_EQ(broker_signal(b, SIGHUP), 0);
    T_ASSERTF(broker_wait_log(b, reloaded, WAIT_MS) == 0, "no '%s' in the log", reloaded);
    T_ASSERT(broker_alive(b));
    T_ASSERT(round_trip(sub, pub, "after", 2));
    fresh = raw_mqtt_connect(b, &no, &rc, NULL);
    T_ASSERT(fresh >= 0);
    T_EQ(rc, 0);
out:
    if (f)
        fclose(f);
    if (sub >= 0)
        close(sub);
    if (pub >= 0)
        close(pub);
    if (fresh >= 0)
        close(fresh);
    broker_free(b);
}

/* A reload that finds an error keeps the running config and the clients. */
static void test_sighup_bad_config_kept(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts so = {.id = "hup-bad-sub", .keepalive = 60};
    struct raw_conn_opts po = {.id = "hup-bad-pub", .keepalive = 60};
    int sub = -1, pub = -1, rc = -1;
    FILE *f = NULL;

    if (harness_cairn_only("Mosquitto's behaviour on a bad reload is not Cairn's contract"))
        goto out;
    T_ASSERT(b);
    sub = raw_mqtt_connect(b, &so, &rc, NULL);
    pub = raw_mqtt_connect(b, &po, &rc, NULL);
    T_ASSERT(sub >= 0 && pub >= 0);
    T_EQ(raw_subscribe(sub, 1, "hup/#", 1), 1);
    f = fopen(broker_conf_path(b), "a");
    T_ASSERT(f);
    fputs("no_such_option 1\n", f);
    rc = fclose(f);
    f = NULL;
    T_EQ(rc, 0);
    T_EQ(broker_signal(b, SIGHUP), 0);
    T_ASSERT(broker_wait_log(b, "reload failed", WAIT_MS) == 0);
    T_ASSERT(broker_alive(b));
    T_ASSERT(round_trip(sub, pub, "still here", 1));
out:
    if (f)
        fclose(f);
    if (sub >= 0)
        close(sub);
    if (pub >= 0)
        close(pub);
    broker_free(b);
}

/* pid_file holds the broker's pid; log_dest file writes the log there too. */
static void test_pid_file_and_log_file(void)
{
    char conf[1200], pidpath[512], logpath[512], buf[64] = "";
    struct broker_opts bo = {0};
    struct broker *b = NULL;
    const char *tmp = getenv("TMPDIR");
    char dir[256];
    FILE *f = NULL;
    bool made = false;
    char *log = NULL;

    snprintf(dir, sizeof(dir), "%s/cairn-itest-files-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    T_ASSERT(mkdtemp(dir));
    made = true;
    snprintf(pidpath, sizeof(pidpath), "%s/broker.pid", dir);
    snprintf(logpath, sizeof(logpath), "%s/broker-file.log", dir);
    snprintf(conf, sizeof(conf), "pid_file %s\nlog_dest file %s\nlog_dest stderr", pidpath,
             logpath);
    bo.config = conf;
    b = broker_start(&bo);
    T_ASSERT(b);
    T_ASSERT(broker_alive(b));
    f = fopen(pidpath, "r");
    T_ASSERTF(f, "no pid file %s", pidpath);
    T_ASSERT(fgets(buf, sizeof(buf), f));
    T_EQ(atoi(buf), broker_pid(b));
    T_EQ(broker_stop_term(b, WAIT_MS), 0);
    {
        char *argv[] = {"cat", logpath, NULL};

        T_EQ(proc_run(argv, WAIT_MS, &log), 0);
    }
    T_ASSERTF(log && strlen(log) > 0, "log file %s is empty", logpath);
out:
    free(log);
    if (f)
        fclose(f);
    broker_free(b);
    if (made) {
        char *rm[] = {"rm", "-rf", dir, NULL};

        proc_run(rm, WAIT_MS, NULL);
    }
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"check_good_and_bad", test_check_good_and_bad},
        {"broker_refuses_bad_config", test_broker_refuses_bad_config},
        {"sighup_keeps_clients", test_sighup_keeps_clients},
        {"sighup_bad_config_kept", test_sighup_bad_config_kept},
        {"pid_file_and_log_file", test_pid_file_and_log_file},
    };
    return T_MAIN(cases);
}
