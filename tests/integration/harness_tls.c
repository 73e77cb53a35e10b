/*
 * harness_tls.c — the TLS test environment (see harness_tls.h): certificates from
 * tests/tls/mkcerts.sh, a broker configured from a template, mosquitto clients over TLS.
 */
#include "harness_tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TLS_ENV_WAIT_MS 5000

const char tls_env_cert_listener[] = "listener @P 127.0.0.1\n"
                                     "certfile @D/server-ec.crt\n"
                                     "keyfile @D/server-ec.key\n"
                                     "cafile @D/ca.crt\n"
                                     "crlfile @D/crl.pem\n"
                                     "require_certificate true\n";

/*
 * tests/tls/mkcerts.sh, found from this file's own path: CMake compiles sources by their absolute
 * path, so __FILE__ is /…/tests/integration/harness_tls.c. 0, or -1 when it is not absolute.
 */
static int tls_env_script(char *out, size_t cap)
{
    const char *slash = strrchr(__FILE__, '/');
    int rc = -1;

    if (__FILE__[0] != '/' || !slash)
        goto out;
    snprintf(out, cap, "%.*s/../tls/mkcerts.sh", (int)(slash - __FILE__), __FILE__);
    rc = 0;
out:
    return rc;
}

int tls_env_certs(struct tls_env *e)
{
    char script[4096];
    int rc = -1;

    memset(e, 0, sizeof(*e));
    e->dir = strdup("/tmp/cairn-itest-tls-XXXXXX");
    if (!e->dir || !mkdtemp(e->dir) || tls_env_script(script, sizeof(script)) != 0)
        goto out;
    {
        char *argv[] = {"sh", script, e->dir, NULL};

        if (proc_run(argv, 30000, NULL) != 0) {
            t_note("%s %s failed", script, e->dir);
            goto out;
        }
    }
    e->tls_port = harness_free_port();
    snprintf(e->port_s, sizeof(e->port_s), "%d", e->tls_port);
    rc = e->tls_port > 0 ? 0 : -1;
out:
    return rc;
}

void tls_env_expand(char *out, size_t cap, const char *tmpl, const struct tls_env *e)
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
 * A broker that answers a plaintext CONNECT on the TLS port serves plaintext where TLS was asked
 * for: say so plainly rather than letting every TLS client fail with a handshake error.
 */
int tls_env_served(const struct tls_env *e)
{
    struct raw_conn_opts o = {.id = "tls-probe", .keepalive = 60};
    uint8_t buf[128];
    struct pollfd pfd;
    size_t n = raw_build_connect(buf, sizeof(buf), &o);
    int fd = raw_connect_addr("127.0.0.1", e->tls_port), rc = -1;

    if (fd < 0 || raw_send(fd, buf, n) != 0)
        goto out;
    pfd = (struct pollfd){.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, TLS_ENV_WAIT_MS) == 1 && read(fd, buf, 1) == 1 && buf[0] == 0x20) {
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

int tls_env_launch(struct tls_env *e, const char *tmpl, const char *cairn_only)
{
    struct broker_opts bo = {.config = e->conf};
    int rc = -1;

    tls_env_expand(e->conf, sizeof(e->conf), tmpl, e);
    if (cairn_only) {
        tls_env_expand(e->cairn, sizeof(e->cairn), cairn_only, e);
        bo.cairn_config = e->cairn;
    }
    e->b = broker_start(&bo);
    if (e->b && tls_env_served(e) == 0)
        rc = 0;
    return rc;
}

int tls_env_start(struct tls_env *e, const char *tmpl, const char *cairn_only)
{
    int rc = -1;

    if (tls_env_certs(e) == 0 && tls_env_launch(e, tmpl, cairn_only) == 0)
        rc = 0;
    return rc;
}

void tls_env_stop(struct tls_env *e)
{
    char *argv[] = {"rm", "-rf", e->dir, NULL};

    broker_free(e->b);
    e->b = NULL;
    if (e->dir && !t_case_failed())
        proc_run(argv, TLS_ENV_WAIT_MS, NULL);
    free(e->dir);
    e->dir = NULL;
}

int tls_env_still_serving(const struct tls_env *e)
{
    struct pc_opts o = {.id = "still-serving"};
    MQTTClient c = pc_connect(e->b, &o, NULL, NULL);
    struct pc_msg m = {0};
    int rc = -1;

    if (!c)
        goto out;
    if (pc_subscribe(c, "alive", 1) == 1 && pc_publish_str(c, "alive", "yes", 1, false) == 0 &&
        pc_recv(c, &m, TLS_ENV_WAIT_MS) == 1)
        rc = 0;
out:
    pc_msg_free(&m);
    pc_close(&c);
    return rc;
}

char **tls_env_argv(const struct tls_env *e, const char *tool, const char *cert,
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

int tls_env_pub(const struct tls_env *e, const char *cert, const char *topic, const char *msg,
                const char *qos)
{
    const char *rest[] = {"-t", topic, "-m", msg, "-q", qos, "-i", "tls-pub", NULL};

    return proc_run(tls_env_argv(e, "mosquitto_pub", cert, rest), 15000, NULL);
}

int tls_env_sub_start(struct proc *p, const struct tls_env *e, const char *cert,
                      const char *const *extra)
{
    const char *rest[24] = {"-d", "-v", "-C", "1", "-W", "20"};
    int n = 6, rc = -1;

    while (*extra && n < 23)
        rest[n++] = *extra++;
    rest[n] = NULL;
    if (proc_start(p, tls_env_argv(e, "mosquitto_sub", cert, rest)) == 0 &&
        proc_wait_output(p, "Subscribed (mid:", 15000) == 0)
        rc = 0;
    if (rc != 0)
        proc_cleanup(p);
    return rc;
}
