/*
 * service.h — what a service manager and an operator ask of a running broker beyond the start,
 * SIGHUP and SIGTERM that server.c handles:
 *
 *   readiness  "READY=1" to $NOTIFY_SOCKET (systemd Type=notify, notify.h) once the listeners
 *              are bound and the store restored — service_start() is the last step of start-up —
 *              and "STOPPING=1" as the broker stops;
 *   SIGUSR1    a consistent copy of the running store into persistence_location/backup
 *              (backup.h), as Mosquitto's SIGUSR1 writes its database;
 *   SIGUSR2    reopen the log file, for logrotate: only that, so a rotation never depends on
 *              the configuration file parsing (SIGHUP reopens it too, after a reload that works).
 *
 * The two signals come through a self-pipe of this module's own, watched by the loop, so their
 * work runs on the loop thread like everything else. Process-wide state (one broker per process).
 */
#ifndef CAIRN_SERVICE_H
#define CAIRN_SERVICE_H

#include <stddef.h>

struct broker;
struct loop;

/*
 * Hold SIGUSR1 and SIGUSR2 pending (blocked) from the first steps of start-up, so one sent
 * while the broker starts is served once it runs rather than ending it by its default action;
 * service_start() releases them (so does server.c's signal cleanup after a failed start).
 */
void service_signals_hold(void);
void service_signals_release(void);
/*
 * Handle SIGUSR1 and SIGUSR2 from now on (those sent during start-up included) and tell the service
 * manager the broker is ready. Borrows l and b until service_stop(). 0, or a negative code with err
 * set.
 */
int service_start(struct loop *l, struct broker *b, char *err, size_t errlen);
/*
 * Before the broker is freed: "STOPPING=1" (when "READY=1" went out), cancel a running backup,
 * stop watching the signals (ignored from now on, so a late one cannot turn a clean exit into a
 * death by signal). Does nothing when service_start() did not run.
 */
void service_stop(void);

#endif
