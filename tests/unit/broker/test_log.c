/*
 * test_log.c — log lines: the "YYYY-MM-DDTHH:MM:SSZ LEVEL text" shape, filtering by log_type,
 * the file destination, reopening after rotation, long lines, log_timestamp(_format), and the
 * log_dest topic sink.
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

/* log_timestamp false: no timestamp; log_timestamp_format: strftime() of it, local time. */
static void test_timestamp_options(void **state)
{
    regex_t re;
    char *text;

    (void)state;
    unlink(path);
    assert_int_equal(log_set_format(false, NULL), 0);
    assert_int_equal(log_open(CAIRN_LOG_DEST_FILE, path, CAIRN_LOG_MASK_ALL), 0);
    log_write(CAIRN_LOG_NOTICE, "plain");
    assert_int_equal(log_set_format(true, "[%Y/%m/%d %H:%M:%S]"), 0);
    log_write(CAIRN_LOG_NOTICE, "custom");
    assert_int_equal(log_set_format(true, "%%"), 0);
    log_write(CAIRN_LOG_NOTICE, "percent");
    assert_int_equal(log_set_format(true, ""), 0); /* prints nothing: Mosquitto's text */
    log_write(CAIRN_LOG_NOTICE, "empty");
    assert_int_equal(log_set_format(true, NULL), 0);
    log_write(CAIRN_LOG_NOTICE, "default");
    text = slurp(path);
    assert_int_equal(regcomp(&re,
                             "^NOTICE plain\n"
                             "\\[[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\] NOTICE "
                             "custom\n"
                             "% NOTICE percent\n"
                             "Time error NOTICE empty\n"
                             "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z NOTICE default\n$",
                             REG_EXTENDED),
                     0);
    if (regexec(&re, text, 0, NULL, 0) != 0)
        fail_msg("log: %s", text);
    regfree(&re);
}

static char sunk[4096];
static int sunk_lines;

static void sink(void *arg, int level, const char *line, size_t len)
{
    size_t n = strlen(sunk);

    assert_ptr_equal(arg, sunk);
    snprintf(sunk + n, sizeof(sunk) - n, "%d|%.*s\n", level, (int)len, line);
    sunk_lines++;
}

/* log_dest topic: every line but debug goes to the sink, as written to files, no newline. */
static void test_topic_sink(void **state)
{
    (void)state;
    sunk[0] = '\0';
    sunk_lines = 0;
    log_set_sink(sink, sunk);
    assert_int_equal(log_set_format(false, NULL), 0);
    assert_int_equal(log_open(CAIRN_LOG_DEST_TOPIC, NULL, CAIRN_LOG_MASK_ALL), 0);
    assert_true(log_enabled(CAIRN_LOG_DEBUG));
    log_write(CAIRN_LOG_ERR, "e %d", 1);
    log_write(CAIRN_LOG_WARNING, "w");
    log_write(CAIRN_LOG_DEBUG, "d");
    log_write(CAIRN_LOG_INFO, "i");
    assert_int_equal(sunk_lines, 3);
    assert_string_equal(sunk, "0|ERROR e 1\n1|WARNING w\n3|INFO i\n");
    /* without the topic destination the sink hears nothing */
    assert_int_equal(log_open(CAIRN_LOG_DEST_FILE, path, CAIRN_LOG_MASK_ALL), 0);
    log_write(CAIRN_LOG_ERR, "file only");
    assert_int_equal(sunk_lines, 3);
    log_set_sink(NULL, NULL);
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
        cmocka_unit_test(test_timestamp_options),
        cmocka_unit_test(test_topic_sink),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
