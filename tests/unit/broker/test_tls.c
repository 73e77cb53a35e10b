/*
 * test_tls.c — broker/tls*.c against an mbedTLS client in the same process, over a socketpair:
 * handshakes with RSA and ECDSA keys, client certificates (none, other CA, expired, revoked,
 * valid; CN and subject as identity), PSK, records packed from many iovecs, partial writes
 * resumed, decrypted bytes reported by pending(), plaintext refused, config errors with their
 * line, reload keeping old contexts alive. Certificates are made at test time in a temp dir by
 * tests/tls/mkcerts.sh, as for the TLS integration tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#include "config.h"
#include "log.h"
#include "tls.h"
#include "tls_internal.h" /* tls__psk_parse */
#include "transport.h"

static char dir[64];
static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;

/*
 * tests/tls/mkcerts.sh, the script the TLS integration tests run too (the files it makes are
 * listed at its top), found from this file's own path: CMake compiles sources by their absolute
 * path, so __FILE__ is /…/tests/unit/broker/test_tls.c.
 */
static int setup(void **state)
{
    const char *slash = strrchr(__FILE__, '/');
    char cmd[4096];

    strcpy(dir, "/tmp/cairn-test-tls-XXXXXX");
    if (__FILE__[0] != '/' || !slash || !mkdtemp(dir))
        return -1;
    snprintf(cmd, sizeof(cmd), "sh '%.*s/../../tls/mkcerts.sh' '%s'", (int)(slash - __FILE__),
             __FILE__, dir);
    if (system(cmd) != 0)
        return -1;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    return mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0);
}

static int teardown(void **state)
{
    char cmd[128];

    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* tmpl with every "@D" replaced by the temp dir and "@K" by kind (may be NULL). */
static void expand(char *out, size_t cap, const char *tmpl, const char *kind)
{
    size_t n = 0;

    for (const char *t = tmpl; *t && n + 1 < cap; t++) {
        const char *rep = NULL;

        if (t[0] == '@' && t[1] == 'D')
            rep = dir;
        else if (t[0] == '@' && t[1] == 'K')
            rep = kind;
        if (rep) {
            n += (size_t)snprintf(out + n, cap - n, "%s", rep);
            t++;
            continue;
        }
        out[n++] = *t;
    }
    out[n < cap ? n : cap - 1] = '\0';
}

/* Write cairn.conf (tmpl expanded) and load it. */
static int load_cfg(struct config *c, char *err, size_t errlen, const char *tmpl, const char *kind)
{
    char path[128], text[2048];
    FILE *f;

    expand(text, sizeof(text), tmpl, kind);
    snprintf(path, sizeof(path), "%s/cairn.conf", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return config_load(path, c, err, errlen);
}

/* A TLS set from a config text; fails the test when it does not build. */
static struct tls_set *set_from(struct config *c, const char *tmpl, const char *kind)
{
    char err[512] = "";
    struct tls_set *s;

    if (load_cfg(c, err, sizeof(err), tmpl, kind) != 0)
        fail_msg("config: %s", err);
    s = tls_set_new(c, err, sizeof(err));
    if (!s)
        fail_msg("tls_set_new: %s", err);
    return s;
}

/* ---- a client in the same process ------------------------------------------------------- */

struct client {
    const char *cert, *key; /* file names in dir, or NULL */
    const char *psk_id, *psk_hex;
    bool verify_server;
    const mbedtls_ecp_group_id *curves; /* offered for ECDHE, NULL: mbedTLS's list */
};

struct pair {
    int sfd, cfd;
    struct transport *srv;
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    mbedtls_x509_crt ca, cert;
    mbedtls_pk_context key;
    size_t raw_in; /* bytes the client read from its socket */
    bool sdone, cdone;
};

static int cli_send(void *arg, const unsigned char *buf, size_t len)
{
    struct pair *p = arg;
    ssize_t n = send(p->cfd, buf, len, MSG_NOSIGNAL);

    if (n >= 0)
        return (int)n;
    return errno == EAGAIN ? MBEDTLS_ERR_SSL_WANT_WRITE : MBEDTLS_ERR_NET_SEND_FAILED;
}

static int cli_recv(void *arg, unsigned char *buf, size_t len)
{
    struct pair *p = arg;
    ssize_t n = recv(p->cfd, buf, len, 0);

    if (n >= 0) {
        p->raw_in += (size_t)n;
        return (int)n;
    }
    return errno == EAGAIN ? MBEDTLS_ERR_SSL_WANT_READ : MBEDTLS_ERR_NET_RECV_FAILED;
}

static void file_in_dir(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static void pair_open(struct pair *p, struct tls_ctx *ctx, const struct client *cl)
{
    int sv[2];
    char path[128];

    memset(p, 0, sizeof(*p));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    p->sfd = sv[0];
    p->cfd = sv[1];
    p->srv = tls_transport_new(ctx, p->sfd);
    assert_non_null(p->srv);

    mbedtls_ssl_config_init(&p->conf);
    mbedtls_ssl_init(&p->ssl);
    mbedtls_x509_crt_init(&p->ca);
    mbedtls_x509_crt_init(&p->cert);
    mbedtls_pk_init(&p->key);
    assert_int_equal(mbedtls_ssl_config_defaults(&p->conf, MBEDTLS_SSL_IS_CLIENT,
                                                 MBEDTLS_SSL_TRANSPORT_STREAM,
                                                 MBEDTLS_SSL_PRESET_DEFAULT),
                     0);
    mbedtls_ssl_conf_rng(&p->conf, mbedtls_ctr_drbg_random, &drbg);
    file_in_dir(path, sizeof(path), "ca.crt");
    assert_int_equal(mbedtls_x509_crt_parse_file(&p->ca, path), 0);
    mbedtls_ssl_conf_ca_chain(&p->conf, &p->ca, NULL);
    mbedtls_ssl_conf_authmode(&p->conf, cl->verify_server ? MBEDTLS_SSL_VERIFY_REQUIRED
                                                          : MBEDTLS_SSL_VERIFY_NONE);
    if (cl->cert) {
        file_in_dir(path, sizeof(path), cl->cert);
        assert_int_equal(mbedtls_x509_crt_parse_file(&p->cert, path), 0);
        file_in_dir(path, sizeof(path), cl->key);
        assert_int_equal(mbedtls_pk_parse_keyfile(&p->key, path, NULL), 0);
        assert_int_equal(mbedtls_ssl_conf_own_cert(&p->conf, &p->cert, &p->key), 0);
    }
    if (cl->psk_id) {
        unsigned char key[64];
        size_t n = strlen(cl->psk_hex) / 2;

        for (size_t i = 0; i < n; i++)
            sscanf(cl->psk_hex + 2 * i, "%2hhx", &key[i]);
        assert_int_equal(mbedtls_ssl_conf_psk(&p->conf, key, n, (const unsigned char *)cl->psk_id,
                                              strlen(cl->psk_id)),
                         0);
    }
    if (cl->curves)
        mbedtls_ssl_conf_curves(&p->conf, cl->curves);
    assert_int_equal(mbedtls_ssl_setup(&p->ssl, &p->conf), 0);
    assert_int_equal(mbedtls_ssl_set_hostname(&p->ssl, "localhost"), 0);
    mbedtls_ssl_set_bio(&p->ssl, p, cli_send, cli_recv, NULL);
}

static void pair_close(struct pair *p)
{
    if (p->srv)
        p->srv->ops->close(p->srv);
    close(p->cfd);
    mbedtls_ssl_free(&p->ssl);
    mbedtls_ssl_config_free(&p->conf);
    mbedtls_x509_crt_free(&p->ca);
    mbedtls_x509_crt_free(&p->cert);
    mbedtls_pk_free(&p->key);
}

/* Wait (at most a second) for either socket to have something for its side to do. */
static int pair_wait(struct pair *p)
{
    struct pollfd fds[2] = {{.fd = p->sfd, .events = 0}, {.fd = p->cfd, .events = POLLIN}};
    int want = p->srv->ops->want_events(p->srv, CAIRN_EV_READ);

    fds[0].events =
        (short)(((want & CAIRN_EV_READ) ? POLLIN : 0) | ((want & CAIRN_EV_WRITE) ? POLLOUT : 0));
    return poll(fds, 2, 1000) > 0 ? 0 : -ETIMEDOUT;
}

/*
 * Drive both handshakes. The server's result: 0, its negative code, or -ETIMEDOUT when
 * nothing moves for a second.
 */
static int pair_handshake(struct pair *p)
{
    bool cfailed = false;

    for (int i = 0; i < 1000; i++) {
        int s = 0, c;

        if (!p->sdone) {
            s = p->srv->ops->handshake(p->srv);
            if (s == 0)
                p->sdone = true;
            else if (s != -EAGAIN)
                return s;
        }
        if (!p->cdone && !cfailed) {
            c = mbedtls_ssl_handshake(&p->ssl);
            if (c == 0)
                p->cdone = true;
            else if (c != MBEDTLS_ERR_SSL_WANT_READ && c != MBEDTLS_ERR_SSL_WANT_WRITE)
                cfailed = true;
        }
        if (p->sdone && p->cdone)
            return 0;
        if (p->sdone && cfailed)
            return -ECONNABORTED; /* the client refused us */
        if (pair_wait(p) != 0)
            return -ETIMEDOUT;
    }
    return -ETIMEDOUT;
}

/* Read exactly len bytes on the client, driving nothing else (the server has written). */
static void client_read_all(struct pair *p, unsigned char *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        int n = mbedtls_ssl_read(&p->ssl, buf + got, len - got);

        if (n == MBEDTLS_ERR_SSL_WANT_READ) {
            assert_int_equal(pair_wait(p), 0);
            continue;
        }
        assert_true(n > 0);
        got += (size_t)n;
    }
}

static void exchange(struct pair *p)
{
    const char msg[] = "\x30\x0b\x00\x03"
                       "a/b"
                       "payload";
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = sizeof(msg) - 1};
    unsigned char buf[64];
    ssize_t n;

    /* client -> server */
    assert_int_equal(mbedtls_ssl_write(&p->ssl, (const unsigned char *)msg, sizeof(msg) - 1),
                     (int)sizeof(msg) - 1);
    do {
        n = p->srv->ops->read(p->srv, buf, sizeof(buf));
    } while (n == -EAGAIN && pair_wait(p) == 0);
    assert_int_equal(n, sizeof(msg) - 1);
    assert_memory_equal(buf, msg, sizeof(msg) - 1);
    /* server -> client */
    assert_int_equal(p->srv->ops->writev(p->srv, &iov, 1), sizeof(msg) - 1);
    client_read_all(p, buf, sizeof(msg) - 1);
    assert_memory_equal(buf, msg, sizeof(msg) - 1);
}

static const char srv_conf[] = "listener 8883\n"
                               "certfile @D/server-@K.crt\n"
                               "keyfile @D/server-@K.key\n";

static void test_handshake_rsa_ec(void **state)
{
    const char *kinds[] = {"rsa", "ec"};

    for (int k = 0; k < 2; k++) {
        struct config c;
        struct tls_set *s;
        struct pair p;
        const struct client cl = {.verify_server = true};

        s = set_from(&c, srv_conf, kinds[k]);
        assert_non_null(tls_set_get(s, 0));
        pair_open(&p, tls_set_get(s, 0), &cl);
        assert_int_equal(pair_handshake(&p), 0);
        assert_null(p.srv->ops->identity(p.srv));
        exchange(&p);
        pair_close(&p);
        tls_set_free(s);
        config_cleanup(&c);
    }
}

/*
 * Every key exchange path: X25519 and P-256 by Nettle (tls_kex.c) with its P-256 signature or
 * mbedTLS's RSA one, and P-384 left to mbedTLS (RSA key: an ECDSA P-256 certificate needs
 * P-256 among the client's curves). The client verifies the server's signature.
 */
static void test_key_exchange_curves(void **state)
{
    static const mbedtls_ecp_group_id x25519[] = {MBEDTLS_ECP_DP_CURVE25519,
                                                  MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_NONE};
    static const mbedtls_ecp_group_id p256[] = {MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_NONE};
    static const mbedtls_ecp_group_id p384[] = {MBEDTLS_ECP_DP_SECP384R1, MBEDTLS_ECP_DP_NONE};
    static const struct {
        const char *kind;
        const mbedtls_ecp_group_id *curves;
    } cases[] = {{"ec", x25519}, {"ec", p256}, {"rsa", x25519}, {"rsa", p256}, {"rsa", p384}};

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct config c;
        struct tls_set *s = set_from(&c, srv_conf, cases[k].kind);
        struct client cl = {.verify_server = true, .curves = cases[k].curves};
        struct pair p;

        for (int i = 0; i < 3; i++) { /* fresh keys each time */
            pair_open(&p, tls_set_get(s, 0), &cl);
            assert_int_equal(pair_handshake(&p), 0);
            exchange(&p);
            pair_close(&p);
        }
        tls_set_free(s);
        config_cleanup(&c);
    }
}

/* Many small packets leave in one record, not one record each. */
static void test_records_packed(void **state)
{
    struct config c;
    struct tls_set *s;
    struct pair p;
    const struct client cl = {.verify_server = true};
    struct iovec iov[200];
    unsigned char data[200][20], got[4000];
    size_t before;

    s = set_from(&c, srv_conf, "ec");
    pair_open(&p, tls_set_get(s, 0), &cl);
    assert_int_equal(pair_handshake(&p), 0);
    for (int i = 0; i < 200; i++) {
        memset(data[i], i, sizeof(data[i]));
        iov[i].iov_base = data[i];
        iov[i].iov_len = sizeof(data[i]);
    }
    before = p.raw_in;
    assert_int_equal(p.srv->ops->writev(p.srv, iov, 200), 4000);
    client_read_all(&p, got, sizeof(got));
    for (int i = 0; i < 200; i++)
        assert_memory_equal(got + 20 * i, data[i], 20);
    /* One record: 5 bytes of header and at most ~64 of IV, MAC, padding. 200 would add 5800+. */
    assert_true(p.raw_in - before < 4000 + 100);
    pair_close(&p);
    tls_set_free(s);
    config_cleanup(&c);
}

/*
 * 1 MB through small socket buffers: writev accepts part, answers -EAGAIN mid-record, and the
 * caller re-offers from where it stopped; every byte arrives once, in order.
 */
static void test_partial_writes(void **state)
{
    struct config c;
    struct tls_set *s;
    struct pair p;
    const struct client cl = {.verify_server = true};
    const size_t total = 1u << 20;
    unsigned char *src = malloc(total), *dst = malloc(total);
    size_t sent = 0, recvd = 0, chunk = 1000;
    int small = 4096, eagain = 0;

    assert_non_null(src);
    assert_non_null(dst);
    for (size_t i = 0; i < total; i++)
        src[i] = (unsigned char)(i * 7 + i / 251);
    s = set_from(&c, srv_conf, "rsa");
    pair_open(&p, tls_set_get(s, 0), &cl);
    assert_int_equal(pair_handshake(&p), 0);
    setsockopt(p.sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(p.cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    while (recvd < total) {
        if (sent < total) {
            struct iovec iov[40];
            int cnt = 0;
            ssize_t n;

            /* iovecs of uneven sizes from the current position, as a queue would offer */
            for (size_t off = sent; off < total && cnt < 40; cnt++) {
                size_t len = chunk + (size_t)cnt * 37;

                if (len > total - off)
                    len = total - off;
                iov[cnt].iov_base = src + off;
                iov[cnt].iov_len = len;
                off += len;
            }
            n = p.srv->ops->writev(p.srv, iov, cnt);
            if (n == -EAGAIN)
                eagain++;
            else
                assert_true(n > 0);
            if (n > 0)
                sent += (size_t)n;
        }
        for (;;) {
            int n = mbedtls_ssl_read(&p.ssl, dst + recvd, total - recvd);

            if (n == MBEDTLS_ERR_SSL_WANT_READ)
                break;
            assert_true(n > 0);
            recvd += (size_t)n;
        }
        if (recvd < total && sent == total)
            assert_int_equal(pair_wait(&p), 0);
    }
    assert_true(eagain > 0);
    assert_memory_equal(src, dst, total);
    free(src);
    free(dst);
    pair_close(&p);
    tls_set_free(s);
    config_cleanup(&c);
}

/* Bytes decrypted inside mbedTLS are reported, and read without the socket being readable. */
static void test_pending(void **state)
{
    struct config c;
    struct tls_set *s;
    struct pair p;
    const struct client cl = {.verify_server = true};
    unsigned char buf[10];
    struct pollfd pfd;

    s = set_from(&c, srv_conf, "ec");
    pair_open(&p, tls_set_get(s, 0), &cl);
    assert_int_equal(pair_handshake(&p), 0);
    assert_int_equal(
        mbedtls_ssl_write(&p.ssl, (const unsigned char *)"0123456789abcdefghijKLMNO", 25), 25);
    assert_int_equal(pair_wait(&p), 0);
    assert_int_equal(p.srv->ops->read(p.srv, buf, sizeof(buf)), 10);
    assert_memory_equal(buf, "0123456789", 10);
    assert_int_equal(p.srv->ops->pending(p.srv), 15);
    pfd = (struct pollfd){.fd = p.sfd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 0); /* the socket has nothing more to say */
    assert_int_equal(p.srv->ops->read(p.srv, buf, sizeof(buf)), 10);
    assert_int_equal(p.srv->ops->read(p.srv, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "KLMNO", 5);
    assert_int_equal(p.srv->ops->pending(p.srv), 0);
    assert_int_equal(p.srv->ops->read(p.srv, buf, sizeof(buf)), -EAGAIN);
    /* close_notify from the client reads as end of stream */
    assert_int_equal(mbedtls_ssl_close_notify(&p.ssl), 0);
    assert_int_equal(pair_wait(&p), 0);
    assert_int_equal(p.srv->ops->read(p.srv, buf, sizeof(buf)), 0);
    pair_close(&p);
    tls_set_free(s);
    config_cleanup(&c);
}

static const char cert_conf[] = "listener 8883\n"
                                "certfile @D/server-ec.crt\n"
                                "keyfile @D/server-ec.key\n"
                                "cafile @D/ca.crt\n"
                                "crlfile @D/crl.pem\n"
                                "require_certificate true\n"
                                "@K\n";

/*
 * A client that kept its session resumes with a ticket: no certificate comes back, so the
 * handshake is a fraction of the bytes. issue and resume are the sets (listeners) that make the
 * session and that are offered it: the same one, or another one as after a reload. The
 * resumption's bytes read by the client (0 when the server refused), and the identity the
 * server saw.
 */
static size_t resumed_bytes(struct tls_set *issue, struct tls_set *resume, const char *cert,
                            char **identity)
{
    struct pair p;
    struct client cl = {.verify_server = true};
    mbedtls_ssl_session sess;
    size_t n = 0;

    if (cert) {
        cl.cert = "client.crt";
        cl.key = "client.key";
    }
    mbedtls_ssl_session_init(&sess);
    pair_open(&p, tls_set_get(issue, 0), &cl);
    assert_int_equal(pair_handshake(&p), 0);
    assert_int_equal(mbedtls_ssl_get_session(&p.ssl, &sess), 0);
    pair_close(&p);
    pair_open(&p, tls_set_get(resume, 0), &cl);
    assert_int_equal(mbedtls_ssl_set_session(&p.ssl, &sess), 0);
    if (pair_handshake(&p) == 0) {
        const char *id = p.srv->ops->identity(p.srv);

        exchange(&p);
        n = p.raw_in;
        if (identity)
            *identity = id ? strdup(id) : NULL;
    }
    pair_close(&p);
    mbedtls_ssl_session_free(&sess);
    return n;
}

static void test_session_tickets(void **state)
{
    struct config c;
    struct tls_set *s = set_from(&c,
                                 "listener 8883\ncertfile @D/server-rsa.crt\n"
                                 "keyfile @D/server-rsa.key\n@K",
                                 "");

    assert_true(resumed_bytes(s, s, NULL, NULL) < 400); /* a full one carries ~1 KB here */
    tls_set_free(s);
    config_cleanup(&c);
}

/*
 * With require_certificate too: the ticket carries the client certificate, so its identity
 * survives; a reload (a new set) invalidates the tickets, so the next handshake is a full one,
 * verified against the files as they are then: a CRL that now lists the certificate refuses it.
 */
static void test_session_tickets_client_cert(void **state)
{
    struct config c1, c2, c3;
    struct tls_set *a, *b, *revoked;
    char cmd[512], *id = NULL;

    a = set_from(&c1, cert_conf, "use_identity_as_username true");
    assert_true(resumed_bytes(a, a, "client", &id) < 400);
    assert_non_null(id);
    assert_string_equal(id, "device-1");
    free(id);
    id = NULL;
    b = set_from(&c2, cert_conf, "use_identity_as_username true");
    assert_true(resumed_bytes(a, b, "client", &id) > 600); /* full: the reload's keys */
    assert_string_equal(id, "device-1");
    free(id);
    /* crl-client.pem: ca.crt's CRL once client.crt is revoked too (index.txt left as it was) */
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && cp index.txt index.keep && openssl ca -config ca.cnf -cert ca.crt "
             "-keyfile ca.key -revoke client.crt 2>/dev/null && openssl ca -config ca.cnf -cert "
             "ca.crt -keyfile ca.key -gencrl -out crl-client.pem 2>/dev/null && mv index.keep "
             "index.txt",
             dir);
    assert_int_equal(system(cmd), 0);
    revoked = set_from(&c3,
                       "listener 8883\ncertfile @D/server-ec.crt\nkeyfile @D/server-ec.key\n"
                       "cafile @D/ca.crt\ncrlfile @D/crl-client.pem\nrequire_certificate true\n",
                       NULL);
    assert_int_equal(resumed_bytes(a, revoked, "client", NULL), 0);
    tls_set_free(a);
    tls_set_free(b);
    tls_set_free(revoked);
    config_cleanup(&c1);
    config_cleanup(&c2);
    config_cleanup(&c3);
}

static int try_client(const char *extra, const char *cert, const char **identity)
{
    struct config c;
    struct tls_set *s;
    struct pair p;
    char keyname[64];
    struct client cl = {.verify_server = true};
    int rc;

    if (cert) {
        snprintf(keyname, sizeof(keyname), "%.50s", cert);
        memcpy(strstr(keyname, ".crt"), ".key", 4);
        cl.cert = cert;
        cl.key = keyname;
    }
    s = set_from(&c, cert_conf, extra);
    pair_open(&p, tls_set_get(s, 0), &cl);
    rc = pair_handshake(&p);
    if (rc == 0 && identity) {
        const char *id = p.srv->ops->identity(p.srv);

        *identity = id ? strdup(id) : NULL;
    }
    pair_close(&p);
    tls_set_free(s);
    config_cleanup(&c);
    return rc;
}

static void test_client_certificates(void **state)
{
    const char *id = NULL;

    assert_int_equal(try_client("", "client.crt", &id), 0);
    assert_string_equal(id, "device-1");
    free((void *)id);
    assert_int_equal(try_client("use_subject_as_username true", "client.crt", &id), 0);
    assert_string_equal(id, "O=Example,CN=device-1"); /* as openssl -nameopt RFC2253 prints */
    free((void *)id);
    assert_int_equal(try_client("", NULL, NULL), -EACCES);
    assert_int_equal(try_client("", "other.crt", NULL), -EACCES);
    assert_int_equal(try_client("", "expired.crt", NULL), -EACCES);
    assert_int_equal(try_client("", "revoked.crt", NULL), -EACCES);
}

static void test_psk(void **state)
{
    struct config c;
    struct tls_set *s;
    struct pair p;
    struct client good = {.psk_id = "sensor-9", .psk_hex = "00112233445566778899aabbccddeeff"};
    struct client bad = good, unknown = good;

    /* @D/psk from mkcerts.sh: a comment, sensor-9 with this key in capitals, other:abcd */
    bad.psk_hex = "00112233445566778899aabbccddeefe";
    unknown.psk_id = "nobody";
    s = set_from(&c, "listener 8884\npsk_hint cairn\npsk_file @D/psk\n", NULL);

    pair_open(&p, tls_set_get(s, 0), &good);
    assert_int_equal(pair_handshake(&p), 0);
    assert_string_equal(p.srv->ops->identity(p.srv), "sensor-9");
    exchange(&p);
    pair_close(&p);

    pair_open(&p, tls_set_get(s, 0), &bad);
    assert_int_not_equal(pair_handshake(&p), 0);
    pair_close(&p);

    pair_open(&p, tls_set_get(s, 0), &unknown);
    assert_int_equal(pair_handshake(&p), -EACCES);
    pair_close(&p);
    tls_set_free(s);
    config_cleanup(&c);
}

/* An MQTT CONNECT sent in clear to a TLS listener ends the handshake with an error. */
static void test_plaintext_refused(void **state)
{
    struct config c;
    struct tls_set *s;
    struct pair p;
    const struct client cl = {0};
    static const unsigned char connect[] = {0x10, 0x10, 0x00, 0x04, 'M',  'Q', 'T', 'T', 0x04,
                                            0x02, 0x00, 0x3c, 0x00, 0x04, 'c', 'a', 'i', 'r'};
    int rc;

    s = set_from(&c, srv_conf, "ec");
    pair_open(&p, tls_set_get(s, 0), &cl);
    assert_int_equal(send(p.cfd, connect, sizeof(connect), 0), (ssize_t)sizeof(connect));
    do {
        rc = p.srv->ops->handshake(p.srv);
    } while (rc == -EAGAIN && pair_wait(&p) == 0);
    assert_true(rc < 0 && rc != -EAGAIN);
    pair_close(&p);
    tls_set_free(s);
    config_cleanup(&c);
}

/* Bytes that are not TLS records after the handshake: the read fails, the connection ends. */
static void test_garbage_after_handshake(void **state)
{
    static const char junk[] = "\x10garbage, not a record";
    struct config c;
    struct tls_set *s;
    struct pair p;
    const struct client cl = {.verify_server = true};
    unsigned char buf[64];
    ssize_t n;

    s = set_from(&c, srv_conf, "ec");
    pair_open(&p, tls_set_get(s, 0), &cl);
    assert_int_equal(pair_handshake(&p), 0);
    assert_int_equal(send(p.cfd, junk, sizeof(junk) - 1, 0), (ssize_t)sizeof(junk) - 1);
    do {
        n = p.srv->ops->read(p.srv, buf, sizeof(buf));
    } while (n == -EAGAIN && pair_wait(&p) == 0);
    assert_int_equal(n, -EPROTO);
    pair_close(&p);
    tls_set_free(s);
    config_cleanup(&c);
}

/* Each half-configured listener is refused, naming the file and the line at fault. */
static void test_config_errors(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"listener 1883\nlistener 8883\ncertfile @D/server-ec.crt\n",
         "cairn.conf:3: certfile without keyfile"},
        {"listener 8883\n\nkeyfile @D/server-ec.key\n", "cairn.conf:3: keyfile without certfile"},
        {"listener 8883\ncertfile @D/server-rsa.crt\nkeyfile @D/server-ec.key\n",
         "cairn.conf:3: keyfile does not match the certificate"},
        {"listener 8883\ncertfile @D/missing.crt\nkeyfile @D/server-ec.key\n",
         "cairn.conf:2: cannot load certfile"},
        {"listener 8883\ncertfile @D/server-ec.crt\nkeyfile @D/ca.crt\n",
         "cairn.conf:3: cannot load keyfile"},
        {"listener 8883\ncafile @D/ca.crt\n", "cairn.conf:2: TLS options without certfile"},
        {"listener 8883\ncertfile @D/server-ec.crt\nkeyfile @D/server-ec.key\n"
         "require_certificate true\n",
         "cairn.conf:4: require_certificate needs cafile"},
        {"listener 8883\ncertfile @D/server-ec.crt\nkeyfile @D/server-ec.key\n"
         "tls_version tlsv1.3\n",
         "cairn.conf:4: tlsv1.3 is not available"},
        {"listener 8883\ncertfile @D/server-ec.crt\nkeyfile @D/server-ec.key\n"
         "ciphers ECDHE-RSA-AES128-GCM-SHA256\n",
         "cairn.conf:4: unknown cipher suite"},
        {"listener 8883\npsk_hint hint\n", "cairn.conf:2: psk_hint without psk_file"},
        {"psk_file @D/missing.psk\nlistener 8883\npsk_hint hint\n", "cairn.conf:1: psk_file: "},
        {"listener 8883\ncertfile @D/server-ec.crt\nkeyfile @D/server-ec.key\n"
         "ciphers\tTLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256 :\n"
         "tls_version tlsv9\n",
         "cairn.conf:5: unknown tls_version"},
        {"listener 8883\ncertfile @D/server-ec.crt\nkeyfile @D/server-ec.key\n"
         "cafile @D/ca.crt\nuse_identity_as_username true\n",
         "cairn.conf:5: a certificate identity as username needs require_certificate"},
        {"listener 8883\ncertfile @D/server-ec.crt\nkeyfile @D/server-ec.key\n"
         "cafile @D/ca.crt\ncrlfile @D/crl.pem\n",
         "cairn.conf:5: crlfile needs require_certificate"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config c;
        char err[512] = "", *at;

        if (load_cfg(&c, err, sizeof(err), cases[i].text, NULL) != 0)
            fail_msg("case %zu: config: %s", i, err);
        assert_null(tls_set_new(&c, err, sizeof(err)));
        at = strstr(err, "cairn.conf:");
        if (!at || strncmp(at, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu: \"%s\", want \"%s\"", i, err, cases[i].want);
        config_cleanup(&c);
    }
}

/* The psk_file parser from text: lookups, and the lines it refuses (a NUL once overread). */
static void test_psk_parse(void **state)
{
    static const char good[] = "# c\r\nid1:0a0B\r\n\nid2:ff\n";
    static const char nul[] = "a\0b:00\n";
    struct tls_psk_table *t;
    const uint8_t *key;
    size_t keylen = 0;
    char err[256];

    (void)state;
    t = tls__psk_parse("p", good, sizeof(good) - 1, err, sizeof(err));
    assert_non_null(t);
    key = tls__psk_find(t, (const unsigned char *)"id1", 3, &keylen);
    assert_non_null(key);
    assert_int_equal(keylen, 2);
    assert_memory_equal(key, "\x0a\x0b", 2);
    assert_null(tls__psk_find(t, (const unsigned char *)"id", 2, &keylen));
    tls__psk_free(t);
    assert_null(tls__psk_parse("p", nul, sizeof(nul) - 1, err, sizeof(err)));
    assert_string_equal(err, "p:1: NUL byte in line");
    assert_null(tls__psk_parse("p", "x:00\ny:0\n", 10, err, sizeof(err)));
    assert_non_null(strstr(err, "p:2: key must be hex"));
    assert_null(tls__psk_parse("p", "x:00\nx:11\n", 10, err, sizeof(err)));
    assert_string_equal(err, "p:2: duplicate identity");
    assert_null(tls__psk_parse("p", "x:12g4\n", 7, err, sizeof(err)));
    assert_non_null(strstr(err, "p:1: key must be hex"));
}

/*
 * Keys as Mosquitto 2.0 reads them (mosquitto__hex2bin: a zero byte per leading "00" pair, then
 * the number in as few bytes as it takes): Debian's pskfile.example has "easy:12345".
 */
static void test_psk_mosquitto_keys(void **state)
{
    static const struct {
        const char *line;
        const char *key;
        size_t len;
    } cases[] = {
        {"easy:12345", "\x01\x23\x45", 3},
        {"k:0abc", "\x0a\xbc", 2},
        {"k:0ab", "\xab", 1},
        {"k:00123", "\x00\x01\x23", 3},
        {"k:0000", "\x00\x00", 2},
        {"k:000", "\x00", 1},
        {"k:00", "\x00", 1},
        {"k:deadbeef", "\xde\xad\xbe\xef", 4},
        {"k:f", "\x0f", 1},
    };
    char err[256], big[80];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tls_psk_table *t =
            tls__psk_parse("p", cases[i].line, strlen(cases[i].line), err, sizeof(err));
        const char *id = cases[i].line;
        size_t idlen = (size_t)(strchr(id, ':') - id), keylen = 0;
        const uint8_t *key;

        if (!t)
            fail_msg("%s: %s", cases[i].line, err);
        key = tls__psk_find(t, (const unsigned char *)id, idlen, &keylen);
        assert_non_null(key);
        assert_int_equal(keylen, cases[i].len);
        assert_memory_equal(key, cases[i].key, cases[i].len);
        tls__psk_free(t);
    }
    /* 32 bytes is the most; leading "00" pairs count, a lone leading 0 does not */
    snprintf(big, sizeof(big), "k:%064d", 1);
    assert_int_equal(strlen(big), 66);
    big[2] = '1';
    {
        struct tls_psk_table *t = tls__psk_parse("p", big, strlen(big), err, sizeof(err));
        assert_non_null(t);
        tls__psk_free(t);
    }
    snprintf(big, sizeof(big), "k:1%064d", 1);
    assert_null(tls__psk_parse("p", big, strlen(big), err, sizeof(err)));
    snprintf(big, sizeof(big), "k:0%064d", 1);
    big[3] = '1';
    {
        struct tls_psk_table *t = tls__psk_parse("p", big, strlen(big), err, sizeof(err));
        assert_non_null(t); /* 65 digits, the first a 0: 32 bytes */
        tls__psk_free(t);
    }
    assert_null(tls__psk_parse("p", "k:0", 3, err, sizeof(err)));
}

static void test_plain_and_good_listeners(void **state)
{
    struct config c;
    struct tls_set *s;

    s = set_from(&c,
                 "listener 1883\nlistener 8883\ncertfile @D/server-ec.crt\n"
                 "keyfile @D/server-ec.key\ntls_version tlsv1.2\n"
                 "ciphers TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256:"
                 "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384\n",
                 NULL);
    assert_null(tls_set_get(s, 0));
    assert_non_null(tls_set_get(s, 1));
    assert_null(tls_set_get(s, 2));
    tls_set_free(s);
    config_cleanup(&c);
}

/* A broken reload keeps the old contexts; a good one swaps; old connections keep theirs. */
static void test_reload(void **state)
{
    struct config c, c2, c3;
    char err[512];
    struct tls_set *s, *before;
    struct pair p;
    const struct client cl = {.verify_server = true};

    s = set_from(&c, srv_conf, "ec");
    before = s;
    pair_open(&p, tls_set_get(s, 0), &cl); /* a connection accepted before the reload */

    assert_int_equal(
        load_cfg(&c2, err, sizeof(err), "listener 8883\ncertfile @D/server-ec.crt\n", NULL), 0);
    assert_int_not_equal(tls_set_reload(&s, &c2), 0);
    assert_ptr_equal(s, before);

    assert_int_equal(load_cfg(&c3, err, sizeof(err), srv_conf, "rsa"), 0);
    assert_int_equal(tls_set_reload(&s, &c3), 0);
    assert_ptr_not_equal(tls_set_get(s, 0), NULL);

    /* the old connection still completes on the old (freed from the set) context */
    assert_int_equal(pair_handshake(&p), 0);
    exchange(&p);
    pair_close(&p);
    tls_set_free(s);
    config_cleanup(&c);
    config_cleanup(&c2);
    config_cleanup(&c3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_rsa_ec),
        cmocka_unit_test(test_key_exchange_curves),
        cmocka_unit_test(test_session_tickets),
        cmocka_unit_test(test_session_tickets_client_cert),
        cmocka_unit_test(test_records_packed),
        cmocka_unit_test(test_partial_writes),
        cmocka_unit_test(test_pending),
        cmocka_unit_test(test_client_certificates),
        cmocka_unit_test(test_psk),
        cmocka_unit_test(test_plaintext_refused),
        cmocka_unit_test(test_garbage_after_handshake),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_psk_parse),
        cmocka_unit_test(test_psk_mosquitto_keys),
        cmocka_unit_test(test_plain_and_good_listeners),
        cmocka_unit_test(test_reload),
    };

    log_open(0, NULL, 0); /* the errors tested here would only clutter the output */
    return cmocka_run_group_tests(tests, setup, teardown);
}
