/*
 * harness_ws.h — raw WebSocket clients for the integration tests: exact HTTP requests and
 * exact frames (masked or not, on purpose), and a relay that turns a WebSocket connection into
 * a plain socket so that every raw_* MQTT helper of harness.h works over WebSockets unchanged.
 *
 * Like harness_raw.c it encodes on its own, sharing no code with the broker under test.
 */
#ifndef CAIRN_HARNESS_WS_H
#define CAIRN_HARNESS_WS_H

#include "harness.h"

/* A TCP connection to 127.0.0.1:port: the fd, or -1. */
int ws_tcp_connect(int port);
/*
 * Send req (len bytes) on a new connection and read the answer until the server closes (or
 * timeout_ms). Returns the HTTP status (0 when none could be read); *resp (malloc'd, caller
 * frees, NUL-terminated) gets everything read when not NULL.
 */
int ws_http(int port, const char *req, size_t len, char **resp, int timeout_ms);
/*
 * Open a WebSocket to port with Sec-WebSocket-Protocol proto (NULL: none): the fd once a 101
 * with the right Sec-WebSocket-Accept arrived, or -1 (the status line is noted).
 */
int ws_open(int port, const char *proto);
/* One frame: first byte b0 (FIN | opcode), payload, masked or not. 0 or -1. */
int ws_send_frame(int fd, uint8_t b0, const void *payload, size_t len, bool mask);
/* Send bytes as one binary frame (masked). 0 or -1. */
int ws_send_binary(int fd, const void *payload, size_t len);
/*
 * Read one frame from the server: 1 with *b0 and a malloc'd *payload of *len bytes (caller
 * frees), 0 on timeout, -1 when the connection closed or the frame was masked (a server must
 * not mask).
 */
int ws_read_frame(int fd, uint8_t *b0, uint8_t **payload, size_t *len, int timeout_ms);
/*
 * Read frames until a Close: its status (1005 when it carries none) once the server has also
 * closed the TCP connection, or -1 (timeout, closed without a Close frame).
 */
int ws_expect_close(int fd, int timeout_ms);

/*
 * A relay: a thread that carries bytes between a socketpair end (returned) and a WebSocket
 * connection to port (binary frames, masked, one per chunk read). Closing the returned fd
 * closes the WebSocket (Close 1000 first); the server closing closes the fd.
 */
struct ws_relay;
/* The fd for the raw_* helpers, or -1. *out gets the relay for ws_relay_free. */
int ws_relay_open(int port, struct ws_relay **out);
/* Frames received from the server so far (binary ones). */
long ws_relay_frames(struct ws_relay *r);
/* The status of the server's Close, 0 when none came (yet). */
int ws_relay_close_status(struct ws_relay *r);
/* Close the fd (if still open), stop and free. NULL does nothing. */
void ws_relay_free(struct ws_relay *r);

#endif
