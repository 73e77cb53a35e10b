/*
 * server.h — the process around the broker: config, log, loop, listeners, connections,
 * signals and the pid file. main.c parses the command line and calls server_run().
 *
 * Signals arrive through a self-pipe watched by the loop (so both backends see them the same
 * way): SIGTERM/SIGINT stop accepting, let the broker make its final commit, close every
 * connection (flushing what is queued, up to a short linger) and return 0; SIGHUP re-reads
 * the config file, reopens the log file and calls broker_reload() — a file that fails to load
 * (or that changes the listeners, which needs a restart) leaves the running config in place
 * and logs why. SIGPIPE is ignored. SIGUSR1 (a backup of the store) and SIGUSR2 (reopen the log
 * file), and the readiness message to a service manager, are service.h's.
 *
 * Start-up order: the config is loaded and checked whole first (TLS contexts, password and ACL
 * files, interfaces, the user to become: server_validate, what `cairn -t` runs), so a bad file
 * is refused before anything is done; then the log, the store, the pid file; the listeners are
 * bound as root, the user (user.h) takes over, and only then do they listen.
 */
#ifndef CAIRN_SERVER_H
#define CAIRN_SERVER_H

#include <stdbool.h>

/*
 * Run the broker until SIGTERM/SIGINT. config_path NULL: the defaults (127.0.0.1:1883, data
 * in ./cairn-data). Returns the process exit status: 0 after a clean stop, 1 when start-up
 * fails (the reason is printed on stderr and logged).
 */
int server_run(const char *config_path);

/* `cairn -t`: load and check the file; prints "FILE: configuration OK" or the error. 0 or 1. */
int server_check_config(const char *config_path);

#endif
