/* tlsload.c — see tlsload.h. */
#define _GNU_SOURCE
#include "tlsload.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "benchnet.h"

#define TL_RECV_BUF (256 * 1024)
#define TL_EVENTS   1024

struct tl_engine {
    int epfd;
    int port;
    SSL_CTX *ctx;
    struct tl_handlers h;
    struct tl_conn **v;
    size_t n, cap;
    struct tl_conn *dirty;
    uint8_t *buf; /* TL_RECV_BUF: one recv's ciphertext, then plaintext */
};

static void tl_set_events(struct tl_conn *c)
{
    struct epoll_event ev = {.data.ptr = c};
    bool out = c->out_len || c->state == TL_CONNECTING;

    if (out == c->ev_out)
        return;
    c->ev_out = out;
    ev.events = EPOLLIN | (out ? EPOLLOUT : 0);
    epoll_ctl(c->e->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void tl_kill(struct tl_conn *c)
{
    if (c->state == TL_DEAD)
        return;
    c->state = TL_DEAD;
    epoll_ctl(c->e->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    SSL_free(c->ssl); /* frees both BIOs */
    c->ssl = NULL;
    free(c->in);
    free(c->out);
    c->in = c->out = NULL;
    c->in_len = c->in_cap = c->out_len = c->out_cap = 0;
    if (c->e->h.dead)
        c->e->h.dead(c);
}

static void tl_mark_dirty(struct tl_conn *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->dirty_next = c->e->dirty;
    c->e->dirty = c;
}

/* Move what OpenSSL wrote into the out buffer and send as much as the socket takes. */
static void tl_flush(struct tl_conn *c)
{
    size_t pend;
    ssize_t n;

    if (c->state == TL_DEAD)
        return;
    while ((pend = BIO_ctrl_pending(c->wb)) > 0) {
        if (c->out_len + pend > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap : 4096;
            uint8_t *p;

            while (cap < c->out_len + pend)
                cap *= 2;
            p = realloc(c->out, cap);
            if (!p) {
                tl_kill(c);
                return;
            }
            c->out = p;
            c->out_cap = cap;
        }
        c->out_len += (size_t)BIO_read(c->wb, c->out + c->out_len, (int)pend);
    }
    if (c->state == TL_CONNECTING)
        return;
    if (c->out_len == 0) {
        tl_set_events(c);
        return;
    }
    n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
        tl_kill(c);
        return;
    }
    if (n > 0) {
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    tl_set_events(c);
}

static int tl_write_record(struct tl_conn *c, const uint8_t *p, size_t len)
{
    if (c->state == TL_DEAD || SSL_write(c->ssl, p, (int)len) != (int)len)
        return -1;
    tl_mark_dirty(c);
    return 0;
}

static size_t tl_rl(uint8_t *p, size_t rem)
{
    size_t n = 0;

    do {
        p[n] = (uint8_t)(rem % 128);
        rem /= 128;
        if (rem)
            p[n] |= 128;
        n++;
    } while (rem);
    return n;
}

static int tl_send_connect(struct tl_conn *c, const char *id)
{
    uint8_t b[160];
    size_t idl = strlen(id), n = 0;

    if (idl > 100)
        return -1;
    b[n++] = 0x10;
    n += tl_rl(b + n, 10 + 2 + idl);
    memcpy(b + n, "\x00\x04MQTT\x04\x02\x00\x00", 10); /* clean session, no keepalive */
    n += 10;
    b[n++] = (uint8_t)(idl >> 8);
    b[n++] = (uint8_t)idl;
    memcpy(b + n, id, idl);
    return tl_write_record(c, b, n + idl);
}

static int tl_send_subscribe(struct tl_conn *c)
{
    uint8_t b[160];
    size_t tl = strlen(c->sub), n = 0;

    b[n++] = 0x82;
    n += tl_rl(b + n, 2 + 2 + tl + 1);
    b[n++] = 0;
    b[n++] = 1;
    b[n++] = (uint8_t)(tl >> 8);
    b[n++] = (uint8_t)tl;
    memcpy(b + n, c->sub, tl);
    n += tl;
    b[n++] = (uint8_t)c->sub_qos;
    return tl_write_record(c, b, n);
}

int tl_publish(struct tl_conn *c, const char *topic, int qos, const uint8_t *payload, size_t len)
{
    uint8_t b[2048];
    size_t tl = strlen(topic), n = 0;

    if (c->state != TL_READY || tl + len + 16 > sizeof(b))
        return -1;
    b[n++] = (uint8_t)(0x30 | qos << 1);
    n += tl_rl(b + n, 2 + tl + (qos ? 2 : 0) + len);
    b[n++] = (uint8_t)(tl >> 8);
    b[n++] = (uint8_t)tl;
    memcpy(b + n, topic, tl);
    n += tl;
    if (qos) {
        if (++c->next_pid == 0)
            c->next_pid = 1;
        b[n++] = (uint8_t)(c->next_pid >> 8);
        b[n++] = (uint8_t)c->next_pid;
    }
    memcpy(b + n, payload, len);
    return tl_write_record(c, b, n + len);
}

static void tl_ready(struct tl_conn *c)
{
    c->state = TL_READY;
    c->t_ready = bench_now();
    if (c->e->h.ready)
        c->e->h.ready(c);
}

/* One whole packet of c->in. */
static void tl_packet(struct tl_conn *c, const uint8_t *p, size_t hdr, size_t len)
{
    int type = p[0] >> 4;
    const uint8_t *v = p + hdr;
    size_t rem = len - hdr;

    if (type == 2 && c->state == TL_WAIT_CONNACK) {
        if (c->sub) {
            c->state = TL_WAIT_SUBACK;
            tl_send_subscribe(c);
        } else {
            tl_ready(c);
        }
    } else if (type == 9 && c->state == TL_WAIT_SUBACK) {
        tl_ready(c);
    } else if (type == 3 && rem >= 2) {
        int qos = (p[0] >> 1) & 3;
        size_t tl = (size_t)v[0] << 8 | v[1], off = 2 + tl + (qos ? 2 : 0);

        if (off > rem)
            return;
        if (qos == 1 && c->acks_len + 4 <= sizeof(c->acks)) {
            memcpy(c->acks + c->acks_len, "\x40\x02", 2);
            c->acks[c->acks_len + 2] = v[2 + tl];
            c->acks[c->acks_len + 3] = v[3 + tl];
            c->acks_len += 4;
        }
        if (c->e->h.publish)
            c->e->h.publish(c, v + off, rem - off, qos);
    } else if (type == 4 && c->e->h.puback) {
        c->e->h.puback(c);
    }
}

static void tl_parse(struct tl_conn *c)
{
    size_t off = 0;

    while (c->in_len - off >= 2 && c->state != TL_DEAD) {
        const uint8_t *p = c->in + off;
        size_t rem = 0, i = 1, mult = 1;
        bool whole = true;

        do {
            if (off + i >= c->in_len || i > 4) {
                whole = false;
                break;
            }
            rem += (p[i] & 127u) * mult;
            mult *= 128;
        } while (p[i++] & 128);
        if (!whole || c->in_len - off < i + rem)
            break;
        tl_packet(c, p, i, i + rem);
        off += i + rem;
        if (c->acks_len + 4 > sizeof(c->acks)) {
            tl_write_record(c, c->acks, c->acks_len);
            c->acks_len = 0;
        }
    }
    if (c->state == TL_DEAD)
        return;
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (c->acks_len) {
        tl_write_record(c, c->acks, c->acks_len);
        c->acks_len = 0;
    }
}

static void tl_handshake(struct tl_conn *c)
{
    int r = SSL_do_handshake(c->ssl);

    if (r == 1) {
        c->state = TL_WAIT_CONNACK;
        tl_send_connect(c, c->id);
    } else if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ) {
        tl_kill(c);
        return;
    }
    tl_mark_dirty(c);
}

static void tl_on_read(struct tl_conn *c)
{
    struct tl_engine *e = c->e;
    ssize_t n;
    int r;

    for (;;) {
        n = recv(c->fd, e->buf, TL_RECV_BUF, 0);
        if (n > 0) {
            BIO_write(c->rb, e->buf, (int)n);
            if (n < TL_RECV_BUF)
                break;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        tl_kill(c);
        return;
    }
    if (c->state == TL_HANDSHAKE) {
        tl_handshake(c);
        if (c->state == TL_HANDSHAKE || c->state == TL_DEAD)
            return;
    }
    while ((r = SSL_read(c->ssl, e->buf, TL_RECV_BUF)) > 0) {
        if (c->in_len + (size_t)r > c->in_cap) {
            size_t cap = c->in_cap ? c->in_cap : 4096;
            uint8_t *p;

            while (cap < c->in_len + (size_t)r)
                cap *= 2;
            p = realloc(c->in, cap);
            if (!p) {
                tl_kill(c);
                return;
            }
            c->in = p;
            c->in_cap = cap;
        }
        memcpy(c->in + c->in_len, e->buf, (size_t)r);
        c->in_len += (size_t)r;
        tl_parse(c);
        if (c->state == TL_DEAD)
            return;
    }
    if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
        tl_kill(c);
}

static void tl_on_event(struct tl_conn *c, uint32_t ev)
{
    if (c->state == TL_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof(err);

        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            tl_kill(c);
            return;
        }
        c->state = TL_HANDSHAKE;
        tl_handshake(c); /* the ClientHello */
        return;
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
        tl_on_read(c);
    if ((ev & EPOLLOUT) && c->state != TL_DEAD)
        tl_mark_dirty(c);
}

struct tl_engine *tl_engine_new(int port, const struct tl_handlers *h)
{
    struct tl_engine *e = calloc(1, sizeof(*e));

    if (!e)
        return NULL;
    e->port = port;
    e->h = *h;
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    e->buf = malloc(TL_RECV_BUF);
    e->ctx = SSL_CTX_new(TLS_client_method());
    if (e->epfd < 0 || !e->buf || !e->ctx) {
        tl_engine_free(e);
        return NULL;
    }
    SSL_CTX_set_max_proto_version(e->ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(e->ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(e->ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify(e->ctx, SSL_VERIFY_NONE, NULL);
    return e;
}

void tl_engine_free(struct tl_engine *e)
{
    if (!e)
        return;
    e->h.dead = NULL;
    for (size_t i = 0; i < e->n; i++) {
        tl_kill(e->v[i]);
        free(e->v[i]);
    }
    free(e->v);
    if (e->ctx)
        SSL_CTX_free(e->ctx);
    if (e->epfd >= 0)
        close(e->epfd);
    free(e->buf);
    free(e);
}

struct tl_conn *tl_connect(struct tl_engine *e, const char *client_id, const char *sub, int sub_qos,
                           int index, void *arg)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)e->port)};
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN};
    struct tl_conn *c = calloc(1, sizeof(*c));
    int one = 1;

    if (!c)
        return NULL;
    snprintf(c->id, sizeof(c->id), "%s", client_id);
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        struct tl_conn **v = realloc(e->v, cap * sizeof(*v));

        if (!v) {
            free(c);
            return NULL;
        }
        e->v = v;
        e->cap = cap;
    }
    c->e = e;
    c->index = index;
    c->arg = arg;
    c->sub = sub;
    c->sub_qos = sub_qos;
    c->state = TL_CONNECTING;
    c->ev_out = true;
    c->t_start = bench_now();
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        free(c);
        return NULL;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->ssl = SSL_new(e->ctx);
    c->rb = BIO_new(BIO_s_mem());
    c->wb = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rb || !c->wb ||
        (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS)) {
        close(c->fd);
        free(c);
        return NULL;
    }
    SSL_set_bio(c->ssl, c->rb, c->wb);
    SSL_set_connect_state(c->ssl);
    ev.data.ptr = c;
    epoll_ctl(e->epfd, EPOLL_CTL_ADD, c->fd, &ev);
    e->v[e->n++] = c;
    return c;
}

void tl_engine_flush(struct tl_engine *e)
{
    while (e->dirty) {
        struct tl_conn *c = e->dirty;

        e->dirty = c->dirty_next;
        c->dirty = false;
        tl_flush(c);
    }
}

int tl_engine_run(struct tl_engine *e, int timeout_ms)
{
    struct epoll_event ev[TL_EVENTS];
    int n = epoll_wait(e->epfd, ev, TL_EVENTS, timeout_ms);

    for (int i = 0; i < n; i++)
        tl_on_event(ev[i].data.ptr, ev[i].events);
    tl_engine_flush(e);
    return n;
}

size_t tl_engine_count(const struct tl_engine *e, enum tl_state s)
{
    size_t n = 0;

    for (size_t i = 0; i < e->n; i++)
        n += e->v[i]->state == s;
    return n;
}
