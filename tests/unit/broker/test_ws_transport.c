/*
 * test_ws_transport.c — the WebSocket transport (broker/net/ws_transport.c) over a mock inner
 * transport: every frame of one writev leaves in one inner write, one frame per MQTT packet,
 * and the stream survives inner writes that take any number of bytes (the caller offering
 * again what was not taken, as conn.c does); a Pong goes only at a frame boundary; reading
 * decodes frames in place whatever the inner transport hands over at a time; a Close makes
 * read() answer 0 and is echoed on close().
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "transport.h"
#include "ws.h"

/* ---- the mock inner transport ---------------------------------------------------------- */

struct mock {
    struct transport base;
    uint8_t wire[1 << 20]; /* everything written */
    size_t wire_len;
    int writes;
    size_t take;       /* bytes accepted per write (0: all) */
    const uint8_t *in; /* bytes read() hands out */
    size_t in_len;
    size_t in_off;
    size_t chunk; /* per read */
    int closed;
};

static ssize_t mock_writev(struct transport *t, const struct iovec *iov, int cnt)
{
    struct mock *m = (struct mock *)t;
    size_t n = 0, limit = m->take ? m->take : SIZE_MAX;

    m->writes++;
    for (int i = 0; i < cnt && n < limit; i++) {
        size_t k = iov[i].iov_len < limit - n ? iov[i].iov_len : limit - n;
        memcpy(m->wire + m->wire_len + n, iov[i].iov_base, k);
        n += k;
    }
    m->wire_len += n;
    return n ? (ssize_t)n : -EAGAIN;
}

static ssize_t mock_read(struct transport *t, void *buf, size_t len)
{
    struct mock *m = (struct mock *)t;
    size_t n = m->in_len - m->in_off;

    if (n == 0)
        return -EAGAIN;
    if (n > m->chunk)
        n = m->chunk;
    if (n > len)
        n = len;
    memcpy(buf, m->in + m->in_off, n);
    m->in_off += n;
    return (ssize_t)n;
}

static int mock_handshake(struct transport *t)
{
    (void)t;
    return 0;
}

static size_t mock_pending(const struct transport *t)
{
    (void)t;
    return 0;
}

static int mock_want(const struct transport *t, int w)
{
    (void)t;
    return w;
}

static const char *mock_identity(const struct transport *t)
{
    (void)t;
    return NULL;
}

static void mock_close(struct transport *t)
{
    ((struct mock *)t)->closed++;
}

static const struct transport_ops mock_ops = {
    .handshake = mock_handshake,
    .read = mock_read,
    .writev = mock_writev,
    .pending = mock_pending,
    .want_events = mock_want,
    .identity = mock_identity,
    .close = mock_close,
};

static struct mock *mock_new(void)
{
    struct mock *m = calloc(1, sizeof(*m));

    assert_non_null(m);
    m->base.ops = &mock_ops;
    m->base.fd = -1;
    m->chunk = SIZE_MAX;
    return m;
}

/* ---- helpers ------------------------------------------------------------------------------ */

/* n MQTT packets of assorted sizes into out; their lengths in lens. Returns the stream size. */
static size_t make_stream(uint8_t *out, size_t n, size_t *lens)
{
    size_t len = 0;

    for (size_t i = 0; i < n; i++) {
        size_t body = (i * 37) % 300 + (i % 7 == 0 ? 20000 : 0);
        size_t h = 1, rem = body;

        out[len] = 0x30;
        do {
            uint8_t d = rem & 0x7f;
            rem >>= 7;
            out[len + h++] = d | (rem ? 0x80 : 0);
        } while (rem);
        for (size_t k = 0; k < body; k++)
            out[len + h + k] = (uint8_t)(i + k);
        lens[i] = h + body;
        len += lens[i];
    }
    return len;
}

/* Parse the server frames on the wire: payloads concatenated into out; checks one packet per
 * binary frame against lens. Returns the payload bytes; pongs counted into *pongs. */
static size_t parse_wire(const struct mock *m, uint8_t *out, const size_t *lens, size_t *pongs,
                         int *close_status)
{
    size_t pos = 0, o = 0, f = 0;

    while (pos < m->wire_len) {
        uint8_t b0 = m->wire[pos], b1 = m->wire[pos + 1];
        uint64_t n = b1 & 0x7f;
        size_t h = 2;

        assert_int_equal(b1 & 0x80, 0); /* servers do not mask */
        if (n == 126) {
            n = (uint64_t)m->wire[pos + 2] << 8 | m->wire[pos + 3];
            h = 4;
        } else if (n == 127) {
            n = 0;
            for (int i = 0; i < 8; i++)
                n = n << 8 | m->wire[pos + 2 + i];
            h = 10;
        }
        if (b0 == 0x82) {
            if (lens)
                assert_int_equal(n, lens[f]);
            f++;
            memcpy(out + o, m->wire + pos + h, n);
            o += n;
        } else if (b0 == 0x8a) {
            (*pongs)++;
        } else if (b0 == 0x88 && close_status) {
            *close_status = m->wire[pos + h] << 8 | m->wire[pos + h + 1];
        } else {
            fail_msg("unexpected frame 0x%02x", b0);
        }
        pos += h + n;
    }
    assert_int_equal(pos, m->wire_len);
    return o;
}

/* Offer stream as conn.c would: up to 128 iovecs of at most `piece` bytes, again and again
 * from the first byte not accepted. Returns the writev calls made. */
static int drain(struct transport *t, const uint8_t *stream, size_t len, size_t piece)
{
    size_t done = 0;
    int calls = 0, stuck = 0;

    while (done < len) {
        struct iovec iov[128];
        int cnt = 0;
        ssize_t n;

        for (size_t p = done; p < len && cnt < 128; p += piece)
            iov[cnt++] = (struct iovec){(void *)(stream + p), len - p < piece ? len - p : piece};
        n = t->ops->writev(t, iov, cnt);
        calls++;
        if (n == -EAGAIN) {
            assert_true(++stuck < 100);
            continue;
        }
        assert_true(n > 0);
        stuck = 0;
        done += (size_t)n;
    }
    return calls;
}

/* ---- tests -------------------------------------------------------------------------------- */

static uint8_t stream[1 << 19], back[1 << 19];
static size_t lens[200];

static void test_one_write_per_flush(void **state)
{
    struct mock *m = mock_new();
    struct transport *t = ws_transport_new(&m->base, NULL, 0, "test", 0);
    size_t len = make_stream(stream, 60, lens), pongs = 0;
    struct iovec iov[120];
    int cnt = 0;

    (void)state;
    /* each packet in two iovecs, as a PUBLISH header and its payload are */
    for (size_t i = 0, pos = 0; i < 60; pos += lens[i], i++) {
        iov[cnt++] = (struct iovec){stream + pos, 3};
        iov[cnt++] = (struct iovec){stream + pos + 3, lens[i] - 3};
    }
    assert_int_equal(t->ops->writev(t, iov, cnt), (ssize_t)len);
    assert_int_equal(m->writes, 1); /* 60 frames, one inner write */
    assert_int_equal(parse_wire(m, back, lens, &pongs, NULL), len);
    assert_memory_equal(back, stream, len);
    t->ops->close(t);
    free(m);
}

static void test_partial_writes(void **state)
{
    static const size_t takes[] = {1, 2, 3, 5, 7, 13, 100, 1000, 4096, 65536};
    static const size_t pieces[] = {1, 3, 64, 1000, 100000};

    (void)state;
    for (size_t a = 0; a < sizeof(takes) / sizeof(takes[0]); a++) {
        for (size_t b = 0; b < sizeof(pieces) / sizeof(pieces[0]); b++) {
            struct mock *m = mock_new();
            struct transport *t = ws_transport_new(&m->base, NULL, 0, "test", 0);
            size_t len = make_stream(stream, 40, lens), pongs = 0;

            m->take = takes[a];
            drain(t, stream, len, pieces[b]);
            assert_int_equal(parse_wire(m, back, lens, &pongs, NULL), len);
            assert_memory_equal(back, stream, len);
            t->ops->close(t);
            free(m);
        }
    }
}

/* A masked client frame of payload p (n bytes) into out: its length. */
static size_t client_frame(uint8_t *out, uint8_t b0, const uint8_t *p, size_t n)
{
    static const uint8_t key[4] = {9, 8, 7, 6};
    size_t h = 0;

    out[h++] = b0;
    if (n < 126) {
        out[h++] = (uint8_t)(0x80 | n);
    } else {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(n >> 8);
        out[h++] = (uint8_t)n;
    }
    memcpy(out + h, key, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        out[h + i] = p[i] ^ key[i & 3];
    return h + n;
}

static void test_read_and_pong(void **state)
{
    static uint8_t in[4096];
    static const uint8_t data[] = {0xc0, 0x00, 0x30, 0x05, 0x00, 0x01, 'a', 'x', 'y', 0xc0, 0x00};
    uint8_t buf[256];

    (void)state;
    for (size_t chunk = 1; chunk <= 40; chunk++) {
        struct mock *m = mock_new();
        struct transport *t = ws_transport_new(&m->base, NULL, 0, "test", 0);
        size_t n = 0, got = 0, pongs = 0, lens2[1];
        int close_status = 0;
        ssize_t r;

        n += client_frame(in + n, 0x02, data, 4);                        /* fragment */
        n += client_frame(in + n, 0x89, (const uint8_t *)"ping", 4);     /* ping in between */
        n += client_frame(in + n, 0x80, data + 4, sizeof(data) - 4);     /* last fragment */
        n += client_frame(in + n, 0x88, (const uint8_t *)"\x03\xe9", 2); /* Close 1001 */
        m->in = in;
        m->in_len = n;
        m->chunk = chunk;
        /* a frame under way: half a packet written, the Pong must wait for its end */
        make_stream(stream, 1, lens2);
        m->take = 5; /* the 4-byte frame header and one payload byte */
        {
            struct iovec iov = {stream, lens2[0]};
            assert_int_equal(t->ops->writev(t, &iov, 1), 1);
        }
        m->take = 0;
        while ((r = t->ops->read(t, buf + got, sizeof(buf) - got)) > 0)
            got += (size_t)r;
        assert_int_equal(r, 0); /* the Close */
        assert_int_equal(got, sizeof(data));
        assert_memory_equal(buf, data, sizeof(data));
        /* the rest of the frame, then the Pong, then the echoed Close */
        {
            struct iovec iov = {stream + 1, lens2[0] - 1};
            assert_int_equal(t->ops->writev(t, &iov, 1), (ssize_t)lens2[0] - 1);
        }
        assert_int_equal(t->ops->flush(t), 0);
        t->ops->close(t);
        assert_int_equal(parse_wire(m, back, NULL, &pongs, &close_status), lens2[0]);
        assert_int_equal(pongs, 1);
        assert_int_equal(close_status, 1001);
        assert_int_equal(m->closed, 1);
        free(m);
    }
}

static void test_refusal(void **state)
{
    static const uint8_t text[] = {0x81, 0x81, 1, 2, 3, 4, 'x'};
    struct mock *m = mock_new();
    struct transport *t = ws_transport_new(&m->base, (const uint8_t *)text, sizeof(text), "t", 0);
    uint8_t buf[64];
    size_t pongs = 0;
    int st = 0;

    (void)state;
    assert_true(t->ops->pending(t) > 0); /* bytes read with the upgrade request wait */
    assert_int_equal(t->ops->read(t, buf, sizeof(buf)), -EPROTO);
    t->ops->close(t);
    parse_wire(m, back, NULL, &pongs, &st);
    assert_int_equal(st, 1003);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_write_per_flush),
        cmocka_unit_test(test_partial_writes),
        cmocka_unit_test(test_read_and_pong),
        cmocka_unit_test(test_refusal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
