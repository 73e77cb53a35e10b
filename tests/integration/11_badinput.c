/*
 * 11_badinput — every file of the codec's fuzz corpus (tests/fuzz/corpus/decode) and seeded
 * random bytes, each on its own raw connection (alone, and after a valid CONNECT), while a
 * Paho MQTTAsync publisher keeps publishing at QoS 1 to a Paho subscriber: every message the
 * broker acknowledged is delivered, in order, and the broker is still up at the end.
 */
#include "harness.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PER_JUNK 3 /* messages published per junk connection */
#define N_RANDOM 1000
#define MAX_MSGS 10000

static const char *corpus_dir(void)
{
    const char *env = getenv("CAIRN_ITEST_CORPUS");

    return env && *env ? env : CAIRN_ITEST_CORPUS;
}

static int read_file(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    int rc = -1;

    if (!f)
        goto out;
    *len = fread(buf, 1, cap, f);
    rc = 0;
out:
    if (f)
        fclose(f);
    return rc;
}

/* One junk connection: optionally a valid CONNECT first, then the bytes; then close. */
static int send_junk(const struct broker *b, const uint8_t *junk, size_t len, bool connect_first)
{
    struct raw_conn_opts o = {.id = "junk", .keepalive = 60};
    uint8_t c[128];
    size_t n = raw_build_connect(c, sizeof(c), &o);
    int fd = raw_connect(b), rc = -1;

    if (fd < 0)
        goto out;
    if (connect_first && raw_send(fd, c, n) != 0)
        goto out;
    /* A send may fail once the broker closed on an earlier byte: that is fine. */
    raw_send(fd, junk, len);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

static void test_corpus_and_random(void)
{
    struct broker_opts bo = {.config = "max_queued_messages 100000"};
    struct broker *b = broker_start(&bo);
    struct pc_opts so = {.persistent = false};
    MQTTClient sub = NULL;
    struct ap *pub = NULL;
    struct pc_msg m = {0};
    DIR *d = NULL;
    struct dirent *e;
    uint64_t seed = t_seed(), rng = seed;
    char sub_id[64], topic[64], buf[32], path[1024];
    uint8_t junk[4096];
    int sent = 0, files = 0;
    long acked;

    snprintf(sub_id, sizeof(sub_id), "itest-badinput-sub-%llx", (unsigned long long)seed);
    snprintf(topic, sizeof(topic), "itest/badinput/%llx", (unsigned long long)seed);
    so.id = sub_id;
    T_ASSERT(b);
    sub = pc_connect(b, &so, NULL, NULL);
    T_ASSERT(sub);
    T_EQ(pc_subscribe(sub, topic, 1), 1);
    pub = ap_connect(b, "itest-badinput-pub", false);
    T_ASSERT(pub);

    d = opendir(corpus_dir());
    if (!d)
        t_note("no corpus at %s: random bytes only", corpus_dir());
    while (d && (e = readdir(d)) != NULL) {
        size_t len = 0;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", corpus_dir(), e->d_name);
        if (read_file(path, junk, sizeof(junk), &len) != 0)
            continue;
        files++;
        for (int k = 0; k < 2; k++) {
            T_EQ(send_junk(b, junk, len, k == 1), 0);
            for (int j = 0; j < PER_JUNK; j++, sent++) {
                int n = snprintf(buf, sizeof(buf), "%d", sent);

                T_EQ(ap_publish(pub, topic, buf, n, 1), 0);
            }
        }
    }
    for (int i = 0; i < N_RANDOM; i++) {
        size_t len = 1 + t_rand(&rng) % 512;

        for (size_t j = 0; j < len; j++)
            junk[j] = (uint8_t)t_rand(&rng);
        /* Some look like packets: a plausible first byte and length. */
        if (i % 3 == 0 && len > 2) {
            junk[0] = (uint8_t)((1 + t_rand(&rng) % 14) << 4 | (t_rand(&rng) & 15));
            junk[1] = (uint8_t)(len - 2 < 128 ? len - 2 : 127);
        }
        T_EQ(send_junk(b, junk, len, i % 2 == 1), 0);
        for (int j = 0; j < PER_JUNK; j++, sent++) {
            int n = snprintf(buf, sizeof(buf), "%d", sent);

            T_EQ(ap_publish(pub, topic, buf, n, 1), 0);
        }
    }
    t_note("%d corpus files and %d random inputs, %d messages published", files, N_RANDOM, sent);
    acked = ap_wait(pub, sent, 60000);
    T_EQ(acked, sent);
    T_EQ(ap_failed(pub), 0);
    for (int i = 0; i < sent; i++) {
        T_ASSERTF(pc_recv(sub, &m, 10000) == 1, "message %d of %d not delivered", i, sent);
        T_ASSERTF(atoi(m.payload) == i, "message %d: got '%s'", i, m.payload);
        pc_msg_free(&m);
    }
    T_ASSERT(broker_alive(b));
out:
    pc_msg_free(&m);
    if (d)
        closedir(d);
    ap_close(pub);
    pc_close(&sub);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"corpus_and_random", test_corpus_and_random},
    };
    return T_MAIN(cases);
}
