/*
 * loop_epoll.c — the Linux backend: level-triggered epoll. An fd whose interest drops to 0 is
 * removed from the epoll set (as Redis's ae does), so a hung-up socket nobody reads cannot make
 * epoll_wait return forever.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"

#define LOOP_EPOLL_BATCH 512

struct loop_backend {
    int epfd;
    struct epoll_event ev[LOOP_EPOLL_BATCH];
};

struct loop_backend *loop__backend_new(char *err, size_t errlen)
{
    struct loop_backend *b = calloc(1, sizeof(*b));

    if (!b) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (b->epfd < 0) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        free(b);
        b = NULL;
    }
out:
    return b;
}

void loop__backend_free(struct loop_backend *b)
{
    if (!b)
        return;
    close(b->epfd);
    free(b);
}

int loop__backend_set(struct loop_backend *b, int fd, int old_events, int new_events)
{
    struct epoll_event ev = {0};
    int op;
    int rc = 0;

    if (new_events == 0) {
        if (old_events != 0 && epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, &ev) < 0)
            rc = -errno;
        goto out;
    }
    op = old_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (new_events & CAIRN_EV_READ)
        ev.events |= EPOLLIN;
    if (new_events & CAIRN_EV_WRITE)
        ev.events |= EPOLLOUT;
    ev.data.fd = fd;
    if (epoll_ctl(b->epfd, op, fd, &ev) < 0)
        rc = -errno;
out:
    return rc;
}

void loop__backend_del(struct loop_backend *b, int fd, int old_events)
{
    struct epoll_event ev = {0};

    if (old_events)
        epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, &ev);
}

int loop__backend_wait(struct loop_backend *b, int timeout_ms, struct loop_fired *fired, int max)
{
    int n;

    if (max > LOOP_EPOLL_BATCH)
        max = LOOP_EPOLL_BATCH;
    n = epoll_wait(b->epfd, b->ev, max, timeout_ms);
    if (n < 0) {
        n = errno == EINTR ? 0 : -errno;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        uint32_t e = b->ev[i].events;
        int events = 0;

        if (e & (EPOLLIN | EPOLLHUP | EPOLLERR))
            events |= CAIRN_EV_READ;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            events |= CAIRN_EV_WRITE;
        fired[i].fd = b->ev[i].data.fd;
        fired[i].events = events;
    }
out:
    return n;
}

const char *loop__backend_name(void)
{
    return "epoll";
}
