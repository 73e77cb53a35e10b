/*
 * dial.c — outgoing TCP connections that never block the loop (dial.h).
 */
#define _GNU_SOURCE /* pipe2 */
#include "dial.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"

/* What the resolver thread and the loop share; the last of the two to let go frees it. */
struct dial_lookup {
    atomic_int refs;
    int pipe[2]; /* the thread writes one byte to [1] when res/gai are set */
    char *host;
    char port[8];
    struct addrinfo *res;
    int gai;
};

struct dial {
    struct loop *loop;
    dial_cb cb;
    void *arg;
    char *host;
    uint16_t port;
    char *bind_address;
    struct dial_lookup *lk; /* while the thread looks the name up */
    struct addrinfo *res;   /* the addresses to try */
    struct addrinfo *next;  /* the next of them */
    int fd;                 /* the socket connecting now, or -1 */
    struct timer *start;    /* 0 ms: begin outside dial_start */
    struct timer *timeout;
    char peer[72];
    char why[256];
};

static void dial_lookup_release(struct dial_lookup *lk)
{
    if (atomic_fetch_sub(&lk->refs, 1) != 1)
        return;
    close(lk->pipe[0]);
    close(lk->pipe[1]);
    if (lk->res)
        freeaddrinfo(lk->res);
    free(lk->host);
    free(lk);
}

static void *dial_lookup_thread(void *arg)
{
    struct dial_lookup *lk = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    ssize_t n;

    lk->gai = getaddrinfo(lk->host, lk->port, &hints, &lk->res);
    n = write(lk->pipe[1], "x", 1); /* the write orders res before the loop's read */
    (void)n;
    dial_lookup_release(lk);
    return NULL;
}

/* Hand the result over and go (the callback may start another dial). */
static void dial_finish(struct dial *d, int fd)
{
    dial_cb cb = d->cb;
    void *arg = d->arg;
    char peer[sizeof(d->peer)], why[sizeof(d->why)];

    memcpy(peer, d->peer, sizeof(peer));
    memcpy(why, d->why, sizeof(why));
    if (fd >= 0 && d->fd == fd) {
        loop_del_fd(d->loop, fd);
        d->fd = -1; /* the callback's now */
    }
    dial_cancel(d);
    cb(arg, fd, peer, why);
}

static void dial_peer(struct dial *d, const struct sockaddr *sa)
{
    char a[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, a, sizeof(a));
        snprintf(d->peer, sizeof(d->peer), "[%s]:%u", a, d->port);
    } else {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, a, sizeof(a));
        snprintf(d->peer, sizeof(d->peer), "%s:%u", a, d->port);
    }
}

/* bind_address for a socket of family: 0, or -errno (a family the address is not of: skip). */
static int dial_bind(struct dial *d, int fd, int family)
{
    struct addrinfo hints = {.ai_family = family, .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *res = NULL;
    int rc = 0;

    if (!d->bind_address)
        goto out;
    if (getaddrinfo(d->bind_address, NULL, &hints, &res) != 0) {
        rc = -EAFNOSUPPORT;
        goto out;
    }
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
        rc = -errno;
out:
    if (res)
        freeaddrinfo(res);
    return rc;
}

static void dial_try(struct dial *d);

static void dial_on_writable(struct loop *l, int fd, int events, void *arg)
{
    struct dial *d = arg;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(int), sl = sizeof(ss);
    int err = 0, one = 1;

    (void)l;
    (void)events;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    /* an event meant for an earlier socket of the same number leaves this one in progress */
    if (err == 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) < 0 && errno == ENOTCONN)
        return;
    if (err == 0) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        dial_finish(d, fd);
        return;
    }
    snprintf(d->why, sizeof(d->why), "connect to %s: %s", d->peer, strerror(err));
    loop_del_fd(d->loop, fd);
    close(fd);
    d->fd = -1;
    dial_try(d);
}

/* The next address, until one connects or none is left. */
static void dial_try(struct dial *d)
{
    while (d->next) {
        struct addrinfo *ai = d->next;
        int fd, rc;

        d->next = ai->ai_next;
        dial_peer(d, ai->ai_addr);
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(d->why, sizeof(d->why), "socket for %s: %s", d->peer, strerror(errno));
            continue;
        }
        rc = dial_bind(d, fd, ai->ai_family);
        if (rc == 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)
            rc = -errno;
        if (rc == 0 && loop_add_fd(d->loop, fd, CAIRN_EV_WRITE, dial_on_writable, d) == 0) {
            d->fd = fd;
            return; /* connected or not, the socket says so when writable */
        }
        snprintf(d->why, sizeof(d->why), "connect to %s: %s%s", d->peer,
                 strerror(rc ? -rc : ENOMEM), rc == -EAFNOSUPPORT ? " (bridge_bind_address)" : "");
        close(fd);
    }
    if (!d->why[0])
        snprintf(d->why, sizeof(d->why), "%s: no address to connect to", d->host);
    dial_finish(d, -1);
}

static void dial_on_lookup(struct loop *l, int fd, int events, void *arg)
{
    struct dial *d = arg;
    struct dial_lookup *lk = d->lk;
    char b;

    (void)l;
    (void)events;
    if (read(fd, &b, 1) != 1)
        return; /* not yet (a spurious wake-up) */
    loop_del_fd(d->loop, fd);
    d->lk = NULL;
    d->res = d->next = lk->res;
    lk->res = NULL;
    if (lk->gai != 0)
        snprintf(d->why, sizeof(d->why), "name lookup of %s: %s", d->host,
                 lk->gai == EAI_SYSTEM ? "system error" : gai_strerror(lk->gai));
    dial_lookup_release(lk);
    dial_try(d);
}

/* A thread for the lookup of a name; a numeric address needs none. */
static void dial_begin(void *arg)
{
    struct dial *d = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct dial_lookup *lk = NULL;
    pthread_attr_t attr;
    pthread_t th;
    char port[8];

    d->start = NULL;
    snprintf(port, sizeof(port), "%u", d->port);
    if (getaddrinfo(d->host, port, &hints, &d->res) == 0) {
        d->next = d->res;
        dial_try(d);
        return;
    }
    d->res = NULL;
    lk = calloc(1, sizeof(*lk));
    if (!lk || !(lk->host = strdup(d->host)) || pipe2(lk->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        if (lk)
            free(lk->host);
        free(lk);
        snprintf(d->why, sizeof(d->why), "name lookup of %s: out of memory or descriptors",
                 d->host);
        dial_finish(d, -1);
        return;
    }
    memcpy(lk->port, port, sizeof(port));
    atomic_init(&lk->refs, 1); /* the thread's reference is taken when it exists */
    if (pthread_attr_init(&attr) != 0)
        goto fail;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add(&lk->refs, 1);
    if (pthread_create(&th, &attr, dial_lookup_thread, lk) != 0) {
        atomic_fetch_sub(&lk->refs, 1);
        pthread_attr_destroy(&attr);
        goto fail;
    }
    pthread_attr_destroy(&attr);
    d->lk = lk;
    if (loop_add_fd(d->loop, lk->pipe[0], CAIRN_EV_READ, dial_on_lookup, d) < 0) {
        d->lk = NULL; /* the thread lets go of it when it returns */
        goto fail;
    }
    return;
fail:
    dial_lookup_release(lk);
    snprintf(d->why, sizeof(d->why), "name lookup of %s: no thread for it", d->host);
    dial_finish(d, -1);
}

static void dial_on_timeout(void *arg)
{
    struct dial *d = arg;

    d->timeout = NULL;
    if (d->fd >= 0)
        snprintf(d->why, sizeof(d->why), "connect to %s: timed out", d->peer);
    else
        snprintf(d->why, sizeof(d->why), "name lookup of %s: timed out", d->host);
    dial_finish(d, -1);
}

struct dial *dial_start(struct loop *l, const char *host, uint16_t port, const char *bind_address,
                        uint32_t timeout_ms, dial_cb cb, void *arg)
{
    struct dial *d = calloc(1, sizeof(*d));

    if (!d)
        goto fail;
    d->loop = l;
    d->cb = cb;
    d->arg = arg;
    d->port = port;
    d->fd = -1;
    d->host = strdup(host);
    if (!d->host || (bind_address && !(d->bind_address = strdup(bind_address))))
        goto fail;
    d->start = loop_timer_add(l, 0, dial_begin, d);
    if (!d->start)
        goto fail;
    if (timeout_ms && !(d->timeout = loop_timer_add(l, timeout_ms, dial_on_timeout, d)))
        goto fail;
    return d;
fail:
    dial_cancel(d);
    return NULL;
}

void dial_cancel(struct dial *d)
{
    if (!d)
        return;
    loop_timer_cancel(d->loop, d->start);
    loop_timer_cancel(d->loop, d->timeout);
    if (d->lk) {
        loop_del_fd(d->loop, d->lk->pipe[0]);
        dial_lookup_release(d->lk);
    }
    if (d->fd >= 0) {
        loop_del_fd(d->loop, d->fd);
        close(d->fd);
    }
    if (d->res)
        freeaddrinfo(d->res);
    free(d->host);
    free(d->bind_address);
    free(d);
}
