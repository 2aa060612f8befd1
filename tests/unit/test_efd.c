/* Eventfd wake-up counters: created non-blocking and close-on-exec, signalled, drained. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "util/efd.h"

static void create_is_nonblocking_and_cloexec(void **state)
{
	int fd = efd_create();

	(void)state;
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
}

static void drain_counts_signals(void **state)
{
	int fd = efd_create();

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(efd_drain(fd), 0); /* nothing signalled: does not block */
	assert_int_equal(efd_signal(fd), 0);
	assert_int_equal(efd_signal(fd), 0);
	assert_int_equal(efd_signal(fd), 0);
	assert_int_equal(efd_drain(fd), 3);
	assert_int_equal(efd_drain(fd), 0);
	close(fd);
}

/* A counter at its maximum would block a writer: the signal is there already. */
static void saturated_counts_as_signalled(void **state)
{
	uint64_t max = UINT64_MAX - 1;
	int fd = efd_create();

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, &max, sizeof(max)), sizeof(max));
	assert_int_equal(efd_signal(fd), 0);
	assert_true(efd_drain(fd) == max);
	close(fd);
}

static void bad_fd_reports_error(void **state)
{
	(void)state;
	assert_int_equal(efd_signal(-1), -EBADF);
	assert_int_equal(efd_drain(-1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(create_is_nonblocking_and_cloexec),
	    cmocka_unit_test(drain_counts_signals),
	    cmocka_unit_test(saturated_counts_as_signalled),
	    cmocka_unit_test(bad_fd_reports_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
