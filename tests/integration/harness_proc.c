/*
 * harness_proc.c — child processes with their output captured: mosquitto_pub / mosquitto_sub
 * and `cairn -t -c FILE`. stdout and stderr share one pipe; the parent reads it with poll()
 * under a deadline, so waiting for a line such as mosquitto_sub's "received SUBACK" is waiting
 * on the event, not sleeping.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int proc_start(struct proc *p, char *const argv[])
{
    int pfd[2] = {-1, -1}, rc = 0;

    memset(p, 0, sizeof(*p));
    p->fd = -1;
    p->cap = 4096;
    p->out = calloc(1, p->cap);
    if (!p->out || pipe2(pfd, O_CLOEXEC) != 0) {
        rc = -ENOMEM;
        goto out;
    }
    p->pid = fork();
    if (p->pid < 0) {
        rc = -errno;
        goto out;
    }
    if (p->pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        execvp(argv[0], argv);
        dprintf(2, "harness: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    p->fd = pfd[0];
    pfd[0] = -1;
out:
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    return rc;
}

/* Read what is available within the deadline: 1 read some, 0 timeout, -1 EOF. */
static int proc_read_some(struct proc *p, uint64_t deadline)
{
    struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
    uint64_t now = t_now_ms();
    ssize_t n;
    int rc = 0;

    if (p->fd < 0) {
        rc = -1;
        goto out;
    }
    if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) <= 0)
        goto out;
    if (p->len + 1024 > p->cap) {
        char *bigger = realloc(p->out, p->cap * 2);

        if (!bigger) {
            rc = -1;
            goto out;
        }
        p->out = bigger;
        p->cap *= 2;
    }
    n = read(p->fd, p->out + p->len, p->cap - p->len - 1);
    rc = 1;
    if (n < 0 && errno == EINTR)
        goto out;
    if (n <= 0) {
        close(p->fd);
        p->fd = -1;
        rc = -1;
        goto out;
    }
    p->len += (size_t)n;
    p->out[p->len] = '\0';
out:
    return rc;
}

int proc_wait_output(struct proc *p, const char *needle, int timeout_ms)
{
    uint64_t deadline = t_now_ms() + (uint64_t)timeout_ms;

    while (!strstr(p->out, needle)) {
        if (t_now_ms() >= deadline || proc_read_some(p, deadline) < 0)
            return strstr(p->out, needle) ? 0 : -1;
    }
    return 0;
}

int proc_wait(struct proc *p, int timeout_ms)
{
    uint64_t deadline = t_now_ms() + (uint64_t)timeout_ms;
    int rc = -1;

    while (p->fd >= 0 && t_now_ms() < deadline)
        proc_read_some(p, deadline);
    while (!p->exited && p->pid > 0) {
        pid_t r = waitpid(p->pid, &p->status, WNOHANG);

        if (r == p->pid) {
            p->exited = true;
            break;
        }
        if (t_now_ms() >= deadline)
            break;
        t_nap_ms(2);
    }
    if (p->exited)
        rc = 0;
    else
        t_note("child %d did not finish within %d ms", (int)p->pid, timeout_ms);
    return rc;
}

void proc_cleanup(struct proc *p)
{
    if (p->pid > 0 && !p->exited) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, &p->status, 0);
        p->exited = true;
    }
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    free(p->out);
    p->out = NULL;
}

int proc_run(char *const argv[], int timeout_ms, char **out)
{
    struct proc p;
    int rc = -1;

    if (out)
        *out = NULL;
    if (proc_start(&p, argv) != 0)
        goto out;
    if (proc_wait(&p, timeout_ms) != 0)
        goto out;
    if (WIFEXITED(p.status))
        rc = WEXITSTATUS(p.status);
    if (out) {
        *out = p.out;
        p.out = NULL;
    }
out:
    proc_cleanup(&p);
    return rc;
}

int proc_count_lines(const char *out, const char *prefix)
{
    size_t plen = strlen(prefix);
    int n = 0;

    for (const char *line = out; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, prefix, plen) == 0)
            n++;
    }
    return n;
}
