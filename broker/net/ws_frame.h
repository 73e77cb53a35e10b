/*
 * ws_frame.h — RFC 6455 framing, server side, as pure functions: a streaming decoder that turns
 * the bytes a client sends into the payload of its binary messages, in place, and reports the
 * control frames it meets; and the encoder of the (unmasked) frame headers a server sends. No
 * allocation, no I/O; fuzzed by tests/fuzz/fuzz_ws_frame.c.
 *
 * The decoder streams: a frame is never gathered whole. Payload bytes are unmasked as they
 * arrive and moved to the front of the caller's buffer, so an MQTT packet may span frames and a
 * frame may hold several packets, and a large frame costs no memory. Header bytes that arrive
 * split across reads wait in the state (at most 14). Control frame payloads (at most 125
 * bytes) are gathered in the state and reported when whole.
 *
 * Refused, with the close status RFC 6455 gives (ws_rx.status): an unmasked frame [5.1], RSV
 * bits without an extension [5.2], a reserved opcode, a control frame fragmented or over 125
 * bytes [5.5], a continuation with nothing to continue or a new message inside a fragmented
 * one [5.4], a length not in its minimal form or with the top bit set [5.2] — all 1002; a text
 * frame, 1003 (MQTT travels in binary frames only [MQTT-6.0.0-1]); a frame over max_frame
 * bytes, 1009; a Close whose payload is 1 byte, whose code is not one a peer may send, or
 * whose reason is not UTF-8, 1002 / 1007.
 */
#ifndef CAIRN_WS_FRAME_H
#define CAIRN_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_OP_CONT   0x0
#define WS_OP_TEXT   0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE  0x8
#define WS_OP_PING   0x9
#define WS_OP_PONG   0xA

#define WS_CTRL_MAX   125 /* control frame payload [RFC 6455 5.5] */
#define WS_HEADER_MAX 14  /* 2 + 8 (length) + 4 (mask) */
#define WS_SERVER_HDR 10  /* the longest header a server sends (unmasked) */

/* Close status codes [RFC 6455 7.4.1] */
#define WS_CLOSE_NORMAL      1000
#define WS_CLOSE_GOING_AWAY  1001
#define WS_CLOSE_PROTOCOL    1002
#define WS_CLOSE_UNSUPPORTED 1003
#define WS_CLOSE_NO_STATUS   1005 /* never sent: a Close without a code */
#define WS_CLOSE_BAD_DATA    1007
#define WS_CLOSE_TOO_BIG     1009

/* What ws_rx_feed stopped for. */
enum ws_rx_event {
    WS_RX_MORE = 0, /* every byte consumed; feed more */
    WS_RX_PING,     /* a whole Ping: its payload in ctrl[0..ctrl_len) */
    WS_RX_PONG,     /* a whole Pong (ignored by servers that send no Pings) */
    WS_RX_CLOSE,    /* a whole Close: status in status (WS_CLOSE_NO_STATUS when none) */
    WS_RX_ERROR,    /* refused: the close status to send in status; stop feeding */
};

struct ws_rx {
    uint64_t max_frame; /* largest frame payload accepted (set before the first feed) */
    uint64_t left;      /* payload bytes still to come in the current frame */
    uint64_t pos;       /* payload bytes of the current frame seen (mask index) */
    uint8_t hdr[WS_HEADER_MAX];
    uint8_t hdr_len; /* header bytes gathered; 0 between frames */
    uint8_t opcode;  /* of the current frame */
    bool fin;
    bool in_frame;   /* header complete, payload (left bytes) to come */
    bool fragmented; /* a binary message is open, continuations expected */
    uint8_t mask[4];
    uint8_t ctrl[WS_CTRL_MAX];
    uint8_t ctrl_len;
    uint16_t status; /* WS_RX_CLOSE: the peer's code; WS_RX_ERROR: the one to send */
    const char *why; /* WS_RX_ERROR: what was wrong, for the log */
};

/* A fresh decoder for frames of at most max_frame payload bytes. */
void ws_rx_init(struct ws_rx *rx, uint64_t max_frame);

/*
 * Decode in[0..len). Binary payload bytes are unmasked and written from out[0] on (out may be
 * in itself, or any buffer of len bytes: the output never overtakes the input). Stops after
 * every whole control frame (the event says which) and on an error; *consumed tells how much
 * of in was used, *produced how many payload bytes were written. Feed the rest again after an
 * event; after WS_RX_ERROR, do not feed again.
 */
enum ws_rx_event ws_rx_feed(struct ws_rx *rx, const uint8_t *in, size_t len, uint8_t *out,
                            size_t *consumed, size_t *produced);

/* The header of a server frame (FIN set, unmasked) for opcode and payload length into hdr
 * (WS_SERVER_HDR bytes). Returns its length (2, 4 or 10). */
size_t ws_frame_header(uint8_t *hdr, uint8_t opcode, uint64_t len);

/*
 * A whole Close frame with status (and no reason) into out (4 bytes); status 0 makes an empty
 * Close. Returns its length.
 */
size_t ws_frame_close(uint8_t *out, uint16_t status);

#endif
