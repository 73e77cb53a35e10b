/*
 * test_pidx.c — the packet-id index: every id findable after any mix of puts and deletes (a
 * reference array decides), duplicates refused, id 0 never present, growth keeps everything.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pidx.h"

static void test_random_against_reference(void **state)
{
    static void *ref[65536];
    struct pidx x;
    uint64_t r = 88172645463325252ULL;
    int live = 0;

    memset(ref, 0, sizeof(ref));
    pidx_init(&x);
    for (int step = 0; step < 400000; step++) {
        uint16_t pid;
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        /* a window of ids near a moving point, as a session allocates them */
        pid = (uint16_t)((step / 4 + (int)(r % 3000)) % 65535 + 1);
        if (ref[pid]) {
            assert_ptr_equal(pidx_get(&x, pid), ref[pid]);
            assert_int_equal(pidx_put(&x, pid, (void *)1), -EEXIST);
            pidx_del(&x, pid);
            ref[pid] = NULL;
            live--;
        } else if (live < 2500) {
            void *v = (void *)(uintptr_t)(step * 8 + 8);
            assert_null(pidx_get(&x, pid));
            assert_int_equal(pidx_put(&x, pid, v), 0);
            ref[pid] = v;
            live++;
        }
        assert_int_equal(x.n, (uint32_t)live);
        if (step % 50000 == 0)
            for (uint32_t p = 1; p < 65536; p++)
                assert_ptr_equal(pidx_get(&x, (uint16_t)p), ref[p]);
    }
    assert_null(pidx_get(&x, 0));
    pidx_del(&x, 0);
    pidx_cleanup(&x);
    assert_null(pidx_get(&x, 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
