/*
 * 25_store_faults — Cairn refuses to start rather than start empty: a second broker on a data
 * directory a running broker holds exits non-zero saying so (and the first carries on); a
 * corrupted store, or a data directory that is a file, stops start-up with a clear message.
 * Cairn only: Mosquitto neither locks its file nor refuses a damaged one this way.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 10000

/* Write a config using data dir `data` and a listener on port into path. */
static int write_conf(const char *path, int port, const char *data)
{
    FILE *f = fopen(path, "w");

    if (!f)
        return -1;
    fprintf(f,
            "listener %d 127.0.0.1\nallow_anonymous true\npersistence true\n"
            "persistence_location %s\nuser root\n",
            port, data);
    return fclose(f) == 0 ? 0 : -1;
}

/* Print the first line of out containing "ERROR" (or the first line). */
static void note_error_line(const char *what, const char *out)
{
    const char *line = out ? strstr(out, "ERROR") : NULL;

    if (!line)
        line = out ? out : "";
    t_note("%s: %.*s", what, (int)strcspn(line, "\n"), line);
}

/* Run cairn -c conf: exit code (or -1 if it did not exit in time), output in *out. */
static int run_cairn(const char *conf, char **out)
{
    char *argv[] = {(char *)harness_cairn_bin(), "-c", (char *)conf, NULL};

    return proc_run(argv, WAIT_MS, out);
}

static void test_second_broker_refused(void)
{
    struct broker *b = NULL;
    struct raw_conn_opts o = {.id = "fault-a", .keepalive = 60};
    char conf[512];
    char *out = NULL;
    int fd = -1, rc = -1, exit_code;

    if (harness_cairn_only("Mosquitto does not lock its store"))
        goto out;
    b = broker_start(NULL);
    T_ASSERT(b);
    snprintf(conf, sizeof(conf), "%s/second.conf", broker_tmp_dir(b));
    T_EQ(write_conf(conf, broker_port(b) == 65535 ? 1024 : broker_port(b) + 1, broker_data_dir(b)),
         0);
    exit_code = run_cairn(conf, &out);
    note_error_line("second broker", out);
    T_ASSERTF(exit_code > 0, "second broker on the same store: exit %d", exit_code);
    T_ASSERTF(out && (strcasestr(out, "lock") || strstr(out, broker_data_dir(b))),
              "no clear message: %s", out ? out : "");
    /* The first broker is unharmed. */
    T_ASSERT(broker_alive(b));
    fd = raw_mqtt_connect(b, &o, &rc, NULL);
    T_ASSERT(fd >= 0);
    T_EQ(rc, 0);
out:
    free(out);
    if (fd >= 0)
        close(fd);
    broker_free(b);
}

/* Find LevelDB's CURRENT file under dir (the store may sit in a subdirectory). */
static int find_current(const char *dir, char *path, size_t cap, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = -1;

    while (d && rc != 0 && (e = readdir(d)) != NULL) {
        char sub[1024];
        struct stat st;

        if (e->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
        if (strcmp(e->d_name, "CURRENT") == 0) {
            snprintf(path, cap, "%s", sub);
            rc = 0;
        } else if (depth > 0 && stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
            rc = find_current(sub, path, cap, depth - 1);
        }
    }
    if (d)
        closedir(d);
    return rc;
}

static void test_corrupt_store_refused(void)
{
    struct broker *b = NULL;
    struct raw_conn_opts so = {.id = "fault-sub", .persistent = true, .keepalive = 60};
    char current[1024];
    char *out = NULL;
    FILE *f = NULL;
    int fd = -1, rc = -1, st = 0;

    if (harness_cairn_only("Cairn's start-up checks of its LevelDB store"))
        goto out;
    b = broker_start(NULL);
    T_ASSERT(b);
    fd = raw_mqtt_connect(b, &so, &rc, NULL);
    T_ASSERT(fd >= 0);
    T_EQ(raw_subscribe(fd, 1, "fault/#", 1), 1);
    close(fd);
    fd = -1;
    T_EQ(broker_stop_term(b, WAIT_MS), 0);
    T_ASSERTF(find_current(broker_data_dir(b), current, sizeof(current), 2) == 0,
              "no LevelDB CURRENT file under %s", broker_data_dir(b));
    f = fopen(current, "w");
    T_ASSERT(f);
    fputs("MANIFEST-999999-garbage", f); /* no newline, names no manifest */
    rc = fclose(f);
    f = NULL;
    T_EQ(rc, 0);
    /* Start it on the damaged store: it must exit non-zero, not serve. */
    T_ASSERTF(broker_restart(b) != 0, "the broker started on a corrupted store");
    T_EQ(broker_wait_exit(b, WAIT_MS, &st), 0);
    T_ASSERTF(WIFEXITED(st) && WEXITSTATUS(st) != 0, "exit status 0x%x", st);
    out = broker_log(b);
    T_ASSERTF(out && strstr(out, broker_data_dir(b)), "the error does not name the store");
    note_error_line("corrupt store", out);
out:
    free(out);
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    broker_free(b);
}

static void test_data_dir_is_a_file(void)
{
    char dir[] = "/tmp/cairn-itest-fault-XXXXXX", conf[512], data[512];
    char *out = NULL;
    FILE *f = NULL;
    bool made = false;
    int exit_code;

    if (harness_cairn_only("Cairn's start-up checks of its store"))
        goto out;
    T_ASSERT(mkdtemp(dir));
    made = true;
    snprintf(data, sizeof(data), "%s/not-a-dir", dir);
    snprintf(conf, sizeof(conf), "%s/cairn.conf", dir);
    f = fopen(data, "w");
    T_ASSERT(f);
    fclose(f);
    f = NULL;
    T_EQ(write_conf(conf, 0, data), 0);
    exit_code = run_cairn(conf, &out);
    T_ASSERTF(exit_code > 0, "started with a file as its data directory: exit %d", exit_code);
    T_ASSERTF(out && strstr(out, data), "the error does not name the store: %s", out ? out : "");
    note_error_line("file as data dir", out);
out:
    free(out);
    if (made) {
        char *rm[] = {"rm", "-rf", dir, NULL};

        proc_run(rm, WAIT_MS, NULL);
    }
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"second_broker_refused", test_second_broker_refused},
        {"corrupt_store_refused", test_corrupt_store_refused},
        {"data_dir_is_a_file", test_data_dir_is_a_file},
    };
    return T_MAIN(cases);
}
