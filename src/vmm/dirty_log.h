/*
 * Dirty-page tracking, the memory layer's: KVM's log of the pages the guest
 * wrote (KVM_MEM_LOG_DIRTY_PAGES on every memslot) joined with the pages
 * the VMM's devices wrote (guest_mem's own bitmap, see gm_mark_dirty),
 * gathered into one pending bitmap over the VM's whole memory mapping (one
 * bit per 4 KiB page, from vm->mem_base). Memslot i is guest memory region
 * i (vm_map_memory registers them so). Diff snapshots read it; it knows
 * nothing of them. Call every function with the VM paused.
 */
#ifndef BANYAN_VMM_DIRTY_LOG_H
#define BANYAN_VMM_DIRTY_LOG_H

#include <stdbool.h>
#include <stdint.h>

struct vm;

#define VM_DIRTY_PAGE 4096ULL

/*
 * vm_dirty_start - forget the pages pending so far and, unless tracking is
 * on already, turn it on: logging for every memslot, device writes
 * recorded. 0; -ENOTSUP when the host's KVM (or a VM without an irqchip)
 * cannot log, and tracking stays off; -ENOMEM.
 */
int vm_dirty_start(struct vm *vm) __attribute__((warn_unused_result));

/* vm_dirty_logging - tracking is on (vm_dirty_start succeeded). */
bool vm_dirty_logging(const struct vm *vm);

/*
 * vm_dirty_collect - move the pages written since the last call (or since
 * vm_dirty_start) into the pending bitmap and set *@pending to it: one
 * bit per page of the whole mapping, valid until the next call of any
 * vm_dirty_* function. Does not clear it (vm_dirty_start does). 0, or
 * -ENOTSUP when tracking is off, or -errno.
 */
int vm_dirty_collect(struct vm *vm, const uint64_t **pending) __attribute__((warn_unused_result));

/*
 * vm_dirty_sync - like vm_dirty_collect, and also OR the pages written
 * since the last call into @since (one bit per page of the whole mapping,
 * the caller's), so that a live migration sees each round's pages while
 * a later diff snapshot still sees all of them. Unlike the other
 * functions it may run while the vCPUs and devices run (KVM takes each
 * memslot's log atomically, device marks are atomic): a page written
 * meanwhile shows up in this call or the next. 0, -ENOTSUP, -errno.
 */
int vm_dirty_sync(struct vm *vm, uint64_t *since) __attribute__((warn_unused_result));

/* vm_dirty_free - release the tracking state (vm_destroy). */
void vm_dirty_free(struct vm *vm);

#endif
