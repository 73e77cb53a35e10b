/*
 * log.c — timestamped lines to stdout, stderr, a file and/or syslog.
 *
 * Process-wide state, written only from the loop thread. Each line is formatted once into a
 * stack buffer and written with one write(2) per destination so lines from a crash are never
 * half in a stdio buffer; the file is opened O_APPEND so a rotated file is picked up by
 * log_reopen() without losing lines to a stale offset.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static struct {
    unsigned dest;
    unsigned mask;
    int fd; /* the log file, -1 when none */
    char *path;
    bool no_timestamp;
    char *ts_fmt; /* NULL: ISO 8601 UTC */
    int facility;
    bool syslog_open;
    void (*sink)(void *arg, int level, const char *line, size_t len);
    void *sink_arg;
} log_state = {CAIRN_LOG_DEST_STDERR,
               CAIRN_LOG_MASK_DEFAULT,
               -1,
               NULL,
               false,
               NULL,
               LOG_DAEMON,
               false,
               NULL,
               NULL};

static const char *const log_names[] = {"ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"};

const char *log_level_name(int level)
{
    if (level < CAIRN_LOG_ERR || level > CAIRN_LOG_DEBUG)
        return "?";
    return log_names[level];
}

bool log_enabled(int level)
{
    if (level < CAIRN_LOG_ERR || level > CAIRN_LOG_DEBUG)
        return false;
    return log_state.dest != 0 && (log_state.mask & CAIRN_LOG_MASK(level)) != 0;
}

bool log_to_stderr(void)
{
    return (log_state.dest & CAIRN_LOG_DEST_STDERR) &&
           (log_state.mask & CAIRN_LOG_MASK(CAIRN_LOG_ERR));
}

static void log_put(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        p += n;
        len -= (size_t)n;
    }
}

static int log_syslog_priority(int level)
{
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG};
    return prio[level];
}

/* The timestamp and its space into line (cap bytes): its length. */
static size_t log_stamp(char *line, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    size_t n = 0;

    if (log_state.no_timestamp)
        goto out;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (log_state.ts_fmt) {
        localtime_r(&ts.tv_sec, &tm);
        /* the user's format, as Mosquitto's log_timestamp_format */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        n = strftime(line, cap - 1, log_state.ts_fmt, &tm);
#pragma GCC diagnostic pop
        if (n == 0) /* too long, or a format that prints nothing: as Mosquitto */
            n = (size_t)snprintf(line, cap - 1, "Time error");
    } else {
        gmtime_r(&ts.tv_sec, &tm);
        n = strftime(line, cap - 1, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    line[n++] = ' ';
out:
    return n;
}

void log_vwrite(int level, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    size_t head;
    size_t len;
    int n;

    if (!log_enabled(level))
        return;
    head = log_stamp(line, sizeof(line) / 2);
    head += (size_t)snprintf(line + head, sizeof(line) - head, "%s ", log_level_name(level));
    n = vsnprintf(line + head, sizeof(line) - head, fmt, ap);
    if (n < 0)
        n = 0;
    len = head + (size_t)n;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* truncated: keep the newline */
    line[len++] = '\n';
    line[len] = '\0';
    if (log_state.dest & CAIRN_LOG_DEST_STDOUT)
        log_put(STDOUT_FILENO, line, len);
    if (log_state.dest & CAIRN_LOG_DEST_STDERR)
        log_put(STDERR_FILENO, line, len);
    if ((log_state.dest & CAIRN_LOG_DEST_FILE) && log_state.fd >= 0)
        log_put(log_state.fd, line, len);
    if (log_state.dest & CAIRN_LOG_DEST_SYSLOG)
        syslog(log_syslog_priority(level), "%s", line + head);
    if ((log_state.dest & CAIRN_LOG_DEST_TOPIC) && log_state.sink && level != CAIRN_LOG_DEBUG)
        log_state.sink(log_state.sink_arg, level, line, len - 1);
}

void log_write(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(level, fmt, ap);
    va_end(ap);
}

static int log_open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

    return fd < 0 ? -errno : fd;
}

int log_open(unsigned dest, const char *file, unsigned type_mask)
{
    char *path = NULL;
    int fd = -1;
    int rc = 0;

    if ((dest & CAIRN_LOG_DEST_FILE) && file) {
        path = strdup(file);
        if (!path) {
            rc = -ENOMEM;
            goto out;
        }
        fd = log_open_file(file);
        if (fd < 0) {
            rc = fd;
            free(path);
            goto out;
        }
    }
    if (log_state.fd >= 0)
        close(log_state.fd);
    free(log_state.path);
    if (dest & CAIRN_LOG_DEST_SYSLOG) {
        /* again on every open: a reload may have changed the facility */
        openlog("cairn", LOG_PID, log_state.facility);
        log_state.syslog_open = true;
    }
    log_state.fd = fd;
    log_state.path = path;
    log_state.dest = dest;
    log_state.mask = type_mask;
out:
    return rc;
}

int log_set_format(bool timestamp, const char *fmt)
{
    char *f = NULL;
    int rc = 0;

    if (fmt && !(f = strdup(fmt))) {
        rc = -ENOMEM;
        goto out;
    }
    free(log_state.ts_fmt);
    log_state.ts_fmt = f;
    log_state.no_timestamp = !timestamp;
out:
    return rc;
}

void log_set_facility(int facility)
{
    log_state.facility = facility;
}

void log_set_sink(void (*fn)(void *arg, int level, const char *line, size_t len), void *arg)
{
    log_state.sink = fn;
    log_state.sink_arg = arg;
}

int log_file_fd(void)
{
    return log_state.fd;
}

int log_reopen(void)
{
    int rc = 0;
    int fd;

    if (!log_state.path)
        goto out;
    fd = log_open_file(log_state.path);
    if (fd < 0) {
        rc = fd;
        goto out;
    }
    if (log_state.fd >= 0)
        close(log_state.fd);
    log_state.fd = fd;
out:
    return rc;
}

void log_close(void)
{
    if (log_state.fd >= 0)
        close(log_state.fd);
    free(log_state.path);
    free(log_state.ts_fmt);
    if (log_state.syslog_open)
        closelog();
    log_state.fd = -1;
    log_state.path = NULL;
    log_state.ts_fmt = NULL;
    log_state.no_timestamp = false;
    log_state.facility = LOG_DAEMON;
    log_state.syslog_open = false;
    log_state.sink = NULL;
    log_state.sink_arg = NULL;
    log_state.dest = CAIRN_LOG_DEST_STDERR;
    log_state.mask = CAIRN_LOG_MASK_DEFAULT;
}
