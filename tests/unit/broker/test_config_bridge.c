/*
 * test_config_bridge.c — bridge blocks (broker/ops/config_bridge.c): Mosquitto 2.0's defaults, the
 * topic line with its prefixes mapped as its bridge_topic.c maps them, addresses, the options
 * of each kind, and the errors, each naming FILE:LINE — also those found after the last line
 * (no address, no topic, a duplicate local client id).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("got \"%s\", want \"%s...\"", err, want);
}

static void test_defaults(void **state)
{
    struct config c;
    const struct config_bridge *b;
    char host[256] = "", want[300], buf[300];

    (void)state;
    parse_ok("connection edge\naddress 10.0.0.1\ntopic sensors/#\n", &c);
    assert_int_equal(c.n_bridges, 1);
    b = &c.bridges[0];
    assert_string_equal(b->name, "edge");
    assert_int_equal(b->line, 1);
    assert_int_equal(b->n_addresses, 1);
    assert_string_equal(b->addresses[0].host, "10.0.0.1");
    assert_int_equal(b->addresses[0].port, 1883);
    assert_false(b->round_robin);
    assert_int_equal(b->n_topics, 1);
    assert_string_equal(b->topics[0].pattern, "sensors/#");
    assert_int_equal(b->topics[0].dir, CONFIG_BRIDGE_OUT);
    assert_int_equal(b->topics[0].qos, 0);
    assert_string_equal(b->topics[0].local, "sensors/#");
    assert_string_equal(b->topics[0].remote, "sensors/#");
    gethostname(host, sizeof(host) - 1);
    snprintf(want, sizeof(want), "%s.edge", host);
    assert_string_equal(b->remote_clientid, want);
    assert_string_equal(b->local_clientid, "$bridge/edge");
    assert_null(b->remote_username);
    assert_false(b->cleansession);
    assert_int_equal(b->local_cleansession, 0);
    assert_int_equal(b->keepalive, 60);
    assert_int_equal(b->idle_timeout, 60);
    assert_int_equal(b->backoff_base, 5);
    assert_int_equal(b->backoff_cap, 30);
    assert_int_equal(b->start_type, CONFIG_BRIDGE_AUTOMATIC);
    assert_int_equal(b->threshold, 10);
    assert_true(b->notifications);
    assert_false(b->notifications_local_only);
    assert_true(b->try_private);
    assert_int_equal(b->protocol_version, 4);
    assert_true(b->attempt_unsubscribe);
    assert_true(b->outgoing_retain);
    assert_int_equal(b->max_packet_size, 0);
    assert_int_equal(b->max_queued_messages, -1);
    assert_int_equal(b->max_queued_bytes, -1);
    assert_null(b->cafile);
    snprintf(want, sizeof(want), "$SYS/broker/connection/%s.edge/state", host);
    assert_string_equal(config_bridge_notification_topic(b, buf, sizeof(buf)), want);
    /* a bridge does not stop the default listener from being added */
    assert_int_equal(c.n_listeners, 1);
    config_cleanup(&c);
}

/* Mosquitto's mapping: local = LOCAL-PREFIX + PATTERN, remote = REMOTE-PREFIX + PATTERN. */
static void test_topics(void **state)
{
    struct config c;
    const struct config_bridge_topic *t;

    (void)state;
    parse_ok("connection edge\naddress h\n"
             "topic a/# in\n"
             "topic b/+ BOTH 2\n"
             "topic c/# out 1 local/ remote/\n"
             "topic \"\" both 1 here/state there/state\n"
             "topic d in 0 \"\" far/\n"
             "topic e/# out 2 # a comment\n",
             &c);
    t = c.bridges[0].topics;
    assert_int_equal(c.bridges[0].n_topics, 6);
    assert_int_equal(t[0].dir, CONFIG_BRIDGE_IN);
    assert_int_equal(t[1].dir, CONFIG_BRIDGE_BOTH);
    assert_int_equal(t[1].qos, 2);
    assert_string_equal(t[2].local, "local/c/#");
    assert_string_equal(t[2].remote, "remote/c/#");
    assert_string_equal(t[2].local_prefix, "local/");
    assert_string_equal(t[2].remote_prefix, "remote/");
    assert_string_equal(t[3].pattern, "");
    assert_string_equal(t[3].local, "here/state");
    assert_string_equal(t[3].remote, "there/state");
    assert_null(t[4].local_prefix);
    assert_string_equal(t[4].local, "d");
    assert_string_equal(t[4].remote, "far/d");
    assert_int_equal(t[5].qos, 2);
    assert_null(t[5].local_prefix);
    assert_int_equal(t[5].line, 8);
    config_cleanup(&c);
}

static void test_addresses(void **state)
{
    struct config c;
    const struct config_bridge *b;

    (void)state;
    parse_ok("connection x\naddresses broker.example.com:8883 10.0.0.2 [::1]:1884 [fe80::1]\n"
             "round_robin true\ntopic #\n",
             &c);
    b = &c.bridges[0];
    assert_int_equal(b->n_addresses, 4);
    assert_string_equal(b->addresses[0].host, "broker.example.com");
    assert_int_equal(b->addresses[0].port, 8883);
    assert_int_equal(b->addresses[1].port, 1883);
    assert_string_equal(b->addresses[2].host, "::1");
    assert_int_equal(b->addresses[2].port, 1884);
    assert_string_equal(b->addresses[3].host, "fe80::1");
    assert_int_equal(b->addresses[3].port, 1883);
    assert_true(b->round_robin);
    config_cleanup(&c);
}

static void test_options(void **state)
{
    struct config c;
    const struct config_bridge *b;

    (void)state;
    parse_ok("connection x\naddress h:1\ntopic #\n"
             "remote_clientid edge-7\nlocal_clientid local-7\nremote_username u\n"
             "remote_password two words\ncleansession true\nkeepalive_interval 2\n"
             "idle_timeout 30\nrestart_timeout 10 60\nstart_type lazy\nthreshold 5\n"
             "notifications false\nnotifications_local_only true\nnotification_topic s/edge\n"
             "try_private false\nbridge_protocol_version mqttv31\n"
             "bridge_attempt_unsubscribe false\nbridge_outgoing_retain false\n"
             "bridge_max_packet_size 1000\nbridge_bind_address 127.0.0.1\n"
             "bridge_cafile /ca.crt\nbridge_certfile /c.crt\nbridge_keyfile /c.key\n"
             "bridge_insecure true\nbridge_alpn mqtt\nbridge_tls_version tlsv1.2\n"
             "bridge_max_queued_messages 0\nbridge_max_queued_bytes 1000000\n"
             "local_username ignored\n",
             &c);
    b = &c.bridges[0];
    assert_string_equal(b->remote_clientid, "edge-7");
    assert_string_equal(b->local_clientid, "local-7");
    assert_string_equal(b->remote_username, "u");
    assert_string_equal(b->remote_password, "two words");
    assert_true(b->cleansession);
    assert_int_equal(b->local_cleansession, 1); /* follows cleansession, as in Mosquitto */
    assert_int_equal(b->keepalive, 5);          /* raised to Mosquitto's floor */
    assert_int_equal(b->idle_timeout, 30);
    assert_int_equal(b->restart_timeout, 10);
    assert_int_equal(b->backoff_base, 10);
    assert_int_equal(b->backoff_cap, 60);
    assert_int_equal(b->start_type, CONFIG_BRIDGE_LAZY);
    assert_int_equal(b->threshold, 5);
    assert_false(b->notifications);
    assert_true(b->notifications_local_only);
    assert_string_equal(b->notification_topic, "s/edge");
    assert_false(b->try_private);
    assert_int_equal(b->protocol_version, 3);
    assert_false(b->attempt_unsubscribe);
    assert_false(b->outgoing_retain);
    assert_int_equal(b->max_packet_size, 1000);
    assert_string_equal(b->bind_address, "127.0.0.1");
    assert_string_equal(b->cafile, "/ca.crt");
    assert_int_equal(b->lines.cafile, 23);
    assert_string_equal(b->keyfile, "/c.key");
    assert_true(b->insecure);
    assert_string_equal(b->alpn, "mqtt");
    assert_int_equal(b->max_queued_messages, 0);
    assert_int_equal(b->max_queued_bytes, 1000000);
    config_cleanup(&c);

    /* old names; a constant restart_timeout; local_cleansession of its own */
    parse_ok("connection x\naddress h\ntopic #\nclientid a\nusername b\npassword c\n"
             "restart_timeout 7\ncleansession true\nlocal_cleansession false\n",
             &c);
    b = &c.bridges[0];
    assert_string_equal(b->remote_clientid, "a");
    assert_string_equal(b->remote_username, "b");
    assert_string_equal(b->remote_password, "c");
    assert_int_equal(b->restart_timeout, 7);
    assert_int_equal(b->backoff_cap, 0);
    assert_int_equal(b->local_cleansession, 0);
    config_cleanup(&c);
}

static void test_several(void **state)
{
    struct config c, d;

    (void)state;
    parse_ok("connection a\naddress h\ntopic x\nlistener 1884\nconnection b\naddress i\n"
             "topic y in\n",
             &c);
    assert_int_equal(c.n_bridges, 2);
    assert_string_equal(c.bridges[1].local_clientid, "$bridge/b");
    assert_int_equal(c.bridges[1].topics[0].dir, CONFIG_BRIDGE_IN);
    parse_ok("connection a\naddress h\ntopic x\nlistener 1884\nconnection b\naddress i\n"
             "topic y out\n",
             &d);
    assert_true(config_bridge_equal(&c.bridges[0], &d.bridges[0]));
    assert_false(config_bridge_equal(&c.bridges[1], &d.bridges[1]));
    config_cleanup(&c);
    config_cleanup(&d);
}

static void test_errors(void **state)
{
    (void)state;
    parse_err("topic a\n", "t.conf:1: 'topic' is a bridge option: give it after a \"connection "
                           "NAME\" line");
    parse_err("connection\n", "t.conf:1: option 'connection' needs a value");
    parse_err("connection a b\n", "t.conf:1: connection: expected one name");
    parse_err("connection a/b\n", "t.conf:1: connection: 'a/b': a bridge name holds no '/'");
    parse_err("connection a\naddress h\ntopic x\nconnection a\n",
              "t.conf:4: connection: a bridge named 'a' is already configured");
    parse_err("connection a\ntopic x\n", "t.conf:1: bridge 'a' has no address");
    parse_err("connection a\naddress h\n", "t.conf:1: bridge 'a' has no topic");
    parse_err("connection a\naddress h:0\n", "t.conf:2: address: bad port '0'");
    parse_err("connection a\naddress h:x\n", "t.conf:2: address: bad port 'x'");
    parse_err("connection a\naddress h\naddress i\n",
              "t.conf:3: address: bridge 'a' has its addresses already");
    parse_err("connection a\naddress h\ntopic x sideways\n",
              "t.conf:3: topic: direction 'sideways' is not out, in or both");
    parse_err("connection a\naddress h\ntopic x out 3\n", "t.conf:3: topic: QoS '3' is not 0");
    parse_err("connection a\naddress h\ntopic x out 1 a/+/\n",
              "t.conf:3: topic: local prefix 'a/+/' is not a topic");
    parse_err("connection a\naddress h\ntopic a/#/b\n",
              "t.conf:3: topic: 'a/#/b' (local prefix and pattern) is not a valid filter");
    parse_err("connection a\naddress h\ntopic \"\" out 1 l/\n",
              "t.conf:3: topic: an empty pattern (\"\") needs both prefixes");
    parse_err("connection a\naddress h\ntopic x out 1 l/ r/ extra\n",
              "t.conf:3: topic: unexpected 'extra'");
    parse_err("connection a\naddress h\ntopic x\nstart_type manual\n",
              "t.conf:4: start_type: expected automatic, lazy or once, got 'manual' (manual is "
              "not supported");
    parse_err("connection a\naddress h\ntopic x\nbridge_protocol_version mqttv50\n",
              "t.conf:4: bridge_protocol_version mqttv50: Cairn speaks MQTT 3.1 and 3.1.1");
    parse_err("connection a\naddress h\ntopic x\nrestart_timeout 10 5\n",
              "t.conf:4: restart_timeout: the cap 5 is below the base 10");
    parse_err("connection a\naddress h\ntopic x\nkeepalive_interval 70000\n",
              "t.conf:4: keepalive_interval: expected a number up to 65535");
    parse_err("connection a\naddress h\ntopic x\ncleansession maybe\n",
              "t.conf:4: cleansession: expected true or false, got 'maybe'");
    parse_err("connection a\naddress h\ntopic x\nbridge_psk 00ff\nbridge_cafile /ca\n",
              "t.conf:5: bridge_cafile: a bridge uses certificates or a PSK, not both");
    parse_err("connection a\naddress h\ntopic x\nbridge_psk 00ff\n",
              "t.conf:1: bridge 'a': bridge_psk without bridge_identity");
    parse_err("connection a\naddress h\ntopic x\nbridge_cafile /ca\nbridge_certfile /c\n",
              "t.conf:5: bridge 'a': bridge_certfile without bridge_keyfile");
    parse_err("connection a\naddress h\ntopic x\nbridge_certfile /c\nbridge_keyfile /k\n",
              "t.conf:4: bridge 'a': bridge_certfile needs bridge_cafile or bridge_capath");
    parse_err("connection a\naddress h\ntopic x\nbridge_frobnicate 1\n",
              "t.conf:4: unknown option 'bridge_frobnicate'");
    parse_err("connection a\naddress h\ntopic x\nconnection b\naddress i\ntopic y\n"
              "local_clientid $bridge/a\n",
              "t.conf:4: bridge 'b': local_clientid '$bridge/a' is another bridge's too");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),  cmocka_unit_test(test_topics),
        cmocka_unit_test(test_addresses), cmocka_unit_test(test_options),
        cmocka_unit_test(test_several),   cmocka_unit_test(test_errors),
    };

    log_open(0, NULL, 0); /* warnings (values raised to Mosquitto's floors) are not under test */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
