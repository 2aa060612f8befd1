/*
 * Guest physical memory: a few host mappings at guest physical addresses.
 * Every guest-supplied address goes through gm_ptr(), which checks
 * gpa + len for overflow and for falling inside one region. Nothing else does
 * pointer arithmetic on guest addresses.
 */
#ifndef BANYAN_VMM_GUEST_MEM_H
#define BANYAN_VMM_GUEST_MEM_H

#include <stddef.h>
#include <stdint.h>

#define GM_MAX_REGIONS 8

struct gm_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
};

struct guest_mem {
	struct gm_region regions[GM_MAX_REGIONS];
	unsigned int count;
	uint64_t total;          /* sum of region sizes */
};

/*
 * gm_add_region - describe an already-mapped host range as guest memory.
 * Returns 0, -EINVAL for overlap/empty/wrap, -ENOSPC when the table is full.
 */
int gm_add_region(struct guest_mem *gm, uint64_t gpa, uint64_t size, void *host)
	__attribute__((warn_unused_result));

/*
 * gm_ptr - host pointer to [gpa, gpa+len) when the whole range lies inside one
 * region, else NULL. len 0 is refused. Never touches the memory.
 */
void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* gm_read/gm_write - copy to or from guest memory; 0 or -EFAULT. */
int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len)
	__attribute__((warn_unused_result));
int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len)
	__attribute__((warn_unused_result));

#endif
