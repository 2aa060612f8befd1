/* The sd_notify datagram protocol, without libsystemd (util/notify.h). */
#include "util/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* $NOTIFY_SOCKET as an address: '@' is the abstract namespace's leading NUL. */
static int notify_addr(const char *name, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n = strlen(name);

	if (n == 0)
		return -ENOENT;
	if ((name[0] != '/' && name[0] != '@') || n >= sizeof(sa->sun_path))
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, name, n);
	if (name[0] == '@')
		sa->sun_path[0] = '\0';
	/* An abstract name is exactly its bytes, no terminating NUL. */
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/'));
	return 0;
}

int notify_open(void)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t len;
	int fd, ret;

	if (!name)
		return -ENOENT;
	ret = notify_addr(name, &sa, &len);
	if (ret < 0)
		return ret;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, len) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	unsetenv("NOTIFY_SOCKET");
	return fd;
}

int notify_send(int fd, const char *msg)
{
	ssize_t n;

	if (fd < 0)
		return -EBADF;
	n = send(fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return (size_t)n == strlen(msg) ? 0 : -EMSGSIZE;
}
