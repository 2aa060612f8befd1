/*
 * Host-side memory accounting of the VMM process: what the kernel says it
 * holds (/proc/self/smaps_rollup), and how much of it is guest RAM
 * (/proc/self/smaps over the guest's mapping) rather than the VMM's own.
 * Usable on its own: it needs only the guest mapping's address and size.
 */
#ifndef BANYAN_VMM_MEM_STATS_H
#define BANYAN_VMM_MEM_STATS_H

#include <stdint.h>

/* Bytes. */
struct mem_stats {
	uint64_t rss; /* resident, hugetlb pages excluded (as VmRSS in /proc/PID/status) */
	uint64_t pss; /* proportional: shared pages divided among their sharers */
	uint64_t private_dirty;	 /* written pages no other process has */
	uint64_t hugetlb;	 /* hugetlb pages mapped (HugetlbPages in /proc/PID/status) */
	uint64_t guest_resident; /* guest RAM resident: its Rss and its hugetlb pages */
	uint64_t vmm_resident;	 /* rss less guest RAM's: the VMM's own code, heap, stacks */
};

/*
 * mem_stats_read - the figures of this process into @out; @guest and
 * @guest_size delimit guest RAM (NULL, 0: none, all is the VMM's). Reads
 * /proc/self/smaps_rollup and /proc/self/smaps (open, read, close only;
 * it allocates nothing, so it may run under any thread's sandbox that
 * allows those). 0 or -errno.
 */
int mem_stats_read(const void *guest, uint64_t guest_size, struct mem_stats *out)
    __attribute__((warn_unused_result));

#endif
