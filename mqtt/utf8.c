/*
 * utf8.c — UTF-8 validation as MQTT 3.1.1 section 1.5.3 demands.
 *
 * Well-formed means RFC 3629 / Unicode table 3-7: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequences [MQTT-1.5.3-1]; and MQTT adds
 * that U+0000 must not appear [MQTT-1.5.3-2]. Most strings a broker sees (topics, client ids)
 * are ASCII, so eight bytes at a time are checked for "no high bit, no zero byte" first.
 */
#include "internal.h"

int mqtt__utf8_seq(const uint8_t *p, size_t avail)
{
    uint8_t b0 = p[0];
    uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    int n;

    if (b0 >= 0xc2 && b0 <= 0xdf) {
        n = 2;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        n = 3;
        if (b0 == 0xe0)
            lo = 0xa0; /* overlong */
        else if (b0 == 0xed)
            hi = 0x9f; /* U+D800..U+DFFF are surrogates [MQTT-1.5.3-1] */
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        n = 4;
        if (b0 == 0xf0)
            lo = 0x90; /* overlong */
        else if (b0 == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        /* 0x80..0xc1: continuation byte or overlong two-byte lead; 0xf5..0xff: never valid */
        return -MQTT_EUTF8; /* [MQTT-1.5.3-1] */
    }
    if (avail < (size_t)n)
        return -MQTT_EUTF8; /* truncated [MQTT-1.5.3-1] */
    if (p[1] < lo || p[1] > hi)
        return -MQTT_EUTF8; /* [MQTT-1.5.3-1] */
    for (int i = 2; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return -MQTT_EUTF8; /* [MQTT-1.5.3-1] */
    }
    return n;
}

int mqtt_utf8_validate(const uint8_t *p, size_t len)
{
    size_t i = 0;

    while (i < len) {
        if (len - i >= 8) {
            uint64_t v = mqtt__load64(p + i);
            if (!((v & MQTT__HIGHS) | mqtt__has_zero(v))) {
                i += 8;
                continue;
            }
        } else if (len >= 8) {
            /* The tail, read as the last eight bytes; those before i were already checked. */
            uint64_t v = mqtt__load64(p + len - 8);
            if (!((v & MQTT__HIGHS) | mqtt__has_zero(v)))
                return 0;
        }
        uint8_t b = p[i];
        if (b < 0x80) {
            if (b == 0)
                return -MQTT_EUTF8_NUL; /* [MQTT-1.5.3-2] */
            i++;
            continue;
        }
        int n = mqtt__utf8_seq(p + i, len - i);
        if (n < 0)
            return n;
        i += (size_t)n;
    }
    return 0;
}
