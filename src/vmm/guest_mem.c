/* Checked access to guest physical memory. */
#include "vmm/guest_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

static int gm_overlaps(const struct gm_region *r, uint64_t gpa, uint64_t size)
{
	return gpa < r->gpa + r->size && r->gpa < gpa + size;
}

int gm_add_region(struct guest_mem *gm, uint64_t gpa, uint64_t size, void *host)
{
	unsigned int i;

	if (size == 0 || gpa + size < gpa || !host)
		return -EINVAL;
	if (gm->count == GM_MAX_REGIONS)
		return -ENOSPC;
	for (i = 0; i < gm->count; i++)
		if (gm_overlaps(&gm->regions[i], gpa, size))
			return -EINVAL;
	gm->regions[gm->count++] = (struct gm_region){.gpa = gpa, .size = size, .host = host};
	gm->total += size;
	return 0;
}

void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	unsigned int i;

	if (len == 0 || gpa + len < gpa)
		return NULL;
	for (i = 0; i < gm->count; i++) {
		const struct gm_region *r = &gm->regions[i];

		/* Written so that no sum can wrap: gpa >= r->gpa first. */
		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = gm_ptr(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = gm_ptr(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	gm_mark_dirty(gm, gpa, len); /* fw_cfg's DMA, vmgenid: device writes migrate too */
	return 0;
}

#define GM_PAGE_SHIFT 12

int gm_dirty_enable(struct guest_mem *gm)
{
	for (unsigned int i = 0; i < gm->count; i++) {
		struct gm_region *r = &gm->regions[i];
		size_t words = ((r->size >> GM_PAGE_SHIFT) + 63) / 64;

		if (r->dirty)
			continue;
		r->dirty = calloc(words, sizeof(*r->dirty));
		if (!r->dirty)
			return -ENOMEM;
	}
	return 0;
}

void gm_mark_dirty(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	for (unsigned int i = 0; i < gm->count && len; i++) {
		const struct gm_region *r = &gm->regions[i];
		uint64_t first, last;

		if (!r->dirty || gpa < r->gpa || gpa - r->gpa >= r->size)
			continue;
		first = (gpa - r->gpa) >> GM_PAGE_SHIFT;
		last = (len - 1 > r->size - (gpa - r->gpa) - 1 ? r->size - 1
							       : gpa - r->gpa + len - 1) >>
		       GM_PAGE_SHIFT;
		for (uint64_t p = first; p <= last; p++)
			atomic_fetch_or_explicit(&r->dirty[p / 64], 1ULL << (p % 64),
						 memory_order_release);
	}
}

bool gm_dirty_enabled(const struct guest_mem *gm)
{
	return gm->count && gm->regions[0].dirty;
}

bool gm_dirty_take(struct guest_mem *gm, unsigned int r, uint64_t *bitmap)
{
	const struct gm_region *reg;
	size_t words;

	if (r >= gm->count || !gm->regions[r].dirty)
		return false;
	reg = &gm->regions[r];
	words = ((reg->size >> GM_PAGE_SHIFT) + 63) / 64;
	for (size_t w = 0; w < words; w++)
		bitmap[w] |= atomic_exchange_explicit(&reg->dirty[w], 0, memory_order_acquire);
	return true;
}

void gm_dirty_free(struct guest_mem *gm)
{
	for (unsigned int i = 0; i < gm->count; i++) {
		free((void *)(uintptr_t)gm->regions[i].dirty);
		gm->regions[i].dirty = NULL;
	}
}

void gm_set_backing(struct guest_mem *gm, enum gm_backing backing, int fd, const void *fd_base,
		    uint64_t page_size)
{
	gm->backing = backing;
	gm->fd = fd;
	gm->fd_base = fd_base;
	gm->page_size = page_size;
}

/* The region holding @gpa, or NULL. */
static const struct gm_region *gm_region_of(const struct guest_mem *gm, uint64_t gpa)
{
	for (unsigned int i = 0; i < gm->count; i++)
		if (gpa >= gm->regions[i].gpa && gpa - gm->regions[i].gpa < gm->regions[i].size)
			return &gm->regions[i];
	return NULL;
}

/* [gpa, gpa+len) is all guest RAM, possibly across abutting regions. */
static bool gm_covers(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	while (len) {
		const struct gm_region *r = gm_region_of(gm, gpa);
		uint64_t n;

		if (!r)
			return false;
		n = r->size - (gpa - r->gpa);
		if (n >= len)
			return true;
		gpa += n;
		len -= n;
	}
	return true;
}

/* Give back [p, p+n), whole pages of the backing, page-aligned. */
static int gm_release_host(const struct guest_mem *gm, uint8_t *p, size_t n)
{
	void *m;

	switch (gm->backing) {
	case GM_BACKING_SHARED:
		/*
		 * The hole frees the file's pages (hugetlbfs: back to the host's
		 * pool) and unmaps them everywhere. Without the file, MADV_REMOVE
		 * punches the same hole through the mapping (refused on mlocked
		 * memory).
		 */
		if (gm->fd < 0)
			return madvise(p, n, MADV_REMOVE) < 0 ? -errno : 0;
		if (fallocate(gm->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)(p - gm->fd_base), (off_t)n) < 0)
			return -errno;
		return 0;
	case GM_BACKING_PRIVATE_FILE:
		/* MADV_DONTNEED would show the file again: fresh zero pages instead. */
		m = mmap(p, n, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
		return m == MAP_FAILED ? -errno : 0;
	case GM_BACKING_ANON:
	default:
		return madvise(p, n, MADV_DONTNEED) < 0 ? -errno : 0;
	}
}

/* Release the whole backing pages of [gpa, gpa+len) inside region @r. */
static int gm_release_in(const struct guest_mem *gm, const struct gm_region *r, uint64_t gpa,
			 uint64_t len, uint64_t *released)
{
	uint64_t page = gm->page_size ? gm->page_size : 4096;
	uintptr_t start = (uintptr_t)(r->host + (gpa - r->gpa));
	uintptr_t end = start + len;
	int ret;

	start = (start + page - 1) & ~(uintptr_t)(page - 1);
	end &= ~(uintptr_t)(page - 1);
	if (end <= start)
		return 0;
	ret = gm_release_host(gm, (uint8_t *)start, end - start);
	if (ret < 0)
		return ret;
	gm_mark_dirty(gm, r->gpa + (start - (uintptr_t)r->host), end - start);
	*released += end - start;
	return 0;
}

int gm_release(const struct guest_mem *gm, uint64_t gpa, uint64_t len, uint64_t *released)
{
	uint64_t done = 0;
	int ret = 0;

	if (len == 0 || gpa + len < gpa)
		return -EINVAL;
	if (!gm_covers(gm, gpa, len))
		return -EFAULT;
	while (len && ret == 0) {
		const struct gm_region *r = gm_region_of(gm, gpa);
		uint64_t n = r->size - (gpa - r->gpa);

		if (n > len)
			n = len;
		ret = gm_release_in(gm, r, gpa, n, &done);
		gpa += n;
		len -= n;
	}
	if (released)
		*released = done;
	return ret;
}

int gm_gpa_of(const struct guest_mem *gm, const void *host, uint64_t len, uint64_t *gpa)
{
	uintptr_t h = (uintptr_t)host;

	for (unsigned int i = 0; i < gm->count; i++) {
		const struct gm_region *r = &gm->regions[i];
		uintptr_t base = (uintptr_t)r->host;

		if (h >= base && h - base < r->size && len <= r->size - (h - base)) {
			*gpa = r->gpa + (h - base);
			return 0;
		}
	}
	return -EFAULT;
}
