/*
 * harness_tls.h — a TLS test environment for the integration tests: a temp dir holding the
 * certificates tests/tls/mkcerts.sh makes (the same script the unit test of broker/tls*.c runs;
 * the file list is at its top), a free port for the TLS listener, a broker started with a config
 * template naming both, and the mosquitto clients pointed at that listener.
 *
 * Templates: "@D" stands for the certificate dir, "@P" for the TLS port, e.g.
 *     "listener @P 127.0.0.1\ncertfile @D/server-ec.crt\nkeyfile @D/server-ec.key\n"
 *
 * Lifetime: a struct tls_env lives on the case's stack; tls_env_certs() (or tls_env_start())
 * fills it, tls_env_stop() frees what it holds, whatever was reached, including after a failed
 * or skipped start (a zeroed env is fine too). The dir is removed unless the case failed.
 */
#ifndef CAIRN_HARNESS_TLS_H
#define CAIRN_HARNESS_TLS_H

#include "harness.h"

struct tls_env {
    char *dir;        /* the certificate dir (owned) */
    int tls_port;     /* for "@P" */
    char port_s[16];  /* tls_port as text */
    char conf[2048];  /* the expanded config of the broker (both brokers) */
    char cairn[512];  /* the expanded Cairn-only config */
    struct broker *b; /* owned; NULL before a start */
};

/*
 * A template: a listener on @P with the EC server certificate that requires a client
 * certificate from ca.crt, checked against crl.pem.
 */
extern const char tls_env_cert_listener[];

/* Zero e, make the temp dir with the certificates and choose the TLS port. 0 or -1. */
int tls_env_certs(struct tls_env *e);
/* Write tmpl into out (cap bytes, always terminated) with "@D" and "@P" replaced. */
void tls_env_expand(char *out, size_t cap, const char *tmpl, const struct tls_env *e);
/*
 * Start a broker on the certificates of e whose extra config is tmpl (both brokers) and
 * cairn_only (Cairn only, may be NULL), both expanded, and check that the TLS port is really
 * TLS (tls_env_served). 0 or -1 (with a failure or a note recorded).
 */
int tls_env_launch(struct tls_env *e, const char *tmpl, const char *cairn_only);
/* tls_env_certs, then tls_env_launch. 0 or -1. */
int tls_env_start(struct tls_env *e, const char *tmpl, const char *cairn_only);
/* Free the broker (printing its log if the case failed) and the dir (kept if it failed). */
void tls_env_stop(struct tls_env *e);

/*
 * Is the TLS port really TLS? A plaintext CONNECT must not get a CONNACK there. 0 when it does
 * not, -1 (with a note saying so) when the port answers plaintext MQTT.
 */
int tls_env_served(const struct tls_env *e);
/* The broker still serves: a plain Paho client round-trips a message. 0 or -1. */
int tls_env_still_serving(const struct tls_env *e);

/*
 * argv for a mosquitto client over TLS to localhost:tls_port trusting ca.crt: tool (under
 * "stdbuf -oL" for mosquitto_sub), the TLS args, with cert ("client" for client.crt and
 * client.key, or NULL) the certificate args, then rest (NULL-terminated, borrowed). The array
 * and its strings are static: valid until the next call.
 */
char **tls_env_argv(const struct tls_env *e, const char *tool, const char *cert,
                    const char *const *rest);
/* mosquitto_pub over TLS, id "tls-pub": its exit code (-1 on timeout). */
int tls_env_pub(const struct tls_env *e, const char *cert, const char *topic, const char *msg,
                const char *qos);
/*
 * Start mosquitto_sub over TLS for one message ("-d -v -C 1 -W 20", then extra) in p and wait
 * until it is subscribed. 0 (the caller owns p: proc_cleanup), or -1 with p cleaned up.
 */
int tls_env_sub_start(struct proc *p, const struct tls_env *e, const char *cert,
                      const char *const *extra);

#endif
