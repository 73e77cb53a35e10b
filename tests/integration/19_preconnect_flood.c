/*
 * 19_preconnect_flood — a connection that has not completed CONNECT holds kilobytes (issue 9:
 * six connections announcing a 256 MB PUBLISH and streaming it took 1.47 GB). Connections whose
 * first packet announces a 256 MB PUBLISH, and a CONNECT announcing 256 MB or just over the
 * CONNECT bound, are closed at once while they stream; the broker's RSS (/proc/PID/status)
 * stays within a generous bound of where it started (not checked under ASan, whose quarantine
 * holds freed memory). A large but allowed CONNECT (60 KB password, 60 KB will) is accepted.
 * connect_memory_limit: partial CONNECTs from many connections are cut at the limit (closed,
 * logged) while those held, completed, are accepted; a new client connects afterwards.
 */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define WAIT_MS           10000
#define N_FLOOD           6
#define STREAM_BYTES      (8u * 1024u * 1024u)
#define RSS_GROWTH_MAX_KB (64 * 1024)

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static bool under_asan(pid_t pid)
{
    char path[64], line[512];
    bool asan = false;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    f = fopen(path, "r");
    while (f && !asan && fgets(line, sizeof(line), f))
        asan = strstr(line, "libasan") != NULL;
    if (f)
        fclose(f);
    return asan;
}

/* A connection whose sends give up after 2 s (the broker stops reading a refused one). */
static int flood_conn(const struct broker *b)
{
    struct timeval tv = {.tv_sec = 2};
    int fd = raw_connect(b);

    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Send hdr, then up to STREAM_BYTES of filler until the broker stops taking it. Bytes sent. */
static size_t stream(int fd, const uint8_t *hdr, size_t hlen)
{
    static uint8_t chunk[64 * 1024];
    size_t sent = 0;

    memset(chunk, 'z', sizeof(chunk));
    if (raw_send(fd, hdr, hlen) != 0)
        return 0;
    while (sent < STREAM_BYTES && raw_send(fd, chunk, sizeof(chunk)) == 0)
        sent += sizeof(chunk);
    return sent;
}

/* One client that connects and is answered: the broker serves as before. */
static bool still_serving(const struct broker *b)
{
    struct raw_conn_opts o = {.id = "flood-after", .keepalive = 60};
    int rc = -1, fd = raw_mqtt_connect(b, &o, &rc, NULL);
    bool ok = fd >= 0 && rc == 0 && raw_publish_flow(fd, "flood/ok", "ok", 1, false, 1) == 0;

    if (fd >= 0)
        close(fd);
    return ok;
}

static void rss_check(struct broker *b, long before, const char *what)
{
    long after = rss_kb(broker_pid(b));

    t_note("broker RSS %ld kB before, %ld kB after %s", before, after, what);
    if (under_asan(broker_pid(b)))
        t_note("ASan build: the RSS bound is not checked");
    else
        T_ASSERTF(after - before < RSS_GROWTH_MAX_KB, "RSS grew by %ld kB (bound %d kB)",
                  after - before, RSS_GROWTH_MAX_KB);
out:;
}

/* Six connections whose first packet is a PUBLISH announcing 256 MB, streaming it. */
static void test_publish_first(void)
{
    static const uint8_t publish[] = {0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x01, 'x'};
    struct broker *b = broker_start(NULL);
    int fds[N_FLOOD];
    size_t streamed = 0;
    long before;

    for (int i = 0; i < N_FLOOD; i++)
        fds[i] = -1;
    T_ASSERT(b);
    before = rss_kb(broker_pid(b));
    for (int i = 0; i < N_FLOOD; i++) {
        fds[i] = flood_conn(b);
        T_ASSERT(fds[i] >= 0);
        streamed += stream(fds[i], publish, sizeof(publish));
    }
    for (int i = 0; i < N_FLOOD; i++)
        T_ASSERTF(raw_expect_close(fds[i], WAIT_MS) == 0, "connection %d not closed", i);
    t_note("%d connections announcing a 256 MB PUBLISH first: %zu kB streamed before the "
           "broker stopped taking it",
           N_FLOOD, streamed / 1024);
    rss_check(b, before, "the PUBLISH flood");
    T_ASSERT(!t_case_failed());
    T_ASSERT(still_serving(b));
out:
    for (int i = 0; i < N_FLOOD; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    broker_free(b);
}

/* CONNECTs announcing 256 MB, and 200,000 bytes (over 64 KiB + 65535), streaming. */
static void test_connect_too_large(void)
{
    static const uint8_t huge[] = {0x10, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x04, 'M', 'Q', 'T', 'T'};
    static const uint8_t over[] = {0x10, 0xc0, 0x9a, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T'};
    struct broker *b = NULL;
    int fds[N_FLOOD];
    long before;

    for (int i = 0; i < N_FLOOD; i++)
        fds[i] = -1;
    if (harness_cairn_only("Mosquitto reads a CONNECT of any size the protocol allows"))
        return;
    b = broker_start(NULL);
    T_ASSERT(b);
    before = rss_kb(broker_pid(b));
    for (int i = 0; i < N_FLOOD; i++) {
        fds[i] = flood_conn(b);
        T_ASSERT(fds[i] >= 0);
        if (i % 2)
            stream(fds[i], over, sizeof(over));
        else
            stream(fds[i], huge, sizeof(huge));
    }
    for (int i = 0; i < N_FLOOD; i++)
        T_ASSERTF(raw_expect_close(fds[i], WAIT_MS) == 0, "connection %d not closed", i);
    T_EQ(broker_wait_log(b, "CONNECT announcing 268435455 bytes, more than the 131071", 5000), 0);
    T_EQ(broker_wait_log(b, "CONNECT announcing 200000 bytes", 5000), 0);
    rss_check(b, before, "the CONNECT flood");
    T_ASSERT(!t_case_failed());
    T_ASSERT(still_serving(b));
out:
    for (int i = 0; i < N_FLOOD; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    broker_free(b);
}

/* 60,000-byte password and 60,000-byte will payload: within the bound, accepted. */
static void test_large_connect_accepted(void)
{
    struct broker *b = broker_start(NULL);
    char *pass = malloc(60001), *will = malloc(60001);
    struct raw_conn_opts o = {.id = "big-connect",
                              .keepalive = 60,
                              .user = "someone",
                              .will_topic = "flood/will",
                              .will_qos = 1};
    int rc = -1, fd = -1;

    T_ASSERT(b && pass && will);
    memset(pass, 'p', 60000);
    pass[60000] = '\0';
    memset(will, 'w', 60000);
    will[60000] = '\0';
    o.pass = pass;
    o.will_payload = will;
    fd = raw_connect(b);
    T_ASSERT(fd >= 0);
    {
        size_t cap = 130000, n;
        uint8_t *buf = malloc(cap);
        T_ASSERT(buf);
        n = raw_build_connect(buf, cap, &o);
        if (n == 0 || raw_send(fd, buf, n) != 0)
            rc = -2;
        free(buf);
        T_ASSERT(rc == -1);
    }
    {
        struct raw_pkt p = {0};
        int r = raw_expect(fd, RAW_CONNACK, &p, WAIT_MS);
        rc = r == 1 && p.len == 2 ? p.body[1] : -1;
        raw_pkt_free(&p);
    }
    T_EQ(rc, 0);
out:
    if (fd >= 0)
        close(fd);
    free(pass);
    free(will);
    broker_free(b);
}

#define N_PARTIAL 20

/*
 * connect_memory_limit 1000000: 20 connections each send all but the last 1,000 bytes of a
 * 115 KB CONNECT (so each would hold about 115 KB): one that would take the total past the
 * limit is closed, and the log says so; those held are answered with CONNACK 0 once complete.
 * Which ones are held depends on how the reads interleave; that some are, does not (the last
 * one to grow always has room: a connection is only closed when it grows).
 */
static void test_connect_memory_limit(void)
{
    struct broker_opts bo = {.cairn_config = "connect_memory_limit 1000000\nconnect_timeout 60"};
    struct broker *b = NULL;
    char *pass = malloc(55001), *will = malloc(60001);
    uint8_t *buf = malloc(130000);
    int fds[N_PARTIAL];
    int accepted = 0, closed = 0;
    size_t n = 0;
    long before;

    for (int i = 0; i < N_PARTIAL; i++)
        fds[i] = -1;
    if (harness_cairn_only("connect_memory_limit is Cairn's own option"))
        goto out;
    T_ASSERT(pass && will && buf);
    memset(pass, 'p', 55000);
    pass[55000] = '\0';
    memset(will, 'w', 60000);
    will[60000] = '\0';
    b = broker_start(&bo);
    T_ASSERT(b);
    before = rss_kb(broker_pid(b));
    for (int i = 0; i < N_PARTIAL; i++) {
        char id[32];
        struct raw_conn_opts o = {.id = id,
                                  .keepalive = 60,
                                  .user = "u",
                                  .pass = pass,
                                  .will_topic = "flood/will",
                                  .will_payload = will};
        snprintf(id, sizeof(id), "partial-%02d", i);
        n = raw_build_connect(buf, 130000, &o);
        T_ASSERT(n > 100000);
        fds[i] = flood_conn(b);
        T_ASSERT(fds[i] >= 0);
        T_EQ(raw_send(fds[i], buf, n - 1000), 0);
    }
    /* the event: some connection was cut at the limit */
    T_EQ(broker_wait_log(b, "connect_memory_limit 1000000", WAIT_MS), 0);
    rss_check(b, before, "20 partial CONNECTs of 115 KB");
    for (int i = 0; i < N_PARTIAL; i++) {
        struct raw_pkt p = {0};
        char id[32];
        struct raw_conn_opts o = {.id = id,
                                  .keepalive = 60,
                                  .user = "u",
                                  .pass = pass,
                                  .will_topic = "flood/will",
                                  .will_payload = will};
        int r;
        snprintf(id, sizeof(id), "partial-%02d", i);
        n = raw_build_connect(buf, 130000, &o);
        r = raw_send(fds[i], buf + n - 1000, 1000) == 0 ? raw_read_packet(fds[i], &p, WAIT_MS) : -1;
        if (r == 1 && p.first >> 4 == RAW_CONNACK && p.len == 2 && p.body[1] == 0)
            accepted++;
        else if (r < 0)
            closed++;
        raw_pkt_free(&p);
    }
    t_note("%d partial CONNECTs of %zu bytes, connect_memory_limit 1000000: %d completed, %d "
           "closed",
           N_PARTIAL, n, accepted, closed);
    T_ASSERT(closed >= 1 && accepted >= 1);
    T_EQ(accepted + closed, N_PARTIAL);
    T_ASSERT(still_serving(b));
out:
    for (int i = 0; i < N_PARTIAL; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(pass);
    free(will);
    free(buf);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"publish_first", test_publish_first},
        {"connect_too_large", test_connect_too_large},
        {"large_connect_accepted", test_large_connect_accepted},
        {"connect_memory_limit", test_connect_memory_limit},
    };
    return T_MAIN(cases);
}
