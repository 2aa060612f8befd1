/* Whether a saved vCPU's CPUID is a fresh vCPU's: what a restore may skip setting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/x86.h"

/* A small CPUID as KVM_GET_CPUID2 gives it: leaves 0, 1, 7.0, 0xd.0, 0xd.1. */
static struct kvm_cpuid2 *cpuid(void)
{
	static const struct kvm_cpuid_entry2 e[] = {
	    {.function = 0, .eax = 0xd, .ebx = 0x756e6547},
	    {.function = 1, .eax = 0x806f8, .ebx = 0x800, .ecx = 0xf6fa3203, .edx = 0x178bfbff},
	    {.function = 7, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .ebx = 0x219c07ab},
	    {.function = 0xd, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 7, .ebx = 0x240},
	    {.function = 0xd, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .ebx = 0x240},
	};
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + sizeof(e));

	assert_non_null(c);
	c->nent = sizeof(e) / sizeof(e[0]);
	memcpy(c->entries, e, sizeof(e));
	return c;
}

/* A running guest's: OSXSAVE, OSPKE, the APIC bit and XCR0's sizes moved. */
static void test_runtime_bits_ignored(void **st)
{
	struct kvm_cpuid2 *fresh = cpuid(), *saved = cpuid();

	(void)st;
	saved->entries[1].ecx |= 1U << 27;
	saved->entries[1].edx ^= 1U << 9;
	saved->entries[2].ecx |= 1U << 4;
	saved->entries[3].ebx = 0x340;
	saved->entries[4].ebx = 0x988;
	assert_true(x86_cpuid_same(saved, fresh));
	free(fresh);
	free(saved);
}

/* A feature bit, an APIC ID, a flag: another CPUID, which must be set. */
static void test_other_bits_differ(void **st)
{
	static const struct {
		int entry, reg;
		uint32_t bit;
	} flips[] = {
	    {1, 2, 1U << 28}, {1, 1, 1U << 24}, {2, 1, 1U << 5}, {3, 0, 1U << 1}, {0, 0, 1}};

	(void)st;
	for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		struct kvm_cpuid2 *fresh = cpuid(), *saved = cpuid();
		struct kvm_cpuid_entry2 *e = &saved->entries[flips[i].entry];
		uint32_t *r[] = {&e->eax, &e->ebx, &e->ecx, &e->edx};

		*r[flips[i].reg] ^= flips[i].bit;
		assert_false(x86_cpuid_same(saved, fresh));
		free(fresh);
		free(saved);
	}
}

static void test_shape_differs(void **st)
{
	struct kvm_cpuid2 *fresh = cpuid(), *saved = cpuid();

	(void)st;
	assert_false(x86_cpuid_same(saved, NULL));
	assert_false(x86_cpuid_same(NULL, fresh));
	saved->nent--;
	assert_false(x86_cpuid_same(saved, fresh));
	saved->nent++;
	saved->entries[4].flags = 0;
	assert_false(x86_cpuid_same(saved, fresh));
	saved->entries[4].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	saved->entries[4].index = 2;
	assert_false(x86_cpuid_same(saved, fresh));
	free(fresh);
	free(saved);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_runtime_bits_ignored),
	    cmocka_unit_test(test_other_bits_differ),
	    cmocka_unit_test(test_shape_differs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
