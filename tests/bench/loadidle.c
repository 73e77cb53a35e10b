/*
 * loadidle.c — load_idle(): many idle MQTT connections and the broker's memory with them
 * (see loadgen.h). Connections are opened a few hundred at a time through one epoll set and
 * kept open until the broker's VmRSS is read; they close with SO_LINGER 0 (a reset), so
 * 100,000 of them leave no TIME_WAIT behind to starve the next broker of ports.
 */
#define _GNU_SOURCE
#include "loadgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchnet.h"
#include "mqtt.h"

#define IDLE_PARALLEL 64     /* being set up at once: below every broker's listen backlog */
#define IDLE_PER_ADDR 10000  /* per source address: well below the 28,232 ports of 32768-60999 */
#define IDLE_QUIET    10.0   /* s without a new CONNACK that ends the attempt */
#define IDLE_SETTLE   500000 /* us: let the broker finish its allocations before reading RSS */

enum idle_state { IDLE_CONNECTING, IDLE_CONNACK, IDLE_OPEN };

struct idle_conn {
    int fd;
    uint8_t state;
    uint8_t got; /* CONNACK bytes so far */
    uint8_t ack[4];
};

struct idle_ctx {
    int ep;
    int port;
    struct idle_conn *c;
    int started, in_progress, open;
    struct load_idle_result *res;
};

static void idle_fail(struct idle_ctx *x, const char *what, int err)
{
    if (!x->res->err[0])
        snprintf(x->res->err, sizeof(x->res->err), "connection %d: %s: %s", x->started, what,
                 strerror(err));
}

/*
 * Start connection i from 127.0.0.(1 + i / IDLE_PER_ADDR). IP_BIND_ADDRESS_NO_PORT leaves the
 * port to connect(), which then only needs the whole 4-tuple to be unique.
 */
static int idle_start(struct idle_ctx *x, int i)
{
    struct idle_conn *c = &x->c[i];
    struct sockaddr_in src = {.sin_family = AF_INET};
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)x->port)};
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};
    int one = 1;
    int rc = -1;

    src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1u * (uint32_t)(i / IDLE_PER_ADDR));
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        idle_fail(x, "socket", errno);
        goto out;
    }
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
        (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS) ||
        epoll_ctl(x->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        idle_fail(x, "connect", errno);
        close(c->fd);
        c->fd = -1;
        goto out;
    }
    c->state = IDLE_CONNECTING;
    x->in_progress++;
    rc = 0;
out:
    return rc;
}

static int idle_event(struct idle_ctx *x, int i, uint32_t events)
{
    struct idle_conn *c = &x->c[i];
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    int rc = -1;

    if (c->state == IDLE_CONNECTING) {
        struct mqtt_connect m = {.protocol_name = {(const uint8_t *)"MQTT", 4},
                                 .protocol_level = 4,
                                 .clean_session = true};
        char id[24];
        uint8_t buf[64];
        int err = 0;
        socklen_t len = sizeof(err);
        size_t n;

        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            idle_fail(x, "connect", err);
            goto out;
        }
        snprintf(id, sizeof(id), "idle%d", i);
        m.client_id.p = (const uint8_t *)id;
        m.client_id.len = strlen(id);
        n = mqtt_encode_connect(buf, sizeof(buf), &m);
        if (send(c->fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n ||
            epoll_ctl(x->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
            idle_fail(x, "CONNECT", errno);
            goto out;
        }
        c->state = IDLE_CONNACK;
    } else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        ssize_t n = c->state == IDLE_CONNACK ? read(c->fd, c->ack + c->got, 4u - c->got) : 0;
        if (n <= 0) {
            idle_fail(x, c->state == IDLE_OPEN ? "closed by the broker" : "CONNACK",
                      n < 0 ? errno : ECONNRESET);
            goto out;
        }
        c->got = (uint8_t)(c->got + n);
        if (c->got == 4) {
            if (c->ack[0] != 0x20 || c->ack[3] != 0) {
                idle_fail(x, "CONNACK refused", ECONNREFUSED);
                goto out;
            }
            c->state = IDLE_OPEN;
            x->in_progress--;
            x->open++;
        }
    }
    rc = 0;
out:
    return rc;
}

/* Open connections until n are open, one fails, or none completes for IDLE_QUIET seconds. */
static void idle_connect_all(struct idle_ctx *x, int n)
{
    struct epoll_event ev[256];
    double last = bench_now();

    while (x->open < n && !x->res->err[0] && bench_now() - last < IDLE_QUIET) {
        int k;
        while (x->started < n && x->in_progress < IDLE_PARALLEL)
            if (idle_start(x, x->started++) < 0)
                return;
        k = epoll_wait(x->ep, ev, 256, 100);
        for (int j = 0; j < k; j++) {
            int before = x->open;
            if (idle_event(x, (int)ev[j].data.u32, ev[j].events) < 0)
                return;
            if (x->open > before)
                last = bench_now();
        }
    }
    if (x->open < n && !x->res->err[0])
        snprintf(x->res->err, sizeof(x->res->err), "no CONNACK for %.0f s", IDLE_QUIET);
}

/* Is any open connection closed by now? (the broker may drop what it cannot hold) */
static int idle_still_open(struct idle_ctx *x)
{
    struct epoll_event ev[256];
    int k;
    int closed = 0;

    while ((k = epoll_wait(x->ep, ev, 256, 0)) > 0)
        for (int j = 0; j < k; j++) {
            struct idle_conn *c = &x->c[ev[j].data.u32];
            epoll_ctl(x->ep, EPOLL_CTL_DEL, c->fd, NULL);
            if (c->state == IDLE_OPEN)
                closed++;
        }
    return x->open - closed;
}

int load_idle(int port, pid_t broker_pid, int n, struct load_idle_result *res)
{
    struct idle_ctx x = {.ep = epoll_create1(EPOLL_CLOEXEC), .port = port, .res = res};
    struct linger lg = {1, 0};
    double t0;

    memset(res, 0, sizeof(*res));
    x.c = calloc((size_t)n, sizeof(*x.c));
    if (x.ep < 0 || !x.c) {
        snprintf(res->err, sizeof(res->err), "out of memory");
        goto out;
    }
    res->rss_before = bench_proc_kb(broker_pid, "VmRSS");
    t0 = bench_now();
    idle_connect_all(&x, n);
    res->conn_per_s = x.open / (bench_now() - t0);
    usleep(IDLE_SETTLE); /* not synchronisation: every CONNACK has arrived; allocator settling */
    res->rss_with = bench_proc_kb(broker_pid, "VmRSS");
    res->reached = idle_still_open(&x);
    if (res->reached < x.open && !res->err[0])
        snprintf(res->err, sizeof(res->err), "the broker closed %d connections",
                 x.open - res->reached);
    if (res->reached > 0)
        res->kib_each = (double)(res->rss_with - res->rss_before) / res->reached;
out:
    for (int i = 0; x.c && i < x.started; i++)
        if (x.c[i].fd >= 0) {
            setsockopt(x.c[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            close(x.c[i].fd);
        }
    free(x.c);
    if (x.ep >= 0)
        close(x.ep);
    return res->reached == n ? 0 : -1;
}
