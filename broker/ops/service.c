/*
 * service.c — readiness, SIGUSR1 (backup) and SIGUSR2 (log reopen) (service.h).
 */
#define _GNU_SOURCE /* pipe2 */
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backup.h"
#include "log.h"
#include "loop.h"
#include "notify.h"

static struct {
    struct loop *loop;
    struct broker *broker;
    int pipe[2];
    bool ready_sent;
} service_state = {NULL, NULL, {-1, -1}, false};

/* Async-signal-safe: one byte per signal; a full pipe already says enough. */
static void service_on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t n = write(service_state.pipe[1], &b, 1);

    (void)n;
    errno = saved;
}

static void service_reopen_log(void)
{
    int rc = log_reopen();

    if (rc < 0)
        log_write(CAIRN_LOG_ERR,
                  "SIGUSR2: cannot reopen the log file (still writing the old "
                  "one): %s",
                  strerror(-rc));
    else
        log_write(CAIRN_LOG_NOTICE, "SIGUSR2: log reopened");
}

static void service_on_pipe(struct loop *l, int fd, int events, void *arg)
{
    unsigned char buf[64];
    ssize_t n;

    (void)arg;
    (void)events;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == SIGUSR1)
                backup_request(service_state.broker, l);
            else if (buf[i] == SIGUSR2)
                service_reopen_log();
        }
    }
}

static void service_signals(void (*handler)(int))
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
}

static void service_signals_mask(int how)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(how, &set, NULL);
}

void service_signals_hold(void)
{
    service_signals_mask(SIG_BLOCK);
}

void service_signals_release(void)
{
    service_signals_mask(SIG_UNBLOCK);
}

static void service_close_pipe(void)
{
    for (int i = 0; i < 2; i++) {
        if (service_state.pipe[i] >= 0)
            close(service_state.pipe[i]);
        service_state.pipe[i] = -1;
    }
}

int service_start(struct loop *l, struct broker *b, char *err, size_t errlen)
{
    int rc;

    if (pipe2(service_state.pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        rc = -errno;
        snprintf(err, errlen, "signals: %s", strerror(errno));
        goto out;
    }
    rc = loop_add_fd(l, service_state.pipe[0], CAIRN_EV_READ, service_on_pipe, NULL);
    if (rc < 0) {
        snprintf(err, errlen, "signals: %s", strerror(-rc));
        service_close_pipe();
        goto out;
    }
    service_state.loop = l;
    service_state.broker = b;
    service_signals(service_on_signal);
    service_signals_release();
    rc = notify_send("READY=1\nSTATUS=Serving");
    if (rc < 0)
        log_write(CAIRN_LOG_WARNING, "NOTIFY_SOCKET: cannot tell the service manager: %s",
                  strerror(-rc));
    service_state.ready_sent = rc > 0;
    rc = 0;
out:
    return rc;
}

void service_stop(void)
{
    if (!service_state.loop)
        return;
    if (service_state.ready_sent)
        notify_send("STOPPING=1");
    backup_stop();
    service_signals(SIG_IGN);
    loop_del_fd(service_state.loop, service_state.pipe[0]);
    service_close_pipe();
    service_state.loop = NULL;
    service_state.broker = NULL;
    service_state.ready_sent = false;
}
