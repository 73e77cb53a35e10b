/*
 * log.h — Cairn's log: one line per event, "2026-11-23T18:00:00Z LEVEL text", written to every
 * configured destination (stdout, stderr, a file, syslog, the topic sink, or none) for the
 * levels log_type enables. log_timestamp false drops the timestamp; log_timestamp_format
 * replaces it with strftime() of that format in local time (as Mosquitto). syslog gets the
 * text alone (syslog stamps it itself), under the facility log_set_facility() chose.
 *
 * log_dest topic (Mosquitto's $SYS/broker/log/...): every line but debug ones is handed to the
 * sink set with log_set_sink() (sys.c), which must not log from inside the call.
 *
 * Callers put "client ADDR ID" in the text where a client is concerned. The log is process-wide
 * state (one broker per process): log_open() applies a config, log_reopen() reopens the file
 * after rotation (SIGHUP), log_close() releases it. Before log_open() lines go to stderr with
 * every level but debug enabled, so start-up errors are never lost.
 */
#ifndef CAIRN_LOG_H
#define CAIRN_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum { CAIRN_LOG_ERR, CAIRN_LOG_WARNING, CAIRN_LOG_NOTICE, CAIRN_LOG_INFO, CAIRN_LOG_DEBUG };

/* log_type bits, one per level (config.h stores a mask of these). */
#define CAIRN_LOG_MASK(level) (1u << (level))
#define CAIRN_LOG_MASK_ALL    0x1fu
#define CAIRN_LOG_MASK_DEFAULT                                                                     \
    (CAIRN_LOG_MASK(CAIRN_LOG_ERR) | CAIRN_LOG_MASK(CAIRN_LOG_WARNING) |                           \
     CAIRN_LOG_MASK(CAIRN_LOG_NOTICE) | CAIRN_LOG_MASK(CAIRN_LOG_INFO))

/* log_dest bits */
#define CAIRN_LOG_DEST_STDOUT 0x1u
#define CAIRN_LOG_DEST_STDERR 0x2u
#define CAIRN_LOG_DEST_FILE   0x4u
#define CAIRN_LOG_DEST_SYSLOG 0x8u
#define CAIRN_LOG_DEST_TOPIC  0x10u

void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vwrite(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Is a line of this level written anywhere? Lets callers skip building costly text. */
bool log_enabled(int level);

/*
 * Use these destinations (CAIRN_LOG_DEST_* mask; file = path, borrowed for the call, copied)
 * and levels (CAIRN_LOG_MASK bits). 0, or -errno when the file cannot be opened (the previous
 * setting is kept then).
 */
int log_open(unsigned dest, const char *file, unsigned type_mask);
/*
 * The line format: timestamp false: none; fmt NULL: ISO 8601 UTC; else strftime(fmt) in local
 * time (copied). 0 or -ENOMEM (the previous format is kept).
 */
int log_set_format(bool timestamp, const char *fmt);
/* The syslog facility (LOG_DAEMON until set), applied by the next log_open(). */
void log_set_facility(int facility);
/* The log_dest topic sink (NULL: none): called with each line but debug, without newline. */
void log_set_sink(void (*fn)(void *arg, int level, const char *line, size_t len), void *arg);
/* The log file's descriptor, -1 without one (user.c hands the file over before dropping root). */
int log_file_fd(void);

/* Reopen the log file (after logrotate moved it). 0 or -errno (the old file is kept then). */
int log_reopen(void);
/* Back to the start-up state: stderr only. */
void log_close(void);

/* Do lines go to stderr (so a caller need not print an error there twice)? */
bool log_to_stderr(void);

/* "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG" */
const char *log_level_name(int level);

#endif
