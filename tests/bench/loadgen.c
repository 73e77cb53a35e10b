/* loadgen.c — see loadgen.h: one run, closed loop (throughput) or paced (latency). */
#define _GNU_SOURCE
#include "loadgen_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "benchnet.h"
#include "loadbroker.h"
#include "mqtt.h"

#define LOAD_STALL 0.25 /* s without a delivery, window full: a stall (QoS 0: written off) */
#define LOAD_DRAIN 10.0 /* s at most to collect what is outstanding at the end */
#define LOAD_QUIET 3.0  /* s without a delivery that ends the drain (QoS 0 loss) */
#define LOAD_SETUP 15.0 /* s for every CONNACK and SUBACK */

/*
 * The closed loop: how many more messages may be written so that no subscriber has more than
 * the window outstanding. A message counts as settled once it or a later one from the same
 * publisher arrived (a QoS 0 loss does not close the window for good).
 */
static long load_allowance(struct load_ctx *x)
{
    long allow = x->spec->window;

    for (int s = 0; s < x->spec->nsub; s++) {
        long outstanding = 0;
        for (int p = 0; p < x->spec->npub; p++) {
            const struct load_track *t = &x->subs[s].track[p];
            outstanding += (long)(x->pubs[p].seq - (t->hi > t->floor ? t->hi : t->floor));
        }
        if (x->spec->window - outstanding < allow)
            allow = x->spec->window - outstanding;
    }
    return allow;
}

/* Share what the window allows among the publishers, a different one first each time. */
static void load_fill(struct load_ctx *x, double now)
{
    long allow = load_allowance(x);
    int npub = x->spec->npub;
    long batch = x->spec->window / 16 > 64 ? 64 : x->spec->window / 16;
    long chunk;

    /*
     * Write in batches (a sixteenth of the window, at most 64): a loopback send costs the
     * sender the receiver's network stack too, and one send per freed slot would make the
     * load tool the limit long before the broker.
     */
    batch = batch < 1 ? 1 : batch;
    if (allow < batch) {
        /*
         * Nothing arrives and the window is full. At QoS 0 the broker may have dropped the
         * window (MQTT allows it): write it off, or the loop would wait for ever. At QoS 1 and 2
         * nothing may be lost, so the loop waits: a real loss shows as a run that stops.
         */
        if (now - x->last_progress > LOAD_STALL && now - x->stall_at > LOAD_STALL) {
            for (int s = 0; x->spec->qos == 0 && s < x->spec->nsub; s++)
                for (int p = 0; p < npub; p++)
                    x->subs[s].track[p].floor = x->pubs[p].seq;
            x->res->stalls++;
            x->stall_at = now;
        }
        return;
    }
    chunk = allow / npub > batch ? allow / npub : batch;
    for (int k = 0; k < npub && allow > 0; k++)
        allow -= load__publish(x, &x->pubs[(x->rr + (unsigned)k) % (unsigned)npub],
                               chunk < allow ? chunk : allow, load__ns());
    x->rr++;
}

/* Rate mode: the timer fired; one message per period, each written at once with its time. */
static void load_tick(struct load_ctx *x)
{
    uint64_t n = 0;

    if (read(x->tfd, &n, sizeof(n)) != sizeof(n))
        return;
    for (uint64_t i = 0; i < n && i < 10000; i++)
        load__publish(x, &x->pubs[x->rr++ % (unsigned)x->spec->npub], 1, 0);
}

static int load_poll(struct load_ctx *x, int timeout_ms)
{
    struct epoll_event ev[256];
    int n = epoll_wait(x->ep, ev, 256, timeout_ms);

    if (n < 0 && errno != EINTR)
        load__fail(x, "epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n && !x->res->err[0]; i++) {
        struct load_conn *c = ev[i].data.ptr;
        if (!c) {
            load_tick(x);
            continue;
        }
        if (ev[i].events & EPOLLOUT) {
            if (c->state == LOAD_CONNECTING)
                load__connected(x, c);
            else
                load__flush(x, c);
        }
        if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            load__read(x, c);
    }
    return x->res->err[0] ? -1 : 0;
}

/* Open one connection (non-blocking; CONNECT goes out when it is writable). */
static int load_open(struct load_ctx *x, struct load_conn *c, bool sub, int index)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)x->spec->port)};
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    int one = 1;
    int rc = -1;

    c->sub = sub;
    c->index = index;
    c->state = LOAD_CONNECTING;
    c->pollout = true;
    snprintf(c->id, sizeof(c->id), "%.32s-%c%d", x->topic, sub ? 's' : 'p', index);
    c->in = malloc(LOAD_IN_CAP);
    c->out_cap = sub ? 64 * 1024 : 2 * LOAD_OUT_SOFT;
    c->out = malloc(c->out_cap);
    if (sub)
        c->track = calloc((size_t)x->spec->npub, sizeof(*c->track));
    else if (x->spec->qos)
        c->id_state = calloc(65536, 1);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (!c->in || !c->out || (sub && !c->track) || (!sub && x->spec->qos && !c->id_state) ||
        c->fd < 0) {
        load__fail(x, "%s: out of memory or descriptors", c->id);
        goto out;
    }
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if ((connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS) ||
        epoll_ctl(x->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        load__fail(x, "%s: connect: %s", c->id, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    return rc;
}

/* Every subscriber (and every publisher too when pubs) has its CONNACK (and SUBACK). */
static bool load_all_ready(const struct load_ctx *x, bool pubs)
{
    for (int i = 0; pubs && i < x->spec->npub; i++)
        if (x->pubs[i].state != LOAD_READY)
            return false;
    for (int i = 0; i < x->spec->nsub; i++)
        if (x->subs[i].state != LOAD_READY)
            return false;
    return true;
}

/* Every connection open, CONNACKed, subscribed; the publish template built. */
static int load_setup(struct load_ctx *x)
{
    static unsigned run;
    const struct load_spec *s = x->spec;
    struct mqtt_str topic;
    double end;
    int rc = -1;

    /* a topic and client ids of its own per run: a session a run leaves behind never matches */
    snprintf(x->topic, sizeof(x->topic), "lb%d-%u", (int)getpid() % 100000, ++run);
    topic.p = (const uint8_t *)x->topic;
    topic.len = strlen(x->topic);
    x->ep = epoll_create1(EPOLL_CLOEXEC);
    x->pubs = calloc((size_t)s->npub, sizeof(*x->pubs));
    x->subs = calloc((size_t)s->nsub, sizeof(*x->subs));
    x->tmpl_len =
        mqtt_encode_publish_header(NULL, 0, topic, (uint8_t)s->qos, false, s->payload, &x->pid_off);
    x->pay_off = x->tmpl_len;
    x->tmpl_len += s->payload;
    x->tmpl = malloc(x->tmpl_len);
    if (x->ep < 0 || !x->pubs || !x->subs || !x->tmpl || x->pay_off == 0) {
        load__fail(x, "setup: out of memory");
        goto out;
    }
    for (int i = 0; i < s->npub; i++)
        x->pubs[i].fd = -1;
    for (int i = 0; i < s->nsub; i++)
        x->subs[i].fd = -1;
    mqtt_encode_publish_header(x->tmpl, x->tmpl_len, topic, (uint8_t)s->qos, false, s->payload,
                               &x->pid_off);
    memset(x->tmpl + x->pay_off, 'x', s->payload);
    /* subscribers first, so that the first message already has all its subscribers */
    for (int i = 0; i < s->nsub; i++)
        if (load_open(x, &x->subs[i], true, i) < 0)
            goto out;
    for (end = bench_now() + LOAD_SETUP; !load_all_ready(x, false);)
        if (load_poll(x, 10) < 0 || bench_now() > end)
            goto out;
    for (int i = 0; i < s->npub; i++)
        if (load_open(x, &x->pubs[i], false, i) < 0)
            goto out;
    while (!load_all_ready(x, true))
        if (load_poll(x, 10) < 0 || bench_now() > end)
            goto out;
    rc = 0;
out:
    if (rc < 0)
        load__fail(x, "setup: connections not ready within %.0f s", LOAD_SETUP);
    return rc;
}

/* Everything written was delivered once to every subscriber and every flow completed. */
static bool load_settled(const struct load_ctx *x)
{
    for (int p = 0; p < x->spec->npub; p++) {
        if (x->pubs[p].inflight)
            return false;
        for (int s = 0; s < x->spec->nsub; s++)
            if (x->subs[s].track[p].distinct != x->pubs[p].seq)
                return false;
    }
    return true;
}

static void load_pace(struct load_ctx *x, bool on)
{
    long ns = on ? (long)(1e9 / x->spec->rate) : 0;
    struct itimerspec it = {{ns / 1000000000L, ns % 1000000000L},
                            {ns / 1000000000L, ns % 1000000000L}};

    timerfd_settime(x->tfd, 0, &it, NULL);
}

/* Warm up, measure the window, then stop writing and collect what is outstanding. */
static int load_drive(struct load_ctx *x)
{
    const struct load_spec *s = x->spec;
    struct load_cpu a = {0};
    struct load_cpu b = {0};
    double t0 = bench_now();
    double m0 = t0 + s->warmup;
    double m1 = m0 + s->seconds;
    double drain_end = 0;
    uint64_t d0 = 0;
    uint64_t d1 = 0;
    int phase = 0; /* 0 warm-up, 1 measured window, 2 drain */
    int rc = -1;

    x->last_progress = t0;
    if (s->rate > 0)
        load_pace(x, true);
    for (;;) {
        double now = bench_now();

        if (x->progress) {
            if (now - x->last_progress > x->res->max_gap)
                x->res->max_gap = now - x->last_progress;
            x->last_progress = now;
            x->progress = false;
        }
        if (phase == 0 && now >= m0) {
            load_cpu_snap(s->broker_pid, &a);
            d0 = x->delivered;
            x->measuring = true;
            phase = 1;
        } else if (phase == 1 && now >= m1) {
            load_cpu_snap(s->broker_pid, &b);
            d1 = x->delivered;
            x->measuring = false;
            phase = 2;
            drain_end = now + LOAD_DRAIN;
            if (s->rate > 0)
                load_pace(x, false);
        }
        if (phase == 2 &&
            (load_settled(x) || now >= drain_end || now - x->last_progress >= LOAD_QUIET))
            break;
        if (phase < 2 && s->rate <= 0)
            load_fill(x, now);
        if (load_poll(x, 1) < 0)
            goto out;
    }
    x->res->msgs = (double)(d1 - d0) / (b.wall - a.wall);
    load_cpu_delta(&a, &b, &x->res->cpu);
    rc = 0;
out:
    return rc;
}

static int load_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a;
    uint32_t y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static void load_tally(struct load_ctx *x)
{
    struct load_result *r = x->res;

    for (int p = 0; p < x->spec->npub; p++)
        r->published += x->pubs[p].seq;
    r->expected = r->published * (uint64_t)x->spec->nsub;
    for (int s = 0; s < x->spec->nsub; s++) {
        r->dup += x->subs[s].dup;
        r->reordered += x->subs[s].reordered;
        for (int p = 0; p < x->spec->npub; p++)
            r->lost += x->pubs[p].seq - x->subs[s].track[p].distinct;
    }
    if (x->nlat) {
        qsort(x->lat, x->nlat, sizeof(*x->lat), load_cmp_u32);
        r->samples = x->nlat;
        r->p50_us = x->lat[x->nlat / 2] / 1e3;
        r->p99_us = x->lat[(size_t)((double)x->nlat * 0.99)] / 1e3;
    }
}

/* A persistent subscriber's session goes: a clean-session CONNECT with its id removes it. */
static void load_forget(int port, const char *id)
{
    struct mqtt_connect m = {.protocol_name = {(const uint8_t *)"MQTT", 4},
                             .protocol_level = 4,
                             .clean_session = true,
                             .client_id = {(const uint8_t *)id, strlen(id)}};
    uint8_t buf[128];
    int fd = bench_connect_tcp(port);
    size_t got = 0;

    if (fd < 0)
        return;
    if (bench_write_all(fd, buf, mqtt_encode_connect(buf, sizeof(buf), &m)) == 0)
        while (got < 4) { /* CONNACK: the old session is gone */
            ssize_t n = read(fd, buf + got, 4 - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
    bench_write_all(fd, buf, mqtt_encode_empty(buf, sizeof(buf), MQTT_DISCONNECT));
    close(fd);
}

static void load_close(struct load_conn *c)
{
    static const uint8_t disconnect[2] = {0xe0, 0};

    if (c->fd >= 0) {
        if (c->state == LOAD_READY && send(c->fd, disconnect, 2, MSG_NOSIGNAL) < 0)
            c->state = LOAD_CONNECTING; /* best effort: the broker sees a close either way */
        close(c->fd);
    }
    free(c->in);
    free(c->out);
    free(c->track);
    free(c->id_state);
}

static void load_teardown(struct load_ctx *x)
{
    for (int i = 0; x->pubs && i < x->spec->npub; i++)
        load_close(&x->pubs[i]);
    for (int i = 0; x->subs && i < x->spec->nsub; i++) {
        load_close(&x->subs[i]);
        if (x->spec->persistent && x->subs[i].id[0])
            load_forget(x->spec->port, x->subs[i].id);
    }
    if (x->ep >= 0)
        close(x->ep);
    if (x->tfd >= 0)
        close(x->tfd);
    free(x->pubs);
    free(x->subs);
    free(x->tmpl);
    free(x->lat);
}

int load_run(const struct load_spec *spec, struct load_result *res)
{
    struct load_ctx x = {.spec = spec, .res = res, .ep = -1, .tfd = -1};
    int rc = -1;

    memset(res, 0, sizeof(*res));
    if (spec->npub < 1 || spec->npub > LOAD_MAX_PUBS || spec->nsub < 1 ||
        spec->nsub > LOAD_MAX_SUBS || spec->qos < 0 || spec->qos > 2 ||
        spec->payload < LOAD_MIN_PAYLOAD || spec->payload > LOAD_MAX_PAYLOAD ||
        (spec->rate <= 0 && spec->window < 1)) {
        load__fail(&x, "bad run parameters");
        goto out;
    }
    if (spec->rate > 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        x.lat_cap = (size_t)(spec->rate * spec->seconds * spec->nsub) + 1024;
        x.lat = malloc(x.lat_cap * sizeof(*x.lat));
        x.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (!x.lat || x.tfd < 0) {
            load__fail(&x, "timer: %s", strerror(errno));
            goto out;
        }
        if (load_setup(&x) < 0 || epoll_ctl(x.ep, EPOLL_CTL_ADD, x.tfd, &ev) < 0)
            goto out;
    } else if (load_setup(&x) < 0) {
        goto out;
    }
    if (load_drive(&x) < 0)
        goto out;
    load_tally(&x);
    rc = 0;
out:
    load_teardown(&x);
    return rc;
}
