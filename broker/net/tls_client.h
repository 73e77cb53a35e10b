/*
 * tls_client.h — TLS to a bridge's remote broker: mbedTLS in client mode, in the same
 * non-blocking loop as the listeners' TLS (the transport is tls_transport.c's).
 *
 * A bridge speaks TLS when it has bridge_cafile, bridge_capath or bridge_psk (as Mosquitto).
 * With certificates: the remote's chain must verify against bridge_cafile/bridge_capath, and
 * its certificate must name the host dialled — a DNS name (also sent as SNI) checked by mbedTLS
 * against the certificate's DNS names or CN, an IP address against its IP address entries
 * (mbedTLS 2.28 does not look at those: tls_client.c does) — unless bridge_insecure, which keeps
 * the chain check and drops the name check. bridge_certfile + bridge_keyfile are our
 * certificate for a remote that requires one. With bridge_psk + bridge_identity: the PSK
 * suites only (a suite with a certificate the bridge would not verify is never offered).
 * bridge_alpn offers one protocol; bridge_tls_version accepts tlsv1.2 (mbedTLS 2.28's only).
 *
 * Errors are "FILE:LINE: reason" of the option at fault, found at start-up (server_validate) and
 * at a reload of a changed bridge block.
 *
 * Ownership: a context is a struct tls_ctx (tls.h's reference counting); a transport holds one
 * reference and owns its socket.
 */
#ifndef CAIRN_TLS_CLIENT_H
#define CAIRN_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct config_bridge;
struct tls_ctx;
struct transport;

/* Does bridge b speak TLS? */
bool tls_client_wanted(const struct config_bridge *b);

/*
 * The context of bridge b (a block of cfg, which names the file). 0 with *out NULL when b is
 * plain TCP; 0 with a new context (one reference, the caller's); or a negative code with
 * "FILE:LINE: reason" in err.
 */
int tls_client_ctx_new(const struct config *cfg, const struct config_bridge *b,
                       struct tls_ctx **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * A TLS client transport on fd, a connected non-blocking socket to host (the name or address
 * dialled: what the certificate must name). Takes ownership of fd and a reference to ctx. NULL
 * on ENOMEM (fd closed then). The handshake begins with the first handshake() call, which the
 * transport asks for with write interest.
 */
struct transport *tls_client_transport_new(struct tls_ctx *ctx, int fd, const char *host,
                                           bool insecure);

#endif
