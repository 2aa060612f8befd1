/*
 * How guest RAM is backed on the host: ordinary anonymous pages (the
 * default), 2 MiB hugetlb pages from a memfd, KSM merging, and faulting
 * everything in before the guest runs (docs/memory.md).
 */
#ifndef BANYAN_VMM_MEM_BACKING_H
#define BANYAN_VMM_MEM_BACKING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>

#define MEM_HUGE_PAGE_SIZE (2ULL << 20)

struct mem_backing {
	bool hugepages; /* 2 MiB hugetlb pages (memfd, MFD_HUGETLB | MFD_HUGE_2MB) */
	bool mergeable; /* madvise(MADV_MERGEABLE): KSM may merge identical pages */
	bool prefault;	/* every page faulted in before the first instruction */
	/*
	 * A sealed memfd mapped shared, whose descriptor the VM keeps: what a
	 * same-host upgrade hands to the next Banyan process instead of
	 * copying the memory (docs/migration.md). Not with huge pages or KSM.
	 */
	bool shared;
};

/* The host's pool of 2 MiB pages, from /sys/kernel/mm/hugepages/hugepages-2048kB. */
struct mem_huge_pool {
	uint64_t total; /* nr_hugepages */
	uint64_t free;	/* free_hugepages less resv_hugepages: what a new mapping can reserve */
};

/*
 * mem_huge_pool_read - the host's 2 MiB page pool into @pool. 0, or -errno
 * when the host has no 2 MiB hugetlb pages (or /sys is not visible).
 */
int mem_huge_pool_read(struct mem_huge_pool *pool) __attribute__((warn_unused_result));

/*
 * mem_backing_map - map @size bytes of guest RAM as @b says: anonymous
 * (MAP_NORESERVE) or a hugetlb memfd mapped shared, its pages reserved by
 * the mmap itself so the guest can never take SIGBUS for want of one.
 * @size must be a multiple of 2 MiB with huge pages. Refuses, with the
 * reason in @err (@errlen bytes, naming vm.nr_hugepages), a host with too
 * few free 2 MiB pages. Returns the mapping or MAP_FAILED with errno set.
 * *@memfd (may be NULL: then it is closed) gets the hugetlb memfd, which
 * the caller closes after unmapping, or -1 for anonymous memory: releasing
 * huge pages to the host's pool punches holes in it (gm_release).
 * Never applies mergeable or prefault: mem_backing_apply does, once the
 * contents are in.
 */
void *mem_backing_map(const struct mem_backing *b, uint64_t size, int *memfd, char *err,
		      size_t errlen);

/*
 * mem_backing_map_memfd - map @size bytes of guest RAM from a new memfd
 * (MFD_ALLOW_SEALING), sized and sealed against shrinking and growing
 * (F_SEAL_SHRINK | F_SEAL_GROW: no holder can truncate it under another's
 * mapping), mapped shared. *@fd gets the descriptor (close-on-exec; the
 * caller's). Returns the mapping, or MAP_FAILED with errno and @err set.
 */
void *mem_backing_map_memfd(uint64_t size, int *fd, char *err, size_t errlen);

/* The seals every shared guest-RAM memfd carries (and a received one must). */
#define MEM_MEMFD_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)

/*
 * mem_backing_fill - copy @size bytes of the file @fd into @host (a
 * mapping from mem_backing_map): how a snapshot's memory reaches huge
 * pages, which cannot map the file copy-on-write. Pages of zeros are not
 * written, so they stay unfaulted. 0 or -errno.
 */
int mem_backing_fill(void *host, uint64_t size, int fd) __attribute__((warn_unused_result));

/*
 * mem_backing_apply - the advice that follows the contents: transparent
 * huge pages for ordinary memory, KSM when mergeable, and the prefault
 * (MADV_POPULATE_WRITE, or a write to every page where the kernel lacks
 * it). 0 or -errno (a refused MADV_MERGEABLE: a kernel without KSM).
 */
int mem_backing_apply(const struct mem_backing *b, void *host, uint64_t size)
    __attribute__((warn_unused_result));

#endif
