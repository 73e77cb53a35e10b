/*
 * listener.h — the listening sockets of every configured listener.
 *
 * "listener PORT" without an address listens on every address, IPv4 and IPv6 (one dual-stack
 * socket, or 0.0.0.0 where IPv6 is missing); with an address (or host name) it binds each
 * address the name resolves to. Port 0 binds an ephemeral port; every socket logs
 * "listening on ADDR:PORT" with the port it got.
 *
 * Accepting: non-blocking accept4 in a bounded loop per readable event; max_connections (global
 * and per listener) refuse past the limit by closing at once; running out of descriptors
 * (EMFILE) sheds the pending connection through a reserved descriptor, and if even that fails
 * pauses accepting for a moment, so a full table never turns into a busy loop.
 *
 * Ownership: the set owns its sockets; loop, pool and cfg are borrowed (cfg replaceable with
 * listener_set_config after a reload; the sockets themselves do not change on reload).
 */
#ifndef CAIRN_LISTENER_H
#define CAIRN_LISTENER_H

#include <stddef.h>
#include <stdint.h>

struct listeners;
struct loop;
struct conn_pool;
struct config;

/* Open every listener of cfg. NULL with "listener N (ADDR:PORT): reason" in err. */
struct listeners *listener_open(struct loop *l, struct conn_pool *pool, const struct config *cfg,
                                char *err, size_t errlen);
/* Stop accepting (shutdown): the sockets are closed; connections are not touched. */
void listener_stop(struct listeners *ls);
void listener_free(struct listeners *ls);
void listener_set_config(struct listeners *ls, const struct config *cfg);

/* Sockets open (a listener may have several), and the port of socket i (tests, logs). */
size_t listener_count(const struct listeners *ls);
uint16_t listener_port(const struct listeners *ls, size_t i);

#endif
