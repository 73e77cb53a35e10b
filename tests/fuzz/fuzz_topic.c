/*
 * fuzz_topic.c — the input is split into a filter and a topic (the first byte says where).
 * Validation is checked against a plain reference (UTF-8 validity plus wildcard rules written
 * the slow way), and matching against a reference that splits both into levels.
 * A broken invariant aborts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mqtt.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_topic: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool has_byte(const uint8_t *p, size_t n, uint8_t c)
{
    return n && memchr(p, c, n) != NULL;
}

static bool ref_name_ok(const uint8_t *p, size_t n)
{
    return n > 0 && mqtt_utf8_validate(p, n) == 0 && !has_byte(p, n, '+') && !has_byte(p, n, '#');
}

static bool ref_filter_ok(const uint8_t *p, size_t n)
{
    if (n == 0 || mqtt_utf8_validate(p, n) != 0)
        return false;
    for (size_t i = 0, start = 0; i <= n; i++) {
        if (i < n && p[i] != '/')
            continue;
        /* level [start, i) */
        size_t len = i - start;
        for (size_t j = start; j < i; j++) {
            if ((p[j] == '+' || p[j] == '#') && len != 1)
                return false;
            if (p[j] == '#' && i != n)
                return false;
        }
        start = i + 1;
    }
    return true;
}

/* Length of the level starting at p (up to '/' or end). */
static size_t level_len(const uint8_t *p, size_t n)
{
    const uint8_t *s = n ? memchr(p, '/', n) : NULL;

    return s ? (size_t)(s - p) : n;
}

static bool ref_match(const uint8_t *f, size_t fn, const uint8_t *t, size_t tn)
{
    bool topic_done = false;

    if (tn > 0 && t[0] == '$' && (f[0] == '+' || f[0] == '#'))
        return false;
    for (;;) {
        size_t fl = level_len(f, fn), tl = level_len(t, tn);
        if (fl == 1 && f[0] == '#')
            return true;
        if (topic_done)
            return false;
        if (!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(f, t, fl) != 0))
            return false;
        bool f_more = fl < fn, t_more = tl < tn;
        if (!f_more)
            return !t_more;
        f += fl + 1;
        fn -= fl + 1;
        if (t_more) {
            t += tl + 1;
            tn -= tl + 1;
        } else {
            topic_done = true; /* only a remaining "#" level can still match */
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *f, *t;
    size_t fn, tn;
    int fr, tr;

    if (size == 0)
        return 0;
    fn = data[0] % size;
    f = data + 1;
    t = f + fn;
    tn = size - 1 - fn;

    fr = mqtt_topic_filter_validate(f, fn);
    tr = mqtt_topic_name_validate(t, tn);
    CHECK((fr == 0) == ref_filter_ok(f, fn));
    CHECK((tr == 0) == ref_name_ok(t, tn));
    CHECK(fr <= 0 && tr <= 0);
    CHECK(mqtt_error_class(fr) != MQTT_CLASS_INVALID && mqtt_error_class(tr) != MQTT_CLASS_INVALID);
    /* the whole input as one string */
    int u = mqtt_utf8_validate(data, size);
    CHECK(u == 0 || u == -MQTT_EUTF8 || u == -MQTT_EUTF8_NUL);
    if (fr == 0 && tr == 0) {
        bool m = mqtt_topic_match(f, fn, t, tn);
        CHECK(m == ref_match(f, fn, t, tn));
        CHECK(mqtt_topic_match(t, tn, t, tn));
    }
    return 0;
}
