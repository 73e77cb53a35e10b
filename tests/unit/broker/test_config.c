/*
 * test_config.c — the cairn.conf parser: every option, the defaults, listener blocks and
 * per-listener settings, durations, every error path and its "FILE:LINE: reason" text,
 * config_load on real files, and every allocation failure.
 *
 * Fault injection (SQLite's test_malloc.c idea): broker/ops/config.c, config_include.c and
 * config_mosquitto.c are compiled into this test with realloc and strdup (their allocators)
 * renamed to fault_* wrappers that fail the Nth call; the test loops N from 1 until a run needs
 * no failure, and ASan reports any leak on those error paths. Their objects from cairn_broker are
 * then not linked (every symbol they define is defined here). A
 * -Wl,--wrap=malloc on this executable would do the same without the #include, but
 * tests/unit/broker/CMakeLists.txt is not this file's owner's to change.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"

/* ---- the failing allocator ------------------------------------------------------------ */

static unsigned long fault_countdown; /* 0: never fail; N: the Nth call from now fails */
static bool fault_fired;

static bool fault_now(void)
{
    if (fault_countdown == 0 || --fault_countdown > 0)
        return false;
    fault_fired = true;
    return true;
}

static void fault_arm(unsigned long n)
{
    fault_countdown = n;
    fault_fired = false;
}

static void *fault_realloc(void *p, size_t n)
{
    return fault_now() ? NULL : realloc(p, n);
}

static char *fault_strdup(const char *s)
{
    return fault_now() ? NULL : strdup(s);
}

#undef strdup
#define realloc(p, n) fault_realloc(p, n)
#define strdup(s)     fault_strdup(s)
#include "../../../broker/ops/config.c"
#include "../../../broker/ops/config_include.c"
#include "../../../broker/ops/config_mosquitto.c"
#undef realloc
#undef strdup

static char err[512];

static void parse_ok(const char *text, struct config *c)
{
    err[0] = '\0';
    if (config_parse("t.conf", text, c, err, sizeof(err)) != 0)
        fail_msg("unexpected error: %s", err);
}

/* The parse fails, and the message is exactly want. */
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
    parse_ok("# only a comment\n\n   \n\t# indented comment\n", &c);
    assert_int_equal(c.n_listeners, 1);
    assert_int_equal(c.listeners[0].port, 1883);
    assert_string_equal(c.listeners[0].bind_address, "127.0.0.1");
    assert_int_equal(c.listeners[0].max_connections, -1);
    assert_true(c.allow_anonymous);
    assert_true(config_allow_anonymous(&c, 0));
    assert_int_equal(c.max_connections, -1);
    assert_int_equal(c.max_inflight_messages, 20);
    assert_int_equal(c.max_queued_messages, 1000);
    assert_int_equal(c.max_queued_bytes, 0);
    assert_false(c.queue_qos0_messages);
    assert_int_equal(c.message_size_limit, 0);
    assert_int_equal(c.max_keepalive, 65535);
    assert_int_equal(c.persistent_client_expiration, 0);
    assert_true(c.retain_available);
    assert_int_equal(c.sys_interval, 10);
    assert_true(c.connection_messages);
    assert_int_equal(c.connect_timeout, 10);
    assert_int_equal(c.connect_memory_limit, 32 * 1024 * 1024);
    assert_int_equal(c.max_subscriptions, 0);
    assert_int_equal(c.log_dest, CAIRN_LOG_DEST_STDERR);
    assert_int_equal(c.log_type, CAIRN_LOG_MASK_DEFAULT);
    assert_null(c.log_file);
    assert_null(c.pid_file);
    assert_true(c.persistence);
    assert_string_equal(c.persistence_location, "./cairn-data");
    assert_false(c.persistence_sync);
    assert_false(c.per_listener_settings);
    assert_false(c.allow_session_takeover_across_users);
    assert_null(c.sec.password_file);
    assert_null(c.path);
    config_cleanup(&c);
    config_cleanup(&c); /* twice is harmless */
}

static void test_every_global_option(void **state)
{
    struct config c;

    (void)state;
    parse_ok("max_connections 100\n"
             "allow_anonymous false\n"
             "max_inflight_messages 5\n"
             "max_queued_messages 0\n"
             "max_queued_bytes 1048576\n"
             "queue_qos0_messages true\n"
             "message_size_limit 268435455\n"
             "max_keepalive 120\n"
             "persistent_client_expiration 2d\n"
             "retain_available false\n"
             "sys_interval 0\n"
             "connection_messages false\n"
             "connect_timeout 2\n"
             "connect_memory_limit 0\n"
             "max_subscriptions 100000\n"
             "log_timestamp false\n"
             "pid_file /run/cairn.pid\n"
             "persistence false\n"
             "persistence_location /var/lib/cairn/\n"
             "persistence_sync true\n"
             "password_file /etc/cairn/passwd\n"
             "acl_file /etc/cairn/acl\n"
             "psk_file /etc/cairn/psk\n"
             "per_listener_settings false\n"
             "allow_session_takeover_across_users true\n"
             "autosave_interval 1800\n"
             "autosave_on_changes false\n"
             "persistence_file mosquitto.db\n"
             "set_tcp_nodelay true\n",
             &c);
    assert_int_equal(c.max_connections, 100);
    assert_false(c.allow_anonymous);
    assert_int_equal(c.max_inflight_messages, 5);
    assert_int_equal(c.max_queued_messages, 0);
    assert_int_equal(c.max_queued_bytes, 1048576);
    assert_true(c.queue_qos0_messages);
    assert_int_equal(c.message_size_limit, 268435455);
    assert_int_equal(c.max_keepalive, 120);
    assert_int_equal(c.persistent_client_expiration, 2 * 86400);
    assert_false(c.retain_available);
    assert_int_equal(c.sys_interval, 0);
    assert_false(c.connection_messages);
    assert_int_equal(c.connect_timeout, 2);
    assert_int_equal(c.connect_memory_limit, 0);
    assert_int_equal(c.max_subscriptions, 100000);
    assert_false(c.log_timestamp);
    assert_string_equal(c.pid_file, "/run/cairn.pid");
    assert_false(c.persistence);
    assert_string_equal(c.persistence_location, "/var/lib/cairn/");
    assert_true(c.persistence_sync);
    assert_string_equal(c.sec.password_file, "/etc/cairn/passwd");
    assert_string_equal(c.sec.acl_file, "/etc/cairn/acl");
    assert_string_equal(c.sec.psk_file, "/etc/cairn/psk");
    assert_true(c.allow_session_takeover_across_users);
    /* the default listener got copies of the global auth settings */
    assert_int_equal(c.n_listeners, 1);
    assert_string_equal(config_security_for(&c, 0)->password_file, "/etc/cairn/passwd");
    assert_string_equal(config_security_for(&c, 0)->acl_file, "/etc/cairn/acl");
    assert_int_equal(config_security_for(&c, 0)->allow_anonymous, 0);
    assert_false(config_allow_anonymous(&c, 0));
    config_cleanup(&c);
}

static void test_listeners_and_tls(void **state)
{
    struct config c;

    (void)state;
    parse_ok("listener 1883\n"
             "max_connections 10\n"
             "listener 8883 ::1\n"
             "cafile /ca.pem\n"
             "capath /certs\n"
             "certfile /cert.pem\n"
             "keyfile /key.pem\n"
             "crlfile /crl.pem\n"
             "tls_version tlsv1.2\n"
             "ciphers ECDHE-RSA-AES128-GCM-SHA256\n"
             "psk_hint hint here\n"
             "require_certificate true\n"
             "use_identity_as_username true\n"
             "use_subject_as_username false\n"
             "listener 0 localhost\n",
             &c);
    assert_int_equal(c.n_listeners, 3);
    assert_int_equal(c.listeners[0].port, 1883);
    assert_null(c.listeners[0].bind_address); /* every address */
    assert_int_equal(c.listeners[0].max_connections, 10);
    assert_int_equal(c.max_connections, -1);
    assert_int_equal(c.listeners[1].port, 8883);
    assert_string_equal(c.listeners[1].bind_address, "::1");
    assert_int_equal(c.listeners[1].max_connections, -1);
    assert_string_equal(c.listeners[1].sec.cafile, "/ca.pem");
    assert_string_equal(c.listeners[1].sec.capath, "/certs");
    assert_string_equal(c.listeners[1].sec.certfile, "/cert.pem");
    assert_string_equal(c.listeners[1].sec.keyfile, "/key.pem");
    assert_string_equal(c.listeners[1].sec.crlfile, "/crl.pem");
    assert_string_equal(c.listeners[1].sec.tls_version, "tlsv1.2");
    assert_string_equal(c.listeners[1].sec.ciphers, "ECDHE-RSA-AES128-GCM-SHA256");
    assert_string_equal(c.listeners[1].sec.psk_hint, "hint here"); /* strings keep spaces */
    assert_true(c.listeners[1].sec.require_certificate);
    assert_true(c.listeners[1].sec.use_identity_as_username);
    assert_false(c.listeners[1].sec.use_subject_as_username);
    assert_null(c.listeners[0].sec.cafile);
    assert_int_equal(c.listeners[2].port, 0);
    assert_string_equal(c.listeners[2].bind_address, "localhost");
    assert_null(c.listeners[2].sec.certfile);
    config_cleanup(&c);
}

/* protocol and http_dir belong to the listener they follow; websockets_* are global. */
static void test_protocols(void **state)
{
    struct config c;

    (void)state;
    parse_ok("websockets_headers_size 4096\n"
             "websockets_log_level 255\n"
             "listener 1883\n"
             "listener 8080\n"
             "protocol websockets\n"
             "http_dir /srv/www\n"
             "listener 8081\n"
             "protocol websockets\n"
             "certfile /cert.pem\n"
             "keyfile /key.pem\n"
             "listener 9234 127.0.0.1\n"
             "protocol http_metrics\n"
             "listener 1884\n"
             "protocol mqtt\n",
             &c);
    assert_int_equal(c.n_listeners, 5);
    assert_int_equal(c.websockets_headers_size, 4096);
    assert_int_equal(c.websockets_log_level, 255);
    assert_int_equal(c.listeners[0].protocol, CONFIG_PROTO_MQTT);
    assert_int_equal(c.listeners[1].protocol, CONFIG_PROTO_WEBSOCKETS);
    assert_string_equal(c.listeners[1].http_dir, "/srv/www");
    assert_int_equal(c.listeners[2].protocol, CONFIG_PROTO_WEBSOCKETS);
    assert_null(c.listeners[2].http_dir);
    assert_string_equal(c.listeners[2].sec.certfile, "/cert.pem");
    assert_int_equal(c.listeners[3].protocol, CONFIG_PROTO_HTTP_METRICS);
    assert_int_equal(c.listeners[4].protocol, CONFIG_PROTO_MQTT);
    config_cleanup(&c);
    parse_ok("protocol websockets\n", &c); /* outside a block: the default listener */
    assert_int_equal(c.n_listeners, 1);
    assert_null(c.listeners[0].bind_address);
    assert_int_equal(c.listeners[0].protocol, CONFIG_PROTO_WEBSOCKETS);
    config_cleanup(&c);
}

/*
 * allow_anonymous unset: true only on the loopback listener Cairn adds when the file names
 * none; once the file configures any listener (listener, port, bind_address, TLS options),
 * false unless written (Mosquitto 2.0), globally or with per_listener_settings per listener.
 */
static void test_anonymous_defaults(void **state)
{
    static const char *const listening[] = {
        "listener 0 127.0.0.1\n",   "listener 1883\n",   "port 1884\n",
        "bind_address 127.0.0.1\n", "certfile /c.pem\n",
    };
    struct config c;

    (void)state;
    config_defaults(&c); /* cairn without -c */
    assert_int_equal(config_add_default_listener(&c), 0);
    assert_true(config_allow_anonymous(&c, 0));
    config_cleanup(&c);
    parse_ok("max_inflight_messages 5\n", &c);
    assert_true(c.allow_anonymous);
    assert_true(config_allow_anonymous(&c, 0));
    config_cleanup(&c);
    parse_ok("allow_anonymous false\n", &c);
    assert_false(config_allow_anonymous(&c, 0));
    config_cleanup(&c);
    for (size_t i = 0; i < sizeof(listening) / sizeof(listening[0]); i++) {
        parse_ok(listening[i], &c);
        assert_false(c.allow_anonymous);
        for (size_t j = 0; j < c.n_listeners; j++)
            assert_false(config_allow_anonymous(&c, j));
        config_cleanup(&c);
    }
    parse_ok("listener 1883\nallow_anonymous true\nlistener 1884 ::1\n", &c);
    assert_true(config_allow_anonymous(&c, 0));
    assert_true(config_allow_anonymous(&c, 1));
    config_cleanup(&c);
    /* per listener: its own value, else the global one, else false */
    parse_ok("per_listener_settings true\nlistener 1883\nallow_anonymous true\nlistener 1884\n",
             &c);
    assert_true(config_allow_anonymous(&c, 0));
    assert_false(config_allow_anonymous(&c, 1));
    config_cleanup(&c);
    parse_ok("allow_anonymous true\nper_listener_settings true\nlistener 1883\n"
             "listener 1884\nallow_anonymous false\n",
             &c);
    assert_true(config_allow_anonymous(&c, 0));
    assert_false(config_allow_anonymous(&c, 1));
    config_cleanup(&c);
}

/* Old style: port and bind_address, and TLS options outside a block, configure one listener. */
static void test_old_style_default_listener(void **state)
{
    struct config c;

    (void)state;
    parse_ok("port 1884\ncertfile /c.pem\nbind_address 10.0.0.1\nlistener 9000\n", &c);
    assert_int_equal(c.n_listeners, 2);
    assert_int_equal(c.listeners[0].port, 1884);
    assert_string_equal(c.listeners[0].bind_address, "10.0.0.1");
    assert_string_equal(c.listeners[0].sec.certfile, "/c.pem");
    assert_int_equal(c.listeners[1].port, 9000);
    config_cleanup(&c);

    parse_ok("bind_address 0.0.0.0\n", &c);
    assert_int_equal(c.n_listeners, 1);
    assert_int_equal(c.listeners[0].port, 1883);
    assert_string_equal(c.listeners[0].bind_address, "0.0.0.0");
    config_cleanup(&c);
}

static void test_per_listener_settings(void **state)
{
    struct config c;

    (void)state;
    parse_ok("per_listener_settings true\n"
             "listener 1883\n"
             "allow_anonymous false\n"
             "password_file /p1\n"
             "listener 1884\n"
             "acl_file /a2\n",
             &c);
    assert_true(c.per_listener_settings);
    assert_false(config_allow_anonymous(&c, 0));
    assert_false(config_allow_anonymous(&c, 1)); /* unset: the global one, false with listeners */
    assert_string_equal(config_security_for(&c, 0)->password_file, "/p1");
    assert_null(config_security_for(&c, 0)->acl_file);
    assert_null(config_security_for(&c, 1)->password_file);
    assert_string_equal(config_security_for(&c, 1)->acl_file, "/a2");
    config_cleanup(&c);

    /* without per_listener_settings, auth options in a block are global (as Mosquitto) */
    parse_ok("listener 1883\npassword_file /p\nallow_anonymous false\nlistener 1884\n", &c);
    assert_string_equal(c.sec.password_file, "/p");
    assert_string_equal(config_security_for(&c, 0)->password_file, "/p");
    assert_string_equal(config_security_for(&c, 1)->password_file, "/p");
    assert_false(config_allow_anonymous(&c, 0));
    assert_false(config_allow_anonymous(&c, 1));
    config_cleanup(&c);
}

/* Each TLS and auth option keeps its line; listeners their "listener" line (tls.c, auth.c). */
static void test_option_lines(void **state)
{
    struct config c;

    (void)state;
    parse_ok("password_file /pw\n"        /* 1 */
             "certfile /outside.crt\n"    /* 2: makes the default listener */
             "listener 8883\n"            /* 3 */
             "\n"                         /* 4 */
             "certfile /s.crt\n"          /* 5 */
             "keyfile /s.key\n"           /* 6 */
             "# comment\n"                /* 7 */
             "require_certificate true\n" /* 8 */
             "ciphers A:B\n"              /* 9 */
             "allow_anonymous false\n"    /* 10 */
             "certfile /again.crt\n"      /* 11: the last one counts */
             "listener 1883\n"            /* 12 */
             "acl_file /acl\n",           /* 13 */
             &c);
    assert_int_equal(c.n_listeners, 3);
    assert_int_equal(c.listeners[0].line, 2);
    assert_int_equal(c.listeners[0].sec.line.certfile, 2);
    assert_int_equal(c.listeners[1].line, 3);
    assert_int_equal(c.listeners[1].sec.line.certfile, 11);
    assert_int_equal(c.listeners[1].sec.line.keyfile, 6);
    assert_int_equal(c.listeners[1].sec.line.require_certificate, 8);
    assert_int_equal(c.listeners[1].sec.line.ciphers, 9);
    assert_int_equal(c.listeners[1].sec.line.cafile, 0);
    assert_int_equal(c.listeners[2].line, 12);
    assert_int_equal(c.listeners[2].sec.line.certfile, 0);
    /* global auth options: every listener carries the global line */
    assert_int_equal(c.sec.line.password_file, 1);
    assert_int_equal(c.sec.line.acl_file, 13);
    assert_int_equal(c.sec.line.allow_anonymous, 10);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(c.listeners[i].sec.line.password_file, 1);
        assert_int_equal(c.listeners[i].sec.line.acl_file, 13);
        assert_int_equal(c.listeners[i].sec.line.allow_anonymous, 10);
    }
    config_cleanup(&c);

    /* per_listener_settings: a listener's own line, else the global one */
    parse_ok("per_listener_settings true\n" /* 1 */
             "password_file /g\n"           /* 2 */
             "listener 1\n"                 /* 3 */
             "password_file /own\n"         /* 4 */
             "allow_anonymous false\n"      /* 5 */
             "listener 2\n",                /* 6 */
             &c);
    assert_int_equal(c.listeners[0].sec.line.password_file, 4);
    assert_int_equal(c.listeners[0].sec.line.allow_anonymous, 5);
    assert_int_equal(c.listeners[1].sec.line.password_file, 2);
    assert_int_equal(c.listeners[1].sec.line.allow_anonymous, 0);
    config_cleanup(&c);

    /* no listener in the file: the default one has no line */
    parse_ok("max_keepalive 60\n", &c);
    assert_int_equal(c.listeners[0].line, 0);
    config_cleanup(&c);
}

static void test_log_options(void **state)
{
    struct config c;

    (void)state;
    parse_ok("log_dest stdout\nlog_dest file /tmp/x y.log\nlog_dest syslog\n"
             "log_type error\nlog_type debug\n",
             &c);
    assert_int_equal(c.log_dest,
                     CAIRN_LOG_DEST_STDOUT | CAIRN_LOG_DEST_FILE | CAIRN_LOG_DEST_SYSLOG);
    assert_string_equal(c.log_file, "/tmp/x y.log");
    assert_int_equal(c.log_type, CAIRN_LOG_MASK(CAIRN_LOG_ERR) | CAIRN_LOG_MASK(CAIRN_LOG_DEBUG));
    config_cleanup(&c);

    parse_ok("log_dest none\nlog_type all\n", &c);
    assert_int_equal(c.log_dest, 0);
    assert_int_equal(c.log_type, CAIRN_LOG_MASK_ALL);
    config_cleanup(&c);

    parse_ok("log_dest stderr\nlog_type none\nlog_type warning\nlog_type notice\n"
             "log_type information\nlog_type subscribe\nlog_type unsubscribe\n"
             "log_type websockets\nlog_dest topic\nlog_type internal\n",
             &c);
    assert_int_equal(c.log_dest, CAIRN_LOG_DEST_STDERR | CAIRN_LOG_DEST_TOPIC);
    assert_int_equal(c.log_type, CAIRN_LOG_MASK(CAIRN_LOG_WARNING) |
                                     CAIRN_LOG_MASK(CAIRN_LOG_NOTICE) |
                                     CAIRN_LOG_MASK(CAIRN_LOG_INFO));
    config_cleanup(&c);
}

static void test_durations(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {{"0", 0},       {"90", 90},      {"90s", 90},      {"1h", 3600},    {"2d", 172800},
              {"1w", 604800}, {"1m", 2592000}, {"1y", 31536000}, {"14d", 1209600}};
    static const char *const bad[] = {
        "", "h", "1x", "-1", "1.5h", "d1", "1hh", "99999999999999999999", "18446744073709551615y"};
    uint64_t v;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(config_parse_duration(ok[i].s, &v), 0);
        assert_int_equal(v, ok[i].v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(config_parse_duration(bad[i], &v), -EINVAL);
}

static void test_whitespace_and_crlf(void **state)
{
    struct config c;

    (void)state;
    parse_ok("  max_keepalive\t  60  \r\n\r\nsys_interval 5", &c);
    assert_int_equal(c.max_keepalive, 60);
    assert_int_equal(c.sys_interval, 5);
    config_cleanup(&c);
}

static void test_errors(void **state)
{
    (void)state;
    parse_err("max_keepalive 60\nbogus_option 1\n", "t.conf:2: unknown option 'bogus_option'");
    parse_err("\n\n\nlistener\n", "t.conf:4: option 'listener' needs a value");
    parse_err("listener 65536\n", "t.conf:1: listener: bad port '65536' (0-65535)");
    parse_err("listener abc\n", "t.conf:1: listener: bad port 'abc' (0-65535)");
    parse_err("listener 1883 ::1 extra\n",
              "t.conf:1: listener: expected 'listener PORT [ADDRESS]'");
    parse_err("port -1\n", "t.conf:1: port: bad port '-1' (0-65535)");
    parse_err("allow_anonymous yes\n",
              "t.conf:1: allow_anonymous: expected true or false, got 'yes'");
    parse_err("listener 1883\n\nallow_session_takeover_across_users 1\n",
              "t.conf:3: allow_session_takeover_across_users: expected true or false, got '1'");
    parse_err("persistence 1\n", "t.conf:1: persistence: expected true or false, got '1'");
    parse_err("max_inflight_messages 65536\n",
              "t.conf:1: max_inflight_messages: expected a number from 0 to 65535, got '65536'");
    parse_err("max_queued_messages -5\n", "t.conf:1: max_queued_messages: expected a number "
                                          "from 0 to 4294967295, got '-5'");
    parse_err("message_size_limit 268435456\n",
              "t.conf:1: message_size_limit: expected a number from 0 to 268435455, got "
              "'268435456'");
    parse_err("max_keepalive 10 20\n", "t.conf:1: max_keepalive: expected one value, got '10 20'");
    parse_err("sys_interval 1e3\n",
              "t.conf:1: sys_interval: expected a number from 0 to 4294967295, got '1e3'");
    parse_err("max_connections -2\n",
              "t.conf:1: max_connections: bad value '-2' (-1 or 0-2147483647)");
    parse_err("persistent_client_expiration 3x\n",
              "t.conf:1: persistent_client_expiration: expected a duration (seconds, or N "
              "followed by h, d, w, m or y), got '3x'");
    parse_err("log_dest file\n", "t.conf:1: log_dest file: needs a path");
    parse_err("log_dest printer\n", "t.conf:1: log_dest: unknown destination 'printer' "
                                    "(stdout, stderr, file PATH, syslog, topic, none)");
    parse_err("log_dest stdout now\n", "t.conf:1: log_dest stdout: unexpected 'now'");
    parse_err("log_type loud\n", "t.conf:1: log_type: unknown type 'loud' (error, warning, "
                                 "notice, information, debug, all, none)");
    parse_err("autosave_interval\n", "t.conf:1: option 'autosave_interval' needs a value");
    parse_err("pid_file\n", "t.conf:1: option 'pid_file' needs a value");
    parse_err("listener 1\nprotocol websocket\n", "t.conf:2: protocol: unknown protocol "
                                                  "'websocket' (mqtt, websockets, http_metrics)");
    parse_err("websockets_headers_size 65536\n", "t.conf:1: websockets_headers_size: expected a "
                                                 "number from 0 to 65535, got '65536'");
    parse_err("connect_timeout 86401\n",
              "t.conf:1: connect_timeout: expected a number from 0 to 86400, got '86401'");
}

/* A failed parse leaves *out untouched. */
static void test_error_leaves_output(void **state)
{
    struct config c;

    (void)state;
    memset(&c, 0x5a, sizeof(c));
    assert_int_equal(config_parse("t.conf", "pid_file /x\nnope 1\n", &c, err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(((unsigned char *)&c)[0], 0x5a);
}

/* The error text is cut to the buffer, never overflowing it. */
static void test_error_truncated(void **state)
{
    struct config c;
    char small[12];

    (void)state;
    memset(small, 'x', sizeof(small));
    assert_int_equal(
        config_parse("file-with-a-long-name.conf", "nope 1\n", &c, small, sizeof(small)), -EINVAL);
    assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void test_load_file(void **state)
{
    char path[] = "/tmp/cairn-test-config-XXXXXX";
    int fd = mkstemp(path);
    struct config c;
    FILE *f;

    (void)state;
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fprintf(f, "listener 0 127.0.0.1\nmax_queued_messages 7\n\nbad_one x\n");
    fclose(f);
    assert_int_equal(config_load(path, &c, err, sizeof(err)), -EINVAL);
    {
        char want[600];
        snprintf(want, sizeof(want), "%s:4: unknown option 'bad_one'", path);
        assert_string_equal(err, want);
    }
    f = fopen(path, "w");
    fprintf(f, "listener 0 127.0.0.1\nmax_queued_messages 7\n");
    fclose(f);
    assert_int_equal(config_load(path, &c, err, sizeof(err)), 0);
    assert_string_equal(c.path, path);
    assert_int_equal(c.max_queued_messages, 7);
    assert_int_equal(c.listeners[0].port, 0);
    config_cleanup(&c);
    unlink(path);

    assert_int_equal(config_load("/nonexistent/cairn.conf", &c, err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "/nonexistent/cairn.conf: No such file or directory");
}

static void test_add_default_listener(void **state)
{
    struct config c;

    (void)state;
    config_defaults(&c);
    assert_int_equal(c.n_listeners, 0);
    assert_int_equal(config_add_default_listener(&c), 0);
    assert_int_equal(c.n_listeners, 1);
    assert_int_equal(c.listeners[0].port, CAIRN_DEFAULT_PORT);
    assert_string_equal(c.listeners[0].bind_address, CAIRN_DEFAULT_BIND);
    assert_string_equal(c.persistence_location, "./cairn-data");
    assert_int_equal(config_add_default_listener(&c), 0); /* already there: no second one */
    assert_int_equal(c.n_listeners, 1);
    config_cleanup(&c);
}

/* Text that makes the parser allocate in every way it can: listeners, strings, lines. */
static const char fault_text[] = "pid_file /run/c.pid\n"
                                 "persistence_location /var/lib/cairn\n"
                                 "log_dest file /var/log/c.log\n"
                                 "password_file /pw\n"
                                 "acl_file /acl\n"
                                 "psk_file /psk\n"
                                 "certfile /outside.crt\n"
                                 "port 1884\n"
                                 "bind_address 10.0.0.1\n"
                                 "listener 8883 ::1\n"
                                 "certfile /s.crt\n"
                                 "keyfile /s.key\n"
                                 "ciphers A:B\n"
                                 "listener 1885\n"
                                 "per_listener_settings false\n";

/*
 * config_parse and config_load with the Nth allocation failing, for every N: each failure is
 * "out of memory" with nothing left allocated (ASan), and *out untouched.
 */
static void test_alloc_faults(void **state)
{
    char path[] = "/tmp/test_config_faults.XXXXXX";
    unsigned long n;
    bool fired = true;
    int fd;

    (void)state;
    log_open(0, NULL, 0);
    for (n = 1; fired; n++) {
        struct config c;
        int rc;

        memset(&c, 0x5a, sizeof(c));
        fault_arm(n);
        rc = config_parse("t.conf", fault_text, &c, err, sizeof(err));
        fired = fault_fired;
        fault_arm(0);
        if (fired) {
            assert_int_equal(rc, -EINVAL);
            assert_non_null(strstr(err, "out of memory"));
            assert_int_equal(c.n_listeners, (size_t)0x5a5a5a5a5a5a5a5a); /* untouched */
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(c.n_listeners, 3);
            config_cleanup(&c);
        }
    }
    assert_true(n > 20);

    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, fault_text, sizeof(fault_text) - 1),
                     (ssize_t)sizeof(fault_text) - 1);
    close(fd);
    for (n = 1, fired = true; fired; n++) {
        struct config c;
        int rc;

        fault_arm(n);
        rc = config_load(path, &c, err, sizeof(err));
        fired = fault_fired;
        fault_arm(0);
        if (fired) {
            assert_true(rc < 0);
            /* reading the file: strerror(ENOMEM) */
            assert_true(strstr(err, "out of memory") || strstr(err, "Cannot allocate memory"));
        } else {
            assert_int_equal(rc, 0);
            assert_string_equal(c.path, path);
            config_cleanup(&c);
        }
    }
    unlink(path);
    log_close();
}

/* The same with include_dir and the options of the second table (config_mosquitto.c). */
static void test_alloc_faults_include(void **state)
{
    char dir[] = "/tmp/test_config_faults_inc.XXXXXX", path[256], text[512];
    unsigned long n;
    bool fired = true;
    FILE *f;

    (void)state;
    log_open(0, NULL, 0);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/a.conf", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("listener 1\nmount_point m/\nbind_interface lo\ncertfile /c\nkeyfile /k\n"
          "dhparamfile /dh\n",
          f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/b.conf", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("user nobody\nclientid_prefixes p-\nauto_id_prefix x-\nlog_timestamp_format %F\n", f);
    fclose(f);
    snprintf(text, sizeof(text), "listener 2\ninclude_dir %s\nlistener 3\n", dir);
    for (n = 1; fired; n++) {
        struct config c;
        int rc;

        fault_arm(n);
        rc = config_parse("t.conf", text, &c, err, sizeof(err));
        fired = fault_fired;
        fault_arm(0);
        if (fired) {
            assert_int_equal(rc, -EINVAL);
            assert_non_null(strstr(err, "out of memory"));
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(c.n_listeners, 3);
            assert_string_equal(c.listeners[2].sec.auto_id_prefix, "x-");
            config_cleanup(&c);
        }
    }
    assert_true(n > 20);
    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    assert_int_equal(system(path), 0);
    log_close();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_global_option),
        cmocka_unit_test(test_listeners_and_tls),
        cmocka_unit_test(test_protocols),
        cmocka_unit_test(test_anonymous_defaults),
        cmocka_unit_test(test_old_style_default_listener),
        cmocka_unit_test(test_per_listener_settings),
        cmocka_unit_test(test_option_lines),
        cmocka_unit_test(test_log_options),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_whitespace_and_crlf),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_error_leaves_output),
        cmocka_unit_test(test_error_truncated),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_add_default_listener),
        cmocka_unit_test(test_alloc_faults),
        cmocka_unit_test(test_alloc_faults_include),
    };

    log_open(0, NULL, 0); /* the warnings about ignored options are not under test here */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
