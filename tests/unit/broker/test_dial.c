/*
 * test_dial.c — outgoing connections (broker/net/dial.c) on a real loop: a numeric address, a name
 * looked up by the resolver thread, a refused port, every address of a name tried in turn, a
 * dial cancelled while its lookup runs (the thread finishes alone), and the callback never run
 * from inside dial_start.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "dial.h"
#include "loop.h"

struct result {
    int calls;
    int fd;
    char peer[80];
    char why[300];
};

static void on_dial(void *arg, int fd, const char *peer, const char *why)
{
    struct result *r = arg;

    r->calls++;
    r->fd = fd;
    snprintf(r->peer, sizeof(r->peer), "%s", peer);
    snprintf(r->why, sizeof(r->why), "%s", why);
}

/* A listening loopback socket; its port in *port. */
static int listen_any(uint16_t *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* A loopback port nobody listens on (bound, not listening: connect is refused). */
static int closed_port(uint16_t *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void run_until(struct loop *l, const struct result *r)
{
    for (int i = 0; i < 500 && r->calls == 0; i++)
        loop_run_once(l, 20);
}

static void test_numeric(void **state)
{
    char err[128];
    struct loop *l = loop_new(err, sizeof(err));
    struct result r = {0};
    uint16_t port;
    int lfd = listen_any(&port);
    char want[32];

    (void)state;
    assert_non_null(dial_start(l, "127.0.0.1", port, NULL, 5000, on_dial, &r));
    assert_int_equal(r.calls, 0); /* never from inside dial_start */
    run_until(l, &r);
    assert_int_equal(r.calls, 1);
    assert_true(r.fd >= 0);
    snprintf(want, sizeof(want), "127.0.0.1:%u", port);
    assert_string_equal(r.peer, want);
    close(r.fd);

    /* from a bind address */
    memset(&r, 0, sizeof(r));
    assert_non_null(dial_start(l, "127.0.0.1", port, "127.0.0.1", 5000, on_dial, &r));
    run_until(l, &r);
    assert_true(r.fd >= 0);
    close(r.fd);
    close(lfd);
    loop_free(l);
}

static void test_name(void **state)
{
    char err[128];
    struct loop *l = loop_new(err, sizeof(err));
    struct result r = {0};
    uint16_t port;
    int lfd = listen_any(&port);

    (void)state;
    /* "localhost" may give ::1 first, where nothing listens: the next address is tried */
    assert_non_null(dial_start(l, "localhost", port, NULL, 5000, on_dial, &r));
    run_until(l, &r);
    assert_int_equal(r.calls, 1);
    assert_true(r.fd >= 0);
    close(r.fd);
    close(lfd);

    memset(&r, 0, sizeof(r));
    assert_non_null(dial_start(l, "no-such-host.invalid", 1883, NULL, 5000, on_dial, &r));
    run_until(l, &r);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.fd, -1);
    assert_non_null(strstr(r.why, "name lookup of no-such-host.invalid"));
    loop_free(l);
}

static void test_refused(void **state)
{
    char err[128];
    struct loop *l = loop_new(err, sizeof(err));
    struct result r = {0};
    uint16_t port;
    int bfd = closed_port(&port);

    (void)state;
    assert_non_null(dial_start(l, "127.0.0.1", port, NULL, 5000, on_dial, &r));
    run_until(l, &r);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.fd, -1);
    assert_non_null(strstr(r.why, "Connection refused"));
    close(bfd);
    loop_free(l);
}

static void test_cancel(void **state)
{
    char err[128];
    struct loop *l = loop_new(err, sizeof(err));
    struct result r = {0};
    struct dial *d;

    (void)state;
    /* cancelled before it began, and after its lookup thread started */
    d = dial_start(l, "localhost", 1, NULL, 5000, on_dial, &r);
    dial_cancel(d);
    d = dial_start(l, "localhost", 1, NULL, 5000, on_dial, &r);
    loop_run_once(l, 0); /* the lookup starts */
    dial_cancel(d);
    for (int i = 0; i < 20; i++)
        loop_run_once(l, 5);
    assert_int_equal(r.calls, 0);
    loop_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numeric),
        cmocka_unit_test(test_name),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_cancel),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
