/*
 * test_outq.c — the output queue: small copies coalesce into one chunk, big ones get their own,
 * references keep their place in the order and are released exactly once (written, dropped,
 * or refused), and partial consumption resumes mid-chunk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "outq.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coalesce_and_order),
        cmocka_unit_test(test_big_copy_and_chunk_boundary),
        cmocka_unit_test(test_release_on_cleanup_and_empty),
        cmocka_unit_test(test_iov_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
