/*
 * loop.h — the single-threaded readiness loop.
 *
 * Shape (after Redis's ae): a backend (loop_poll.c or loop_epoll.c, picked by the build) only
 * registers interest and waits; it copies what fired into one neutral array, and loop.c
 * dispatches from that array. One iteration is:
 *
 *     wait (timeout = next timer deadline) -> dispatch fd events -> run due timers
 *     -> the iteration-end hook (the broker commits its batch, then sends acks; conns flush
 *        and the deferred closes happen there)
 *
 * and repeats until loop_stop(). Callbacks run on the loop thread only; nothing here blocks but
 * the wait.
 *
 * Dispatch safety: an fd removed during dispatch gets no further callbacks in that iteration
 * (its slot is cleared, and the events that fired for it are skipped). Callers close fds only at
 * a safe point (iteration end), so an fd number is never reused within one iteration.
 *
 * Ownership: the loop never owns the fds it watches; it owns its timers (timer.h).
 */
#ifndef CAIRN_LOOP_H
#define CAIRN_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h" /* CAIRN_EV_READ, CAIRN_EV_WRITE */

struct loop;
struct timer;

/* Called with the CAIRN_EV_* events that fired (also CAIRN_EV_WRITE|READ on error/hang-up so
 * the owner finds the error on its next read or write). */
typedef void (*loop_fd_cb)(struct loop *l, int fd, int events, void *arg);

/* A new loop; NULL on failure with a reason in err. Free with loop_free(). */
struct loop *loop_new(char *err, size_t errlen);
/* Frees the loop and its pending timers (not the fds). NULL does nothing. */
void loop_free(struct loop *l);

/* Watch fd for events (CAIRN_EV_* mask, may be 0). 0 or -errno. One registration per fd. */
int loop_add_fd(struct loop *l, int fd, int events, loop_fd_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* Change the interest of a registered fd. Cheap when unchanged. 0 or -errno. */
int loop_mod_fd(struct loop *l, int fd, int events);
/* Stop watching fd (before closing it). Unknown fds are ignored. */
void loop_del_fd(struct loop *l, int fd);

/*
 * Run fd's callback now with events, as if they had fired, whatever its interest (a handshake
 * thread finished work for fd while the loop watched nothing on it). Unknown fds are ignored.
 * From a loop callback only.
 */
void loop_fire_fd(struct loop *l, int fd, int events);

/* Called once per iteration after events and timers (set once; NULL clears). */
void loop_set_iteration_end(struct loop *l, void (*cb)(void *arg), void *arg);

/* Run until loop_stop(). 0, or -errno when the wait itself fails. */
int loop_run(struct loop *l);
/* One iteration waiting at most max_wait_ms (-1: until an event or timer). Returns the number of
 * fd events dispatched, or -errno. For tests and tools that drive the loop themselves. */
int loop_run_once(struct loop *l, int max_wait_ms);
/* Make loop_run() return after the current iteration. Safe from any callback. */
void loop_stop(struct loop *l);
bool loop_stopping(const struct loop *l);

/* Milliseconds of CLOCK_MONOTONIC, sampled once per iteration (after the wait). */
uint64_t loop_now_ms(const struct loop *l);

/*
 * One-shot timer firing delay_ms from now; cb(arg) runs on the loop. Re-arm from the callback
 * for periodic work. The handle is valid until the callback starts or loop_timer_cancel();
 * NULL on ENOMEM.
 */
struct timer *loop_timer_add(struct loop *l, uint64_t delay_ms, void (*cb)(void *arg), void *arg)
    __attribute__((warn_unused_result));
/* Cancel a pending timer (frees it). NULL does nothing. Never call it on a timer that fired. */
void loop_timer_cancel(struct loop *l, struct timer *t);

/* "epoll" or "poll" */
const char *loop_backend_name(void);

/* ---- backend interface (loop.c <-> loop_poll.c / loop_epoll.c; not for other callers) ---- */

struct loop_backend;

struct loop_fired {
    int fd;
    int events; /* CAIRN_EV_* */
};

struct loop_backend *loop__backend_new(char *err, size_t errlen);
void loop__backend_free(struct loop_backend *b);
/* Interest of fd goes from old_events to new_events (0 = not registered). 0 or -errno. */
int loop__backend_set(struct loop_backend *b, int fd, int old_events, int new_events);
/* fd is going away (was registered with old_events). */
void loop__backend_del(struct loop_backend *b, int fd, int old_events);
/*
 * Wait up to timeout_ms (-1: forever) and copy up to max fired events into fired.
 * Returns the count (0 on timeout or EINTR), or -errno.
 */
int loop__backend_wait(struct loop_backend *b, int timeout_ms, struct loop_fired *fired, int max);
const char *loop__backend_name(void);

#endif
