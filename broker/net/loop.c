/*
 * loop.c — the backend-neutral half of the event loop: the fd table, dispatch, timers and the
 * iteration-end hook. The backend (loop_poll.c / loop_epoll.c) only waits and reports.
 */
#include "loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timer.h"

#define LOOP_MAX_FIRED 512 /* events taken per wait; the rest come next iteration */

struct loop_fd {
    loop_fd_cb cb;
    void *arg;
    int events;
    bool used;
};

struct loop {
    struct loop_backend *backend;
    /*
     * Indexed by fd; [0, nfds) is allocated and only [0, ninit) written: the entries past the
     * highest fd seen are never touched, so the pages of a doubled table cost no memory until
     * used (24 bytes an fd, not up to 48).
     */
    struct loop_fd *fds;
    size_t nfds;
    size_t ninit;
    struct timer_heap timers;
    uint64_t now;
    bool stop;
    void (*iteration_end)(void *arg);
    void *iteration_end_arg;
    struct loop_fired fired[LOOP_MAX_FIRED];
};

struct loop *loop_new(char *err, size_t errlen)
{
    struct loop *l = calloc(1, sizeof(*l));

    if (!l) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    l->backend = loop__backend_new(err, errlen);
    if (!l->backend) {
        free(l);
        l = NULL;
        goto out;
    }
    timer_heap_init(&l->timers);
    l->now = timer_clock_ms();
out:
    return l;
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    timer_heap_cleanup(&l->timers);
    loop__backend_free(l->backend);
    free(l->fds);
    free(l);
}

/* Make room for fd, its entry and those below it zeroed (unused). */
static int loop_grow(struct loop *l, int fd)
{
    size_t n = l->nfds ? l->nfds : 64;
    struct loop_fd *v;
    int rc = 0;

    while (n <= (size_t)fd)
        n *= 2;
    if (n != l->nfds) {
        v = realloc(l->fds, n * sizeof(*v));
        if (!v) {
            rc = -ENOMEM;
            goto out;
        }
        l->fds = v;
        l->nfds = n;
    }
    if ((size_t)fd >= l->ninit) {
        memset(l->fds + l->ninit, 0, ((size_t)fd + 1 - l->ninit) * sizeof(*l->fds));
        l->ninit = (size_t)fd + 1;
    }
out:
    return rc;
}

int loop_add_fd(struct loop *l, int fd, int events, loop_fd_cb cb, void *arg)
{
    int rc = -EINVAL;

    if (fd < 0)
        goto out;
    rc = loop_grow(l, fd);
    if (rc < 0)
        goto out;
    rc = -EEXIST;
    if (l->fds[fd].used)
        goto out;
    rc = loop__backend_set(l->backend, fd, 0, events);
    if (rc < 0)
        goto out;
    l->fds[fd] = (struct loop_fd){.cb = cb, .arg = arg, .events = events, .used = true};
out:
    return rc;
}

int loop_mod_fd(struct loop *l, int fd, int events)
{
    int rc = -ENOENT;

    if (fd < 0 || (size_t)fd >= l->ninit || !l->fds[fd].used)
        goto out;
    rc = 0;
    if (l->fds[fd].events == events)
        goto out;
    rc = loop__backend_set(l->backend, fd, l->fds[fd].events, events);
    if (rc == 0)
        l->fds[fd].events = events;
out:
    return rc;
}

void loop_del_fd(struct loop *l, int fd)
{
    if (fd < 0 || (size_t)fd >= l->ninit || !l->fds[fd].used)
        return;
    loop__backend_del(l->backend, fd, l->fds[fd].events);
    memset(&l->fds[fd], 0, sizeof(l->fds[fd]));
}

void loop_fire_fd(struct loop *l, int fd, int events)
{
    struct loop_fd *e;

    if (fd < 0 || (size_t)fd >= l->ninit || !l->fds[fd].used)
        return;
    e = &l->fds[fd];
    e->cb(l, fd, events, e->arg);
}

void loop_set_iteration_end(struct loop *l, void (*cb)(void *arg), void *arg)
{
    l->iteration_end = cb;
    l->iteration_end_arg = arg;
}

/* Milliseconds to wait: until the next timer, 0 when one is due, -1 when none is pending. */
static int loop_timeout(const struct loop *l)
{
    uint64_t next = timer_heap_next(&l->timers);
    uint64_t now = timer_clock_ms();

    if (next == UINT64_MAX)
        return -1;
    if (next <= now)
        return 0;
    if (next - now > 60000)
        return 60000;
    return (int)(next - now);
}

/*
 * Dispatch one fired event. The events are masked with the current interest so a callback that
 * dropped write interest (or removed the fd) earlier in this iteration is not called for it.
 * Backends report error/hang-up as READ|WRITE, so the owner meets the error on its next read or
 * write; an fd with no interest is not in the backend at all, so it cannot spin on POLLHUP.
 */
static void loop_dispatch(struct loop *l, const struct loop_fired *f)
{
    struct loop_fd *e;
    int events;

    if ((size_t)f->fd >= l->ninit)
        return;
    e = &l->fds[f->fd];
    if (!e->used)
        return;
    events = f->events & e->events;
    if (events)
        e->cb(l, f->fd, events, e->arg);
}

/* One iteration; the wait is capped at max_wait_ms (-1: only timers bound it). */
static int loop_iterate(struct loop *l, int max_wait_ms)
{
    int timeout = loop_timeout(l);
    int n;

    if (max_wait_ms >= 0 && (timeout < 0 || timeout > max_wait_ms))
        timeout = max_wait_ms;
    n = loop__backend_wait(l->backend, timeout, l->fired, LOOP_MAX_FIRED);
    if (n < 0)
        goto out;
    l->now = timer_clock_ms();
    for (int i = 0; i < n; i++)
        loop_dispatch(l, &l->fired[i]);
    timer_heap_run(&l->timers, timer_clock_ms());
    l->now = timer_clock_ms();
    if (l->iteration_end)
        l->iteration_end(l->iteration_end_arg);
out:
    return n;
}

int loop_run(struct loop *l)
{
    int rc = 0;

    l->stop = false;
    while (!l->stop && rc >= 0)
        rc = loop_iterate(l, -1);
    return rc < 0 ? rc : 0;
}

int loop_run_once(struct loop *l, int max_wait_ms)
{
    return loop_iterate(l, max_wait_ms);
}

void loop_stop(struct loop *l)
{
    l->stop = true;
}

bool loop_stopping(const struct loop *l)
{
    return l->stop;
}

uint64_t loop_now_ms(const struct loop *l)
{
    return l->now;
}

struct timer *loop_timer_add(struct loop *l, uint64_t delay_ms, void (*cb)(void *arg), void *arg)
{
    uint64_t base = timer_clock_ms();

    return timer_heap_add(&l->timers, base + delay_ms, cb, arg);
}

void loop_timer_cancel(struct loop *l, struct timer *t)
{
    timer_heap_cancel(&l->timers, t);
}

const char *loop_backend_name(void)
{
    return loop__backend_name();
}
