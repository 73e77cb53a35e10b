/*
 * test_config_mosquitto.c — the second option table (broker/ops/config_mosquitto.c): the options of
 * Mosquitto 2.0 that Cairn implements beyond its own table land where they should, with their
 * defaults and their errors; the ones it ignores are accepted; the ones of features it will not
 * have (plugins, OpenSSL engines) are refused with a sentence naming that feature, never
 * "unknown option"; bridge options outside a bridge block say where they belong.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"

static char err[512];

static void parse_ok(const char *text, struct config *c)
{
    err[0] = '\0';
    if (config_parse("t.conf", text, c, err, sizeof(err)) != 0)
        fail_msg("unexpected error: %s", err);
}

static void parse_err(const char *text, const char *want)
{
    struct config c;

    err[0] = '\0';
    assert_int_equal(config_parse("t.conf", text, &c, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, want);
}

static void test_defaults(void **state)
{
    struct config c;

    (void)state;
    parse_ok("listener 0\n", &c);
    assert_null(c.clientid_prefixes);
    assert_int_equal(c.max_inflight_bytes, 0);
    assert_int_equal(c.max_packet_size, 0);
    assert_int_equal(c.memory_limit, 0);
    assert_false(c.upgrade_outgoing_qos);
    assert_true(c.check_retain_source);
    assert_null(c.user);
    assert_int_equal(c.log_facility, LOG_DAEMON);
    assert_null(c.log_timestamp_format);
    assert_null(c.listeners[0].mount_point);
    assert_int_equal(c.listeners[0].max_qos, 2);
    assert_false(c.listeners[0].use_username_as_clientid);
    assert_int_equal(c.listeners[0].socket_domain, 0);
    assert_null(c.listeners[0].bind_interface);
    assert_int_equal(c.listeners[0].sec.allow_zero_length_clientid, 1);
    assert_null(c.listeners[0].sec.auto_id_prefix);
    assert_null(c.listeners[0].sec.dhparamfile);
    config_cleanup(&c);
}

static void test_global_options(void **state)
{
    struct config c;

    (void)state;
    parse_ok("clientid_prefixes secure-\n"
             "max_inflight_bytes 1000\n"
             "max_packet_size 20\n"
             "memory_limit 1048576\n"
             "upgrade_outgoing_qos true\n"
             "check_retain_source false\n"
             "user nobody\n"
             "log_facility 3\n"
             "log_timestamp_format %Y-%m-%dT%H:%M:%S\n"
             "retained_persistence false\n"
             "allow_zero_length_clientid false\n"
             "auto_id_prefix dev-\n",
             &c);
    assert_string_equal(c.clientid_prefixes, "secure-");
    assert_int_equal(c.max_inflight_bytes, 1000);
    assert_int_equal(c.max_packet_size, 20);
    assert_int_equal(c.memory_limit, 1048576);
    assert_true(c.upgrade_outgoing_qos);
    assert_false(c.check_retain_source);
    assert_string_equal(c.user, "nobody");
    assert_int_equal(c.user_line, 7);
    assert_int_equal(c.log_facility, LOG_LOCAL3);
    assert_string_equal(c.log_timestamp_format, "%Y-%m-%dT%H:%M:%S");
    assert_false(c.persistence);
    /* auth settings: global, copied to every listener */
    assert_int_equal(c.sec.allow_zero_length_clientid, 0);
    assert_int_equal(c.listeners[0].sec.allow_zero_length_clientid, 0);
    assert_string_equal(c.listeners[0].sec.auto_id_prefix, "dev-");
    config_cleanup(&c);

    parse_ok("max_packet_size 0\nmax_packet_size 268435460\n", &c);
    assert_int_equal(c.max_packet_size, 268435460);
    config_cleanup(&c);
}

static void test_listener_options(void **state)
{
    struct config c;

    (void)state;
    parse_ok("max_qos 1\n" /* before any listener: the default listener, as Mosquitto */
             "listener 1883 127.0.0.1\n"
             "mount_point tenant/a/\n"
             "maximum_qos 0\n"
             "use_username_as_clientid true\n"
             "socket_domain ipv4\n"
             "bind_interface lo\n"
             "listener 1884\n"
             "socket_domain ipv6\n"
             "certfile /c\n"
             "keyfile /k\n"
             "dhparamfile /dh.pem\n"
             "tls_keyform pem\n",
             &c);
    assert_int_equal(c.n_listeners, 3);
    assert_int_equal(c.listeners[0].port, 1883);
    assert_null(c.listeners[0].bind_address);
    assert_int_equal(c.listeners[0].max_qos, 1);
    assert_string_equal(c.listeners[1].mount_point, "tenant/a/");
    assert_int_equal(c.listeners[1].max_qos, 0);
    assert_true(c.listeners[1].use_username_as_clientid);
    assert_int_equal(c.listeners[1].socket_domain, AF_INET);
    assert_string_equal(c.listeners[1].bind_interface, "lo");
    assert_int_equal(c.listeners[2].socket_domain, AF_INET6);
    assert_int_equal(c.listeners[2].max_qos, 2);
    assert_string_equal(c.listeners[2].sec.dhparamfile, "/dh.pem");
    assert_int_equal(c.listeners[2].sec.line.dhparamfile, 12);
    assert_null(c.listeners[2].mount_point);
    config_cleanup(&c);
}

/* allow_zero_length_clientid and auto_id_prefix follow per_listener_settings, as Mosquitto. */
static void test_per_listener_auth(void **state)
{
    struct config c;

    (void)state;
    parse_ok("per_listener_settings true\n"
             "auto_id_prefix glob-\n"
             "listener 1883\n"
             "allow_zero_length_clientid false\n"
             "auto_id_prefix one-\n"
             "listener 1884\n",
             &c);
    assert_int_equal(c.listeners[0].sec.allow_zero_length_clientid, 0);
    assert_string_equal(c.listeners[0].sec.auto_id_prefix, "one-");
    assert_int_equal(c.listeners[1].sec.allow_zero_length_clientid, 1);
    assert_string_equal(c.listeners[1].sec.auto_id_prefix, "glob-");
    config_cleanup(&c);

    parse_ok("listener 1883\nauto_id_prefix x-\nallow_zero_length_clientid false\nlistener 1884\n",
             &c);
    assert_string_equal(c.listeners[1].sec.auto_id_prefix, "x-");
    assert_int_equal(c.listeners[1].sec.allow_zero_length_clientid, 0);
    config_cleanup(&c);
}

static void test_option_errors(void **state)
{
    (void)state;
    parse_err("max_packet_size 19\n", "t.conf:1: max_packet_size: expected 0 (no limit) or 20 to "
                                      "4294967295, got '19'");
    parse_err("max_qos 3\n", "t.conf:1: max_qos: expected a number from 0 to 2, got '3'");
    parse_err("mount_point a/\n", "t.conf:1: mount_point: give it after the listener line it is "
                                  "for");
    parse_err("listener 1\nmount_point a/#\n",
              "t.conf:2: mount_point: 'a/#' is not a valid topic (no '+' or '#')");
    parse_err("socket_domain ipx\n", "t.conf:1: socket_domain: expected ipv4 or ipv6, got 'ipx'");
    parse_err("log_facility 8\n",
              "t.conf:1: log_facility: expected 0 to 7 (syslog's local0 to local7), got '8'");
    parse_err("allow_zero_length_clientid maybe\n",
              "t.conf:1: allow_zero_length_clientid: expected true or false, got 'maybe'");
    parse_err("user\n", "t.conf:1: option 'user' needs a value");
    parse_err("tls_keyform der\n", "t.conf:1: tls_keyform: expected pem, got 'der'");
}

/* Options Cairn has no use for: accepted (a warning is logged). */
static void test_ignored(void **state)
{
    struct config c;

    (void)state;
    parse_ok("allow_duplicate_messages false\nretry_interval 20\nmax_topic_alias 10\n"
             "ciphers_tls1.3 TLS_AES_128_GCM_SHA256\nautosave_interval 1800\n",
             &c);
    config_cleanup(&c);
}

/* Every refusal names the feature; never "unknown option". */
static void test_refusals(void **state)
{
    static const struct {
        const char *line;
        const char *want;
    } cases[] = {
        /* bridge options outside a bridge block (test_config_bridge.c has the rest) */
        {"address 10.0.0.1:1883", "'address' is a bridge option: give it after a \"connection "
                                  "NAME\" line"},
        {"addresses a b", "'addresses' is a bridge option"},
        {"topic # both 2", "'topic' is a bridge option"},
        {"bridge_cafile /ca", "'bridge_cafile' is a bridge option"},
        {"remote_clientid x", "'remote_clientid' is a bridge option"},
        {"cleansession false", "'cleansession' is a bridge option"},
        {"bridge_require_ocsp true", "bridge_require_ocsp: OCSP is not in Cairn"},
        {"auth_plugin /usr/lib/auth.so", "'auth_plugin': Cairn loads no Mosquitto plugins; "
                                         "password_file and acl_file read Mosquitto's"},
        {"plugin /x.so", "'plugin': Cairn loads no Mosquitto plugins"},
        {"auth_opt_db_host localhost", "'auth_opt_db_host': Cairn loads no Mosquitto plugins"},
        {"plugin_opt_x 1", "'plugin_opt_x': Cairn loads no Mosquitto plugins"},
        {"tls_engine pkcs11", "'tls_engine': OpenSSL engines are not in Cairn"},
        {"tls_keyform engine", "tls_keyform engine: OpenSSL engines are not in Cairn"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256], want[300];
        struct config c;

        snprintf(text, sizeof(text), "listener 0\n%s\n", cases[i].line);
        snprintf(want, sizeof(want), "t.conf:2: %s", cases[i].want);
        err[0] = '\0';
        assert_int_equal(config_parse("t.conf", text, &c, err, sizeof(err)), -EINVAL);
        if (strncmp(err, want, strlen(want)) != 0)
            fail_msg("%s: got \"%s\", want \"%s...\"", cases[i].line, err, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),         cmocka_unit_test(test_global_options),
        cmocka_unit_test(test_listener_options), cmocka_unit_test(test_per_listener_auth),
        cmocka_unit_test(test_option_errors),    cmocka_unit_test(test_ignored),
        cmocka_unit_test(test_refusals),
    };

    log_open(0, NULL, 0); /* the warnings about ignored options are not under test here */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
