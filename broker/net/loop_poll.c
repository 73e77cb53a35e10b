/*
 * loop_poll.c — the portable backend: poll(2) over an array of pollfd kept dense, with a map from
 * fd to its slot so set and del are O(1) (the last slot moves into a freed one). Only fds with
 * some interest are in the array: poll reports POLLHUP even for events == 0, which would spin.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"

struct loop_backend {
    struct pollfd *pfd;
    size_t n;
    size_t cap;
    int *slot; /* fd -> index in pfd, -1 when absent */
    size_t nslot;
    size_t start; /* where the next scan begins, so a full fired[] cannot starve the tail */
};

struct loop_backend *loop__backend_new(char *err, size_t errlen)
{
    struct loop_backend *b = calloc(1, sizeof(*b));

    if (!b)
        snprintf(err, errlen, "out of memory");
    return b;
}

void loop__backend_free(struct loop_backend *b)
{
    if (!b)
        return;
    free(b->pfd);
    free(b->slot);
    free(b);
}

static int loop_poll_reserve(struct loop_backend *b, int fd)
{
    int rc = -ENOMEM;

    if ((size_t)fd >= b->nslot) {
        size_t n = b->nslot ? b->nslot : 64;
        int *s;
        while (n <= (size_t)fd)
            n *= 2;
        s = realloc(b->slot, n * sizeof(*s));
        if (!s)
            goto out;
        for (size_t i = b->nslot; i < n; i++)
            s[i] = -1;
        b->slot = s;
        b->nslot = n;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct pollfd *p = realloc(b->pfd, cap * sizeof(*p));
        if (!p)
            goto out;
        b->pfd = p;
        b->cap = cap;
    }
    rc = 0;
out:
    return rc;
}

static short loop_poll_mask(int events)
{
    short m = 0;

    if (events & CAIRN_EV_READ)
        m |= POLLIN;
    if (events & CAIRN_EV_WRITE)
        m |= POLLOUT;
    return m;
}

void loop__backend_del(struct loop_backend *b, int fd, int old_events)
{
    int i;

    (void)old_events;
    if (fd < 0 || (size_t)fd >= b->nslot || b->slot[fd] < 0)
        return;
    i = b->slot[fd];
    b->slot[fd] = -1;
    b->n--;
    if ((size_t)i != b->n) {
        b->pfd[i] = b->pfd[b->n];
        b->slot[b->pfd[i].fd] = i;
    }
}

int loop__backend_set(struct loop_backend *b, int fd, int old_events, int new_events)
{
    int rc = 0;

    (void)old_events;
    if (new_events == 0) {
        loop__backend_del(b, fd, old_events);
        goto out;
    }
    if ((size_t)fd < b->nslot && b->slot[fd] >= 0) {
        b->pfd[b->slot[fd]].events = loop_poll_mask(new_events);
        goto out;
    }
    rc = loop_poll_reserve(b, fd);
    if (rc < 0)
        goto out;
    b->pfd[b->n] = (struct pollfd){.fd = fd, .events = loop_poll_mask(new_events)};
    b->slot[fd] = (int)b->n++;
out:
    return rc;
}

int loop__backend_wait(struct loop_backend *b, int timeout_ms, struct loop_fired *fired, int max)
{
    int n = poll(b->pfd, b->n, timeout_ms);
    int count = 0;

    if (n < 0) {
        count = errno == EINTR ? 0 : -errno;
        goto out;
    }
    for (size_t k = 0; k < b->n && n > 0 && count < max; k++) {
        size_t i = (b->start + k) % b->n;
        short r = b->pfd[i].revents;
        int events = 0;

        if (!r)
            continue;
        if (count + 1 == max)
            b->start = i + 1; /* fired[] is full: begin after this one next time */
        n--;
        if (r & (POLLIN | POLLHUP | POLLERR | POLLNVAL))
            events |= CAIRN_EV_READ;
        if (r & (POLLOUT | POLLHUP | POLLERR | POLLNVAL))
            events |= CAIRN_EV_WRITE;
        fired[count].fd = b->pfd[i].fd;
        fired[count].events = events;
        count++;
    }
out:
    return count;
}

const char *loop__backend_name(void)
{
    return "poll";
}
