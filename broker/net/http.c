/*
 * http.c — the request-head parser (http.h). One pass over the bytes, returning as soon as the
 * head is complete, an error is certain, or the bytes run out; the caller parses again from the
 * start when more arrive (a head is at most websockets_headers_size bytes).
 */
#include "http.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 tchar */
static bool http_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A byte allowed in a header value: visible ASCII, SP, HTAB, obs-text. */
static bool http_vchar(unsigned char c)
{
    return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

/*
 * The line starting at pos: its end (the CR) in *end and the next line's start returned; 0
 * when the line is not complete, -1 when it holds a bare LF or a CR not followed by LF.
 */
static long http_line(const char *buf, size_t len, size_t pos, size_t *end)
{
    for (size_t i = pos; i < len; i++) {
        if (buf[i] == '\n')
            return -1;
        if (buf[i] == '\r') {
            if (i + 1 == len)
                return 0;
            if (buf[i + 1] != '\n')
                return -1;
            *end = i;
            return (long)(i + 2);
        }
    }
    return 0;
}

static int http_request_line(const char *p, size_t n, struct http_request *req)
{
    size_t i = 0, start;
    int rc = -HTTP_EMETHOD;

    while (i < n && http_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i == n || p[i] != ' ')
        goto out;
    req->method = (struct http_view){p, i};
    rc = -HTTP_ETARGET;
    start = ++i;
    while (i < n && p[i] != ' ') {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f)
            goto out;
        i++;
    }
    if (i == start || i == n || p[start] != '/')
        goto out;
    req->target = (struct http_view){p + start, i - start};
    rc = -HTTP_EVERSION;
    i++;
    if (n - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0 || (p[i + 7] != '0' && p[i + 7] != '1'))
        goto out;
    req->minor = p[i + 7] - '0';
    rc = 0;
out:
    return rc;
}

static int http_header_line(const char *p, size_t n, struct http_header *h)
{
    size_t i = 0, vs, ve;

    while (i < n && http_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i == n || p[i] != ':')
        return -HTTP_EHEADER; /* also "Name :" and a folded line starting with whitespace */
    h->name = (struct http_view){p, i};
    vs = i + 1;
    for (size_t k = vs; k < n; k++)
        if (!http_vchar((unsigned char)p[k]))
            return -HTTP_ELINE;
    while (vs < n && (p[vs] == ' ' || p[vs] == '\t'))
        vs++;
    ve = n;
    while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
        ve--;
    h->value = (struct http_view){p + vs, ve - vs};
    return 0;
}

int http_parse_request(const char *buf, size_t len, struct http_request *req)
{
    size_t end = 0;
    long next = http_line(buf, len, 0, &end);
    int rc;

    req->n_headers = 0;
    /* a first line that cannot become a method (TLS to a plain port, binary noise): at once */
    for (size_t i = 0; next == 0 && i < len && buf[i] != ' '; i++) {
        if (!http_tchar((unsigned char)buf[i])) {
            rc = -HTTP_EMETHOD;
            goto out;
        }
    }
    if (next <= 0) {
        rc = next == 0 ? -HTTP_EPARTIAL : -HTTP_ELINE;
        goto out;
    }
    if ((rc = http_request_line(buf, end, req)) < 0)
        goto out;
    for (;;) {
        size_t pos = (size_t)next;

        next = http_line(buf, len, pos, &end);
        if (next <= 0) {
            rc = next == 0 ? -HTTP_EPARTIAL : -HTTP_ELINE;
            goto out;
        }
        if (end == pos)
            break; /* the blank line */
        if (req->n_headers == HTTP_MAX_HEADERS) {
            rc = -HTTP_ETOOMANY;
            goto out;
        }
        rc = http_header_line(buf + pos, end - pos, &req->headers[req->n_headers]);
        if (rc < 0)
            goto out;
        req->n_headers++;
    }
    rc = (int)next;
out:
    return rc;
}

bool http_view_eq(struct http_view v, const char *s)
{
    return strlen(s) == v.len && strncasecmp(v.p, s, v.len) == 0;
}

const struct http_view *http_header_get(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (http_view_eq(req->headers[i].name, name))
            return &req->headers[i].value;
    return NULL;
}

bool http_header_has_token(const struct http_request *req, const char *name, const char *token)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        struct http_view v = req->headers[i].value;
        size_t pos = 0;

        if (!http_view_eq(req->headers[i].name, name))
            continue;
        while (pos <= v.len) {
            const char *comma = memchr(v.p + pos, ',', v.len - pos);
            size_t s = pos, e = comma ? (size_t)(comma - v.p) : v.len;

            pos = e + 1;
            while (s < e && (v.p[s] == ' ' || v.p[s] == '\t'))
                s++;
            while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
                e--;
            if (http_view_eq((struct http_view){v.p + s, e - s}, token))
                return true;
        }
    }
    return false;
}

const char *http_strerror(int err)
{
    switch (-err) {
    case HTTP_EPARTIAL:
        return "incomplete request";
    case HTTP_EMETHOD:
        return "bad method";
    case HTTP_ETARGET:
        return "bad request target";
    case HTTP_EVERSION:
        return "not HTTP/1.0 or HTTP/1.1";
    case HTTP_ELINE:
        return "malformed line";
    case HTTP_EHEADER:
        return "malformed header";
    case HTTP_ETOOMANY:
        return "too many headers";
    default:
        return "unknown error";
    }
}
