/*
 * 06_retained — retained messages: set, replaced, cleared by an empty payload; sent with
 * RETAIN=1 to new subscriptions (wildcards too) and again on a re-subscribe; forwarded with
 * RETAIN=0 to subscribers that already were subscribed.
 *
 * "Nothing more" is shown with a marker: a plain message published afterwards on a matching
 * topic must be the next packet.
 */
#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 5000

static int client(const struct broker *b, const char *id)
{
    struct raw_conn_opts o = {.id = id, .keepalive = 60};
    int rc = -1, fd = raw_mqtt_connect(b, &o, &rc, NULL);

    if (fd >= 0 && rc != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static bool is(const struct raw_pkt *p, const char *topic, const char *payload, int retain)
{
    bool ok = p->topic && strcmp(p->topic, topic) == 0 && p->payload_len == strlen(payload) &&
              memcmp(p->payload, payload, p->payload_len) == 0 && p->retain == retain;

    if (!ok)
        t_note("got '%s' = '%.*s' retain %d; want '%s' = '%s' retain %d", p->topic ? p->topic : "?",
               (int)p->payload_len, (const char *)p->payload, p->retain, topic, payload, retain);
    return ok;
}

static void test_set_replace_clear(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_pkt p = {0};
    int pub = -1, s1 = -1, s2 = -1, s3 = -1;

    T_ASSERT(b);
    pub = client(b, "ret-pub");
    T_ASSERT(pub >= 0);
    T_EQ(raw_publish_flow(pub, "r/a", "v1", 1, true, 1), 0);
    s1 = client(b, "ret-s1");
    T_ASSERT(s1 >= 0);
    T_EQ(raw_subscribe(s1, 1, "r/a", 1), 1);
    T_EQ(raw_recv_publish(s1, &p, WAIT_MS, true), 1);
    T_ASSERT(is(&p, "r/a", "v1", 1));
    T_EQ(p.qos, 1);
    raw_pkt_free(&p);

    T_EQ(raw_publish_flow(pub, "r/a", "v2", 1, true, 2), 0);
    s2 = client(b, "ret-s2");
    T_ASSERT(s2 >= 0);
    T_EQ(raw_subscribe(s2, 1, "r/a", 1), 1);
    T_EQ(raw_recv_publish(s2, &p, WAIT_MS, true), 1);
    T_ASSERT(is(&p, "r/a", "v2", 1));
    raw_pkt_free(&p);
    T_EQ(raw_publish_flow(pub, "r/a", "marker", 1, false, 3), 0);
    T_EQ(raw_recv_publish(s2, &p, WAIT_MS, true), 1);
    T_ASSERT(is(&p, "r/a", "marker", 0));
    raw_pkt_free(&p);

    /* An empty retained payload clears the topic. */
    T_EQ(raw_publish_flow(pub, "r/a", "", 1, true, 4), 0);
    s3 = client(b, "ret-s3");
    T_ASSERT(s3 >= 0);
    T_EQ(raw_subscribe(s3, 1, "r/a", 1), 1);
    T_EQ(raw_publish_flow(pub, "r/a", "marker2", 1, false, 5), 0);
    T_EQ(raw_recv_publish(s3, &p, WAIT_MS, true), 1);
    T_ASSERT(is(&p, "r/a", "marker2", 0));
out:
    raw_pkt_free(&p);
    if (pub >= 0)
        close(pub);
    if (s1 >= 0)
        close(s1);
    if (s2 >= 0)
        close(s2);
    if (s3 >= 0)
        close(s3);
    broker_free(b);
}

/* Receive n retained messages in any order; each topic must be one of want[] (each once). */
static int recv_retained_set(int fd, const char *const *want, int n)
{
    bool seen[8] = {false};
    struct raw_pkt p = {0};
    int ok = 0;

    for (int i = 0; i < n; i++) {
        int hit = -1;

        if (raw_recv_publish(fd, &p, WAIT_MS, true) != 1)
            goto out;
        for (int j = 0; j < n; j++)
            if (!seen[j] && strcmp(p.topic, want[j]) == 0)
                hit = j;
        if (hit < 0 || !p.retain) {
            t_note("unexpected '%s' retain %d", p.topic, p.retain);
            goto out;
        }
        seen[hit] = true;
        raw_pkt_free(&p);
    }
    ok = 1;
out:
    raw_pkt_free(&p);
    return ok;
}

static void test_wildcard_delivery(void)
{
    static const char *const plus[] = {"w/a/x", "w/b/x"};
    static const char *const hash[] = {"w/a/x", "w/b/x", "w/c/y"};
    struct broker *b = broker_start(NULL);
    struct raw_pkt p = {0};
    int pub = -1, s1 = -1, s2 = -1;

    T_ASSERT(b);
    pub = client(b, "wr-pub");
    T_ASSERT(pub >= 0);
    T_EQ(raw_publish_flow(pub, "w/a/x", "ax", 1, true, 1), 0);
    T_EQ(raw_publish_flow(pub, "w/b/x", "bx", 1, true, 2), 0);
    T_EQ(raw_publish_flow(pub, "w/c/y", "cy", 1, true, 3), 0);
    T_EQ(raw_publish_flow(pub, "other/a/x", "no", 1, true, 4), 0);
    s1 = client(b, "wr-s1");
    T_ASSERT(s1 >= 0);
    T_EQ(raw_subscribe(s1, 1, "w/+/x", 1), 1);
    T_ASSERT(recv_retained_set(s1, plus, 2));
    s2 = client(b, "wr-s2");
    T_ASSERT(s2 >= 0);
    T_EQ(raw_subscribe(s2, 1, "w/#", 1), 1);
    T_ASSERT(recv_retained_set(s2, hash, 3));
    T_EQ(raw_publish_flow(pub, "w/a/x", "marker", 1, false, 5), 0);
    T_EQ(raw_recv_publish(s1, &p, WAIT_MS, true), 1);
    T_ASSERT(is(&p, "w/a/x", "marker", 0));
    raw_pkt_free(&p);
    T_EQ(raw_recv_publish(s2, &p, WAIT_MS, true), 1);
    T_ASSERT(is(&p, "w/a/x", "marker", 0));
out:
    raw_pkt_free(&p);
    if (pub >= 0)
        close(pub);
    if (s1 >= 0)
        close(s1);
    if (s2 >= 0)
        close(s2);
    broker_free(b);
}

/* [MQTT-3.3.1-9]: existing subscribers get RETAIN=0; [MQTT-3.8.4-3]: re-subscribe resends. */
static void test_existing_and_resubscribe(void)
{
    struct broker *b = broker_start(NULL);
    struct raw_pkt p = {0};
    int pub = -1, s = -1;

    T_ASSERT(b);
    pub = client(b, "ex-pub");
    T_ASSERT(pub >= 0);
    s = client(b, "ex-sub");
    T_ASSERT(s >= 0);
    T_EQ(raw_subscribe(s, 1, "e/t", 1), 1);
    T_EQ(raw_publish_flow(pub, "e/t", "live", 1, true, 1), 0);
    T_EQ(raw_recv_publish(s, &p, WAIT_MS, true), 1);
    T_ASSERT(is(&p, "e/t", "live", 0));
    raw_pkt_free(&p);
    T_EQ(raw_subscribe(s, 2, "e/t", 1), 1);
    T_EQ(raw_recv_publish(s, &p, WAIT_MS, true), 1);
    T_ASSERT(is(&p, "e/t", "live", 1));
out:
    raw_pkt_free(&p);
    if (pub >= 0)
        close(pub);
    if (s >= 0)
        close(s);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"set_replace_clear", test_set_replace_clear},
        {"wildcard_delivery", test_wildcard_delivery},
        {"existing_and_resubscribe", test_existing_and_resubscribe},
    };
    return T_MAIN(cases);
}
