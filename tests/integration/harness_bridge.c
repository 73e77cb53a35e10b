/*
 * harness_bridge.c — two brokers and a bridge between them (harness_bridge.h).
 */
#include "harness_bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hb_expand(char *out, size_t cap, const char *tmpl, int port)
{
    size_t n = 0;

    for (const char *t = tmpl; *t && n + 1 < cap; t++) {
        if (t[0] == '@' && t[1] == 'R') {
            n += (size_t)snprintf(out + n, cap - n, "%d", port);
            t++;
            continue;
        }
        out[n++] = *t;
    }
    out[n < cap ? n : cap - 1] = '\0';
}

struct broker *hb_start(enum broker_kind kind, const char *tmpl, int remote_port, int port)
{
    static char conf[8192];
    struct broker_opts o = {.config = conf, .kind = kind, .port = port};

    hb_expand(conf, sizeof(conf), tmpl ? tmpl : "", remote_port);
    return broker_start(&o);
}

int hb_log_count(const struct broker *b, const char *needle)
{
    char *log = broker_log(b);
    int n = 0;

    for (const char *p = log; p && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    free(log);
    return n;
}

int hb_wait_log_count(const struct broker *b, const char *needle, int n, int timeout_ms)
{
    uint64_t deadline = t_now_ms() + (uint64_t)timeout_ms;

    while (hb_log_count(b, needle) < n) {
        if (t_now_ms() >= deadline) {
            t_note("'%s' not %d times in the log within %d ms", needle, n, timeout_ms);
            return -1;
        }
        t_nap_ms(10);
    }
    return 0;
}

int hb_until_forwarded(MQTTClient pub, const char *topic, MQTTClient sub, const char *want,
                       int timeout_ms)
{
    uint64_t deadline = t_now_ms() + (uint64_t)timeout_ms;
    struct pc_msg m = {0};
    int rc = -1, got;

    for (;;) {
        if (pc_publish_str(pub, topic, "probe", 1, false) != 0 || t_now_ms() >= deadline)
            goto out;
        got = pc_recv(sub, &m, 100);
        if (got < 0)
            goto out;
        if (got == 1 && strcmp(m.topic, want) == 0)
            break;
        pc_msg_free(&m);
    }
    pc_msg_free(&m);
    if (pc_publish_str(pub, topic, "last", 1, false) != 0)
        goto out;
    while ((got = pc_recv(sub, &m, (int)(deadline - t_now_ms()))) == 1) {
        bool last = strcmp(m.payload, "last") == 0 && strcmp(m.topic, want) == 0;
        pc_msg_free(&m);
        if (last) {
            rc = 0;
            break;
        }
    }
out:
    if (rc != 0)
        t_note("%s never forwarded to %s within %d ms", topic, want, timeout_ms);
    pc_msg_free(&m);
    return rc;
}

int hb_expect(MQTTClient c, const char *topic, const char *payload, int qos, int timeout_ms)
{
    struct pc_msg m = {0};
    int rc = -1;

    if (pc_recv(c, &m, timeout_ms) != 1) {
        t_note("no message (wanted '%s' on %s)", payload, topic);
        goto out;
    }
    if (strcmp(m.topic, topic) != 0 || strcmp(m.payload, payload) != 0 ||
        (qos >= 0 && m.qos != qos)) {
        t_note("got '%s' on %s at QoS %d, wanted '%s' on %s at QoS %d", m.payload, m.topic, m.qos,
               payload, topic, qos);
        goto out;
    }
    rc = 0;
out:
    pc_msg_free(&m);
    return rc;
}
