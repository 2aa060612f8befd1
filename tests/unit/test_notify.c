/* The sd_notify datagram: path and abstract names, the variable unset after, bad names. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/notify.h"

/* A listener like the service manager's, bound at @name ('@' = abstract). */
static int listener(const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	memcpy(sa.sun_path, name, n);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	assert_int_equal(bind(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)),
			 0);
	return fd;
}

static void expect_ready(const char *name)
{
	char buf[64] = "";
	int srv = listener(name), fd;

	setenv("NOTIFY_SOCKET", name, 1);
	fd = notify_open();
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_null(getenv("NOTIFY_SOCKET")); /* children never speak for us */
	assert_int_equal(notify_send(fd, "READY=1"), 0);
	assert_int_equal(recv(srv, buf, sizeof(buf) - 1, MSG_DONTWAIT), 7);
	assert_string_equal(buf, "READY=1");
	close(fd);
	close(srv);
}

static void path_socket_gets_ready(void **state)
{
	char path[64];

	(void)state;
	snprintf(path, sizeof(path), "/tmp/banyan-notify-test.%d", (int)getpid());
	unlink(path);
	expect_ready(path);
	unlink(path);
}

static void abstract_socket_gets_ready(void **state)
{
	char name[64];

	(void)state;
	snprintf(name, sizeof(name), "@banyan-notify-test.%d", (int)getpid());
	expect_ready(name);
}

static void unset_or_empty_is_enoent(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_open(), -ENOENT);
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(notify_open(), -ENOENT);
}

static void bad_names_are_refused(void **state)
{
	char longname[200];

	(void)state;
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(notify_open(), -EINVAL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longname, 1);
	assert_int_equal(notify_open(), -EINVAL);
	setenv("NOTIFY_SOCKET", "/nonexistent/banyan-notify", 1);
	assert_int_equal(notify_open(), -ENOENT); /* connect: no such file */
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_send(-1, "READY=1"), -EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(path_socket_gets_ready),
	    cmocka_unit_test(abstract_socket_gets_ready),
	    cmocka_unit_test(unset_or_empty_is_enoent),
	    cmocka_unit_test(bad_names_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
