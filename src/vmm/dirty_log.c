/* Dirty-page tracking: KVM's log on the VM's memslots plus the VMM's own writes. */
#include "vmm/dirty_log.h"
#include "vmm/kvm.h"

#include "util/log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

struct vm_dirty {
	bool logging;	   /* KVM logs every memslot */
	uint64_t *pending; /* pages written since vm_dirty_start, over the whole mapping */
};

static uint64_t dirty_words(const struct vm *vm)
{
	return (vm->mem_map_size / VM_DIRTY_PAGE + 63) / 64;
}

static int dirty_log_enable(struct vm *vm)
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
			log_warn("dirty-page logging unavailable (%s): only full snapshots",
				 strerror(errno));
			ret = -ENOTSUP;
		}
	}
	return ret;
}

int vm_dirty_start(struct vm *vm)
{
	struct vm_dirty *d = vm->dirty;

	if (!d) {
		d = calloc(1, sizeof(*d));
		if (d)
			d->pending = calloc(dirty_words(vm), sizeof(uint64_t));
		if (!d || !d->pending) {
			free(d);
			return -ENOMEM;
		}
		vm->dirty = d;
	}
	memset(d->pending, 0, dirty_words(vm) * sizeof(uint64_t));
	if (!d->logging && !vm->cfg.no_irqchip)
		d->logging = dirty_log_enable(vm) == 0;
	return d->logging ? 0 : -ENOTSUP;
}

bool vm_dirty_logging(const struct vm *vm)
{
	return vm->dirty && vm->dirty->logging;
}

/* OR KVM's and the VMM's pages of region @r since the last call into @bitmap (region-relative). */
static int dirty_log_take(struct vm *vm, unsigned int r, uint64_t *bitmap)
{
	uint64_t words = (vm->mem.regions[r].size / VM_DIRTY_PAGE + 63) / 64;
	uint64_t *kvm_bits = calloc(words, sizeof(uint64_t));
	struct kvm_dirty_log log = {.slot = r};
	int ret;

	if (!kvm_bits)
		return -ENOMEM;
	log.dirty_bitmap = kvm_bits;
	ret = __kvm_ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log);
	for (uint64_t w = 0; w < words && ret == 0; w++)
		bitmap[w] |= kvm_bits[w];
	gm_dirty_take(&vm->mem, r, bitmap);
	free(kvm_bits);
	return ret;
}

/* Gather region @r's new pages into pending and, when set, @since. */
static int dirty_region(struct vm *vm, unsigned int r, uint64_t *since)
{
	struct vm_dirty *d = vm->dirty;
	const struct gm_region *reg = &vm->mem.regions[r];
	uint64_t first = (uint64_t)(reg->host - (uint8_t *)vm->mem_base) / VM_DIRTY_PAGE;
	uint64_t pages = reg->size / VM_DIRTY_PAGE;
	uint64_t *tmp = calloc((pages + 63) / 64, sizeof(uint64_t));
	int ret;

	if (!tmp)
		return -ENOMEM;
	ret = dirty_log_take(vm, r, tmp);
	for (uint64_t p = 0; p < pages && ret == 0; p++) {
		uint64_t bit = 1ULL << ((first + p) % 64);

		if (!(tmp[p / 64] >> (p % 64) & 1))
			continue;
		d->pending[(first + p) / 64] |= bit;
		if (since)
			since[(first + p) / 64] |= bit;
	}
	free(tmp);
	return ret;
}

int vm_dirty_collect(struct vm *vm, const uint64_t **pending)
{
	int ret = 0;

	if (!vm_dirty_logging(vm))
		return -ENOTSUP;
	for (unsigned int r = 0; r < vm->mem.count && ret == 0; r++)
		ret = dirty_region(vm, r, NULL);
	*pending = vm->dirty->pending;
	return ret;
}

int vm_dirty_sync(struct vm *vm, uint64_t *since)
{
	int ret = 0;

	if (!vm_dirty_logging(vm))
		return -ENOTSUP;
	for (unsigned int r = 0; r < vm->mem.count && ret == 0; r++)
		ret = dirty_region(vm, r, since);
	return ret;
}

void vm_dirty_free(struct vm *vm)
{
	if (!vm->dirty)
		return;
	free(vm->dirty->pending);
	free(vm->dirty);
	vm->dirty = NULL;
}
