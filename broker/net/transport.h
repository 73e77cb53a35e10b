/*
 * transport.h — how a connection moves bytes: plain TCP (transport_tcp.c), TLS through
 * mbedTLS (tls.c), or WebSocket frames over either (ws_transport.c, ws.h). The connection code
 * sees only this interface.
 *
 * Every call is non-blocking. Readiness is the loop's business: after a call answers
 * -EAGAIN, the connection asks want_events() which socket events (CAIRN_EV_READ/WRITE) will
 * let the transport progress — a TLS handshake or renegotiation may need to write while the
 * connection only wants to read, and the other way round.
 *
 * A transport owns its socket from creation; close() closes it and frees the transport.
 */
#ifndef CAIRN_TRANSPORT_H
#define CAIRN_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#define CAIRN_EV_READ  0x1
#define CAIRN_EV_WRITE 0x2

struct transport;

struct transport_ops {
    /* Drive the handshake: 0 when done (at once for TCP), -EAGAIN in progress, other negative
     * on failure (the connection is closed). */
    int (*handshake)(struct transport *t);
    /* > 0 bytes read, 0 on orderly close by the peer, -EAGAIN, or another -errno. */
    ssize_t (*read)(struct transport *t, void *buf, size_t len);
    /* Gathered write: bytes accepted (maybe fewer than offered), -EAGAIN, or -errno.
     * TLS packs as many bytes as fit into each record rather than a record per iovec. */
    ssize_t (*writev)(struct transport *t, const struct iovec *iov, int iovcnt);
    /* Bytes already read from the socket and decrypted, waiting in the transport: the caller
     * must read them even though the socket will not report readable again. */
    size_t (*pending)(const struct transport *t);
    /* Socket events the transport needs, given what the caller wants (CAIRN_EV_* mask). */
    int (*want_events)(const struct transport *t, int caller_wants);
    /* Peer identity for use_identity_as_username / use_subject_as_username: the certificate
     * CN, subject or PSK identity; NULL when none. Valid until close. */
    const char *(*identity)(const struct transport *t);
    void (*close)(struct transport *t);
    /* Write what the transport owes the peer on its own account (a WebSocket Pong or Close)
     * while the caller has nothing queued: 0 when nothing is left, -EAGAIN, or -errno. The
     * caller calls it on write readiness with an empty queue. NULL: never owes anything. */
    int (*flush)(struct transport *t);
};

struct transport {
    const struct transport_ops *ops;
    int fd;
};

/* Plain TCP over an accepted, non-blocking socket. Takes ownership of fd. NULL on ENOMEM
 * (fd is closed then). */
struct transport *transport_tcp_new(int fd);

#endif
