/*
 * ws_frame.c — the streaming frame decoder and the server's frame headers (ws_frame.h).
 */
#include "ws_frame.h"

#include <string.h>

#include "mqtt.h"

void ws_rx_init(struct ws_rx *rx, uint64_t max_frame)
{
    memset(rx, 0, sizeof(*rx));
    rx->max_frame = max_frame;
}

static enum ws_rx_event ws_rx_fail(struct ws_rx *rx, uint16_t status, const char *why)
{
    rx->status = status;
    rx->why = why;
    return WS_RX_ERROR;
}

/* Bytes the header in rx->hdr needs in all, judged from what has arrived (at least 2). An
 * unmasked header is complete without a key: it is refused at once, not waited for. */
static size_t ws_rx_header_need(const struct ws_rx *rx)
{
    size_t need = rx->hdr[1] & 0x80 ? 2 + 4 : 2;
    uint8_t len7 = rx->hdr[1] & 0x7f;

    if (len7 == 126)
        need += 2;
    else if (len7 == 127)
        need += 8;
    return need;
}

/* The whole header is in rx->hdr: check it and enter the frame. */
static enum ws_rx_event ws_rx_header(struct ws_rx *rx)
{
    uint8_t b0 = rx->hdr[0], b1 = rx->hdr[1], len7 = b1 & 0x7f;
    uint8_t op = b0 & 0x0f;
    const uint8_t *m = rx->hdr + 2;
    uint64_t len = len7;
    bool control = op & 0x08;

    if (b0 & 0x70)
        return ws_rx_fail(rx, WS_CLOSE_PROTOCOL, "RSV bits set without an extension");
    if (!(b1 & 0x80))
        return ws_rx_fail(rx, WS_CLOSE_PROTOCOL, "unmasked frame from a client");
    if (len7 == 126) {
        len = (uint64_t)m[0] << 8 | m[1];
        if (len < 126)
            return ws_rx_fail(rx, WS_CLOSE_PROTOCOL, "frame length not in its minimal form");
        m += 2;
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | m[i];
        if (len >> 63)
            return ws_rx_fail(rx, WS_CLOSE_PROTOCOL, "frame length with the top bit set");
        if (len <= 0xffff)
            return ws_rx_fail(rx, WS_CLOSE_PROTOCOL, "frame length not in its minimal form");
        m += 8;
    }
    memcpy(rx->mask, m, 4);
    rx->fin = b0 & 0x80;
    if (control) {
        if (op != WS_OP_CLOSE && op != WS_OP_PING && op != WS_OP_PONG)
            return ws_rx_fail(rx, WS_CLOSE_PROTOCOL, "reserved control opcode");
        if (!rx->fin || len > WS_CTRL_MAX)
            return ws_rx_fail(rx, WS_CLOSE_PROTOCOL, "control frame fragmented or too long");
    } else if (op == WS_OP_TEXT) {
        return ws_rx_fail(rx, WS_CLOSE_UNSUPPORTED, "text frame (MQTT needs binary frames)");
    } else if (op == WS_OP_BINARY) {
        if (rx->fragmented)
            return ws_rx_fail(rx, WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
        rx->fragmented = !rx->fin;
    } else if (op == WS_OP_CONT) {
        if (!rx->fragmented)
            return ws_rx_fail(rx, WS_CLOSE_PROTOCOL, "continuation with nothing to continue");
        rx->fragmented = !rx->fin;
    } else {
        return ws_rx_fail(rx, WS_CLOSE_PROTOCOL, "reserved data opcode");
    }
    if (len > rx->max_frame)
        return ws_rx_fail(rx, WS_CLOSE_TOO_BIG, "frame larger than allowed");
    rx->opcode = op;
    rx->left = len;
    rx->pos = 0;
    rx->in_frame = true;
    rx->hdr_len = 0;
    rx->ctrl_len = 0;
    return WS_RX_MORE;
}

/* Unmask n bytes from in to out (out <= in or apart); pos is the payload index of in[0]. */
static void ws_unmask(const uint8_t *in, uint8_t *out, size_t n, const uint8_t mask[4],
                      uint64_t pos)
{
    uint8_t k[8];
    uint64_t k64;
    size_t i = 0;

    for (int j = 0; j < 8; j++)
        k[j] = mask[(pos + (uint64_t)j) & 3];
    memcpy(&k64, k, 8);
    /* eight bytes at a time: every load comes before the store that could overlap it */
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, in + i, 8);
        w ^= k64;
        memcpy(out + i, &w, 8);
    }
    for (; i < n; i++)
        out[i] = in[i] ^ k[i & 7];
}

/* A whole control frame is in rx->ctrl: what it means. */
static enum ws_rx_event ws_rx_control(struct ws_rx *rx)
{
    uint16_t code;
    int u;

    rx->in_frame = false;
    if (rx->opcode == WS_OP_PING)
        return WS_RX_PING;
    if (rx->opcode == WS_OP_PONG)
        return WS_RX_PONG;
    if (rx->ctrl_len == 0) {
        rx->status = WS_CLOSE_NO_STATUS;
        return WS_RX_CLOSE;
    }
    if (rx->ctrl_len == 1)
        return ws_rx_fail(rx, WS_CLOSE_PROTOCOL, "Close with a 1-byte payload");
    code = (uint16_t)(rx->ctrl[0] << 8 | rx->ctrl[1]);
    /* codes a peer may send [RFC 6455 7.4.1, 7.4.2] */
    if (!((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
          (code >= 3000 && code <= 4999)))
        return ws_rx_fail(rx, WS_CLOSE_PROTOCOL, "Close with a status a peer may not send");
    u = mqtt_utf8_validate(rx->ctrl + 2, rx->ctrl_len - 2u);
    if (u < 0 && u != -MQTT_EUTF8_NUL) /* U+0000 is UTF-8, only MQTT forbids it */
        return ws_rx_fail(rx, WS_CLOSE_BAD_DATA, "Close reason not UTF-8");
    rx->status = code;
    return WS_RX_CLOSE;
}

enum ws_rx_event ws_rx_feed(struct ws_rx *rx, const uint8_t *in, size_t len, uint8_t *out,
                            size_t *consumed, size_t *produced)
{
    enum ws_rx_event ev = WS_RX_MORE;
    size_t i = 0, o = 0;

    while (i < len) {
        size_t n;

        if (!rx->in_frame) {
            size_t need = rx->hdr_len < 2 ? 2 : ws_rx_header_need(rx);

            rx->hdr[rx->hdr_len++] = in[i++];
            if (rx->hdr_len == 2)
                need = ws_rx_header_need(rx);
            if (rx->hdr_len < need)
                continue;
            ev = ws_rx_header(rx);
            if (ev != WS_RX_MORE)
                break;
        }
        n = len - i < rx->left ? len - i : (size_t)rx->left;
        if (rx->opcode & 0x08) {
            ws_unmask(in + i, rx->ctrl + rx->ctrl_len, n, rx->mask, rx->pos);
            rx->ctrl_len = (uint8_t)(rx->ctrl_len + n);
        } else {
            ws_unmask(in + i, out + o, n, rx->mask, rx->pos);
            o += n;
        }
        i += n;
        rx->pos += n;
        rx->left -= n;
        if (rx->left > 0)
            continue;
        if (rx->opcode & 0x08) {
            ev = ws_rx_control(rx);
            break;
        }
        rx->in_frame = false; /* an empty data frame ends here too */
    }
    *consumed = i;
    *produced = o;
    return ev;
}

size_t ws_frame_header(uint8_t *hdr, uint8_t opcode, uint64_t len)
{
    size_t n = 2;

    hdr[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        hdr[1] = (uint8_t)len;
    } else if (len <= 0xffff) {
        hdr[1] = 126;
        hdr[2] = (uint8_t)(len >> 8);
        hdr[3] = (uint8_t)len;
        n = 4;
    } else {
        hdr[1] = 127;
        for (int i = 0; i < 8; i++)
            hdr[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    return n;
}

size_t ws_frame_close(uint8_t *out, uint16_t status)
{
    size_t n = ws_frame_header(out, WS_OP_CLOSE, status ? 2 : 0);

    if (status) {
        out[n++] = (uint8_t)(status >> 8);
        out[n++] = (uint8_t)status;
    }
    return n;
}
