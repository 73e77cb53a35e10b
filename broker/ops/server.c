/*
 * server.c — start-up, the iteration end, signals, reload and shutdown.
 */
#define _GNU_SOURCE /* pipe2 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "bridge.h"
#include "broker.h"
#include "config.h"
#include "conn.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "service.h"
#include "tls.h"
#include "user.h"

#define SERVER_ROUNDS      4     /* reap / commit / flush rounds per iteration end */
#define SERVER_SHUTDOWN_MS 3000u /* how long shutdown waits for queues to drain */

struct server {
    const char *path; /* the config file, NULL for defaults */
    struct config *cfg;
    struct loop *loop;
    struct broker *broker;
    struct conn_pool *pool;
    struct listeners *listeners;
    struct bridge_set *bridges;
    struct timer *wake; /* a 0 ms timer: more work is due next iteration */
    bool shutting_down;
    bool pid_written;
};

static int server_sigpipe[2] = {-1, -1};

/* Async-signal-safe: one byte per signal into the pipe; a full pipe already says enough. */
static void server_on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t n = write(server_sigpipe[1], &b, 1);

    (void)n;
    errno = saved;
}

/* ---- conn_handler -> broker_* ------------------------------------------------------------ */

static int server_on_open(void *arg, struct conn *c)
{
    return broker_on_open(arg, c);
}

static int server_on_packet(void *arg, struct conn *c, const struct mqtt_packet *pkt)
{
    return broker_on_packet(arg, c, pkt);
}

static int server_on_bad_connect(void *arg, struct conn *c, int err)
{
    return broker_on_bad_connect(arg, c, err);
}

static int server_on_oversize(void *arg, struct conn *c, const struct mqtt_publish *head,
                              size_t payload_len)
{
    return broker_on_oversize(arg, c, head, payload_len);
}

static void server_on_close(void *arg, struct conn *c, int reason)
{
    broker_on_close(arg, c, reason);
}

static void server_on_writable(void *arg, struct conn *c)
{
    broker_on_writable(arg, c);
}

/* ---- the iteration end ------------------------------------------------------------------- */

static void server_wake(void *arg)
{
    struct server *s = arg;

    s->wake = NULL;
}

/*
 * The safe point of every iteration. Closes first (their wills and session changes join this
 * batch), then the broker commits and releases what it held, then one writev per conn. Work
 * those steps create (a write error closing a conn, a will for an online subscriber) gets
 * another round; whatever is still left wakes the loop at once rather than waiting for I/O.
 */
static void server_iteration_end(void *arg)
{
    struct server *s = arg;

    for (int round = 0; round < SERVER_ROUNDS; round++) {
        conn_pool_reap(s->pool);
        broker_on_iteration_end(s->broker);
        conn_pool_flush(s->pool);
        if (!conn_pool_pending(s->pool))
            break;
    }
    if (conn_pool_pending(s->pool) && !s->wake)
        s->wake = loop_timer_add(s->loop, 0, server_wake, s);
    if (s->shutting_down && conn_pool_count(s->pool) == 0 && conn_pool_lingering(s->pool) == 0)
        loop_stop(s->loop);
}

/* ---- config, log, pid file ------------------------------------------------------------- */

static int server_apply_log(const struct config *cfg)
{
    int rc;

    log_set_facility(cfg->log_facility);
    rc = log_set_format(cfg->log_timestamp, cfg->log_timestamp_format);
    if (rc == 0)
        rc = log_open(cfg->log_dest, cfg->log_file, cfg->log_type);
    if (rc < 0)
        log_write(CAIRN_LOG_ERR, "log file %s: %s", cfg->log_file ? cfg->log_file : "?",
                  strerror(-rc));
    return rc;
}

static struct config *server_load(const char *path, char *err, size_t errlen)
{
    struct config *cfg = malloc(sizeof(*cfg));
    int rc;

    if (!cfg) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (path) {
        rc = config_load(path, cfg, err, errlen);
    } else {
        config_defaults(cfg);
        rc = config_add_default_listener(cfg);
        if (rc < 0) {
            config_cleanup(cfg);
            snprintf(err, errlen, "out of memory");
        }
    }
    if (rc < 0) {
        free(cfg); /* config_load leaves it untouched on failure */
        cfg = NULL;
    }
out:
    return cfg;
}

static void server_free_config(struct config *cfg)
{
    if (!cfg)
        return;
    config_cleanup(cfg);
    free(cfg);
}

static int server_write_pid(struct server *s)
{
    const char *path = s->cfg->pid_file;
    FILE *f;
    int rc = 0;

    if (!path)
        goto out;
    f = fopen(path, "w");
    if (!f) {
        rc = -errno;
        log_write(CAIRN_LOG_ERR, "pid_file %s: %s", path, strerror(errno));
        goto out;
    }
    fprintf(f, "%ld\n", (long)getpid());
    if (fclose(f) != 0) {
        rc = -errno;
        log_write(CAIRN_LOG_ERR, "pid_file %s: %s", path, strerror(errno));
        goto out;
    }
    s->pid_written = true;
out:
    return rc;
}

/* ---- reload and shutdown ---------------------------------------------------------------- */

static bool server_same_str(const char *x, const char *y)
{
    return (x == NULL) == (y == NULL) && (!x || strcmp(x, y) == 0);
}

/* What binding made, and mount_point (its clients' subscriptions carry it), cannot change. */
static bool server_same_listeners(const struct config *a, const struct config *b)
{
    if (a->n_listeners != b->n_listeners)
        return false;
    for (size_t i = 0; i < a->n_listeners; i++) {
        const struct config_listener *x = &a->listeners[i], *y = &b->listeners[i];
        if (x->port != y->port || x->protocol != y->protocol ||
            x->socket_domain != y->socket_domain ||
            !server_same_str(x->bind_address, y->bind_address) ||
            !server_same_str(x->bind_interface, y->bind_interface) ||
            !server_same_str(x->mount_point, y->mount_point))
            return false;
    }
    return true;
}

static void server_reload(struct server *s)
{
    char err[512];
    struct config *cfg = NULL;
    struct bridge_plan *plan = NULL;
    int rc;

    if (!s->path) {
        log_write(CAIRN_LOG_NOTICE, "SIGHUP: no config file to reload (running on defaults)");
        goto out;
    }
    log_write(CAIRN_LOG_NOTICE, "SIGHUP: reloading %s", s->path);
    cfg = server_load(s->path, err, sizeof(err));
    if (!cfg) {
        log_write(CAIRN_LOG_ERR, "reload failed, keeping the running config: %s", err);
        goto out;
    }
    if (!server_same_listeners(s->cfg, cfg)) {
        log_write(CAIRN_LOG_ERR,
                  "reload failed, keeping the running config: %s: listeners "
                  "cannot change without a restart",
                  s->path);
        goto out;
    }
    plan = bridge_set_plan(s->bridges, cfg, err, sizeof(err));
    if (!plan) {
        log_write(CAIRN_LOG_ERR, "reload failed, keeping the running config: %s", err);
        goto out;
    }
    rc = listener_reload_tls(s->listeners, cfg);
    if (rc < 0) {
        log_write(CAIRN_LOG_ERR, "reload failed, keeping the running config: TLS settings");
        goto out;
    }
    rc = broker_reload(s->broker, cfg);
    if (rc < 0) {
        log_write(CAIRN_LOG_ERR, "reload failed, keeping the running config: %s", strerror(-rc));
        goto out;
    }
    bridge_set_apply(s->bridges, plan); /* the bridges whose block changed restart */
    plan = NULL;
    server_apply_log(cfg);
    log_reopen();
    conn_pool_set_config(s->pool, cfg);
    listener_set_config(s->listeners, cfg);
    server_free_config(s->cfg);
    s->cfg = cfg;
    cfg = NULL;
    log_write(CAIRN_LOG_NOTICE, "reloaded %s", s->path);
out:
    bridge_plan_free(plan);
    server_free_config(cfg);
}

static void server_shutdown_timeout(void *arg)
{
    struct server *s = arg;

    log_write(CAIRN_LOG_WARNING, "shutdown: %zu connections still flushing; closing them",
              conn_pool_lingering(s->pool));
    loop_stop(s->loop);
}

/*
 * Stop accepting, let the broker make its final commit and say goodbye, close every conn
 * (reason 0) and keep the loop running until their queues are written or the deadline passes.
 */
static void server_begin_shutdown(struct server *s, int sig)
{
    struct timer *t;

    if (s->shutting_down)
        return;
    s->shutting_down = true;
    log_write(CAIRN_LOG_NOTICE, "%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    listener_stop(s->listeners);
    bridge_set_stop(s->bridges); /* no more attempts; their links close with the others */
    broker_shutdown(s->broker);
    conn_pool_close_all(s->pool, 0);
    t = loop_timer_add(s->loop, SERVER_SHUTDOWN_MS, server_shutdown_timeout, s);
    if (!t)
        loop_stop(s->loop);
}

static void server_on_signal_pipe(struct loop *l, int fd, int events, void *arg)
{
    struct server *s = arg;
    unsigned char buf[64];
    ssize_t n;

    (void)l;
    (void)events;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == SIGHUP)
                server_reload(s);
            else if (buf[i] == SIGTERM || buf[i] == SIGINT)
                server_begin_shutdown(s, buf[i]);
        }
    }
}

static int server_signals(struct server *s)
{
    struct sigaction sa;
    int rc = 0;

    if (pipe2(server_sigpipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        rc = -errno;
        goto out;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = server_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    /* a file-size limit reached is a failed write to handle (no acks), not a reason to die */
    sigaction(SIGXFSZ, &sa, NULL);
    rc = loop_add_fd(s->loop, server_sigpipe[0], CAIRN_EV_READ, server_on_signal_pipe, s);
out:
    return rc;
}

static void server_signals_cleanup(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    service_signals_release();
    for (int i = 0; i < 2; i++) {
        if (server_sigpipe[i] >= 0)
            close(server_sigpipe[i]);
        server_sigpipe[i] = -1;
    }
}

/* ---- run ------------------------------------------------------------------------------- */

/*
 * Everything in the configuration that start-up would refuse, found before anything is done
 * (a log file made, the store opened or locked, a pid file written, a socket bound): TLS
 * listeners (certificates, keys, DH parameters, PSK files), the password and ACL files, the
 * interfaces bind_interface names, the bridges' TLS files, and the user to become. The TLS
 * contexts built here are the ones the listeners and bridges use (*tls and *bridges, the
 * caller's); the rest is only checked.
 */
static int server_validate(const struct config *cfg, struct tls_set **tls,
                           struct bridge_set **bridges, struct user_plan *plan, char *err,
                           size_t errlen)
{
    struct auth *auth = NULL;
    int rc = -EINVAL;

    *bridges = NULL;
    *tls = tls_set_new(cfg, err, errlen);
    if (!*tls)
        goto out;
    *bridges = bridge_set_new(cfg, err, errlen);
    if (!*bridges)
        goto out;
    auth = auth_new(cfg, err, errlen);
    if (!auth)
        goto out;
    rc = listener_check(cfg, err, errlen);
    if (rc == 0)
        rc = user_resolve(cfg, plan, err, errlen);
out:
    auth_free(auth);
    if (rc < 0) {
        tls_set_free(*tls);
        *tls = NULL;
        bridge_set_free(*bridges);
        *bridges = NULL;
    }
    return rc;
}

static int server_start(struct server *s, char *err, size_t errlen)
{
    static const struct conn_handler handler_template = {
        .on_open = server_on_open,
        .on_packet = server_on_packet,
        .on_bad_connect = server_on_bad_connect,
        .on_oversize = server_on_oversize,
        .on_close = server_on_close,
        .on_writable = server_on_writable,
    };
    struct conn_handler h = handler_template;
    struct tls_set *tls = NULL;
    struct user_plan plan;
    bool made_location = false;
    int rc = -1;

    /* SIGUSR1/SIGUSR2 wait, pending, until service_start() can serve them: their default
     * action would end a broker that is still starting (threads made meanwhile inherit this) */
    service_signals_hold();
    s->cfg = server_load(s->path, err, errlen);
    if (!s->cfg)
        goto out;
    if (server_validate(s->cfg, &tls, &s->bridges, &plan, err, errlen) < 0)
        goto out;
    if (server_apply_log(s->cfg) < 0) {
        snprintf(err, errlen, "cannot open log file %s", s->cfg->log_file);
        goto out;
    }
    log_write(CAIRN_LOG_NOTICE, "cairn %s starting (config %s, %s loop)", CAIRN_VERSION,
              s->path ? s->path : "defaults", loop_backend_name());
    s->loop = loop_new(err, errlen);
    if (!s->loop)
        goto out;
    rc = server_signals(s);
    if (rc < 0) {
        snprintf(err, errlen, "signals: %s", strerror(-rc));
        goto out;
    }
    rc = -1;
    made_location = s->cfg->persistence && access(s->cfg->persistence_location, F_OK) != 0;
    s->broker = broker_new(s->cfg, s->loop, err, errlen);
    if (!s->broker)
        goto out;
    h.arg = s->broker;
    s->pool = conn_pool_new(s->loop, s->cfg, &h);
    if (!s->pool) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* the pid file first: once a listener accepts, whoever waits for the broker finds it */
    if (server_write_pid(s) < 0) {
        snprintf(err, errlen, "cannot write pid_file %s", s->cfg->pid_file);
        goto out;
    }
    s->listeners = listener_open(s->loop, s->pool, s->cfg, tls, err, errlen);
    tls = NULL;
    if (!s->listeners)
        goto out;
    /* bound as root; listening only as the user it serves as (user.h) */
    rc = user_hand_over(&plan, broker_store_dir(s->broker), s->cfg->persistence_location,
                        made_location, s->pid_written ? s->cfg->pid_file : NULL, err, errlen);
    if (rc == 0)
        rc = user_drop(&plan, broker_store_dir(s->broker), err, errlen);
    if (rc < 0)
        goto out;
    listener_set_metrics(s->listeners, metrics_render_broker, s->broker);
    if ((rc = listener_start(s->listeners, err, errlen)) < 0)
        goto out;
    /* the bridges last: their queues are sessions of the broker's, their links the pool's */
    if ((rc = bridge_set_start(s->bridges, s->loop, s->pool, s->broker, err, errlen)) < 0)
        goto out;
    loop_set_iteration_end(s->loop, server_iteration_end, s);
    /* last: it tells the service manager the broker is ready, and its signals need the broker */
    rc = service_start(s->loop, s->broker, err, errlen);
out:
    tls_set_free(tls);
    return rc;
}

static void server_stop(struct server *s)
{
    service_stop(); /* before the broker and its store go: a backup may be reading it */
    listener_free(s->listeners);
    if (s->pool && s->broker) {
        /* conns left after the drain deadline: on_close for each, then gone */
        conn_pool_close_all(s->pool, 0);
        conn_pool_reap(s->pool);
        broker_on_iteration_end(s->broker);
    }
    conn_pool_free(s->pool);
    bridge_set_free(s->bridges); /* their links are gone with the pool */
    broker_free(s->broker);
    /* after dropping root the pid file's directory may not let us remove it: never stale */
    if (s->pid_written && unlink(s->cfg->pid_file) < 0 && truncate(s->cfg->pid_file, 0) < 0)
        log_write(CAIRN_LOG_WARNING, "pid_file %s: cannot remove it: %s", s->cfg->pid_file,
                  strerror(errno));
    server_signals_cleanup();
    loop_free(s->loop);
    server_free_config(s->cfg);
}

int server_run(const char *config_path)
{
    struct server s = {.path = config_path};
    char err[512] = "";
    int status = 1;
    int rc;

    if (server_start(&s, err, sizeof(err)) < 0) {
        log_write(CAIRN_LOG_ERR, "%s", err);
        if (!log_to_stderr())
            fprintf(stderr, "cairn: %s\n", err);
        goto out;
    }
    rc = loop_run(s.loop);
    if (rc < 0) {
        log_write(CAIRN_LOG_ERR, "event loop: %s", strerror(-rc));
        goto out;
    }
    log_write(CAIRN_LOG_NOTICE, "stopped");
    status = 0;
out:
    server_stop(&s);
    log_close();
    return status;
}

/* Everything start-up would refuse short of binding and opening the store: server_validate. */
int server_check_config(const char *config_path)
{
    struct config cfg;
    struct tls_set *tls = NULL;
    struct bridge_set *bridges = NULL;
    struct user_plan plan;
    char err[512];
    int status = 1;

    if (config_load(config_path, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    if (server_validate(&cfg, &tls, &bridges, &plan, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
    } else {
        printf("%s: configuration OK\n", config_path);
        status = 0;
    }
    tls_set_free(tls);
    bridge_set_free(bridges);
    config_cleanup(&cfg);
out:
    return status;
}
