/*
 * dial.h — an outgoing TCP connection made without holding the loop (a bridge's, bridge.h).
 *
 * A numeric address is used at once; a name is looked up by a thread of its own (getaddrinfo
 * blocks, and the loop must not: a DNS server that takes 30 s to time out would stop every
 * client for as long), which hands the answer back through a pipe the loop watches. Then each
 * address the lookup gave is tried in turn with a non-blocking connect() until one accepts, or
 * all refused, or timeout_ms passed. A thread never outlives its use of the lookup: a dial
 * cancelled while its thread still waits on the resolver lets the thread free the lookup when
 * it returns (the two share it by reference count).
 *
 * Ownership: dial_start returns a handle the caller owns until the callback runs (the dial frees
 * itself after calling it; the caller forgets its pointer there) or until dial_cancel. The
 * callback runs on the loop, never from inside dial_start. On success it is given the socket
 * (non-blocking, close-on-exec, TCP_NODELAY), which the callback owns.
 */
#ifndef CAIRN_DIAL_H
#define CAIRN_DIAL_H

#include <stdint.h>

struct dial;
struct loop;

/*
 * fd >= 0: connected, to peer ("addr:port", "[v6]:port"). fd -1: failed, why says why in words
 * (the lookup's or the last connect's error). Both strings are valid during the call only.
 */
typedef void (*dial_cb)(void *arg, int fd, const char *peer, const char *why);

/*
 * Connect to host:port, from bind_address (a numeric address; NULL: any), within timeout_ms in
 * all (0: none). NULL on ENOMEM (no callback then).
 */
struct dial *dial_start(struct loop *l, const char *host, uint16_t port, const char *bind_address,
                        uint32_t timeout_ms, dial_cb cb, void *arg);
/* Stop: closes what it opened; the callback never runs. NULL does nothing. */
void dial_cancel(struct dial *d);

#endif
