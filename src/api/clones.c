/*
 * Clones through the API: the VMM that is asked starts the same supervisor
 * as `banyan restore --clones` (cmd_restore.c) in a process that does not
 * belong to it. A double fork detaches it (the middle child exits at once,
 * the supervisor is reparented and leads a session of its own); a CLOEXEC
 * pipe brings back its pid, or why it could not be started: it is closed
 * by the exec, so end of file means the supervisor runs.
 *
 * The API serves from a thread of a multithreaded process, so the children
 * only make async-signal-safe calls until the exec. Everything they need
 * (argument vector, /dev/null, the log file) is prepared before the fork.
 */
#include "api/clones.h"

#include "snapshot/snapshot.h"
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SELF_EXE "/proc/self/exe"

/* One record through the pipe (8 bytes: a pipe write that size is atomic). */
struct spawn_msg {
	int what;  /* enum spawn_what */
	int value; /* the supervisor's pid, or an errno */
};

enum spawn_what {
	SPAWN_PID,	    /* from the middle child: the supervisor's pid */
	SPAWN_FORK_FAILED,  /* from the middle child: its fork failed */
	SPAWN_SETUP_FAILED, /* from the supervisor: setsid/dup2/sigprocmask failed */
	SPAWN_EXEC_FAILED,  /* from the supervisor: execv returned */
};

static void spawn_report(int fd, enum spawn_what what, int value)
{
	struct spawn_msg m = {.what = what, .value = value};

	if (write(fd, &m, sizeof(m)) < 0)
		(void)0; /* the VMM then sees end of file without a pid */
}

/* @from becomes @to without CLOEXEC (dup2 onto itself would keep the flag). */
static int move_fd(int from, int to)
{
	if (from == to)
		return fcntl(to, F_SETFD, 0);
	return dup2(from, to);
}

/*
 * The binary the supervisor runs: this process's own, as /proc/self/exe
 * names it. A jailed VMM's root has no /proc; the jail exec'd it by an
 * absolute path inside the root (/banyan), which AT_EXECFN keeps.
 */
static const char *self_exe(void)
{
	const char *fn = (const char *)getauxval(AT_EXECFN);

	if (access(SELF_EXE, X_OK) == 0 || !fn || fn[0] != '/')
		return SELF_EXE;
	return fn;
}

/* The supervisor, before its exec: async-signal-safe calls only; never returns. */
static void spawn_exec(const char *exe, char *const *argv, int null_fd, int log_fd, int pipe_fd)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none;
	int fd;

	/* The VMM blocks SIGINT/SIGTERM/SIGHUP and ignores SIGPIPE; the supervisor must not. */
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL);
	sigemptyset(&none);
	if (setsid() < 0 || move_fd(null_fd, STDIN_FILENO) < 0 ||
	    move_fd(log_fd, STDOUT_FILENO) < 0 || move_fd(log_fd, STDERR_FILENO) < 0 ||
	    sigprocmask(SIG_SETMASK, &none, NULL) < 0) {
		spawn_report(pipe_fd, SPAWN_SETUP_FAILED, errno);
		_exit(127);
	}
	/* Nothing of the VMM's (KVM, disks and their locks, sockets) crosses the exec. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		for (fd = 3; fd < 65536; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	execv(exe, argv);
	spawn_report(pipe_fd, SPAWN_EXEC_FAILED, errno);
	_exit(127);
}

/* The middle child: forks the supervisor, reports its pid and exits. */
static void spawn_middle(const char *exe, char *const *argv, int null_fd, int log_fd, int pipe_fd)
{
	pid_t p = fork();

	if (p == 0)
		spawn_exec(exe, argv, null_fd, log_fd, pipe_fd);
	if (p < 0)
		spawn_report(pipe_fd, SPAWN_FORK_FAILED, errno);
	else
		spawn_report(pipe_fd, SPAWN_PID, (int)p);
	_exit(0);
}

/* Read the records until end of file: 0 with *@pid, or -errno with @err. */
static int spawn_collect(int fd, pid_t *pid, char *err)
{
	struct spawn_msg m;
	bool got_pid = false;
	ssize_t n;

	while ((n = read(fd, &m, sizeof(m))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(m))
			break;
		if (m.what == SPAWN_PID) {
			*pid = (pid_t)m.value;
			got_pid = true;
			continue;
		}
		snprintf(err, SNAP_ERR_LEN, "clones: cannot %s: %s",
			 m.what == SPAWN_EXEC_FAILED   ? "run the banyan binary"
			 : m.what == SPAWN_FORK_FAILED ? "fork the supervisor"
						       : "set up the supervisor",
			 strerror(m.value));
		return -(m.value ? m.value : EIO);
	}
	if (got_pid)
		return 0;
	snprintf(err, SNAP_ERR_LEN, "clones: the supervisor reported no pid");
	return -ECHILD;
}

static int spawn(char *const *argv, int null_fd, int log_fd, pid_t *pid, char *err)
{
	const char *exe = self_exe();
	int fds[2], st, ret;
	pid_t mid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return ret = -errno,
		       snprintf(err, SNAP_ERR_LEN, "clones: pipe: %s", strerror(-ret)), ret;
	mid = fork();
	if (mid == 0)
		spawn_middle(exe, argv, null_fd, log_fd, fds[1]);
	ret = mid < 0 ? -errno : 0;
	close(fds[1]);
	if (ret < 0)
		snprintf(err, SNAP_ERR_LEN, "clones: fork: %s", strerror(-ret));
	else
		ret = spawn_collect(fds[0], pid, err);
	close(fds[0]);
	while (mid > 0 && waitpid(mid, &st, 0) < 0 && errno == EINTR)
		;
	return ret;
}

/* The supervisor's command line; the strings are copies (execv wants char *). */
static char **clones_argv(const struct api_clones *c, const char *mode)
{
	char count[16];
	const char *args[16] = {"banyan",   "restore", "--snapshot", c->snapshot_dir,
				"--clones", count,     "--console",  c->console_prefix};
	size_t k = 8;

	/* Each optional pair in turn: a NULL in the middle would end the list early. */
	if (mode) {
		args[k++] = "--seccomp";
		args[k++] = mode;
	}
	if (c->api_prefix) {
		args[k++] = "--api-socket";
		args[k++] = c->api_prefix;
	}
	if (c->name) {
		args[k++] = "--name";
		args[k++] = c->name;
	}
	size_t n = sizeof(args) / sizeof(args[0]);
	char **argv = calloc(n, sizeof(*argv));
	size_t i;

	snprintf(count, sizeof(count), "%u", c->count);
	for (i = 0; argv && args[i]; i++)
		if (!(argv[i] = strdup(args[i])))
			break;
	if (argv && args[i]) {
		for (i = 0; argv[i]; i++)
			free(argv[i]);
		free(argv);
		return NULL;
	}
	return argv;
}

static void free_argv(char **argv)
{
	for (size_t i = 0; argv[i]; i++)
		free(argv[i]);
	free(argv);
}

/* Open the log and /dev/null, then the double fork; @mode: --seccomp's, or NULL. */
static int clones_spawn(const struct api_clones *c, const char *mode, pid_t *pid, char *err)
{
	int null_fd = -1, log_fd = -1, ret;
	char log[4096 + 8];
	char **argv;

	snprintf(log, sizeof(log), "%s.log", c->console_prefix);
	argv = clones_argv(c, mode);
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ret = null_fd < 0 ? -errno : 0;
	/* Opened with the API lock held: a FIFO or a device there must not block it. */
	log_fd = file_open_kind(log, O_WRONLY | O_APPEND | O_CREAT, 0644, FILE_KIND_REG);
	if (!argv) {
		ret = -ENOMEM;
		snprintf(err, SNAP_ERR_LEN, "clones: out of memory");
	} else if (ret < 0 || log_fd < 0) {
		ret = ret < 0 ? ret : log_fd;
		snprintf(err, SNAP_ERR_LEN, "clones: cannot open %.400s: %s",
			 null_fd < 0 ? "/dev/null" : log,
			 ret == -FILE_EKIND ? file_kind_error(FILE_KIND_REG) : strerror(-ret));
	} else {
		ret = spawn(argv, null_fd, log_fd, pid, err);
	}
	if (argv)
		free_argv(argv);
	if (null_fd >= 0)
		close(null_fd);
	if (log_fd >= 0)
		close(log_fd);
	return ret;
}

/* --- the helper process (api_clones_helper_start) --- */

#define HELPER_PATH 4096

struct helper_req {
	char snapshot_dir[HELPER_PATH];
	char console_prefix[HELPER_PATH];
	char api_prefix[HELPER_PATH]; /* "": none */
	char name[API_CLONES_NAME];   /* "": unnamed */
	unsigned int count;
};

struct helper_rep {
	int ret;
	pid_t pid;
	char err[SNAP_ERR_LEN];
};

/* The helper's socket, and the lock that keeps one request and its answer together. */
static int helper_fd = -1;
static pthread_mutex_t helper_lock = PTHREAD_MUTEX_INITIALIZER;

/* A request as it came: strings end inside their fields, the count is in range. */
static bool helper_req_ok(struct helper_req *q, ssize_t n)
{
	return n == (ssize_t)sizeof(*q) && memchr(q->snapshot_dir, 0, HELPER_PATH) &&
	       memchr(q->console_prefix, 0, HELPER_PATH) && memchr(q->api_prefix, 0, HELPER_PATH) &&
	       memchr(q->name, 0, API_CLONES_NAME) && q->count >= 1 && q->count <= API_CLONES_MAX;
}

static void helper_main(int fd, const char *mode)
{
	struct helper_req q;
	struct helper_rep r;
	ssize_t n;

	while ((n = recv(fd, &q, sizeof(q), 0)) > 0 || (n < 0 && errno == EINTR)) {
		struct api_clones c = {.snapshot_dir = q.snapshot_dir,
				       .count = q.count,
				       .console_prefix = q.console_prefix,
				       .api_prefix = q.api_prefix[0] ? q.api_prefix : NULL,
				       .name = q.name[0] ? q.name : NULL};

		if (n < 0)
			continue;
		r = (struct helper_rep){.ret = -EINVAL};
		snprintf(r.err, sizeof(r.err), "clones: a malformed request");
		if (helper_req_ok(&q, n))
			r.ret = clones_spawn(&c, mode, &r.pid, r.err);
		if (send(fd, &r, sizeof(r), MSG_NOSIGNAL) < 0)
			break;
	}
	_exit(0);
}

int api_clones_helper_main(int argc, char **argv)
{
	if (argc != 2 || fcntl(3, F_GETFD) < 0) {
		fprintf(stderr, "banyan clones-helper: started by banyan run only\n");
		return 2;
	}
	/*
	 * Keeps nothing of the VMM's but the console and its socket (fd 3),
	 * and ends with it: the VMM's end is CLOEXEC and only the VMM holds
	 * it, so its exit is end of file here. (Not a parent-death signal:
	 * that follows the thread that started the helper, which ends first.)
	 */
	close_range(4, ~0U, 0);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_NAME, "clone-helper");
	helper_main(3, argv[1][0] ? argv[1] : NULL);
	return 0;
}

/*
 * The helper is this binary run afresh (`banyan clones-helper MODE`), by
 * posix_spawn: the VMM's memory is shared until the exec, not copied. A
 * fork cost the VMM's start most of a millisecond, in page tables copied
 * and then in every page it wrote afterwards, copied on write.
 */
int api_clones_helper_start(const char *seccomp_mode)
{
	posix_spawn_file_actions_t fa;
	char mode[16];
	char *argv[] = {"banyan", "clones-helper", mode, NULL};
	pid_t p;
	int sv[2], child_fd, ret;

	snprintf(mode, sizeof(mode), "%s", seccomp_mode ? seccomp_mode : "");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* Above 3, so that the dup2 onto 3 is a real one (it clears CLOEXEC). */
	child_fd = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
	ret = child_fd < 0 ? errno : posix_spawn_file_actions_init(&fa);
	if (ret == 0) {
		ret = posix_spawn_file_actions_adddup2(&fa, child_fd, 3);
		if (ret == 0)
			ret = posix_spawn(&p, self_exe(), &fa, NULL, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
	}
	if (child_fd >= 0)
		close(child_fd);
	close(sv[1]);
	if (ret != 0) {
		close(sv[0]);
		return -ret;
	}
	helper_fd = sv[0];
	return 0;
}

/* One request through the helper; its answer. */
static int helper_spawn(const struct api_clones *c, pid_t *pid, char *err)
{
	static struct helper_req q; /* 12 KiB: not on an API thread's stack; under helper_lock */
	struct helper_rep r = {.ret = -EIO};
	int ret = 0;

	pthread_mutex_lock(&helper_lock);
	memset(&q, 0, sizeof(q));
	snprintf(q.snapshot_dir, HELPER_PATH, "%s", c->snapshot_dir);
	snprintf(q.console_prefix, HELPER_PATH, "%s", c->console_prefix);
	snprintf(q.api_prefix, HELPER_PATH, "%s", c->api_prefix ? c->api_prefix : "");
	snprintf(q.name, API_CLONES_NAME, "%s", c->name ? c->name : "");
	q.count = c->count;
	if (send(helper_fd, &q, sizeof(q), MSG_NOSIGNAL) != (ssize_t)sizeof(q) ||
	    recv(helper_fd, &r, sizeof(r), 0) != (ssize_t)sizeof(r))
		ret = errno ? -errno : -EIO;
	pthread_mutex_unlock(&helper_lock);
	if (ret < 0) {
		snprintf(err, SNAP_ERR_LEN, "clones: the helper process: %s", strerror(-ret));
		return ret;
	}
	r.err[SNAP_ERR_LEN - 1] = '\0';
	if (r.ret < 0)
		snprintf(err, SNAP_ERR_LEN, "%s", r.err);
	*pid = r.pid;
	return r.ret;
}

int api_clones_start(const struct api_clones *c, pid_t *pid, char *err)
{
	struct snapshot_image *img;
	int ret = snapshot_open(c->snapshot_dir, false, &img, err);

	if (ret < 0)
		return ret;
	snapshot_close(img);
	return helper_fd >= 0 ? helper_spawn(c, pid, err) : clones_spawn(c, NULL, pid, err);
}

json_object *api_clones_reply(const struct api_clones *c, pid_t pid)
{
	json_object *o = json_object_new_object(), *list = json_object_new_array();
	char path[4096 + 16];

	if (!o || !list) {
		json_object_put(o);
		json_object_put(list);
		return NULL;
	}
	json_object_object_add(o, "supervisor_pid", json_object_new_int(pid));
	snprintf(path, sizeof(path), "%s.log", c->console_prefix);
	json_object_object_add(o, "log", json_object_new_string(path));
	for (unsigned int i = 0; i < c->count; i++) {
		json_object *e = json_object_new_object();

		if (!e) {
			json_object_put(list);
			json_object_put(o);
			return NULL;
		}
		snprintf(path, sizeof(path), "%s.%u", c->console_prefix, i);
		json_object_object_add(e, "console", json_object_new_string(path));
		snprintf(path, sizeof(path), "%s.%u", c->api_prefix ? c->api_prefix : "", i);
		json_object_object_add(e, "api_socket",
				       c->api_prefix ? json_object_new_string(path) : NULL);
		snprintf(path, sizeof(path), "%s-%u", c->name ? c->name : "", i + 1);
		json_object_object_add(e, "name", c->name ? json_object_new_string(path) : NULL);
		json_object_array_add(list, e);
	}
	json_object_object_add(o, "clones", list);
	return o;
}
