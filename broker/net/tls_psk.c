/*
 * tls_psk.c — Mosquitto's psk_file: "identity:hexkey" per line, '#' comments, blank lines.
 * Kept sorted by identity for a bsearch in the handshake's PSK callback.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h" /* auth__read_file */
#include "tls_internal.h"

#define TLS_PSK_STR(x)  #x
#define TLS_PSK_XSTR(x) TLS_PSK_STR(x)

struct tls_psk {
    char *id;
    size_t idlen;
    uint8_t key[MBEDTLS_PSK_MAX_LEN];
    size_t keylen;
    unsigned line;
};

struct tls_psk_table {
    struct tls_psk *v;
    size_t n;
};

static int tls_psk_cmp_raw(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    return c ? c : (alen > blen) - (alen < blen);
}

static int tls_psk_cmp(const void *x, const void *y)
{
    const struct tls_psk *a = x, *b = y;

    return tls_psk_cmp_raw(a->id, a->idlen, b->id, b->idlen);
}

static int tls_psk_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * The key bytes of hex digits, as Mosquitto 2.0 turns them into a key (mosquitto__hex2bin, on
 * both the broker's and mosquitto_pub's side: OpenSSL's BN_hex2bn, then BN_bn2bin): one zero
 * byte for each leading "00" pair, then the number the digits spell in as few bytes as it
 * takes. So an odd count of digits is a key too ("12345" of Debian's pskfile.example is
 * 01 23 45), and "0abc" is 0a bc. For an even count without a lone leading '0' digit this is
 * plain hex. 0, or -EINVAL when the key has no byte or more than the table holds.
 */
static int tls_psk_key(const char *hex, size_t n, uint8_t *key, size_t *keylen)
{
    size_t z = 0, d = 0, k = 0;
    int rc = -EINVAL;

    while (2 * z + 1 < n && hex[2 * z] == '0' && hex[2 * z + 1] == '0')
        z++;
    while (d < n && hex[d] == '0')
        d++; /* the number's first significant digit */
    if (z + (n - d + 1) / 2 == 0 || z + (n - d + 1) / 2 > MBEDTLS_PSK_MAX_LEN)
        goto out;
    memset(key, 0, z);
    k = z;
    if ((n - d) % 2)
        key[k++] = (uint8_t)tls_psk_hex(hex[d++]);
    for (; d < n; d += 2)
        key[k++] = (uint8_t)(tls_psk_hex(hex[d]) << 4 | tls_psk_hex(hex[d + 1]));
    *keylen = k;
    rc = 0;
out:
    return rc;
}

/* One line into e. 0 or -EINVAL with *why. */
static int tls_psk_parse_line(const char *s, size_t n, struct tls_psk *e, const char **why)
{
    const char *colon = memchr(s, ':', n), *hex;
    size_t hexlen;
    int rc = -EINVAL;

    *why = "expected identity:hexkey";
    if (!colon || colon == s)
        goto out;
    hex = colon + 1;
    hexlen = (size_t)(s + n - hex);
    *why = "key must be hex digits making 1 to " TLS_PSK_XSTR(MBEDTLS_PSK_MAX_LEN) " bytes";
    for (size_t i = 0; i < hexlen; i++)
        if (tls_psk_hex(hex[i]) < 0)
            goto out;
    if (tls_psk_key(hex, hexlen, e->key, &e->keylen) < 0)
        goto out;
    e->idlen = (size_t)(colon - s);
    rc = 0;
out:
    return rc;
}

struct tls_psk_table *tls__psk_parse(const char *name, const char *text, size_t len, char *err,
                                     size_t errlen)
{
    struct tls_psk_table *t = calloc(1, sizeof(*t));
    const char *s = text, *end = text + len, *why = "out of memory";
    size_t cap = 0;
    unsigned line = 0;

    if (!t)
        goto fail;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s)), *e = nl ? nl : end;
        struct tls_psk p = {.line = line + 1};

        line++;
        while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s && memchr(s, '\0', (size_t)(e - s))) {
            /* an identity is compared by its length: a NUL would cut its copy short */
            why = "NUL byte in line";
            goto fail;
        }
        if (e > s && s[0] != '#') {
            if (tls_psk_parse_line(s, (size_t)(e - s), &p, &why))
                goto fail;
            why = "out of memory";
            if (t->n == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                struct tls_psk *nv = realloc(t->v, ncap * sizeof(*nv));

                if (!nv)
                    goto fail;
                t->v = nv;
                cap = ncap;
            }
            p.id = strndup(s, p.idlen);
            if (!p.id)
                goto fail;
            t->v[t->n++] = p;
        }
        s = nl ? nl + 1 : end;
    }
    if (t->n)
        qsort(t->v, t->n, sizeof(*t->v), tls_psk_cmp);
    for (size_t i = 1; i < t->n; i++) {
        if (tls_psk_cmp(&t->v[i - 1], &t->v[i]) == 0) {
            line = t->v[i - 1].line > t->v[i].line ? t->v[i - 1].line : t->v[i].line;
            why = "duplicate identity";
            goto fail;
        }
    }
    return t;
fail:
    snprintf(err, errlen, "%s:%u: %s", name, line, why);
    tls__psk_free(t);
    return NULL;
}

struct tls_psk_table *tls__psk_load(const char *path, char *err, size_t errlen)
{
    struct tls_psk_table *t = NULL;
    char *text = NULL;
    size_t len;

    if (auth__read_file(path, &text, &len, err, errlen) == 0)
        t = tls__psk_parse(path, text, len, err, errlen);
    if (text)
        mbedtls_platform_zeroize(text, len);
    free(text);
    return t;
}

void tls__psk_free(struct tls_psk_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].id);
        mbedtls_platform_zeroize(t->v[i].key, sizeof(t->v[i].key));
    }
    free(t->v);
    free(t);
}

const uint8_t *tls__psk_find(const struct tls_psk_table *t, const unsigned char *id, size_t idlen,
                             size_t *keylen)
{
    size_t lo = 0, hi = t->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct tls_psk *p = &t->v[mid];
        int c = tls_psk_cmp_raw((const char *)id, idlen, p->id, p->idlen);

        if (c == 0) {
            *keylen = p->keylen;
            return p->key;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

int tls__psk_cb(void *arg, mbedtls_ssl_context *ssl, const unsigned char *id, size_t idlen)
{
    const struct tls_ctx *ctx = arg;
    const uint8_t *key;
    size_t keylen;
    int rc = -1;

    if (!ctx->psk)
        goto out;
    key = tls__psk_find(ctx->psk, id, idlen, &keylen);
    if (!key)
        goto out;
    if (mbedtls_ssl_set_hs_psk(ssl, key, keylen) != 0)
        goto out;
    /* ssl->p_bio is the transport (mbedtls_ssl_set_bio); 2.28 has no getter for it. */
    if (tls__transport_set_psk_identity(ssl->p_bio, id, idlen) != 0)
        goto out;
    rc = 0;
out:
    return rc;
}
