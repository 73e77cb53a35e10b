/*
 * 17_slow_subscriber — a subscriber that stops reading is bounded: while 40 MB of QoS 0
 * messages are published to it, the broker's resident memory grows by far less than that
 * (QoS 0 past the limit is dropped), other subscribers get everything, and a QoS 1 flow still
 * completes. RSS comes from /proc/PID/status; under ASan (whose quarantine holds freed memory)
 * the memory bound is not checked.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS           10000
#define N_MSGS            40000
#define MSG_SIZE          1024
#define RSS_GROWTH_MAX_KB (24 * 1024)

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

static void test_stalled_reader_bounded(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_conn_opts so = {.id = "slow-sub", .keepalive = 0};
    struct raw_conn_opts fo = {.id = "fast-sub", .keepalive = 60};
    struct raw_conn_opts po = {.id = "slow-pub", .keepalive = 60};
    struct raw_pkt k = {0};
    static uint8_t pkt[MSG_SIZE + 64];
    char payload[MSG_SIZE + 1];
    int slow = -1, fast = -1, pub = -1, rc = -1, small = 4096;
    long before, after, got = 0;
    size_t n;

    T_ASSERT(b);
    slow = raw_connect(b);
    T_ASSERT(slow >= 0);
    setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    T_EQ(raw_mqtt_handshake(slow, &so, &rc, NULL), 0);
    T_EQ(raw_subscribe(slow, 1, "slow/#", 0), 0);
    fast = raw_mqtt_connect(b, &fo, &rc, NULL);
    pub = raw_mqtt_connect(b, &po, &rc, NULL);
    T_ASSERT(fast >= 0 && pub >= 0);
    T_EQ(raw_subscribe(fast, 1, "slow/#", 0), 0);
    before = rss_kb(broker_pid(b));
    memset(payload, 'p', MSG_SIZE);
    payload[MSG_SIZE] = '\0';
    n = raw_build_publish(pkt, sizeof(pkt), "slow/t", payload, MSG_SIZE, 0, false, false, 0);
    T_ASSERT(n > 0);
    /* The fast subscriber is read as we go, so only the slow one holds anything back. */
    for (int i = 0; i < N_MSGS; i++) {
        T_EQ(raw_send(pub, pkt, n), 0);
        while (raw_read_packet(fast, &k, got < i - 2000 ? WAIT_MS : 0) == 1) {
            T_EQ(k.first >> 4, RAW_PUBLISH);
            got++;
            raw_pkt_free(&k);
        }
    }
    T_EQ(raw_publish_flow(pub, "slow/done", "done", 1, false, 1), 0);
    while (got < N_MSGS) {
        T_ASSERTF(raw_read_packet(fast, &k, WAIT_MS) == 1, "fast subscriber got %ld of %d", got,
                  N_MSGS);
        if (k.first >> 4 == RAW_PUBLISH && k.payload_len == MSG_SIZE)
            got++;
        raw_pkt_free(&k);
    }
    after = rss_kb(broker_pid(b));
    t_note("broker RSS %ld kB before, %ld kB after %d MB for a reader that stopped", before, after,
           N_MSGS * MSG_SIZE / (1024 * 1024));
    T_ASSERT(broker_alive(b));
    if (under_asan(broker_pid(b)))
        t_note("ASan build: the RSS bound is not checked");
    else
        T_ASSERTF(after - before < RSS_GROWTH_MAX_KB, "RSS grew by %ld kB (bound %d kB)",
                  after - before, RSS_GROWTH_MAX_KB);
out:
    raw_pkt_free(&k);
    if (slow >= 0)
        close(slow);
    if (fast >= 0)
        close(fast);
    if (pub >= 0)
        close(pub);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"stalled_reader_bounded", test_stalled_reader_bounded},
    };
    return T_MAIN(cases);
}
