/*
 * ws_upgrade.c — the server's side of the WebSocket opening handshake [RFC 6455 4.2]: check
 * the request, compute Sec-WebSocket-Accept, pick the MQTT subprotocol, write the answer.
 */
#include "ws.h"

#include <stdio.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>

#include "http.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

void ws_accept_key(const char *key, size_t keylen, char out[29])
{
    unsigned char buf[128], sha[20];
    size_t n = 0, glen = strlen(WS_GUID);

    if (keylen > sizeof(buf) - glen)
        keylen = sizeof(buf) - glen; /* callers pass 24-byte keys */
    memcpy(buf, key, keylen);
    memcpy(buf + keylen, WS_GUID, glen);
    mbedtls_sha1_ret(buf, keylen + glen, sha);
    mbedtls_base64_encode((unsigned char *)out, 29, &n, sha, sizeof(sha));
    out[n] = '\0';
}

/* The subprotocol to answer: "mqtt" when offered, else "mqttv3.1" (the name older clients
 * use for the same bytes), "" when the client offered none, NULL when it offered only others. */
static const char *ws_subprotocol(const struct http_request *req)
{
    static const char *const ours[] = {"mqtt", "mqttv3.1"};

    if (!http_header_get(req, "Sec-WebSocket-Protocol"))
        return "";
    for (size_t k = 0; k < sizeof(ours) / sizeof(ours[0]); k++)
        if (http_header_has_token(req, "Sec-WebSocket-Protocol", ours[k]))
            return ours[k];
    return NULL;
}

/* A Sec-WebSocket-Key is the base64 of 16 bytes [RFC 6455 4.1]. */
static bool ws_key_ok(const struct http_view *key)
{
    unsigned char raw[32];
    size_t n = 0;

    return key && key->len == 24 &&
           mbedtls_base64_decode(raw, sizeof(raw), &n, (const unsigned char *)key->p, key->len) ==
               0 &&
           n == 16;
}

static size_t ws_error(char *out, size_t cap, int status, const char *reason, const char *extra,
                       const char *body)
{
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n%s\r\n%s",
                     status, reason, strlen(body), extra, body);

    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

int ws_upgrade(const struct http_request *req, char *out, size_t cap, size_t *out_len,
               const char **why)
{
    const struct http_view *key = http_header_get(req, "Sec-WebSocket-Key");
    const struct http_view *ver = http_header_get(req, "Sec-WebSocket-Version");
    const char *proto;
    char accept[29];
    int status = 400, n;

    *why = NULL;
    if (!http_view_eq(req->method, "GET"))
        *why = "upgrade with a method other than GET";
    else if (req->minor != 1)
        *why = "upgrade over HTTP/1.0";
    else if (!http_header_get(req, "Host"))
        *why = "no Host header";
    else if (!http_header_has_token(req, "Upgrade", "websocket"))
        *why = "no \"Upgrade: websocket\"";
    else if (!http_header_has_token(req, "Connection", "upgrade"))
        *why = "no \"Connection: Upgrade\"";
    else if (!ws_key_ok(key))
        *why = "missing or malformed Sec-WebSocket-Key";
    else if (!ver || !http_view_eq(*ver, "13"))
        *why = "Sec-WebSocket-Version not 13", status = 426;
    else if (!(proto = ws_subprotocol(req)))
        *why = "no subprotocol Cairn speaks (mqtt, mqttv3.1) offered";
    if (*why) {
        *out_len = ws_error(out, cap, status, status == 426 ? "Upgrade Required" : "Bad Request",
                            status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "", "");
        goto out;
    }
    ws_accept_key(key->p, key->len, accept);
    n = snprintf(out, cap,
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                 accept, *proto ? "Sec-WebSocket-Protocol: " : "", proto, *proto ? "\r\n" : "");
    *out_len = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    status = 101;
out:
    return status;
}
