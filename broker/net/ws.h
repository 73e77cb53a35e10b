/*
 * ws.h — MQTT over WebSockets (RFC 6455, server side): the opening handshake's answer
 * (ws_upgrade.c) and the transport that carries MQTT bytes in binary frames over an inner
 * transport, TCP or TLS (ws_transport.c).
 *
 * The HTTP request itself is read by the listener's HTTP front (httpd.h), which calls
 * ws_upgrade() and, once the 101 answer is written, wraps the inner transport with
 * ws_transport_new() and hands it to the connection pool: the MQTT code never sees HTTP or
 * frames, and an HTTP client that never upgrades never becomes an MQTT connection.
 *
 * Reading: bytes from the inner transport are decoded in place (ws_frame.h) into the caller's
 * buffer, so a packet may span frames and a frame may hold several packets. A Ping is
 * answered with a Pong (only the latest, as RFC 6455 5.5.3 allows); a Close makes read()
 * answer 0 after the data before it, and the Close is echoed when the transport closes. A
 * frame the decoder refuses is logged with its reason and read() fails with -EPROTO; the
 * connection then closes, and the Close sent last carries the status (1002, 1003, 1007, 1009).
 *
 * Writing: writev() sends what it is offered as one binary frame: its header, then the
 * caller's iovecs as they are (a server does not mask), in one gathered write to the inner
 * transport — many MQTT packets per frame, one syscall. A frame partly written is finished
 * from the bytes the caller offers again before anything else goes (the caller re-offers what
 * was not accepted, as for TLS); Pongs wait for the end of a frame. close() ends with a Close
 * frame (1000 unless the peer's code or a refusal says otherwise), best effort.
 */
#ifndef CAIRN_WS_H
#define CAIRN_WS_H

#include <stddef.h>
#include <stdint.h>

struct http_request;
struct transport;

/* The largest frame accepted: the largest MQTT packet (268435455 bytes after a 5-byte fixed
 * header). Bigger cannot be MQTT; a frame over it is closed with 1009. */
#define WS_MAX_FRAME (268435455ull + 5u)

/*
 * Answer a WebSocket upgrade request: 101 with Sec-WebSocket-Accept (SHA-1 and base64 from
 * mbedTLS) and the chosen subprotocol ("mqtt", or "mqttv3.1"; none when the client offers
 * none), or an error status (400, or 426 with the version Cairn speaks). The whole HTTP answer
 * goes into out (cap bytes; 512 is enough); its length in *out_len; the returned value is the
 * status; *why says what was wrong for the log (NULL on 101).
 */
int ws_upgrade(const struct http_request *req, char *out, size_t cap, size_t *out_len,
               const char **why);

/* Sec-WebSocket-Accept for key (its base64 text as sent) into out (29 bytes with the NUL). */
void ws_accept_key(const char *key, size_t keylen, char out[29]);

/*
 * Wrap inner (ownership taken; closed with the result) after a 101 was written. early holds
 * bytes read after the request head (frames the client sent at once; copied). peer is for log
 * lines (copied); verbose (websockets_log_level nonzero) logs each Close at debug. NULL on
 * ENOMEM (inner is closed then).
 */
struct transport *ws_transport_new(struct transport *inner, const uint8_t *early, size_t early_len,
                                   const char *peer, int verbose);

#endif
