/*
 * The io_uring a disk gets (util/aio.c, aio_uring_init): it does the
 * operations a disk needs and refuses the rest with -EACCES, since
 * io_uring executes them in the kernel where seccomp never sees them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/aio.h"
#include "util/efd.h"

struct fixture {
	struct io_uring ring;
	int efd;
	int fd; /* a file of 4 KiB of 'x' */
	char path[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char buf[4096];
	int ret;

	assert_non_null(f);
	snprintf(f->path, sizeof(f->path), "/tmp/banyan-test-aio.XXXXXX");
	f->fd = mkstemp(f->path);
	assert_true(f->fd >= 0);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(write(f->fd, buf, sizeof(buf)), sizeof(buf));
	f->efd = efd_create();
	assert_true(f->efd >= 0);
	ret = aio_uring_init(&f->ring, 8, f->efd);
	if (ret == -ENOSYS || ret == -EPERM) { /* no io_uring here: the thread pool serves disks */
		close(f->efd);
		close(f->fd);
		unlink(f->path);
		free(f);
		skip();
	}
	assert_int_equal(ret, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	io_uring_queue_exit(&f->ring);
	close(f->efd);
	close(f->fd);
	unlink(f->path);
	free(f);
	return 0;
}

/* Submit the prepared SQE and return its completion's result. */
static int complete_one(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;
	int res;

	assert_int_equal(io_uring_submit(ring), 1);
	assert_int_equal(io_uring_wait_cqe(ring, &cqe), 0);
	res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

static void disk_operations_work(void **state)
{
	struct fixture *f = *state;
	char buf[512] = {0};
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};

	io_uring_prep_readv(io_uring_get_sqe(&f->ring), f->fd, &iov, 1, 0);
	assert_int_equal(complete_one(&f->ring), sizeof(buf));
	assert_int_equal(buf[0], 'x');
	io_uring_prep_writev(io_uring_get_sqe(&f->ring), f->fd, &iov, 1, 4096);
	assert_int_equal(complete_one(&f->ring), sizeof(buf));
	io_uring_prep_fsync(io_uring_get_sqe(&f->ring), f->fd, IORING_FSYNC_DATASYNC);
	assert_int_equal(complete_one(&f->ring), 0);
	io_uring_prep_fallocate(io_uring_get_sqe(&f->ring), f->fd, 0, 0, 8192);
	assert_int_equal(complete_one(&f->ring), 0);
}

/* Opening a file (that exists, and could be opened) is not a disk's business. */
static void openat_is_refused(void **state)
{
	struct fixture *f = *state;

	io_uring_prep_openat(io_uring_get_sqe(&f->ring), AT_FDCWD, f->path, O_RDONLY, 0);
	assert_int_equal(complete_one(&f->ring), -EACCES);
}

/* Nor are the other ways out: plain read/write, sockets, closing descriptors. */
static void other_opcodes_are_refused(void **state)
{
	struct fixture *f = *state;
	char buf[16];

	io_uring_prep_read(io_uring_get_sqe(&f->ring), f->fd, buf, sizeof(buf), 0);
	assert_int_equal(complete_one(&f->ring), -EACCES);
	io_uring_prep_socket(io_uring_get_sqe(&f->ring), AF_INET, 1 /* SOCK_STREAM */, 0, 0);
	assert_int_equal(complete_one(&f->ring), -EACCES);
	io_uring_prep_close(io_uring_get_sqe(&f->ring), f->fd);
	assert_int_equal(complete_one(&f->ring), -EACCES);
}

/* An allowed opcode with an SQE flag (a linked chain) is refused too. */
static void sqe_flags_are_refused(void **state)
{
	struct fixture *f = *state;
	char buf[16];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct io_uring_sqe *sqe = io_uring_get_sqe(&f->ring);

	io_uring_prep_readv(sqe, f->fd, &iov, 1, 0);
	io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
	assert_int_equal(complete_one(&f->ring), -EACCES);
}

/* Once enabled, the ring takes no registration (files, buffers, eventfds). */
static void registration_is_refused(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(io_uring_register_files(&f->ring, &f->fd, 1), -EACCES);
	assert_int_equal(io_uring_register_eventfd(&f->ring, f->efd), -EACCES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(disk_operations_work, setup, teardown),
	    cmocka_unit_test_setup_teardown(openat_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(other_opcodes_are_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(sqe_flags_are_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(registration_is_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
