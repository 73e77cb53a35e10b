/*
 * listener.c — bind, listen, accept.
 */
#define _GNU_SOURCE /* accept4 */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "httpd.h"
#include "log.h"
#include "loop.h"
#include "tls.h"
#include "transport.h"

#define LISTENER_BACKLOG      1024
#define LISTENER_ACCEPT_BATCH 64  /* accepts per readable event: others get their turn */
#define LISTENER_PAUSE_MS     200 /* accepting paused after EMFILE with no reserve fd */
#define LISTENER_MAX_SOCKS    64

struct listener_sock {
    struct listeners *owner;
    int fd;
    int index; /* into cfg->listeners */
    uint16_t port;
    bool loopback; /* bound to a loopback address only */
    char name[80]; /* "ADDR:PORT" */
};

struct listeners {
    struct loop *loop;
    struct conn_pool *pool;
    const struct config *cfg;
    struct listener_sock socks[LISTENER_MAX_SOCKS];
    size_t n;
    struct tls_set *tls; /* a context per TLS listener (NULL entries for plain TCP) */
    struct httpd *http;  /* the HTTP front of websockets and http_metrics listeners */
    int reserve_fd;      /* /dev/null, given up to shed a connection on EMFILE */
    struct timer *pause_timer;
    uint64_t last_emfile_log;
};

/* "1.2.3.4:5" or "[::1]:5"; IPv4-mapped IPv6 shows as IPv4. */
static void listener_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(buf, len, "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        port = ntohs(in6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, sizeof(host));
            snprintf(buf, len, "%s:%u", host, port);
        } else {
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
            snprintf(buf, len, "[%s]:%u", host, port);
        }
    } else {
        snprintf(buf, len, "?");
    }
}

/* Is sa a loopback address (127.0.0.0/8, ::1, or 127.x mapped into IPv6)? */
static bool listener_is_loopback(const struct sockaddr *sa)
{
    bool lo = false;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        lo = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        lo = IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return lo;
}

/*
 * Anyone who can reach a listener that is not loopback-only and lets clients in without a
 * username can use the broker: say so at start-up (Mosquitto 2.0 made such a listener opt-in,
 * and so does Cairn: allow_anonymous had to be written).
 */
static void listener_warn_open(const struct listeners *ls, const struct listener_sock *s)
{
    const struct config_security *sec = config_security_for(ls->cfg, (size_t)s->index);

    if (s->loopback || !config_allow_anonymous(ls->cfg, (size_t)s->index) ||
        sec->use_identity_as_username || sec->use_subject_as_username)
        return;
    log_write(CAIRN_LOG_WARNING,
              "listener on %s allows anonymous clients (allow_anonymous true) on a non-loopback "
              "address: anyone who can reach it may connect",
              s->name);
}

static void listener_resume(void *arg)
{
    struct listeners *ls = arg;

    ls->pause_timer = NULL;
    for (size_t i = 0; i < ls->n; i++)
        if (ls->socks[i].fd >= 0)
            loop_mod_fd(ls->loop, ls->socks[i].fd, CAIRN_EV_READ);
}

/*
 * Out of descriptors: give the reserve back, accept the waiting connection and close it at once
 * (the client sees a clean close rather than a hang), then take the reserve again. Without a
 * reserve, stop watching the listeners for LISTENER_PAUSE_MS instead of spinning.
 */
static void listener_emfile(struct listeners *ls, struct listener_sock *s, int err)
{
    uint64_t now = loop_now_ms(ls->loop);
    int fd;

    if (now - ls->last_emfile_log >= 1000 || ls->last_emfile_log == 0) {
        log_write(CAIRN_LOG_WARNING, "listener %s: accept: %s; refusing connections", s->name,
                  strerror(err));
        ls->last_emfile_log = now;
    }
    if (ls->reserve_fd >= 0) {
        close(ls->reserve_fd);
        ls->reserve_fd = -1;
        fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            close(fd);
            conn_stats_refused();
        }
        ls->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    if (ls->reserve_fd < 0 && !ls->pause_timer) {
        ls->pause_timer = loop_timer_add(ls->loop, LISTENER_PAUSE_MS, listener_resume, ls);
        if (ls->pause_timer)
            for (size_t i = 0; i < ls->n; i++)
                if (ls->socks[i].fd >= 0)
                    loop_mod_fd(ls->loop, ls->socks[i].fd, 0);
    }
}

/* Past max_connections (global or this listener's)? */
static bool listener_full(const struct listeners *ls, const struct listener_sock *s)
{
    const struct config *cfg = ls->cfg;
    int lmax = (size_t)s->index < cfg->n_listeners ? cfg->listeners[s->index].max_connections : -1;

    /* connections still in the HTTP front count: each may become an MQTT connection */
    if (cfg->max_connections >= 0 &&
        conn_pool_count(ls->pool) + httpd_count(ls->http) >= (size_t)cfg->max_connections)
        return true;
    return lmax >= 0 && conn_pool_count_listener(ls->pool, s->index) +
                                httpd_count_listener(ls->http, s->index) >=
                            (size_t)lmax;
}

static void listener_on_event(struct loop *l, int fd, int events, void *arg)
{
    struct listener_sock *s = arg;
    struct listeners *ls = s->owner;

    (void)l;
    (void)events;
    for (int i = 0; i < LISTENER_ACCEPT_BATCH && s->fd >= 0; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char peer[80];
        struct tls_ctx *ctx;
        struct transport *t;
        int one = 1;
        int cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                listener_emfile(ls, s, errno);
            break;
        }
        listener_addr_str((struct sockaddr *)&ss, peer, sizeof(peer));
        if (listener_full(ls, s)) {
            log_write(CAIRN_LOG_NOTICE, "client %s refused: max_connections reached", peer);
            conn_stats_refused();
            close(cfd);
            continue;
        }
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        ctx = tls_set_get(ls->tls, (size_t)s->index);
        t = ctx ? tls_transport_new(ctx, cfd) : transport_tcp_new(cfd);
        if (!t) {
            conn_stats_refused();
            continue;
        }
        if (ls->cfg->listeners[s->index].protocol == CONFIG_PROTO_MQTT)
            conn_pool_add(ls->pool, t, s->index, peer);
        else
            httpd_accept(ls->http, t, s->index, peer);
    }
}

/* One socket bound on one address, not listening yet. 0 or -errno (what failed in *what). */
static int listener_bind_one(struct listeners *ls, int index, const struct sockaddr *sa,
                             socklen_t salen, bool v6only, const char **what)
{
    struct listener_sock *s;
    struct sockaddr_storage got;
    socklen_t gotlen = sizeof(got);
    int one = 1;
    int fd = -1;
    int rc;

    *what = "too many sockets";
    rc = -EMFILE;
    if (ls->n == LISTENER_MAX_SOCKS)
        goto out;
    *what = "socket";
    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (sa->sa_family == AF_INET6) {
        int v = v6only ? 1 : 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof(v));
    }
    *what = "bind";
    if (bind(fd, sa, salen) < 0)
        goto fail;
    *what = "getsockname"; /* bind has picked the port when 0 was asked for */
    if (getsockname(fd, (struct sockaddr *)&got, &gotlen) < 0)
        goto fail;
    s = &ls->socks[ls->n];
    s->owner = ls;
    s->fd = fd;
    s->index = index;
    listener_addr_str((struct sockaddr *)&got, s->name, sizeof(s->name));
    s->loopback = listener_is_loopback((struct sockaddr *)&got);
    s->port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                             : ((struct sockaddr_in6 *)&got)->sin6_port);
    ls->n++;
    fd = -1;
    rc = 0;
    goto out;
fail:
    rc = -errno;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Is a the address of sa (same family and address, port aside)? */
static bool listener_same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr,
                  sizeof(struct in6_addr)) == 0;
}

/*
 * bind_interface, as Mosquitto 2.0 does it (net.c): not SO_BINDTODEVICE but the interface's
 * own addresses — its first IPv4 and first IPv6 one (socket_domain may keep one family), each
 * bound on the listener's port. With a listener ADDRESS too, only those of its addresses that
 * are the interface's. bind NULL: only count them. Returns how many (or were) bound, or -errno.
 */
static int listener_bind_interface(struct listeners *ls, int index,
                                   const struct config_listener *cl, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    struct ifaddrs *ifs = NULL;
    bool seen4 = false, seen6 = false;
    const char *what = "";
    int rc, n = 0;

    if (getifaddrs(&ifs) < 0) {
        rc = -errno;
        snprintf(err, errlen, "listener %d: bind_interface %s: %s", index, cl->bind_interface,
                 strerror(errno));
        goto out;
    }
    hints.ai_family = cl->socket_domain;
    if (cl->bind_address && (rc = getaddrinfo(cl->bind_address, NULL, &hints, &res)) != 0) {
        snprintf(err, errlen, "listener %d (%s): %s", index, cl->bind_address, gai_strerror(rc));
        rc = -EINVAL;
        goto out;
    }
    rc = 0;
    for (struct ifaddrs *i = ifs; i && rc == 0; i = i->ifa_next) {
        struct sockaddr_storage ss;
        int fam = i->ifa_addr ? i->ifa_addr->sa_family : AF_UNSPEC;
        bool *seen = fam == AF_INET ? &seen4 : &seen6;
        bool mine = !cl->bind_address;

        if ((fam != AF_INET && fam != AF_INET6) || strcasecmp(i->ifa_name, cl->bind_interface))
            continue;
        if ((cl->socket_domain && fam != cl->socket_domain) || *seen)
            continue;
        for (struct addrinfo *ai = res; ai && !mine; ai = ai->ai_next)
            mine = listener_same_addr(ai->ai_addr, i->ifa_addr);
        if (!mine)
            continue;
        *seen = true;
        n++;
        if (!ls)
            continue;
        memset(&ss, 0, sizeof(ss));
        memcpy(&ss, i->ifa_addr,
               fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
        if (fam == AF_INET)
            ((struct sockaddr_in *)&ss)->sin_port = htons(cl->port);
        else
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons(cl->port);
        rc = listener_bind_one(
            ls, index, (struct sockaddr *)&ss,
            fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6), true, &what);
        if (rc < 0)
            snprintf(err, errlen, "listener %d (interface %s): %s: %s", index, cl->bind_interface,
                     what, strerror(-rc));
    }
    if (rc == 0 && n == 0) {
        rc = -EADDRNOTAVAIL;
        snprintf(err, errlen, "listener %d: bind_interface %s: %s", index, cl->bind_interface,
                 cl->bind_address ? "the listener's address is not one of this interface's"
                                  : "no such interface, or no address of the socket_domain on it");
    }
out:
    if (res)
        freeaddrinfo(res);
    if (ifs)
        freeifaddrs(ifs);
    return rc < 0 ? rc : n;
}

static int listener_bind(struct listeners *ls, int index, const struct config_listener *cl,
                         char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    char port[8];
    const char *what = "";
    int rc;

    snprintf(port, sizeof(port), "%u", cl->port);
    if (cl->bind_interface) {
        rc = listener_bind_interface(ls, index, cl, err, errlen);
        goto out;
    }
    if (!cl->bind_address) {
        /* every address: one dual-stack socket, or IPv4 alone without IPv6; socket_domain
         * keeps one family (an IPv6-only socket then) */
        struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(cl->port)};
        struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(cl->port)};
        a6.sin6_addr = in6addr_any;
        a4.sin_addr.s_addr = htonl(INADDR_ANY);
        rc = -EAFNOSUPPORT;
        if (cl->socket_domain != AF_INET)
            rc = listener_bind_one(ls, index, (struct sockaddr *)&a6, sizeof(a6),
                                   cl->socket_domain == AF_INET6, &what);
        if (cl->socket_domain != AF_INET6 &&
            (rc == -EAFNOSUPPORT || (rc < 0 && strcmp(what, "socket") == 0)))
            rc = listener_bind_one(ls, index, (struct sockaddr *)&a4, sizeof(a4), false, &what);
        if (rc < 0)
            snprintf(err, errlen, "listener %d (port %s): %s: %s", index, port, what,
                     strerror(-rc));
        goto out;
    }
    hints.ai_family = cl->socket_domain; /* 0: both */
    rc = getaddrinfo(cl->bind_address, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "listener %d (%s port %s): %s", index, cl->bind_address, port,
                 gai_strerror(rc));
        rc = -EINVAL;
        goto out;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = listener_bind_one(ls, index, ai->ai_addr, ai->ai_addrlen, true, &what);
        if (rc < 0) {
            char a[80];
            listener_addr_str(ai->ai_addr, a, sizeof(a));
            snprintf(err, errlen, "listener %d (%s): %s: %s", index, a, what, strerror(-rc));
            break;
        }
    }
out:
    if (res)
        freeaddrinfo(res);
    return rc < 0 ? rc : 0;
}

int listener_check(const struct config *cfg, char *err, size_t errlen)
{
    char why[512], at[320];
    int rc = 0;

    for (size_t i = 0; i < cfg->n_listeners && rc >= 0; i++) {
        const struct config_listener *l = &cfg->listeners[i];
        if (l->port == 0 && l->bind_address && l->bind_address[0] == '/') {
            /* Mosquitto 2.0's "listener 0 PATH" */
            snprintf(err, errlen,
                     "%s: listener 0 %s: Unix socket listeners are not in this Cairn yet",
                     config_where(cfg, l->line, at, sizeof(at)), l->bind_address);
            rc = -EINVAL;
            continue;
        }
        if (!l->bind_interface)
            continue;
        rc = listener_bind_interface(NULL, (int)i, l, why, sizeof(why));
        if (rc < 0) /* a config error: where the listener is */
            snprintf(err, errlen, "%s: %s", config_where(cfg, l->line, at, sizeof(at)), why);
    }
    return rc < 0 ? rc : 0;
}

/*
 * Every socket is bound before any listens, and they start listening last to first: whoever
 * sees the first listener accept (a test harness, a supervisor) finds every other one ready.
 */
static int listener_listen(struct listeners *ls, char *err, size_t errlen)
{
    int rc = 0;

    for (size_t i = ls->n; i-- > 0 && rc == 0;) {
        if (listen(ls->socks[i].fd, LISTENER_BACKLOG) < 0) {
            rc = -errno;
            snprintf(err, errlen, "listener %d (%s): listen: %s", ls->socks[i].index,
                     ls->socks[i].name, strerror(errno));
        }
    }
    for (size_t i = 0; i < ls->n && rc == 0; i++) {
        rc =
            loop_add_fd(ls->loop, ls->socks[i].fd, CAIRN_EV_READ, listener_on_event, &ls->socks[i]);
        if (rc < 0) {
            snprintf(err, errlen, "listener %d (%s): %s", ls->socks[i].index, ls->socks[i].name,
                     strerror(-rc));
        } else {
            static const char *const kind[] = {"", " (websockets)", " (http_metrics)"};
            log_write(CAIRN_LOG_NOTICE, "listening on %s%s", ls->socks[i].name,
                      kind[ls->cfg->listeners[ls->socks[i].index].protocol]);
            listener_warn_open(ls, &ls->socks[i]);
        }
    }
    return rc;
}

struct listeners *listener_open(struct loop *l, struct conn_pool *pool, const struct config *cfg,
                                struct tls_set *tls, char *err, size_t errlen)
{
    struct listeners *ls = calloc(1, sizeof(*ls));
    int rc = 0;

    if (!ls) {
        tls_set_free(tls);
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    ls->loop = l;
    ls->pool = pool;
    ls->cfg = cfg;
    ls->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ls->tls = tls ? tls : tls_set_new(cfg, err, errlen);
    if (!ls->tls)
        rc = -EINVAL;
    for (size_t i = 0; i < cfg->n_listeners && rc == 0; i++)
        if (tls_set_get(ls->tls, i)) {
            /* the handshakes' public-key work off the loop (tls_pool.c) */
            rc = tls_pool_start(l, 0, err, errlen);
            break;
        }
    if (rc == 0 && !(ls->http = httpd_new(l, pool, cfg, err, errlen)))
        rc = -EINVAL;
    for (size_t i = 0; i < cfg->n_listeners && rc == 0; i++)
        rc = listener_bind(ls, (int)i, &cfg->listeners[i], err, errlen);
    if (rc < 0) {
        listener_free(ls);
        ls = NULL;
    }
out:
    return ls;
}

int listener_start(struct listeners *ls, char *err, size_t errlen)
{
    return listener_listen(ls, err, errlen);
}

void listener_stop(struct listeners *ls)
{
    if (!ls)
        return;
    loop_timer_cancel(ls->loop, ls->pause_timer);
    ls->pause_timer = NULL;
    for (size_t i = 0; i < ls->n; i++) {
        if (ls->socks[i].fd < 0)
            continue;
        loop_del_fd(ls->loop, ls->socks[i].fd);
        close(ls->socks[i].fd);
        ls->socks[i].fd = -1;
    }
}

void listener_free(struct listeners *ls)
{
    if (!ls)
        return;
    listener_stop(ls);
    if (ls->reserve_fd >= 0)
        close(ls->reserve_fd);
    httpd_free(ls->http);
    tls_pool_stop();
    tls_set_free(ls->tls);
    free(ls);
}

int listener_reload_tls(struct listeners *ls, const struct config *cfg)
{
    return tls_set_reload(&ls->tls, cfg);
}

void listener_set_config(struct listeners *ls, const struct config *cfg)
{
    ls->cfg = cfg;
    httpd_set_config(ls->http, cfg);
}

void listener_set_metrics(struct listeners *ls, int (*render)(void *arg, char **body, size_t *len),
                          void *arg)
{
    httpd_set_metrics(ls->http, render, arg);
}

size_t listener_count(const struct listeners *ls)
{
    return ls->n;
}

uint16_t listener_port(const struct listeners *ls, size_t i)
{
    return i < ls->n ? ls->socks[i].port : 0;
}
