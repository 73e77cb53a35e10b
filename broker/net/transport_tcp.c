/*
 * transport_tcp.c — the plain TCP transport: read and writev on a non-blocking socket.
 *
 * EINTR is retried here; EAGAIN goes up as -EAGAIN. Writes use sendmsg with MSG_NOSIGNAL so a
 * peer that has gone cannot kill the process with SIGPIPE (server.c ignores SIGPIPE as well,
 * for whatever else writes to sockets).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport.h"

static int tcp_handshake(struct transport *t)
{
    (void)t;
    return 0;
}

static ssize_t tcp_read(struct transport *t, void *buf, size_t len)
{
    ssize_t n;

    do {
        n = read(t->fd, buf, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        n = errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return n;
}

static ssize_t tcp_writev(struct transport *t, const struct iovec *iov, int iovcnt)
{
    struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    ssize_t n;

    do {
        n = sendmsg(t->fd, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        n = errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return n;
}

static size_t tcp_pending(const struct transport *t)
{
    (void)t;
    return 0;
}

static int tcp_want_events(const struct transport *t, int caller_wants)
{
    (void)t;
    return caller_wants;
}

static const char *tcp_identity(const struct transport *t)
{
    (void)t;
    return NULL;
}

static void tcp_close(struct transport *t)
{
    if (!t)
        return;
    close(t->fd);
    free(t);
}

static const struct transport_ops tcp_ops = {
    .handshake = tcp_handshake,
    .read = tcp_read,
    .writev = tcp_writev,
    .pending = tcp_pending,
    .want_events = tcp_want_events,
    .identity = tcp_identity,
    .close = tcp_close,
};

struct transport *transport_tcp_new(int fd)
{
    struct transport *t = malloc(sizeof(*t));

    if (!t) {
        close(fd);
        goto out;
    }
    t->ops = &tcp_ops;
    t->fd = fd;
out:
    return t;
}
