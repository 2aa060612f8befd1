/*
 * Listening Unix sockets that Banyan serves at an operator's path (the API
 * socket, the vsock device's host socket). One rule for both: a path is
 * taken only when it is free or holds a socket nobody listens on (what a
 * killed VMM leaves behind); the socket appears already listening, mode
 * 0600 whatever the umask.
 */
#ifndef BANYAN_UTIL_USOCK_H
#define BANYAN_UTIL_USOCK_H

/*
 * usock_listen - a non-blocking, close-on-exec socket listening on @path
 * with @backlog. A stale socket at @path (connect refused, still the same
 * file when it is removed) is replaced; a live one (connected, or its
 * backlog full) and anything that is not a socket are left alone. The
 * socket is bound under a temporary name, made 0600 and listening, then
 * renamed to @path, so whoever sees the path can connect at once (a path
 * too long for the temporary name is bound in place). Returns the fd, or
 * -ENAMETOOLONG, -EADDRINUSE (live), -EEXIST (not a socket) or -errno.
 */
int usock_listen(const char *path, int backlog) __attribute__((warn_unused_result));

#endif
