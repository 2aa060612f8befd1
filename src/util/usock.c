/* Listening Unix sockets at an operator's path (util/usock.h). */
#include "util/usock.h"

#include "util/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * Free @path, or refuse it. Non-blocking connect: a listener that never
 * accepts fills its backlog, and a blocking connect would wait for ever
 * (EAGAIN means alive). Only a refused connect proves nobody listens; any
 * other answer (no permission to tell, ...) leaves the file alone.
 */
static int usock_claim(const struct sockaddr_un *sa)
{
	struct stat st, again;
	int fd, err;

	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	err = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ? errno : 0;
	close(fd);
	if (err != ECONNREFUSED)
		return -EADDRINUSE;
	if (lstat(sa->sun_path, &again) < 0 || again.st_ino != st.st_ino ||
	    again.st_dev != st.st_dev)
		return -EADDRINUSE; /* replaced meanwhile: someone else's now */
	if (unlink(sa->sun_path) < 0)
		return -errno;
	log_info("removed the stale socket %s (nobody listened on it)", sa->sun_path);
	return 0;
}

/* Bind @fd under a temporary name, make it 0600 and listening, rename it to @sa's path. */
static int usock_bind(int fd, const struct sockaddr_un *sa, int backlog)
{
	struct sockaddr_un tmp = *sa;
	bool renamed = snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%s.%d.tmp", sa->sun_path,
				(int)getpid()) < (int)sizeof(tmp.sun_path);
	int ret = 0;

	if (!renamed)
		tmp = *sa;
	else
		unlink(tmp.sun_path);
	if (bind(fd, (const struct sockaddr *)&tmp, sizeof(tmp)) < 0)
		return -errno;
	if (chmod(tmp.sun_path, 0600) < 0 || listen(fd, backlog) < 0 ||
	    (renamed && rename(tmp.sun_path, sa->sun_path) < 0)) {
		ret = -errno;
		unlink(tmp.sun_path);
	}
	return ret;
}

int usock_listen(const char *path, int backlog)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ret = usock_claim(&sa);
	if (ret < 0)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = usock_bind(fd, &sa, backlog);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}
