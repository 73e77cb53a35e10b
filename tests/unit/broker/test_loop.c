/*
 * test_loop.c — the event loop with whichever backend the build picked (CI runs both): fd
 * dispatch, interest changes, removal during dispatch, timers, the iteration-end hook, hung-up
 * fds without interest, fairness past one wait's worth of events, and loop_fire_fd.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop.h"
#include "timer.h"

struct seen {
    int calls;
    int fd;
    int events;
    struct loop *l;
    int del_fd; /* remove this fd from within the callback, if >= 0 */
};

static void on_fd(struct loop *l, int fd, int events, void *arg)
{
    struct seen *s = arg;

    s->calls++;
    s->fd = fd;
    s->events = events;
    if (s->del_fd >= 0)
        loop_del_fd(l, s->del_fd);
}

static struct loop *new_loop(void)
{
    char err[128];
    struct loop *l = loop_new(err, sizeof(err));

    assert_non_null(l);
    return l;
}

/* Run iterations until pred holds or 2 s pass. */
static int run_until(struct loop *l, const int *value, int want)
{
    uint64_t end = timer_clock_ms() + 2000;

    while (*value < want && timer_clock_ms() < end)
        loop_run_once(l, 100);
    return *value;
}

static void test_read_and_write_interest(void **state)
{
    struct loop *l = new_loop();
    struct seen s = {.del_fd = -1};
    int sv[2];

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(loop_add_fd(l, sv[0], CAIRN_EV_READ, on_fd, &s), 0);
    assert_int_equal(loop_add_fd(l, sv[0], CAIRN_EV_READ, on_fd, &s), -EEXIST);
    assert_int_equal(loop_mod_fd(l, 999, CAIRN_EV_READ), -ENOENT);
    /* nothing to read: a short wait dispatches nothing */
    assert_int_equal(loop_run_once(l, 10), 0);
    assert_int_equal(s.calls, 0);
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(run_until(l, &s.calls, 1), 1);
    assert_int_equal(s.fd, sv[0]);
    assert_int_equal(s.events, CAIRN_EV_READ);
    /* add write interest: a socket with room is writable at once */
    s.calls = 0;
    assert_int_equal(loop_mod_fd(l, sv[0], CAIRN_EV_READ | CAIRN_EV_WRITE), 0);
    assert_int_equal(run_until(l, &s.calls, 1), 1);
    assert_true(s.events & CAIRN_EV_WRITE);
    /* interest 0: nothing, even though a byte is unread */
    assert_int_equal(loop_mod_fd(l, sv[0], 0), 0);
    s.calls = 0;
    loop_run_once(l, 10);
    assert_int_equal(s.calls, 0);
    loop_del_fd(l, sv[0]);
    loop_del_fd(l, sv[0]); /* twice: ignored */
    close(sv[0]);
    close(sv[1]);
    loop_free(l);
}

/* Removing an fd in a callback stops its events of the same iteration from being dispatched. */
static void test_delete_during_dispatch(void **state)
{
    struct loop *l = new_loop();
    int a[2];
    int b[2];
    struct seen sa = {.del_fd = -1};
    struct seen sb = {.del_fd = -1};

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    sa.del_fd = b[0];
    sb.del_fd = a[0];
    assert_int_equal(loop_add_fd(l, a[0], CAIRN_EV_READ, on_fd, &sa), 0);
    assert_int_equal(loop_add_fd(l, b[0], CAIRN_EV_READ, on_fd, &sb), 0);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "x", 1), 1);
    /* wait until both are ready so they fire in one iteration */
    {
        uint64_t end = timer_clock_ms() + 2000;
        while (sa.calls + sb.calls == 0 && timer_clock_ms() < end)
            loop_run_once(l, 100);
    }
    assert_int_equal(sa.calls + sb.calls, 1);
    loop_del_fd(l, a[0]);
    loop_del_fd(l, b[0]);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    loop_free(l);
}

struct tstate {
    struct loop *l;
    int order[4];
    int n;
};

static void t_first(void *arg)
{
    struct tstate *t = arg;
    t->order[t->n++] = 1;
}

static void t_second(void *arg)
{
    struct tstate *t = arg;
    t->order[t->n++] = 2;
    loop_stop(t->l);
}

static void t_never(void *arg)
{
    struct tstate *t = arg;
    t->order[t->n++] = 9;
}

static void test_timers_drive_run(void **state)
{
    struct loop *l = new_loop();
    struct tstate t = {.l = l};
    struct timer *never;
    uint64_t start = loop_now_ms(l);

    (void)state;
    assert_non_null(loop_timer_add(l, 30, t_second, &t));
    assert_non_null(loop_timer_add(l, 10, t_first, &t));
    never = loop_timer_add(l, 20, t_never, &t);
    assert_non_null(never);
    loop_timer_cancel(l, never);
    loop_timer_cancel(l, NULL);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.order[0], 1);
    assert_int_equal(t.order[1], 2);
    assert_true(loop_stopping(l));
    assert_true(loop_now_ms(l) >= start + 30);
    loop_free(l);
}

static int iterations;

static void count_iteration(void *arg)
{
    (void)arg;
    iterations++;
}

static void test_iteration_end(void **state)
{
    struct loop *l = new_loop();
    int sv[2];
    struct seen s = {.del_fd = -1};

    (void)state;
    iterations = 0;
    loop_set_iteration_end(l, count_iteration, NULL);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(loop_add_fd(l, sv[0], CAIRN_EV_READ | CAIRN_EV_WRITE, on_fd, &s), 0);
    loop_run_once(l, 100);
    assert_int_equal(iterations, 1);
    loop_run_once(l, 0);
    assert_int_equal(iterations, 2);
    loop_set_iteration_end(l, NULL, NULL);
    loop_run_once(l, 0);
    assert_int_equal(iterations, 2);
    loop_del_fd(l, sv[0]);
    close(sv[0]);
    close(sv[1]);
    loop_free(l);
}

/* A peer that hung up, with no interest registered, must not wake the loop (no busy loop). */
static void test_hangup_without_interest(void **state)
{
    struct loop *l = new_loop();
    int sv[2];
    struct seen s = {.del_fd = -1};
    uint64_t start;

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(loop_add_fd(l, sv[0], CAIRN_EV_READ, on_fd, &s), 0);
    close(sv[1]);
    assert_int_equal(run_until(l, &s.calls, 1), 1); /* hang-up shows as readable */
    assert_int_equal(loop_mod_fd(l, sv[0], 0), 0);
    s.calls = 0;
    start = timer_clock_ms();
    assert_int_equal(loop_run_once(l, 50), 0);
    assert_true(timer_clock_ms() - start >= 40); /* it really waited */
    assert_int_equal(s.calls, 0);
    loop_del_fd(l, sv[0]);
    close(sv[0]);
    loop_free(l);
}

#define MANY 700

static int many_seen[MANY];
static int many_distinct;

static void on_many(struct loop *l, int fd, int events, void *arg)
{
    int i = (int)(intptr_t)arg;

    (void)l;
    (void)fd;
    (void)events;
    if (!many_seen[i]++)
        many_distinct++;
}

/* More ready fds than one wait reports: every one is served within a few iterations. */
static void test_fairness(void **state)
{
    struct loop *l = new_loop();
    int fds[MANY][2];
    struct rlimit rl;
    int n = MANY;

    (void)state;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * MANY + 64) {
        rl.rlim_cur = rl.rlim_max < 2 * MANY + 64 ? rl.rlim_max : 2 * MANY + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < 2 * MANY + 64)
        n = (int)(rl.rlim_cur - 64) / 2;
    for (int i = 0; i < n; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds[i]), 0);
        assert_int_equal(write(fds[i][1], "x", 1), 1);
        assert_int_equal(loop_add_fd(l, fds[i][0], CAIRN_EV_READ, on_many, (void *)(intptr_t)i), 0);
    }
    for (int it = 0; it < 4 && many_distinct < n; it++)
        loop_run_once(l, 100);
    assert_int_equal(many_distinct, n);
    for (int i = 0; i < n; i++) {
        loop_del_fd(l, fds[i][0]);
        close(fds[i][0]);
        close(fds[i][1]);
    }
    loop_free(l);
}

/* loop_fire_fd runs the callback at once, whatever the interest (0 here); unknown fds are
 * ignored. The TLS handshake threads hand their results back this way. */
static void test_fire_fd(void **state)
{
    struct loop *l = new_loop();
    struct seen s = {.del_fd = -1};
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(loop_add_fd(l, sv[0], 0, on_fd, &s), 0);
    loop_fire_fd(l, sv[0], CAIRN_EV_READ);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.fd, sv[0]);
    assert_int_equal(s.events, CAIRN_EV_READ);
    loop_fire_fd(l, sv[1], CAIRN_EV_READ); /* not registered */
    loop_fire_fd(l, 100000, CAIRN_EV_READ);
    assert_int_equal(s.calls, 1);
    loop_del_fd(l, sv[0]);
    loop_fire_fd(l, sv[0], CAIRN_EV_READ);
    assert_int_equal(s.calls, 1);
    close(sv[0]);
    close(sv[1]);
    loop_free(l);
}

static void test_backend_name(void **state)
{
    (void)state;
    assert_string_equal(loop_backend_name(), CAIRN_LOOP_NAME);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_and_write_interest),
        cmocka_unit_test(test_delete_during_dispatch),
        cmocka_unit_test(test_timers_drive_run),
        cmocka_unit_test(test_iteration_end),
        cmocka_unit_test(test_hangup_without_interest),
        cmocka_unit_test(test_fairness),
        cmocka_unit_test(test_fire_fd),
        cmocka_unit_test(test_backend_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
