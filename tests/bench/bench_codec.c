/*
 * bench_codec.c — codec throughput on one core: decodes/s and encodes/s for a typical PUBLISH
 * (30-byte topic, 100-byte payload, QoS 0 and QoS 1) and for a CONNECT. Each figure is
 * measured over at least one second of this thread's CPU time (clock_gettime with
 * CLOCK_THREAD_CPUTIME_ID), so other load on a shared machine does not halve the figure; the
 * "cpu %" column says how much of the wall-clock time the thread actually ran. Every result
 * feeds a checksum that is printed, so the compiler cannot drop the work.
 *
 * Usage: bench_codec [SECONDS]   (in the build directory's tests/bench; at least 1 s per figure)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mqtt.h"

static double clock_s(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double now(void)
{
    return clock_s(CLOCK_THREAD_CPUTIME_ID);
}

static double wall_used, cpu_used; /* summed over all figures, for the cpu % column */

/* An opaque barrier: the compiler must assume p's bytes are read and changed. */
static inline void clobber(void *p)
{
    __asm__ volatile("" : : "g"(p) : "memory");
}

static unsigned long long checksum;

/* Decode buf (one packet) in a loop for at least secs seconds; returns decodes per second. */
static double bench_decode(const uint8_t *buf, size_t len, double secs)
{
    const unsigned batch = 100000;
    unsigned long long n = 0;
    double w0 = clock_s(CLOCK_MONOTONIC), t0 = now(), t;
    struct mqtt_packet pkt;

    do {
        for (unsigned i = 0; i < batch; i++) {
            clobber((void *)buf);
            int rc = mqtt_decode(buf, len, 0, &pkt);
            clobber(&pkt);
            checksum += (unsigned)rc + pkt.remaining_length;
        }
        n += batch;
        t = now() - t0;
    } while (t < secs);
    cpu_used += t;
    wall_used += clock_s(CLOCK_MONOTONIC) - w0;
    return (double)n / t;
}

static double bench_encode_publish(const struct mqtt_publish *p, uint8_t *out, size_t cap,
                                   double secs)
{
    const unsigned batch = 100000;
    unsigned long long n = 0;
    double w0 = clock_s(CLOCK_MONOTONIC), t0 = now(), t;

    do {
        for (unsigned i = 0; i < batch; i++) {
            clobber((void *)p);
            size_t k = mqtt_encode_publish(out, cap, p);
            clobber(out);
            checksum += k + out[k - 1];
        }
        n += batch;
        t = now() - t0;
    } while (t < secs);
    cpu_used += t;
    wall_used += clock_s(CLOCK_MONOTONIC) - w0;
    return (double)n / t;
}

static double bench_encode_connect(const struct mqtt_connect *c, uint8_t *out, size_t cap,
                                   double secs)
{
    const unsigned batch = 100000;
    unsigned long long n = 0;
    double w0 = clock_s(CLOCK_MONOTONIC), t0 = now(), t;

    do {
        for (unsigned i = 0; i < batch; i++) {
            clobber((void *)c);
            size_t k = mqtt_encode_connect(out, cap, c);
            clobber(out);
            checksum += k + out[k - 1];
        }
        n += batch;
        t = now() - t0;
    } while (t < secs);
    cpu_used += t;
    wall_used += clock_s(CLOCK_MONOTONIC) - w0;
    return (double)n / t;
}

static void row(const char *what, size_t bytes, double dec, double enc)
{
    printf("%-34s %6zu %12.2f %12.2f %8.1f %8.1f %6.0f\n", what, bytes, dec / 1e6, enc / 1e6,
           1e9 / dec, 1e9 / enc, 100.0 * cpu_used / wall_used);
    cpu_used = wall_used = 0;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    static const char topic[] = "sensors/building-7/floor-3/t01"; /* 30 bytes */
    uint8_t payload[100], buf[512];
    struct mqtt_publish p = {.topic = {(const uint8_t *)topic, sizeof topic - 1},
                             .payload = {payload, sizeof payload}};
    const struct mqtt_connect c = {
        .clean_session = true,
        .keepalive = 60,
        .client_id = {(const uint8_t *)"device-00001234-abcd", 20},
        .has_username = true,
        .username = {(const uint8_t *)"device-user", 11},
        .has_password = true,
        .password = {(const uint8_t *)"s3cret-password", 15},
        .will_flag = true,
        .will_qos = 1,
        .will_topic = {(const uint8_t *)"devices/00001234/status", 23},
        .will_payload = {(const uint8_t *)"offline", 7},
    };
    size_t n;
    double d, e;

    if (secs < 1.0)
        secs = 1.0;
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7 + 1);
    printf("cairn codec benchmark: one core, >= %.1f s of CPU time per figure "
           "(M = million per second of CPU time)\n",
           secs);
    printf("%-34s %6s %12s %12s %8s %8s %6s\n", "packet", "bytes", "decode M/s", "encode M/s",
           "ns/dec", "ns/enc", "cpu %");

    n = mqtt_encode_publish(buf, sizeof buf, &p);
    d = bench_decode(buf, n, secs);
    e = bench_encode_publish(&p, buf + 256, 256, secs);
    row("PUBLISH QoS 0 (30 B topic, 100 B)", n, d, e);

    p.qos = 1;
    p.packet_id = 4242;
    n = mqtt_encode_publish(buf, sizeof buf, &p);
    d = bench_decode(buf, n, secs);
    e = bench_encode_publish(&p, buf + 256, 256, secs);
    row("PUBLISH QoS 1 (30 B topic, 100 B)", n, d, e);

    n = mqtt_encode_connect(buf, sizeof buf, &c);
    d = bench_decode(buf, n, secs);
    e = bench_encode_connect(&c, buf + 256, 256, secs);
    row("CONNECT (id, will, user, pass)", n, d, e);

    printf("checksum %llu\n", checksum);
    return 0;
}
