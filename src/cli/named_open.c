/*
 * Opening a named VM's files, and any API socket a client is given,
 * without following a link another user controls (cli/named.h). A jailed
 * VM's entry links into its root, where the jail's unprivileged user
 * writes: a link it put there in place of its socket or its log would
 * otherwise send root's requests, keystrokes or reads to any host file.
 */
#include "cli/named.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define NAMED_MAX_LINKS 16 /* as many as the walk follows, like the kernel's 40 but fewer */

/*
 * A link we may follow: it and the directory holding it belong to root or
 * to us, and nobody else can replace it there (the directory is not group
 * or world writable, or it is sticky). The host's entry ROOT/NAME is such
 * a directory; a jail's run directory, its user's, never is.
 */
static bool link_trusted(int dir, int link)
{
	uid_t me = geteuid();
	struct stat d, l;

	if (fstat(dir, &d) < 0 || fstatat(link, "", &l, AT_EMPTY_PATH) < 0)
		return false;
	if ((l.st_uid != 0 && l.st_uid != me) || (d.st_uid != 0 && d.st_uid != me))
		return false;
	return !(d.st_mode & 022) || (d.st_mode & S_ISVTX);
}

/*
 * @rest becomes the target of @link followed by @after (what was left of
 * the path, inside @rest itself: copied first); an absolute target
 * restarts the walk at /, in *@dir.
 */
static int follow(int link, int *dir, char *rest, size_t size, const char *after)
{
	char target[PATH_MAX], tail[PATH_MAX];
	ssize_t n = readlinkat(link, "", target, sizeof(target) - 1);
	int root;

	if (n <= 0)
		return n < 0 ? -errno : -ENOENT;
	target[n] = '\0';
	snprintf(tail, sizeof(tail), "%s", after);
	if ((size_t)snprintf(rest, size, "%s/%s", target, tail) >= size)
		return -ENAMETOOLONG;
	if (target[0] != '/')
		return 0;
	root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -errno;
	close(*dir);
	*dir = root;
	return 0;
}

/*
 * One component @name under *@dir: 0 when *@dir became it, 1 when it was
 * a trusted link and @rest now holds its target and then @after, -errno.
 */
static int step(int *dir, const char *name, const char *after, char *rest, size_t size, int *links)
{
	int fd = openat(*dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC), ret;
	struct stat st;

	if (fd < 0)
		return -errno;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0) {
		ret = -errno;
	} else if (!S_ISLNK(st.st_mode)) {
		close(*dir);
		*dir = fd;
		return 0;
	} else if (++*links > NAMED_MAX_LINKS || !link_trusted(*dir, fd)) {
		ret = -ELOOP;
	} else {
		ret = follow(fd, dir, rest, size, after) ?: 1;
	}
	close(fd);
	return ret;
}

/* The walk itself: the O_PATH descriptor of what @path names, or -errno. */
static int walk(const char *path)
{
	char rest[2 * PATH_MAX], *p, *end;
	int dir, links = 0, ret;

	if ((size_t)snprintf(rest, sizeof(rest), "%s", path) >= sizeof(rest))
		return -ENAMETOOLONG;
	dir = open(rest[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -errno;
	for (p = rest;;) {
		while (*p == '/')
			p++;
		if (!*p)
			return dir;
		end = p + strcspn(p, "/");
		if (*end)
			*end++ = '\0';
		ret = step(&dir, p, end, rest, sizeof(rest), &links);
		if (ret < 0)
			break;
		p = ret ? rest : end;
	}
	close(dir);
	return ret;
}

int named_resolve(const char *path, mode_t type)
{
	int fd = walk(path);
	struct stat st;

	if (fd < 0 || !type)
		return fd;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0 || (st.st_mode & S_IFMT) != type) {
		close(fd);
		return type == S_IFSOCK ? -ENOTSOCK : -EINVAL;
	}
	return fd;
}

int named_sock_path(const char *path, char *buf, size_t size)
{
	int fd = named_resolve(path, S_IFSOCK);

	if (fd >= 0 && (size_t)snprintf(buf, size, "/proc/self/fd/%d", fd) >= size) {
		close(fd);
		return -ENAMETOOLONG;
	}
	return fd;
}

int named_connect(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int pfd = named_sock_path(path, a.sun_path, sizeof(a.sun_path)), fd, ret = 0;

	if (pfd < 0)
		return pfd;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		ret = -errno;
	close(pfd);
	if (ret < 0 && fd >= 0)
		close(fd);
	return ret < 0 ? ret : fd;
}

int named_open(const char *path)
{
	int pfd = named_resolve(path, S_IFREG), fd;
	char proc[32];

	if (pfd < 0)
		return pfd;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	fd = open(proc, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	close(pfd);
	return fd;
}

const char *named_strerror(int err)
{
	if (err == -ELOOP)
		return "a symbolic link on the way belongs to another user or sits in a directory "
		       "others can write (a jailed VM's own files): not followed";
	return strerror(-err);
}
