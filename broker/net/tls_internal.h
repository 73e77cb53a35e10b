/*
 * tls_internal.h — what tls.c (contexts), tls_psk.c (PSK file) and tls_transport.c share.
 * Nothing outside broker/tls*.c includes this.
 */
#ifndef CAIRN_TLS_INTERNAL_H
#define CAIRN_TLS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/dhm.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>

#include "tls.h"

/* How the transport names its peer (identity()). */
enum tls_id { TLS_ID_CN, TLS_ID_SUBJECT };

struct tls_psk_table;
struct tls_kex_key;

struct tls_ctx {
    unsigned refs;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt cert; /* certfile: our chain */
    mbedtls_pk_context key;
    mbedtls_x509_crt ca; /* cafile + capath */
    mbedtls_x509_crl crl;
    int *ciphers; /* 0-terminated list for mbedtls_ssl_conf_ciphersuites, or NULL */
    struct tls_psk_table *psk;
    enum tls_id id;
    bool tickets;                /* session tickets on (see tls.h) */
    bool verify_peer;            /* require_certificate */
    struct tls_kex_key *kex_key; /* key for Nettle's signatures (tls_kex.c), NULL unless P-256 */
    mbedtls_ssl_ticket_context ticket;
    mbedtls_dhm_context dhm; /* dhparamfile, when dhm_set */
    bool dhm_set;
    char **alpn; /* a bridge's (tls_client.c): NULL-terminated protocol list, one allocation */
};

/* The process-wide DRBG, seeded on first call. NULL with err set when seeding fails. */
mbedtls_ctr_drbg_context *tls__drbg(char *err, size_t errlen);

/*
 * Load "identity:hexkey" lines. NULL with "FILE:LINE: reason" in err. Keys are 1..
 * MBEDTLS_PSK_MAX_LEN bytes; identities unique.
 */
struct tls_psk_table *tls__psk_load(const char *path, char *err, size_t errlen);
/* The same from text in memory (len bytes, NUL bytes refused); name stands for FILE in errors
 * (tests, fuzzing). */
struct tls_psk_table *tls__psk_parse(const char *name, const char *text, size_t len, char *err,
                                     size_t errlen);
void tls__psk_free(struct tls_psk_table *t);
/* The key for an identity (not NUL-terminated), NULL when unknown. */
const uint8_t *tls__psk_find(const struct tls_psk_table *t, const unsigned char *id, size_t idlen,
                             size_t *keylen);

/* mbedtls_ssl_conf_psk_cb callback: looks the identity up in ctx->psk and records it in the
 * transport (the BIO context) for identity(). */
int tls__psk_cb(void *ctx, mbedtls_ssl_context *ssl, const unsigned char *id, size_t idlen);
/* Remember a PSK identity in the transport whose BIO context this is. 0 or -ENOMEM. */
int tls__transport_set_psk_identity(void *bio, const unsigned char *id, size_t idlen);

/* ---- tls_kex.c: X25519 / P-256 key exchange and P-256 signatures by Nettle ---- */

/* One connection's key exchange in progress: our ephemeral private value. */
struct tls_kex {
    unsigned char priv[32]; /* X25519 scalar, or the P-256 one big-endian */
    /* the curve of a ServerKeyExchange sent by tls_kex.c (its ClientKeyExchange is ours too),
     * MBEDTLS_ECP_DP_NONE (0) otherwise */
    mbedtls_ecp_group_id curve;
};

/* Nettle's copy of pk when it is a P-256 key: 0 with *out set (NULL for other keys), or -1. */
int tls__kex_key_new(const mbedtls_pk_context *pk, struct tls_kex_key **out);
void tls__kex_key_free(struct tls_kex_key *k);
/*
 * mbedtls_ssl_handshake() for a server, with the X25519 or P-256 key exchange done by Nettle (key,
 * for the signature when the own key is key_pk; NULL: mbedtls_pk_sign). Same answers.
 */
int tls__kex_handshake(mbedtls_ssl_context *ssl, struct tls_kex *kex, const struct tls_kex_key *key,
                       const mbedtls_pk_context *key_pk);

/* ---- tls_park.c: record buffers given back while idle ---- */

struct tls_park {
    unsigned char in_ctr[8]; /* the next incoming record's sequence number, while parked */
    bool parked;             /* no record buffers */
    bool ours;               /* the buffers are tls_park.c's (else mbedTLS's own) */
    size_t in_hi, out_hi;    /* bytes of each buffer written since unparked: to wipe */
};

/* Right after mbedtls_ssl_setup: give its buffers back, parked until the first unpark. */
void tls__park_setup(mbedtls_ssl_context *ssl, struct tls_park *p);
/* Nothing half-read, undecrypted, unread or unsent in ssl's buffers. */
bool tls__park_idle(const mbedtls_ssl_context *ssl);
/* Give the buffers back (the caller checked tls__park_idle); nothing when parked. */
void tls__park(mbedtls_ssl_context *ssl, struct tls_park *p);
/* Buffers again before mbedTLS touches ssl: 0, or MBEDTLS_ERR_SSL_ALLOC_FAILED. */
int tls__unpark(mbedtls_ssl_context *ssl, struct tls_park *p);
/* Before mbedtls_ssl_free: hand tls_park.c's buffers back (mbedTLS would free() them). */
void tls__park_release(mbedtls_ssl_context *ssl, struct tls_park *p);
/* The BIO callbacks: n bytes at buf were written inside ssl's input (in) or output buffer. */
void tls__park_track(const mbedtls_ssl_context *ssl, struct tls_park *p, const unsigned char *buf,
                     size_t n, bool in);

/* ---- tls_pool.c: handshake threads ---- */

/*
 * One step of work for a handshake thread. run() is called on a worker; done() on the loop
 * thread afterwards (ran true), or without run() when the pool stops first (ran false). The
 * submitter owns the job and must not touch what run() uses until done().
 */
struct tls_job {
    void (*run)(struct tls_job *j);
    void (*done)(struct tls_job *j, bool ran);
    struct tls_job *next;
};

/* Are handshake threads running (tls_pool_start)? */
bool tls__pool_active(void);
/* Queue j for a worker. Only while tls__pool_active(). */
void tls__pool_submit(struct tls_job *j);
/* From a done(): run fd's loop callback now, as if the socket had become readable. */
void tls__pool_fire(int fd);

/* tls_identity.c: the subject as RFC 2253 prints it ("CN=a,O=b"), or its CN; NULL when it has
 * none, holds a NUL byte or does not fit. The caller frees. */
char *tls__subject(const mbedtls_x509_name *name);
char *tls__common_name(const mbedtls_x509_name *name);

/* The mbedTLS context of a transport tls_transport_new made (tls_client.c sets the name it
 * checks and its verify callback before the first handshake step). */
mbedtls_ssl_context *tls__transport_ssl(struct transport *t);

/* "peer: TLS handshake failed: mbedTLS text (verify detail)" at NOTICE. */
void tls__log_error(int fd, const char *what, int mbedtls_err, uint32_t verify_flags);

#endif
