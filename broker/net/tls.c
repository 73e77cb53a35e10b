/*
 * tls.c — TLS contexts: one per TLS listener, built from the config, checked hard (a TLS
 * listener never falls back to plaintext), reference-counted across SIGHUP reloads. See tls.h.
 * The transport itself is in tls_transport.c, the PSK file in tls_psk.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/aesni.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>

#include "config.h"
#include "log.h"
#include "tls_internal.h"

/*
 * Session tickets (RFC 5077) let a client that reconnects skip the public-key work of a full
 * handshake: after a restart the whole fleet pays full handshakes once, then reconnects are
 * cheap. On for every listener but PSK ones (a PSK identity must be looked up in the current
 * psk_file each time, and the identity is not in the session). With require_certificate the
 * ticket carries the client's certificate (mbedTLS keeps the peer certificate in the session),
 * so its identity survives resumption, and nothing verified is skipped: the keys live in the
 * context, so a reload (a new CRL, CA or certificate: a new context) invalidates every earlier
 * ticket and the next handshake is a full one, verified against the new files; and a resumed
 * session whose certificate has expired since is refused (tls_transport.c).
 */
#define TLS_TICKET_LIFETIME 7200 /* seconds */

struct tls_set {
    struct tls_ctx **v;
    size_t n;
};

/* ---- process-wide randomness ------------------------------------------------------------ */

static mbedtls_entropy_context tls_entropy;
static mbedtls_ctr_drbg_context tls_drbg;
static bool tls_drbg_ready;

mbedtls_ctr_drbg_context *tls__drbg(char *err, size_t errlen)
{
    static const unsigned char pers[] = "cairn-tls";
    int ret;

    if (tls_drbg_ready)
        return &tls_drbg;
    mbedtls_entropy_init(&tls_entropy);
    mbedtls_ctr_drbg_init(&tls_drbg);
    ret = mbedtls_ctr_drbg_seed(&tls_drbg, mbedtls_entropy_func, &tls_entropy, pers,
                                sizeof(pers) - 1);
    if (ret != 0) {
        char msg[128];

        mbedtls_strerror(ret, msg, sizeof(msg));
        snprintf(err, errlen, "TLS: cannot seed the random generator: %s", msg);
        mbedtls_ctr_drbg_free(&tls_drbg);
        mbedtls_entropy_free(&tls_entropy);
        return NULL;
    }
    tls_drbg_ready = true;
    return &tls_drbg;
}

/* ---- where in the config file ----------------------------------------------------------- */

/*
 * "FILE:LINE: " for an option of listener i given at line (config.h records it), into buf; the
 * listener's own line when the option has none (line 0: not given, e.g. a missing keyfile);
 * "FILE: listener N: " when neither is known (a config built in memory).
 */
static void tls_where(const struct config *cfg, size_t i, unsigned line, char *buf, size_t len)
{
    char at[320];

    if (line == 0)
        line = cfg->listeners[i].line;
    /* the line may be in a file include_dir read: config_where() knows which */
    if (line)
        snprintf(buf, len, "%s: ", config_where(cfg, line, at, sizeof(at)));
    else
        snprintf(buf, len, "%s: listener %zu: ", config_where(cfg, 0, at, sizeof(at)), i);
}

/* The first line that made listener i a TLS listener (0: none recorded). */
static unsigned tls_first_line(const struct config_lines *l)
{
    const unsigned v[] = {l->cafile,
                          l->capath,
                          l->certfile,
                          l->keyfile,
                          l->crlfile,
                          l->tls_version,
                          l->ciphers,
                          l->psk_hint,
                          l->require_certificate,
                          l->use_identity_as_username,
                          l->use_subject_as_username,
                          l->dhparamfile};
    unsigned first = 0;

    for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
        if (v[k] && (first == 0 || v[k] < first))
            first = v[k];
    return first;
}

/* err = where(line) + reason [+ ": " + mbedTLS text]. Returns -EINVAL. */
static int tls_fail(const struct config *cfg, size_t i, unsigned line, int mbedtls_err, char *err,
                    size_t errlen, const char *reason)
{
    char where[512], msg[160] = "";

    tls_where(cfg, i, line, where, sizeof(where));
    if (mbedtls_err) {
        msg[0] = ':';
        msg[1] = ' ';
        mbedtls_strerror(mbedtls_err, msg + 2, sizeof(msg) - 2);
    }
    snprintf(err, errlen, "%s%s%s", where, reason, msg);
    return -EINVAL;
}

/* ---- handshake cost ---------------------------------------------------------------------- */

/*
 * The key exchange curve is the server's choice (mbedTLS matches its own list against the
 * client's), and mbedTLS's default list starts with secp521r1: against an OpenSSL client that
 * offers X25519, P-256, X448, P-521, P-384 it picks P-521, whose ECDHE costs 2.5 times
 * P-256's. The cheap curves go first; the rest keep mbedTLS's order (the list also bounds the
 * curves accepted in client certificates, so none is dropped).
 */
static const mbedtls_ecp_group_id tls_curves_first[] = {
    MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_SECP384R1,
    MBEDTLS_ECP_DP_SECP521R1, MBEDTLS_ECP_DP_CURVE448};
static mbedtls_ecp_group_id
    tls_curves[32]; /* more than mbedTLS has (DP_MAX leaves out Montgomery) */

static const mbedtls_ecp_group_id *tls_curve_list(void)
{
    const mbedtls_ecp_group_id *all = mbedtls_ecp_grp_id_list();
    size_t n = 0;

    if (tls_curves[0] != MBEDTLS_ECP_DP_NONE)
        return tls_curves;
    for (size_t i = 0; i < sizeof(tls_curves_first) / sizeof(tls_curves_first[0]); i++)
        for (const mbedtls_ecp_group_id *g = all; *g != MBEDTLS_ECP_DP_NONE; g++)
            if (*g == tls_curves_first[i])
                tls_curves[n++] = *g;
    for (const mbedtls_ecp_group_id *g = all; *g != MBEDTLS_ECP_DP_NONE; g++) {
        bool seen = false;

        for (size_t i = 0; i < n; i++)
            seen = seen || tls_curves[i] == *g;
        if (!seen && n < sizeof(tls_curves) / sizeof(tls_curves[0]) - 1)
            tls_curves[n++] = *g;
    }
    tls_curves[n] = MBEDTLS_ECP_DP_NONE;
    return tls_curves;
}

/*
 * Without a ciphers option: mbedTLS's list, but with the AES-128-GCM suites first on a CPU with
 * AES-NI (as OpenSSL clients order theirs there). mbedTLS's own order starts with
 * ChaCha20-Poly1305, whose C implementation costs a third more than its AES-NI GCM for the
 * small records of devices (0.87 against 0.65 us for an 80-byte record, measured), which is
 * where a broker's symmetric crypto goes: one record per message in. NULL: mbedTLS's own list.
 */
static const int *tls_default_ciphers(void)
{
    static int list[256];
    static bool built;
    const int *all = mbedtls_ssl_list_ciphersuites();
    size_t n = 0;

    if (built)
        return list[0] ? list : NULL;
    built = true;
    if (!mbedtls_aesni_has_support(MBEDTLS_AESNI_AES))
        return NULL;
    for (int pass = 0; pass < 2; pass++)
        for (const int *c = all; *c && n < sizeof(list) / sizeof(list[0]) - 1; c++) {
            const char *name = mbedtls_ssl_get_ciphersuite_name(*c);
            bool first = strstr(name, "-AES-128-GCM-") != NULL;

            if (first == (pass == 0))
                list[n++] = *c;
        }
    list[n] = 0;
    return list;
}

/*
 * An EC private key parses as an MBEDTLS_PK_ECKEY context, and mbedTLS signs with such a key
 * through a temporary ECDSA context whose group is loaded afresh: the comb table of the base
 * point (the bulk of a signature's work) is built and thrown away on every handshake. As an
 * MBEDTLS_PK_ECDSA context the key signs with its own group, which keeps the table. One
 * signature here builds it, so that handshake threads only ever read it.
 */
static int tls_key_keep_table(struct tls_ctx *ctx, mbedtls_ctr_drbg_context *drbg)
{
    mbedtls_pk_context ecdsa;
    unsigned char hash[32] = {0}, sig[MBEDTLS_ECDSA_MAX_LEN];
    size_t siglen;
    int ret = 0;

    mbedtls_pk_init(&ecdsa);
    if (mbedtls_pk_get_type(&ctx->key) != MBEDTLS_PK_ECKEY)
        goto out;
    ret = mbedtls_pk_setup(&ecdsa, mbedtls_pk_info_from_type(MBEDTLS_PK_ECDSA));
    if (ret == 0)
        ret = mbedtls_ecdsa_from_keypair(mbedtls_pk_ec(ecdsa), mbedtls_pk_ec(ctx->key));
    if (ret == 0)
        ret = mbedtls_pk_sign(&ecdsa, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig, &siglen,
                              mbedtls_ctr_drbg_random, drbg);
    if (ret != 0)
        goto out;
    mbedtls_pk_free(&ctx->key);
    ctx->key = ecdsa; /* a plain struct: the context moves, its pointers stay valid */
    mbedtls_pk_init(&ecdsa);
out:
    mbedtls_pk_free(&ecdsa);
    return ret;
}

/* ---- building a context ----------------------------------------------------------------- */

bool tls_wanted(const struct config_security *sec)
{
    return sec->certfile || sec->keyfile || sec->cafile || sec->capath || sec->crlfile ||
           sec->tls_version || sec->ciphers || sec->psk_hint || sec->require_certificate ||
           sec->use_identity_as_username || sec->use_subject_as_username || sec->dhparamfile;
}

/* Combinations that cannot make a working TLS listener. */
static int tls_check_options(const struct config *cfg, size_t i, char *err, size_t errlen)
{
    const struct config_security *s = &cfg->listeners[i].sec;
    int rc = 0;

    if (s->certfile && !s->keyfile)
        rc = tls_fail(cfg, i, s->line.certfile, 0, err, errlen,
                      "certfile without keyfile: this TLS listener would have no key");
    else if (s->keyfile && !s->certfile)
        rc = tls_fail(cfg, i, s->line.keyfile, 0, err, errlen,
                      "keyfile without certfile: this TLS listener would have no certificate");
    else if (!s->certfile && !s->psk_hint)
        rc = tls_fail(cfg, i, tls_first_line(&s->line), 0, err, errlen,
                      "TLS options without certfile and keyfile (or psk_hint and psk_file)");
    else if (s->psk_hint && !s->psk_file)
        rc = tls_fail(cfg, i, s->line.psk_hint, 0, err, errlen, "psk_hint without psk_file");
    else if (s->require_certificate && !s->cafile && !s->capath)
        rc = tls_fail(cfg, i, s->line.require_certificate, 0, err, errlen,
                      "require_certificate needs cafile or capath to verify clients against");
    else if (s->crlfile && !s->require_certificate)
        rc = tls_fail(cfg, i, s->line.crlfile, 0, err, errlen,
                      "crlfile needs require_certificate true");
    else if ((s->use_identity_as_username || s->use_subject_as_username) && s->certfile &&
             !s->require_certificate)
        rc = tls_fail(cfg, i,
                      s->use_identity_as_username ? s->line.use_identity_as_username
                                                  : s->line.use_subject_as_username,
                      0, err, errlen,
                      "a certificate identity as username needs require_certificate true");
    return rc;
}

/* tls_version: TLS 1.2 is both floor and ceiling with mbedTLS 2.28. */
static int tls_version(const struct config *cfg, size_t i, char *err, size_t errlen)
{
    const char *v = cfg->listeners[i].sec.tls_version;
    unsigned line = cfg->listeners[i].sec.line.tls_version;
    char where[512];
    int rc = 0;

    if (!v || strcmp(v, "tlsv1.2") == 0)
        goto out;
    if (strcmp(v, "tlsv1.1") == 0 || strcmp(v, "tlsv1") == 0) {
        tls_where(cfg, i, line, where, sizeof(where));
        log_write(CAIRN_LOG_WARNING, "%stls_version %s raised to tlsv1.2, Cairn's floor", where, v);
        goto out;
    }
    if (strcmp(v, "tlsv1.3") == 0)
        rc = tls_fail(cfg, i, line, 0, err, errlen,
                      "tlsv1.3 is not available: mbedTLS 2.28 speaks TLS 1.2");
    else
        rc = tls_fail(cfg, i, line, 0, err, errlen,
                      "unknown tls_version (tlsv1.2, or tlsv1.1 which is raised to 1.2)");
out:
    return rc;
}

/* ciphers: mbedTLS suite names separated by ':' ',' or blanks. */
static int tls_ciphers(struct tls_ctx *ctx, const struct config *cfg, size_t i, char *err,
                       size_t errlen)
{
    const char *list = cfg->listeners[i].sec.ciphers;
    unsigned line = cfg->listeners[i].sec.line.ciphers;
    char *copy = NULL, *save = NULL, *tok;
    size_t n = 0;
    int rc = 0;

    if (!list)
        goto out;
    rc = -ENOMEM;
    copy = strdup(list);
    ctx->ciphers = calloc(strlen(list) / 2 + 2, sizeof(int));
    if (!copy || !ctx->ciphers) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (tok = strtok_r(copy, ":, \t", &save); tok; tok = strtok_r(NULL, ":, \t", &save)) {
        int id = mbedtls_ssl_get_ciphersuite_id(tok);
        char reason[256];

        if (id == 0) {
            snprintf(reason, sizeof(reason),
                     "unknown cipher suite \"%.100s\" (mbedTLS names, e.g. "
                     "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256)",
                     tok);
            rc = tls_fail(cfg, i, line, 0, err, errlen, reason);
            goto out;
        }
        ctx->ciphers[n++] = id;
    }
    rc = n ? 0 : tls_fail(cfg, i, line, 0, err, errlen, "empty cipher list");
out:
    free(copy);
    return rc;
}

/* Certificate, key, CA and CRL files. */
static int tls_load_files(struct tls_ctx *ctx, const struct config *cfg, size_t i, char *err,
                          size_t errlen)
{
    const struct config_security *s = &cfg->listeners[i].sec;
    int ret, rc = 0;

    if (s->certfile) {
        ret = mbedtls_x509_crt_parse_file(&ctx->cert, s->certfile);
        if (ret != 0) {
            rc = tls_fail(cfg, i, s->line.certfile, ret < 0 ? ret : 0, err, errlen,
                          "cannot load certfile");
            goto out;
        }
        ret = mbedtls_pk_parse_keyfile(&ctx->key, s->keyfile, NULL);
        if (ret != 0) {
            rc = tls_fail(cfg, i, s->line.keyfile, ret, err, errlen, "cannot load keyfile");
            goto out;
        }
        ret = mbedtls_pk_check_pair(&ctx->cert.pk, &ctx->key);
        if (ret != 0) {
            rc = tls_fail(cfg, i, s->line.keyfile, 0, err, errlen,
                          "keyfile does not match the certificate in certfile");
            goto out;
        }
    }
    if (s->cafile) {
        ret = mbedtls_x509_crt_parse_file(&ctx->ca, s->cafile);
        if (ret != 0) {
            rc = tls_fail(cfg, i, s->line.cafile, ret < 0 ? ret : 0, err, errlen,
                          "cannot load cafile");
            goto out;
        }
    }
    if (s->capath) {
        ret = mbedtls_x509_crt_parse_path(&ctx->ca, s->capath);
        if (ret < 0) {
            rc = tls_fail(cfg, i, s->line.capath, ret, err, errlen, "cannot load capath");
            goto out;
        }
        if (ret > 0)
            log_write(CAIRN_LOG_WARNING, "capath %s: %d files are not certificates", s->capath,
                      ret);
    }
    if (s->crlfile) {
        ret = mbedtls_x509_crl_parse_file(&ctx->crl, s->crlfile);
        if (ret != 0) {
            rc = tls_fail(cfg, i, s->line.crlfile, ret < 0 ? ret : 0, err, errlen,
                          "cannot load crlfile");
            goto out;
        }
    }
    if (s->dhparamfile) {
        /* PEM "DH PARAMETERS", as openssl dhparam writes them (Mosquitto's format) */
        ret = mbedtls_dhm_parse_dhmfile(&ctx->dhm, s->dhparamfile);
        if (ret != 0) {
            rc = tls_fail(cfg, i, s->line.dhparamfile, ret, err, errlen, "cannot load dhparamfile");
            goto out;
        }
        ctx->dhm_set = true;
    }
out:
    return rc;
}

static int tls_conf(struct tls_ctx *ctx, const struct config_security *s,
                    mbedtls_ctr_drbg_context *drbg)
{
    mbedtls_ssl_config *c = &ctx->conf;
    int ret;

    ret = mbedtls_ssl_config_defaults(c, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                      MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret)
        goto out;
    mbedtls_ssl_conf_rng(c, mbedtls_ctr_drbg_random, drbg);
    mbedtls_ssl_conf_min_version(c, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_curves(c, tls_curve_list());
    if (s->certfile) {
        ret = tls_key_keep_table(ctx, drbg);
        if (ret == 0 && tls__kex_key_new(&ctx->key, &ctx->kex_key) != 0)
            ret = MBEDTLS_ERR_SSL_ALLOC_FAILED;
        if (ret == 0)
            ret = mbedtls_ssl_conf_own_cert(c, &ctx->cert, &ctx->key);
        if (ret)
            goto out;
    }
    if (s->cafile || s->capath)
        mbedtls_ssl_conf_ca_chain(c, &ctx->ca, s->crlfile ? &ctx->crl : NULL);
    /* without dhparamfile the DHE suites use mbedTLS's default group (RFC 3526, 2048 bits);
     * the ECDHE suites clients prefer need no parameters at all */
    if (ctx->dhm_set && (ret = mbedtls_ssl_conf_dh_param_ctx(c, &ctx->dhm)) != 0)
        goto out;
    mbedtls_ssl_conf_authmode(c, s->require_certificate ? MBEDTLS_SSL_VERIFY_REQUIRED
                                                        : MBEDTLS_SSL_VERIFY_NONE);
    if (ctx->psk)
        mbedtls_ssl_conf_psk_cb(c, tls__psk_cb, ctx);
    if (ctx->ciphers)
        mbedtls_ssl_conf_ciphersuites(c, ctx->ciphers);
    else if (tls_default_ciphers())
        mbedtls_ssl_conf_ciphersuites(c, tls_default_ciphers());
    ctx->verify_peer = s->require_certificate;
    if (!ctx->psk) {
        ret = mbedtls_ssl_ticket_setup(&ctx->ticket, mbedtls_ctr_drbg_random, drbg,
                                       MBEDTLS_CIPHER_AES_256_GCM, TLS_TICKET_LIFETIME);
        if (ret)
            goto out;
        ctx->tickets = true;
        mbedtls_ssl_conf_session_tickets_cb(c, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse,
                                            &ctx->ticket);
    } else {
        mbedtls_ssl_conf_session_tickets(c, MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
    }
out:
    return ret;
}

int tls_ctx_new(const struct config *cfg, size_t i, struct tls_ctx **out, char *err, size_t errlen)
{
    const struct config_security *s = &cfg->listeners[i].sec;
    struct tls_ctx *ctx = NULL;
    mbedtls_ctr_drbg_context *drbg;
    int rc = 0, ret;

    *out = NULL;
    if (!tls_wanted(s))
        goto out;
    rc = tls_check_options(cfg, i, err, errlen);
    if (rc)
        goto out;
    rc = tls_version(cfg, i, err, errlen);
    if (rc)
        goto out;
    rc = -EINVAL;
    drbg = tls__drbg(err, errlen);
    if (!drbg)
        goto out;
    rc = -ENOMEM;
    ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    ctx->refs = 1;
    ctx->id = s->use_subject_as_username ? TLS_ID_SUBJECT : TLS_ID_CN;
    mbedtls_ssl_config_init(&ctx->conf);
    mbedtls_x509_crt_init(&ctx->cert);
    mbedtls_pk_init(&ctx->key);
    mbedtls_x509_crt_init(&ctx->ca);
    mbedtls_x509_crl_init(&ctx->crl);
    mbedtls_ssl_ticket_init(&ctx->ticket);
    mbedtls_dhm_init(&ctx->dhm);
    rc = tls_load_files(ctx, cfg, i, err, errlen);
    if (rc == 0)
        rc = tls_ciphers(ctx, cfg, i, err, errlen);
    if (rc)
        goto out;
    if (s->psk_hint) {
        char why[512] = "psk_file: ";
        size_t k = strlen(why);

        rc = -EINVAL;
        ctx->psk = tls__psk_load(s->psk_file, why + k, sizeof(why) - k);
        if (!ctx->psk) {
            rc = tls_fail(cfg, i, s->line.psk_file, 0, err, errlen, why);
            goto out;
        }
    }
    ret = tls_conf(ctx, s, drbg);
    if (ret) {
        rc = tls_fail(cfg, i, 0, ret, err, errlen, "TLS set-up failed");
        goto out;
    }
    *out = ctx;
    ctx = NULL;
    rc = 0;
out:
    tls_ctx_unref(ctx);
    return rc;
}

struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx)
{
    ctx->refs++;
    return ctx;
}

void tls_ctx_unref(struct tls_ctx *ctx)
{
    if (!ctx || --ctx->refs > 0)
        return;
    mbedtls_ssl_config_free(&ctx->conf);
    mbedtls_x509_crt_free(&ctx->cert);
    mbedtls_pk_free(&ctx->key);
    tls__kex_key_free(ctx->kex_key);
    mbedtls_x509_crt_free(&ctx->ca);
    mbedtls_x509_crl_free(&ctx->crl);
    mbedtls_ssl_ticket_free(&ctx->ticket);
    mbedtls_dhm_free(&ctx->dhm);
    tls__psk_free(ctx->psk);
    free(ctx->ciphers);
    free(ctx->alpn);
    free(ctx);
}

/* ---- the set of every listener ---------------------------------------------------------- */

struct tls_set *tls_set_new(const struct config *cfg, char *err, size_t errlen)
{
    struct tls_set *s = calloc(1, sizeof(*s));

    if (!s || !(s->v = calloc(cfg->n_listeners + 1, sizeof(*s->v)))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->n = cfg->n_listeners;
    for (size_t i = 0; i < s->n; i++)
        if (tls_ctx_new(cfg, i, &s->v[i], err, errlen) != 0)
            goto fail;
    return s;
fail:
    tls_set_free(s);
    return NULL;
}

void tls_set_free(struct tls_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->v && i < s->n; i++)
        tls_ctx_unref(s->v[i]);
    free(s->v);
    free(s);
}

struct tls_ctx *tls_set_get(const struct tls_set *s, size_t i)
{
    return (s && i < s->n) ? s->v[i] : NULL;
}

int tls_set_reload(struct tls_set **s, const struct config *cfg)
{
    char err[512];
    struct tls_set *ns = tls_set_new(cfg, err, sizeof(err));
    int rc = -EINVAL;

    if (!ns) {
        log_write(CAIRN_LOG_ERR, "reload: keeping the previous TLS settings: %s", err);
        goto out;
    }
    tls_set_free(*s);
    *s = ns;
    rc = 0;
out:
    return rc;
}
