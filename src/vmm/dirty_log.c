/* KVM dirty-page logging on the VM's memslots, plus the VMM's own writes. */
#include "vmm/dirty_log.h"

#include "util/log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

int vm_dirty_log_start(struct vm *vm)
{
	int ret = gm_dirty_enable(&vm->mem);

	for (unsigned int i = 0; i < vm->mem.count && ret == 0; i++) {
		const struct gm_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region region = {
		    .slot = i,
		    .flags = KVM_MEM_LOG_DIRTY_PAGES,
		    .guest_phys_addr = r->gpa,
		    .memory_size = r->size,
		    .userspace_addr = (uint64_t)(uintptr_t)r->host,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
			ret = -errno;
			log_warn("dirty-page logging unavailable (%s): only full snapshots",
				 strerror(errno));
		}
	}
	return ret;
}

int vm_dirty_log_collect(struct vm *vm, unsigned int r, uint64_t *bitmap)
{
	uint64_t pages, words, *kvm_bits;
	struct kvm_dirty_log log = {.slot = r};
	int ret = 0;

	if (r >= vm->mem.count)
		return -EINVAL;
	pages = vm->mem.regions[r].size / 4096;
	words = (pages + 63) / 64;
	kvm_bits = calloc(words, sizeof(uint64_t));
	if (!kvm_bits)
		return -ENOMEM;
	log.dirty_bitmap = kvm_bits;
	if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		ret = -errno;
	for (uint64_t w = 0; w < words && ret == 0; w++)
		bitmap[w] |= kvm_bits[w];
	gm_dirty_take(&vm->mem, r, bitmap);
	free(kvm_bits);
	return ret;
}
