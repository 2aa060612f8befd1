/*
 * Namespaces and processes: a private mount namespace and pivot_root, the
 * operator's network namespace, a PID namespace whose pid 1 is the VMM,
 * the daemon's fork, and the exec itself.
 */
#include "jail/jail.h"

#include "util/errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define fail_errno(err, ret, ...) errmsg_set(err, JAIL_ERR_LEN, ret, __VA_ARGS__)

/* The write end the daemon's parent waits on (-1: not daemonized); see jail_daemonize. */
static int ready_fd = -1;
/* /dev/null, opened before pivot_root for the daemon's stdio. */
static int null_fd = -1;
/* The PID namespace's pid 1, as the waiting parent sees it. */
static volatile pid_t child_pid;

int jail_unshare_mount(char *err)
{
	if (unshare(CLONE_NEWNS) < 0)
		return fail_errno(err, -errno, "unshare(CLONE_NEWNS): %s", strerror(errno));
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail_errno(err, -errno, "make / private: %s", strerror(errno));
	return 0;
}

int jail_pivot(const char *root, char *err)
{
	if (chdir(root) < 0)
		return fail_errno(err, -errno, "chdir %s: %s", root, strerror(errno));
	/* pivot_root(".", "."): the old root is stacked on the new one, then detached. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return fail_errno(err, -errno, "pivot_root %s: %s", root, strerror(errno));
	if (umount2(".", MNT_DETACH) < 0)
		return fail_errno(err, -errno, "detach the old root: %s", strerror(errno));
	if (chdir("/") < 0)
		return fail_errno(err, -errno, "chdir /: %s", strerror(errno));
	return 0;
}

int jail_join_netns(int fd, const char *path, char *err)
{
	if (setns(fd, CLONE_NEWNET) < 0)
		return fail_errno(err, -errno, "setns %s: %s", path, strerror(errno));
	close(fd);
	return 0;
}

static void forward_signal(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

/* The parent: forward the operator's signals, then report how pid 1 ended. */
static int wait_child(pid_t pid)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
	struct sigaction sa = {.sa_handler = forward_signal};
	int status;

	child_pid = pid;
	for (unsigned int i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 3;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

int jail_pid_ns_fork(void (*forked)(pid_t pid, void *arg), void *arg, char *err)
{
	pid_t pid;

	if (unshare(CLONE_NEWPID) < 0)
		return fail_errno(err, -errno, "unshare(CLONE_NEWPID): %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		return fail_errno(err, -errno, "fork into the PID namespace: %s", strerror(errno));
	if (pid == 0)
		return 0;
	/* Only pid 1 may hold the daemon's pipe: its exec is what the operator waits for. */
	if (ready_fd >= 0)
		close(ready_fd);
	ready_fd = -1;
	if (forked)
		forked(pid, arg);
	return 1 + wait_child(pid);
}

/* The daemon's parent: EOF means exec'd; one byte is the status of a failed jail. */
static int wait_ready(int fd)
{
	unsigned char status;
	ssize_t n;

	do
		n = read(fd, &status, 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	return n == 1 ? 1 + status : 1;
}

int jail_daemonize(char *err)
{
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return fail_errno(err, -errno, "pipe: %s", strerror(errno));
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0)
		return fail_errno(err, -errno, "/dev/null: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		return fail_errno(err, -errno, "fork: %s", strerror(errno));
	if (pid > 0) {
		close(fds[1]);
		return wait_ready(fds[0]);
	}
	close(fds[0]);
	ready_fd = fds[1];
	if (setsid() < 0)
		return fail_errno(err, -errno, "setsid: %s", strerror(errno));
	return 0;
}

/* A daemon child that fails tells its waiting parent the status (see cmd_jail.c). */
void jail_report_status(int status)
{
	unsigned char b = (unsigned char)status;

	if (ready_fd >= 0 && write(ready_fd, &b, 1) != 1)
		(void)0; /* the parent then sees EOF and the child's exit */
}

#if defined(__SANITIZE_ADDRESS__)
/*
 * Sanitizer builds only: LeakSanitizer walks /proc at exit and ASan reads
 * its options from /proc/self/environ, and a jailed VMM's root has no
 * /proc. Leak checking is left to the tests that run without the jail.
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return access("/proc/self", F_OK) == 0 ? "" : "detect_leaks=0";
}
#endif

int jail_exec(const struct jail_plan *p, bool quiet, char *err)
{
	static char *const none[] = {NULL};
	static char *const named[] = {"BANYAN_RUNTIME_DIR=" JAIL_NAMED_ROOT, NULL};
	char *const *envp = p->name ? named : none;

	if (quiet && null_fd >= 0) {
		dup2(null_fd, STDIN_FILENO);
		dup2(null_fd, STDOUT_FILENO);
		dup2(null_fd, STDERR_FILENO);
	}
	execve(p->argv[0], p->argv, envp);
	return fail_errno(err, -errno, "exec %s: %s", p->argv[0], strerror(errno));
}
