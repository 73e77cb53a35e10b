/*
 * ws_transport.c — MQTT over WebSocket frames on an inner transport (ws.h).
 *
 * Output state: pre[] holds the bytes committed to go before the current frame's payload —
 * control frames waiting, then the data frame's header. Once committed they do not change
 * until written: an inner TLS transport that stalls mid-record needs the same bytes offered
 * again (tls.h), so a Ping that arrives meanwhile waits in ctrl[] for the next frame boundary.
 */
#include "ws.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "transport.h"
#include "ws_frame.h"

#define WS_IOV_MAX  129 /* the caller's 128 (conn.c) and pre[] */
#define WS_CTRL_CAP (2 + WS_CTRL_MAX)
#define WS_PRE_CAP  (WS_CTRL_CAP + 4 + WS_SERVER_HDR)

struct ws_transport {
    struct transport base; /* base.fd is the inner transport's */
    struct transport *inner;
    struct ws_rx rx;
    uint8_t *early; /* bytes read with the request head, still to decode */
    size_t early_len;
    size_t early_off;
    uint8_t pre[WS_PRE_CAP];
    size_t pre_len;
    size_t pre_off;
    uint8_t ctrl[WS_CTRL_CAP]; /* a Pong waiting for a frame boundary */
    size_t ctrl_len;
    uint64_t frame_left;   /* payload bytes of the frame in pre[] still to write */
    uint16_t close_status; /* sent by close(); 0: 1000 */
    bool peer_closed;      /* a Close arrived: read() answers 0 */
    bool failed;           /* the decoder refused a frame: read() answers -EPROTO */
    int verbose;
    char peer[64];
};

/* ---- output ------------------------------------------------------------------------------ */

/* At a frame boundary: commit the waiting control frames, and a header for len bytes. */
static void ws_commit(struct ws_transport *t, uint64_t len)
{
    t->pre_len = t->pre_off = 0;
    memcpy(t->pre, t->ctrl, t->ctrl_len);
    t->pre_len = t->ctrl_len;
    t->ctrl_len = 0;
    if (len > 0) {
        t->pre_len += ws_frame_header(t->pre + t->pre_len, WS_OP_BINARY, len);
        t->frame_left = len;
    }
}

static ssize_t ws_writev(struct transport *base, const struct iovec *iov, int iovcnt)
{
    struct ws_transport *t = (struct ws_transport *)base;
    struct iovec v[WS_IOV_MAX];
    size_t offered = 0, pre_left, take;
    uint64_t room;
    ssize_t n;
    int cnt = 0;

    if (iovcnt > WS_IOV_MAX - 1)
        iovcnt = WS_IOV_MAX - 1;
    for (int i = 0; i < iovcnt; i++)
        offered += iov[i].iov_len;
    if (t->pre_off == t->pre_len && t->frame_left == 0)
        ws_commit(t, offered);
    pre_left = t->pre_len - t->pre_off;
    if (pre_left)
        v[cnt++] = (struct iovec){t->pre + t->pre_off, pre_left};
    room = t->frame_left;
    for (int i = 0; i < iovcnt && room > 0; i++) {
        take = iov[i].iov_len < room ? iov[i].iov_len : (size_t)room;
        if (take == 0)
            continue;
        v[cnt++] = (struct iovec){iov[i].iov_base, take};
        room -= take;
    }
    if (cnt == 0)
        return 0;
    n = t->inner->ops->writev(t->inner, v, cnt);
    if (n < 0)
        return n;
    take = (size_t)n < pre_left ? (size_t)n : pre_left;
    t->pre_off += take;
    n -= (ssize_t)take;
    t->frame_left -= (uint64_t)n;
    if (n == 0 && offered > 0)
        return -EAGAIN; /* only frame or control bytes went: wait for room */
    return n;
}

static int ws_flush(struct transport *base)
{
    struct ws_transport *t = (struct ws_transport *)base;
    ssize_t n = 0;

    if (t->frame_left == 0 && (t->pre_off < t->pre_len || t->ctrl_len > 0))
        n = ws_writev(base, NULL, 0);
    if (n < 0)
        return (int)n;
    return t->pre_off < t->pre_len || t->ctrl_len > 0 ? -EAGAIN : 0;
}

/* ---- input ------------------------------------------------------------------------------- */

/* A Ping: its Pong replaces any Pong not yet committed (only the latest needs an answer). */
static void ws_on_ping(struct ws_transport *t)
{
    t->ctrl_len = ws_frame_header(t->ctrl, WS_OP_PONG, t->rx.ctrl_len);
    memcpy(t->ctrl + t->ctrl_len, t->rx.ctrl, t->rx.ctrl_len);
    t->ctrl_len += t->rx.ctrl_len;
}

/* Decode n raw bytes in buf in place; returns the payload bytes now at its front. */
static size_t ws_decode(struct ws_transport *t, uint8_t *buf, size_t n)
{
    size_t off = 0, out = 0;

    while (off < n && !t->peer_closed && !t->failed) {
        size_t used, got;
        enum ws_rx_event ev = ws_rx_feed(&t->rx, buf + off, n - off, buf + out, &used, &got);

        off += used;
        out += got;
        if (ev == WS_RX_PING) {
            ws_on_ping(t);
        } else if (ev == WS_RX_CLOSE) {
            t->peer_closed = true;
            t->close_status = t->rx.status == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : t->rx.status;
            if (t->verbose)
                log_write(CAIRN_LOG_DEBUG, "client %s: WebSocket Close %u", t->peer, t->rx.status);
        } else if (ev == WS_RX_ERROR) {
            t->failed = true;
            t->close_status = t->rx.status;
            log_write(CAIRN_LOG_NOTICE, "client %s: WebSocket: %s; closing with status %u", t->peer,
                      t->rx.why, t->rx.status);
        }
    }
    return out;
}

static ssize_t ws_read(struct transport *base, void *buf, size_t len)
{
    struct ws_transport *t = (struct ws_transport *)base;
    ssize_t rc = 0;

    while (!t->peer_closed && !t->failed) {
        ssize_t n;
        size_t out;

        if (t->early_off < t->early_len) {
            n = (ssize_t)(t->early_len - t->early_off < len ? t->early_len - t->early_off : len);
            memcpy(buf, t->early + t->early_off, (size_t)n);
            t->early_off += (size_t)n;
        } else {
            n = t->inner->ops->read(t->inner, buf, len);
        }
        if (n <= 0) {
            rc = n;
            goto out;
        }
        out = ws_decode(t, buf, (size_t)n);
        if (t->ctrl_len && t->frame_left == 0 && t->pre_off == t->pre_len)
            ws_flush(base); /* answer a Ping at once when nothing else is under way */
        if (out > 0 && !t->failed) {
            rc = (ssize_t)out; /* data before a Close still counts; the next read says 0 */
            goto out;
        }
    }
    rc = t->failed ? -EPROTO : 0;
out:
    return rc;
}

/* ---- the rest of the interface ------------------------------------------------------------ */

static int ws_handshake(struct transport *base)
{
    (void)base; /* the HTTP upgrade was done before this transport existed; TLS under it too */
    return 0;
}

static size_t ws_pending(const struct transport *base)
{
    const struct ws_transport *t = (const struct ws_transport *)base;

    if (t->early_off < t->early_len)
        return t->early_len - t->early_off;
    return t->inner->ops->pending(t->inner);
}

static int ws_want_events(const struct transport *base, int caller_wants)
{
    const struct ws_transport *t = (const struct ws_transport *)base;
    bool owe = t->pre_off < t->pre_len || (t->ctrl_len > 0 && t->frame_left == 0);

    return t->inner->ops->want_events(t->inner, caller_wants | (owe ? CAIRN_EV_WRITE : 0));
}

static const char *ws_identity(const struct transport *base)
{
    const struct ws_transport *t = (const struct ws_transport *)base;

    return t->inner->ops->identity(t->inner);
}

/*
 * The Close goes last, after whatever the connection still had queued (it lingers until its
 * queue is written), and only at a frame boundary: a frame cut short cannot be followed by
 * anything the peer could read. Best effort: the socket is non-blocking.
 */
static void ws_close(struct transport *base)
{
    struct ws_transport *t = (struct ws_transport *)base;

    if (!t)
        return;
    if (t->frame_left == 0) {
        uint16_t status = t->close_status ? t->close_status : WS_CLOSE_NORMAL;
        uint8_t *end;

        if (t->pre_off == t->pre_len)
            ws_commit(t, 0);
        end = t->pre + t->pre_len;
        t->pre_len += ws_frame_close(end, status);
        ws_writev(base, NULL, 0);
    }
    t->inner->ops->close(t->inner);
    free(t->early);
    free(t);
}

static const struct transport_ops ws_ops = {
    .handshake = ws_handshake,
    .read = ws_read,
    .writev = ws_writev,
    .pending = ws_pending,
    .want_events = ws_want_events,
    .identity = ws_identity,
    .close = ws_close,
    .flush = ws_flush,
};

struct transport *ws_transport_new(struct transport *inner, const uint8_t *early, size_t early_len,
                                   const char *peer, int verbose)
{
    struct ws_transport *t = calloc(1, sizeof(*t));

    if (!t)
        goto fail;
    if (early_len) {
        t->early = malloc(early_len);
        if (!t->early)
            goto fail;
        memcpy(t->early, early, early_len);
        t->early_len = early_len;
    }
    t->base.ops = &ws_ops;
    t->base.fd = inner->fd;
    t->inner = inner;
    t->verbose = verbose;
    snprintf(t->peer, sizeof(t->peer), "%s", peer);
    ws_rx_init(&t->rx, WS_MAX_FRAME);
    return &t->base;
fail:
    if (t)
        free(t->early);
    free(t);
    inner->ops->close(inner);
    return NULL;
}
