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

/*
 * What backs guest RAM decides how a page is given back to the host so
 * that it reads as zero afterwards (gm_release).
 */
enum gm_backing {
	GM_BACKING_ANON,	 /* private anonymous memory: MADV_DONTNEED */
	GM_BACKING_SHARED,	 /* a shared file or memfd (also hugetlbfs): punch a hole */
	GM_BACKING_PRIVATE_FILE, /* a file mapped MAP_PRIVATE (a restored snapshot) */
};

struct guest_mem {
	struct gm_region regions[GM_MAX_REGIONS];
	unsigned int count;
	uint64_t total; /* sum of region sizes */
	/* How RAM is backed (gm_set_backing); zero: anonymous, 4 KiB pages. */
	enum gm_backing backing;
	int fd;			/* GM_BACKING_SHARED: the file */
	const uint8_t *fd_base; /* ... the host address of its offset 0 */
	uint64_t page_size;	/* release granularity, a power of two; 0: 4 KiB */
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

/*
 * gm_read/gm_write - copy to or from guest memory; 0 or -EFAULT. gm_write
 * marks what it wrote dirty (gm_mark_dirty), after writing it.
 */
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
 * gm_mark_dirty - the VMM wrote [gpa, gpa+len): a device filled a guest
 * buffer or a used ring. Call it after the write (too, when also before):
 * a live migration reads and clears the marks while devices run, and a
 * mark taken between an early mark and the write would lose the write.
 * Does nothing before gm_dirty_enable or outside guest memory. Safe from
 * any thread; the write is visible to whoever takes the mark.
 */
void gm_mark_dirty(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* gm_dirty_enabled - gm_dirty_enable ran: marks are recorded. */
bool gm_dirty_enabled(const struct guest_mem *gm);

/*
 * gm_dirty_take - OR region @r's recorded pages into @bitmap (one bit per
 * page, 64 per word) and clear them. Returns false when nothing is recorded
 * (gm_dirty_enable never ran).
 */
bool gm_dirty_take(struct guest_mem *gm, unsigned int r, uint64_t *bitmap);

/*
 * gm_set_backing - record how the regions are backed: @backing, the
 * shared file @fd whose offset 0 is mapped at @fd_base (GM_BACKING_SHARED
 * only; -1 and NULL otherwise), and the backing's page size @page_size
 * (4 KiB, or 2 MiB for huge pages), which is the smallest unit gm_release
 * gives back. Never maps or touches memory.
 */
void gm_set_backing(struct guest_mem *gm, enum gm_backing backing, int fd, const void *fd_base,
		    uint64_t page_size);

/*
 * gm_release - give the host memory under [gpa, gpa+len) back to the host,
 * so that it reads as zero afterwards, whatever the backing: MADV_DONTNEED
 * (anonymous), a punched hole (shared file), or fresh anonymous memory
 * mapped over it (a private file mapping, where MADV_DONTNEED would bring
 * the file's old contents back). Only whole backing pages inside the range
 * are released, one system call per region crossed; the pages are marked
 * dirty for diff snapshots. The range may cross abutting regions but must
 * lie wholly in guest RAM, else nothing is released. *@released (may be
 * NULL) gets the bytes given back. 0, -EFAULT (outside RAM), -EINVAL
 * (empty or wrapping), or the system call's -errno.
 */
int gm_release(const struct guest_mem *gm, uint64_t gpa, uint64_t len, uint64_t *released)
    __attribute__((warn_unused_result));

/*
 * gm_gpa_of - the guest physical address of host range [@host, @host+len)
 * inside one region into *@gpa. 0, or -EFAULT when it is not guest RAM.
 */
int gm_gpa_of(const struct guest_mem *gm, const void *host, uint64_t len, uint64_t *gpa)
    __attribute__((warn_unused_result));

/* gm_dirty_free - release the dirty bitmaps. */
void gm_dirty_free(struct guest_mem *gm);

#endif
