/*
 * tls.h — TLS listeners with mbedTLS 2.28: one context per TLS listener (certificate, key, CA,
 * CRL, PSK table, protocol floor, cipher suites), and the transport (broker/net/transport.h) that
 * runs one connection's TLS inside the non-blocking loop.
 *
 * A listener is a TLS listener when any of certfile, keyfile, cafile, capath, crlfile,
 * tls_version, ciphers, psk_hint, require_certificate, use_identity_as_username,
 * use_subject_as_username or dhparamfile is set. Such a listener must come up with TLS or not at
 * all: a certfile without keyfile (or the reverse), a key that does not match the certificate, an
 * unreadable or unparsable file, require_certificate without cafile/capath, an unknown
 * tls_version or cipher is a config error "FILE:LINE: reason" (Mosquitto 2.0.11 serves plaintext
 * on some of these; Cairn never does). PSK (psk_hint + psk_file with "identity:hexkey" lines) may
 * stand alone or beside a certificate. (mbedTLS's server sends no identity hint; psk_hint is
 * what turns PSK on, as in Mosquitto.)
 *
 * dhparamfile (Mosquitto's) gives the DHE suites their group (PEM "DH PARAMETERS"); without it
 * they use mbedTLS's default 2048-bit group, and the ECDHE suites need none.
 *
 * Versions: TLS 1.2 is the floor and, with mbedTLS 2.28, also the ceiling: "tls_version
 * tlsv1.2" is accepted, older values are raised to 1.2 with a warning, "tlsv1.3" is refused.
 * ciphers takes mbedTLS suite names (TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256, ...), separated
 * by ':' ',' or spaces.
 *
 * Client certificates: require_certificate true makes the handshake fail without a
 * certificate that verifies against cafile/capath (and is not revoked by crlfile, not expired).
 * Without it no certificate is asked for. use_identity_as_username (certificate CN, or PSK
 * identity) and use_subject_as_username (the subject as OpenSSL prints RFC 2253, as Mosquitto
 * does: "CN=dev1,O=Example") need require_certificate unless the listener is PSK-only.
 *
 * The transport: the handshake is driven by socket readiness (each WANT_READ / WANT_WRITE
 * answer becomes the events want_events() asks for) and bounded by the connection's CONNECT
 * timeout (conn.c). writev() packs the iovecs into records of up to 16 KB through one shared
 * staging buffer (single-threaded loop; mbedTLS copies the bytes into its record before
 * returning), so a burst of small MQTT packets leaves as one record, not one each. A record
 * that could only be partly sent is finished by the next writev() before anything new: mbedTLS
 * requires the retry with the same length, and the caller re-offers the same bytes because
 * writev() did not count them as accepted. Reads take every record waiting with one recv() and
 * return as many records as fit; pending() reports what is left decrypted or undecrypted in the
 * transport, which the socket will not signal again. An idle connection keeps no record buffers
 * (tls_park.c).
 *
 * Session tickets (resumption without the public-key work) are on for every listener but PSK
 * ones, keyed per context (so a reload invalidates them), 2 hours; with require_certificate the
 * ticket carries the client certificate, and one that has expired since is refused.
 *
 * Handshake cost: X25519 then P-256 first for ECDHE; with either, the key exchange and a P-256
 * server key's signature are Nettle's (tls_kex.c); other curves and keys stay mbedTLS's (an EC
 * key with its comb table kept). Without a ciphers option, AES-128-GCM first on AES-NI CPUs.
 * The handshake steps run on handshake threads (tls_pool.c) when started (listener.c does).
 *
 * Entropy: one mbedtls_entropy + ctr_drbg for the process, seeded on first use.
 *
 * Ownership and lifetime: a tls_ctx is reference-counted. A tls_set (every listener's context,
 * built from one config) holds one reference per context; each transport holds one for as long
 * as it lives, so a reload can drop the old set while old connections finish on the old
 * certificate. Everything here is called on the loop thread; only a handshake step itself runs
 * on a handshake thread (tls_pool.c says what the threads share).
 */
#ifndef CAIRN_TLS_H
#define CAIRN_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct config_security;
struct loop;
struct transport;
struct tls_ctx;
struct tls_set;

/* Does this listener ask for TLS (any option above)? */
bool tls_wanted(const struct config_security *sec);

/*
 * The context for listener i of cfg. 0 with *out NULL when the listener is plain TCP; 0 with a
 * new context (one reference, the caller's); or a negative code with "FILE:LINE: reason" in err.
 */
int tls_ctx_new(const struct config *cfg, size_t i, struct tls_ctx **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx);
/* Drop a reference; the last one frees the context. NULL does nothing. */
void tls_ctx_unref(struct tls_ctx *ctx);

/*
 * A TLS transport on an accepted non-blocking socket; takes ownership of fd and a reference to
 * ctx. NULL on ENOMEM (fd is closed then). The handshake starts with the first handshake().
 */
struct transport *tls_transport_new(struct tls_ctx *ctx, int fd);

/* ---- every listener at once: what listener.c holds --------------------------------------- */

/* A context for each TLS listener of cfg (NULL entries for plain ones). NULL on failure with
 * "FILE:LINE: reason" in err. */
struct tls_set *tls_set_new(const struct config *cfg, char *err, size_t errlen);
void tls_set_free(struct tls_set *s);
/* Listener i's context (borrowed; tls_transport_new takes its own reference), NULL for plain
 * TCP or an index out of range. */
struct tls_ctx *tls_set_get(const struct tls_set *s, size_t i);
/*
 * SIGHUP: rebuild from cfg (certificates, keys, CA, CRL, PSK file re-read) and swap for new
 * connections. On failure the old set stays, the reason is logged, and a negative code returns.
 */
int tls_set_reload(struct tls_set **s, const struct config *cfg);

/* ---- handshake threads (tls_pool.c) ---------------------------------------------------- */

/*
 * Run the handshakes of every TLS transport created from now on in `threads` worker threads
 * (0: one per CPU the process may use, at most 8), results handed back on loop l. Without it,
 * handshakes run on the loop thread. 0, or a negative code with the reason in err. A second call
 * does nothing.
 */
int tls_pool_start(struct loop *l, unsigned threads, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Join the threads (each finishes the step it is in); before loop_free. Nothing when not
 * started. */
void tls_pool_stop(void);

#endif
