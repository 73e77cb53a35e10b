/*
 * tls_kex.c — the public-key work of a full TLS 1.2 handshake with X25519 or P-256, done by
 * Nettle instead of mbedTLS 2.28's generic bignum code.
 *
 * Why: measured with callgrind, a full ECDHE-ECDSA handshake costs Cairn 21.8M instructions
 * with mbedTLS doing everything (X25519 first, the ECDSA key's comb table kept), and 16.2M of
 * them are the two X25519 scalar multiplications (key generation, shared secret), 4.5M the
 * ECDSA P-256 signature. Nettle (Debian's nettle-dev, the library GnuTLS is built on) does the
 * same three operations in about 0.2 ms instead of 2.4 ms. mbedTLS 2.28 offers no hook for the
 * key exchange (MBEDTLS_ECDH_*_ALT are compile-time and Debian does not set them), so the
 * handshake is driven state by state (mbedtls_ssl_handshake_step, as mbedtls_ssl_handshake
 * does) and two server states are written here when X25519 or P-256 is the agreed curve (P-256:
 * for devices whose TLS stack or secure element has nothing else):
 *
 *   SERVER_KEY_EXCHANGE  ServerECDHParams (the named curve, our public value) and the
 *                        signature over client_random + server_random + params, as RFC 8422
 *                        5.4 and RFC 5246 7.4.3 have it: the hash mbedTLS agreed on, signed by
 *                        Nettle for a P-256 key, by mbedtls_pk_sign for any other;
 *   CLIENT_KEY_EXCHANGE  the client's public value, the shared secret (X25519: RFC 7748, an
 *                        all-zero result refused as mbedTLS does; P-256: an uncompressed point,
 *                        which must lie on the curve, and the x coordinate of the product, RFC
 *                        8422 5.10), the premaster secret and the keys (mbedtls_ssl_derive_keys).
 *
 * Everything else (hellos, certificates, client certificate verification, tickets, Finished)
 * stays mbedTLS's. The two states are written here from the RFCs above, against the internal
 * interface of mbedTLS 2.28 (ssl_internal.h, exported by Debian's libmbedtls14: the handshake
 * state, the record buffers, mbedtls_ssl_derive_keys); it is built only against 2.28, and any
 * case it does not know (another curve, a PSK or RSA key exchange, TLS < 1.2) is left to
 * mbedTLS.
 */
#include <string.h>

#include <gmp.h>
#include <nettle/curve25519.h>
#include <nettle/dsa.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecc.h>
#include <nettle/ecdsa.h>

#include <mbedtls/platform_util.h>
#include <mbedtls/ssl_internal.h>
#include <mbedtls/version.h>

#include "tls_internal.h"

#if MBEDTLS_VERSION_NUMBER < 0x021C0000 || MBEDTLS_VERSION_NUMBER >= 0x021D0000
#error "tls_kex.c follows mbedTLS 2.28's server state machine"
#endif

#define TLS_X25519_ID 29 /* NamedCurve x25519 (RFC 8422) */
#define TLS_P256_ID   23 /* NamedCurve secp256r1 */

struct tls_kex_key {
    struct ecc_scalar d; /* the server's P-256 private key, for Nettle */
};

int tls__kex_key_new(const mbedtls_pk_context *pk, struct tls_kex_key **out)
{
    const mbedtls_ecp_keypair *ec;
    unsigned char d[32];
    struct tls_kex_key *k = NULL;
    mpz_t z;
    int rc = 0;

    *out = NULL;
    if (!mbedtls_pk_can_do(pk, MBEDTLS_PK_ECDSA))
        goto out;
    ec = mbedtls_pk_ec(*pk);
    if (ec->grp.id != MBEDTLS_ECP_DP_SECP256R1 || mbedtls_mpi_write_binary(&ec->d, d, 32) != 0)
        goto out;
    rc = -1;
    k = calloc(1, sizeof(*k));
    if (!k)
        goto out;
    ecc_scalar_init(&k->d, nettle_get_secp_256r1());
    mpz_init(z);
    mpz_import(z, sizeof(d), 1, 1, 1, 0, d);
    if (ecc_scalar_set(&k->d, z)) {
        *out = k;
        k = NULL;
        rc = 0;
    }
    mpz_clear(z);
    mbedtls_platform_zeroize(d, sizeof(d));
out:
    tls__kex_key_free(k);
    return rc;
}

void tls__kex_key_free(struct tls_kex_key *k)
{
    if (!k)
        return;
    ecc_scalar_clear(&k->d);
    free(k);
}

/* ---- randomness for Nettle from the connection's mbedTLS generator ------------------------ */

struct tls_kex_rng {
    const mbedtls_ssl_config *conf;
    bool failed;
};

static void tls_kex_random(void *arg, size_t len, uint8_t *dst)
{
    struct tls_kex_rng *r = arg;

    if (r->conf->f_rng(r->conf->p_rng, dst, len) != 0) {
        memset(dst, 0, len);
        r->failed = true; /* Nettle cannot fail: the signature is thrown away */
    }
}

/* Big-endian magnitude of z as a DER INTEGER at p (at most 35 bytes for P-256). */
static size_t tls_kex_der_int(unsigned char *p, const mpz_t z)
{
    unsigned char v[33];
    size_t n = (mpz_sizeinbase(z, 2) + 7) / 8, off = 0;

    if (n == 0 || n > 32)
        return 0;
    mpz_export(v + 1, NULL, 1, 1, 1, 0, z);
    v[0] = 0;
    if (v[1] & 0x80)
        n++; /* a leading zero keeps it positive */
    else
        off = 1;
    p[0] = 0x02;
    p[1] = (unsigned char)n;
    memcpy(p + 2, v + off, n);
    return 2 + n;
}

/* ECDSA-Sig-Value (RFC 5480) over hash, into sig (room for MBEDTLS_ECDSA_MAX_LEN). */
static int tls_kex_sign_p256(const struct tls_kex_key *k, const mbedtls_ssl_config *conf,
                             const unsigned char *hash, size_t hashlen, unsigned char *sig,
                             size_t *siglen)
{
    struct tls_kex_rng rng = {.conf = conf};
    struct dsa_signature s;
    unsigned char body[72];
    size_t n, m;
    int ret = MBEDTLS_ERR_SSL_INTERNAL_ERROR;

    dsa_signature_init(&s);
    ecdsa_sign(&k->d, &rng, tls_kex_random, hashlen, hash, &s);
    if (rng.failed)
        goto out;
    n = tls_kex_der_int(body, s.r);
    m = n ? tls_kex_der_int(body + n, s.s) : 0;
    if (!m)
        goto out;
    sig[0] = 0x30;
    sig[1] = (unsigned char)(n + m);
    memcpy(sig + 2, body, n + m);
    *siglen = 2 + n + m;
    ret = 0;
out:
    dsa_signature_clear(&s);
    return ret;
}

/* ---- the two states --------------------------------------------------------------------- */

/* The curve of this handshake's ServerKeyExchange when it is ours (ECDHE with a certificate, and
 * X25519 or P-256 the curve mbedTLS would pick: its list against the client's, as
 * ssl_prepare_server_key_exchange does), else MBEDTLS_ECP_DP_NONE. */
static mbedtls_ecp_group_id tls_kex_curve(const mbedtls_ssl_context *ssl)
{
    const mbedtls_ssl_ciphersuite_t *cs = ssl->handshake->ciphersuite_info;

    if (ssl->minor_ver != MBEDTLS_SSL_MINOR_VERSION_3 || !cs || !ssl->handshake->curves ||
        (cs->key_exchange != MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA &&
         cs->key_exchange != MBEDTLS_KEY_EXCHANGE_ECDHE_RSA))
        return MBEDTLS_ECP_DP_NONE;
    for (const mbedtls_ecp_group_id *g = ssl->conf->curve_list; *g != MBEDTLS_ECP_DP_NONE; g++)
        for (const mbedtls_ecp_curve_info **c = ssl->handshake->curves; *c; c++)
            if ((*c)->grp_id == *g)
                return *g == MBEDTLS_ECP_DP_CURVE25519 || *g == MBEDTLS_ECP_DP_SECP256R1
                           ? *g
                           : MBEDTLS_ECP_DP_NONE;
    return MBEDTLS_ECP_DP_NONE;
}

/* z as exactly len big-endian bytes (it fits). */
static void tls_kex_export(unsigned char *out, size_t len, const mpz_t z)
{
    size_t n = (mpz_sizeinbase(z, 2) + 7) / 8;

    memset(out, 0, len);
    if (mpz_sgn(z) != 0 && n <= len)
        mpz_export(out + len - n, NULL, 1, 1, 1, 0, z);
}

/* A P-256 key pair: the private scalar into priv, the point 04||X||Y into pub (65 bytes). */
static int tls_kex_p256_keygen(const mbedtls_ssl_config *conf, unsigned char *priv,
                               unsigned char *pub)
{
    struct tls_kex_rng rng = {.conf = conf};
    struct ecc_scalar d;
    struct ecc_point q;
    mpz_t x, y;

    ecc_scalar_init(&d, nettle_get_secp_256r1());
    ecc_point_init(&q, nettle_get_secp_256r1());
    mpz_inits(x, y, NULL);
    ecc_scalar_random(&d, &rng, tls_kex_random);
    ecc_point_mul_g(&q, &d);
    ecc_scalar_get(&d, x);
    tls_kex_export(priv, 32, x);
    ecc_point_get(&q, x, y);
    pub[0] = 0x04;
    tls_kex_export(pub + 1, 32, x);
    tls_kex_export(pub + 33, 32, y);
    mpz_clears(x, y, NULL);
    ecc_point_clear(&q);
    ecc_scalar_clear(&d);
    return rng.failed ? MBEDTLS_ERR_SSL_INTERNAL_ERROR : 0;
}

/* The P-256 shared secret: x of priv * (the client's point p, 65 bytes 04||X||Y, checked to
 * lie on the curve) into z. 0, or an mbedTLS error for a bad point. */
static int tls_kex_p256_shared(const unsigned char *priv, const unsigned char *p, unsigned char *z)
{
    struct ecc_scalar d;
    struct ecc_point q, r;
    mpz_t x, y;
    int ret = MBEDTLS_ERR_SSL_BAD_HS_CLIENT_KEY_EXCHANGE_RP;

    ecc_scalar_init(&d, nettle_get_secp_256r1());
    ecc_point_init(&q, nettle_get_secp_256r1());
    ecc_point_init(&r, nettle_get_secp_256r1());
    mpz_inits(x, y, NULL);
    mpz_import(x, 32, 1, 1, 1, 0, p + 1);
    mpz_import(y, 32, 1, 1, 1, 0, p + 33);
    if (p[0] != 0x04 || !ecc_point_set(&q, x, y)) /* not on the curve (or not uncompressed) */
        goto out;
    mpz_import(x, 32, 1, 1, 1, 0, priv);
    ret = MBEDTLS_ERR_SSL_INTERNAL_ERROR;
    if (!ecc_scalar_set(&d, x))
        goto out;
    ecc_point_mul(&r, &d, &q);
    ecc_point_get(&r, x, y);
    tls_kex_export(z, 32, x);
    ret = 0;
out:
    mpz_clears(x, y, NULL);
    ecc_point_clear(&r);
    ecc_point_clear(&q);
    ecc_scalar_clear(&d);
    return ret;
}

static int tls_kex_write_ske(mbedtls_ssl_context *ssl, struct tls_kex *kex,
                             mbedtls_ecp_group_id curve, const struct tls_kex_key *key,
                             const mbedtls_pk_context *key_pk)
{
    const mbedtls_ssl_ciphersuite_t *cs = ssl->handshake->ciphersuite_info;
    mbedtls_pk_type_t sig_alg = mbedtls_ssl_get_ciphersuite_sig_pk_alg(cs);
    mbedtls_md_type_t md_alg = mbedtls_ssl_sig_hash_set_find(&ssl->handshake->hash_algs, sig_alg);
    mbedtls_pk_context *own = mbedtls_ssl_own_key(ssl);
    unsigned char hash[MBEDTLS_MD_MAX_SIZE], *p = ssl->out_msg;
    size_t hashlen = 0, siglen = 0, n = 4;
    int ret;

    if (md_alg == MBEDTLS_MD_NONE || !own)
        return MBEDTLS_ERR_SSL_INTERNAL_ERROR; /* as mbedTLS: a suite is chosen only with one */
    p[n++] = MBEDTLS_ECP_TLS_NAMED_CURVE;
    p[n++] = 0;
    if (curve == MBEDTLS_ECP_DP_CURVE25519) {
        ret = ssl->conf->f_rng(ssl->conf->p_rng, kex->priv, sizeof(kex->priv));
        if (ret != 0)
            return ret;
        p[n++] = TLS_X25519_ID;
        p[n++] = 32;
        curve25519_mul_g(p + n, kex->priv);
        n += 32;
    } else {
        p[n++] = TLS_P256_ID;
        p[n++] = 65;
        ret = tls_kex_p256_keygen(ssl->conf, kex->priv, p + n);
        if (ret != 0)
            return ret;
        n += 65;
    }
    ret = mbedtls_ssl_get_key_exchange_md_tls1_2(ssl, hash, &hashlen, p + 4, n - 4, md_alg);
    if (ret != 0)
        return ret;
    p[n++] = mbedtls_ssl_hash_from_md_alg(md_alg);
    p[n++] = mbedtls_ssl_sig_from_pk_alg(sig_alg);
    if (key && own == key_pk)
        ret = tls_kex_sign_p256(key, ssl->conf, hash, hashlen, p + n + 2, &siglen);
    else
        ret = mbedtls_pk_sign(own, md_alg, hash, hashlen, p + n + 2, &siglen, ssl->conf->f_rng,
                              ssl->conf->p_rng);
    if (ret != 0)
        return ret;
    p[n++] = (unsigned char)(siglen >> 8);
    p[n++] = (unsigned char)siglen;
    n += siglen;
    kex->curve = curve;
    ssl->out_msglen = n;
    ssl->out_msgtype = MBEDTLS_SSL_MSG_HANDSHAKE;
    ssl->out_msg[0] = MBEDTLS_SSL_HS_SERVER_KEY_EXCHANGE;
    ssl->state++;
    return mbedtls_ssl_write_handshake_msg(ssl);
}

static int tls_kex_parse_cke(mbedtls_ssl_context *ssl, struct tls_kex *kex)
{
    size_t plen = kex->curve == MBEDTLS_ECP_DP_CURVE25519 ? 32 : 65;
    unsigned char u[32], z[32], acc = 0;
    const unsigned char *p;
    int ret = mbedtls_ssl_read_record(ssl, 1);

    if (ret != 0)
        return ret;
    p = ssl->in_msg + mbedtls_ssl_hs_hdr_len(ssl);
    if (ssl->in_msgtype != MBEDTLS_SSL_MSG_HANDSHAKE ||
        ssl->in_msg[0] != MBEDTLS_SSL_HS_CLIENT_KEY_EXCHANGE)
        return MBEDTLS_ERR_SSL_BAD_HS_CLIENT_KEY_EXCHANGE;
    /* ClientECDiffieHellmanPublic: opaque point <1..2^8-1> */
    if (ssl->in_hslen != mbedtls_ssl_hs_hdr_len(ssl) + 1 + plen || p[0] != plen)
        return MBEDTLS_ERR_SSL_BAD_HS_CLIENT_KEY_EXCHANGE_RP;
    if (kex->curve == MBEDTLS_ECP_DP_CURVE25519) {
        memcpy(u, p + 1, 32);
        u[31] &= 0x7f; /* RFC 7748 5: the top bit of a u-coordinate is masked */
        curve25519_mul(z, kex->priv, u);
        for (size_t i = 0; i < sizeof(z); i++)
            acc |= z[i];
        ret = acc == 0 /* a low-order point: no shared secret (RFC 7748 6.1) */
                  ? MBEDTLS_ERR_SSL_BAD_HS_CLIENT_KEY_EXCHANGE_CS
                  : 0;
    } else {
        ret = tls_kex_p256_shared(kex->priv, p + 1, z);
    }
    mbedtls_platform_zeroize(kex->priv, sizeof(kex->priv));
    kex->curve = MBEDTLS_ECP_DP_NONE;
    if (ret == 0) {
        memcpy(ssl->handshake->premaster, z, sizeof(z));
        ssl->handshake->pmslen = sizeof(z);
        ret = mbedtls_ssl_derive_keys(ssl);
    }
    mbedtls_platform_zeroize(z, sizeof(z));
    if (ret == 0)
        ssl->state++;
    return ret;
}

int tls__kex_handshake(mbedtls_ssl_context *ssl, struct tls_kex *kex, const struct tls_kex_key *key,
                       const mbedtls_pk_context *key_pk)
{
    mbedtls_ecp_group_id curve;
    int ret = 0;

    while (ssl->state != MBEDTLS_SSL_HANDSHAKE_OVER && ret == 0) {
        if (ssl->state == MBEDTLS_SSL_SERVER_KEY_EXCHANGE && ssl->handshake &&
            (curve = tls_kex_curve(ssl)) != MBEDTLS_ECP_DP_NONE) {
            ret = mbedtls_ssl_flush_output(ssl);
            if (ret == 0)
                ret = tls_kex_write_ske(ssl, kex, curve, key, key_pk);
        } else if (ssl->state == MBEDTLS_SSL_CLIENT_KEY_EXCHANGE &&
                   kex->curve != MBEDTLS_ECP_DP_NONE) {
            ret = mbedtls_ssl_flush_output(ssl);
            if (ret == 0)
                ret = tls_kex_parse_cke(ssl, kex);
        } else {
            ret = mbedtls_ssl_handshake_step(ssl);
        }
    }
    return ret;
}
