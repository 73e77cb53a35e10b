/*
 * fuzz_ws_frame.c — the streaming frame decoder (broker/net/ws_frame.c) on arbitrary bytes, as a
 * differential check: the input fed at once (decoded in place) and fed in pieces whose sizes
 * the first byte picks (into another buffer) must give the same payload stream and the same
 * events with the same control payloads and statuses, whatever the split.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ws_frame.h"

struct fuzz_trace {
    uint8_t out[65536];
    size_t out_len;
    uint8_t ev[512];
    size_t n_ev;
    uint16_t status[512];
    size_t ctrl_sum; /* control payload bytes seen */
};

/* Feed data in pieces of step bytes (0: all at once, in place). */
static void fuzz_run(const uint8_t *data, size_t size, size_t step, struct fuzz_trace *t)
{
    struct ws_rx rx;
    uint8_t *copy = malloc(size ? size : 1);
    size_t pos = 0;

    if (!copy)
        abort();
    memcpy(copy, data, size);
    ws_rx_init(&rx, 1u << 20);
    while (pos < size) {
        size_t len = step && size - pos > step ? step : size - pos, consumed, produced;
        uint8_t *out = step ? t->out + t->out_len : copy + pos;
        enum ws_rx_event ev = ws_rx_feed(&rx, copy + pos, len, out, &consumed, &produced);

        if (consumed > len || produced > consumed)
            abort();
        if (!step)
            memmove(t->out + t->out_len, out, produced);
        t->out_len += produced;
        pos += consumed;
        if (ev != WS_RX_MORE && t->n_ev < sizeof(t->ev)) {
            t->ev[t->n_ev] = (uint8_t)ev;
            t->status[t->n_ev++] = ev == WS_RX_CLOSE || ev == WS_RX_ERROR ? rx.status : 0;
            if (ev == WS_RX_PING || ev == WS_RX_PONG || ev == WS_RX_CLOSE)
                t->ctrl_sum += rx.ctrl_len;
        }
        if (ev == WS_RX_ERROR)
            break;
        if (ev == WS_RX_MORE && consumed != len)
            abort(); /* MORE means everything offered was used */
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_trace a, b;
    size_t step;

    if (size < 1 || size > 60000)
        return 0;
    step = (size_t)(data[0] % 17) + 1;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    fuzz_run(data + 1, size - 1, 0, &a);
    fuzz_run(data + 1, size - 1, step, &b);
    if (a.out_len != b.out_len || memcmp(a.out, b.out, a.out_len) != 0)
        abort();
    if (a.n_ev != b.n_ev || memcmp(a.ev, b.ev, a.n_ev) != 0 ||
        memcmp(a.status, b.status, a.n_ev * sizeof(a.status[0])) != 0 || a.ctrl_sum != b.ctrl_sum)
        abort();
    return 0;
}
