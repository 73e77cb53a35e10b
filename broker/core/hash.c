/*
 * hash.c — SipHash-1-3 with a per-process random key (hash.h).
 *
 * One compression round per 8-byte block and three at the end, as Rust's HashMap uses it: the
 * keys hashed here are short (topic levels, filters), so the fixed cost dominates, and the
 * key, not the round count, is what keeps a peer from predicting collisions.
 */
#include "hash.h"

#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint64_t hash_k0, hash_k1;
static bool hash_keyed;

static void hash__key(void)
{
    uint64_t k[2] = {0, 0};

    if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k)) {
        /* no entropy yet (early boot): still differs per process */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        k[0] ^= (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ts.tv_sec;
        k[1] ^= (uint64_t)getpid() * 0xbf58476d1ce4e5b9ULL ^ (uint64_t)(uintptr_t)&ts;
    }
    hash_k0 = k[0];
    hash_k1 = k[1];
    hash_keyed = true;
}

#define HASH_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define HASH_ROUND(v0, v1, v2, v3)                                                                 \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = HASH_ROTL(v1, 13);                                                                    \
        v1 ^= v0;                                                                                  \
        v0 = HASH_ROTL(v0, 32);                                                                    \
        v2 += v3;                                                                                  \
        v3 = HASH_ROTL(v3, 16);                                                                    \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = HASH_ROTL(v3, 21);                                                                    \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = HASH_ROTL(v1, 17);                                                                    \
        v1 ^= v2;                                                                                  \
        v2 = HASH_ROTL(v2, 32);                                                                    \
    } while (0)

uint64_t hash_bytes(const void *p, size_t len)
{
    const uint8_t *in = p;
    const uint8_t *end = in + (len & ~(size_t)7);
    uint64_t v0, v1, v2, v3, m, b = (uint64_t)len << 56;
    size_t left = len & 7;

    if (!hash_keyed)
        hash__key();
    v0 = hash_k0 ^ 0x736f6d6570736575ULL;
    v1 = hash_k1 ^ 0x646f72616e646f6dULL;
    v2 = hash_k0 ^ 0x6c7967656e657261ULL;
    v3 = hash_k1 ^ 0x7465646279746573ULL;
    for (; in != end; in += 8) {
        memcpy(&m, in, 8); /* little-endian hosts; the value only has to be stable per process */
        v3 ^= m;
        HASH_ROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    for (size_t i = 0; i < left; i++)
        b |= (uint64_t)in[i] << (8 * i);
    v3 ^= b;
    HASH_ROUND(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    HASH_ROUND(v0, v1, v2, v3);
    HASH_ROUND(v0, v1, v2, v3);
    HASH_ROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}
