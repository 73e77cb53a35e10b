/*
 * harness_raw.c — a raw-socket MQTT 3.1.1 client for the tests that need exact bytes: protocol
 * violations, DUP flags, acks withheld on purpose, resends. It encodes and decodes on its own
 * (it does not link the codec under test, so a codec bug cannot hide itself).
 *
 * Reads poll() with a deadline; a packet is read whole (fixed header, remaining length, body)
 * or not at all. raw_pkt owns its body; PUBLISH fields point into it.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * Packets read ahead while waiting for another (a PUBLISH that arrives before the PUBREL being
 * awaited): kept per fd in arrival order and returned first by raw_read_packet(). A new
 * connection drops what an earlier socket with the same fd number left.
 */
struct raw_pending {
    int fd;
    struct raw_pkt p;
};

static struct raw_pending *raw_pending; /* grown by raw_pending_push(), never shrunk */
static int raw_npending, raw_pending_cap;

static bool raw_pending_pop(int fd, struct raw_pkt *p)
{
    for (int i = 0; i < raw_npending; i++) {
        if (raw_pending[i].fd == fd) {
            *p = raw_pending[i].p;
            memmove(&raw_pending[i], &raw_pending[i + 1],
                    (size_t)(raw_npending - i - 1) * sizeof(raw_pending[0]));
            raw_npending--;
            return true;
        }
    }
    return false;
}

/* Takes ownership of *p (left empty). -1 when out of memory (p freed). */
static int raw_pending_push(int fd, struct raw_pkt *p)
{
    if (raw_npending == raw_pending_cap) {
        int cap = raw_pending_cap ? raw_pending_cap * 2 : 256;
        struct raw_pending *bigger = realloc(raw_pending, (size_t)cap * sizeof(*bigger));

        if (!bigger) {
            raw_pkt_free(p);
            return -1;
        }
        raw_pending = bigger;
        raw_pending_cap = cap;
    }
    raw_pending[raw_npending].fd = fd;
    raw_pending[raw_npending].p = *p;
    raw_npending++;
    memset(p, 0, sizeof(*p));
    p->pid = -1;
    return 0;
}

static void raw_pending_drop(int fd)
{
    struct raw_pkt p;

    while (raw_pending_pop(fd, &p))
        raw_pkt_free(&p);
}

int raw_connect(const struct broker *b)
{
    return raw_connect_addr("127.0.0.1", broker_port(b));
}

int raw_send(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    int rc = 0;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = -errno;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    return rc;
}

/*
 * Read exactly len bytes by the deadline: 1 done, 0 timeout, -1 closed or error. A deadline
 * already passed still polls once without waiting, so timeout 0 means "if available now".
 */
static int raw_read_full(int fd, uint8_t *buf, size_t len, uint64_t deadline)
{
    size_t got = 0;
    int rc = 1;

    while (got < len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        uint64_t now = t_now_ms();
        ssize_t n;
        int pr = poll(&pfd, 1, now >= deadline ? 0 : (int)(deadline - now));

        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            rc = -1;
            break;
        }
        if (pr == 0) {
            rc = 0;
            break;
        }
        n = recv(fd, buf + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = -1;
            break;
        }
        got += (size_t)n;
    }
    return rc;
}

void raw_pkt_free(struct raw_pkt *p)
{
    free(p->body);
    free(p->topic);
    memset(p, 0, sizeof(*p));
    p->pid = -1;
}

static void raw_parse(struct raw_pkt *p)
{
    int type = p->first >> 4;

    p->pid = -1;
    if (type == RAW_PUBLISH && p->len >= 2) {
        size_t tl = (size_t)p->body[0] << 8 | p->body[1], off = 2 + tl;

        p->qos = (p->first >> 1) & 3;
        p->dup = (p->first >> 3) & 1;
        p->retain = p->first & 1;
        if (off > p->len)
            return;
        p->topic = malloc(tl + 1);
        if (p->topic) {
            memcpy(p->topic, p->body + 2, tl);
            p->topic[tl] = '\0';
        }
        if (p->qos > 0 && off + 2 <= p->len) {
            p->pid = p->body[off] << 8 | p->body[off + 1];
            off += 2;
        }
        p->payload = p->body + off;
        p->payload_len = p->len - off;
    } else if (type >= RAW_PUBACK && type <= RAW_UNSUBACK && type != RAW_SUBSCRIBE &&
               type != RAW_UNSUBSCRIBE && p->len >= 2) {
        p->pid = p->body[0] << 8 | p->body[1];
    }
}

/* Read one packet from the socket itself (not the read-ahead queue). */
static int raw_read_socket(int fd, struct raw_pkt *p, int timeout_ms)
{
    uint64_t deadline = t_now_ms() + (uint64_t)timeout_ms;
    uint8_t byte;
    size_t len = 0;
    int rc, shift = 0;

    memset(p, 0, sizeof(*p));
    p->pid = -1;
    rc = raw_read_full(fd, &p->first, 1, deadline);
    if (rc != 1)
        goto out;
    do {
        rc = raw_read_full(fd, &byte, 1, deadline + 5000);
        if (rc != 1) {
            rc = -1;
            goto out;
        }
        len |= (size_t)(byte & 0x7f) << shift;
        shift += 7;
    } while ((byte & 0x80) && shift < 28);
    p->body = malloc(len ? len : 1);
    p->len = len;
    if (!p->body) {
        rc = -1;
        goto out;
    }
    /* Once the header arrived, the rest comes right after it: a generous separate deadline. */
    rc = raw_read_full(fd, p->body, len, t_now_ms() + 10000);
    if (rc != 1) {
        rc = -1;
        goto out;
    }
    raw_parse(p);
out:
    return rc;
}

int raw_read_packet(int fd, struct raw_pkt *p, int timeout_ms)
{
    memset(p, 0, sizeof(*p));
    p->pid = -1;
    if (raw_pending_pop(fd, p))
        return 1;
    return raw_read_socket(fd, p, timeout_ms);
}

int raw_expect_close(int fd, int timeout_ms)
{
    uint64_t deadline = t_now_ms() + (uint64_t)timeout_ms;
    int rc = -1;

    for (;;) {
        struct raw_pkt p;
        uint64_t now = t_now_ms();
        int r;

        if (now >= deadline)
            break;
        r = raw_read_packet(fd, &p, (int)(deadline - now));
        raw_pkt_free(&p);
        if (r < 0) {
            rc = 0;
            break;
        }
    }
    return rc;
}

/* Append helpers over a bounded buffer; *ok turns false on overflow. */
struct raw_w {
    uint8_t *b;
    size_t n, cap;
    bool ok;
};

static void raw_put(struct raw_w *w, const void *src, size_t len)
{
    if (!w->ok || w->n + len > w->cap) {
        w->ok = false;
        return;
    }
    memcpy(w->b + w->n, src, len);
    w->n += len;
}

static void raw_put8(struct raw_w *w, unsigned v)
{
    uint8_t b = (uint8_t)v;

    raw_put(w, &b, 1);
}

static void raw_put16(struct raw_w *w, unsigned v)
{
    raw_put8(w, v >> 8);
    raw_put8(w, v & 0xff);
}

static void raw_put_str(struct raw_w *w, const char *s, size_t len)
{
    raw_put16(w, (unsigned)len);
    raw_put(w, s, len);
}

/* Move the body (built at offset 5) right after a fixed header with its remaining length. */
static size_t raw_finish(struct raw_w *w, unsigned first)
{
    uint8_t hdr[5];
    size_t body = w->n - 5, rem = body, h = 0;

    if (!w->ok)
        return 0;
    hdr[h++] = (uint8_t)first;
    do {
        uint8_t d = rem & 0x7f;

        rem >>= 7;
        hdr[h++] = (uint8_t)(d | (rem ? 0x80 : 0));
    } while (rem && h < 5);
    memmove(w->b + h, w->b + 5, body);
    memcpy(w->b, hdr, h);
    return h + body;
}

size_t raw_build_connect(uint8_t *buf, size_t cap, const struct raw_conn_opts *o)
{
    struct raw_w w = {.b = buf, .n = 5, .cap = cap, .ok = cap >= 5};
    int level = o->level ? o->level : 4;
    unsigned flags = o->persistent ? 0 : 0x02;
    const char *id = o->id ? o->id : "";

    if (o->will_topic)
        flags |= 0x04 | (unsigned)(o->will_qos << 3) | (o->will_retain ? 0x20 : 0);
    if (o->user)
        flags |= 0x80;
    if (o->pass)
        flags |= 0x40;
    if (level == 3)
        raw_put_str(&w, "MQIsdp", 6);
    else
        raw_put_str(&w, "MQTT", 4);
    raw_put8(&w, (unsigned)level);
    raw_put8(&w, flags);
    raw_put16(&w, (unsigned)o->keepalive);
    raw_put_str(&w, id, strlen(id));
    if (o->will_topic) {
        const char *wp = o->will_payload ? o->will_payload : "";

        raw_put_str(&w, o->will_topic, strlen(o->will_topic));
        raw_put_str(&w, wp, strlen(wp));
    }
    if (o->user)
        raw_put_str(&w, o->user, strlen(o->user));
    if (o->pass)
        raw_put_str(&w, o->pass, strlen(o->pass));
    return raw_finish(&w, RAW_CONNECT << 4);
}

size_t raw_build_publish(uint8_t *buf, size_t cap, const char *topic, const void *payload,
                         size_t len, int qos, bool retain, bool dup, int pid)
{
    struct raw_w w = {.b = buf, .n = 5, .cap = cap, .ok = cap >= 5};
    unsigned first = RAW_PUBLISH << 4 | (unsigned)qos << 1 | (retain ? 1 : 0) | (dup ? 8 : 0);

    raw_put_str(&w, topic, strlen(topic));
    if (qos > 0)
        raw_put16(&w, (unsigned)pid);
    raw_put(&w, payload, len);
    return raw_finish(&w, first);
}

int raw_mqtt_handshake(int fd, const struct raw_conn_opts *o, int *rc, int *sp)
{
    uint8_t buf[1024];
    struct raw_pkt p = {0};
    size_t n = raw_build_connect(buf, sizeof(buf), o);
    int ret = -1;

    if (n == 0 || raw_send(fd, buf, n) != 0)
        goto out;
    if (raw_read_packet(fd, &p, 10000) != 1 || p.first != RAW_CONNACK << 4 || p.len != 2)
        goto out;
    if (rc)
        *rc = p.body[1];
    if (sp)
        *sp = p.body[0] & 1;
    ret = 0;
out:
    raw_pkt_free(&p);
    return ret;
}

int raw_mqtt_connect(const struct broker *b, const struct raw_conn_opts *o, int *rc, int *sp)
{
    int fd = raw_connect(b);

    if (fd >= 0 && raw_mqtt_handshake(fd, o, rc, sp) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

int raw_connect_addr(const char *addr, int port)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    bool v6 = strchr(addr, ':') != NULL;
    socklen_t len = v6 ? sizeof(*a6) : sizeof(*a4);
    int fd = -1, one = 1, rc;

    if (v6) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        rc = inet_pton(AF_INET6, addr, &a6->sin6_addr);
    } else {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        rc = inet_pton(AF_INET, addr, &a4->sin_addr);
    }
    if (rc != 1) {
        rc = -EINVAL;
        goto out;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        rc = -errno;
        close(fd);
        goto out;
    }
    raw_pending_drop(fd);
    rc = fd;
out:
    return rc;
}

int raw_subscribe(int fd, int pid, const char *filter, int qos)
{
    uint8_t buf[1024];
    struct raw_w w = {.b = buf, .n = 5, .cap = sizeof(buf), .ok = true};
    struct raw_pkt p = {0};
    size_t n;
    int granted = -1;

    raw_put16(&w, (unsigned)pid);
    raw_put_str(&w, filter, strlen(filter));
    raw_put8(&w, (unsigned)qos);
    n = raw_finish(&w, RAW_SUBSCRIBE << 4 | 2);
    if (n == 0 || raw_send(fd, buf, n) != 0)
        goto out;
    if (raw_expect(fd, RAW_SUBACK, &p, 10000) != 1 || p.len != 3 || p.pid != pid)
        goto out;
    granted = p.body[2];
out:
    raw_pkt_free(&p);
    return granted;
}

int raw_publish(int fd, const char *topic, const char *payload, int qos, bool retain, bool dup,
                int pid)
{
    size_t cap = strlen(topic) + strlen(payload) + 16, n;
    uint8_t *buf = malloc(cap);
    int rc = -ENOMEM;

    if (!buf)
        goto out;
    n = raw_build_publish(buf, cap, topic, payload, strlen(payload), qos, retain, dup, pid);
    rc = n ? raw_send(fd, buf, n) : -EINVAL;
out:
    free(buf);
    return rc;
}

int raw_send_ack(int fd, int type, int pid)
{
    uint8_t b[4] = {(uint8_t)(type << 4 | (type == RAW_PUBREL ? 2 : 0)), 2, (uint8_t)(pid >> 8),
                    (uint8_t)(pid & 0xff)};

    return raw_send(fd, b, sizeof(b));
}

int raw_send_disconnect(int fd)
{
    uint8_t b[2] = {RAW_DISCONNECT << 4, 0};

    return raw_send(fd, b, sizeof(b));
}

int raw_expect(int fd, int type, struct raw_pkt *p, int timeout_ms)
{
    int r = raw_read_packet(fd, p, timeout_ms);

    if (r == 1 && (p->first >> 4) != type) {
        t_note("raw: expected packet type %d, got 0x%02x (len %zu)", type, p->first, p->len);
        r = -1;
    }
    return r;
}

int raw_publish_flow(int fd, const char *topic, const char *payload, int qos, bool retain, int pid)
{
    struct raw_pkt p = {0};
    int rc = raw_publish(fd, topic, payload, qos, retain, false, pid);

    if (rc != 0 || qos == 0)
        goto out;
    rc = -1;
    if (raw_expect(fd, qos == 1 ? RAW_PUBACK : RAW_PUBREC, &p, 10000) != 1 || p.pid != pid)
        goto out;
    if (qos == 2) {
        raw_pkt_free(&p);
        if (raw_send_ack(fd, RAW_PUBREL, pid) != 0)
            goto out;
        if (raw_expect(fd, RAW_PUBCOMP, &p, 10000) != 1 || p.pid != pid)
            goto out;
    }
    rc = 0;
out:
    raw_pkt_free(&p);
    return rc;
}

int raw_recv_publish(int fd, struct raw_pkt *p, int timeout_ms, bool ack)
{
    struct raw_pkt rel = {0};
    int r = raw_expect(fd, RAW_PUBLISH, p, timeout_ms);

    if (r != 1 || !ack || p->qos == 0)
        goto out;
    r = -1;
    if (raw_send_ack(fd, p->qos == 1 ? RAW_PUBACK : RAW_PUBREC, p->pid) != 0)
        goto out;
    if (p->qos == 2) {
        /* Later PUBLISHes may come before the PUBREL: keep them for the next reads. */
        for (;;) {
            if (raw_read_socket(fd, &rel, 10000) != 1)
                goto out;
            if (rel.first >> 4 != RAW_PUBLISH)
                break;
            if (raw_pending_push(fd, &rel) != 0)
                goto out;
        }
        if (rel.first != (RAW_PUBREL << 4 | 2) || rel.pid != p->pid) {
            t_note("raw: want PUBREL %d, got 0x%02x pid %d", p->pid, rel.first, rel.pid);
            goto out;
        }
        if (raw_send_ack(fd, RAW_PUBCOMP, p->pid) != 0)
            goto out;
    }
    r = 1;
out:
    raw_pkt_free(&rel);
    return r;
}

int raw_unsubscribe(int fd, int pid, const char *filter)
{
    uint8_t buf[1024];
    struct raw_w w = {.b = buf, .n = 5, .cap = sizeof(buf), .ok = true};
    struct raw_pkt p = {0};
    size_t n;
    int rc = -1;

    raw_put16(&w, (unsigned)pid);
    raw_put_str(&w, filter, strlen(filter));
    n = raw_finish(&w, RAW_UNSUBSCRIBE << 4 | 2);
    if (n == 0 || raw_send(fd, buf, n) != 0)
        goto out;
    if (raw_expect(fd, RAW_UNSUBACK, &p, 10000) != 1 || p.pid != pid)
        goto out;
    rc = 0;
out:
    raw_pkt_free(&p);
    return rc;
}
