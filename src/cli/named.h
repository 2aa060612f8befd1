/*
 * Named VMs: each one's files live in a runtime directory of its own
 * (docs/operations.md), a layout other tools rely on:
 *
 *   ROOT/NAME/api.sock      the API socket (a link to --api-socket's path when given)
 *   ROOT/NAME/console.sock  the serial console (vmm/console_sock.h)
 *   ROOT/NAME/vm.log        the console's output and the VMM's log
 *   ROOT/NAME/pid           the VMM's pid, locked (flock) while it runs
 *
 * ROOT is /run/banyan for root, $XDG_RUNTIME_DIR/banyan otherwise, and
 * /tmp/banyan-UID without XDG_RUNTIME_DIR; BANYAN_RUNTIME_DIR overrides it.
 */
#ifndef BANYAN_CLI_NAMED_H
#define BANYAN_CLI_NAMED_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define NAMED_MAX     64 /* characters in a name */
#define NAMED_PATH    4096
#define NAMED_API     "api.sock"
#define NAMED_CONSOLE "console.sock"
#define NAMED_LOG     "vm.log"
#define NAMED_PID     "pid"

/*
 * named_check - 0 when @name is a valid VM name: 1..64 characters of
 * [A-Za-z0-9_.-], the first a letter or digit (so never "." or ".." and
 * never a slash: it is one path component). -EINVAL otherwise.
 */
int named_check(const char *name);

/*
 * named_root_for - the runtime root for @uid given $XDG_RUNTIME_DIR @xdg
 * (NULL or "" when unset) and $BANYAN_RUNTIME_DIR @override (likewise),
 * into @buf. 0, or -ENAMETOOLONG. Touches nothing on disk.
 */
int named_root_for(uid_t uid, const char *xdg, const char *override, char *buf, size_t size);

/* named_root - named_root_for this process's uid and environment. */
int named_root(char *buf, size_t size);

/*
 * named_path - ROOT/@name/@file (@file NULL: the directory) into @buf.
 * 0, -EINVAL (a bad name) or -ENAMETOOLONG.
 */
int named_path(const char *name, const char *file, char *buf, size_t size);

/*
 * named_claim - make ROOT/@name (mode 0700; ROOT too) and take its pid
 * file's lock for this process: the name is then ours until the process
 * ends or named_release. Stale sockets of an earlier, dead VMM are
 * removed (and a jailed VMM's links, vm.log's included) and the pid file
 * holds getpid(). Returns the lock's fd (close-on-exec),
 * -EBUSY when a live VMM holds the name, -EINVAL for a bad name, -EPERM
 * when ROOT or ROOT/@name is not a directory of this user's that only it
 * can write, -errno.
 */
int named_claim(const char *name) __attribute__((warn_unused_result));

/*
 * named_set_pid - write @pid into the pid file @fd from named_claim (a
 * jailed VMM's, as the host sees it). 0 or -errno.
 */
int named_set_pid(int fd, pid_t pid) __attribute__((warn_unused_result));

/*
 * named_release - remove the sockets and the pid file of @name (vm.log
 * stays, for banyan logs) and drop the lock @fd. Never fails.
 */
void named_release(const char *name, int fd);

/*
 * named_alive - true when a VMM holds @name: its pid file is locked and
 * names a live process, whose pid goes to *@pid. False otherwise (no pid
 * file, or a dead VMM's: see named_clean).
 */
bool named_alive(const char *name, pid_t *pid);

/*
 * named_stale - true when @name has a pid file no live VMM holds (the VMM
 * was killed). named_clean removes that pid file and the sockets, under
 * the lock, so a VMM starting meanwhile is never disturbed.
 */
bool named_stale(const char *name);
void named_clean(const char *name);

/*
 * named_resolve - an O_PATH descriptor (close-on-exec) of @path, found by
 * walking it one component at a time with openat(O_PATH | O_NOFOLLOW). A
 * symbolic link is followed only when it and the directory holding it
 * belong to root or to this user and nobody else can write that directory
 * (or it is sticky): the host's entry ROOT/NAME of a jailed VM links into
 * the jail's root that way. A link anywhere else, one a jail's user or
 * any other user could have put there, ends the walk with -ELOOP (so does
 * a seventeenth link). @type: S_IFSOCK or S_IFREG that the file must be
 * (-ENOTSOCK, -EINVAL otherwise), 0 for any. -errno of the walk otherwise.
 * Never opens the file itself: a FIFO or a device is never touched.
 */
int named_resolve(const char *path, mode_t type) __attribute__((warn_unused_result));

/*
 * named_sock_path - named_resolve(@path, S_IFSOCK) and, into @buf, a path
 * that reaches that very socket (/proc/self/fd/N) for connect() or
 * libcurl. Returns the descriptor, to close once connected, or -errno.
 */
int named_sock_path(const char *path, char *buf, size_t size) __attribute__((warn_unused_result));

/* named_connect - a stream socket connected to @path (named_sock_path's rule), or -errno. */
int named_connect(const char *path) __attribute__((warn_unused_result));

/* named_open - the regular file @path (named_resolve's rule) opened read-only, or -errno. */
int named_open(const char *path) __attribute__((warn_unused_result));

/* named_strerror - @err (-errno) of the functions above, the refused link explained. */
const char *named_strerror(int err);

#endif
