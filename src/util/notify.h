/*
 * The service manager's readiness protocol (sd_notify(3)): a datagram
 * "READY=1" to the Unix socket named by $NOTIFY_SOCKET, a path or, when the
 * name starts with '@', an abstract name. Written here rather than linked
 * from libsystemd: one datagram does not justify the library and the
 * libraries it brings into every VMM (docs/packaging.md).
 *
 * The socket is opened and connected before the sandbox, so the message
 * itself is one send(2) on a descriptor the main thread already holds.
 */
#ifndef BANYAN_UTIL_NOTIFY_H
#define BANYAN_UTIL_NOTIFY_H

/*
 * notify_open - read $NOTIFY_SOCKET, open a close-on-exec datagram socket
 * connected to it and unset the variable, so processes this one starts
 * (clones, helpers) never speak for it. Returns the descriptor, -ENOENT
 * when the variable is unset or empty (no service manager: nothing to do),
 * -EINVAL for a name that is neither absolute nor abstract or too long, or
 * -errno from socket/connect.
 */
int notify_open(void) __attribute__((warn_unused_result));

/*
 * notify_send - send @msg ("READY=1", "STOPPING=1", ...) as one datagram on
 * @fd from notify_open. Never blocks (MSG_DONTWAIT). Returns 0 or -errno;
 * a negative @fd is -EBADF.
 */
int notify_send(int fd, const char *msg) __attribute__((warn_unused_result));

#endif
