/*
 * test_outq.c — the output queue: small copies coalesce into one chunk, big ones get their own,
 * references keep their place in the order and are released exactly once (written, dropped,
 * or refused), and partial consumption resumes mid-chunk; and every allocation failure.
 *
 * Fault injection (SQLite's test_malloc.c idea): broker/net/outq.c is compiled into this test with
 * malloc (its only allocator) renamed to a fault_malloc wrapper that fail the Nth call; the test
 * loops N from 1 until a run needs no failure. outq.o from cairn_broker is then not linked (every
 * symbol it defines is defined here). A -Wl,--wrap=malloc on this executable would do the same
 * without the #include; tests/unit/broker/CMakeLists.txt is not this file's owner's to change.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "outq.h"

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

static void *fault_malloc(size_t n)
{
    return fault_now() ? NULL : malloc(n);
}

#define malloc(n) fault_malloc(n)
#include "../../../broker/net/outq.c"
#undef malloc

static int released;

static void release(void *obj)
{
    released += (int)(intptr_t)obj;
}

/* Gather the queue into one string (as writev would send it). */
static size_t flatten(const struct outq *q, char *out, size_t cap, int *iovs)
{
    struct iovec iov[64];
    int n = outq_iov(q, iov, 64);
    size_t len = 0;

    for (int i = 0; i < n; i++) {
        assert_true(len + iov[i].iov_len <= cap);
        memcpy(out + len, iov[i].iov_base, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    *iovs = n;
    return len;
}

static void test_coalesce_and_order(void **state)
{
    struct outq q;
    char buf[256];
    int iovs;

    (void)state;
    released = 0;
    outq_init(&q);
    assert_int_equal(outq_copy(&q, "ab", 2), 0);
    assert_int_equal(outq_copy(&q, "cd", 2), 0);
    assert_int_equal(outq_copy(&q, "", 0), 0);
    assert_int_equal(outq_ref(&q, "REF", 3, release, (void *)1), 0);
    assert_int_equal(outq_copy(&q, "ef", 2), 0);
    assert_int_equal(q.bytes, 9);
    assert_int_equal(flatten(&q, buf, sizeof(buf), &iovs), 9);
    assert_int_equal(iovs, 3); /* "abcd", "REF", "ef" */
    assert_memory_equal(buf, "abcdREFef", 9);
    /* consume into the middle of the first chunk, then past the reference */
    outq_consume(&q, 1);
    assert_int_equal(flatten(&q, buf, sizeof(buf), &iovs), 8);
    assert_memory_equal(buf, "bcdREFef", 8);
    assert_int_equal(released, 0);
    outq_consume(&q, 5); /* "bcd" and "RE": the reference is not done yet */
    assert_int_equal(released, 0);
    assert_int_equal(flatten(&q, buf, sizeof(buf), &iovs), 3);
    assert_memory_equal(buf, "Fef", 3);
    outq_consume(&q, 3);
    assert_int_equal(released, 1);
    assert_int_equal(q.bytes, 0);
    assert_null(q.head);
    assert_null(q.tail);
    /* appending after the queue emptied starts fresh */
    assert_int_equal(outq_copy(&q, "z", 1), 0);
    assert_int_equal(flatten(&q, buf, sizeof(buf), &iovs), 1);
    outq_cleanup(&q);
}

static void test_big_copy_and_chunk_boundary(void **state)
{
    struct outq q;
    char *big = malloc(3 * OUTQ_CHUNK);
    char *out = malloc(5 * OUTQ_CHUNK);
    int iovs;

    (void)state;
    memset(big, 'B', 3 * OUTQ_CHUNK);
    outq_init(&q);
    assert_int_equal(outq_copy(&q, big, OUTQ_CHUNK - 1), 0);
    assert_int_equal(outq_copy(&q, "x", 1), 0);              /* fills the chunk exactly */
    assert_int_equal(outq_copy(&q, "y", 1), 0);              /* a new chunk */
    assert_int_equal(outq_copy(&q, big, 3 * OUTQ_CHUNK), 0); /* bigger than a chunk */
    assert_int_equal(q.bytes, OUTQ_CHUNK + 1 + 3 * OUTQ_CHUNK);
    assert_int_equal(flatten(&q, out, 5 * OUTQ_CHUNK, &iovs), q.bytes);
    assert_int_equal(iovs, 3);
    assert_int_equal(out[OUTQ_CHUNK - 1], 'x');
    assert_int_equal(out[OUTQ_CHUNK], 'y');
    assert_int_equal(out[OUTQ_CHUNK + 1], 'B');
    outq_cleanup(&q);
    assert_int_equal(q.bytes, 0);
    free(big);
    free(out);
}

static void test_release_on_cleanup_and_empty(void **state)
{
    struct outq q;

    (void)state;
    released = 0;
    outq_init(&q);
    assert_int_equal(outq_ref(&q, "abc", 3, release, (void *)10), 0);
    assert_int_equal(outq_ref(&q, "def", 3, release, (void *)100), 0);
    assert_int_equal(outq_ref(&q, "", 0, release, (void *)1000), 0); /* empty: released now */
    assert_int_equal(released, 1000);
    assert_int_equal(outq_ref(&q, "ghi", 3, NULL, NULL), 0);
    outq_consume(&q, 2);
    assert_int_equal(released, 1000);
    outq_cleanup(&q); /* both remaining references, once each */
    assert_int_equal(released, 1110);
    outq_cleanup(&q);
    assert_int_equal(released, 1110);
}

static void test_iov_limit(void **state)
{
    struct outq q;
    struct iovec iov[4];

    (void)state;
    outq_init(&q);
    for (int i = 0; i < 10; i++)
        assert_int_equal(outq_ref(&q, "r", 1, NULL, NULL), 0);
    assert_int_equal(outq_iov(&q, iov, 4), 4);
    outq_consume(&q, 10);
    assert_int_equal(outq_iov(&q, iov, 4), 0);
    outq_cleanup(&q);
}

/*
 * A mixed sequence with the Nth allocation failing, for every N: a failed append returns
 * -ENOMEM and queues nothing, a refused reference is released at once, what was queued stays
 * in order, and cleanup releases the rest (ASan reports any leak).
 */
static void test_alloc_faults(void **state)
{
    static const char big[3 * OUTQ_CHUNK];
    unsigned long n;
    bool fired = true;

    (void)state;
    for (n = 1; fired; n++) {
        struct outq q;
        size_t want = 0;
        static char out[16 * OUTQ_CHUNK];
        int iovs, rc;

        released = 0;
        outq_spare_release(); /* every chunk from the allocator, so every allocation is tried */
        outq_init(&q);
        fault_arm(n);
        for (int i = 0; i < 6; i++) {
            rc = outq_copy(&q, "abc", 3);
            assert_true(rc == 0 || rc == -ENOMEM);
            want += rc == 0 ? 3 : 0;
            rc = outq_ref(&q, "REF", 3, release, (void *)1);
            assert_true(rc == 0 || rc == -ENOMEM);
            want += rc == 0 ? 3 : 0;
            if (rc < 0)
                assert_int_equal(released, 1); /* refused: released at once */
            released = 0;
            rc = outq_copy(&q, big, i == 3 ? sizeof(big) : OUTQ_CHUNK - 2);
            assert_true(rc == 0 || rc == -ENOMEM);
            want += rc == 0 ? (i == 3 ? sizeof(big) : OUTQ_CHUNK - 2) : 0;
        }
        fired = fault_fired;
        fault_arm(0);
        assert_int_equal(q.bytes, want);
        assert_true(flatten(&q, out, sizeof(out), &iovs) == want);
        outq_consume(&q, want > 5 ? 5 : want);
        outq_cleanup(&q);
        assert_int_equal(q.bytes, 0);
    }
    assert_true(n > 10); /* the sequence allocates often enough to have been tested */
}

/* Two pieces queued as one: joined in the tail chunk when they fit, else in a new chunk
 * together; on an allocation failure neither is queued. */
static void test_copy2(void **state)
{
    static const char big[OUTQ_CHUNK];
    char out[2 * OUTQ_CHUNK];
    struct outq q;
    int iovs;

    (void)state;
    outq_spare_release();
    outq_init(&q);
    assert_int_equal(outq_copy2(&q, "head", 4, "body", 4), 0);
    assert_int_equal(outq_copy2(&q, "x", 1, NULL, 0), 0);
    assert_int_equal(flatten(&q, out, sizeof(out), &iovs), 9);
    assert_int_equal(iovs, 1);
    assert_memory_equal(out, "headbodyx", 9);
    fault_arm(1);
    assert_int_equal(outq_copy2(&q, "H", 1, big, sizeof(big)), -ENOMEM); /* needs a chunk */
    fault_arm(0);
    assert_int_equal(q.bytes, 9);
    assert_int_equal(outq_copy2(&q, "H", 1, big, sizeof(big)), 0); /* a chunk of its own */
    assert_int_equal(flatten(&q, out, sizeof(out), &iovs), 10 + sizeof(big));
    assert_int_equal(iovs, 2);
    assert_int_equal(out[9], 'H');
    outq_cleanup(&q);
}

/*
 * Written standard chunks wait on the spare list, at most OUTQ_SPARE of them, and the next
 * copies take them instead of allocating; larger chunks and references are never kept.
 */
static void test_spare_chunks(void **state)
{
    static const char big[2 * OUTQ_CHUNK];
    struct outq q;

    (void)state;
    released = 0;
    outq_spare_release();
    outq_init(&q);
    for (unsigned i = 0; i < OUTQ_SPARE + 8; i++)
        assert_int_equal(outq_copy(&q, big, OUTQ_CHUNK), 0);
    assert_int_equal(outq_copy(&q, big, sizeof(big)), 0); /* a chunk of its own size */
    assert_int_equal(outq_ref(&q, "REF", 3, release, (void *)1), 0);
    assert_int_equal(q.bytes, (size_t)(OUTQ_SPARE + 10) * OUTQ_CHUNK + 3);
    outq_consume(&q, q.bytes);
    assert_int_equal(released, 1);
    released = 0;
    /* the spare list is full: a further allocation failure cannot touch the next copies */
    fault_arm(1);
    for (unsigned i = 0; i < OUTQ_SPARE; i++)
        assert_int_equal(outq_copy(&q, big, OUTQ_CHUNK), 0);
    assert_int_equal(outq_copy(&q, big, OUTQ_CHUNK), -ENOMEM); /* the list is empty now */
    fault_arm(0);
    assert_int_equal(q.bytes, (size_t)OUTQ_SPARE * OUTQ_CHUNK);
    outq_cleanup(&q);
    assert_int_equal(outq_spare_release(), OUTQ_SPARE);
    assert_int_equal(outq_spare_release(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coalesce_and_order),
        cmocka_unit_test(test_big_copy_and_chunk_boundary),
        cmocka_unit_test(test_release_on_cleanup_and_empty),
        cmocka_unit_test(test_iov_limit),
        cmocka_unit_test(test_alloc_faults),
        cmocka_unit_test(test_spare_chunks),
        cmocka_unit_test(test_copy2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
