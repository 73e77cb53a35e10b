/*
 * harness_conf.c — configs in temp dirs, `cairn -t`, and brokers started on them (see
 * harness_conf.h).
 */
#define _GNU_SOURCE
#include "harness_conf.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define HC_WAIT_MS  10000
#define HC_START_MS 20000

const char hc_dhparams_pem[] = "-----BEGIN DH PARAMETERS-----\n"
                               "MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz\n"
                               "+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a\n"
                               "87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7\n"
                               "YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi\n"
                               "7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD\n"
                               "ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==\n"
                               "-----END DH PARAMETERS-----\n";

int hc_mkdtemp(char *dir, size_t cap, const char *name)
{
    snprintf(dir, cap, "/tmp/cairn-itest-%s-XXXXXX", name);
    return mkdtemp(dir) ? 0 : -1;
}

static int hc_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void hc_rmtree(const char *dir)
{
    if (!dir || !dir[0])
        return;
    if (t_case_failed())
        t_note("kept %s", dir);
    else
        nftw(dir, hc_rm, 16, FTW_DEPTH | FTW_PHYS);
}

int hc_write(const char *dir, const char *name, const char *text, char *path, size_t cap)
{
    char buf[4096];
    FILE *f;
    int rc = -1;

    if (!path) {
        path = buf;
        cap = sizeof(buf);
    }
    snprintf(path, cap, "%s/%s", dir, name);
    f = fopen(path, "w");
    if (!f)
        goto out;
    fputs(text, f);
    rc = fclose(f) == 0 ? 0 : -1;
out:
    return rc;
}

int hc_check(const char *path, char **out)
{
    char *argv[] = {(char *)harness_cairn_bin(), "-t", "-c", (char *)path, NULL};

    return proc_run(argv, HC_WAIT_MS, out);
}

/* Has the broker exited (reaped here)? */
static bool hc_exited(struct hc_broker *b)
{
    if (!b->p.exited && b->p.pid > 0 && waitpid(b->p.pid, &b->p.status, WNOHANG) == b->p.pid)
        b->p.exited = true;
    return b->p.exited;
}

int hc_start(struct hc_broker *b, const char *conf, int port)
{
    char *argv[] = {(char *)harness_cairn_bin(), "-c", (char *)conf, NULL};
    uint64_t deadline = t_now_ms() + HC_START_MS;
    int rc = -1;

    memset(b, 0, sizeof(*b));
    b->p.fd = -1;
    b->port = port;
    if (proc_start(&b->p, argv) != 0)
        goto out;
    while (t_now_ms() < deadline && !hc_exited(b)) {
        int fd = raw_connect_addr("127.0.0.1", port);

        if (fd >= 0) {
            close(fd);
            rc = 0;
            goto out;
        }
        t_nap_ms(5);
    }
    t_note("cairn -c %s did not accept on port %d: %s", conf, port, hc_output(b));
out:
    return rc;
}

const char *hc_output(struct hc_broker *b)
{
    /* read what the pipe holds now, without waiting */
    proc_wait_output(&b->p, "\001never\001", 5);
    return b->p.out ? b->p.out : "";
}

int hc_stop(struct hc_broker *b)
{
    int rc = -1;

    if (b->p.pid <= 0 || hc_exited(b))
        goto out;
    kill(b->p.pid, SIGTERM);
    if (proc_wait(&b->p, HC_WAIT_MS) != 0)
        goto out;
    rc = WIFEXITED(b->p.status) && WEXITSTATUS(b->p.status) == 0 ? 0 : -1;
out:
    return rc;
}

void hc_free(struct hc_broker *b)
{
    if (!b->p.out && b->p.pid <= 0)
        return;
    if (t_case_failed())
        t_note("cairn output:\n%s", hc_output(b));
    proc_cleanup(&b->p);
    memset(b, 0, sizeof(*b));
    b->p.fd = -1;
}

long hc_uid(const struct hc_broker *b)
{
    char path[64], line[256];
    long uid = -1, r, e, s, fs;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)b->p.pid);
    f = fopen(path, "r");
    if (!f)
        goto out;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "Uid: %ld %ld %ld %ld", &r, &e, &s, &fs) == 4) {
            uid = r == e && e == s && s == fs ? r : -2;
            break;
        }
    }
    fclose(f);
out:
    return uid;
}

bool hc_root(void)
{
    return geteuid() == 0;
}
