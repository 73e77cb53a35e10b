/*
 * listener.h — the listening sockets of every configured listener.
 *
 * "listener PORT" without an address listens on every address, IPv4 and IPv6 (one dual-stack
 * socket, or 0.0.0.0 where IPv6 is missing); with an address (or host name) it binds each
 * address the name resolves to. socket_domain ipv4 / ipv6 keeps one family (Mosquitto's
 * option); bind_interface binds the interface's own addresses instead (as Mosquitto 2.0 does,
 * its first IPv4 and first IPv6 address; with a listener address, that address if it is the
 * interface's). Port 0 binds an ephemeral port; every socket logs "listening on ADDR:PORT"
 * with the port it got.
 *
 * Accepting: non-blocking accept4 in a bounded loop per readable event; max_connections (global
 * and per listener) refuse past the limit by closing at once; running out of descriptors
 * (EMFILE) sheds the pending connection through a reserved descriptor, and if even that fails
 * pauses accepting for a moment, so a full table never turns into a busy loop.
 *
 * TLS: a listener whose settings ask for TLS (tls.h) gets a tls_transport for each accepted
 * socket, plain ones transport_tcp; a TLS listener that cannot be set up fails start-up.
 *
 * Protocols: an mqtt listener hands each connection to the pool; websockets and http_metrics
 * ones to the HTTP front (httpd.h), which hands upgraded WebSocket connections to the pool.
 * max_connections counts connections in the front too.
 *
 * Ownership: the set owns its sockets and TLS contexts; loop, pool and cfg are borrowed (cfg
 * replaceable with listener_set_config after a reload; the sockets themselves do not change on
 * reload).
 */
#ifndef CAIRN_LISTENER_H
#define CAIRN_LISTENER_H

#include <stddef.h>
#include <stdint.h>

struct listeners;
struct loop;
struct conn_pool;
struct config;
struct tls_set;

/*
 * Bind every listener of cfg, with the TLS contexts of tls (taken: freed with the set, or on
 * failure; NULL: built from cfg here). Nothing listens yet (listener_start): the server binds
 * as root and listens once it is what it will serve as (user.h). NULL with "listener N
 * (ADDR:PORT): reason" in err.
 */
struct listeners *listener_open(struct loop *l, struct conn_pool *pool, const struct config *cfg,
                                struct tls_set *tls, char *err, size_t errlen);
/* Listen on every socket and watch it on the loop. 0, or negative with the reason in err. */
int listener_start(struct listeners *ls, char *err, size_t errlen);
/* What listener_open would refuse short of binding: a bind_interface without the addresses it
 * needs, a Unix socket path (Mosquitto's "listener 0 PATH"). 0, or negative with the reason in
 * err ("FILE:LINE: ..."). */
int listener_check(const struct config *cfg, char *err, size_t errlen);
/* Stop accepting (shutdown): the sockets are closed; connections are not touched. */
void listener_stop(struct listeners *ls);
void listener_free(struct listeners *ls);
/* SIGHUP, step 1: rebuild the TLS contexts from cfg (certificates and keys re-read) for new
 * connections. 0, or negative with the old contexts kept and the reason logged. */
int listener_reload_tls(struct listeners *ls, const struct config *cfg);
/* SIGHUP, step 2: limits (max_connections) from cfg, borrowed from now on. */
void listener_set_config(struct listeners *ls, const struct config *cfg);

/* What GET /metrics on http_metrics listeners answers (httpd_set_metrics). */
void listener_set_metrics(struct listeners *ls, int (*render)(void *arg, char **body, size_t *len),
                          void *arg);

/* Sockets open (a listener may have several), and the port of socket i (tests, logs). */
size_t listener_count(const struct listeners *ls);
uint16_t listener_port(const struct listeners *ls, size_t i);

#endif
