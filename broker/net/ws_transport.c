/*
 * ws_transport.c — MQTT over WebSocket frames on an inner transport (ws.h).
 *
 * Output: each MQTT packet of the stream the caller offers becomes one frame, and every frame
 * of one writev() goes to the inner transport in one gathered write: a header iovec (kept in
 * hdrs[]) before the caller's own iovecs of each packet. The packet lengths come from the
 * MQTT fixed headers in the stream itself. Why not one frame for the whole write: Paho C 1.3
 * (sync and async) reads a frame into a buffer of its own and then waits for the socket, so the
 * packets after the first of a frame would wait there until more bytes arrived (a PUBACK behind
 * a PUBLISH, a queue behind its CONNACK); a frame per packet is what Mosquitto sends too. The
 * syscall count, which is what costs, stays one per flush.
 *
 * Partial writes: the frame under way (its header, perhaps partly written, and the payload
 * bytes still owed) is kept; the caller offers again what was not accepted, and the plan is
 * rebuilt from it with the same bytes, as an inner TLS transport needs (tls.h). Control frames
 * (a Pong) go only at a frame boundary, and only when the last write was taken whole, so that
 * nothing ever lands inside bytes TLS may hold in a record it is still sending.
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

#define WS_FRAMES   128 /* frames planned per write (conn.c offers 128 iovecs) */
#define WS_SEGS     (2 * WS_FRAMES + 130)
#define WS_CTRL_CAP (2 + WS_CTRL_MAX + 4) /* a Pong, or a Close */

struct ws_transport {
    struct transport base; /* base.fd is the inner transport's */
    struct transport *inner;
    struct ws_rx rx;
    uint8_t *early; /* bytes read with the request head, still to decode */
    size_t early_len;
    size_t early_off;
    uint8_t ctrl[WS_CTRL_CAP]; /* a Pong waiting for a frame boundary */
    size_t ctrl_len;
    uint8_t cpre[WS_CTRL_CAP + 4]; /* control bytes committed to the stream, being written */
    size_t cpre_len;
    size_t cpre_off;
    uint8_t hdr[WS_SERVER_HDR]; /* the header of the frame under way */
    size_t hdr_len;
    size_t hdr_off;
    uint64_t frame_left;   /* its payload bytes still to write */
    bool stalled;          /* the last inner write did not take all it was offered */
    uint16_t close_status; /* sent by close(); 0: 1000 */
    bool peer_closed;      /* a Close arrived: read() answers 0 */
    bool failed;           /* the decoder refused a frame: read() answers -EPROTO */
    int verbose;
    char peer[64];
};

/* ---- output ------------------------------------------------------------------------------ */

/* A cursor over the caller's iovecs. */
struct ws_cur {
    const struct iovec *iov;
    int cnt;
    int k;
    size_t off;
};

/* The byte i places after the cursor, or -1 past the end. */
static int ws_peek(const struct ws_cur *c, size_t i)
{
    int k = c->k;
    size_t off = c->off + i;

    while (k < c->cnt && off >= c->iov[k].iov_len) {
        off -= c->iov[k].iov_len;
        k++;
    }
    return k < c->cnt ? ((const uint8_t *)c->iov[k].iov_base)[off] : -1;
}

/* Length of the MQTT packet starting at the cursor, 0 when its fixed header is not all there. */
static uint64_t ws_packet_len(const struct ws_cur *c)
{
    uint64_t rem = 0;

    for (size_t i = 1; i <= 4; i++) {
        int b = ws_peek(c, i);
        if (b < 0)
            return 0;
        rem |= (uint64_t)(b & 0x7f) << (7 * (i - 1));
        if (!(b & 0x80))
            return 1 + i + rem;
    }
    return 5 + rem; /* a malformed length cannot come from the encoder; frame what it says */
}

/* Append up to want bytes at the cursor as segments; returns how many were appended. */
static uint64_t ws_take(struct ws_cur *c, uint64_t want, struct iovec *v, int *nv)
{
    uint64_t got = 0;

    while (got < want && c->k < c->cnt && *nv < WS_SEGS) {
        size_t avail = c->iov[c->k].iov_len - c->off;
        size_t n = avail < want - got ? avail : (size_t)(want - got);

        if (n > 0)
            v[(*nv)++] = (struct iovec){(uint8_t *)c->iov[c->k].iov_base + c->off, n};
        got += n;
        c->off += n;
        if (c->off == c->iov[c->k].iov_len) {
            c->k++;
            c->off = 0;
        }
    }
    return got;
}

/* min(want, *n), taken from *n. */
static uint64_t ws_min(uint64_t want, size_t *n)
{
    uint64_t got = want < *n ? want : *n;

    *n -= (size_t)got;
    return got;
}

static ssize_t ws_writev(struct transport *base, const struct iovec *iov, int iovcnt)
{
    struct ws_transport *t = (struct ws_transport *)base;
    struct iovec v[WS_SEGS];
    uint8_t hdrs[WS_FRAMES][WS_SERVER_HDR];
    size_t hlen[WS_FRAMES];
    uint64_t flen[WS_FRAMES], body[WS_FRAMES];
    struct ws_cur cur = {iov, iovcnt, 0, 0};
    size_t offered = 0, total = 0, n, cp_len, first_hdr;
    uint64_t left = t->frame_left, accepted = 0;
    int nv = 0, nf = 0;
    ssize_t w;

    for (int i = 0; i < iovcnt; i++)
        offered += iov[i].iov_len;
    /* at a boundary with nothing in flight: a waiting Pong goes first */
    if (t->cpre_off == t->cpre_len && t->hdr_off == t->hdr_len && left == 0 && !t->stalled &&
        t->ctrl_len) {
        memcpy(t->cpre, t->ctrl, t->ctrl_len);
        t->cpre_len = t->ctrl_len;
        t->cpre_off = 0;
        t->ctrl_len = 0;
    }
    cp_len = t->cpre_len - t->cpre_off;
    if (cp_len)
        v[nv++] = (struct iovec){t->cpre + t->cpre_off, cp_len};
    first_hdr = t->hdr_len - t->hdr_off;
    if (first_hdr)
        v[nv++] = (struct iovec){t->hdr + t->hdr_off, first_hdr};
    body[0] = left ? ws_take(&cur, left, v, &nv) : 0;
    /* then a frame for each whole packet header that follows */
    while ((left == 0 || body[nf] == left) && nf + 1 < WS_FRAMES && nv + 2 < WS_SEGS) {
        uint64_t plen = ws_packet_len(&cur);

        if (plen == 0)
            break;
        nf++;
        hlen[nf] = ws_frame_header(hdrs[nf], WS_OP_BINARY, plen);
        flen[nf] = plen;
        v[nv++] = (struct iovec){hdrs[nf], hlen[nf]};
        body[nf] = ws_take(&cur, plen, v, &nv);
        left = plen;
    }
    if (nv == 0)
        return 0;
    for (int i = 0; i < nv; i++)
        total += v[i].iov_len;
    w = t->inner->ops->writev(t->inner, v, nv);
    t->stalled = w < 0 || (size_t)w < total;
    if (w < 0)
        return w;
    /* account, in the order the bytes went */
    n = (size_t)w;
    t->cpre_off += ws_min(cp_len, &n);
    t->hdr_off += ws_min(first_hdr, &n);
    accepted = ws_min(body[0], &n);
    t->frame_left -= accepted;
    for (int f = 1; f <= nf && n > 0; f++) {
        uint64_t b;

        /* a frame begun: it is the one under way now (one not begun is planned again) */
        memcpy(t->hdr, hdrs[f], hlen[f]);
        t->hdr_len = hlen[f];
        t->hdr_off = ws_min(hlen[f], &n);
        b = ws_min(body[f], &n);
        t->frame_left = flen[f] - b;
        accepted += b;
    }
    if (accepted == 0 && offered > 0)
        return -EAGAIN; /* only control or header bytes went: wait for room */
    return (ssize_t)accepted;
}

static int ws_flush(struct transport *base)
{
    struct ws_transport *t = (struct ws_transport *)base;
    ssize_t n = 0;
    bool boundary = t->frame_left == 0 && t->hdr_off == t->hdr_len;

    if (boundary && (t->cpre_off < t->cpre_len || t->ctrl_len > 0)) {
        t->stalled = false; /* nothing of a frame is in flight at a boundary */
        n = ws_writev(base, NULL, 0);
    }
    if (n < 0)
        return (int)n;
    return t->cpre_off < t->cpre_len || t->ctrl_len > 0 ? -EAGAIN : 0;
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
        if (t->ctrl_len && t->frame_left == 0 && t->hdr_off == t->hdr_len && !t->stalled)
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
    bool owe = t->cpre_off < t->cpre_len ||
               (t->ctrl_len > 0 && t->frame_left == 0 && t->hdr_off == t->hdr_len);

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
    if (t->frame_left == 0 && t->hdr_off == t->hdr_len) {
        uint16_t status = t->close_status ? t->close_status : WS_CLOSE_NORMAL;
        size_t room = sizeof(t->ctrl) - t->ctrl_len;

        if (room >= 4) {
            t->ctrl_len += ws_frame_close(t->ctrl + t->ctrl_len, status);
            if (t->cpre_off == t->cpre_len)
                t->stalled = false; /* closing: a stalled record cannot be finished anyway */
            ws_writev(base, NULL, 0);
        }
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
