/*
 * 34_tls_paho — Paho C with its SSL options against the TLS listener: a subscriber and a
 * publisher over TLS at QoS 0, 1 and 2, and client certificates (keyStore / privateKey) on a
 * require_certificate listener, refused without one.
 *
 * The harness links Paho's TLS-capable libraries (paho-mqtt3cs, paho-mqtt3as), which speak
 * tcp:// and ssl:// alike, so these cases run in every build, the sanitizer one included.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 5000

/* A CA, another CA, RSA and EC server certificates for localhost and 127.0.0.1, client
 * certificates (valid, revoked, expired, from the other CA) and a CRL. */
static const char mkcerts[] =
    "set -e\n"
    "cd \"$1\"\n"
    "cat > ca.cnf <<'X'\n"
    "[ca]\n"
    "default_ca = myca\n"
    "[myca]\n"
    "dir = .\n"
    "database = index.txt\n"
    "new_certs_dir = .\n"
    "serial = serial\n"
    "crlnumber = crlnumber\n"
    "default_md = sha256\n"
    "policy = pol\n"
    "default_crl_days = 30\n"
    "unique_subject = no\n"
    "[pol]\n"
    "commonName = supplied\n"
    "organizationName = optional\n"
    "[srv]\n"
    "subjectAltName = DNS:localhost,IP:127.0.0.1\n"
    "X\n"
    ": > index.txt; echo 1000 > serial; echo 01 > crlnumber\n"
    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out "
    "ca.crt -days 30 -subj \"/CN=Cairn Test CA\" 2>/dev/null\n"
    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-ca.key "
    "-out other-ca.crt -days 30 -subj \"/CN=Other CA\" 2>/dev/null\n"
    "openssl genrsa -out server-rsa.key 2048 2>/dev/null\n"
    "openssl ecparam -name prime256v1 -genkey -noout -out server-ec.key\n"
    "for k in rsa ec; do\n"
    "  openssl req -new -key server-$k.key -out server-$k.csr -subj \"/CN=localhost\"\n"
    "  openssl ca -batch -notext -config ca.cnf -cert ca.crt -keyfile ca.key -in server-$k.csr "
    "-out server-$k.crt -days 30 -extensions srv 2>/dev/null\n"
    "done\n"
    "for c in client:\"/O=Example/CN=device-1\" revoked:\"/CN=revoked\" expired:\"/CN=expired\"; "
    "do\n"
    "  n=${c%%:*}; s=${c#*:}\n"
    "  openssl ecparam -name prime256v1 -genkey -noout -out $n.key\n"
    "  openssl req -new -key $n.key -out $n.csr -subj \"$s\"\n"
    "done\n"
    "openssl ca -batch -notext -config ca.cnf -cert ca.crt -keyfile ca.key -in client.csr -out "
    "client.crt -days 30 2>/dev/null\n"
    "openssl ca -batch -notext -config ca.cnf -cert ca.crt -keyfile ca.key -in revoked.csr -out "
    "revoked.crt -days 30 2>/dev/null\n"
    "openssl ca -batch -notext -config ca.cnf -cert ca.crt -keyfile ca.key -in expired.csr -out "
    "expired.crt -startdate 20200101000000Z -enddate 20200201000000Z 2>/dev/null\n"
    "openssl ecparam -name prime256v1 -genkey -noout -out other.key\n"
    "openssl req -new -key other.key -out other.csr -subj \"/CN=device-1\"\n"
    "openssl x509 -req -in other.csr -CA other-ca.crt -CAkey other-ca.key -CAcreateserial -out "
    "other.crt -days 30 2>/dev/null\n"
    "openssl ca -config ca.cnf -cert ca.crt -keyfile ca.key -revoke revoked.crt 2>/dev/null\n"
    "openssl ca -config ca.cnf -cert ca.crt -keyfile ca.key -gencrl -out crl.pem 2>/dev/null\n";

struct tls_env {
    char *dir;
    int tls_port;
    char port_s[16];
    char conf[2048];
    struct broker *b;
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

/* Temp dir with certificates; 0 or -1. */
static int env_certs(struct tls_env *e)
{
    char path[256];
    FILE *f;

    memset(e, 0, sizeof(*e));
    e->dir = strdup("/tmp/cairn-itest-tls-XXXXXX");
    if (!e->dir || !mkdtemp(e->dir))
        return -1;
    snprintf(path, sizeof(path), "%s/mkcerts.sh", e->dir);
    f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(mkcerts, f);
    fclose(f);
    {
        char *argv[] = {"sh", path, e->dir, NULL};

        if (proc_run(argv, 30000, NULL) != 0)
            return -1;
    }
    e->tls_port = free_port();
    snprintf(e->port_s, sizeof(e->port_s), "%d", e->tls_port);
    return e->tls_port > 0 ? 0 : -1;
}

/* tmpl with "@D" = cert dir and "@P" = TLS port. */
static void expand(char *out, size_t cap, const char *tmpl, const struct tls_env *e)
{
    size_t n = 0;

    for (const char *t = tmpl; *t && n + 1 < cap; t++) {
        if (t[0] == '@' && (t[1] == 'D' || t[1] == 'P')) {
            n += (size_t)snprintf(out + n, cap - n, "%s", t[1] == 'D' ? e->dir : e->port_s);
            t++;
            continue;
        }
        out[n++] = *t;
    }
    out[n < cap ? n : cap - 1] = '\0';
}

/*
 * Is the TLS port really TLS? A plaintext CONNECT must not get a CONNACK there. A broker that
 * answers it serves plaintext where TLS was asked for: say so plainly rather than letting every
 * TLS client fail with a handshake error.
 */
static int tls_served(const struct tls_env *e)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)e->tls_port)};
    struct raw_conn_opts o = {.id = "tls-probe", .keepalive = 60};
    uint8_t buf[128];
    struct pollfd pfd;
    size_t n = raw_build_connect(buf, sizeof(buf), &o);
    int fd = socket(AF_INET, SOCK_STREAM, 0), rc = -1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || raw_send(fd, buf, n) != 0)
        goto out;
    pfd = (struct pollfd){.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, WAIT_MS) == 1 && read(fd, buf, 1) == 1 && buf[0] == 0x20) {
        t_note("the TLS listener on port %d answers plaintext MQTT: listener.c does not create "
               "TLS transports (tls_transport_new) yet",
               e->tls_port);
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Certificates, then a broker whose extra config is tmpl (expanded). */
static int env_start(struct tls_env *e, const char *tmpl, const char *cairn_only)
{
    static char extra[512];
    struct broker_opts bo = {.config = e->conf};

    if (env_certs(e) != 0)
        return -1;
    expand(e->conf, sizeof(e->conf), tmpl, e);
    if (cairn_only) {
        expand(extra, sizeof(extra), cairn_only, e);
        bo.cairn_config = extra;
    }
    e->b = broker_start(&bo);
    return e->b && tls_served(e) == 0 ? 0 : -1;
}

static void env_stop(struct tls_env *e)
{
    char *argv[] = {"rm", "-rf", e->dir, NULL};

    broker_free(e->b);
    if (e->dir && !t_case_failed())
        proc_run(argv, WAIT_MS, NULL);
    free(e->dir);
}

/* The broker still serves: a plain Paho client round-trips a message. */
static int still_serving(const struct tls_env *e)
{
    struct pc_opts o = {.id = "still-serving"};
    MQTTClient c = pc_connect(e->b, &o, NULL, NULL);
    struct pc_msg m = {0};
    int rc = -1;

    if (!c)
        return -1;
    if (pc_subscribe(c, "alive", 1) == 1 && pc_publish_str(c, "alive", "yes", 1, false) == 0 &&
        pc_recv(c, &m, WAIT_MS) == 1)
        rc = 0;
    pc_msg_free(&m);
    pc_close(&c);
    return rc;
}

/* Connect over TLS (cert: client certificate name or NULL). The client, or NULL with *rc. */
static MQTTClient ssl_connect(const struct tls_env *e, const char *id, const char *cert, int *rc)
{
    MQTTClient c = NULL;
    MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
    MQTTClient_SSLOptions so = MQTTClient_SSLOptions_initializer;
    char uri[64], ca[256], crt[256], key[256];

    snprintf(uri, sizeof(uri), "ssl://localhost:%d", e->tls_port);
    snprintf(ca, sizeof(ca), "%s/ca.crt", e->dir);
    so.trustStore = ca;
    if (cert) {
        snprintf(crt, sizeof(crt), "%s/%s.crt", e->dir, cert);
        snprintf(key, sizeof(key), "%s/%s.key", e->dir, cert);
        so.keyStore = crt;
        so.privateKey = key;
    }
    co.ssl = &so;
    co.cleansession = 1;
    co.keepAliveInterval = 60;
    *rc = MQTTClient_create(&c, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL);
    if (*rc != MQTTCLIENT_SUCCESS)
        return NULL;
    *rc = MQTTClient_connect(c, &co);
    if (*rc != MQTTCLIENT_SUCCESS) {
        MQTTClient_destroy(&c);
        return NULL;
    }
    return c;
}

static void ssl_close(MQTTClient *c)
{
    if (!*c)
        return;
    MQTTClient_disconnect(*c, 1000);
    MQTTClient_destroy(c);
    *c = NULL;
}

static const char tls_listener[] = "listener @P 127.0.0.1\n"
                                   "certfile @D/server-rsa.crt\n"
                                   "keyfile @D/server-rsa.key\n";

static void test_qos_levels(void)
{
    struct tls_env e = {0};
    MQTTClient sub = NULL, pub = NULL;
    int rc = -1;

    T_EQ(env_start(&e, tls_listener, NULL), 0);
    sub = ssl_connect(&e, "paho-ssl-sub", NULL, &rc);
    T_ASSERTF(sub, "subscriber connect: %d", rc);
    pub = ssl_connect(&e, "paho-ssl-pub", NULL, &rc);
    T_ASSERTF(pub, "publisher connect: %d", rc);
    T_EQ(MQTTClient_subscribe(sub, "paho/tls/#", 2), MQTTCLIENT_SUCCESS);
    for (int qos = 0; qos <= 2; qos++) {
        char topic[32], payload[32], *got_topic = NULL;
        int tlen = 0;
        MQTTClient_deliveryToken tok = 0;
        MQTTClient_message *m = NULL;

        snprintf(topic, sizeof(topic), "paho/tls/q%d", qos);
        snprintf(payload, sizeof(payload), "over tls at qos %d", qos);
        T_EQ(MQTTClient_publish(pub, topic, (int)strlen(payload), payload, qos, 0, &tok),
             MQTTCLIENT_SUCCESS);
        if (qos)
            T_EQ(MQTTClient_waitForCompletion(pub, tok, WAIT_MS), MQTTCLIENT_SUCCESS);
        T_EQ(MQTTClient_receive(sub, &got_topic, &tlen, &m, WAIT_MS), MQTTCLIENT_SUCCESS);
        T_ASSERTF(m && got_topic, "no message at QoS %d", qos);
        T_ASSERT(strcmp(got_topic, topic) == 0);
        T_EQ(m->qos, qos);
        T_ASSERT(m->payloadlen == (int)strlen(payload) &&
                 memcmp(m->payload, payload, strlen(payload)) == 0);
        MQTTClient_freeMessage(&m);
        MQTTClient_free(got_topic);
    }
out:
    ssl_close(&sub);
    ssl_close(&pub);
    env_stop(&e);
}

static const char cert_listener[] = "listener @P 127.0.0.1\n"
                                    "certfile @D/server-ec.crt\n"
                                    "keyfile @D/server-ec.key\n"
                                    "cafile @D/ca.crt\n"
                                    "crlfile @D/crl.pem\n"
                                    "require_certificate true\n";

static void test_client_certificate(void)
{
    struct tls_env e = {0};
    MQTTClient c = NULL;
    int rc = -1;

    T_EQ(env_start(&e, cert_listener, NULL), 0);
    c = ssl_connect(&e, "paho-cert", "client", &rc);
    T_ASSERTF(c, "connect with a valid certificate: %d", rc);
    ssl_close(&c);
    c = ssl_connect(&e, "paho-nocert", NULL, &rc);
    T_ASSERTF(!c, "connected without a certificate");
    c = ssl_connect(&e, "paho-revoked", "revoked", &rc);
    T_ASSERTF(!c, "connected with a revoked certificate");
    T_EQ(still_serving(&e), 0);
out:
    ssl_close(&c);
    env_stop(&e);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"qos_levels", test_qos_levels},
        {"client_certificate", test_client_certificate},
    };

    return T_MAIN(cases);
}
