/*
 * tlsload.h — the TLS MQTT clients of bench_tls_load: every connection of a run on one epoll
 * thread, TLS by OpenSSL through memory BIOs so that the tool decides its syscalls (one recv per
 * readiness, one send per flush carrying every record written since), and just enough MQTT
 * (CONNECT, SUBSCRIBE, PUBLISH QoS 0/1, PUBACK) written by hand.
 *
 * Why OpenSSL for the clients: the broker under test is measured, not the tool. An mbedTLS
 * client spends about as much CPU on a handshake or a record as an mbedTLS server, so with
 * mbedTLS clients the tool would be the bottleneck of every row; OpenSSL's X25519 and AES-GCM
 * are an order of magnitude cheaper.
 *
 * Each record the tool writes is one SSL_write: a publisher's PUBLISH is one record of its own
 * (a device sending one message at a time), even when several records leave in one send().
 *
 * Ownership: a tl_engine owns its connections; tl_engine_free closes them all.
 */
#ifndef CAIRN_TLSLOAD_H
#define CAIRN_TLSLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tl_state { TL_CONNECTING, TL_HANDSHAKE, TL_WAIT_CONNACK, TL_WAIT_SUBACK, TL_READY, TL_DEAD };

struct tl_engine;
struct tl_conn;

/* What the scenario hears about a connection. */
struct tl_handlers {
    /* The connection reached TL_READY (CONNACK, and SUBACK when it subscribed). */
    void (*ready)(struct tl_conn *c);
    /* A PUBLISH arrived: payload (after topic and packet id), its QoS. The engine answers
     * QoS 1 with a PUBACK itself. */
    void (*publish)(struct tl_conn *c, const uint8_t *payload, size_t len, int qos);
    /* A PUBACK for one of this connection's QoS 1 PUBLISHes. */
    void (*puback)(struct tl_conn *c);
    /* The connection failed or was closed by the broker. */
    void (*dead)(struct tl_conn *c);
};

struct tl_conn {
    struct tl_engine *e;
    int fd;
    enum tl_state state;
    char id[32];     /* client id */
    bool ev_out;     /* EPOLLOUT in the interest set */
    int index;       /* the scenario's */
    void *arg;       /* the scenario's */
    const char *sub; /* subscribe to this filter after CONNACK, or NULL */
    int sub_qos;
    uint16_t next_pid;
    double t_start; /* connect() called */
    double t_ready; /* TL_READY reached */
    void *ssl;      /* SSL * */
    void *rb, *wb;  /* BIO *: ciphertext in, ciphertext out */
    uint8_t *in;    /* decrypted MQTT bytes of an incomplete packet */
    size_t in_len, in_cap;
    uint8_t *out; /* ciphertext not yet accepted by send() */
    size_t out_len, out_cap;
    uint8_t acks[1024]; /* PUBACKs owed, written as one record per read */
    size_t acks_len;
    bool dirty; /* records written since the last flush */
    struct tl_conn *dirty_next;
};

/* An engine whose clients offer TLS 1.2 only (what Cairn speaks; Mosquitto is held to it for
 * like-for-like), no session tickets, no certificate check. NULL on failure. */
struct tl_engine *tl_engine_new(int port, const struct tl_handlers *h);
void tl_engine_free(struct tl_engine *e);
/* Start a connection (non-blocking connect, then TLS, CONNECT with a clean session and this
 * client id, and SUBSCRIBE when sub is set). NULL when out of sockets. */
struct tl_conn *tl_connect(struct tl_engine *e, const char *client_id, const char *sub, int sub_qos,
                           int index, void *arg);
/* One PUBLISH as one record, sent at the next flush. 0, or -1 when the connection is dead. */
int tl_publish(struct tl_conn *c, const char *topic, int qos, const uint8_t *payload, size_t len);
/* Wait up to timeout_ms for events and handle them, then flush every connection written to. */
int tl_engine_run(struct tl_engine *e, int timeout_ms);
/* Flush now (what tl_publish wrote). */
void tl_engine_flush(struct tl_engine *e);
/* Connections in each state. */
size_t tl_engine_count(const struct tl_engine *e, enum tl_state s);

#endif
