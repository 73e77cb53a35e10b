/*
 * 33_tls_clientcert — client authentication over TLS with the real broker and mosquitto
 * clients: require_certificate refuses no certificate, one from another CA, an expired one and
 * a revoked one (CRL), and accepts a valid one; use_identity_as_username makes the certificate's
 * CN the username the ACL sees, use_subject_as_username its subject; TLS-PSK with psk_file,
 * the identity as username, and a wrong key refused.
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

/* argv for a mosquitto client over TLS: tool, TLS args, then the rest (NULL-terminated). */
static char **tls_argv(const struct tls_env *e, const char *tool, const char *cert,
                       const char *const *rest)
{
    static char *argv[48];
    static char cafile[256], certfile[256], keyfile[256];
    int n = 0;

    snprintf(cafile, sizeof(cafile), "%s/ca.crt", e->dir);
    if (strcmp(tool, "mosquitto_sub") == 0) {
        argv[n++] = "stdbuf"; /* line-buffered: "Subscribed" must arrive before the exit */
        argv[n++] = "-oL";
    }
    argv[n++] = (char *)tool;
    argv[n++] = "-h";
    argv[n++] = "localhost";
    argv[n++] = "-p";
    argv[n++] = (char *)e->port_s;
    argv[n++] = "--cafile";
    argv[n++] = cafile;
    if (cert) {
        snprintf(certfile, sizeof(certfile), "%s/%s.crt", e->dir, cert);
        snprintf(keyfile, sizeof(keyfile), "%s/%s.key", e->dir, cert);
        argv[n++] = "--cert";
        argv[n++] = certfile;
        argv[n++] = "--key";
        argv[n++] = keyfile;
    }
    while (*rest && n < 47)
        argv[n++] = (char *)*rest++;
    argv[n] = NULL;
    return argv;
}

/* mosquitto_pub over TLS: its exit code. */
static int tls_pub(const struct tls_env *e, const char *cert, const char *topic, const char *msg,
                   const char *qos)
{
    const char *rest[] = {"-t", topic, "-m", msg, "-q", qos, "-i", "tls-pub", NULL};

    return proc_run(tls_argv(e, "mosquitto_pub", cert, rest), 15000, NULL);
}

/* mosquitto_sub over TLS for one message; waits until it is subscribed. 0 or -1. */
static int tls_sub_start(struct proc *p, const struct tls_env *e, const char *cert,
                         const char *const *extra)
{
    const char *rest[24] = {"-d", "-v", "-C", "1", "-W", "20"};
    int n = 6;

    while (*extra && n < 23)
        rest[n++] = *extra++;
    rest[n] = NULL;
    if (proc_start(p, tls_argv(e, "mosquitto_sub", cert, rest)) != 0)
        return -1;
    return proc_wait_output(p, "Subscribed (mid:", 15000);
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

static const char cert_listener[] = "listener @P 127.0.0.1\n"
                                    "certfile @D/server-ec.crt\n"
                                    "keyfile @D/server-ec.key\n"
                                    "cafile @D/ca.crt\n"
                                    "crlfile @D/crl.pem\n"
                                    "require_certificate true\n";

static void test_require_certificate(void)
{
    struct tls_env e;

    T_EQ(env_start(&e, cert_listener, NULL), 0);
    T_EQ(tls_pub(&e, "client", "cert/ok", "valid", "1"), 0);
    T_ASSERTF(tls_pub(&e, NULL, "cert/x", "none", "1") != 0, "accepted without a certificate");
    T_ASSERTF(tls_pub(&e, "other", "cert/x", "other", "1") != 0, "accepted another CA's");
    T_ASSERTF(tls_pub(&e, "expired", "cert/x", "expired", "1") != 0, "accepted an expired one");
    T_ASSERTF(tls_pub(&e, "revoked", "cert/x", "revoked", "1") != 0, "accepted a revoked one");
    T_EQ(still_serving(&e), 0);
    T_EQ(tls_pub(&e, "client", "cert/ok", "still valid", "1"), 0);
out:
    env_stop(&e);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

/* "Subscribed (mid: 1): N" of a finished or running subscriber: N, or -1. */
static int granted(const struct proc *p)
{
    const char *s = strstr(p->out, "Subscribed (mid: 1): ");

    return s ? atoi(s + strlen("Subscribed (mid: 1): ")) : -1;
}

/* The certificate's CN (or subject) is the username the ACL applies to. */
static void identity_case(const char *option, const char *acl_user)
{
    struct tls_env e = {0};
    struct proc p = {0}, q = {0};
    bool sp = false, sq = false;
    char acl[2048], tmpl[1024];
    const char *mine[] = {"-t", "dev/device-1/#", "-q", "1", NULL};
    const char *other[] = {"-t", "dev/device-2/#", "-q", "1", NULL};

    T_EQ(env_certs(&e), 0);
    snprintf(acl, sizeof(acl), "%s/acl", e.dir);
    {
        char text[256];

        snprintf(text, sizeof(text), "user %s\ntopic readwrite dev/device-1/#\n", acl_user);
        T_EQ(write_file(acl, text), 0);
    }
    snprintf(tmpl, sizeof(tmpl), "acl_file @D/acl\n%s%s true\n", cert_listener, option);
    {
        /* env_certs made the dir; start the broker on it */
        struct broker_opts bo = {.config = e.conf};

        expand(e.conf, sizeof(e.conf), tmpl, &e);
        e.b = broker_start(&bo);
        T_ASSERT(e.b);
        T_EQ(tls_served(&e), 0);
    }
    T_EQ(tls_sub_start(&p, &e, "client", mine), 0);
    sp = true;
    T_EQ(granted(&p), 1);
    if (!harness_is_mosquitto()) {
        T_EQ(tls_sub_start(&q, &e, "client", other), 0);
        sq = true;
        T_EQ(granted(&q), 128);
    }
    /* writing outside its tree is dropped; inside arrives */
    T_EQ(tls_pub(&e, "client", "dev/device-2/x", "not mine", "1"), 0);
    T_EQ(tls_pub(&e, "client", "dev/device-1/x", "mine", "1"), 0);
    T_EQ(proc_wait(&p, WAIT_MS), 0);
    T_ASSERTF(strstr(p.out, "dev/device-1/x mine"), "subscriber output: %s", p.out);
out:
    if (sp)
        proc_cleanup(&p);
    if (sq)
        proc_cleanup(&q);
    env_stop(&e);
}

static void test_identity_as_username(void)
{
    identity_case("use_identity_as_username", "device-1");
}

static void test_subject_as_username(void)
{
    identity_case("use_subject_as_username", "O=Example,CN=device-1");
}

/* mosquitto_pub with --psk: its exit code. */
static int psk_pub(const struct tls_env *e, const char *id, const char *key, const char *topic)
{
    char *argv[] = {"mosquitto_pub",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    (char *)e->port_s,
                    "--psk",
                    (char *)key,
                    "--psk-identity",
                    (char *)id,
                    "-t",
                    (char *)topic,
                    "-m",
                    "psk",
                    "-q",
                    "1",
                    NULL};

    return proc_run(argv, 15000, NULL);
}

static void test_psk(void)
{
    struct tls_env e = {0};
    struct pc_opts po = {.id = "psk-watch"};
    MQTTClient c = NULL;
    struct pc_msg m = {0};
    char path[256];

    T_EQ(env_certs(&e), 0);
    snprintf(path, sizeof(path), "%s/psk", e.dir);
    T_EQ(write_file(path, "# identity:key\nsensor-9:00112233445566778899aabbccddeeff\n"), 0);
    snprintf(path, sizeof(path), "%s/acl", e.dir);
    T_EQ(write_file(path, "topic read psk/#\nuser sensor-9\ntopic write psk/sensor-9/#\n"), 0);
    {
        struct broker_opts bo = {.config = e.conf};

        expand(e.conf, sizeof(e.conf),
               "psk_file @D/psk\nacl_file @D/acl\nlistener @P 127.0.0.1\npsk_hint cairn\n"
               "use_identity_as_username true\n",
               &e);
        e.b = broker_start(&bo);
        T_ASSERT(e.b);
    }
    c = pc_connect(e.b, &po, NULL, NULL); /* anonymous, plain: may read psk/# */
    T_ASSERT(c);
    T_EQ(pc_subscribe(c, "psk/#", 1), 1);
    T_EQ(psk_pub(&e, "sensor-9", "00112233445566778899aabbccddeeff", "psk/other/x"), 0);
    T_EQ(psk_pub(&e, "sensor-9", "00112233445566778899aabbccddeeff", "psk/sensor-9/t"), 0);
    T_EQ(pc_recv(c, &m, WAIT_MS), 1);
    T_ASSERTF(strcmp(m.topic, "psk/sensor-9/t") == 0, "got %s", m.topic);
    T_ASSERT(psk_pub(&e, "sensor-9", "00112233445566778899aabbccddeefe", "psk/sensor-9/t") != 0);
    T_ASSERT(psk_pub(&e, "nobody", "00112233445566778899aabbccddeeff", "psk/sensor-9/t") != 0);
    T_EQ(pc_expect_none(c, 200), 0);
out:
    pc_msg_free(&m);
    pc_close(&c);
    env_stop(&e);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"require_certificate", test_require_certificate},
        {"identity_as_username", test_identity_as_username},
        {"subject_as_username", test_subject_as_username},
        {"psk", test_psk},
    };

    return T_MAIN(cases);
}
