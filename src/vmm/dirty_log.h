/*
 * Dirty-page logging for diff snapshots: KVM's log of the pages the guest
 * wrote (KVM_MEM_LOG_DIRTY_PAGES on every memslot) joined with the pages
 * the VMM's devices wrote (guest_mem's own bitmap, see gm_mark_dirty).
 * Memslot i is guest memory region i (vm_map_memory registers them so).
 */
#ifndef BANYAN_VMM_DIRTY_LOG_H
#define BANYAN_VMM_DIRTY_LOG_H

#include <stdint.h>

struct vm;

/*
 * vm_dirty_log_start - turn logging on for every memslot and start
 * recording device writes. Call with the VM paused. 0, or -errno when the
 * host's KVM cannot log (the caller then offers full snapshots only).
 */
int vm_dirty_log_start(struct vm *vm) __attribute__((warn_unused_result));

/*
 * vm_dirty_log_collect - OR the pages written in region @r since the last
 * call into @bitmap (one bit per 4 KiB page) and start a new interval.
 * 0 or -errno.
 */
int vm_dirty_log_collect(struct vm *vm, unsigned int r, uint64_t *bitmap)
    __attribute__((warn_unused_result));

#endif
