/*
 * Guest physical memory: a few host mappings at guest physical addresses.
 * Every guest-supplied address goes through gm_ptr(), which checks
 * gpa + len for overflow and for falling inside one region. Nothing else does
 * pointer arithmetic on guest addresses.
 */
#ifndef BANYAN_VMM_GUEST_MEM_H
#define BANYAN_VMM_GUEST_MEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GM_MAX_REGIONS 8

struct gm_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
	/*
	 * One bit per 4 KiB page the VMM itself wrote (device DMA), for diff
	 * snapshots: KVM's dirty log sees only the guest's writes. NULL until
	 * gm_dirty_enable; set once while the VM is paused, freed with the VM.
	 */
	_Atomic uint64_t *dirty;
};

struct guest_mem {
	struct gm_region regions[GM_MAX_REGIONS];
	unsigned int count;
	uint64_t total; /* sum of region sizes */
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

/*
 * gm_dirty_enable - start recording the pages the VMM writes (see
 * gm_mark_dirty). Idempotent. 0 or -ENOMEM.
 */
int gm_dirty_enable(struct guest_mem *gm) __attribute__((warn_unused_result));

/*
 * gm_mark_dirty - the VMM wrote (or is about to write) [gpa, gpa+len): a
 * device filled a guest buffer or a used ring. Does nothing before
 * gm_dirty_enable or outside guest memory. Safe from any thread.
 */
void gm_mark_dirty(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/*
 * gm_dirty_take - OR region @r's recorded pages into @bitmap (one bit per
 * page, 64 per word) and clear them. Returns false when nothing is recorded
 * (gm_dirty_enable never ran).
 */
bool gm_dirty_take(struct guest_mem *gm, unsigned int r, uint64_t *bitmap);

/* gm_dirty_free - release the dirty bitmaps. */
void gm_dirty_free(struct guest_mem *gm);

#endif
