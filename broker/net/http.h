/*
 * http.h — a pure HTTP/1.x request-head parser for the WebSocket upgrade, static files and
 * /metrics (httpd.c), in the style of picohttpparser: (buf, len) in, views into the caller's
 * buffer out, "partial" as an answer, no allocation, no I/O.
 *
 * Strict on purpose: a request the parser cannot read exactly is answered 400 and closed, and
 * a server that never guesses cannot be smuggled past. Accepted: "METHOD SP TARGET SP
 * HTTP/1.D CRLF", header lines "Name: value CRLF" (name a token; value visible ASCII, spaces,
 * tabs and obs-text; surrounding whitespace trimmed), an empty line. Refused: a bare LF, a
 * folded (obs-fold) line, whitespace before the colon, control bytes, a target that does not
 * start with '/', more than HTTP_MAX_HEADERS headers. A body is never read (no request this
 * server takes has one).
 *
 * Views point into buf and are valid while buf is.
 */
#ifndef CAIRN_HTTP_H
#define CAIRN_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_HEADERS 32

/* Negative answers of http_parse_request. */
enum http_err {
    HTTP_EPARTIAL = 1, /* not an error: the head is not complete yet */
    HTTP_EMETHOD,      /* method not a token */
    HTTP_ETARGET,      /* request target empty, not origin-form or with bad bytes */
    HTTP_EVERSION,     /* not HTTP/1.0 or HTTP/1.1 */
    HTTP_ELINE,        /* request line or header line malformed (bare LF, fold, control byte) */
    HTTP_EHEADER,      /* header name not a token, or no colon */
    HTTP_ETOOMANY,     /* more than HTTP_MAX_HEADERS header lines */
};

struct http_view {
    const char *p;
    size_t len;
};

struct http_header {
    struct http_view name;
    struct http_view value;
};

struct http_request {
    struct http_view method;
    struct http_view target; /* origin-form: path and query, as sent (not decoded) */
    int minor;               /* HTTP/1.minor: 0 or 1 */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t n_headers;
};

/*
 * Parse the request head at the start of buf. Returns its length including the blank line
 * (bytes after it belong to the next protocol: WebSocket frames may follow at once),
 * -HTTP_EPARTIAL when more bytes are needed, or another -HTTP_E... code.
 */
int http_parse_request(const char *buf, size_t len, struct http_request *req);

/* The value of the first header named name (case-insensitive), or NULL. */
const struct http_view *http_header_get(const struct http_request *req, const char *name);
/*
 * Does the comma-separated list in every header named name contain token (case-insensitive,
 * whitespace around items ignored)? ("Connection: keep-alive, Upgrade" has "upgrade".)
 */
bool http_header_has_token(const struct http_request *req, const char *name, const char *token);
/* Is v equal to s ignoring ASCII case? */
bool http_view_eq(struct http_view v, const char *s);
/* Short text for a -HTTP_E... code. */
const char *http_strerror(int err);

#endif
