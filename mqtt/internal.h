/*
 * internal.h — helpers shared by the files of mqtt/ only (mqtt__ prefix). Not installed, not
 * included outside mqtt/.
 */
#ifndef CAIRN_MQTT_INTERNAL_H
#define CAIRN_MQTT_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "mqtt.h"

#define MQTT__MAX_STRING 65535u

static inline uint16_t mqtt__get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint8_t *mqtt__put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

/* Writes a remaining length (already checked <= MQTT_MAX_REMAINING); returns the end. */
static inline uint8_t *mqtt__put_remaining(uint8_t *p, size_t rem)
{
    do {
        uint8_t b = (uint8_t)(rem & 0x7f);
        rem >>= 7;
        if (rem)
            b |= 0x80;
        *p++ = b;
    } while (rem);
    return p;
}

static inline uint8_t *mqtt__put_str(uint8_t *p, struct mqtt_str s)
{
    p = mqtt__put16(p, (uint16_t)s.len);
    if (s.len)
        memcpy(p, s.p, s.len);
    return p + s.len;
}

/*
 * SWAR helpers for the ASCII fast paths: eight bytes at a time, no alignment assumed
 * (memcpy compiles to one load).
 */
#define MQTT__ONES  0x0101010101010101ull
#define MQTT__HIGHS 0x8080808080808080ull

static inline uint64_t mqtt__load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Non-zero when some byte of v is zero (exact as a boolean). */
static inline uint64_t mqtt__has_zero(uint64_t v)
{
    return (v - MQTT__ONES) & ~v & MQTT__HIGHS;
}

/* Non-zero when some byte of v equals c. */
static inline uint64_t mqtt__has_byte(uint64_t v, uint8_t c)
{
    return mqtt__has_zero(v ^ (MQTT__ONES * c));
}

/*
 * The multi-byte UTF-8 sequence at p (p[0] >= 0x80, avail bytes readable): its length (2..4)
 * when well-formed, else -MQTT_EUTF8. The ASCII fast paths in utf8.c and topic.c call it at
 * each non-ASCII byte.
 */
int mqtt__utf8_seq(const uint8_t *p, size_t avail);

#endif
