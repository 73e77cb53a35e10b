/*
 * httpd.h — the HTTP front of "protocol websockets" and "protocol http_metrics" listeners:
 * every connection they accept starts here, with its transport (TCP, or TLS when the listener
 * has TLS options: wss:// and https://), and is served one request.
 *
 *   websockets:   a WebSocket upgrade (ws.h) is answered 101 and the connection, wrapped in a
 *                 WebSocket transport, goes to the connection pool as an MQTT connection; a bad
 *                 upgrade gets 400 (426 for another version) and a close. Any other GET serves
 *                 a file of http_dir as Mosquitto does ("/" is index.html; nothing outside the
 *                 directory, symbolic links included; 404, 403, 405 for methods but GET), or
 *                 404 without http_dir.
 *   http_metrics: GET /metrics answers the Prometheus text (metrics.h); other paths 404, other
 *                 methods 405.
 *
 * Limits: the request head may take websockets_headers_size bytes (1024 when 0, as Mosquitto):
 * a longer one gets 431; the whole exchange up to the upgrade (TLS handshake included) must end
 * within connect_timeout, else the connection is closed. Answers other than 101 close the
 * connection ("Connection: close"): the socket is shut for writing and what the client still
 * sends is read and dropped for a moment, so the answer is not lost to a reset.
 *
 * Ownership: the front owns the connections it serves (and their transports) until they are
 * closed or handed to the pool; loop, pool and cfg are borrowed (cfg replaceable on reload).
 */
#ifndef CAIRN_HTTPD_H
#define CAIRN_HTTPD_H

#include <stddef.h>

struct config;
struct conn_pool;
struct httpd;
struct loop;
struct transport;

/* A front for cfg's websockets and http_metrics listeners. NULL with a reason in err (an
 * http_dir that cannot be resolved, out of memory). */
struct httpd *httpd_new(struct loop *l, struct conn_pool *pool, const struct config *cfg, char *err,
                        size_t errlen);
/* Closes every connection still being served. NULL does nothing. */
void httpd_free(struct httpd *h);
void httpd_set_config(struct httpd *h, const struct config *cfg);
/*
 * What GET /metrics answers: render(arg, &body, &len) makes a malloc'd body (freed by the
 * front), 0 or negative (500). Until set, /metrics answers 503.
 */
void httpd_set_metrics(struct httpd *h, int (*render)(void *arg, char **body, size_t *len),
                       void *arg);
/* Serve an accepted connection of listener index (t owned; closed on failure). */
void httpd_accept(struct httpd *h, struct transport *t, int listener_index, const char *peer);
/* Connections still in the front (not yet upgraded): all, or of one listener. */
size_t httpd_count(const struct httpd *h);
size_t httpd_count_listener(const struct httpd *h, int listener_index);

/*
 * A file of http_dir for a request target (httpd_file.c). dir is the directory's real path.
 * Returns the HTTP status: 200 with *fd open (caller closes), *size and *ctype set; 400 for a
 * malformed escape, 403 for a path that leaves dir (".." or a symbolic link) or is not a regular
 * file, 404, 414, 500.
 */
int httpd_file_open(const char *dir, const char *target, size_t target_len, int *fd,
                    long long *size, const char **ctype);

#endif
