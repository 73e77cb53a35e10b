/*
 * tls_client.c — a bridge's TLS to its remote (tls_client.h): the client context, and a thin
 * transport around tls_transport.c's that starts the handshake (the client speaks first) and
 * owns what the certificate check of its connection needs for as long as mbedTLS may call it.
 */
#define _GNU_SOURCE /* asprintf */
#include "tls_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/ssl_ciphersuites.h>

#include "config.h"
#include "log.h"
#include "tls_internal.h"
#include "transport.h"

/* ---- the context ------------------------------------------------------------------------ */

bool tls_client_wanted(const struct config_bridge *b)
{
    return b->cafile || b->capath || b->psk;
}

/* err = "FILE:LINE: bridge NAME: reason[: mbedTLS text]". Returns -EINVAL. */
static int tc_fail(const struct config *cfg, const struct config_bridge *b, unsigned line,
                   int mbedtls_err, char *err, size_t errlen, const char *reason)
{
    char at[320], msg[160] = "";

    if (mbedtls_err) {
        msg[0] = ':';
        msg[1] = ' ';
        mbedtls_strerror(mbedtls_err, msg + 2, sizeof(msg) - 2);
    }
    snprintf(err, errlen, "%s: bridge %s: %s%s",
             config_where(cfg, line ? line : b->line, at, sizeof(at)), b->name, reason, msg);
    return -EINVAL;
}

static int tc_files(struct tls_ctx *ctx, const struct config *cfg, const struct config_bridge *b,
                    char *err, size_t errlen)
{
    int ret, rc = 0;

    if (b->cafile && (ret = mbedtls_x509_crt_parse_file(&ctx->ca, b->cafile)) != 0) {
        rc = tc_fail(cfg, b, b->lines.cafile, ret < 0 ? ret : 0, err, errlen,
                     "cannot load bridge_cafile");
        goto out;
    }
    if (b->capath && (ret = mbedtls_x509_crt_parse_path(&ctx->ca, b->capath)) < 0) {
        rc = tc_fail(cfg, b, b->lines.capath, ret, err, errlen, "cannot load bridge_capath");
        goto out;
    }
    if (!b->certfile)
        goto out;
    if ((ret = mbedtls_x509_crt_parse_file(&ctx->cert, b->certfile)) != 0) {
        rc = tc_fail(cfg, b, b->lines.certfile, ret < 0 ? ret : 0, err, errlen,
                     "cannot load bridge_certfile");
    } else if ((ret = mbedtls_pk_parse_keyfile(&ctx->key, b->keyfile, NULL)) != 0) {
        rc = tc_fail(cfg, b, b->lines.keyfile, ret, err, errlen, "cannot load bridge_keyfile");
    } else if (mbedtls_pk_check_pair(&ctx->cert.pk, &ctx->key) != 0) {
        rc = tc_fail(cfg, b, b->lines.keyfile, 0, err, errlen,
                     "bridge_keyfile does not match the certificate in bridge_certfile");
    } else if ((ret = mbedtls_ssl_conf_own_cert(&ctx->conf, &ctx->cert, &ctx->key)) != 0) {
        rc = tc_fail(cfg, b, b->lines.certfile, ret, err, errlen, "TLS set-up failed");
    }
out:
    return rc;
}

/*
 * bridge_psk read as psk_file keys are (tls_psk.c, Mosquitto's way with hex), offered with the
 * PSK suites only: a suite with a server certificate would let an unverified remote in.
 */
static int tc_psk(struct tls_ctx *ctx, const struct config *cfg, const struct config_bridge *b,
                  char *err, size_t errlen)
{
    const int *all = mbedtls_ssl_list_ciphersuites();
    char *text = NULL, why[256];
    const uint8_t *key;
    size_t keylen = 0, n = 0, k = 0;
    int ret, rc = -ENOMEM;

    if (asprintf(&text, "bridge:%s\n", b->psk) < 0) {
        text = NULL;
        goto out;
    }
    ctx->psk = tls__psk_parse("bridge_psk", text, strlen(text), why, sizeof(why));
    key = ctx->psk ? tls__psk_find(ctx->psk, (const unsigned char *)"bridge", 6, &keylen) : NULL;
    if (!key) {
        rc = tc_fail(cfg, b, b->lines.psk, 0, err, errlen,
                     "bridge_psk is not a key (hex digits, at most 32 bytes)");
        goto out;
    }
    ret = mbedtls_ssl_conf_psk(&ctx->conf, key, keylen, (const unsigned char *)b->identity,
                               strlen(b->identity));
    if (ret != 0) {
        rc = tc_fail(cfg, b, b->lines.identity, ret, err, errlen, "bridge_identity refused");
        goto out;
    }
    while (all[n])
        n++;
    if (!(ctx->ciphers = calloc(n + 1, sizeof(int))))
        goto out;
    for (size_t i = 0; i < n; i++) {
        const mbedtls_ssl_ciphersuite_t *cs = mbedtls_ssl_ciphersuite_from_id(all[i]);
        if (cs && (cs->key_exchange == MBEDTLS_KEY_EXCHANGE_PSK ||
                   cs->key_exchange == MBEDTLS_KEY_EXCHANGE_DHE_PSK ||
                   cs->key_exchange == MBEDTLS_KEY_EXCHANGE_ECDHE_PSK))
            ctx->ciphers[k++] = all[i];
    }
    mbedtls_ssl_conf_ciphersuites(&ctx->conf, ctx->ciphers);
    mbedtls_ssl_conf_authmode(&ctx->conf, MBEDTLS_SSL_VERIFY_NONE);
    rc = 0;
out:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    free(text);
    return rc;
}

/* bridge_alpn: one protocol, kept in the context for mbedTLS (one allocation, tls.c frees). */
static int tc_alpn(struct tls_ctx *ctx, const struct config_bridge *b, char *err, size_t errlen)
{
    size_t len = strlen(b->alpn);

    ctx->alpn = malloc(2 * sizeof(char *) + len + 1);
    if (!ctx->alpn) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    ctx->alpn[0] = (char *)(ctx->alpn + 2);
    ctx->alpn[1] = NULL;
    memcpy(ctx->alpn[0], b->alpn, len + 1);
    return mbedtls_ssl_conf_alpn_protocols(&ctx->conf, (const char **)ctx->alpn) == 0 ? 0 : -EINVAL;
}

int tls_client_ctx_new(const struct config *cfg, const struct config_bridge *b,
                       struct tls_ctx **out, char *err, size_t errlen)
{
    mbedtls_ctr_drbg_context *drbg;
    struct tls_ctx *ctx = NULL;
    int rc = 0, ret;

    *out = NULL;
    if (!tls_client_wanted(b))
        goto out;
    rc = -EINVAL;
    if (b->tls_version && strcmp(b->tls_version, "tlsv1.2") != 0) {
        rc = tc_fail(cfg, b, b->lines.tls_version, 0, err, errlen,
                     "bridge_tls_version: tlsv1.2 is the one mbedTLS 2.28 speaks");
        goto out;
    }
    if (!(drbg = tls__drbg(err, errlen)))
        goto out;
    rc = -ENOMEM;
    if (!(ctx = calloc(1, sizeof(*ctx)))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    ctx->refs = 1;
    mbedtls_ssl_config_init(&ctx->conf);
    mbedtls_x509_crt_init(&ctx->cert);
    mbedtls_pk_init(&ctx->key);
    mbedtls_x509_crt_init(&ctx->ca);
    mbedtls_x509_crl_init(&ctx->crl);
    mbedtls_ssl_ticket_init(&ctx->ticket);
    mbedtls_dhm_init(&ctx->dhm);
    ret = mbedtls_ssl_config_defaults(&ctx->conf, MBEDTLS_SSL_IS_CLIENT,
                                      MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0) {
        rc = tc_fail(cfg, b, 0, ret, err, errlen, "TLS set-up failed");
        goto out;
    }
    mbedtls_ssl_conf_rng(&ctx->conf, mbedtls_ctr_drbg_random, drbg);
    mbedtls_ssl_conf_min_version(&ctx->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    if (b->psk) {
        rc = tc_psk(ctx, cfg, b, err, errlen);
    } else {
        rc = tc_files(ctx, cfg, b, err, errlen);
        mbedtls_ssl_conf_ca_chain(&ctx->conf, &ctx->ca, NULL);
        mbedtls_ssl_conf_authmode(&ctx->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    }
    if (rc == 0 && b->alpn && (rc = tc_alpn(ctx, b, err, errlen)) == -EINVAL)
        rc = tc_fail(cfg, b, b->lines.alpn, 0, err, errlen, "bridge_alpn refused");
    if (rc != 0)
        goto out;
    *out = ctx;
    ctx = NULL;
out:
    tls_ctx_unref(ctx);
    return rc;
}

/* ---- the transport ---------------------------------------------------------------------- */

struct tc_transport {
    struct transport base;
    struct transport *inner; /* tls_transport.c's */
    bool started;            /* the first handshake step was taken */
    bool insecure;
    uint8_t ip[16]; /* host as an address: what the certificate's IP entries must hold */
    size_t iplen;   /* 0: host is a name, mbedTLS checks it */
};

/*
 * Does the certificate list ip among its subjectAltName iPAddress entries? mbedTLS 2.28 keeps
 * only DNS names from that extension, so it is read from the raw extensions here.
 */
static bool tc_san_has_ip(const mbedtls_x509_crt *crt, const uint8_t *ip, size_t iplen)
{
    unsigned char *p = crt->v3_ext.p, *end = p + crt->v3_ext.len;
    bool found = false;
    size_t len;

    if (!p || mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
        goto out;
    end = p + len;
    while (p < end && !found) {
        unsigned char *ext_end, *q, *qend;
        mbedtls_x509_buf oid = {.tag = MBEDTLS_ASN1_OID};
        int critical;

        if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
            goto out;
        ext_end = p + len;
        if (mbedtls_asn1_get_tag(&p, ext_end, &oid.len, MBEDTLS_ASN1_OID))
            goto out;
        oid.p = p;
        p += oid.len;
        mbedtls_asn1_get_bool(&p, ext_end, &critical); /* optional: p stays when absent */
        if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING))
            goto out;
        q = p;
        qend = p + len;
        p = ext_end;
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_SUBJECT_ALT_NAME, &oid) != 0 ||
            mbedtls_asn1_get_tag(&q, qend, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
            continue;
        qend = q + len;
        while (q < qend && !found) { /* GeneralNames: [7] iPAddress, 4 or 16 bytes */
            unsigned char tag = *q++;
            if (mbedtls_asn1_get_len(&q, qend, &len))
                goto out;
            found = tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && len == iplen &&
                    memcmp(q, ip, iplen) == 0;
            q += len;
        }
    }
out:
    return found;
}

/* mbedTLS's verify callback for this connection: the name check of the remote's certificate. */
static int tc_verify(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    const struct tc_transport *w = arg;

    if (depth != 0)
        return 0;
    if (w->insecure)
        *flags &= ~(uint32_t)MBEDTLS_X509_BADCERT_CN_MISMATCH;
    else if (w->iplen && !tc_san_has_ip(crt, w->ip, w->iplen))
        *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    return 0;
}

static int tc_handshake(struct transport *t)
{
    struct tc_transport *w = (struct tc_transport *)t;

    w->started = true;
    return w->inner->ops->handshake(w->inner);
}

static ssize_t tc_read(struct transport *t, void *buf, size_t len)
{
    struct transport *in = ((struct tc_transport *)t)->inner;

    return in->ops->read(in, buf, len);
}

static ssize_t tc_writev(struct transport *t, const struct iovec *iov, int iovcnt)
{
    struct transport *in = ((struct tc_transport *)t)->inner;

    return in->ops->writev(in, iov, iovcnt);
}

static size_t tc_pending(const struct transport *t)
{
    const struct transport *in = ((const struct tc_transport *)t)->inner;

    return in->ops->pending(in);
}

/* Until the first step the client has its ClientHello to send: write interest. */
static int tc_want_events(const struct transport *t, int caller_wants)
{
    const struct tc_transport *w = (const struct tc_transport *)t;

    return w->started ? w->inner->ops->want_events(w->inner, caller_wants) : CAIRN_EV_WRITE;
}

static const char *tc_identity(const struct transport *t)
{
    const struct transport *in = ((const struct tc_transport *)t)->inner;

    return in->ops->identity(in);
}

static void tc_close(struct transport *t)
{
    struct tc_transport *w = (struct tc_transport *)t;

    if (!w)
        return;
    w->inner->ops->close(w->inner); /* mbedTLS calls tc_verify no more */
    free(w);
}

static const struct transport_ops tc_ops = {
    .handshake = tc_handshake,
    .read = tc_read,
    .writev = tc_writev,
    .pending = tc_pending,
    .want_events = tc_want_events,
    .identity = tc_identity,
    .close = tc_close,
};

struct transport *tls_client_transport_new(struct tls_ctx *ctx, int fd, const char *host,
                                           bool insecure)
{
    struct tc_transport *w = calloc(1, sizeof(*w));
    mbedtls_ssl_context *ssl;

    if (!w) {
        close(fd);
        return NULL;
    }
    w->inner = tls_transport_new(ctx, fd);
    if (!w->inner) {
        free(w);
        return NULL;
    }
    w->base.ops = &tc_ops;
    w->base.fd = fd;
    w->insecure = insecure;
    ssl = tls__transport_ssl(w->inner);
    if (inet_pton(AF_INET, host, w->ip) == 1)
        w->iplen = 4;
    else if (inet_pton(AF_INET6, host, w->ip) == 1)
        w->iplen = 16;
    else if (mbedtls_ssl_set_hostname(ssl, host) != 0) { /* SNI, and the name checked */
        tc_close(&w->base);
        return NULL;
    }
    mbedtls_ssl_set_verify(ssl, tc_verify, w);
    return &w->base;
}
