/* Migration URLs and the plain socket connection. */
#include "migration/transport.h"

#include "util/errmsg.h"
#include "util/usock.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define fail(err, ret, ...) errmsg_set(err, MIG_ERR_LEN, ret, __VA_ARGS__)

static int parse_tcp(const char *s, struct mig_url *u, char *err)
{
	const char *colon = strrchr(s, ':');
	size_t hlen = colon ? (size_t)(colon - s) : 0;
	char *end;
	long port;

	if (!colon || hlen == 0)
		return fail(err, -EINVAL, "tcp: URL '%s' lacks HOST:PORT", s);
	if (s[0] == '[' && hlen >= 2 && s[hlen - 1] == ']') {
		s++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(u->host))
		return fail(err, -EINVAL, "tcp: host name empty or too long");
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 1 || port > 65535)
		return fail(err, -EINVAL, "tcp: port '%s' is not 1..65535", colon + 1);
	memcpy(u->host, s, hlen);
	u->host[hlen] = '\0';
	snprintf(u->port, sizeof(u->port), "%ld", port);
	u->kind = MIG_URL_TCP;
	return 0;
}

int mig_url_parse(const char *s, struct mig_url *u, char *err)
{
	memset(u, 0, sizeof(*u));
	if (strncmp(s, "tcp:", 4) == 0)
		return parse_tcp(s + 4, u, err);
	if (strncmp(s, "unix:", 5) == 0) {
		if (!s[5] || strlen(s + 5) >= sizeof(u->path))
			return fail(err, -EINVAL, "unix: path empty or longer than %zu bytes",
				    sizeof(u->path) - 1);
		snprintf(u->path, sizeof(u->path), "%s", s + 5);
		u->kind = MIG_URL_UNIX;
		return 0;
	}
	return fail(err, -EINVAL, "migration URL '%s': use tcp:HOST:PORT or unix:PATH", s);
}

static ssize_t sock_read(struct mig_conn *c, void *buf, size_t len)
{
	ssize_t n;

	do
		n = recv(c->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	return n < 0 ? (errno == EAGAIN ? -ETIMEDOUT : -errno) : n;
}

static ssize_t sock_write(struct mig_conn *c, const void *buf, size_t len)
{
	ssize_t n;

	do
		n = send(c->fd, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? (errno == EAGAIN ? -ETIMEDOUT : -errno) : n;
}

static void sock_shutdown(struct mig_conn *c)
{
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
}

static void sock_close(struct mig_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static const struct mig_conn_ops sock_ops = {
    .read = sock_read,
    .write = sock_write,
    .shutdown = sock_shutdown,
    .close = sock_close,
};

/* A descriptor that came with the bytes: kept if it is the first, else closed. */
static void unix_keep_fds(struct mig_conn *c, struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (c->rx_fd < 0)
				c->rx_fd = fd;
			else
				close(fd);
		}
	}
}

/* unix: reads take descriptors too (at most a few per message; the rest the kernel closes). */
static ssize_t unix_read(struct mig_conn *c, void *buf, size_t len)
{
	union {
		char b[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	do {
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof(ctl.b);
		n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	unix_keep_fds(c, &mh);
	return n;
}

/* unix: a write carries c->tx_fd, once, on its first bytes. */
static ssize_t unix_write(struct mig_conn *c, const void *buf, size_t len)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (c->tx_fd >= 0) {
		struct cmsghdr *cm;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof(ctl.b);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &c->tx_fd, sizeof(int));
	}
	do
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	c->tx_fd = -1; /* sent with these bytes */
	return n;
}

static void unix_close(struct mig_conn *c)
{
	if (c->rx_fd >= 0)
		close(c->rx_fd);
	c->rx_fd = -1;
	sock_close(c);
}

static const struct mig_conn_ops unix_ops = {
    .read = unix_read,
    .write = unix_write,
    .shutdown = sock_shutdown,
    .close = unix_close,
};

int mig_conn_take_fd(struct mig_conn *c)
{
	int fd = c->ops == &unix_ops ? c->rx_fd : -1;

	if (fd < 0)
		return -ENOENT;
	c->rx_fd = -1;
	return fd;
}

int mig_conn_fd(struct mig_conn *c, int fd, unsigned int timeout_ms)
{
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	int one = 1, flags = fcntl(fd, F_GETFL);
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);

	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->tx_fd = c->rx_fd = -1;
	c->ops = getsockname(fd, (struct sockaddr *)&sa, &salen) == 0 && sa.ss_family == AF_UNIX
		     ? &unix_ops
		     : &sock_ops;
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			 sizeof(one)); /* unix: no such option */
	return 0;
}

static int unix_addr(const struct mig_url *u, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, u->path, strlen(u->path));
	return 0;
}

static int tcp_lookup(const struct mig_url *u, bool passive, struct addrinfo **res, char *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)};
	int rc = getaddrinfo(u->host, u->port, &hints, res);

	if (rc)
		return fail(err, -EHOSTUNREACH, "tcp:%s:%s: %s", u->host, u->port,
			    gai_strerror(rc));
	return 0;
}

int mig_connect(const struct mig_url *u, unsigned int timeout_ms, struct mig_conn *c, char *err)
{
	struct addrinfo *res = NULL, *ai;
	struct sockaddr_un sa;
	int fd = -1, ret = -ECONNREFUSED;

	if (u->kind == MIG_URL_UNIX) {
		unix_addr(u, &sa);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			ret = -errno;
		else
			ret = 0;
	} else if ((ret = tcp_lookup(u, false, &res, err)) == 0) {
		ret = -ECONNREFUSED;
		for (ai = res; ai && ret < 0; ai = ai->ai_next) {
			if (fd >= 0)
				close(fd);
			fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
			ret = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : -errno;
		}
		freeaddrinfo(res);
	} else {
		return ret;
	}
	if (ret == 0)
		ret = mig_conn_fd(c, fd, timeout_ms);
	else if (fd >= 0)
		close(fd);
	if (ret < 0)
		return fail(err, ret, "cannot connect to the destination: %s", strerror(-ret));
	return 0;
}

static int tcp_listen(const struct mig_url *u, char *err)
{
	struct addrinfo *res = NULL;
	int one = 1, fd, ret = tcp_lookup(u, true, &res, err);

	if (ret < 0)
		return ret;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
			bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1) < 0)) {
		ret = -errno;
		close(fd);
		fd = ret;
	} else if (fd < 0) {
		fd = -errno;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return fail(err, fd, "cannot listen on tcp:%s:%s: %s", u->host, u->port,
			    strerror(-fd));
	return fd;
}

int mig_listen(const struct mig_url *u, char *err)
{
	int fd;

	if (u->kind == MIG_URL_TCP)
		return tcp_listen(u, err);
	fd = usock_listen(u->path, 1);
	if (fd < 0)
		return fail(err, fd, "cannot listen on unix:%s: %s", u->path,
			    fd == -EADDRINUSE ? "another process serves it" : strerror(-fd));
	return fd;
}

int mig_accept(int lfd, int cancel_fd, unsigned int timeout_ms, struct mig_conn *c, char *err)
{
	struct pollfd p[2] = {{.fd = lfd, .events = POLLIN}, {.fd = cancel_fd, .events = POLLIN}};
	int fd, n;

	for (;;) {
		n = poll(p, cancel_fd >= 0 ? 2 : 1, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(err, -errno, "waiting for the source: %s", strerror(errno));
		if (cancel_fd >= 0 && p[1].revents)
			return fail(err, -ECANCELED, "stopped while waiting for the source");
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			break;
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			return fail(err, -errno, "accept: %s", strerror(errno));
	}
	n = mig_conn_fd(c, fd, timeout_ms);
	if (n < 0) {
		close(fd);
		return fail(err, n, "the source's connection: %s", strerror(-n));
	}
	return 0;
}

int mig_read_full(struct mig_conn *c, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = c->ops->read(c, p, len);

		if (n == 0)
			return -EPIPE;
		if (n < 0)
			return (int)n;
		p += n;
		len -= (size_t)n;
		c->bytes_in += (uint64_t)n;
	}
	return 0;
}

int mig_write_full(struct mig_conn *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = c->ops->write(c, p, len);

		if (n <= 0)
			return n ? (int)n : -EPIPE;
		p += n;
		len -= (size_t)n;
		c->bytes_out += (uint64_t)n;
	}
	return 0;
}

void mig_conn_close(struct mig_conn *c)
{
	if (c->ops)
		c->ops->close(c);
	c->ops = NULL;
}
