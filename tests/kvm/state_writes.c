/*
 * Linked into banyan-state-writes (tests/kvm/test_migrate.sh) with
 * -Wl,--wrap=arch_vcpu_save: every vCPU state read also writes a page of
 * guest memory and logs it, as KVM does when a KVM_GET_* ioctl's vcpu_put
 * sets the steal-time record's `preempted` byte. A migration source must
 * read the dirty log after the state, or that page arrives stale and a
 * verified migration fails. With BANYAN_STATE_WRITES_UNLOGGED set the
 * write is not logged, as a VMM write that missed the dirty tracking:
 * the page then differs at the destination whatever the order, which
 * --verify=pages must name. Never part of banyan itself.
 */
#include "vmm/arch.h"
#include "vmm/guest_mem.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STATE_WRITE_GPA 0x600000ULL /* a page the migrate guest never touches */

int __real_arch_vcpu_save(struct vcpu *vcpu, struct state_io *io);
int __wrap_arch_vcpu_save(struct vcpu *vcpu, struct state_io *io);

int __wrap_arch_vcpu_save(struct vcpu *vcpu, struct state_io *io)
{
	const struct guest_mem *gm = &vcpu->vm->mem;
	uint64_t *p = gm_ptr(gm, STATE_WRITE_GPA + vcpu->index * 8, 8);
	int ret = __real_arch_vcpu_save(vcpu, io);

	if (p) {
		(*p)++;
		if (!getenv("BANYAN_STATE_WRITES_UNLOGGED"))
			gm_mark_dirty(gm, STATE_WRITE_GPA + vcpu->index * 8, 8);
	}
	return ret;
}
