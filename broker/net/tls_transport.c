/*
 * tls_transport.c — one TLS connection as a broker/net/transport.h transport. See tls.h for the
 * design: readiness-driven handshake (its steps on handshake threads when there are any),
 * records packed from gathered writes through one shared staging buffer, partial records finished
 * with the same length, reads of every waiting record with one recv(), what is left reported by
 * pending(), record buffers parked while idle.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl_internal.h> /* MBEDTLS_SSL_IN_BUFFER_LEN, _OUT_ */

#include "log.h"
#include "metrics.h"
#include "tls_internal.h"
#include "transport.h"

#define TLS_STAGE      MBEDTLS_SSL_OUT_CONTENT_LEN
#define TLS_RECV_CHUNK MBEDTLS_SSL_IN_BUFFER_LEN /* one recv() takes up to a full record */

/* Where a handshake step is, when handshake threads run them (tls_pool.c). */
enum tls_step {
    TLS_STEP_NONE,   /* nothing submitted: the loop owns the transport */
    TLS_STEP_QUEUED, /* a worker owns ssl, the socket and sock_err until done() */
    TLS_STEP_READY,  /* step_ret waits for the next handshake() */
};

struct tls_transport {
    struct transport base;
    struct tls_ctx *ctx; /* one reference */
    mbedtls_ssl_context ssl;
    struct tls_job job;
    struct tls_kex kex;
    enum tls_step step;
    int step_ret;          /* mbedtls_ssl_handshake()'s answer in the worker */
    atomic_bool abandoned; /* closed while QUEUED: done() frees it, run() skips the work */
    int need;              /* CAIRN_EV_* the last WANT_READ/WANT_WRITE asked for */
    bool done;             /* handshake complete */
    size_t pending_len;    /* a record of this length is partly sent: retry with it */
    int sock_err;          /* errno of the last failed send/recv */
    struct tls_park park;  /* record buffers given back while idle (tls_park.c) */
    char *identity;        /* PSK identity, certificate CN or subject; NULL */
    unsigned char *rbuf;   /* bytes recv() gave beyond what mbedTLS asked for; NULL when none */
    size_t rbuf_off, rbuf_len;
    int read_err; /* an end or error met after bytes were returned: the next read's answer */
};

/*
 * One staging buffer for every connection: the loop is single-threaded and mbedTLS copies the
 * bytes into its own record buffer before mbedtls_ssl_write returns; a retry after WANT_WRITE
 * only flushes that record and does not read the buffer again.
 */
static unsigned char tls_stage[TLS_STAGE];

/* ---- socket I/O for mbedTLS ------------------------------------------------------------- */

static int tls_bio_send(void *arg, const unsigned char *buf, size_t len)
{
    struct tls_transport *t = arg;
    ssize_t n;

    tls__park_track(&t->ssl, &t->park, buf, len, false);
    do {
        n = send(t->base.fd, buf, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    t->sock_err = errno;
    return (errno == EPIPE || errno == ECONNRESET) ? MBEDTLS_ERR_NET_CONN_RESET
                                                   : MBEDTLS_ERR_NET_SEND_FAILED;
}

/*
 * mbedTLS reads a record in two exact requests (its 5-byte header, then the rest), which would
 * be two recv() calls per record: for a device sending one small message per record, most of
 * the broker's time. So one recv() takes up to TLS_RECV_CHUNK into a per-thread staging buffer,
 * the caller gets what it asked for and the rest waits in rbuf (allocated only while non-empty,
 * so an idle connection holds none), reported by pending() since the socket will not signal it
 * again. Per-thread: handshake threads read too.
 */
static _Thread_local unsigned char tls_rstage[TLS_RECV_CHUNK];

static int tls_bio_recv(void *arg, unsigned char *buf, size_t len)
{
    struct tls_transport *t = arg;
    unsigned char *dst = len >= TLS_RECV_CHUNK ? buf : tls_rstage;
    ssize_t n;

    if (t->rbuf) {
        n = (ssize_t)(t->rbuf_len - t->rbuf_off < len ? t->rbuf_len - t->rbuf_off : len);
        memcpy(buf, t->rbuf + t->rbuf_off, (size_t)n);
        tls__park_track(&t->ssl, &t->park, buf, (size_t)n, true);
        t->rbuf_off += (size_t)n;
        if (t->rbuf_off == t->rbuf_len) {
            free(t->rbuf);
            t->rbuf = NULL;
        }
        return (int)n;
    }
    do {
        n = recv(t->base.fd, dst, dst == buf ? len : TLS_RECV_CHUNK, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0 && dst != buf && (size_t)n > len) {
        t->rbuf = malloc((size_t)n - len);
        if (!t->rbuf)
            return MBEDTLS_ERR_SSL_ALLOC_FAILED;
        memcpy(t->rbuf, dst + len, (size_t)n - len);
        t->rbuf_off = 0;
        t->rbuf_len = (size_t)n - len;
        n = (ssize_t)len;
    }
    if (n > 0 && dst != buf)
        memcpy(buf, dst, (size_t)n);
    if (n > 0)
        tls__park_track(&t->ssl, &t->park, buf, (size_t)n, true);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return MBEDTLS_ERR_SSL_WANT_READ;
    t->sock_err = errno;
    return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
}

/* ---- errors ----------------------------------------------------------------------------- */

void tls__log_error(int fd, const char *what, int mbedtls_err, uint32_t verify_flags)
{
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    char addr[INET6_ADDRSTRLEN] = "?", msg[160], verify[256] = "";
    unsigned port = 0;

    if (!log_enabled(CAIRN_LOG_NOTICE))
        return;
    if (getpeername(fd, (struct sockaddr *)&sa, &salen) == 0) {
        if (sa.ss_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)&sa;

            inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
            port = ntohs(in->sin_port);
        } else if (sa.ss_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&sa;

            inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
            port = ntohs(in6->sin6_port);
        }
    }
    mbedtls_strerror(mbedtls_err, msg, sizeof(msg));
    if (verify_flags && verify_flags != (uint32_t)-1) {
        int n = mbedtls_x509_crt_verify_info(verify, sizeof(verify), " (", verify_flags);

        /* verify_info ends each reason with '\n': turn the list into one line. */
        for (int i = 0; i < n && verify[i]; i++)
            if (verify[i] == '\n')
                verify[i] = verify[i + 1] ? ';' : ')';
    }
    log_write(CAIRN_LOG_NOTICE, "client %s:%u: TLS %s failed: %s%s", addr, port, what, msg, verify);
}

/* An mbedTLS error as the -errno the connection closes with. */
static int tls_errno(const struct tls_transport *t, int ret)
{
    switch (ret) {
    case MBEDTLS_ERR_SSL_CONN_EOF:
    case MBEDTLS_ERR_NET_CONN_RESET:
        return -ECONNRESET;
    case MBEDTLS_ERR_NET_SEND_FAILED:
    case MBEDTLS_ERR_NET_RECV_FAILED:
        return t->sock_err ? -t->sock_err : -EIO;
    case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
    case MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE:
    case MBEDTLS_ERR_SSL_PEER_VERIFY_FAILED:
    case MBEDTLS_ERR_SSL_UNKNOWN_IDENTITY:
        return -EACCES;
    default:
        return -EPROTO;
    }
}

static bool tls_quiet_error(int ret)
{
    return ret == MBEDTLS_ERR_SSL_CONN_EOF || ret == MBEDTLS_ERR_NET_CONN_RESET;
}

/* ---- identity --------------------------------------------------------------------------- */

int tls__transport_set_psk_identity(void *bio, const unsigned char *id, size_t idlen)
{
    struct tls_transport *t = bio;
    char *s = memchr(id, '\0', idlen) ? NULL : strndup((const char *)id, idlen);

    if (!s)
        return -ENOMEM;
    free(t->identity);
    t->identity = s;
    return 0;
}

/*
 * With require_certificate: a resumed session brings back the certificate verified when it was
 * made (mbedTLS skips verification on resumption); it must not have expired since. A full
 * handshake has just checked it. false: refuse the connection.
 */
static bool tls_peer_still_valid(struct tls_transport *t)
{
    const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&t->ssl);

    if (!t->ctx->verify_peer)
        return true;
    return peer && mbedtls_ssl_get_verify_result(&t->ssl) == 0 &&
           !mbedtls_x509_time_is_past(&peer->valid_to) &&
           !mbedtls_x509_time_is_future(&peer->valid_from);
}

/* After the handshake: the verified certificate's CN or subject (a PSK identity wins). */
static void tls_set_cert_identity(struct tls_transport *t)
{
    const mbedtls_x509_crt *peer;

    if (t->identity)
        return;
    peer = mbedtls_ssl_get_peer_cert(&t->ssl);
    if (!peer || mbedtls_ssl_get_verify_result(&t->ssl) != 0)
        return;
    t->identity = t->ctx->id == TLS_ID_SUBJECT ? tls__subject(&peer->subject)
                                               : tls__common_name(&peer->subject);
}

/* ---- idle memory ------------------------------------------------------------------------ */

/* Give the record buffers back when nothing is in flight either way (tls_park.c). */
static void tls_park_if_idle(struct tls_transport *t)
{
    if (t->done && !t->rbuf && !t->pending_len && tls__park_idle(&t->ssl))
        tls__park(&t->ssl, &t->park);
}

/* ---- handshake threads ------------------------------------------------------------------ */

static void tls_free(struct tls_transport *t);

static int tls_handshake_run(struct tls_transport *t)
{
    return tls__kex_handshake(&t->ssl, &t->kex, t->ctx->kex_key, &t->ctx->key);
}

static void tls_job_run(struct tls_job *j)
{
    struct tls_transport *t =
        (struct tls_transport *)((char *)j - offsetof(struct tls_transport, job));

    /* a connection closed while it waited (its CONNECT timeout, say, in a storm) costs no
     * public-key work */
    t->step_ret = atomic_load_explicit(&t->abandoned, memory_order_relaxed)
                      ? MBEDTLS_ERR_SSL_CONN_EOF
                      : tls_handshake_run(t);
}

static void tls_job_done(struct tls_job *j, bool ran)
{
    struct tls_transport *t =
        (struct tls_transport *)((char *)j - offsetof(struct tls_transport, job));

    if (atomic_load_explicit(&t->abandoned, memory_order_relaxed)) {
        tls_free(t);
        return;
    }
    t->step = ran ? TLS_STEP_READY : TLS_STEP_NONE;
    if (ran)
        tls__pool_fire(t->base.fd);
}

/*
 * One step of the handshake: on a worker when there are any (the answer comes back through
 * tls_job_done and the next call), else here. MBEDTLS_ERR_SSL_ASYNC_IN_PROGRESS: submitted.
 */
static int tls_handshake_step(struct tls_transport *t)
{
    int ret;

    if (t->step == TLS_STEP_READY) {
        t->step = TLS_STEP_NONE;
        ret = t->step_ret;
    } else if (t->step == TLS_STEP_QUEUED) {
        ret = MBEDTLS_ERR_SSL_ASYNC_IN_PROGRESS;
    } else if (tls__unpark(&t->ssl, &t->park) != 0) {
        ret = MBEDTLS_ERR_SSL_ALLOC_FAILED; /* the buffers: here, on the loop thread */
    } else if (tls__pool_active()) {
        t->step = TLS_STEP_QUEUED;
        tls__pool_submit(&t->job);
        ret = MBEDTLS_ERR_SSL_ASYNC_IN_PROGRESS;
    } else {
        ret = tls_handshake_run(t);
    }
    return ret;
}

/* ---- transport ops ---------------------------------------------------------------------- */

static int tls_handshake(struct transport *base)
{
    struct tls_transport *t = (struct tls_transport *)base;
    int ret, rc = 0;

    if (t->done)
        goto out;
    ret = tls_handshake_step(t);
    if (ret == MBEDTLS_ERR_SSL_ASYNC_IN_PROGRESS) {
        t->need = 0; /* nothing to watch until the worker hands the step back */
        rc = -EAGAIN;
        goto out;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
        t->need = ret == MBEDTLS_ERR_SSL_WANT_READ ? CAIRN_EV_READ : CAIRN_EV_WRITE;
        rc = -EAGAIN;
        goto out;
    }
    if (ret != 0) {
        metrics_g.tls_failures++;
        if (!tls_quiet_error(ret))
            tls__log_error(t->base.fd, "handshake", ret, mbedtls_ssl_get_verify_result(&t->ssl));
        rc = tls_errno(t, ret);
        goto out;
    }
    if (!tls_peer_still_valid(t)) {
        metrics_g.tls_failures++;
        tls__log_error(t->base.fd, "resumption", MBEDTLS_ERR_X509_CERT_VERIFY_FAILED,
                       MBEDTLS_X509_BADCERT_EXPIRED);
        rc = -EACCES;
        goto out;
    }
    t->done = true;
    t->need = 0;
    metrics_g.tls_handshakes++;
    tls_set_cert_identity(t);
    tls_park_if_idle(t);
out:
    return rc;
}

/* One mbedtls_ssl_read(): bytes (> 0), 0 at the end, or a negative -errno / -EAGAIN. */
static ssize_t tls_read_one(struct tls_transport *t, void *buf, size_t len)
{
    int ret = mbedtls_ssl_read(&t->ssl, buf, len);

    if (ret > 0)
        return ret;
    if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || ret == MBEDTLS_ERR_SSL_CONN_EOF)
        return 0;
    if (ret == MBEDTLS_ERR_SSL_WANT_READ)
        return -EAGAIN;
    if (ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
        t->need = CAIRN_EV_WRITE;
        return -EAGAIN;
    }
    if (!tls_quiet_error(ret))
        tls__log_error(t->base.fd, "read", ret, 0);
    return tls_errno(t, ret);
}

/*
 * As many records as fit into buf (mbedtls_ssl_read gives one record at a time), so a burst of
 * small records is decoded in one pass. An end or error after some bytes is kept for the next
 * call.
 */
static ssize_t tls_read(struct transport *base, void *buf, size_t len)
{
    struct tls_transport *t = (struct tls_transport *)base;
    size_t total = 0;
    ssize_t n = 0;

    t->need = 0;
    if (t->read_err != 0) {
        n = t->read_err == 1 ? 0 : t->read_err;
        goto out;
    }
    if (tls__unpark(&t->ssl, &t->park) != 0) {
        n = -ENOMEM;
        goto out;
    }
    while (total < len) {
        n = tls_read_one(t, (unsigned char *)buf + total, len - total);
        if (n <= 0)
            break;
        total += (size_t)n;
    }
    if (total > 0 && n <= 0 && n != -EAGAIN)
        t->read_err = n == 0 ? 1 : (int)n; /* 1: the end */
    if (n == -EAGAIN && t->need == 0)
        tls_park_if_idle(t);
    if (total > 0)
        n = (ssize_t)total;
out:
    return n;
}

/* Skip n bytes of the iovec array (position *k, *off). */
static void tls_iov_advance(const struct iovec *iov, int iovcnt, int *k, size_t *off, size_t n)
{
    while (n > 0 && *k < iovcnt) {
        size_t left = iov[*k].iov_len - *off;

        if (n < left) {
            *off += n;
            return;
        }
        n -= left;
        (*k)++;
        *off = 0;
    }
    while (*k < iovcnt && iov[*k].iov_len == *off) {
        (*k)++;
        *off = 0;
    }
}

/*
 * The next record's bytes from position (k, off): the iovec itself when it alone fills a
 * record or is the last; otherwise copied from as many iovecs as fit into the staging buffer.
 */
static const unsigned char *tls_iov_gather(const struct iovec *iov, int iovcnt, int k, size_t off,
                                           size_t *len)
{
    size_t left = iov[k].iov_len - off, n = 0;

    if (left >= TLS_STAGE || k == iovcnt - 1) {
        *len = left < TLS_STAGE ? left : TLS_STAGE;
        return (const unsigned char *)iov[k].iov_base + off;
    }
    for (; k < iovcnt && n < TLS_STAGE; k++, off = 0) {
        size_t take = iov[k].iov_len - off;

        if (take > TLS_STAGE - n)
            take = TLS_STAGE - n;
        memcpy(tls_stage + n, (const unsigned char *)iov[k].iov_base + off, take);
        n += take;
    }
    *len = n;
    return tls_stage;
}

static ssize_t tls_writev(struct transport *base, const struct iovec *iov, int iovcnt)
{
    struct tls_transport *t = (struct tls_transport *)base;
    size_t total = 0, off = 0;
    int k = 0;
    ssize_t rc;

    if (t->pending_len) {
        size_t offered = 0;

        for (int i = 0; i < iovcnt; i++)
            offered += iov[i].iov_len;
        if (offered < t->pending_len) {
            rc = -EPROTO; /* the caller must re-offer the bytes of the record in flight */
            goto out;
        }
    }
    if (tls__unpark(&t->ssl, &t->park) != 0) {
        rc = -ENOMEM;
        goto out;
    }
    tls_iov_advance(iov, iovcnt, &k, &off, 0);
    while (k < iovcnt) {
        const unsigned char *p;
        size_t len;
        int ret;

        if (t->pending_len) {
            /* Finish the record already built; mbedTLS does not read the buffer again. */
            p = tls_stage;
            len = t->pending_len;
        } else {
            p = tls_iov_gather(iov, iovcnt, k, off, &len);
        }
        ret = mbedtls_ssl_write(&t->ssl, p, len);
        if (ret == MBEDTLS_ERR_SSL_WANT_WRITE || ret == MBEDTLS_ERR_SSL_WANT_READ) {
            t->pending_len = len;
            break;
        }
        if (ret < 0) {
            if (total > 0)
                break; /* report what went; the error comes back on the next call */
            if (!tls_quiet_error(ret))
                tls__log_error(t->base.fd, "write", ret, 0);
            rc = tls_errno(t, ret);
            goto out;
        }
        t->pending_len = 0;
        total += (size_t)ret;
        tls_iov_advance(iov, iovcnt, &k, &off, (size_t)ret);
    }
    rc = total > 0 ? (ssize_t)total : -EAGAIN;
    if (k == iovcnt)
        tls_park_if_idle(t);
out:
    return rc;
}

static size_t tls_pending(const struct transport *base)
{
    const struct tls_transport *t = (const struct tls_transport *)base;
    size_t n = mbedtls_ssl_get_bytes_avail(&t->ssl);

    /* A record may wait undecrypted in mbedTLS's input buffer or in rbuf, or an end the last
     * read kept: one more read handles it. */
    if (n == 0 && t->done && (t->rbuf || t->read_err || mbedtls_ssl_check_pending(&t->ssl)))
        n = 1;
    return n;
}

static int tls_want_events(const struct transport *base, int caller_wants)
{
    const struct tls_transport *t = (const struct tls_transport *)base;
    int ev = caller_wants;

    if (!t->done)
        return t->step != TLS_STEP_NONE ? 0 : t->need ? t->need : CAIRN_EV_READ;
    if (t->need == CAIRN_EV_WRITE || t->pending_len)
        ev |= CAIRN_EV_WRITE;
    return ev;
}

static const char *tls_identity(const struct transport *base)
{
    return ((const struct tls_transport *)base)->identity;
}

static void tls_free(struct tls_transport *t)
{
    mbedtls_platform_zeroize(&t->kex, sizeof(t->kex));
    tls__park_release(&t->ssl, &t->park);
    mbedtls_ssl_free(&t->ssl);
    close(t->base.fd);
    tls_ctx_unref(t->ctx);
    free(t->identity);
    free(t->rbuf);
    free(t);
}

static void tls_close(struct transport *base)
{
    struct tls_transport *t = (struct tls_transport *)base;

    if (!t)
        return;
    if (t->step == TLS_STEP_QUEUED) {
        /* a worker has it or will: tls_job_done frees it */
        atomic_store_explicit(&t->abandoned, true, memory_order_relaxed);
        return;
    }
    if (t->done && !t->pending_len && tls__unpark(&t->ssl, &t->park) == 0)
        mbedtls_ssl_close_notify(&t->ssl); /* best effort: the socket is non-blocking */
    tls_free(t);
}

static const struct transport_ops tls_ops = {
    .handshake = tls_handshake,
    .read = tls_read,
    .writev = tls_writev,
    .pending = tls_pending,
    .want_events = tls_want_events,
    .identity = tls_identity,
    .close = tls_close,
};

mbedtls_ssl_context *tls__transport_ssl(struct transport *t)
{
    return &((struct tls_transport *)t)->ssl;
}

struct transport *tls_transport_new(struct tls_ctx *ctx, int fd)
{
    struct tls_transport *t = calloc(1, sizeof(*t));

    if (!t)
        goto fail;
    t->base.ops = &tls_ops;
    t->base.fd = fd;
    mbedtls_ssl_init(&t->ssl);
    if (mbedtls_ssl_setup(&t->ssl, &ctx->conf) != 0) {
        mbedtls_ssl_free(&t->ssl);
        free(t);
        goto fail;
    }
    tls__park_setup(&t->ssl, &t->park); /* no buffers until the client speaks */
    mbedtls_ssl_set_bio(&t->ssl, t, tls_bio_send, tls_bio_recv, NULL);
    t->ctx = tls_ctx_ref(ctx);
    t->job.run = tls_job_run;
    t->job.done = tls_job_done;
    t->need = CAIRN_EV_READ; /* the client speaks first */
    return &t->base;
fail:
    close(fd);
    return NULL;
}
