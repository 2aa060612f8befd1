/* Named VMs' runtime directories: names, paths, the pid file and its lock. */
#include "cli/named.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static bool name_char(char c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return !first && (c == '_' || c == '.' || c == '-');
}

int named_check(const char *name)
{
	size_t i;

	if (!name || !name[0])
		return -EINVAL;
	for (i = 0; name[i]; i++)
		if (i >= NAMED_MAX || !name_char(name[i], i == 0))
			return -EINVAL;
	return 0;
}

int named_root_for(uid_t uid, const char *xdg, const char *override, char *buf, size_t size)
{
	int n;

	if (override && override[0])
		n = snprintf(buf, size, "%s", override);
	else if (uid == 0)
		n = snprintf(buf, size, "/run/banyan");
	else if (xdg && xdg[0] == '/')
		n = snprintf(buf, size, "%s/banyan", xdg);
	else
		n = snprintf(buf, size, "/tmp/banyan-%u", (unsigned int)uid);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int named_root(char *buf, size_t size)
{
	/* Found once, before the sandbox (which has no getuid): a process keeps its uid. */
	static char root[NAMED_PATH];
	int n;

	if (!root[0] && named_root_for(getuid(), getenv("XDG_RUNTIME_DIR"),
				       getenv("BANYAN_RUNTIME_DIR"), root, sizeof(root)) < 0)
		return -ENAMETOOLONG;
	n = snprintf(buf, size, "%s", root);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int named_path(const char *name, const char *file, char *buf, size_t size)
{
	char root[NAMED_PATH];
	int n, ret;

	if (named_check(name) < 0)
		return -EINVAL;
	ret = named_root(root, sizeof(root));
	if (ret < 0)
		return ret;
	n = file ? snprintf(buf, size, "%s/%s/%s", root, name, file)
		 : snprintf(buf, size, "%s/%s", root, name);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/*
 * A directory of ours that nobody else can write: /tmp/banyan-UID could
 * have been made by another user first, to read our consoles or plant
 * sockets. -EPERM otherwise (a symbolic link included).
 */
static int check_dir(const char *dir)
{
	struct stat st;

	if (lstat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 022))
		return -EPERM;
	return 0;
}

/* mkdir -p for the root (0700: other users need not see our VMs), then the VM's directory. */
static int make_dirs(const char *name)
{
	char dir[NAMED_PATH], root[NAMED_PATH], *p;
	int ret = named_path(name, NULL, dir, sizeof(dir));

	if (ret == 0)
		ret = named_root(root, sizeof(root));
	if (ret < 0)
		return ret;
	for (p = dir + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return check_dir(root) ?: check_dir(dir);
}

static void unlink_file(const char *name, const char *file)
{
	char path[NAMED_PATH];

	if (named_path(name, file, path, sizeof(path)) == 0)
		(void)unlink(path);
}

/* @file, when it is a symbolic link (a jailed VMM's registry entry points into its root). */
static void unlink_link(const char *name, const char *file)
{
	char path[NAMED_PATH];
	struct stat st;

	if (named_path(name, file, path, sizeof(path)) == 0 && lstat(path, &st) == 0 &&
	    S_ISLNK(st.st_mode))
		(void)unlink(path);
}

/* The locked fd still names the pid file (not one a cleaner removed meanwhile). */
static bool still_linked(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
	       a.st_dev == b.st_dev;
}

static int claim_once(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	}
	if (!still_linked(fd, path)) {
		close(fd);
		return -EAGAIN;
	}
	return fd;
}

int named_set_pid(int fd, pid_t pid)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);

	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		return -errno;
	return 0;
}

int named_claim(const char *name)
{
	char path[NAMED_PATH];
	int fd, ret, tries;

	ret = make_dirs(name);
	if (ret == 0)
		ret = named_path(name, NAMED_PID, path, sizeof(path));
	if (ret < 0)
		return ret;
	/* A cleaner (banyan ls) holds the lock briefly on a dead VMM's file: try again. */
	for (tries = 0; tries < 50; tries++) {
		fd = claim_once(path);
		if (fd >= 0 || (fd != -EAGAIN && !(fd == -EBUSY && named_stale(name))))
			break;
		usleep(10000);
	}
	if (fd < 0)
		return fd;
	unlink_file(name, NAMED_API);
	unlink_file(name, NAMED_CONSOLE);
	unlink_link(name, NAMED_LOG); /* a jailed VMM's, into its root: never written through */
	ret = named_set_pid(fd, getpid());
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

void named_release(const char *name, int fd)
{
	if (fd < 0)
		return;
	unlink_file(name, NAMED_API);
	unlink_file(name, NAMED_CONSOLE);
	unlink_file(name, NAMED_PID);
	close(fd);
}

static pid_t read_pid(int fd)
{
	char buf[32] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	return n > 0 ? (pid_t)atoi(buf) : 0;
}

/* The pid file's state: 1 locked by a live process, 0 not locked, -errno no file. */
static int pid_state(const char *name, pid_t *pid)
{
	char path[NAMED_PATH];
	int fd, ret;

	ret = named_path(name, NAMED_PID, path, sizeof(path));
	if (ret < 0)
		return ret;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	ret = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	*pid = read_pid(fd);
	close(fd);
	/* A lock held by a pid that is gone: only a child that kept the fd; not a VM. */
	return ret && *pid > 0 && (kill(*pid, 0) == 0 || errno == EPERM);
}

bool named_alive(const char *name, pid_t *pid)
{
	return pid_state(name, pid) == 1;
}

bool named_stale(const char *name)
{
	pid_t pid;

	return pid_state(name, &pid) == 0;
}

void named_clean(const char *name)
{
	char path[NAMED_PATH];
	int fd;

	if (named_path(name, NAMED_PID, path, sizeof(path)) < 0)
		return;
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 && still_linked(fd, path)) {
		unlink_file(name, NAMED_API);
		unlink_file(name, NAMED_CONSOLE);
		(void)unlink(path);
	}
	close(fd);
}
