/* Checked access to guest physical memory. */
#include "vmm/guest_mem.h"

#include <errno.h>
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
	gm->regions[gm->count++] = (struct gm_region){ .gpa = gpa, .size = size, .host = host };
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
