/*
 * bench_tls — Cairn's TLS listener beside Mosquitto's, in one run, on this machine:
 *
 *   - TLS handshakes per second with an RSA 2048 and an ECDSA P-256 server key (full
 *     handshakes, no resumption; CLIENTS client threads), and the broker's CPU time per
 *     handshake (from /proc, so the figure does not depend on how fast the clients are);
 *   - QoS 0 and QoS 1 throughput over TLS: one publisher and one subscriber, both TLS, 64-byte
 *     payloads, the publisher pipelining (QoS 1 with a window of WINDOW unacknowledged);
 *   - resident memory per idle TLS connection (CONNECT done, then nothing), from VmRSS.
 *
 * Usage: bench_tls [CAIRN_BIN [MOSQUITTO_BIN]]   (defaults: ./broker/cairn, /usr/sbin/mosquitto)
 * Certificates are made with the openssl command line in a temp dir. The clients are mbedTLS,
 * for both brokers. Cairn runs with its defaults (persistence on, in the temp dir); Mosquitto
 * with its own (persistence off). Figures go in the issue note, never into a pass/fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#define CLIENTS    2
#define HS_SECONDS 3
#define MSGS       100000
#define PAYLOAD    64
#define WINDOW     100
#define IDLE_CONNS 500

static char dir[64];

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- brokers ---------------------------------------------------------------------------- */

struct brk {
    const char *name;
    pid_t pid;
    int port;
};

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static bool port_accepts(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Start bin with a TLS listener using server-KEY.{crt,key}. 0 or -1. */
static bool cairn_no_persistence;

static int brk_start(struct brk *b, const char *bin, bool mosquitto, const char *key, int n)
{
    char conf[256], log[256], data[256];
    FILE *f;
    uint64_t end;

    b->port = free_port();
    snprintf(conf, sizeof(conf), "%s/%s-%d.conf", dir, b->name, n);
    snprintf(log, sizeof(log), "%s/%s-%d.log", dir, b->name, n);
    snprintf(data, sizeof(data), "%s/data-%d", dir, n);
    f = fopen(conf, "w");
    if (!f)
        return -1;
    fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages %d\n", b->port,
            MSGS);
    fprintf(f, "certfile %s/server-%s.crt\nkeyfile %s/server-%s.key\n", dir, key, dir, key);
    /* both stay root when run by root: the temp dir is root's */
    if (mosquitto)
        fprintf(f, "user root\nmax_inflight_messages 20\nlog_dest stderr\n");
    else if (cairn_no_persistence)
        fprintf(f, "user root\npersistence false\n");
    else
        fprintf(f, "user root\npersistence_location %s\n", data);
    fclose(f);
    b->pid = fork();
    if (b->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        dup2(fd, 1);
        dup2(fd, 2);
        execl(bin, bin, "-c", conf, (char *)NULL);
        _exit(127);
    }
    end = now_us() + 10000000u;
    while (now_us() < end) {
        if (port_accepts(b->port))
            return 0;
        if (waitpid(b->pid, NULL, WNOHANG) == b->pid) {
            b->pid = 0;
            break;
        }
        usleep(10000);
    }
    fprintf(stderr, "%s did not start: see %s\n", b->name, log);
    return -1;
}

static void brk_stop(struct brk *b)
{
    if (b->pid <= 0)
        return;
    kill(b->pid, SIGTERM);
    waitpid(b->pid, NULL, 0);
    b->pid = 0;
}

/* utime + stime of pid in ms. */
static double brk_cpu_ms(const struct brk *b)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)b->pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    fclose(f);
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static long brk_rss_kb(const struct brk *b)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)b->pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* ---- an mbedTLS MQTT client ------------------------------------------------------------- */

static const mbedtls_ecp_group_id bench_curves[] = {MBEDTLS_ECP_DP_CURVE25519,
                                                    MBEDTLS_ECP_DP_SECP256R1,
                                                    MBEDTLS_ECP_DP_SECP384R1, MBEDTLS_ECP_DP_NONE};

struct tctx {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config conf;
};

static int tctx_init(struct tctx *t)
{
    mbedtls_entropy_init(&t->entropy);
    mbedtls_ctr_drbg_init(&t->drbg);
    mbedtls_ssl_config_init(&t->conf);
    if (mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy, NULL, 0) ||
        mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT))
        return -1;
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
    mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_NONE); /* measure the server */
    /* What OpenSSL clients (mosquitto_pub, Paho) offer first; mbedTLS's own default order
     * starts with secp521r1, which would make both brokers look slower than in the field. */
    mbedtls_ssl_conf_curves(&t->conf, bench_curves);
    return 0;
}

static void tctx_free(struct tctx *t)
{
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
}

struct bc {
    size_t raw; /* bytes read from the socket (handshake size) */
    mbedtls_net_context net;
    mbedtls_ssl_context ssl;
    uint8_t in[1 << 16];
    size_t inlen;
};

static int bc_recv(void *arg, unsigned char *buf, size_t len)
{
    struct bc *c = arg;
    int n = mbedtls_net_recv(&c->net, buf, len);

    if (n > 0)
        c->raw += (size_t)n;
    return n;
}

static int bc_send(void *arg, const unsigned char *buf, size_t len)
{
    return mbedtls_net_send(&((struct bc *)arg)->net, buf, len);
}

static int bc_open(struct bc *c, struct tctx *t, int port, const mbedtls_ssl_session *resume)
{
    char ps[16];
    int one = 1;

    mbedtls_net_init(&c->net);
    mbedtls_ssl_init(&c->ssl);
    c->inlen = 0;
    c->raw = 0;
    snprintf(ps, sizeof(ps), "%d", port);
    if (mbedtls_net_connect(&c->net, "127.0.0.1", ps, MBEDTLS_NET_PROTO_TCP) ||
        mbedtls_ssl_setup(&c->ssl, &t->conf))
        return -1;
    /* as the brokers do: no Nagle delay between the flights of the handshake */
    setsockopt(c->net.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (resume && mbedtls_ssl_set_session(&c->ssl, resume) != 0)
        return -1;
    mbedtls_ssl_set_bio(&c->ssl, c, bc_send, bc_recv, NULL);
    return mbedtls_ssl_handshake(&c->ssl) == 0 ? 0 : -1;
}

static void bc_close(struct bc *c)
{
    mbedtls_ssl_close_notify(&c->ssl);
    mbedtls_ssl_free(&c->ssl);
    mbedtls_net_free(&c->net);
}

static int bc_write(struct bc *c, const uint8_t *p, size_t len)
{
    while (len > 0) {
        int n = mbedtls_ssl_write(&c->ssl, p, len);

        if (n == MBEDTLS_ERR_SSL_WANT_WRITE || n == MBEDTLS_ERR_SSL_WANT_READ)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read more (waiting at most timeout_ms). >0 bytes, 0 timeout, -1 closed/error. */
static int bc_fill(struct bc *c, int timeout_ms)
{
    int n;

    if (mbedtls_ssl_get_bytes_avail(&c->ssl) == 0) {
        struct pollfd pfd = {.fd = c->net.fd, .events = POLLIN};

        if (poll(&pfd, 1, timeout_ms) <= 0)
            return 0;
    }
    if (c->inlen == sizeof(c->in))
        return -1;
    n = mbedtls_ssl_read(&c->ssl, c->in + c->inlen, sizeof(c->in) - c->inlen);
    if (n <= 0)
        return -1;
    c->inlen += (size_t)n;
    return n;
}

/* The next whole packet at the buffer head: its type and total length; 0 when incomplete. */
static size_t bc_peek(const struct bc *c, int *type, size_t *hdr)
{
    size_t rem = 0, i = 1;
    unsigned mult = 1;

    if (c->inlen < 2)
        return 0;
    do {
        if (i >= c->inlen || i > 4)
            return 0;
        rem += (c->in[i] & 127u) * mult;
        mult *= 128;
    } while (c->in[i++] & 128);
    if (c->inlen < i + rem)
        return 0;
    *type = c->in[0] >> 4;
    *hdr = i;
    return i + rem;
}

static void bc_consume(struct bc *c, size_t n)
{
    memmove(c->in, c->in + n, c->inlen - n);
    c->inlen -= n;
}

static size_t mqtt_rl(uint8_t *p, size_t rem)
{
    size_t n = 0;

    do {
        p[n] = (uint8_t)(rem % 128);
        rem /= 128;
        if (rem)
            p[n] |= 128;
        n++;
    } while (rem);
    return n;
}

/* TLS + CONNECT + CONNACK. 0 or -1. */
static int bc_mqtt_open(struct bc *c, struct tctx *t, int port, const char *id)
{
    uint8_t buf[128];
    size_t idl = strlen(id), n = 0, rem = 10 + 2 + idl;
    int type;
    size_t hdr, len;

    if (bc_open(c, t, port, NULL))
        return -1;
    buf[n++] = 0x10;
    n += mqtt_rl(buf + n, rem);
    memcpy(buf + n, "\x00\x04MQTT\x04\x02\x00\x3c", 10);
    n += 10;
    buf[n++] = (uint8_t)(idl >> 8);
    buf[n++] = (uint8_t)idl;
    memcpy(buf + n, id, idl);
    n += idl;
    if (bc_write(c, buf, n))
        return -1;
    while ((len = bc_peek(c, &type, &hdr)) == 0)
        if (bc_fill(c, 5000) <= 0)
            return -1;
    bc_consume(c, len);
    return type == 2 ? 0 : -1;
}

static int bc_subscribe(struct bc *c, const char *topic, int qos)
{
    uint8_t buf[128];
    size_t tl = strlen(topic), n = 0, len, hdr;
    int type;

    buf[n++] = 0x82;
    n += mqtt_rl(buf + n, 2 + 2 + tl + 1);
    buf[n++] = 0;
    buf[n++] = 1;
    buf[n++] = (uint8_t)(tl >> 8);
    buf[n++] = (uint8_t)tl;
    memcpy(buf + n, topic, tl);
    n += tl;
    buf[n++] = (uint8_t)qos;
    if (bc_write(c, buf, n))
        return -1;
    while ((len = bc_peek(c, &type, &hdr)) == 0)
        if (bc_fill(c, 5000) <= 0)
            return -1;
    bc_consume(c, len);
    return type == 9 ? 0 : -1;
}

/* ---- handshakes ------------------------------------------------------------------------- */

struct hs_arg {
    int port;
    uint64_t until;
    bool resume; /* keep the first session and resume it (session ticket) every time */
    long done, failed, resumed;
};

static void *hs_thread(void *p)
{
    struct hs_arg *a = p;
    struct tctx t;

    mbedtls_ssl_session sess;
    bool have = false;

    if (tctx_init(&t) != 0)
        return NULL;
    mbedtls_ssl_session_init(&sess);
    while (now_us() < a->until) {
        struct bc *c = malloc(sizeof(*c));

        if (c && bc_open(c, &t, a->port, have ? &sess : NULL) == 0) {
            a->done++;
            /* a resumed handshake leaves the certificate out: the ticket was accepted */
            if (have && c->raw < 400)
                a->resumed++;
            if (a->resume && !have)
                have = mbedtls_ssl_get_session(&c->ssl, &sess) == 0;
        } else {
            a->failed++;
        }
        if (c) {
            bc_close(c);
            free(c);
        }
    }
    mbedtls_ssl_session_free(&sess);
    tctx_free(&t);
    return NULL;
}

static void bench_handshakes(const struct brk *b, const char *key, bool resume)
{
    pthread_t th[CLIENTS];
    struct hs_arg a[CLIENTS];
    uint64_t t0 = now_us();
    double cpu0 = brk_cpu_ms(b), cpu;
    long done = 0, failed = 0, resumed = 0;
    char what[32];

    snprintf(what, sizeof(what), "%s%s", key, resume ? ", resumed" : "");
    for (int i = 0; i < CLIENTS; i++) {
        a[i] =
            (struct hs_arg){.port = b->port, .until = t0 + HS_SECONDS * 1000000u, .resume = resume};
        pthread_create(&th[i], NULL, hs_thread, &a[i]);
    }
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(th[i], NULL);
        done += a[i].done;
        failed += a[i].failed;
        resumed += a[i].resumed;
    }
    cpu = brk_cpu_ms(b) - cpu0;
    printf("| %-9s | handshakes/s, %-13s | %9.0f | broker CPU %.2f ms each%s", b->name, what,
           (double)done * 1e6 / (double)(now_us() - t0), done ? cpu / (double)done : 0.0,
           failed ? " (some failed)" : "");
    if (resume)
        printf(", %ld of %ld resumed", resumed, done);
    printf("\n");
}

/* ---- throughput ------------------------------------------------------------------------- */

struct tp_sub {
    struct bc *c;
    int qos;
    long got;
    uint64_t last_us;
};

static void *tp_sub_thread(void *p)
{
    struct tp_sub *s = p;
    uint8_t acks[4 * 256];

    while (s->got < MSGS) {
        size_t na = 0, len, hdr;
        int type;

        if (bc_fill(s->c, 3000) <= 0)
            break;
        while ((len = bc_peek(s->c, &type, &hdr)) != 0) {
            if (type == 3) {
                s->got++;
                if (s->qos == 1) {
                    const uint8_t *v = s->c->in + hdr;
                    size_t tl = (size_t)v[0] << 8 | v[1];

                    acks[na++] = 0x40;
                    acks[na++] = 2;
                    acks[na++] = v[2 + tl];
                    acks[na++] = v[3 + tl];
                    if (na == sizeof(acks)) {
                        bc_write(s->c, acks, na);
                        na = 0;
                    }
                }
            }
            bc_consume(s->c, len);
        }
        if (na)
            bc_write(s->c, acks, na);
        s->last_us = now_us();
    }
    return NULL;
}

static void bench_throughput(const struct brk *b, int qos)
{
    struct tctx ts, tp;
    struct bc *sub = malloc(sizeof(*sub)), *pub = malloc(sizeof(*pub));
    struct tp_sub s = {.c = sub, .qos = qos};
    pthread_t th;
    uint8_t msg[128];
    size_t n = 0, tl = 7, pidpos = 0;
    long sent = 0, acked = 0;
    uint64_t t0;
    double cpu0, cpu;

    if (!sub || !pub || tctx_init(&ts) || tctx_init(&tp) ||
        bc_mqtt_open(sub, &ts, b->port, "bench-sub") || bc_subscribe(sub, "bench/t", qos) ||
        bc_mqtt_open(pub, &tp, b->port, "bench-pub")) {
        printf("| %-9s | QoS %d: client set-up failed\n", b->name, qos);
        return;
    }
    msg[n++] = (uint8_t)(0x30 | qos << 1);
    n += mqtt_rl(msg + n, 2 + tl + (qos ? 2 : 0) + PAYLOAD);
    msg[n++] = 0;
    msg[n++] = (uint8_t)tl;
    memcpy(msg + n, "bench/t", tl);
    n += tl;
    if (qos) {
        pidpos = n;
        n += 2;
    }
    memset(msg + n, 'x', PAYLOAD);
    n += PAYLOAD;
    pthread_create(&th, NULL, tp_sub_thread, &s);
    t0 = now_us();
    cpu0 = brk_cpu_ms(b);
    while (sent < MSGS || (qos && acked < MSGS)) {
        size_t len, hdr;
        int type;

        if (sent < MSGS && (!qos || sent - acked < WINDOW)) {
            if (qos) {
                uint16_t pid = (uint16_t)(sent % 65535 + 1);

                msg[pidpos] = (uint8_t)(pid >> 8);
                msg[pidpos + 1] = (uint8_t)pid;
            }
            if (bc_write(pub, msg, n))
                break;
            sent++;
            if (!qos || sent - acked < WINDOW)
                continue;
        }
        if (bc_fill(pub, 3000) <= 0)
            break;
        while ((len = bc_peek(pub, &type, &hdr)) != 0) {
            if (type == 4)
                acked++;
            bc_consume(pub, len);
        }
    }
    pthread_join(th, NULL);
    cpu = brk_cpu_ms(b) - cpu0;
    printf("| %-9s | QoS %d msgs/s (64 B)        | %9.0f | broker CPU %.1f us/msg, %ld of %d "
           "received%s\n",
           b->name, qos, (double)s.got * 1e6 / (double)(s.last_us - t0),
           s.got ? cpu * 1000.0 / (double)s.got : 0.0, s.got, MSGS,
           qos && acked < MSGS ? ", publisher acks missing" : "");
    bc_close(sub);
    bc_close(pub);
    free(sub);
    free(pub);
    tctx_free(&ts);
    tctx_free(&tp);
}

/* ---- idle memory ------------------------------------------------------------------------ */

static void bench_idle(const struct brk *b)
{
    struct tctx t;
    struct bc **cs = calloc(IDLE_CONNS, sizeof(*cs));
    long before, after;
    int ok = 0;

    if (!cs || tctx_init(&t))
        return;
    usleep(200000);
    before = brk_rss_kb(b);
    for (int i = 0; i < IDLE_CONNS; i++) {
        char id[32];

        snprintf(id, sizeof(id), "idle-%d", i);
        cs[i] = malloc(sizeof(*cs[i]));
        if (cs[i] && bc_mqtt_open(cs[i], &t, b->port, id) == 0)
            ok++;
    }
    usleep(200000);
    after = brk_rss_kb(b);
    printf("| %-9s | RSS per idle TLS conn      | %7.1f kB | %d connections, RSS %ld -> %ld kB\n",
           b->name, (double)(after - before) / (ok ? ok : 1), ok, before, after);
    for (int i = 0; i < IDLE_CONNS; i++) {
        if (cs[i]) {
            bc_close(cs[i]);
            free(cs[i]);
        }
    }
    free(cs);
    tctx_free(&t);
}

/* ---- main ------------------------------------------------------------------------------- */

static int make_certs(void)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout ca.key -out ca.crt -days 30 -subj /CN=bench-ca 2>/dev/null && "
             "openssl genrsa -out server-rsa.key 2048 2>/dev/null && "
             "openssl ecparam -name prime256v1 -genkey -noout -out server-ec.key && "
             "for k in rsa ec; do openssl req -new -key server-$k.key -subj /CN=localhost "
             "-out $k.csr && openssl x509 -req -in $k.csr -CA ca.crt -CAkey ca.key "
             "-CAcreateserial -days 30 -out server-$k.crt 2>/dev/null || exit 1; done",
             dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void run_broker(const char *name, const char *bin, bool mosquitto)
{
    static const char *keys[] = {"rsa", "ec"};
    static int n;
    struct brk b = {.name = name};

    for (int k = 0; k < 2; k++) {
        if (brk_start(&b, bin, mosquitto, keys[k], n++) != 0)
            return;
        bench_handshakes(&b, keys[k], false);
        if (k == 1)
            bench_handshakes(&b, keys[k], true);
        if (k == 1) {
            bench_throughput(&b, 0);
            brk_stop(&b);
            if (brk_start(&b, bin, mosquitto, keys[k], n++) != 0)
                return;
            bench_throughput(&b, 1);
            brk_stop(&b);
            if (brk_start(&b, bin, mosquitto, keys[k], n++) != 0)
                return;
            bench_idle(&b);
        }
        brk_stop(&b);
    }
}

int main(int argc, char **argv)
{
    const char *cairn = argc > 1 ? argv[1] : "./broker/cairn";
    const char *mosq = argc > 2 ? argv[2] : "/usr/sbin/mosquitto";
    char cmd[128];

    signal(SIGPIPE, SIG_IGN);
    strcpy(dir, "/tmp/cairn-bench-tls-XXXXXX");
    if (!mkdtemp(dir) || make_certs() != 0) {
        fprintf(stderr, "cannot make certificates in %s\n", dir);
        return 1;
    }
    printf("| broker    | figure                      |     value | notes\n");
    printf("|-----------|-----------------------------|-----------|------\n");
    run_broker("cairn", cairn, false);
    {
        /* QoS 1 like for like: Mosquitto does not write each message before acknowledging */
        struct brk b = {.name = "cairn-mem"};

        cairn_no_persistence = true;
        if (brk_start(&b, cairn, false, "ec", 99) == 0) {
            bench_throughput(&b, 1);
            brk_stop(&b);
        }
        cairn_no_persistence = false;
    }
    if (access(mosq, X_OK) == 0)
        run_broker("mosquitto", mosq, true);
    else
        printf("| mosquitto | not installed (%s)\n", mosq);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
