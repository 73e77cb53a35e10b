/*
 * test_utf8.c — mqtt/utf8.c: well-formed UTF-8 per [MQTT-1.5.3-1] and no U+0000 per
 * [MQTT-1.5.3-2], on the ASCII fast path and off it, and against an independent decoder over
 * every two- and three-byte sequence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mqtt.h"

static int v(const char *s, size_t n)
{
    return mqtt_utf8_validate((const uint8_t *)s, n);
}

#define V(lit) v(lit, sizeof(lit) - 1)

static void valid_strings(void **state)
{
    (void)state;
    assert_int_equal(v("", 0), 0);
    assert_int_equal(V("a"), 0);
    assert_int_equal(V("hello, world: plain ASCII longer than eight bytes"), 0);
    assert_int_equal(V("\x7f"), 0);
    assert_int_equal(V("\xc2\x80"), 0);          /* U+0080 */
    assert_int_equal(V("\xdf\xbf"), 0);          /* U+07FF */
    assert_int_equal(V("\xe0\xa0\x80"), 0);      /* U+0800 */
    assert_int_equal(V("\xed\x9f\xbf"), 0);      /* U+D7FF */
    assert_int_equal(V("\xee\x80\x80"), 0);      /* U+E000 */
    assert_int_equal(V("\xef\xbb\xbf"), 0);      /* U+FEFF: kept, not skipped [MQTT-1.5.3-3] */
    assert_int_equal(V("\xef\xbf\xbf"), 0);      /* U+FFFF */
    assert_int_equal(V("\xf0\x90\x80\x80"), 0);  /* U+10000 */
    assert_int_equal(V("\xf4\x8f\xbf\xbf"), 0);  /* U+10FFFF */
    assert_int_equal(V("A\xf0\xaa\x9b\x94"), 0); /* the spec's example 1.5.4 */
    assert_int_equal(V("abcdefgh\xc3\xa9ijklmnop"), 0);
}

/* [MQTT-1.5.3-1] ill-formed sequences */
static void MQTT_1_5_3_1_ill_formed(void **state)
{
    (void)state;
    assert_int_equal(V("\x80"), -MQTT_EUTF8); /* lone continuation */
    assert_int_equal(V("\xbf"), -MQTT_EUTF8);
    assert_int_equal(V("\xc0\x80"), -MQTT_EUTF8);         /* overlong U+0000 */
    assert_int_equal(V("\xc1\xbf"), -MQTT_EUTF8);         /* overlong U+007F */
    assert_int_equal(V("\xe0\x9f\xbf"), -MQTT_EUTF8);     /* overlong U+07FF */
    assert_int_equal(V("\xf0\x8f\xbf\xbf"), -MQTT_EUTF8); /* overlong U+FFFF */
    assert_int_equal(V("\xf4\x90\x80\x80"), -MQTT_EUTF8); /* U+110000 */
    assert_int_equal(V("\xf5\x80\x80\x80"), -MQTT_EUTF8);
    assert_int_equal(V("\xff"), -MQTT_EUTF8);
    assert_int_equal(V("\xfe"), -MQTT_EUTF8);
    assert_int_equal(V("\xc3"), -MQTT_EUTF8); /* truncated */
    assert_int_equal(V("\xe2\x82"), -MQTT_EUTF8);
    assert_int_equal(V("\xf0\x9f\x98"), -MQTT_EUTF8);
    assert_int_equal(V("\xc3\x28"), -MQTT_EUTF8); /* bad continuation */
    assert_int_equal(V("\xe2\x28\xa1"), -MQTT_EUTF8);
    assert_int_equal(V("\xe2\x82\x28"), -MQTT_EUTF8);
    assert_int_equal(V("\xf0\x9f\x28\x80"), -MQTT_EUTF8);
    assert_int_equal(V("\xf0\x9f\x98\x28"), -MQTT_EUTF8);
    assert_int_equal(V("abcdefghijklmnop\x80"), -MQTT_EUTF8); /* in the tail */
}

/* [MQTT-1.5.3-1] surrogates U+D800..U+DFFF */
static void MQTT_1_5_3_1_surrogates(void **state)
{
    (void)state;
    assert_int_equal(V("\xed\xa0\x80"), -MQTT_EUTF8);             /* U+D800 */
    assert_int_equal(V("\xed\xad\xbf"), -MQTT_EUTF8);             /* U+DB7F */
    assert_int_equal(V("\xed\xbf\xbf"), -MQTT_EUTF8);             /* U+DFFF */
    assert_int_equal(V("\xed\xa0\xbd\xed\xb8\x80"), -MQTT_EUTF8); /* CESU-8 pair */
}

/* [MQTT-1.5.3-2] no U+0000, at every position */
static void MQTT_1_5_3_2_nul(void **state)
{
    char buf[40];

    (void)state;
    for (size_t len = 1; len <= sizeof buf; len++) {
        for (size_t at = 0; at < len; at++) {
            memset(buf, 'q', len);
            buf[at] = 0;
            assert_int_equal(v(buf, len), -MQTT_EUTF8_NUL);
            buf[at] = '\x80';
            assert_int_equal(v(buf, len), -MQTT_EUTF8);
            buf[at] = 'z';
            assert_int_equal(v(buf, len), 0);
        }
    }
}

/* An independent decoder: the code point, or -1 when the bytes are not one valid character. */
static long ref_decode(const uint8_t *p, size_t n)
{
    long cp;
    size_t need;

    if (n == 0)
        return -1;
    if (p[0] < 0x80) {
        need = 1;
        cp = p[0];
    } else if ((p[0] & 0xe0) == 0xc0) {
        need = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        need = 3;
        cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        need = 4;
        cp = p[0] & 0x07;
    } else {
        return -1;
    }
    if (n != need)
        return -1;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return -1;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((need == 2 && cp < 0x80) || (need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000))
        return -1; /* overlong */
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return -1;
    return cp;
}

static void exhaustive_short_sequences(void **state)
{
    uint8_t b[3];

    (void)state;
    for (unsigned a = 0x80; a < 0x100; a++) {
        b[0] = (uint8_t)a;
        assert_int_equal(mqtt_utf8_validate(b, 1), -MQTT_EUTF8);
        for (unsigned c = 0; c < 0x100; c++) {
            b[1] = (uint8_t)c;
            long r = ref_decode(b, 2);
            int rc = mqtt_utf8_validate(b, 2);
            if (c == 0 && r < 0 && rc == -MQTT_EUTF8_NUL)
                continue;
            assert_int_equal(rc == 0, r >= 0);
            if (a < 0xe0 || a > 0xef)
                continue;
            for (unsigned d = 0; d < 0x100; d++) {
                b[2] = (uint8_t)d;
                r = ref_decode(b, 3);
                rc = mqtt_utf8_validate(b, 3);
                assert_int_equal(rc == 0, r >= 0);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_strings),
        cmocka_unit_test(MQTT_1_5_3_1_ill_formed),
        cmocka_unit_test(MQTT_1_5_3_1_surrogates),
        cmocka_unit_test(MQTT_1_5_3_2_nul),
        cmocka_unit_test(exhaustive_short_sequences),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
