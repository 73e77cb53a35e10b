/*
 * 43_log_reopen — `log_dest file PATH` under logrotate: the file is moved away, the broker is
 * signalled, and its next line lands in a new file at PATH while the moved file keeps what came
 * before. SIGHUP does it as part of a reload; SIGUSR2 does only that, so it works even while the
 * configuration file does not parse (what the logrotate snippet in conf/ sends).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 10000

struct logfx {
    char dir[64];
    char path[128];    /* PATH */
    char rotated[128]; /* PATH.1, where logrotate moves it */
    char conf[160];
};

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0;
    long size;

    if (!f)
        goto out;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    buf = malloc((size_t)size + 1);
    if (!buf)
        goto out;
    len = fread(buf, 1, (size_t)size, f);
    buf[len] = '\0';
out:
    if (f)
        fclose(f);
    return buf;
}

static bool file_has(const char *path, const char *needle)
{
    char *s = slurp(path);
    bool found = s && strstr(s, needle);

    free(s);
    return found;
}

/* Wait until the file at path exists and holds needle. 0, or -1 on timeout. */
static int wait_file(const char *path, const char *needle, int timeout_ms)
{
    uint64_t deadline = t_now_ms() + (uint64_t)timeout_ms;

    while (!file_has(path, needle)) {
        if (t_now_ms() >= deadline)
            return -1;
        t_nap_ms(5);
    }
    return 0;
}

static bool logfx_init(struct logfx *f)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-itest-log-XXXXXX");
    if (!mkdtemp(f->dir)) {
        t_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
        return false;
    }
    snprintf(f->path, sizeof(f->path), "%s/cairn.log", f->dir);
    snprintf(f->rotated, sizeof(f->rotated), "%s/cairn.log.1", f->dir);
    snprintf(f->conf, sizeof(f->conf), "log_dest file %s", f->path);
    return true;
}

static void logfx_cleanup(struct logfx *f)
{
    unlink(f->path);
    unlink(f->rotated);
    rmdir(f->dir);
}

/*
 * Rotate the log as logrotate does (rename, then signal sig) and check where lines go: the
 * signal's own line (expect) and a client's connection in the new file at PATH, nothing new in
 * the moved one. break_conf: the config file no longer parses when the signal comes.
 */
static void run_rotate(int sig, const char *expect, bool break_conf)
{
    struct broker_opts o = {0};
    struct broker *b = NULL;
    struct raw_conn_opts ro = {.id = "after-rotate", .keepalive = 60};
    struct logfx f;
    char *old = NULL;
    FILE *conf;
    int fd = -1, rc = -1;

    if (harness_cairn_only("Cairn's log lines and SIGUSR2"))
        return;
    if (!logfx_init(&f))
        return;
    o.cairn_config = f.conf;
    b = broker_start(&o);
    T_ASSERT(b);
    T_EQ(wait_file(f.path, "listening on", WAIT_MS), 0);
    if (break_conf) {
        conf = fopen(broker_conf_path(b), "a");
        T_ASSERT(conf);
        fputs("no_such_option 1\n", conf);
        fclose(conf);
    }
    T_EQ(rename(f.path, f.rotated), 0);
    T_EQ(broker_signal(b, sig), 0);
    T_EQ(wait_file(f.path, expect, WAIT_MS), 0);
    fd = raw_mqtt_connect(b, &ro, &rc, NULL);
    T_ASSERT(fd >= 0 && rc == 0);
    T_EQ(wait_file(f.path, "after-rotate connected", WAIT_MS), 0);
    old = slurp(f.rotated);
    T_ASSERT(old && strstr(old, "listening on"));
    T_ASSERTF(!strstr(old, "after-rotate"), "a line after the rotation went to the moved file");
    T_ASSERTF(!strstr(old, expect), "the signal's line went to the moved file");
    T_ASSERT(broker_alive(b));
out:
    free(old);
    if (fd >= 0)
        close(fd);
    broker_free(b);
    logfx_cleanup(&f);
}

static void test_sighup(void)
{
    run_rotate(SIGHUP, "reloaded", false);
}

static void test_sigusr2(void)
{
    run_rotate(SIGUSR2, "SIGUSR2: log reopened", false);
}

static void test_sigusr2_config_broken(void)
{
    run_rotate(SIGUSR2, "SIGUSR2: log reopened", true);
}

/* PATH cannot be created again (its directory is gone): the broker keeps the old file. */
static void test_reopen_fails(void)
{
    struct broker_opts o = {0};
    struct broker *b = NULL;
    struct logfx f;
    char moved[96];

    if (harness_cairn_only("Cairn's log lines and SIGUSR2"))
        return;
    if (!logfx_init(&f))
        return;
    snprintf(moved, sizeof(moved), "%s.moved", f.dir);
    o.cairn_config = f.conf;
    b = broker_start(&o);
    T_ASSERT(b);
    T_EQ(wait_file(f.path, "listening on", WAIT_MS), 0);
    T_EQ(rename(f.dir, moved), 0);
    T_EQ(broker_signal(b, SIGUSR2), 0);
    snprintf(f.path, sizeof(f.path), "%s/cairn.log", moved);
    T_EQ(wait_file(f.path, "cannot reopen the log file", WAIT_MS), 0);
    T_ASSERT(broker_alive(b));
out:
    broker_free(b);
    if (rename(moved, f.dir) == 0)
        snprintf(f.path, sizeof(f.path), "%s/cairn.log", f.dir);
    logfx_cleanup(&f);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"sighup", test_sighup},
        {"sigusr2", test_sigusr2},
        {"sigusr2_config_broken", test_sigusr2_config_broken},
        {"reopen_fails", test_reopen_fails},
    };
    return T_MAIN(cases);
}
