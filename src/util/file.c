/* Opening user-named files without blocking; whole-file reads with a size cap. */
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static bool kind_ok(mode_t mode, unsigned int kinds)
{
	return ((kinds & FILE_KIND_REG) && S_ISREG(mode)) ||
	       ((kinds & FILE_KIND_BLK) && S_ISBLK(mode)) ||
	       ((kinds & FILE_KIND_FIFO) && S_ISFIFO(mode));
}

const char *file_kind_error(unsigned int kinds)
{
	if (kinds & FILE_KIND_FIFO)
		return "not a regular file or a FIFO";
	if (kinds & FILE_KIND_BLK)
		return "not a regular file or block device";
	return "not a regular file";
}

int file_check_kind(const char *path, unsigned int kinds)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	return kind_ok(st.st_mode, kinds) ? 0 : -FILE_EKIND;
}

/* The kind again on the descriptor (the path may have changed since the stat). */
static int fd_check_kind(int fd, unsigned int kinds, int flags)
{
	struct stat st;
	int fl;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!kind_ok(st.st_mode, kinds))
		return -FILE_EKIND;
	if (flags & O_NONBLOCK)
		return 0;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int file_open_kind(const char *path, int flags, mode_t mode, unsigned int kinds)
{
	int fd, ret = file_check_kind(path, kinds);

	/* A missing path is created as a regular file by O_CREAT: checked after the open. */
	if (ret < 0 && !(ret == -ENOENT && (flags & O_CREAT)))
		return ret;
	fd = open(path, flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, mode);
	if (fd < 0)
		return -errno;
	ret = fd_check_kind(fd, kinds, flags);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

int file_open_sink(const char *path, mode_t mode)
{
	struct stat st;

	/*
	 * A FIFO opened read-write never waits for a reader (a write-only
	 * open would, or fail with ENXIO when non-blocking) and keeps the
	 * pipe alive between readers.
	 */
	if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
		return file_open_kind(path, O_RDWR | O_NONBLOCK, 0, FILE_KIND_FIFO);
	return file_open_kind(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK, mode,
			      FILE_KIND_REG | FILE_KIND_FIFO);
}

static int file_open_regular(const char *path, uint64_t *size)
{
	struct stat st;
	int fd = file_open_kind(path, O_RDONLY, 0, FILE_KIND_REG);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		int err = errno;

		close(fd);
		return -err;
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
