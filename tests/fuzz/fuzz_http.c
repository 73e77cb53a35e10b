/*
 * fuzz_http.c — the HTTP request-head parser (broker/net/http.c) and the WebSocket upgrade answer
 * (broker/net/ws_upgrade.c) on arbitrary bytes. A head that parses must lie inside the input, end
 * with its blank line, and hold views inside it; parsing a prefix of it must answer "partial"
 * or the same error class, never succeed; the upgrade answer must fit and start with a status
 * line.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"
#include "ws.h"

static void fuzz_http_view_in(struct http_view v, const uint8_t *data, size_t n)
{
    if (v.len && ((const uint8_t *)v.p < data || (const uint8_t *)v.p + v.len > data + n))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_request req;
    char out[512];
    size_t out_len = 0;
    const char *why;
    int rc = http_parse_request((const char *)data, size, &req), st;

    if (rc < 0) {
        if (rc < -HTTP_ETOOMANY || http_strerror(rc)[0] == '\0')
            abort();
        return 0;
    }
    if ((size_t)rc > size || rc < 4 || memcmp(data + rc - 4, "\r\n\r\n", 4) != 0)
        abort();
    fuzz_http_view_in(req.method, data, (size_t)rc);
    fuzz_http_view_in(req.target, data, (size_t)rc);
    if (req.minor != 0 && req.minor != 1)
        abort();
    if (req.target.len == 0 || req.target.p[0] != '/')
        abort();
    for (size_t i = 0; i < req.n_headers; i++) {
        fuzz_http_view_in(req.headers[i].name, data, (size_t)rc);
        fuzz_http_view_in(req.headers[i].value, data, (size_t)rc);
        if (req.headers[i].name.len == 0)
            abort();
    }
    /* a complete head is never complete one byte earlier */
    {
        struct http_request r2;
        if (http_parse_request((const char *)data, (size_t)rc - 1, &r2) >= 0)
            abort();
    }
    http_header_has_token(&req, "Connection", "upgrade");
    st = ws_upgrade(&req, out, sizeof(out), &out_len, &why);
    if (out_len >= sizeof(out) || memcmp(out, "HTTP/1.1 ", 9) != 0)
        abort();
    if ((st == 101) != (why == NULL))
        abort();
    return 0;
}
