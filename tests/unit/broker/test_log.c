/*
 * test_log.c — log lines: the "YYYY-MM-DDTHH:MM:SSZ LEVEL text" shape, filtering by log_type,
 * the file destination, reopening after rotation, long lines.
 */
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

static char dir[] = "/tmp/cairn-test-log-XXXXXX";
static char path[256];

static char *slurp(const char *p)
{
    static char buf[16384];
    FILE *f = fopen(p, "r");
    size_t n;

    if (!f)
        return NULL;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/cairn.log", dir);
    return 0;
}

static int teardown(void **state)
{
    char rotated[300];

    (void)state;
    log_close();
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    unlink(path);
    unlink(rotated);
    rmdir(dir);
    return 0;
}

static void test_line_format(void **state)
{
    regex_t re;
    char *text;

    (void)state;
    unlink(path);
    assert_int_equal(log_open(CAIRN_LOG_DEST_FILE, path, CAIRN_LOG_MASK_ALL), 0);
    log_write(CAIRN_LOG_NOTICE, "client %s %s connected", "127.0.0.1:5000", "dev-1");
    log_write(CAIRN_LOG_ERR, "bad %d", 42);
    text = slurp(path);
    assert_non_null(text);
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z NOTICE "
                             "client 127\\.0\\.0\\.1:5000 dev-1 connected\n"
                             "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z ERROR "
                             "bad 42\n$",
                             REG_EXTENDED),
                     0);
    assert_int_equal(regexec(&re, text, 0, NULL, 0), 0);
    regfree(&re);
}

static void test_filter(void **state)
{
    char *text;

    (void)state;
    unlink(path);
    assert_int_equal(log_open(CAIRN_LOG_DEST_FILE, path,
                              CAIRN_LOG_MASK(CAIRN_LOG_ERR) | CAIRN_LOG_MASK(CAIRN_LOG_DEBUG)),
                     0);
    assert_true(log_enabled(CAIRN_LOG_ERR));
    assert_false(log_enabled(CAIRN_LOG_WARNING));
    assert_false(log_enabled(CAIRN_LOG_INFO));
    assert_true(log_enabled(CAIRN_LOG_DEBUG));
    assert_false(log_enabled(99));
    log_write(CAIRN_LOG_WARNING, "dropped warning");
    log_write(CAIRN_LOG_INFO, "dropped info");
    log_write(CAIRN_LOG_DEBUG, "kept debug");
    text = slurp(path);
    assert_null(strstr(text, "dropped"));
    assert_non_null(strstr(text, " DEBUG kept debug\n"));
    /* no destination: nothing is enabled */
    assert_int_equal(log_open(0, NULL, CAIRN_LOG_MASK_ALL), 0);
    assert_false(log_enabled(CAIRN_LOG_ERR));
}

static void test_reopen_after_rotation(void **state)
{
    char rotated[300];
    char *text;

    (void)state;
    unlink(path);
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    assert_int_equal(log_open(CAIRN_LOG_DEST_FILE, path, CAIRN_LOG_MASK_ALL), 0);
    log_write(CAIRN_LOG_INFO, "before rotation");
    assert_int_equal(rename(path, rotated), 0);
    log_write(CAIRN_LOG_INFO, "still old file");
    assert_int_equal(log_reopen(), 0);
    log_write(CAIRN_LOG_INFO, "after reopen");
    text = slurp(rotated);
    assert_non_null(strstr(text, "before rotation"));
    assert_non_null(strstr(text, "still old file"));
    assert_null(strstr(text, "after reopen"));
    text = slurp(path);
    assert_non_null(text);
    assert_non_null(strstr(text, "after reopen"));
}

static void test_open_failure_keeps_old(void **state)
{
    char *text;

    (void)state;
    unlink(path);
    assert_int_equal(log_open(CAIRN_LOG_DEST_FILE, path, CAIRN_LOG_MASK_ALL), 0);
    assert_int_equal(log_open(CAIRN_LOG_DEST_FILE, "/nonexistent-dir/x.log", CAIRN_LOG_MASK_ALL),
                     -ENOENT);
    log_write(CAIRN_LOG_INFO, "old file still used");
    text = slurp(path);
    assert_non_null(strstr(text, "old file still used"));
}

static void test_long_line(void **state)
{
    char big[5000];
    char *text;
    size_t len;

    (void)state;
    unlink(path);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(log_open(CAIRN_LOG_DEST_FILE, path, CAIRN_LOG_MASK_ALL), 0);
    log_write(CAIRN_LOG_INFO, "%s", big);
    text = slurp(path);
    len = strlen(text);
    assert_true(len > 1000 && len < sizeof(big));
    assert_int_equal(text[len - 1], '\n');
    assert_ptr_equal(strchr(text, '\n'), text + len - 1); /* one line, cut, newline kept */
}

static void test_level_names(void **state)
{
    (void)state;
    assert_string_equal(log_level_name(CAIRN_LOG_ERR), "ERROR");
    assert_string_equal(log_level_name(CAIRN_LOG_WARNING), "WARNING");
    assert_string_equal(log_level_name(CAIRN_LOG_NOTICE), "NOTICE");
    assert_string_equal(log_level_name(CAIRN_LOG_INFO), "INFO");
    assert_string_equal(log_level_name(CAIRN_LOG_DEBUG), "DEBUG");
    assert_string_equal(log_level_name(7), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_format),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_reopen_after_rotation),
        cmocka_unit_test(test_open_failure_keeps_old),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_level_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
