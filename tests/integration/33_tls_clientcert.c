/*
 * 33_tls_clientcert — client authentication over TLS with the real broker and mosquitto
 * clients: require_certificate refuses no certificate, one from another CA, an expired one and
 * a revoked one (CRL), and accepts a valid one; use_identity_as_username makes the certificate's
 * CN the username the ACL sees, use_subject_as_username its subject; TLS-PSK with psk_file,
 * the identity as username, and a wrong key refused; a session resumed with a ticket and
 * client certificate, refused once a reloaded CRL lists the certificate.
 */
#include "harness_tls.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 5000

static void test_require_certificate(void)
{
    struct tls_env e;

    T_EQ(tls_env_start(&e, tls_env_cert_listener, NULL), 0);
    T_EQ(tls_env_pub(&e, "client", "cert/ok", "valid", "1"), 0);
    T_ASSERTF(tls_env_pub(&e, NULL, "cert/x", "none", "1") != 0, "accepted without a certificate");
    T_ASSERTF(tls_env_pub(&e, "other", "cert/x", "other", "1") != 0, "accepted another CA's");
    T_ASSERTF(tls_env_pub(&e, "expired", "cert/x", "expired", "1") != 0, "accepted an expired one");
    T_ASSERTF(tls_env_pub(&e, "revoked", "cert/x", "revoked", "1") != 0, "accepted a revoked one");
    T_EQ(tls_env_still_serving(&e), 0);
    T_EQ(tls_env_pub(&e, "client", "cert/ok", "still valid", "1"), 0);
out:
    tls_env_stop(&e);
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

    T_EQ(tls_env_certs(&e), 0);
    snprintf(acl, sizeof(acl), "%s/acl", e.dir);
    {
        char text[256];

        snprintf(text, sizeof(text), "user %s\ntopic readwrite dev/device-1/#\n", acl_user);
        T_EQ(write_file(acl, text), 0);
    }
    snprintf(tmpl, sizeof(tmpl), "acl_file @D/acl\n%s%s true\n", tls_env_cert_listener, option);
    T_EQ(tls_env_launch(&e, tmpl, NULL), 0); /* on the dir tls_env_certs made */
    T_EQ(tls_env_sub_start(&p, &e, "client", mine), 0);
    sp = true;
    T_EQ(granted(&p), 1);
    if (!harness_is_mosquitto()) {
        T_EQ(tls_env_sub_start(&q, &e, "client", other), 0);
        sq = true;
        T_EQ(granted(&q), 128);
    }
    /* writing outside its tree is dropped; inside arrives */
    T_EQ(tls_env_pub(&e, "client", "dev/device-2/x", "not mine", "1"), 0);
    T_EQ(tls_env_pub(&e, "client", "dev/device-1/x", "mine", "1"), 0);
    T_EQ(proc_wait(&p, WAIT_MS), 0);
    T_ASSERTF(strstr(p.out, "dev/device-1/x mine"), "subscriber output: %s", p.out);
out:
    if (sp)
        proc_cleanup(&p);
    if (sq)
        proc_cleanup(&q);
    tls_env_stop(&e);
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

    T_EQ(tls_env_certs(&e), 0); /* with @D/psk: sensor-9, key 00112233445566778899aabbccddeeff */
    snprintf(path, sizeof(path), "%s/acl", e.dir);
    T_EQ(write_file(path, "topic read psk/#\nuser sensor-9\ntopic write psk/sensor-9/#\n"), 0);
    T_EQ(tls_env_launch(&e,
                        "psk_file @D/psk\nacl_file @D/acl\nlistener @P 127.0.0.1\npsk_hint cairn\n"
                        "use_identity_as_username true\n",
                        NULL),
         0);
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
    tls_env_stop(&e);
}

/* openssl s_client with the client certificate, saving its session to (or offering it from)
 * DIR/sess.pem: its output (the caller frees), or NULL. */
static char *s_client(const struct tls_env *e, const char *sess_opt)
{
    char cmd[1024], *out = NULL;
    char *argv[] = {"sh", "-c", cmd, NULL};

    snprintf(cmd, sizeof(cmd),
             "openssl s_client -connect 127.0.0.1:%d -CAfile %s/ca.crt -cert %s/client.crt "
             "-key %s/client.key %s %s/sess.pem </dev/null 2>&1",
             e->tls_port, e->dir, e->dir, e->dir, sess_opt, e->dir);
    if (proc_run(argv, 15000, &out) < 0) {
        free(out);
        out = NULL;
    }
    return out;
}

/*
 * A device with a client certificate resumes its session with a ticket (no certificate work),
 * and a reload that brings a CRL listing its certificate ends that: the ticket is no longer
 * accepted, and the full handshake that follows refuses the certificate.
 */
static void test_tickets_and_crl_reload(void)
{
    struct tls_env e = {0};
    char cmd[1024], *out = NULL;
    char *argv[] = {"sh", "-c", cmd, NULL};

    if (harness_cairn_only("Mosquitto 2.0.11 does not reload its CRL on SIGHUP"))
        return;
    T_EQ(tls_env_start(&e, tls_env_cert_listener, NULL), 0);
    out = s_client(&e, "-sess_out");
    T_ASSERTF(out && strstr(out, "New, TLSv1.2"), "first handshake: %s", out ? out : "");
    free(out);
    out = s_client(&e, "-sess_in");
    T_ASSERTF(out && strstr(out, "Reused, TLSv1.2"), "not resumed: %s", out ? out : "");
    free(out);
    out = NULL;
    T_EQ(tls_env_pub(&e, "client", "cert/ok", "before", "1"), 0);
    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl ca -config ca.cnf -cert ca.crt -keyfile ca.key -revoke client.crt "
             "2>/dev/null && openssl ca -config ca.cnf -cert ca.crt -keyfile ca.key -gencrl "
             "-out crl.pem 2>/dev/null",
             e.dir);
    T_EQ(proc_run(argv, 15000, NULL), 0);
    T_EQ(broker_signal(e.b, SIGHUP), 0);
    T_EQ(broker_wait_log(e.b, "reloaded", WAIT_MS), 0);
    out = s_client(&e, "-sess_in");
    T_ASSERTF(out && !strstr(out, "Reused, TLSv1.2"), "resumed after the CRL reload: %s",
              out ? out : "");
    T_ASSERTF(tls_env_pub(&e, "client", "cert/x", "after", "1") != 0,
              "a revoked certificate accepted after the reload");
    T_EQ(tls_env_still_serving(&e), 0);
out:
    free(out);
    tls_env_stop(&e);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"require_certificate", test_require_certificate},
        {"identity_as_username", test_identity_as_username},
        {"subject_as_username", test_subject_as_username},
        {"psk", test_psk},
        {"tickets_and_crl_reload", test_tickets_and_crl_reload},
    };

    return T_MAIN(cases);
}
