/*
 * test_notify.c — sd_notify's datagram: the addresses $NOTIFY_SOCKET may hold (a path, an
 * abstract name after '@', and what is refused), a datagram received whole on both kinds of
 * socket, and nothing done without the variable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "notify.h"

static void test_address_path(void **state)
{
    struct sockaddr_un sa;
    socklen_t len = 0;

    assert_int_equal(notify_address("/run/systemd/notify", &sa, &len), 0);
    assert_int_equal(sa.sun_family, AF_UNIX);
    assert_string_equal(sa.sun_path, "/run/systemd/notify");
    assert_int_equal(len,
                     offsetof(struct sockaddr_un, sun_path) + strlen("/run/systemd/notify") + 1);
}

static void test_address_abstract(void **state)
{
    struct sockaddr_un sa;
    socklen_t len = 0;

    assert_int_equal(notify_address("@cairn/notify", &sa, &len), 0);
    assert_int_equal(sa.sun_path[0], '\0');
    assert_memory_equal(sa.sun_path + 1, "cairn/notify", strlen("cairn/notify"));
    /* no NUL counted after an abstract name: its length is part of the address */
    assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + strlen("@cairn/notify"));
}

static void test_address_refused(void **state)
{
    struct sockaddr_un sa;
    socklen_t len = 0;
    char longname[sizeof(sa.sun_path) + 2];

    assert_int_equal(notify_address("", &sa, &len), -EINVAL);
    assert_int_equal(notify_address(NULL, &sa, &len), -EINVAL);
    assert_int_equal(notify_address("@", &sa, &len), -EINVAL);
    assert_int_equal(notify_address("vsock:2:1234", &sa, &len), -EAFNOSUPPORT);
    assert_int_equal(notify_address("relative/path", &sa, &len), -EAFNOSUPPORT);
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    longname[0] = '/';
    assert_int_equal(notify_address(longname, &sa, &len), -ENAMETOOLONG);
    longname[0] = '@';
    assert_int_equal(notify_address(longname, &sa, &len), -ENAMETOOLONG);
    /* the longest of each that fits */
    longname[sizeof(sa.sun_path)] = '\0'; /* '@' + 107 bytes: '\0' + 107 */
    assert_int_equal(notify_address(longname, &sa, &len), 0);
    longname[0] = '/';
    longname[sizeof(sa.sun_path) - 1] = '\0'; /* 107 bytes and the NUL */
    assert_int_equal(notify_address(longname, &sa, &len), 0);
}

/* Bind a datagram socket at name (a notify address), send through notify_send, read it back. */
static void round_trip(const char *name)
{
    struct sockaddr_un sa;
    socklen_t len;
    char buf[128];
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ssize_t n;

    assert_true(fd >= 0);
    assert_int_equal(notify_address(name, &sa, &len), 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
    assert_int_equal(notify_send("READY=1\nSTATUS=Serving"), 1);
    n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    assert_int_equal(n, strlen("READY=1\nSTATUS=Serving"));
    buf[n] = '\0';
    assert_string_equal(buf, "READY=1\nSTATUS=Serving");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

static void test_send_path(void **state)
{
    char dir[] = "/tmp/cairn-notify-XXXXXX";
    char path[64];

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/notify", dir);
    round_trip(path);
    unlink(path);
    rmdir(dir);
}

static void test_send_abstract(void **state)
{
    char name[64];

    snprintf(name, sizeof(name), "@cairn-test-notify-%ld", (long)getpid());
    round_trip(name);
}

static void test_no_socket(void **state)
{
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(notify_send("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(notify_send("READY=1"), 0);
    /* nobody listening there: an error to log, never a crash or SIGPIPE */
    setenv("NOTIFY_SOCKET", "/nonexistent/cairn-notify", 1);
    assert_int_equal(notify_send("READY=1"), -ENOENT);
    setenv("NOTIFY_SOCKET", "vsock:2:1", 1);
    assert_int_equal(notify_send("READY=1"), -EAFNOSUPPORT);
    unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_path),    cmocka_unit_test(test_address_abstract),
        cmocka_unit_test(test_address_refused), cmocka_unit_test(test_send_path),
        cmocka_unit_test(test_send_abstract),   cmocka_unit_test(test_no_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
