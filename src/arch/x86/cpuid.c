/*
 * CPUID for each vCPU: what KVM supports on this host, changed by the CPU
 * template when there is one (cpu_template.h), with the topology
 * filled in so the guest sees N single-threaded cores in one package whose
 * APIC IDs are 0..N-1. The KVM signature leaves (kvmclock, PV features) pass
 * through unchanged: PVM-enabled guests depend on them too.
 */
#include "arch/x86/x86.h"
#include "arch/x86/cpu_template.h"
#include "util/log.h"
#include "vmm/arch.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define CPUID_MAX_ENTRIES	 512
#define CPUID_1_ECX_HYPERVISOR	 (1U << 31)
#define CPUID_1_EDX_HTT		 (1U << 28)
#define CPUID_1_ECX_TSC_DEADLINE (1U << 24)

/*
 * KVM emulates the LAPIC's TSC-deadline mode whenever it has the capability
 * but leaves the CPUID bit to the VMM (KVM_GET_SUPPORTED_CPUID clears it):
 * advertise it, so guests can use the deadline timer.
 */
static void cpuid_add_tsc_deadline(int kvm_fd, struct kvm_cpuid2 *c)
{
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) <= 0)
		return;
	for (unsigned int i = 0; i < c->nent; i++)
		if (c->entries[i].function == 1)
			c->entries[i].ecx |= CPUID_1_ECX_TSC_DEADLINE;
}

/* The KVM capabilities a template requires ("171"; "!56" asks nothing of Banyan). */
static int cpuid_check_caps(const struct vm *vm, const struct cpu_template *t)
{
	for (unsigned int i = 0; i < t->ncaps; i++)
		if (t->caps[i] > 0 &&
		    ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, (unsigned long)t->caps[i]) <= 0) {
			log_error(
			    "the CPU template requires KVM capability %d, which this host's KVM "
			    "lacks",
			    t->caps[i]);
			return -ENOTSUP;
		}
	return 0;
}

/*
 * A template may only show features this host's KVM can provide: checked
 * when a VM boots, is restored or arrives by migration (each creates the VM
 * from a configuration that carries the template), so a guest is never
 * shown, or moved to a host without, what it may have started to use.
 */
static int cpuid_check_template(const struct vm *vm)
{
	const struct cpu_template *t = vm->cfg.cpu_template;
	char missing[512];

	if (!t)
		return 0;
	if (cpu_template_check(t, vm->arch->supported_cpuid, missing, sizeof(missing)) < 0) {
		log_error("the CPU template %s%sasks for features this host lacks: %s",
			  t->name[0] ? t->name : "", t->name[0] ? " " : "", missing);
		return -ENOTSUP;
	}
	return cpuid_check_caps(vm, t);
}

/* KVM_GET_SUPPORTED_CPUID on @kvm_fd, grown until it fits; 0 or -errno (logged). */
static int cpuid_query(int kvm_fd, struct kvm_cpuid2 **out)
{
	unsigned int nent = 128;

	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
		int err;

		if (!c)
			return -ENOMEM;
		c->nent = nent;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			cpuid_add_tsc_deadline(kvm_fd, c);
			*out = c;
			return 0;
		}
		err = errno;
		free(c);
		if (err != E2BIG || nent >= CPUID_MAX_ENTRIES) {
			log_error("KVM_GET_SUPPORTED_CPUID: %s", strerror(err));
			return -err;
		}
		nent *= 2;
	}
}

/*
 * What the host's KVM supports and what it saves of a vCPU do not change
 * while a process lives, so they are asked once (KVM_GET_SUPPORTED_CPUID
 * walks every leaf in the kernel, and the answer is a few KiB) and kept
 * for every vCPU of every VM the process creates: a reboot's new VM, and
 * the clones forked after arch_host_prepare. Never freed; written once
 * under the lock, read-only after.
 */
static struct kvm_cpuid2 *cpuid_supported;
static struct x86_state_caps *state_caps;
static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;

int x86_host_answers(int kvm_fd, const struct kvm_cpuid2 **cpuid,
		     const struct x86_state_caps **caps)
{
	int ret = 0;

	pthread_mutex_lock(&host_lock);
	if (!cpuid_supported)
		ret = cpuid_query(kvm_fd, &cpuid_supported);
	if (ret == 0 && !state_caps)
		ret = x86_state_caps_query(kvm_fd, &state_caps);
	*cpuid = cpuid_supported;
	*caps = state_caps;
	pthread_mutex_unlock(&host_lock);
	return ret;
}

int arch_host_prepare(void)
{
	const struct kvm_cpuid2 *c;
	const struct x86_state_caps *caps;
	int ret, fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno; /* vm_create says why, when it tries */
	ret = x86_host_answers(fd, &c, &caps);
	close(fd);
	return ret;
}

int x86_cpuid_init(struct vm *vm)
{
	int ret = x86_host_answers(vm->kvm_fd, &vm->arch->supported_cpuid, &vm->arch->state_caps);

	return ret < 0 ? ret : cpuid_check_template(vm);
}

/* Bits needed to hold IDs 0..n-1. */
static uint32_t id_bits(uint32_t n)
{
	uint32_t bits = 0;

	while ((1U << bits) < n)
		bits++;
	return bits;
}

static bool cpuid_is_intel(const struct kvm_cpuid2 *c)
{
	unsigned int i;

	for (i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0)
			return c->entries[i].ebx == 0x756e6547; /* "Genu" */
	return false;
}

/* Leaf 0xB / 0x1F: level 0 SMT (one thread), level 1 core (all vCPUs). */
static void cpuid_topology_leaf(struct kvm_cpuid_entry2 *e, uint32_t apic_id, uint32_t ncpus)
{
	e->edx = apic_id;
	switch (e->index) {
	case 0:
		e->eax = 0;
		e->ebx = 1;
		e->ecx = 0 | 1U << 8;
		break;
	case 1:
		e->eax = id_bits(ncpus);
		e->ebx = ncpus;
		e->ecx = 1 | 2U << 8;
		break;
	default:
		e->eax = e->ebx = 0;
		e->ecx = e->index;
		break;
	}
}

static void cpuid_patch_entry(struct kvm_cpuid_entry2 *e, uint32_t apic_id, uint32_t ncpus,
			      bool intel)
{
	switch (e->function) {
	case 0x1:
		e->ebx = (e->ebx & 0xffff) | apic_id << 24 | (ncpus > 1 ? ncpus : 1) << 16;
		e->ecx |= CPUID_1_ECX_HYPERVISOR;
		if (ncpus > 1)
			e->edx |= CPUID_1_EDX_HTT;
		else
			e->edx &= ~CPUID_1_EDX_HTT;
		break;
	case 0x4:
		/* Cores per package; each cache is private to its (single-thread) core. */
		if (intel && (e->eax & 0x1f))
			e->eax = (e->eax & 0x3ff) | (ncpus - 1) << 26;
		break;
	case 0xb:
	case 0x1f:
		cpuid_topology_leaf(e, apic_id, ncpus);
		break;
	case 0x80000008:
		if (!intel)
			e->ecx = (e->ecx & ~0xf0ffU) | id_bits(ncpus) << 12 | (ncpus - 1);
		break;
	case 0x8000001e:
		e->eax = apic_id;
		e->ebx = apic_id & 0xff; /* core id; 0 extra threads per core */
		e->ecx = 0;		 /* node 0 */
		break;
	default:
		break;
	}
}

int x86_vcpu_set_cpuid(struct vm *vm, struct vcpu *vcpu)
{
	const struct kvm_cpuid2 *sup = vm->arch->supported_cpuid;
	size_t size = sizeof(*sup) + sup->nent * sizeof(sup->entries[0]);
	unsigned int i, cap = sup->nent + CPU_TEMPLATE_MAX_CPUID;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + cap * sizeof(c->entries[0]));
	bool intel = cpuid_is_intel(sup);
	int ret = 0;

	if (!c)
		return -ENOMEM;
	memcpy(c, sup, size);
	/* The template first, then the topology over it, as Firecracker normalises after its own.
	 */
	if (vm->cfg.cpu_template && cpu_template_apply_cpuid(vm->cfg.cpu_template, c, cap) < 0) {
		free(c);
		return -ENOSPC;
	}
	for (i = 0; i < c->nent; i++)
		cpuid_patch_entry(&c->entries[i], vcpu->index, vm->cfg.ncpus, intel);
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, c) < 0) {
		ret = -errno;
		log_error("KVM_SET_CPUID2 on vCPU %u: %s", vcpu->index, strerror(errno));
	}
	free(c);
	return ret;
}
