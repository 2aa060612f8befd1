/* Whole-file reads for kernels and initrds: sizes checked before allocating. */
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int file_open_regular(const char *path, uint64_t *size)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

static int file_read_fd(int fd, uint8_t *dst, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, dst + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the file shrank under us */
		done += (size_t)n;
	}
	return 0;
}

int file_size(const char *path, uint64_t *size)
{
	int fd = file_open_regular(path, size);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int file_read_all(const char *path, size_t max, uint8_t **buf, size_t *len)
{
	uint64_t size;
	uint8_t *p;
	int fd, ret;

	fd = file_open_regular(path, &size);
	if (fd < 0)
		return fd;
	if (size > max) {
		close(fd);
		return -EFBIG;
	}
	p = malloc(size ? size : 1);
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	ret = file_read_fd(fd, p, size);
	close(fd);
	if (ret < 0) {
		free(p);
		return ret;
	}
	*buf = p;
	*len = size;
	return 0;
}

int file_read_into(const char *path, void *dst, size_t len)
{
	uint64_t size;
	int fd, ret;

	fd = file_open_regular(path, &size);
	if (fd < 0)
		return fd;
	ret = size < len ? -EIO : file_read_fd(fd, dst, len);
	close(fd);
	return ret;
}
