/*
 * Opening user-named files: a FIFO or a device is refused without being
 * opened (an open would block), a swapped-in FIFO is caught on the
 * descriptor, log sinks accept FIFOs without waiting for a reader.
 */
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
#include <sys/stat.h>
#include <unistd.h>

#include "util/file.h"

static char dir[64];

static const char *path_in(const char *name)
{
	static char p[128];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/banyan-test-file-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[96];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Nobody ever opens the other end: any blocking open would hang the test. */
static void fifo_refused_without_blocking(void **state)
{
	uint8_t *buf = NULL;
	uint64_t size;
	size_t len;

	(void)state;
	assert_int_equal(mkfifo(path_in("fifo"), 0600), 0);
	assert_int_equal(file_check_kind(path_in("fifo"), FILE_KIND_REG), -FILE_EKIND);
	assert_int_equal(file_size(path_in("fifo"), &size), -FILE_EKIND);
	assert_int_equal(file_read_all(path_in("fifo"), 1024, &buf, &len), -FILE_EKIND);
	assert_int_equal(
	    file_open_kind(path_in("fifo"), O_RDONLY, 0, FILE_KIND_REG | FILE_KIND_BLK),
	    -FILE_EKIND);
	assert_null(buf);
}

static void devices_and_directories_refused(void **state)
{
	(void)state;
	assert_int_equal(file_open_kind("/dev/null", O_RDONLY, 0, FILE_KIND_REG | FILE_KIND_BLK),
			 -FILE_EKIND);
	assert_int_equal(file_open_kind(dir, O_RDONLY, 0, FILE_KIND_REG), -FILE_EKIND);
	assert_int_equal(file_open_sink("/dev/null", 0600), -FILE_EKIND);
	assert_int_equal(file_open_sink(dir, 0600), -FILE_EKIND);
	assert_string_equal(file_kind_error(FILE_KIND_REG | FILE_KIND_BLK),
			    "not a regular file or block device");
}

static void regular_file_opens_blocking(void **state)
{
	int fd;

	(void)state;
	fd = file_open_kind(path_in("new"), O_RDWR | O_CREAT, 0600, FILE_KIND_REG);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(fd);
	assert_int_equal(file_open_kind(path_in("missing"), O_RDONLY, 0, FILE_KIND_REG), -ENOENT);
}

/* A FIFO sink: no reader, yet the open returns; a full FIFO refuses a line with EAGAIN. */
static void fifo_sink_never_blocks(void **state)
{
	char line[4096];
	int fd, n = 0;

	(void)state;
	assert_int_equal(mkfifo(path_in("log"), 0600), 0);
	fd = file_open_sink(path_in("log"), 0600);
	assert_true(fd >= 0);
	memset(line, 'x', sizeof(line));
	while (write(fd, line, sizeof(line)) == (ssize_t)sizeof(line) && n < 1024)
		n++;
	assert_true(n < 1024);
	assert_int_equal(errno, EAGAIN);
	close(fd);
}

static void regular_sink_appends(void **state)
{
	char buf[16] = "";
	int fd, in;

	(void)state;
	for (int i = 0; i < 2; i++) {
		fd = file_open_sink(path_in("append"), 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, "ab", 2), 2);
		close(fd);
	}
	in = open(path_in("append"), O_RDONLY);
	assert_int_equal(read(in, buf, sizeof(buf) - 1), 4);
	assert_string_equal(buf, "abab");
	close(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(fifo_refused_without_blocking),
	    cmocka_unit_test(devices_and_directories_refused),
	    cmocka_unit_test(regular_file_opens_blocking),
	    cmocka_unit_test(fifo_sink_never_blocks),
	    cmocka_unit_test(regular_sink_appends),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
