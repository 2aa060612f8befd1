/* A copy-on-write overlay over a read-only disk image (blk_overlay.h). */
#include "virtio/blk_overlay.h"
#include "util/errmsg.h"

#include "util/file.h"
#include "virtio/virtqueue.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLUSTER_MIN   4096U
#define CLUSTER_MAX   (1U << 20)
#define OVERLAY_IOV   1024 /* iovec entries per request (virtio-blk uses at most 256) */
#define ZERO_IOV_SIZE 4096U
#define ZERO_CHUNK    (256ULL * ZERO_IOV_SIZE)

struct blk_overlay {
	int base_fd;
	int fd;
	uint64_t size;
	uint32_t cluster; /* a power of two, at least the file system's block */
	uint64_t nclusters;
	uint64_t *map;		 /* bit per cluster: held by the overlay (updated atomically) */
	pthread_mutex_t copy_up; /* one partial-cluster copy at a time */
	void *cluster_buf;	 /* under copy_up */
};

static char zero_page[ZERO_IOV_SIZE]; /* only ever read */

static bool held(const struct blk_overlay *o, uint64_t c)
{
	return __atomic_load_n(&o->map[c / 64], __ATOMIC_ACQUIRE) & (1ULL << (c % 64));
}

static void mark(struct blk_overlay *o, uint64_t first, uint64_t last)
{
	for (uint64_t c = first; c <= last; c++)
		__atomic_fetch_or(&o->map[c / 64], 1ULL << (c % 64), __ATOMIC_RELEASE);
}

static uint64_t cluster_end(const struct blk_overlay *o, uint64_t c)
{
	uint64_t end = (c + 1) * o->cluster;

	return end < o->size ? end : o->size;
}

/* Transfer all of @iov (advanced in place) at @offset; bytes or -errno. */
static int64_t full_io(int fd, bool write, struct iovec *iov, int cnt, uint64_t offset)
{
	uint64_t total = 0;

	while (cnt > 0) {
		ssize_t n = write ? pwritev(fd, iov, cnt, (off_t)offset)
				  : preadv(fd, iov, cnt, (off_t)offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* past the end of a file shorter than the disk */
		offset += (uint64_t)n;
		total += (uint64_t)n;
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return (int64_t)total;
}

static uint64_t iov_total(const struct iovec *iov, unsigned int cnt)
{
	uint64_t len = 0;

	for (unsigned int i = 0; i < cnt; i++)
		len += iov[i].iov_len;
	return len;
}

/* --- opening --- */

/* Rebuild the cluster map from the overlay file's allocated ranges. */
static int load_map(struct blk_overlay *o)
{
	off_t pos = 0, data, hole;

	for (;;) {
		data = lseek(o->fd, pos, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno;
		hole = lseek(o->fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		if ((uint64_t)data >= o->size)
			return 0;
		if ((uint64_t)hole > o->size)
			hole = (off_t)o->size;
		mark(o, (uint64_t)data / o->cluster, ((uint64_t)hole - 1) / o->cluster);
		pos = hole;
	}
}

/*
 * The cluster: the file system's block (holes come in whole blocks, and a
 * partly written block would read as data), at least 4 KiB.
 */
static int pick_cluster(struct blk_overlay *o, const struct stat *st)
{
	uint32_t c = CLUSTER_MIN;

	while (c < (uint64_t)st->st_blksize && c < CLUSTER_MAX)
		c <<= 1;
	if (c < (uint64_t)st->st_blksize)
		return -EOPNOTSUPP;
	o->cluster = c;
	o->nclusters = (o->size + c - 1) / c;
	o->map = calloc((o->nclusters + 63) / 64 + 1, sizeof(*o->map));
	o->cluster_buf = aligned_alloc(CLUSTER_MIN, c);
	return o->map && o->cluster_buf ? 0 : -ENOMEM;
}

static int overlay_setup(struct blk_overlay *o, const char *path, char *err, size_t errlen)
{
	struct stat st;
	int ret;

	if (flock(o->fd, LOCK_EX | LOCK_NB) < 0)
		return errmsg_set(err, errlen, -EBUSY, "overlay %s is in use by another VM", path);
	if (fstat(o->fd, &st) < 0 || !S_ISREG(st.st_mode))
		return errmsg_set(err, errlen, -EINVAL, "overlay %s is not a regular file", path);
	if (st.st_size == 0) {
		if (ftruncate(o->fd, (off_t)o->size) < 0)
			return errmsg_set(err, errlen, -errno, "cannot size overlay %s: %s", path,
					  strerror(errno));
		/* A new overlay is all hole: a file system that says otherwise has no holes. */
		if (lseek(o->fd, 0, SEEK_DATA) >= 0 || errno != ENXIO)
			return errmsg_set(
			    err, errlen, -EOPNOTSUPP,
			    "the file system of overlay %s does not report holes "
			    "(SEEK_DATA); put the overlay on ext4, xfs, btrfs or tmpfs",
			    path);
	} else if ((uint64_t)st.st_size != o->size) {
		snprintf(err, errlen, "overlay %s is %lld bytes, its base disk %llu", path,
			 (long long)st.st_size, (unsigned long long)o->size);
		return -EINVAL;
	}
	ret = pick_cluster(o, &st);
	if (ret < 0)
		return errmsg_set(err, errlen, ret,
				  "overlay %s: unusable file system block size (%s)", path,
				  strerror(-ret));
	ret = load_map(o);
	if (ret < 0)
		return errmsg_set(err, errlen, ret,
				  "cannot read the allocation map of overlay %s: %s", path,
				  strerror(-ret));
	return 0;
}

int blk_overlay_open(struct blk_overlay **out, int base_fd, uint64_t size, const char *path,
		     char *err, size_t errlen)
{
	struct blk_overlay *o = calloc(1, sizeof(*o));
	int ret;

	if (!o)
		return errmsg_set(err, errlen, -ENOMEM, "overlay %s: out of memory", path);
	o->base_fd = base_fd;
	o->size = size;
	pthread_mutex_init(&o->copy_up, NULL);
	o->fd = file_open_kind(path, O_RDWR | O_CREAT, 0600, FILE_KIND_REG);
	if (o->fd < 0) {
		ret = errmsg_set(err, errlen, o->fd, "cannot open overlay %s: %s", path,
				 o->fd == -FILE_EKIND ? file_kind_error(FILE_KIND_REG)
						      : strerror(-o->fd));
		blk_overlay_close(o);
		return ret;
	}
	ret = overlay_setup(o, path, err, errlen);
	if (ret < 0) {
		blk_overlay_close(o);
		return ret;
	}
	*out = o;
	return 0;
}

void blk_overlay_close(struct blk_overlay *o)
{
	if (!o)
		return;
	if (o->fd >= 0)
		close(o->fd);
	pthread_mutex_destroy(&o->copy_up);
	free(o->cluster_buf);
	free(o->map);
	free(o);
}

/* --- I/O --- */

int64_t blk_overlay_preadv(struct blk_overlay *o, const struct iovec *iov, unsigned int iovcnt,
			   uint64_t offset)
{
	uint64_t len = iov_total(iov, iovcnt), done = 0;
	struct iovec part[OVERLAY_IOV];

	if (offset > o->size || len > o->size - offset)
		return -EINVAL;
	/* One read per run of clusters that live in the same file. */
	while (done < len) {
		uint64_t c = (offset + done) / o->cluster, end;
		bool in_overlay = held(o, c);
		int n;
		int64_t ret;

		while (c + 1 < o->nclusters && (c + 1) * o->cluster < offset + len &&
		       held(o, c + 1) == in_overlay)
			c++;
		end = cluster_end(o, c) < offset + len ? cluster_end(o, c) : offset + len;
		n = iov_slice(iov, iovcnt, done, end - offset - done, part, OVERLAY_IOV);
		if (n < 0)
			return -EINVAL;
		ret = full_io(in_overlay ? o->fd : o->base_fd, false, part, n, offset + done);
		if (ret < 0)
			return ret;
		done = end - offset;
	}
	return (int64_t)len;
}

/* Bring cluster @c into the overlay from the base (it is about to be written in part). */
static int copy_up(struct blk_overlay *o, uint64_t c)
{
	uint64_t start = c * o->cluster;
	struct iovec v = {o->cluster_buf, cluster_end(o, c) - start};
	int64_t ret;

	if (held(o, c))
		return 0; /* another request copied it meanwhile */
	ret = full_io(o->base_fd, false, &v, 1, start);
	v = (struct iovec){o->cluster_buf, cluster_end(o, c) - start};
	if (ret >= 0)
		ret = full_io(o->fd, true, &v, 1, start);
	if (ret < 0)
		return (int)ret;
	mark(o, c, c);
	return 0;
}

/* Whether a write of [offset, end) leaves part of cluster @c as it was. */
static bool partial(const struct blk_overlay *o, uint64_t c, uint64_t offset, uint64_t end)
{
	return offset > c * o->cluster || end < cluster_end(o, c);
}

int64_t blk_overlay_pwritev(struct blk_overlay *o, const struct iovec *iov, unsigned int iovcnt,
			    uint64_t offset)
{
	uint64_t len = iov_total(iov, iovcnt), end = offset + len, first, last;
	struct iovec part[OVERLAY_IOV];
	int64_t ret = 0;
	int n;

	if (offset > o->size || len > o->size - offset)
		return -EINVAL;
	if (len == 0)
		return 0;
	first = offset / o->cluster;
	last = (end - 1) / o->cluster;
	/* The clusters the write covers in part keep the base's other bytes. */
	if ((partial(o, first, offset, end) && !held(o, first)) ||
	    (partial(o, last, offset, end) && !held(o, last))) {
		pthread_mutex_lock(&o->copy_up);
		if (partial(o, first, offset, end))
			ret = copy_up(o, first);
		if (ret == 0 && last != first && partial(o, last, offset, end))
			ret = copy_up(o, last);
		pthread_mutex_unlock(&o->copy_up);
		if (ret < 0)
			return ret;
	}
	n = iov_slice(iov, iovcnt, 0, len, part, OVERLAY_IOV);
	if (n < 0)
		return -EINVAL;
	ret = full_io(o->fd, true, part, n, offset);
	if (ret < 0)
		return ret;
	mark(o, first, last); /* only once the data is there: readers switch files here */
	return (int64_t)len;
}

int blk_overlay_write_zeroes(struct blk_overlay *o, uint64_t offset, uint64_t len)
{
	struct iovec zeroes[ZERO_CHUNK / ZERO_IOV_SIZE];

	for (unsigned int i = 0; i < ZERO_CHUNK / ZERO_IOV_SIZE; i++)
		zeroes[i] = (struct iovec){zero_page, ZERO_IOV_SIZE};
	/* Written, not punched: a hole in the overlay would show the base again. */
	while (len > 0) {
		uint64_t n = len < ZERO_CHUNK ? len : ZERO_CHUNK;
		unsigned int cnt = (unsigned int)((n + ZERO_IOV_SIZE - 1) / ZERO_IOV_SIZE);
		int64_t ret;

		zeroes[cnt - 1].iov_len = n - (uint64_t)(cnt - 1) * ZERO_IOV_SIZE;
		ret = blk_overlay_pwritev(o, zeroes, cnt, offset);
		zeroes[cnt - 1].iov_len = ZERO_IOV_SIZE;
		if (ret < 0)
			return (int)ret;
		offset += n;
		len -= n;
	}
	return 0;
}

int blk_overlay_sync(struct blk_overlay *o)
{
	return fdatasync(o->fd) < 0 ? -errno : 0;
}

uint64_t blk_overlay_clusters(const struct blk_overlay *o, uint32_t *cluster_size)
{
	uint64_t n = 0;

	for (uint64_t c = 0; c < o->nclusters; c++)
		n += held(o, c);
	if (cluster_size)
		*cluster_size = o->cluster;
	return n;
}

/* --- copying --- */

/* Copy [pos, end) of @in to the same place in @out. */
static int copy_range(int in, int out, uint64_t pos, uint64_t end)
{
	while (pos < end) {
		loff_t from = (loff_t)pos, to = (loff_t)pos;
		ssize_t n = copy_file_range(in, &from, out, &to, end - pos, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 &&
		    (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL)) {
			char buf[65536];
			ssize_t r = pread(
			    in, buf, end - pos < sizeof(buf) ? end - pos : sizeof(buf), (off_t)pos);

			if (r <= 0)
				return r < 0 ? -errno : -EIO;
			if (pwrite(out, buf, (size_t)r, (off_t)pos) != r)
				return -EIO;
			n = r;
		} else if (n <= 0) {
			return n < 0 ? -errno : -EIO;
		}
		pos += (uint64_t)n;
	}
	return 0;
}

static int copy_allocated(int in, int out, uint64_t size)
{
	off_t pos = 0, data, hole;
	int ret;

	if (ftruncate(out, (off_t)size) < 0)
		return -errno;
	for (;;) {
		data = lseek(in, pos, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno;
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		ret = copy_range(in, out, (uint64_t)data, (uint64_t)hole);
		if (ret < 0)
			return ret;
		pos = hole;
	}
}

int blk_overlay_copy(const char *from, const char *to, char *err, size_t errlen)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, ret;
	struct stat st;

	if (in < 0 || fstat(in, &st) < 0) {
		ret = errmsg_set(err, errlen, -errno, "cannot read overlay %s: %s", from,
				 strerror(errno));
		goto out;
	}
	/* Never pull an overlay from under a VM that uses it. */
	out = open(to, O_RDONLY | O_CLOEXEC);
	if (out >= 0 && flock(out, LOCK_EX | LOCK_NB) < 0) {
		ret = errmsg_set(err, errlen, -EBUSY, "overlay %s is in use by another VM", to);
		goto out;
	}
	if (out >= 0)
		close(out);
	out = -1;
	/* A fresh file: a clone must never write into another VM's overlay. */
	if (unlink(to) < 0 && errno != ENOENT) {
		ret = errmsg_set(err, errlen, -errno, "cannot replace %s: %s", to, strerror(errno));
		goto out;
	}
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		ret = errmsg_set(err, errlen, -errno, "cannot create overlay %s: %s", to,
				 strerror(errno));
		goto out;
	}
	ret = copy_allocated(in, out, (uint64_t)st.st_size);
	if (ret == 0 && fdatasync(out) < 0)
		ret = -errno;
	if (ret < 0)
		errmsg_set(err, errlen, ret, "cannot copy the overlay into %s: %s", to,
			   strerror(-ret));
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return ret;
}
