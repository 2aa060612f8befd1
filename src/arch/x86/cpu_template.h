/*
 * CPU templates: what the guest is shown of the host's CPU, in
 * Firecracker's custom template format (PUT /cpu-config, docs/guests.md):
 * CPUID register bitmaps per (leaf, subleaf) and MSR bitmaps, each bit
 * cleared ('0'), set ('1') or left as the host has it ('x'). The named
 * templates (x86-64-v2, x86-64-v3) are such templates built in.
 *
 * A template is a flat value (no pointers), so a configuration copies it
 * with memcpy and a snapshot's document carries it as JSON.
 */
#ifndef BANYAN_ARCH_X86_CPU_TEMPLATE_H
#define BANYAN_ARCH_X86_CPU_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define CPU_TEMPLATE_MAX_CPUID 128 /* register modifiers, over all leaves */
#define CPU_TEMPLATE_MAX_MSRS  64
#define CPU_TEMPLATE_MAX_CAPS  32
#define CPU_TEMPLATE_NAME_LEN  16

enum cpu_reg { CPU_EAX, CPU_EBX, CPU_ECX, CPU_EDX };

/* One register of one CPUID leaf: the bits in @mask become those of @value. */
struct cpu_template_reg {
	uint32_t leaf, subleaf, flags; /* flags: KVM_CPUID_FLAG_* of a leaf the template adds */
	enum cpu_reg reg;
	uint32_t mask, value;
};

struct cpu_template_msr {
	uint32_t addr;
	uint64_t mask, value;
};

struct cpu_template {
	char name[CPU_TEMPLATE_NAME_LEN]; /* a named template's name; "" for a custom one */
	unsigned int ncpuid;
	struct cpu_template_reg cpuid[CPU_TEMPLATE_MAX_CPUID];
	unsigned int nmsrs;
	struct cpu_template_msr msrs[CPU_TEMPLATE_MAX_MSRS];
	unsigned int ncaps;
	int32_t caps[CPU_TEMPLATE_MAX_CAPS]; /* KVM capabilities required; -N: "!N" (no check) */
};

/*
 * cpu_template_parse - Firecracker's custom template @body (the object of
 * PUT /cpu-config: "cpuid_modifiers", "msr_modifiers", "kvm_capabilities")
 * into *@t. Numbers are strings ("0x1", "0b101", "7") or integers; bitmaps
 * are "0b" then up to 32 (CPUID) or 64 (MSR) of 0, 1, x, with '_' as a
 * separator, missing leading bits meaning x. aarch64's sections are
 * refused. Returns 0, or -EINVAL with the reason in @err (@len bytes);
 * *@t is then undefined.
 */
int cpu_template_parse(json_object *body, struct cpu_template *t, char *err, size_t len);

/*
 * cpu_template_named - the built-in template @name into *@t: 0, or -ENOENT
 * for a name there is none of. cpu_template_names - their names, for
 * messages ("x86-64-v2, x86-64-v3").
 */
int cpu_template_named(const char *name, struct cpu_template *t);
const char *cpu_template_names(void);

/* cpu_template_to_json - @t in the format cpu_template_parse reads; NULL when out of memory. */
json_object *cpu_template_to_json(const struct cpu_template *t);

struct kvm_cpuid2;

/*
 * cpu_template_apply_cpuid - apply @t's CPUID modifiers to @c, whose
 * entries array has room for @cap entries; a leaf the template names that
 * @c lacks is added (zero, then modified) while there is room. Returns 0,
 * or -ENOSPC when a leaf could not be added.
 */
int cpu_template_apply_cpuid(const struct cpu_template *t, struct kvm_cpuid2 *c, unsigned int cap);

/*
 * cpu_template_check - can a host whose KVM supports the CPUID @supported
 * provide @t? Every feature bit @t sets (in the feature registers: leaf 1
 * ECX/EDX, 7.0 EBX/ECX/EDX, 7.1 EAX, 0xD.1 EAX, 0x80000001 ECX/EDX) must be
 * supported, except those the VMM sets itself (hypervisor, OSXSAVE, HTT,
 * APIC). Returns 0, or -ENOTSUP with the missing features named in
 * @missing (@len bytes: "avx2 (CPUID.7.0:EBX bit 5), ...").
 */
int cpu_template_check(const struct cpu_template *t, const struct kvm_cpuid2 *supported,
		       char *missing, size_t len);

/* cpu_template_feature_name - the name of a feature bit ("avx2"), or NULL. */
const char *cpu_template_feature_name(uint32_t leaf, uint32_t subleaf, enum cpu_reg reg,
				      unsigned int bit);

#endif
