/*
 * Whether a saved vCPU's CPUID is the one a fresh vCPU here already has,
 * so that a restore (or a migration's pause) can skip KVM_SET_CPUID2.
 */

#include "arch/x86/x86.h"

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Bits KVM recomputes from the vCPU's state whenever that state is set
 * (kvm_update_cpuid_runtime): they follow CR4, the APIC base and XCR0/XSS,
 * all written after the CPUID, so they may differ between a running vCPU
 * and a fresh one without the CPUID being another.
 */
struct runtime_bits {
	uint32_t function, index;
	uint32_t mask[4]; /* eax, ebx, ecx, edx */
};

static const struct runtime_bits runtime_bits[] = {
    {0x1, 0, {0, 0, 1U << 27, 1U << 9}}, /* OSXSAVE (CR4), APIC (APIC base) */
    {0x7, 0, {0, 0, 1U << 4, 0}},	 /* OSPKE (CR4) */
    {0xd, 0, {0, 0xffffffffU, 0, 0}},	 /* XSAVE area size for XCR0 */
    {0xd, 1, {0, 0xffffffffU, 0, 0}},	 /* ... for XCR0 | XSS */
};

static const uint32_t *runtime_mask(const struct kvm_cpuid_entry2 *e)
{
	static const uint32_t none[4];

	for (size_t i = 0; i < sizeof(runtime_bits) / sizeof(runtime_bits[0]); i++)
		if (runtime_bits[i].function == e->function && runtime_bits[i].index == e->index)
			return runtime_bits[i].mask;
	return none;
}

static bool entry_same(const struct kvm_cpuid_entry2 *a, const struct kvm_cpuid_entry2 *b)
{
	const uint32_t *m = runtime_mask(a);

	return a->function == b->function && a->index == b->index && a->flags == b->flags &&
	       ((a->eax ^ b->eax) & ~m[0]) == 0 && ((a->ebx ^ b->ebx) & ~m[1]) == 0 &&
	       ((a->ecx ^ b->ecx) & ~m[2]) == 0 && ((a->edx ^ b->edx) & ~m[3]) == 0;
}

bool x86_cpuid_same(const struct kvm_cpuid2 *saved, const struct kvm_cpuid2 *fresh)
{
	if (!saved || !fresh || saved->nent != fresh->nent)
		return false;
	for (uint32_t i = 0; i < saved->nent; i++)
		if (!entry_same(&saved->entries[i], &fresh->entries[i]))
			return false;
	return true;
}
