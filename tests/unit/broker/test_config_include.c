/*
 * test_config_include.c — include_dir (broker/ops/config_include.c): which files are read and in
 * which order (Mosquitto's), that each starts outside any listener block while the including
 * file keeps its own, that errors name the included file and its line, that the positions of
 * TLS and auth options map back to the right FILE:LINE (config_where), and that include_dir in
 * an included file is ignored, as Mosquitto ignores it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"

static char err[1024];
static char dir[64];

static void put(const char *name, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/cairn-test-include-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* "include_dir DIR" after head, then tail. */
static int parse_with(const char *head, const char *tail, struct config *c)
{
    char text[1024];

    snprintf(text, sizeof(text), "%sinclude_dir %s\n%s", head, dir, tail);
    err[0] = '\0';
    return config_parse("main.conf", text, c, err, sizeof(err));
}

/* Mosquitto's order: by letter case-insensitively, then by case; only names "X.conf". */
static void test_order(void **state)
{
    static const char *const names[] = {"b.conf", "B.conf",  "a.conf", "A.conf", "_z.conf",
                                        "Z.conf", "10.conf", "9.conf", "ab.conf"};
    static const unsigned want[] = {7, 8, 4, 3, 9, 2, 1, 6, 5}; /* ports, in the order read */
    struct config c;

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char text[64];
        snprintf(text, sizeof(text), "listener %zu\n", i + 1);
        put(names[i], text);
    }
    put(".conf", "listener 100\n");          /* no name before the extension: skipped */
    put("x.conf.bak", "listener 101\n");     /* not *.conf */
    put("notes.txt", "not a config file\n"); /* not *.conf */
    assert_int_equal(parse_with("", "", &c), 0);
    assert_int_equal(c.n_listeners, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < c.n_listeners; i++)
        if (c.listeners[i].port != want[i])
            fail_msg("listener %zu: port %u, want %u (%s)", i, c.listeners[i].port, want[i],
                     names[want[i] - 1]);
    config_cleanup(&c);
}

/*
 * An included file starts outside any block (its listener options go to the default listener),
 * and the including file carries on in its own block after include_dir.
 */
static void test_blocks(void **state)
{
    struct config c;

    (void)state;
    put("a.conf", "max_qos 0\nlistener 2000\nmax_qos 1\nsys_interval 7\n");
    put("b.conf", "mount_point x/\n"); /* no listener line in this file yet */
    assert_int_equal(parse_with("listener 1000\n", "mount_point m/\n", &c), -EINVAL);
    {
        char want[256];
        snprintf(want, sizeof(want), "%s/b.conf:1: mount_point: give it after the listener line",
                 dir);
        assert_non_null(strstr(err, want));
    }
    put("b.conf", "# nothing\n");
    assert_int_equal(parse_with("listener 1000\n", "mount_point m/\n", &c), 0);
    assert_int_equal(c.n_listeners, 3);
    assert_int_equal(c.listeners[0].port, 1000);
    assert_string_equal(c.listeners[0].mount_point, "m/"); /* main file, its block again */
    assert_int_equal(c.listeners[1].port, 1883);           /* a.conf's default listener */
    assert_null(c.listeners[1].bind_address);
    assert_int_equal(c.listeners[1].max_qos, 0);
    assert_int_equal(c.listeners[2].port, 2000);
    assert_int_equal(c.listeners[2].max_qos, 1);
    assert_int_equal(c.sys_interval, 7); /* what a file sets stays set */
    config_cleanup(&c);
}

/* Errors in an included file name it and its own line; positions map back (config_where). */
static void test_where(void **state)
{
    struct config c;
    char want[256], at[256];

    (void)state;
    put("a.conf", "\n# two\nsys_interval 1\nno_such 1\n");
    assert_int_equal(parse_with("listener 1\n", "", &c), -EINVAL);
    snprintf(want, sizeof(want), "%s/a.conf:4: unknown option 'no_such'", dir);
    assert_string_equal(err, want);

    put("a.conf", "\nlistener 8883\ncertfile /c.crt\n");
    put("b.conf", "password_file /pw\n");
    assert_int_equal(parse_with("listener 1\n\n", "acl_file /acl\nkeyfile /k\n", &c), 0);
    snprintf(want, sizeof(want), "%s/a.conf:3", dir);
    assert_string_equal(config_where(&c, c.listeners[1].sec.line.certfile, at, sizeof(at)), want);
    snprintf(want, sizeof(want), "%s/a.conf:2", dir);
    assert_string_equal(config_where(&c, c.listeners[1].line, at, sizeof(at)), want);
    snprintf(want, sizeof(want), "%s/b.conf:1", dir);
    assert_string_equal(config_where(&c, c.sec.line.password_file, at, sizeof(at)), want);
    assert_string_equal(config_where(&c, c.sec.line.acl_file, at, sizeof(at)), "main.conf:4");
    assert_string_equal(config_where(&c, c.listeners[0].sec.line.keyfile, at, sizeof(at)),
                        "main.conf:5"); /* the main file's block */
    assert_string_equal(config_where(&c, c.listeners[0].line, at, sizeof(at)), "main.conf:1");
    assert_string_equal(config_where(&c, 0, at, sizeof(at)), "main.conf");
    config_cleanup(&c);
}

static void test_errors(void **state)
{
    struct config c;
    char want[256];

    (void)state;
    err[0] = '\0';
    assert_int_equal(config_parse("m.conf", "include_dir /nonexistent/dir\n", &c, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "m.conf:1: include_dir: cannot read directory /nonexistent/dir: No "
                             "such file or directory");
    assert_int_equal(config_parse("m.conf", "include_dir\n", &c, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "m.conf:1: option 'include_dir' needs a value");

    put("a.conf", "sys_interval 1\n");
    assert_int_equal(mkdir(strcat(strcpy(want, dir), "/d.conf"), 0700), 0);
    assert_int_equal(parse_with("", "", &c), -EINVAL);
    snprintf(want, sizeof(want), "main.conf:1: include_dir: cannot read %s/d.conf: ", dir);
    assert_non_null(strstr(err, want));
    snprintf(want, sizeof(want), "%s/d.conf", dir);
    rmdir(want);

    /* refusals name the included file too, also those found after the last line */
    put("b.conf", "\ntopic a\n");
    assert_int_equal(parse_with("", "", &c), -EINVAL);
    snprintf(want, sizeof(want), "%s/b.conf:2: 'topic' is a bridge option", dir);
    assert_non_null(strstr(err, want));
    put("b.conf", "\nconnection br\n");
    assert_int_equal(parse_with("", "", &c), -EINVAL);
    snprintf(want, sizeof(want), "%s/b.conf:2: bridge 'br' has no address", dir);
    assert_non_null(strstr(err, want));
}

/* include_dir inside an included file: ignored, as Mosquitto does (it reads it in the main file
 * only); its directory is not read. */
static void test_nested_ignored(void **state)
{
    struct config c;

    (void)state;
    put("a.conf", "include_dir /nonexistent\nsys_interval 3\n");
    assert_int_equal(parse_with("", "", &c), 0);
    assert_int_equal(c.sys_interval, 3);
    config_cleanup(&c);
}

/* An empty directory, and a trailing slash. */
static void test_empty_and_slash(void **state)
{
    struct config c;
    char text[256];

    (void)state;
    assert_int_equal(parse_with("listener 5\n", "sys_interval 4\n", &c), 0);
    assert_int_equal(c.n_listeners, 1);
    assert_int_equal(c.sys_interval, 4);
    config_cleanup(&c);
    put("a.conf", "listener 6\n");
    snprintf(text, sizeof(text), "include_dir %s/\n", dir);
    assert_int_equal(config_parse("m.conf", text, &c, err, sizeof(err)), 0);
    assert_int_equal(c.listeners[0].port, 6);
    config_cleanup(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_where, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_slash, setup, teardown),
    };

    log_open(0, NULL, 0); /* the warning about a nested include_dir is not under test */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
