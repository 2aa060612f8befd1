/* Checked access to guest physical memory. */
#include "vmm/guest_mem.h"

#include <errno.h>
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
						 memory_order_relaxed);
	}
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
		bitmap[w] |= atomic_exchange_explicit(&reg->dirty[w], 0, memory_order_relaxed);
	return true;
}

void gm_dirty_free(struct guest_mem *gm)
{
	for (unsigned int i = 0; i < gm->count; i++) {
		free((void *)(uintptr_t)gm->regions[i].dirty);
		gm->regions[i].dirty = NULL;
	}
}
