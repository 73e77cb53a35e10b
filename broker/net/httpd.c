/*
 * httpd.c — the HTTP front of websockets and http_metrics listeners (httpd.h).
 *
 * One struct httpd_conn per connection, on the loop by itself (not a conn: nothing MQTT
 * happens here). States: handshake (TLS) -> read the request head -> write the answer (and a
 * file's body, read in chunks as the socket takes them) -> drain, or hand over to the pool.
 */
#include "httpd.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "transport.h"
#include "ws.h"

#define HTTPD_HEADERS_DEFAULT 1024u /* Mosquitto's websockets_headers_size when 0 */
#define HTTPD_CHUNK           16384u
#define HTTPD_DRAIN_MS        1000u

enum httpd_state { HC_HANDSHAKE, HC_READ, HC_WRITE, HC_DRAIN };

struct httpd_conn {
    struct httpd *h;
    struct httpd_conn *prev;
    struct httpd_conn *next;
    struct transport *t;
    int fd;
    int listener;
    int events;
    enum httpd_state state;
    char *in; /* the request head as read (and frames sent right after an upgrade) */
    size_t in_len;
    size_t in_cap;
    size_t head_len;
    char *out; /* the answer's head, then each chunk of a file */
    size_t out_len;
    size_t out_off;
    int file; /* a static file being sent, or -1 */
    long long file_left;
    bool upgrade; /* hand over to the pool once out[] is written */
    struct timer *timer;
    char peer[64];
};

struct httpd {
    struct loop *loop;
    struct conn_pool *pool;
    const struct config *cfg;
    struct httpd_conn *all;
    char **dirs;    /* per listener: the real path of http_dir, or NULL */
    size_t *counts; /* per listener: connections here */
    size_t n;
    int (*render)(void *arg, char **body, size_t *len);
    void *render_arg;
};

/* ---- life of a connection ------------------------------------------------------------------ */

/* Leave the front: close the transport unless it was handed on (t NULL). */
static void httpd_conn_free(struct httpd_conn *hc)
{
    struct httpd *h = hc->h;

    loop_timer_cancel(h->loop, hc->timer);
    if (hc->t) {
        loop_del_fd(h->loop, hc->fd);
        hc->t->ops->close(hc->t);
    }
    if (hc->file >= 0)
        close(hc->file);
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        h->all = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    h->counts[hc->listener]--;
    free(hc->in);
    free(hc->out);
    free(hc);
}

static void httpd_timeout(void *arg)
{
    struct httpd_conn *hc = arg;

    hc->timer = NULL;
    if (hc->state != HC_DRAIN && hc->h->cfg->connection_messages)
        log_write(CAIRN_LOG_NOTICE, "client %s closed: no HTTP request in time", hc->peer);
    httpd_conn_free(hc);
}

static void httpd_update_events(struct httpd_conn *hc)
{
    int want = hc->state == HC_WRITE ? CAIRN_EV_WRITE : CAIRN_EV_READ;
    int ev = hc->t->ops->want_events(hc->t, want);

    if (ev != hc->events && loop_mod_fd(hc->h->loop, hc->fd, ev) == 0)
        hc->events = ev;
}

/*
 * The answer was written: an upgrade goes to the pool; anything else drains, then closes.
 * false when hc is gone.
 */
static bool httpd_done(struct httpd_conn *hc)
{
    struct httpd *h = hc->h;
    struct transport *ws;

    if (!hc->upgrade) {
        shutdown(hc->fd, SHUT_WR);
        hc->state = HC_DRAIN;
        loop_timer_cancel(h->loop, hc->timer);
        hc->timer = loop_timer_add(h->loop, HTTPD_DRAIN_MS, httpd_timeout, hc);
        if (hc->timer)
            return true;
        httpd_conn_free(hc);
        return false;
    }
    loop_del_fd(h->loop, hc->fd);
    ws = ws_transport_new(hc->t, (const uint8_t *)hc->in + hc->head_len, hc->in_len - hc->head_len,
                          hc->peer, (int)h->cfg->websockets_log_level);
    hc->t = NULL; /* the WebSocket transport has it (or closed it) */
    metrics_g.ws_upgrades++;
    if (ws)
        conn_pool_add(h->pool, ws, hc->listener, hc->peer);
    else
        conn_stats_refused();
    httpd_conn_free(hc);
    return false;
}

/* ---- answers --------------------------------------------------------------------------------- */

static const char *httpd_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

/* Queue an answer: head (and body, copied) into out[]. false on ENOMEM. */
static bool httpd_answer(struct httpd_conn *hc, int status, const char *ctype, const char *body,
                         size_t body_len, long long content_len)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nServer: cairn\r\nContent-Type: %s\r\n"
                     "Content-Length: %lld\r\n%sConnection: close\r\n\r\n",
                     status, httpd_reason(status), ctype, content_len,
                     status == 405 ? "Allow: GET\r\n" : "");
    size_t cap = (size_t)n + body_len;

    if (cap < HTTPD_CHUNK && hc->file >= 0)
        cap = HTTPD_CHUNK;
    free(hc->out);
    hc->out = malloc(cap);
    if (!hc->out)
        return false;
    memcpy(hc->out, head, (size_t)n);
    if (body_len)
        memcpy(hc->out + n, body, body_len);
    hc->out_len = (size_t)n + body_len;
    hc->out_off = 0;
    hc->state = HC_WRITE;
    return true;
}

static bool httpd_status(struct httpd_conn *hc, int status)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, httpd_reason(status));

    return httpd_answer(hc, status, "text/plain; charset=utf-8", body, (size_t)n, n);
}

static bool httpd_serve_file(struct httpd_conn *hc, const char *dir, const struct http_request *req)
{
    const char *ctype = NULL;
    long long size = 0;
    int status;

    if (!dir)
        return httpd_status(hc, 404); /* no http_dir: no plain HTTP, as Mosquitto */
    if (!http_view_eq(req->method, "GET"))
        return httpd_status(hc, 405);
    status = httpd_file_open(dir, req->target.p, req->target.len, &hc->file, &size, &ctype);
    log_write(CAIRN_LOG_DEBUG, "client %s: GET %.*s: %d", hc->peer, (int)req->target.len,
              req->target.p, status);
    if (status != 200)
        return httpd_status(hc, status);
    hc->file_left = size;
    return httpd_answer(hc, 200, ctype, NULL, 0, size);
}

static bool httpd_serve_metrics(struct httpd_conn *hc, const struct http_request *req)
{
    struct httpd *h = hc->h;
    const char *q = memchr(req->target.p, '?', req->target.len);
    struct http_view path = {req->target.p, q ? (size_t)(q - req->target.p) : req->target.len};
    char *body = NULL;
    size_t len = 0;
    bool ok;

    if (!http_view_eq(path, "/metrics"))
        return httpd_status(hc, 404);
    if (!http_view_eq(req->method, "GET"))
        return httpd_status(hc, 405);
    if (!h->render)
        return httpd_status(hc, 503);
    if (h->render(h->render_arg, &body, &len) < 0)
        return httpd_status(hc, 500);
    ok = httpd_answer(hc, 200, "text/plain; version=0.0.4; charset=utf-8", body, len,
                      (long long)len);
    free(body);
    return ok;
}

/* A whole request head is in in[0..head_len): decide the answer. false: close at once. */
static bool httpd_dispatch(struct httpd_conn *hc, const struct http_request *req)
{
    struct httpd *h = hc->h;
    const struct config_listener *cl = &h->cfg->listeners[hc->listener];
    const char *why = NULL;
    size_t n = 0;
    int status;

    if (cl->protocol == CONFIG_PROTO_HTTP_METRICS) {
        metrics_g.http_requests++;
        return httpd_serve_metrics(hc, req);
    }
    if (!http_header_get(req, "Upgrade") && !http_header_get(req, "Sec-WebSocket-Key")) {
        metrics_g.http_requests++;
        return httpd_serve_file(hc, h->dirs[hc->listener], req);
    }
    hc->out = malloc(512);
    if (!hc->out)
        return false;
    status = ws_upgrade(req, hc->out, 512, &n, &why);
    hc->out_len = n;
    hc->out_off = 0;
    hc->state = HC_WRITE;
    hc->upgrade = status == 101;
    if (!hc->upgrade) {
        metrics_g.ws_refused++;
        log_write(CAIRN_LOG_NOTICE, "client %s: WebSocket upgrade refused (%d): %s", hc->peer,
                  status, why);
    }
    return true;
}

/* ---- events ---------------------------------------------------------------------------------- */

/* Read what the socket has; parse. false when hc was freed. */
static bool httpd_read(struct httpd_conn *hc)
{
    const struct config *cfg = hc->h->cfg;
    size_t limit =
        cfg->websockets_headers_size ? cfg->websockets_headers_size : HTTPD_HEADERS_DEFAULT;
    struct http_request req;
    ssize_t n;
    int rc;

    if (!hc->in) {
        hc->in = malloc(limit);
        if (!hc->in)
            goto gone;
        hc->in_cap = limit;
    }
    for (;;) {
        if (hc->in_len == hc->in_cap) {
            if (!httpd_status(hc, 431))
                goto gone;
            log_write(CAIRN_LOG_NOTICE,
                      "client %s: HTTP request head over websockets_headers_size (%zu bytes)",
                      hc->peer, limit);
            return true;
        }
        n = hc->t->ops->read(hc->t, hc->in + hc->in_len, hc->in_cap - hc->in_len);
        if (n == -EAGAIN)
            return true;
        if (n <= 0)
            goto gone;
        hc->in_len += (size_t)n;
        rc = http_parse_request(hc->in, hc->in_len, &req);
        if (rc == -HTTP_EPARTIAL)
            continue;
        if (rc < 0) {
            log_write(CAIRN_LOG_NOTICE, "client %s: malformed HTTP request: %s", hc->peer,
                      http_strerror(rc));
            if (hc->h->cfg->listeners[hc->listener].protocol == CONFIG_PROTO_WEBSOCKETS)
                metrics_g.ws_refused++;
            if (!httpd_status(hc, 400))
                goto gone;
            return true;
        }
        hc->head_len = (size_t)rc;
        if (!httpd_dispatch(hc, &req))
            goto gone;
        return true;
    }
gone:
    httpd_conn_free(hc);
    return false;
}

/* Write out[] and the file behind it. false when hc was freed (or handed over). */
static bool httpd_write(struct httpd_conn *hc)
{
    for (;;) {
        struct iovec iov;
        ssize_t n;

        if (hc->out_off == hc->out_len && hc->file >= 0 && hc->file_left > 0) {
            ssize_t r = read(hc->file, hc->out, HTTPD_CHUNK);
            if (r <= 0)
                goto gone; /* the file shrank or failed: the length promised cannot be kept */
            hc->out_len = (size_t)r;
            hc->out_off = 0;
            hc->file_left -= r;
        }
        if (hc->out_off == hc->out_len)
            return httpd_done(hc);
        iov.iov_base = hc->out + hc->out_off;
        iov.iov_len = hc->out_len - hc->out_off;
        n = hc->t->ops->writev(hc->t, &iov, 1);
        if (n == -EAGAIN)
            return true;
        if (n < 0)
            goto gone;
        hc->out_off += (size_t)n;
    }
gone:
    httpd_conn_free(hc);
    return false;
}

/* After the answer: read and drop until the peer closes (or the drain timer fires). */
static bool httpd_drain(struct httpd_conn *hc)
{
    char buf[4096];

    for (;;) {
        ssize_t n = hc->t->ops->read(hc->t, buf, sizeof(buf));
        if (n == -EAGAIN)
            return true;
        if (n <= 0)
            break;
    }
    httpd_conn_free(hc);
    return false;
}

static void httpd_on_event(struct loop *l, int fd, int events, void *arg)
{
    struct httpd_conn *hc = arg;
    bool alive = true;
    int rc;

    (void)l;
    (void)fd;
    (void)events;
    if (hc->state == HC_HANDSHAKE) {
        rc = hc->t->ops->handshake(hc->t);
        if (rc == -EAGAIN)
            goto out;
        if (rc < 0) {
            httpd_conn_free(hc);
            return;
        }
        hc->state = HC_READ;
    }
    if (hc->state == HC_READ)
        alive = httpd_read(hc);
    if (alive && hc->state == HC_WRITE)
        alive = httpd_write(hc);
    if (alive && hc->state == HC_DRAIN)
        alive = httpd_drain(hc);
out:
    if (alive)
        httpd_update_events(hc);
}

/* ---- the front ------------------------------------------------------------------------------ */

struct httpd *httpd_new(struct loop *l, struct conn_pool *pool, const struct config *cfg, char *err,
                        size_t errlen)
{
    struct httpd *h = calloc(1, sizeof(*h));
    size_t n = cfg->n_listeners;

    if (!h || !(h->dirs = calloc(n + 1, sizeof(*h->dirs))) ||
        !(h->counts = calloc(n + 1, sizeof(*h->counts)))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    h->loop = l;
    h->pool = pool;
    h->cfg = cfg;
    h->n = n;
    for (size_t i = 0; i < n; i++) {
        const struct config_listener *cl = &cfg->listeners[i];
        if (cl->protocol != CONFIG_PROTO_WEBSOCKETS || !cl->http_dir)
            continue;
        /* resolved once, as Mosquitto: a directory that is not there stops start-up */
        h->dirs[i] = realpath(cl->http_dir, NULL);
        if (!h->dirs[i]) {
            snprintf(err, errlen, "%s: listener %zu: http_dir %s: %s",
                     cfg->path ? cfg->path : "config", i, cl->http_dir, strerror(errno));
            goto fail;
        }
    }
    return h;
fail:
    httpd_free(h);
    return NULL;
}

void httpd_free(struct httpd *h)
{
    if (!h)
        return;
    while (h->all)
        httpd_conn_free(h->all);
    for (size_t i = 0; h->dirs && i < h->n; i++)
        free(h->dirs[i]);
    free(h->dirs);
    free(h->counts);
    free(h);
}

void httpd_set_config(struct httpd *h, const struct config *cfg)
{
    h->cfg = cfg; /* listeners cannot change on reload: indexes stay valid */
}

void httpd_set_metrics(struct httpd *h, int (*render)(void *arg, char **body, size_t *len),
                       void *arg)
{
    h->render = render;
    h->render_arg = arg;
}

void httpd_accept(struct httpd *h, struct transport *t, int listener_index, const char *peer)
{
    struct httpd_conn *hc = calloc(1, sizeof(*hc));
    uint32_t timeout = h->cfg->connect_timeout;

    if (!hc || (size_t)listener_index >= h->n)
        goto fail;
    hc->h = h;
    hc->t = t;
    hc->fd = t->fd;
    hc->listener = listener_index;
    hc->file = -1;
    hc->state = HC_HANDSHAKE;
    snprintf(hc->peer, sizeof(hc->peer), "%s", peer);
    hc->events = t->ops->want_events(t, CAIRN_EV_READ);
    if (loop_add_fd(h->loop, hc->fd, hc->events, httpd_on_event, hc) < 0)
        goto fail;
    if (timeout) {
        hc->timer = loop_timer_add(h->loop, (uint64_t)timeout * 1000u, httpd_timeout, hc);
        if (!hc->timer) {
            loop_del_fd(h->loop, hc->fd);
            goto fail;
        }
    }
    hc->next = h->all;
    if (h->all)
        h->all->prev = hc;
    h->all = hc;
    h->counts[listener_index]++;
    return;
fail:
    free(hc);
    t->ops->close(t);
    conn_stats_refused();
}

size_t httpd_count(const struct httpd *h)
{
    size_t n = 0;

    for (size_t i = 0; h && i < h->n; i++)
        n += h->counts[i];
    return n;
}

size_t httpd_count_listener(const struct httpd *h, int listener_index)
{
    return h && (size_t)listener_index < h->n ? h->counts[listener_index] : 0;
}
