/*
 * harness_conf.h — for the tests of configurations brought from Mosquitto (45_mosquitto_conf,
 * 46_debian_conf, 47_mosquitto_options): files in a temp dir, `cairn -t`, and a Cairn started on
 * a config the test wrote itself (not the harness's broker_start), waited for on its port.
 *
 * A broker started here writes its output to a pipe the test reads only when it asks
 * (hc_output): give it a log_dest file, or little to say, so the pipe never fills.
 */
#ifndef CAIRN_HARNESS_CONF_H
#define CAIRN_HARNESS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "harness.h"

/* Mosquitto 2.0's annotated example config, as Debian's mosquitto package installs it. */
#define HC_MOSQUITTO_EXAMPLES "/usr/share/doc/mosquitto/examples"
/* RFC 7919's ffdhe2048 group, as `openssl dhparam` writes DH parameters (dhparamfile). */
extern const char hc_dhparams_pem[];

/* A fresh temp dir "/tmp/cairn-itest-NAME-XXXXXX" into dir (cap bytes). 0 or -1. */
int hc_mkdtemp(char *dir, size_t cap, const char *name);
/* Remove dir and everything in it (not when the case failed: it is kept, and said so). */
void hc_rmtree(const char *dir);
/* Write text to dir/name; its path into path (cap bytes, may be NULL). 0 or -1. */
int hc_write(const char *dir, const char *name, const char *text, char *path, size_t cap);
/* `cairn -t -c path`: its exit code (-1: timeout), the output in *out (malloc'd). */
int hc_check(const char *path, char **out);

/* A Cairn started by hc_start. */
struct hc_broker {
    struct proc p;
    int port;
};
/*
 * Start `cairn -c conf` and wait until 127.0.0.1:port accepts a connection. 0, or -1 (with the
 * output noted) when it exits first or does not accept within the start timeout.
 */
int hc_start(struct hc_broker *b, const char *conf, int port);
/* SIGTERM and wait for the exit: 0 when it exited with status 0. */
int hc_stop(struct hc_broker *b);
/* Kill if running; the output is noted when the case failed. */
void hc_free(struct hc_broker *b);
/* Everything the broker printed so far (its stdout and stderr). Borrowed. */
const char *hc_output(struct hc_broker *b);
/* The uid its /proc/PID/status shows (real, effective, saved, fs all equal), or -1. */
long hc_uid(const struct hc_broker *b);

/* Is the test running as root? */
bool hc_root(void);

#endif
