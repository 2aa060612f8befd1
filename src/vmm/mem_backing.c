/* Guest RAM's host backing: anonymous or hugetlb pages, KSM, prefault. */
#include "vmm/mem_backing.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26) /* log2 of the page size, above MFD_HUGE_SHIFT */
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#define HUGE_POOL_DIR  "/sys/kernel/mm/hugepages/hugepages-2048kB/"
#define FILL_CHUNK     (1U << 20)
#define HOST_PAGE_SIZE 4096U

/* One decimal number from a sysfs file; 0 or -errno. */
static int read_sysfs_u64(const char *name, uint64_t *out)
{
	char path[128], buf[32];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), HUGE_POOL_DIR "%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	*out = strtoull(buf, NULL, 10);
	return 0;
}

int mem_huge_pool_read(struct mem_huge_pool *pool)
{
	uint64_t free_pages = 0, resv = 0;
	int ret = read_sysfs_u64("nr_hugepages", &pool->total);

	if (ret == 0)
		ret = read_sysfs_u64("free_hugepages", &free_pages);
	if (ret == 0)
		ret = read_sysfs_u64("resv_hugepages", &resv);
	pool->free = free_pages > resv ? free_pages - resv : 0;
	return ret;
}

/* The refusal, with what the host has and the knob that gives more. */
static void huge_refusal(uint64_t need, char *err, size_t errlen)
{
	struct mem_huge_pool pool;

	if (mem_huge_pool_read(&pool) < 0) {
		snprintf(err, errlen,
			 "huge pages: the guest needs %llu free 2 MiB pages and this host has no "
			 "2 MiB hugetlb pool (%s); reserve pages with vm.nr_hugepages",
			 (unsigned long long)need, HUGE_POOL_DIR);
		return;
	}
	snprintf(err, errlen,
		 "huge pages: the guest needs %llu free 2 MiB pages and the host has %llu free "
		 "of %llu; reserve more with vm.nr_hugepages (e.g. sysctl vm.nr_hugepages=%llu)",
		 (unsigned long long)need, (unsigned long long)pool.free,
		 (unsigned long long)pool.total,
		 (unsigned long long)(pool.total + need - pool.free));
}

/*
 * A hugetlb memfd, mapped shared: without MAP_NORESERVE the mmap reserves
 * every page from the pool, so a short pool fails here and not later as
 * a SIGBUS inside the running guest.
 */
static void *map_huge(uint64_t size, int *memfd, char *err, size_t errlen)
{
	uint64_t need = size / MEM_HUGE_PAGE_SIZE;
	struct mem_huge_pool pool;
	void *host = MAP_FAILED;
	int fd;

	if (size % MEM_HUGE_PAGE_SIZE) {
		snprintf(err, errlen, "huge pages: %llu MiB is not a multiple of 2 MiB",
			 (unsigned long long)(size >> 20));
		errno = EINVAL;
		return MAP_FAILED;
	}
	if (mem_huge_pool_read(&pool) == 0 && pool.free < need) {
		huge_refusal(need, err, errlen);
		errno = ENOMEM;
		return MAP_FAILED;
	}
	fd = memfd_create("banyan-guest-ram", MFD_CLOEXEC | MFD_HUGETLB | MFD_HUGE_2MB);
	if (fd >= 0 && ftruncate(fd, (off_t)size) == 0)
		host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (host == MAP_FAILED) {
		int e = errno;

		if (e == ENOMEM || e == EINVAL)
			huge_refusal(need, err, errlen);
		else
			snprintf(err, errlen, "huge pages: %s", strerror(e));
		errno = e;
	}
	if (fd >= 0 && (host == MAP_FAILED || !memfd))
		close(fd); /* a mapping keeps the memfd alive without it */
	else if (fd >= 0)
		*memfd = fd;
	return host;
}

void *mem_backing_map(const struct mem_backing *b, uint64_t size, int *memfd, char *err,
		      size_t errlen)
{
	void *host;

	if (memfd)
		*memfd = -1;
	if (b->hugepages)
		return map_huge(size, memfd, err, errlen);
	host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	if (host == MAP_FAILED)
		snprintf(err, errlen, "cannot map %llu MiB of guest memory: %s",
			 (unsigned long long)(size >> 20), strerror(errno));
	return host;
}

void *mem_backing_map_memfd(uint64_t size, int *fd, char *err, size_t errlen)
{
	void *host = MAP_FAILED;
	int e, mfd = memfd_create("banyan-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (mfd >= 0 && ftruncate(mfd, (off_t)size) == 0 &&
	    fcntl(mfd, F_ADD_SEALS, MEM_MEMFD_SEALS) == 0)
		host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, mfd, 0);
	if (host != MAP_FAILED) {
		*fd = mfd;
		return host;
	}
	e = errno;
	snprintf(err, errlen, "cannot map %llu MiB of shared guest memory (memfd): %s",
		 (unsigned long long)(size >> 20), strerror(e));
	if (mfd >= 0)
		close(mfd);
	errno = e;
	return MAP_FAILED;
}

static bool page_is_zero(const uint8_t *p)
{
	return p[0] == 0 && memcmp(p, p + 1, HOST_PAGE_SIZE - 1) == 0;
}

int mem_backing_fill(void *host, uint64_t size, int fd)
{
	uint8_t *buf = malloc(FILL_CHUNK), *dst = host;
	int ret = buf ? 0 : -ENOMEM;

	for (uint64_t off = 0; ret == 0 && off < size; off += FILL_CHUNK) {
		size_t len = size - off < FILL_CHUNK ? (size_t)(size - off) : FILL_CHUNK;
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n != (ssize_t)len) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		for (size_t p = 0; p + HOST_PAGE_SIZE <= len; p += HOST_PAGE_SIZE)
			if (!page_is_zero(buf + p))
				memcpy(dst + off + p, buf + p, HOST_PAGE_SIZE);
	}
	free(buf);
	return ret;
}

/* Write every page (each keeps its contents) where MADV_POPULATE_WRITE is missing. */
static void touch_pages(void *host, uint64_t size)
{
	volatile uint8_t *p = host;

	for (uint64_t off = 0; off < size; off += HOST_PAGE_SIZE)
		p[off] = p[off];
}

/*
 * Transparent huge pages for fewer TLB misses (advisory), except the first
 * 2 MiB: the VMM writes a few KiB of boot structures there (GDT, page
 * tables, boot_params, command line, ACPI), and as one huge page they
 * would cost a 2 MiB zeroing before the first guest instruction and 2 MiB
 * of resident memory in every VM (docs/performance.md, "Start-up").
 */
#define LOW_SMALL_PAGES (2ULL << 20)

int mem_backing_apply(const struct mem_backing *b, void *host, uint64_t size)
{
	if (!b->hugepages && size > LOW_SMALL_PAGES)
		madvise((uint8_t *)host + LOW_SMALL_PAGES, size - LOW_SMALL_PAGES, MADV_HUGEPAGE);
	if (b->mergeable && madvise(host, size, MADV_MERGEABLE) < 0)
		return -errno;
	if (b->prefault && madvise(host, size, MADV_POPULATE_WRITE) < 0) {
		if (errno != EINVAL)
			return -errno; /* ENOMEM, EFAULT: the memory cannot be had */
		touch_pages(host, size);
	}
	return 0;
}
