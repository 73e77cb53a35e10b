/*
 * test_error.c — mqtt/error.c: every code has a class and a message; the CONNACK mapping;
 * packet type names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mqtt.h"

static const struct {
    int code;
    enum mqtt_err_class cls;
} codes[] = {
    {MQTT_OK, MQTT_CLASS_OK},
    {MQTT_EPARTIAL, MQTT_CLASS_PARTIAL},
    {MQTT_EREMLEN, MQTT_CLASS_MALFORMED},
    {MQTT_ESHORT, MQTT_CLASS_MALFORMED},
    {MQTT_ELONG, MQTT_CLASS_MALFORMED},
    {MQTT_EUTF8, MQTT_CLASS_MALFORMED},
    {MQTT_EUTF8_NUL, MQTT_CLASS_MALFORMED},
    {MQTT_ETYPE, MQTT_CLASS_MALFORMED},
    {MQTT_EFLAGS, MQTT_CLASS_PROTOCOL},
    {MQTT_EQOS, MQTT_CLASS_PROTOCOL},
    {MQTT_EPROTO_NAME, MQTT_CLASS_PROTOCOL},
    {MQTT_EPROTO_LEVEL, MQTT_CLASS_PROTOCOL},
    {MQTT_ECONNECT_RESERVED, MQTT_CLASS_PROTOCOL},
    {MQTT_EWILL_FLAGS, MQTT_CLASS_PROTOCOL},
    {MQTT_EWILL_QOS, MQTT_CLASS_PROTOCOL},
    {MQTT_EPASSWORD, MQTT_CLASS_PROTOCOL},
    {MQTT_EPACKET_ID, MQTT_CLASS_PROTOCOL},
    {MQTT_EEMPTY_SUB, MQTT_CLASS_PROTOCOL},
    {MQTT_ESUB_QOS, MQTT_CLASS_PROTOCOL},
    {MQTT_ETOPIC_EMPTY, MQTT_CLASS_PROTOCOL},
    {MQTT_ETOPIC_WILDCARD, MQTT_CLASS_PROTOCOL},
    {MQTT_EFILTER, MQTT_CLASS_PROTOCOL},
    {MQTT_ECONNACK_RESERVED, MQTT_CLASS_PROTOCOL},
    {MQTT_ECLIENT_ID, MQTT_CLASS_PROTOCOL},
    {MQTT_ESUBACK_CODE, MQTT_CLASS_PROTOCOL},
    {MQTT_ETOOLARGE, MQTT_CLASS_TOO_LARGE},
    {MQTT_EINVAL, MQTT_CLASS_INVALID},
};

static void classes_and_messages(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        int c = codes[i].code;
        assert_int_equal(mqtt_error_class(-c), codes[i].cls);
        assert_int_equal(mqtt_error_class(c), codes[i].cls);
        assert_string_equal(mqtt_strerror(-c), mqtt_strerror(c));
        assert_string_not_equal(mqtt_strerror(-c), "unknown error");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(mqtt_strerror(codes[j].code), mqtt_strerror(c));
    }
    assert_string_equal(mqtt_strerror(-9999), "unknown error");
}

static void connack_for_errors(void **state)
{
    (void)state;
    assert_int_equal(mqtt_error_connack(-MQTT_EPROTO_LEVEL), MQTT_CONNACK_BAD_PROTOCOL);
    assert_int_equal(mqtt_error_connack(MQTT_EPROTO_LEVEL), MQTT_CONNACK_BAD_PROTOCOL);
    assert_int_equal(mqtt_error_connack(-MQTT_ECLIENT_ID), MQTT_CONNACK_ID_REJECTED);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        int c = codes[i].code;
        if (c != MQTT_EPROTO_LEVEL && c != MQTT_ECLIENT_ID)
            assert_int_equal(mqtt_error_connack(-c), -1);
    }
}

static void type_names(void **state)
{
    (void)state;
    assert_string_equal(mqtt_type_name(MQTT_CONNECT), "CONNECT");
    assert_string_equal(mqtt_type_name(MQTT_PUBLISH), "PUBLISH");
    assert_string_equal(mqtt_type_name(MQTT_UNSUBSCRIBE), "UNSUBSCRIBE");
    assert_string_equal(mqtt_type_name(MQTT_DISCONNECT), "DISCONNECT");
    assert_string_equal(mqtt_type_name(0), "RESERVED");
    assert_string_equal(mqtt_type_name(15), "RESERVED");
    assert_string_equal(mqtt_type_name(-1), "RESERVED");
    assert_string_equal(mqtt_type_name(99), "RESERVED");
    for (int t = 1; t <= 14; t++)
        assert_string_not_equal(mqtt_type_name(t), "RESERVED");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classes_and_messages),
        cmocka_unit_test(connack_for_errors),
        cmocka_unit_test(type_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
