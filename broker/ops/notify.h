/*
 * notify.h — telling a service manager how the broker is doing: systemd's notification protocol
 * (sd_notify(3)), spoken directly rather than through libsystemd.
 *
 * The protocol is one datagram per state change, "VAR=VALUE" lines, sent on an AF_UNIX datagram
 * socket whose address the manager puts in $NOTIFY_SOCKET: a path ("/run/systemd/notify"), or an
 * abstract name written with a leading '@'. systemd's Type=notify waits for "READY=1" before it
 * counts the service as started; "STOPPING=1" says it is going down. Without $NOTIFY_SOCKET
 * (started by hand, by a test, by another init) nothing is sent and nothing fails.
 *
 * Stateless: each call reads the variable and opens, uses and closes its own socket, so it costs
 * nothing between the two or three times a run calls it.
 */
#ifndef CAIRN_NOTIFY_H
#define CAIRN_NOTIFY_H

#include <sys/socket.h>
#include <sys/un.h>

/*
 * Send state ("READY=1", "STOPPING=1", several lines joined by '\n') to $NOTIFY_SOCKET.
 * 1 when sent, 0 when there is no $NOTIFY_SOCKET, or -errno (-EAFNOSUPPORT for an address this
 * code does not speak, such as systemd's "vsock:..."; -ENAMETOOLONG).
 */
int notify_send(const char *state);

/*
 * The socket address of a $NOTIFY_SOCKET value: "/path" or "@abstract". 0 with *sa and *len
 * filled, or -EAFNOSUPPORT / -ENAMETOOLONG / -EINVAL (empty).
 */
int notify_address(const char *name, struct sockaddr_un *sa, socklen_t *len);

#endif
