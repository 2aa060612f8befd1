/*
 * MSRs at entry, as firmware would leave them for Linux: SYSENTER/SYSCALL
 * MSRs cleared, fast strings enabled, MTRRs enabled with write-back as the
 * default type (without it Linux maps all RAM uncached), TSC at 0 on every
 * vCPU at the same moment so KVM keeps the TSCs synchronised.
 */
#include "arch/x86/x86.h"
#include "arch/x86/cpu_template.h"
#include "util/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#define MSR_IA32_TSC	      0x10
#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MSR_STAR	      0xc0000081
#define MSR_LSTAR	      0xc0000082
#define MSR_CSTAR	      0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102

#define MISC_ENABLE_FAST_STRING 0x1
#define MTRR_ENABLE_WB		(1ULL << 11 | 6)

static const struct {
	uint32_t index;
	uint64_t value;
} boot_msrs[] = {
    {MSR_IA32_SYSENTER_CS, 0},
    {MSR_IA32_SYSENTER_ESP, 0},
    {MSR_IA32_SYSENTER_EIP, 0},
    {MSR_STAR, 0},
    {MSR_LSTAR, 0},
    {MSR_CSTAR, 0},
    {MSR_SYSCALL_MASK, 0},
    {MSR_KERNEL_GS_BASE, 0},
    {MSR_IA32_TSC, 0},
    {MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING},
    {MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WB},
};

#define NBOOT_MSRS (sizeof(boot_msrs) / sizeof(boot_msrs[0]))

int x86_vcpu_set_msrs(struct vcpu *vcpu)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entries[NBOOT_MSRS];
	} m;
	unsigned int i = 0, j;

	/*
	 * KVM sets the entries in order and stops at the first it refuses
	 * (PVM refuses some), returning how many it set: each call starts
	 * past the last refusal, so none leaves the others unset, and where
	 * nothing is refused one call (one vCPU load) sets them all. A
	 * refusal is worth a debug line only.
	 */
	while (i < NBOOT_MSRS) {
		int n;

		memset(&m, 0, sizeof(m));
		m.hdr.nmsrs = (uint32_t)(NBOOT_MSRS - i);
		for (j = 0; j < m.hdr.nmsrs; j++) {
			m.entries[j].index = boot_msrs[i + j].index;
			m.entries[j].data = boot_msrs[i + j].value;
		}
		n = ioctl(vcpu->fd, KVM_SET_MSRS, &m);
		i += n > 0 ? (unsigned int)n : 0;
		if (i < NBOOT_MSRS) {
			log_debug("vCPU %u: MSR %#x not set", vcpu->index, boot_msrs[i].index);
			i++;
		}
	}
	return 0;
}

/*
 * The template's MSR modifiers over what the vCPU holds after the boot
 * values (Firecracker's order). The operator asked for these: one KVM
 * refuses fails the VM, naming it.
 */
int x86_vcpu_set_template_msrs(struct vcpu *vcpu, const struct cpu_template *t)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entries[1];
	} one;

	for (unsigned int i = 0; t && i < t->nmsrs; i++) {
		const struct cpu_template_msr *m = &t->msrs[i];

		memset(&one, 0, sizeof(one));
		one.hdr.nmsrs = 1;
		one.entries[0].index = m->addr;
		if (ioctl(vcpu->fd, KVM_GET_MSRS, &one) != 1)
			one.entries[0].data = 0;
		one.entries[0].data = (one.entries[0].data & ~m->mask) | (m->value & m->mask);
		if (ioctl(vcpu->fd, KVM_SET_MSRS, &one) != 1) {
			log_error("vCPU %u: KVM refuses MSR %#x of the CPU template", vcpu->index,
				  m->addr);
			return -ENOTSUP;
		}
	}
	return 0;
}
