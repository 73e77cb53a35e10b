/*
 * test_tls_client.c — a bridge's TLS contexts (broker/net/tls_client.c) from config blocks, on the
 * certificates tests/tls/mkcerts.sh makes: plain bridges get none, certificate and PSK bridges
 * get one, and every file or value that cannot work is an error naming the option's FILE:LINE.
 * (The handshakes themselves are 49_bridge's: against Mosquitto, by address and by name.)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "tls.h"
#include "tls_client.h"

static char dir[64];

/* tests/tls/mkcerts.sh, found from this file's path (as test_tls.c does). */
static int setup(void **state)
{
    const char *slash = strrchr(__FILE__, '/');
    char cmd[4096];

    (void)state;
    strcpy(dir, "/tmp/cairn-test-tlsc-XXXXXX");
    if (__FILE__[0] != '/' || !slash || !mkdtemp(dir))
        return -1;
    snprintf(cmd, sizeof(cmd), "sh '%.*s/../../tls/mkcerts.sh' '%s'", (int)(slash - __FILE__),
             __FILE__, dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/*
 * The context of the one bridge of "connection b\naddress h\ntopic x\n" + lines (@D: the
 * certificates): its return code, *ctx, and the error in err.
 */
static int ctx_for(const char *lines, struct tls_ctx **ctx, char *err, size_t errlen)
{
    char text[2048], exp[2048];
    struct config c;
    size_t n = 0;
    int rc;

    snprintf(text, sizeof(text), "connection b\naddress h\ntopic x\n%s", lines);
    for (const char *t = text; *t && n + 1 < sizeof(exp); t++) {
        if (t[0] == '@' && t[1] == 'D') {
            n += (size_t)snprintf(exp + n, sizeof(exp) - n, "%s", dir);
            t++;
            continue;
        }
        exp[n++] = *t;
    }
    exp[n] = '\0';
    if (config_parse("t.conf", exp, &c, err, errlen) != 0)
        fail_msg("config: %s", err);
    rc = tls_client_ctx_new(&c, &c.bridges[0], ctx, err, errlen);
    config_cleanup(&c);
    return rc;
}

static void expect_err(const char *lines, const char *want)
{
    struct tls_ctx *ctx = (struct tls_ctx *)1;
    char err[512] = "";

    assert_int_equal(ctx_for(lines, &ctx, err, sizeof(err)), -EINVAL);
    assert_null(ctx);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("got \"%s\", want \"%s...\"", err, want);
}

static void test_contexts(void **state)
{
    struct tls_ctx *ctx = (struct tls_ctx *)1;
    char err[512];

    (void)state;
    assert_int_equal(ctx_for("", &ctx, err, sizeof(err)), 0);
    assert_null(ctx); /* plain TCP */
    assert_int_equal(ctx_for("bridge_cafile @D/ca.crt\n", &ctx, err, sizeof(err)), 0);
    assert_non_null(ctx);
    tls_ctx_unref(ctx);
    assert_int_equal(ctx_for("bridge_cafile @D/ca.crt\nbridge_certfile @D/client.crt\n"
                             "bridge_keyfile @D/client.key\nbridge_alpn mqtt\n"
                             "bridge_tls_version tlsv1.2\n",
                             &ctx, err, sizeof(err)),
                     0);
    assert_non_null(ctx);
    tls_ctx_unref(ctx);
    assert_int_equal(ctx_for("bridge_capath @D\n", &ctx, err, sizeof(err)), 0);
    tls_ctx_unref(ctx);
    assert_int_equal(ctx_for("bridge_psk 00112233445566778899aabbccddeeff\nbridge_identity edge\n",
                             &ctx, err, sizeof(err)),
                     0);
    assert_non_null(ctx);
    tls_ctx_unref(ctx);
}

static void test_errors(void **state)
{
    (void)state;
    expect_err("bridge_cafile @D/missing.crt\n", "t.conf:4: bridge b: cannot load bridge_cafile");
    expect_err("bridge_capath /nonexistent/dir\n", "t.conf:4: bridge b: cannot load bridge_capath");
    expect_err("bridge_cafile @D/ca.crt\nbridge_certfile @D/missing.crt\n"
               "bridge_keyfile @D/client.key\n",
               "t.conf:5: bridge b: cannot load bridge_certfile");
    expect_err("bridge_cafile @D/ca.crt\nbridge_certfile @D/client.crt\n"
               "bridge_keyfile @D/missing.key\n",
               "t.conf:6: bridge b: cannot load bridge_keyfile");
    expect_err("bridge_cafile @D/ca.crt\nbridge_certfile @D/client.crt\n"
               "bridge_keyfile @D/revoked.key\n",
               "t.conf:6: bridge b: bridge_keyfile does not match the certificate");
    expect_err("bridge_psk xyz\nbridge_identity edge\n", "t.conf:4: bridge b: bridge_psk is not");
    expect_err("bridge_cafile @D/ca.crt\nbridge_tls_version tlsv1.3\n",
               "t.conf:5: bridge b: bridge_tls_version: tlsv1.2 is the one");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contexts),
        cmocka_unit_test(test_errors),
    };

    log_open(0, NULL, 0);
    return cmocka_run_group_tests(tests, setup, teardown);
}
